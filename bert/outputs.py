"""What the models return: dataclasses whose field names are Hugging Face's, so code written for HF moves over.

Like HF's ``ModelOutput``, a result can be read by attribute (``out.logits``), by key (``out["logits"]``) or by
position over the fields that are set (``out[0]``), which is what ``loss, logits = out[:2]``-style code expects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

Tensors = tuple[torch.Tensor, ...]


class ModelOutput:
    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are not None, in declaration order."""
        return tuple(v for f in dataclasses.fields(self) if (v := getattr(self, f.name)) is not None)

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]


@dataclass
class BaseModelOutput(ModelOutput):
    """last_hidden_state [B, T, H]; pooler_output [B, H]; hidden_states L+1 × [B, T, H]; attentions L × [B, N, T, T]."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: Tensors | None = None
    attentions: Tensors | None = None


@dataclass
class PreTrainingOutput(ModelOutput):
    """loss = mlm_loss + nsp_loss; prediction_logits [B, T, V]; seq_relationship_logits [B, 2] (0 = IsNext)."""

    loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    hidden_states: Tensors | None = None
    attentions: Tensors | None = None
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None


@dataclass
class LogitsOutput(ModelOutput):
    """Masked LM [B, T, V], next sentence [B, 2], sequence classification [B, C], token classification [B, T, C]."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: Tensors | None = None
    attentions: Tensors | None = None


@dataclass
class QuestionAnsweringOutput(ModelOutput):
    """start_logits, end_logits [B, T]: a score for every token being the first / last token of the answer."""

    loss: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None
    end_logits: torch.Tensor | None = None
    hidden_states: Tensors | None = None
    attentions: Tensors | None = None
