"""Reading a pretraining corpus into documents of sentences.

The inputs are files, folders of files, ``.gz`` files and tables held in memory (:mod:`bert.data.sources`). Three
text formats are understood, and the table formats of :mod:`bert.data.rows` (``jsonl``, ``json``, ``csv``, ``tsv``,
``parquet``), where each row is one document: the text of its text column (``text_column``), whose lines are split
into sentences as a plain text document's are (blank lines inside a text do not split it). The default, ``auto``,
picks a file's format by its extension (``.gz`` removed): a table format's extension gives that format, any other
``plain``; with another ``format`` every file is read in that one. A table held in memory is read as rows whatever
``format`` says.

``plain`` (the format of google-research/bert's ``create_pretraining_data.py``)
    One sentence or paragraph per line, a blank (or whitespace-only) line between documents. The end of a file
    also ends a document. Runs of blank lines count as one boundary.

``wikitext`` (the *tokenized* WikiText release, ``wiki.*.tokens``)
    Article titles are lines like `` = Title = `` between blank lines and start a new document; section
    headings `` = = Sub = = `` (any depth, also between blank lines) are dropped; blank lines are *not*
    document boundaries (the release puts one around every heading). The release's tokenisation artefacts are
    undone so the WordPiece tokenizer sees ordinary text: `` @-@ `` -> ``-``, `` @,@ `` -> ``,``, `` @.@ `` -> ``.``
    and ``<unk>`` -> ``[UNK]`` (which a BERT tokenizer maps to its unknown-token id instead of splitting
    ``<unk>`` into four pieces).

``gutenberg`` (a Project Gutenberg plain-text eBook, ``<n>-0.txt``)
    Only the text between the ``*** START OF ...`` and ``*** END OF ...`` lines is read (the licence header and
    footer are not the book); a file without a start line within its first :data:`GUTENBERG_HEADER_LINES` lines
    is read whole. A byte-order mark is dropped, the hard-wrapped lines of a paragraph (blank lines between
    paragraphs) are joined into one line, and each file is one document.

Lines are split into sentences by :func:`split_sentences` (the original expects one sentence per line; real
corpora and WikiText have one paragraph per line, and sentence boundaries are what the next-sentence task
cuts at).

Bytes of a text file that are not valid UTF-8 are decoded with U+FFFD replacement characters; one
:class:`CorpusWarning` at the end of reading reports how many bytes in which files.

Reading streams: a line longer than :data:`MAX_LINE_BYTES` (a whole book on one line, a minified dump) is read in
pieces of about that size, cut at whitespace where there is some, and each piece goes on as a line of the same
document (a sentence that spans a cut is split there); :meth:`ReadStats.warn_long_lines` reports such lines. A
document can be handed over in parts (``part_chars``) so that not even one huge document is held in memory whole.
All warnings of this package go through Python's :mod:`warnings` module with that category, so callers can filter
or record them.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bert.data.hub_datasets import load_hf_dataset
from bert.data.rows import TABLE_FORMATS, column_texts, table_format
from bert.data.sentences import split_sentences
from bert.data.sources import expand_inputs, open_input
from bert.errors import BertError

TEXT_FORMATS = ("plain", "wikitext", "gutenberg")
FORMATS = ("auto", *TEXT_FORMATS, *TABLE_FORMATS)
GUTENBERG_HEADER_LINES = 2000  # a Project Gutenberg header is a few hundred lines at most
_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF")
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF")
MAX_LINE_BYTES = 1 << 20  # longer lines are read in pieces of about this size
_WHITESPACE_BYTES = (b" ", b"\t", b"\x0b", b"\x0c")


class DocumentPart(list):
    """Sentences of a document that is handed over in parts (see ``part_chars`` of :func:`iter_documents`): the
    next list yielded continues the same document. The last part of a document is a plain list."""


class CorpusWarning(UserWarning):
    """Something in the input was skipped or repaired; preparation carried on."""


# ----------------------------------------------------------------------------------------------------- reading

_WIKITEXT_TITLE = re.compile(r"^ ?= (?!=)(.*) = ?$")
_WIKITEXT_HEADING = re.compile(r"^ ?(= )+.* (= ?)+$")
_WIKITEXT_FIXES = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), ("<unk>", "[UNK]"))


def _wikitext_line(line: str) -> str:
    for old, new in _WIKITEXT_FIXES:
        if old in line:
            line = line.replace(old, new)
    return line


@dataclass
class ReadStats:
    """What :func:`iter_documents` saw; filled in while iterating."""

    files: list[str] = field(default_factory=list)
    bytes: int = 0
    lines: int = 0
    documents: int = 0
    sentences: int = 0
    invalid_bytes: dict[str, int] = field(default_factory=dict)
    long_lines: dict[str, int] = field(default_factory=dict)  # file -> lines longer than MAX_LINE_BYTES

    def warn_long_lines(self, stacklevel: int = 3) -> None:
        """Issue the one warning about lines that were read in pieces (if any); ``stacklevel`` as for
        :func:`warnings.warn` (3: the caller of the function that calls this)."""
        if self.long_lines:
            where = ", ".join(f"{name} ({count})" for name, count in self.long_lines.items())
            warnings.warn(
                f"line(s) longer than {MAX_LINE_BYTES >> 20} MiB were read in pieces cut at whitespace (a sentence "
                f"spanning a cut is split in two) in: {where}",
                CorpusWarning,
                stacklevel=stacklevel,
            )

    def warn_invalid_bytes(self, stacklevel: int = 3) -> None:
        """Issue the one warning about bytes that were not UTF-8 (if any); ``stacklevel`` as for
        :func:`warn_long_lines`."""
        if self.invalid_bytes:
            total = sum(self.invalid_bytes.values())
            where = ", ".join(f"{name} ({count})" for name, count in self.invalid_bytes.items())
            warnings.warn(
                f"{total} byte(s) that are not valid UTF-8 were replaced by U+FFFD in: {where}",
                CorpusWarning,
                stacklevel=stacklevel,
            )


def _decode(raw: bytes, path: str, stats: ReadStats) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Count the invalid bytes: every error range is replaced by exactly one U+FFFD, so decode piecewise.
    text_parts: list[str] = []
    bad = 0
    pos = 0
    while True:
        try:
            text_parts.append(raw[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as error:
            text_parts.append(raw[pos : pos + error.start].decode("utf-8"))
            text_parts.append("\ufffd")
            bad += error.end - error.start
            pos += error.end
    stats.invalid_bytes[path] = stats.invalid_bytes.get(path, 0) + bad
    return "".join(text_parts)


def corpus_inputs(files: Sequence[Any], dataset: str | None = None, split: str = "train") -> list[Any]:
    """The inputs of a corpus: ``files`` with folders expanded (:func:`~bert.data.sources.expand_inputs`) and, with
    ``dataset``, that dataset's ``split`` (:func:`~bert.data.hub_datasets.load_hf_dataset`)."""
    if not files and not dataset:
        raise BertError("no input files given: name files or folders, or --dataset NAME")
    return expand_inputs([*files, *([load_hf_dataset(dataset, split)] if dataset else [])])


def file_format(path: Path, format: str) -> str:
    """The format ``path`` is read in: ``format``, or for ``auto`` the table format its extension names, else
    ``plain``."""
    return (table_format(path) or "plain") if format == "auto" else format


def iter_lines(path: Path, stats: ReadStats, progress: Any = None) -> Iterator[str]:
    """Every line of a text file (without the newline), decoded as UTF-8 with replacement. ``progress`` (a tqdm bar
    counting bytes, or None) is advanced as bytes are read."""
    continuing = False  # the previous piece did not end its line
    line_has_text = False  # a piece of the current line with text in it was yielded
    name = str(path)
    stats.files.append(name)
    with open_input(path, progress) as handle:
        for raw, line_ends in _bounded_lines(handle):
            stats.bytes += len(raw)
            if line_ends:
                stats.lines += 1
            elif not continuing:
                stats.long_lines[name] = stats.long_lines.get(name, 0) + 1
            text = _decode(raw, name, stats).rstrip("\r\n")
            blank = not text.strip()
            # A blank piece of a long line is not a blank line (which would end the document); a long line
            # that is all whitespace still is one, given once at its end.
            if not ((continuing or not line_ends) and blank and (not line_ends or line_has_text)):
                yield text
                line_has_text = line_has_text or not blank
            if line_ends:
                line_has_text = False
            continuing = not line_ends


def _units(inputs: Sequence[Any], format: str, text_column: str, stats: ReadStats,
           progress: Any) -> Iterator[tuple[int, str]]:
    """``(unit, line)`` for every line of the inputs, where a unit is a text file or a table's row: a new unit starts
    a new document. A row's blank lines are left out (they would end its document)."""
    unit = 0
    for source in expand_inputs(inputs):
        fmt = file_format(source, format) if isinstance(source, Path) else None
        if fmt in TEXT_FORMATS:
            for line in iter_lines(source, stats, progress):
                yield unit, line
            unit += 1
            continue
        if fmt is None and format in ("wikitext", "gutenberg"):
            raise BertError(f"format {format} reads text files; the rows of a table are documents already")
        stats.files.append(str(source) if fmt else "(rows in memory)")
        for text in column_texts(source, fmt, text_column, progress):
            for line in text.split("\n"):  # the line ends a text file has (str.splitlines knows more)
                line = line.rstrip("\r")
                if line.strip():
                    stats.lines += 1
                    yield unit, line
            unit += 1


def _bounded_lines(handle, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[bytes, bool]]:
    """``(bytes, ends_a_line)`` for every line of a binary file. A line longer than ``limit`` comes in pieces of
    at most ``2 * limit`` bytes, each cut after its last whitespace (without any, before a UTF-8 character that
    would be cut), so memory stays bounded whatever the line lengths."""
    previous = None
    for piece in _pieces(handle, limit):
        if previous is not None:
            yield previous
        previous = piece
    if previous is not None:
        yield previous[0], True  # the file's last piece ends its last line, newline or not


def _pieces(handle, limit: int) -> Iterator[tuple[bytes, bool]]:
    carry = b""
    while True:
        chunk = handle.readline(limit)
        if not chunk:
            if carry:
                yield carry, True
            return
        raw, carry = carry + chunk, b""
        if chunk.endswith(b"\n") or len(chunk) < limit:  # a whole line (the last one may lack its newline)
            yield raw, True
            continue
        cut = max(raw.rfind(space) for space in _WHITESPACE_BYTES) + 1  # whitespace is never inside a character
        if cut == 0:
            cut = _utf8_safe_end(raw)
        if cut == 0:  # only the start of one character so far (a tiny limit): read on
            carry = raw
            continue
        raw, carry = raw[:cut], raw[cut:]
        yield raw, False


def _utf8_safe_end(raw: bytes) -> int:
    """``len(raw)``, less the bytes of a UTF-8 character cut off at the end (0 to 3 bytes)."""
    for k in range(1, min(4, len(raw)) + 1):
        byte = raw[-k]
        if byte & 0xC0 != 0x80:  # an ASCII or lead byte: the last character starts here
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(raw) - k if need > k else len(raw)
    return len(raw)


def _gutenberg_paragraphs(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """``(file_index, paragraph)`` for the body of each Project Gutenberg file: header and footer dropped, wrapped
    lines joined; no blank lines, so each file reads as one document (see the module docstring)."""
    current = -1
    header: list[str] = []  # lines before the start marker, kept until we know whether there is one
    in_body = ended = False
    paragraph: list[str] = []

    def flush(index: int) -> Iterator[tuple[int, str]]:
        if paragraph:
            yield index, " ".join(paragraph)
            paragraph.clear()

    def body_line(index: int, line: str) -> Iterator[tuple[int, str]]:
        if line.strip():
            paragraph.append(line.strip())
        else:
            yield from flush(index)

    for index, line in lines:
        if index != current:
            if not in_body:  # the previous file had no start marker: it was all body
                for kept in header:
                    yield from body_line(current, kept)
            yield from flush(current)
            current, header, in_body, ended = index, [], False, False
            line = line.lstrip("\ufeff")
        if ended:
            continue
        if not in_body:
            if _GUTENBERG_START.match(line):
                in_body, header = True, []
            elif len(header) < GUTENBERG_HEADER_LINES:
                header.append(line)
            else:
                in_body = True
                for kept in header:
                    yield from body_line(index, kept)
                header = []
                yield from body_line(index, line)
            continue
        if _GUTENBERG_END.match(line):
            ended = True
            yield from flush(index)
            continue
        yield from body_line(index, line)
    if not in_body:
        for kept in header:
            yield from body_line(current, kept)
    yield from flush(current)


def iter_documents(
    files: Sequence[str | os.PathLike | Any],
    format: str = "auto",
    *,
    text_column: str = "text",
    sentence_split: bool = True,
    stats: ReadStats | None = None,
    progress=None,
    part_chars: int | None = None,
) -> Iterator[list[str]]:
    """Yield the corpus's documents, each a non-empty list of non-empty sentences (or lines, with
    ``sentence_split=False``). ``files``: files, folders and tables held in memory; see the module docstring for the
    formats and ``text_column``; ``stats`` collects counts.

    ``part_chars``: hand a document over in parts of about this many characters: every part but the last is a
    :class:`DocumentPart` (the next list continues the document); the last part is a plain list, possibly empty.

    The invalid-UTF-8 warning is the caller's to issue (``stats.warn_invalid_bytes()``) once reading is done,
    so that it comes once for the whole corpus.
    """
    if format not in FORMATS:
        raise BertError(f"unknown corpus format {format!r}; use one of {', '.join(FORMATS)}")
    stats = stats if stats is not None else ReadStats()
    wikitext = format == "wikitext"
    document: list[str] = []
    chars = 0
    in_parts = False  # a part of the current document was yielded already
    current_file = 0
    lines = _units(files, format, text_column, stats, progress)
    if format == "gutenberg":
        lines = _gutenberg_paragraphs(lines)
    for previous, (file_index, line), following in _neighbours(lines):
        boundary = file_index != current_file
        current_file = file_index
        text = line
        if wikitext:
            # Only a heading-shaped line with blank lines around it is a heading: a few "= x =" lines are text.
            standalone = _is_blank(previous, file_index) and _is_blank(following, file_index)
            if standalone and _WIKITEXT_TITLE.match(line):
                boundary, text = True, ""
            elif standalone and _WIKITEXT_HEADING.match(line):
                text = ""
            else:
                text = _wikitext_line(line)
        elif not line.strip():
            boundary = True
        if boundary and (document or in_parts):
            stats.documents += 1
            yield document
            document, chars, in_parts = [], 0, False
        if text.strip():
            pieces = split_sentences(text) if sentence_split else [text.strip()]
            stats.sentences += len(pieces)
            document.extend(pieces)
            chars += len(text)
            if part_chars is not None and chars >= part_chars:
                yield DocumentPart(document)
                document, chars, in_parts = [], 0, True
    if document or in_parts:
        stats.documents += 1
        yield document


Line = tuple[int, str]


def _neighbours(lines: Iterator[Line]) -> Iterator[tuple[Line | None, Line, Line | None]]:
    """Each line with the one before and after it (None at the ends)."""
    previous: Line | None = None
    current: Line | None = None
    for item in lines:
        if current is not None:
            yield previous, current, item
        previous, current = current, item
    if current is not None:
        yield previous, current, None


def _is_blank(line: Line | None, file_index: int) -> bool:
    """Whether a neighbouring line counts as blank: absent, in another file, or whitespace only."""
    return line is None or line[0] != file_index or not line[1].strip()
