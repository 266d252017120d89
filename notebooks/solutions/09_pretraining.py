"""Lesson 9, exercise: the frequency plateau, predicted from word counts alone."""

import math
from collections import Counter


def plateau(counts: Counter, mask_share: float = 0.8, random_share: float = 0.1) -> tuple[float, float]:
    """Accuracy and loss (nats) on masked positions of a model that knows only word frequencies and copies the
    unchanged tokens: it answers the most frequent word at [MASK] and random positions (right with probability
    P(top)) and the token itself where it is unchanged (always right, loss about 0)."""
    total = sum(counts.values())
    p_top = max(counts.values()) / total
    entropy = -sum(c / total * math.log(c / total) for c in counts.values())
    guessed = mask_share + random_share
    return guessed * p_top + (1 - guessed), guessed * entropy


if __name__ == "__main__":
    text = ("the cat sat on the mat and the dog sat on the rug . " * 50 + "a bird flew over the house . " * 10).split()
    counts = Counter(text)
    accuracy, loss = plateau(counts)
    p_the = counts["the"] / len(text)
    assert math.isclose(accuracy, 0.9 * p_the + 0.1)
    assert 0 < loss < 0.9 * math.log(len(counts))  # below a uniform guess over the words seen
    print(f"P(the) = {p_the:.3f}: plateau accuracy {accuracy:.3f}, loss {loss:.2f} nats")
