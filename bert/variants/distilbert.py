"""DistilBERT (Sanh et al., 2019, "DistilBERT, a distilled version of BERT"): a 6-layer BERT trained to imitate a
12-layer one. The layer math is BERT's; what changes relative to BERT:

* No segments (no token_type_ids, no token-type table) and no pooler.
* Optional fixed sinusoidal positions (``sinusoidal_pos_embds``): the table of "Attention Is All You Need",
  row p = sin / cos of p / 10000^(2i/dim) in the even / odd columns, built in float64 as transformers does, stored in
  the checkpoint like a learned table but frozen here.
* Names: ``transformer.layer.N`` with ``attention.q_lin/k_lin/v_lin/out_lin``, ``sa_layer_norm``, ``ffn.lin1/lin2``,
  ``output_layer_norm``. As in transformers, no dropout follows ``out_lin`` and every LayerNorm has eps 1e-12.
* MLM head: ``vocab_transform`` → activation → ``vocab_layer_norm`` → ``vocab_projector`` (tied to the word
  embeddings, with its own bias), directly on the model rather than in a ``cls`` module.
* Sequence classification: first token → ``pre_classifier`` → ReLU → dropout (seq_classif_dropout) →
  ``classifier``; question answering applies dropout (qa_dropout) before ``qa_outputs``.
* Config: model_type "distilbert" with its own field names (dim, n_layers, n_heads, hidden_dim, activation, dropout,
  attention_dropout; read into BERT's fields) and sinusoidal_pos_embds, qa_dropout, seq_classif_dropout.
* Forward takes (input_ids, attention_mask, ...), as in transformers. The heads are BERT's classes with
  ``DistilBertHeadMixin`` in front (the encoder and that signature) and their one differing step replaced.
  ``DistilBertModel.pack_padding`` is its own switch (see :class:`bert.model.BertModel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bert.config import BertConfig
from bert.errors import BertError
from bert.heads import (
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from bert.model import BertEncoder, BertSelfAttention, Padding, activation, check_input, encode, multi_head_attention
from bert.outputs import BaseModelOutput, ModelOutput
from bert.pretrained import PreTrainedModel
from bert.weights import CheckpointNaming


@dataclass
class DistilBertConfig(BertConfig):
    model_type: ClassVar[str] = "distilbert"
    json_names: ClassVar[dict[str, str]] = {
        "hidden_size": "dim", "num_hidden_layers": "n_layers", "num_attention_heads": "n_heads",
        "intermediate_size": "hidden_dim", "hidden_act": "activation", "hidden_dropout_prob": "dropout",
        "attention_probs_dropout_prob": "attention_dropout"}
    json_omitted: ClassVar[tuple[str, ...]] = (
        "type_vocab_size", "layer_norm_eps", "classifier_dropout", "position_embedding_type")

    num_hidden_layers: int = 6
    sinusoidal_pos_embds: bool = False
    qa_dropout: float = 0.1
    seq_classif_dropout: float = 0.2

    def validate(self) -> None:
        super().validate()
        for name in ("qa_dropout", "seq_classif_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
                raise BertError(f"config: {name} must be in [0, 1), got {value!r}")


def sinusoidal_table(positions: int, dim: int) -> torch.Tensor:
    """[positions, dim]: column j holds sin (j even) or cos (j odd) of p / 10000^(2 * (j // 2) / dim)."""
    j = torch.arange(dim)
    angles = torch.arange(positions, dtype=torch.float64)[:, None] / 10000 ** ((2 * (j // 2)).double() / dim)
    return torch.where(j % 2 == 0, angles.sin(), angles.cos()).float()


class DistilBertEmbeddings(nn.Module):
    """Token + position embeddings (no segments), LayerNorm, dropout."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.position_embeddings.weight.requires_grad_(not config.sinusoidal_pos_embds)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def max_length(self) -> int:
        return self.position_embeddings.num_embeddings

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids [B, T] → embeddings [B, T, H]."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.dropout(self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions)))


class MultiHeadSelfAttention(nn.Module):
    """BERT's self-attention + output projection (q_lin, k_lin, v_lin, out_lin); the residual is the layer's."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (
            nn.Linear(config.hidden_size, config.hidden_size) for _ in range(4))
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs = multi_head_attention(
            self.q_lin(hidden_states), self.k_lin(hidden_states), self.v_lin(hidden_states), self.num_heads,
            padding, self.dropout, output_attentions, BertSelfAttention.use_sdpa)
        return self.out_lin(context), probs


class FFN(nn.Module):
    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.lin1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.lin2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = activation(config.hidden_act)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.lin2(self.activation(self.lin1(hidden_states))))


class TransformerBlock(nn.Module):
    """BERT's post-LN layer: x = LN(x + attention(x)); x = LN(x + ffn(x))."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.attention = MultiHeadSelfAttention(config)
        self.sa_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FFN(config)
        self.output_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, probs = self.attention(hidden_states, padding, output_attentions)
        attended = self.sa_layer_norm(attended + hidden_states)
        return self.output_layer_norm(self.ffn(attended) + attended), probs


class Transformer(BertEncoder):
    """n_layers TransformerBlocks: BERT's encoder (layer loop, gradient checkpointing) with DistilBERT's layer."""

    layer_class = TransformerBlock


class DistilBertPreTrainedModel(PreTrainedModel):
    """How DistilBERT checkpoints name things (see :class:`bert.pretrained.PreTrainedModel`)."""

    config_class = DistilBertConfig
    checkpoint_naming = CheckpointNaming(model_type="distilbert", prefix="distilbert",
                                         base_modules=("embeddings", "transformer"), aliases=(),
                                         tied_decoder="vocab_projector.weight")


class DistilBertModel(DistilBertPreTrainedModel):
    """The bare encoder: embeddings → transformer; last_hidden_state [B, T, H], no pooler_output."""

    pack_padding = True
    pack_bucket: int | None = None  # see bert.model.BertModel

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__(config)
        self.embeddings = DistilBertEmbeddings(config)
        self.transformer = Transformer(config)
        self.init_weights()

    def init_weights(self) -> None:
        super().init_weights()
        if self.config.sinusoidal_pos_embds:
            with torch.no_grad():
                weight = self.embeddings.position_embeddings.weight
                weight.copy_(sinusoidal_table(*weight.shape))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> BaseModelOutput:
        """input_ids, attention_mask [B, T] → last_hidden_state [B, T, H], and on request hidden_states
        (n_layers + 1 tensors [B, T, H], embeddings first) and attentions (n_layers tensors [B, N, T, T])."""
        check_input(input_ids, self.embeddings.max_length(), attention_mask=attention_mask)
        return encode(self.transformer, self.embeddings(input_ids), attention_mask, self.pack_padding,
                      output_attentions, output_hidden_states, self.pack_bucket)


class DistilBertHeadMixin(DistilBertPreTrainedModel):
    """What every DistilBERT head changes in the BERT head it subclasses: the encoder is ``self.distilbert``, which
    has no segments and no pooler, so forward's second argument is attention_mask (as in transformers)."""

    def add_base_model(self, add_pooling_layer: bool = False) -> None:
        self.distilbert = DistilBertModel(self.config)  # there is no pooler to add or leave out

    def run_encoder(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                    attention_mask: torch.Tensor | None, output_attentions: bool,
                    output_hidden_states: bool) -> BaseModelOutput:
        return self.distilbert(input_ids, attention_mask, output_attentions, output_hidden_states)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *args: Any,
                **kwargs: Any) -> ModelOutput:
        """(input_ids, attention_mask, then the BERT head's labels and switches) → the BERT head's output."""
        return super().forward(input_ids, None, attention_mask, *args, **kwargs)


class DistilBertForMaskedLM(DistilBertHeadMixin, BertForMaskedLM):
    """BERT's fill-mask model with DistilBERT's head modules on the model itself: logits [B, T, V]."""

    tied_weights = ("vocab_projector.weight",)

    def add_head(self, config: DistilBertConfig) -> None:
        self.activation = activation(config.hidden_act)
        self.vocab_transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.vocab_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.vocab_projector = nn.Linear(config.hidden_size, config.vocab_size)

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.vocab_projector(self.vocab_layer_norm(self.activation(self.vocab_transform(hidden_states))))


class DistilBertForSequenceClassification(DistilBertHeadMixin, BertForSequenceClassification):
    """BERT's sequence classifier reading the first token through ``pre_classifier`` + ReLU (there is no pooler)."""

    def add_head(self, config: DistilBertConfig) -> None:
        self.pre_classifier = nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.dropout = nn.Dropout(config.seq_classif_dropout)

    def classify(self, out: BaseModelOutput) -> torch.Tensor:
        return self.classifier(self.dropout(F.relu(self.pre_classifier(out.last_hidden_state[:, 0]))))


class DistilBertForTokenClassification(DistilBertHeadMixin, BertForTokenClassification):
    """BERT's token classifier (``classifier``, dropout = the config's dropout) on DistilBERT."""


class DistilBertForQuestionAnswering(DistilBertHeadMixin, BertForQuestionAnswering):
    """BERT's span extractor with dropout (qa_dropout) before ``qa_outputs``."""

    def add_head(self, config: DistilBertConfig) -> None:
        super().add_head(config)
        self.dropout = nn.Dropout(config.qa_dropout)

    def span_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.qa_outputs(self.dropout(hidden_states))


__all__ = ["DistilBertConfig", "DistilBertForMaskedLM", "DistilBertForQuestionAnswering",
           "DistilBertForSequenceClassification", "DistilBertForTokenClassification", "DistilBertModel"]
