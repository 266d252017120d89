"""``bert distill``: train a small student BERT to imitate a trained teacher (see :mod:`bert.pretraining.distill`).

Its flags are :class:`~bert.pretraining.distill.DistillConfig`'s fields: every ``bert pretrain`` flag that makes sense
for the student (length, optimisation, masking, evaluation, checkpoints, --resume), the teacher, the student's
starting point and the loss weights.
"""

from __future__ import annotations

import argparse

from bert.cli.args_file import ARGS_FILE, ARGS_FILE_HELP
from bert.pretraining.distill import DistillConfig
from bert.settings import add_arguments, from_arguments


def _run(args: argparse.Namespace) -> None:
    from bert.pretraining.distill import distill

    distill(from_arguments(DistillConfig, args))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "distill",
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
    add_arguments(p, DistillConfig, exclude=("patience",))  # no best model to be patient for
    p.add_argument(ARGS_FILE, metavar="FILE", help=ARGS_FILE_HELP)
    p.set_defaults(func=_run)
