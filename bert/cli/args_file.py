"""``--args-file FILE``: a training command's settings from a JSON object, as if given as flags; the flags on the
command line win. A run's own ``RUN/settings.json`` (every setting it trained with, the recipe's included) is such a
file, so a run can be repeated or varied from it:

    bert pretrain --args-file run/settings.json --out run-2 --seed 1

The keys are the flags' names (``mask_prob`` or ``mask-prob`` for ``--mask-prob``); ``true``/``false`` switch a
flag on or off, ``null`` leaves a setting at its default (and a key the command has no flag for may be ``null``), a
list repeats a flag that takes several values, an object is passed as JSON (``--model-overrides``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bert.errors import BertError, kind_of

ARGS_FILE = "--args-file"
ARGS_FILE_HELP = "read settings from this JSON file (a run's settings.json, or your own); flags given here win"


def command_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub-)parser that ``argv``'s leading command words select: ``["finetune", "ner", ...]`` → ``finetune
    ner``'s."""
    for word in argv:
        subcommands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if subcommands is None or word not in subcommands.choices:
            break
        parser = subcommands.choices[word]
    return parser


def read_settings(path: str) -> dict[str, Any]:
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise BertError(f"{ARGS_FILE} {path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BertError(f"{ARGS_FILE} {path} is not JSON: {error}") from None
    if not isinstance(settings, dict):
        raise BertError(f"{ARGS_FILE} {path} must hold a JSON object of settings, not {kind_of(settings)}")
    return settings


def as_flags(flag: str, value: Any, action: argparse.Action) -> list[str]:
    """The command-line words that give ``flag`` the JSON ``value``."""
    if value is None:
        return []
    if isinstance(action, argparse.BooleanOptionalAction):
        return [flag if value else "--no-" + flag[2:]]
    if isinstance(action, argparse._StoreTrueAction):
        return [flag] if value else []
    if isinstance(value, list):
        return [flag, *map(str, value)] if value else []
    return [flag, json.dumps(value) if isinstance(value, dict) else str(value)]


def expand_args_file(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with ``--args-file FILE`` replaced by the flags the file's settings stand for, those the command
    line gives itself left out (so they win wherever they stand); BertError for an unreadable file or a key that is
    not one of the command's flags."""
    if ARGS_FILE not in argv:
        return argv
    at = argv.index(ARGS_FILE)
    options = {option: action for action in command_parser(parser, argv[:at])._actions
               for option in action.option_strings}
    if ARGS_FILE not in options:  # not a training command: argparse says so
        return argv
    if at + 1 >= len(argv):
        raise BertError(f"{ARGS_FILE} needs a file")
    path, rest = argv[at + 1], argv[:at] + argv[at + 2:]
    given = {word.split("=", 1)[0] for word in rest if word.startswith("--")}
    words, unknown = [], []
    for key, value in read_settings(path).items():
        flag = "--" + key.replace("_", "-")
        if flag not in options or flag in (ARGS_FILE, "--help", "--help-all"):
            if value is not None:  # a setting this command has no flag for, left unset (pretraining's patience)
                unknown.append(key)
        elif flag not in given and "--no-" + flag[2:] not in given:
            words += as_flags(flag, value, options[flag])
    if unknown:
        raise BertError(f"{ARGS_FILE} {path}: {', '.join(unknown)}: not a setting of this command (see its --help-all)")
    return argv[:at] + words + argv[at + 2:]
