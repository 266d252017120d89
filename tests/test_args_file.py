"""Runs described in a file: every training run writes ``RUN/settings.json`` (every setting it trains with, the
recipe's included), ``--args-file FILE`` reads such a file (or one written by hand) as if its settings were flags,
the flags on the command line win, and a key that is not a setting is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_pretrain_loop import TINY, data  # noqa: F401 - data is a fixture

from bert.cli import build_parser, main
from bert.cli.args_file import command_parser, expand_args_file
from bert.engine.metrics import read_metrics

WALL_CLOCK = ("elapsed", "tokens_per_second", "model_flops_per_second", "flop_share", "peak_rss_gb")


def losses(run: Path) -> list[tuple]:
    return [tuple((k, v) for k, v in e.items() if k not in WALL_CLOCK) for e in read_metrics(run / "metrics.jsonl")]


def test_a_runs_settings_json_repeats_the_run_and_flags_given_win(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: F811 - the fixture
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    first = tmp_path / "first"
    assert main(["pretrain", "--data", str(data), "--config", str(config), "--out", str(first), "--max-steps", "4",
                 "--batch-size", "4", "--eval-every", "2", "--eval-batches", "1", "--save-every", "0",
                 "--no-progress", "--threads", "1", "--probe", "The cat [MASK] today."]) == 0
    settings = json.loads((first / "settings.json").read_text())
    assert settings["lr"] == pytest.approx(1e-3 * 256 / TINY["hidden_size"])  # the recipe's values are written
    assert (settings["mask_prob"], settings["final_mask_prob"], settings["dropout"]) == (0.5, 0.25, 0.0)
    assert settings["probe"] == ["The cat [MASK] today."] and settings["max_steps"] == 4

    again = tmp_path / "again"
    assert main(["pretrain", "--args-file", str(first / "settings.json"), "--out", str(again)]) == 0
    assert json.loads((again / "settings.json").read_text()) == {**settings, "out": str(again)}
    assert losses(again) == losses(first)  # the same run

    varied = tmp_path / "varied"
    assert main(["pretrain", "--seed", "1", "--args-file", str(first / "settings.json"), "--out", str(varied),
                 "--no-bf16", "--probe", "A dog [MASK] here."]) == 0
    written = json.loads((varied / "settings.json").read_text())
    assert (written["seed"], written["bf16"], written["probe"]) == (1, False, ["A dog [MASK] here."])
    capsys.readouterr()

    (tmp_path / "typo.json").write_text(json.dumps({**settings, "learning_rate": 1e-3}))
    assert main(["pretrain", "--args-file", str(tmp_path / "typo.json")]) == 1
    err = capsys.readouterr().err
    assert err == (f"bert pretrain: error: --args-file {tmp_path / 'typo.json'}: learning_rate: not a setting of this "
                   "command (see its --help-all)\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    for name, message in (("list.json", "must hold a JSON object"), ("missing.json", "No such file")):
        assert main(["pretrain", "--args-file", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_every_training_command_takes_an_args_file_with_its_own_arguments(tmp_path: Path) -> None:
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"model": "bert-base-uncased", "train": "train.tsv", "out": "sst2", "lr": 3e-5,
                               "bf16": True, "epochs": 2, "eval": None}))
    parser = build_parser()
    argv = expand_args_file(parser, ["finetune", "classify", "--args-file", str(run), "--epochs", "4"])
    args = parser.parse_args(argv)
    assert (args.model, args.train, args.out, args.lr, args.bf16, args.epochs, args.eval) == (
        "bert-base-uncased", "train.tsv", "sst2", 3e-5, True, 4, None)
    for command in (["pretrain"], ["distill"], ["finetune", "ner"], ["finetune", "qa"]):
        assert "--args-file" in command_parser(parser, command).format_full_help(), command
