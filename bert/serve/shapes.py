"""Which modules the explorer's Shapes view hooks, for each model type, and what their outputs are called.

A :data:`Watch` row is (module, [(index of the output, label, symbolic shape), ...], part). ``part`` is where the
row is shown: "embeddings", "layer" (inside an encoder layer: the layer's number comes from the order the layers
run, so ALBERT's one shared layer shows up once per application) or "heads". A module that the forward pass does
not reach (RoBERTa's pooler under its MLM head) simply adds no rows. The symbols are those of :func:`dimensions`.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from bert.pretrained import PreTrainedModel

Watch = tuple[nn.Module, list[tuple[int, str, str]], str]


def dimensions(model: PreTrainedModel, tokens: int) -> dict[str, int]:
    """The sizes the symbols stand for: B batch, T tokens, H hidden, N heads, D head size, I intermediate,
    V vocabulary, L layers, and E (ALBERT's factorised embedding size)."""
    config = model.config
    dims = {"B": 1, "T": tokens, "H": config.hidden_size, "N": config.num_attention_heads, "D": config.head_dim,
            "I": config.intermediate_size, "V": config.vocab_size, "L": config.num_hidden_layers}
    if hasattr(config, "embedding_size"):
        dims["E"] = config.embedding_size
    return dims


def layers_in_order(model: PreTrainedModel) -> list[nn.Module]:
    """The encoder layers in the order they run (ALBERT: its shared layers, once per application)."""
    base = model.base_model
    encoder = base.transformer if hasattr(base, "transformer") else base.encoder  # DistilBERT's name, or BERT's
    return encoder.schedule() if hasattr(encoder, "schedule") else list(encoder.layer)


def watched_modules(model: PreTrainedModel) -> list[Watch]:
    """The modules to hook for ``model``'s type, in the order the forward pass reaches them."""
    return WATCHERS[model.config.model_type](model)


def _embeddings(embeddings: nn.Module, width: str = "H", segments: bool = True,
                positions_per_row: bool = False) -> list[Watch]:
    """Token (+ segment) + position embeddings, each ``width`` wide, and their LayerNormed sum."""
    positions = (("position embeddings (counted over each row's real tokens)", f"[B, T, {width}]")
                 if positions_per_row else ("position embeddings (shared by the batch)", f"[T, {width}]"))
    watched: list[Watch] = [(embeddings.word_embeddings, [(0, "word embeddings", f"[B, T, {width}]")], "embeddings")]
    if segments:
        watched.append((embeddings.token_type_embeddings, [(0, "segment embeddings", f"[B, T, {width}]")],
                        "embeddings"))
    return watched + [(embeddings.position_embeddings, [(0, *positions)], "embeddings"),
                      (embeddings, [(0, "embeddings: sum → LayerNorm", f"[B, T, {width}]")], "embeddings")]


def _projections(query: nn.Module, key: nn.Module, value: nn.Module) -> list[Watch]:
    """An attention's query, key and value projections."""
    return [(query, [(0, "queries (N heads of D side by side)", "[B, T, H]")], "layer"),
            (key, [(0, "keys", "[B, T, H]")], "layer"),
            (value, [(0, "values", "[B, T, H]")], "layer")]


def _bert_layer(layer: nn.Module, activation: str) -> list[Watch]:
    """BERT's encoder layer (also RoBERTa's)."""
    attention = layer.attention.self  # returns (context, probabilities)
    return _projections(attention.query, attention.key, attention.value) + [
        (attention, [(1, "attention probabilities softmax(QKᵀ/√D)", "[B, N, T, T]"),
                     (0, "context: probabilities × values, heads joined", "[B, T, H]")], "layer"),
        (layer.attention.output, [(0, "attention output: dense → Add & LayerNorm", "[B, T, H]")], "layer"),
        (layer.intermediate, [(0, f"feed-forward intermediate: dense → {activation}", "[B, T, I]")], "layer"),
        (layer.output, [(0, "layer output: dense → Add & LayerNorm", "[B, T, H]")], "layer"),
    ]


def _bert(model: PreTrainedModel) -> list[Watch]:
    bert, activation = model.bert, model.config.hidden_act.upper()
    watched = _embeddings(bert.embeddings)
    for layer in bert.encoder.layer:
        watched += _bert_layer(layer, activation)
    return watched + [
        (bert.pooler, [(0, "pooler: tanh(dense([CLS]))", "[B, H]")], "heads"),
        (model.cls.predictions, [(0, "MLM logits (one score per vocabulary word)", "[B, T, V]")], "heads"),
        (model.cls.seq_relationship, [(0, "NSP logits (IsNext, NotNext)", "[B, 2]")], "heads"),
    ]


def _roberta(model: PreTrainedModel) -> list[Watch]:
    roberta, activation = model.roberta, model.config.hidden_act.upper()
    watched = _embeddings(roberta.embeddings, positions_per_row=True)  # positions skip padding
    for layer in roberta.encoder.layer:
        watched += _bert_layer(layer, activation)
    return watched + [(model.lm_head, [(0, "MLM logits: dense → GELU → LayerNorm → decoder", "[B, T, V]")],
                       "heads")]


def _albert(model: PreTrainedModel) -> list[Watch]:
    albert, activation = model.albert, model.config.hidden_act.upper()
    watched = _embeddings(albert.embeddings, width="E")
    watched.append((albert.encoder.embedding_hidden_mapping_in, [(0, "embeddings projected E → H", "[B, T, H]")],
                    "embeddings"))
    for group in albert.encoder.albert_layer_groups:
        for layer in group.albert_layers:
            attention = layer.attention  # BERT's self-attention with its output projection and LayerNorm inside
            watched += _projections(attention.query, attention.key, attention.value) + [
                (attention, [(1, "attention probabilities softmax(QKᵀ/√D)", "[B, N, T, T]"),
                             (0, "attention output: dense → Add & LayerNorm", "[B, T, H]")], "layer"),
                (layer.ffn, [(0, f"feed-forward intermediate: dense (then {activation})", "[B, T, I]")], "layer"),
                (layer, [(0, "layer output: dense → Add & LayerNorm", "[B, T, H]")], "layer"),
            ]
    return watched + [(model.predictions, [(0, "MLM logits: dense H → E → GELU → LayerNorm → decoder",
                                            "[B, T, V]")], "heads")]


def _distilbert(model: PreTrainedModel) -> list[Watch]:
    distilbert, activation = model.distilbert, model.config.hidden_act.upper()
    watched = _embeddings(distilbert.embeddings, segments=False)
    for layer in distilbert.transformer.layer:
        attention = layer.attention
        watched += _projections(attention.q_lin, attention.k_lin, attention.v_lin) + [
            (attention, [(1, "attention probabilities softmax(QKᵀ/√D)", "[B, N, T, T]"),
                         (0, "attention output: context → out_lin", "[B, T, H]")], "layer"),
            (layer.sa_layer_norm, [(0, "Add & LayerNorm", "[B, T, H]")], "layer"),
            (layer.ffn.lin1, [(0, f"feed-forward intermediate: lin1 (then {activation})", "[B, T, I]")], "layer"),
            (layer, [(0, "layer output: lin2 → Add & LayerNorm", "[B, T, H]")], "layer"),
        ]
    return watched + [
        (model.vocab_transform, [(0, "MLM transform: dense", "[B, T, H]")], "heads"),
        (model.vocab_projector, [(0, "MLM logits (after GELU → LayerNorm)", "[B, T, V]")], "heads"),
    ]


WATCHERS: dict[str, Callable[[PreTrainedModel], list[Watch]]] = {
    "bert": _bert, "roberta": _roberta, "albert": _albert, "distilbert": _distilbert}
