"""Helpers the lessons share: where the public data sets and the experiments' run logs are, and the diagrams (drawn
by code, so they stay true).

A notebook imports this module from its own folder (Jupyter starts the kernel in notebooks/, which is on sys.path);
the tests put notebooks/ on PYTHONPATH. Nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPERIMENTS = HERE.parent / "docs" / "experiments"  # the dated experiment pages and the runs' logs kept beside them
DATA_ENV = "BERT_LESSON_DATA"  # a folder holding sst2/, wikitext-2/, books/, ner-wnut17/, squad-v1.1/


def shared_data(name: str) -> Path:
    """The folder of one public data set (``sst2``, ``wikitext-2``, ``books``, ``ner-wnut17``, ``squad-v1.1``):
    under $BERT_LESSON_DATA, else under ``shared/data`` beside the checkout (or any folder above notebooks/)."""
    candidates = [Path(os.environ[DATA_ENV])] if os.environ.get(DATA_ENV) else []
    candidates += [parent / "shared" / "data" for parent in [Path.cwd(), *Path.cwd().parents, HERE, *HERE.parents]]
    for folder in candidates:
        if (folder / name).is_dir():
            return folder / name
    raise FileNotFoundError(f"data set {name!r} not found: set {DATA_ENV} to the folder that holds {name}/ "
                            f"(tried {', '.join(str(c) for c in dict.fromkeys(candidates))})")


# --- diagrams -------------------------------------------------------------------------------------------------------


def _box(axes, x, y, width, height, text, colour, fontsize=9):
    from matplotlib.patches import FancyBboxPatch

    axes.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                  facecolor=colour, edgecolor="black", linewidth=0.8))
    axes.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(axes, start, end, **style):
    axes.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "linewidth": 0.9, **style})


def _canvas(width, height, title):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height))
    axes.set_xlim(0, width)
    axes.set_ylim(0, height)
    axes.axis("off")
    axes.set_title(title, fontsize=10)
    return figure, axes


def draw_embedding_sum(tokens: list[str], segments: list[int], positions: list[int] | None = None):
    """Each token's vector = word row + segment row + position row, then LayerNorm (lesson 1); ``positions``: the
    tokens' places in the sequence (default 0, 1, ...)."""
    positions = list(range(len(tokens))) if positions is None else positions
    width = 1.3 * len(tokens) + 2.2
    figure, axes = _canvas(width, 5.2, "input vectors: three table lookups per token, summed, then LayerNorm")
    for label, y in (("word", 3.9), ("segment", 3.1), ("position", 2.3)):
        axes.text(0.2, y, label, va="center", fontsize=9)
    for i, (token, segment) in enumerate(zip(tokens, segments, strict=True)):
        x = 2.0 + 1.3 * i
        axes.text(x, 4.8, token, ha="center", fontsize=9, weight="bold")
        _box(axes, x, 3.9, 1.1, 0.5, f"E[{token}]", "#cfe2f3", 7)
        _box(axes, x, 3.1, 1.1, 0.5, f"E_{'AB'[segment]}", "#fce5cd" if segment == 0 else "#f4cccc", 7)
        _box(axes, x, 2.3, 1.1, 0.5, f"P{positions[i]}", "#d9ead3", 7)
        axes.text(x, 1.75, "sum, LayerNorm", ha="center", fontsize=6)
        _arrow(axes, (x, 1.6), (x, 0.9))
        _box(axes, x, 0.6, 1.1, 0.5, f"x{positions[i]} [H]", "#eeeeee", 7)
    return figure


def draw_masking(tokens: list[str], chosen: list[int], replaced: dict[int, str]):
    """80/10/10: of the chosen positions, 80% become [MASK], 10% a random word, 10% stay; all are predicted (lesson 3).
    ``replaced`` maps a chosen position to what the model reads there."""
    width = 1.25 * len(tokens) + 1.5
    figure, axes = _canvas(width, 3.6, "masked LM input: chosen positions (15%) become [MASK] (80%), "
                                       "a random word (10%) or stay (10%)")
    legend = {"#f4cccc": "red: [MASK] (80%)", "#fff2cc": "yellow: random word (10%)",
              "#d9ead3": "green: unchanged (10%)"}
    drawn = set()
    for i, token in enumerate(tokens):
        x = 1.0 + 1.25 * i
        _box(axes, x, 2.7, 1.1, 0.5, token, "#eeeeee", 8)
        if i in chosen:
            new = replaced[i]
            colour = "#f4cccc" if new == "[MASK]" else ("#fff2cc" if new != token else "#d9ead3")
            drawn.add(colour)
            _arrow(axes, (x, 2.4), (x, 1.9))
            _box(axes, x, 1.6, 1.1, 0.5, new, colour, 8)
            axes.text(x, 0.9, f"label: {token}", ha="center", fontsize=7)
        else:
            axes.text(x, 1.6, tokens[i], ha="center", va="center", fontsize=8, color="grey")
            axes.text(x, 0.9, "-100", ha="center", fontsize=7, color="grey")
    # The legend names only the cases drawn here: a short window may hold no random or unchanged position.
    axes.text(0.1, 0.3, "   ".join([text for colour, text in legend.items() if colour in drawn]
                                   + ["-100: no loss at this position"]), fontsize=7)
    return figure


def draw_encoder_layer(hidden: int, heads: int, intermediate: int):
    """One post-LN encoder layer with the shapes of each step (lesson 4b)."""
    figure, axes = _canvas(7.6, 9.6, "one BERT encoder layer (post-LayerNorm), shapes for a batch [B, T, H]")
    head_dim = hidden // heads
    steps = [
        (9.0, f"x  [B, T, H={hidden}]", "#eeeeee"),
        (8.0, "Q = xW_q + b_q,  K = xW_k + b_k,  V = xW_v + b_v   [B, T, H]", "#cfe2f3"),
        (7.0, f"split heads → [B, N={heads}, T, D={head_dim}]", "#cfe2f3"),
        (6.0, "scores = QKᵀ/√D  [B, N, T, T];  padding keys → −∞", "#cfe2f3"),
        (5.0, "softmax over keys, weighted sum of V, heads joined → [B, T, H]", "#cfe2f3"),
        (4.0, "a = LayerNorm(x + context W_o + b_o)   [B, T, H]", "#fce5cd"),
        (3.0, f"GELU(a W_1 + b_1)   [B, T, 4H={intermediate}]", "#d9ead3"),
        (2.0, "y = LayerNorm(a + (…) W_2 + b_2)   [B, T, H]", "#fce5cd"),
        (1.0, "y: the next layer's x", "#eeeeee"),
    ]
    for (y, text, colour), (y_next, _, _) in zip(steps, steps[1:] + [(0.0, "", "")], strict=True):
        _box(axes, 3.5, y, 6.4, 0.55, text, colour, 8)
        if y_next:
            _arrow(axes, (3.5, y - 0.3), (3.5, y_next + 0.3))
    for top, bottom in ((9.0, 4.0), (4.0, 2.0)):  # the two residual connections
        axes.annotate("", xy=(6.75, bottom), xytext=(6.75, top),
                      arrowprops={"arrowstyle": "->", "linestyle": "--", "color": "grey",
                                  "connectionstyle": "arc3,rad=-0.3"})
    axes.text(6.95, 6.5, "residual", rotation=90, fontsize=7, color="grey", va="center")
    axes.text(6.95, 3.0, "residual", rotation=90, fontsize=7, color="grey", va="center")
    return figure


def draw_heads():
    """What sits on the final vectors [B, T, H]: the pretraining heads and the fine-tuning heads (lessons 3, 4, 10)."""
    figure, axes = _canvas(10.0, 4.8, "heads on top of the encoder's final vectors h [B, T, H]")
    _box(axes, 5.0, 4.1, 9.4, 0.5, "encoder: h = last_hidden_state [B, T, H]   (h[:, 0] is [CLS])", "#eeeeee", 9)
    heads = [
        (1.2, "masked LM", "dense → GELU → LayerNorm\n→ × Eᵀ (tied) + bias", "[B, T, V]"),
        (3.1, "NSP", "pooler: tanh(dense(h[:,0]))\n→ linear 2", "[B, 2]"),
        (5.0, "classification", "pooler → dropout\n→ linear C", "[B, C]"),
        (6.9, "token classif.", "dropout → linear C\non every token", "[B, T, C]"),
        (8.8, "question answ.", "linear 2 on every token\n→ start, end logits", "2 × [B, T]"),
    ]
    for x, name, inside, shape in heads:
        _arrow(axes, (x, 3.8), (x, 3.15))
        _box(axes, x, 2.85, 1.75, 0.5, name, "#cfe2f3", 9)
        axes.text(x, 1.9, inside, ha="center", va="center", fontsize=7)
        _box(axes, x, 0.8, 1.5, 0.45, shape, "#d9ead3", 8)
    axes.text(0.1, 0.15, "pretraining: masked LM + NSP.   fine-tuning: one new head, trained with the whole encoder.",
              fontsize=8)
    return figure


# --- write it yourself (lesson 4c): the real weights loaded into the learner's modules, outputs compared -----------

# Where each of the learner's parameters comes from: their module's name → the real model's (BertForMaskedLM's
# state_dict names, as in bert/model.py and bert/heads.py); ".weight" / ".bias" follow. {i}: the layer's number.
EMBEDDING_NAMES = {
    "word_embeddings": "bert.embeddings.word_embeddings",
    "position_embeddings": "bert.embeddings.position_embeddings",
    "token_type_embeddings": "bert.embeddings.token_type_embeddings",
    "LayerNorm": "bert.embeddings.LayerNorm",
}
LAYER_NAMES = {
    "query": "bert.encoder.layer.{i}.attention.self.query",
    "key": "bert.encoder.layer.{i}.attention.self.key",
    "value": "bert.encoder.layer.{i}.attention.self.value",
    "attention_output": "bert.encoder.layer.{i}.attention.output.dense",
    "attention_norm": "bert.encoder.layer.{i}.attention.output.LayerNorm",
    "ff_in": "bert.encoder.layer.{i}.intermediate.dense",
    "ff_out": "bert.encoder.layer.{i}.output.dense",
    "ff_norm": "bert.encoder.layer.{i}.output.LayerNorm",
}
MLM_HEAD_NAMES = {
    "dense": "cls.predictions.transform.dense",
    "LayerNorm": "cls.predictions.transform.LayerNorm",
    "decoder": "bert.embeddings.word_embeddings",  # the tie: the decoder's [V, H] weight IS the word-embedding table
    "bias": "cls.predictions.bias",  # the head's only parameter of its own
}
# float32 sums taken in another order differ by ~1e-6 per layer (lesson 4b's figures); a wrong step (no 1/√D, the
# mask ignored, a bias forgotten, GELU's tanh approximation) by 1e-3 or (much) more.
TOLERANCE = 1e-4


class WrongWeights(Exception):
    """The learner's module cannot take the real weights: a name missing or extra, or a shape different."""


def check_batch(model, tokenizer) -> dict:
    """The padded batch every check runs on: two sentence pairs of different lengths, so that segment ids 0 and 1 and
    padding all occur. input_ids, token_type_ids, attention_mask: [B, T] = [2, 14]."""
    from bert.inference.pipelines import model_inputs

    return model_inputs(tokenizer, model, ["The cat sat on the mat.", "Where did it go?"],
                        ["It was tired.", "Away."])


def load_weights(mine, model, names: dict[str, str], layer: int | None = None) -> None:
    """Copy the real ``model``'s weights into the learner's module ``mine``, renaming by ``names`` (one of the maps
    above; ``layer``: the number of the encoder layer to take). Raises WrongWeights, saying what does not fit."""
    import torch

    source = model.state_dict()
    wanted = {}
    for own, theirs in names.items():
        theirs = theirs.format(i=layer)
        for key, tensor in source.items():
            if key == theirs or key.startswith(theirs + "."):
                wanted[own + key[len(theirs):]] = tensor
    present = mine.state_dict()
    missing, extra = sorted(set(wanted) - set(present)), sorted(set(present) - set(wanted))
    if missing or extra:
        raise WrongWeights("; ".join(filter(None, [
            missing and f"{type(mine).__name__} has no {', '.join(missing)} (name them as the docstring does)",
            extra and f"the real module has nothing to load into {', '.join(extra)}"])))
    wrong = [f"{key} is {list(present[key].shape)}, the real one {list(tensor.shape)}"
             for key, tensor in wanted.items() if present[key].shape != tensor.shape]
    if wrong:
        raise WrongWeights("; ".join(wrong))
    with torch.no_grad():
        for key, tensor in wanted.items():
            present[key].copy_(tensor)  # state_dict() tensors share the parameters' storage


def _built(cls, model, names, layer=None):
    """A ``cls`` built from the model's config, given the real weights, in eval mode (dropout off)."""
    mine = cls(model.config)
    load_weights(mine, model, names, layer)
    return mine.eval()


def _report(what: str, run, expected, real, unwritten: str = "the class above") -> bool:
    """Run the learner's code (``run()``: a tensor shaped like ``expected``, [..., B, T, F]) and compare it with the
    module's at the real tokens (``real`` [B, T] bool; padding positions are read by nobody). One printed line; True
    if it matches. A class still raising NotImplementedError is "not written yet" (``unwritten``: what to fill in)."""
    import torch

    try:
        with torch.no_grad():
            ours = run()
    except NotImplementedError:
        print(f"{what}: not written yet (fill in {unwritten}, then run this cell again)")
        return False
    except WrongWeights as error:
        print(f"{what}: FAIL, the real weights do not fit: {error}")
        return False
    if tuple(ours.shape) != tuple(expected.shape):
        print(f"{what}: FAIL, output shape {tuple(ours.shape)} where the module's is {tuple(expected.shape)}")
        return False
    batch, length = real.shape  # leading dims of ``expected`` (the layers) share the mask: viewed as [-1, B, T, F]
    difference = (ours - expected).reshape(-1, batch, length, expected.shape[-1])[:, real].abs().max().item()
    passed = difference <= TOLERANCE
    print(f"{what}: {'ok' if passed else 'FAIL'}, {tuple(ours.shape)}, max abs difference from the module's "
          f"{difference:.1e} at the {int(real.sum())} real tokens of {batch * length} (tolerance {TOLERANCE:.0e})")
    return passed


def _reference(model, batch):
    """The real model's hidden states (embeddings first, then each layer's output) and MLM logits for ``batch``."""
    import torch

    with torch.no_grad():
        hidden = model.bert(**batch, output_hidden_states=True).hidden_states  # L + 1 × [B, T, H], padding kept
        return hidden, model.cls.predictions(hidden[-1])  # logits [B, T, V]


def check_embeddings(cls, model, batch) -> bool:
    """The learner's ``cls(config)``, called as (input_ids [B, T], token_type_ids [B, T]) → [B, T, H], against
    ``model.bert.embeddings`` on ``batch``."""
    hidden, _ = _reference(model, batch)
    return _report("embeddings", lambda: _built(cls, model, EMBEDDING_NAMES)(
        batch["input_ids"], batch["token_type_ids"]), hidden[0], batch["attention_mask"].bool())


def check_encoder_layer(cls, model, batch) -> bool:
    """The learner's ``cls(config)``, called as (x [B, T, H], attention_mask [B, T]) → [B, T, H], against every
    layer of the real encoder: one instance per layer, given that layer's weights and that layer's real input."""
    import torch

    hidden, _ = _reference(model, batch)
    mask, real = batch["attention_mask"], batch["attention_mask"].bool()
    layers = len(hidden) - 1

    def each_layer():
        return torch.stack([_built(cls, model, LAYER_NAMES, i)(hidden[i], mask) for i in range(layers)])

    return _report(f"encoder layer (each of the {layers}, on its real input)", each_layer, torch.stack(hidden[1:]),
                   real)


def check_mlm_head(cls, model, batch) -> bool:
    """The learner's ``cls(config)``, called as (hidden [B, T, H]) → logits [B, T, V], against ``model.cls.predictions``
    on the real final hidden states."""
    hidden, logits = _reference(model, batch)
    return _report("MLM head", lambda: _built(cls, model, MLM_HEAD_NAMES)(hidden[-1]), logits,
                   batch["attention_mask"].bool())


def check_all_yours(embeddings_cls, layer_cls, head_cls, model, batch) -> bool:
    """The learner's three pieces chained into a whole BERT-with-MLM-head (embeddings → L layers → head) against the
    real model's logits: errors that each check tolerates add up here."""
    hidden, logits = _reference(model, batch)

    def chained():
        x = _built(embeddings_cls, model, EMBEDDING_NAMES)(batch["input_ids"], batch["token_type_ids"])
        for i in range(len(hidden) - 1):
            x = _built(layer_cls, model, LAYER_NAMES, i)(x, batch["attention_mask"])
        return _built(head_cls, model, MLM_HEAD_NAMES)(x)

    return _report("all yours, chained", chained, logits, batch["attention_mask"].bool(), "the three classes above")


def fill_mask_yours(embeddings_cls, layer_cls, head_cls, model, tokenizer, text: str, k: int = 5) -> bool:
    """The top ``k`` words at the [MASK] of ``text`` from the learner's three pieces chained, beside the model's
    (lesson 2's answer); True when they agree."""
    import torch

    from bert.inference.pipelines import model_inputs

    batch = model_inputs(tokenizer, model, text)
    where = batch["input_ids"][0].tolist().index(tokenizer.mask_token_id)
    try:
        with torch.no_grad():
            x = _built(embeddings_cls, model, EMBEDDING_NAMES)(batch["input_ids"], batch["token_type_ids"])
            for i in range(model.config.num_hidden_layers):
                x = _built(layer_cls, model, LAYER_NAMES, i)(x, batch["attention_mask"])
            ours = _built(head_cls, model, MLM_HEAD_NAMES)(x)[0, where]  # [V]
            theirs = model(**batch).logits[0, where]
    except NotImplementedError:
        print("fill-mask with your code: not written yet (fill in the three classes above, then run this cell again)")
        return False
    except WrongWeights as error:
        print(f"fill-mask with your code: the real weights do not fit: {error}")
        return False
    words = [tokenizer.convert_ids_to_tokens(logits.topk(k).indices.tolist()) for logits in (ours, theirs)]
    print(f"{text}\n  yours:       {', '.join(words[0])}\n  the model's: {', '.join(words[1])}")
    return words[0] == words[1]
