"""What ``bert pretrain`` does with the settings left unset: two recipes, chosen by where the weights come from.

**From random weights** — chosen by measurement (``scripts/bench_from_scratch.py``; the runs and their figures:
docs/experiments/2026-12-07-from-scratch-recipe.md). A small BERT first learns only how frequent each word is
(the frequent-word plateau, see :mod:`bert.data.plateau`) and leaves it when attention starts to use the context;
everything here makes that come with fewer tokens:

* learning rate ``1e-3 × 256 / hidden_size`` (mini 1e-3, tiny 2e-3, small 5e-4, base 3.3e-4): the largest that
  trains post-LN BERT stably at batch 32 (2e-3 on mini stalls it), scaled down as the layers widen;
* warmup 2% of the steps: long enough for Adam's second moments, short enough not to waste the run;
* dropout 0: a run of minutes on a small corpus is nowhere near overfitting, and dropout slows early learning;
* masking 50% of the tokens at first, falling linearly to 25% at the end (a falling schedule as in Ankner et al.
  2023, from higher and to higher): more predictions per token read while the model learns the most. Measured on
  bert-mini over WikiText-2: 50% → 15% left the plateau after 7.2M tokens, 30% → 15% after 10.2M (0.261 against
  0.171 held-out accuracy at 8.2M); ending at 25% instead of 15% is level to 10M tokens, then ahead (0.406 against
  0.401 at 20.5M, held-out accuracy always measured at 15%) — a model this small still gains from more predictions
  per sequence at the end (Wettig et al. 2023 found 40% better than 15% for BERT-large);
* the position table started as sinusoids (Vaswani et al. 2017) at 2.5 × the initialiser's std (0.05), not as
  random numbers: BERT *learns* its position embeddings, and while they are noise attention cannot tell the word
  next to it from one 100 tokens away — it cannot use the context, which is what leaving the plateau takes.
  Sinusoids give neighbouring positions similar codes and make a fixed offset a linear map from the start, and at
  2.5 × the word embeddings' scale they stand out against them; the table still trains like any other, and the
  model stays an ordinary BERT (transformers loads it). Measured on bert-mini over WikiText-2's first 5.1M tokens:
  held-out accuracy 0.233 (0.219 at the initialiser's 0.02, 0.162 with a random table), and the plateau left after
  5.1M tokens instead of 7.2M;
* for the first 20% of the steps, every sequence cut in two (half the length, twice the rows, the same tokens a
  step; MLM-only data: sentence pairs cannot be cut), as BERT itself trained short sequences first (128 before 512)
  and as "sequence length warmup" does for GPT (Li et al. 2022): among half as many positions attention learns
  sooner to look at the neighbours. Measured on bert-mini over WikiText-2: the plateau left after 4.1M tokens
  instead of 5.1M, and 0.281 against 0.224 held-out accuracy at 5.1M (evaluated at the full length throughout;
  the position table's second half, which the cut rows never use, starts as sinusoids that already fit it);
* bfloat16 autocast where the machine runs it natively (AVX512-BF16 or AMX on a CPU, an A100/H100-class GPU; not
  with ``--fp16``): the same learning per token, more tokens per second.

**Continuing a checkpoint** (``--init-from``, and distillation): the weights already know the language, so the
recipe leaves them nearly alone: learning rate 1e-4, warmup 1%, the checkpoint's dropout, 15% masking, float32.

Every value is only a default: a flag given on the command line (or a field set in :class:`PretrainConfig`) wins.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from bert.pretraining.config import PretrainConfig


@dataclass(frozen=True)
class Recipe:
    """The defaults of the settings a pretraining run leaves unset (None)."""

    name: str
    lr: float  # peak learning rate; with lr_scales_with_width, for hidden size 256 (× 256 / hidden_size)
    lr_scales_with_width: bool
    warmup_fraction: float
    dropout: float | None  # None: the model config's (a checkpoint's own)
    mask_prob: float
    final_mask_prob: float
    half_length_fraction: float  # of the steps, on sequences cut in two (MLM-only data; sentence pairs: 0)
    bf16: bool  # where bfloat16 is native
    position_init: str | None  # how a fresh model's position table starts (None: the model's own random init)

    def peak_lr(self, hidden_size: int) -> float:
        return self.lr * 256 / hidden_size if self.lr_scales_with_width else self.lr


FROM_SCRATCH = Recipe("from random weights", lr=1e-3, lr_scales_with_width=True, warmup_fraction=0.02, dropout=0.0,
                      mask_prob=0.5, final_mask_prob=0.25, half_length_fraction=0.2, bf16=True,
                      position_init="sinusoidal")
CONTINUED = Recipe("continuing a checkpoint", lr=1e-4, lr_scales_with_width=False, warmup_fraction=0.01,
                   dropout=None, mask_prob=0.15, final_mask_prob=0.15, half_length_fraction=0.0, bf16=False,
                   position_init=None)


def fill_in(config: PretrainConfig, recipe: Recipe, hidden_size: int, native_bf16: bool,
            mlm_only: bool = True) -> PretrainConfig:
    """``config`` with each unset setting taken from ``recipe`` (``mlm_only``: the run trains no sentence objective,
    so its sequences may be cut in two)."""
    values = {"lr": recipe.peak_lr(hidden_size), "warmup_fraction": recipe.warmup_fraction, "dropout": recipe.dropout,
              "mask_prob": recipe.mask_prob, "bf16": recipe.bf16 and native_bf16 and not config.fp16,
              "position_init": recipe.position_init,
              "half_length_fraction": recipe.half_length_fraction if mlm_only else 0.0}
    filled = {name: value for name, value in values.items() if getattr(config, name) is None}
    if config.final_mask_prob is None:  # a given --mask-prob alone means that rate throughout
        filled["final_mask_prob"] = recipe.final_mask_prob if config.mask_prob is None else config.mask_prob
    return dataclasses.replace(config, **filled)


def recipe_note(config: PretrainConfig, recipe: Recipe) -> str:
    """One line: the recipe and the values the run trains with."""
    masking = (f"{config.mask_prob:g}" if config.final_mask_prob == config.mask_prob
               else f"{config.mask_prob:g} → {config.final_mask_prob:g}")
    dropout = "the config's" if config.dropout is None else f"{config.dropout:g}"
    precision = "bfloat16" if config.bf16 else "float16" if config.fp16 else "float32"
    positions = f", {config.position_init} positions" if config.position_init else ""
    halves = (f", sequences cut in two for the first {config.half_length_fraction:g} of the steps (at most "
              f"{config.half_length_max_tokens / 1e6:g}M tokens)" if config.half_length_fraction else "")
    return (f"recipe {recipe.name}: lr {config.lr:g}, warmup {config.warmup_fraction:g} of the steps, dropout "
            f"{dropout}, masking {masking}{positions}{halves}, {precision} (flags given win)")


POSITION_CODE_SCALE = 2.5  # the sinusoids' std, in units of the initialiser's (0.02 → 0.05): see the module's notes


def sinusoidal_positions_(table: nn.Embedding, std: float) -> None:
    """Overwrite a position table [P, E] with sinusoids (Vaswani et al. 2017: sin and cos of the position at
    wavelengths from 2π to 10000·2π) scaled to standard deviation ``std``; a padding row (RoBERTa's) stays zero."""
    rows, width = table.weight.shape
    position = torch.arange(rows, dtype=torch.float32)[:, None]  # [P, 1]
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))  # [E/2]
    codes = torch.zeros(rows, width)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency[: width // 2])
    codes *= std / codes.std()  # as large as the word embeddings it is added to
    if table.padding_idx is not None:
        codes[table.padding_idx] = 0.0
    with torch.no_grad():
        table.weight.copy_(codes)
