"""NER data from any source: the sentences (words and their tags) of a CoNLL file (:mod:`~bert.finetune.conll`) or of
the rows of a table, in the shape of Hugging Face's conll2003 and wnut_17: the words in a ``tokens`` list, their tags
in a ``ner_tags`` (or ``tags``) list of the same length.

Tags are strings (``"B-PER"``), or integers with the names they stand for (``label_names``: a list, a file with one
name per line, or names separated by commas). Hugging Face keeps those names in a dataset's features
(``features["ner_tags"].feature.names``); a ``datasets.Dataset`` handed over in memory gives them by itself.

Rows come from ``.jsonl``, ``.ndjson``, ``.json`` and ``.parquet`` files (``.gz`` too; see :mod:`bert.data.rows`) or
from tables held in memory (a list of dicts, a pandas DataFrame, a ``datasets.Dataset``); any other file is CoNLL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bert.data.rows import describe, find_column, library_object, table_format
from bert.data.sources import is_path
from bert.errors import BertError, kind_of
from bert.finetune.conll import Sentence, read_conll
from bert.finetune.tables import read_table, read_text

ROW_FORMATS = ("jsonl", "json", "parquet")  # the table formats that can hold lists
TOKENS_COLUMN = "tokens"
TAG_COLUMNS = ("ner_tags", "tags")  # tried in this order (case-insensitive)


def parse_label_names(value: str | Path | Sequence[str] | None) -> list[str] | None:
    """The tag names integer tags stand for (tag i is the i-th name): a list, a file with one name per line, or
    names separated by commas; None stays None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        names = [str(name).strip() for name in value]
    elif Path(value).is_file():
        names = [line.strip() for line in read_text(value).splitlines() if line.strip()]
    else:
        names = [name.strip() for name in str(value).split(",") if name.strip()]
    if not names or len(set(names)) != len(names) or not all(names):
        raise BertError(f"--label-names needs distinct, non-empty names (a file, one per line, or O,B-PER,...), "
                        f"got {value!r}")
    return names


def read_sentences(source: Any, label_names: str | Path | Sequence[str] | None = None,
                   require_tags: bool = True) -> list[Sentence]:
    """The sentences of NER data (see the module docstring); with ``require_tags`` data without tags is an error.
    Rows with no tokens are skipped, as a CoNLL file's empty lines are."""
    if is_path(source) and table_format(source) not in ROW_FORMATS:
        return read_conll(source, require_tags)
    name = describe(source)
    rows = read_table(source)
    tokens_key = find_column(rows[0], TOKENS_COLUMN, name, "tokens column")
    lower = {column.lower(): column for column in rows[0]}
    tag_key = next((lower[column] for column in TAG_COLUMNS if column in lower), None)
    if tag_key is None and require_tags:
        raise BertError(f"{name}: no tag column ({' or '.join(TAG_COLUMNS)}); the columns are: {', '.join(rows[0])}")
    names = parse_label_names(label_names) or _feature_names(source, tag_key)
    sentences = []
    for number, row in enumerate(rows, 1):
        words = _list(row.get(tokens_key), name, number, tokens_key)
        if not all(isinstance(word, str) and word.strip() for word in words):
            raise BertError(f"{name}: row {number}: every token in {tokens_key!r} must be a non-empty string")
        if not words:
            continue
        tags = None
        if tag_key is not None:
            raw = _list(row.get(tag_key), name, number, tag_key)
            if len(raw) != len(words):
                raise BertError(f"{name}: row {number}: {len(words)} tokens but {len(raw)} tags in {tag_key!r}")
            tags = [_tag_name(tag, names, f"{name}: row {number}", tag_key) for tag in raw]
        sentences.append(Sentence(list(words), tags))
    if not sentences:
        raise BertError(f"{name}: no sentences (every row's {tokens_key!r} is empty)")
    return sentences


def _list(value: Any, name: str, number: int, column: str) -> list:
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # a DataFrame's cell holds a numpy array
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        held = "nothing" if value is None else kind_of(value)
        raise BertError(f"{name}: row {number}: {column!r} holds {held}, not a list")
    return list(value)


def _tag_name(tag: Any, names: list[str] | None, where: str, column: str) -> str:
    if isinstance(tag, str) and tag.strip() and not any(c.isspace() for c in tag):
        return tag
    if not isinstance(tag, int) or isinstance(tag, bool):
        raise BertError(f"{where}: the tag {tag!r} in {column!r} is neither a tag name nor a tag number")
    if names is None:
        raise BertError(f"{where}: the tags in {column!r} are numbers; name them with --label-names (a file with one "
                        f"name per line, or O,B-PER,I-PER,...; Hugging Face keeps them in "
                        f"features[{column!r}].feature.names)")
    if not 0 <= tag < len(names):
        raise BertError(f"{where}: tag number {tag} in {column!r}, but there are {len(names)} label names")
    return names[tag]


def _feature_names(source: Any, column: str | None) -> list[str] | None:
    """The names a ``datasets.Dataset`` keeps for an integer tag column (a sequence of ClassLabel), else None."""
    if column is None or not library_object(source, "datasets", "Dataset"):
        return None
    names = getattr(getattr(source.features.get(column), "feature", None), "names", None)
    return list(names) if names else None
