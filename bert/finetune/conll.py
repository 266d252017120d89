"""Reading CoNLL-style token files: one token per line with its tag in the last column, sentences separated by
blank (or whitespace-only) lines, ``-DOCSTART-`` lines skipped.

Columns are tab-separated when the line has a tab (WNUT), else separated by spaces (CoNLL-2003). Every token line
of a file must have the same number of columns; a file with a single column holds tokens without tags (for
prediction).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bert.errors import BertError
from bert.finetune.tables import read_text


@dataclass
class Sentence:
    """Words [W] and, when the file has them, their tags [W]."""

    words: list[str]
    tags: list[str] | None = None


def read_conll(path: str | Path, require_tags: bool = True) -> list[Sentence]:
    """The sentences of a CoNLL file; with ``require_tags`` a file without a tag column is an error."""
    path = Path(path)
    text = read_text(path, allow_empty=True)
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    n_columns: int | None = None
    first_line = 0

    def close() -> None:
        if words:
            sentences.append(Sentence(list(words), list(tags) if n_columns and n_columns > 1 else None))
            words.clear()
            tags.clear()

    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() == "":
            close()
            continue
        columns = line.strip("\r\n").split("\t") if "\t" in line else line.split()
        columns = [c.strip() for c in columns]
        while len(columns) > 1 and not columns[-1]:  # a stray trailing tab is not an empty tag column
            columns.pop()
        if columns[0] == "-DOCSTART-":
            close()
            continue
        if n_columns is None:
            n_columns, first_line = len(columns), number
        elif len(columns) != n_columns:
            raise BertError(f"{path}:{number}: {len(columns)} columns, but line {first_line} has {n_columns}; "
                            "every token line needs the same columns (token ... tag)")
        if not columns[0]:
            raise BertError(f"{path}:{number}: empty token")
        words.append(columns[0])
        if n_columns > 1:
            if any(c.isspace() for c in columns[-1]):
                raise BertError(f"{path}:{number}: the tag {columns[-1]!r} holds a space; separate the columns "
                                "either all by tabs or all by spaces")
            tags.append(columns[-1])
    close()
    if not sentences:
        raise BertError(f"{path}: no sentences (the file is empty or holds only -DOCSTART- lines)")
    if require_tags and sentences[0].tags is None:
        raise BertError(f"{path}: one column only; training and evaluation need a tag in the last column "
                        "(token<TAB>tag per line)")
    return sentences
