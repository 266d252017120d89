"""BERT, top to bottom, in one file (Devlin et al., 2018, "BERT: Pre-training of Deep Bidirectional Transformers").

    input_ids [B, T] ─┐
    token_type_ids    ├─► BertEmbeddings ─► BertEncoder (L × BertLayer) ─► last_hidden_state [B, T, H]
    positions 0..T-1 ─┘                                                 └► BertPooler ─► pooler_output [B, H]

B = batch, T = sequence length (≤ max_position_embeddings), H = hidden_size, L = num_hidden_layers,
N = num_attention_heads, D = H / N.

Every module and parameter carries the name it has in Hugging Face / google-research checkpoints
(``encoder.layer.3.attention.self.query.weight``), so loading a checkpoint is a plain ``load_state_dict`` after a
handful of renames (see :mod:`bert.weights`). The task heads that sit on top live in :mod:`bert.heads`.

BERT's descendants (RoBERTa, ALBERT, DistilBERT, in :mod:`bert.variants`) are built from these pieces: the attention
math (:func:`multi_head_attention`), the layer loop (:func:`run_layers`) and padding handling (:func:`encode`) are
functions so that modules with other checkpoint names can share them, and BertModel's three parts are class
attributes so that a variant can swap one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from bert.config import BertConfig
from bert.errors import BertError
from bert.outputs import BaseModelOutput
from bert.pretrained import PreTrainedModel


def activation(name: str) -> nn.Module:
    """The feed-forward non-linearity. ``gelu`` is the exact erf form BERT was trained with; ``gelu_new`` is the tanh
    approximation (GPT-2's). Mixing them up is a classic source of small, silent output differences."""
    return {"gelu": nn.GELU(), "gelu_new": nn.GELU(approximate="tanh"), "relu": nn.ReLU()}[name]


class BertEmbeddings(nn.Module):
    """Token + segment + position embeddings, summed, then LayerNorm and dropout.

    BERT learns its position embeddings (a table of max_position_embeddings rows) instead of using sinusoids, and
    adds a segment ("token type") embedding that tells sentence A (0) from sentence B (1).
    """

    def __init__(self, config: BertConfig, size: int | None = None) -> None:
        """``size``: the embedding width, hidden_size unless given (ALBERT's embeddings are narrower)."""
        super().__init__()
        size = size or config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, size)
        self.LayerNorm = nn.LayerNorm(size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def position_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Row of the position table for each token: 0..T-1 ([T], broadcast over the batch)."""
        return torch.arange(input_ids.shape[1], device=input_ids.device)

    def max_length(self) -> int:
        """The longest input the position table covers."""
        return self.position_embeddings.num_embeddings

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """input_ids, token_type_ids: [B, T] → embeddings [B, T, H]."""
        embeddings = (self.word_embeddings(input_ids)
                      + self.token_type_embeddings(token_type_ids)
                      + self.position_embeddings(self.position_ids(input_ids)))
        return self.dropout(self.LayerNorm(embeddings))


@dataclass
class Padding:
    """Which positions of a padded [B, T] batch hold real tokens.

    key_mask [B, 1, 1, T] bool: True for real tokens. Attention masks padding on the key side only, so no real token
    ever attends to padding; broadcast over heads and query positions.

    index [M] (optional): the flat positions b * T + t of the M real tokens. When it is set, hidden states travel
    through the encoder *packed* as [M, H]: every layer except attention works token by token, so packing skips the
    compute a padded batch would spend on padding (half of it for lengths spread evenly over 1..T). Attention
    unpacks to [B, T, ...] around the score computation. Outputs at padding positions are then 0 instead of the
    (meaningless) values an unpacked run computes there; real positions are unchanged.
    """

    key_mask: torch.Tensor
    index: torch.Tensor | None = None

    @classmethod
    def from_attention_mask(cls, attention_mask: torch.Tensor, pack: bool, bucket: int | None = None) -> Padding:
        """attention_mask [B, T] of 1 (real) / 0 (padding). ``bucket``: round the packed count M up to a multiple of
        it with padding positions (computed, never attended to, and read by no loss). Pretraining sets it: an M that
        changes every step fragments the allocator's heap, and a pretraining process grew by gigabytes an hour
        (docs/experiments/2026-12-06-from-scratch.md); a handful of sizes does not."""
        real = attention_mask.bool()
        if not pack or real.all():
            return cls(key_mask=real[:, None, None, :])
        flat = real.flatten()
        index = flat.nonzero().flatten()  # [M]
        extra = -index.numel() % bucket if bucket else 0
        if extra:
            index = torch.cat([index, (~flat).nonzero().flatten()[:extra]]).sort().values
        return cls(key_mask=real[:, None, None, :], index=index)

    def to_padded(self, x: torch.Tensor) -> torch.Tensor:
        """[M, F] packed → [B, T, F] with zeros at padding (a no-op for unpacked input)."""
        if self.index is None:
            return x
        batch, length = self.key_mask.shape[0], self.key_mask.shape[-1]
        padded = x.new_zeros(batch * length, x.shape[-1]).index_copy(0, self.index, x)
        return padded.view(batch, length, x.shape[-1])

    def to_packed(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, F] → [M, F], the real tokens only (a no-op when not packing)."""
        if self.index is None:
            return x
        return x.reshape(-1, x.shape[-1]).index_select(0, self.index)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """[B, T, H] → [B, N, T, D]: each head works on its own D-dimensional slice of the hidden vector."""
    batch, length, width = x.shape
    return x.view(batch, length, num_heads, width // num_heads).transpose(1, 2)


def multi_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int,
                         padding: Padding | None, dropout: nn.Dropout, output_attentions: bool = False,
                         use_sdpa: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention of N heads over already projected query, key, value [B, T, H] (or packed [M, H],
    see :class:`Padding`); padding None when every token is real. ``dropout`` acts on the probabilities in training.

    Returns the context, shaped like the inputs, and, when output_attentions, the probabilities [B, N, T, T].
    """
    unpack = padding.to_padded if padding is not None else (lambda x: x)
    q, k, v = (split_heads(unpack(x), num_heads) for x in (query, key, value))  # [B, N, T, D]
    key_mask = padding.key_mask if padding is not None else None
    head_dim = q.shape[-1]

    # On a CPU, bfloat16 attention is faster as the explicit matmuls below than through the fused kernel (forward +
    # backward 2-3x at 128 tokens, 1.2-1.7x at 512; forward alone 1.4-1.7x at 128), float32 the other way round.
    fused = use_sdpa and not (q.dtype == torch.bfloat16 and q.device.type == "cpu")
    if fused and not output_attentions:
        dropout_p = dropout.p if dropout.training else 0.0
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout_p)
        probs = None
    else:
        # scores[b, n, i, j] = how much token i (query) matches token j (key), scaled by 1/sqrt(D) so that the
        # dot products of D-dimensional vectors do not grow with D and push the softmax into saturation.
        scores = torch.matmul(q, k.transpose(-1, -2)).div_(math.sqrt(head_dim))  # [B, N, T, T]
        if key_mask is not None:
            # Padding keys get the most negative float added, so they receive exactly zero probability. Added in place
            # rather than masked_fill-ed: a constant added needs no pass over the scores' gradient in backward.
            lowest = torch.finfo(scores.dtype).min
            scores.add_(scores.new_zeros(key_mask.shape).masked_fill_(~key_mask, lowest))
        probs = scores.softmax(dim=-1)  # each query's weights over the keys sum to 1
        context = torch.matmul(dropout(probs), v)  # [B, N, T, D]

    batch, _, length, _ = context.shape
    context = context.transpose(1, 2).reshape(batch, length, num_heads * head_dim)  # heads side by side
    return (padding.to_packed(context) if padding is not None else context), probs


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention: every token looks at every (non-padding) token.

    Two paths compute the same thing: ``F.scaled_dot_product_attention`` (fused, fast in float32, the default) and
    the explicit math in :func:`multi_head_attention`, used when the attention probabilities are asked for (you
    cannot get them from the fused kernel), for bfloat16 on a CPU (faster there), or when study code sets
    ``BertSelfAttention.use_sdpa = False`` to follow every step (the variants' attention modules follow the same
    switch).
    """

    use_sdpa = True

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states [B, T, H] (or packed [M, H]) → context shaped alike, probabilities [B, N, T, T] or None."""
        return multi_head_attention(self.query(hidden_states), self.key(hidden_states), self.value(hidden_states),
                                    self.num_heads, padding, self.dropout, output_attentions, self.use_sdpa)


class BertSelfOutput(nn.Module):
    """Project the heads' concatenated context back into the residual stream, then Add & LayerNorm (post-LN)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """context, residual: [B, T, H] → [B, T, H]."""
        return self.LayerNorm(self.dropout(self.dense(context)) + residual)


class BertAttention(nn.Module):
    """Self-attention sub-layer: attention (``self``, as the checkpoints name it) + output projection/residual/norm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states [B, T, H] (or packed [M, H]) → same shape, attention probabilities [B, N, T, T] or None."""
        context, probs = self.self(hidden_states, padding, output_attentions)
        return self.output(context, hidden_states), probs


class BertIntermediate(nn.Module):
    """First half of the feed-forward block: expand H → intermediate_size (4H) and apply the non-linearity."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[B, T, H] → [B, T, 4H]."""
        return self.intermediate_act_fn(self.dense(hidden_states))


class BertOutput(nn.Module):
    """Second half of the feed-forward block: project 4H → H, then Add & LayerNorm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, intermediate: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """intermediate [B, T, 4H], residual [B, T, H] → [B, T, H]."""
        return self.LayerNorm(self.dropout(self.dense(intermediate)) + residual)


class BertLayer(nn.Module):
    """One Transformer encoder layer: self-attention sub-layer, then the position-wise feed-forward sub-layer.

    BERT is *post-LN*: LayerNorm comes after each residual addition (x = LN(x + f(x))), as in the original
    Transformer; GPT-2 and most later models moved it before f (pre-LN).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None,
                output_attentions: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """hidden_states [B, T, H] (or packed [M, H]) → same shape, attention probabilities [B, N, T, T] or None."""
        attended, probs = self.attention(hidden_states, padding, output_attentions)
        return self.output(self.intermediate(attended), attended), probs


class BertEncoder(nn.Module):
    """A stack of num_hidden_layers identical (but separately parameterised) layers.

    ``gradient_checkpointing`` (off by default; ``model.gradient_checkpointing_enable()``): in training, keep only each
    layer's input and recompute the layer during backward — about 30% more time (a bert-base pretraining step in
    scripts/bench_performance.py) for a fraction of the activation memory. The random state is replayed, so dropout
    masks and gradients are those of the plain path.
    """

    layer_class: type[nn.Module] = BertLayer  # a class attribute so that a variant can swap the layer (DistilBERT)

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(self.layer_class(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor, padding: Padding | None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> BaseModelOutput:
        """hidden_states [B, T, H] (or packed [M, H]) → last_hidden_state shaped alike; on request
        num_hidden_layers + 1 hidden states and num_hidden_layers attention maps [B, N, T, T]."""
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        return run_layers(self.layer, hidden_states, padding, output_attentions, output_hidden_states, recompute)


def run_layers(layers: Iterable[nn.Module], hidden_states: torch.Tensor, padding: Padding | None,
               output_attentions: bool, output_hidden_states: bool, recompute: bool = False) -> BaseModelOutput:
    """Apply ``layers`` in turn to hidden_states [B, T, H] (or packed [M, H]; each layer maps (hidden_states,
    padding, output_attentions) → (hidden_states, probs [B, N, T, T] or None)),
    collecting every hidden state (the input counts as "layer 0") and attention map on request. ``recompute``:
    gradient checkpointing, see :class:`BertEncoder`."""
    all_hidden = [hidden_states] if output_hidden_states else None
    all_attentions = [] if output_attentions else None
    for layer in layers:
        if recompute:
            hidden_states, probs = checkpoint(layer, hidden_states, padding, output_attentions, use_reentrant=False)
        else:
            hidden_states, probs = layer(hidden_states, padding, output_attentions)
        if all_hidden is not None:
            all_hidden.append(hidden_states)
        if all_attentions is not None:
            all_attentions.append(probs)
    return BaseModelOutput(
        last_hidden_state=hidden_states,
        hidden_states=tuple(all_hidden) if all_hidden is not None else None,
        attentions=tuple(all_attentions) if all_attentions is not None else None,
    )


class BertPooler(nn.Module):
    """Sentence summary: a dense layer + tanh on the [CLS] (first) token's final vector. Pretrained by NSP, so it
    encodes "does B follow A" rather than general sentence meaning; fine-tuned classifiers build on it."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """[B, T, H] → [B, H]."""
        return self.activation(self.dense(hidden_states[:, 0]))


def encode(encoder: nn.Module, embeddings: torch.Tensor, attention_mask: torch.Tensor | None, pack: bool,
           output_attentions: bool = False, output_hidden_states: bool = False,
           bucket: int | None = None) -> BaseModelOutput:
    """Run ``encoder`` (called as encoder(hidden_states, padding, output_attentions, output_hidden_states)) on
    embeddings [B, T, E], packing a padded batch to its real tokens when ``pack`` allows (see :class:`Padding`).
    Per-layer outputs are documented as [B, T, ...], so packing is only used when they are not requested.
    ``bucket``: in training, round the packed count up to a multiple of it (see :class:`Padding`)."""
    padding = None
    if attention_mask is not None:
        padding = Padding.from_attention_mask(attention_mask, pack and not (output_attentions or output_hidden_states),
                                              bucket if encoder.training else None)
        embeddings = padding.to_packed(embeddings)  # [M, E] when packing
    output = encoder(embeddings, padding, output_attentions, output_hidden_states)
    if padding is not None:
        output.last_hidden_state = padding.to_padded(output.last_hidden_state)  # back to [B, T, H]
    return output


def check_input(input_ids: torch.Tensor, max_length: int, **same_shape: torch.Tensor | None) -> None:
    """Turn the usual mistakes into messages instead of an index error deep inside an embedding lookup: input_ids
    must be [B, T] with T ≤ ``max_length``, and every tensor in ``same_shape`` [B, T] too."""
    if input_ids.dim() != 2:
        raise BertError(f"input_ids must be [batch, length], got shape {tuple(input_ids.shape)}")
    if input_ids.shape[1] > max_length:
        raise BertError(f"sequence of {input_ids.shape[1]} tokens is longer than this model's "
                        f"{max_length} positions; truncate it")
    for name, tensor in same_shape.items():
        if tensor is not None and tensor.shape != input_ids.shape:
            raise BertError(f"{name} has shape {tuple(tensor.shape)} but input_ids has {tuple(input_ids.shape)}")


class BertModel(PreTrainedModel):
    """The bare encoder: embeddings → encoder → pooler. Every head in :mod:`bert.heads` wraps one as ``self.bert``.

    ``pack_padding`` (default on) runs padded batches token-packed (see :class:`Padding`): same results at real
    positions, zeros at padding, less compute. Set ``BertModel.pack_padding = False`` to follow the plain path.
    """

    pack_padding = True
    # Pretraining sets its sequence length here: in training the packed token count is then a multiple of it, a few
    # sizes in a whole run instead of a new one every step (see Padding); None: exact packing.
    pack_bucket: int | None = None
    # The three parts, as classes so that a variant (bert.variants) can swap one and keep the rest.
    embeddings_class: type[nn.Module] = BertEmbeddings
    encoder_class: type[nn.Module] = BertEncoder
    pooler_class: type[nn.Module] = BertPooler

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = self.embeddings_class(config)
        self.encoder = self.encoder_class(config)
        self.pooler = self.pooler_class(config) if add_pooling_layer else None
        self.init_weights()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False) -> BaseModelOutput:
        """Encode a batch.

        input_ids      [B, T] token ids ([CLS] A [SEP] (B [SEP]) [PAD]...)
        token_type_ids [B, T] segment ids, 0 for sentence A, 1 for sentence B (default: all 0)
        attention_mask [B, T] 1 for real tokens, 0 for padding (default: all real)

        Returns last_hidden_state [B, T, H], pooler_output [B, H] (None without a pooler), and on request
        hidden_states (num_hidden_layers + 1 tensors [B, T, H], embeddings first) and attentions
        (num_hidden_layers tensors [B, N, T, T]).
        """
        check_input(input_ids, self.embeddings.max_length(), token_type_ids=token_type_ids,
                    attention_mask=attention_mask)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embeddings = self.embeddings(input_ids, token_type_ids)
        output = encode(self.encoder, embeddings, attention_mask, self.pack_padding, output_attentions,
                        output_hidden_states, self.pack_bucket)
        if self.pooler is not None:
            output.pooler_output = self.pooler(output.last_hidden_state)
        return output
