"""Overlay the held-out curves of several pretraining runs against wall-clock time (the benchmark's budget).

    python scripts/plot_pretraining_runs.py "label=RUN_DIR" ... --out docs/pretraining-runs.png

Reads each RUN_DIR/metrics.jsonl and draws held-out MLM accuracy, MLM loss and NSP accuracy over minutes of
training, one line per run (MLM losses of runs with different vocabularies are not comparable; accuracies are).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bert.engine.metrics import read_metrics
from bert.plotting import new_figure, save_figure

PANELS = (("mlm_accuracy", "held-out MLM accuracy"), ("mlm_loss", "held-out MLM loss"),
          ("nsp_accuracy", "held-out NSP accuracy"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    figure = new_figure((5 * len(PANELS), 3.8))
    if figure is None:
        raise SystemExit("plot_pretraining_runs.py needs matplotlib: pip install matplotlib")
    axes = figure.subplots(1, len(PANELS))
    for spec in args.runs:
        label, _, run = spec.partition("=")
        evals = [e for e in read_metrics(Path(run) / "metrics.jsonl") if e["kind"] == "eval"]
        minutes = [e["elapsed"] / 60 for e in evals]
        for axis, (key, _) in zip(axes, PANELS, strict=True):
            axis.plot(minutes, [e[key] for e in evals], "o-", markersize=3, label=label)
    for axis, (_, title) in zip(axes, PANELS, strict=True):
        axis.set_title(title)
        axis.set_xlabel("minutes of training")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    save_figure(figure, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
