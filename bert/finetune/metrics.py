"""Evaluation metrics of the three fine-tuning tasks, written out so that no scipy/sklearn/seqeval is needed.

* classification: :func:`accuracy`, :func:`macro_f1` (sklearn's ``f1_score(average="macro")``), :func:`binary_f1`
* regression: :func:`pearson`, :func:`spearman` (ranks with ties averaged, as ``scipy.stats.spearmanr``)
* NER: :func:`get_entities` / :func:`entity_scores`, seqeval's default ("conlleval") chunking and scores
* QA: :func:`squad_exact_match` / :func:`squad_f1` / :func:`squad_scores`, the official SQuAD v1.1 script's
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Sequence

# ---- classification --------------------------------------------------------------------------------------------


def accuracy(gold: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """Fraction of positions where ``predicted`` equals ``gold`` (0.0 for empty input)."""
    _same_length(gold, predicted)
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold) if gold else 0.0


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def macro_f1(gold: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """Unweighted mean over classes of each class's F1, over the classes that occur in ``gold`` or ``predicted``."""
    _same_length(gold, predicted)
    classes = set(gold) | set(predicted)
    if not classes:
        return 0.0
    scores = []
    for label in classes:
        tp = sum(g == label and p == label for g, p in zip(gold, predicted, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, predicted, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, predicted, strict=True))
        scores.append(_f1(tp, fp, fn))
    return sum(scores) / len(scores)


def binary_f1(gold: Sequence[Hashable], predicted: Sequence[Hashable], positive: Hashable = 1) -> float:
    """F1 of the ``positive`` class alone (GLUE's "F1" for MRPC/QQP)."""
    _same_length(gold, predicted)
    tp = sum(g == positive and p == positive for g, p in zip(gold, predicted, strict=True))
    fp = sum(g != positive and p == positive for g, p in zip(gold, predicted, strict=True))
    fn = sum(g == positive and p != positive for g, p in zip(gold, predicted, strict=True))
    return _f1(tp, fp, fn)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; 0.0 when either side is constant (undefined) or empty."""
    _same_length(x, y)
    n = len(x)
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(x) / n, sum(y) / n
    dx = [v - mean_x for v in x]
    dy = [v - mean_y for v in y]
    sxx, syy = sum(v * v for v in dx), sum(v * v for v in dy)
    if sxx == 0 or syy == 0:
        return 0.0
    return sum(a * b for a, b in zip(dx, dy, strict=True)) / math.sqrt(sxx * syy)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of their ranks: ranks([10, 20, 20, 5]) == [2, 3.5, 3.5, 1]."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            result[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: the Pearson correlation of the (tie-averaged) ranks."""
    _same_length(x, y)
    return pearson(ranks(x), ranks(y))


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"gold and predicted have different lengths ({len(a)} vs {len(b)})")


# ---- named entities (seqeval, default mode) --------------------------------------------------------------------


def _split_tag(tag: str) -> tuple[str, str]:
    """"B-PER" → ("B", "PER"); "O" → ("O", "_"), as seqeval splits them."""
    return tag[0], (tag[1:].split("-", maxsplit=1)[-1] or "_")


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Does the chunk open before this position end here? (seqeval.metrics.sequence_labeling.end_of_chunk)"""
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Does a chunk start at this position? (seqeval.metrics.sequence_labeling.start_of_chunk)"""
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True  # an I- (or E-) that does not continue a chunk opens one, as conlleval does
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str] | Sequence[Sequence[str]]) -> list[tuple[str, int, int]]:
    """Chunks ``(type, first, last)`` (inclusive token indices) of a tag sequence, with seqeval's default rules.

    A list of sentences is joined with an "O" between them first (so indices run over the concatenation, as in
    seqeval). Lenient, like conlleval: ``I-PER`` without a ``B-PER`` still opens a PER chunk, and a change of
    type (``B-PER I-LOC``) ends one chunk and starts another.
    """
    if tags and not isinstance(tags[0], str):
        flat: list[str] = []
        for sentence in tags:
            flat.extend([*sentence, "O"])
        tags = flat
    chunks = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = _split_tag(chunk)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Entity-level scores over sentences of tags, as seqeval's ``precision/recall/f1_score`` (micro) and its
    ``classification_report`` per type.

    Returns ``{"precision", "recall", "f1", "per_type": {TYPE: {"precision", "recall", "f1", "support"}}}`` where
    an entity counts as correct only if its type, first and last token all match.
    """
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted, strict=True)):
        raise ValueError("gold and predicted tag sequences differ in shape")
    true_set = set(get_entities(list(gold)))
    pred_set = set(get_entities(list(predicted)))
    types = sorted({t for t, _, _ in true_set | pred_set})
    per_type = {}
    for type_ in types:
        t = {e for e in true_set if e[0] == type_}
        p = {e for e in pred_set if e[0] == type_}
        per_type[type_] = {**_prf(len(t & p), len(p), len(t)), "support": len(t)}
    return {**_prf(len(true_set & pred_set), len(pred_set), len(true_set)), "per_type": per_type}


def _prf(correct: int, n_pred: int, n_true: int) -> dict[str, float]:
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# ---- SQuAD v1.1 (the official evaluate-v1.1.py) -------------------------------------------------------------------

_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def squad_exact_match(prediction: str, truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(truth)


def squad_f1(prediction: str, truth: str) -> float:
    """Bag-of-tokens F1 between the normalised strings (0 when nothing is shared)."""
    predicted_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    same = sum((Counter(predicted_tokens) & Counter(truth_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted_tokens), same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], gold_answers: dict[str, list[str]]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in percent over every question of ``gold_answers`` (id → answer texts), each
    question scored against its best-matching gold answer; a question without a prediction scores 0."""
    em = f1 = 0.0
    for qid, truths in gold_answers.items():
        if qid not in predictions:
            continue
        prediction = predictions[qid]
        em += max(float(squad_exact_match(prediction, t)) for t in truths)
        f1 += max(squad_f1(prediction, t) for t in truths)
    total = len(gold_answers)
    return {"exact_match": 100.0 * em / total if total else 0.0, "f1": 100.0 * f1 / total if total else 0.0}
