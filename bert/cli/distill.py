"""``bert distill``: train a small student BERT to imitate a trained teacher (see :mod:`bert.train.distill`).

It takes every ``bert pretrain`` flag that makes sense for the student (length, optimisation, masking, evaluation,
checkpoints, --resume; the parser is ``bert pretrain``'s, inherited) and adds the teacher, the student's starting
point and the loss weights.
"""

from __future__ import annotations

import argparse

from bert.cli import pretrain


def _run(args: argparse.Namespace) -> None:
    import dataclasses

    from bert.train.distill import DistillConfig, distill  # torch and friends load only when this command runs

    # Every flag sets the DistillConfig field of its name, but for these three.
    fields = {f.name for f in dataclasses.fields(DistillConfig)}
    settings = {name: value for name, value in vars(args).items() if name in fields}
    distill(DistillConfig(
        **settings, mlm_probability=args.mask_prob, progress=not args.no_progress,
        model_overrides=None if args.dropout is None else {
            "hidden_dropout_prob": args.dropout, "attention_probs_dropout_prob": args.dropout}))


def register(subparsers: argparse._SubParsersAction) -> None:
    pretrain_parsers = argparse.ArgumentParser(add_help=False).add_subparsers()
    pretrain.register(pretrain_parsers)
    p = subparsers.add_parser(
        "distill", parents=[pretrain_parsers.choices["pretrain"]], conflict_handler="resolve",
        help="knowledge distillation: train a smaller student BERT to imitate a teacher (DistilBERT's recipe)",
        description="Distil a trained BERT (--teacher) into a student on a folder written by `bert prepare` with the "
                    "teacher's tokenizer. The student is K of the teacher's layers (--student-layers, default half) "
                    "with its embeddings, pooler and heads, or random weights of a given size (--student-config), or "
                    "a checkpoint (--init-from). Loss: alpha-ce × T² × KL(teacher ‖ student) of the MLM "
                    "distributions at temperature T on the masked positions + alpha-mlm × the MLM cross-entropy + "
                    "alpha-cos × (1 − cosine) of the last hidden states on every real token. The teacher only "
                    "predicts (eval mode, no gradients). Everything else is `bert pretrain`'s: RUN/metrics.jsonl "
                    "(each loss term; held-out MLM of student and teacher), RUN/curves.png, RUN/checkpoints/, "
                    "--resume, Ctrl-C, torchrun; RUN/final/ is the student (model + tokenizer).")
    p.add_argument("--teacher", required=True, metavar="NAME|DIR",
                   help="the trained model to imitate (a folder or a name, as --model takes); it needs its MLM head, "
                        "and the data must have been prepared with its tokenizer")
    p.add_argument("--objective", choices=("mlm",), default="mlm",
                   help="the student trains the masked LM only; the NSP head is copied and left as it is")
    student = p.add_argument_group("the student (at most one; default: --student-layers with half the teacher's)")
    student.add_argument("--student-layers", type=int, metavar="K",
                         help="K of the teacher's layers, spread evenly from the first (6 of 12: 0, 2, 4, 6, 8, 10), "
                              "with the teacher's embeddings, pooler and heads")
    student.add_argument("--student-config", "--config", dest="config", metavar="NAME|PATH",
                         help="random weights of this size instead: a preset (tiny, mini, small, ...) or a "
                              "config.json; the cosine loss needs the teacher's hidden size (else --alpha-cos 0)")
    student.add_argument("--init-from", metavar="NAME|DIR",
                         help="start the student from this checkpoint instead (the data's vocabulary, too)")
    loss = p.add_argument_group("the loss (defaults: DistilBERT's)")
    loss.add_argument("--temperature", type=float, default=2.0, metavar="T",
                      help="softmax temperature of the soft targets (default 2)")
    loss.add_argument("--alpha-ce", type=float, default=5.0, metavar="W",
                      help="weight of the soft-target loss, KL(teacher ‖ student) × T² (default 5)")
    loss.add_argument("--alpha-mlm", type=float, default=2.0, metavar="W",
                      help="weight of the hard MLM cross-entropy (default 2)")
    loss.add_argument("--alpha-cos", type=float, default=1.0, metavar="W",
                      help="weight of the cosine loss between last hidden states (default 1)")
    p.set_defaults(func=_run)
