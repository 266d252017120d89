"""The settings a pretraining run leaves unset come from a recipe chosen by where its weights come from: the
from-scratch recipe (scaled learning rate, short warmup, no dropout, 50% → 25% masking, sinusoidal starting
positions, bfloat16 where native) from random weights; continued pretraining's (1e-4, 1%, the checkpoint's dropout,
15%, float32) from a checkpoint or in distillation. A flag given always wins, and the run says what it trains
with."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_pretrain_loop import data, settings  # noqa: F401 - data is a fixture
from torch import nn

from bert.engine.metrics import read_metrics
from bert.errors import BertError
from bert.heads import BertForPreTraining
from bert.pretraining import PretrainConfig, pretrain
from bert.pretraining.recipe import CONTINUED, FROM_SCRATCH, fill_in, recipe_note, sinusoidal_positions_


def unset(**given) -> PretrainConfig:
    return PretrainConfig(data="d", out="o", max_steps=10, **given)


def test_from_random_weights_the_recipe_fills_every_unset_setting_scaled_to_the_width() -> None:
    mini = fill_in(unset(), FROM_SCRATCH, hidden_size=256, native_bf16=True)
    assert (mini.lr, mini.warmup_fraction, mini.dropout, mini.mask_prob, mini.final_mask_prob, mini.bf16,
            mini.position_init, mini.half_length_fraction) == (1e-3, 0.02, 0.0, 0.5, 0.25, True, "sinusoidal", 0.2)
    assert fill_in(unset(), FROM_SCRATCH, 128, True).lr == pytest.approx(2e-3)  # tiny
    assert fill_in(unset(), FROM_SCRATCH, 768, True).lr == pytest.approx(1e-3 / 3)  # base
    assert fill_in(unset(), FROM_SCRATCH, 256, native_bf16=False).bf16 is False  # emulated bfloat16 is slower
    assert mini.mask_rate(0.0) == 0.5 and mini.mask_rate(0.5) == pytest.approx(0.375) and mini.mask_rate(1) == 0.25
    assert recipe_note(mini, FROM_SCRATCH) == ("recipe from random weights: lr 0.001, warmup 0.02 of the steps, "
                                               "dropout 0, masking 0.5 → 0.25, sinusoidal positions, sequences cut "
                                               "in two for the first 0.2 of the steps (at most 5M tokens), "
                                               "bfloat16 (flags given win)")


def test_continuing_a_checkpoint_keeps_its_gentle_defaults_at_every_width() -> None:
    for hidden in (128, 768):
        config = fill_in(unset(), CONTINUED, hidden, native_bf16=True)
        assert (config.lr, config.warmup_fraction, config.dropout, config.mask_prob, config.final_mask_prob,
                config.bf16, config.position_init, config.half_length_fraction) == (1e-4, 0.01, None, 0.15, 0.15,
                                                                                    False, None, 0.0)


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
           "0.5 → 0.25" in err  # the test model is 32 wide: 1e-3 × 256 / 32
    train = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if e["kind"] == "train"]
    assert [round(e["mask_prob"], 4) for e in train] == [0.5, 0.4375, 0.375, 0.3125]
    assert max(e["lr"] for e in train) == pytest.approx(8e-3 * 3 / 4)  # warmup round(0.02 × 4) = 0 steps: decay


def test_sinusoidal_positions_code_neighbours_alike_at_the_initialisers_scale() -> None:
    table = nn.Embedding(128, 64)
    sinusoidal_positions_(table, std=0.02)
    codes = table.weight.detach()
    assert codes.std().item() == pytest.approx(0.02, rel=1e-5)
    assert torch.allclose(codes[:, 0] / codes[1:, 0].abs().max(), torch.sin(torch.arange(128.0)), atol=1e-5)
    cosine = nn.functional.cosine_similarity
    assert cosine(codes[10], codes[11], dim=0) > 0.9 > cosine(codes[10], codes[60], dim=0) + 0.3  # near = alike
    padded = nn.Embedding(10, 8, padding_idx=1)  # RoBERTa's table: its padding row stays zero
    sinusoidal_positions_(padded, std=0.02)
    assert padded.weight[1].abs().sum() == 0 and padded.weight[2].abs().sum() > 0


@pytest.mark.parametrize("given", [None, "random"])
def test_a_model_from_random_weights_starts_from_sinusoidal_positions_unless_told_otherwise(
        data: Path, tmp_path: Path, given: str | None) -> None:  # noqa: F811 - the fixture
    run = tmp_path / "run"
    pretrain(settings(data, run, max_steps=1, lr=1e-12, position_init=given))  # one step that moves nothing
    table = BertForPreTraining.from_pretrained(run / "final").base_model.embeddings.position_embeddings
    expected = nn.Embedding(*table.weight.shape)
    sinusoidal_positions_(expected, std=0.05)  # 2.5 × the initialiser's 0.02
    matches = torch.allclose(table.weight, expected.weight, atol=1e-6)
    assert matches is (given is None), f"--position-init {given}: the table is {'not ' * (not matches)}sinusoidal"


def test_position_init_is_refused_for_a_checkpoint() -> None:
    with pytest.raises(BertError, match="--position-init is for random weights"):
        PretrainConfig(data="d", out="o", max_steps=1, init_from="bert-base-uncased", position_init="random").validate()
