"""Pseudo-perplexity: how well a masked language model predicts a text, each token from all the others.

A left-to-right model's perplexity is ``exp`` of its mean negative log-likelihood per token. A masked LM has no such
chain rule, so Salazar et al. (2020, "Masked Language Model Scoring") mask each token in turn, read the model's
log-probability of the true token there, and sum: the text's **pseudo-log-likelihood** (PLL). The
**pseudo-perplexity** of a set of texts is ``exp(-(sum of their PLLs) / (number of tokens scored))``: 1 for a model
that is always sure and right, V for one that spreads its guess evenly over a V-word vocabulary. Word pieces are
scored (``[CLS]``/``[SEP]`` are not), so the figure depends on the tokenizer: compare models that share one.

A text of n pieces costs n forward passes (run here as rows of batches, the MLM head applied at the one masked
position of each row only), so score a sample of sentences, not a corpus.

    model, tokenizer = load(BertForMaskedLM, "weights/bert-demo")
    pseudo_perplexity(model, tokenizer, ["Mr. Utterson the lawyer was a man of a rugged countenance."])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from bert.errors import BertError
from bert.finetune.batching import collate
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer


@torch.no_grad()
def pseudo_log_likelihoods(model: PreTrainedModel, tokenizer: FastTokenizer, texts: Sequence[str],
                           batch_size: int = 64) -> list[tuple[float, int]]:
    """For each text, ``(PLL, n)``: the sum over its n word pieces of log P(piece | the text with that piece
    masked), in nats, and n. Texts longer than the model's positions are cut to fit; every piece of a text is
    masked in a row of its own (``batch_size`` rows per forward pass). ``model`` is any masked-LM head of this
    package (``BertForMaskedLM``, ``BertForPreTraining``, the variants'), in eval mode."""
    if isinstance(texts, str):
        raise BertError("pseudo_log_likelihoods takes a list of texts, not one string: wrap it in [...]")
    if not texts:
        raise BertError("no texts to score")
    device = next(model.parameters()).device
    limit = model.base_model.embeddings.max_length()  # RoBERTa's table has pad_token_id + 1 rows more
    encoded = tokenizer(list(texts), truncation=True, max_length=limit, return_special_tokens_mask=True)
    rows: list[tuple[int, list[int], int]] = []  # (text index, ids with one piece masked, masked position)
    for index, (ids, special) in enumerate(zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True)):
        rows += [(index, ids[:p] + [tokenizer.mask_token_id] + ids[p + 1:], p)
                 for p in range(len(ids)) if not special[p]]
    sums = [0.0] * len(texts)
    counts = [0] * len(texts)
    rows.sort(key=lambda row: len(row[1]))  # similar lengths together: little padding
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        batch = collate([{"input_ids": ids} for _, ids, _ in chunk], tokenizer.pad_token_id)  # padded [R, T]
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        positions = torch.tensor([p for _, _, p in chunk])
        targets = torch.tensor([encoded["input_ids"][i][p] for i, _, p in chunk])
        hidden = model.run_encoder(input_ids.to(device), torch.zeros_like(input_ids).to(device),
                                   attention_mask.to(device), False, False).last_hidden_state  # [R, T, H]
        at_mask = hidden[torch.arange(len(chunk), device=device), positions.to(device)]  # [R, H]
        log_probs = model.mlm_logits(at_mask[:, None, :])[:, 0].float().log_softmax(dim=-1)  # [R, V]
        picked = log_probs.gather(1, targets.to(device)[:, None])[:, 0].tolist()
        for (index, _, _), value in zip(chunk, picked, strict=True):
            sums[index] += value
            counts[index] += 1
    return list(zip(sums, counts, strict=True))


def pseudo_perplexity(model: PreTrainedModel, tokenizer: FastTokenizer, texts: Sequence[str],
                      batch_size: int = 64) -> float:
    """``exp(-(sum of the texts' pseudo-log-likelihoods) / (pieces scored))`` (see the module docstring)."""
    scored = pseudo_log_likelihoods(model, tokenizer, texts, batch_size)
    pieces = sum(n for _, n in scored)
    if pieces == 0:
        raise BertError("the texts have no word pieces to score")
    return math.exp(-sum(pll for pll, _ in scored) / pieces)
