"""Lesson 9b, exercise 1: score whole sentences by pseudo-log-likelihood (a name of several pieces needs no [MASK] per
piece), and the PLL written by hand, the masked copies of several sentences batched together with padding.

    python notebooks/solutions/09b_domain_adaptation.py             # the demo model
    python notebooks/solutions/09b_domain_adaptation.py RUN/final   # the adapted model of the lesson (its WORK/run)
"""

import sys

import torch

from bert import BertForPreTraining
from bert.inference.perplexity import pseudo_log_likelihoods
from bert.inference.pipelines import DEMO_MODEL, load

NAMES = ["Utterson", "Hyde", "Jekyll", "Poole", "Smith", "Brown"]
TEMPLATE = "The lawyer, Mr. {}, read the will again."


def my_plls(model, tokenizer, sentences: list[str], batch_size: int = 32) -> list[float]:
    """Each sentence's PLL: the sum over its word pieces of log P(piece | the sentence with that piece masked).

    Every masked copy of every sentence is one row; rows of different lengths share a batch, padded with [PAD] and
    left out of attention by the attention mask (without it the padding would change the answers)."""
    rows = []  # (sentence, ids with one piece masked, that position, the true piece)
    for index, sentence in enumerate(sentences):
        ids = tokenizer(sentence)["input_ids"]  # [CLS] ... [SEP]: those two are not scored
        for position in range(1, len(ids) - 1):
            rows.append((index, ids[:position] + [tokenizer.mask_token_id] + ids[position + 1:], position,
                         ids[position]))
    totals = [0.0] * len(sentences)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(ids) for _, ids, _, _ in chunk)
        input_ids = torch.tensor([ids + [tokenizer.pad_token_id] * (width - len(ids)) for _, ids, _, _ in chunk])
        attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for _, ids, _, _ in chunk])
        with torch.no_grad():
            logits = model(input_ids, attention_mask=attention_mask).prediction_logits  # [R, T, V]
        for row, (index, _, position, true_id) in enumerate(chunk):
            totals[index] += logits[row, position].log_softmax(dim=-1)[true_id].item()
    return totals


if __name__ == "__main__":
    model_dir = sys.argv[1] if len(sys.argv) > 1 else DEMO_MODEL
    model, tokenizer = load(BertForPreTraining, model_dir)
    sentences = [TEMPLATE.format(name) for name in NAMES]
    mine = my_plls(model, tokenizer, sentences, batch_size=7)  # 7 rows a batch: sentences mixed, padding needed
    one_by_one = my_plls(model, tokenizer, sentences, batch_size=1)  # no padding at all
    library = [pll for pll, _ in pseudo_log_likelihoods(model, tokenizer, sentences)]
    print(f"'{TEMPLATE.format('___')}' ranked by PLL ({model_dir}):")
    for name, pll, reference in sorted(zip(NAMES, mine, library, strict=True), key=lambda item: -item[1]):
        pieces = tokenizer.tokenize(name)
        print(f"  {name:10} PLL {pll:7.2f} (library {reference:7.2f}), {len(pieces)} piece(s): {' '.join(pieces)}")
    assert all(abs(a - b) < 1e-3 for a, b in zip(mine, library, strict=True)), (mine, library)
    assert all(abs(a - b) < 1e-3 for a, b in zip(mine, one_by_one, strict=True)), (mine, one_by_one)
    print("my PLLs equal bert.inference.perplexity's, batched with padding and one row at a time")
    # A PLL is a sum over pieces, and each masked piece of an unknown name is hard to guess: a name the vocabulary
    # splits (utter ##son) starts far behind a one-piece name, which is what reading the book changes.
