"""The variants' tokenizers: the call API of :class:`bert.tokenizer.wordpiece.BertTokenizer` (shared through
:class:`~bert.tokenizer.fast.FastTokenizer`) over each family's own ``tokenizers`` pipeline.

* RoBERTa: GPT-2's byte-level BPE. Every byte of UTF-8 maps to a printable character first, so no text is ever
  unknown; a space belongs to the word after it (``Ġworld``). Specials ``<s>``, ``</s>``, ``<pad>``, ``<unk>`` and
  ``<mask>``, which swallows the space before it (lstrip), so "is <mask>." predicts the word *with* its space. A pair
  is ``<s> A </s></s> B </s>`` and every token_type_id is 0 (RoBERTa has one segment). Loads ``tokenizer.json``, or
  the original ``vocab.json`` + ``merges.txt``.
* ALBERT: a SentencePiece unigram model (``▁`` marks a word start), normalised as its tokenizer.json says (the
  released models: quotes, NFKD, accents stripped, lower-cased). ``[CLS] A [SEP] B [SEP]`` with segment ids 0/1 as in
  BERT; ``<pad>``, ``<unk>``, ``[MASK]``. Loads ``tokenizer.json`` (transformers writes one for every ALBERT).
* DistilBERT: BERT's WordPiece tokenizer, but its model reads no token_type_ids, so none are returned.

Truncation of pairs follows the ``tokenizers`` library's ``longest_first`` rule, as transformers does for these
models (BERT's tokenizer keeps the original BERT rule).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from tokenizers import AddedToken, Encoding, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE

from bert.atomic import write_text_atomically
from bert.errors import BertError
from bert.tokenizer.fast import FastTokenizer
from bert.tokenizer.files import TOKENIZER_FILE, backend_spec, load_tokenizer_file
from bert.tokenizer.specials import roberta_template
from bert.tokenizer.wordpiece import BertTokenizer

VOCAB_JSON = "vocab.json"
MERGES_FILE = "merges.txt"
ROLES = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")  # transformers' order of all_special_tokens


class VariantTokenizer(FastTokenizer):
    """A tokenizer.json of the family's model kind (``backend_model``: BPE, Unigram) with bos/eos roles."""

    special_roles = ROLES
    backend_model: ClassVar[str] = ""

    @classmethod
    def from_folder(cls, folder: Path, file: Path | None, config: dict[str, Any], *, model_max_length: int,
                    special_tokens: dict[str, str]) -> VariantTokenizer:
        path = file if file is not None and file.suffix == ".json" else folder / TOKENIZER_FILE
        backend = load_tokenizer_file(path, "re-download it") if path.is_file() else cls.from_vocabulary_files(
            folder, config, special_tokens)
        kind = backend_spec(backend, "model").get("type")
        if kind != cls.backend_model:
            raise BertError(f"{path} holds a {kind} model, not the {cls.backend_model} model of {cls.model_name}; "
                            "is it this model's tokenizer?")
        return cls(backend, model_max_length=model_max_length, special_tokens=special_tokens, source=str(path))

    @classmethod
    def from_vocabulary_files(cls, folder: Path, config: dict[str, Any], specials: dict[str, str]) -> Tokenizer:
        """The backend from the family's original files, when there is no tokenizer.json."""
        raise BertError(f"no {cls.expected_files} in {folder}; copy the model's tokenizer files there")


class RobertaTokenizer(VariantTokenizer):
    """RoBERTa's byte-level BPE tokenizer (see the module docstring), API-compatible with transformers'
    ``RobertaTokenizerFast``, but returning token_type_ids (all 0) like BERT's tokenizer."""

    model_name = "RoBERTa"
    backend_model = "BPE"
    default_specials = {"bos": "<s>", "eos": "</s>", "unk": "<unk>", "sep": "</s>", "pad": "<pad>", "cls": "<s>",
                        "mask": "<mask>"}
    expected_files = f"{TOKENIZER_FILE} or {VOCAB_JSON} + {MERGES_FILE}"

    def post_processor(self) -> processors.PostProcessor:
        """``<s> A </s>`` / ``<s> A </s></s> B </s>``, type ids all 0, with the file's offset trimming."""
        current = backend_spec(self._backend, "post_processor")
        byte_level = backend_spec(self._backend, "pre_tokenizer")
        add_prefix_space = current.get("add_prefix_space", byte_level.get("add_prefix_space", False))
        return roberta_template((self.cls_token, self.cls_token_id), (self.sep_token, self.sep_token_id),
                                trim_offsets=current.get("trim_offsets", True), add_prefix_space=add_prefix_space)

    def encode_words(self, words: Sequence[str]) -> Encoding:
        """Each word with a space in front, as it stands in running text ("ĠParis", transformers'
        add_prefix_space=True): the byte-level BPE would otherwise read it as glued to the word before ("Paris")."""
        return super().encode_words([word if word.startswith(" ") else " " + word for word in words])

    @classmethod
    def from_vocabulary_files(cls, folder: Path, config: dict[str, Any], specials: dict[str, str]) -> Tokenizer:
        """vocab.json (token → id) + merges.txt (one merge "a b" a line, after a ``#version`` line), built as
        transformers builds them."""
        vocab_path, merges_path = folder / VOCAB_JSON, folder / MERGES_FILE
        if not (vocab_path.is_file() and merges_path.is_file()):
            return super().from_vocabulary_files(folder, config, specials)
        try:
            backend = Tokenizer(BPE.from_file(str(vocab_path), str(merges_path), dropout=None,
                                              continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
        except Exception as exc:  # the Rust side raises plain Exception for unreadable files
            raise BertError(f"cannot read {vocab_path} + {merges_path} as a BPE vocabulary ({exc})") from None
        add_prefix_space = bool(config.get("add_prefix_space", False))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
        backend.decoder = decoders.ByteLevel()
        # <mask> takes the space before it, as in the released tokenizers: "is <mask>" masks the word " Paris".
        backend.add_special_tokens([AddedToken(specials[role], special=True, normalized=False, lstrip=role == "mask")
                                    for role in ROLES])
        # The file's offset trimming, read back by post_processor() once the specials are checked.
        backend.post_processor = roberta_template(
            (specials["cls"], backend.token_to_id(specials["cls"]) or 0),
            (specials["sep"], backend.token_to_id(specials["sep"]) or 0),
            trim_offsets=bool(config.get("trim_offsets", True)), add_prefix_space=add_prefix_space)
        return backend

    def tokenizer_config(self) -> dict[str, Any]:
        pre_tokenizer = backend_spec(self._backend, "pre_tokenizer")
        return {**super().tokenizer_config(), "add_prefix_space": pre_tokenizer.get("add_prefix_space", False),
                "trim_offsets": backend_spec(self._backend, "post_processor").get("trim_offsets", True)}

    def save_vocabulary(self, folder: Path) -> None:
        """Also the original ``vocab.json`` + ``merges.txt``, for tools that read those."""
        model = backend_spec(self._backend, "model")
        merges = [" ".join(m) if isinstance(m, list) else m for m in model.get("merges", [])]
        write_text_atomically(folder / VOCAB_JSON, json.dumps(model.get("vocab", {}), ensure_ascii=False))
        write_text_atomically(folder / MERGES_FILE, "#version: 0.2\n" + "".join(f"{m}\n" for m in merges))


class AlbertTokenizer(VariantTokenizer):
    """ALBERT's SentencePiece-unigram tokenizer (see the module docstring), API-compatible with transformers'
    ``AlbertTokenizerFast``; loads the tokenizer.json that transformers writes (not ``spiece.model``)."""

    model_name = "ALBERT"
    backend_model = "Unigram"
    default_specials = {"bos": "[CLS]", "eos": "[SEP]", "unk": "<unk>", "sep": "[SEP]", "pad": "<pad>",
                        "cls": "[CLS]", "mask": "[MASK]"}

    @classmethod
    def from_vocabulary_files(cls, folder: Path, config: dict[str, Any], specials: dict[str, str]) -> Tokenizer:
        if (folder / "spiece.model").is_file():
            raise BertError(f"{folder} has spiece.model but no {TOKENIZER_FILE}; convert it once with transformers: "
                            "AlbertTokenizerFast.from_pretrained(folder).save_pretrained(folder)")
        return super().from_vocabulary_files(folder, config, specials)


class DistilBertTokenizer(BertTokenizer):
    """BERT's WordPiece tokenizer for DistilBERT, whose model reads no token_type_ids (so none are returned)."""

    model_name = "DistilBERT"
    model_input_names = ("input_ids", "attention_mask")


__all__ = ["AlbertTokenizer", "DistilBertTokenizer", "RobertaTokenizer"]
