"""Knowledge distillation benchmark: the bundled demo model (6 layers, hidden 384) into a 3-layer student.

    python scripts/bench_distill.py [--minutes 15] [--data runs/demo-minilm-data] [--out runs/bench-distill]

1. Data: ``--data``, a folder written by ``bert prepare`` with the teacher's tokenizer (runs/demo-minilm-data holds
   the demo model's own: 128-token NSP pairs of WikiText-2 + 40 books, the whole WikiText-2 validation split as its
   eval split); without it, WikiText-2 + books from ../shared/data are written by scripts/demo_corpus.py and
   prepared here the same way.
2. Arm (a): ``bert distill --teacher <demo> --student-layers 3`` (layers 0, 2, 4 of the teacher, its embeddings,
   pooler and heads; DistilBERT's loss) for ``--minutes``.
3. Arm (b): the same 3-layer student, saved to OUT/student-start by :func:`bert.pretraining.student.save_student`,
   trained without the teacher: ``bert pretrain --init-from OUT/student-start --objective mlm``, the same minutes,
   batch, learning rate, masking and seed.
4. In one process, on the same held-out batches with the same masks: MLM accuracy and loss of the teacher, the
   distilled student and the baseline student.
5. Inference speed of teacher and student side by side: the same batch of 8 × 128 held-out tokens, ``--threads``
   torch threads, teacher and student alternating, the median of ``--repeats`` timed passes after a warm-up; the
   encoder alone (what classification, embeddings and QA run) and with the MLM head at every position (fill-mask).

Prints a Markdown table and writes OUT/benchmark.json. The issue's target: the student keeps >= 85% of the teacher's
held-out MLM accuracy at >= 1.8x its speed. An interrupted benchmark continues with the same command.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bert(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bert", *args], check=True, cwd=ROOT)


def prepare_data(teacher: str, out: Path) -> Path:
    """WikiText-2 + books as the demo model was trained on (scripts/pretrain_demo_model.sh), with its tokenizer."""
    corpus, data = out / "corpus", out / "data"
    if not (corpus / "train.txt").is_file():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_corpus.py"), str(corpus)], check=True, cwd=ROOT)
    if not (data / "meta.json").is_file():
        bert("prepare", str(corpus / "train.txt"), "--eval-files", str(corpus / "valid.txt"), "--no-sentence-split",
             "--tokenizer", teacher, "--out", str(data), "--max-seq-len", "128", "--dupe-factor", "2", "--seed", "1",
             "--quiet")
    return data


def train_arm(command: str, run: Path, data: Path, args: argparse.Namespace, *extra: str) -> None:
    """Run ``bert distill`` or ``bert pretrain`` with the shared recipe (skipped once RUN/final exists)."""
    if (run / "final" / "config.json").is_file():
        return
    bert(command, "--data", str(data), "--out", str(run), "--time-budget", str(args.minutes),
         "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--warmup-fraction", "0.05", "--dropout", "0",
         "--eval-every", str(args.eval_every), "--eval-batches", str(args.train_eval_batches),
         "--save-every", str(args.eval_every), "--keep-last", "1", "--log-every", "20", "--seed", "0",
         "--no-progress", *extra, *(["--resume"] if (run / "checkpoints").is_dir() else []))


def timed_medians(models: dict[str, object], batch: dict, repeats: int, full: bool) -> dict[str, float]:
    """Median seconds of one forward pass per model, the models alternating (so both see the same machine)."""
    import torch

    def once(model: object) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            (model if full else model.bert)(**batch)  # type: ignore[attr-defined]
        return time.perf_counter() - start

    for model in models.values():  # warm-up
        once(model)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(once(model))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default=str(ROOT / "weights" / "bert-demo"), help="the model to distil")
    parser.add_argument("--data", type=Path, help="prepared data with the teacher's tokenizer (default: prepare it)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-distill")
    parser.add_argument("--minutes", type=float, default=15.0, help="training time of each arm")
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4, help="peak learning rate of both arms")
    parser.add_argument("--eval-every", type=int, default=200, help="steps between evaluations and checkpoints")
    parser.add_argument("--train-eval-batches", type=int, default=10, help="batches of the evaluations during training")
    parser.add_argument("--eval-batches", type=int, default=73,
                        help="batches of the final comparison (73 × 32 covers WikiText-2 validation's 2,333 pairs)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the speed measurement")
    parser.add_argument("--repeats", type=int, default=7, help="timed forward passes per model")
    args = parser.parse_args()

    import torch

    from bert.data.dataset import PretrainingDataset
    from bert.engine.metrics import read_metrics
    from bert.heads import BertForPreTraining
    from bert.pretraining.evaluate import eval_collator, evaluate
    from bert.pretraining.student import save_student
    from bert.tokenizer.wordpiece import BertTokenizer

    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data or prepare_data(args.teacher, args.out)
    distilled, baseline, start = args.out / "distill", args.out / "baseline", args.out / "student-start"
    train_arm("distill", distilled, data, args, "--teacher", args.teacher,
              "--student-layers", str(args.student_layers))
    if not (start / "config.json").is_file():
        save_student(args.teacher, args.student_layers, start)
    train_arm("pretrain", baseline, data, args, "--init-from", str(start), "--objective", "mlm")

    torch.set_num_threads(args.threads)
    models = {"teacher": BertForPreTraining.from_pretrained(args.teacher),
              "distilled student": BertForPreTraining.from_pretrained(distilled / "final"),
              "baseline student": BertForPreTraining.from_pretrained(baseline / "final")}
    eval_data = PretrainingDataset(data / "eval")
    collator = eval_collator(BertTokenizer.from_pretrained(data / "tokenizer"), eval_data.max_seq_len)
    scores = {name: evaluate(model, eval_data, collator, args.batch_size, args.eval_batches * args.batch_size,
                             sentence=None) for name, model in models.items()}

    example = collator(eval_data.batch(list(range(8))))
    batch = {key: example[key] for key in ("input_ids", "token_type_ids", "attention_mask")}
    pair = {"teacher": models["teacher"], "student": models["distilled student"]}
    encoder = timed_medians(pair, batch, args.repeats, full=False)
    with_head = timed_medians(pair, batch, args.repeats, full=True)

    steps = {name: read_metrics(run / "metrics.jsonl")[-1]["step"] for name, run in
             (("distilled student", distilled), ("baseline student", baseline))}
    teacher_accuracy = scores["teacher"]["mlm_accuracy"]
    report = {
        "teacher": args.teacher, "data": str(data), "minutes_per_arm": args.minutes, "lr": args.lr,
        "batch_size": args.batch_size, "student_layers": args.student_layers, "steps": steps,
        "eval_examples": min(len(eval_data), args.eval_batches * args.batch_size),
        "held_out": scores,
        "share_of_teacher_accuracy": {name: s["mlm_accuracy"] / teacher_accuracy for name, s in scores.items()},
        "speed": {"threads": args.threads, "batch": list(batch["input_ids"].shape), "repeats": args.repeats,
                  "encoder_seconds": encoder, "with_mlm_head_seconds": with_head,
                  "encoder_speedup": encoder["teacher"] / encoder["student"],
                  "with_mlm_head_speedup": with_head["teacher"] / with_head["student"]},
        "parameters": {name: model.num_parameters() for name, model in models.items()},
    }
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")

    print(f"held-out MLM on {report['eval_examples']} examples of {data / 'eval'} (same masks); "
          f"{args.minutes:g} min of training per arm; speed: batch 8 × {batch['input_ids'].shape[1]}, "
          f"{args.threads} threads, median of {args.repeats}")
    print("| model | layers | parameters | steps | MLM accuracy | share of teacher's | MLM loss | "
          "encoder ms (speed-up) | with MLM head ms (speed-up) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, model in models.items():
        timing = "teacher" if name == "teacher" else "student"
        speed = (f"{encoder[timing] * 1e3:.0f} ({encoder['teacher'] / encoder[timing]:.2f}×) | "
                 f"{with_head[timing] * 1e3:.0f} ({with_head['teacher'] / with_head[timing]:.2f}×)")
        print(f"| {name} | {model.config.num_hidden_layers} | {model.num_parameters() / 1e6:.1f}M | "
              f"{steps.get(name, '—')} | {scores[name]['mlm_accuracy']:.3f} | "
              f"{report['share_of_teacher_accuracy'][name]:.1%} | {scores[name]['mlm_loss']:.3f} | {speed} |")
    print(f"target: >= 85% of the teacher's accuracy at >= 1.8× its speed (encoder: "
          f"{report['speed']['encoder_speedup']:.2f}×)")


if __name__ == "__main__":
    main()
