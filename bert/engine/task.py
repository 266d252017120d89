"""What a task tells the engine: the contract between :class:`~bert.engine.loop.Engine` and what it trains.

A task (pretraining, distillation, classification, NER, QA) is built first — its model, data, tokenizer, settings
checked — and then handed to the engine, which runs the loop, the schedule, the logs, evaluations, checkpoints, resume,
Ctrl-C, bf16, compile and DDP for all of them alike. The task answers only what differs:

* **what is trained**: :attr:`model` (checkpointed, saved), :meth:`objective` (the module a micro-batch goes through:
  DDP wraps it, ``--compile`` compiles it), :meth:`make_optimizer`, :meth:`make_schedule`;
* **its batches**: :meth:`next_step` (this process's micro-batches of the next optimizer step), :meth:`probe_batch`
  (for sizing a time budget), :meth:`data_state` / :meth:`load_data_state` (the position in the data, for resume);
* **its loss**: :meth:`normalizers` (what each micro-batch's loss is divided by, global over processes) and
  :meth:`forward` (the loss to back-propagate and a vector of sums, :attr:`stat_names`); :meth:`summarize` turns
  summed stats into a train line;
* **its evaluation**: :meth:`evaluate`, :attr:`main_metric` (which evaluation is the best: the engine keeps that
  model in ``OUT`` with :meth:`save_model`, and stops after ``patience`` evaluations without a better one);
* **its files**: :meth:`settings` (what a resumed run must share), :meth:`panels` (curves.png), :meth:`finish`
  (what the run leaves behind: pretraining's ``final/``, fine-tuning's ``metrics.json``).

Every setting the engine reads (``lr``, ``max_steps``, ``time_budget``, ``eval_every``, ``save_every``, ``resume``,
``bf16``, ``compile``, ``patience``, ...) is a field of :class:`~bert.engine.config.RunConfig`, which every task's
config extends.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bert.engine.config import RunConfig
from bert.engine.distributed import World
from bert.engine.schedule import WarmupLinearSchedule, resolve_warmup
from bert.errors import BertError
from bert.plotting import Panel
from bert.pretrained import PreTrainedModel
from bert.settings import settings_differences

Batch = dict[str, torch.Tensor]


@dataclass
class Outcome:
    """How a run ended, for :meth:`Task.finish`."""

    stopped_by: str  # "max_steps", "epochs", "time_budget", "patience" or "interrupted"
    interrupted: bool  # Ctrl-C or SIGTERM
    aborted: bool  # a second Ctrl-C: stopped mid-step, nothing was saved
    checkpoint: Path | None  # the latest checkpoint written
    best_record: dict[str, Any] | None  # the best evaluation (its step and metrics), if the task keeps one
    history: list[dict[str, Any]]  # every evaluation
    step: int
    total_steps: int
    elapsed: float


class Task(ABC):
    """The base of every task; a subclass sets the attributes in its ``__init__``, implements the abstract methods
    and overrides what else differs."""

    name = "train"  # the `bert` command, in messages and on the progress bar
    stat_names: tuple[str, ...] = ("loss_sum", "count")  # what forward()'s stats vector holds, summed
    main_metric: str | None = None  # the evaluation metric that picks the best model (None: keep none)
    lower_is_better = False
    checkpoint_at_end = True  # write a checkpoint when the run stops even with save_every 0
    evaluate_at_start = False  # evaluate before the first step too (continued pretraining: the starting point)

    config: RunConfig  # the run's settings: the engine's and the task's own
    world: World
    model: PreTrainedModel
    tokenizer: Any
    out: Path

    # ---- what is trained ---------------------------------------------------------------------------------------
    def objective(self) -> nn.Module:
        """The module each micro-batch goes through (DDP wraps it, ``--compile`` compiles it)."""
        return self.model

    @abstractmethod
    def make_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer over the model's trainable parameters."""

    def planned_steps(self) -> int | None:
        """Where the schedule ends unless a time budget shortens it (None: only the time budget says)."""
        return self.config.max_steps

    def make_schedule(self, total_steps: int) -> WarmupLinearSchedule:
        """The learning-rate schedule: linear warmup (``warmup_steps``, or ``warmup_fraction`` of the steps) to
        ``lr``, then linear decay to 0 at ``total_steps``."""
        warmup = resolve_warmup(total_steps, self.config.warmup_steps, self.config.warmup_fraction)
        return WarmupLinearSchedule(self.config.lr, warmup, total_steps)

    @property
    @abstractmethod
    def log_every(self) -> int:
        """Steps per metrics.jsonl train line."""

    # ---- batches -----------------------------------------------------------------------------------------------
    def flops_per_token(self) -> float | None:
        """Model FLOPs of a training step per input token (see :mod:`bert.engine.flops`), or None: not counted."""
        return None

    @abstractmethod
    def next_step(self, progress: float) -> tuple[list[Batch], bool]:
        """This process's micro-batches of the next optimizer step (on the CPU), and whether the step ends an epoch
        (an evaluation is due then). ``progress``: the share of the schedule done before this step, 0 → 1 (for
        what changes over a run, such as pretraining's masking rate)."""

    @abstractmethod
    def probe_batch(self) -> Batch:
        """A typical micro-batch, timed to size the schedule to a time budget."""

    def eval_seconds(self, pass_seconds: float) -> float:
        """About how long one evaluation takes, given one training forward+backward pass's seconds."""
        return 0.0

    @abstractmethod
    def data_state(self) -> dict[str, Any]:
        """The position in the data (and its generators), for a checkpoint."""

    @abstractmethod
    def load_data_state(self, state: dict[str, Any]) -> None:
        """Go back to the position :meth:`data_state` returned."""

    def position(self) -> dict[str, Any]:
        """Where the run is in its data, added to every metrics.jsonl line (fine-tuning: the fractional epoch)."""
        return {}

    # ---- the loss ----------------------------------------------------------------------------------------------
    def normalizers(self, batches: Sequence[Batch]) -> list[dict[str, Any]]:
        """For each micro-batch, what its loss is divided by (totals over the global batch, summed over processes),
        passed to :meth:`forward`."""
        return [{} for _ in batches]

    @abstractmethod
    def forward(self, module: nn.Module, batch: Batch, normalizers: dict[str, Any]) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
        """One micro-batch through ``module`` (:meth:`objective`, maybe wrapped): the loss to back-propagate
        (its share of the global batch's mean) and the stats vector [len(stat_names)] (float64)."""

    @abstractmethod
    def summarize(self, stats: torch.Tensor) -> dict[str, float]:
        """Summed stats → the values of a train line (e.g. ``loss``)."""

    def postfix(self, summary: dict[str, float]) -> dict[str, str]:
        """What the progress bar shows of a step's summary."""
        return {key: f"{value:.4f}" for key, value in summary.items() if key.endswith("loss")}

    # ---- evaluation and files ----------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any] | None:
        """The metrics of one evaluation (on rank 0, in eval mode, without gradients), or None: nothing to evaluate
        on."""
        return None

    def eval_message(self, step: int, metrics: dict[str, Any], best_so_far: bool) -> str:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        return f"step {step}: eval {shown}" + (" (best so far)" if best_so_far else "")

    def save_model(self, folder: Path) -> None:
        """Save the model as it is now (with its tokenizer) into ``folder``: the best model so far."""
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    def settings(self) -> dict[str, Any]:
        """What a resumed run must share with its checkpoint (see :func:`bert.settings.fixed_on_resume`)."""
        return self.config.fixed_on_resume()

    def check_resumable(self, settings: dict[str, Any], path: Path) -> None:
        """BertError when this run cannot continue checkpoint ``path``, made with ``settings``: one line naming each
        setting that differs."""
        differences = settings_differences(settings, self.settings(), self.describe_difference)
        if differences:
            raise BertError(f"--resume: {path} was made with other settings: {', '.join(differences)}; resume with "
                            "the same settings, or choose another --out to start afresh")

    def describe_difference(self, key: str) -> str | None:
        """How to word a setting that differs from the checkpoint's (None: ``name then (now ...)``)."""
        return None

    @abstractmethod
    def panels(self, events: list[dict[str, Any]], best_step: int | None) -> Sequence[Panel]:
        """What curves.png draws."""

    def note(self, message: str) -> None:
        """Tell the user (rank 0 only)."""
        if self.world.is_main:
            print(f"bert {self.name}: {message}", file=sys.stderr, flush=True)

    def start_note(self) -> str | None:
        """What to tell the user as a fresh run starts training (after every check that may refuse it)."""
        return None

    def resumed(self, path: Path, step: int, total_steps: int) -> None:
        self.note(f"resuming from {path} (step {step})")

    @abstractmethod
    def finish(self, outcome: Outcome) -> Any:
        """What the run leaves behind once it stops; returned by :meth:`Engine.run`."""
