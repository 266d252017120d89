"""ALBERT (Lan et al., 2019, "ALBERT: A Lite BERT for Self-supervised Learning of Language Representations"): BERT
with far fewer parameters. What changes relative to BERT:

* Factorised embeddings: the tables have width embedding_size E (128) instead of H, and the encoder starts with
  ``embedding_hidden_mapping_in`` (E → H). The MLM head narrows back to E (dense H → E, activation, LayerNorm) so
  that its decoder can be tied to the [V, E] word embeddings.
* Cross-layer sharing: num_hidden_groups groups of inner_group_num layers; layer i of num_hidden_layers runs all
  layers of group int(i / (num_hidden_layers / num_hidden_groups)). The released models have one group of one
  layer, applied num_hidden_layers times. Every inner layer's output counts as a hidden state and every inner layer
  returns its attention map (as in transformers), and hidden_states[0] is the input after the E → H mapping.
* Layer layout: attention and its output projection live in one module (``attention.query/key/value/dense/
  LayerNorm``), the feed-forward is ``ffn`` / ``ffn_output`` with ``full_layer_layer_norm``; the math is BERT's
  post-LN layer, except that (as in transformers) no dropout follows ``ffn_output``.
* Pooler: a bare Linear (``albert.pooler``) + tanh on the first token.
* Pretraining: sentence-order prediction (``sop_classifier.classifier``, num_labels outputs, 0 = original order)
  instead of next-sentence prediction; outputs ``prediction_logits`` and ``sop_logits``.
* Config: model_type "albert", the fields embedding_size, num_hidden_groups, inner_group_num, and
  classifier_dropout_prob (our classifier_dropout); HF's defaults (hidden_act gelu_new, no dropout, vocab 30000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from bert.config import BertConfig
from bert.errors import BertError
from bert.heads import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertPredictionHeadTransform,
    BertPreTrainedModel,
    classifier_dropout,
)
from bert.model import BertEmbeddings, BertModel, BertSelfAttention, Padding, activation, run_layers
from bert.outputs import BaseModelOutput, ModelOutput, Tensors
from bert.weights import CheckpointNaming


@dataclass
class AlbertConfig(BertConfig):
    model_type: ClassVar[str] = "albert"
    json_names: ClassVar[dict[str, str]] = {"classifier_dropout": "classifier_dropout_prob"}

    vocab_size: int = 30000
    hidden_size: int = 4096
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    classifier_dropout: float | None = 0.1
    embedding_size: int = 128
    num_hidden_groups: int = 1
    inner_group_num: int = 1

    def validate(self) -> None:
        super().validate()
        for name in ("embedding_size", "num_hidden_groups", "inner_group_num"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BertError(f"config: {name} must be a positive integer, got {value!r}")


class AlbertEmbeddings(BertEmbeddings):
    """BERT's embeddings at width embedding_size."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config, size=config.embedding_size)


class AlbertAttention(BertSelfAttention):
    """BERT's self-attention with its output projection, dropout, residual and LayerNorm (BertSelfOutput) inside."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs = super().forward(hidden_states, padding, output_attentions)
        return self.LayerNorm(hidden_states + self.output_dropout(self.dense(context))), probs


class AlbertLayer(nn.Module):
    """BERT's post-LN layer under ALBERT's names."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.full_layer_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = AlbertAttention(config)
        self.ffn = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = activation(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, probs = self.attention(hidden_states, padding, output_attentions)
        return self.full_layer_layer_norm(self.ffn_output(self.activation(self.ffn(attended))) + attended), probs


class AlbertLayerGroup(nn.Module):
    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.albert_layers = nn.ModuleList(AlbertLayer(config) for _ in range(config.inner_group_num))


class AlbertTransformer(nn.Module):
    """E → H, then num_hidden_layers applications of the shared layer groups (gradient checkpointing as BERT's)."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.num_hidden_layers = config.num_hidden_layers
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)
        self.albert_layer_groups = nn.ModuleList(AlbertLayerGroup(config) for _ in range(config.num_hidden_groups))
        self.gradient_checkpointing = False

    def schedule(self) -> list[nn.Module]:
        """The layers in the order they run (the same module several times)."""
        per_group = self.num_hidden_layers / len(self.albert_layer_groups)
        return [layer for i in range(self.num_hidden_layers)
                for layer in self.albert_layer_groups[int(i / per_group)].albert_layers]

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> BaseModelOutput:
        """hidden_states [B, T, E] (or packed [M, E]) → [B, T, H]."""
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        return run_layers(self.schedule(), self.embedding_hidden_mapping_in(hidden_states), padding,
                          output_attentions, output_hidden_states, recompute)


class AlbertPooler(nn.Linear):
    """First token → dense → tanh; the checkpoints store the dense layer itself as ``albert.pooler``."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[B, T, H] → [B, H]."""
        return torch.tanh(super().forward(hidden_states[:, 0]))


class AlbertCheckpoints:
    """How ALBERT checkpoints name things (see :class:`bert.pretrained.PreTrainedModel`)."""

    config_class = AlbertConfig
    checkpoint_naming = CheckpointNaming(model_type="albert", prefix="albert",
                                         aliases=(("predictions.decoder.bias", "predictions.bias"),),
                                         tied_decoder="predictions.decoder.weight")


class AlbertModel(AlbertCheckpoints, BertModel):
    embeddings_class = AlbertEmbeddings
    encoder_class = AlbertTransformer
    pooler_class = AlbertPooler


class AlbertPreTrainedModel(AlbertCheckpoints, BertPreTrainedModel):
    base_model_class = AlbertModel


class AlbertMLMHead(BertPredictionHeadTransform):
    """BERT's MLM head narrowed to E: dense H → E, activation, LayerNorm, then the tied decoder E → V + bias."""

    def __init__(self, config: AlbertConfig) -> None:
        super().__init__(config, size=config.embedding_size)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def word_scores(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[..., H] → [..., V] before the bias, as BERT's (bert.heads)."""
        return self.decoder(super().forward(hidden_states))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[..., H] → [..., V]."""
        logits = self.word_scores(hidden_states)
        return logits + self.bias.to(logits.dtype)  # as BERT's (bert.heads)


class AlbertSOPHead(nn.Module):
    def __init__(self, config: AlbertConfig) -> None:
        super().__init__()
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled_output))


@dataclass
class AlbertForPreTrainingOutput(ModelOutput):
    """loss = mlm_loss + sop_loss; prediction_logits [B, T, V]; sop_logits [B, 2] (0 = original order)."""

    loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    sop_logits: torch.Tensor | None = None
    hidden_states: Tensors | None = None
    attentions: Tensors | None = None
    mlm_loss: torch.Tensor | None = None
    sop_loss: torch.Tensor | None = None


class AlbertForPreTraining(AlbertPreTrainedModel, BertForPreTraining):
    """ALBERT as it was pretrained: masked language modelling + sentence-order prediction.

    labels [B, T]: the original token at masked positions, -100 elsewhere. sentence_order_label [B]: 0 = the two
    segments in their original order, 1 = swapped. As for BERT, loss is the sum of the losses whose labels are given.
    """

    tied_weights = ("predictions.decoder.weight",)

    def add_head(self, config: AlbertConfig) -> None:
        self.predictions = AlbertMLMHead(config)
        self.sop_classifier = AlbertSOPHead(config)

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.predictions(hidden_states)

    def pair_logits(self, pooled_output: torch.Tensor) -> torch.Tensor:
        return self.sop_classifier(pooled_output)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                sentence_order_label: torch.Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> AlbertForPreTrainingOutput:
        """BERT's pretraining forward with sentence order as the pair task, under ALBERT's output names."""
        out = super().forward(input_ids, token_type_ids, attention_mask, labels, sentence_order_label,
                              output_attentions, output_hidden_states)
        return AlbertForPreTrainingOutput(
            loss=out.loss, prediction_logits=out.prediction_logits, sop_logits=out.seq_relationship_logits,
            hidden_states=out.hidden_states, attentions=out.attentions, mlm_loss=out.mlm_loss, sop_loss=out.nsp_loss)


class AlbertForMaskedLM(AlbertPreTrainedModel, BertForMaskedLM):
    """BERT's fill-mask model with ALBERT's narrow ``predictions`` head: logits [B, T, V]; loss with labels [B, T]."""

    tied_weights = ("predictions.decoder.weight",)

    def add_head(self, config: AlbertConfig) -> None:
        self.predictions = AlbertMLMHead(config)

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.predictions(hidden_states)


class AlbertForSequenceClassification(AlbertPreTrainedModel, BertForSequenceClassification):
    """BERT's sequence classifier (pooled first token → dropout → ``classifier``) on ALBERT."""


class AlbertForTokenClassification(AlbertPreTrainedModel, BertForTokenClassification):
    """BERT's token classifier (``classifier``) on ALBERT."""


class AlbertForQuestionAnswering(AlbertPreTrainedModel, BertForQuestionAnswering):
    """BERT's span extractor (``qa_outputs``) on ALBERT."""


__all__ = ["AlbertConfig", "AlbertForMaskedLM", "AlbertForPreTraining", "AlbertForQuestionAnswering",
           "AlbertForSequenceClassification", "AlbertForTokenClassification", "AlbertModel"]
