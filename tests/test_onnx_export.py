"""ONNX export (bert/inference/onnx_export.py, `bert export-onnx`): every head and every variant runs in onnxruntime
with our outputs (to 1e-4) on batches of sizes and lengths other than the traced one; the file is one self-contained
graph with symbolic batch and length; a failed check, an int8 model, a folder as target and a missing onnx extra are
one-line errors that leave nothing behind."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from support import make_tiny_model, make_tiny_variant

from bert.cli import main
from bert.config import CLASS_PREFIXES
from bert.errors import BertError
from bert.inference.onnx_export import at_real_positions, export_onnx
from bert.inference.pipelines import DEMO_MODEL, load, model_inputs
from bert.precision import quantize
from bert.variants.auto import HEADS as HEAD_SUFFIXES
from bert.variants.auto import auto_class, class_named

TOLERANCE = 1e-4  # the bar for "outputs equal ours"


def run_in_onnxruntime(path: Path, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    feed = {i.name: batch[i.name].numpy() for i in session.get_inputs()}
    return dict(zip(names, session.run(names, feed), strict=True))


def ragged_batch(vocab_size: int, rows: int, length: int, seed: int, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """rows × length ids with every row of another real length (the first row full), two segments."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (rows, length), generator=generator)
    lengths = torch.linspace(length, max(2, length // 4), rows).long()
    mask = (torch.arange(length)[None] < lengths[:, None]).long()
    segments = (torch.arange(length)[None] >= (lengths[:, None] // 2)).long() * mask
    return {"input_ids": torch.where(mask.bool(), ids, pad_id), "attention_mask": mask, "token_type_ids": segments}


def assert_same_outputs(model: torch.nn.Module, path: Path, batch: dict[str, torch.Tensor]) -> None:
    theirs = run_in_onnxruntime(path, batch)
    inputs = {i.name for i in onnxruntime.InferenceSession(str(path)).get_inputs()}
    with torch.no_grad():
        ours = model(**{k: v for k, v in batch.items() if k in inputs})
    real = batch["attention_mask"].bool()
    # every tensor the model returns is a named output of the graph, and nothing else is (a dropped one fails)
    expected = {name for name, value in vars(ours).items() if isinstance(value, torch.Tensor) and name != "loss"}
    assert expected and set(theirs) == expected, (sorted(theirs), sorted(expected))
    for name, value in theirs.items():
        mine, other = getattr(ours, name), torch.from_numpy(value)
        assert other.shape == mine.shape, name
        torch.testing.assert_close(at_real_positions(name, other, real), at_real_positions(name, mine, real),
                                   atol=TOLERANCE, rtol=0, msg=name)


HEADS = ["base", "masked_lm", "pretraining", "next_sentence", "sequence_classification", "token_classification",
         "question_answering"]


@pytest.mark.parametrize("head", HEADS)
def test_every_bert_head_runs_in_onnxruntime_with_our_outputs(tmp_path: Path, head: str) -> None:
    folder = make_tiny_model(tmp_path / "model", num_labels=3)
    model = auto_class(folder, head).from_pretrained(folder).eval()
    report = export_onnx(model, tmp_path / "model.onnx")
    assert report.max_difference <= TOLERANCE
    for rows, length, seed in [(1, 5, 1), (4, 23, 2), (7, 64, 3)]:  # none is the traced 2 × 8
        assert_same_outputs(model, tmp_path / "model.onnx", ragged_batch(model.config.vocab_size, rows, length, seed))


def variant_heads() -> list:
    """(model type, head) for every head each variant has (RoBERTa and DistilBERT have no sentence heads)."""
    return [pytest.param(model_type, head, id=f"{model_type}-{head}")
            for model_type in ("roberta", "albert", "distilbert", "megatron-bert") for head in HEADS
            if class_named(model_type, CLASS_PREFIXES[model_type] + HEAD_SUFFIXES[head]) is not None]


@pytest.mark.parametrize(("model_type", "head"), variant_heads())
def test_every_variant_head_runs_in_onnxruntime_with_our_outputs(tmp_path: Path, model_type: str, head: str) -> None:
    """Every head of every variant, on batches of three sizes and lengths other than the traced one."""
    folder = tmp_path / "model"
    folder.mkdir()
    tokenizer = make_tiny_variant(folder, model_type)
    model = auto_class(folder, head).from_pretrained(folder).eval()
    report = export_onnx(model, tmp_path / "model.onnx")
    assert ("token_type_ids" in report.inputs) == (model_type != "distilbert")  # DistilBERT has no segments
    for rows, length, seed in [(1, 5, 1), (5, 30, 4), (7, 60, 3)]:
        batch = ragged_batch(len(tokenizer), rows, length, seed=seed, pad_id=tokenizer.pad_token_id)
        if model_type == "roberta":  # one segment type
            batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        assert_same_outputs(model, tmp_path / "model.onnx", batch)


def test_the_file_is_one_graph_with_symbolic_batch_and_length(tmp_path: Path) -> None:
    model = auto_class(make_tiny_model(tmp_path / "model"), "base").from_pretrained(tmp_path / "model")
    export_onnx(model, tmp_path / "model.onnx")
    graph = onnx.load(str(tmp_path / "model.onnx")).graph  # raises if weights were left in another file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.onnx"]  # no external data, no leftovers
    for value in list(graph.input) + [graph.output[0]]:
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_param, (value.name, dims)  # names, not numbers
    onnx.checker.check_model(onnx.load(str(tmp_path / "model.onnx")), full_check=True)


def test_the_demo_models_exported_mlm_head_fills_the_mask_as_ours(tmp_path: Path, capsys) -> None:
    assert main(["export-onnx", str(DEMO_MODEL), str(tmp_path / "demo.onnx"), "--head", "masked_lm"]) == 0
    assert "onnxruntime equals ours" in capsys.readouterr().out
    model, tokenizer = load("masked_lm", DEMO_MODEL)
    batch = model_inputs(tokenizer, model, ["The capital of France is [MASK].", "The cat sat on the [MASK] all day."])
    theirs = torch.from_numpy(run_in_onnxruntime(tmp_path / "demo.onnx", batch)["logits"])
    with torch.no_grad():
        ours = model(**batch).logits
    masked = batch["input_ids"] == tokenizer.mask_token_id
    assert theirs[masked].topk(5).indices.tolist() == ours[masked].topk(5).indices.tolist()
    torch.testing.assert_close(theirs[batch["attention_mask"].bool()], ours[batch["attention_mask"].bool()],
                               atol=TOLERANCE, rtol=0)


def test_a_graph_that_fails_the_check_is_not_left_behind(tmp_path: Path) -> None:
    model = auto_class(make_tiny_model(tmp_path / "model"), "base").from_pretrained(tmp_path / "model")
    with pytest.raises(BertError, match="differ from the model's by .* nothing was written"):
        export_onnx(model, tmp_path / "model.onnx", tolerance=-1.0)  # no difference passes
    assert not (tmp_path / "model.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nor a temporary file


def test_refusals_are_one_line_errors(tmp_path: Path, capsys, monkeypatch) -> None:
    folder = make_tiny_model(tmp_path / "model")
    assert main(["export-onnx", str(folder), str(tmp_path)]) == 1  # a folder, not a file
    assert capsys.readouterr().err.strip().endswith("is a folder: give the .onnx file to write")
    assert main(["export-onnx", str(folder), str(tmp_path / "m.onnx"), "--head", "qa"]) == 1
    assert "unknown head 'qa'; choose one of base, masked_lm" in capsys.readouterr().err
    with pytest.raises(BertError, match="export the float32 checkpoint"):
        export_onnx(quantize(auto_class(folder, "base").from_pretrained(folder)), tmp_path / "m.onnx")
    real_import = builtins.__import__

    def without_onnxscript(name, *args, **kwargs):  # noqa: ANN001, ANN202 - __import__'s signature
        if name == "onnxscript":
            raise ImportError("No module named 'onnxscript'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnxscript)
    assert main(["export-onnx", str(folder), str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'needs the onnxscript package: pip install -e ".[onnx]"' in err
    assert not (tmp_path / "m.onnx").exists()
