"""What a run writes as it goes: ``OUT/metrics.jsonl``, one JSON object per event, read back for ``curves.png``.

Each line has ``kind`` ("train" or "eval"), ``step`` and the values the task measures (see its module: pretraining's
``mlm_loss``, ``nsp_accuracy``..., fine-tuning's ``loss``, ``accuracy``...), plus what the engine adds: train lines
``lr``, ``tokens_per_second`` (every position of the global batch, padding included, per second of step time,
evaluation and checkpointing excluded) and ``elapsed`` (seconds of training); eval lines ``elapsed`` and
``peak_rss_gb``, the process's peak resident memory so far (null where the platform does not report it). Train lines
average the steps since the previous one. On ``--resume`` the lines after the checkpoint's step are dropped, so the
file reads as one uninterrupted run. Each event also goes to the run's experiment trackers (``--report-to``, see
:mod:`bert.engine.trackers`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from bert.atomic import write_text_atomically
from bert.engine.trackers import Reporter, tracked_values


class MetricsLog:
    """Appends events to a JSONL file (line-buffered, flushed per event), keeps them for plotting and hands them to
    the reporters attached (experiment trackers), which :meth:`close` closes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self.reporters: list[Reporter] = []

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
        for reporter in self.reporters:
            reporter.report(*tracked_values(event))

    def close(self) -> None:
        """Close the reporters (each flushes what it holds); metrics.jsonl needs nothing."""
        reporters, self.reporters = self.reporters, []
        for reporter in reporters:
            reporter.close()


def peak_rss_gb() -> float | None:
    """This process's peak resident memory so far, in GB, or None where the platform does not say (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (1024 ** 3 if sys.platform == "darwin" else 1024 ** 2)


def peak_memory_gb(device: torch.device) -> float | None:
    """Peak memory of a run on ``device``, in GB: the GPU memory torch allocated (CUDA), else the process's peak
    resident memory (:func:`peak_rss_gb`)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return peak_rss_gb()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The events of a metrics.jsonl file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
