"""The checks of a tokenizer call's arguments (``tok(text, text_pair, padding=..., truncation=..., ...)``), each
a one-line error naming the accepted values."""

from __future__ import annotations

from typing import Any

from bert.errors import BertError
from bert.tokenizer.truncation import TRUNCATION_STRATEGIES

TextInput = str | list[str] | tuple[str, ...]


def texts_and_pairs(text: TextInput, text_pair: TextInput | None) -> tuple[bool, list[str], list[str] | None]:
    """(whether the call is batched, the texts, the second segments or None), all checked to be strings."""
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
    return batched, texts, pairs  # type: ignore[return-value]  # the loop above checked the items


def padding_mode(padding: bool | str, max_length: int | None) -> str | None:
    """``"longest"``, ``"max_length"`` or None (no padding) for transformers' ``padding`` values."""
    if padding in (True, "longest"):
        return "longest"
    if padding in (False, None, "do_not_pad"):
        return None
    if padding == "max_length":
        if max_length is None:
            raise BertError('padding="max_length" needs max_length=...; or use padding=True to pad to the longest')
        return "max_length"
    raise BertError(f'padding must be False, True, "longest" or "max_length", not {padding!r}')


def truncation_strategy(truncation: bool | str) -> str | None:
    """The strategy of :data:`~bert.tokenizer.truncation.TRUNCATION_STRATEGIES` that ``truncation`` asks for
    (``True`` is ``"longest_first"``), or None for no truncation."""
    if truncation not in (False, True, None, "do_not_truncate", *TRUNCATION_STRATEGIES):
        raise BertError(f"truncation must be True, False or one of {', '.join(TRUNCATION_STRATEGIES)}, "
                        f"not {truncation!r}")
    strategy = "longest_first" if truncation is True else truncation
    return strategy if strategy in TRUNCATION_STRATEGIES else None  # type: ignore[return-value]


def check_max_length(max_length: Any) -> None:
    """``max_length`` is None or a non-negative int."""
    if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
        raise BertError(f"max_length must be a non-negative integer, not {max_length!r}")


def check_return_tensors(return_tensors: Any) -> None:
    """Lists (None) or PyTorch tensors ("pt")."""
    if return_tensors not in (None, "pt"):
        raise BertError(f'return_tensors must be None or "pt", not {return_tensors!r}')
