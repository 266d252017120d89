"""What ``bert train-tokenizer`` and ``bert prepare`` recommend for pretraining from random weights on a small
corpus, from measurements (docs/guides/pretraining.md, "From scratch"):

* **A vocabulary sized to the corpus.** On WikiText-2 (2.4M tokens) an 8,192-piece vocabulary trained on the corpus
  learned as much per token as bert-base-uncased's 30,522 pieces and trained 1.45× more tokens per second (the
  output layer's cost grows with the vocabulary): about 300 tokens of text per piece. A vocabulary far larger than
  that spends its compute on pieces the model sees a few times.
* **Several passes over the data.** The from-scratch recipe leaves the frequent-word plateau after several million
  tokens; a corpus of a few million tokens is read several times over, which masking anew at every pass makes
  useful.

To continue pretraining a checkpoint none of this applies: the data must use the checkpoint's own vocabulary.
"""

from __future__ import annotations

import math

TOKENS_PER_PIECE = 300  # WikiText-2: 2.4M tokens of text for 8,192 pieces, the measured recipe


def suggested_vocab_size(tokens: int) -> int:
    """A power of two near ``tokens / TOKENS_PER_PIECE``, at least 2,048 and at most 32,768."""
    return 2 ** min(15, max(11, round(math.log2(max(tokens, 1) / TOKENS_PER_PIECE))))


def vocabulary_advice(tokens: int, vocab_size: int) -> str | None:
    """A note when ``vocab_size`` is much larger than a corpus of ``tokens`` tokens can train from random weights
    (fewer than half of :data:`TOKENS_PER_PIECE` tokens per piece); None when it suits the corpus."""
    per_piece = tokens / max(vocab_size, 1)
    if per_piece >= TOKENS_PER_PIECE / 2:
        return None
    return (f"{tokens:,} tokens of text for {vocab_size:,} pieces is {per_piece:.0f} per piece; to pretrain from "
            f"random weights, a vocabulary trained on this corpus with about {TOKENS_PER_PIECE} tokens per piece "
            f"trains faster for the same accuracy (WikiText-2: 8,192 pieces): bert train-tokenizer FILES --vocab-size "
            f"{suggested_vocab_size(tokens)}. (To continue pretraining a checkpoint, keep its vocabulary.)")
