"""How fast BERT learns from scratch here: held-out MLM accuracy per token seen, for the default recipe and its
one-change ablations, on WikiText-2.

    python scripts/bench_from_scratch.py --out runs/fs                    # every recipe, 20M tokens each
    python scripts/bench_from_scratch.py --out runs/fs --recipes default,post-ln --tokens 6e6
    python scripts/bench_from_scratch.py --report "label=RUN_DIR" ... --out DIR  # runs made otherwise
                                      # (RUN_DIR@32: a run logged before lines said their tokens, batch 32)

It trains WikiText-2's train split into an 8,192-piece WordPiece vocabulary and prepares it twice (MLM-only
sequences, as ``bert prepare`` does by default, and MLM + NSP sentence pairs), then pretrains each recipe from random
weights for the same number of tokens (``--max-steps`` = tokens / (batch × 128), so every learning-rate schedule ends
there), evaluating on the whole validation split (masked at 15%, the same masks every time) every 1M tokens. A recipe
is the flags it adds to ``bert pretrain --data D --config mini --out R`` (``default`` adds none: what README's
command trains). Each run is a ``bert pretrain`` process with its own folder under ``--out``; run the script again to
continue unfinished ones (``--resume``) and skip finished ones. ``--stop-at`` stops each run part-way through its
schedule (a comparison at equal tokens that a later, larger ``--stop-at`` continues).

Reported per run (table on stdout, ``--out/results.json``, ``--out/accuracy.png``): held-out MLM accuracy at 5M, 10M,
20M and 40M tokens; the tokens and minutes until it first reaches 0.20 (past the frequent-word plateau of about 0.15
on this corpus); median tokens/s and share of the matmul peak; peak RSS; with the CPU flags. Minutes depend on the
machine and on what else runs: compare them only between runs made side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bert.precision import cpu_flags

ROOT = Path(__file__).resolve().parent.parent
WIKITEXT = ROOT.parent / "shared" / "data" / "wikitext-2"
EXIT = 0.20  # held-out accuracy that is clearly past the plateau (≈ 0.15 on WikiText-2 with 8k pieces)
MARKS = (5e6, 10e6, 20e6, 40e6)
SEQ = 128
EVAL_EVERY_TOKENS = 1e6
POLL_SECONDS = 5.0  # how often a run's metrics.jsonl is read for --stop-at
# recipe → (flags added to `bert pretrain`, which data it reads). "default" is README's command; every other recipe
# changes one thing of it.
RECIPES: dict[str, tuple[list[str], str]] = {
    "default": ([], "mlm"),
    "mlm+nsp": (["--objective", "mlm+nsp"], "pairs"),
    "random-positions": (["--position-init", "random"], "mlm"),
    "pre-ln": (["--config", "megatron-bert-mini"], "mlm"),
    "init-0.05": (["--model-overrides", '{"initializer_range": 0.05}'], "mlm"),
    "constant-mask-0.3": (["--mask-prob", "0.3"], "mlm"),
    "mask-0.15": (["--mask-prob", "0.15"], "mlm"),
    "final-mask-0.15": (["--final-mask-prob", "0.15"], "mlm"),
    "full-length": (["--half-length-fraction", "0"], "mlm"),
    "batch-64": (["--batch-size", "64"], "mlm"),
    "batch-16": (["--batch-size", "16"], "mlm"),
    "lr-2e-3": (["--lr", "2e-3"], "mlm"),
    "lr-1.5e-3": (["--lr", "1.5e-3"], "mlm"),
    "lr-7e-4": (["--lr", "7e-4"], "mlm"),
    "lr-5e-4": (["--lr", "5e-4"], "mlm"),
    "warmup-10%": (["--warmup-fraction", "0.1"], "mlm"),
    "dropout-0.1": (["--dropout", "0.1"], "mlm"),
    "float32": (["--no-bf16"], "mlm"),
    "tiny": (["--config", "tiny"], "mlm"),
    "small": (["--config", "small"], "mlm"),
}


def bert(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bert", *args], check=True)


def prepare(out: Path, vocab_size: int) -> dict[str, Path]:
    """The vocabulary and the two prepared folders (made once, reused)."""
    vocab, data = out / f"vocab-{vocab_size}", {"mlm": out / "data-mlm", "pairs": out / "data-pairs"}
    if not (vocab / "vocab.txt").is_file():
        bert("train-tokenizer", str(WIKITEXT / "wiki.train.tokens"), "--format", "wikitext", "--vocab-size",
             str(vocab_size), "--out", str(vocab))
    for objective, folder in data.items():
        if not (folder / "meta.json").is_file():
            bert("prepare", str(WIKITEXT / "wiki.train.tokens"), "--eval-files", str(WIKITEXT / "wiki.valid.tokens"),
                 "--format", "wikitext", "--tokenizer", str(vocab), "--out", str(folder),
                 "--objective", "mlm" if objective == "mlm" else "mlm+nsp")
    return data


def flag_value(flags: list[str], name: str, default: str) -> str:
    return flags[flags.index(name) + 1] if name in flags else default


def tokens_evaluated(run: Path) -> int:
    """The tokens seen at the run's last evaluation so far (0 before the first)."""
    if not (run / "metrics.jsonl").is_file():
        return 0
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return max((e.get("tokens", 0) for e in events if e["kind"] == "eval"), default=0)


def train(name: str, data: Path, out: Path, tokens: float, threads: int, stop_at: float) -> Path:
    """Train (or continue) one recipe: its schedule ends at ``tokens``; the run is stopped (Ctrl-C: a checkpoint
    to resume from) after the first evaluation at or past ``stop_at``."""
    flags, _ = RECIPES[name]
    run = out / name
    if (run / "final" / "config.json").is_file() or tokens_evaluated(run) >= stop_at:
        return run
    batch = int(flag_value(flags, "--batch-size", "32"))
    steps, every = int(tokens // (batch * SEQ)), max(1, int(EVAL_EVERY_TOKENS // (batch * SEQ)))
    eval_examples = len(np.load(data / "eval" / "input_ids.npy", mmap_mode="r"))
    command = ["pretrain", "--data", str(data), "--out", str(run), *(["--config", "mini"] * ("--config" not in flags)),
               *flags, "--max-steps", str(steps), "--eval-every", str(every), "--eval-batches",
               str(-(-eval_examples // batch)), "--save-every", str(every * 5), "--keep-last", "1", "--threads",
               str(threads), "--no-progress", *(["--resume"] if (run / "checkpoints").is_dir() else [])]
    with open(out / f"{name}.log", "a", encoding="utf-8") as log:
        process = subprocess.Popen([sys.executable, "-m", "bert", *command], stdout=log, stderr=log)
        while process.poll() is None:
            time.sleep(POLL_SECONDS)
            if stop_at < tokens and tokens_evaluated(run) >= stop_at:
                process.send_signal(signal.SIGINT)  # finish the step, save a checkpoint, stop
                process.wait()
    return run


def summarize(label: str, run: Path, batch_size: int | None = None) -> dict[str, Any]:
    """One row of the table from a run's metrics.jsonl (whose lines say the tokens seen; for runs logged before
    they did, ``batch_size`` × 128 per step)."""
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    for event in events:
        event.setdefault("tokens", event["step"] * (batch_size or 0) * SEQ)
    evals = [e for e in events if e["kind"] == "eval"]
    train_lines = [e for e in events if e["kind"] == "train"]
    row: dict[str, Any] = {"label": label, "run": str(run), "steps": train_lines[-1]["step"] if train_lines else 0,
                           "tokens": train_lines[-1]["tokens"] if train_lines else 0}
    for mark in MARKS:
        hit = next((e for e in evals if e["tokens"] >= mark), None)
        row[f"accuracy_{mark / 1e6:.0f}M"] = hit["mlm_accuracy"] if hit else None
    exit_event = next((e for e in evals if e["mlm_accuracy"] >= EXIT), None)
    row["exit_tokens"] = exit_event["tokens"] if exit_event else None
    row["exit_minutes"] = exit_event["elapsed"] / 60 if exit_event else None
    row["last_eval"] = (evals[-1]["tokens"], evals[-1]["mlm_accuracy"]) if evals else None
    row["tokens_per_second"] = statistics.median(e["tokens_per_second"] for e in train_lines) if train_lines else None
    shares = [e["flop_share"] for e in train_lines if "flop_share" in e]
    row["flop_share"] = statistics.median(shares) if shares else None
    rss = [e["peak_rss_gb"] for e in evals if "peak_rss_gb" in e]
    row["peak_rss_gb"] = max(rss) if rss else None
    row["curve"] = [(e["tokens"], e["mlm_accuracy"]) for e in evals]
    return row


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any, fmt: str) -> str:
        return "—" if value is None else format(value, fmt)

    marks = [f"accuracy_{m / 1e6:.0f}M" for m in MARKS]
    head = ("| recipe | " + " | ".join(f"acc @ {m.split('_')[1]}" for m in marks)
            + " | M tokens to 0.20 | minutes to 0.20 | last evaluation | tokens/s | FLOP share | peak RSS GB |")
    lines = [head, "|" + "---|" * (len(marks) + 7)]
    for r in rows:
        exit_tokens = r["exit_tokens"] / 1e6 if r["exit_tokens"] is not None else None
        last = f"{r['last_eval'][1]:.3f} @ {r['last_eval'][0] / 1e6:.1f}M" if r["last_eval"] else "—"
        lines.append(f"| {r['label']} | " + " | ".join(cell(r[m], ".3f") for m in marks)
                     + f" | {cell(exit_tokens, '.1f')} | {cell(r['exit_minutes'], '.1f')}"
                     f" | {last} | {cell(r['tokens_per_second'], '.0f')} | {cell(r['flop_share'], '.2f')}"
                     f" | {cell(r['peak_rss_gb'], '.2f')} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    from bert.plotting import new_figure, save_figure

    figure = new_figure((7, 4.2))
    if figure is None:
        print("(no matplotlib: no plot)")
        return
    axis = figure.subplots()
    for r in rows:
        axis.plot([t / 1e6 for t, _ in r["curve"]], [a for _, a in r["curve"]], "o-", markersize=2, label=r["label"])
    axis.axhline(EXIT, color="grey", linestyle="--", linewidth=0.8)
    axis.set_xlabel("tokens seen (millions)")
    axis.set_ylabel("held-out MLM accuracy (15% masked)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "from-scratch")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of: {', '.join(RECIPES)}")
    parser.add_argument("--tokens", type=float, default=20e6, help="tokens each recipe's schedule runs for")
    parser.add_argument("--stop-at", type=float, help="stop each run after the first evaluation past this many "
                                                      "tokens (default: --tokens); run again with more to continue")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--report", nargs="+", metavar="LABEL=RUN_DIR", help="only report these runs")
    args = parser.parse_args()
    if args.report:
        rows = []
        for spec in args.report:
            label, _, rest = spec.partition("=")
            run, _, batch = rest.partition("@")
            rows.append(summarize(label, Path(run), int(batch) if batch else None))
        args.out.mkdir(parents=True, exist_ok=True)
    else:
        unknown = [r for r in args.recipes.split(",") if r not in RECIPES]
        if unknown:
            raise SystemExit(f"unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
        if not (WIKITEXT / "wiki.train.tokens").is_file():
            raise SystemExit(f"WikiText-2 is not at {WIKITEXT} (see ../shared/data beside the checkout)")
        args.out.mkdir(parents=True, exist_ok=True)
        data = prepare(args.out, args.vocab_size)
        rows = []
        for name in args.recipes.split(","):
            run = train(name, data[RECIPES[name][1]], args.out, args.tokens, args.threads,
                        args.stop_at or args.tokens)
            rows.append(summarize(name, run))
    (args.out / "results.json").write_text(json.dumps({"cpu_flags": cpu_flags(), "rows": rows}, indent=1))
    plot(rows, args.out / "accuracy.png")
    print(f"CPU flags: {cpu_flags()}" + ("" if args.report else f"; threads per run: {args.threads}"))
    print(table(rows))


if __name__ == "__main__":
    main()
