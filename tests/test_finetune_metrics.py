"""The fine-tuning metrics against hand-computed cases (seqeval's and the SQuAD script's definitions)."""

from __future__ import annotations

import pytest

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
