"""``--dataset NAME[:CONFIG]``: a split of a Hugging Face ``datasets`` dataset as an input of ``bert prepare`` and
``bert train-tokenizer`` (an optional extra: ``pip install datasets``, imported only here and only when asked for).

NAME is what ``datasets.load_dataset`` takes (a Hub name such as ``wikitext``, or a local folder of data files), or a
folder written by ``save_to_disk``, which is opened with ``datasets.load_from_disk`` (no copy into the cache). Each row
is then one document (:func:`bert.data.rows.column_texts` reads its text column).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bert.errors import BertError

SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what save_to_disk writes into a DatasetDict's / Dataset's folder


def load_hf_dataset(spec: str, split: str = "train") -> Any:
    """The ``split`` of the dataset ``spec`` (``NAME`` or ``NAME:CONFIG``), a ``datasets.Dataset``; a one-line
    BertError when ``datasets`` is missing or the dataset or split cannot be loaded."""
    try:
        import datasets
    except ImportError:
        raise BertError("--dataset reads through Hugging Face datasets: pip install datasets") from None
    name, _, config = spec.partition(":")
    folder = Path(name).expanduser()
    if not config and any((folder / marker).is_file() for marker in SAVED_MARKERS):
        loaded = datasets.load_from_disk(str(folder))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise BertError(f"dataset {spec} has no split {split!r}; its splits are: {', '.join(loaded)}")
            return loaded[split]
        return loaded
    try:
        return datasets.load_dataset(name, config or None, split=split)
    # datasets raises many kinds (ValueError for an unknown split, ConnectionError offline, FileNotFoundError,
    # DatasetNotFoundError, ...): each is the user's input not loading, said in one line.
    except Exception as error:  # noqa: BLE001
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BertError(f"cannot load dataset {spec} (split {split}): {reason}") from None
