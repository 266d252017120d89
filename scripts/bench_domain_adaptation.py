"""Domain adaptation by continued pretraining ("don't stop pretraining"): the demo model on tweets and forum posts.

    python scripts/bench_domain_adaptation.py [--minutes 10] [--lr 2e-4] [--head-lr LR] [--bf16] [--dropout 0.1]
        [--batch-size 32] [--mask-prob 0.15] [--whole-word-masking] [--warmup-fraction 0.06] [--weight-decay 0.01]
        [--links replace|drop|keep] [--adapt-on train|train+test] [--maskings 10] [--seeds 1 2] [--epochs 3]
        [--out runs/bench-adapt]

1. The text of the WNUT-17 training sentences (``../shared/data/ner-wnut17``; tweets, Reddit and forum posts, far
   from the Wikipedia and books the demo model saw) is written one post per line, user mentions and links replaced
   by ``@user`` and ``url`` as BERTweet does (``--links drop``: removed; ``keep``: kept), and prepared MLM-only
   (``bert prepare --objective mlm``: posts packed into full 128-token sequences); the dev sentences' text, as it
   is, is the held-out set. ``--adapt-on train+test`` adds the test sentences' text (unlabelled posts from the dev
   set's sources; not the benchmark's recipe, which adapts on the training text alone).
2. ``bert pretrain --init-from <demo model>`` continues MLM-only pretraining for ``--minutes``; its step-0 and final
   evaluations are the held-out MLM accuracy before and after (target: +0.05 absolute). Both models are then
   evaluated under ``--maskings`` draws of masked tokens too, and the mean gain is printed with its range.
3. NER is fine-tuned (``bert finetune ner``, the same recipe and seeds) from the adapted model and from the unadapted
   demo model; entity F1 on WNUT dev is reported side by side for every seed.

Prints a Markdown summary and writes OUT/benchmark.json.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WNUT = ROOT.parent / "shared" / "data" / "ner-wnut17"


URL = re.compile(r"^(https?://|www\.)\S+$")
MENTION = re.compile(r"^@\w+$")


def normalize(word: str, links: str) -> str:
    """A tweet's user mention becomes ``@user`` and its link ``url`` (``links="replace"``, as BERTweet does), or
    nothing (``"drop"``); ``&lt;`` becomes ``<``. ``links="keep"``: the word as it is."""
    if links == "keep":
        return word
    placeholder = "@user" if MENTION.match(word) else "url" if URL.match(word) else None
    if placeholder:
        return "" if links == "drop" else placeholder
    return html.unescape(word)


def conll_text(source: Path, target: Path, links: str) -> int:
    """One sentence (post) per line, words joined by spaces, a blank line after each (each post is a document)."""
    sentences, words = [], []
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.strip():
            if word := normalize(line.split("\t")[0].split()[0], links):
                words.append(word)
        elif words:
            sentences.append(" ".join(words))
            words = []
    if words:
        sentences.append(" ".join(words))
    target.write_text("".join(f"{s}\n\n" for s in sentences), encoding="utf-8")
    return len(sentences)


def accuracy_over_maskings(models: dict[str, str], data: Path, draws: int, bf16: bool) -> dict[str, list[float]]:
    """Each model's held-out MLM accuracy under ``draws`` maskings of the dev text (the first is the one every
    ``bert pretrain`` evaluation uses): about 2,800 masked tokens each, so their mean is the more precise figure."""
    import torch

    from bert.data.dataset import PretrainingDataset
    from bert.heads import BertForPreTraining
    from bert.pretraining.evaluate import EVAL_MASKING_SEED, eval_collator, evaluate
    from bert.tokenizer.wordpiece import BertTokenizer

    eval_data = PretrainingDataset(data / "eval")
    collator = eval_collator(BertTokenizer.from_pretrained(next(iter(models.values()))), eval_data.max_seq_len)
    accuracy = {}
    for name, folder in models.items():
        model = BertForPreTraining.from_pretrained(folder).eval()
        accuracy[name] = [evaluate(model, eval_data, collator, sentence=None, seed=EVAL_MASKING_SEED + draw,
                                   autocast=torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16))["mlm_accuracy"]
                          for draw in range(draws)]
    return accuracy


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
    parser.add_argument("--whole-word-masking", action="store_true",
                        help="continued pretraining masks whole words (the evaluation always masks word pieces)")
    parser.add_argument("--warmup-fraction", type=float, default=0.06, help="continued-pretraining warmup")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="continued-pretraining weight decay")
    parser.add_argument("--adapt-on", choices=("train", "train+test"), default="train",
                        help="the posts' text to adapt on: the training split's (the benchmark), or with the test "
                             "split's too (unlabelled text from the dev set's sources)")
    parser.add_argument("--links", choices=("replace", "drop", "keep"), default="replace",
                        help="the training posts' links and user mentions: replaced by url and @user (the default), "
                             "dropped, or kept as they are")
    parser.add_argument("--maskings", type=int, default=10,
                        help="maskings of the dev text that the before/after accuracy is averaged over")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2],
                        help="fine-tuning seeds (none: the adaptation alone)")
    parser.add_argument("--epochs", type=int, default=3, help="NER fine-tuning epochs")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-adapt")
    args = parser.parse_args()

    from bert.engine.metrics import read_metrics
    from bert.finetune import finetune_ner

    args.out.mkdir(parents=True, exist_ok=True)
    splits = (("train", "wnut17train.conll"), ("dev", "emerging.dev.conll"), ("test", "emerging.test.annotated"))
    posts = {split: conll_text(WNUT / name, args.out / f"{split}.txt", "keep" if split == "dev" else args.links)
             for split, name in splits}
    adapt_on = [str(args.out / f"{split}.txt") for split in ("train", "test") if split in args.adapt_on.split("+")]
    data, run = args.out / "data", args.out / "adapt"
    if not (data / "meta.json").is_file():
        bert("prepare", *adapt_on, "--eval-files", str(args.out / "dev.txt"), "--objective", "mlm",
             "--no-sentence-split", "--tokenizer", args.model, "--out", str(data), "--max-seq-len", "128", "--quiet")
    if not (run / "final" / "config.json").is_file():
        bert("pretrain", "--data", str(data), "--init-from", args.model, "--out", str(run), "--time-budget",
             str(args.minutes), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
             *(["--head-lr", str(args.head_lr)] if args.head_lr else []), "--warmup-fraction",
             str(args.warmup_fraction), "--weight-decay", str(args.weight_decay), "--dropout", str(args.dropout),
             *(["--bf16"] if args.bf16 else []),
             *(["--whole-word-masking"] if args.whole_word_masking else []),
             "--mask-prob", str(args.mask_prob), "--max-predictions-per-seq", str(math.ceil(args.mask_prob * 128)),
             "--eval-every", "100", "--eval-batches", "1000", "--save-every", "100",
             "--keep-last", "1", "--no-progress", *(["--resume"] if (run / "checkpoints").is_dir() else []))
    evals = [e for e in read_metrics(run / "metrics.jsonl") if e["kind"] == "eval"]
    before, after = evals[0], evals[-1]
    maskings = accuracy_over_maskings({"before": args.model, "after": str(run / "final")}, data, args.maskings,
                                      args.bf16)
    gains = [b - a for a, b in zip(maskings["before"], maskings["after"], strict=True)]

    recipe = dict(epochs=args.epochs, lr=1e-4, batch_size=16, max_seq_len=128, warmup_fraction=0.1,
                  group_by_length=True, progress=False)
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
        "mask_prob": args.mask_prob, "whole_word_masking": args.whole_word_masking,
        "warmup_fraction": args.warmup_fraction, "weight_decay": args.weight_decay, "links": args.links,
        "adapt_on": args.adapt_on,
        "mlm_accuracy_before": before["mlm_accuracy"], "mlm_accuracy_after": after["mlm_accuracy"],
        "mlm_loss_before": before["mlm_loss"], "mlm_loss_after": after["mlm_loss"],
        "mlm_accuracy_over_maskings": maskings, "mean_gain_over_maskings": statistics.mean(gains),
        "ner_recipe": recipe, "seeds": args.seeds, "ner_f1": f1,
    }
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    gain = after["mlm_accuracy"] - before["mlm_accuracy"]
    print(f"held-out MLM accuracy on WNUT dev text: {before['mlm_accuracy']:.3f} before, {after['mlm_accuracy']:.3f} "
          f"after {after['step']} steps ({args.minutes:g} min): {gain:+.3f} (target +0.05)")
    print(f"over {args.maskings} maskings of the dev text: {statistics.mean(maskings['before']):.3f} before, "
          f"{statistics.mean(maskings['after']):.3f} after: {statistics.mean(gains):+.3f} (from {min(gains):+.3f} "
          f"to {max(gains):+.3f} across maskings)")
    if not args.seeds:
        return
    print("| fine-tuned from | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |")
    print("|---|" + "---|" * (len(args.seeds) + 1))
    for name, values in f1.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {statistics.mean(values):.3f} |")


if __name__ == "__main__":
    main()
