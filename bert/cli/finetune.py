"""``bert finetune {classify|ner|qa}`` and ``bert predict {classify|ner|qa}`` (see :mod:`bert.finetune`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from bert.errors import BertError

TASKS = ("classify", "ner", "qa")
FORMATS = {"classify": "CSV/TSV/JSONL with text and label columns", "ner": "CoNLL (token ... tag per line)",
           "qa": "SQuAD v1.1 JSON"}
METRIC_NAMES = ("accuracy", "f1", "precision", "recall", "exact_match", "pearson", "spearman")


def _columns(args: argparse.Namespace) -> list[str] | None:
    if args.text_columns:
        return [c.strip() for c in args.text_columns.split(",") if c.strip()]
    return [args.text_column] if args.text_column else None


def _run_finetune(args: argparse.Namespace) -> None:
    from bert.finetune import FinetuneConfig, finetune_classifier, finetune_ner, finetune_qa
    from bert.finetune.trainer import refuse_overwrite
    from bert.weights import check_writable_directory

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    check_writable_directory(args.out, create=False)  # before any loading and tokenizing, not after
    refuse_overwrite(args.out, args.resume)
    config = FinetuneConfig(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        max_seq_len=args.max_seq_len or (384 if args.task == "qa" else 128), warmup=args.warmup,
        weight_decay=args.weight_decay, grad_accum=args.grad_accum, seed=args.seed, time_budget=args.time_budget,
        max_steps=args.max_steps, group_by_length=args.group_by_length, max_grad_norm=args.max_grad_norm,
        eval_batch_size=args.eval_batch_size, progress=not args.no_progress, device=args.device,
        gradient_checkpointing=args.gradient_checkpointing, eval_every=args.eval_every, metric=args.metric,
        patience=args.patience, save_every=args.save_every, keep_last=args.keep_last, resume=args.resume)
    if args.task == "classify":
        result = finetune_classifier(args.model, args.train, args.eval, args.out, _columns(args), args.label_column,
                                     config=config)
    elif args.task == "ner":
        result = finetune_ner(args.model, args.train, args.eval, args.out, config=config)
    else:
        result = finetune_qa(args.model, args.train, args.eval, args.out, args.train_articles, args.eval_articles,
                             args.doc_stride, args.max_query_len, config=config,
                             max_context=not args.no_max_context)
    shown = {k: v for k, v in result.items() if k in METRIC_NAMES and isinstance(v, float)}
    summary = ", ".join(f"{k} {v:.4f}" for k, v in shown.items())
    if result["interrupted"]:
        then = (f"the latest checkpoint is {result['checkpoint']}; to continue exactly from there, run the same "
                "command with --resume"
                if result["checkpoint"] else f"to train it further, pass --model {args.out}")
        print(f"bert finetune: interrupted at step {result['steps']}; the best model so far (or the current one, "
              f"before any evaluation) is in {args.out}; {then}", file=sys.stderr)
        raise KeyboardInterrupt  # exit status 130, as for any interrupted command
    if result["stopped_by"] == "patience":
        summary += f"; stopped early at step {result['steps']}, best at step {result['best_step']}"
    print(f"best model in {args.out} ({summary}); metrics in {args.out}/metrics.json", file=sys.stderr)


def _run_predict(args: argparse.Namespace) -> None:
    from bert.finetune import classification, ner, squad
    from bert.finetune.tables import write_jsonl

    metrics = None
    if args.task == "classify":
        if args.input:
            predictions, metrics = classification.predict_classifier_file(
                args.model, args.input, _columns(args), args.label_column, args.max_seq_len or 512)
        elif args.text is not None:
            pairs = [args.text_pair] if args.text_pair is not None else None
            predictions = classification.predict_classifier(args.model, [args.text], pairs, args.max_seq_len or 512)
        else:
            raise BertError("give --input FILE or --text TEXT [--text-pair TEXT]")
    elif args.task == "ner":
        if args.input:
            predictions, metrics = ner.predict_ner_file(args.model, args.input, args.max_seq_len or 512)
        elif args.text is not None:
            predictions = ner.predict_ner(args.model, [args.text], args.max_seq_len or 512)
        else:
            raise BertError("give --input FILE (CoNLL) or --text TEXT")
    else:
        if args.input:
            predictions, metrics = squad.predict_qa_file(args.model, args.input, args.articles,
                                                         args.max_seq_len or 384, args.doc_stride,
                                                         args.max_query_len, max_context=not args.no_max_context)
        elif args.question is not None and args.context is not None:
            predictions = squad.predict_qa(args.model, [(args.question, args.context)], args.max_seq_len or 384,
                                           args.doc_stride, args.max_query_len,
                                           max_context=not args.no_max_context)
        else:
            raise BertError("give --input FILE (SQuAD JSON or JSONL) or --question Q --context C")
    write_jsonl(predictions, args.output)
    if metrics is not None:
        flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        print(f"metrics: {json.dumps(flat)}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    finetune = subparsers.add_parser(
        "finetune", help="fine-tune a pretrained BERT: classify (sentences/pairs), ner (CoNLL), qa (SQuAD)",
        description="Fine-tune a checkpoint on a task. The best model (by the eval metric) is saved to OUT with its "
                    "tokenizer and label map (loadable by bert and transformers), plus OUT/metrics.json and "
                    "OUT/curves.png. Ctrl-C stops and keeps the best model so far; with --save-every, a run "
                    "that was stopped (even by kill -9) continues exactly with --resume.")
    tasks = finetune.add_subparsers(dest="task", metavar="TASK", required=True)
    for task in TASKS:
        p = tasks.add_parser(task, help=f"train on {FORMATS[task]}")
        p.add_argument("--model", required=True, help="pretrained checkpoint folder or model name")
        p.add_argument("--train", required=True, metavar="FILE", help=FORMATS[task])
        p.add_argument("--eval", metavar="FILE", help="evaluation file (same format); evaluated every epoch")
        p.add_argument("--eval-every", type=int, default=0, metavar="N",
                       help="also evaluate every N optimizer steps (default: after each epoch only)")
        p.add_argument("--metric", metavar="NAME", help=f"evaluation metric that picks the best model (default "
                       f"{'accuracy, or pearson for regression' if task == 'classify' else 'f1'})")
        p.add_argument("--patience", type=int, metavar="P",
                       help="stop after P evaluations in a row without a better --metric")
        p.add_argument("--out", required=True, metavar="DIR", help="folder for the fine-tuned model and metrics")
        p.add_argument("--epochs", type=int, default=3)
        p.add_argument("--lr", type=float, default=2e-5, help="peak learning rate (default 2e-5)")
        p.add_argument("--batch-size", type=int, default=32)
        p.add_argument("--eval-batch-size", type=int, default=64)
        p.add_argument("--max-seq-len", type=int,
                       help=f"word pieces per input (default {384 if task == 'qa' else 128})")
        p.add_argument("--warmup", type=float, default=0.1, help="warmup fraction of the steps (default 0.1)")
        p.add_argument("--weight-decay", type=float, default=0.01, help="none on biases/LayerNorm (default 0.01)")
        p.add_argument("--grad-accum", type=int, default=1, metavar="K", help="micro-batches per optimizer step")
        p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: off)")
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--time-budget", type=float, metavar="MINUTES", help="stop (and evaluate) after this long")
        p.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps")
        p.add_argument("--group-by-length", action="store_true", help="batch similar lengths together (less padding)")
        p.add_argument("--save-every", type=int, default=0, metavar="N",
                       help="write a checkpoint to OUT/checkpoints every N optimizer steps (default: none)")
        p.add_argument("--keep-last", type=int, default=3, metavar="K", help="checkpoints kept (0: all; default 3)")
        p.add_argument("--resume", action="store_true",
                       help="continue exactly from the latest complete checkpoint in OUT (same settings)")
        p.add_argument("--gradient-checkpointing", action="store_true",
                       help="recompute each layer in backward: far less memory on long inputs, ~1/3 more compute")
        p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        _task_options(p, task, training=True)
        p.set_defaults(func=_run_finetune)

    predict = subparsers.add_parser(
        "predict", help="predict with a fine-tuned model (classify, ner, qa); writes JSONL",
        description="Predict with a model written by `bert finetune`. Reads the training formats (or text on the "
                    "command line) and writes one JSON object per input; metrics go to stderr when the input has "
                    "gold labels.")
    tasks = predict.add_subparsers(dest="task", metavar="TASK", required=True)
    for task in TASKS:
        p = tasks.add_parser(task, help=f"predict on {FORMATS[task]} or command-line text")
        p.add_argument("--model", required=True, metavar="DIR", help="fine-tuned model folder")
        p.add_argument("--input", metavar="FILE", help=FORMATS[task] + (" or JSONL question/context" if task == "qa"
                                                                        else ""))
        p.add_argument("--output", metavar="FILE.jsonl", help="where to write predictions (default: stdout)")
        p.add_argument("--max-seq-len", type=int, help="word pieces per input")
        if task == "qa":
            p.add_argument("--question")
            p.add_argument("--context")
        else:
            p.add_argument("--text", help="one text to predict on")
            if task == "classify":
                p.add_argument("--text-pair", help="second text of a pair")
        _task_options(p, task, training=False)
        p.set_defaults(func=_run_predict)


def _task_options(p: argparse.ArgumentParser, task: str, training: bool) -> None:
    if task == "classify":
        p.add_argument("--text-column", help="text column (default: sentence or text)")
        p.add_argument("--text-columns", metavar="A,B", help="two text columns of a pair, e.g. sentence1,sentence2")
        p.add_argument("--label-column", help="label column (default: label)")
    elif task == "qa":
        p.add_argument("--doc-stride", type=int, default=128, help="context pieces between window starts")
        p.add_argument("--max-query-len", type=int, default=64, help="question pieces kept")
        p.add_argument("--no-max-context", action="store_true",
                       help="let every window propose every answer start (default: a start counts only in the "
                            "window where its piece has the most context, as in the original run_squad.py)")
        if training:
            p.add_argument("--train-articles", metavar="START:STOP", help="slice of the train file's articles")
            p.add_argument("--eval-articles", metavar="START:STOP", help="slice of the eval file's articles")
        else:
            p.add_argument("--articles", metavar="START:STOP", help="slice of the file's articles")
