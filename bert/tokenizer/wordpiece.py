"""BERT's WordPiece tokenizer (:class:`BertTokenizer`): built from a ``vocab.txt`` or read from a
``tokenizer.json``, with BERT's own pair truncation rule, WordPiece decoding and ``vocab.txt`` saving."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from bert.atomic import write_text_atomically
from bert.errors import BertError
from bert.tokenizer.fast import FastTokenizer
from bert.tokenizer.files import (
    DEFAULT_MODEL_MAX_LENGTH,
    TOKENIZER_FILE,
    VOCAB_FILE,
    backend_spec,
    load_tokenizer_file,
    load_vocab,
    looks_uncased,
)
from bert.tokenizer.specials import BERT_ROLES, BERT_SPECIALS, special_token_ids
from bert.tokenizer.truncation import bert_pair_lengths

MAX_INPUT_CHARS_PER_WORD = 100


class BertTokenizer(FastTokenizer):
    """WordPiece tokenizer for BERT models, API-compatible with ``transformers.BertTokenizerFast`` for common use.

    Build one with :meth:`from_pretrained` (a model folder or name) or :meth:`from_files` (explicit files).
    Calling it returns a dict with ``input_ids``, ``token_type_ids`` and ``attention_mask`` (plus
    ``offset_mapping`` / ``special_tokens_mask`` on request) as Python lists or, with ``return_tensors="pt"``,
    ``torch.long`` tensors. Pairs are truncated by BERT's own rule (see :meth:`truncated_lengths`).
    """

    model_name = "BERT"
    expected_files = f"{VOCAB_FILE}/{TOKENIZER_FILE}"
    clean_up_tokenization_spaces = True

    def __init__(
        self,
        backend: Tokenizer,
        *,
        do_lower_case: bool,
        model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
        special_tokens: dict[str, str] | None = None,
        source: str = "tokenizer",
    ) -> None:
        """Wrap a ready ``tokenizers.Tokenizer``; prefer :meth:`from_pretrained` / :meth:`from_files`.

        ``special_tokens`` maps the roles unk/sep/pad/cls/mask to their strings (defaults ``[UNK]`` etc.);
        ``source`` names the file(s) the tokenizer came from, for error messages.
        """
        super().__init__(backend, do_lower_case=do_lower_case, model_max_length=model_max_length,
                         special_tokens=special_tokens, source=source)

    @staticmethod
    def truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
        """BERT's pair rule (google-research/bert ``_truncate_seq_pair``), see
        :func:`bert.tokenizer.truncation.bert_pair_lengths`."""
        return bert_pair_lengths(len_a, len_b, budget)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_folder(cls, folder: Path, file: Path | None, config: dict[str, Any], *, model_max_length: int,
                    special_tokens: dict[str, str]) -> BertTokenizer:
        """``tokenizer.json`` is preferred when both it and ``vocab.txt`` exist."""
        if file is not None:
            files = {"tokenizer_file": file} if file.suffix == ".json" else {"vocab_file": file}
        elif (folder / TOKENIZER_FILE).is_file():
            files = {"tokenizer_file": folder / TOKENIZER_FILE}
        elif (folder / VOCAB_FILE).is_file():
            files = {"vocab_file": folder / VOCAB_FILE}
        else:
            raise BertError(f"no {TOKENIZER_FILE} or {VOCAB_FILE} in {folder}; copy the model's tokenizer files there")
        do_lower_case = config.get("do_lower_case")
        return cls.from_files(**files, do_lower_case=do_lower_case if isinstance(do_lower_case, bool) else None,
                              model_max_length=model_max_length, special_tokens=special_tokens)

    @classmethod
    def from_files(
        cls,
        vocab_file: str | os.PathLike | None = None,
        tokenizer_file: str | os.PathLike | None = None,
        do_lower_case: bool | None = None,
        *,
        model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
        special_tokens: dict[str, str] | None = None,
    ) -> BertTokenizer:
        """Build from a ``vocab.txt`` or a ``tokenizer.json`` (which wins if both are given).

        ``do_lower_case=None`` means: the tokenizer.json normaliser's setting, else inferred from the vocabulary
        (no upper-case tokens besides bracketed specials => uncased). An explicit value overrides the normaliser.
        """
        specials = {**BERT_SPECIALS, **(special_tokens or {})}
        if tokenizer_file is not None:
            backend, do_lower_case = cls._load_tokenizer_json(Path(tokenizer_file), do_lower_case)
            source = str(tokenizer_file)
        elif vocab_file is not None:
            source = str(vocab_file)
            vocab = load_vocab(Path(vocab_file))
            # Checked before the backend is built: registering the specials would add missing ones to the vocabulary.
            special_token_ids(specials, vocab.get, source=source, model_name="BERT", expected_files=VOCAB_FILE)
            if do_lower_case is None:
                do_lower_case = looks_uncased(vocab)
            backend = cls._build_backend(vocab, do_lower_case, specials)
        else:
            raise BertError("BertTokenizer.from_files needs vocab_file or tokenizer_file")
        return cls(backend, do_lower_case=do_lower_case, model_max_length=model_max_length, special_tokens=specials,
                   source=source)

    @staticmethod
    def _build_backend(vocab: dict[str, int], do_lower_case: bool, specials: dict[str, str]) -> Tokenizer:
        """The standard BERT pipeline: BertNormalizer -> BertPreTokenizer -> WordPiece, WordPiece decoder (the
        post-processor, BERT's template, is installed by :class:`FastTokenizer`)."""
        backend = Tokenizer(
            WordPiece(vocab, unk_token=specials["unk"], max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD)
        )
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=do_lower_case
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
        # Registering the specials keeps "[MASK]" written in the input text as one token, as in the reference.
        backend.add_special_tokens(
            [AddedToken(specials[role], special=True, normalized=False) for role in BERT_ROLES]
        )
        return backend

    @staticmethod
    def _load_tokenizer_json(path: Path, do_lower_case: bool | None) -> tuple[Tokenizer, bool]:
        """The backend of a WordPiece tokenizer.json and whether it lower-cases: an explicit ``do_lower_case``
        (from the caller or tokenizer_config.json) replaces the normaliser's setting."""
        backend = load_tokenizer_file(path, "re-download it, or delete it to use vocab.txt")
        if backend_spec(backend, "model").get("type") != "WordPiece":
            raise BertError(f"{path} does not hold a WordPiece model; BERT needs a WordPiece tokenizer.json")
        norm = backend_spec(backend, "normalizer")
        if norm.get("type") == "BertNormalizer":
            json_lower = bool(norm.get("lowercase", True))
            if do_lower_case is None:
                do_lower_case = json_lower
            elif do_lower_case != json_lower:
                backend.normalizer = normalizers.BertNormalizer(
                    clean_text=norm.get("clean_text", True),
                    handle_chinese_chars=norm.get("handle_chinese_chars", True),
                    strip_accents=norm.get("strip_accents"),
                    lowercase=do_lower_case,
                )
        if do_lower_case is None:
            do_lower_case = looks_uncased(backend.get_vocab(with_added_tokens=False))
        return backend, do_lower_case

    # ------------------------------------------------------------------ decoding and saving

    def ids_to_text(self, ids: list[int], skip_special_tokens: bool) -> str:
        """``##`` pieces glued to the previous token, other tokens joined by spaces (the reference's WordPiece
        decoding, whatever decoder a tokenizer.json names)."""
        if skip_special_tokens:
            special = set(self.all_special_ids)
            ids = [i for i in ids if i not in special]
        pieces: list[str] = []
        for token in self.convert_ids_to_tokens(ids):
            if token.startswith("##") and pieces:
                pieces[-1] += token[2:]
            else:
                pieces.append(token)
        return " ".join(pieces)

    def tokenizer_config(self) -> dict[str, Any]:
        return {**super().tokenizer_config(), "tokenize_chinese_chars": True, "strip_accents": None}

    def save_vocabulary(self, folder: Path) -> None:
        """``vocab.txt``: one token per line, the line number is the id."""
        vocab = self._backend.get_vocab(with_added_tokens=True)
        by_id = sorted(vocab.items(), key=lambda item: item[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise BertError("cannot write vocab.txt: the vocabulary ids are not contiguous from 0")
        write_text_atomically(folder / VOCAB_FILE, "".join(f"{tok}\n" for tok, _ in by_id))
