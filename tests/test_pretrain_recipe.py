"""The settings a pretraining run leaves unset come from a recipe chosen by where its weights come from: the
from-scratch recipe (scaled learning rate, short warmup, no dropout, 50% → 15% masking, bfloat16 where native) from
random weights; continued pretraining's (1e-4, 1%, the checkpoint's dropout, 15%, float32) from a checkpoint or in
distillation. A flag given always wins, and the run says what it trains with."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pretrain_loop import data, settings  # noqa: F401 - data is a fixture

from bert.engine.metrics import read_metrics
from bert.pretraining import PretrainConfig, pretrain
from bert.pretraining.recipe import CONTINUED, FROM_SCRATCH, fill_in, recipe_note


def unset(**given) -> PretrainConfig:
    return PretrainConfig(data="d", out="o", max_steps=10, **given)


def test_from_random_weights_the_recipe_fills_every_unset_setting_scaled_to_the_width() -> None:
    mini = fill_in(unset(), FROM_SCRATCH, hidden_size=256, native_bf16=True)
    assert (mini.lr, mini.warmup_fraction, mini.dropout, mini.mask_prob, mini.final_mask_prob, mini.bf16) == (
        1e-3, 0.02, 0.0, 0.5, 0.15, True)
    assert fill_in(unset(), FROM_SCRATCH, 128, True).lr == pytest.approx(2e-3)  # tiny
    assert fill_in(unset(), FROM_SCRATCH, 768, True).lr == pytest.approx(1e-3 / 3)  # base
    assert fill_in(unset(), FROM_SCRATCH, 256, native_bf16=False).bf16 is False  # emulated bfloat16 is slower
    assert mini.mask_rate(0.0) == 0.5 and mini.mask_rate(0.5) == pytest.approx(0.325) and mini.mask_rate(1) == 0.15
    assert recipe_note(mini, FROM_SCRATCH) == ("recipe from random weights: lr 0.001, warmup 0.02 of the steps, "
                                               "dropout 0, masking 0.5 → 0.15, bfloat16 (flags given win)")


def test_continuing_a_checkpoint_keeps_its_gentle_defaults_at_every_width() -> None:
    for hidden in (128, 768):
        config = fill_in(unset(), CONTINUED, hidden, native_bf16=True)
        assert (config.lr, config.warmup_fraction, config.dropout, config.mask_prob, config.final_mask_prob,
                config.bf16) == (1e-4, 0.01, None, 0.15, 0.15, False)


def test_a_given_flag_wins_and_a_given_masking_rate_alone_holds_throughout() -> None:
    given = fill_in(unset(lr=5e-4, dropout=0.1, bf16=False, mask_prob=0.2), FROM_SCRATCH, 256, True)
    assert (given.lr, given.dropout, given.bf16, given.mask_prob, given.final_mask_prob) == (5e-4, 0.1, False, 0.2,
                                                                                             0.2)
    assert fill_in(unset(final_mask_prob=0.1), FROM_SCRATCH, 256, True).mask_rate(1.0) == 0.1


def test_a_run_from_random_weights_says_and_trains_with_its_recipe(
        data: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:  # noqa: F811 - the fixture
    recipe_settings = {"lr": None, "warmup_steps": None, "bf16": None}  # what the test helper pins, left unset
    pretrain(settings(data, tmp_path / "run", max_steps=4, **recipe_settings))
    err = capfd.readouterr().err
    assert "bert pretrain: recipe from random weights: lr 0.008, warmup 0.02 of the steps, dropout 0, masking " \
           "0.5 → 0.15" in err  # the test model is 32 wide: 1e-3 × 256 / 32
    train = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if e["kind"] == "train"]
    assert [round(e["mask_prob"], 4) for e in train] == [0.5, 0.4125, 0.325, 0.2375]
    assert max(e["lr"] for e in train) == pytest.approx(8e-3 * 3 / 4)  # warmup round(0.02 × 4) = 0 steps: decay
