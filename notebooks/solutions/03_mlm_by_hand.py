"""Lesson 3, exercise: whole-word masking: choose words, not pieces, and mask every piece of a chosen word."""

import random


def whole_word_mask(tokens: list[str], probability: float, rng: random.Random) -> list[int]:
    """Positions to mask: about ``probability`` of the word pieces, chosen a whole word at a time ('##' pieces belong
    to the word before them); never [CLS] or [SEP]."""
    words: list[list[int]] = []
    for position, token in enumerate(tokens):
        if token in ("[CLS]", "[SEP]"):
            continue
        if token.startswith("##") and words:
            words[-1].append(position)
        else:
            words.append([position])
    budget = max(1, round(probability * sum(len(word) for word in words)))
    chosen: list[int] = []
    for word in rng.sample(words, len(words)):
        if len(chosen) + len(word) > budget:
            continue
        chosen.extend(word)
    return sorted(chosen)


if __name__ == "__main__":
    tokens = ["[CLS]", "the", "eiffel", "tower", "is", "a", "wrought", "-", "iron", "lat", "##tice", "tower", "in",
              "paris", ".", "it", "was", "criticised", "by", "art", "##ists", "[SEP]"]
    for seed in range(200):
        chosen = set(whole_word_mask(tokens, 0.15, random.Random(seed)))
        assert chosen and not chosen & {0, len(tokens) - 1}
        for position in chosen:  # a chosen piece's whole word is chosen: the piece before a ## piece, and after
            if tokens[position].startswith("##"):
                assert position - 1 in chosen
            if position + 1 < len(tokens) and tokens[position + 1].startswith("##"):
                assert position + 1 in chosen
        assert len(chosen) <= round(0.15 * 20)
    print("e.g.", [tokens[p] for p in whole_word_mask(tokens, 0.15, random.Random(3))])
