"""Reading the rows of a fine-tuning table as dicts, and finding the text and label columns in them.

A table is a file or a table held in memory (a list of dicts, a pandas DataFrame, a ``datasets.Dataset``), read by
:mod:`bert.data.rows`. A file's format follows its name (``.gz`` removed first): ``.csv`` (comma, quotes allowed),
``.jsonl``/``.ndjson`` (one JSON object per line), ``.json`` (a JSON array of objects, or one object per line),
``.parquet`` (``pip install pyarrow``), and ``.tsv``, ``.txt`` or any other name: tab-separated, quotes taken
literally as GLUE's files need. A byte-order mark is ignored, column names are matched case-insensitively, and every
problem (empty file, ragged row, bad JSON, missing column) is a one-line :class:`~bert.errors.BertError` that names
the file and line (or the table and row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bert.atomic import check_writable_directory, write_text_atomically
from bert.data.rows import find_column, read_rows
from bert.data.sources import open_input
from bert.errors import BertError

# Tried in order when the user names no column (case-insensitive). Pairs first: a file with both "question" and
# "sentence" (QNLI) is a pair task, not a single-sentence one.
DEFAULT_PAIR_COLUMNS = (("sentence1", "sentence2"), ("question", "sentence"), ("question1", "question2"),
                        ("#1 string", "#2 string"), ("text_a", "text_b"), ("premise", "hypothesis"))
DEFAULT_TEXT_COLUMNS = ("sentence", "text")
DEFAULT_LABEL_COLUMNS = ("label", "labels", "quality", "score")


def read_text(path: str | Path, allow_empty: bool = False) -> str:
    """A data file's text (UTF-8, a byte-order mark dropped, ``.gz`` decompressed); BertError if it is missing,
    unreadable or empty."""
    path = Path(path)
    if not path.is_file():
        raise BertError(f"{path}: file not found")
    with open_input(path) as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BertError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    if not allow_empty and not text.strip():
        raise BertError(f"{path}: the file is empty")
    return text


def read_table(source: Any) -> list[dict[str, Any]]:
    """The data rows of a table file (see the module docstring; CSV/TSV values are strings) or of a table held in
    memory."""
    return read_rows(source, default_format="tsv")


def resolve_text_columns(rows: list[dict[str, Any]], path: str | Path,
                         text_columns: list[str] | None = None) -> list[str]:
    """One (single sentences) or two (pairs) text columns: the named ones, else the first default that exists."""
    if text_columns:
        if len(text_columns) > 2:
            raise BertError(f"at most two text columns (a pair), got {', '.join(text_columns)}")
        return [find_column(rows[0], name, path, "text column") for name in text_columns]
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
        return find_column(rows[0], label_column, path, "label column")
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
