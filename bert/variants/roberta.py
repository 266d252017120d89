"""RoBERTa (Liu et al., 2019, "RoBERTa: A Robustly Optimized BERT Pretraining Approach"): BERT's encoder, trained
longer on more data with dynamic masking and without next-sentence prediction. What changes relative to BERT:

* Positions count the non-padding tokens from ``pad_token_id + 1`` on (fairseq's ``make_positions``) and padding
  tokens take row ``pad_token_id``, so the table has pad_token_id + 1 rows more than the longest input (514 for 512).
* One segment: the released checkpoints have type_vocab_size 1 (token_type_ids stay all 0).
* MLM head ``lm_head``: dense → exact GELU (whatever hidden_act says) → ``layer_norm`` → decoder tied to the word
  embeddings + ``bias``; no NSP head, hence no RobertaForPreTraining.
* Sequence classification reads the first token (<s>) through its own ``classifier.dense`` + tanh +
  ``classifier.out_proj``, not through the pooler (which RoBERTa's pretraining never trains).
* Config: model_type "roberta", HF's defaults (vocab_size 50265, pad_token_id 1); checkpoints use a byte-level BPE
  vocabulary (:class:`bert.variants.tokenizers.RobertaTokenizer`).

Token classification and question answering are BERT's heads unchanged; the MLM and sequence-classification heads are
BERT's classes with their one differing step (``mlm_logits``, ``classify``) replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bert.config import BertConfig
from bert.heads import (
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertPreTrainedModel,
    classifier_dropout,
)
from bert.model import BertEmbeddings, BertModel
from bert.outputs import BaseModelOutput
from bert.weights import CheckpointNaming


@dataclass
class RobertaConfig(BertConfig):
    model_type: ClassVar[str] = "roberta"

    vocab_size: int = 50265
    pad_token_id: int = 1


class RobertaEmbeddings(BertEmbeddings):
    """BERT's embeddings with positions that skip padding (see the module docstring)."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        # As in fairseq, the padding row of the position table is never trained (its gradient is always 0).
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size,
                                                padding_idx=config.pad_token_id)

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[B, T]: padding_idx + 1, + 2, ... over the real tokens, padding_idx at padding tokens."""
        real = input_ids.ne(self.padding_idx).long()
        return real.cumsum(dim=1) * real + self.padding_idx

    def max_length(self) -> int:
        return self.position_embeddings.num_embeddings - self.padding_idx - 1


class RobertaCheckpoints:
    """How RoBERTa checkpoints name things (see :class:`bert.pretrained.PreTrainedModel`)."""

    config_class = RobertaConfig
    checkpoint_naming = CheckpointNaming(model_type="roberta", prefix="roberta",
                                         aliases=(("lm_head.decoder.bias", "lm_head.bias"),),
                                         tied_decoder="lm_head.decoder.weight")


class RobertaModel(RobertaCheckpoints, BertModel):
    """BERT's encoder and pooler over :class:`RobertaEmbeddings`."""

    embeddings_class = RobertaEmbeddings


class RobertaPreTrainedModel(RobertaCheckpoints, BertPreTrainedModel):
    base_model_class = RobertaModel


class RobertaLMHead(nn.Module):
    """Masked-word scores [..., V]: BERT's MLM head under other names, with the GELU fixed."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)  # tied to the word embeddings
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def word_scores(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[..., H] → [..., V] before the bias, as BERT's (bert.heads)."""
        return self.decoder(self.layer_norm(F.gelu(self.dense(hidden_states))))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        logits = self.word_scores(hidden_states)
        return logits + self.bias.to(logits.dtype)  # as BERT's (bert.heads)


class RobertaForMaskedLM(RobertaPreTrainedModel, BertForMaskedLM):
    """BERT's fill-mask model with RoBERTa's ``lm_head``: logits [B, T, V]; loss with labels [B, T]."""

    tied_weights = ("lm_head.decoder.weight",)

    def add_head(self, config: RobertaConfig) -> None:
        self.lm_head = RobertaLMHead(config)

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden_states)


class RobertaClassificationHead(nn.Module):
    """First token [B, H] → dropout → dense → tanh → dropout → out_proj → [B, C]: a pooler trained with the task."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = classifier_dropout(config)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[B, T, H] → [B, C]."""
        x = torch.tanh(self.dense(self.dropout(hidden_states[:, 0])))
        return self.out_proj(self.dropout(x))


class RobertaForSequenceClassification(RobertaPreTrainedModel, BertForSequenceClassification):
    """BERT's sequence classifier reading the first token through RoBERTa's own ``classifier`` (no pooler)."""

    uses_pooler = False

    def add_head(self, config: RobertaConfig) -> None:
        self.classifier = RobertaClassificationHead(config)

    def classify(self, out: BaseModelOutput) -> torch.Tensor:
        return self.classifier(out.last_hidden_state)


class RobertaForTokenClassification(RobertaPreTrainedModel, BertForTokenClassification):
    """BERT's token classifier (``classifier``) on RoBERTa."""


class RobertaForQuestionAnswering(RobertaPreTrainedModel, BertForQuestionAnswering):
    """BERT's span extractor (``qa_outputs``) on RoBERTa."""


__all__ = ["RobertaConfig", "RobertaForMaskedLM", "RobertaForQuestionAnswering", "RobertaForSequenceClassification",
           "RobertaForTokenClassification", "RobertaModel"]
