"""Sub-commands that use a pretrained model: fill-mask, nsp, embed, similarity, info, download, convert, quantize,
export-onnx. The ones that run a model take ``--device`` and a precision flag (:func:`load_model`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from bert.devices import DEVICE_HELP
from bert.errors import BertError

MODEL_HELP = "checkpoint folder or model name (default: bert-base-uncased, else the bundled demo model)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fill-mask", help="predict the words behind [MASK] (the model's mask token)")
    p.add_argument("text", help='text with one or more [MASK], e.g. "The capital of France is [MASK]."; RoBERTa '
                                'models write it <mask>')
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--top-k", type=int, default=5, help="candidates per mask (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON: one list per [MASK] of {score, token (the id), "
                                                       "token_str, sequence}, as transformers' fill-mask pipeline")
    _truncate_option(p, "cut text longer than the model's positions at the end, with a warning (the default), "
                        "unless that would cut off a [MASK]; --no-truncate: an error instead")
    precision_options(p)
    device_option(p)
    p.set_defaults(func=run_fill_mask)

    p = subparsers.add_parser("nsp", help="next sentence prediction: does B follow A?")
    p.add_argument("sentence_a")
    p.add_argument("sentence_b")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--json", action="store_true", help='print JSON: {"is_next": P(B follows A), "not_next": ...}')
    _truncate_option(p, "cut a pair longer than the model's positions (from the longer sentence, BERT's rule), "
                        "with a warning (the default); --no-truncate: an error instead")
    precision_options(p)
    device_option(p)
    p.set_defaults(func=run_nsp)

    p = subparsers.add_parser("embed", help="sentence vectors, printed or written to a .npy file")
    p.add_argument("texts", nargs="*", help="texts to embed (and/or --input)")
    p.add_argument("--input", metavar="FILE", help="a UTF-8 text file, one text per line (row i of the vectors is "
                                                   "line i; '-' reads standard input), after the TEXTS")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--pooling", choices=("mean", "cls", "pooler"), default="mean",
                   help="sentence vector: the mean of the token vectors (default mean), the [CLS] token's vector, "
                        "or the pooler's (tanh layer over [CLS], trained by NSP)")
    p.add_argument("--normalize", action="store_true", help="scale every vector to length 1 (a dot product is then "
                                                            "the cosine)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the full vectors as JSON")
    out.add_argument("--output", metavar="FILE.npy", help="write the vectors as one float32 [N, H] array to this "
                                                          "numpy file (atomically) and print a one-line summary")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="texts per forward pass (default 32)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
                   help="a progress bar on stderr (default: with --input, when stderr is a terminal and there is "
                        "more than one batch)")
    _truncate_option(p, "cut texts longer than the model's positions, with a warning (the default); "
                        "--no-truncate: an error instead")
    precision_options(p)
    device_option(p)
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
    device_option(p)
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
                            "0.99 to float32's (CPU only; default without a flag: float32, on the CPU through oneDNN)")
    group.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                       help="bfloat16: on the CPU the encoder's linear layers (faster where the CPU has AVX512-BF16 "
                            "or AMX; a note says when it has not), on a CUDA GPU the whole model")
    group.add_argument("--fp16", dest="precision", action="store_const", const="fp16",
                       help="float16, the whole model cast (model.half()): CUDA GPUs only")


def device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help=f"where the model runs: {DEVICE_HELP}")


def load_model(args: argparse.Namespace, head: str, precision: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for a command: ``head`` of ``--model`` on ``--device`` in ``precision``, with a
    ``bert COMMAND: device cpu, float32`` line on stderr saying where and how it runs."""
    from bert.devices import device_note
    from bert.inference.pipelines import load, model_device
    from bert.precision import precision_of

    model, tokenizer = load(head, args.model, precision, device=args.device)
    print(f"bert {args.command}: {device_note(model_device(model), precision_of(model))}", file=sys.stderr)
    return model, tokenizer


def _truncate_option(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--truncate", action=argparse.BooleanOptionalAction, default=True, help=help)


def run_fill_mask(args: argparse.Namespace) -> None:
    from bert.inference.pipelines import fill_mask

    model, tokenizer = load_model(args, "masked_lm", args.precision)  # BertForMaskedLM, RobertaForMaskedLM, ...
    predictions = fill_mask(model, tokenizer, args.text, top_k=args.top_k, truncate=args.truncate)
    if args.json:
        print(json.dumps(predictions, ensure_ascii=False))
        return
    mask = tokenizer.mask_token
    for number, candidates in enumerate(predictions, 1):
        print(f"{mask} {number}:" if len(predictions) > 1 else f"{mask}:")
        for candidate in candidates:  # the word; a piece that decodes to white space only, as its vocabulary entry
            word = candidate["token_str"].strip() or tokenizer.convert_ids_to_tokens(candidate["token"])
            print(f"  {word:<16} {candidate['score']:.4f}")


def run_nsp(args: argparse.Namespace) -> None:
    from bert.inference.pipelines import next_sentence

    model, tokenizer = load_model(args, "next_sentence", args.precision)  # one-line error: no NSP head
    result = next_sentence(model, tokenizer, args.sentence_a, args.sentence_b, truncate=args.truncate)
    if args.json:
        print(json.dumps(result))
        return
    verdict = "IsNext" if result["is_next"] >= 0.5 else "NotNext"
    print(f"{verdict}: P(B follows A) = {result['is_next']:.4f}  (logits {result['logits'][0]:.4f}, "
          f"{result['logits'][1]:.4f})")


def read_lines(source: str) -> list[str]:
    """The lines of the UTF-8 text file ``source`` ('-': standard input), without their line ends (a byte-order
    mark dropped); a one-line BertError for a missing, unreadable or empty file."""
    name = "standard input" if source == "-" else source
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        text = raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise BertError(f"{name}: file not found") from None
    except OSError as error:
        raise BertError(f"{name}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise BertError(f"{name}: cannot read it as UTF-8 text (byte {error.start}: {error.reason})") from None
    if not text:
        raise BertError(f"{name} is empty: give one text per line")
    # split on line ends only (str.splitlines would also split on form feeds and other separators inside a line)
    return [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")]


def run_embed(args: argparse.Namespace) -> None:
    from bert.atomic import check_writable_directory
    from bert.inference.pipelines import encode

    if args.output:
        if Path(args.output).is_dir():
            raise BertError(f"cannot write {args.output}: it is a folder; give a file name such as "
                            f"{Path(args.output) / 'vectors.npy'}")
        check_writable_directory(Path(args.output).parent)  # before the model loads: a bad path fails at once
    texts = list(args.texts) + (read_lines(args.input) if args.input else [])
    if not texts:
        raise BertError("no texts to embed: give them as arguments, or one per line in --input FILE ('-': stdin)")
    model, tokenizer = load_model(args, "base", args.precision)
    progress = args.progress if args.progress is not None else (None if args.input else False)
    vectors = encode(model, tokenizer, texts, batch_size=args.batch_size, normalize=args.normalize,
                     progress=progress, pooling=args.pooling, truncate=args.truncate)
    if args.output:
        save_vectors(vectors, args.output)
        print(f"wrote {args.output}: {vectors.shape[0]} x {vectors.shape[1]} float32 ({args.pooling} pooling"
              f"{', normalized' if args.normalize else ''}) from {model.name_or_path}")
        return
    if args.json:
        print(json.dumps([v.tolist() for v in vectors]))
        return
    for text, vector in zip(texts, vectors, strict=True):
        preview = ", ".join(f"{x:.4f}" for x in vector[:6].tolist())
        print(f"{text[:40]!r:<44} [{vector.shape[0]}] [{preview}, ...]")


def save_vectors(vectors: Any, path: str) -> None:
    """``vectors`` (a float32 tensor [N, H]) as a numpy .npy file at ``path``, written atomically (the old file or
    the whole new one, never a part)."""
    import numpy as np

    from bert.atomic import write_file_atomically

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:  # a file object: np.save would add .npy to a name
            np.save(file, vectors.numpy().astype(np.float32, copy=False))

    write_file_atomically(path, write)


def run_similarity(args: argparse.Namespace) -> None:
    import torch

    from bert.inference.pipelines import cosine_similarity_matrix, encode, word_vector

    if len(args.texts) < 2:
        raise BertError("give at least two texts to compare")
    if args.out:
        from bert.inference.study import check_output, require_matplotlib

        require_matplotlib()
        check_output(args.out)  # before the model loads: a bad path fails at once
    model, tokenizer = load_model(args, "base", args.precision)  # BertModel, RobertaModel, ... by model_type
    if args.word:
        vectors = torch.stack([word_vector(model, tokenizer, text, args.word).float().cpu() for text in args.texts])
    else:
        vectors = encode(model, tokenizer, args.texts, pooling=args.pooling, progress=False)
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
