"""Sub-commands that use a pretrained model: fill-mask, nsp, embed, similarity, info, download, convert, quantize,
export-onnx."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from bert.errors import BertError

MODEL_HELP = "checkpoint folder or model name (default: bert-base-uncased, else the bundled demo model)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fill-mask", help="predict the words behind [MASK] (the model's mask token)")
    p.add_argument("text", help='text with one or more [MASK], e.g. "The capital of France is [MASK]."; RoBERTa '
                                'models write it <mask>')
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--top-k", type=int, default=5, help="candidates per mask (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON: one list per [MASK] of {token, token_id, score}")
    _truncate_option(p, "cut text longer than the model's positions at the end, with a warning (the default), "
                        "unless that would cut off a [MASK]; --no-truncate: an error instead")
    precision_options(p)
    p.set_defaults(func=run_fill_mask)

    p = subparsers.add_parser("nsp", help="next sentence prediction: does B follow A?")
    p.add_argument("sentence_a")
    p.add_argument("sentence_b")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help='print JSON: {"is_next": P(B follows A), "not_next": ...}')
    _truncate_option(p, "cut a pair longer than the model's positions (from the longer sentence, BERT's rule), "
                        "with a warning (the default); --no-truncate: an error instead")
    precision_options(p)
    p.set_defaults(func=run_nsp)

    p = subparsers.add_parser("embed", help="sentence vectors")
    p.add_argument("texts", nargs="+")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--pooling", choices=("mean", "cls", "pooler"), default="mean",
                   help="sentence vector: the mean of the token vectors (default mean), the [CLS] token's vector, "
                        "or the pooler's (tanh layer over [CLS], trained by NSP)")
    p.add_argument("--json", action="store_true", help="print the full vectors as JSON")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="texts per forward pass (default 32)")
    _truncate_option(p, "cut texts longer than the model's positions, with a warning (the default); "
                        "--no-truncate: an error instead")
    precision_options(p)
    p.set_defaults(func=run_embed)

    p = subparsers.add_parser("similarity", help="cosine similarity of sentences, or of one word in several contexts")
    p.add_argument("texts", nargs="+", help="two or more texts")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--pooling", choices=("mean", "cls", "pooler"), default="mean",
                   help="sentence vector: the mean of the token vectors (default mean), the [CLS] token's vector, "
                        "or the pooler's (tanh layer over [CLS], trained by NSP)")
    p.add_argument("--word", help='compare this word\'s contextual vectors instead, e.g. --word bank')
    p.add_argument("--json", action="store_true", help="print the similarity matrix (and labels) as JSON")
    p.add_argument("--out", help="also draw the matrix as a labelled heatmap into this PNG file")
    precision_options(p)
    p.set_defaults(func=run_similarity)

    register_checkpoint_commands(subparsers)


def register_checkpoint_commands(subparsers: argparse._SubParsersAction) -> None:
    """``info``, ``download``, ``convert`` and ``quantize``: commands about a checkpoint itself."""
    p = subparsers.add_parser("info", help="configuration and parameter counts of a checkpoint")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", help=MODEL_HELP)
    source.add_argument("--config", help="a published configuration, built in (no download): bert-base-uncased, "
                                         "roberta-base, albert-base-v2, distilbert-base-uncased, ...")
    p.set_defaults(func=run_info)

    p = subparsers.add_parser("download", help="fetch a checkpoint from the Hugging Face Hub into weights/NAME")
    p.add_argument("name", help="e.g. bert-base-uncased or google/bert_uncased_L-4_H-256_A-4")
    p.add_argument("--to", help="target folder (default weights/<name>)")
    p.set_defaults(func=run_download)

    p = subparsers.add_parser("convert", help="rewrite any BERT, RoBERTa, ALBERT or DistilBERT checkpoint (.bin, "
                                              "legacy names, shards) as config.json + model.safetensors (+ tokenizer "
                                              "files)")
    p.add_argument("source")
    p.add_argument("out")
    p.set_defaults(func=run_convert)

    p = subparsers.add_parser("quantize", help="save a checkpoint with its encoder's linear layers in int8 (for "
                                               "--model; ours only: transformers cannot read it)")
    p.add_argument("source", help="checkpoint folder or model name")
    p.add_argument("out", help="folder to write the int8 checkpoint into")
    p.set_defaults(func=run_quantize)

    p = subparsers.add_parser("export-onnx", help="write a model as one ONNX file (dynamic batch and length), "
                                                  "checked in onnxruntime against ours (needs the onnx extra)")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("out", help="the .onnx file to write")
    p.add_argument("--head", default="base",
                   help="which model to export: the bare encoder (base: last_hidden_state, pooler_output) or a head: "
                        "masked_lm, pretraining, next_sentence, sequence_classification, token_classification, "
                        "question_answering (its logits; the checkpoint must have that head's weights; default: base)")
    p.set_defaults(func=run_export_onnx)


def precision_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--int8", dest="precision", action="store_const", const="int8", default="float32",
                       help="run the encoder's linear layers in int8 (per-channel weights, per-token activations; "
                            "see bert.precision): faster on CPUs with int8 instructions, hidden states at cosine >= "
                            "0.99 to float32's (default without --int8/--bf16: float32, through oneDNN)")
    group.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                       help="run the encoder's linear layers in bfloat16: faster where the CPU has bfloat16 "
                            "instructions (AVX512-BF16, AMX; a note says when it has not)")


def _truncate_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--truncate", action=argparse.BooleanOptionalAction, default=True, help=help)


def run_fill_mask(args: argparse.Namespace) -> None:
    from bert.inference.pipelines import fill_mask, load

    model, tokenizer = load("masked_lm", args.model, args.precision)  # BertForMaskedLM, RobertaForMaskedLM, ...
    predictions = fill_mask(model, tokenizer, args.text, top_k=args.top_k, truncate=args.truncate)
    if args.json:
        print(json.dumps(predictions, ensure_ascii=False))
        return
    mask = tokenizer.mask_token
    for number, candidates in enumerate(predictions, 1):
        print(f"{mask} {number}:" if len(predictions) > 1 else f"{mask}:")
        for candidate in candidates:
            word = candidate["token_str"] or candidate["token"]
            print(f"  {word:<16} {candidate['score']:.4f}")


def run_nsp(args: argparse.Namespace) -> None:
    from bert.inference.pipelines import load, next_sentence

    model, tokenizer = load("next_sentence", args.model, args.precision)  # one-line error: no NSP head
    result = next_sentence(model, tokenizer, args.sentence_a, args.sentence_b, truncate=args.truncate)
    if args.json:
        print(json.dumps(result))
        return
    verdict = "IsNext" if result["is_next"] >= 0.5 else "NotNext"
    print(f"{verdict}: P(B follows A) = {result['is_next']:.4f}  (logits {result['logits'][0]:.4f}, "
          f"{result['logits'][1]:.4f})")


def run_embed(args: argparse.Namespace) -> None:
    from bert.inference.pipelines import load, sentence_embeddings

    model, tokenizer = load("base", args.model, args.precision)
    vectors = sentence_embeddings(model, tokenizer, args.texts, pooling=args.pooling, batch_size=args.batch_size,
                                  truncate=args.truncate)
    if args.json:
        print(json.dumps([v.tolist() for v in vectors]))
        return
    for text, vector in zip(args.texts, vectors, strict=True):
        preview = ", ".join(f"{x:.4f}" for x in vector[:6].tolist())
        print(f"{text[:40]!r:<44} [{vector.shape[0]}] [{preview}, ...]")


def run_similarity(args: argparse.Namespace) -> None:
    import torch

    from bert.inference.pipelines import cosine_similarity_matrix, load, sentence_embeddings, word_vector

    if len(args.texts) < 2:
        raise BertError("give at least two texts to compare")
    if args.out:
        from bert.inference.study import check_output, require_matplotlib

        require_matplotlib()
        check_output(args.out)  # before the model loads: a bad path fails at once
    model, tokenizer = load("base", args.model, args.precision)  # BertModel, RobertaModel, ... by model_type
    if args.word:
        vectors = torch.stack([word_vector(model, tokenizer, text, args.word) for text in args.texts])
    else:
        vectors = sentence_embeddings(model, tokenizer, args.texts, pooling=args.pooling)
    matrix = cosine_similarity_matrix(vectors)
    if args.json:
        print(json.dumps(matrix.tolist()))
    else:
        for i, text in enumerate(args.texts):
            row = "  ".join(f"{x:6.3f}" for x in matrix[i].tolist())
            print(f"{i + 1}. {text[:50]!r:<54} {row}")
    if args.out:
        from bert.inference.study import plot_similarity, save_png

        what = f"{args.word!r} in each text" if args.word else f"{args.pooling}-pooled sentence vectors"
        title = f"{model.name_or_path}\ncosine similarity of {what}"
        path = save_png(plot_similarity(args.texts, matrix, title=title), args.out)
        if not args.json:  # keep --json output pure JSON
            print(f"wrote {path}")


def run_info(args: argparse.Namespace) -> None:
    from bert.config import MODEL_TYPES
    from bert.inference.checkpoints import module_rows

    if args.config:
        import torch

        from bert.variants.auto import auto_class, released_config

        config = released_config(args.config)
        with torch.device("meta"):  # sizes only: no memory, no random initialisation
            model = auto_class(config, "base")(config)
        name = args.config
    else:
        from bert.inference.pipelines import load

        model, _ = load("base", args.model)
        config, name = model.config, model.name_or_path
    embeddings = model.embeddings
    segments = getattr(getattr(embeddings, "token_type_embeddings", None), "num_embeddings", 0)
    print(f"{name} ({MODEL_TYPES[config.model_type]})")
    print(f"layers {config.num_hidden_layers}, hidden {config.hidden_size}, heads {config.num_attention_heads}, "
          f"intermediate {config.intermediate_size}, vocab {config.vocab_size}, positions "
          f"{embeddings.max_length()}, segments {segments}, activation {config.hidden_act}")
    if config.model_type == "albert":  # the two ways ALBERT saves parameters
        print(f"embedding size {config.embedding_size}; {config.num_hidden_groups} group(s) of "
              f"{config.inner_group_num} layer(s), shared across the {config.num_hidden_layers} layers")
    for row, module in module_rows(model):
        print(f"  {row:<36} {sum(p.numel() for p in module.parameters()):>12,}")
    print(f"  {'total':<36} {model.num_parameters():>12,}")


def run_download(args: argparse.Namespace) -> None:
    from bert.atomic import make_directory
    from bert.hub import PROJECT_WEIGHTS, download

    target = Path(args.to) if args.to else PROJECT_WEIGHTS / args.name.split("/")[-1]
    snapshot = download(args.name)
    make_directory(target)
    for file in snapshot.iterdir():
        if file.is_file():
            shutil.copy2(file, target / file.name)
    print(f"saved {args.name} to {target}")


def run_convert(args: argparse.Namespace) -> None:
    from bert.inference.checkpoints import rewrite_checkpoint

    print(f"wrote {rewrite_checkpoint(args.source, args.out)} to {args.out}")


def run_quantize(args: argparse.Namespace) -> None:
    from bert.inference.checkpoints import rewrite_checkpoint
    from bert.precision import quantize

    print(f"wrote an int8 {rewrite_checkpoint(args.source, args.out, quantize)} to {args.out}")


def run_export_onnx(args: argparse.Namespace) -> None:
    from bert.inference.onnx_export import export_onnx
    from bert.inference.pipelines import load

    model, _ = load(args.head, args.model)
    report = export_onnx(model, args.out)
    rows, length = report.check_shape
    print(f"wrote {args.out} ({report.size_bytes / 2**20:.1f} MiB): inputs {', '.join(report.inputs)} [batch, length]; "
          f"outputs {', '.join(report.outputs)}; onnxruntime equals ours to {report.max_difference:.1e} on a "
          f"{rows} x {length} batch")
