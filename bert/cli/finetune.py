"""``bert finetune {classify|ner|qa}`` and ``bert predict {classify|ner|qa}`` (see :mod:`bert.finetune`).

``bert finetune``'s training flags are :class:`~bert.finetune.config.FinetuneConfig`'s fields; the others name the
model, the files and the task's options."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from bert.cli.args_file import ARGS_FILE, ARGS_FILE_HELP
from bert.cli.inference import device_option, load_model, precision_options
from bert.errors import BertError
from bert.finetune.config import FinetuneConfig
from bert.settings import add_arguments, from_arguments

JOBS = ("classify", "ner", "qa")  # the fine-tuning jobs: bert finetune JOB, bert predict JOB
FORMATS = {"classify": "CSV/TSV/JSONL/JSON/Parquet (.gz too) with text and label columns",
           "ner": "CoNLL (token ... tag per line), or JSONL/JSON/Parquet rows of tokens and ner_tags (or tags)",
           "qa": "SQuAD v1.1 JSON, or JSONL/JSON/Parquet rows of question, context and answers"}
PREDICT_HEADS = {"classify": "sequence_classification", "ner": "token_classification", "qa": "question_answering"}
METRIC_NAMES = ("accuracy", "f1", "precision", "recall", "exact_match", "pearson", "spearman")


def _columns(args: argparse.Namespace) -> list[str] | None:
    if args.text_columns:
        return [c.strip() for c in args.text_columns.split(",") if c.strip()]
    return [args.text_column] if args.text_column else None


def _run_finetune(args: argparse.Namespace) -> None:
    from bert.atomic import check_writable_directory
    from bert.engine.checkpointing import refuse_overwrite
    from bert.finetune import finetune_classifier, finetune_ner, finetune_qa

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    check_writable_directory(args.out, create=False)  # before any loading and tokenizing, not after
    refuse_overwrite(args.out, args.resume)
    config = from_arguments(FinetuneConfig, args)
    if args.task == "classify":
        result = finetune_classifier(args.model, args.train, args.eval, args.out, _columns(args), args.label_column,
                                     config=config)
    elif args.task == "ner":
        result = finetune_ner(args.model, args.train, args.eval, args.out, config=config,
                              label_names=args.label_names)
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
    model = load_model(args, PREDICT_HEADS[args.task], args.precision)  # (model, tokenizer)
    if args.task == "classify":
        if args.input:
            predictions, metrics = classification.predict_classifier_file(
                model, args.input, _columns(args), args.label_column, args.max_seq_len or 512)
        elif args.text is not None:
            pairs = [args.text_pair] if args.text_pair is not None else None
            predictions = classification.predict_classifier(model, [args.text], pairs, args.max_seq_len or 512)
        else:
            raise BertError("give --input FILE or --text TEXT [--text-pair TEXT]")
    elif args.task == "ner":
        if args.input:
            predictions, metrics = ner.predict_ner_file(model, args.input, args.max_seq_len or 512,
                                                        label_names=args.label_names)
        elif args.text is not None:
            predictions = ner.predict_ner(model, [args.text], args.max_seq_len or 512)
        else:
            raise BertError("give --input FILE (CoNLL) or --text TEXT")
    else:
        if args.input:
            predictions, metrics = squad.predict_qa_file(model, args.input, args.articles,
                                                         args.max_seq_len or 384, args.doc_stride,
                                                         args.max_query_len, max_context=not args.no_max_context)
        elif args.question is not None and args.context is not None:
            predictions = squad.predict_qa(model, [(args.question, args.context)], args.max_seq_len or 384,
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
    for task in JOBS:
        p = tasks.add_parser(task, help=f"train on {FORMATS[task]}")
        p.add_argument("--model", required=True, help="pretrained checkpoint folder or model name")
        p.add_argument("--train", required=True, metavar="FILE", help=FORMATS[task])
        p.add_argument("--eval", metavar="FILE", help="evaluation file (same format); evaluated every epoch")
        p.add_argument("--out", required=True, metavar="DIR", help="folder for the fine-tuned model and metrics")
        add_arguments(p, FinetuneConfig, defaults={"max_seq_len": 384} if task == "qa" else None)
        _task_options(p, task, training=True)
        p.add_argument(ARGS_FILE, metavar="FILE", help=ARGS_FILE_HELP)
        p.set_defaults(func=_run_finetune)

    predict = subparsers.add_parser(
        "predict", help="predict with a fine-tuned model (classify, ner, qa); writes JSONL",
        description="Predict with a model written by `bert finetune`. Reads the training formats (or text on the "
                    "command line) and writes one JSON object per input; metrics go to stderr when the input has "
                    "gold labels.")
    tasks = predict.add_subparsers(dest="task", metavar="TASK", required=True)
    for task in JOBS:
        p = tasks.add_parser(task, help=f"predict on {FORMATS[task]} or command-line text")
        p.add_argument("--model", required=True, metavar="DIR", help="fine-tuned model folder")
        p.add_argument("--input", metavar="FILE", help=FORMATS[task] + (" (answers optional)" if task == "qa" else ""))
        p.add_argument("--output", metavar="FILE.jsonl", help="where to write predictions (default: stdout)")
        p.add_argument("--max-seq-len", type=int, help="word pieces per input")
        if task == "qa":
            p.add_argument("--question", help="one question to answer (with --context)")
            p.add_argument("--context", help="the passage that holds its answer")
        else:
            p.add_argument("--text", help="one text to predict on")
            if task == "classify":
                p.add_argument("--text-pair", help="second text of a pair")
        _task_options(p, task, training=False)
        precision_options(p)
        device_option(p)
        p.set_defaults(func=_run_predict)


def _task_options(p: argparse.ArgumentParser, task: str, training: bool) -> None:
    if task == "classify":
        p.add_argument("--text-column", help="text column (default: sentence or text)")
        p.add_argument("--text-columns", metavar="A,B", help="two text columns of a pair, e.g. sentence1,sentence2")
        p.add_argument("--label-column", help="label column (default: label)")
    elif task == "ner":
        p.add_argument("--label-names", metavar="FILE|A,B,...",
                       help="the names of integer tags (tag i is the i-th name): a file with one per line, or a comma "
                            "list, e.g. O,B-PER,I-PER (Hugging Face keeps them in features['ner_tags'])")
    elif task == "qa":
        p.add_argument("--doc-stride", type=int, default=128,
                       help="context pieces between window starts (default 128)")
        p.add_argument("--max-query-len", type=int, default=64, help="question pieces kept (default 64)")
        p.add_argument("--no-max-context", action="store_true",
                       help="let every window propose every answer start (default: a start counts only in the "
                            "window where its piece has the most context, as in the original run_squad.py)")
        if training:
            p.add_argument("--train-articles", metavar="START:STOP", help="slice of the train file's articles")
            p.add_argument("--eval-articles", metavar="START:STOP", help="slice of the eval file's articles")
        else:
            p.add_argument("--articles", metavar="START:STOP", help="slice of the file's articles")
