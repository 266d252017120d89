"""The released RoBERTa, ALBERT and DistilBERT checkpoints, when they are on this machine (weights/<name> or the
Hugging Face cache; never downloaded here): fill-mask on "The capital of France is <mask>." (each model's own mask
token) and the last hidden state equal transformers' within 1e-4, and Paris is the top answer. Skipped, with the
reason, where a checkpoint is absent (as the bert-base-uncased golden tests in test_pipelines.py are)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

import bert
from bert.hub import resolve_model_dir
from bert.inference.pipelines import fill_mask, load, model_inputs

# name → the names it may be stored under (the Hub moved these repositories into their organisations)
RELEASED = {"roberta-base": ("roberta-base", "FacebookAI/roberta-base"),
            "albert-base-v2": ("albert-base-v2", "albert/albert-base-v2"),
            "distilbert-base-uncased": ("distilbert-base-uncased", "distilbert/distilbert-base-uncased")}
TOLERANCE = 1e-4


def local_checkpoint(name: str) -> Path:
    """The checkpoint's folder, or a pytest skip that says where it was looked for and how to get it."""
    for candidate in RELEASED[name]:
        try:
            location = resolve_model_dir(candidate, allow_download=False)
        except bert.BertError:
            continue
        return location if location.is_dir() else location.parent
    pytest.skip(f"{name} is not local (weights/ or HF cache); `bert download {name}` where there is internet")


@pytest.mark.parametrize("name", RELEASED)
def test_golden_fill_mask_says_paris_and_equals_transformers(name: str) -> None:
    folder = local_checkpoint(name)
    model, tokenizer = load("masked_lm", folder)
    text = f"The capital of France is {tokenizer.mask_token}."
    [candidates] = fill_mask(model, tokenizer, text, top_k=5)
    assert candidates[0]["token_str"].strip().lower() == "paris"  # " Paris", "paris"

    reference = transformers.AutoModelForMaskedLM.from_pretrained(folder).eval()
    reference_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    batch = reference_tokenizer(text, return_tensors="pt")
    assert batch["input_ids"].tolist() == model_inputs(tokenizer, model, text)["input_ids"].tolist()
    with torch.no_grad():
        logits = reference(**batch).logits[0]
    position = (batch["input_ids"][0] == reference_tokenizer.mask_token_id).nonzero().item()
    scores, ids = logits[position].softmax(-1).topk(5)
    assert [c["token"] for c in candidates] == ids.tolist()
    assert max(abs(c["score"] - s) for c, s in zip(candidates, scores.tolist(), strict=True)) < TOLERANCE


@pytest.mark.parametrize("name", RELEASED)
def test_golden_last_hidden_state_equals_transformers(name: str) -> None:
    folder = local_checkpoint(name)
    model, tokenizer = load("base", folder)
    reference = transformers.AutoModel.from_pretrained(folder).eval()
    texts = ["The capital of France is Paris.", "A longer second sentence, so that the first one is padded."]
    batch = model_inputs(tokenizer, model, texts)
    with torch.no_grad():
        ours = model(**batch).last_hidden_state
        theirs = reference(**batch).last_hidden_state
    real = batch["attention_mask"].bool()  # padding positions are nobody's output
    torch.testing.assert_close(ours[real], theirs[real], atol=TOLERANCE, rtol=0)
