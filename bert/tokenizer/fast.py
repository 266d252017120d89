"""The tokenizer every model family shares (:class:`FastTokenizer`): a ``tokenizers.Tokenizer`` behind
transformers' call API (special tokens, truncation, padding, tensors), decoding, lookups, special-token properties
and saving. :mod:`bert.tokenizer.wordpiece` adds BERT's WordPiece, :mod:`bert.variants.tokenizers` RoBERTa's
byte-level BPE and ALBERT's SentencePiece unigram."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from tokenizers import Encoding, Tokenizer, processors

from bert.atomic import write_file_atomically, write_text_atomically
from bert.errors import BertError
from bert.tokenizer import arguments, batch
from bert.tokenizer.arguments import TextInput
from bert.tokenizer.files import (
    DEFAULT_MODEL_MAX_LENGTH,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
    config_max_length,
    config_token,
    load_tokenizer_file,
    locate,
    lowercases,
    read_json,
)
from bert.tokenizer.specials import (
    BERT_ROLES,
    BERT_SPECIALS,
    SpecialToken,
    bert_template,
    distinct_roles,
    role_tokens,
    special_token_ids,
)
from bert.tokenizer.truncation import longest_first_lengths, truncate

# Same replacements, in the same order, as transformers' ``clean_up_tokenization``.
_CLEANUPS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def as_id_list(ids: Any) -> list[int]:
    """Accept an int, a list/tuple of ints, or a tensor/array (anything with ``tolist``)."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    return [int(i) for i in ids]


Self = TypeVar("Self", bound="FastTokenizer")


class FastTokenizer:
    """What every tokenizer of this package shares, on top of a ``tokenizers.Tokenizer``: the transformers-style call
    (special tokens, truncation, padding, tensors), decoding, lookups, special-token properties and saving.

    A model family sets the class attributes (its special tokens, the inputs its model reads, the files it loads
    from), the post-processor that lays out the special tokens (:meth:`post_processor`) and, where it differs from
    the ``tokenizers`` library's, its pair-truncation rule (:meth:`truncated_lengths`).
    """

    model_name: ClassVar[str] = "this model"
    special_roles: ClassVar[tuple[str, ...]] = BERT_ROLES  # in the order of ``all_special_tokens``
    default_specials: ClassVar[dict[str, str]] = BERT_SPECIALS
    model_input_names: ClassVar[tuple[str, ...]] = ("input_ids", "token_type_ids", "attention_mask")
    expected_files: ClassVar[str] = TOKENIZER_FILE  # what a tokenizer folder holds, for messages
    clean_up_tokenization_spaces: ClassVar[bool] = False  # transformers' cleanup after decoding

    # The special-token properties, all read from the role tables _special_tokens / _special_ids. bos and eos
    # (RoBERTa's <s> and </s>, ALBERT's [CLS] and [SEP]) are None for BERT.
    bos_token = SpecialToken[str | None]("bos", as_id=False, optional=True)
    eos_token = SpecialToken[str | None]("eos", as_id=False, optional=True)
    cls_token = SpecialToken[str]("cls", as_id=False)
    sep_token = SpecialToken[str]("sep", as_id=False)
    pad_token = SpecialToken[str]("pad", as_id=False)
    mask_token = SpecialToken[str]("mask", as_id=False)
    unk_token = SpecialToken[str]("unk", as_id=False)
    cls_token_id = SpecialToken[int]("cls", as_id=True)
    sep_token_id = SpecialToken[int]("sep", as_id=True)
    pad_token_id = SpecialToken[int]("pad", as_id=True)
    mask_token_id = SpecialToken[int]("mask", as_id=True)
    unk_token_id = SpecialToken[int]("unk", as_id=True)

    def __init__(
        self,
        backend: Tokenizer,
        *,
        do_lower_case: bool | None = None,
        model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
        special_tokens: dict[str, str] | None = None,
        source: str = "tokenizer",
    ) -> None:
        """Wrap a ready ``tokenizers.Tokenizer``; prefer :meth:`from_pretrained`.

        ``special_tokens`` maps the roles of ``special_roles`` to their strings (``default_specials`` otherwise);
        ``do_lower_case`` None reads it from the backend's normaliser; ``source`` names the file(s) the tokenizer
        came from, for error messages.
        """
        self._backend = backend
        # Padding and truncation are done here; a tokenizer.json may have them switched on.
        self._backend.no_padding()
        self._backend.no_truncation()
        self._do_lower_case = lowercases(backend) if do_lower_case is None else bool(do_lower_case)
        self.model_max_length = int(model_max_length)
        self._special_tokens = role_tokens(self.special_roles, self.default_specials, special_tokens)
        self._special_ids = special_token_ids(self._special_tokens, backend.token_to_id, source=source,
                                              model_name=self.model_name, expected_files=self.expected_files)
        self._backend.post_processor = self.post_processor()
        # Texts are encoded by a copy without the post-processor, which __call__ applies once to each (truncated)
        # text or pair: some processors change offsets even when they add no tokens (RoBERTa's trims the space in
        # front of a word), so encoding with it and then post-processing would apply that twice.
        self._encoder = Tokenizer.from_str(self._backend.to_str())
        self._encoder.post_processor = None
        self._frames: dict[bool, Encoding] = {}  # see _frame

    def post_processor(self) -> processors.PostProcessor:
        """How special tokens frame one text or a pair: BERT's template unless a model family says otherwise."""
        return bert_template((self.cls_token, self.cls_token_id), (self.sep_token, self.sep_token_id))

    @staticmethod
    def truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
        """The lengths two segments keep under ``truncation="longest_first"`` (the ``tokenizers`` library's rule)."""
        return longest_first_lengths(len_a, len_b, budget)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(cls: type[Self], name_or_path: str | os.PathLike) -> Self:
        """Load from a model folder (its tokenizer files + optional ``tokenizer_config.json``), a file in it, or a
        model name resolved by :func:`bert.hub.resolve_model_dir`."""
        folder, file = locate(name_or_path, cls.expected_files)
        config: dict[str, Any] = {}
        if (folder / TOKENIZER_CONFIG_FILE).is_file():
            config = read_json(folder / TOKENIZER_CONFIG_FILE)
        specials = {role: config_token(config.get(f"{role}_token"), cls.default_specials[role])
                    for role in cls.special_roles}
        return cls.from_folder(folder, file, config, model_max_length=config_max_length(config),
                               special_tokens=specials)

    @classmethod
    def from_folder(cls: type[Self], folder: Path, file: Path | None, config: dict[str, Any], *,
                    model_max_length: int, special_tokens: dict[str, str]) -> Self:
        """Build from the files of ``folder`` (or the one ``file`` named); ``config``: its tokenizer_config.json.
        Here: tokenizer.json only; model families with other files override this."""
        path = file or folder / TOKENIZER_FILE
        if not path.is_file():
            raise BertError(f"no {cls.expected_files} in {folder}; copy the model's tokenizer files there")
        backend = load_tokenizer_file(path, "re-download it")
        return cls(backend, model_max_length=model_max_length, special_tokens=special_tokens, source=str(path))

    # ------------------------------------------------------------------ encoding

    def __call__(
        self,
        text: TextInput,
        text_pair: TextInput | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
    ) -> dict[str, Any]:
        """Encode one text (or pair) or a batch of them.

        Args:
            text: a string, or a list of strings (a batch).
            text_pair: the second segment(s), same shape as ``text``.
            padding: ``False``; ``True``/``"longest"`` pads to the longest in the batch; ``"max_length"`` pads
                to ``max_length``. Pads with the pad token, ``token_type_id`` 0, ``attention_mask`` 0, on the right.
            truncation: cut to ``max_length`` (default ``model_max_length``), counting special tokens. ``True`` or
                ``"longest_first"`` cuts pairs from the longer segment (see :meth:`truncated_lengths`);
                ``"only_first"`` / ``"only_second"`` cut only that segment.
            return_tensors: ``None`` for Python lists, ``"pt"`` for 2-D ``torch.long`` tensors (a single text
                gets batch dimension 1).
            return_offsets_mapping: add ``offset_mapping``, ``(start, end)`` character offsets of each token
                into its segment's original string; ``(0, 0)`` for special and pad tokens.
            return_special_tokens_mask: add ``special_tokens_mask``: 1 for the special and pad tokens added here.

        Returns:
            dict with ``input_ids``, ``token_type_ids`` (where the model reads them), ``attention_mask`` (+ the
            optional keys): flat lists for a single text, lists of lists for a batch.
        """
        batched, texts, pairs = arguments.texts_and_pairs(text, text_pair)
        pad_mode = arguments.padding_mode(padding, max_length)
        strategy = arguments.truncation_strategy(truncation)
        arguments.check_max_length(max_length)
        arguments.check_return_tensors(return_tensors)
        cut = None if strategy is None else (self._budget(max_length, pairs is not None, add_special_tokens), strategy)

        keys = batch.output_keys(self.model_input_names, return_offsets_mapping, return_special_tokens_mask)
        out = self._encode_rows(texts, pairs, keys, cut, add_special_tokens)
        if pad_mode is not None and out["input_ids"]:
            longest = max(len(ids) for ids in out["input_ids"])
            target = max_length if pad_mode == "max_length" and max_length is not None else longest
            batch.pad_rows(out, target, self.pad_token_id)
        if return_tensors == "pt":
            return batch.as_tensors(out)
        return out if batched else {key: rows[0] for key, rows in out.items()}

    def _budget(self, max_length: int | None, pair: bool, add_special_tokens: bool) -> int:
        """How many tokens the text(s) may keep: ``max_length`` (or ``model_max_length``) less the special tokens."""
        limit = max_length if max_length is not None else self.model_max_length
        n_special = self._backend.num_special_tokens_to_add(pair) if add_special_tokens else 0
        if limit < n_special:
            raise BertError(f"max_length={limit} cannot hold the {n_special} special tokens; use a larger value")
        return limit - n_special

    def _encode_rows(self, texts: list[str], pairs: list[str] | None, keys: list[str], cut: tuple[int, str] | None,
                     add_special_tokens: bool) -> dict[str, list[list[Any]]]:
        """The ``keys`` of each text (or pair), cut to ``cut``'s (budget of tokens, truncation strategy) and framed
        by the special tokens."""
        enc_a = self._encoder.encode_batch(texts, add_special_tokens=False)
        enc_b = self._encoder.encode_batch(pairs, add_special_tokens=False) if pairs is not None else None
        out: dict[str, list[list[Any]]] = {key: [] for key in keys}
        for i, ea in enumerate(enc_a):
            eb = enc_b[i] if enc_b is not None else None
            if cut is not None:
                truncate(ea, eb, *cut, self.truncated_lengths)
            # The special tokens and segment ids come from the post-processor, as in the Rust pipeline.
            row = self._backend.post_process(ea, eb, add_special_tokens=add_special_tokens)
            values = {"input_ids": row.ids, "token_type_ids": row.type_ids, "attention_mask": [1] * len(row.ids),
                      "offset_mapping": [tuple(o) for o in row.offsets],
                      "special_tokens_mask": row.special_tokens_mask}
            for key in keys:
                out[key].append(list(values[key]))
        return out

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        *,
        truncation: bool | str = False,
        max_length: int | None = None,
    ) -> list[int]:
        """Token ids of one text (or pair), with the special tokens unless ``add_special_tokens=False``."""
        return self(
            text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation, max_length=max_length
        )["input_ids"]

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` without special tokens, e.g. ``["un", "##aff", "##able"]`` for BERT."""
        return self._backend.encode(text, add_special_tokens=False).tokens

    def encode_words(self, words: Sequence[str]) -> Encoding:
        """The tokens of text already split into words (a CoNLL sentence), without special tokens; the encoding's
        ``word_ids`` give each token's word index, so labels align to words whatever the tokenizer's kind."""
        return self._backend.encode(list(words), is_pretokenized=True, add_special_tokens=False)

    # The special-token layout as the post-processor makes it (BERT's [CLS] A [SEP] B [SEP], RoBERTa's
    # <s> A </s></s> B </s>), for code that assembles token ids itself (windows over long NER/QA inputs).

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens frame one text (``pair=False``) or a pair."""
        return self._backend.num_special_tokens_to_add(pair)

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None
                                         ) -> list[int]:
        """Token ids [T] of one segment (or two) framed by the model's special tokens."""
        return self._frame(token_ids_0, token_ids_1)[0]

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None
                                             ) -> list[int]:
        """The segment ids [T] of :meth:`build_inputs_with_special_tokens`'s output (all 0 for RoBERTa)."""
        return self._frame(token_ids_0, token_ids_1)[1]

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """1 at the special tokens of :meth:`build_inputs_with_special_tokens`'s output, 0 at the segments' tokens."""
        return self._frame(token_ids_0, token_ids_1)[2]

    def _frame(self, ids_a: list[int], ids_b: list[int] | None) -> tuple[list[int], list[int], list[int]]:
        """(ids, type ids, special mask) of the segments framed as the post-processor frames them. The frame is
        read off the post-processor once per kind, with a one-token segment standing in for each real one."""
        pair = ids_b is not None
        if pair not in self._frames:
            marker = self._encoder.encode(self.unk_token, add_special_tokens=False)  # one token: a special
            self._frames[pair] = self._backend.post_process(marker, marker if pair else None)
        frame = self._frames[pair]
        segments = iter([ids_a, ids_b] if pair else [ids_a])
        ids: list[int] = []
        types: list[int] = []
        mask: list[int] = []
        for token_id, type_id, special in zip(frame.ids, frame.type_ids, frame.special_tokens_mask, strict=True):
            part = [token_id] if special else list(next(segments))
            ids += part
            types += [type_id] * len(part)
            mask += [special] * len(part)
        return ids, types, mask

    # ------------------------------------------------------------------ decoding and lookup

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        """Turn ids back into text (:meth:`ids_to_text`), then apply transformers' spacing cleanup (no space before
        punctuation and contractions) where the model family uses it. What the normaliser removed (case, accents)
        and the exact original spacing cannot be undone."""
        text = self.ids_to_text(as_id_list(ids), skip_special_tokens)
        if self.clean_up_tokenization_spaces:
            for before, after in _CLEANUPS:
                text = text.replace(before, after)
        return text

    def ids_to_text(self, ids: list[int], skip_special_tokens: bool) -> str:
        """The text of ``ids`` before the cleanup: here the backend's decoder, which also drops special tokens."""
        return self._backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """Token string(s) for id(s); an int gives a str, a list gives a list."""
        single = isinstance(ids, int)
        tokens = []
        for i in as_id_list(ids):
            token = self._backend.id_to_token(i) if i >= 0 else None
            if token is None:
                raise BertError(f"token id {i} is outside the vocabulary (size {self.vocab_size})")
            tokens.append(token)
        return tokens[0] if single else tokens

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Id(s) for token string(s); unknown tokens map to ``unk_token_id``. A str gives an int."""
        unk = self.unk_token_id
        if isinstance(tokens, str):
            found = self._backend.token_to_id(tokens)
            return unk if found is None else found
        return [unk if (found := self._backend.token_to_id(t)) is None else found for t in tokens]

    def get_vocab(self) -> dict[str, int]:
        """Token -> id for the whole vocabulary (a fresh dict)."""
        return self._backend.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"model_max_length={self.model_max_length})"
        )

    # ------------------------------------------------------------------ properties

    @property
    def backend(self) -> Tokenizer:
        """The underlying ``tokenizers.Tokenizer`` (no padding/truncation set), for fast bulk encoding."""
        return self._backend

    @property
    def vocab_size(self) -> int:
        """Number of ids, including added tokens: the embedding table needs this many rows."""
        return self._backend.get_vocab_size(with_added_tokens=True)

    @property
    def do_lower_case(self) -> bool:
        """Whether input is lower-cased (an *uncased* model)."""
        return self._do_lower_case

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of the special tokens, each once, in transformers' order."""
        return [self._special_ids[role] for role in distinct_roles(self._special_tokens)]

    @property
    def all_special_tokens(self) -> list[str]:
        """Strings of the special tokens, each once, in transformers' order."""
        return [self._special_tokens[role] for role in distinct_roles(self._special_tokens)]

    # ------------------------------------------------------------------ saving

    def tokenizer_config(self) -> dict[str, Any]:
        """What ``tokenizer_config.json`` says: the class transformers should build, lengths, special tokens."""
        return {
            "tokenizer_class": type(self).__name__,
            "do_lower_case": self.do_lower_case,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            **{f"{role}_token": token for role, token in self._special_tokens.items()},
        }

    def save_vocabulary(self, folder: Path) -> None:
        """Write the model family's own vocabulary files besides tokenizer.json (BERT's vocab.txt, ...)."""

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``tokenizer.json``, ``tokenizer_config.json`` and the family's vocabulary files into ``directory``
        (created if needed), loadable by :meth:`from_pretrained` and by transformers' ``AutoTokenizer``."""
        folder = Path(directory)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.save_vocabulary(folder)
            write_file_atomically(folder / TOKENIZER_FILE, lambda tmp: self._backend.save(str(tmp)))
            text = json.dumps(self.tokenizer_config(), indent=2, ensure_ascii=False) + "\n"
            write_text_atomically(folder / TOKENIZER_CONFIG_FILE, text)
        except OSError as exc:
            raise BertError(f"cannot save the tokenizer to {folder}: {exc}") from None
