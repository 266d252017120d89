"""Dynamic masked-LM masking, redone for every batch (RoBERTa-style; replaces the original's static dupes).

Per sequence, among the *candidate* positions (real tokens that are not [CLS], [SEP], [PAD] or [MASK]; built
from a tokenizer, none of its special tokens (RoBERTa's ``<s>``, ``<pad>``, ``<unk>``, ...) and no bracketed token
at all, so [UNK] is never a target either: a model trained to predict it answers [UNK] wherever it is unsure, and
WikiText has many):

* ``k = min(max_predictions, max(1, round(mlm_probability * candidates)))`` positions are chosen uniformly
  at random (``k = 0`` only for a sequence without candidates);
* of those, 80% become [MASK], 10% a random token drawn uniformly from the non-special vocabulary, and 10%
  stay as they are (each decided independently);
* ``labels`` hold the original id at chosen positions and -100 (ignored by the loss) everywhere else.

Whole-word masking: a word is a token plus the continuation pieces that follow it (WordPiece's ``##ing``; with
SentencePiece and byte-level BPE vocabularies, which mark word *starts* (``▁the``, ``Ġthe``), every piece without
that mark). Words are chosen
in random order while they fit in the budget of ``k`` tokens (a word that does not fit is skipped, as in
google-research/bert; but a sequence gets at least one word, up to ``max_predictions`` pieces long), and
the 80/10/10 decision is taken once per word so its pieces are replaced together.

Everything is a handful of tensor operations over the whole batch; randomness comes only from the
``torch.Generator`` passed in (or owned by :class:`MaskingCollator`), so results are reproducible and a
training run can save and restore the generator's state to resume with identical masks.

With DataLoader workers, every worker would get a copy of the collator's generator and produce the same
masks; keep ``num_workers=0`` for collation or mask in the main process (call :meth:`MaskingCollator.mask`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

IGNORE_INDEX = -100


def mask_tokens(
    input_ids: torch.Tensor,
    candidates: torch.Tensor,
    *,
    mask_token_id: int,
    random_token_ids: torch.Tensor,
    generator: torch.Generator,
    mlm_probability: float = 0.15,
    max_predictions: int | None = None,
    is_continuation: torch.Tensor | None = None,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch; returns ``(masked_input_ids, labels)``, both [B, L] like ``input_ids`` (long).

    ``candidates`` [B, L] bool: positions that may be masked. ``random_token_ids`` [V'] long: the ids a
    "random token" is drawn from. ``max_predictions``: cap per sequence (None: no cap). ``is_continuation``
    [vocab_size] bool switches on whole-word masking (True for ``##`` pieces). ``input_ids`` is not modified.
    """
    input_ids = input_ids.long()
    candidates = candidates.bool()
    budget = _prediction_budget(candidates, mlm_probability, max_predictions)
    start_of, word_length = _words(input_ids, candidates, is_continuation)
    word_chosen = _choose_words(word_length, budget, max_predictions, generator)
    chosen = candidates & word_chosen.gather(1, start_of)
    return _replace_chosen(input_ids, chosen, start_of, mask_token_id, random_token_ids, generator, mask_prob,
                           random_prob)


def _prediction_budget(candidates: torch.Tensor, mlm_probability: float, max_predictions: int | None) -> torch.Tensor:
    """[B] long: tokens to predict per sequence, ``round(mlm_probability * candidates)`` (halves up) but at least 1,
    at most ``max_predictions`` and never more than the candidates."""
    n_candidates = candidates.sum(dim=1)
    budget = torch.floor(n_candidates.double() * mlm_probability + 0.5).long().clamp(min=1)
    if max_predictions is not None:
        budget = budget.clamp(max=max_predictions)
    return torch.minimum(budget, n_candidates)


def _words(
    input_ids: torch.Tensor, candidates: torch.Tensor, is_continuation: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The words of each sequence: ``start_of`` [B, L], the position of the first token of the word a candidate
    position belongs to (meaningless elsewhere), and ``word_length`` [B, L], the word's number of candidate tokens
    at its first position (0 at every other position). Without ``is_continuation`` every candidate token is a
    word of its own; with it, a continuation piece joins the word of the candidate just before it."""
    batch, length = input_ids.shape
    device = input_ids.device
    positions = torch.arange(length, device=device).expand(batch, length)
    if is_continuation is None:
        word_start = candidates
    else:
        previous_is_candidate = torch.zeros_like(candidates)
        previous_is_candidate[:, 1:] = candidates[:, :-1]
        word_start = candidates & (~is_continuation.to(device)[input_ids] | ~previous_is_candidate)
    start_of = torch.where(word_start, positions, torch.full_like(positions, -1)).cummax(dim=1).values
    start_of = start_of.clamp(min=0)  # only meaningful at candidate positions
    word_length = torch.zeros(batch, length, dtype=torch.long, device=device)
    word_length.scatter_add_(1, start_of, candidates.long())
    return start_of, word_length


def _choose_words(
    word_length: torch.Tensor, budget: torch.Tensor, max_predictions: int | None, generator: torch.Generator
) -> torch.Tensor:
    """[B, L] bool, True at the first position of each chosen word: words in random order (one draw per position),
    each taken while it still fits in the sequence's ``budget`` of tokens."""
    batch, length = word_length.shape
    device = word_length.device
    # Visit words in random order (non-words last); take each word that still fits in the budget. Each round
    # takes the longest prefix of fitting words, so the loop ends after a few rounds (one without wwm).
    scores = torch.rand(batch, length, generator=generator, device=device)
    scores = torch.where(word_length > 0, scores, torch.full_like(scores, 2.0))
    order = scores.argsort(dim=1)
    length_in_order = word_length.gather(1, order)
    taken = torch.zeros(batch, length, dtype=torch.bool, device=device)
    remaining = budget.clone()
    while True:
        fits = ~taken & (length_in_order > 0) & (length_in_order <= remaining[:, None])
        cumulative = torch.where(fits, length_in_order, 0).cumsum(dim=1)
        take = fits & (cumulative <= remaining[:, None])
        if not bool(take.any()):
            break
        taken |= take
        remaining -= torch.where(take, length_in_order, 0).sum(dim=1)
    # At least one word per sequence with candidates, even when every word is longer than the 15% budget
    # (google-research/bert would mask nothing there); the cap still holds.
    cap = max_predictions if max_predictions is not None else length
    allowed = (length_in_order > 0) & (length_in_order <= cap)
    first_allowed = allowed & (allowed.cumsum(dim=1) == 1)
    taken |= first_allowed & ~taken.any(dim=1, keepdim=True)
    return torch.zeros_like(taken).scatter_(1, order, taken)


def _replace_chosen(
    input_ids: torch.Tensor,
    chosen: torch.Tensor,
    start_of: torch.Tensor,
    mask_token_id: int,
    random_token_ids: torch.Tensor,
    generator: torch.Generator,
    mask_prob: float,
    random_prob: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked_input_ids, labels)``: each ``chosen`` position becomes [MASK] (``mask_prob``), a random token of
    ``random_token_ids`` (``random_prob``) or stays; one draw per word (at ``start_of``), so a word's pieces are
    replaced together. ``labels`` hold the original ids at chosen positions, :data:`IGNORE_INDEX` elsewhere."""
    batch, length = input_ids.shape
    device = input_ids.device
    decision = torch.rand(batch, length, generator=generator, device=device).gather(1, start_of)
    replace_mask = chosen & (decision < mask_prob)
    replace_random = chosen & (decision >= mask_prob) & (decision < mask_prob + random_prob)
    random_ids = random_token_ids.to(device)[
        torch.randint(len(random_token_ids), (batch, length), generator=generator, device=device)
    ]

    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    masked = torch.where(replace_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    masked = torch.where(replace_random, random_ids, masked)
    return masked, labels


def _is_bracketed(token: str) -> bool:
    return len(token) > 2 and token.startswith("[") and token.endswith("]")


WORD_START_MARKS = {"Unigram": "\u2581", "BPE": "\u0120"}  # SentencePiece's ▁ and byte-level BPE's Ġ (a space)


def continuation_ids(tokenizer: Any, vocab: Mapping[str, int]) -> list[int]:
    """The ids of the pieces that continue the word before them, by the kind of the tokenizer's model: WordPiece
    marks continuations (``##ing``); unigram (SentencePiece) and byte-level BPE mark word starts instead."""
    model = json.loads(tokenizer.backend.to_str()).get("model") or {}
    if model.get("type") in WORD_START_MARKS:
        mark = WORD_START_MARKS[model["type"]]
        return [i for token, i in vocab.items() if not token.startswith(mark)]
    prefix = model.get("continuing_subword_prefix") or "##"
    return [i for token, i in vocab.items() if token.startswith(prefix) and len(token) > len(prefix)]


class MaskingCollator:
    """``collate_fn`` for pretraining: stacks examples and applies dynamic masking.

    Takes a list of dicts with ``input_ids`` [L], ``token_type_ids`` [L], ``attention_mask`` [L] and
    ``next_sentence_label`` [] (as :class:`~bert.data.dataset.PretrainingDataset` returns; or an already
    stacked dict) and returns a dict with ``input_ids``, ``token_type_ids``, ``attention_mask``, ``labels`` [B, L]
    and ``next_sentence_label`` [B], the argument names of BERT's pretraining forward pass.

    Build with :meth:`from_tokenizer`, or directly from ids: ``never_mask_ids`` (never chosen; default
    ``cls, sep, pad, mask``), ``random_token_ids`` (the pool of random replacements; default all ids except
    ``never_mask_ids``) and, for whole-word masking, ``is_continuation`` ([vocab_size] bool).
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        mask_token_id: int,
        cls_token_id: int,
        sep_token_id: int,
        pad_token_id: int,
        never_mask_ids: Iterable[int] | None = None,
        random_token_ids: Sequence[int] | torch.Tensor | None = None,
        is_continuation: torch.Tensor | None = None,
        whole_word_masking: bool = False,
        mlm_probability: float = 0.15,
        max_predictions_per_seq: int | None = None,
        seed: int = 0,
    ) -> None:
        if not 0.0 < mlm_probability <= 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1], got {mlm_probability}")
        if whole_word_masking and is_continuation is None:
            raise ValueError("whole_word_masking needs is_continuation (use MaskingCollator.from_tokenizer)")
        self.vocab_size = int(vocab_size)
        self.mask_token_id = int(mask_token_id)
        never = {cls_token_id, sep_token_id, pad_token_id, mask_token_id}
        if never_mask_ids is not None:
            never |= set(never_mask_ids)
        self.never_mask_ids = torch.tensor(sorted(never), dtype=torch.long)
        if random_token_ids is None:
            keep = torch.ones(self.vocab_size, dtype=torch.bool)
            keep[self.never_mask_ids[self.never_mask_ids < self.vocab_size]] = False
            random_token_ids = keep.nonzero().flatten()
        self.random_token_ids = torch.as_tensor(random_token_ids, dtype=torch.long)
        if len(self.random_token_ids) == 0:
            raise ValueError("the pool of random replacement tokens is empty")
        self.is_continuation = is_continuation.bool() if is_continuation is not None else None
        self.whole_word_masking = bool(whole_word_masking)
        self.mlm_probability = float(mlm_probability)
        self.max_predictions_per_seq = max_predictions_per_seq
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> MaskingCollator:
        """From a tokenizer of this package (:class:`~bert.tokenizer.wordpiece.BertTokenizer` or a variant's), with
        its own special-token ids: its special tokens and all bracketed tokens (``[PAD]``, ``[UNK]``, ``[unused7]``,
        ...) are never chosen nor used as random replacements; continuations for whole-word masking:
        :func:`continuation_ids`."""
        vocab = tokenizer.get_vocab()
        vocab_size = max(tokenizer.vocab_size, max(vocab.values()) + 1)
        never = [i for token, i in vocab.items() if _is_bracketed(token)] + list(tokenizer.all_special_ids)
        is_continuation = torch.zeros(vocab_size, dtype=torch.bool)
        is_continuation[continuation_ids(tokenizer, vocab)] = True
        special = torch.zeros(vocab_size, dtype=torch.bool)
        special[never] = True
        return cls(
            vocab_size=vocab_size,
            mask_token_id=tokenizer.mask_token_id,
            cls_token_id=tokenizer.cls_token_id,
            sep_token_id=tokenizer.sep_token_id,
            pad_token_id=tokenizer.pad_token_id,
            never_mask_ids=never,
            random_token_ids=(~special).nonzero().flatten(),
            is_continuation=is_continuation,
            **kwargs,
        )

    def max_predictions(self, length: int) -> int:
        """The per-sequence cap for sequences of ``length``: the setting, or ``ceil(mlm_probability * length)``
        (20 for 128, as google-research/bert uses)."""
        if self.max_predictions_per_seq is not None:
            return self.max_predictions_per_seq
        return math.ceil(round(self.mlm_probability * length, 9))

    def mask(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask a [B, L] batch with this collator's settings and generator: ``(input_ids, labels)``."""
        candidates = ~torch.isin(input_ids, self.never_mask_ids.to(input_ids.device))
        if attention_mask is not None:
            candidates &= attention_mask.bool()
        return mask_tokens(
            input_ids,
            candidates,
            mask_token_id=self.mask_token_id,
            random_token_ids=self.random_token_ids,
            generator=self.generator,
            mlm_probability=self.mlm_probability,
            max_predictions=self.max_predictions(input_ids.shape[1]),
            is_continuation=self.is_continuation if self.whole_word_masking else None,
        )

    def __call__(self, examples: Sequence[Mapping[str, torch.Tensor]] | Mapping[str, torch.Tensor]) -> dict:
        if isinstance(examples, Mapping):
            batch = {key: torch.as_tensor(value) for key, value in examples.items()}
        else:
            batch = {key: torch.stack([torch.as_tensor(e[key]) for e in examples]) for key in examples[0]}
        input_ids = batch["input_ids"].long()
        attention_mask = batch.get("attention_mask")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        token_type_ids = batch.get("token_type_ids")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        masked, labels = self.mask(input_ids, attention_mask)
        out = {
            "input_ids": masked,
            "token_type_ids": token_type_ids.long(),
            "attention_mask": attention_mask.long(),
            "labels": labels,
        }
        if "next_sentence_label" in batch:
            out["next_sentence_label"] = batch["next_sentence_label"].long().view(-1)
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The generator's state, to save with a training checkpoint."""
        return {"generator_state": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned: the following batches get the same masks as before."""
        self.generator.set_state(state["generator_state"])
