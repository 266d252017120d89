"""Dynamic masking: what may be masked, how many, 80/10/10, whole words, determinism, collation."""

from __future__ import annotations

import pytest
import torch

from bert.data.masking import IGNORE_INDEX, MaskingCollator

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
VOCAB = 1000
CONTINUATION = torch.zeros(VOCAB, dtype=torch.bool)
CONTINUATION[500:] = True  # ids >= 500 play "##" pieces


def make_batch(batch: int, length: int, seed: int = 0, continuation_rate: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 500, (batch, length), generator=g)
    if continuation_rate:
        pieces = torch.rand(batch, length, generator=g) < continuation_rate
        ids = torch.where(pieces, torch.randint(500, VOCAB, (batch, length), generator=g), ids)
    lengths = torch.randint(8, length + 1, (batch,), generator=g)
    a_len = (lengths // 2).clamp(min=3)
    pos = torch.arange(length)[None, :]
    ids[:, 0] = CLS
    ids[pos == a_len[:, None] - 1] = SEP
    ids[pos == lengths[:, None] - 1] = SEP
    attention = (pos < lengths[:, None]).long()
    ids = torch.where(attention.bool(), ids, torch.full_like(ids, PAD))
    types = ((pos >= a_len[:, None]) & attention.bool()).long()
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": attention,
        "next_sentence_label": torch.randint(0, 2, (batch,), generator=g),
    }


def collator(**kwargs) -> MaskingCollator:
    return MaskingCollator(
        vocab_size=VOCAB,
        mask_token_id=MASK,
        cls_token_id=CLS,
        sep_token_id=SEP,
        pad_token_id=PAD,
        never_mask_ids=[UNK],
        is_continuation=CONTINUATION,
        **kwargs,
    )


def expected_counts(batch, p=0.15, cap=20):
    ids = batch["input_ids"]
    n = ((ids > 4) & batch["attention_mask"].bool()).sum(1)
    return torch.minimum(torch.floor(n * p + 0.5).long().clamp(min=1, max=cap), n)


def test_never_masks_specials_and_labels_exactly_at_chosen():
    batch = make_batch(512, 128)
    out = collator(seed=1)(batch)
    original = batch["input_ids"]
    chosen = out["labels"] != IGNORE_INDEX
    assert not chosen[original <= 4].any()  # [PAD], [UNK] (asked), [CLS], [SEP] never chosen
    assert torch.equal(out["labels"][chosen], original[chosen])
    assert torch.equal(out["input_ids"][~chosen], original[~chosen])
    assert torch.equal(chosen.sum(1), expected_counts(batch))
    for key in ("token_type_ids", "attention_mask", "next_sentence_label"):
        assert torch.equal(out[key], batch[key])
    assert set(out) == {"input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label"}
    assert all(v.dtype == torch.long for v in out.values())


def test_80_10_10_and_rate_on_a_large_sample():
    batch = make_batch(4096, 128, seed=2)
    out = collator(seed=3, max_predictions_per_seq=1000)(batch)
    chosen = out["labels"] != IGNORE_INDEX
    candidates = (batch["input_ids"] > 4) & batch["attention_mask"].bool()
    assert abs(chosen.sum().item() / candidates.sum().item() - 0.15) < 0.005
    new = out["input_ids"][chosen]
    old = batch["input_ids"][chosen]
    masked = (new == MASK).float().mean().item()
    kept = (new == old).float().mean().item()
    randomised = ((new != MASK) & (new != old)).float().mean().item()
    assert abs(masked - 0.8) < 0.01 and abs(kept - 0.1) < 0.01 and abs(randomised - 0.1) < 0.01
    random_ids = new[(new != MASK) & (new != old)]
    assert (random_ids > 4).all() and (random_ids < VOCAB).all()
    assert random_ids.unique().numel() > 500  # spread over the vocabulary


def test_cap_and_at_least_one():
    batch = make_batch(256, 128, seed=4)
    out = collator(seed=5, max_predictions_per_seq=3)(batch)
    counts = (out["labels"] != IGNORE_INDEX).sum(1)
    assert counts.max() <= 3 and torch.equal(counts, expected_counts(batch, cap=3))
    short = {k: v[:, :5].clone() for k, v in make_batch(8, 128, seed=6).items() if k != "next_sentence_label"}
    short["input_ids"][:, 4] = SEP
    short["attention_mask"][:] = 1
    out = collator(seed=0)(short)
    assert ((out["labels"] != IGNORE_INDEX).sum(1) == 1).all()  # 15% of 2-3 tokens rounds to 0, but at least 1
    assert collator().max_predictions(128) == 20 and collator().max_predictions(512) == 77


def test_whole_word_masking_keeps_pieces_together():
    batch = make_batch(1024, 128, seed=7, continuation_rate=0.4)
    out = collator(seed=8, whole_word_masking=True)(batch)
    ids = batch["input_ids"]
    chosen = out["labels"] != IGNORE_INDEX
    candidates = (ids > 4) & batch["attention_mask"].bool()
    assert not chosen[~candidates].any()
    counts = chosen.sum(1)
    assert (counts <= 20).all() and (counts >= 1).all()
    is_piece = CONTINUATION[ids] & candidates
    following = torch.zeros_like(is_piece)
    following[:, 1:] = is_piece[:, 1:] & candidates[:, :-1]  # a piece glued to the token before it
    # A piece and the token before it are chosen together, and replaced the same way ([MASK] or not).
    assert torch.equal(chosen[:, 1:][following[:, 1:]], chosen[:, :-1][following[:, 1:]])
    is_mask = out["input_ids"] == MASK
    both = following[:, 1:] & chosen[:, 1:]
    assert torch.equal(is_mask[:, 1:][both], is_mask[:, :-1][both])
    assert abs(is_mask[chosen].float().mean().item() - 0.8) < 0.03
    # Words are added while they fit: most sequences reach their budget exactly.
    assert (counts == expected_counts(batch)).float().mean() > 0.8


def test_deterministic_and_resumable():
    batch = make_batch(64, 128, seed=9)
    a, b = collator(seed=11), collator(seed=11)
    first, again = a(batch), b(batch)
    assert all(torch.equal(first[k], again[k]) for k in first)
    state = a.state_dict()
    second = a(batch)
    assert not torch.equal(second["labels"], first["labels"])
    c = collator(seed=99)
    c.load_state_dict(state)
    assert torch.equal(c(batch)["input_ids"], second["input_ids"])
    assert not torch.equal(collator(seed=12)(batch)["labels"], first["labels"])
    assert torch.equal(batch["input_ids"], make_batch(64, 128, seed=9)["input_ids"])  # input untouched


def test_list_of_examples_and_from_tokenizer(minilm_dir):
    from bert.tokenizer.wordpiece import BertTokenizer

    tok = BertTokenizer.from_pretrained(minilm_dir)
    col = MaskingCollator.from_tokenizer(tok, seed=0, whole_word_masking=True)
    enc = tok(["the unbelievably tokenization", "hello world"], text_pair=["short", "pairs here"],
              padding="max_length", max_length=32, return_tensors="pt")
    examples = [{k: enc[k][i] for k in ("input_ids", "token_type_ids", "attention_mask")} for i in range(2)]
    for e in examples:
        e["next_sentence_label"] = torch.tensor(1)
    out = col(examples)
    assert out["input_ids"].shape == (2, 32) and torch.equal(out["next_sentence_label"], torch.tensor([1, 1]))
    assert bool(col.is_continuation[tok.convert_tokens_to_ids("##s")])
    assert not bool(col.is_continuation[tok.convert_tokens_to_ids("the")])
    pool = set(col.random_token_ids.tolist())
    assert tok.convert_tokens_to_ids("[unused5]") not in pool and tok.mask_token_id not in pool
    assert len(pool) == tok.vocab_size - 999  # 994 [unusedN] and the 5 specials left out
    with pytest.raises(ValueError, match="is_continuation"):
        MaskingCollator(vocab_size=10, mask_token_id=4, cls_token_id=2, sep_token_id=3, pad_token_id=0,
                        whole_word_masking=True)


def test_unknown_token_is_never_a_training_target(minilm_dir):
    """WikiText's <unk> becomes [UNK]: a model trained to predict it answers [UNK] to everyday sentences."""
    from bert.tokenizer.wordpiece import BertTokenizer

    tok = BertTokenizer.from_pretrained(minilm_dir)
    col = MaskingCollator.from_tokenizer(tok, seed=0, mlm_probability=1.0)
    ids = tok(["the [UNK] sat on the [UNK] mat"] * 4, return_tensors="pt")["input_ids"]
    out = col({"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    chosen = out["labels"] != -100
    assert chosen.sum() == 4 * 5  # every other real token is a target at probability 1 ...
    assert not chosen[ids == tok.unk_token_id].any()  # ... but never [UNK]
    assert tok.unk_token_id not in set(col.random_token_ids.tolist())
