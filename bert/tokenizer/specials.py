"""Special tokens: the roles a model family names ([CLS], [SEP], ...), the check that its vocabulary has them, the
properties that read them (``cls_token``, ``cls_token_id``, ...) and the post-processors that frame one text or a
pair with them (BERT's ``[CLS] A [SEP] B [SEP]``, RoBERTa's ``<s> A </s></s> B </s>``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar, overload

from tokenizers import processors

from bert.errors import BertError

# Special-token roles, in the order Hugging Face lists them in ``all_special_tokens`` (BERT has no bos/eos).
BERT_ROLES = ("unk", "sep", "pad", "cls", "mask")
BERT_SPECIALS = {"unk": "[UNK]", "sep": "[SEP]", "pad": "[PAD]", "cls": "[CLS]", "mask": "[MASK]"}


def special_token_ids(specials: dict[str, str], token_to_id: Callable[[str], int | None], *, source: str,
                      model_name: str, expected_files: str) -> dict[str, int]:
    """The id of each role's token (``specials``: role -> token); a one-line error naming every token the
    vocabulary lacks. ``source`` (the file read) and ``expected_files`` (what to use instead) word the error."""
    ids: dict[str, int] = {}
    missing = []
    for role, token in specials.items():
        token_id = token_to_id(token)
        if token_id is None:
            missing.append(token)
        else:
            ids[role] = token_id
    if missing:
        raise BertError(
            f"{source}: vocabulary lacks the special token(s) {', '.join(dict.fromkeys(missing))} that "
            f"{model_name} needs; use the {expected_files} that came with the model"
        )
    return ids


def distinct_roles(specials: dict[str, str]) -> list[str]:
    """The roles whose token is not already another's (ALBERT's bos is its cls), in ``specials``' order."""
    seen: dict[str, str] = {}
    for role, token in specials.items():
        seen.setdefault(token, role)
    return list(seen.values())


T = TypeVar("T")


class SpecialToken(Generic[T]):
    """A property read from a tokenizer's role tables: ``cls_token`` is ``_special_tokens["cls"]``,
    ``cls_token_id`` is ``_special_ids["cls"]``. ``optional`` roles (bos, eos: BERT has none) read None."""

    def __init__(self, role: str, *, as_id: bool, optional: bool = False) -> None:
        self.role, self.as_id, self.optional = role, as_id, optional

    def __set_name__(self, owner: type, name: str) -> None:
        what = "the id of " if self.as_id else ""
        absent = " (None if the model has none)" if self.optional else ""
        self.__doc__ = f"{what}the {self.role} special token{absent}"

    @overload
    def __get__(self, obj: None, owner: type) -> SpecialToken[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        table = obj._special_ids if self.as_id else obj._special_tokens
        return table.get(self.role) if self.optional else table[self.role]


def bert_template(cls_token: tuple[str, int], sep_token: tuple[str, int]) -> processors.PostProcessor:
    """BERT's layout (also ALBERT's and DistilBERT's): ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]``, segment ids
    0 up to the first [SEP] and 1 after it. Each token is given as ``(string, id)``."""
    cls, sep = cls_token[0], sep_token[0]
    return processors.TemplateProcessing(single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                                         special_tokens=[cls_token, sep_token])


def roberta_template(cls_token: tuple[str, int], sep_token: tuple[str, int], *, trim_offsets: bool,
                     add_prefix_space: bool) -> processors.PostProcessor:
    """RoBERTa's layout: ``<s> A </s>`` and ``<s> A </s></s> B </s>``, every segment id 0; ``trim_offsets`` drops
    the space in front of a word from its offsets (``add_prefix_space``: the pre-tokeniser adds one)."""
    return processors.RobertaProcessing(sep_token, cls_token, trim_offsets=trim_offsets,
                                        add_prefix_space=add_prefix_space)


def role_tokens(roles: Iterable[str], defaults: dict[str, str], overrides: dict[str, str] | None) -> dict[str, str]:
    """Role -> token for each of ``roles``: ``overrides`` where given, ``defaults`` otherwise."""
    merged = {**defaults, **(overrides or {})}
    return {role: merged[role] for role in roles}
