"""What a run writes as it goes: ``RUN/metrics.jsonl`` (one JSON object per event) and ``RUN/curves.png``.

Each line of metrics.jsonl has ``kind`` ("train" or "eval"), ``step``, and the measured values among
``mlm_loss``, ``mlm_accuracy``, the sentence task's ``nsp_loss``, ``nsp_accuracy`` (next-sentence data) or
``sop_loss``, ``sop_accuracy`` (sentence-order data), ``lr``, ``tokens_per_second`` and ``elapsed``
(seconds of training). Train lines average the steps since the previous train line; ``tokens_per_second`` counts
every position of the global batch (batch × sequence length × processes × accumulation, padding included) per
second of step time (evaluation and checkpointing excluded). Eval lines also carry ``peak_rss_gb``, the process's
peak resident memory so far (null where the platform does not report it). On ``--resume`` the lines
after the checkpoint's step are dropped, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bert.atomic import write_text_atomically
from bert.plotting import Panel, Series


class MetricsLog:
    """Appends events to a JSONL file (line-buffered, flushed per event) and keeps them for plotting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []

    def truncate_after(self, step: int) -> None:
        """Keep only the events up to ``step`` (used when resuming from a checkpoint at ``step``)."""
        kept = []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
                if event.get("step", 0) <= step:
                    kept.append(event)
        self.events = kept
        write_text_atomically(self.path, "".join(json.dumps(e) + "\n" for e in kept))

    def write(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")


def peak_rss_gb() -> float | None:
    """This process's peak resident memory so far, in GB, or None where the platform does not say (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 ** 3 if sys.platform == "darwin" else 1024 ** 2)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The events of a metrics.jsonl file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def pretraining_panels(events: list[dict[str, Any]]) -> list[Panel]:
    """curves.png of a pretraining run: MLM loss, MLM accuracy and (when the run trains one, i.e. its events carry
    it) the sentence task's accuracy, NSP or SOP, train and eval, against the step."""
    keys = [("mlm_loss", "MLM loss"), ("mlm_accuracy", "MLM accuracy")]
    keys += [(f"{task}_accuracy", f"{task.upper()} accuracy") for task in ("nsp", "sop")
             if any(f"{task}_accuracy" in e for e in events)]  # none in an MLM-only run
    return [Panel(title, key.rpartition("_")[2], [Series("train", key, "train"), Series("eval", key, "eval", "o-")])
            for key, title in keys]
