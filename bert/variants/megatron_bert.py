"""Pre-LayerNorm BERT, as Megatron-LM trains it (Shoeybi et al., 2019, "Megatron-LM: Training Multi-Billion
Parameter Language Models Using Model Parallelism"). Xiong et al. (2020, "On Layer Normalization in the Transformer
Architecture") showed why it trains more easily: BERT's post-LN layer, x = LN(x + f(x)), normalises the residual
stream itself, so early in training the gradients near the output are large and a large learning rate diverges
without a long warmup; pre-LN, x = x + f(LN(x)), leaves the residual stream alone and normalises only what each
sub-layer reads, so it tolerates larger learning rates and shorter warmups (cramming and Izsak et al. 2021 rely on
it). What changes relative to BERT:

* Each sub-layer normalises its input: attention reads ``attention.ln(x)``, the feed-forward block reads ``ln(x)``;
  their outputs are added to the un-normalised residual stream (no LayerNorm after the additions).
* The encoder ends with one LayerNorm (``encoder.ln``), so the heads still read normalised vectors;
  ``hidden_states[-1]`` is that normalised output, the earlier hidden states are the raw residual stream.
* The embeddings have no LayerNorm (the sum of word, position and segment embeddings goes straight to dropout).
* Config: model_type "megatron-bert"; everything else (heads, pooler, MLM decoder tied to the word embeddings,
  WordPiece vocabulary) is BERT's.

The checkpoint names are transformers' ``MegatronBert*`` names, so its checkpoints load both ways. Transformers'
``BertModel`` cannot load them: its layers have no ``ln`` and expect a LayerNorm after each addition.

Pretrain one from scratch with ``bert pretrain --config megatron-bert-mini`` (any size: megatron-bert-tiny, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from bert.config import BertConfig
from bert.heads import (
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertPreTrainedModel,
)
from bert.model import BertEmbeddings, BertEncoder, BertIntermediate, BertModel, BertSelfAttention, Padding
from bert.outputs import BaseModelOutput
from bert.weights import CheckpointNaming


@dataclass
class MegatronBertConfig(BertConfig):
    model_type: ClassVar[str] = "megatron-bert"


class MegatronBertEmbeddings(BertEmbeddings):
    """BERT's embeddings without their LayerNorm: the first layer's ``attention.ln`` normalises what it reads."""

    def __init__(self, config: MegatronBertConfig) -> None:
        super().__init__(config)
        del self.LayerNorm

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """input_ids, token_type_ids: [B, T] → embeddings [B, T, H]."""
        embeddings = (self.word_embeddings(input_ids)
                      + self.token_type_embeddings(token_type_ids)
                      + self.position_embeddings(self.position_ids(input_ids)))
        return self.dropout(embeddings)


class Residual(nn.Module):
    """Project a sub-layer's output back to H and add it to the residual stream (no LayerNorm after the sum)."""

    def __init__(self, config: MegatronBertConfig, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, sublayer_output: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """sublayer_output [B, T, width], residual [B, T, H] → [B, T, H]."""
        return residual + self.dropout(self.dense(sublayer_output))


class MegatronBertAttention(nn.Module):
    """x + attention(LN(x)): ``ln``, then BERT's self-attention (``self``), then ``output`` (projection + residual)."""

    def __init__(self, config: MegatronBertConfig) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self = BertSelfAttention(config)
        self.output = Residual(config, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states [B, T, H] (or packed [M, H]) → same shape, attention probabilities [B, N, T, T] or None."""
        context, probs = self.self(self.ln(hidden_states), padding, output_attentions)
        return self.output(context, hidden_states), probs


class MegatronBertLayer(nn.Module):
    """One pre-LN encoder layer: x = x + attention(LN(x)), then x = x + FFN(LN(x))."""

    def __init__(self, config: MegatronBertConfig) -> None:
        super().__init__()
        self.attention = MegatronBertAttention(config)
        self.ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = BertIntermediate(config)
        self.output = Residual(config, config.intermediate_size)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states [B, T, H] (or packed [M, H]) → same shape, attention probabilities [B, N, T, T] or None."""
        attended, probs = self.attention(hidden_states, padding, output_attentions)
        return self.output(self.intermediate(self.ln(attended)), attended), probs


class MegatronBertEncoder(BertEncoder):
    """BERT's stack of pre-LN layers, then the final LayerNorm ``ln``."""

    layer_class = MegatronBertLayer

    def __init__(self, config: MegatronBertConfig) -> None:
        super().__init__(config)
        self.ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> BaseModelOutput:
        """As BERT's encoder; the last hidden state (and the last of ``hidden_states``) is normalised by ``ln``."""
        output = super().forward(hidden_states, padding, output_attentions, output_hidden_states)
        output.last_hidden_state = self.ln(output.last_hidden_state)
        if output.hidden_states is not None:
            output.hidden_states = (*output.hidden_states[:-1], output.last_hidden_state)
        return output


class MegatronBertCheckpoints:
    """How Megatron-BERT checkpoints name things: BERT's names (see :class:`bert.pretrained.PreTrainedModel`)."""

    config_class = MegatronBertConfig
    checkpoint_naming = CheckpointNaming(model_type="megatron-bert")


class MegatronBertModel(MegatronBertCheckpoints, BertModel):
    """BERT's encoder with pre-LN layers, a final LayerNorm and embeddings without LayerNorm; BERT's pooler."""

    embeddings_class = MegatronBertEmbeddings
    encoder_class = MegatronBertEncoder


class MegatronBertPreTrainedModel(MegatronBertCheckpoints, BertPreTrainedModel):
    base_model_class = MegatronBertModel


class MegatronBertForPreTraining(MegatronBertPreTrainedModel, BertForPreTraining):
    """BERT's MLM + NSP heads (``cls.*``) on the pre-LN encoder."""


class MegatronBertForMaskedLM(MegatronBertPreTrainedModel, BertForMaskedLM):
    """BERT's fill-mask head on the pre-LN encoder."""


class MegatronBertForNextSentencePrediction(MegatronBertPreTrainedModel, BertForNextSentencePrediction):
    """BERT's next-sentence head on the pre-LN encoder."""


class MegatronBertForSequenceClassification(MegatronBertPreTrainedModel, BertForSequenceClassification):
    """BERT's sequence classifier (pooler + ``classifier``) on the pre-LN encoder."""


class MegatronBertForTokenClassification(MegatronBertPreTrainedModel, BertForTokenClassification):
    """BERT's token classifier on the pre-LN encoder."""


class MegatronBertForQuestionAnswering(MegatronBertPreTrainedModel, BertForQuestionAnswering):
    """BERT's span extractor on the pre-LN encoder."""


__all__ = ["MegatronBertConfig", "MegatronBertForMaskedLM", "MegatronBertForNextSentencePrediction",
           "MegatronBertForPreTraining", "MegatronBertForQuestionAnswering", "MegatronBertForSequenceClassification",
           "MegatronBertForTokenClassification", "MegatronBertModel"]
