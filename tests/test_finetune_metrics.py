"""The fine-tuning metrics against hand-computed cases (seqeval's and the SQuAD script's definitions)."""

from __future__ import annotations

import collections
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bert.finetune.metrics import (
    accuracy,
    binary_f1,
    entity_scores,
    get_entities,
    macro_f1,
    normalize_answer,
    pearson,
    ranks,
    spearman,
    squad_exact_match,
    squad_f1,
    squad_scores,
)


def test_accuracy_and_f1() -> None:
    gold = [0, 0, 1, 1, 2]
    predicted = [0, 1, 1, 1, 0]
    assert accuracy(gold, predicted) == pytest.approx(3 / 5)
    # class 0: tp 1 fp 1 fn 1 → 0.5; class 1: tp 2 fp 1 fn 0 → 0.8; class 2: tp 0 → 0
    assert macro_f1(gold, predicted) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert binary_f1(gold, predicted) == pytest.approx(0.8)
    assert macro_f1(["a", "b"], ["a", "b"]) == 1.0
    assert accuracy([], []) == 0.0


def test_correlations() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 1, 1], [1, 2, 3]) == 0.0
    # x = 1..4, y = 1, 3, 2, 5: cov = 4.5·... computed by hand: r = 5.5 / sqrt(5 · 8.75)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 5]) == pytest.approx(5.5 / (5 * 8.75) ** 0.5)
    assert ranks([10, 20, 20, 5]) == [2, 3.5, 3.5, 1]
    assert spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)  # monotonic, not linear
    assert spearman([1, 2, 3], [1, 1, 2]) == pytest.approx(pearson([1, 2, 3], [1.5, 1.5, 3]))


def test_entities_seqeval_default_rules() -> None:
    assert get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    # I- without B- still opens an entity (conlleval / seqeval default mode)
    assert get_entities(["O", "I-PER", "I-PER", "O"]) == [("PER", 1, 2)]
    # a type change inside a chunk ends it and opens a new one
    assert get_entities(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 2)]
    # B- after B- of the same type: two entities
    assert get_entities(["B-PER", "B-PER"]) == [("PER", 0, 0), ("PER", 1, 1)]
    # an entity running to the end of the sentence, and sentences joined with an O between them
    assert get_entities([["O", "B-ORG"], ["I-ORG"]]) == [("ORG", 1, 1), ("ORG", 3, 3)]


def test_entity_scores_micro_and_per_type() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "B-LOC"]]
    scores = entity_scores(gold, predicted)
    # gold: PER(0-1), LOC(3), ORG(5); predicted: PER(0-1), ORG(3), ORG(5), LOC(6) → 2 correct of 4 predicted, 3 true
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert scores["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["per_type"]["ORG"]["precision"] == pytest.approx(0.5)
    assert scores["per_type"]["ORG"]["recall"] == pytest.approx(1.0)
    # a partial match (wrong boundary) is simply wrong
    assert entity_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0
    assert entity_scores([["O"]], [["O"]])["f1"] == 0.0


def test_squad_normalisation_and_scores() -> None:
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple a day") == "apple day"
    assert squad_f1("the big red car", "a red car") == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    assert squad_f1("nothing", "something") == 0.0
    gold = {"q1": ["Denver Broncos", "The Broncos"], "q2": ["1990"], "q3": ["Paris"]}
    predictions = {"q1": "broncos", "q2": "in 1990", "q3": "London"}
    scores = squad_scores(predictions, gold)
    # q1: EM 1 (matches "The Broncos"); q2: F1 2·(1/2)·1/(1.5) = 2/3; q3: 0
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert squad_scores({}, gold) == {"exact_match": 0.0, "f1": 0.0}  # unanswered questions count as wrong


# ---- the official SQuAD v1.1 evaluation script, as an independent reference -----------------------------------------
# Written here from the definitions in the official script, evaluate-v1.1.py (Rajpurkar et al., released with SQuAD
# v1.1 at https://rajpurkar.github.io/SQuAD-explorer/): normalize_answer = lower, drop every character of
# string.punctuation, replace the articles \b(a|an|the)\b with a space, join the whitespace-split words with single
# spaces; f1_score = bag-of-tokens F1 through a collections.Counter intersection (0 when nothing is shared);
# exact_match_score = equal normalised strings; the max over the ground truths; evaluate() counts every question of
# the dataset (an unanswered one scores 0) and reports both totals times 100 over the number of questions.

def official_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def official_f1_score(prediction, ground_truth):
    prediction_tokens = official_normalize_answer(prediction).split()
    ground_truth_tokens = official_normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def official_exact_match_score(prediction, ground_truth):
    return official_normalize_answer(prediction) == official_normalize_answer(ground_truth)


def official_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def official_evaluate(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue  # "Unanswered question ... will receive score 0."
                ground_truths = list(map(lambda x: x["text"], qa["answers"]))
                prediction = predictions[qa["id"]]
                exact_match += official_metric_max_over_ground_truths(official_exact_match_score, prediction,
                                                                      ground_truths)
                f1 += official_metric_max_over_ground_truths(official_f1_score, prediction, ground_truths)
    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total
    return {"exact_match": exact_match, "f1": f1}


# Answers built from pieces that exercise every rule: articles in any case and inside words (theory, atheist),
# repeated words (the Counter intersection), ASCII punctuation (removed, even inside words) and Unicode punctuation
# (kept), Unicode letters whose lower-casing changes length (İ), digits, and every kind of whitespace between pieces
# (or none), so that answers may be empty, or become empty once normalised.
PIECES = st.one_of(
    st.sampled_from(["a", "an", "the", "The", "AN", "A", "tHe", "cat", "cat", "dog", "Dog", "the cat", "cat cat",
                     "theory", "atheist", "anthem", "café", "CAFÉ", "naïve", "Straße", "İstanbul", "ΣΊΣΥΦΟΣ", "東京",
                     "1990", "3.14", "U.S.", "don't", "’s", "«quoted»", "—", "…", "¿qué?", "a.k.a.", "an-", "_the_"]),
    st.text(alphabet=string.punctuation + "‘’“”«»—–…¡¿·", max_size=3),
    st.text(max_size=6),
)
SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2009", "\u200b", "", "-", ",",
                              ".", "'"])
ANSWERS = st.lists(st.tuples(PIECES, SEPARATORS), max_size=8).map(lambda parts: "".join(p + s for p, s in parts))


@st.composite
def squad_questions(draw):
    """Questions (1 to 6) with 1 to 3 gold answers each, and a prediction for most of them: a fresh answer, a gold
    answer with words added, repeated or dropped, or a word repeated in both."""
    gold, predictions = {}, {}
    for number in range(draw(st.integers(1, 6))):
        qid = f"q{number}"
        gold[qid] = draw(st.lists(ANSWERS, min_size=1, max_size=3))
        kind = draw(st.sampled_from(["fresh", "from-gold", "repeats", "missing"]))
        if kind == "fresh":
            predictions[qid] = draw(ANSWERS)
        elif kind == "repeats":  # a word several times in the gold and in the prediction: counted min(n, m) times
            word, other = draw(st.sampled_from(["cat", "Dog", "café", "1990", "İstanbul"])), draw(ANSWERS)
            gold[qid][0] = " ".join([word] * draw(st.integers(1, 4)) + [other])
            predictions[qid] = " ".join([other] * draw(st.integers(0, 1)) + [word] * draw(st.integers(1, 4)))
        elif kind == "from-gold":
            words = draw(st.sampled_from(gold[qid])).split()
            kept = draw(st.lists(st.sampled_from(words), max_size=6)) if words else []
            predictions[qid] = draw(SEPARATORS).join(kept + draw(st.lists(PIECES, max_size=2)))
    return gold, predictions


def test_squad_scores_equal_the_official_v1_1_script() -> None:
    """Per answer (normalisation, EM, F1) and in total, on generated questions; the generator is checked to reach
    repeated tokens counted by the Counter, answers empty once normalised, partial overlaps and unanswered ones."""
    seen = collections.Counter()

    @settings(max_examples=250, deadline=None, database=None)
    @given(case=squad_questions())
    def check(case) -> None:
        gold, predictions = case
        for qid, truths in gold.items():
            seen["unanswered"] += qid not in predictions
            prediction = predictions.get(qid, "")
            for truth in truths:
                assert normalize_answer(truth) == official_normalize_answer(truth)
                assert squad_exact_match(prediction, truth) == official_exact_match_score(prediction, truth)
                f1 = official_f1_score(prediction, truth)
                assert squad_f1(prediction, truth) == f1
                seen["empty once normalised"] += truth.strip() != "" and official_normalize_answer(truth) == ""
                seen["partial overlap"] += 0 < f1 < 1
                seen["exact match"] += official_exact_match_score(prediction, truth)
                shared = (collections.Counter(official_normalize_answer(prediction).split())
                          & collections.Counter(official_normalize_answer(truth).split()))
                seen["a repeated token shared more than once"] += sum(shared.values()) > len(shared)
        dataset = [{"title": "generated", "paragraphs": [
            {"context": "", "qas": [{"id": qid, "answers": [{"text": t, "answer_start": 0} for t in truths]}]}
            for qid, truths in gold.items()]}]
        assert squad_scores(predictions, gold) == official_evaluate(dataset, predictions)

    check()
    assert min(seen[k] for k in ("unanswered", "empty once normalised", "partial overlap", "exact match",
                                 "a repeated token shared more than once")) >= 10, seen
