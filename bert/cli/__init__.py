"""The ``bert`` command line: one sub-command per job, grouped by concern in the modules of this package.

Each module exposes ``register(subparsers)``, which adds its sub-commands and sets ``func`` on each parser.
:func:`main` turns :class:`~bert.errors.BertError` into a one-line message and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from bert.errors import BertError


def build_parser() -> argparse.ArgumentParser:
    from bert.cli import data, distill, finetune, inference, pretrain, serve, study

    parser = argparse.ArgumentParser(prog="bert", description="BERT in plain PyTorch: inference, pretraining, tools.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (inference, data, pretrain, distill, finetune, study, serve):
        module.register(subparsers)
    return parser


@contextmanager
def one_line_warnings(command: str) -> Iterator[None]:
    """Show warnings as ``bert COMMAND: warning: ...`` lines on stderr instead of Python's file:line form."""

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        print(f"bert {command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with one_line_warnings(args.command):
            args.func(args)
    except BertError as error:
        print(f"bert {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"bert {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
