"""Sentence-pair examples for masked-LM + next-sentence (BERT) or sentence-order (ALBERT) pretraining.

:func:`create_pairs_from_document` is ``create_instances_from_document`` of ``create_pretraining_data.py``,
step for step and random draw for random draw (same ``random.Random`` calls in the same order), except that
it works on token *offsets* into a :class:`~bert.data.tokenized.TokenizedCorpus` instead of copying lists,
and that it does not mask: masking is dynamic, redone every time a batch is drawn
(:mod:`bert.data.masking`), which replaces the original's ``dupe_factor`` static copies (default here 1).

The original's behaviour, kept on purpose:

* the target length is ``max_seq_len - 3`` ([CLS], [SEP], [SEP]), and with probability ``short_seq_prob`` one
  shorter random target in ``[2, max_seq_len - 3]``, drawn once per document;
* sentences are accumulated into a chunk until the target is reached (or the document ends); segment A is a
  random number of the chunk's leading sentences; B is the rest of the chunk (IsNext, label 0) or, with
  probability 1/2 and always when the chunk has one sentence, a span of a random other document starting
  at a random sentence (NotNext, label 1), in which case the chunk's unused sentences are put back;
* :func:`truncate_seq_pair` then trims the longer of A and B one token at a time, from the front or the back
  at random, until the pair fits.

One deliberate difference: with a single document in the split the original keeps drawing the same
document for the "random" B (it gives up after 10 tries), so B can be A's true continuation yet labelled
NotNext. Here B then comes from elsewhere in the same document: it starts at a random sentence that is
neither in the chunk nor the one right after it (and stops before the chunk if it starts before it). When
the document has no such sentence, the chunk yields its IsNext pair instead, or nothing if it has one sentence.

Sentence-order prediction (``sentence_order=True``, ALBERT's ``create_pretraining_data.py`` without
``random_next_sentence``): the same chunks and the same A/B split, but B is always the rest of the chunk, and with
probability 1/2 the two are swapped (label 1, :data:`SWAPPED`) before truncation. A pair therefore never joins
two documents. ALBERT pairs a one-sentence chunk with a random other document; here such a chunk yields nothing.

One-sentence pairs (:func:`create_sentence_pairs`, an addition, off by default): in the original a chunk of one
sentence is always NotNext, so a pair of two short sentences ("The man went to the store." / "He bought a gallon of
milk.") is seen mostly with a random B, and a model learns to call such pairs NotNext. These pairs are A = one
sentence and B = the next sentence (IsNext) or a sentence of another document (NotNext), half each.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

IS_NEXT = 0
NOT_NEXT = 1
SWAPPED = 1  # the sentence-order label of a swapped pair (0: in order), as ALBERT's sentence_order_label


@dataclass
class PairSpans:
    """Examples as token ranges into a corpus's ``tokens``; every array has shape [N] (int64).

    Example ``n`` is ``[CLS] tokens[a_start:a_end] [SEP] tokens[b_start:b_end] [SEP]``, with
    ``nsp_labels[n]`` the sentence-pair label: 0 (IsNext) or 1 (NotNext), or for sentence-order pairs 0 (A comes
    first in the document) or 1 (swapped: B comes first).
    """

    a_start: np.ndarray
    a_end: np.ndarray
    b_start: np.ndarray
    b_end: np.ndarray
    nsp_labels: np.ndarray

    def __len__(self) -> int:
        return len(self.nsp_labels)


def truncate_seq_pair(
    a: tuple[int, int], b: tuple[int, int], max_num_tokens: int, rng: random.Random
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Trim the ranges ``a`` and ``b`` ((start, end) pairs) until their total length is at most
    ``max_num_tokens``: one token at a time from the longer (B on a tie), from its front or back at random."""
    a_lo, a_hi = a
    b_lo, b_hi = b
    while (a_hi - a_lo) + (b_hi - b_lo) > max_num_tokens:
        if a_hi - a_lo > b_hi - b_lo:
            if rng.random() < 0.5:
                a_lo += 1
            else:
                a_hi -= 1
        elif rng.random() < 0.5:
            b_lo += 1
        else:
            b_hi -= 1
    return (a_lo, a_hi), (b_lo, b_hi)


def create_pairs_from_document(
    documents: Sequence[tuple[int, int]],
    document_index: int,
    segment_offsets: Sequence[int],
    max_seq_len: int,
    short_seq_prob: float,
    rng: random.Random,
    out: list[array],
    sentence_order: bool = False,
) -> None:
    """Append the examples of one document to ``out`` (five ``array('q')``: a_start, a_end, b_start, b_end,
    label): next-sentence pairs, or with ``sentence_order`` sentence-order pairs (see the module docstring).

    ``documents[d]`` is the (first, last) sentence range of document ``d`` of the split; sentence ``s`` is
    tokens ``segment_offsets[s]:segment_offsets[s + 1]`` (all sentences non-empty).
    """
    # Kept as one loop, step for step like the original's create_instances_from_document (the tests compare the
    # two); only drawing a random B is a function of its own.
    first, last = documents[document_index]
    max_num_tokens = max_seq_len - 3
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)

    chunk_start = first
    current_length = 0
    i = first
    while i < last:
        current_length += segment_offsets[i + 1] - segment_offsets[i]
        if i == last - 1 or current_length >= target_seq_length:
            chunk_size = i + 1 - chunk_start
            a_end = 1
            if chunk_size >= 2:
                a_end = rng.randint(1, chunk_size - 1)
            a = (segment_offsets[chunk_start], segment_offsets[chunk_start + a_end])
            b: tuple[int, int] | None = None
            swap = False
            if sentence_order:
                swap = chunk_size >= 2 and rng.random() < 0.5
            elif chunk_size == 1 or rng.random() < 0.5:
                label = NOT_NEXT
                b = _random_next_segment(documents, document_index, chunk_start, i, segment_offsets,
                                         target_seq_length - (a[1] - a[0]), rng)
                if b is not None:
                    # The chunk's sentences after A were not used: the next chunk starts right after A.
                    i -= chunk_size - a_end
            if b is None and chunk_size >= 2:  # IsNext, a sentence-order pair, or the single-document fallback
                label = SWAPPED if swap else IS_NEXT
                b = (segment_offsets[chunk_start + a_end], segment_offsets[i + 1])
                if swap:
                    a, b = b, a
            if b is not None:
                a, b = truncate_seq_pair(a, b, max_num_tokens, rng)
                for column, value in zip(out, (*a, *b, label), strict=True):
                    column.append(value)
            chunk_start = i + 1
            current_length = 0
        i += 1


def _random_next_segment(
    documents: Sequence[tuple[int, int]],
    document_index: int,
    chunk_start: int,
    chunk_last: int,
    segment_offsets: Sequence[int],
    target_b_length: int,
    rng: random.Random,
) -> tuple[int, int] | None:
    """The (start, end) token range of a random "next" segment B for the chunk of sentences
    ``[chunk_start, chunk_last]`` of document ``document_index``: whole sentences from a random start sentence of a
    random other document (the original's draws: up to 10 tries for another index, then a start sentence) until
    ``target_b_length`` tokens or that document's end. In a one-document split, from elsewhere in the same
    document (:func:`_same_document_start`); None when there is no such sentence."""
    first, last = documents[document_index]
    if len(documents) > 1:
        for _ in range(10):
            random_document_index = rng.randint(0, len(documents) - 1)
            if random_document_index != document_index:
                break
        r_first, r_last = documents[random_document_index]
        start = r_first + rng.randint(0, r_last - r_first - 1)
    else:
        r_first, r_last, start = _same_document_start(first, last, chunk_start, chunk_last, rng)
    if start is None:
        return None
    j = start
    b_hi = segment_offsets[j + 1]
    while b_hi - segment_offsets[start] < target_b_length and j + 1 < r_last:
        j += 1
        b_hi = segment_offsets[j + 1]
    return segment_offsets[start], b_hi


def _same_document_start(
    first: int, last: int, chunk_start: int, chunk_last: int, rng: random.Random
) -> tuple[int, int, int | None]:
    """For a one-document split: a random start sentence outside the chunk ``[chunk_start, chunk_last]`` and
    the sentence after it; returns (first, end limit, start) with ``start`` None when there is none."""
    before = chunk_start - first
    after = max(0, last - (chunk_last + 2))
    if before + after == 0:
        return first, last, None
    k = rng.randint(0, before + after - 1)
    if k < before:
        return first, chunk_start, first + k  # B stops before the chunk begins
    return first, last, chunk_last + 2 + (k - before)


def create_sentence_pairs(
    segment_offsets: np.ndarray,
    documents: Sequence[tuple[int, int]],
    max_seq_len: int,
    sentence_pair_prob: float,
    rng: random.Random,
) -> PairSpans:
    """One-sentence NSP pairs (see the module docstring), in document order: each sentence that has a next one
    in its document starts a pair with probability ``sentence_pair_prob``; B is that next sentence or, for half of
    the pairs, a random sentence of a random other document. Needs two documents or more (else no pairs)."""
    out = [array("q") for _ in range(5)]
    if len(documents) < 2:
        return _spans(out)
    offsets = segment_offsets.tolist()
    max_num_tokens = max_seq_len - 3
    for document_index, (first, last) in enumerate(documents):
        for sentence in range(first, last - 1):
            if rng.random() >= sentence_pair_prob:
                continue
            b_sentence, label = sentence + 1, IS_NEXT
            if rng.random() < 0.5:
                other = rng.randint(0, len(documents) - 2)
                r_first, r_last = documents[other + (other >= document_index)]  # any document but this one
                b_sentence, label = rng.randint(r_first, r_last - 1), NOT_NEXT
            a, b = truncate_seq_pair((offsets[sentence], offsets[sentence + 1]),
                                     (offsets[b_sentence], offsets[b_sentence + 1]), max_num_tokens, rng)
            for column, value in zip(out, (*a, *b, label), strict=True):
                column.append(value)
    return _spans(out)


def _spans(columns: list[array]) -> PairSpans:
    """PairSpans of five ``array('q')`` columns: a_start, a_end, b_start, b_end, label."""
    return PairSpans(*(np.frombuffer(column, dtype=np.int64) if len(column) else np.zeros(0, np.int64)
                       for column in columns))


def concatenate_shuffled(parts: Sequence[PairSpans], rng: random.Random) -> PairSpans:
    """The examples of ``parts`` together, in a random order drawn from ``rng``."""
    columns = [np.concatenate([getattr(part, name) for part in parts])
               for name in ("a_start", "a_end", "b_start", "b_end", "nsp_labels")]
    order = list(range(len(columns[4])))
    rng.shuffle(order)
    perm = np.asarray(order, dtype=np.int64)
    return PairSpans(*(column[perm] for column in columns))


def create_pairs(
    segment_offsets: np.ndarray,
    documents: Sequence[tuple[int, int]],
    max_seq_len: int,
    short_seq_prob: float,
    dupe_factor: int,
    rng: random.Random,
    sentence_order: bool = False,
) -> PairSpans:
    """All examples of a split: ``dupe_factor`` passes over ``documents`` (sentence ranges), then shuffled with
    ``rng`` (as the original shuffles its instances). Next-sentence pairs, or sentence-order pairs with
    ``sentence_order``."""
    out = [array("q") for _ in range(5)]
    offsets = segment_offsets.tolist()  # Python ints: much faster than indexing numpy in this loop
    for _ in range(dupe_factor):
        for document_index in range(len(documents)):
            create_pairs_from_document(documents, document_index, offsets, max_seq_len, short_seq_prob, rng, out,
                                       sentence_order)
    return concatenate_shuffled([_spans(out)], rng)  # same draws as the original's shuffle of its instance list
