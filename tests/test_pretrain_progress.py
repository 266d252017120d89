"""What a pretraining run shows of its progress: probes answered at every evaluation (printed and in
metrics.jsonl), the frequent-word plateau computed from the corpus (meta.json, the log, curves.png), and model FLOP/s
with their share of the machine's measured matmul peak — each checked against an independent computation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_pretrain_loop import data, settings  # noqa: F401 - data is a fixture
from torch.utils.flop_counter import FlopCounterMode

from bert.config import BertConfig
from bert.data.plateau import EXIT_MARGIN, on_plateau, plateau_note, unigram_stats
from bert.data.prepare import load_meta
from bert.engine.flops import matmul_peak, training_flops_per_token
from bert.engine.metrics import read_metrics
from bert.errors import BertError
from bert.heads import BertForPreTraining
from bert.pretraining import pretrain
from bert.pretraining.loss import PretrainingObjective
from bert.pretraining.probes import probe_texts
from bert.pretraining.task import pretraining_panels


def test_the_plateau_is_the_frequency_guessers_score_computed_from_the_corpus() -> None:
    """Counts 5, 3, 2 of three words (specials left out): H = −Σ p ln p, p_max 0.5; the guesser scores
    0.9 · p_max + 0.1 and pays 0.9 · H."""
    ids = np.array([0, 1, 5, 5, 5, 5, 5, 6, 6, 6, 7, 7, 2])
    stats = unigram_stats(ids, vocab_size=10, special_ids=[0, 1, 2])
    p = np.array([0.5, 0.3, 0.2])
    assert stats["tokens"] == 10 and stats["top_id"] == 5 and stats["top_share"] == 0.5
    assert stats["entropy_nats"] == pytest.approx(float(-(p * np.log(p)).sum()))
    assert stats["plateau_accuracy"] == pytest.approx(0.55) and stats["plateau_loss"] == pytest.approx(
        0.9 * stats["entropy_nats"])
    assert on_plateau(0.55 + EXIT_MARGIN - 1e-3, stats) and not on_plateau(0.55 + EXIT_MARGIN, stats)
    note = plateau_note(100, 2_000_000, 1.1, 0.56, stats, "the", None)
    assert note.startswith("on the frequent-word plateau: held-out accuracy 0.560 vs 0.550") and "2.0M" in note
    assert plateau_note(100, 2_000_000, 1.1, 0.30, stats, "the", None).startswith("still below")
    left = plateau_note(200, 4_000_000, 0.9, 0.70, stats, "the", (200, 4_000_000))
    assert left == "left the frequent-word plateau: held-out accuracy 0.700 > 0.600 after 4.0M tokens (step 200)"
    assert plateau_note(300, 6_000_000, 0.8, 0.75, stats, "the", (200, 4_000_000)) is None  # said once
    assert plateau_note(0, 0, 0.8, 0.75, stats, "the", (0, 0)).startswith(
        "above the frequent-word plateau from the start")  # continued pretraining


def test_the_flop_count_is_torchs_count_of_the_matmuls_plus_attention() -> None:
    """training_flops_per_token against torch's FlopCounterMode on a forward + backward of a mini step, which counts
    every matmul (linear layers, the MLM decoder on its fixed block of rows) but not the fused CPU attention kernel:
    the two agree once attention's 3 · L · 4 · T · H per token is added."""
    config = BertConfig.preset("mini", vocab_size=1000, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    objective = PretrainingObjective(BertForPreTraining(config), None, predictions_per_example=20)
    batch, length = 2, 64
    ids = torch.randint(5, 1000, (batch, length))
    labels = torch.full_like(ids, -100)
    labels[:, 1:15] = ids[:, 1:15]
    with FlopCounterMode(display=False) as counter:
        objective(ids, torch.zeros_like(ids), torch.ones_like(ids), labels, torch.zeros(batch, dtype=torch.long)
                  ).loss.backward()
    attention = 3 * config.num_hidden_layers * 4 * length * config.hidden_size
    counted = counter.get_total_flops() / (batch * length) + attention
    assert training_flops_per_token(config, length, 20 / length) == pytest.approx(counted, rel=1e-3)
    assert matmul_peak(size=128, seconds=0.05) > 1e8  # a real measurement: some GFLOP/s


def test_a_run_prints_and_logs_its_probes_the_plateau_and_its_share_of_the_matmul_peak(
        data: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:  # noqa: F811 - the fixture
    assert "unigram" in load_meta(data) and load_meta(data)["unigram"]["plateau_accuracy"] > 0.1
    probes = ["The cat [MASK] the garden today.", "A dog likes [MASK] red ball today."]
    pretrain(settings(data, tmp_path / "run", max_steps=6, eval_every=3, probe=probes))
    err = capfd.readouterr().err
    events = read_metrics(tmp_path / "run" / "metrics.jsonl")
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [3, 6]
    for event in evals:
        assert [p["text"] for p in event["probes"]] == probes and all(len(p["top"]) == 5 for p in event["probes"])
        assert event["on_plateau"] in (True, False)
        for probe in event["probes"]:
            assert f"  {probe['text']} → {', '.join(probe['top'])}" in err
    assert "frequent-word plateau: held-out accuracy" in err and "the corpus's unigram entropy" in err
    assert "% of this machine's matmul peak in float32 on 1 thread(s)" in err
    train = [e for e in events if e["kind"] == "train"]
    assert all(e["model_flops_per_second"] > 0 and 0 < e["flop_share"] < 10 for e in train)
    # the count of each line's last step: the MLM head scores as many rows as that step's masking rate needs
    config = BertConfig.from_json_file(tmp_path / "run" / "final" / "config.json")
    for e in train:
        rows = math.ceil(max(e["mask_prob"], 0.15) * 32)
        assert math.isclose(e["model_flops_per_second"] / e["tokens_per_second"],
                            training_flops_per_token(config, 32, rows / 32)), e["step"]
    panels = pretraining_panels(events, load_meta(data)["unigram"])
    assert [panel.levels[0][1] for panel in panels[:2]] == ["frequent-word plateau"] * 2


def test_probes_take_the_tokenizers_mask_token_and_one_without_a_mask_is_refused() -> None:
    class Roberta:
        mask_token = "<mask>"

    assert probe_texts(["A [MASK] day."], Roberta()) == ["A <mask> day."]
    assert len(probe_texts(None, Roberta())) == 3
    with pytest.raises(BertError, match="has no <mask>"):
        probe_texts(["No mask here."], Roberta())


def test_the_masking_rate_moves_linearly_to_the_final_rate_over_the_schedule(
        data: Path, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    pretrain(settings(data, tmp_path / "run", max_steps=6, mask_prob=0.4, final_mask_prob=0.1,
                      max_predictions_per_seq=None))
    train = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if e["kind"] == "train"]
    assert [round(e["mask_prob"], 6) for e in train] == [0.4, 0.35, 0.3, 0.25, 0.2, 0.15]  # step k: (k - 1) / 6 done
    pretrain(settings(data, tmp_path / "constant", max_steps=3, mask_prob=0.2))  # a rate given alone holds
    train = [e for e in read_metrics(tmp_path / "constant" / "metrics.jsonl") if e["kind"] == "train"]
    assert [e["mask_prob"] for e in train] == [0.2, 0.2, 0.2]
    with pytest.raises(BertError, match="--final-mask-prob must be in"):
        settings(data, tmp_path / "bad", max_steps=2, final_mask_prob=0.0).validate()
