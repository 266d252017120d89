"""FinetuneConfig: every training setting of ``bert finetune``, as a dataclass (the Python API) and as CLI flags: the
engine's (:class:`~bert.engine.config.RunConfig`) with fine-tuning's defaults, and fine-tuning's own. Each field is
defined once, with its help (see :mod:`bert.settings`), and ``--field-name`` is its flag."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bert.engine.config import LENGTH, OPTIMISATION, RUN, RunConfig
from bert.errors import BertError
from bert.settings import setting


@dataclass(kw_only=True)
class FinetuneConfig(RunConfig):
    """Training settings of a fine-tuning run; each field is a flag of ``bert finetune`` (``--field-name``, see
    :mod:`bert.settings`), those marked ``free_on_resume`` may change when a run continues with ``resume``. The
    defaults that differ from pretraining's say why in their help."""

    epochs: int = setting(3, "passes over the training file", group=LENGTH, metavar="N")
    lr: float = setting(2e-5, "peak learning rate (BERT's fine-tuning range, 2e-5 to 5e-5: the encoder is trained "
                              "already; pretraining's is higher)", group=OPTIMISATION)
    warmup_fraction: float = setting(
        0.1, "warmup as a fraction of the optimizer steps (0.1, BERT's fine-tuning recipe for short runs; "
             "pretraining's long runs warm up for 0.01 to 0.02)", group=OPTIMISATION, metavar="F",
        aliases=("--warmup",))
    seed: int = setting(42, "seed of the head's weights, the data order and dropout (42, not pretraining's 0: the "
                            "seed the published fine-tuning figures were measured with)", group=OPTIMISATION,
                        metavar="N")
    max_seq_len: int = setting(128, "word pieces per input (default 128; 384 for qa)", metavar="N")
    group_by_length: bool = setting(False, "batch similar lengths together (less padding)", group=OPTIMISATION)
    eval_batch_size: int = setting(64, "examples per evaluation batch", group=RUN, metavar="B", free_on_resume=True)
    eval_every: int = setting(0, "also evaluate every N optimizer steps (default 0: after each epoch only, as "
                                 "fine-tuning runs are a few epochs long; pretraining has no epochs and evaluates "
                                 "every 500)", group=RUN, metavar="N")
    metric: str | None = setting(None, "evaluation metric that picks the best model (default: the task's main one: "
                                       "accuracy, or pearson for regression; f1 for ner and qa)", group=RUN,
                                 metavar="NAME")
    save_every: int = setting(0, "write a checkpoint to OUT/checkpoints every N optimizer steps (default 0: none; "
                                 "a fine-tuning run is short and keeps its best model in OUT, where pretraining's "
                                 "hours-long runs checkpoint every 1000)", group=RUN, metavar="N",
                              free_on_resume=True)

    def validate(self) -> None:
        """BertError for settings that cannot work: the engine's checks, then fine-tuning's."""
        for name in ("epochs", "max_seq_len", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise BertError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        super().validate()

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
