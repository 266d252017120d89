"""The heads that turn BERT's vectors into predictions: pretraining (MLM + NSP) and the fine-tuning tasks.

Each ``BertFor*`` wraps a :class:`~bert.model.BertModel` as ``self.bert`` and adds a small module whose name
matches the checkpoints (``cls.predictions``, ``cls.seq_relationship``, ``classifier``, ``qa_outputs``). Given
labels, a head also returns its loss; label -100 means "ignore this position", as in PyTorch's cross-entropy.

Heads reach their encoder as ``self.base_model``. Every head builds itself in the same three steps: the encoder
(``add_base_model``), its own modules (``add_head``), then ``init_weights``. A variant of BERT whose head math is
BERT's (RoBERTa's token classifier, ALBERT's sequence classifier, ...) reuses the class by setting
``base_model_class`` and ``base_model_prefix`` (see :mod:`bert.variants`). Where a variant's head *does* differ, it
subclasses the BERT head and overrides ``add_head`` (its modules, under its checkpoint names) and the one step that
uses them (``mlm_logits``, ``pair_logits``, ``classify``, ``span_logits``), and keeps ``__init__``, ``forward`` and
the loss. The losses are functions for the same reason.

Shapes: B batch, T length, H hidden_size, V vocab_size, C num_labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bert.config import BertConfig
from bert.model import BertModel, activation
from bert.outputs import BaseModelOutput, LogitsOutput, PreTrainingOutput, QuestionAnsweringOutput
from bert.pretrained import PreTrainedModel

IGNORE_INDEX = -100


class BertPredictionHeadTransform(nn.Module):
    """dense → activation → LayerNorm: reshapes the final hidden state before it is compared with every word."""

    def __init__(self, config: BertConfig, size: int | None = None) -> None:
        """``size``: the output width, hidden_size unless given (ALBERT's head narrows to embedding_size)."""
        super().__init__()
        size = size or config.hidden_size
        self.dense = nn.Linear(config.hidden_size, size)
        self.transform_act_fn = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[..., H] → [..., H] (or [..., size])."""
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class BertLMPredictionHead(nn.Module):
    """Masked-word prediction: a score for every vocabulary word at every position.

    The decoder has no weights of its own: it is *tied* to the input word embeddings (the same [V, H] matrix reads
    words in and scores words out), so only its per-word bias (``cls.predictions.bias``) is stored separately.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def word_scores(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[..., H] → [..., V]: the logits before the per-word bias (pretraining's loss adds it in its own blocks)."""
        return self.decoder(self.transform(hidden_states))  # a module call: int8 swaps in its own decoder

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[..., H] → logits [..., V]."""
        logits = self.word_scores(hidden_states)
        # the bias in the logits' precision: under bfloat16 autocast the [..., V] logits stay bfloat16, where a float32
        # bias would write them out again as float32 (the largest tensor of a small BERT's pretraining step)
        return logits + self.bias.to(logits.dtype)


class BertPreTrainingHeads(nn.Module):
    """Both pretraining heads: ``predictions`` (MLM) on every token, ``seq_relationship`` (NSP) on the pooled [CLS]."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)


class BertOnlyNSPHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


def labelled_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the labelled positions only: logits [B, T, K], labels [B, T] with -100 where
    there is no label (MLM: the unmasked tokens, K = V; token classification: word-piece continuations, specials
    and padding, K = C)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def sequence_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on class ids, or mean squared error when there is one output (regression): logits [B, C]."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).reshape(-1))
    return F.cross_entropy(logits, labels.reshape(-1))


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor,
              end_positions: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Extractive QA: the mean of the start and end cross-entropies; logits [B, T], positions [B].

    The softmax runs over the real tokens only (attention_mask [B, T], 1 = real): padding never receives
    probability. transformers' loss also spreads probability over the padding positions, whose logits come from
    vectors nobody reads; with padding packed away (:class:`~bert.model.Padding`) those vectors are not even
    computed. Leaving padding out makes a window's loss the same whatever else shares its batch, and equal to the
    reference's on unpadded input. Positions outside the sequence (clamped to T, as transformers does) or on
    padding are ignored.
    """
    length = start_logits.shape[1]
    padding = None if attention_mask is None else attention_mask == 0  # [B, T]

    def cross_entropy(logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        target = positions.reshape(-1).clamp(0, length)
        if padding is not None:
            logits = logits.masked_fill(padding, float("-inf"))
            on_padding = padding.gather(1, target.clamp(max=length - 1)[:, None])[:, 0]
            target = target.masked_fill(on_padding, length)
        return F.cross_entropy(logits, target, ignore_index=length)

    return (cross_entropy(start_logits, start_positions) + cross_entropy(end_logits, end_positions)) / 2


class BertPreTrainedModel(PreTrainedModel):
    """What the heads share: their encoder, a ``base_model_class`` stored under ``base_model_prefix`` (``self.bert``
    here, the checkpoints' name for it)."""

    base_model_class: type[PreTrainedModel] = BertModel
    uses_pooler = False  # whether the head reads the pooled [CLS] vector; if not, the encoder has no pooler

    def __init__(self, config: BertConfig) -> None:
        """Every head is built alike: its encoder, then its own modules (``add_head``), then the initialisation."""
        super().__init__(config)
        self.add_base_model(add_pooling_layer=self.uses_pooler)
        self.add_head(config)
        self.init_weights()

    def add_head(self, config: BertConfig) -> None:
        """Create the head's modules under the checkpoints' names (each head class defines this)."""
        raise NotImplementedError

    def add_base_model(self, add_pooling_layer: bool = True) -> None:
        setattr(self, self.base_model_prefix, self.base_model_class(self.config, add_pooling_layer=add_pooling_layer))

    def tie_weights(self) -> None:
        """A head with an MLM decoder (listed in ``tied_weights``) shares the word-embedding matrix with the encoder:
        one Parameter, two uses."""
        if self.tied_weights:
            self.get_submodule(self.tied_decoder.removesuffix(".weight")).weight = (
                self.base_model.embeddings.word_embeddings.weight)

    def run_encoder(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                    attention_mask: torch.Tensor | None, output_attentions: bool,
                    output_hidden_states: bool) -> BaseModelOutput:
        """The encoder's output for a batch [B, T] (DistilBERT's heads override this: their encoder has no segments)."""
        return self.base_model(input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states)


class BertForPreTraining(BertPreTrainedModel):
    """BERT as it was pretrained: masked language modelling + next sentence prediction.

    labels [B, T]: the original token at masked positions, -100 elsewhere.
    next_sentence_label [B]: 0 = B is the real continuation of A (IsNext), 1 = B is a random sentence (NotNext).
    """

    tied_weights = ("cls.predictions.decoder.weight",)
    uses_pooler = True

    def add_head(self, config: BertConfig) -> None:
        """Both heads, as the checkpoints name them: ``cls.predictions`` and ``cls.seq_relationship``."""
        self.cls = BertPreTrainingHeads(config)

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Final hidden states [B, T, H] → a score for every vocabulary word [B, T, V]."""
        return self.cls.predictions(hidden_states)

    def pair_logits(self, pooled_output: torch.Tensor) -> torch.Tensor:
        """Pooled [CLS] vector [B, H] → the sentence-pair task's logits [B, 2] (ALBERT's is sentence order)."""
        return self.cls.seq_relationship(pooled_output)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                next_sentence_label: torch.Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> PreTrainingOutput:
        out = self.run_encoder(input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states)
        prediction_logits = self.mlm_logits(out.last_hidden_state)  # [B, T, V]
        seq_relationship_logits = self.pair_logits(out.pooler_output)  # [B, 2]
        masked_lm = None if labels is None else labelled_cross_entropy(prediction_logits, labels)
        next_sentence = None if next_sentence_label is None else F.cross_entropy(
            seq_relationship_logits, next_sentence_label.reshape(-1))
        parts = [part for part in (masked_lm, next_sentence) if part is not None]
        return PreTrainingOutput(
            loss=sum(parts) if parts else None, prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits, hidden_states=out.hidden_states,
            attentions=out.attentions, mlm_loss=masked_lm, nsp_loss=next_sentence)


class BertForMaskedLM(BertPreTrainedModel):
    """Masked-word prediction only (fill-mask). No pooler: MLM never looks at it."""

    tied_weights = ("cls.predictions.decoder.weight",)

    def add_head(self, config: BertConfig) -> None:
        """The MLM head, as the checkpoints name it: ``cls.predictions``."""
        self.cls = BertOnlyMLMHead(config)

    def mlm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Final hidden states [B, T, H] → a score for every vocabulary word [B, T, V]."""
        return self.cls.predictions(hidden_states)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> LogitsOutput:
        """→ logits [B, T, V]; loss with labels [B, T]."""
        out = self.run_encoder(input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states)
        logits = self.mlm_logits(out.last_hidden_state)
        loss = None if labels is None else labelled_cross_entropy(logits, labels)
        return LogitsOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class BertForNextSentencePrediction(BertPreTrainedModel):
    """Does sentence B follow sentence A? logits [B, 2], index 0 = IsNext, 1 = NotNext."""

    uses_pooler = True

    def add_head(self, config: BertConfig) -> None:
        self.cls = BertOnlyNSPHead(config)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> LogitsOutput:
        """→ logits [B, 2]; loss with labels [B] (0 IsNext, 1 NotNext)."""
        out = self.run_encoder(input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states)
        logits = self.cls.seq_relationship(out.pooler_output)
        loss = None if labels is None else F.cross_entropy(logits, labels.reshape(-1))
        return LogitsOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


def classifier_dropout(config: BertConfig) -> nn.Dropout:
    return nn.Dropout(config.classifier_dropout if config.classifier_dropout is not None
                      else config.hidden_dropout_prob)


class BertForSequenceClassification(BertPreTrainedModel):
    """A label (or, with num_labels == 1, a real number) for the whole input, read from the pooled [CLS] vector."""

    uses_pooler = True  # a variant whose classifier reads the first token itself sets this False (RoBERTa)

    def add_head(self, config: BertConfig) -> None:
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def classify(self, out: BaseModelOutput) -> torch.Tensor:
        """The encoder's output → logits [B, C]; BERT reads the pooled [CLS] vector [B, H] (what variants replace)."""
        return self.classifier(self.dropout(out.pooler_output))

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> LogitsOutput:
        """→ logits [B, C]; loss with labels [B]: cross-entropy on class ids, or mean squared error when C == 1."""
        out = self.run_encoder(input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states)
        logits = self.classify(out)
        loss = None if labels is None else sequence_classification_loss(logits, labels)
        return LogitsOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class BertForTokenClassification(BertPreTrainedModel):
    """A label for every token (named entities, part of speech)."""

    def add_head(self, config: BertConfig) -> None:
        self.dropout = classifier_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> LogitsOutput:
        """→ logits [B, T, C]; loss with labels [B, T] (-100 on word-piece continuations, specials and padding)."""
        out = self.run_encoder(input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None if labels is None else labelled_cross_entropy(logits, labels)
        return LogitsOutput(loss=loss, logits=logits, hidden_states=out.hidden_states, attentions=out.attentions)


class BertForQuestionAnswering(BertPreTrainedModel):
    """Extractive QA: for each token, a score for being the answer's first token and one for being its last.

    One deliberate difference from transformers: on padded batches the loss is a softmax over the real tokens only
    (padding never receives probability; :func:`span_loss`), so it equals transformers' loss on unpadded input
    and differs by the padding's share of probability on padded input. The logits are transformers' at every real
    position.
    """

    def add_head(self, config: BertConfig) -> None:
        self.qa_outputs = nn.Linear(config.hidden_size, 2)

    def span_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Final hidden states [B, T, H] → [B, T, 2]: start and end scores (DistilBERT adds dropout first)."""
        return self.qa_outputs(hidden_states)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, start_positions: torch.Tensor | None = None,
                end_positions: torch.Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> QuestionAnsweringOutput:
        """→ start_logits, end_logits [B, T]; loss with start/end_positions [B]: cross-entropy over the real
        tokens only, padding never receives probability (see :func:`span_loss`)."""
        out = self.run_encoder(input_ids, token_type_ids, attention_mask, output_attentions, output_hidden_states)
        start_logits, end_logits = self.span_logits(out.last_hidden_state).unbind(dim=-1)  # 2 × [B, T]
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions, attention_mask)
        return QuestionAnsweringOutput(loss=loss, start_logits=start_logits.contiguous(),
                                       end_logits=end_logits.contiguous(), hidden_states=out.hidden_states,
                                       attentions=out.attentions)
