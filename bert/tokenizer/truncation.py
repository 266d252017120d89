"""How a text or a pair is cut to fit ``max_length``: BERT's own pair rule, the ``tokenizers`` library's
``longest_first`` rule (what transformers' fast tokenizers do for every model but the original BERT code), and the
``only_first`` / ``only_second`` strategies."""

from __future__ import annotations

from collections.abc import Callable

from tokenizers import Encoding

from bert.errors import BertError

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")

PairRule = Callable[[int, int, int], tuple[int, int]]


def bert_pair_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
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


def longest_first_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths the two segments keep under the ``tokenizers`` library's ``longest_first`` rule: when the shorter
    segment fits in half the budget only the longer one is cut; otherwise the shorter keeps ``budget // 2`` and the
    longer the rest (so, unlike BERT's rule, the odd token goes to the longer segment, or to the second one on a
    tie)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    swap = len_a > len_b
    short, long = (len_b, len_a) if swap else (len_a, len_b)
    if short > budget // 2:
        short, long = budget // 2, budget // 2 + budget % 2
    else:
        long = budget - short
    return (long, short) if swap else (short, long)


def truncate(ea: Encoding, eb: Encoding | None, budget: int, strategy: str, pair_rule: PairRule) -> None:
    """Cut the encodings ``ea`` (and ``eb``) in place so that together they hold at most ``budget`` tokens;
    ``pair_rule`` gives the lengths a pair keeps under ``longest_first``."""
    len_a, len_b = len(ea.ids), len(eb.ids) if eb is not None else 0
    if len_a + len_b <= budget:
        return
    if eb is None or strategy == "only_first":
        keep_a, keep_b = budget - len_b, len_b
    elif strategy == "only_second":
        keep_a, keep_b = len_a, budget - len_a
    else:
        keep_a, keep_b = pair_rule(len_a, len_b, budget)
    if keep_a < 0 or keep_b < 0:
        which = "first" if keep_a < 0 else "second"
        raise BertError(f'truncation="{strategy}" cannot fit the input in {budget} tokens by cutting the {which} '
                        'text alone; use truncation="longest_first" or a larger max_length')
    ea.truncate(keep_a)
    if eb is not None:
        eb.truncate(keep_b)
