"""BERT's WordPiece tokenizer, built on the Rust `tokenizers` library, with a Hugging Face-compatible API.

How BERT turns text into ids
----------------------------
1. **Normalise** (``BertNormalizer``): drop control and zero-width characters, turn every whitespace character into a
   space, put spaces around CJK ideographs (so each becomes its own word) and, for *uncased* models, lower-case the text
   and strip accents (``"Café"`` -> ``"cafe"``).
2. **Pre-tokenise** (``BertPreTokenizer``): split on whitespace and split off every punctuation character.
3. **WordPiece**: split each word greedily into the longest vocabulary pieces, left to right. Pieces that continue a
   word carry a ``##`` prefix (``"unaffable"`` -> ``un ##aff ##able``). A word with no valid split, or longer than 100
   characters, becomes ``[UNK]``.
4. **Add special tokens**: a single text becomes ``[CLS] A [SEP]``; a pair (question + passage, premise + hypothesis)
   becomes ``[CLS] A [SEP] B [SEP]``. ``token_type_ids`` (segment ids) are 0 for ``[CLS] A [SEP]`` and 1 for
   ``B [SEP]``; ``attention_mask`` is 1 for real tokens and 0 for ``[PAD]`` tokens added to make a batch rectangular.

Steps 1-3 run in the fast Rust backend, and so does step 4 (the backend's post-processor, BERT's template installed
here); truncation and padding are done here in Python so that pair truncation follows the original BERT rule exactly
(google-research/bert ``_truncate_seq_pair``: while the pair is too long, drop the last token of the longer segment;
on a tie, of the second).

:class:`FastTokenizer` holds what does not depend on the model family (the call API, padding, tensors, lookups,
saving); :class:`BertTokenizer` adds WordPiece, and :mod:`bert.variants.tokenizers` RoBERTa's byte-level BPE and
ALBERT's SentencePiece unigram.

Usage mirrors ``transformers.BertTokenizer(Fast)`` so existing code moves over::

    tok = BertTokenizer.from_pretrained("weights/bert-base-uncased")
    batch = tok(["a question?", "another one"], padding=True, truncation=True, max_length=128, return_tensors="pt")
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from tokenizers import AddedToken, Encoding, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from bert.atomic import write_file_atomically, write_text_atomically
from bert.errors import BertError

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

DEFAULT_MODEL_MAX_LENGTH = 512
MAX_INPUT_CHARS_PER_WORD = 100

# Special-token roles, in the order Hugging Face lists them in ``all_special_tokens`` (BERT has no bos/eos).
_SPECIAL_ROLES = ("unk", "sep", "pad", "cls", "mask")
_DEFAULT_SPECIALS = {"unk": "[UNK]", "sep": "[SEP]", "pad": "[PAD]", "cls": "[CLS]", "mask": "[MASK]"}
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")

# Bracketed tokens such as [CLS] or [unused12] are ignored when guessing whether a vocabulary is cased.
_BRACKETED = re.compile(r"^\[[^\]]*\]$")

# Same replacements, in the same order, as transformers' ``clean_up_tokenization``.
_CLEANUPS = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)

TextInput = str | list[str] | tuple[str, ...]


def _truncate_pair(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths the two segments keep under BERT's ``_truncate_seq_pair`` rule, in closed form.

    The original loop pops the last token of the longer segment (of the second one on a tie) until
    ``len_a + len_b <= budget``. The shorter segment is untouched as long as it fits in half the budget;
    otherwise both end at ``budget // 2``, with the first segment keeping the odd token.
    """
    if len_a + len_b <= budget:
        return len_a, len_b
    shorter = min(len_a, len_b)
    if 2 * shorter <= budget:
        return (len_a, budget - len_a) if len_a < len_b else (budget - len_b, len_b)
    return (budget + 1) // 2, budget // 2


def _truncate_longest_first(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths the two segments keep under the ``tokenizers`` library's ``longest_first`` rule (what transformers'
    fast tokenizers do for every model but the original BERT code): when the shorter segment fits in half the
    budget only the longer one is cut; otherwise the shorter keeps ``budget // 2`` and the longer the rest (so, unlike
    BERT's rule, the odd token goes to the longer segment, or to the second one on a tie)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    swap = len_a > len_b
    short, long = (len_b, len_a) if swap else (len_a, len_b)
    if short > budget // 2:
        short, long = budget // 2, budget // 2 + budget % 2
    else:
        long = budget - short
    return (long, short) if swap else (short, long)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BertError(f"cannot read {path}: {exc}; fix or delete the file") from None
    if not isinstance(data, dict):
        raise BertError(f"{path} is not a JSON object; fix or delete the file")
    return data


def _load_vocab(path: Path) -> dict[str, int]:
    """Read a one-token-per-line vocab.txt; a token's id is its line number (0-based)."""
    if not path.is_file():
        raise BertError(f"vocabulary file {path} not found; pass the vocab.txt of the model")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise BertError(
            f"cannot read vocabulary file {path}: {exc}; it must be UTF-8 text, one token per line"
        ) from None
    if lines and lines[-1] == "":
        lines.pop()  # trailing newline
    vocab: dict[str, int] = {}
    for index, line in enumerate(lines):
        vocab[line.rstrip("\r")] = index
    if not vocab:
        raise BertError(f"vocabulary file {path} is empty; re-download the model's vocab.txt")
    return vocab


def _looks_uncased(vocab: dict[str, int] | Sequence[str]) -> bool:
    """A vocabulary with no upper-case tokens (other than bracketed specials like [CLS]) belongs to an uncased model."""
    return not any(tok != tok.lower() for tok in vocab if not _BRACKETED.match(tok))


def _config_token(value: Any, default: str) -> str:
    """Special tokens in tokenizer_config.json are strings or AddedToken dicts (``{"content": "[CLS]", ...}``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return default


def _as_id_list(ids: Any) -> list[int]:
    """Accept an int, a list/tuple of ints, or a tensor/array (anything with ``tolist``)."""
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    return [int(i) for i in ids]


Self = TypeVar("Self", bound="FastTokenizer")


def bert_template(backend: Tokenizer, cls_token: str, sep_token: str) -> processors.TemplateProcessing:
    """BERT's special-token layout (also ALBERT's and DistilBERT's): ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]``,
    segment ids 0 up to the first [SEP] and 1 after it."""
    ids = [(token, backend.token_to_id(token)) for token in (cls_token, sep_token)]
    return processors.TemplateProcessing(single=f"{cls_token}:0 $A:0 {sep_token}:0",
                                         pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
                                         special_tokens=ids)


def _locate(name_or_path: str | os.PathLike, expected: str) -> tuple[Path, Path | None]:
    """The tokenizer folder for a folder, a file in it, or a model name (see :func:`bert.hub.resolve_model_dir`),
    and the file when one was named. ``expected`` describes the files a folder needs, for the error message."""
    path = Path(os.path.expanduser(os.fspath(name_or_path)))
    if path.is_file():
        return path.parent, path
    if path.is_dir():
        return path, None
    if path.is_absolute() or os.fspath(name_or_path).startswith((".", "~")):
        raise BertError(f"tokenizer folder {path} not found; pass a folder containing {expected}")
    try:
        from bert.hub import resolve_model_dir
    except ImportError:
        raise BertError(f"tokenizer folder {path} not found; pass a folder containing {expected}") from None
    folder = Path(resolve_model_dir(name_or_path))
    return (folder.parent if folder.is_file() else folder), None  # a weights file: its tokenizer lives next to it


def _load_tokenizer_file(path: Path, advice: str) -> Tokenizer:
    if not path.is_file():
        raise BertError(f"tokenizer file {path} not found; pass the tokenizer.json of the model")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exception for any parse error
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BertError(f"{path} is not a valid tokenizer.json ({reason}); {advice}") from None


def _lowercases(backend: Tokenizer) -> bool:
    """Whether the backend's normaliser lower-cases (a Lowercase step, or BertNormalizer with lowercase on)."""
    spec = json.loads(backend.to_str()).get("normalizer") or {}
    steps = spec.get("normalizers", [spec]) if spec.get("type") == "Sequence" else [spec]
    return any(step.get("type") == "Lowercase" or (step.get("type") == "BertNormalizer" and step.get("lowercase"))
               for step in steps)


class FastTokenizer:
    """What every tokenizer of this package shares, on top of a ``tokenizers.Tokenizer``: the transformers-style call
    (special tokens, truncation, padding, tensors), decoding, lookups, special-token properties and saving.

    A model family sets the class attributes (its special tokens, the inputs its model reads, the files it loads
    from), the post-processor that lays out the special tokens (:meth:`post_processor`) and, where it differs from
    the ``tokenizers`` library's, its pair-truncation rule (:meth:`truncated_lengths`).
    """

    model_name: ClassVar[str] = "this model"
    special_roles: ClassVar[tuple[str, ...]] = _SPECIAL_ROLES  # in the order of ``all_special_tokens``
    default_specials: ClassVar[dict[str, str]] = _DEFAULT_SPECIALS
    model_input_names: ClassVar[tuple[str, ...]] = ("input_ids", "token_type_ids", "attention_mask")
    expected_files: ClassVar[str] = TOKENIZER_FILE  # what a tokenizer folder holds, for messages
    clean_up_tokenization_spaces: ClassVar[bool] = False  # transformers' cleanup after decoding

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
        self._do_lower_case = _lowercases(backend) if do_lower_case is None else bool(do_lower_case)
        self.model_max_length = int(model_max_length)
        self._special_tokens = {role: {**self.default_specials, **(special_tokens or {})}[role]
                                for role in self.special_roles}
        self._special_ids: dict[str, int] = {}
        missing = []
        for role, token in self._special_tokens.items():
            token_id = backend.token_to_id(token)
            if token_id is None:
                missing.append(token)
            else:
                self._special_ids[role] = token_id
        if missing:
            raise BertError(
                f"{source}: vocabulary lacks the special token(s) {', '.join(dict.fromkeys(missing))} that "
                f"{self.model_name} needs; use the {self.expected_files} that came with the model"
            )
        self._backend.post_processor = self.post_processor()
        # Texts are encoded by a copy without the post-processor, which __call__ applies once to each (truncated)
        # text or pair: some processors change offsets even when they add no tokens (RoBERTa's trims the space in
        # front of a word), so encoding with it and then post-processing would apply that twice.
        self._encoder = Tokenizer.from_str(self._backend.to_str())
        self._encoder.post_processor = None
        self._frames: dict[bool, Encoding] = {}  # see _frame

    def post_processor(self) -> processors.PostProcessor:
        """How special tokens frame one text or a pair: BERT's template unless a model family says otherwise."""
        return bert_template(self._backend, self.cls_token, self.sep_token)

    @staticmethod
    def truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
        """The lengths two segments keep under ``truncation="longest_first"`` (the ``tokenizers`` library's rule)."""
        return _truncate_longest_first(len_a, len_b, budget)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(cls: type[Self], name_or_path: str | os.PathLike) -> Self:
        """Load from a model folder (its tokenizer files + optional ``tokenizer_config.json``), a file in it, or a
        model name resolved by :func:`bert.hub.resolve_model_dir`."""
        folder, file = _locate(name_or_path, cls.expected_files)
        config: dict[str, Any] = {}
        if (folder / TOKENIZER_CONFIG_FILE).is_file():
            config = _read_json(folder / TOKENIZER_CONFIG_FILE)
        max_len = config.get("model_max_length")
        # transformers writes a huge sentinel (1e30) for "no limit"; the models' position tables have 512 rows.
        if not isinstance(max_len, int) or isinstance(max_len, bool) or not 0 < max_len <= 1_000_000:
            max_len = DEFAULT_MODEL_MAX_LENGTH
        specials = {role: _config_token(config.get(f"{role}_token"), cls.default_specials[role])
                    for role in cls.special_roles}
        return cls.from_folder(folder, file, config, model_max_length=max_len, special_tokens=specials)

    @classmethod
    def from_folder(cls: type[Self], folder: Path, file: Path | None, config: dict[str, Any], *,
                    model_max_length: int, special_tokens: dict[str, str]) -> Self:
        """Build from the files of ``folder`` (or the one ``file`` named); ``config``: its tokenizer_config.json.
        Here: tokenizer.json only; model families with other files override this."""
        path = file or folder / TOKENIZER_FILE
        if not path.is_file():
            raise BertError(f"no {cls.expected_files} in {folder}; copy the model's tokenizer files there")
        backend = _load_tokenizer_file(path, "re-download it")
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
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        pairs: list[str] | None = None
        if text_pair is not None:
            if isinstance(text_pair, (list, tuple)) != batched:
                raise BertError("text and text_pair must both be strings or both be lists of strings")
            pairs = list(text_pair) if batched else [text_pair]
            if len(pairs) != len(texts):
                raise BertError(f"text has {len(texts)} items but text_pair has {len(pairs)}; they must match")
        for item in texts + (pairs or []):
            if not isinstance(item, str):
                raise BertError(f"the tokenizer takes strings or lists of strings, got {type(item).__name__}")

        if padding in (True, "longest"):
            pad_mode = "longest"
        elif padding in (False, None, "do_not_pad"):
            pad_mode = None
        elif padding == "max_length":
            if max_length is None:
                raise BertError('padding="max_length" needs max_length=...; or use padding=True to pad to the longest')
            pad_mode = "max_length"
        else:
            raise BertError(f'padding must be False, True, "longest" or "max_length", not {padding!r}')
        if truncation not in (False, True, None, "do_not_truncate", *TRUNCATION_STRATEGIES):
            raise BertError(f"truncation must be True, False or one of {', '.join(TRUNCATION_STRATEGIES)}, "
                            f"not {truncation!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise BertError(f"max_length must be a non-negative integer, not {max_length!r}")
        if return_tensors not in (None, "pt"):
            raise BertError(f'return_tensors must be None or "pt", not {return_tensors!r}')

        limit: int | None = None
        strategy = "longest_first" if truncation is True else truncation
        if strategy in TRUNCATION_STRATEGIES:
            limit = max_length if max_length is not None else self.model_max_length
            n_special = self._backend.num_special_tokens_to_add(pairs is not None) if add_special_tokens else 0
            if limit < n_special:
                raise BertError(f"max_length={limit} cannot hold the {n_special} special tokens; use a larger value")
            limit -= n_special

        enc_a = self._encoder.encode_batch(texts, add_special_tokens=False)
        enc_b = self._encoder.encode_batch(pairs, add_special_tokens=False) if pairs is not None else None

        keys = [key for key in ("input_ids", "token_type_ids", "attention_mask") if key in self.model_input_names]
        if return_offsets_mapping:
            keys.append("offset_mapping")
        if return_special_tokens_mask:
            keys.append("special_tokens_mask")
        out: dict[str, list] = {key: [] for key in keys}
        for i, ea in enumerate(enc_a):
            eb = enc_b[i] if enc_b is not None else None
            if limit is not None:
                self._truncate(ea, eb, limit, strategy)
            # The special tokens and segment ids come from the post-processor, as in the Rust pipeline.
            row = self._backend.post_process(ea, eb, add_special_tokens=add_special_tokens)
            values = {"input_ids": row.ids, "token_type_ids": row.type_ids, "attention_mask": [1] * len(row.ids),
                      "offset_mapping": [tuple(o) for o in row.offsets],
                      "special_tokens_mask": row.special_tokens_mask}
            for key in keys:
                out[key].append(list(values[key]))

        if pad_mode is not None and out["input_ids"]:
            target = max_length if pad_mode == "max_length" else max(len(ids) for ids in out["input_ids"])
            pad_values = {
                "input_ids": self._special_ids["pad"],
                "token_type_ids": 0,
                "attention_mask": 0,
                "offset_mapping": (0, 0),
                "special_tokens_mask": 1,
            }
            for key, rows in out.items():
                for row in rows:
                    if len(row) < target:
                        row.extend([pad_values[key]] * (target - len(row)))

        if return_tensors == "pt":
            import torch

            lengths = {len(ids) for ids in out["input_ids"]}
            if len(lengths) > 1:
                raise BertError(
                    'return_tensors="pt" needs equal lengths; pass padding=True (and truncation=True for long texts)'
                )
            width = lengths.pop() if lengths else 0
            tensors: dict[str, Any] = {}
            for key, rows in out.items():
                shape = (len(rows), width, 2) if key == "offset_mapping" else (len(rows), width)
                tensors[key] = torch.tensor(rows, dtype=torch.long).reshape(shape)
            return tensors
        if not batched:
            return {key: rows[0] for key, rows in out.items()}
        return out

    def _truncate(self, ea: Any, eb: Any | None, budget: int, strategy: str) -> None:
        """Cut the encodings ``ea`` (and ``eb``) in place so that together they hold at most ``budget`` tokens."""
        len_a, len_b = len(ea.ids), len(eb.ids) if eb is not None else 0
        if len_a + len_b <= budget:
            return
        if eb is None or strategy == "only_first":
            keep_a, keep_b = budget - len_b, len_b
        elif strategy == "only_second":
            keep_a, keep_b = len_a, budget - len_a
        else:
            keep_a, keep_b = self.truncated_lengths(len_a, len_b, budget)
        if keep_a < 0 or keep_b < 0:
            which = "first" if keep_a < 0 else "second"
            raise BertError(f'truncation="{strategy}" cannot fit the input in {budget} tokens by cutting the {which} '
                            'text alone; use truncation="longest_first" or a larger max_length')
        ea.truncate(keep_a)
        if eb is not None:
            eb.truncate(keep_b)

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
        """Turn ids back into text with the backend's decoder (then transformers' spacing cleanup where the model
        family uses it). What the normaliser removed (case, accents) cannot be undone."""
        text = self._backend.decode(_as_id_list(ids), skip_special_tokens=skip_special_tokens)
        return self._clean_up(text) if self.clean_up_tokenization_spaces else text

    @staticmethod
    def _clean_up(text: str) -> str:
        """transformers' ``clean_up_tokenization``: no space before punctuation and contractions."""
        for before, after in _CLEANUPS:
            text = text.replace(before, after)
        return text

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """Token string(s) for id(s); an int gives a str, a list gives a list."""
        single = isinstance(ids, int)
        tokens = []
        for i in _as_id_list(ids):
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
        return [self._special_ids[role] for role in self._distinct_roles()]

    @property
    def all_special_tokens(self) -> list[str]:
        """Strings of the special tokens, each once, in transformers' order."""
        return [self._special_tokens[role] for role in self._distinct_roles()]

    def _distinct_roles(self) -> list[str]:
        seen: dict[str, str] = {}
        for role, token in self._special_tokens.items():
            seen.setdefault(token, role)
        return list(seen.values())

    @property
    def bos_token(self) -> str | None:
        """The beginning-of-sequence token (RoBERTa's ``<s>``, ALBERT's ``[CLS]``); None for BERT."""
        return self._special_tokens.get("bos")

    @property
    def eos_token(self) -> str | None:
        """The end-of-sequence token (RoBERTa's ``</s>``, ALBERT's ``[SEP]``); None for BERT."""
        return self._special_tokens.get("eos")

    @property
    def cls_token(self) -> str:
        return self._special_tokens["cls"]

    @property
    def sep_token(self) -> str:
        return self._special_tokens["sep"]

    @property
    def pad_token(self) -> str:
        return self._special_tokens["pad"]

    @property
    def mask_token(self) -> str:
        return self._special_tokens["mask"]

    @property
    def unk_token(self) -> str:
        return self._special_tokens["unk"]

    @property
    def cls_token_id(self) -> int:
        return self._special_ids["cls"]

    @property
    def sep_token_id(self) -> int:
        return self._special_ids["sep"]

    @property
    def pad_token_id(self) -> int:
        return self._special_ids["pad"]

    @property
    def mask_token_id(self) -> int:
        return self._special_ids["mask"]

    @property
    def unk_token_id(self) -> int:
        return self._special_ids["unk"]

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
        """BERT's pair rule (google-research/bert ``_truncate_seq_pair``), see :func:`_truncate_pair`."""
        return _truncate_pair(len_a, len_b, budget)

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
        specials = {**_DEFAULT_SPECIALS, **(special_tokens or {})}
        if tokenizer_file is not None:
            backend, do_lower_case = cls._load_tokenizer_json(Path(tokenizer_file), do_lower_case)
            source = str(tokenizer_file)
        elif vocab_file is not None:
            vocab = _load_vocab(Path(vocab_file))
            if do_lower_case is None:
                do_lower_case = _looks_uncased(vocab)
            source = str(vocab_file)
            missing = [tok for tok in specials.values() if tok not in vocab]
            if missing:
                raise BertError(
                    f"{source}: vocabulary lacks the special token(s) {', '.join(missing)} that BERT needs; "
                    "use the vocab.txt that came with the model"
                )
            backend = cls._build_backend(vocab, do_lower_case, specials)
        else:
            raise BertError("BertTokenizer.from_files needs vocab_file or tokenizer_file")
        return cls(
            backend,
            do_lower_case=do_lower_case,
            model_max_length=model_max_length,
            special_tokens=specials,
            source=source,
        )

    @staticmethod
    def _build_backend(vocab: dict[str, int], do_lower_case: bool, specials: dict[str, str]) -> Tokenizer:
        """The standard BERT pipeline: BertNormalizer -> BertPreTokenizer -> WordPiece, WordPiece decoder."""
        backend = Tokenizer(
            WordPiece(vocab, unk_token=specials["unk"], max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD)
        )
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=do_lower_case
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")
        cls_tok, sep_tok = specials["cls"], specials["sep"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{cls_tok}:0 $A:0 {sep_tok}:0",
            pair=f"{cls_tok}:0 $A:0 {sep_tok}:0 $B:1 {sep_tok}:1",
            special_tokens=[(cls_tok, vocab[cls_tok]), (sep_tok, vocab[sep_tok])],
        )
        # Registering the specials keeps "[MASK]" written in the input text as one token, as in the reference.
        backend.add_special_tokens(
            [AddedToken(specials[role], special=True, normalized=False) for role in _SPECIAL_ROLES]
        )
        return backend

    @staticmethod
    def _load_tokenizer_json(path: Path, do_lower_case: bool | None) -> tuple[Tokenizer, bool]:
        backend = _load_tokenizer_file(path, "re-download it, or delete it to use vocab.txt")
        spec = json.loads(backend.to_str())
        if (spec.get("model") or {}).get("type") != "WordPiece":
            raise BertError(f"{path} does not hold a WordPiece model; BERT needs a WordPiece tokenizer.json")
        norm = spec.get("normalizer") or {}
        if norm.get("type") == "BertNormalizer":
            json_lower = bool(norm.get("lowercase", True))
            if do_lower_case is None:
                do_lower_case = json_lower
            elif do_lower_case != json_lower:  # an explicit setting (or tokenizer_config.json) wins
                backend.normalizer = normalizers.BertNormalizer(
                    clean_text=norm.get("clean_text", True),
                    handle_chinese_chars=norm.get("handle_chinese_chars", True),
                    strip_accents=norm.get("strip_accents"),
                    lowercase=do_lower_case,
                )
        if do_lower_case is None:
            do_lower_case = _looks_uncased(backend.get_vocab(with_added_tokens=False))
        return backend, do_lower_case

    # ------------------------------------------------------------------ decoding and saving

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        """Turn ids back into text: ``##`` pieces are glued to the previous token, other tokens joined by
        spaces, then spaces before punctuation/contractions removed like transformers' ``clean_up_tokenization``.

        Lower-casing, accent stripping and the exact original spacing cannot be undone.
        """
        id_list = _as_id_list(ids)
        if skip_special_tokens:
            special = set(self.all_special_ids)
            id_list = [i for i in id_list if i not in special]
        pieces: list[str] = []
        for token in self.convert_ids_to_tokens(id_list):
            if token.startswith("##") and pieces:
                pieces[-1] += token[2:]
            else:
                pieces.append(token)
        return self._clean_up(" ".join(pieces))

    def tokenizer_config(self) -> dict[str, Any]:
        return {**super().tokenizer_config(), "tokenize_chinese_chars": True, "strip_accents": None}

    def save_vocabulary(self, folder: Path) -> None:
        """``vocab.txt``: one token per line, the line number is the id."""
        vocab = self._backend.get_vocab(with_added_tokens=True)
        by_id = sorted(vocab.items(), key=lambda item: item[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise BertError("cannot write vocab.txt: the vocabulary ids are not contiguous from 0")
        write_text_atomically(folder / VOCAB_FILE, "".join(f"{tok}\n" for tok, _ in by_id))
