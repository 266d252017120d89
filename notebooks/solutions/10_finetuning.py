"""Lesson 10, exercises: pooler vs [CLS] vs mean pooling as features for SST-2; span decoding without a [T, T]
matrix."""

import csv

import torch

from bert import BertModel
from bert.inference.pipelines import DEMO_MODEL, load, model_inputs
from bert.inference.study import first_available, minilm_dir


def features(model, tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    """The three sentence vectors [n, H]: pooler output, raw [CLS] vector, mean of the real tokens."""
    out = {"pooler": [], "cls": [], "mean": []}
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch = model_inputs(tokenizer, model, texts[start:start + 64])
            output = model(**batch)
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out["pooler"].append(output.pooler_output)
            out["cls"].append(output.last_hidden_state[:, 0])
            out["mean"].append((output.last_hidden_state * mask).sum(1) / mask.sum(1))
    return {name: torch.cat(parts) for name, parts in out.items()}


def linear_probe(train_x, train_y, test_x, test_y, steps: int = 100) -> float:
    """Held-out accuracy of a logistic regression (L2-regularised, few steps) trained on frozen features."""
    torch.manual_seed(0)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    layer = torch.nn.Linear(train_x.shape[1], 2)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(layer((train_x - mean) / std), train_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (layer((test_x - mean) / std).argmax(-1) == test_y).float().mean().item()


def best_span_loop(start, end, in_context, max_tokens: int = 15) -> tuple[int, int]:
    best, answer = float("-inf"), (0, 0)
    for i in range(len(start)):
        if not in_context[i]:
            continue
        for j in range(i, min(i + max_tokens, len(end))):
            if in_context[j] and start[i] + end[j] > best:
                best, answer = start[i] + end[j], (i, j)
    return answer


def best_span_matrix(start, end, in_context, max_tokens: int = 15) -> tuple[int, int]:
    length = start.shape[0]
    allowed = torch.ones(length, length, dtype=torch.bool).triu().tril(max_tokens - 1)
    allowed &= in_context[:, None] & in_context[None, :]
    flat = (start[:, None] + end[None, :]).masked_fill(~allowed, float("-inf")).argmax().item()
    return divmod(flat, length)


def sst2(path, count):
    with open(path, encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))[:count]
    return [r["sentence"].strip() for r in rows], torch.tensor([int(r["label"]) for r in rows])


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from lessons import shared_data

    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        length = int(torch.randint(5, 40, (1,), generator=generator))
        start, end = torch.randn(length, generator=generator), torch.randn(length, generator=generator)
        in_context = torch.rand(length, generator=generator) > 0.3
        if in_context.any():
            assert best_span_loop(start, end, in_context) == best_span_matrix(start, end, in_context)
    print("span decoding: the loop and the [T, T] matrix agree on 200 random cases")

    model, tokenizer = load(BertModel, first_available(minilm_dir(), "bert-base-uncased", DEMO_MODEL))
    train_texts, train_y = sst2(shared_data("sst2") / "train.tsv", 600)
    dev_texts, dev_y = sst2(shared_data("sst2") / "dev.tsv", 300)
    train_f, dev_f = features(model, tokenizer, train_texts), features(model, tokenizer, dev_texts)
    accuracy = {name: linear_probe(train_f[name], train_y, dev_f[name], dev_y) for name in train_f}
    print({name: round(value, 3) for name, value in accuracy.items()})
    # Mean pooling reads every token and carries the most sentiment; the pooler, trained (if at all) for
    # next-sentence prediction, the least: fine-tuning is what makes it useful.
    assert accuracy["mean"] > max(accuracy["pooler"], 0.65), accuracy
