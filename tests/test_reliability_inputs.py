"""Text that users type: empty, blank, without or with hundreds of [MASK]s, longer than the model, full of control
characters, mixed scripts or megabyte words, and ten thousand texts at once, through the Python API and the CLI.

The rule for too-long input, the same for fill-mask, nsp and embed: cut to the model's positions with a warning
(``truncate=True``, ``--truncate``, the default), or refuse (``truncate=False``, ``--no-truncate``). Fill-mask also
refuses when cutting would drop a [MASK], since nothing could be predicted for it."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import pytest
import torch
from support import make_tiny_model, without_device_note

import bert
from bert.cli import main
from bert.inference.pipelines import encode, fill_mask, load, next_sentence, word_vector

POSITIONS = 128
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
        "max_position_embeddings": POSITIONS}
STRANGE_TEXTS = {
    "control-characters": "a\x00b\x01c\x07 \x1b[31mred\x1b[0m \x7f\u200b\u200d\ufeff end",
    "mixed-scripts": "Ελληνικά русский 中文 日本語 한국어 عربى हिन्दी emoji 😀🎉 café",
    "megabyte-word": "x" * (1 << 20),
    "many-words-over-the-limit": "word " * 5000,
    "only-punctuation": "!?.,;:()[]{}" * 10,
    "only-unknown-characters": "\U0001f9ff\U0001fa90" * 5,
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A random BertForPreTraining (hidden 32) with the bert-base-uncased tokenizer files."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny"), max_positions=POSITIONS)


@pytest.fixture(scope="module")
def pretraining(tiny_dir):
    return load(bert.BertForPreTraining, tiny_dir)


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, without_device_note(captured.err)


def one_line_error(code: int, err: str, fragment: str) -> bool:
    return code == 1 and err.count("\n") == 1 and fragment in err and "Traceback" not in err


def finite(candidates: list[list[dict]]) -> bool:
    return all(math.isfinite(c["score"]) for row in candidates for c in row)


# ---- fill-mask ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \t\n  ", "no mask in this text"])
def test_fill_mask_without_a_mask_says_where_to_write_one(pretraining, tiny_dir, capsys, text):
    model, tokenizer = pretraining
    with pytest.raises(bert.BertError, match=r"no \[MASK\] in the text: write \[MASK\] where a word"):
        fill_mask(model, tokenizer, text)
    code, _, err = cli(["fill-mask", text, "--model", str(tiny_dir)], capsys)
    assert one_line_error(code, err, "no [MASK] in the text")


def test_fill_mask_points_out_a_lower_case_mask(pretraining):
    model, tokenizer = pretraining
    with pytest.raises(bert.BertError, match=r"\[MASK\] is written in capitals"):
        fill_mask(model, tokenizer, "The [mask] sat on the mat.")


def test_fill_mask_answers_every_one_of_a_hundred_masks(pretraining, tiny_dir, capsys):
    model, tokenizer = pretraining
    predictions = fill_mask(model, tokenizer, "[MASK] " * 100, top_k=2)
    assert len(predictions) == 100 and all(len(p) == 2 for p in predictions) and finite(predictions)
    code, out, _ = cli(["fill-mask", "[MASK]" * 100, "--model", str(tiny_dir), "--json", "--top-k", "1"], capsys)
    assert code == 0 and len(json.loads(out)) == 100


def test_fill_mask_refuses_to_cut_off_masks_even_when_truncating(pretraining, tiny_dir, capsys):
    model, tokenizer = pretraining
    with pytest.raises(bert.BertError, match=r"would cut off 174 of its 300 \[MASK\] tokens"):
        fill_mask(model, tokenizer, "[MASK] " * 300)
    code, _, err = cli(["fill-mask", "word " * 200 + "[MASK]", "--model", str(tiny_dir)], capsys)
    assert one_line_error(code, err, f"the model reads at most {POSITIONS}, and truncating it would cut off 1")


def test_fill_mask_truncates_a_long_tail_with_a_warning_or_refuses_with_no_truncate(pretraining, tiny_dir, capsys):
    model, tokenizer = pretraining
    text = "The [MASK] sat on the mat. " + "And then it slept for a long time. " * 40
    with pytest.warns(UserWarning, match=rf"tokens long; truncated to the model's {POSITIONS}"):
        predictions = fill_mask(model, tokenizer, text)
    assert len(predictions) == 1 and finite(predictions)
    with pytest.raises(bert.BertError, match=rf"reads at most {POSITIONS}; shorten the text, or allow truncation"):
        fill_mask(model, tokenizer, text, truncate=False)

    code, out, err = cli(["fill-mask", text, "--model", str(tiny_dir), "--json"], capsys)
    assert code == 0 and len(json.loads(out)) == 1
    assert err.startswith("bert fill-mask: warning: ") and err.count("\n") == 1  # one line, not Python's format
    code, _, err = cli(["fill-mask", text, "--model", str(tiny_dir), "--no-truncate"], capsys)
    assert one_line_error(code, err, "or allow truncation")


@pytest.mark.parametrize("kind", sorted(STRANGE_TEXTS))
def test_fill_mask_survives_strange_text(pretraining, kind):
    model, tokenizer = pretraining
    text = STRANGE_TEXTS[kind][:200] + " [MASK] " + STRANGE_TEXTS[kind][:3000]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the long ones are truncated, with a warning
        predictions = fill_mask(model, tokenizer, text, top_k=3)
    assert len(predictions) == 1 and finite(predictions)


# ---- next sentence ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, which", [("", "B.", "first"), ("   ", "B.", "first"), ("A.", "\n\t ", "second")])
def test_nsp_with_an_empty_or_blank_sentence_names_it(pretraining, tiny_dir, capsys, a, b, which):
    model, tokenizer = pretraining
    with pytest.raises(bert.BertError, match=f"the {which} sentence is empty"):
        next_sentence(model, tokenizer, a, b)
    code, _, err = cli(["nsp", a, b, "--model", str(tiny_dir)], capsys)
    assert one_line_error(code, err, f"the {which} sentence is empty")


def test_nsp_truncates_a_long_pair_from_the_longer_sentence_or_refuses(pretraining, tiny_dir, capsys):
    model, tokenizer = pretraining
    a, b = "It rained all night. " * 40, "The streets were wet."
    with pytest.warns(UserWarning, match="truncated"):
        result = next_sentence(model, tokenizer, a, b)
    assert abs(result["is_next"] + result["not_next"] - 1) < 1e-6
    # BERT's rule cut the long first sentence only: the result is that of the pair with A cut to fit.
    a_ids = tokenizer(a, add_special_tokens=False)["input_ids"]
    b_ids = tokenizer(b, add_special_tokens=False)["input_ids"]
    kept = tokenizer.decode(a_ids[: POSITIONS - 3 - len(b_ids)])
    assert result["logits"] == pytest.approx(next_sentence(model, tokenizer, kept, b)["logits"], abs=1e-5)
    with pytest.raises(bert.BertError, match="or allow truncation"):
        next_sentence(model, tokenizer, a, b, truncate=False)
    code, out, err = cli(["nsp", a, b, "--model", str(tiny_dir), "--json"], capsys)
    assert code == 0 and set(json.loads(out)) == {"is_next", "not_next", "logits"}
    assert err.startswith("bert nsp: warning: ") and err.count("\n") == 1
    code, _, err = cli(["nsp", a, b, "--model", str(tiny_dir), "--no-truncate"], capsys)
    assert one_line_error(code, err, "or allow truncation")


@pytest.mark.parametrize("kind", sorted(STRANGE_TEXTS))
def test_nsp_survives_strange_text(pretraining, kind):
    model, tokenizer = pretraining
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = next_sentence(model, tokenizer, STRANGE_TEXTS[kind], "A plain second sentence.")
    assert math.isfinite(result["is_next"]) and 0 <= result["is_next"] <= 1


# ---- embeddings ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def encoder(tiny_dir):
    return load(bert.BertModel, tiny_dir)


def test_empty_and_blank_texts_embed_as_cls_sep(encoder):
    model, tokenizer = encoder
    vectors = encode(model, tokenizer, ["", "   \t ", "\x00\u200b"])
    assert torch.isfinite(vectors).all()
    assert torch.allclose(vectors[0], vectors[1]) and torch.allclose(vectors[0], vectors[2])


def test_a_single_string_is_one_text_not_a_list_of_characters(encoder):
    model, tokenizer = encoder
    text = "a sentence that is longer than one batch of thirty-two characters"
    single = encode(model, tokenizer, text)
    assert single.shape == (1, 32)
    assert torch.allclose(single, encode(model, tokenizer, [text]), atol=1e-6)


@pytest.mark.parametrize("kind", sorted(STRANGE_TEXTS))
def test_embeddings_survive_strange_text(encoder, kind):
    model, tokenizer = encoder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vectors = encode(model, tokenizer, [STRANGE_TEXTS[kind], "plain"])
    assert vectors.shape == (2, 32) and torch.isfinite(vectors).all()


def test_embeddings_truncate_with_a_warning_or_refuse(encoder, tiny_dir, capsys):
    model, tokenizer = encoder
    long = "many words here " * 100
    with pytest.warns(UserWarning, match="truncated"):
        encode(model, tokenizer, [long, "short"])
    with pytest.raises(bert.BertError, match="or allow truncation"):
        encode(model, tokenizer, [long, "short"], truncate=False)
    code, out, err = cli(["embed", long, "short", "--model", str(tiny_dir), "--json"], capsys)
    assert code == 0 and len(json.loads(out)) == 2 and err.startswith("bert embed: warning: ")
    code, _, err = cli(["embed", long, "--model", str(tiny_dir), "--no-truncate"], capsys)
    assert one_line_error(code, err, "or allow truncation")


def test_ten_thousand_texts_stream_through_the_model_in_batches(encoder, monkeypatch):
    model, tokenizer = encoder
    texts = [f"short text number {i} about {'cats' if i % 2 else 'dogs'}" for i in range(10_000)]
    batch_sizes = []
    forward = type(model).forward

    def recording_forward(self, *args, **kwargs):
        batch_sizes.append(kwargs["input_ids"].shape[0])
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", recording_forward)
    start = time.perf_counter()
    vectors = encode(model, tokenizer, texts, batch_size=64)
    seconds = time.perf_counter() - start
    monkeypatch.undo()
    assert vectors.shape == (10_000, 32) and torch.isfinite(vectors).all()
    assert max(batch_sizes) == 64 and len(batch_sizes) == math.ceil(10_000 / 64)  # never more than one batch held
    assert seconds < 60, seconds  # about 2 s on one core
    for i in (0, 4_999, 9_999):  # batching and padding change nothing
        assert torch.allclose(vectors[i], encode(model, tokenizer, [texts[i]])[0], atol=1e-5)


@pytest.mark.parametrize("batch_size", [0, -3, 2.5])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(encoder, batch_size):
    model, tokenizer = encoder
    with pytest.raises(bert.BertError, match="batch_size must be a positive integer"):
        encode(model, tokenizer, ["a", "b"], batch_size=batch_size)


def test_cli_embed_runs_batch_size_texts_per_forward_pass_and_32_by_default(tiny_dir, capsys, monkeypatch):
    """docs/guides/inference.md: "`bert embed` runs `--batch-size` texts at a time (default 32)": the batch sizes that
    reach the encoder's forward are recorded."""
    batch_sizes = []
    forward = bert.BertModel.forward

    def recording_forward(self, input_ids=None, *args, **kwargs):
        batch_sizes.append(input_ids.shape[0])
        return forward(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(bert.BertModel, "forward", recording_forward)
    code, out, _ = cli(["embed", *[f"text {i}" for i in range(7)], "--model", str(tiny_dir), "--batch-size", "3",
                        "--json"], capsys)
    assert code == 0 and len(json.loads(out)) == 7
    assert batch_sizes == [3, 3, 1]
    batch_sizes.clear()
    code, out, _ = cli(["embed", *[f"text number {i}" for i in range(40)], "--model", str(tiny_dir), "--json"], capsys)
    assert code == 0 and len(json.loads(out)) == 40
    assert batch_sizes == [32, 8]
    monkeypatch.undo()
    code, _, err = cli(["embed", "x", "--model", str(tiny_dir), "--batch-size", "0"], capsys)
    assert one_line_error(code, err, "batch_size must be a positive integer")


def test_word_vector_of_a_word_without_tokens_is_an_error_not_nan(encoder):
    model, tokenizer = encoder
    for word in ("", "   ", "\x00"):
        with pytest.raises(bert.BertError, match="has no tokens"):
            word_vector(model, tokenizer, "the river bank", word)
