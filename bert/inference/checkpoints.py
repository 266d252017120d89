"""Checkpoint folders as library functions (``bert convert``, ``bert quantize`` and ``bert info`` call these):
:func:`rewrite_checkpoint` loads a checkpoint as the class its config.json names, changes it and writes the folder
again, whole; :func:`module_rows` lists the parts of an encoder whose parameters ``bert info`` counts."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from torch import nn

from bert.atomic import check_writable_directory, replace_folder_atomically
from bert.config import CLASS_PREFIXES, read_config_json
from bert.errors import BertError
from bert.hub import resolve_model_dir
from bert.pretrained import PreTrainedModel
from bert.tokenizer.files import copy_tokenizer_files
from bert.variants.auto import class_named, model_type_of


def rewrite_checkpoint(source_name: str | os.PathLike, out: str | os.PathLike,
                       change: Callable[[PreTrainedModel], object] = lambda model: model) -> str:
    """Load checkpoint ``source_name`` (a folder, file or model name) as the class its config.json names, apply
    ``change`` to it, and write it with the source's tokenizer files to the folder ``out``, swapped in whole
    (:func:`~bert.atomic.replace_folder_atomically`: ``out`` is the old folder or the new one, never a mix).
    Old-format weights (``pytorch_model.bin``, shards, TF-era names) come out as one ``model.safetensors``.
    Returns the architecture written (e.g. ``"BertForPreTraining"``)."""
    source = resolve_model_dir(source_name)
    check_writable_directory(out, create=False)
    folder = source if source.is_dir() else source.parent
    model_type = model_type_of(folder)
    architecture = (read_config_json(folder / "config.json").get("architectures")
                    or [CLASS_PREFIXES[model_type] + "Model"])[0]
    cls = class_named(model_type, architecture) if architecture.startswith(CLASS_PREFIXES[model_type]) else None
    if cls is None:
        raise BertError(f"unknown architecture {architecture!r} in {folder / 'config.json'}")
    model = cls.from_pretrained(source)
    change(model)

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        copy_tokenizer_files(folder, tmp)

    try:
        replace_folder_atomically(out, fill)
    except OSError as error:
        raise BertError(f"cannot write {out}: {error.strerror or error}") from None
    return architecture


def module_rows(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The encoder's parts to count: each top-level module, with the layer lists (BERT's ``encoder.layer``,
    DistilBERT's ``transformer.layer``, ALBERT's shared ``encoder.albert_layer_groups``) one row per entry."""
    rows = []
    for name, child in model.named_children():
        parts = list(child.named_children())
        if not any(isinstance(part, nn.ModuleList) for _, part in parts):
            rows.append((name, child))
            continue
        for part_name, part in parts:
            if isinstance(part, nn.ModuleList):
                rows += [(f"{name}.{part_name}.{i}", item) for i, item in enumerate(part)]
            else:
                rows.append((f"{name}.{part_name}", part))
    return rows
