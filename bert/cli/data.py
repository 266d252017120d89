"""Sub-commands for pretraining data: ``bert train-tokenizer`` and ``bert prepare``. Their settings are
:class:`~bert.data.config.TokenizerTrainingConfig`'s and :class:`~bert.data.config.PrepareConfig`'s fields; the other
arguments name the files."""

from __future__ import annotations

import argparse
import sys

from bert.data.config import PrepareConfig, TokenizerTrainingConfig
from bert.settings import add_arguments, from_arguments

INPUT_HELP = ("UTF-8 text files, tables (.jsonl, .json, .csv, .tsv, .parquet), .gz files or folders of them (see "
              "--format); none with --dataset")


def _train_tokenizer(args: argparse.Namespace) -> None:
    from bert.data.advice import vocabulary_advice
    from bert.data.tokenizer_training import count_tokens, train_tokenizer

    config = from_arguments(TokenizerTrainingConfig, args)
    tokenizer = train_tokenizer(args.files, args.vocab_size, args.out, config)
    print(f"wrote a {tokenizer.vocab_size}-token {'cased' if config.cased else 'uncased'} vocabulary to {args.out}")
    tokens = count_tokens(args.files, tokenizer, config)
    if tokens is not None:
        print(f"the corpus is {tokens:,} pieces of it, {tokens / tokenizer.vocab_size:.0f} per vocabulary entry")
        if (advice := vocabulary_advice(tokens, tokenizer.vocab_size)) is not None:
            print(f"bert train-tokenizer: note: {advice}", file=sys.stderr)


def _prepare(args: argparse.Namespace) -> None:
    from bert.data.advice import vocabulary_advice
    from bert.data.prepare import prepare_pretraining_data

    meta = prepare_pretraining_data(args.files, args.tokenizer, args.out, from_arguments(PrepareConfig, args),
                                    overwrite=args.overwrite, progress=False if args.quiet else None)
    label = {"mlm+nsp": ("not_next", "NotNext"), "mlm+sop": ("swapped", "swapped")}.get(meta["objective"])
    for split, info in meta["splits"].items():
        balance = f", {info[f'{label[0]}_fraction']:.1%} {label[1]}" if info["examples"] and label else ""
        print(f"{split}: {info['examples']} examples from {info['documents']} documents{balance}")
    print(f"wrote {args.out}")
    advice = vocabulary_advice(meta["corpus"]["tokens"], meta["vocab_size"])
    if advice is not None:
        print(f"bert prepare: note: {advice}", file=sys.stderr)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-tokenizer`` and ``prepare`` to the ``bert`` command."""
    p = subparsers.add_parser(
        "train-tokenizer", help="train a WordPiece vocabulary on text files",
        description="Train a BERT WordPiece vocabulary ([PAD]=0, [UNK], [CLS], [SEP], [MASK] first) on text files, "
                    "tables or a Hugging Face dataset; writes vocab.txt, tokenizer.json and tokenizer_config.json.")
    p.add_argument("files", nargs="*", metavar="FILE", help=INPUT_HELP)
    p.add_argument("--vocab-size", type=int, required=True, metavar="N", help="vocabulary size, e.g. 30522")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the tokenizer files into")
    add_arguments(p, TokenizerTrainingConfig)
    p.set_defaults(func=_train_tokenizer)

    p = subparsers.add_parser(
        "prepare", help="turn text files into pretraining examples (MLM + next sentence, sentence order, or MLM only)",
        description="Tokenize a corpus and write [CLS] A [SEP] B [SEP] sentence-pair examples as in "
                    "google-research/bert's create_pretraining_data.py (or ALBERT's sentence-order pairs, or packed "
                    "MLM-only sequences: --objective), split into DIR/train and DIR/eval (held-out documents), with "
                    "DIR/meta.json and a copy of the tokenizer in DIR/tokenizer. Masking happens at training time "
                    "(dynamic), so examples are stored unmasked.")
    p.add_argument("files", nargs="*", metavar="FILE", help=INPUT_HELP)
    p.add_argument("--tokenizer", required=True, metavar="DIR|NAME",
                   help="folder with vocab.txt / tokenizer.json, or a model name (e.g. bert-base-uncased): to "
                        "continue pretraining a checkpoint, use its own tokenizer; a RoBERTa or ALBERT folder or "
                        "name gives that model's own tokenizer (byte-level BPE, unigram)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; must be empty or absent)")
    add_arguments(p, PrepareConfig)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)
