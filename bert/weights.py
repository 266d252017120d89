"""Hugging Face-format weight files: the safe readers, the checkpoint name map, and the output-folder checks.

Our parameter names *are* the checkpoints' names, so the name map only has to undo the variations real
checkpoints carry:

==========================================  ================================================================
in the checkpoint                            becomes
==========================================  ================================================================
``bert.`` prefix present or absent           whatever the target class uses (a bare BertModel file loads into
                                             every head class, a head file loads into BertModel)
``LayerNorm.gamma`` / ``LayerNorm.beta``     ``LayerNorm.weight`` / ``LayerNorm.bias`` (TF-era names)
``cls.predictions.decoder.bias``             ``cls.predictions.bias`` (the same vector under its other name)
``cls.predictions.decoder.weight``           dropped: the decoder is tied to the word embeddings
``embeddings.position_ids`` and similar      dropped: buffers we recompute, not weights
==========================================  ================================================================

The names above are BERT's; RoBERTa, ALBERT and DistilBERT (:mod:`bert.variants`) set their own prefix, base
modules, tied decoder and bias alias as class attributes of their models, and the same rules apply.

Files are read without executing anything: safetensors, or ``pytorch_model.bin`` through
``torch.load(weights_only=True)``, which refuses pickled objects other than tensors.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from bert.config import MODEL_TYPES
from bert.errors import BertError

if TYPE_CHECKING:
    from bert.pretrained import PreTrainedModel

logger = logging.getLogger("bert")

WEIGHT_FILES = (
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
)


# ---- reading files ---------------------------------------------------------------------------------------------

def find_weights(folder: Path) -> Path:
    """The weights file of a checkpoint folder, preferring safetensors (safe and memory-mapped)."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise BertError(f"no weights in {folder}: expected one of {', '.join(WEIGHT_FILES)}")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a weights file (.safetensors, .bin, or a sharded ``*.index.json``), by checkpoint name."""
    path = Path(path)
    if path.name.endswith(".index.json"):
        try:
            weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BertError(f"{path} is not a valid shard index ({error})") from None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise BertError(f"{path} is not a valid shard index (weight_map must map tensor names to file names)")
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            if Path(shard).name != shard or shard in ("", ".", ".."):
                raise BertError(f"{path} names the shard {shard!r} outside its folder; shards must be plain file "
                                "names next to the index")
            state.update(read_state_dict(path.parent / shard))
        return state
    if not path.is_file():
        raise BertError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    return read_torch_pickle(path)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except Exception as error:  # safetensors raises several types for corrupt, truncated or lying headers
        raise BertError(f"{path} is not a readable safetensors file ({type(error).__name__}: {error}); "
                        "re-download or re-export it") from None


def read_torch_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError for forbidden objects, RuntimeError/EOFError for corrupt files
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        # torch's message starts with advice to retry with weights_only=False; the useful line names the object.
        useful = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
        reason = (useful or lines or [type(error).__name__])[0]
        raise BertError(f"refusing or unable to read {path}: only plain tensor checkpoints are loaded, never "
                        f"arbitrary pickled objects ({reason})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BertError(f"{path} does not hold a dictionary of tensors")
    return state


# ---- the name map ----------------------------------------------------------------------------------------------

def normalize_names(state: dict[str, torch.Tensor], model_keys: Iterable[str],
                    family: type[PreTrainedModel] | None = None) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's tensors to the names ``model_keys`` uses (see the table in the module docstring);
    ``family``: the model class whose prefix, base modules and aliases apply (BERT's by default)."""
    from bert.pretrained import PreTrainedModel  # here, not at the top: bert.pretrained imports this module

    family = family or PreTrainedModel
    prefix, base_modules = family.base_model_prefix + ".", tuple(m + "." for m in family.base_modules)
    model_has_prefix = any(k.startswith(prefix) for k in model_keys)
    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.endswith("position_ids") or name.endswith("embeddings.token_type_ids"):
            continue
        if name.endswith(".gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith(".beta"):
            name = name[: -len("beta")] + "bias"
        name = family.checkpoint_aliases.get(name, name)
        if model_has_prefix and name.startswith(base_modules):
            name = prefix + name
        elif not model_has_prefix and name.startswith(prefix):
            name = name[len(prefix):]
        renamed.setdefault(name, tensor)
    return renamed


@dataclass
class LoadReport:
    """What a load did: checkpoint tensors the model has no place for, and parameters the checkpoint lacked."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> LoadReport:
    """Copy a checkpoint's tensors into ``model`` (casting dtype), after the name map. Raises on shape mismatches."""
    from bert.pretrained import PreTrainedModel  # here, not at the top: bert.pretrained imports this module

    own = model.state_dict()
    family = type(model) if isinstance(model, PreTrainedModel) else PreTrainedModel
    state = normalize_names(state, own.keys(), family)
    tied = set(getattr(model, "tied_weights", ()))
    decoder = state.pop(family.tied_decoder, None)
    if decoder is not None and family.tied_decoder in own:
        embeddings = state.get(f"{family.base_model_prefix}.embeddings.word_embeddings.weight")
        if embeddings is not None and not torch.equal(decoder, embeddings):
            logger.warning("%s: its MLM decoder is not tied to the word embeddings; using the word embeddings "
                           "for both, as BERT does", source)

    matched = [name for name in state if name in own]
    if not matched:
        sample = ", ".join(list(state)[:3]) or "none"
        kind = MODEL_TYPES[family.config_class.model_type]
        raise BertError(f"{source} has no {kind} weights (tensor names such as {sample}); is it a {kind} checkpoint?")
    for name in matched:
        if own[name].dtype == torch.int8 and state[name].dtype != torch.int8:  # a cast would make up the weights
            raise BertError(f"{source}: {name} is {state[name].dtype} in the checkpoint but must be int8")
        if state[name].shape != own[name].shape:
            raise BertError(f"{source}: {name} has shape {tuple(state[name].shape)} in the checkpoint but "
                            f"{tuple(own[name].shape)} in the model; does config.json match the weights?")
    report = LoadReport(
        missing=sorted(k for k in own if k not in state and k not in tied),
        unexpected=sorted(k for k in state if k not in own),
    )
    model.load_state_dict({k: state[k] for k in matched}, strict=False)
    return report



def make_directory(path: str | os.PathLike) -> Path:
    """Create ``path`` (and its parents) if needed; BertError, not a traceback, when that is not allowed."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BertError(f"cannot create {path}: {error.strerror or error}") from None
    return path


def check_writable_directory(path: str | os.PathLike, what: str = "output folder", create: bool = True) -> Path:
    """Check that files can be written in ``path`` (created if needed, or with ``create=False`` only checked: then
    its nearest existing parent must be writable); BertError naming ``what`` if not.

    Meant to run before long work (training, tokenizing a corpus), so that a read-only or forbidden folder is
    reported at once instead of after hours."""
    path = Path(path)
    probe = path
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
        if create:
            path.mkdir(parents=True, exist_ok=True)
        else:
            while not probe.exists() and probe.parent != probe:
                probe = probe.parent
            if not probe.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(probe))
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".write-test-"):
            pass
    except OSError as error:
        raise BertError(f"cannot write to the {what} {path}: {error.strerror or error}") from None
    return path
