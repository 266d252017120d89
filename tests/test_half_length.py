"""Sequences cut in two early in a run from random weights (``--half-length-fraction``, the recipe's 0.2 on MLM-only
data): every token is still read, in rows of half the length, masked at that length; the halves that hold only
padding are left out; several processes still mask exactly what one would; the run logs each step's row length and
says so in its recipe line; sentence pairs refuse it in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_pretrain_loop import TINY, settings, write_corpus

from bert.data.dataset import PretrainingDataset
from bert.data.masking import MaskingCollator
from bert.data.prepare import prepare_pretraining_data
from bert.data.tokenizer_training import train_tokenizer
from bert.engine.metrics import read_metrics
from bert.errors import BertError
from bert.pretraining import pretrain
from bert.pretraining.batches import cut_in_two, masked_rows
from bert.pretraining.recipe import FROM_SCRATCH, fill_in
from bert.settings import settings_differences
from bert.tokenizer.wordpiece import BertTokenizer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("half-length")
    write_corpus(root / "corpus.txt")
    train_tokenizer([root / "corpus.txt"], 120, root / "tokenizer", min_frequency=1)
    folders = {}
    for objective in ("mlm", "mlm+nsp"):
        folders[objective] = root / objective.replace("+", "-")
        prepare_pretraining_data([root / "corpus.txt"], root / "tokenizer", folders[objective], max_seq_len=32,
                                 eval_fraction=0.1, objective=objective, short_seq_prob=0.5, progress=False)
    return folders


def test_cut_in_two_keeps_every_token_in_order_in_rows_of_half_the_length() -> None:
    ids = torch.arange(2 * 7).reshape(2, 7)
    batch = {"input_ids": ids, "attention_mask": torch.tensor([[1] * 7, [1, 1, 1, 0, 0, 0, 0]]),
             "next_sentence_label": torch.tensor([0, 1])}
    cut = cut_in_two(batch)
    assert cut["input_ids"].tolist() == [[0, 1, 2, 3], [4, 5, 6, 0], [7, 8, 9, 10], [11, 12, 13, 0]]
    assert cut["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert cut["next_sentence_label"].tolist() == [0, 0, 1, 1]  # per example: repeated for both halves


def test_masked_rows_in_halves_mask_at_half_the_length_and_leave_out_the_empty_halves(corpus) -> None:
    data = PretrainingDataset(corpus["mlm"] / "train")
    tokenizer = BertTokenizer.from_pretrained(corpus["mlm"] / "tokenizer")
    every = torch.from_numpy(data.lengths.astype("int64"))
    indices = torch.cat([(every <= 16).nonzero().flatten()[:4], (every > 16).nonzero().flatten()[:12]])
    indices = indices[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    lengths = data.batch(indices.tolist())["attention_mask"].sum(dim=1)
    assert int((lengths <= 16).sum()) == 4  # short examples, whose second half is empty, among long ones

    def collator() -> MaskingCollator:
        return MaskingCollator.from_tokenizer(tokenizer, seed=3, mlm_probability=0.5, max_predictions_per_seq=8)

    whole = masked_rows(data, collator(), indices, 0, 1, halves=True)
    assert whole["input_ids"].shape == (int(16 + (lengths > 16).sum()), 16)
    assert bool(whole["attention_mask"].any(dim=1).all())  # no row without a real token
    assert int((whole["labels"] != -100).sum(dim=1).max()) <= 8  # the cap holds per half-length row
    # the tokens read are the examples' own, in order
    original = data.batch(indices.tolist())
    assert sorted(whole["attention_mask"].sum(dim=1).tolist()) == sorted(
        [part for n in lengths.tolist() for part in (min(n, 16), n - 16) if part > 0])
    assert int((whole["labels"] != -100).sum()) > 0 and original["input_ids"].shape == (16, 32)
    # two processes mask exactly the rows one process masks (each its own examples' halves)
    ranks = [masked_rows(data, collator(), indices, rank, 2, halves=True) for rank in (0, 1)]
    for key in whole:
        assert torch.equal(torch.cat([ranks[0][key], ranks[1][key]]), whole[key]), key


def test_a_run_from_random_weights_on_mlm_data_trains_its_first_fifth_on_half_length_rows(
        corpus, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    pretrain(settings(corpus["mlm"], run, max_steps=5, half_length_fraction=None, eval_every=5))
    assert ", sequences cut in two for the first 0.2 of the steps (at most 5M tokens)," in capfd.readouterr().err
    train = [e for e in read_metrics(run / "metrics.jsonl") if e["kind"] == "train"]
    assert [e["seq_len"] for e in train] == [16, 32, 32, 32, 32]
    assert [e["tokens"] for e in train] == [8 * 32 * step for step in range(1, 6)]  # the same tokens a step


def test_the_cut_ends_at_its_token_cap_when_that_comes_before_its_share_of_the_steps(
        corpus, tmp_path: Path) -> None:
    """A long schedule is not held at half length for a fifth of it: --half-length-max-tokens ends the cut (here after
    one step of 8 × 32 tokens, where the fifth of 10 steps would have been two)."""
    run = tmp_path / "run"
    pretrain(settings(corpus["mlm"], run, max_steps=10, half_length_fraction=None, half_length_max_tokens=8 * 32,
                      eval_every=10))
    train = [e for e in read_metrics(run / "metrics.jsonl") if e["kind"] == "train"]
    assert [e["seq_len"] for e in train] == [16] + [32] * 9
    with pytest.raises(BertError, match=r"^--half-length-max-tokens must be >= 0$"):
        settings(corpus["mlm"], tmp_path / "bad", max_steps=2, half_length_max_tokens=-1).validate()


def test_sentence_pairs_are_never_cut_and_asking_for_it_is_a_one_line_error(corpus, tmp_path: Path) -> None:
    pairs = settings(corpus["mlm+nsp"], tmp_path / "pairs", max_steps=2)
    assert fill_in(pairs, FROM_SCRATCH, TINY["hidden_size"], False, mlm_only=False).half_length_fraction == 0.0
    with pytest.raises(BertError, match=r"^--half-length-fraction cuts sequences in two, which mlm\+nsp's sentence "):
        pretrain(settings(corpus["mlm+nsp"], tmp_path / "refused", max_steps=2, half_length_fraction=0.5))
    with pytest.raises(BertError, match=r"^--half-length-fraction must be in \[0, 1\)$"):
        settings(corpus["mlm"], tmp_path / "bad", max_steps=2, half_length_fraction=1.0).validate()


def test_a_checkpoint_written_before_half_lengths_existed_resumes_with_them_off() -> None:
    old = {"lr": 1e-3, "mask_prob": 0.5}
    assert settings_differences(old, {**old, "half_length_fraction": 0.0}) == []
    assert settings_differences(old, {**old, "half_length_fraction": 0.2}) == ["half-length-fraction None (now 0.2)"]
