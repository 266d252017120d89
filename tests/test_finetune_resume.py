"""Exact resume of ``bert finetune``, evaluation during an epoch, early stopping and the choice of metric, on a
tiny encoder (2 layers, hidden 32, dropout on, so that the RNG states must be restored too) and tiny data files.

For each task (classify, ner, qa), with ``--group-by-length`` and ``--grad-accum 2``: a run that crashes in the
middle of a step, or is stopped by Ctrl-C, or is killed with ``kill -9`` (a real process) while it writes a
checkpoint, and is then resumed, ends with the same final weights, the same best model and the same metrics.jsonl
(wall-clock fields aside) as the run that was never stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import conll_file, make_tiny_model, sentiment_file, squad_file

from bert.cli import main
from bert.engine.checkpointing import latest_checkpoint, list_checkpoints
from bert.engine.metrics import read_metrics
from bert.model import BertModel

REPO = Path(__file__).resolve().parents[1]
WALL_CLOCK = ("elapsed", "time", "tokens_per_second", "peak_rss_gb", "model_flops_per_second", "flop_share")
# 2 epochs of 3 optimizer steps (6 micro-batches in groups of 2, or 5 as 2 + 2 + 1): checkpoints at 2, 4 and 6,
# evaluations at 2, 3 (end of epoch 1), 4 and 6.
RESUMABLE = ["--epochs", "2", "--grad-accum", "2", "--group-by-length", "--save-every", "2", "--keep-last", "0",
             "--eval-every", "2", "--lr", "5e-3", "--seed", "3", "--no-progress"]


TASKS = ["classify", "ner", "qa"]


class Crash(Exception):
    """Stands for whatever kills a process in the middle of a step."""


def crash_in_step_6(monkeypatch: pytest.MonkeyPatch, args: list[str], out: Path) -> None:
    """Run ``bert finetune ARGS``, crashing in the middle of step 6: the latest checkpoint is then step 4's."""

    def crash() -> None:
        raise Crash

    crash_at_step(monkeypatch, 6, crash)
    with pytest.raises(Crash):
        main(args)
    monkeypatch.undo()
    assert latest_checkpoint(out / "checkpoints") == out / "checkpoints" / "step-0000004"


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("encoder"), cls=BertModel, hidden_dropout_prob=0.1,
                           attention_probs_dropout_prob=0.1)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    return {"classify": sentiment_file(folder / "train.tsv", repeat=2), "ner": conll_file(folder / "train.conll"),
            "qa": squad_file(folder / "squad.json")}


def task_args(task: str, encoder: Path, files: dict[str, Path], out: Path) -> list[str]:
    """``bert finetune TASK ...`` with RESUMABLE: every task makes 2 epochs of 3 steps."""
    data = str(files[task])
    sizes = {"classify": ["--batch-size", "4", "--max-seq-len", "16"],
             "ner": ["--batch-size", "2", "--max-seq-len", "16"],
             "qa": ["--batch-size", "3", "--max-seq-len", "20", "--doc-stride", "8", "--max-query-len", "10",
                    "--train-articles", "0:2", "--eval-articles", "2:3"]}[task]  # 14 windows
    return ["finetune", task, "--model", str(encoder), "--train", data, "--eval", data, "--out", str(out),
            *sizes, *RESUMABLE]


@pytest.fixture(scope="module")
def uninterrupted(encoder: Path, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                  ) -> Callable[[str], Path]:
    """task → the output folder of its run that was never stopped (made once)."""
    made: dict[str, Path] = {}

    def run(task: str) -> Path:
        if task not in made:
            out = tmp_path_factory.mktemp(f"whole-{task}") / "out"
            assert main(task_args(task, encoder, files, out)) == 0
            made[task] = out
        return made[task]

    return run


def crash_at_step(monkeypatch: pytest.MonkeyPatch, step: int, action: Callable[[], None]) -> None:
    """Call ``action`` in the middle of optimizer step ``step`` (after its backward passes, before the update)."""
    real = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def clip(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == step:
            action()
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)


def without_wall_clock(run: Path) -> list[dict]:
    return [{k: v for k, v in event.items() if k not in WALL_CLOCK} for event in read_metrics(run / "metrics.jsonl")]


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load_file(a), load_file(b)
    assert first.keys() == second.keys()
    for name in first:
        assert torch.allclose(first[name], second[name], rtol=0, atol=1e-6), name


def assert_same_run(expected: Path, actual: Path) -> None:
    """Same final weights (the last checkpoint's), same best model, same metrics.jsonl and evaluation history."""
    steps = [step for step, _ in list_checkpoints(expected / "checkpoints")]
    assert [step for step, _ in list_checkpoints(actual / "checkpoints")] == steps == [2, 4, 6]
    assert_same_weights(expected / "checkpoints" / "step-0000006" / "model.safetensors",
                        actual / "checkpoints" / "step-0000006" / "model.safetensors")
    assert_same_weights(expected / "model.safetensors", actual / "model.safetensors")
    assert without_wall_clock(actual) == without_wall_clock(expected)
    summaries = [json.loads((run / "metrics.json").read_text()) for run in (expected, actual)]
    for key in ("history", "best_step", "steps", "stopped_by", "epochs_completed"):
        assert summaries[1][key] == summaries[0][key], key
    assert not [p for p in (actual / "checkpoints").iterdir() if p.name.startswith(".")]  # no debris left


@pytest.mark.parametrize("task", TASKS)
def test_a_run_that_crashed_mid_step_resumes_to_the_uninterrupted_result(
        task: str, encoder: Path, files: dict[str, Path], uninterrupted: Callable[[str], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    expected = uninterrupted(task)
    events = read_metrics(expected / "metrics.jsonl")
    assert [e["step"] for e in events if e["kind"] == "eval"] == [2, 3, 4, 6]  # --eval-every 2 and epoch ends
    assert json.loads((expected / "metrics.json").read_text())["steps"] == 6

    out = tmp_path / "out"
    args = task_args(task, encoder, files, out)
    crash_in_step_6(monkeypatch, args, out)
    assert max(e["step"] for e in read_metrics(out / "metrics.jsonl")) == 5  # the lines to cut back
    # What OUT holds may be newer than the checkpoint (a best model saved after it): the checkpoint's best goes back.
    (out / "model.safetensors").write_bytes(b"saved after the checkpoint")
    assert main([*args, "--resume"]) == 0
    assert_same_run(expected, out)



def test_resume_with_the_settings_that_may_change_changed_ends_as_the_uninterrupted_run(
        encoder: Path, files: dict[str, Path], uninterrupted: Callable[[str], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/guides/finetuning.md: on --resume, --time-budget, --device, --eval-batch-size, --save-every, --keep-last and
    --gradient-checkpointing may change. The run crashes in step 6 and is resumed with every one of them other than
    the checkpoint's (a save every 3 steps keeping 3 still leaves checkpoints 2, 4 and 6), and ends as the run that
    was never stopped."""
    out = tmp_path / "out"
    args = task_args("classify", encoder, files, out)
    crash_in_step_6(monkeypatch, args, out)

    import bert.model
    from bert.finetune import classification

    real_logits, real_checkpoint = classification.classifier_logits, bert.model.checkpoint
    eval_batch_sizes, recomputed_layers = [], []

    def logits(*args, **kwargs) -> torch.Tensor:
        eval_batch_sizes.append(args[3])
        return real_logits(*args, **kwargs)

    def checkpoint(*args, **kwargs):
        recomputed_layers.append(1)
        return real_checkpoint(*args, **kwargs)

    monkeypatch.setattr(classification, "classifier_logits", logits)
    monkeypatch.setattr(bert.model, "checkpoint", checkpoint)
    changed = ["--eval-batch-size", "5", "--gradient-checkpointing", "--time-budget", "60", "--device", "cpu",
               "--save-every", "3", "--keep-last", "3"]
    assert main([*args, "--resume", *changed]) == 0  # later options win over RESUMABLE's
    assert eval_batch_sizes == [5] and recomputed_layers  # the changed settings were in force: step 6's evaluation
    assert_same_run(uninterrupted("classify"), out)


def test_ctrl_c_saves_a_checkpoint_mid_epoch_and_resume_ends_as_the_uninterrupted_run(
        encoder: Path, files: dict[str, Path], uninterrupted: Callable[[str], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    args = task_args("ner", encoder, files, out)
    crash_at_step(monkeypatch, 5, lambda: signal.raise_signal(signal.SIGINT))
    assert main(args) == 130
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "interrupted at step 5;" in err and "run the same command with --resume" in err and "Traceback" not in err
    assert latest_checkpoint(out / "checkpoints") == out / "checkpoints" / "step-0000005"  # not a --save-every step
    assert main([*args, "--resume"]) == 0
    expected = uninterrupted("ner")
    shutil.rmtree(out / "checkpoints" / "step-0000005")  # the extra one Ctrl-C wrote
    assert_same_run(expected, out)


KILL_WHILE_SAVING = """
import sys, time
import torch
from bert.cli import main
real_save = torch.save
def half_save(obj, f, *args, **kwargs):
    if ".tmp-step-0000006" in str(f):
        real_save(obj, f, *args, **kwargs)
        data = open(f, "rb").read()
        open(f, "wb").write(data[: len(data) // 2])
        print("WRITING", flush=True)
        time.sleep(300)
    real_save(obj, f, *args, **kwargs)
torch.save = half_save
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("task", TASKS)
def test_kill_9_while_a_checkpoint_is_written_then_resume_ends_as_the_uninterrupted_run(
        task: str, encoder: Path, files: dict[str, Path], uninterrupted: Callable[[str], Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = task_args(task, encoder, files, out)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", KILL_WHILE_SAVING, *args], cwd=REPO, env=env,
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            assert process.stdout.readline().strip() == "WRITING", log.read_text()[-3000:]
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    checkpoints = out / "checkpoints"
    [debris] = [p for p in checkpoints.iterdir() if p.name.startswith(".tmp-step-0000006")]
    assert (debris / "training_state.pt").is_file()  # half written
    assert latest_checkpoint(checkpoints) == checkpoints / "step-0000004"
    assert max(e["step"] for e in read_metrics(out / "metrics.jsonl")) == 6  # step 6 evaluated, then killed

    assert main([*args, "--resume"]) == 0
    assert_same_run(uninterrupted(task), out)


HEADS = {"classify": "classifier.bias, classifier.weight", "ner": "classifier.bias, classifier.weight",
         "qa": "qa_outputs.bias, qa_outputs.weight"}  # what the encoder lacks: each task's new head


@pytest.mark.parametrize("task", TASKS)
def test_resume_says_the_head_comes_from_the_checkpoint_and_never_that_it_is_freshly_initialised(
        task: str, encoder: Path, files: dict[str, Path], uninterrupted: Callable[[str], Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """The encoder has no task head. Resumed from a checkpoint, the head is the checkpoint's trained one, and the
    log says that, not the starting model's warning that it was freshly initialised; ``--resume`` with no
    checkpoint to resume from starts afresh, and then the warning is true and is given."""
    out = tmp_path / "out"
    shutil.copytree(uninterrupted(task), out)  # a finished run: resuming it loads everything and trains nothing
    caplog.clear()
    assert main([*task_args(task, encoder, files, out), "--resume"]) == 0
    assert "freshly initialised" not in caplog.text
    assert (f"resuming from {out / 'checkpoints' / 'step-0000006'} (step 6 of 6): the model's weights are the "
            f"checkpoint's, {HEADS[task]} included") in caplog.text

    caplog.clear()
    afresh = tmp_path / "afresh"
    assert main([*task_args(task, encoder, files, afresh), "--resume", "--max-steps", "1"]) == 0
    assert f"no checkpoint in {afresh / 'checkpoints'}; starting from scratch" in caplog.text
    assert f"were freshly initialised (train them before use): {HEADS[task]}" in caplog.text
    assert "resuming from" not in caplog.text


def test_the_first_ctrl_c_during_an_evaluation_says_at_once_that_the_run_stops_after_it(
        encoder: Path, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture) -> None:
    """Ctrl-C while the model is being evaluated (step 2's evaluation): before the evaluation goes on, the terminal
    already says the run is stopping after it; the evaluation then ends and is logged, and the run stops there."""
    from bert.finetune import classification

    out = tmp_path / "out"
    real_logits, shown = classification.classifier_logits, []

    def logits_after_ctrl_c(*args, **kwargs) -> torch.Tensor:
        if not shown:
            signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C once, in the middle of the evaluation
            shown.append(capfd.readouterr().err)  # what the terminal shows while the evaluation still runs
        return real_logits(*args, **kwargs)

    monkeypatch.setattr(classification, "classifier_logits", logits_after_ctrl_c)
    assert main(task_args("classify", encoder, files, out)) == 130
    assert len(shown) == 1, "the first Ctrl-C broke off the evaluation instead of letting it end"
    assert "stopping: finishing the current step (and its evaluation), then saving" in shown[0], shown
    err = capfd.readouterr().err
    assert "interrupted at step 2;" in err and "Traceback" not in err, err
    events = read_metrics(out / "metrics.jsonl")
    assert [(e["kind"], e["step"]) for e in events][-2:] == [("train", 2), ("eval", 2)]  # evaluated, then stopped
    assert json.loads((out / "metrics.json").read_text())["history"][-1]["step"] == 2


def test_resume_refuses_other_settings_and_a_fresh_run_refuses_a_folder_with_checkpoints(
        encoder: Path, files: dict[str, Path], uninterrupted: Callable[[str], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    out = uninterrupted("classify")
    before = {p: p.read_bytes() for p in (out / "metrics.jsonl", out / "model.safetensors")}
    args = task_args("classify", encoder, files, out)
    other_data = tmp_path / "other.tsv"
    other_data.write_text(files["classify"].read_text().replace("a great film", "a good film"), encoding="utf-8")
    other_model = make_tiny_model(tmp_path / "other-model", cls=BertModel, intermediate_size=48)

    def error(argv: list[str]) -> str:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and sum(": error: " in line for line in err.splitlines()) == 1, err
        return err

    assert "already holds checkpoints of a run: pass --resume to continue it, or choose another --out" in error(args)
    assert "batch-size 4 (now 2)" in error([*args, "--resume", "--batch-size", "2"])
    assert "lr 0.005 (now 0.001)" in error([*args, "--resume", "--lr", "1e-3"])
    [both] = [line for line in error([*args, "--resume", "--batch-size", "2", "--lr", "1e-3"]).splitlines() if line]
    assert "batch-size 4 (now 2)" in both and "lr 0.005 (now 0.001)" in both, both  # each difference, in one line
    err = error([*args, "--resume", "--train", str(other_data)])
    assert f"(now {other_data.resolve()})" in err and "the training examples differ" in err
    assert f"(now {other_model.resolve()})" in error([*args, "--resume", "--model", str(other_model)])
    assert before == {p: p.read_bytes() for p in before}  # nothing was written


def test_patience_stops_after_evaluations_without_improvement_and_resuming_then_changes_nothing(
        encoder: Path, files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    data = str(files["classify"])
    # A learning rate too small to change any prediction: the first evaluation stays the best.
    args = ["finetune", "classify", "--model", str(encoder), "--train", data, "--eval", data, "--out", str(out),
            "--batch-size", "4", "--epochs", "5", "--lr", "1e-12", "--eval-every", "1", "--patience", "2",
            "--save-every", "2", "--no-progress"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_by"] == "patience" and metrics["steps"] == 3 and metrics["best_step"] == 1
    assert [e["step"] for e in read_metrics(out / "metrics.jsonl") if e["kind"] == "eval"] == [1, 2, 3]
    assert "no better accuracy in 2 evaluations (best" in caplog.text and "stopping early" in caplog.text
    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [2, 3]  # and the last step's

    events = (out / "metrics.jsonl").read_bytes()
    assert main([*args, "--resume"]) == 0  # a finished run: nothing left to do
    assert (out / "metrics.jsonl").read_bytes() == events
    assert json.loads((out / "metrics.json").read_text())["stopped_by"] == "patience"


def test_metric_picks_the_best_model_and_unknown_names_are_listed(encoder: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    rows = [("a great film", 4.5), ("i loved it", 4.0), ("superb acting", 5.0), ("a terrible film", 0.5),
            ("boring and dull", 1.0), ("i hated it", 0.0)]
    data = tmp_path / "scores.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{s}\n" for t, s in rows * 3), encoding="utf-8")
    out = tmp_path / "out"
    common = ["finetune", "classify", "--model", str(encoder), "--train", str(data), "--eval", str(data),
              "--batch-size", "6", "--epochs", "3", "--lr", "3e-3", "--eval-every", "1", "--no-progress"]
    assert main([*common, "--out", str(out), "--metric", "mse"]) == 0  # lower is better
    metrics = json.loads((out / "metrics.json").read_text())
    history = metrics["history"]
    best = min(history, key=lambda record: record["mse"])
    assert metrics["main_metric"] == "mse" and metrics["best_step"] == best["step"] and metrics["mse"] == best["mse"]
    assert len(history) == 9 and len({record["mse"] for record in history}) > 1
    assert (out / "curves.png").stat().st_size > 0

    assert main([*common, "--out", str(tmp_path / "x"), "--metric", "accuracy"]) == 1
    err = capsys.readouterr().err
    assert "unknown metric 'accuracy' for --metric; this task reports: pearson, spearman, mse" in err
    assert "Traceback" not in err
    assert main(["finetune", "classify", "--model", str(encoder), "--train", str(data), "--out",
                 str(tmp_path / "y"), "--patience", "2"]) == 1
    assert "--patience needs an evaluation file (--eval)" in capsys.readouterr().err
