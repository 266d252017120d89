"""Hugging Face-format weight files: the safe readers and the checkpoint name map.

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

The names above are BERT's (:data:`BERT_NAMING`); RoBERTa, ALBERT and DistilBERT (:mod:`bert.variants`) give their
models a :class:`CheckpointNaming` of their own (prefix, base modules, tied decoder, bias alias), and the same rules
apply. This module knows no model class: a model tells it its naming (``model.checkpoint_naming``).

Files are read without executing anything: safetensors, or ``pytorch_model.bin`` through
``torch.load(weights_only=True)``, which refuses pickled objects other than tensors.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bert.config import MODEL_TYPES
from bert.errors import BertError

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

@dataclass(frozen=True)
class CheckpointNaming:
    """How a model family names its tensors in checkpoints (a class attribute of its models, ``checkpoint_naming``).

    model_type: config.json's ``model_type``, for messages. prefix: the encoder's name inside head classes
    (``bert.`` in ``bert.encoder.layer.0...``; also the attribute that holds it). base_modules: the encoder's own
    top-level modules, which a bare encoder's file stores without the prefix. aliases: another name a checkpoint may
    give a tensor → ours. tied_decoder: the MLM decoder matrix that checkpoints store although it is the word
    embeddings (never loaded)."""

    model_type: str = "bert"
    prefix: str = "bert"
    base_modules: tuple[str, ...] = ("embeddings", "encoder", "pooler")
    aliases: tuple[tuple[str, str], ...] = (("cls.predictions.decoder.bias", "cls.predictions.bias"),)
    tied_decoder: str = "cls.predictions.decoder.weight"


BERT_NAMING = CheckpointNaming()


def naming_of(model: nn.Module) -> CheckpointNaming:
    """The checkpoint naming ``model`` declares (BERT's for a module that declares none)."""
    return getattr(model, "checkpoint_naming", BERT_NAMING)


def normalize_names(state: dict[str, torch.Tensor], model_keys: Iterable[str],
                    naming: CheckpointNaming = BERT_NAMING) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's tensors to the names ``model_keys`` uses (see the table in the module docstring), by
    the family's ``naming`` (BERT's by default)."""
    prefix, base_modules = naming.prefix + ".", tuple(m + "." for m in naming.base_modules)
    aliases = dict(naming.aliases)
    model_has_prefix = any(k.startswith(prefix) for k in model_keys)
    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.endswith("position_ids") or name.endswith("embeddings.token_type_ids"):
            continue
        if name.endswith(".gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith(".beta"):
            name = name[: -len("beta")] + "bias"
        name = aliases.get(name, name)
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
    """Copy a checkpoint's tensors into ``model`` (casting dtype), after the name map of the model's family
    (:func:`naming_of`). Raises on shape mismatches."""
    own = model.state_dict()
    naming = naming_of(model)
    state = normalize_names(state, own.keys(), naming)
    tied = set(getattr(model, "tied_weights", ()))
    decoder = state.pop(naming.tied_decoder, None)
    if decoder is not None and naming.tied_decoder in own:
        embeddings = state.get(f"{naming.prefix}.embeddings.word_embeddings.weight")
        if embeddings is not None and not torch.equal(decoder, embeddings):
            logger.warning("%s: its MLM decoder is not tied to the word embeddings; using the word embeddings "
                           "for both, as BERT does", source)

    matched = [name for name in state if name in own]
    if not matched:
        sample = ", ".join(list(state)[:3]) or "none"
        kind = MODEL_TYPES[naming.model_type]
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
