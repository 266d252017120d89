"""Splitting a line of text into sentences: where the next-sentence and sentence-order tasks may cut a document
(:mod:`bert.data.corpus` reads every line of a corpus through :func:`split_sentences`)."""

from __future__ import annotations

import re

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
