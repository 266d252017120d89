"""The rows a tokenizer call returns: which keys, padding to one length, and ``torch.long`` tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bert.errors import BertError


def output_keys(model_input_names: Sequence[str], offsets: bool, special_tokens_mask: bool) -> list[str]:
    """The keys of a call's result: the model's inputs, then the optional ones asked for."""
    keys = [key for key in ("input_ids", "token_type_ids", "attention_mask") if key in model_input_names]
    return keys + ["offset_mapping"] * offsets + ["special_tokens_mask"] * special_tokens_mask


def pad_rows(out: dict[str, list[list[Any]]], target: int, pad_id: int) -> None:
    """Extend every row on the right to ``target`` items: the pad token, segment 0, attention 0, offsets (0, 0),
    special 1."""
    pad_values = {"input_ids": pad_id, "token_type_ids": 0, "attention_mask": 0, "offset_mapping": (0, 0),
                  "special_tokens_mask": 1}
    for key, rows in out.items():
        for row in rows:
            if len(row) < target:
                row.extend([pad_values[key]] * (target - len(row)))


def as_tensors(out: dict[str, list[list[Any]]]) -> dict[str, Any]:
    """2-D ``torch.long`` tensors of the rows (3-D for ``offset_mapping``); the rows must be of one length."""
    import torch

    lengths = {len(ids) for ids in out["input_ids"]}
    if len(lengths) > 1:
        raise BertError(
            'return_tensors="pt" needs equal lengths; pass padding=True (and truncation=True for long texts)'
        )
    width = lengths.pop() if lengths else 0
    tensors: dict[str, Any] = {}
    for key, rows in out.items():
        shape = (len(rows), width, 2) if key == "offset_mapping" else (len(rows), width)
        tensors[key] = torch.tensor(rows, dtype=torch.long).reshape(shape)
    return tensors
