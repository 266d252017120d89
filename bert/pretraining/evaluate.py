"""Held-out evaluation of a pretraining model: MLM loss and accuracy (and NSP or SOP accuracy) on prepared data.

Every evaluation masks the same examples the same way (a fixed seed, always 15% of the tokens, at most
ceil(0.15 * T) per sequence, whatever the training masking rate), so evaluations of one run, of different runs and
of a model before and after continued pretraining are comparable.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from bert.data.dataset import PretrainingDataset
from bert.data.masking import MaskingCollator
from bert.pretrained import PreTrainedModel
from bert.pretraining.loss import PretrainingObjective, summarize

EVAL_MASKING_SEED = 20181011
EVAL_MLM_PROBABILITY = 0.15


def eval_collator(tokenizer: Any, seq_len: int, whole_word_masking: bool = False) -> MaskingCollator:
    """The masking every evaluation uses (re-seeded by :func:`evaluate` before each pass)."""
    return MaskingCollator.from_tokenizer(
        tokenizer, seed=EVAL_MASKING_SEED, whole_word_masking=whole_word_masking,
        mlm_probability=EVAL_MLM_PROBABILITY, max_predictions_per_seq=math.ceil(EVAL_MLM_PROBABILITY * seq_len))


@torch.no_grad()
def evaluate(model: PreTrainedModel | PretrainingObjective, data: PretrainingDataset, collator: MaskingCollator,
             batch_size: int = 32, max_examples: int | None = None, sentence: str | None = "nsp",
             device: torch.device | None = None,
             autocast: contextlib.AbstractContextManager | None = None,
             seed: int = EVAL_MASKING_SEED) -> dict[str, float]:
    """mlm_loss, mlm_accuracy (and for a ``sentence`` objective, "nsp" or "sop": its loss and accuracy, e.g.
    sop_accuracy) over the first ``max_examples`` examples of ``data`` (all by default), in batches of
    ``batch_size``. ``sentence`` applies to a bare model; an objective brings its own. ``seed`` picks the masking
    (another seed: another draw of masked tokens, for a more precise figure averaged over draws). The model is
    left in the mode it was in."""
    objective = model if isinstance(model, PretrainingObjective) else PretrainingObjective(model, sentence)
    device = device or next(objective.parameters()).device
    was_training = model.training  # a fresh wrapper is in train mode whatever the model's mode
    objective.eval()
    collator.generator.manual_seed(seed)
    stats = torch.zeros(6, dtype=torch.float64)
    n = len(data) if max_examples is None else min(len(data), max_examples)
    for start in range(0, n, batch_size):
        batch = collator(data.batch(list(range(start, min(n, start + batch_size)))))
        batch = {key: value.to(device) for key, value in batch.items()}
        with autocast or contextlib.nullcontext():
            stats += objective(**batch).stats().cpu()
    objective.train(was_training)
    return summarize(stats, objective.sentence)
