"""RunConfig: every setting the training engine reads, typed and checked once. Pretraining, distillation and
fine-tuning extend it with their own (:class:`~bert.pretraining.PretrainConfig`,
:class:`~bert.finetune.FinetuneConfig`); where a task's default differs from the one here, the task's field says why
in its help.

Each field is also a CLI flag (``--field-name``, see :mod:`bert.settings`); those marked ``free_on_resume`` may
change when a run continues with ``--resume``."""

from __future__ import annotations

from dataclasses import dataclass

from bert.devices import DEVICE_HELP, pick_device
from bert.engine.mixed_precision import check_training_precision
from bert.engine.trackers import REPORT_TO_HELP, tracker_names
from bert.errors import BertError
from bert.settings import setting

# The argument groups of the training commands' --help.
LENGTH, OPTIMISATION, RUN = "length", "optimisation", "logging, evaluation, checkpoints"


@dataclass(kw_only=True)
class RunConfig:
    """What the engine (:class:`~bert.engine.loop.Engine`) reads of a run's settings.

    max_steps / time_budget (minutes): when to stop; the learning rate decays to 0 at max_steps, or at the number
        of steps estimated to fit in the time budget (see :mod:`bert.engine.schedule`).
    batch_size: examples per process per micro-batch; one optimizer step sees batch_size × grad_accum × processes.
    warmup_steps (wins) or warmup_fraction of the total steps: the linear warmup.
    eval_every / save_every: in optimizer steps (0 = never on a cadence; a final evaluation and checkpoint are
        always done). keep_last: checkpoints kept (0 = all). patience: evaluations without a better main metric
        before the run stops (tasks that keep a best model).
    device: where to train (see :func:`bert.devices.pick_device`; under torchrun each process takes the GPU of its
        local rank). bf16: bfloat16 autocast; fp16: float16 autocast with a gradient scaler, for CUDA GPUs without
        bfloat16 (see :mod:`bert.engine.mixed_precision`). compile: the training step through ``torch.compile``.
        gradient_checkpointing: recompute each layer in backward (less memory, about a third more compute).
    report_to / wandb_project: experiment trackers that get every metrics.jsonl event too (see
        :mod:`bert.engine.trackers`).
    resume: continue from the latest complete checkpoint, refused (naming each difference) when a setting not
        marked ``free_on_resume`` differs from the checkpoint's.
    """

    max_steps: int | None = setting(None, "optimizer steps; the learning rate reaches 0 here (--resume may change it: "
                                          "the schedule then ends at the new value)",
                                    group=LENGTH, metavar="N", free_on_resume=True)
    time_budget: float | None = setting(
        None, "stop after this long; without --max-steps the schedule length is estimated from a timed probe so the "
              "learning rate reaches 0 at about the end", group=LENGTH, metavar="MINUTES", free_on_resume=True)
    batch_size: int = setting(32, "examples per process per micro-batch", group=OPTIMISATION, metavar="B")
    grad_accum: int = setting(1, "micro-batches per optimizer step", group=OPTIMISATION, metavar="K")
    lr: float = setting(1e-4, "peak learning rate", group=OPTIMISATION)
    warmup_steps: int | None = setting(None, "linear warmup steps (wins over --warmup-fraction)", group=OPTIMISATION,
                                       metavar="N")
    warmup_fraction: float = setting(0.01, "warmup as a fraction of all steps", group=OPTIMISATION, metavar="F")
    weight_decay: float = setting(0.01, "decoupled weight decay (none on biases/LayerNorm)", group=OPTIMISATION,
                                  metavar="D")
    max_grad_norm: float = setting(1.0, "gradient clipping norm (0: off)", group=OPTIMISATION, metavar="NORM")
    seed: int = setting(0, "seed of the weights, the data order, the masking and dropout", group=OPTIMISATION,
                        metavar="N")
    device: str = setting("auto", DEVICE_HELP, free_on_resume=True)
    bf16: bool = setting(False, "bfloat16 autocast (a CPU with AVX512-BF16 or AMX, or an A100/H100-class GPU)",
                         group=OPTIMISATION)
    fp16: bool = setting(False, "float16 autocast with a gradient scaler, for CUDA GPUs without bfloat16 (T4, V100)",
                         group=OPTIMISATION)
    compile: bool = setting(False, "torch.compile the training step (a one-off compile; faster, less memory on "
                                   "bert-base)", group=OPTIMISATION)
    gradient_checkpointing: bool = setting(
        False, "recompute each layer in backward: much less activation memory, about 1/3 more compute",
        group=OPTIMISATION, free_on_resume=True)
    eval_every: int = setting(500, "steps between evaluations (0: end only)", group=RUN, metavar="N")
    patience: int | None = setting(None, "stop after P evaluations in a row without a better main metric",
                                   group=RUN, metavar="P")
    save_every: int = setting(1000, "steps between checkpoints (0: end only)", group=RUN, metavar="N",
                              free_on_resume=True)
    keep_last: int = setting(3, "checkpoints to keep (0: all)", group=RUN, metavar="K", free_on_resume=True)
    resume: bool = setting(False, "continue from the latest complete checkpoint in the run folder (with the same "
                                  "settings, but those marked as free to change)", group=RUN, free_on_resume=True)
    progress: bool = setting(True, "show a progress bar (on by default)", group=RUN, free_on_resume=True)
    report_to: str = setting("none", REPORT_TO_HELP, group=RUN, metavar="TRACKERS", free_on_resume=True)
    wandb_project: str | None = setting(None, "the W&B project of --report-to wandb (default: $WANDB_PROJECT, else "
                                              "bert)", group=RUN, metavar="NAME", free_on_resume=True)

    def validate(self) -> None:
        """BertError for settings that cannot work, before anything is loaded (a device this machine lacks, or
        one that cannot train in the precision asked for, included); a task's config extends it."""
        checks = [
            (self.max_steps is None or self.max_steps > 0, "--max-steps must be positive"),
            (self.time_budget is None or self.time_budget > 0, "--time-budget must be positive (minutes)"),
            (self.batch_size > 0, "--batch-size must be positive"),
            (self.grad_accum > 0, "--grad-accum must be positive"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),  # None: a task's recipe sets it
            (self.warmup_steps is None or self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (self.warmup_fraction is None or 0.0 <= self.warmup_fraction < 1.0,
             "--warmup-fraction must be in [0, 1)"),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (self.max_grad_norm >= 0, "--max-grad-norm must be >= 0 (0 = no clipping)"),
            (min(self.eval_every, self.save_every, self.keep_last) >= 0,
             "--eval-every, --save-every and --keep-last must be >= 0"),
            (self.patience is None or self.patience > 0, "--patience must be at least 1 evaluation"),
            (not (self.fp16 and self.bf16), "--fp16 and --bf16 together: choose one (--fp16 for a GPU without "
                                             "bfloat16, such as a T4 or V100; --bf16 for an A100, H100 or a CPU)"),
        ]
        for ok, message in checks:
            if not ok:
                raise BertError(message)
        check_training_precision(pick_device(self.device), self.fp16, self.bf16)  # the device is here, and can train so
        tracker_names(self.report_to)  # a name that is no tracker, or its package missing: before anything starts
