"""Sub-commands for studying a model: ``bert attention`` draws its attention maps (see :mod:`bert.inference.study`)."""

from __future__ import annotations

import argparse

from bert.cli.inference import MODEL_HELP, device_option, load_model
from bert.errors import BertError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("attention", help="draw the attention maps of one layer (all heads, or one) as a PNG")
    p.add_argument("text", help='a sentence, e.g. "The cat sat on the mat."')
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--layer", type=int, help="layer, counted from 0 (default: the last)")
    p.add_argument("--head", default="all", help="head, counted from 0, or 'all' for a grid of every head (default)")
    p.add_argument("--out", required=True, help="PNG file to write, e.g. attention.png")
    device_option(p)
    p.set_defaults(func=run_attention)


def parse_head(value: str) -> int | None:
    """``--head`` as a head index, or None for all heads."""
    if value.lower() == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise BertError(f"--head must be a head number (counted from 0) or 'all', not {value!r}") from None


def run_attention(args: argparse.Namespace) -> None:
    from bert.inference.study import attention_maps, check_output, plot_attention, require_matplotlib, save_png

    head = parse_head(args.head)
    require_matplotlib()
    check_output(args.out)  # before the model loads: a bad path fails at once
    model, tokenizer = load_model(args, "base")  # BertModel, RobertaModel, ... by model_type, in float32
    name = model.name_or_path
    tokens, maps = attention_maps(model, tokenizer, args.text)
    layer = maps.shape[0] - 1 if args.layer is None else args.layer
    path = save_png(plot_attention(tokens, maps, layer, head, model_name=name), args.out)
    what = f"head {head}" if head is not None else f"all {maps.shape[1]} heads"
    print(f"wrote {path}: {name}, layer {layer}, {what}, {len(tokens)} tokens")
