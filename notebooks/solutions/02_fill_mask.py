"""Lesson 2, exercises: the rank of a chosen word at [MASK]; filling two masks one after the other; the cloze test
scored at several k."""

import runpy
from pathlib import Path

import torch

from bert import BertForMaskedLM
from bert.inference.pipelines import DEMO_MODEL, fill_mask, load, model_inputs
from bert.inference.study import first_available

CLOZE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cloze.py"
CLOZE = runpy.run_path(str(CLOZE_SCRIPT))["CLOZE"]  # 40 × (sentence with one [MASK], accepted answers)


def rank_of(model, tokenizer, text: str, word: str) -> tuple[int, float]:
    """1-based rank and probability of ``word`` (one vocabulary piece) at the only [MASK] of ``text``."""
    batch = model_inputs(tokenizer, model, text)
    position = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero().item()
    with torch.no_grad():
        probabilities = model(**batch).logits[0, position].softmax(-1)  # [V]
    word_id = tokenizer.convert_tokens_to_ids(word)
    return int((probabilities > probabilities[word_id]).sum()) + 1, probabilities[word_id].item()


def fill_one_at_a_time(model, tokenizer, text: str) -> str:
    """Fill the [MASK]s left to right, each with the best word given the ones already filled."""
    while "[MASK]" in text:
        best = fill_mask(model, tokenizer, text, top_k=1)[0][0]["token_str"]
        text = text.replace("[MASK]", best, 1)
    return text


def hits_at(model, tokenizer, k: int) -> int:
    """How many of the 40 cloze sentences have an accepted answer among the model's top k."""
    answers = fill_mask(model, tokenizer, [sentence for sentence, _ in CLOZE], top_k=k)
    return sum(bool(accepted & {c["token_str"] for c in candidates})
               for (_, accepted), [candidates] in zip(CLOZE, answers, strict=True))


if __name__ == "__main__":
    chosen = first_available("bert-base-uncased", DEMO_MODEL)
    model, tokenizer = load(BertForMaskedLM, chosen)
    text = "The capital of France is [MASK]."
    top = fill_mask(model, tokenizer, text, top_k=3)[0]
    for expected_rank, candidate in enumerate(top, 1):
        rank, probability = rank_of(model, tokenizer, text, candidate["token_str"])
        assert rank == expected_rank and abs(probability - candidate["score"]) < 1e-5
    print("paris:", rank_of(model, tokenizer, text, "paris"))
    filled = fill_one_at_a_time(model, tokenizer, "He went to the [MASK] to buy some [MASK].")
    assert "[MASK]" not in filled and filled.startswith("He went to the ")
    print(filled)
    by_k = {k: hits_at(model, tokenizer, k) for k in (1, 5, 10, 20)}
    print("cloze sentences right in the top k:", by_k)
    assert list(by_k.values()) == sorted(by_k.values())  # a longer list can only catch more
    assert by_k[5] == runpy.run_path(str(CLOZE_SCRIPT))["cloze_hits"](str(chosen))[0]  # the script's own count
