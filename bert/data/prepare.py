"""``bert prepare``: corpus files (or tables, a ``datasets`` split) -> tokenized, paired, split, stored pretraining
data (see :mod:`.dataset`).

Pipeline: read documents (:mod:`.corpus`) -> tokenize in bulk (:mod:`.tokenized`) -> shuffle the documents
with ``random.Random(seed)`` and hold out the first ``eval_fraction`` of them -> build sentence-pair examples
per split (:mod:`.examples`; random "next" sentences of a split come from that split only, so evaluation
examples are wholly from unseen documents; with ``objective="mlm+sop"`` two consecutive segments of one document,
swapped for half of the examples), or with ``objective="mlm"`` pack whole sentences into full-length
single-segment examples (:mod:`.packing`) -> write the arrays into a temporary folder beside ``out_dir``
and rename it into place once complete, ``meta.json`` last.

Deterministic: the same files, tokenizer and settings give byte-identical arrays.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bert.atomic import check_writable_directory, replace_folder_atomically
from bert.data.config import PrepareConfig
from bert.data.corpus import CorpusWarning, ReadStats, corpus_inputs, iter_documents
from bert.data.dataset import META_FILE, SPLITS, TOKENIZER_DIR, ids_dtype, write_rows, write_split
from bert.data.examples import PairSpans, concatenate_shuffled, create_pairs, create_sentence_pairs
from bert.data.packing import pack_full_sentences
from bert.data.plateau import unigram_stats
from bert.data.rows import describe, stored_bytes
from bert.data.sources import expand_inputs
from bert.data.tokenized import TokenizedCorpus, tokenize_documents
from bert.errors import BertError
from bert.hub import resolve_model_folder
from bert.tokenizer.fast import FastTokenizer
from bert.tokenizer.wordpiece import BertTokenizer
from bert.variants.auto import auto_tokenizer

DATA_FORMAT_VERSION = 1
PROGRESS_MIN_BYTES = 4 << 20  # show a progress bar from this much input on (progress=None)
PART_CHARS = 4 << 20  # documents are read and tokenized in parts of about this many characters
# The two labels of each sentence-pair objective, as meta.json's split summaries name them.
LABEL_NAMES = {"mlm+nsp": ("is_next", "not_next"), "mlm+sop": ("in_order", "swapped")}


def _load_tokenizer(tokenizer: Any) -> FastTokenizer:
    """A tokenizer as it is; a folder or a model name: the tokenizer of its model family (BERT's WordPiece,
    RoBERTa's byte-level BPE, ALBERT's unigram; see :func:`~bert.variants.auto.auto_tokenizer`); a file: BERT's
    vocab.txt or tokenizer.json."""
    if isinstance(tokenizer, FastTokenizer):
        return tokenizer
    path = Path(os.fspath(tokenizer)).expanduser()
    if path.is_dir():
        return auto_tokenizer(path)
    if path.exists() or path.is_absolute() or os.fspath(tokenizer).startswith((".", "~")):
        return BertTokenizer.from_pretrained(path)  # a file, or a missing folder: its own error message
    return auto_tokenizer(resolve_model_folder(tokenizer))


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists():
        if not out.is_dir():
            raise BertError(f"output {out} exists and is not a folder")
        if any(out.iterdir()) and not overwrite:
            raise BertError(f"output folder {out} is not empty; choose another folder or pass --overwrite")
    if not out.parent.exists():
        raise BertError(f"cannot create {out}: its parent folder {out.parent} does not exist")
    check_writable_directory(out.parent, "folder")  # the data is written beside OUT first, then renamed into place


def num_eval_documents(num_documents: int, eval_fraction: float) -> int:
    """Documents held out: ``round(fraction * n)``, at least 1 when ``fraction > 0`` and n >= 2, never all."""
    if eval_fraction <= 0 or num_documents < 2:
        return 0
    return min(num_documents - 1, max(1, round(eval_fraction * num_documents)))


def _split_summary(spans: PairSpans, num_documents: int, objective: str) -> dict[str, Any]:
    """Counts of one split; the label balance under the objective's names (is_next/not_next, in_order/swapped)."""
    n = len(spans)
    zeros, ones = LABEL_NAMES[objective]
    positive = int(spans.nsp_labels.sum())
    tokens = int(((spans.a_end - spans.a_start) + (spans.b_end - spans.b_start) + 3).sum()) if n else 0
    return {
        "documents": num_documents,
        "examples": n,
        zeros: n - positive,
        ones: positive,
        f"{ones}_fraction": round(positive / n, 6) if n else None,
        "tokens": tokens,
    }


def _sentence_pairs(corpus: TokenizedCorpus, split_corpus: dict[str, TokenizedCorpus],
                    split_ranges: dict[str, list[tuple[int, int]]], max_seq_len: int, short_seq_prob: float,
                    dupe_factor: int, eval_fraction: float, names: str, rng: random.Random,
                    sentence_order: bool, sentence_pair_prob: float) -> dict[str, PairSpans]:
    """The sentence-pair examples of both splits, with the warnings they call for: google-research/bert's NSP pairs,
    or with ``sentence_order`` ALBERT's sentence-order pairs (which need no second document). With
    ``sentence_pair_prob`` the training split also gets one-sentence pairs (drawn after both splits, so the
    evaluation split is the same as without them)."""
    if not sentence_order and corpus.num_documents == 1:
        warnings.warn(
            "the corpus has a single document (separate documents with a blank line, or use --format wikitext"
            " for WikiText); NotNext sentences are drawn from other parts of that document"
            + (", and there is no evaluation split" if eval_fraction > 0 else ""),
            CorpusWarning,
            stacklevel=3,
        )
    elif not sentence_order and len(split_ranges["train"]) == 1:
        warnings.warn(
            "the training split has a single document (the corpus has 2 and one is held out for evaluation); "
            "NotNext sentences are drawn from other parts of that document; lower --eval-fraction to 0 to train "
            "on both",
            CorpusWarning,
            stacklevel=3,
        )

    spans = {
        split: create_pairs(split_corpus[split].segment_offsets, split_ranges[split], max_seq_len, short_seq_prob,
                            dupe_factor if split == "train" else 1, rng, sentence_order)
        for split in ("train", "eval")
    }
    if sentence_pair_prob > 0:
        extra = create_sentence_pairs(split_corpus["train"].segment_offsets, split_ranges["train"], max_seq_len,
                                      sentence_pair_prob, rng)
        spans["train"] = concatenate_shuffled([spans["train"], extra], rng)
    if len(spans["train"]) == 0:
        raise BertError(f"{names} yields no training examples: a document needs at least two sentences")
    if not sentence_order and int(spans["train"].nsp_labels.sum()) == 0:
        warnings.warn(
            f"no NotNext examples could be made: the training split has {len(split_ranges['train'])} document(s) "
            f"and {corpus.num_segments} sentence(s) in all, too few for a random next sentence that is not the true "
            "one, so the next-sentence task sees only IsNext pairs and learns nothing; add documents (separated by "
            "blank lines) or more sentences",
            CorpusWarning,
            stacklevel=3,
        )

    return spans


def prepare_pretraining_data(files: list[str | os.PathLike], tokenizer: Any, out_dir: str | os.PathLike,
                             config: PrepareConfig | None = None, *, overwrite: bool = False,
                             progress: bool | None = None, **settings: Any) -> dict[str, Any]:
    """Prepare pretraining data from ``files`` into ``out_dir``; returns the ``meta.json`` contents.

    ``files``: text or table files, folders of them, and tables held in memory (a ``datasets.Dataset``, a pandas
    DataFrame, a list of dicts), read as :func:`~bert.data.corpus.iter_documents` says; ``dataset``/``split`` in the
    settings add a Hugging Face dataset's split (:func:`~bert.data.hub_datasets.load_hf_dataset`).

    The settings are ``config``'s, or :class:`~bert.data.config.PrepareConfig`'s fields given as keywords
    (``max_seq_len=64, seed=1``); ``overwrite`` replaces an existing folder.

    ``eval_files`` (e.g. a corpus's validation split) make the evaluation split instead of held-out documents
    (``eval_fraction`` is then ignored).
    ``tokenizer`` is a tokenizer object (:class:`~bert.tokenizer.wordpiece.BertTokenizer`, a variant's), a folder
    or a model name to load one from (a RoBERTa or ALBERT folder gives its own tokenizer).
    ``format`` is ``"auto"``, ``"plain"``, ``"wikitext"``, ``"gutenberg"`` or a table format, ``text_column`` a table's
    text column (:mod:`bert.data.corpus`). ``objective``:
    ``"mlm+nsp"`` (sentence pairs with next-sentence labels), ``"mlm+sop"`` (two consecutive segments of a
    document, swapped for half of them: sentence-order labels, 1 = swapped) or ``"mlm"`` (full-sentence packing,
    no labels). ``sentence_pair_prob`` (mlm+nsp only): the chance that a training sentence also starts a
    one-sentence pair (A = the sentence, B = the next one or a random other document's; see
    :func:`~bert.data.examples.create_sentence_pairs`).
    ``progress=None`` shows a bar for inputs of 4 MB or more. Problems with the input raise
    :class:`~bert.errors.BertError`; repaired or skipped input (invalid UTF-8, empty documents, a single-document
    corpus) gives a :class:`~bert.data.corpus.CorpusWarning`.
    """
    # Over ~60 lines only by its docstring; the body is the plan, each step a function.
    # Check everything that can be checked before the (long) read.
    cfg = config or PrepareConfig(**settings)
    cfg.validate()
    objective, max_seq_len, seed, dupe_factor = cfg.objective, cfg.max_seq_len, cfg.seed, cfg.dupe_factor
    short_seq_prob, sentence_pair_prob, eval_fraction = cfg.short_seq_prob, cfg.sentence_pair_prob, cfg.eval_fraction
    eval_files, format, sentence_split = cfg.eval_files, cfg.format, cfg.sentence_split
    paths = corpus_inputs(files, cfg.dataset, cfg.split)
    eval_paths = expand_inputs(eval_files) if eval_files else []
    if eval_paths:
        eval_fraction = 0.0
    out = Path(out_dir)
    _check_output(out, overwrite)
    tok = _load_tokenizer(tokenizer)

    # Read and tokenize; split the documents into training and evaluation sentence ranges.
    names = ", ".join(describe(p) for p in paths)
    corpus, stats = _tokenize_files(paths, format, cfg.text_column, sentence_split, tok, progress)
    _check_corpus(corpus, names)
    eval_corpus = (_tokenize_files(eval_paths, format, cfg.text_column, sentence_split, tok, False)[0]
                   if eval_paths else None)
    rng = random.Random(seed)
    split_corpus, split_ranges = _split_documents(corpus, eval_corpus, eval_fraction, rng)

    # Make the examples of each split; describe them and write.
    if objective == "mlm":
        # An evaluation file set is packed by its own seeded RNG: the same held-out sequences whatever the training
        # files, so runs adapted on different text are measured on the same examples.
        examples, summaries = _packed_examples(split_corpus, split_ranges, max_seq_len, dupe_factor, tok,
                                               {"train": rng, "eval": random.Random(seed) if eval_paths else rng})
    else:
        examples = _sentence_pairs(corpus, split_corpus, split_ranges, max_seq_len, short_seq_prob, dupe_factor,
                                   eval_fraction, names, rng, sentence_order=objective == "mlm+sop",
                                   sentence_pair_prob=sentence_pair_prob)
        summaries = {split: _split_summary(examples[split], len(split_ranges[split]), objective) for split in SPLITS}
    meta = _meta(tok, objective=objective, max_seq_len=max_seq_len, seed=seed, short_seq_prob=short_seq_prob,
                 sentence_pair_prob=sentence_pair_prob, dupe_factor=dupe_factor, eval_fraction=eval_fraction,
                 input_format=format, text_column=cfg.text_column,
                 dataset=f"{cfg.dataset} ({cfg.split})" if cfg.dataset else None,
                 sentence_split=sentence_split, paths=paths, eval_paths=eval_paths,
                 stats=stats, corpus=corpus, summaries=summaries)
    write = partial(_write_data, objective=objective, examples=examples, split_corpus=split_corpus,
                    max_seq_len=max_seq_len, tok=tok, meta=meta)
    replace_folder_atomically(out, write)  # OUT is the whole old folder or the whole new one at every instant
    return meta


def _tokenize_files(paths: list[Any], fmt: str, text_column: str, sentence_split: bool, tok: FastTokenizer,
                    progress: bool | None) -> tuple[TokenizedCorpus, ReadStats]:
    """Read ``paths`` (files and tables in memory) in parts of :data:`PART_CHARS` characters and tokenize them,
    with a progress bar over the bytes read if ``progress`` (None: from :data:`PROGRESS_MIN_BYTES` on); warns about
    invalid UTF-8 and long lines at the caller's caller."""
    stats = ReadStats()
    total_bytes = sum(stored_bytes(p) for p in paths)
    show = progress if progress is not None else total_bytes >= PROGRESS_MIN_BYTES
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="tokenizing", leave=False)
    try:
        documents = iter_documents(paths, fmt, text_column=text_column, sentence_split=sentence_split, stats=stats,
                                   progress=bar, part_chars=PART_CHARS)
        corpus = tokenize_documents(documents, tok.backend)
    finally:
        if bar is not None:
            bar.close()
    stats.warn_invalid_bytes(stacklevel=4)  # this function -> prepare_pretraining_data -> its caller
    stats.warn_long_lines(stacklevel=4)
    return corpus, stats


def _check_corpus(corpus: TokenizedCorpus, names: str) -> None:
    """Warn about documents without tokens (dropped); :class:`BertError` if none is left."""
    if corpus.empty_documents:
        warnings.warn(
            f"skipped {corpus.empty_documents} document(s) that contain no tokens", CorpusWarning, stacklevel=3
        )
    if corpus.num_documents == 0:
        raise BertError(f"no text found in {names}: the corpus is empty")


def _split_documents(
    corpus: TokenizedCorpus, eval_corpus: TokenizedCorpus | None, eval_fraction: float, rng: random.Random
) -> tuple[dict[str, TokenizedCorpus], dict[str, list[tuple[int, int]]]]:
    """The corpus and the (first, last) sentence ranges of the documents of each split: ``corpus``'s documents in
    an order shuffled by ``rng``, the first :func:`num_eval_documents` of them held out for evaluation; or, with
    ``eval_corpus``, every document of ``corpus`` for training and every one of ``eval_corpus`` (in file order)
    for evaluation (the shuffle is drawn either way)."""
    order = list(range(corpus.num_documents))
    rng.shuffle(order)
    n_eval = num_eval_documents(corpus.num_documents, eval_fraction)
    doc_offsets = corpus.document_offsets.tolist()
    ranges = [(doc_offsets[d], doc_offsets[d + 1]) for d in order]
    split_ranges = {"eval": ranges[:n_eval], "train": ranges[n_eval:]}
    split_corpus = {"train": corpus, "eval": corpus}
    if eval_corpus is not None:
        split_corpus["eval"] = eval_corpus
        offsets = eval_corpus.document_offsets.tolist()
        split_ranges["eval"] = [(offsets[d], offsets[d + 1]) for d in range(eval_corpus.num_documents)]
    return split_corpus, split_ranges


def _packed_examples(split_corpus: dict[str, TokenizedCorpus], split_ranges: dict[str, list[tuple[int, int]]],
                     max_seq_len: int, dupe_factor: int, tok: FastTokenizer,
                     split_rng: dict[str, random.Random]
                     ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, dict[str, Any]]]:
    """Each split's full-sentence packed rows and their lengths (:func:`~bert.data.packing.pack_full_sentences`;
    ``dupe_factor`` passes over the training documents, one over the evaluation ones), and its counts."""
    packed = {split: pack_full_sentences(split_corpus[split].tokens, split_corpus[split].segment_offsets,
                                         split_ranges[split], max_seq_len, cls_id=tok.cls_token_id,
                                         sep_id=tok.sep_token_id, pad_id=tok.pad_token_id,
                                         dupe_factor=dupe_factor if split == "train" else 1, rng=split_rng[split])
              for split in SPLITS}
    summaries = {split: {"documents": len(split_ranges[split]), "examples": len(packed[split][1]),
                         "tokens": int(packed[split][1].sum())} for split in SPLITS}
    return packed, summaries


def _meta(tok: FastTokenizer, *, objective: str, max_seq_len: int, seed: int, short_seq_prob: float,
          sentence_pair_prob: float, dupe_factor: int, eval_fraction: float, input_format: str, text_column: str,
          dataset: str | None, sentence_split: bool, paths: list[Any], eval_paths: list[Any], stats: ReadStats,
          corpus: TokenizedCorpus, summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The contents of ``meta.json``: the format, the settings, the tokenizer's ids, the sources and the counts
    (its key order is part of the file's bytes)."""
    return {
        "format": "bert-pretraining-data",
        "objective": objective,
        "version": DATA_FORMAT_VERSION,
        "max_seq_len": max_seq_len,
        "vocab_size": tok.vocab_size,
        "input_ids_dtype": ids_dtype(tok.vocab_size).name,
        "do_lower_case": tok.do_lower_case,
        "special_token_ids": {
            "pad": tok.pad_token_id,
            "unk": tok.unk_token_id,
            "cls": tok.cls_token_id,
            "sep": tok.sep_token_id,
            "mask": tok.mask_token_id,
        },
        "seed": seed,
        "short_seq_prob": short_seq_prob,
        "sentence_pair_prob": sentence_pair_prob,
        "dupe_factor": dupe_factor,
        "eval_fraction": eval_fraction,
        "input_format": input_format,
        "text_column": text_column,
        "dataset": dataset,
        "sentence_split": sentence_split,
        "source_files": [_source(p) for p in paths],
        "eval_files": [_source(p) for p in eval_paths],
        "corpus": {
            "lines": stats.lines,
            "documents": corpus.num_documents,
            "sentences": corpus.num_segments,
            "tokens": corpus.num_tokens,
            "empty_documents_skipped": corpus.empty_documents,
            "invalid_utf8_bytes": sum(stats.invalid_bytes.values()),
        },
        "splits": summaries,
        # what a model scores before it uses the context (bert.data.plateau): pretraining's log and curves show it
        "unigram": unigram_stats(corpus.tokens, tok.vocab_size, tok.all_special_ids),
    }


def _source(source: Any) -> dict[str, Any]:
    """How ``meta.json`` lists an input: a file's path and size, a table in memory's kind and rows."""
    if isinstance(source, Path):
        return {"path": str(source.resolve()), "bytes": source.stat().st_size}
    return {"table": describe(source), "rows": len(source)}


def _write_data(tmp: Path, *, objective: str, examples: dict[str, Any], split_corpus: dict[str, TokenizedCorpus],
                max_seq_len: int, tok: FastTokenizer, meta: dict[str, Any]) -> None:
    """Write both splits (packed rows, or sentence pairs expanded from their spans), the tokenizer and, last,
    ``meta.json`` into the folder ``tmp``."""
    for split in SPLITS:
        if objective == "mlm":
            write_rows(tmp / split, *examples[split], vocab_size=tok.vocab_size)
        else:
            write_split(tmp / split, split_corpus[split].tokens, examples[split], max_seq_len=max_seq_len,
                        cls_id=tok.cls_token_id, sep_id=tok.sep_token_id, pad_id=tok.pad_token_id,
                        vocab_size=tok.vocab_size)
    tok.save_pretrained(tmp / TOKENIZER_DIR)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_meta(data_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``meta.json`` of a prepared folder; :class:`BertError` if it is missing (prepare never finished)."""
    path = Path(data_dir) / META_FILE
    if not path.is_file():
        raise BertError(f"{data_dir} holds no prepared data ({META_FILE} missing); run `bert prepare` first")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BertError(f"cannot read {path}: {error}") from None
    return meta
