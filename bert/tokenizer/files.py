"""Reading a tokenizer's files: the folder to load from, ``tokenizer.json``, ``vocab.txt``, ``tokenizer_config.json``
(what they hold, and one-line errors when they are missing or broken)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from bert.atomic import copy_file_atomically
from bert.errors import BertError

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

DEFAULT_MODEL_MAX_LENGTH = 512
# Every file a tokenizer folder may hold: BERT and DistilBERT read vocab.txt, RoBERTa vocab.json + merges.txt, ALBERT
# tokenizer.json (from its spiece.model); each may carry tokenizer_config.json and special_tokens_map.json.
TOKENIZER_FILES = ("vocab.txt", "vocab.json", "merges.txt", "spiece.model", TOKENIZER_FILE, TOKENIZER_CONFIG_FILE,
                   "special_tokens_map.json")

# Bracketed tokens such as [CLS] or [unused12] are ignored when guessing whether a vocabulary is cased.
_BRACKETED = re.compile(r"^\[[^\]]*\]$")


def copy_tokenizer_files(source: Path, target: Path) -> None:
    """Copy the tokenizer files (:data:`TOKENIZER_FILES`) that folder ``source`` holds into folder ``target``, each
    whole (old or new) even if the copy is killed."""
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            copy_file_atomically(source / name, target / name)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; anything else is a one-line error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BertError(f"cannot read {path}: {exc}; fix or delete the file") from None
    if not isinstance(data, dict):
        raise BertError(f"{path} is not a JSON object; fix or delete the file")
    return data


def load_vocab(path: Path) -> dict[str, int]:
    """Read a one-token-per-line vocab.txt; a token's id is its line number (0-based)."""
    if not path.is_file():
        raise BertError(f"vocabulary file {path} not found; pass the vocab.txt of the model")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise BertError(
            f"cannot read vocabulary file {path}: {exc}; it must be UTF-8 text, one token per line"
        ) from None
    if lines and lines[-1] == "":
        lines.pop()  # trailing newline
    vocab: dict[str, int] = {}
    for index, line in enumerate(lines):
        vocab[line.rstrip("\r")] = index
    if not vocab:
        raise BertError(f"vocabulary file {path} is empty; re-download the model's vocab.txt")
    return vocab


def looks_uncased(vocab: dict[str, int] | Sequence[str]) -> bool:
    """A vocabulary with no upper-case tokens (other than bracketed specials like [CLS]) belongs to an uncased model."""
    return not any(tok != tok.lower() for tok in vocab if not _BRACKETED.match(tok))


def config_token(value: Any, default: str) -> str:
    """Special tokens in tokenizer_config.json are strings or AddedToken dicts (``{"content": "[CLS]", ...}``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return default


def config_max_length(config: dict[str, Any]) -> int:
    """``model_max_length`` of a tokenizer_config.json; transformers writes a huge sentinel (1e30) for "no limit",
    and the models' position tables have 512 rows, so anything absent or out of range means 512."""
    max_len = config.get("model_max_length")
    if not isinstance(max_len, int) or isinstance(max_len, bool) or not 0 < max_len <= 1_000_000:
        return DEFAULT_MODEL_MAX_LENGTH
    return max_len


def locate(name_or_path: str | os.PathLike, expected: str) -> tuple[Path, Path | None]:
    """The tokenizer folder for a folder, a file in it, or a model name (see :func:`bert.hub.resolve_model_dir`),
    and the file when one was named. ``expected`` describes the files a folder needs, for the error message."""
    path = Path(os.path.expanduser(os.fspath(name_or_path)))
    if path.is_file():
        return path.parent, path
    if path.is_dir():
        return path, None
    if path.is_absolute() or os.fspath(name_or_path).startswith((".", "~")):
        raise BertError(f"tokenizer folder {path} not found; pass a folder containing {expected}")
    try:
        from bert.hub import resolve_model_dir
    except ImportError:
        raise BertError(f"tokenizer folder {path} not found; pass a folder containing {expected}") from None
    folder = Path(resolve_model_dir(name_or_path))
    return (folder.parent if folder.is_file() else folder), None  # a weights file: its tokenizer lives next to it


def load_tokenizer_file(path: Path, advice: str) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` from a tokenizer.json; ``advice`` ends the error message if it cannot be parsed."""
    if not path.is_file():
        raise BertError(f"tokenizer file {path} not found; pass the tokenizer.json of the model")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exception for any parse error
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BertError(f"{path} is not a valid tokenizer.json ({reason}); {advice}") from None


def backend_spec(backend: Tokenizer, part: str) -> dict[str, Any]:
    """One part of a backend's tokenizer.json (``"model"``, ``"normalizer"``, ...), ``{}`` when it has none."""
    return json.loads(backend.to_str()).get(part) or {}


def lowercases(backend: Tokenizer) -> bool:
    """Whether the backend's normaliser lower-cases (a Lowercase step, or BertNormalizer with lowercase on)."""
    spec = backend_spec(backend, "normalizer")
    steps = spec.get("normalizers", [spec]) if spec.get("type") == "Sequence" else [spec]
    return any(step.get("type") == "Lowercase" or (step.get("type") == "BertNormalizer" and step.get("lowercase"))
               for step in steps)
