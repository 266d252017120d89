"""Lesson 6, exercises: (1) sentiment without training: the nearest class centroid of mean-pooled sentence vectors;
(2) teaching the fine-tuned classifier negation with eight more training sentences."""

import torch

from bert import BertForSequenceClassification, BertModel
from bert.inference.pipelines import DEMO_MODEL, encode, load, model_inputs
from bert.inference.study import first_available, minilm_dir

# The lesson's training set, and its held-out set: three groups of eight, the first four of each positive.
POSITIVE = ["I loved this film.", "What a wonderful day.", "The food was delicious.", "She gave a brilliant talk.",
            "This is the best book I have read.", "The staff were friendly and helpful.", "A truly great experience.",
            "I am very happy with it.", "The view was beautiful.", "He did an excellent job.",
            "The concert was fantastic.", "Everything worked perfectly.", "I enjoyed every minute.",
            "A charming and funny story.", "The hotel was lovely.", "Great value for the money.",
            "The team played superbly.", "Such a pleasant surprise.", "I would gladly come back.",
            "The music was wonderful."]
NEGATIVE = ["I hated this film.", "What a terrible day.", "The food was disgusting.", "She gave a boring talk.",
            "This is the worst book I have read.", "The staff were rude and unhelpful.", "A truly awful experience.",
            "I am very unhappy with it.", "The view was ugly.", "He did a poor job.",
            "The concert was dreadful.", "Nothing worked at all.", "I regretted every minute.",
            "A dull and pointless story.", "The hotel was filthy.", "A waste of money.",
            "The team played badly.", "Such an unpleasant surprise.", "I will never come back.",
            "The music was awful."]
HELD_OUT = {
    "new words": ["An amazing, joyful movie.", "The meal was superb.", "I really like this place.",
                  "The garden looked gorgeous.", "A horrible, tedious movie.", "The meal was bland and cold.",
                  "I really dislike this place.", "The room was dirty and cramped."],
    "negation": ["The food was not bad at all.", "I was not disappointed.", "It is not a bad idea.",
                 "Nothing about it was boring.", "The film was not good.", "I did not enjoy the show.",
                 "This was not a pleasant stay.", "I would not recommend it."],
    "but": ["The start was slow, but the ending was wonderful.", "It was expensive, but worth every penny.",
            "The weather was bad, but we had a great time.", "The queue was long, but the staff were lovely.",
            "The actors were good, but the plot made no sense.", "It looks nice, but it broke after a day.",
            "The room was pretty, but the bed was terrible.", "The idea was great, but the result was a mess."],
}
HELD_OUT_LABELS = [1, 1, 1, 1, 0, 0, 0, 0]  # per group
# Exercise 2: negations in both directions, none with a sentiment word of the held-out negations.
NEGATED_POSITIVE = ["I was not bored for a second.", "The service was not slow at all.",
                    "The price was not too high.", "I have no complaints."]
NEGATED_NEGATIVE = ["I did not like the food.", "The show was not funny.",
                    "It was not worth the price.", "The staff were not helpful."]


def centroid_classifier(model, tokenizer, positive: list[str], negative: list[str]):
    """A function texts → [1 (positive) or 0, ...], by cosine similarity to the two classes' mean vectors."""
    centroids = torch.stack([encode(model, tokenizer, texts, pooling="mean").mean(0)
                             for texts in (negative, positive)])  # [2, H]

    def classify(texts: list[str]) -> list[int]:
        vectors = encode(model, tokenizer, texts, pooling="mean")  # [n, H]
        similarity = torch.cosine_similarity(vectors[:, None], centroids[None], dim=-1)  # [n, 2]
        return similarity.argmax(-1).tolist()

    return classify


def fine_tune(model_dir, positive: list[str], negative: list[str], epochs: int = 4):
    """The lesson's recipe (seed 0, word embeddings frozen, AdamW 1e-4, batches of 8): a function texts → labels."""
    torch.manual_seed(0)
    classifier = BertForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    _, tokenizer = load(BertModel, model_dir)
    classifier.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    texts, labels = positive + negative, torch.tensor([1] * len(positive) + [0] * len(negative))
    optimizer = torch.optim.AdamW([p for p in classifier.parameters() if p.requires_grad], lr=1e-4)
    for _ in range(epochs):
        classifier.train()
        order = torch.randperm(len(texts))
        for start in range(0, len(order), 8):
            index = order[start:start + 8]
            loss = classifier(**model_inputs(tokenizer, classifier, [texts[i] for i in index]),
                              labels=labels[index]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    classifier.eval()

    def classify(batch: list[str]) -> list[int]:
        with torch.no_grad():
            return classifier(**model_inputs(tokenizer, classifier, batch)).logits.argmax(-1).tolist()

    return classify


def right_per_group(classify) -> dict[str, list[bool]]:
    return {group: [a == b for a, b in zip(classify(texts), HELD_OUT_LABELS, strict=True)]
            for group, texts in HELD_OUT.items()}


def show(title: str, right: dict[str, list[bool]]) -> None:
    print(title + ": " + ", ".join(f"{group} {sum(r)}/8" for group, r in right.items()))
    for group, r in right.items():
        wrong = [text for text, ok in zip(HELD_OUT[group], r, strict=True) if not ok]
        if wrong and group != "new words":
            print(f"  {group}, wrong: " + " | ".join(wrong))


if __name__ == "__main__":
    model_dir = first_available(minilm_dir(), "bert-base-uncased", DEMO_MODEL)
    # 1. No training at all: the nearest centroid of the 40 training sentences' mean-pooled vectors.
    model, tokenizer = load(BertModel, model_dir)
    centroid = right_per_group(centroid_classifier(model, tokenizer, POSITIVE, NEGATIVE))
    show("nearest centroid", centroid)
    assert sum(centroid["new words"]) >= 6  # plain sentences: mostly right without any training
    # 2. Fine-tuned as in the lesson, then again with the eight negated sentences added to the training set.
    lesson = right_per_group(fine_tune(model_dir, POSITIVE, NEGATIVE))
    show("fine-tuned on the lesson's 40", lesson)
    taught = right_per_group(fine_tune(model_dir, POSITIVE + NEGATED_POSITIVE, NEGATIVE + NEGATED_NEGATIVE))
    show("fine-tuned with 8 negations more", taught)
    assert lesson["negation"] == [False] * 4 + [True] * 4  # the lesson's model: every "not" reads as negative
    assert sum(taught["negation"][:4]) >= 1  # the eight examples: some negated bad words now read as positive
    assert sum(taught["negation"]) > sum(lesson["negation"])
