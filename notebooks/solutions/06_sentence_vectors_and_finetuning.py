"""Lesson 6, exercise: sentiment without training: the nearest class centroid of mean-pooled sentence vectors."""

import torch

from bert import BertModel
from bert.inference.pipelines import DEMO_MODEL, encode, load
from bert.inference.study import first_available, minilm_dir

POSITIVE = ["I loved this film.", "What a wonderful day.", "The food was delicious.", "A truly great experience.",
            "The staff were friendly and helpful.", "Everything worked perfectly."]
NEGATIVE = ["I hated this film.", "What a terrible day.", "The food was disgusting.", "A truly awful experience.",
            "The staff were rude and unhelpful.", "Nothing worked at all."]


def centroid_classifier(model, tokenizer):
    """A function text → 1 (positive) or 0, by cosine similarity to the two classes' mean vectors."""
    centroids = torch.stack([encode(model, tokenizer, texts, pooling="mean").mean(0)
                             for texts in (NEGATIVE, POSITIVE)])  # [2, H]

    def classify(texts: list[str]) -> list[int]:
        vectors = encode(model, tokenizer, texts, pooling="mean")  # [n, H]
        similarity = torch.cosine_similarity(vectors[:, None], centroids[None], dim=-1)  # [n, 2]
        return similarity.argmax(-1).tolist()

    return classify


if __name__ == "__main__":
    model, tokenizer = load(BertModel, first_available(minilm_dir(), "bert-base-uncased", DEMO_MODEL))
    classify = centroid_classifier(model, tokenizer)
    held_out = ["An amazing, joyful movie.", "The meal was superb.", "I really like this place.",
                "A horrible, tedious movie.", "The meal was bland and cold.", "I really dislike this place."]
    answers = classify(held_out)
    print(list(zip(held_out, answers, strict=True)))
    assert sum(a == b for a, b in zip(answers, [1, 1, 1, 0, 0, 0], strict=True)) >= 5
