"""``bert pretrain``: train a BERT (or a RoBERTa, ALBERT, DistilBERT) from scratch or from a checkpoint on data written
by ``bert prepare`` (see :mod:`bert.pretraining`). Its flags are
:class:`~bert.pretraining.config.PretrainConfig`'s fields."""

from __future__ import annotations

import argparse

from bert.cli.args_file import ARGS_FILE, ARGS_FILE_HELP
from bert.pretraining.config import PretrainConfig
from bert.settings import add_arguments, from_arguments


def _run(args: argparse.Namespace) -> None:
    from bert.pretraining import pretrain  # the training code loads only when this command runs

    pretrain(from_arguments(PretrainConfig, args))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain", help="pretrain BERT or a variant (masked LM [+ next sentence or sentence order]) on prepared data, "
                         "from scratch or a checkpoint",
        description="Pretrain on a folder written by `bert prepare`, from random weights or (--init-from) from a "
                    "pretrained checkpoint: BertForPreTraining (MLM + NSP, MLM + SOP or MLM), AlbertForPreTraining "
                    "(MLM + SOP or MLM), RobertaForMaskedLM or DistilBertForMaskedLM (MLM). Writes RUN/metrics.jsonl, "
                    "RUN/curves.png, RUN/checkpoints/step-NNNNNNN/ and, at the end, RUN/final/ (model + tokenizer). "
                    "Multi-process: torchrun --nproc_per_node N -m bert pretrain ...")
    add_arguments(p, PretrainConfig, exclude=("patience",))  # no best model to be patient for
    p.add_argument(ARGS_FILE, metavar="FILE", help=ARGS_FILE_HELP)
    p.set_defaults(func=_run)
