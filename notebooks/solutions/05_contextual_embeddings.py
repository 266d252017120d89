"""Lesson 5, exercise: the "bank" quiz: which sense of *bank* is a new sentence using? Nearest labelled example
by the contextual vector of *bank*."""

import torch

from bert import BertModel
from bert.inference.pipelines import DEMO_MODEL, load, word_vector
from bert.inference.study import first_available, minilm_dir

EXAMPLES = {"river": ["We sat on the grassy bank of the river.", "The boat drifted towards the muddy bank."],
            "money": ["She opened an account at the bank.", "The bank raised its interest rates."]}


def bank_sense(model, tokenizer, sentence: str) -> str:
    """The sense whose example sentences' *bank* vectors are, on average, most similar to this one's."""
    vector = word_vector(model, tokenizer, sentence, "bank")
    similarity = {sense: torch.stack([torch.cosine_similarity(vector, word_vector(model, tokenizer, s, "bank"), 0)
                                      for s in sentences]).mean().item()
                  for sense, sentences in EXAMPLES.items()}
    return max(similarity, key=similarity.get)


if __name__ == "__main__":
    model, tokenizer = load(BertModel, first_available(minilm_dir(), "bert-base-uncased", DEMO_MODEL))
    quiz = {"I deposited my salary at the bank this morning.": "money",
            "Fishermen lined the bank of the stream.": "river",
            "The bank approved the loan.": "money",
            "Willows grow along the bank of the canal.": "river"}
    for sentence, expected in quiz.items():
        answer = bank_sense(model, tokenizer, sentence)
        print(f"{answer:6} {sentence}")
        assert answer == expected, sentence
