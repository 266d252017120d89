"""Turning a list of encoded examples ("features") into padded batches.

A feature is a dict of Python values: ``input_ids`` and, for models that read them, ``token_type_ids`` (lists of
ints, no padding; DistilBERT's features have none) plus its targets: ``labels`` (an int, a float, or a list of ints
with -100 for "no label"), or ``start_positions`` and ``end_positions`` (ints). Batches are padded only to their own
longest member (*dynamic padding*); with ``group_by_length`` the members of a batch have similar lengths, so there
is little padding at all.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from bert.heads import IGNORE_INDEX

Feature = dict[str, Any]


def collate(features: Sequence[Feature], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest member: input_ids / attention_mask [B, T] (and token_type_ids [B, T] when the
    features have them), targets [B] or [B, T].

    Token labels are padded with -100 (ignored by the loss); float labels (regression) become a float tensor.
    """
    width = max(len(f["input_ids"]) for f in features)
    batch: dict[str, torch.Tensor] = {
        "input_ids": torch.tensor([f["input_ids"] + [pad_token_id] * (width - len(f["input_ids"]))
                                   for f in features]),
        "attention_mask": torch.tensor([[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"]))
                                        for f in features]),
    }
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = torch.tensor([f["token_type_ids"] + [0] * (width - len(f["token_type_ids"]))
                                                for f in features])
    if "labels" in features[0]:
        labels = [f["labels"] for f in features]
        if isinstance(labels[0], list):
            batch["labels"] = torch.tensor([row + [IGNORE_INDEX] * (width - len(row)) for row in labels])
        elif isinstance(labels[0], float):
            batch["labels"] = torch.tensor(labels, dtype=torch.float)
        else:
            batch["labels"] = torch.tensor(labels, dtype=torch.long)
    for key in ("start_positions", "end_positions"):
        if key in features[0]:
            batch[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
    return batch


def batch_order(lengths: Sequence[int], batch_size: int, shuffle: bool, group_by_length: bool = False,
                rng: random.Random | None = None, mega_batches: int = 50) -> list[list[int]]:
    """The example indices of each batch of one epoch.

    ``shuffle`` randomises the order; ``group_by_length`` then sorts each run of ``mega_batches × batch_size``
    examples by length (longest first) before cutting it into batches, and shuffles the batches, so that batches
    stay random but their members have similar lengths. Without shuffling, examples keep the file order.
    """
    indices = list(range(len(lengths)))
    rng = rng or random.Random(0)
    if shuffle:
        rng.shuffle(indices)
    if group_by_length:
        run = batch_size * mega_batches
        indices = [i for start in range(0, len(indices), run)
                   for i in sorted(indices[start:start + run], key=lambda i: -lengths[i])]
    batches = [indices[start:start + batch_size] for start in range(0, len(indices), batch_size)]
    if group_by_length and shuffle:
        rng.shuffle(batches)
    return batches


def iterate_batches(features: Sequence[Feature], batch_size: int, pad_token_id: int = 0, progress: bool = False
                    ) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """Evaluation batches in file order, sorted by length inside runs for speed: (indices, padded batch).
    ``progress``: a tqdm bar over the batches on stderr (prediction on a file; evaluation inside a run has its own)."""
    from tqdm import tqdm

    order = batch_order([len(f["input_ids"]) for f in features], batch_size, shuffle=False, group_by_length=True)
    for indices in tqdm(order, desc="predicting", unit="batch", disable=not progress, leave=False, file=sys.stderr):
        yield indices, collate([features[i] for i in indices], pad_token_id)
