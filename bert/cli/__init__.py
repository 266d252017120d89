"""The ``bert`` command line: one sub-command per job, grouped by concern in the modules of this package.

Each module exposes ``register(subparsers)``, which adds its sub-commands and sets ``func`` on each parser.
Every ``--help`` fits a screen (:data:`SCREEN_LINES`): a command with more options than that shows each option
group's flags by name, and ``--help-all`` shows every option with its help and default.
:func:`main` turns :class:`~bert.errors.BertError` into a one-line message and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from bert._version import __version__
from bert.cli.args_file import expand_args_file
from bert.errors import BertError

SCREEN_LINES = 50  # the most lines a --help may print (at 80 columns or more)


class FullHelp(argparse._HelpAction):
    """``--help-all``: every option with its help and default, however long."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001 - argparse's signature
        parser._print_message(parser.format_full_help(), sys.stdout)
        parser.exit()


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose ``--help`` fits :data:`SCREEN_LINES`; sub-command parsers are of this class too."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse.ArgumentParser's signature
        super().__init__(*args, **kwargs)
        if self.add_help:
            self.add_argument("--help-all", action=FullHelp, help="show every option with its help and exit")

    def format_full_help(self) -> str:
        return super().format_help()

    def format_help(self) -> str:
        full = self.format_full_help()
        return full if full.count("\n") <= SCREEN_LINES else self.format_short_help()

    def format_short_help(self) -> str:
        """The usage with the required arguments only, the description, the required arguments with their help, then
        each group's other flags by name."""
        formatter = self._get_formatter()
        required = [a for a in self._actions if a.required or not a.option_strings]
        usage = formatter._format_usage(None, required, [], "usage: ").rstrip("\n") + " [options]"
        lines = [usage, "", *([*self._fill(self.description), ""] if self.description else [])]
        if required:
            section = self._get_formatter()
            section.start_section("required")
            section.add_arguments(required)
            section.end_section()
            lines.append(section.format_help().strip("\n"))
        for group in self._action_groups:
            names = [_names(a) for a in group._group_actions if a.option_strings and not a.required]
            if names:
                lines += [f"{group.title}:", *self._fill(" ".join(names), indent="  ")]
        lines += ["", f"{self.prog} --help-all: every option with its help and default"]
        return "\n".join(lines) + "\n"

    def _fill(self, text: str, indent: str = "") -> list[str]:
        width = self._get_formatter()._width
        return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)


def _names(action: argparse.Action) -> str:
    """An option's flag as the short help names it: ``--help``, ``--lr``, ``--progress/--no-progress``."""
    if isinstance(action, argparse.BooleanOptionalAction):
        return "/".join(action.option_strings)
    return next(s for s in action.option_strings if s.startswith("--"))


def version_line() -> str:
    """``bert 0.1.0 (torch 2.13.0+cpu)``: torch's version names its build, the first thing to check on a GPU box."""
    return f"bert {__version__} (torch {torch.__version__})"


def build_parser() -> argparse.ArgumentParser:
    from bert.cli import data, distill, finetune, inference, pretrain, serve, study

    parser = Parser(prog="bert", description="BERT in plain PyTorch: inference, pretraining, tools.")
    parser.add_argument("--version", action="version", version=version_line(),
                        help="show the versions of bert and torch (its build: +cpu, +cu121, ...) and exit")
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
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        argv = expand_args_file(parser, argv)
    except BertError as error:
        print(f"bert {argv[0] if argv else ''}: error: {error}", file=sys.stderr)
        return 1
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
