"""Continued pretraining: start ``bert pretrain`` from a pretrained checkpoint instead of random weights.

What most people with a small corpus do is not to pretrain from scratch (on a few CPU cores that never leaves the
"frequent word" stage) but to keep training a pretrained BERT with the same objective on their own text. Three
things make that work:

* the architecture comes from the checkpoint's ``config.json`` (only dropout may be changed), and so does the model
  type: a RoBERTa, ALBERT or DistilBERT checkpoint continues as that variant (:mod:`bert.variants`);
* the prepared data must have been tokenized with the checkpoint's own vocabulary: the embedding row of id 2003
  means "is" only for the vocabulary the model was trained with, so a mismatch is refused before training;
* heads the checkpoint has (a ``BertForPreTraining`` checkpoint) are kept, so training continues exactly where it
  stopped; heads it lacks (a bare encoder such as all-MiniLM-L6-v2 has no MLM transform, MLM bias or NSP layer) are
  freshly initialised and named. The MLM decoder is the word-embedding matrix (tied), so it is never fresh.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bert.config import BertConfig
from bert.errors import BertError
from bert.hub import resolve_model_folder
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer
from bert.variants.auto import auto_class, auto_tokenizer
from bert.weights import LoadReport, find_weights, load_into, read_state_dict


@dataclass
class InitCheckpoint:
    """A checkpoint to continue pretraining from: its folder and its (possibly dropout-overridden) config."""

    folder: Path
    config: BertConfig

    @classmethod
    def resolve(cls, name_or_path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> InitCheckpoint:
        """Find the checkpoint (a folder or any name ``--model`` takes: weights/, HF cache, download) and read its
        config (of its model type's class). A missing or unreadable checkpoint is a :class:`BertError`."""
        folder = resolve_model_folder(name_or_path)
        if not (folder / "config.json").is_file():
            raise BertError(f"--init-from {name_or_path}: {folder} has no config.json; is it a BERT checkpoint?")
        config_class = auto_class(folder, "base").config_class
        return cls(folder, config_class.from_json_file(folder / "config.json", **(overrides or {})))

    def check_vocabulary(self, data_tokenizer: FastTokenizer, data_dir: Path) -> None:
        """BertError unless the prepared data's vocabulary is the checkpoint's (same tokens at the same ids)."""
        fix = (f"prepare the data with the checkpoint's tokenizer: bert prepare ... --tokenizer {self.folder} "
               f"--out {data_dir}")
        data_vocab = data_tokenizer.get_vocab()
        if max(data_vocab.values()) >= self.config.vocab_size:
            raise BertError(f"{data_dir} was tokenized with a {len(data_vocab)}-token vocabulary but the checkpoint "
                            f"{self.folder} has {self.config.vocab_size} tokens; {fix}")
        try:
            own = auto_tokenizer(self.folder).get_vocab()
        except BertError:
            return  # a checkpoint without tokenizer files: the sizes agree, which is all that can be checked
        if own != data_vocab:
            by_id = {i: t for t, i in own.items()}
            first = min(i for t, i in data_vocab.items() if by_id.get(i) != t)
            raise BertError(f"{data_dir} was tokenized with another vocabulary than the checkpoint {self.folder} "
                            f"(id {first} is {next(t for t, i in data_vocab.items() if i == first)!r} in the data "
                            f"but {by_id.get(first)!r} in the checkpoint); {fix}")

    def read_weights(self) -> dict[str, torch.Tensor]:
        """The checkpoint's tensors (memory-mapped where possible); a corrupt file is a :class:`BertError`."""
        return read_state_dict(find_weights(self.folder))

    def load_into(self, model: PreTrainedModel, state: dict[str, torch.Tensor]) -> LoadReport:
        """Copy the checkpoint's tensors ``state`` into ``model``; returns what was missing (fresh) or unused."""
        return load_into(model, state, source=str(self.folder))


def fresh_heads_note(report: LoadReport) -> str | None:
    """One line naming the parameters that the checkpoint did not have (None when it had them all)."""
    if not report.missing:
        return None
    return f"freshly initialised (not in the checkpoint): {', '.join(report.missing)}"
