"""Lesson 7, exercise: find the head that attends most to the *next* token."""

import torch

from bert import BertModel
from bert.inference.pipelines import DEMO_MODEL, load
from bert.inference.study import attention_maps, first_available, minilm_dir


def next_token_head(maps) -> tuple[int, int, float]:
    """(layer, head, average weight on the next token) of the strongest next-token head; maps [L, N, T, T]. The
    next token of query i is key i + 1: the diagonal just above the main one (the last real token's next is [SEP])."""
    score = maps.diagonal(offset=1, dim1=-2, dim2=-1).mean(-1)  # [L, N]
    layer, head = divmod(int(score.argmax()), maps.shape[1])
    return layer, head, score.max().item()


if __name__ == "__main__":
    model, tokenizer = load(BertModel, first_available(minilm_dir(), "bert-base-uncased", DEMO_MODEL))
    tokens, maps = attention_maps(model, tokenizer, "The cat sat on the mat because it was tired.")
    layer, head, weight = next_token_head(maps)
    print(f"next-token head: layer {layer}, head {head}, average weight {weight:.2f} (uniform: {1 / len(tokens):.2f})")
    assert weight > 3 / len(tokens)  # far above what a head spreading its weight evenly would give
    assert maps[layer, head].argmax(-1)[:-2].eq(torch.arange(1, len(tokens) - 1)).float().mean() > 0.5
