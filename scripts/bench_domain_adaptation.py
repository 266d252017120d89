"""Domain adaptation by continued pretraining ("don't stop pretraining"): the demo model on tweets and forum posts.

    python scripts/bench_domain_adaptation.py [--minutes 10] [--lr 2e-4] [--head-lr LR] [--bf16] [--dropout 0.1]
        [--batch-size 32] [--mask-prob 0.15] [--warmup-fraction 0.06] [--weight-decay 0.01]
        [--seeds 1 2] [--epochs 3] [--out runs/bench-adapt]

1. The text of the WNUT-17 training sentences (``../shared/data/ner-wnut17``; tweets, Reddit and forum posts, far
   from the Wikipedia and books the demo model saw) is written one post per line, and prepared MLM-only
   (``bert prepare --objective mlm``: posts packed into full 128-token sequences); the dev sentences' text is the
   held-out set.
2. ``bert pretrain --init-from <demo model>`` continues MLM-only pretraining for ``--minutes``; its step-0 and final
   evaluations are the held-out MLM accuracy before and after (target: +0.05 absolute).
3. NER is fine-tuned (``bert finetune ner``, the same recipe and seeds) from the adapted model and from the unadapted
   demo model; entity F1 on WNUT dev is reported side by side for every seed.

Prints a Markdown summary and writes OUT/benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WNUT = ROOT.parent / "shared" / "data" / "ner-wnut17"


def conll_text(source: Path, target: Path) -> int:
    """One sentence (post) per line, words joined by spaces, a blank line after each (each post is a document)."""
    sentences, words = [], []
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0].split()[0])
        elif words:
            sentences.append(" ".join(words))
            words = []
    if words:
        sentences.append(" ".join(words))
    target.write_text("".join(f"{s}\n\n" for s in sentences), encoding="utf-8")
    return len(sentences)


def bert(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bert", *args], check=True, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "weights" / "bert-demo"), help="the model to adapt")
    parser.add_argument("--minutes", type=float, default=10.0, help="continued-pretraining budget")
    parser.add_argument("--lr", type=float, default=2e-4, help="continued-pretraining peak learning rate")
    parser.add_argument("--head-lr", type=float, help="the MLM head's peak learning rate (default: --lr)")
    parser.add_argument("--batch-size", type=int, default=32, help="continued-pretraining batch size")
    parser.add_argument("--dropout", type=float, default=0.1, help="continued-pretraining dropout")
    parser.add_argument("--bf16", action="store_true", help="continued pretraining under bfloat16 autocast")
    parser.add_argument("--mask-prob", type=float, default=0.15,
                        help="continued pretraining's masking probability (the evaluation always masks 15%%)")
    parser.add_argument("--warmup-fraction", type=float, default=0.06, help="continued-pretraining warmup")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="continued-pretraining weight decay")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2],
                        help="fine-tuning seeds (none: the adaptation alone)")
    parser.add_argument("--epochs", type=int, default=3, help="NER fine-tuning epochs")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-adapt")
    args = parser.parse_args()

    from bert.finetune import finetune_ner
    from bert.train.metrics import read_metrics

    args.out.mkdir(parents=True, exist_ok=True)
    posts = {split: conll_text(WNUT / name, args.out / f"{split}.txt")
             for split, name in (("train", "wnut17train.conll"), ("dev", "emerging.dev.conll"))}
    data, run = args.out / "data", args.out / "adapt"
    if not (data / "meta.json").is_file():
        bert("prepare", str(args.out / "train.txt"), "--eval-files", str(args.out / "dev.txt"), "--objective", "mlm",
             "--no-sentence-split", "--tokenizer", args.model, "--out", str(data), "--max-seq-len", "128", "--quiet")
    if not (run / "final" / "config.json").is_file():
        bert("pretrain", "--data", str(data), "--init-from", args.model, "--out", str(run), "--time-budget",
             str(args.minutes), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
             *(["--head-lr", str(args.head_lr)] if args.head_lr else []), "--warmup-fraction",
             str(args.warmup_fraction), "--weight-decay", str(args.weight_decay), "--dropout", str(args.dropout),
             *(["--bf16"] if args.bf16 else []),
             "--mask-prob", str(args.mask_prob), "--max-predictions-per-seq", str(math.ceil(args.mask_prob * 128)),
             "--eval-every", "100", "--eval-batches", "1000", "--save-every", "100",
             "--keep-last", "1", "--no-progress", *(["--resume"] if (run / "checkpoints").is_dir() else []))
    evals = [e for e in read_metrics(run / "metrics.jsonl") if e["kind"] == "eval"]
    before, after = evals[0], evals[-1]

    recipe = dict(epochs=args.epochs, lr=1e-4, batch_size=16, max_seq_len=128, warmup=0.1, group_by_length=True,
                  progress=False)
    f1: dict[str, list[float]] = {"demo": [], "adapted": []}
    for seed in args.seeds:
        for name, model in (("demo", args.model), ("adapted", str(run / "final"))):
            out = args.out / f"ner-{name}-seed{seed}"
            result_file = out / "metrics.json"
            if result_file.is_file():
                metrics = json.loads(result_file.read_text())
            else:
                metrics = finetune_ner(model, WNUT / "wnut17train.conll", WNUT / "emerging.dev.conll", out,
                                       seed=seed, **recipe)
            f1[name].append(float(metrics["f1"]))

    report = {
        "posts": posts, "adapt_minutes": args.minutes, "adapt_steps": after["step"], "lr": args.lr,
        "head_lr": args.head_lr, "batch_size": args.batch_size, "dropout": args.dropout, "bf16": args.bf16,
        "mask_prob": args.mask_prob, "warmup_fraction": args.warmup_fraction, "weight_decay": args.weight_decay,
        "mlm_accuracy_before": before["mlm_accuracy"], "mlm_accuracy_after": after["mlm_accuracy"],
        "mlm_loss_before": before["mlm_loss"], "mlm_loss_after": after["mlm_loss"],
        "ner_recipe": recipe, "seeds": args.seeds, "ner_f1": f1,
    }
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    gain = after["mlm_accuracy"] - before["mlm_accuracy"]
    print(f"held-out MLM accuracy on WNUT dev text: {before['mlm_accuracy']:.3f} before, {after['mlm_accuracy']:.3f} "
          f"after {after['step']} steps ({args.minutes:g} min): {gain:+.3f} (target +0.05)")
    if not args.seeds:
        return
    print("| fine-tuned from | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |")
    print("|---|" + "---|" * (len(args.seeds) + 1))
    for name, values in f1.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {statistics.mean(values):.3f} |")


if __name__ == "__main__":
    main()
