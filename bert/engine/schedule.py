"""Learning-rate schedule: linear warmup from 0 to the peak, then linear decay to 0 (the BERT schedule).

``lr(step) = peak · step / warmup`` for step < warmup, then ``peak · (total - step) / (total - warmup)``, never
below 0. ``step`` counts optimizer updates already done, so the first update uses ``lr(1)`` (never a zero lr).

The length ``total`` is ``--max-steps`` when given. With only ``--time-budget`` it is *estimated* before training
(see :func:`estimate_total_steps`): a few forward+backward passes are timed and the budget is divided by the
measured seconds per optimizer step (plus an allowance for the periodic evaluations). The estimate is stored in
every checkpoint, so a resumed run keeps the same schedule. Because that up-front estimate cannot see
checkpoint writes, a busy machine or plotting, the trainer re-fits ``total`` after every evaluation from the
measured seconds per step so far. Training stops when either limit is reached.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass
class WarmupLinearSchedule:
    """Sets ``lr`` on every parameter group from the step number; its whole state is these three numbers."""

    peak_lr: float
    warmup_steps: int
    total_steps: int

    def factor(self, step: int) -> float:
        """The multiplier of the peak learning rate at optimizer step ``step`` (1-based)."""
        if step < self.warmup_steps:
            return step / self.warmup_steps
        remaining = self.total_steps - self.warmup_steps
        if remaining <= 0:
            return 1.0
        return max(0.0, (self.total_steps - step) / remaining)

    def lr(self, step: int) -> float:
        return self.peak_lr * self.factor(step)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Write ``lr(step)`` into the optimizer's groups (times a group's ``lr_scale``, if any) and return it."""
        value = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = value * group.get("lr_scale", 1.0)
        return value

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> WarmupLinearSchedule:
        return cls(peak_lr=float(state["peak_lr"]), warmup_steps=int(state["warmup_steps"]),
                   total_steps=int(state["total_steps"]))


def resolve_warmup(total_steps: int, warmup_steps: int | None, warmup_fraction: float) -> int:
    """An explicit ``warmup_steps`` wins; otherwise ``round(warmup_fraction · total_steps)``."""
    if warmup_steps is not None:
        return warmup_steps
    return int(round(warmup_fraction * total_steps))


def estimate_total_steps(budget_seconds: float, seconds_per_step: float, eval_seconds: float = 0.0,
                         eval_every: int = 0) -> int:
    """How many optimizer steps fit in ``budget_seconds``.

    ``seconds_per_step`` is the measured time of one optimizer step (all accumulated micro-batches); each
    evaluation (every ``eval_every`` steps) costs ``eval_seconds`` more, spread over the steps it follows.
    """
    per_step = seconds_per_step + (eval_seconds / eval_every if eval_every > 0 else 0.0)
    return max(1, math.floor(budget_seconds / max(per_step, 1e-9)))
