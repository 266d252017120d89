"""A whole corpus as WordPiece ids in three flat arrays (compact, and cheap to slice into examples).

Sentences are tokenized in large batches with the ``tokenizers`` backend (Rust, multi-threaded), through a
cache of distinct words when the tokenizer is the standard BERT pipeline. Sentences that
yield no tokens are dropped, and so are documents left without sentences.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from bert.data.corpus import DocumentPart


@dataclass
class TokenizedCorpus:
    """All documents' token ids, concatenated.

    ``tokens`` [T] int32: every sentence's ids back to back.
    ``segment_offsets`` [S + 1] int64: sentence ``s`` is ``tokens[segment_offsets[s]:segment_offsets[s + 1]]``.
    ``document_offsets`` [D + 1] int64: document ``d`` is sentences ``document_offsets[d]:document_offsets[d + 1]``.
    ``empty_documents``: documents dropped because they produced no tokens.
    """

    tokens: np.ndarray
    segment_offsets: np.ndarray
    document_offsets: np.ndarray
    empty_documents: int = 0

    @property
    def num_documents(self) -> int:
        return len(self.document_offsets) - 1

    @property
    def num_segments(self) -> int:
        return len(self.segment_offsets) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.segment_offsets[-1])


def _bulk_backend(backend: Tokenizer) -> Tokenizer:
    """A copy of ``backend`` without padding/truncation (a model's tokenizer.json may switch them on)."""
    copy = Tokenizer.from_str(backend.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


# Characters Python's str.split() treats as whitespace but BERT's normaliser deletes (controls), so a sentence
# holding one must not go through the word cache.
_SPLIT_MISMATCH = re.compile("[\x1c-\x1f]")
MAX_CACHED_WORD = 200  # characters; longer words are encoded but not remembered


class _WordCache:
    """Encode sentences word by word (whitespace-separated), remembering each distinct word's ids.

    Exact for the BERT pipeline: its normaliser works character by character and its pre-tokeniser splits at
    whitespace first, so a sentence's ids are the concatenation of its words' ids. Natural text repeats words
    heavily (Zipf), so encoding each distinct word once is several times faster than encoding every sentence.
    """

    def __init__(self, backend: Tokenizer, max_entries: int = 2_000_000) -> None:
        self.backend = backend
        self.max_entries = max_entries
        self.ids: dict[str, list[int]] = {}

    @staticmethod
    def applies_to(backend: Tokenizer) -> bool:
        spec = json.loads(backend.to_str())
        normalizer = (spec.get("normalizer") or {}).get("type")
        pre_tokenizer = (spec.get("pre_tokenizer") or {}).get("type")
        return normalizer in (None, "BertNormalizer") and pre_tokenizer == "BertPreTokenizer"

    def encode(self, sentences: list[str]) -> list[list[int]]:
        if len(self.ids) > self.max_entries:
            self.ids.clear()
        cache = self.ids
        words = [sentence.split() for sentence in sentences]
        new = list({word for sentence in words for word in sentence if word not in cache})
        if new:
            for word, encoding in zip(new, self.backend.encode_batch(new, add_special_tokens=False), strict=True):
                cache[word] = encoding.ids
        result = [list(itertools.chain.from_iterable(map(cache.__getitem__, sentence))) for sentence in words]
        for word in new:  # junk such as a megabyte without spaces would only bloat the cache
            if len(word) > MAX_CACHED_WORD:
                del cache[word]
        for index, sentence in enumerate(sentences):
            if _SPLIT_MISMATCH.search(sentence):
                result[index] = self.backend.encode(sentence, add_special_tokens=False).ids
        return result


def tokenize_documents(
    documents: Iterable[list[str]], backend: Tokenizer, batch_sentences: int = 16384, batch_chars: int = 8 << 20
) -> TokenizedCorpus:
    """Tokenize ``documents`` (each a list of sentences) without special tokens.

    Sentences are encoded ``batch_sentences`` (or ``batch_chars`` characters) at a time, so memory holds only the
    ids, 4 bytes per token, plus one batch of text. A document may arrive in parts
    (:class:`~bert.data.corpus.DocumentPart`, as ``iter_documents(..., part_chars=...)`` yields them): the parts
    are joined into one document, and a batch may end inside it.
    """
    builder = _CorpusBuilder(_sentence_encoder(_bulk_backend(backend)))
    for document in documents:
        builder.add(document)
        if len(builder.sentences) >= batch_sentences or builder.chars >= batch_chars:
            builder.flush()
    builder.flush()
    return builder.corpus()


def _sentence_encoder(backend: Tokenizer) -> Callable[[list[str]], list[list[int]]]:
    """A function from a list of sentences to their lists of ids: through a :class:`_WordCache` when it is exact
    for ``backend``, else ``backend.encode_batch``."""
    if _WordCache.applies_to(backend):
        return _WordCache(backend).encode

    def encode(sentences: list[str]) -> list[list[int]]:
        return [e.ids for e in backend.encode_batch(sentences, add_special_tokens=False)] if sentences else []

    return encode


class _CorpusBuilder:
    """The arrays of a :class:`TokenizedCorpus`, built a batch of sentences at a time.

    :meth:`add` queues a document's sentences (a :class:`~bert.data.corpus.DocumentPart` leaves the document open:
    the next list continues it); :meth:`flush` encodes the queue and keeps only the ids, the kept sentences'
    lengths and the documents' sentence counts (dropping empty sentences, and documents left without any);
    :meth:`corpus` joins them.
    """

    def __init__(self, encode: Callable[[list[str]], list[list[int]]]) -> None:
        self.encode = encode
        self.token_parts: list[np.ndarray] = []  # int32 ids of each batch
        self.segment_lengths: list[np.ndarray] = []  # int64 tokens per kept sentence, per batch
        self.document_segment_counts: list[np.ndarray] = []  # int64 kept sentences per finished document, per batch
        self.empty_documents = 0
        self.sentences: list[str] = []  # the pending batch
        self.chars = 0  # its characters
        self.counts: list[int] = []  # sentences per document of the pending batch
        self.open_document = False  # the last document of the batch goes on in the next list
        self.carried = 0  # kept sentences of that document in earlier batches

    def add(self, document: list[str]) -> None:
        self.sentences.extend(document)
        self.chars += sum(map(len, document))
        if self.open_document:
            self.counts[-1] += len(document)
        else:
            self.counts.append(len(document))
        self.open_document = isinstance(document, DocumentPart)

    def flush(self) -> None:
        """Encode the pending batch and keep its arrays; the batch is then empty (but for an open document)."""
        if not self.counts:
            return
        id_lists = self.encode(self.sentences)
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
        ids = np.fromiter(itertools.chain.from_iterable(id_lists), dtype=np.int32, count=int(lengths.sum()))
        self.token_parts.append(ids)
        kept = lengths > 0
        self.segment_lengths.append(lengths[kept])
        self._count_document_sentences(kept)
        self.sentences.clear()
        self.counts.clear()
        self.chars = 0
        if self.open_document:
            self.counts.append(0)

    def _count_document_sentences(self, kept: np.ndarray) -> None:
        """Record the kept sentences (``kept`` [S] bool, one per sentence of the batch) of each document the batch
        finishes; an open last document's count is carried over to the next batch."""
        doc_of_sentence = np.repeat(np.arange(len(self.counts)), self.counts)
        per_doc = np.bincount(doc_of_sentence[kept], minlength=len(self.counts))
        per_doc[0] += self.carried  # the first document may have begun in an earlier batch
        self.carried = 0
        if self.open_document:
            self.carried, per_doc = int(per_doc[-1]), per_doc[:-1]
        self.empty_documents += int((per_doc == 0).sum())
        self.document_segment_counts.append(per_doc[per_doc > 0])

    def corpus(self) -> TokenizedCorpus:
        """The batches joined into one corpus, lengths and counts turned into offsets."""
        tokens = np.concatenate(self.token_parts) if self.token_parts else np.zeros(0, dtype=np.int32)
        seg_lengths = np.concatenate(self.segment_lengths) if self.segment_lengths else np.zeros(0, dtype=np.int64)
        doc_counts = (np.concatenate(self.document_segment_counts) if self.document_segment_counts
                      else np.zeros(0, dtype=np.int64))
        segment_offsets = np.zeros(len(seg_lengths) + 1, dtype=np.int64)
        np.cumsum(seg_lengths, out=segment_offsets[1:])
        document_offsets = np.zeros(len(doc_counts) + 1, dtype=np.int64)
        np.cumsum(doc_counts, out=document_offsets[1:])
        return TokenizedCorpus(tokens, segment_offsets, document_offsets, self.empty_documents)
