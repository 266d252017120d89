"""``--report-to tensorboard,wandb``: the trackers get exactly what metrics.jsonl gets (read back from TensorBoard's
event files and W&B's offline run), resumed runs continue them, and bad input is a one-line error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import ctrl_c_during_step, make_tiny_model, sentiment_file
from test_pretrain_loop import TINY, write_corpus

from bert.cli import main
from bert.data.prepare import prepare_pretraining_data
from bert.data.tokenizer_training import train_tokenizer
from bert.engine.metrics import read_metrics
from bert.model import BertModel
from bert.pretraining.probes import DEFAULT_PROBES


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-data")
    write_corpus(root / "corpus.txt", documents=40)
    train_tokenizer([root / "corpus.txt"], 120, root / "tokenizer", min_frequency=1)
    prepare_pretraining_data([root / "corpus.txt"], root / "tokenizer", root / "data", max_seq_len=32,
                             eval_fraction=0.1, progress=False)
    (root / "tiny.json").write_text(json.dumps(TINY))
    return root


def pretrain_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--data", str(data / "data"), "--config", str(data / "tiny.json"), "--out", str(out),
            "--batch-size", "4", "--eval-batches", "1", "--log-every", "1", "--no-progress", *extra]


@pytest.fixture
def wandb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B with no account and nothing of it outside tmp_path (no ~/.netrc, no ~/.config/wandb)."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")


def tensorboard_values(folder: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, str]]]]:
    """Every scalar series (step, value) and text series (step, text) in a TensorBoard log folder, as TensorBoard
    serves them (its plugins' reader, which drops what a restart at an earlier step replaces)."""
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})  # 0: keep every event
    events.Reload()
    scalars, texts = {}, {}
    for tag in events.Tags()["tensors"]:
        plugin = events.SummaryMetadata(tag).plugin_data.plugin_name
        values = [(e.step, make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
        if plugin == "scalars":
            scalars[tag] = [(step, float(value)) for step, value in values]
        else:
            assert plugin == "text", tag
            texts[tag.removesuffix("/text_summary")] = [(step, value.item().decode()) for step, value in values]
    return scalars, texts


def metrics_series(run: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, object]]]]:
    """What metrics.jsonl says the series ``KIND/KEY`` are: its numbers (true/false as 1/0), and its other values;
    nulls have none."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    others: dict[str, list[tuple[int, object]]] = {}
    for event in read_metrics(run / "metrics.jsonl"):
        for key, value in event.items():
            if key in ("kind", "step") or value is None:
                continue
            series = scalars if isinstance(value, (int, float)) else others
            series.setdefault(f"{event['kind']}/{key}", []).append((event["step"], value))
    return scalars, others


def assert_tensorboard_holds_the_metrics(run: Path) -> dict[str, list[tuple[int, float]]]:
    """RUN/tensorboard has metrics.jsonl's every number as a scalar at its step (to float32, as TensorBoard stores
    them) and its other values as JSON in a Markdown code block, and nothing else; returns the scalars."""
    scalars, texts = tensorboard_values(run / "tensorboard")
    numbers, others = metrics_series(run)
    assert scalars == {name: [(step, float(np.float32(value))) for step, value in series]
                       for name, series in numbers.items()}
    assert all(text.startswith("```\n") and text.endswith("\n```") for series in texts.values() for _, text in series)
    assert {name: [(step, json.loads(text.strip("`\n"))) for step, text in series]
            for name, series in texts.items()} == others
    return scalars


def test_pretraining_to_tensorboard_logs_every_metrics_jsonl_number_and_the_probes(
        data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(pretrain_args(data, run, "--max-steps", "4", "--eval-every", "2", "--report-to", "tensorboard")) == 0
    scalars = assert_tensorboard_holds_the_metrics(run)
    assert [step for step, _ in scalars["train/mlm_loss"]] == [1, 2, 3, 4]
    assert [step for step, _ in scalars["eval/mlm_accuracy"]] == [2, 4]
    _, texts = tensorboard_values(run / "tensorboard")
    assert [step for step, _ in texts["eval/probes"]] == [2, 4]
    probes = json.loads(texts["eval/probes"][-1][1].strip("`\n"))
    assert [p["text"] for p in probes] == list(DEFAULT_PROBES) and all(len(p["top"]) == 5 for p in probes)


def test_finetuning_to_tensorboard_logs_every_metrics_jsonl_number(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny", cls=BertModel)
    train = sentiment_file(tmp_path / "train.tsv", repeat=1)
    run = tmp_path / "run"
    assert main(["finetune", "classify", "--model", str(model), "--train", str(train), "--eval", str(train),
                 "--out", str(run), "--epochs", "2", "--batch-size", "4", "--no-progress",
                 "--report-to", "tensorboard"]) == 0
    scalars = assert_tensorboard_holds_the_metrics(run)
    assert {"train/loss", "train/lr", "eval/accuracy", "eval/f1"} <= set(scalars)
    assert len(scalars["eval/accuracy"]) >= 2


def test_a_resumed_run_continues_the_tensorboard_log_without_the_steps_it_redoes(data: Path, tmp_path: Path) -> None:
    """Killed after step 4 with step 2 its last checkpoint: the resumed run writes steps 3-4 (and the evaluation at 4)
    again, and TensorBoard serves each step once, the latest."""
    run = tmp_path / "run"
    args = pretrain_args(data, run, "--max-steps", "4", "--eval-every", "2", "--save-every", "2",
                         "--report-to", "tensorboard")
    assert main(args) == 0
    shutil.rmtree(run / "checkpoints" / "step-0000004")  # as if killed before step 4's checkpoint
    assert main([*args, "--resume"]) == 0
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    scalars = assert_tensorboard_holds_the_metrics(run)
    assert [step for step, _ in scalars["train/mlm_loss"]] == [1, 2, 3, 4]
    assert [step for step, _ in tensorboard_values(run / "tensorboard")[1]["eval/probes"]] == [2, 4]


def wandb_records(run_file: Path) -> list[dict]:
    """The records of an offline W&B run's .wandb log, as the installed wandb's own reader prints them."""
    printed = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_file)],
                             capture_output=True, text=True, check=True, timeout=120).stdout
    return [json.loads(line) for line in printed.splitlines()]


def wandb_history(records: list[dict]) -> dict[int, dict[str, float]]:
    """The history rows by step, W&B's own keys (``_runtime``...) left out."""
    return {r["history"]["step"]["num"]: {k: v for k, v in r["history"]["item"].items() if not k.startswith("_")}
            for r in records if r["type"] == "history"}


def metrics_by_step(run: Path) -> dict[int, dict[str, float]]:
    """metrics.jsonl's numbers by step, as ``KIND/KEY``: what a W&B history row of that step holds."""
    rows: dict[int, dict[str, float]] = {}
    for name, series in metrics_series(run)[0].items():
        for step, value in series:
            rows.setdefault(step, {})[name] = value
    return rows


def test_wandb_without_an_account_logs_offline_the_metrics_and_the_settings(
        data: Path, tmp_path: Path, wandb_home: None, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(pretrain_args(data, run, "--max-steps", "3", "--eval-every", "2", "--report-to", "wandb",
                              "--wandb-project", "tiny-bert")) == 0
    run_id = (run / "wandb-run-id.txt").read_text().strip()
    [run_file] = (run / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    notes = [line for line in capsys.readouterr().err.splitlines() if "--report-to wandb" in line]
    assert notes == [f"bert pretrain: --report-to wandb: no W&B API key (wandb login) and no WANDB_MODE, so the run "
                     f"is logged offline; upload it later with: wandb sync {run / 'wandb'}/offline-run-*-{run_id}"]
    records = wandb_records(run_file)
    assert wandb_history(records) == metrics_by_step(run)
    [header] = [r["run"] for r in records if r["type"] == "run"]
    config = {k: v for k, v in header["config"]["update"].items() if k != "_wandb"}
    assert header["project"] == "tiny-bert" and header["display_name"] == "run"
    assert config == json.loads((run / "settings.json").read_text())
    assert records[-1]["type"] == "exit"  # closed at the end


def test_an_interrupted_wandb_run_is_closed_and_resume_continues_the_same_run(
        data: Path, tmp_path: Path, wandb_home: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    (tmp_path / "wandb-dir").mkdir()
    run = tmp_path / "run"
    args = pretrain_args(data, run, "--max-steps", "5", "--eval-every", "0", "--report-to", "wandb")
    ctrl_c_during_step(monkeypatch, 3)
    assert main(args) == 130  # stopped by Ctrl-C
    monkeypatch.undo()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    run_id = (run / "wandb-run-id.txt").read_text().strip()
    [first] = (tmp_path / "wandb-dir" / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    records = wandb_records(first)
    assert records[-1]["type"] == "exit"  # closed on Ctrl-C: the run is complete, nothing left in a buffer
    assert sorted(wandb_history(records)) == [1, 2, 3]

    assert main([*args, "--resume"]) == 0
    assert (run / "wandb-run-id.txt").read_text().strip() == run_id
    pieces = sorted((tmp_path / "wandb-dir" / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(pieces) == 2
    records = wandb_records(pieces[1])
    [header] = [r["run"] for r in records if r["type"] == "run"]
    assert header["run_id"] == run_id and header["resume"] is True
    history = wandb_history(records)
    assert sorted(history) == [4, 5]
    assert history == {step: row for step, row in metrics_by_step(run).items() if step > 3}


def test_an_unknown_tracker_is_a_one_line_error(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(pretrain_args(data, tmp_path / "run", "--max-steps", "1", "--report-to", "tensorboard,mlflow")) == 1
    assert capsys.readouterr().err == ("bert pretrain: error: --report-to tensorboard,mlflow: choose none, "
                                       "tensorboard, wandb or tensorboard,wandb\n")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize(("tracker", "module"), [("tensorboard", "torch.utils.tensorboard"), ("wandb", "wandb")])
def test_a_tracker_whose_package_is_missing_is_a_one_line_error_before_training(
        tracker: str, module: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import` of it now raises ImportError
    assert main(pretrain_args(data, tmp_path / "run", "--max-steps", "1", "--report-to", tracker)) == 1
    assert capsys.readouterr().err == (f"bert pretrain: error: --report-to {tracker} needs the {tracker} package: "
                                       f"pip install {tracker}\n")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
