"""FinetuneConfig: every training setting of ``bert finetune``, as a dataclass (the Python API) and as CLI flags: each
field is defined once, with its help (see :mod:`bert.settings`), and ``--field-name`` is its flag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bert.errors import BertError
from bert.settings import setting


@dataclass
class FinetuneConfig:
    """Training settings; each field is a flag of ``bert finetune`` (``--field-name``, see :mod:`bert.settings`),
    those marked ``free_on_resume`` may change when a run continues with ``resume``."""

    epochs: int = setting(3, "passes over the training file", metavar="N")
    lr: float = setting(2e-5, "peak learning rate")
    batch_size: int = setting(32, "examples per micro-batch", metavar="B")
    max_seq_len: int = setting(128, "word pieces per input (default 128; 384 for qa)", metavar="N")
    warmup: float = setting(0.1, "warmup fraction of the optimizer steps", metavar="F")
    weight_decay: float = setting(0.01, "none on biases/LayerNorm", metavar="D")
    grad_accum: int = setting(1, "micro-batches per optimizer step", metavar="K")
    seed: int = setting(42, "seed of the head's weights, the data order and dropout", metavar="N")
    time_budget: float | None = setting(None, "stop (and evaluate) after this many minutes of training, evaluations "
                                              "included", metavar="MINUTES", free_on_resume=True)
    max_steps: int | None = setting(None, "stop after N optimizer steps (the schedule then ends there)", metavar="N")
    group_by_length: bool = setting(False, "batch similar lengths together (less padding)")
    max_grad_norm: float = setting(1.0, "gradient clipping (0: off)", metavar="NORM")
    eval_batch_size: int = setting(64, "examples per evaluation batch", metavar="B", free_on_resume=True)
    progress: bool = setting(True, "show a progress bar (on by default)", free_on_resume=True)
    device: str | None = setting(None, "cpu, cuda, cuda:1 ... (default: cuda if available)", free_on_resume=True)
    bf16: bool = setting(False, "bfloat16 autocast (CPU with AVX512-BF16 or AMX, or GPU)")
    compile: bool = setting(False, "torch.compile the training step (a one-off compile per input shape)")
    gradient_checkpointing: bool = setting(
        False, "recompute each layer in backward: far less memory on long inputs (qa at 384), ~1/3 more compute",
        free_on_resume=True)
    eval_every: int = setting(0, "also evaluate every N optimizer steps (default: after each epoch only)",
                              metavar="N")
    metric: str | None = setting(None, "evaluation metric that picks the best model (default: the task's main one: "
                                       "accuracy, or pearson for regression; f1 for ner and qa)", metavar="NAME")
    patience: int | None = setting(None, "stop after P evaluations in a row without a better --metric", metavar="P")
    save_every: int = setting(0, "write a checkpoint to OUT/checkpoints every N optimizer steps (default: none)",
                              metavar="N", free_on_resume=True)
    keep_last: int = setting(3, "checkpoints kept (0: all)", metavar="K", free_on_resume=True)
    resume: bool = setting(False, "continue exactly from the latest complete checkpoint in OUT (same settings, but "
                                  "those free to change)", free_on_resume=True)

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "max_seq_len", "grad_accum", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise BertError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every", "keep_last"):
            if getattr(self, name) < 0:
                raise BertError(f"{name.replace('_', '-')} must be 0 (off) or more, got {getattr(self, name)}")
        if not self.lr > 0:
            raise BertError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup <= 1:
            raise BertError(f"warmup is a fraction of the steps, between 0 and 1; got {self.warmup}")
        if self.max_steps is not None and self.max_steps < 1:
            raise BertError(f"max-steps must be at least 1, got {self.max_steps}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise BertError(f"time-budget must be positive (minutes), got {self.time_budget}")
        if self.patience is not None and self.patience < 1:
            raise BertError(f"patience must be at least 1 evaluation, got {self.patience}")

    def check_evaluation(self, evaluating: bool) -> None:
        """BertError when a setting about evaluations is given to a run that has nothing to evaluate on."""
        used = [flag for flag, value in (("--eval-every", self.eval_every), ("--metric", self.metric),
                                         ("--patience", self.patience)) if value]
        if used and not evaluating:
            raise BertError(f"{' and '.join(used)} {'needs' if len(used) == 1 else 'need'} an evaluation file "
                            "(--eval)")


def choose_metric(config: FinetuneConfig, default: str, available: Sequence[str], evaluating: bool) -> str:
    """The metric that picks the best model: ``config.metric`` if the task reports it (else a BertError listing
    ``available``), or the task's ``default``. Called before any loading, so a typo fails at once."""
    config.check_evaluation(evaluating)
    if config.metric is None:
        return default
    if config.metric not in available:
        raise BertError(f"unknown metric {config.metric!r} for --metric; this task reports: {', '.join(available)}")
    return config.metric
