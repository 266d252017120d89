"""Settings defined once: a config dataclass's field is its name, type, default and help, and from it come the CLI
flag (``--field-name``), its parsing back into the config, and whether a resumed run may change it.

    @dataclass
    class MyConfig:
        lr: float = setting(1e-4, "peak learning rate", group="optimisation")

    add_arguments(parser, MyConfig)                      # --lr, in the group "optimisation", "(default 0.0001)"
    config = from_arguments(MyConfig, parser.parse_args())

A bool field is a switch: ``--name`` when it defaults to False, ``--name`` / ``--no-name`` when it defaults to True
or None (a recipe decides);
a list field takes one or more values, and may be repeated.
``aliases`` are older spellings of the flag still accepted (those README or scripts use); ``free_on_resume`` marks a
setting that changes neither the batches nor the arithmetic of an update, so ``--resume`` may change it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ArgumentGroups = dict[str, argparse._ActionsContainer]


def setting(default: Any = dataclasses.MISSING, help: str = "", *, group: str | None = None,  # noqa: A002
            metavar: str | None = None, choices: Sequence[Any] | None = None, aliases: Sequence[str] = (),
            required: bool = False, free_on_resume: bool = False) -> Any:
    """A dataclass field carrying its CLI flag's help, group, metavar, choices and aliases. ``required``: the CLI
    requires the flag although the dataclass has a default (checked by the config's ``validate`` in Python)."""
    metadata = {"help": help, "group": group, "metavar": metavar, "choices": choices, "aliases": tuple(aliases),
                "required": required, "free_on_resume": free_on_resume}
    return dataclasses.field(default=default, metadata=metadata)


def flag(name: str) -> str:
    """The CLI flag of a field: ``mask_prob`` → ``--mask-prob``."""
    return "--" + name.replace("_", "-")


def value_type(hint: Any) -> type:
    """The type a flag's value is parsed as: the annotation without its ``None`` (``str | Path`` reads a str)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] if isinstance(hint, types.UnionType) else [hint]
    base = typing.get_origin(args[0]) or args[0]
    return str if base is Path else base


def json_object(text: str) -> dict[str, Any]:
    """A dict-valued flag's value: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser, config_class: type, *, exclude: Sequence[str] = (),
                  defaults: dict[str, Any] | None = None, groups: ArgumentGroups | None = None) -> ArgumentGroups:
    """Add one flag per field of ``config_class`` (but ``exclude``) to ``parser``, in argument groups named by the
    fields' ``group`` (created in the order first met, or taken from ``groups``); ``defaults`` replaces a field's
    default on this parser only. Returns the groups, to add other arguments to them."""
    groups = {} if groups is None else groups
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if field.name in exclude:
            continue
        meta = field.metadata
        title = meta.get("group")
        target = parser if title is None else groups.setdefault(title, parser.add_argument_group(title))
        default = (defaults or {}).get(field.name, field.default)
        required = meta.get("required", False) or default is dataclasses.MISSING
        kind = value_type(hints[field.name])
        help_text = meta.get("help", "").replace("%", "%%")  # argparse formats help with %: a "1%" must stay text
        options: dict[str, Any] = {"dest": field.name, "help": help_text}
        if kind is bool:
            # a switch that defaults to True, or to None (a recipe decides), can be turned off as well as on
            options["action"] = argparse.BooleanOptionalAction if default is not False else "store_true"
        else:
            if kind is list:  # one or more values, the flag repeatable: --probe "a [MASK]" --probe "b [MASK]"
                kind, options["nargs"], options["action"] = str, "+", "extend"
            options["type"] = json_object if kind is dict else kind
            options["metavar"] = meta.get("metavar") or ("JSON" if kind is dict else None)
            if meta.get("choices") is not None:
                options["choices"] = meta["choices"]
            if default not in (None, dataclasses.MISSING) and not required and "default" not in help_text:
                options["help"] = f"{help_text} (default {default})".lstrip()
        if required:
            options["required"] = True
        else:
            options["default"] = default
        target.add_argument(flag(field.name), *meta.get("aliases", ()), **options)
    return groups


def from_arguments(config_class: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """The config whose every field is the value of its flag in ``args`` (or of ``overrides``)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if hasattr(args, f.name)}
    return config_class(**{**values, **overrides})


def fixed_on_resume(config: Any, paths: Sequence[str] = ()) -> dict[str, Any]:
    """The settings a resumed run must share with its checkpoint: every field not marked ``free_on_resume``, those
    in ``paths`` (a folder or file) resolved so that another spelling of the same path is no change."""
    settings = {}
    for field in dataclasses.fields(config):
        if field.metadata.get("free_on_resume"):
            continue
        value = getattr(config, field.name)
        if field.name in paths and value is not None and Path(value).exists():
            value = str(Path(value).resolve())
        settings[field.name] = str(value) if isinstance(value, Path) else value
    return settings


def settings_dict(config: Any) -> dict[str, Any]:
    """A config's fields as JSON values (paths as strings): what ``RUN/settings.json`` holds, and what
    ``--args-file`` reads back."""
    return {name: str(value) if isinstance(value, Path) else value
            for name, value in dataclasses.asdict(config).items()}


def free_on_resume(config_class: type) -> frozenset[str]:
    """The fields of ``config_class`` a resumed run may change."""
    return frozenset(f.name for f in dataclasses.fields(config_class) if f.metadata.get("free_on_resume"))


def settings_differences(then: dict[str, Any], now: dict[str, Any],
                         describe: Callable[[str], str | None] = lambda key: None) -> list[str]:
    """Human-readable differences between a checkpoint's settings and this run's, e.g. ``batch-size 8 (now 4)``
    (``describe`` may word a key's difference itself). A setting the checkpoint does not have (one added to bert
    after it was written, such as ``fp16``) is no difference while it is off (False, None or 0)."""
    differences = []
    for key in [*then, *(k for k in now if k not in then)]:
        if key not in then and (now[key] is None or now[key] is False or now[key] == 0):
            continue
        if then.get(key) != now.get(key):
            differences.append(describe(key) or f"{key.replace('_', '-')} {then.get(key)} (now {now.get(key)})")
    return differences
