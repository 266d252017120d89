"""Reading a pretraining corpus into documents of sentences.

Three input formats are understood:

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

Bytes that are not valid UTF-8 are decoded with U+FFFD replacement characters; one
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

from bert.errors import BertError

FORMATS = ("plain", "wikitext", "gutenberg")
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


# ----------------------------------------------------------------------------------------------- sentence splitting

# Words after which a period does not end a sentence (compared lower-cased, without the period).
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al fig figs no nos vol vols pp ed eds approx "
    "inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec gen col lt sgt capt rev gov sen rep".split()
)
# A candidate boundary: terminal punctuation, any closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*\s+")
_OPENERS = "\"'“‘([«"


def split_sentences(line: str) -> list[str]:
    """Split one line of text into sentences with a simple rule.

    A sentence ends at ``.``, ``!`` or ``?`` (possibly repeated, possibly followed by closing quotes or
    brackets) followed by whitespace, when the next word starts with an upper-case letter or a digit
    (optionally behind an opening quote or bracket, possibly spaced as in WikiText's `` " Word``). A period does
    not end a sentence after a known abbreviation (``Dr.``, ``e.g.``, ``Jan.``, ...), after a single letter (an
    initial: ``J. R. R. Tolkien``) or after a word that itself contains a period (``U.S.``). A quote separated
    by spaces on both sides (WikiText's `` . " Then``) is ambiguous and goes with the next sentence. Deliberately
    simple: an occasional wrong split only moves a next-sentence boundary, which pretraining tolerates.

    Returns the stripped, non-empty sentences (``[]`` for a blank line).
    """
    line = line.strip()
    if not line:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(line):
        end = match.end()
        if end >= len(line):
            break
        # The next word must look like the start of a sentence.
        rest = line[end : end + 4]
        pos = 0
        while pos < len(rest) and (rest[pos] in _OPENERS or (pos > 0 and rest[pos] == " ")):
            pos += 1
        if pos >= len(rest) or not (rest[pos].isupper() or rest[pos].isdigit()):
            continue
        if line[match.start()] == ".":
            word_start = match.start()  # the word before the period (scanned back, not sliced: linear time)
            while word_start > 0 and not line[word_start - 1].isspace():
                word_start -= 1
            word = line[word_start : match.start()].lstrip(_OPENERS)
            if (len(word) == 1 and word.isalpha()) or "." in word or word.lower() in _ABBREVIATIONS:
                continue
        sentence = line[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = end
    tail = line[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


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


def check_input_files(files: Sequence[str | os.PathLike]) -> list[Path]:
    """Resolve the input files, raising :class:`BertError` for none given or one that is missing."""
    if not files:
        raise BertError("no input files given")
    paths = [Path(os.fspath(f)) for f in files]
    for path in paths:
        if not path.exists():
            raise BertError(f"input file {path} not found")
        if not path.is_file():
            raise BertError(f"input {path} is not a file")
    return paths


def iter_lines(
    files: Sequence[str | os.PathLike], stats: ReadStats | None = None, progress=None
) -> Iterator[tuple[int, str]]:
    """Yield ``(file_index, line)`` for every line of every file (without the newline), decoded as UTF-8 with
    replacement. ``progress`` (a tqdm bar counting bytes, or None) is advanced as bytes are read."""
    stats = stats if stats is not None else ReadStats()
    pending = 0
    continuing = False  # the previous piece did not end its line
    line_has_text = False  # a piece of the current line with text in it was yielded
    for index, path in enumerate(check_input_files(files)):
        name = str(path)
        stats.files.append(name)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as error:
            raise BertError(f"cannot read input file {path}: {error.strerror}") from None
        with handle:
            for raw, line_ends in _bounded_lines(handle):
                stats.bytes += len(raw)
                if line_ends:
                    stats.lines += 1
                elif not continuing:
                    stats.long_lines[name] = stats.long_lines.get(name, 0) + 1
                pending += len(raw)
                if progress is not None and pending >= 1 << 20:
                    progress.update(pending)
                    pending = 0
                text = _decode(raw, name, stats).rstrip("\r\n")
                blank = not text.strip()
                # A blank piece of a long line is not a blank line (which would end the document); a long line
                # that is all whitespace still is one, given once at its end.
                if not ((continuing or not line_ends) and blank and (not line_ends or line_has_text)):
                    yield index, text
                    line_has_text = line_has_text or not blank
                if line_ends:
                    line_has_text = False
                continuing = not line_ends
    if progress is not None and pending:
        progress.update(pending)


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
    files: Sequence[str | os.PathLike],
    format: str = "plain",
    *,
    sentence_split: bool = True,
    stats: ReadStats | None = None,
    progress=None,
    part_chars: int | None = None,
) -> Iterator[list[str]]:
    """Yield the corpus's documents, each a non-empty list of non-empty sentences (or lines, with
    ``sentence_split=False``). See the module docstring for the formats; ``stats`` collects counts.

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
    lines = iter_lines(files, stats, progress)
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
