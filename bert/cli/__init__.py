"""The ``bert`` command line: one sub-command per job, grouped by concern in the modules of this package.

Each module exposes ``register(subparsers)``, which adds its sub-commands and sets ``func`` on each parser.
:func:`main` turns :class:`~bert.errors.BertError` into a one-line message and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from bert.errors import BertError


def build_parser() -> argparse.ArgumentParser:
    from bert.cli import finetune, inference, pretrain, pretraining

    parser = argparse.ArgumentParser(prog="bert", description="BERT in plain PyTorch: inference, pretraining, tools.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (inference, pretraining, pretrain, finetune):
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BertError as error:
        print(f"bert {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bert {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
