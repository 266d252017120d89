"""``OUT/curves.png``: training loss and the evaluation metric against the optimizer step.

Matplotlib is optional (see :mod:`bert.plotting`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bert.plotting import pyplot, save_figure


def plot_finetune_curves(events: list[dict[str, Any]], path: Path, main_metric: str,
                         best_step: int | None = None) -> bool:
    """Two panels: train loss (and learning rate, right axis) and ``main_metric`` at every evaluation (per epoch and
    ``--eval-every``), the kept one (``best_step``) starred; False if not drawn."""
    plt = pyplot()
    if plt is None:
        return False
    train = [e for e in events if e.get("kind") == "train"]
    evals = [e for e in events if e.get("kind") == "eval" and main_metric in e]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    if train:
        left.plot([e["step"] for e in train], [e["loss"] for e in train], label="train loss")
        lr_axis = left.twinx()
        lr_axis.plot([e["step"] for e in train], [e["lr"] for e in train], color="tab:gray", alpha=0.4)
        lr_axis.set_ylabel("learning rate", color="tab:gray")
    left.set_title("training loss")
    left.set_xlabel("step")
    left.grid(alpha=0.3)
    if evals:
        right.plot([e["step"] for e in evals], [e[main_metric] for e in evals], "o-", color="tab:green")
        best = [e for e in evals if e["step"] == best_step]
        if best:
            right.plot(best[0]["step"], best[0][main_metric], "*", color="tab:red", markersize=14, label="kept")
            right.legend(loc="best")
    right.set_title(f"eval {main_metric}")
    right.set_xlabel("step")
    right.grid(alpha=0.3)
    save_figure(figure, path)
    return True
