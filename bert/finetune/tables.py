"""Reading the rows of a CSV, TSV or JSONL file as dicts, and finding the text and label columns in them.

The format follows the file name: ``.csv`` (comma, quotes allowed), ``.tsv``/``.txt`` (tab, quotes taken
literally as GLUE's files need), ``.jsonl``/``.json`` (one JSON object per line). A byte-order mark is ignored,
column names are matched case-insensitively, and every problem (empty file, ragged row, bad JSON, missing column)
is a one-line :class:`~bert.errors.BertError` that names the file and line.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from bert.atomic import check_writable_directory, write_text_atomically
from bert.errors import BertError

# Tried in order when the user names no column (case-insensitive). Pairs first: a file with both "question" and
# "sentence" (QNLI) is a pair task, not a single-sentence one.
DEFAULT_PAIR_COLUMNS = (("sentence1", "sentence2"), ("question", "sentence"), ("question1", "question2"),
                        ("#1 string", "#2 string"), ("text_a", "text_b"), ("premise", "hypothesis"))
DEFAULT_TEXT_COLUMNS = ("sentence", "text")
DEFAULT_LABEL_COLUMNS = ("label", "labels", "quality", "score")


def read_text(path: str | Path, allow_empty: bool = False) -> str:
    """A data file's text (UTF-8, a byte-order mark dropped); BertError if it is missing, unreadable or empty."""
    path = Path(path)
    if not path.is_file():
        raise BertError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise BertError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    if not allow_empty and not text.strip():
        raise BertError(f"{path}: the file is empty")
    return text


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """The data rows of a CSV/TSV/JSONL file, each a dict column → value (strings for CSV/TSV)."""
    path = Path(path)
    text = read_text(path)
    suffix = path.suffix.lower()
    rows = _read_jsonl(path, text) if suffix in (".jsonl", ".json", ".ndjson") else _read_delimited(path, text, suffix)
    if not rows:
        raise BertError(f"{path}: the file has a header but no data rows")
    return rows


def _read_jsonl(path: Path, text: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise BertError(f"{path}:{number}: not valid JSON ({error.msg}); "
                            "expected one JSON object per line") from None
        if not isinstance(row, dict):
            raise BertError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def _read_delimited(path: Path, text: str, suffix: str) -> list[dict[str, Any]]:
    if suffix == ".csv":
        reader = csv.reader(text.splitlines())
    else:
        reader = csv.reader(text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        lines = [(reader.line_num, line) for line in reader]
    except csv.Error as error:
        raise BertError(f"{path}:{reader.line_num}: malformed row ({error})") from None
    lines = [(n, line) for n, line in lines if any(cell.strip() for cell in line)]
    if not lines:
        raise BertError(f"{path}: the file is empty")
    header = [name.strip() for name in lines[0][1]]
    rows = []
    for number, line in lines[1:]:
        if len(line) != len(header):
            raise BertError(f"{path}:{number}: {len(line)} columns but the header has {len(header)} "
                            f"({', '.join(header)})")
        rows.append(dict(zip(header, line, strict=True)))
    return rows


def find_column(rows: list[dict[str, Any]], name: str, path: str | Path, role: str = "column") -> str:
    """The actual key of column ``name`` (case-insensitive), or a BertError naming the columns there are."""
    columns = list(rows[0])
    for column in columns:
        if column.lower() == name.lower():
            return column
    raise BertError(f"{path}: no {role} {name!r}; the columns are: {', '.join(columns)}")


def resolve_text_columns(rows: list[dict[str, Any]], path: str | Path,
                         text_columns: list[str] | None = None) -> list[str]:
    """One (single sentences) or two (pairs) text columns: the named ones, else the first default that exists."""
    if text_columns:
        if len(text_columns) > 2:
            raise BertError(f"at most two text columns (a pair), got {', '.join(text_columns)}")
        return [find_column(rows, name, path, "text column") for name in text_columns]
    lower = {column.lower(): column for column in rows[0]}
    for first, second in DEFAULT_PAIR_COLUMNS:
        if first in lower and second in lower:
            return [lower[first], lower[second]]
    for name in DEFAULT_TEXT_COLUMNS:
        if name in lower:
            return [lower[name]]
    raise BertError(f"{path}: no text column found (looked for {', '.join(DEFAULT_TEXT_COLUMNS)} or the pairs "
                    f"{', '.join('+'.join(p) for p in DEFAULT_PAIR_COLUMNS)}); the columns are: "
                    f"{', '.join(rows[0])}; name yours with --text-column or --text-columns A,B")


def resolve_label_column(rows: list[dict[str, Any]], path: str | Path, label_column: str | None = None,
                         required: bool = True) -> str | None:
    """The label column: the named one, else the first default present; None when absent and not ``required``."""
    if label_column:
        return find_column(rows, label_column, path, "label column")
    lower = {column.lower(): column for column in rows[0]}
    for name in DEFAULT_LABEL_COLUMNS:
        if name in lower:
            return lower[name]
    if not required:
        return None
    raise BertError(f"{path}: no label column found (looked for {', '.join(DEFAULT_LABEL_COLUMNS)}); the columns "
                    f"are: {', '.join(rows[0])}; name yours with --label-column")


def write_jsonl(records: list[dict[str, Any]], path: str | Path | None) -> None:
    """Write one JSON object per line to ``path``, or print them when ``path`` is None."""
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if path is None:
        print(lines, end="")
        return
    check_writable_directory(Path(path).parent, "output folder")
    write_text_atomically(path, lines)
