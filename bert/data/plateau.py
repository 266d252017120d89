"""The frequent-word plateau: what a masked LM scores before it uses the context, computed from the corpus.

Early in pretraining from random weights a BERT learns which words are frequent and to copy an unchanged token, and
nothing else: at every masked position it guesses by frequency. Its held-out figures then sit on a plateau whose
height the corpus alone decides. Held-out MLM masks 15% of tokens and, of those, replaces 80% by the mask token, 10%
by a random token and keeps 10% (BERT's rule); a frequency-only guesser

* is right on a kept token (it copies it: 10%) and, elsewhere, as often as the most frequent word occurs:
  accuracy ≈ 0.9 · p_max + 0.1;
* pays the corpus's unigram entropy H = −Σ p log p on the other 90%: loss ≈ 0.9 · H nats.

A run has left the plateau once its held-out accuracy clears the plateau's by :data:`EXIT_MARGIN` (WikiText-2 with an
8,192-piece vocabulary: 0.150 → 0.20). How many tokens that takes is what the from-scratch benchmark measures.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

KEPT, REPLACED = 0.1, 0.9  # of the held-out masked tokens: kept as they are / replaced ([MASK] or random)
EXIT_MARGIN = 0.05  # accuracy above the plateau's that counts as having left it


def unigram_stats(ids: np.ndarray, vocab_size: int, special_ids: Iterable[int]) -> dict[str, Any]:
    """The corpus's word-piece frequencies, special tokens left out: ``entropy_nats`` (H), ``top_id`` and
    ``top_share`` (p_max), ``tokens`` counted; and the plateau they imply (``plateau_loss``, ``plateau_accuracy``)."""
    counts = np.bincount(np.asarray(ids, dtype=np.int64).ravel(), minlength=vocab_size).astype(np.float64)
    counts[[i for i in special_ids if i is not None and 0 <= i < vocab_size]] = 0
    total = counts.sum()
    if total == 0:
        return {"tokens": 0}
    p = counts[counts > 0] / total
    entropy = float(-(p * np.log(p)).sum())
    top = int(counts.argmax())
    return {"tokens": int(total), "entropy_nats": entropy, "top_id": top, "top_share": float(counts[top] / total),
            "plateau_loss": REPLACED * entropy, "plateau_accuracy": REPLACED * float(counts[top] / total) + KEPT}


def on_plateau(accuracy: float, stats: dict[str, Any]) -> bool:
    """Whether a held-out MLM accuracy is still within :data:`EXIT_MARGIN` of the plateau's."""
    return "plateau_accuracy" in stats and accuracy < stats["plateau_accuracy"] + EXIT_MARGIN


def plateau_note(step: int, tokens: int, loss: float, accuracy: float, stats: dict[str, Any], top_word: str,
                 left_at: tuple[int, int] | None) -> str | None:
    """One line for the log after an evaluation: on the plateau (with its arithmetic), or where the run left it."""
    if "plateau_accuracy" not in stats:
        return None
    exit_accuracy = stats["plateau_accuracy"] + EXIT_MARGIN
    if on_plateau(accuracy, stats):
        where = "on" if accuracy >= stats["plateau_accuracy"] - EXIT_MARGIN else "still below"
        return (f"{where} the frequent-word plateau: held-out accuracy {accuracy:.3f} vs "
                f"{stats['plateau_accuracy']:.3f} for guessing by frequency (0.9 × P({top_word}) "
                f"{stats['top_share']:.3f} + 0.1 kept), loss {loss:.2f} vs {stats['plateau_loss']:.2f} nats (0.9 × the "
                f"corpus's unigram entropy {stats['entropy_nats']:.2f}); more tokens leave it (now "
                f"{tokens / 1e6:.1f}M; the exit: accuracy {exit_accuracy:.3f})")
    if left_at is not None and left_at[0] == step == 0:
        return (f"above the frequent-word plateau from the start (held-out accuracy {accuracy:.3f} > "
                f"{exit_accuracy:.3f}): a pretrained model")
    if left_at is not None and left_at[0] == step:
        return (f"left the frequent-word plateau: held-out accuracy {accuracy:.3f} > {exit_accuracy:.3f} after "
                f"{tokens / 1e6:.1f}M tokens (step {step})")
    return None
