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
