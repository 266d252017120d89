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

Steps 1-3 run in the fast Rust backend; step 4, truncation and padding are done here in Python so that pair
truncation follows the original BERT rule exactly (google-research/bert ``_truncate_seq_pair``: while the pair is too
long, drop the last token of the longer segment; on a tie, of the second).

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
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from bert.errors import BertError

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

DEFAULT_MODEL_MAX_LENGTH = 512
MAX_INPUT_CHARS_PER_WORD = 100

# Special-token roles, in the order Hugging Face lists them in ``all_special_tokens``.
_SPECIAL_ROLES = ("unk", "sep", "pad", "cls", "mask")
_DEFAULT_SPECIALS = {"unk": "[UNK]", "sep": "[SEP]", "pad": "[PAD]", "cls": "[CLS]", "mask": "[MASK]"}

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


class BertTokenizer:
    """WordPiece tokenizer for BERT models, API-compatible with ``transformers.BertTokenizerFast`` for common use.

    Build one with :meth:`from_pretrained` (a model folder or name) or :meth:`from_files` (explicit files).
    Calling it returns a dict with ``input_ids``, ``token_type_ids`` and ``attention_mask`` (plus
    ``offset_mapping`` / ``special_tokens_mask`` on request) as Python lists or, with ``return_tensors="pt"``,
    ``torch.long`` tensors.
    """

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
        self._backend = backend
        # Padding and truncation are done here (BERT's own pair rule); a tokenizer.json may have them switched on.
        self._backend.no_padding()
        self._backend.no_truncation()
        self._do_lower_case = bool(do_lower_case)
        self.model_max_length = int(model_max_length)
        self._special_tokens = {**_DEFAULT_SPECIALS, **(special_tokens or {})}
        self._special_ids: dict[str, int] = {}
        missing = []
        for role in _SPECIAL_ROLES:
            token = self._special_tokens[role]
            token_id = backend.token_to_id(token)
            if token_id is None:
                missing.append(token)
            else:
                self._special_ids[role] = token_id
        if missing:
            raise BertError(
                f"{source}: vocabulary lacks the special token(s) {', '.join(missing)} that BERT needs; "
                "use the vocab.txt/tokenizer.json that came with the model"
            )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike) -> BertTokenizer:
        """Load from a model folder holding ``tokenizer.json`` and/or ``vocab.txt`` (+ optional
        ``tokenizer_config.json``), or from a model name resolved by :func:`bert.hub.resolve_model_dir`.

        ``tokenizer.json`` is preferred when both files exist. A direct path to one of the files also works.
        """
        path = Path(os.path.expanduser(os.fspath(name_or_path)))
        if path.is_file():
            folder = path.parent
            files = {"tokenizer_file": path} if path.suffix == ".json" else {"vocab_file": path}
        else:
            if path.is_dir():
                folder = path
            elif path.is_absolute() or os.fspath(name_or_path).startswith((".", "~")):
                raise BertError(
                    f"tokenizer folder {path} not found; pass a folder containing vocab.txt or tokenizer.json"
                )
            else:
                try:
                    from bert.hub import resolve_model_dir
                except ImportError:
                    raise BertError(
                        f"tokenizer folder {path} not found; pass a folder containing vocab.txt or tokenizer.json"
                    ) from None
                folder = Path(resolve_model_dir(name_or_path))
                if folder.is_file():  # a weights file: its tokenizer lives next to it
                    folder = folder.parent
            files = {}
            if (folder / TOKENIZER_FILE).is_file():
                files["tokenizer_file"] = folder / TOKENIZER_FILE
            elif (folder / VOCAB_FILE).is_file():
                files["vocab_file"] = folder / VOCAB_FILE
            else:
                raise BertError(
                    f"no {TOKENIZER_FILE} or {VOCAB_FILE} in {folder}; copy the model's tokenizer files there"
                )

        config: dict[str, Any] = {}
        if (folder / TOKENIZER_CONFIG_FILE).is_file():
            config = _read_json(folder / TOKENIZER_CONFIG_FILE)
        do_lower_case = config.get("do_lower_case")
        max_len = config.get("model_max_length")
        # transformers writes a huge sentinel (1e30) for "no limit"; BERT's position table has 512 rows.
        if not isinstance(max_len, int) or isinstance(max_len, bool) or not 0 < max_len <= 1_000_000:
            max_len = DEFAULT_MODEL_MAX_LENGTH
        specials = {
            role: _config_token(config.get(f"{role}_token"), _DEFAULT_SPECIALS[role]) for role in _SPECIAL_ROLES
        }
        return cls.from_files(
            **files,
            do_lower_case=do_lower_case if isinstance(do_lower_case, bool) else None,
            model_max_length=max_len,
            special_tokens=specials,
        )

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
        if not path.is_file():
            raise BertError(f"tokenizer file {path} not found; pass the tokenizer.json of the model")
        try:
            backend = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust side raises plain Exception for any parse error
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BertError(
                f"{path} is not a valid tokenizer.json ({reason}); re-download it, or delete it to use vocab.txt"
            ) from None
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
                to ``max_length``. Pads with ``[PAD]``, ``token_type_id`` 0, ``attention_mask`` 0, on the right.
            truncation: cut to ``max_length`` (default ``model_max_length``), counting special tokens. Pairs
                follow BERT's rule: drop from the longer segment, from the second on ties.
            return_tensors: ``None`` for Python lists, ``"pt"`` for 2-D ``torch.long`` tensors (a single text
                gets batch dimension 1).
            return_offsets_mapping: add ``offset_mapping``, ``(start, end)`` character offsets of each token
                into its segment's original string; ``(0, 0)`` for special and pad tokens.
            return_special_tokens_mask: add ``special_tokens_mask``: 1 for the [CLS]/[SEP]/[PAD] added here.

        Returns:
            dict with ``input_ids``, ``token_type_ids``, ``attention_mask`` (+ the optional keys): flat lists
            for a single text, lists of lists for a batch.
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
        if truncation not in (False, True, None, "longest_first", "do_not_truncate"):
            raise BertError(f"truncation must be True or False, not {truncation!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise BertError(f"max_length must be a non-negative integer, not {max_length!r}")
        if return_tensors not in (None, "pt"):
            raise BertError(f'return_tensors must be None or "pt", not {return_tensors!r}')

        limit: int | None = None
        if truncation in (True, "longest_first"):
            limit = max_length if max_length is not None else self.model_max_length
            n_special = (3 if pairs is not None else 2) if add_special_tokens else 0
            if limit < n_special:
                raise BertError(f"max_length={limit} cannot hold the {n_special} special tokens; use a larger value")
            limit -= n_special

        enc_a = self._backend.encode_batch(texts, add_special_tokens=False)
        enc_b = self._backend.encode_batch(pairs, add_special_tokens=False) if pairs is not None else None

        cls_id, sep_id = self._special_ids["cls"], self._special_ids["sep"]
        out: dict[str, list] = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
        if return_offsets_mapping:
            out["offset_mapping"] = []
        if return_special_tokens_mask:
            out["special_tokens_mask"] = []
        for i, ea in enumerate(enc_a):
            ids_a, offs_a = ea.ids, ea.offsets
            ids_b, offs_b = (enc_b[i].ids, enc_b[i].offsets) if enc_b is not None else ([], [])
            if limit is not None:
                if enc_b is None:
                    keep_a, keep_b = min(len(ids_a), limit), 0
                else:
                    keep_a, keep_b = _truncate_pair(len(ids_a), len(ids_b), limit)
                ids_a, offs_a, ids_b, offs_b = ids_a[:keep_a], offs_a[:keep_a], ids_b[:keep_b], offs_b[:keep_b]
            if add_special_tokens:
                ids = [cls_id, *ids_a, sep_id]
                offsets = [(0, 0), *offs_a, (0, 0)]
                special = [1] + [0] * len(ids_a) + [1]
                if enc_b is not None:
                    ids += [*ids_b, sep_id]
                    offsets += [*offs_b, (0, 0)]
                    special += [0] * len(ids_b) + [1]
                types = [0] * (len(ids_a) + 2) + [1] * (len(ids) - len(ids_a) - 2)
            else:
                ids = ids_a + ids_b
                offsets = offs_a + offs_b
                special = [0] * len(ids)
                types = [0] * len(ids_a) + [1] * len(ids_b)
            out["input_ids"].append(ids)
            out["token_type_ids"].append(types)
            out["attention_mask"].append([1] * len(ids))
            if return_offsets_mapping:
                out["offset_mapping"].append([tuple(o) for o in offsets])
            if return_special_tokens_mask:
                out["special_tokens_mask"].append(special)

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

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        *,
        truncation: bool = False,
        max_length: int | None = None,
    ) -> list[int]:
        """Token ids of one text (or pair), with ``[CLS]``/``[SEP]`` unless ``add_special_tokens=False``."""
        return self(
            text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation, max_length=max_length
        )["input_ids"]

    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of ``text`` without special tokens, e.g. ``["un", "##aff", "##able"]``."""
        return self._backend.encode(text, add_special_tokens=False).tokens

    # ------------------------------------------------------------------ decoding and lookup

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
        text = " ".join(pieces)
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
            f"BertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
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
        """Whether input is lower-cased and accent-stripped (an *uncased* model)."""
        return self._do_lower_case

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of [UNK], [SEP], [PAD], [CLS], [MASK] (transformers' order)."""
        return [self._special_ids[role] for role in _SPECIAL_ROLES]

    @property
    def all_special_tokens(self) -> list[str]:
        """Strings of [UNK], [SEP], [PAD], [CLS], [MASK] (transformers' order)."""
        return [self._special_tokens[role] for role in _SPECIAL_ROLES]

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

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``vocab.txt``, ``tokenizer.json`` and ``tokenizer_config.json`` into ``directory`` (created if
        needed), loadable by :meth:`from_pretrained` and by ``transformers.BertTokenizer(Fast).from_pretrained``."""
        folder = Path(directory)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            vocab = self._backend.get_vocab(with_added_tokens=True)
            by_id = sorted(vocab.items(), key=lambda item: item[1])
            if [i for _, i in by_id] != list(range(len(by_id))):
                raise BertError("cannot write vocab.txt: the vocabulary ids are not contiguous from 0")
            (folder / VOCAB_FILE).write_text("".join(f"{tok}\n" for tok, _ in by_id), encoding="utf-8")
            self._backend.save(str(folder / TOKENIZER_FILE))
            config = {
                "tokenizer_class": "BertTokenizer",
                "do_lower_case": self.do_lower_case,
                "model_max_length": self.model_max_length,
                "tokenize_chinese_chars": True,
                "strip_accents": None,
                "clean_up_tokenization_spaces": True,
                **{f"{role}_token": self._special_tokens[role] for role in _SPECIAL_ROLES},
            }
            (folder / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise BertError(f"cannot save the tokenizer to {folder}: {exc}") from None
