"""The on-disk format of prepared pretraining data, its writer, and :class:`PretrainingDataset` to read it.

A prepared folder looks like::

    DIR/meta.json                  settings, objective, source files, counts, label balance (written last)
    DIR/tokenizer/                 vocab.txt, tokenizer.json, tokenizer_config.json used to prepare the data
    DIR/train/ and DIR/eval/       one split each (eval may hold 0 examples):
        input_ids.npy              [N, max_seq_len] uint16 (int32 if the vocabulary has >= 65536 ids):
                                   [CLS] A [SEP] B [SEP] then [PAD] up to max_seq_len
        segment_a_lengths.npy      [N] int16: length of [CLS] A [SEP] (token_type_ids are 0 there, 1 after)
        lengths.npy                [N] int16: number of real tokens (attention_mask is 1 there, 0 after)
        nsp_labels.npy             [N] int8: 0 = IsNext (B follows A), 1 = NotNext (B is random)

Sentence-order data (``bert prepare --objective mlm+sop``, meta.json ``"objective": "mlm+sop"``) has the same files;
``nsp_labels`` then hold sentence-order labels: 0 = A precedes B in the document, 1 = swapped (B precedes A).

MLM-only data (``bert prepare --objective mlm``, meta.json ``"objective": "mlm"``, see :mod:`bert.data.packing`)
uses the same files: rows are ``[CLS] packed sentences [SEP]``, ``segment_a_lengths`` equals ``lengths`` (one
segment: token_type_ids are all 0) and ``nsp_labels`` are -1 (no label).

(int32 replaces int16 when max_seq_len > 32767.) Every array is a plain ``.npy`` file, so ``np.load(...,
mmap_mode="r")`` maps it without reading it: :class:`PretrainingDataset` stays at a flat, small memory use
whatever the corpus size, and DataLoader workers share the page cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bert.data.examples import PairSpans
from bert.data.packing import NO_NSP_LABEL
from bert.errors import BertError

META_FILE = "meta.json"
TOKENIZER_DIR = "tokenizer"
SPLITS = ("train", "eval")
ARRAY_FILES = ("input_ids", "segment_a_lengths", "lengths", "nsp_labels")
_ROWS_PER_CHUNK = 32768


def ids_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size < 65536), else int32."""
    return np.dtype(np.uint16) if vocab_size < 65536 else np.dtype(np.int32)


def lengths_dtype(max_seq_len: int) -> np.dtype:
    return np.dtype(np.int16) if max_seq_len <= np.iinfo(np.int16).max else np.dtype(np.int32)


def write_split(
    folder: str | os.PathLike,
    tokens: np.ndarray,
    spans: PairSpans,
    *,
    max_seq_len: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    vocab_size: int,
) -> None:
    """Write the examples ``spans`` (ranges into ``tokens``) as the arrays of one split into ``folder``.

    Rows are assembled ``_ROWS_PER_CHUNK`` at a time with array gathers (no per-example Python work) and
    written straight into a memory-mapped ``.npy``, so memory stays bounded for any number of examples.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(spans)
    length_a = spans.a_end - spans.a_start
    length_b = spans.b_end - spans.b_start
    if n and (length_a.min() < 1 or length_b.min() < 1 or (length_a + length_b).max() > max_seq_len - 3):
        raise AssertionError("example spans violate the [CLS] A [SEP] B [SEP] length limits")
    lengths = length_a + length_b + 3
    ldtype = lengths_dtype(max_seq_len)
    np.save(folder / "segment_a_lengths.npy", (length_a + 2).astype(ldtype))
    np.save(folder / "lengths.npy", lengths.astype(ldtype))
    np.save(folder / "nsp_labels.npy", spans.nsp_labels.astype(np.int8))

    dtype = ids_dtype(vocab_size)
    path = folder / "input_ids.npy"
    if n == 0:  # a zero-length memmap cannot be created
        np.save(path, np.zeros((0, max_seq_len), dtype=dtype))
        return
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n, max_seq_len))
    col = np.arange(max_seq_len, dtype=np.int64)[None, :]
    for lo in range(0, n, _ROWS_PER_CHUNK):
        hi = min(n, lo + _ROWS_PER_CHUNK)
        la = length_a[lo:hi, None]
        lb = length_b[lo:hi, None]
        in_a = (col >= 1) & (col <= la)
        b_first = la + 2  # column of B's first token
        in_b = (col >= b_first) & (col < b_first + lb)
        source = np.where(in_a, spans.a_start[lo:hi, None] + col - 1, spans.b_start[lo:hi, None] + col - b_first)
        source = np.where(in_a | in_b, source, 0)
        rows = np.where(in_a | in_b, tokens[source], pad_id)
        rows[:, 0] = cls_id
        index = np.arange(hi - lo)
        rows[index, la[:, 0] + 1] = sep_id
        rows[index, (la + lb)[:, 0] + 2] = sep_id
        out[lo:hi] = rows
    out.flush()
    del out


def write_rows(folder: str | os.PathLike, input_ids: np.ndarray, lengths: np.ndarray, *, vocab_size: int) -> None:
    """Write already assembled single-segment rows (MLM-only data) as one split: ``input_ids`` [N, L], padded;
    ``lengths`` [N] real tokens per row."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ldtype = lengths_dtype(input_ids.shape[1])
    np.save(folder / "segment_a_lengths.npy", lengths.astype(ldtype))
    np.save(folder / "lengths.npy", lengths.astype(ldtype))
    np.save(folder / "nsp_labels.npy", np.full(len(lengths), NO_NSP_LABEL, dtype=np.int8))
    np.save(folder / "input_ids.npy", input_ids.astype(ids_dtype(vocab_size)))


class PretrainingDataset(Dataset):
    """One split of prepared data (``DIR/train`` or ``DIR/eval``), read through memory maps.

    ``dataset[i]`` is a dict of tensors, all ``torch.long``: ``input_ids`` [L], ``token_type_ids`` [L],
    ``attention_mask`` [L] and ``next_sentence_label`` [] (the sentence-pair label: 0 IsNext, 1 NotNext; for
    sentence-order data 0 in order, 1 swapped; -1 for MLM-only data), L = max_seq_len. Masking is
    not applied here: use :class:`bert.data.masking.MaskingCollator` as the DataLoader's ``collate_fn``.
    Safe to use with DataLoader workers (forked or spawned): the maps are reopened in each process.
    """

    def __init__(self, split_dir: str | os.PathLike) -> None:
        self.split_dir = Path(split_dir)
        missing = [f"{name}.npy" for name in ARRAY_FILES if not (self.split_dir / f"{name}.npy").is_file()]
        if missing:
            raise BertError(
                f"{self.split_dir} is not a prepared data split (missing {', '.join(missing)}); "
                "run `bert prepare` and pass its train/ or eval/ folder"
            )
        self._open()

    def _open(self) -> None:
        arrays = {}
        for name in ARRAY_FILES:
            path = self.split_dir / f"{name}.npy"
            try:
                arrays[name] = np.load(path, mmap_mode="r")
            except ValueError:  # numpy cannot map an empty array; it is tiny, so read it
                arrays[name] = np.load(path)
        self.input_ids: np.ndarray = arrays["input_ids"]
        self.segment_a_lengths: np.ndarray = arrays["segment_a_lengths"]
        self.lengths: np.ndarray = arrays["lengths"]
        self.nsp_labels: np.ndarray = arrays["nsp_labels"]
        n = len(self.input_ids)
        others = (self.segment_a_lengths, self.lengths, self.nsp_labels)
        if self.input_ids.ndim != 2 or any(len(a) != n for a in others):
            raise BertError(f"{self.split_dir}: the arrays disagree in shape; the prepared data is corrupt, re-run it")
        self._positions = torch.arange(self.input_ids.shape[1])

    def __getstate__(self) -> dict:
        # Pickling a memmap copies its data; send only the folder and reopen on the other side.
        return {"split_dir": self.split_dir}

    def __setstate__(self, state: dict) -> None:
        self.split_dir = state["split_dir"]
        self._open()

    @property
    def max_seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} examples")
        input_ids = torch.from_numpy(self.input_ids[index].astype(np.int64))
        length = int(self.lengths[index])
        a_length = int(self.segment_a_lengths[index])
        positions = self._positions
        return {
            "input_ids": input_ids,
            "token_type_ids": ((positions >= a_length) & (positions < length)).long(),
            "attention_mask": (positions < length).long(),
            "next_sentence_label": torch.tensor(int(self.nsp_labels[index]), dtype=torch.long),
        }

    def batch(self, indices) -> dict[str, torch.Tensor]:
        """The examples ``indices`` stacked: the same keys as ``dataset[i]`` with a leading batch dimension,
        gathered in one vectorised read (faster than stacking single examples)."""
        index = np.asarray(indices, dtype=np.int64)
        input_ids = torch.from_numpy(self.input_ids[index].astype(np.int64))
        lengths = torch.from_numpy(self.lengths[index].astype(np.int64))[:, None]
        a_lengths = torch.from_numpy(self.segment_a_lengths[index].astype(np.int64))[:, None]
        positions = self._positions[None, :]
        return {
            "input_ids": input_ids,
            "token_type_ids": ((positions >= a_lengths) & (positions < lengths)).long(),
            "attention_mask": (positions < lengths).long(),
            "next_sentence_label": torch.from_numpy(self.nsp_labels[index].astype(np.int64)),
        }
