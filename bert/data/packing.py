"""MLM-only examples: consecutive sentences packed into full-length sequences (RoBERTa's FULL-SENTENCES).

Many small corpora have no meaningful document order (reviews, tweets, abstracts), so next-sentence pairs teach
nothing. RoBERTa (Liu et al., 2019) drops NSP and fills every sequence with whole consecutive sentences instead,
crossing document boundaries with an extra separator. Here, per example::

    [CLS] s1 s2 s3 [SEP] t1 t2 ... [SEP] [PAD] ...
          └ document A ┘    └ document B ┘

* sentences go in whole, in order, while they fit in ``max_seq_len - 2`` tokens; the next one starts a new
  example (a sentence longer than that is cut into full-length pieces);
* where a document ends and another begins inside an example, one ``[SEP]`` separates them;
* ``token_type_ids`` are all 0 (a single segment) and there is no next-sentence label (stored as -1).

Documents are visited in a random order (``rng``), once per ``dupe_factor`` pass, and the examples shuffled.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

NO_NSP_LABEL = -1  # stored in nsp_labels.npy for MLM-only examples


def pack_full_sentences(
    tokens: np.ndarray,
    segment_offsets: np.ndarray,
    documents: Sequence[tuple[int, int]],
    max_seq_len: int,
    *,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    dupe_factor: int,
    rng: random.Random,
) -> tuple[np.ndarray, np.ndarray]:
    """Pack the sentences of ``documents`` (ranges of sentence indices into ``segment_offsets``).

    Returns ``input_ids`` [N, max_seq_len] (int64, padded with ``pad_id``) and ``lengths`` [N] (real tokens).
    """
    budget = max_seq_len - 2
    offsets = segment_offsets.tolist()
    rows: list[list[int]] = []
    current: list[int] = []

    def emit() -> None:
        while current and current[-1] == sep_id:  # a document separator never ends an example
            current.pop()
        if current:
            rows.append([cls_id, *current, sep_id])
        current.clear()

    for _ in range(dupe_factor):
        order = list(range(len(documents)))
        rng.shuffle(order)
        for document in order:
            first, last = documents[document]
            if current:
                current.append(sep_id)
            for sentence in range(first, last):
                ids = tokens[offsets[sentence]:offsets[sentence + 1]].tolist()
                if len(current) + len(ids) > budget:
                    emit()
                while len(ids) > budget:  # longer than a whole example: full-length pieces
                    current.extend(ids[:budget])
                    emit()
                    ids = ids[budget:]
                current.extend(ids)
    emit()
    rng.shuffle(rows)
    input_ids = np.full((len(rows), max_seq_len), pad_id, dtype=np.int64)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = row
        lengths[i] = len(row)
    return input_ids, lengths
