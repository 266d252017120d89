"""Experiment trackers (``--report-to tensorboard,wandb``): every metrics.jsonl event goes out to them as well.

:class:`~bert.engine.metrics.MetricsLog` hands each event to the run's reporters (rank 0 only), so train and eval
lines, of pretraining, distillation and fine-tuning alike, reach a tracker exactly as metrics.jsonl has them: each
number (a bool as 0 or 1) as a scalar named ``KIND/KEY`` (``train/mlm_loss``, ``eval/mlm_accuracy``) at the event's
step; any other value (pretraining's probes) as text where the tracker shows text (TensorBoard), left out elsewhere;
nulls left out. A reporter writes each event through at once (nothing waits in a buffer for a kill to lose) and is
closed when the run ends, however it ends.

- ``tensorboard``: ``torch.utils.tensorboard.SummaryWriter`` in ``RUN/tensorboard``. A run that starts (or resumes)
  after step S marks its events as a restart at step S + 1, so TensorBoard hides what an earlier run wrote past S
  and shows the events written again instead.
- ``wandb``: a Weights & Biases run named after the run folder, its config the run's settings (``settings.json``),
  its files under ``RUN/wandb`` (or ``$WANDB_DIR``). Its id is kept in ``RUN/wandb-run-id.txt`` so that ``--resume``
  continues the same W&B run. Without ``WANDB_MODE`` and without an API key (``wandb login`` or ``WANDB_API_KEY``)
  it runs offline, for ``wandb sync`` later.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bert.errors import BertError

TRACKERS = ("tensorboard", "wandb")
REPORT_TO_HELP = "send the metrics to experiment trackers too: none, tensorboard, wandb or tensorboard,wandb"
TENSORBOARD_FOLDER = "tensorboard"  # in the run folder
WANDB_ID_FILE = "wandb-run-id.txt"  # in the run folder: the W&B run that --resume continues
# What each tracker imports, and what to install for it (the project's extras of the same names).
MODULES = {"tensorboard": "torch.utils.tensorboard", "wandb": "wandb"}


def tracker_names(report_to: str) -> list[str]:
    """The trackers of a ``--report-to`` value (``none`` → none), each checked importable: BertError for a name that
    is not a tracker or one whose package is missing (what to ``pip install``)."""
    names = [name.strip() for name in report_to.split(",")]
    if names == ["none"]:
        return []
    unknown = [name for name in names if name not in TRACKERS]
    if unknown or len(set(names)) < len(names):
        raise BertError(f"--report-to {report_to}: choose none, tensorboard, wandb or tensorboard,wandb")
    for name in names:
        try:
            importlib.import_module(MODULES[name])
        except ImportError:
            raise BertError(f"--report-to {name} needs the {name} package: pip install {name}") from None
    return names


class Reporter(Protocol):
    """Where the events of a run go besides metrics.jsonl."""

    def report(self, step: int, scalars: dict[str, float], texts: dict[str, str]) -> None:
        """One event's values at ``step``: numbers by name, and the other values as text."""

    def close(self) -> None:
        """Flush and close (the run is over)."""


def tracked_values(event: dict[str, Any]) -> tuple[int, dict[str, float], dict[str, str]]:
    """An event's step, its numbers and its other values as text, named ``KIND/KEY``."""
    scalars, texts = {}, {}
    for key, value in event.items():
        name = f"{event['kind']}/{key}"
        if key in ("kind", "step") or value is None:
            continue
        if isinstance(value, (bool, int, float)):
            scalars[name] = float(value)
        elif isinstance(value, str):
            texts[name] = value
        else:  # TensorBoard renders text as Markdown: a code block keeps the JSON as it is
            texts[name] = "```\n" + json.dumps(value, indent=1, ensure_ascii=False) + "\n```"
    return event["step"], scalars, texts


class TensorBoardReporter:
    """Scalars and text in ``folder``'s event files; ``kept_step``: the last step of the run continued (-1: none),
    after which TensorBoard drops what an earlier run wrote there."""

    def __init__(self, folder: Path, kept_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder), purge_step=kept_step + 1)

    def report(self, step: int, scalars: dict[str, float], texts: dict[str, str]) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        for name, text in texts.items():
            self.writer.add_text(name, text, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbReporter:
    """A W&B run (see the module docstring); text values are left out."""

    def __init__(self, out: Path, project: str | None, settings: dict[str, Any], resuming: bool,
                 note: Callable[[str], None]) -> None:
        import wandb

        id_file = out / WANDB_ID_FILE
        run_id = id_file.read_text(encoding="utf-8").strip() if resuming and id_file.is_file() else None
        mode = os.environ.get("WANDB_MODE")  # read here: wandb reads its environment once per process
        try:
            if mode is None and not wandb.login(prompt=False, verify=False):
                mode = "offline"  # no account to send to: keep the run here rather than ask for a key mid-command
            self.run = wandb.init(project=project or os.environ.get("WANDB_PROJECT") or "bert", name=out.name,
                                  id=run_id, resume="allow" if run_id else None, config=settings,
                                  allow_val_change=True,  # --resume may change a free setting (--max-steps)
                                  dir=os.environ.get("WANDB_DIR", str(out)), mode=mode)
        except wandb.errors.Error as error:
            raise BertError(f"--report-to wandb: {error}") from None
        id_file.write_text(self.run.id + "\n", encoding="utf-8")
        if mode == "offline":
            pieces = Path(self.run.dir).parent.parent / f"offline-run-*-{self.run.id}"  # every session's, if resumed
            note(f"--report-to wandb: no W&B API key (wandb login) and no WANDB_MODE, so the run is logged offline; "
                 f"upload it later with: wandb sync {pieces}")

    def report(self, step: int, scalars: dict[str, float], texts: dict[str, str]) -> None:
        self.run.log(scalars, step=step)

    def close(self) -> None:
        self.run.finish()


def open_reporters(names: Sequence[str], out: Path, *, kept_step: int, settings: dict[str, Any],
                   wandb_project: str | None, note: Callable[[str], None]) -> list[Reporter]:
    """The reporters of trackers ``names`` for the run in ``out``, which continues a run's events up to
    ``kept_step`` (-1: a fresh run); ``note`` tells the user something (the W&B offline hint)."""
    reporters: list[Reporter] = []
    try:
        for name in names:
            if name == "tensorboard":
                reporters.append(TensorBoardReporter(out / TENSORBOARD_FOLDER, kept_step))
            else:
                reporters.append(WandbReporter(out, wandb_project, settings, kept_step >= 0, note))
    except BaseException:  # the ones already open are closed: the run does not start
        for reporter in reporters:
            reporter.close()
        raise
    return reporters
