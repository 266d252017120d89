"""Rows of tables, each a dict column → value: from JSONL, JSON, CSV, TSV and Parquet files (``.gz`` too, see
:mod:`bert.data.sources`), or from tables held in memory (a list of dicts, a pandas DataFrame, a ``datasets.Dataset``).
``bert prepare`` reads one text column of them (:func:`column_texts`), fine-tuning whole rows.

The formats, named by a file's extension (:func:`table_format`):

``jsonl`` (``.jsonl``, ``.ndjson``)
    One JSON object per line; blank lines are skipped. Read as a stream.
``json`` (``.json``)
    A JSON array of objects, read whole; a ``.json`` file that does not start with ``[`` is read as JSON lines (what
    ``datasets``' ``to_json`` writes).
``csv`` / ``tsv`` (``.csv``, ``.tsv``)
    A header row, then one row per line: CSV with commas and quotes, TSV with tabs and quotes taken literally (as
    GLUE's files need). Rows with only blank cells are skipped; a row with another number of cells than the header
    is an error. Read as a stream.
``parquet`` (``.parquet``)
    Read in batches, only the columns asked for; needs ``pyarrow`` (``pip install pyarrow``).

Text is UTF-8 (a byte-order mark is dropped); column names are matched case-insensitively (:func:`find_column`);
every problem (empty file, bad JSON, ragged row, missing column, a text that is not a string) is a one-line
:class:`~bert.errors.BertError` naming the file and line or row.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from bert.data.sources import is_path, open_input, without_gz
from bert.errors import BertError, kind_of

TABLE_FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
              ".parquet": "parquet"}
BATCH_ROWS = 1024
CSV_FIELD_LIMIT = 2**31 - 1  # csv's default, 128 KiB per field, is less than one long document


def table_format(path: str | Path) -> str | None:
    """The table format a file's extension names (``.gz`` removed first), or None."""
    return EXTENSIONS.get(without_gz(path).suffix.lower())


def find_column(columns: Iterable[str], name: str, where: str | Path, role: str = "column") -> str:
    """The actual name of column ``name`` among ``columns`` (case-insensitive), or a BertError naming those there
    are; ``where`` (a file, or what :func:`describe` says) and ``role`` ("text column") word the error."""
    columns = [str(column) for column in columns]
    for column in columns:
        if column.lower() == name.lower():
            return column
    raise BertError(f"{where}: no {role} {name!r}; the columns are: {', '.join(columns)}")


# ------------------------------------------------------------------------------------------------------------ files

def iter_rows(path: Path, format: str, progress: Any = None, columns: list[str] | None = None) -> Iterator[dict]:
    """The rows of a table file in ``format`` (one of :data:`TABLE_FORMATS`); ``columns``: the only ones a Parquet
    file needs to read (other formats parse whole rows anyway). ``progress`` as for
    :func:`~bert.data.sources.open_input`. A file without data rows is a BertError."""
    with open_input(path, progress) as handle:
        if format == "jsonl":
            rows = _json_lines(path, handle)
        elif format == "json":
            rows = _json_rows(path, handle)
        elif format in ("csv", "tsv"):
            rows = _delimited_rows(path, handle, format)
        elif format == "parquet":
            rows = _parquet_rows(path, handle, columns)
        else:
            raise BertError(f"unknown table format {format!r}; use one of {', '.join(TABLE_FORMATS)}")
        count = 0
        for count, row in enumerate(rows, 1):  # noqa: B007 - count is read after the loop
            yield row
    if count == 0:
        raise BertError(f"{path}: the file holds no data rows")


def _json_lines(path: Path, lines: Iterable[bytes | str]) -> Iterator[dict]:
    blank = True
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        blank = False
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8"
            raise BertError(f"{path}:{number}: not valid JSON ({reason}); expected one JSON object per line") from None
        if not isinstance(row, dict):
            raise BertError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
        yield row
    if blank:
        raise BertError(f"{path}: the file is empty")


def _json_rows(path: Path, handle: BinaryIO) -> Iterator[dict]:
    try:
        text = handle.read().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BertError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    if not text.lstrip().startswith("["):
        yield from _json_lines(path, text.splitlines())
        return
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise BertError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise BertError(f"{path}: item {number} of the array is {kind_of(item)}, not an object")
        yield item


def _delimited_rows(path: Path, handle: BinaryIO, format: str) -> Iterator[dict]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    reader = (csv.reader(text) if format == "csv" else csv.reader(text, delimiter="\t", quoting=csv.QUOTE_NONE))
    header: list[str] | None = None
    rows = 0
    try:
        for line in reader:
            if not any(cell.strip() for cell in line):
                continue
            if header is None:
                header = [name.strip() for name in line]
                continue
            if len(line) != len(header):
                raise BertError(f"{path}:{reader.line_num}: {len(line)} columns but the header has {len(header)} "
                                f"({', '.join(header)})")
            rows += 1
            yield dict(zip(header, line, strict=True))
    except csv.Error as error:
        raise BertError(f"{path}:{reader.line_num}: malformed row ({error})") from None
    except UnicodeDecodeError as error:
        raise BertError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    if header is None:
        raise BertError(f"{path}: the file is empty")
    if rows == 0:  # more telling than "no data rows": the columns were there
        raise BertError(f"{path}: has a header but no data rows ({', '.join(header)})")


def _parquet_rows(path: Path, handle: BinaryIO, columns: list[str] | None) -> Iterator[dict]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise BertError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        table = pyarrow.parquet.ParquetFile(handle)
        names = table.schema_arrow.names
        wanted = [find_column(names, name, path) for name in columns] if columns else None
        for batch in table.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            yield from batch.to_pylist()
    except pyarrow.ArrowException as error:
        raise BertError(f"{path}: cannot read it as Parquet ({error})") from None


# ------------------------------------------------------------------------------------------------- tables in memory

def library_object(source: Any, module: str, name: str) -> bool:
    """Whether ``source`` is a ``module.name`` (``"datasets", "Dataset"``), without importing the library: none of its
    objects can exist before something imported it."""
    library = sys.modules.get(module)
    return library is not None and isinstance(source, getattr(library, name, ()))


def describe(source: Any) -> str:
    """How messages name a source: a file's path, or the kind of table held in memory."""
    if is_path(source):
        return str(source)
    if library_object(source, "pandas", "DataFrame"):
        return "the DataFrame"
    if library_object(source, "datasets", "Dataset"):
        return "the Dataset"
    return "the rows"


def object_rows(source: Any, columns: list[str] | None = None) -> Iterator[dict]:
    """The rows of a table held in memory: a list (or tuple) of dicts, a pandas DataFrame (NaN read as None) or a
    ``datasets.Dataset`` (read in batches, only ``columns`` when given). An empty table is a BertError."""
    name = describe(source)
    if library_object(source, "datasets", "DatasetDict"):
        raise BertError(f"a DatasetDict holds the splits {', '.join(source)}: pass one of them, e.g. "
                        f"dataset[{next(iter(source), 'train')!r}]")
    if library_object(source, "datasets", "Dataset"):
        rows = _dataset_rows(source, [find_column(source.column_names, c, name) for c in columns or []])
    elif library_object(source, "pandas", "DataFrame"):
        rows = ({key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
                for row in source.to_dict(orient="records"))
    elif isinstance(source, (list, tuple)):
        rows = iter(source)
    else:
        raise BertError(f"cannot read rows from {kind_of(source)}: give a file, a list of dicts, a pandas "
                        "DataFrame or a datasets.Dataset")
    count = 0
    for count, row in enumerate(rows, 1):  # noqa: B007 - count is read after the loop
        if not isinstance(row, dict):
            raise BertError(f"{name}: row {count} is {kind_of(row)}, not a dict of column values")
        yield row
    if count == 0:
        raise BertError(f"{name}: there are no rows")


def _dataset_rows(dataset: Any, columns: list[str]) -> Iterator[dict]:
    selected = dataset.select_columns(columns) if columns else dataset
    for batch in selected.iter(batch_size=BATCH_ROWS):  # a dict of columns, each a list of values
        keys = list(batch)
        for values in zip(*batch.values(), strict=True):
            yield dict(zip(keys, values, strict=True))


def read_rows(source: Any, default_format: str | None = None) -> list[dict]:
    """Every row of a file (by its extension, else ``default_format``) or of a table held in memory."""
    if is_path(source):
        path = Path(source)
        format = table_format(path) or default_format
        if format is None:
            raise BertError(f"{path}: not a table file; use .jsonl, .json, .csv, .tsv or .parquet (.gz too)")
        if not path.is_file():
            raise BertError(f"{path}: file not found")
        return list(iter_rows(path, format))
    return list(object_rows(source))


def stored_bytes(source: Any) -> int:
    """The size of an input for a progress bar: a file's bytes on disk, a ``datasets.Dataset``'s Arrow bytes (all its
    columns: at least its texts), 0 for the other tables in memory (small enough to have been built in memory)."""
    if is_path(source):
        return Path(source).stat().st_size
    return int(source.data.nbytes) if library_object(source, "datasets", "Dataset") else 0


# ------------------------------------------------------------------------------------------------ one text column

def column_texts(source: Any, format: str | None, column: str, progress: Any = None) -> Iterator[str]:
    """The text in ``column`` of every row of a table file in ``format`` or of a table held in memory (``format``
    None); a missing column, or a row whose value there is not a string, is a one-line BertError with the row's
    number (1 = the first data row). ``progress`` counts a file's bytes, or the characters of a table in memory."""
    name = describe(source)
    rows = iter_rows(source, format, progress, [column]) if format else object_rows(source, [column])
    key = None
    pending = 0
    for number, row in enumerate(rows, 1):
        if key is None:
            key = find_column(row, column, name, "text column")
        value = row.get(key)
        if not isinstance(value, str):
            held = "nothing" if value is None else kind_of(value)
            raise BertError(f"{name}: row {number}: the text column {key!r} holds {held}, not a string")
        if progress is not None and not format:
            pending += len(value)
            if pending >= 1 << 20:
                progress.update(pending)
                pending = 0
        yield value
    if progress is not None and pending:
        progress.update(pending)
