"""Lesson 4, exercise: next-sentence-prediction pairs from paragraphs."""

import random


def nsp_pairs(documents: list[list[str]], rng: random.Random) -> list[tuple[str, str, int]]:
    """(A, B, label) for every sentence that has a next one: B is that next sentence (label 0, IsNext) or, with
    probability 1/2, a sentence of another document (label 1, NotNext)."""
    pairs = []
    for index, sentences in enumerate(documents):
        others = [d for i, d in enumerate(documents) if i != index and d]
        for a, following in zip(sentences, sentences[1:], strict=False):
            if others and rng.random() < 0.5:
                pairs.append((a, rng.choice(rng.choice(others)), 1))
            else:
                pairs.append((a, following, 0))
    return pairs


if __name__ == "__main__":
    documents = [["The man went to the store.", "He bought a gallon of milk.", "Then he went home."],
                 ["Penguins are flightless birds.", "They live in the southern hemisphere."],
                 ["The stock market fell.", "Investors were worried.", "Prices recovered later.", "Calm returned."]]
    pairs = nsp_pairs(documents, random.Random(0))
    assert len(pairs) == sum(len(d) - 1 for d in documents)
    where = {s: i for i, d in enumerate(documents) for s in d}
    for a, b, label in pairs:
        if label == 0:
            assert documents[where[a]].index(b) == documents[where[a]].index(a) + 1
        else:
            assert where[a] != where[b]
    labels = [label for _, _, label in nsp_pairs(documents * 200, random.Random(1))]
    assert 0.45 < sum(labels) / len(labels) < 0.55
    for pair in pairs[:3]:
        print(pair)
