"""``OUT/curves.png``: training loss and the evaluation metric against the optimizer step.

Matplotlib is imported only here, and only when a plot is drawn; without it a warning is printed and no file is
written (training results are never lost over a missing plotting library).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


def plot_finetune_curves(events: list[dict[str, Any]], path: Path, main_metric: str) -> bool:
    """Two panels: train loss (and learning rate, right axis) and the eval ``main_metric``; False if not drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed: curves.png is not drawn (pip install matplotlib)", stacklevel=2)
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
    right.set_title(f"eval {main_metric}")
    right.set_xlabel("step")
    right.grid(alpha=0.3)
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    tmp.replace(path)
    return True
