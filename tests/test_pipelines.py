"""fill-mask, next-sentence prediction and embeddings, through the Python API and the CLI, against transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from support import without_device_note

import bert
from bert.cli import main
from bert.hub import resolve_model_dir
from bert.inference.pipelines import encode, fill_mask, load, next_sentence, word_vector


@pytest.fixture(scope="module")
def tiny_pretrained_dir(tmp_path_factory, minilm_dir) -> Path:
    """A small random BertForPreTraining saved by transformers, with the real bert-base-uncased vocabulary."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertForPreTraining(config).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def test_fill_mask_matches_the_reference_softmax_for_every_mask(tiny_pretrained_dir):
    model, tokenizer = load(bert.BertForMaskedLM, tiny_pretrained_dir)
    text = "The [MASK] sat on the [MASK] all day."
    predictions = fill_mask(model, tokenizer, text, top_k=3)
    assert len(predictions) == 2 and all(len(p) == 3 for p in predictions)

    reference = transformers.BertForMaskedLM.from_pretrained(tiny_pretrained_dir).eval()
    ref_tokenizer = transformers.BertTokenizer.from_pretrained(tiny_pretrained_dir)
    batch = ref_tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = reference(**batch).logits[0]
    positions = (batch["input_ids"][0] == ref_tokenizer.mask_token_id).nonzero().flatten()
    for candidates, position in zip(predictions, positions, strict=True):
        scores, ids = logits[position].softmax(-1).topk(3)
        assert [c["token"] for c in candidates] == ids.tolist()
        assert [c["token_str"] for c in candidates] == ref_tokenizer.convert_ids_to_tokens(ids.tolist())
        assert max(abs(c["score"] - s) for c, s in zip(candidates, scores.tolist(), strict=True)) < 1e-6


@pytest.fixture(scope="module")
def demo_fill_mask_pipeline():
    """transformers' own fill-mask pipeline on the bundled demo model (trained: its scores are far from uniform)."""
    from bert.inference.pipelines import DEMO_MODEL

    # float32: the demo card's config.json names bfloat16, which transformers would load the model in
    return transformers.pipeline("fill-mask", model=str(DEMO_MODEL), device="cpu", dtype=torch.float32)


def assert_same_candidates(ours: list[dict], theirs: list[dict]) -> None:
    assert [list(c) for c in ours] == [list(c) for c in theirs]  # the same keys, in the same order
    for key in ("token", "token_str", "sequence"):
        assert [c[key] for c in ours] == [c[key] for c in theirs], key
    assert [c["score"] for c in ours] == pytest.approx([c["score"] for c in theirs], abs=1e-5)


def test_fill_mask_answers_what_transformers_fill_mask_pipeline_answers_for_a_text_and_a_list(
        demo_fill_mask_pipeline):
    from bert.inference.pipelines import DEMO_MODEL

    model, tokenizer = load(bert.BertForMaskedLM, DEMO_MODEL)
    text = "The capital of France is [MASK]."
    [ours] = fill_mask(model, tokenizer, text, top_k=5)  # one list per mask, also for one mask
    assert_same_candidates(ours, demo_fill_mask_pipeline(text, top_k=5))
    assert isinstance(ours[0]["token"], int)
    assert ours[0]["sequence"] == f"the capital of france is {ours[0]['token_str']}."

    texts = ["The cat sat on the [MASK].", "The [MASK] went to the [MASK] to buy milk.", "She plays the [MASK]."]
    ours = fill_mask(model, tokenizer, texts, top_k=4)
    theirs = demo_fill_mask_pipeline(texts, top_k=4)
    assert len(ours) == len(theirs) == 3 and [len(answer) for answer in ours] == [1, 2, 1]
    for answer, reference in zip(ours, theirs, strict=True):
        # transformers gives a text with one mask a flat list of candidates, one with several a list per mask
        per_mask = reference if isinstance(reference[0], list) else [reference]
        for candidates, expected in zip(answer, per_mask, strict=True):
            assert_same_candidates(candidates, expected)
    # several masks: each candidate's sequence keeps the other mask and shows [CLS]/[SEP], as transformers' does
    assert ours[1][0][0]["sequence"].startswith("[CLS] the ") and "[MASK]" in ours[1][0][0]["sequence"]


def test_fill_mask_sequences_join_contractions_where_transformers_5_reads_no_cleanup_setting(tiny_pretrained_dir):
    """The one difference docs/guides/inference.md names: a sequence is our tokenizer's decode, which joins "isn't"
    as transformers' BertTokenizer did before v5; transformers 5 does so only when tokenizer_config.json sets
    clean_up_tokenization_spaces (all-MiniLM-L6-v2's, copied here, does not; the demo model's does)."""
    model, tokenizer = load(bert.BertForMaskedLM, tiny_pretrained_dir)
    text = "It isn't the [MASK]."
    [ours] = fill_mask(model, tokenizer, text, top_k=3)
    theirs = transformers.pipeline("fill-mask", model=str(tiny_pretrained_dir), device="cpu")(text, top_k=3)
    assert [c["token"] for c in ours] == [c["token"] for c in theirs]
    assert all(c["sequence"].startswith("it isn't the") for c in ours)
    assert all(c["sequence"].startswith("it isn ' t the") for c in theirs)


def test_fill_mask_refuses_an_empty_list_and_non_strings(tiny_pretrained_dir):
    model, tokenizer = load(bert.BertForMaskedLM, tiny_pretrained_dir)
    with pytest.raises(bert.BertError, match="no texts to fill"):
        fill_mask(model, tokenizer, [])
    with pytest.raises(bert.BertError, match="a list holding an int"):
        fill_mask(model, tokenizer, ["a [MASK].", 3])
    with pytest.raises(bert.BertError, match=r"no \[MASK\] in the text"):
        fill_mask(model, tokenizer, ["a [MASK].", "no mask"])


def test_next_sentence_matches_the_reference_and_label_zero_is_is_next(tiny_pretrained_dir):
    model, tokenizer = load(bert.BertForNextSentencePrediction, tiny_pretrained_dir)
    result = next_sentence(model, tokenizer, "I went to the store.", "I bought some milk.")
    reference = transformers.BertForNextSentencePrediction.from_pretrained(tiny_pretrained_dir).eval()
    batch = transformers.BertTokenizer.from_pretrained(tiny_pretrained_dir)(
        "I went to the store.", "I bought some milk.", return_tensors="pt")
    with torch.no_grad():
        logits = reference(**batch).logits[0]
    assert max(abs(a - b) for a, b in zip(result["logits"], logits.tolist(), strict=True)) < 1e-5
    assert abs(result["is_next"] - logits.softmax(-1)[0].item()) < 1e-6
    assert abs(result["is_next"] + result["not_next"] - 1) < 1e-6


def test_mean_pooled_embeddings_match_the_reference_on_real_weights(minilm_dir):
    texts = ["A man is eating food.", "Someone is having a meal.", "The stock market fell sharply today."]
    model, tokenizer = load(bert.BertModel, minilm_dir)
    ours = encode(model, tokenizer, texts, pooling="mean")
    reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
    batch = transformers.BertTokenizer.from_pretrained(minilm_dir)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = reference(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = (hidden * mask).sum(1) / mask.sum(1)
    assert (ours - expected).abs().max() < 1e-5
    similarity = torch.nn.functional.cosine_similarity(ours[0], ours[1:], dim=-1)
    assert similarity[0] > similarity[1] + 0.3  # a real model: the two meal sentences are far closer
    assert encode(model, tokenizer, texts, pooling="cls").shape == (3, 384)


def test_contextual_vectors_tell_the_two_banks_apart(minilm_dir):
    model, tokenizer = load(bert.BertModel, minilm_dir)
    river = word_vector(model, tokenizer, "We sat on the grassy river bank and watched the water.", "bank")
    river2 = word_vector(model, tokenizer, "The boat drifted towards the muddy bank of the stream.", "bank")
    money = word_vector(model, tokenizer, "She deposited the cash at the bank downtown.", "bank")
    cos = torch.nn.functional.cosine_similarity
    assert cos(river, river2, dim=0) > cos(river, money, dim=0)
    with pytest.raises(bert.BertError, match="does not occur"):
        word_vector(model, tokenizer, "No such word here.", "bank")


def test_fill_mask_refuses_a_checkpoint_without_a_trained_mlm_head(minilm_dir):
    with pytest.raises(bert.BertError, match="no trained weights for BertForMaskedLM"):
        load(bert.BertForMaskedLM, minilm_dir)


# ---- CLI ----------------------------------------------------------------------------------------------------------

def test_cli_fill_mask_json_lists_candidates_per_mask(tiny_pretrained_dir, capsys):
    assert main(["fill-mask", "Paris is the [MASK] of [MASK].", "--model", str(tiny_pretrained_dir),
                 "--top-k", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result) == 2 and len(result[0]) == 4
    assert list(result[0][0]) == ["score", "token", "token_str", "sequence"]  # transformers' pipeline's keys


def test_cli_nsp_embed_and_info_run(tiny_pretrained_dir, minilm_dir, capsys):
    assert main(["nsp", "It rained.", "The streets were wet.", "--model", str(tiny_pretrained_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"is_next", "not_next", "logits"}
    reference = transformers.BertForNextSentencePrediction.from_pretrained(tiny_pretrained_dir).eval()
    batch = transformers.BertTokenizerFast.from_pretrained(tiny_pretrained_dir)(
        "It rained.", "The streets were wet.", return_tensors="pt")
    with torch.no_grad():
        logits = reference(**batch).logits[0]
    assert result["logits"] == pytest.approx(logits.tolist(), abs=1e-5)
    assert result["is_next"] == pytest.approx(logits.softmax(-1)[0].item(), abs=1e-6)
    assert main(["embed", "hello world", "--model", str(minilm_dir), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]) == 384
    assert main(["info", "--model", str(minilm_dir)]) == 0
    assert "22,713,216" in capsys.readouterr().out  # all-MiniLM-L6-v2's parameter count


def test_cli_similarity_prints_transformers_cosines_of_the_word_and_of_mean_pooled_sentences(minilm_dir, capsys):
    texts = ["We sat on the river bank.", "The bank approved the loan.", "She paid the cash into the bank."]
    reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
    tokenizer = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    words, sentences = [], []
    with torch.no_grad():
        for text in texts:
            batch = tokenizer(text, return_tensors="pt")
            hidden = reference(**batch).last_hidden_state[0]
            words.append(hidden[batch["input_ids"][0].tolist().index(tokenizer.vocab["bank"])])  # one word piece
            sentences.append(hidden.mean(0))
    for extra, vectors in ((["--word", "bank"], words), ([], sentences)):
        assert main(["similarity", *texts, *extra, "--model", str(minilm_dir), "--json"]) == 0
        printed = torch.tensor(json.loads(capsys.readouterr().out))
        normalised = torch.nn.functional.normalize(torch.stack(vectors), dim=-1)
        assert (printed - normalised @ normalised.T).abs().max() < 1e-5
    # The banks of money are closer to each other than to the river's (a real model, real weights).
    assert main(["similarity", *texts, "--word", "bank", "--model", str(minilm_dir), "--json"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert matrix[1][2] > max(matrix[0][1], matrix[0][2])


@pytest.mark.parametrize("argv, message", [
    (["fill-mask", "no mask here"], "no [MASK] in the text"),
    (["fill-mask", "word " * 100 + "[MASK]"], "the model reads at most 64"),
    (["fill-mask", "[MASK]", "--top-k", "0"], "top_k must be at least 1"),
    (["nsp", "", "B"], "the first sentence is empty"),
])
def test_cli_bad_input_is_one_line_and_nonzero_exit(tiny_pretrained_dir, capsys, argv, message):
    assert main([*argv, "--model", str(tiny_pretrained_dir)]) == 1
    err = without_device_note(capsys.readouterr().err)
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_unknown_model_is_one_line_error_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bert", "fill-mask", "a [MASK]", "--model", "no-such-model-xyz"],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "not found" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def legacy_name(name: str) -> str:
    """The TF-era name of a BERT tensor (LayerNorm gamma/beta), as old checkpoints store it."""
    return name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")


def test_convert_writes_every_tensor_of_a_legacy_checkpoint_unchanged_and_logits_equal_transformers(
        tiny_pretrained_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    source = tmp_path / "legacy"
    source.mkdir()
    original = transformers.BertForPreTraining.from_pretrained(tiny_pretrained_dir)
    torch.manual_seed(1)
    with torch.no_grad():  # no tensor keeps its initial value (biases 0, LayerNorm weights 1), so none can pass by luck
        for parameter in original.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    legacy = {legacy_name(k): v for k, v in original.state_dict().items()}
    assert "bert.embeddings.LayerNorm.gamma" in legacy and "cls.predictions.decoder.weight" in legacy
    torch.save(legacy, source / "pytorch_model.bin")  # .bin, gamma/beta, the tied decoder stored twice
    shutil.copy(tiny_pretrained_dir / "config.json", source / "config.json")
    shutil.copy(tiny_pretrained_dir / "vocab.txt", source / "vocab.txt")
    assert main(["convert", str(source), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote BertForPreTraining to {tmp_path / 'out'}"
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in (tmp_path / "out").iterdir()}
    converted = bert.BertForPreTraining.from_pretrained(tmp_path / "out")
    assert converted.load_report.missing == [] and converted.load_report.unexpected == []

    # Every tensor written is the source's, bit for bit, under its current name; every source tensor is written,
    # except the two that are copies of written ones (the decoder tied to the word embeddings, its bias alias).
    written = load_file(tmp_path / "out" / "model.safetensors")
    for name, tensor in written.items():
        assert legacy_name(name) in legacy, f"{name} is not in the source checkpoint"
        original = legacy[legacy_name(name)]
        assert tensor.dtype == original.dtype and torch.equal(tensor, original), f"{name} differs from the source"
    copies = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
              "cls.predictions.decoder.bias": "cls.predictions.bias"}
    assert set(legacy) == {legacy_name(name) for name in written} | set(copies)
    for copy, kept in copies.items():
        assert torch.equal(legacy[copy], written[kept])

    # The converted model answers as transformers does on the source checkpoint (which it reads, gamma/beta and all).
    reference = transformers.BertForPreTraining.from_pretrained(source).eval()
    tokenizer = transformers.BertTokenizerFast.from_pretrained(tiny_pretrained_dir)
    batch = tokenizer(["The capital of France is [MASK].", "A short one."], ["It is Paris.", "Then a second."],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs, mine = reference(**batch), converted(**batch)
    real = batch["attention_mask"].bool()
    assert (mine.prediction_logits[real] - theirs.prediction_logits[real]).abs().max() <= 1e-5
    assert (mine.seq_relationship_logits - theirs.seq_relationship_logits).abs().max() <= 1e-5


# ---- published bert-base-uncased outputs (when the real weights are on this machine) ------------------------------

def bert_base_uncased_dir() -> Path | None:
    try:
        return resolve_model_dir("bert-base-uncased", allow_download=False)
    except bert.BertError:
        return None


needs_bert_base = pytest.mark.skipif(bert_base_uncased_dir() is None,
                                     reason="bert-base-uncased is not local (weights/ or HF cache); "
                                            "`bert download bert-base-uncased` where there is internet")


@needs_bert_base
def test_golden_bert_base_uncased_fills_paris():
    model, tokenizer = load(bert.BertForMaskedLM, bert_base_uncased_dir())
    assert fill_mask(model, tokenizer, "The capital of France is [MASK].")[0][0]["token_str"] == "paris"


@needs_bert_base
def test_golden_bert_base_uncased_nsp_logits():
    model, tokenizer = load(bert.BertForNextSentencePrediction, bert_base_uncased_dir())
    result = next_sentence(
        model, tokenizer,
        "Deliver huge imporvements to your machine learning pipelines without spending hours fine-tuning "
        "parameters!",
        "This book's practical case-studies reveal feature engineering techniques that upgrade your data "
        "wrangling-and optimization.")
    assert abs(result["logits"][0] - 6.0527) < 1e-3 and abs(result["logits"][1] - (-5.6015)) < 1e-3


# ---- the bundled demo model: the fallback when bert-base-uncased cannot be had ------------------------------------

def test_default_model_falls_back_to_the_bundled_demo_model_with_a_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # no bert-base-uncased anywhere, offline
    assert main(["fill-mask", "The capital of France is [MASK].", "--json"]) == 0
    captured = capsys.readouterr()
    assert "bundled demo model" in captured.err and "bert-demo" in captured.err
    candidates = json.loads(captured.out)[0]
    assert len(candidates) == 5 and all(c["token_str"] for c in candidates)
    assert main(["nsp", "The man went to the store.", "He bought a gallon of milk."]) == 0
    assert "P(B follows A)" in capsys.readouterr().out


def test_demo_model_is_small_licensed_and_documented():
    from bert.inference.pipelines import DEMO_MODEL

    assert (DEMO_MODEL / "model.safetensors").stat().st_size <= 50 * 1000 * 1000
    card = (DEMO_MODEL / "README.md").read_text()
    assert "MLM accuracy" in card and "scripts/pretrain_demo_model.sh" in card
    assert "all-MiniLM-L6-v2" in card and "Apache License 2.0" in card
    assert "Apache License" in (DEMO_MODEL / "LICENSE").read_text()
    model, tokenizer = load(bert.BertForPreTraining, DEMO_MODEL)
    assert tokenizer.vocab_size == model.config.vocab_size == 30522
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384


def test_demo_model_answers_the_lessons_sentences_sensibly():
    """The examples the README, the lessons and the explorer show."""
    from bert.inference.pipelines import DEMO_MODEL

    model, tokenizer = load(bert.BertForMaskedLM, DEMO_MODEL)
    capital = [c["token_str"] for c in fill_mask(model, tokenizer, "The capital of France is [MASK].", top_k=50)[0]]
    assert "paris" in capital[:5], capital  # second, behind france
    cat = [c["token_str"] for c in fill_mask(model, tokenizer, "The cat sat on the [MASK].", top_k=5)[0]]
    assert {"floor", "bed", "mat", "ground", "couch", "table", "chair", "sofa", "grass", "porch"} & set(cat), cat
    nsp_model, _ = load(bert.BertForNextSentencePrediction, DEMO_MODEL)
    follows = next_sentence(nsp_model, tokenizer, "The man went to the store.", "He bought a gallon of milk.")
    unrelated = next_sentence(nsp_model, tokenizer, "The man went to the store.", "Penguins are flightless birds.")
    assert follows["is_next"] > 0.5 > 0.1 > unrelated["is_next"]  # 0.80 and 0.05


# ---- sentence vectors: encode, in sentence-transformers' shape ------------------------------------------------------

def test_encode_gives_float32_cpu_rows_of_length_one_when_normalized_whatever_the_batch_size(minilm_dir):
    texts = ["A man is eating food.", "", "Someone is having a meal in a small restaurant by the sea.", "Hi."]
    model, tokenizer = load(bert.BertModel, minilm_dir)
    vectors = encode(model, tokenizer, texts)
    assert vectors.shape == (4, 384) and vectors.dtype == torch.float32 and vectors.device.type == "cpu"
    for batch_size in (1, 3):  # padding and batch composition change nothing
        torch.testing.assert_close(encode(model, tokenizer, texts, batch_size=batch_size), vectors, atol=1e-5,
                                   rtol=0)
    unit = encode(model, tokenizer, texts, normalize=True, batch_size=2)
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(unit, torch.nn.functional.normalize(vectors, dim=-1), atol=1e-5, rtol=0)
    assert encode(model, tokenizer, texts[0]).shape == (1, 384)  # a string is one text
    with pytest.raises(bert.BertError, match="no texts to embed"):
        encode(model, tokenizer, [])
    with pytest.raises(bert.BertError, match="the texts to embed must be strings"):
        encode(model, tokenizer, ["a", None])


def test_a_model_cast_to_bfloat16_as_on_a_gpu_answers_in_float32(tiny_pretrained_dir):
    """fill_mask, next_sentence and encode on a model cast whole (what --bf16 / --fp16 do on a GPU; bfloat16 runs
    on this CPU too): scores and vectors come back as float32, close to the float32 model's."""
    texts = ["A man is eating food.", "Someone is having a meal."]
    model, tokenizer = load(bert.BertForPreTraining, tiny_pretrained_dir)
    cast = bert.BertForPreTraining.from_pretrained(tiny_pretrained_dir).to(torch.bfloat16)
    for pooling in ("mean", "cls", "pooler"):
        vectors = encode(cast, tokenizer, texts, pooling=pooling)
        assert vectors.dtype == torch.float32
        torch.testing.assert_close(vectors, encode(model, tokenizer, texts, pooling=pooling), atol=0.05, rtol=0.05)
    text = "The capital of France is [MASK]."
    [candidates] = fill_mask(cast, tokenizer, text, top_k=3)
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = cast(**batch).prediction_logits[0, batch["input_ids"][0].tolist().index(tokenizer.mask_token_id)]
    scores, ids = logits.float().softmax(-1).topk(3)  # the softmax in float32, not in the model's bfloat16
    assert [c["token"] for c in candidates] == ids.tolist()
    assert [c["score"] for c in candidates] == pytest.approx(scores.tolist(), rel=1e-5)
    answer = next_sentence(cast, tokenizer, "It rained.", "The streets were wet.")
    assert answer["is_next"] == pytest.approx(next_sentence(model, tokenizer, "It rained.", "The streets were wet.")[
        "is_next"], abs=0.02)


def test_encode_shows_a_progress_bar_when_asked_and_by_default_on_a_terminal_for_more_than_one_batch(
        tiny_pretrained_dir, capsys, monkeypatch):
    model, tokenizer = load(bert.BertModel, tiny_pretrained_dir)
    texts = [f"text number {i}" for i in range(5)]
    encode(model, tokenizer, texts, batch_size=2, progress=True)
    assert "embedding" in capsys.readouterr().err
    encode(model, tokenizer, texts, batch_size=2)  # stderr is no terminal under pytest
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    encode(model, tokenizer, texts, batch_size=2)
    assert "embedding" in capsys.readouterr().err
    encode(model, tokenizer, texts, batch_size=5)
    assert capsys.readouterr().err == ""


# ---- devices and precisions -----------------------------------------------------------------------------------------

@pytest.fixture
def cpu_only_machine(monkeypatch):
    """This machine as one without CUDA or Apple's mps (so the errors below read the same on any test machine)."""
    import bert.devices

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bert.devices, "_mps_available", lambda: False)


INFERENCE_COMMANDS = [["fill-mask", "a [MASK]."], ["nsp", "A.", "B."], ["embed", "a"], ["similarity", "a", "b"],
                      ["attention", "a b", "--out", "{tmp}/a.png"], ["serve", "--port", "0"],
                      ["predict", "classify", "--text", "a"]]


@pytest.mark.parametrize("device, message", [
    ("cuda", "--device cuda: torch sees no CUDA GPU here"),
    ("cuda:1", "--device cuda:1: torch sees no CUDA GPU here"),
    ("mps", "--device mps: Apple's mps backend is not available here; use --device cpu"),
    ("tpu", "unknown device 'tpu': use auto"),
])
def test_a_device_this_machine_lacks_is_a_one_line_error_in_python_and_on_every_inference_command(
        cpu_only_machine, tiny_pretrained_dir, tmp_path, capsys, device, message):
    with pytest.raises(bert.BertError, match=message):
        load(bert.BertModel, tiny_pretrained_dir, device=device)
    for argv in INFERENCE_COMMANDS:
        argv = [arg.format(tmp=tmp_path) for arg in argv]
        assert main([*argv, "--model", str(tiny_pretrained_dir), "--device", device]) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(f"bert {argv[0]}: error: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize("precision, device, message", [
    ("fp16", "cpu", "--fp16 is for CUDA GPUs"),
    ("int8", "cuda", "--int8 runs on the CPU only (oneDNN's int8 kernels), not on cuda"),
    ("int8", "mps", "--int8 runs on the CPU only"),
    ("bf16", "mps", "--bf16 on mps: this device runs float32 only here"),
    ("fp16", "mps", "--fp16 on mps: this device runs float32 only here"),
])
def test_a_precision_the_device_cannot_run_is_refused_in_one_line(precision, device, message):
    from bert.precision import check_precision

    with pytest.raises(bert.BertError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_precision(precision, torch.device(device))
    for fine in (("float32", "cpu"), ("int8", "cpu"), ("bf16", "cpu"), ("float32", "cuda"), ("fp16", "cuda"),
                 ("bf16", "cuda"), ("float32", "mps")):
        check_precision(fine[0], torch.device(fine[1]))  # no error


def test_fp16_on_the_cpu_is_refused_before_the_model_loads(capsys):
    assert main(["fill-mask", "a [MASK].", "--model", "no-such-model-xyz", "--device", "cpu", "--fp16"]) == 1
    assert capsys.readouterr().err == ("bert fill-mask: error: --fp16 is for CUDA GPUs: a CPU emulates float16 "
                                       "matmuls (slower than float32); on the CPU use --bf16 or --int8\n")


def test_python_loads_on_the_cpu_by_default_and_a_model_readied_for_cpu_kernels_refuses_a_gpu(
        tiny_pretrained_dir, monkeypatch):
    from bert.inference.pipelines import move_model

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as if there were a GPU: pick_device passes
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert next(load(bert.BertModel, tiny_pretrained_dir)[0].parameters()).device.type == "cpu"
    model, tokenizer = load(bert.BertModel, tiny_pretrained_dir, precision="int8")
    with pytest.raises(bert.BertError, match="this model runs CPU-only layers .* cannot move to cuda:0"):
        move_model(model, "cuda")
    with pytest.raises(bert.BertError, match="cannot move to cuda:0"):
        encode(model, tokenizer, ["a"], device="cuda")  # encode(device=) moves the model, as sentence-transformers
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.parametrize("precision, dtype", [("float32", torch.float32), ("fp16", torch.float16),
                                              ("bf16", torch.bfloat16)])
def test_off_the_cpu_a_precision_casts_the_whole_model_and_swaps_no_layer(tiny_pretrained_dir, monkeypatch,
                                                                          precision, dtype):
    """The GPU branch of set_precision, run on the meta device (no GPU here): check_precision stands aside as it
    does for cuda, and every weight takes the dtype, with no CPU layer swapped in."""
    import bert.precision

    monkeypatch.setattr(bert.precision, "check_precision", lambda precision, device: None)
    model = bert.BertForMaskedLM.from_pretrained(tiny_pretrained_dir).to("meta")
    ready = bert.precision.set_precision(model, precision)
    assert ready is model and {p.dtype for p in model.parameters()} == {dtype}
    assert not bert.precision.runs_on_cpu_only(model)
    assert bert.precision.precision_of(model) == {"fp16": "float16", "bf16": "bfloat16"}.get(precision, "float32")


@pytest.mark.parametrize("flags, shown", [([], "float32"), (["--int8"], "int8"), (["--bf16"], "bfloat16")])
def test_inference_commands_say_device_and_precision_in_one_stderr_line_and_keep_stdout(
        cpu_only_machine, tiny_pretrained_dir, tmp_path, capsys, flags, shown):
    for argv in INFERENCE_COMMANDS[:4]:
        assert main([*argv, "--model", str(tiny_pretrained_dir), "--json", *flags]) == 0
        captured = capsys.readouterr()
        assert f"bert {argv[0]}: device cpu, {shown}" in captured.err.splitlines()  # --device auto: the CPU here
        json.loads(captured.out)  # stdout is the JSON alone
    if not flags:
        out = tmp_path / "a.png"
        argv = ["attention", "a b", "--out", str(out), "--model", str(tiny_pretrained_dir), "--device", "cpu"]
        assert main(argv) == 0
        assert capsys.readouterr().err == "bert attention: device cpu, float32\n"
