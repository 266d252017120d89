"""bert.inference.perplexity: pseudo-log-likelihoods and pseudo-perplexity (Salazar et al. 2020), checked against a
plain one-row-at-a-time computation with the model's full forward pass, and against values known exactly."""

from __future__ import annotations

import math

import pytest
import torch
from support import make_tiny_model

from bert.errors import BertError
from bert.heads import BertForMaskedLM, BertForPreTraining
from bert.inference.perplexity import pseudo_log_likelihoods, pseudo_perplexity
from bert.inference.pipelines import load

TEXTS = ["Mr. Utterson the lawyer was a man of a rugged countenance.", "Poole opened the door.",
         "The fog lay thick over Soho, and the lamps were lit at noon."]


@pytest.fixture(scope="module", params=[BertForMaskedLM, BertForPreTraining])
def tiny(request, tmp_path_factory):
    folder = make_tiny_model(tmp_path_factory.mktemp("tiny"), cls=request.param)
    return load(request.param, folder)


def plain_pll(model, tokenizer, text: str) -> tuple[float, int]:
    """Mask each word piece in turn, run the whole model on that one row, add log P(the true piece) there."""
    ids = tokenizer(text)["input_ids"]
    total = 0.0
    for position in range(1, len(ids) - 1):  # [CLS] and [SEP] are not scored
        masked = torch.tensor([ids[:position] + [tokenizer.mask_token_id] + ids[position + 1:]])
        with torch.no_grad():
            output = model(masked)
        logits = output.prediction_logits if hasattr(output, "prediction_logits") else output.logits
        total += logits[0, position].log_softmax(dim=-1)[ids[position]].item()
    return total, len(ids) - 2


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_equals_masking_each_piece_in_turn(tiny, batch_size):
    model, tokenizer = tiny
    scored = pseudo_log_likelihoods(model, tokenizer, TEXTS, batch_size=batch_size)  # rows of different lengths
    for text, (pll, n) in zip(TEXTS, scored, strict=True):
        expected, pieces = plain_pll(model, tokenizer, text)
        assert n == pieces == len(tokenizer.tokenize(text))
        assert pll == pytest.approx(expected, abs=1e-4)
    total = sum(plain_pll(model, tokenizer, text)[0] for text in TEXTS)
    pieces = sum(len(tokenizer.tokenize(text)) for text in TEXTS)
    assert pseudo_perplexity(model, tokenizer, TEXTS, batch_size) == pytest.approx(math.exp(-total / pieces),
                                                                                   rel=1e-5)


def test_uniform_model_scores_the_vocabulary_size(tmp_path):
    """A model whose MLM logits are all equal gives every piece probability 1/V: pseudo-perplexity V exactly."""
    model, tokenizer = load(BertForMaskedLM, make_tiny_model(tmp_path, cls=BertForMaskedLM))
    with torch.no_grad():  # dense → 0, GELU(0) = 0, LayerNorm(0) = its bias = 0, decoder(0) + bias = 0 for every word
        model.cls.predictions.transform.dense.weight.zero_()
        model.cls.predictions.transform.dense.bias.zero_()
        model.cls.predictions.transform.LayerNorm.bias.zero_()
        model.cls.predictions.bias.zero_()
    assert pseudo_perplexity(model, tokenizer, TEXTS) == pytest.approx(model.config.vocab_size, rel=1e-5)


def test_a_model_that_knows_the_text_scores_lower(tmp_path):
    """The same tiny model, its MLM bias raised for the pieces of one text: that text's pseudo-perplexity falls."""
    model, tokenizer = load(BertForMaskedLM, make_tiny_model(tmp_path, cls=BertForMaskedLM))
    before = pseudo_perplexity(model, tokenizer, TEXTS[:1])
    with torch.no_grad():
        model.cls.predictions.bias[tokenizer(TEXTS[0])["input_ids"][1:-1]] += 5.0
    assert pseudo_perplexity(model, tokenizer, TEXTS[:1]) < before / 10


def test_bad_inputs_are_one_line_errors(tiny):
    model, tokenizer = tiny
    with pytest.raises(BertError, match="a list of texts"):
        pseudo_perplexity(model, tokenizer, "one string")
    with pytest.raises(BertError, match="no texts"):
        pseudo_perplexity(model, tokenizer, [])
    with pytest.raises(BertError, match="no word pieces"):
        pseudo_perplexity(model, tokenizer, [""])
