"""Probes: a few sentences with a masked word, answered by the model at every evaluation, so that a run shows what
it has learnt the way nanoGPT shows samples — frequent words first ("the", ","), then words of the right kind, then
the right words. Each evaluation's answers go to the log and to metrics.jsonl (``probes`` of its eval line)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from bert.errors import BertError
from bert.inference.pipelines import fill_mask
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer

# English, everyday and encyclopedic (WikiText-like): a date, a verb, a place.
DEFAULT_PROBES = ("The film was released in [MASK] 2009.", "She [MASK] the game in the second half.",
                  "The river flows into the [MASK] near the city.")
TOP_K = 5


def probe_texts(texts: Sequence[str] | None, tokenizer: FastTokenizer) -> list[str]:
    """The probes in the tokenizer's own mask token (``[MASK]`` written in any of them becomes RoBERTa's ``<mask>``);
    BertError for one without a mask."""
    chosen = [text.replace("[MASK]", tokenizer.mask_token) for text in (texts or DEFAULT_PROBES)]
    for text in chosen:
        if tokenizer.mask_token not in text:
            raise BertError(f"--probe {text!r} has no {tokenizer.mask_token}: write it where a word is to be guessed")
    return chosen


@torch.no_grad()
def answer_probes(model: PreTrainedModel, tokenizer: FastTokenizer, texts: Sequence[str]) -> list[dict[str, Any]]:
    """Each probe's top answers for its first mask: ``[{"text", "top": [word, ...]}]``."""
    return [{"text": text, "top": [c["token_str"].strip() for c in fill_mask(model, tokenizer, text, top_k=TOP_K)[0]]}
            for text in texts]


def probe_lines(answers: Sequence[dict[str, Any]]) -> list[str]:
    """The log's lines: ``  The film was released in [MASK] 2009. → june, march, november, july, may``."""
    return [f"  {answer['text']} → {', '.join(answer['top'])}" for answer in answers]
