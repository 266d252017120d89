"""What the bundled demo model's card (weights/bert-demo/README.md: "The lessons' example sentences") says it answers,
checked word for word against transformers running the same weights, so that the sentence fails here if the model or
our code ever answers otherwise; and its size, as README and the card state it."""

import re
from pathlib import Path

import pytest
import torch
import transformers

import bert
from bert.inference.pipelines import DEMO_MODEL, fill_mask, load, next_sentence

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
CARD = (DEMO_MODEL / "README.md").read_text()
WHAT_IT_ANSWERS = " ".join(CARD.split("The lessons' example sentences", 1)[1].split("\n\n", 2)[1].split())


def _quoted_top5(sentence: str) -> list[str]:
    """The card's top 5 for a fill-mask sentence: `SENTENCE` → a (0.03), b (0.02), c (0.01), d (0.01), e (0.01)."""
    match = re.search(re.escape(f"`{sentence}` →") + r" ((?:[^,*]+ \([0-9.]+\),? ?){5})", WHAT_IT_ANSWERS)
    assert match, f"the model card no longer quotes the answer for {sentence!r}"
    return [word.split(" (")[0].strip() for word in match.group(1).split(",")]


def _quoted_probability(sentence_b: str) -> float:
    match = re.search(re.escape(f"`{sentence_b}`") + r": \w+, P\(IsNext\) = ([0-9.]+)", WHAT_IT_ANSWERS)
    assert match, f"the model card no longer quotes P(IsNext) for {sentence_b!r}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def reference() -> transformers.BertForPreTraining:
    return transformers.BertForPreTraining.from_pretrained(DEMO_MODEL, torch_dtype=torch.float32).eval()


@pytest.mark.parametrize("sentence", ["The capital of France is [MASK].", "The cat sat on the [MASK]."])
def test_model_card_top5_for_the_demo_model_is_what_ours_and_transformers_answer(sentence, reference):
    model, tokenizer = load(bert.BertForMaskedLM, DEMO_MODEL)
    ours = [c["token_str"] for c in fill_mask(model, tokenizer, sentence, top_k=5)[0]]
    batch = tokenizer(sentence, return_tensors="pt")
    with torch.no_grad():
        logits = reference(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                           attention_mask=batch["attention_mask"]).prediction_logits
    mask_at = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero().item()
    theirs = tokenizer.convert_ids_to_tokens(logits[0, mask_at].topk(5).indices.tolist())
    assert ours == theirs == _quoted_top5(sentence)


@pytest.mark.parametrize("sentence_b", ["He bought a gallon of milk.", "Penguins are flightless birds."])
def test_model_card_next_sentence_probability_of_the_demo_model_is_ours_and_transformers(sentence_b, reference):
    sentence_a = "The man went to the store."
    model, tokenizer = load(bert.BertForNextSentencePrediction, DEMO_MODEL)
    ours = next_sentence(model, tokenizer, sentence_a, sentence_b)["is_next"]
    batch = tokenizer(sentence_a, sentence_b, return_tensors="pt")
    with torch.no_grad():
        logits = reference(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                           attention_mask=batch["attention_mask"]).seq_relationship_logits
    theirs = logits.softmax(-1)[0, 0].item()  # label 0 = IsNext
    assert ours == pytest.approx(theirs, abs=1e-5)
    assert round(ours, 3) == _quoted_probability(sentence_b)


def test_readme_and_model_card_size_of_the_demo_model_is_the_shipped_files():
    quoted = re.search(r"`weights/bert-demo/` \(([0-9.]+) MB, float16", README)
    assert quoted, "README no longer states the demo model's size"
    in_card = re.search(r"`model.safetensors` in float16 \(([0-9.]+) MB\)", CARD)
    assert in_card, "the model card no longer states the demo model's size"
    size_mb = (DEMO_MODEL / "model.safetensors").stat().st_size / 1e6
    assert round(size_mb, 1) == float(quoted.group(1)) == float(in_card.group(1))


def test_the_cloze_score_the_model_card_and_the_inference_guide_state_is_what_the_demo_model_scores():
    """The card's "an accepted answer in the top 5 for **21/40**" (and the inference guide's "21 of 40"), measured
    again with scripts/cloze.py on the shipped model."""
    import runpy

    cloze = runpy.run_path(str(Path(__file__).resolve().parent.parent / "scripts" / "cloze.py"))
    hits, answers = cloze["cloze_hits"](str(DEMO_MODEL))
    card = re.search(r"top 5 for \*\*(\d+)/(\d+)\*\*", CARD)
    assert card, "the model card no longer states its cloze score"
    assert (hits, len(answers)) == (int(card.group(1)), int(card.group(2))) == (hits, len(cloze["CLOZE"]))
    guide = (Path(__file__).resolve().parent.parent / "docs" / "guides" / "inference.md").read_text()
    assert f"accepted answer on {hits} of {len(answers)}" in " ".join(guide.split())
