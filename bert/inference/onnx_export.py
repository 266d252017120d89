"""ONNX export of our own modules: :func:`export_onnx` writes one ``.onnx`` file that ONNX Runtime (or any ONNX
runtime) runs without Python, torch or this package, and checks it there before it counts as written.

How: ``torch.onnx.export`` with the dynamo exporter (``torch.export`` traces the forward pass as a graph; the
exporter translates each aten operation to ONNX through onnxscript), batch and length dynamic, weights inside the
file (one file to ship; BERT-sized models are far below ONNX's 2 GB limit). Two choices keep the graph one fixed
program:

* the padding skip is off in the export (:attr:`bert.model.BertModel.pack_padding`): packing gathers the real tokens
  into a tensor whose size depends on the mask's values, which a fixed graph would have to carry as data-dependent
  shapes; the exported model masks padding keys instead, as the plain path does. Real positions get the same values
  either way; padding positions are zeros in ours and ignorable values in the export.
* the graph's inputs are the model's own: ``input_ids``, ``attention_mask`` and, where the model reads them,
  ``token_type_ids`` (DistilBERT has none), all int64 [B, T]; its outputs are the output dataclass's tensors by
  name (``last_hidden_state`` and ``pooler_output`` for a bare encoder, ``logits``, ``start_logits`` ...).

The check: the exported file runs in onnxruntime on a batch of another size and length than the one traced (with a
padded row), and every output must equal the PyTorch model's at real positions to ``tolerance`` (1e-4 by default).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bert.atomic import write_file_atomically
from bert.errors import BertError
from bert.pretrained import PreTrainedModel

ONNX_EXTRA = 'pip install -e ".[onnx]" (onnx, onnxruntime, onnxscript)'
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SPAN_OUTPUTS = {"start_logits", "end_logits"}  # [B, T]; every other per-token output is [B, T, F]


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and measured: input and output names, the file size, and the largest absolute
    difference between onnxruntime's outputs and ours on the check batch (``check_shape`` [B, T])."""

    inputs: list[str]
    outputs: list[str]
    size_bytes: int
    max_difference: float
    check_shape: tuple[int, int]


class GraphInterface(nn.Module):
    """``model`` with positional int64 inputs [B, T] and a tuple of output tensors, the form an ONNX graph has (any
    model that takes these keyword arguments and returns an output with ``to_tuple()``: ours, or transformers')."""

    def __init__(self, model: PreTrainedModel, inputs: list[str]) -> None:
        super().__init__()
        self.model, self.inputs = model, inputs

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.model(**{name: given[name] for name in self.inputs}).to_tuple()


def require_onnx() -> None:
    """BertError naming the extra to install when onnx, onnxruntime or onnxscript is missing."""
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError as error:
            raise BertError(f"ONNX export needs the {module} package: {ONNX_EXTRA}") from error


def example_batch(model: PreTrainedModel, inputs: list[str], batch: int, length: int,
                  seed: int) -> dict[str, torch.Tensor]:
    """Random token ids [batch, length] (no special-token ids, which some variants treat apart), the last row padded
    after its first half; token types 0 then 1 when the model has two segment types."""
    generator = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    ids = torch.randint(min(1000, vocab // 2), vocab, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[-1, length // 2:] = 0
    segments = torch.zeros_like(ids)
    if getattr(model.config, "type_vocab_size", 1) > 1:
        segments[:, length // 2:] = 1
    pad_id = getattr(model.config, "pad_token_id", 0) or 0
    ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad_id))
    values = {"input_ids": ids, "attention_mask": mask, "token_type_ids": segments}
    return {name: values[name] for name in inputs}


def export_onnx(model: PreTrainedModel, path: str | os.PathLike, tolerance: float = 1e-4) -> ExportReport:
    """Write ``model`` (any head, any variant; float32, eval mode) to the ONNX file ``path`` with dynamic batch and
    length, run it in onnxruntime on a [3, 11] batch and compare with ``model``: BertError if any output differs by
    more than ``tolerance`` (nothing is written then), else the :class:`ExportReport`. The file appears whole or not
    at all (written under a temporary name, then renamed)."""
    require_onnx()
    if model.config.extra.get("quantization") == "int8":
        raise BertError("this model's encoder is int8 (bert quantize): export the float32 checkpoint; ONNX Runtime "
                        "quantizes a graph itself (onnxruntime.quantization.quantize_dynamic)")
    path = Path(path)
    if path.is_dir():
        raise BertError(f"{path} is a folder: give the .onnx file to write")
    model = model.eval().float()
    parameters = inspect.signature(model.forward).parameters
    inputs = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in parameters]
    base = model.base_model
    with torch.no_grad():
        outputs = list(_output_names(model, example_batch(model, inputs, 2, 8, seed=0)))
        base.pack_padding = False  # see the module docstring; an instance attribute, removed below
        try:
            write_file_atomically(path, lambda tmp: _trace(model, inputs, outputs, tmp))
        finally:
            del base.pack_padding
        check = example_batch(model, inputs, 3, 11, seed=1)
        difference = _largest_difference(model, path, check, outputs)
    if difference > tolerance:
        path.unlink()
        raise BertError(f"the exported graph's outputs differ from the model's by {difference:.2e} (more than "
                        f"{tolerance:g}) in onnxruntime; nothing was written")
    return ExportReport(inputs, outputs, path.stat().st_size, difference, (3, 11))


def _output_names(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> list[str]:
    """The names of the output dataclass's fields that this model fills (in to_tuple's order)."""
    output = model(**batch)
    return [name for name, value in vars(output).items() if isinstance(value, torch.Tensor)]


def _trace(model: PreTrainedModel, inputs: list[str], outputs: list[str], target: Path) -> None:
    batch = torch.export.Dim("batch")
    length = torch.export.Dim("length", max=model.base_model.embeddings.max_length())
    example = tuple(example_batch(model, inputs, 2, 8, seed=0).values())
    try:  # the exporter reports its steps on stdout and warns about its own internals: not the user's business
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), quiet_logger("torch.onnx"):
            warnings.simplefilter("ignore")
            torch.onnx.export(GraphInterface(model, inputs), example, str(target), dynamo=True,
                              input_names=inputs, output_names=outputs, external_data=False,
                              dynamic_shapes={name: {0: batch, 1: length} for name in inputs}, verbose=False)
    except Exception as error:  # the exporter raises many kinds, wrapped: the innermost one says what went wrong
        cause = error
        while cause.__cause__ is not None:
            cause = cause.__cause__
        first = ANSI.sub("", str(cause)).strip().splitlines()
        raise BertError(f"ONNX export failed: {first[0] if first else type(cause).__name__}") from error


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Only errors from logger ``name`` while the block runs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _largest_difference(model: PreTrainedModel, path: Path, batch: dict[str, torch.Tensor],
                        outputs: list[str]) -> float:
    """The largest |onnxruntime − ours| over every output, at real positions for per-token outputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(outputs, {name: tensor.numpy() for name, tensor in batch.items()})
    ours = model(**batch).to_tuple()
    real = batch["attention_mask"].bool()
    return max(float((at_real_positions(name, mine, real) - at_real_positions(name, torch.from_numpy(other), real))
                     .abs().max()) for name, mine, other in zip(outputs, ours, theirs, strict=True))


def at_real_positions(name: str, output: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """A per-token output [B, T, ...] at the real tokens only (``real`` [B, T] bool; padding positions differ between
    the packed and the plain path and mean nothing); a per-sequence one ([B, F]: pooler, NSP, classification) as is."""
    return output[real] if name in SPAN_OUTPUTS or output.dim() == 3 else output
