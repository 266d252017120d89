"""Sub-commands for pretraining data: ``bert train-tokenizer`` and ``bert prepare``."""

from __future__ import annotations

import argparse

from bert.cli import one_line_warnings as _one_line_warnings


def _train_tokenizer(args: argparse.Namespace) -> None:
    from bert.data.tokenizer_training import train_tokenizer

    with _one_line_warnings(args.command):
        tokenizer = train_tokenizer(
            args.files,
            args.vocab_size,
            args.out,
            lowercase=not args.cased,
            min_frequency=args.min_frequency,
            format=args.format,
        )
    print(f"wrote a {tokenizer.vocab_size}-token {'cased' if args.cased else 'uncased'} vocabulary to {args.out}")


def _prepare(args: argparse.Namespace) -> None:
    from bert.data.prepare import prepare_pretraining_data

    with _one_line_warnings(args.command):
        meta = prepare_pretraining_data(
            args.files,
            args.tokenizer,
            args.out,
            max_seq_len=args.max_seq_len,
            seed=args.seed,
            short_seq_prob=args.short_seq_prob,
            dupe_factor=args.dupe_factor,
            eval_fraction=args.eval_fraction,
            eval_files=args.eval_files,
            format=args.format,
            sentence_split=not args.no_sentence_split,
            overwrite=args.overwrite,
            progress=False if args.quiet else None,
            objective=args.objective,
            sentence_pair_prob=args.sentence_pair_prob,
        )
    label = {"mlm+nsp": ("not_next", "NotNext"), "mlm+sop": ("swapped", "swapped")}.get(meta["objective"])
    for split, info in meta["splits"].items():
        balance = f", {info[f'{label[0]}_fraction']:.1%} {label[1]}" if info["examples"] and label else ""
        print(f"{split}: {info['examples']} examples from {info['documents']} documents{balance}")
    print(f"wrote {args.out}")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train-tokenizer`` and ``prepare`` to the ``bert`` command."""
    from bert.data.corpus import FORMATS as formats
    format_help = (
        "plain: a blank line between documents, one sentence or paragraph per line; wikitext: the tokenized "
        "WikiText release (' = Title = ' lines start documents); gutenberg: Project Gutenberg eBooks (text between the "
        "START/END lines, wrapped paragraphs joined, one document per file) (default: plain)"
    )

    p = subparsers.add_parser(
        "train-tokenizer",
        help="train a WordPiece vocabulary on text files",
        description="Train a BERT WordPiece vocabulary ([PAD]=0, [UNK], [CLS], [SEP], [MASK] first) on text files; "
        "writes vocab.txt, tokenizer.json and tokenizer_config.json.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="UTF-8 text files")
    p.add_argument("--vocab-size", type=int, required=True, metavar="N", help="vocabulary size, e.g. 30522")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the tokenizer files into")
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-case)")
    p.add_argument("--min-frequency", type=int, default=2, metavar="N", help="least pair count to merge (default 2)")
    p.add_argument("--format", choices=formats, default="plain", help=format_help)
    p.set_defaults(func=_train_tokenizer)

    p = subparsers.add_parser(
        "prepare",
        help="turn text files into pretraining examples (MLM + next sentence, sentence order, or MLM only)",
        description="Tokenize a corpus and write [CLS] A [SEP] B [SEP] sentence-pair examples as in "
        "google-research/bert's create_pretraining_data.py (or ALBERT's sentence-order pairs, or packed MLM-only "
        "sequences: --objective), split into DIR/train and DIR/eval (held-out documents), with DIR/meta.json and a "
        "copy of the tokenizer in DIR/tokenizer. Masking happens at training time (dynamic), so examples are "
        "stored unmasked.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="UTF-8 text files")
    p.add_argument("--tokenizer", required=True, metavar="DIR|NAME",
                   help="folder with vocab.txt / tokenizer.json, or a model name (e.g. bert-base-uncased): to "
                        "continue pretraining a checkpoint, use its own tokenizer; a RoBERTa or ALBERT folder or "
                        "name gives that model's own tokenizer (byte-level BPE, unigram)")
    p.add_argument("--objective", choices=("mlm+nsp", "mlm+sop", "mlm"), default="mlm+nsp",
                   help="mlm+nsp: sentence pairs with next-sentence labels (BERT); mlm+sop: two consecutive "
                        "segments of one document, swapped for half of the examples, with sentence-order labels "
                        "(ALBERT; trains BERT's or ALBERT's sentence head); mlm: consecutive sentences packed into "
                        "full-length sequences, a [SEP] between documents, no sentence labels (RoBERTa, DistilBERT; "
                        "for corpora without document order) (default mlm+nsp)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; must be empty or absent)")
    p.add_argument("--max-seq-len", type=int, default=128, metavar="N", help="tokens per example (default 128)")
    p.add_argument("--seed", type=int, default=12345, help="random seed (default 12345, as the original)")
    p.add_argument(
        "--short-seq-prob", type=float, default=0.1, metavar="P", help="chance of a shorter target length (0.1)"
    )
    p.add_argument(
        "--sentence-pair-prob", type=float, default=0.0, metavar="P",
        help="mlm+nsp: chance that a training sentence also starts a one-sentence pair, B its next sentence or a "
             "random other document's, half each (default 0: the original's pairs only, where a one-sentence A "
             "always gets a random B)",
    )
    p.add_argument(
        "--dupe-factor",
        type=int,
        default=1,
        metavar="N",
        help="passes over the corpus with different pairings (default 1; masking is dynamic, so 1 suffices)",
    )
    p.add_argument(
        "--eval-fraction",
        type=float,
        default=0.02,
        metavar="F",
        help="fraction of documents held out for evaluation (default 0.02, at least one; 0 for none)",
    )
    p.add_argument(
        "--eval-files",
        nargs="+",
        metavar="FILE",
        help="build the evaluation split from these files (e.g. a validation split) instead of held-out documents",
    )
    p.add_argument("--format", choices=formats, default="plain", help=format_help)
    p.add_argument(
        "--no-sentence-split", action="store_true", help="treat each line as one sentence (input already split)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_prepare)
