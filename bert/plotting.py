"""Matplotlib, optional and headless: the few lines every PNG this package draws shares, and :func:`plot_curves`,
the one function that draws a run's ``curves.png`` from its metrics.jsonl events.

Each kind of run (pretraining, distillation, fine-tuning) only describes its panels (:class:`Panel`, :class:`Series`).
Matplotlib is imported only when a figure is drawn. Every PNG the package and its scripts write is drawn on a
:func:`new_figure`: a ``matplotlib.figure.Figure`` with an Agg canvas of its own, never pyplot's, so writing one
neither chooses nor switches the process's backend nor adds to pyplot's figures (a notebook that trains goes on
showing its own figures inline). When matplotlib is not installed, a single warning says how to get it and no file is
written (training results never depend on a plotting library).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bert.atomic import write_file_atomically

_warned = False


def _missing() -> None:
    """One warning per process that no PNG is drawn without matplotlib."""
    global _warned
    if not _warned:
        warnings.warn("matplotlib is not installed: no PNG is drawn (pip install matplotlib)", stacklevel=4)
        _warned = True


def new_figure(figsize: tuple[float, float]) -> Any | None:
    """A ``matplotlib.figure.Figure`` of ``figsize`` inches on an Agg canvas of its own, or None (with one warning per
    process) when matplotlib is missing. Pyplot is not imported and the backend is left alone: the figure is drawn and
    written (:func:`save_figure`) without any process-wide state, and garbage-collected like any object."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        _missing()
        return None
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)  # attaches itself as figure.canvas
    return figure


def save_figure(figure: Any, path: Path) -> None:
    """Write ``figure`` to ``path`` as a PNG, atomically (a reader never sees a half-written PNG); BertError
    ``cannot write PATH: REASON`` when that fails. Pyplot is not touched: the figure stays the caller's."""
    figure.tight_layout()
    write_file_atomically(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))


@dataclass(frozen=True)
class Series:
    """One line of a panel: ``key`` of every event of ``kind`` ("train" or "eval") that has it, against its step.

    ``style`` is a matplotlib format string; ``star_step``, when set, stars this series' point at that step (the kept
    evaluation of a fine-tuning run), labelled "kept"."""

    kind: str
    key: str
    label: str | None = None
    style: str = "-"
    color: str | None = None
    star_step: int | None = None


@dataclass(frozen=True)
class Panel:
    """One panel of curves.png: ``series`` on the left axis, ``right`` (e.g. the learning rate) on a right one."""

    title: str
    ylabel: str
    series: Sequence[Series]
    right: Sequence[Series] = ()
    right_ylabel: str = ""
    levels: Sequence[tuple[float, str]] = ()  # horizontal reference lines: (value, label)


def _draw(axis: Any, events: list[dict[str, Any]], series: Series, **style: Any) -> None:
    points = [(e["step"], e[series.key]) for e in events if e.get("kind") == series.kind and series.key in e]
    if not points:
        return
    steps, values = zip(*points, strict=True)
    axis.plot(steps, values, series.style, label=series.label, color=series.color, markersize=3, **style)
    starred = [(step, value) for step, value in points if step == series.star_step]
    if starred:
        axis.plot(*starred[0], "*", color="tab:red", markersize=14, label="kept")


def plot_curves(events: list[dict[str, Any]], path: Path, panels: Sequence[Panel]) -> bool:
    """Draw ``panels`` side by side against the optimizer step into ``path`` (PNG); False (and one warning) when
    matplotlib is missing. A panel gets a legend when it has a labelled line."""
    figure = new_figure((4.5 * len(panels), 3.5))
    if figure is None:
        return False
    axes = figure.subplots(1, len(panels), squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=True):
        for series in panel.series:
            _draw(axis, events, series)
        for value, label in panel.levels:
            axis.axhline(value, linestyle="--", color="tab:gray", linewidth=1, label=label)
        if panel.right:
            right = axis.twinx()
            for series in panel.right:
                _draw(right, events, series, alpha=0.4)
            right.set_ylabel(panel.right_ylabel, color=panel.right[0].color)
        axis.set_title(panel.title)
        axis.set_xlabel("step")
        axis.set_ylabel(panel.ylabel)
        axis.grid(alpha=0.3)
        if any(not line.get_label().startswith("_") for line in axis.lines):  # no train line yet at step 0
            axis.legend()
    save_figure(figure, path)
    return True
