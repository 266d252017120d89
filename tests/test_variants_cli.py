"""The CLI picks the model and tokenizer classes from config.json's model_type (bert.variants.auto_class /
auto_tokenizer): fill-mask with each model's own mask token, embed and info on tiny RoBERTa, ALBERT and DistilBERT
checkpoints that transformers saves with their own kind of tokenizer; `bert info --config` gives the published
parameter counts without a download."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from support import make_tiny_variant, without_device_note
from test_released_configs import PUBLISHED_CONFIG_JSON

import bert
from bert.cli import main
from bert.inference.pipelines import fill_mask, load
from bert.variants.auto import auto_class, auto_tokenizer, released_config
from bert.variants.tokenizers import AlbertTokenizer, DistilBertTokenizer, RobertaTokenizer

VARIANTS = ("roberta", "albert", "distilbert")
PREFIXES = {"roberta": "Roberta", "albert": "Albert", "distilbert": "DistilBert"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """variant → (a tiny MaskedLM checkpoint folder with its tokenizer, transformers' tokenizer for it)."""
    made = {}
    for variant in VARIANTS:
        folder = tmp_path_factory.mktemp(variant)
        made[variant] = folder, make_tiny_variant(folder, variant)
    return made


def test_auto_class_and_auto_tokenizer_follow_model_type(checkpoints):
    expected_tokenizers = {"roberta": RobertaTokenizer, "albert": AlbertTokenizer, "distilbert": DistilBertTokenizer}
    for variant, (folder, _) in checkpoints.items():
        assert auto_class(folder, "masked_lm") is getattr(bert, PREFIXES[variant] + "ForMaskedLM")
        assert auto_class(folder, "base") is getattr(bert, PREFIXES[variant] + "Model")
        assert type(auto_tokenizer(folder)) is expected_tokenizers[variant]
    assert auto_class({"model_type": "albert"}, "pretraining") is bert.AlbertForPreTraining
    assert auto_class({}, "question_answering") is bert.BertForQuestionAnswering  # no model_type: the original BERT
    with pytest.raises(bert.BertError, match="RoBERTa has no pretraining model.*it has: base, masked_lm"):
        auto_class({"model_type": "roberta"}, "pretraining")
    with pytest.raises(bert.BertError, match="unknown head 'mlm'"):
        auto_class({"model_type": "bert"}, "mlm")


@pytest.mark.parametrize("variant", VARIANTS)
def test_fill_mask_uses_the_models_own_mask_token_and_matches_transformers(checkpoints, variant, capsys):
    folder, reference_tokenizer = checkpoints[variant]
    text = f"The capital of France is {reference_tokenizer.mask_token}."
    assert main(["fill-mask", text, "--model", str(folder), "--json", "--top-k", "3"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    reference = getattr(transformers, PREFIXES[variant] + "ForMaskedLM").from_pretrained(folder).eval()
    batch = reference_tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = reference(**batch).logits[0]
    position = (batch["input_ids"][0] == reference_tokenizer.mask_token_id).nonzero().item()
    scores, ids = logits[position].softmax(-1).topk(3)
    assert len(predictions) == 1 and [c["token"] for c in predictions[0]] == ids.tolist()
    assert max(abs(c["score"] - s) for c, s in zip(predictions[0], scores.tolist(), strict=True)) < 1e-5
    # token: the id; token_str: its text as transformers' pipeline gives it (RoBERTa's " paris" with its space).
    assert [c["token_str"] for c in predictions[0]] == [reference_tokenizer.decode([i]) for i in ids.tolist()]
    assert main(["fill-mask", text, "--model", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"{reference_tokenizer.mask_token}:\n")

    # The Python API against transformers' fill-mask pipeline on the same checkpoint: 50 candidates, so that
    # RoBERTa's byte-level pieces with their leading space ("Ġparis" → " paris") are among them.
    model, tokenizer = load("masked_lm", folder)
    [ours] = fill_mask(model, tokenizer, text, top_k=50)
    theirs = transformers.pipeline("fill-mask", model=reference, tokenizer=reference_tokenizer, device="cpu")(
        text, top_k=50)
    for key in ("token", "token_str", "sequence"):
        assert [c[key] for c in ours] == [c[key] for c in theirs], key
    assert [c["score"] for c in ours] == pytest.approx([c["score"] for c in theirs], abs=1e-5)
    assert variant != "roberta" or any(c["token_str"].startswith(" ") for c in ours)


def test_fill_mask_without_the_models_mask_token_names_it(checkpoints, capsys):
    folder, _ = checkpoints["roberta"]
    assert main(["fill-mask", "The capital of France is [MASK].", "--model", str(folder)]) == 1
    err = without_device_note(capsys.readouterr().err)
    assert "no <mask> in the text" in err and "e.g. 'The capital of France is <mask>.'" in err
    assert err.count("\n") == 1
    assert main(["fill-mask", "The capital of France is <MASK>.", "--model", str(folder)]) == 1
    assert "(<mask> is written in lower case)" in capsys.readouterr().err


@pytest.mark.parametrize("variant", VARIANTS)
def test_embed_and_info_load_each_model_type(checkpoints, variant, capsys):
    folder, reference_tokenizer = checkpoints[variant]
    texts = ["A man is eating food.", "Café 😀 東京"]
    assert main(["embed", *texts, "--model", str(folder), "--json"]) == 0
    ours = torch.tensor(json.loads(capsys.readouterr().out))
    reference = getattr(transformers, PREFIXES[variant] + "Model").from_pretrained(folder).eval()
    batch = reference_tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = reference(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    assert (ours - (hidden * mask).sum(1) / mask.sum(1)).abs().max() < 1e-5

    assert main(["info", "--model", str(folder)]) == 0
    out = capsys.readouterr().out
    name = {"roberta": "RoBERTa", "albert": "ALBERT", "distilbert": "DistilBERT"}[variant]
    assert f"({name})" in out and f"{reference.num_parameters():,}" in out.splitlines()[-1]


def test_unsupported_model_type_is_a_one_line_error_naming_the_supported_ones(checkpoints, tmp_path, capsys):
    folder, _ = checkpoints["roberta"]
    for file in folder.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    for argv in (["fill-mask", "a <mask>"], ["embed", "a"], ["info"]):
        assert main([*argv, "--model", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert "model_type 'gpt2' is not supported" in err and "'bert', 'roberta', 'albert', 'distilbert'" in err
        assert err.count("\n") == 1



# Tensors of a variant's MaskedLM state dict that the converted file leaves out because they are copies of others:
# the decoder tied to the word embeddings, and the decoder's bias (RoBERTa, ALBERT) that is the head's own bias.
TIED_COPIES = {
    "roberta": {"lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight",
                "lm_head.decoder.bias": "lm_head.bias"},
    "albert": {"predictions.decoder.weight": "albert.embeddings.word_embeddings.weight",
               "predictions.decoder.bias": "predictions.bias"},
    "distilbert": {"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_convert_rewrites_a_variants_bin_checkpoint_as_safetensors_with_every_tensor_and_transformers_logits(
        checkpoints, variant, tmp_path, capsys):
    from safetensors.torch import load_file

    folder, reference_tokenizer = checkpoints[variant]
    reference = getattr(transformers, PREFIXES[variant] + "ForMaskedLM").from_pretrained(folder).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # no tensor keeps its initial value (biases 0, LayerNorm weights 1), so none can pass by luck
        for parameter in reference.parameters():  # tied ones once: they stay tied
            parameter.add_(0.05 * torch.randn_like(parameter))
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    source_state = reference.state_dict()
    torch.save(source_state, legacy / "pytorch_model.bin")  # the pre-safetensors format
    reference.config.save_pretrained(legacy)
    reference_tokenizer.save_pretrained(legacy)
    assert main(["convert", str(legacy), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {PREFIXES[variant]}ForMaskedLM to {tmp_path / 'out'}"
    assert (tmp_path / "out" / "model.safetensors").is_file()

    # Every tensor written is the source's, bit for bit; every source tensor is written, or is a tied copy of one.
    written = load_file(tmp_path / "out" / "model.safetensors")
    for name, tensor in written.items():
        assert name in source_state, f"{name} is not in the source checkpoint"
        assert tensor.dtype == source_state[name].dtype and torch.equal(tensor, source_state[name]), name
    assert set(source_state) == set(written) | set(TIED_COPIES[variant])
    for copy, kept in TIED_COPIES[variant].items():
        assert torch.equal(source_state[copy], written[kept])

    text = f"The capital of France is {reference_tokenizer.mask_token}."
    assert main(["fill-mask", text, "--model", str(tmp_path / "out"), "--json", "--top-k", "3"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    batch = reference_tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = reference(**batch).logits[0]
    position = (batch["input_ids"][0] == reference_tokenizer.mask_token_id).nonzero().item()
    assert [c["token"] for c in predictions[0]] == logits[position].topk(3).indices.tolist()

    # The converted checkpoint's logits, in our class and in transformers', equal transformers' on the source.
    texts = [text, "Café 😀 東京, a second and longer line of text."]
    batch = reference_tokenizer(texts, padding=True, return_tensors="pt")
    real = batch["attention_mask"].bool()
    converted = auto_class(tmp_path / "out", "masked_lm").from_pretrained(tmp_path / "out")
    assert converted.load_report.missing == [] and converted.load_report.unexpected == []
    reloaded = getattr(transformers, PREFIXES[variant] + "ForMaskedLM").from_pretrained(tmp_path / "out").eval()
    with torch.no_grad():
        expected = reference(**batch).logits
        for model in (converted, reloaded):
            assert (model(**batch).logits[real] - expected[real]).abs().max() <= 1e-5


PUBLISHED = {"bert-base-uncased": (transformers.BertConfig, transformers.BertModel, 110),
             "roberta-base": (transformers.RobertaConfig, transformers.RobertaModel, 125),
             "albert-base-v2": (transformers.AlbertConfig, transformers.AlbertModel, 12),
             "distilbert-base-uncased": (transformers.DistilBertConfig, transformers.DistilBertModel, 66)}


@pytest.mark.parametrize("name", PUBLISHED)
def test_info_config_totals_equal_transformers_for_the_published_configs(name, capsys):
    config_class, model_class, published = PUBLISHED[name]
    assert main(["info", "--config", name]) == 0
    out = capsys.readouterr().out.splitlines()
    total = int(out[-1].split()[-1].replace(",", ""))
    reference_config = config_class.from_dict(PUBLISHED_CONFIG_JSON[name])  # the published file, not our copy
    with torch.device("meta"):  # sizes only
        reference = model_class(reference_config)
    assert total == reference.num_parameters()
    assert abs(total / 1e6 - published) < 1  # the papers' rounded millions
    ours = released_config(name)
    assert (ours.num_hidden_layers, ours.hidden_size, ours.num_attention_heads) == (
        reference_config.num_hidden_layers if name != "distilbert-base-uncased" else reference_config.n_layers,
        reference_config.hidden_size, reference_config.num_attention_heads)
    assert out[1].startswith(f"layers {ours.num_hidden_layers}, hidden {ours.hidden_size}, heads 12")
    per_module = [int(line.split()[-1].replace(",", "")) for line in out[2:-1] if line.startswith("  ")]
    assert sum(per_module) == total


def test_info_config_unknown_name_lists_the_built_in_ones(capsys):
    assert main(["info", "--config", "gpt2"]) == 1
    assert "roberta-base" in capsys.readouterr().err
