"""Training a WordPiece vocabulary for BERT on your own corpus (``bert train-tokenizer``).

The pipeline is the one of ``tokenizers``' ``BertWordPieceTokenizer`` and of the released BERT vocabularies:
BERT normaliser (clean-up, CJK spacing, lower-casing and accent stripping unless cased), BERT pre-tokeniser
(split on whitespace and punctuation), WordPiece with ``##`` continuation pieces. The special tokens come
first, so ``[PAD]`` is id 0 as in bert-base (which the embedding's padding row assumes): ``[PAD]`` 0,
``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3, ``[MASK]`` 4.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import WordPiece

from bert.atomic import check_writable_directory
from bert.data.config import TokenizerTrainingConfig
from bert.data.corpus import FORMATS, ReadStats, corpus_inputs, iter_documents
from bert.data.rows import describe, stored_bytes
from bert.errors import BertError

if TYPE_CHECKING:
    from bert.tokenizer.wordpiece import BertTokenizer

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _batches(documents: Iterator[list[str]], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for document in documents:
        batch.extend(document)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _wordpiece_trainer(vocab_size: int, lowercase: bool, min_frequency: int, limit_alphabet: int,
                       extra_specials: Sequence[str] = ()) -> tuple[Tokenizer, trainers.WordPieceTrainer]:
    """An empty WordPiece tokenizer with BERT's normaliser, pre-tokenizer and decoder, and its trainer (which
    numbers BERT's special tokens, then ``extra_specials``, first)."""
    backend = Tokenizer(WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                    lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=[*SPECIAL_TOKENS, *extra_specials],
                                        limit_alphabet=limit_alphabet, continuing_subword_prefix="##",
                                        show_progress=False)
    return backend, trainer


def train_tokenizer(files: Sequence[str | os.PathLike], vocab_size: int, out_dir: str | os.PathLike,
                    config: TokenizerTrainingConfig | None = None, *, limit_alphabet: int = 1000,
                    **settings: Any) -> BertTokenizer:
    """Train a WordPiece vocabulary of (at most) ``vocab_size`` tokens on ``files`` (files, folders, tables in memory:
    see :func:`~bert.data.corpus.iter_documents`); write ``vocab.txt``, ``tokenizer.json`` and
    ``tokenizer_config.json`` into ``out_dir`` and return the loaded :class:`~bert.tokenizer.wordpiece.BertTokenizer`.

    The settings are ``config``'s, or :class:`~bert.data.config.TokenizerTrainingConfig`'s fields as keywords:
    ``cased=True`` trains a cased vocabulary (no lower-casing, accents kept); ``min_frequency``: a pair must
    occur this often to be merged; ``format``, ``text_column``, ``dataset``, ``split``: what is read and how
    (:class:`~bert.data.config.CorpusReading`; WikiText headings are left out and its ``@-@`` artefacts undone).
    ``limit_alphabet``: most distinct characters kept (as in BertWordPieceTokenizer). The result may be smaller than
    ``vocab_size`` when the corpus has fewer distinct pieces.
    """
    from bert.tokenizer.wordpiece import BertTokenizer

    cfg = config or TokenizerTrainingConfig(**settings)
    lowercase, min_frequency, format = not cfg.cased, cfg.min_frequency, cfg.format
    if format not in FORMATS:
        raise BertError(f"unknown corpus format {format!r}; use one of {', '.join(FORMATS)}")
    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise BertError(f"--vocab-size must be larger than the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    if min_frequency < 1:
        raise BertError(f"--min-frequency must be at least 1, got {min_frequency}")
    paths = corpus_inputs(files, cfg.dataset, cfg.split)

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BertError(f"output {out} exists and is not a folder")
    check_writable_directory(out, create=False)  # before training, not after

    stats = ReadStats()

    def documents(stats: ReadStats | None = None) -> Iterator[list[str]]:
        # Sentence splitting does not matter for counting pieces; lines are handed over as they are.
        return iter_documents(paths, format, text_column=cfg.text_column, sentence_split=False, stats=stats,
                              part_chars=4 << 20)

    # Two passes, for a vocabulary that is the same from one training to the next. tokenizers' trainer numbers the
    # "##" characters in hash-map order, which changes between trainings, and breaks ties between equally frequent
    # merges by those numbers (huggingface/tokenizers#1794): the same corpus could give other pieces, or the same
    # pieces under other ids (another embedding row each, so another run). The first pass, with no merges, finds
    # the "##" characters; the second is handed them, sorted, as extra special tokens, which it numbers first.
    backend, trainer = _wordpiece_trainer(len(SPECIAL_TOKENS) + 1, lowercase, min_frequency, limit_alphabet)
    backend.train_from_iterator(_batches(documents(stats)), trainer=trainer)
    stats.warn_invalid_bytes()
    stats.warn_long_lines()
    if stats.sentences == 0:
        raise BertError(f"no text found in {', '.join(describe(p) for p in paths)}: cannot train a tokenizer on "
                        "nothing")
    continuation = sorted(piece for piece in backend.get_vocab() if piece.startswith("##") and len(piece) == 3)
    backend, trainer = _wordpiece_trainer(vocab_size, lowercase, min_frequency, limit_alphabet, continuation)
    backend.train_from_iterator(_batches(documents()), trainer=trainer)
    backend = _in_fixed_order(backend)

    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer = BertTokenizer(backend, do_lower_case=lowercase, source="trained tokenizer")
    tokenizer.save_pretrained(out)
    return BertTokenizer.from_pretrained(out)


def _in_fixed_order(backend: Tokenizer) -> Tokenizer:
    """``backend`` with the special tokens, then the single characters (word starts, then ``##`` ones, each
    sorted), then the longer pieces in the order they were learned; only BERT's special tokens stay special (the
    ``##`` characters were special only for the training)."""
    spec = json.loads(backend.to_str())
    vocab = spec["model"]["vocab"]

    def place(piece: str) -> tuple[bool, bool, int, str]:
        longer = len(piece.removeprefix("##")) > 1
        return longer, piece.startswith("##"), vocab[piece] if longer else 0, piece

    ordinary = sorted(set(vocab) - set(SPECIAL_TOKENS), key=place)
    spec["model"]["vocab"] = {piece: i for i, piece in enumerate([*SPECIAL_TOKENS, *ordinary])}
    spec["added_tokens"] = [token for token in spec["added_tokens"] if token["content"] in SPECIAL_TOKENS]
    return Tokenizer.from_str(json.dumps(spec))


COUNT_LIMIT_BYTES = 256 << 20  # corpora up to this size are counted for bert train-tokenizer's advice


def count_tokens(files: Sequence[str | os.PathLike], tokenizer: BertTokenizer,
                 config: TokenizerTrainingConfig | None = None) -> int | None:
    """How many pieces ``tokenizer`` cuts the text of ``files`` (read as ``config`` says, as for
    :func:`train_tokenizer`) into (no special tokens); None for corpora over :data:`COUNT_LIMIT_BYTES`, where the
    count would take minutes and a vocabulary's size rarely needs advice."""
    cfg = config or TokenizerTrainingConfig()
    paths = corpus_inputs(files, cfg.dataset, cfg.split)
    if sum(stored_bytes(p) for p in paths) > COUNT_LIMIT_BYTES:
        return None
    total = 0
    documents = iter_documents(paths, cfg.format, text_column=cfg.text_column, sentence_split=False,
                               part_chars=4 << 20)
    for batch in _batches(documents):
        total += sum(len(ids) for ids in tokenizer(batch, add_special_tokens=False)["input_ids"])
    return total
