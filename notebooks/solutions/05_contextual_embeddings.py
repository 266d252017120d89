"""Lesson 5, exercises: the *bank* quiz layer by layer, and by nearest neighbour (with the static row as a control).

The examples and the quiz are the lesson's (notebook section "The bank quiz")."""

import torch
import torch.nn.functional as F

from bert import BertModel
from bert.inference.pipelines import DEMO_MODEL, load, model_inputs
from bert.inference.study import first_available, minilm_dir

EXAMPLES = {"river": ["We sat on the grassy bank of the river.", "The boat drifted towards the muddy bank."],
            "money": ["She opened an account at the bank.", "The bank raised its interest rates."],
            "aviation": ["The pilot had to bank the plane left.", "Pilots bank the aircraft to turn."]}
QUIZ = [("Fishermen lined the bank of the stream.", "river"),
        ("Willows grow along the bank of the canal.", "river"),
        ("The flood washed away part of the bank.", "river"),
        ("Ducks waddled up the steep bank from the pond.", "river"),
        ("We pulled the canoe onto the sandy bank.", "river"),
        ("Reeds cover the far bank of the lake.", "river"),
        ("The children fished from the bank all afternoon.", "river"),
        ("I deposited my salary at the bank this morning.", "money"),
        ("The bank approved the loan.", "money"),
        ("He withdrew cash from the bank on Friday.", "money"),
        ("The central bank cut interest rates again.", "money"),
        ("She works as a teller at the bank downtown.", "money"),
        ("The bank charged a fee for the transfer.", "money"),
        ("Robbers broke into the bank overnight.", "money"),
        ("The fighter jet began to bank sharply to the right.", "aviation"),
        ("Small planes bank gently before they land.", "aviation"),
        ("The glider will bank into the rising air.", "aviation"),
        ("She felt the airliner bank as it turned towards the runway.", "aviation"),
        ("Birds bank and turn together in the wind.", "aviation"),
        ("The instructor told him to bank left and climb.", "aviation"),
        ("The helicopter had to bank hard to avoid the hill.", "aviation")]
SENSES = list(EXAMPLES)


@torch.no_grad()
def bank_by_layer(model, tokenizer, sentence: str) -> torch.Tensor:
    """The vector of *bank* after the embeddings and after each layer: [L + 1, H]."""
    batch = model_inputs(tokenizer, model, sentence)
    hidden = model(**batch, output_hidden_states=True).hidden_states  # L + 1 tensors [1, T, H]
    position = batch["input_ids"][0].tolist().index(tokenizer.convert_tokens_to_ids("bank"))
    return torch.stack([layer[0, position] for layer in hidden])


def centroid_answers(examples: torch.Tensor, quiz: torch.Tensor) -> list[str]:
    """examples [senses, per sense, H], quiz [Q, H] → the sense of the nearest centroid for each quiz vector."""
    centroids = F.normalize(F.normalize(examples, dim=-1).mean(1), dim=-1)  # [senses, H]
    return [SENSES[i] for i in (F.normalize(quiz, dim=-1) @ centroids.T).argmax(1).tolist()]


def neighbour_answers(examples: torch.Tensor, quiz: torch.Tensor) -> list[str]:
    """The sense of the single most similar labelled example (the first one on a tie)."""
    flat = F.normalize(examples.flatten(0, 1), dim=-1)                     # [senses × per sense, H]
    nearest = (F.normalize(quiz, dim=-1) @ flat.T).argmax(1)                # [Q]
    return [SENSES[i // examples.shape[1]] for i in nearest.tolist()]


def accuracy(answers: list[str]) -> float:
    return sum(a == sense for a, (_, sense) in zip(answers, QUIZ, strict=True)) / len(QUIZ)


if __name__ == "__main__":
    model, tokenizer = load(BertModel, first_available(minilm_dir(), "bert-base-uncased", DEMO_MODEL))
    examples = torch.stack([torch.stack([bank_by_layer(model, tokenizer, s) for s in EXAMPLES[sense]], 1)
                            for sense in SENSES], 1)                        # [L + 1, senses, 2, H]
    quiz = torch.stack([bank_by_layer(model, tokenizer, s) for s, _ in QUIZ], 1)  # [L + 1, Q, H]

    # 1. Layer by layer. At layer 0 a bank vector is the same embedding row plus its position's: the nearest
    # centroid is the one whose examples had bank at a similar position, which helps only where a sense tends to
    # sit (the verb mid-sentence, the noun near the end): not far above chance. Context comes in with layer 1.
    by_layer = [accuracy(centroid_answers(examples[layer], quiz[layer])) for layer in range(len(quiz))]
    for layer, score in enumerate(by_layer):
        print(f"layer {layer}: {score:.2f}")
    assert by_layer[0] < 0.6 and max(by_layer) >= 0.8 and by_layer[-1] > by_layer[0], by_layer

    # 2. Nearest neighbour on the last layer; then the static row, the same vector for every sentence: every
    # cosine ties, every sentence gets the same answer, so exactly one sense's 7 sentences are right.
    neighbour = accuracy(neighbour_answers(examples[-1], quiz[-1]))
    print(f"nearest neighbour: {neighbour:.2f} (nearest centroid: {by_layer[-1]:.2f})")
    assert neighbour >= 0.6, neighbour
    static = model.embeddings.word_embeddings.weight[tokenizer.convert_tokens_to_ids("bank")].detach()  # [H]
    static_answers = neighbour_answers(static.expand(*examples.shape[1:]), static.expand(len(QUIZ), -1))
    print(f"static row: {accuracy(static_answers):.2f}, answers {set(static_answers)}")
    assert len(set(static_answers)) == 1 and accuracy(static_answers) == 7 / 21
