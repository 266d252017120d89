"""Long runs meet the real world: Ctrl-C sent to a real process, kill -9 in the middle of writing a checkpoint, a disk
that fills up, an output folder that cannot be written, and the promise that the same seed gives the same bytes.

A ``bert pretrain`` process killed with SIGKILL and resumed from an older checkpoint ends with the uninterrupted
run's weights and metrics.jsonl. Already proved in test_pretrain_loop.py and not repeated here: an interrupt raised
inside the loop (in-process) saves and resumes to the identical final model; kill -9 while ``training_state.pt`` is
half written; a non-finite loss stops with the step named and the last good checkpoint kept; an out path below a
file fails before training.

Disk full is a real full disk where this process may mount a tmpfs in a private mount namespace (root, as in CI,
where these tests fail if it may not); on other machines where it may not, the same assertions run against a write
that fails with ENOSPC. A read-only folder is a
read-only tmpfs mount, or (without root, where permissions bind) a folder chmod'ed to 0o555, or (root without mounts)
a file standing where the folder should be."""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import make_tiny_model, without_device_note

import bert
from bert.cli import main
from bert.data.prepare import prepare_pretraining_data
from bert.data.tokenizer_training import train_tokenizer
from bert.engine.checkpointing import latest_checkpoint, list_checkpoints, load_model_weights, read_training_state
from bert.engine.metrics import read_metrics
from bert.heads import BertForPreTraining

REPO = Path(__file__).resolve().parents[1]
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
SUBJECTS = "the cat|a dog|my friend|the teacher|our neighbour|the old man|a small bird|the children".split("|")
VERBS = "sees|likes|finds|watches|follows|paints|remembers|visits".split("|")
OBJECTS = "the garden|a red ball|the river|an apple|the mountain|a blue house|the city|the library".split("|")


def write_corpus(path: Path, documents: int = 60) -> Path:
    lines = []
    for d in range(documents):
        for s in range(4 + d % 5):
            lines.append(f"{SUBJECTS[(d + s) % 8].capitalize()} {VERBS[(d * 3 + s) % 8]} {OBJECTS[(d + 2 * s) % 8]}.")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt")


@pytest.fixture(scope="module")
def data(corpus, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrain-data")
    train_tokenizer([corpus], 120, root / "tokenizer", min_frequency=1)
    prepare_pretraining_data([corpus], root / "tokenizer", root / "data", max_seq_len=32, eval_fraction=0.1,
                             progress=False)
    return root / "data"


@pytest.fixture(scope="module")
def tiny_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def pretrain_args(data: Path, config: Path, out: Path, max_steps: int, *extra: str) -> list[str]:
    return ["pretrain", "--data", str(data), "--config", str(config), "--out", str(out), "--max-steps",
            str(max_steps), "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "2", "--log-every", "1",
            "--eval-every", "0", "--save-every", "0", "--no-progress", "--threads", "1", "--no-bf16", *extra]


def bert_process(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bert", *map(str, args)], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for(condition, timeout: float = 90.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended early: {process.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def lines_in(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else 0


def checkpoint_step(folder: Path) -> int:
    """Load a checkpoint as --resume does (weights into a model of its config, then the training state): its step."""
    model = BertForPreTraining(bert.BertConfig.from_json_file(folder / "config.json"))
    load_model_weights(folder, model)
    return read_training_state(folder).step


def train_steps(run: Path) -> list[int]:
    return [e["step"] for e in read_metrics(run / "metrics.jsonl") if e["kind"] == "train"]


# ---- Ctrl-C ---------------------------------------------------------------------------------------------------------

def interrupt_when(process: subprocess.Popen, ready: Callable[[], bool]) -> str:
    """Send SIGINT (Ctrl-C) to ``process`` once ``ready()`` holds; its stderr once it has exited."""
    try:
        wait_for(ready, process=process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return stderr


def test_ctrl_c_to_a_pretraining_process_saves_exits_130_and_resume_continues(data, tiny_json, tmp_path):
    run = tmp_path / "run"
    process = bert_process(pretrain_args(data, tiny_json, run, 100_000))
    stderr = interrupt_when(process, lambda: lines_in(run / "metrics.jsonl") >= 5)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "stopping: finishing the current step (and its evaluation), then saving; press Ctrl-C again" in stderr
    found = re.search(r"interrupted at step (\d+); saved (\S+)\. To continue, run the same command with --resume",
                      stderr)
    assert found, stderr
    step = int(found.group(1))
    assert Path(found.group(2)) == latest_checkpoint(run / "checkpoints") == run / "checkpoints" / f"step-{step:07d}"
    assert checkpoint_step(Path(found.group(2))) == step and train_steps(run) == list(range(1, step + 1))

    assert main([*pretrain_args(data, tiny_json, run, step + 3), "--resume"]) == 0  # a shorter plan this time
    assert train_steps(run) == list(range(1, step + 4))
    assert latest_checkpoint(run / "checkpoints").name == f"step-{step + 3:07d}"
    assert BertForPreTraining.from_pretrained(run / "final").load_report.missing == []


def test_a_second_ctrl_c_stops_a_pretraining_process_at_once_without_saving(data, tiny_json, tmp_path):
    """The first Ctrl-C waits for the step under way, which here never ends (BLOCK_AT_STEP holds still at the start
    of step 4); the second stops the process at once (exit 130 within seconds, not after the 300 s the step would
    take) and writes no checkpoint for that step."""
    run = tmp_path / "run"
    args = pretrain_args(data, tiny_json, run, 100, "--save-every", "1", "--keep-last", "0")
    process = subprocess.Popen([sys.executable, "-c", BLOCK_AT_STEP, "4", *args], cwd=REPO, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)
    reader.start()
    try:
        assert process.stdout.readline().strip() == "BLOCKED", "".join(stderr_lines)[-3000:]
        process.send_signal(signal.SIGINT)
        wait_for(lambda: process.poll() is not None or any("stopping: finishing the current step" in line
                                                           for line in stderr_lines), timeout=30)
        assert process.poll() is None, "".join(stderr_lines)[-3000:]  # the first Ctrl-C did not stop the process
        process.send_signal(signal.SIGINT)
        second = time.monotonic()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("a second Ctrl-C did not stop the process within 10 s")
        stopped_after = time.monotonic() - second
    finally:
        process.kill()
        process.wait(timeout=30)
    reader.join(timeout=10)
    stderr = "".join(stderr_lines)
    assert process.returncode == 130, stderr
    assert stopped_after < 10 and "Traceback" not in stderr, stderr
    assert stderr.splitlines()[-1] == "bert pretrain: interrupted", stderr
    assert "interrupted at step" not in stderr and "saved" not in stderr, stderr  # the first Ctrl-C's save never came
    checkpoints = run / "checkpoints"
    assert [step for step, _ in list_checkpoints(checkpoints)] == [1, 2, 3]  # none for the blocked step 4
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]  # nor a half-written one
    assert train_steps(run) == [1, 2, 3] and not (run / "final").exists()


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("encoder"), cls=bert.BertModel, **TINY)


def sentiment_file(path: Path) -> Path:
    rows = [("a great film", "pos"), ("i loved it", "pos"), ("superb acting", "pos"), ("a terrible film", "neg"),
            ("boring and dull", "neg"), ("i hated it", "neg")]
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows * 4), encoding="utf-8")
    return path


def test_ctrl_c_to_a_finetuning_process_keeps_the_model_exits_130_and_training_can_go_on(tiny_encoder, tmp_path):
    train = sentiment_file(tmp_path / "train.tsv")
    out = tmp_path / "out"
    process = bert_process(["finetune", "classify", "--model", tiny_encoder, "--train", train, "--out", out,
                            "--epochs", "400", "--batch-size", "4", "--max-seq-len", "16", "--no-progress"])
    stderr = interrupt_when(process, lambda: lines_in(out / "metrics.jsonl") >= 2)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopping: finishing the current step" in stderr
    found = re.search(r"interrupted at step (\d+); .* is in (\S+); to train it further, pass --model", stderr)
    assert found and Path(found.group(2)) == out, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["steps"] == int(found.group(1)) > 0
    interrupted = bert.BertForSequenceClassification.from_pretrained(out)
    assert interrupted.config.id2label == {0: "neg", 1: "pos"}

    more = tmp_path / "more"
    assert main(["finetune", "classify", "--model", str(out), "--train", str(train), "--out", str(more),
                 "--max-steps", "2", "--batch-size", "4", "--max-seq-len", "16", "--no-progress"]) == 0
    continued = bert.BertForSequenceClassification.from_pretrained(more)
    assert continued.config.id2label == {0: "neg", 1: "pos"}  # the same head, trained further, not a fresh one
    assert not torch.equal(continued.classifier.weight, interrupted.classifier.weight)


WALL_CLOCK = ("elapsed", "tokens_per_second", "peak_rss_gb", "model_flops_per_second", "flop_share")


def events_without_wall_clock(run: Path) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in WALL_CLOCK} for e in read_metrics(run / "metrics.jsonl")]


def assert_same_weights(expected: Path, actual: Path) -> None:
    """The two model.safetensors files hold the same tensors, each within 1e-6 (as the resume tests ask)."""
    a, b = load_file(expected), load_file(actual)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)


# ---- kill -9 while the model file of a checkpoint is being written ---------------------------------------------------

SLOW_WEIGHTS = """
import sys, time
import safetensors.torch
from bert.cli import main
real_save_file = safetensors.torch.save_file
def slow_save_file(tensors, path, metadata=None):
    if ".tmp-step-0000004" in str(path):
        real_save_file(tensors, path, metadata=metadata)
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2])
        print("WRITING", flush=True)
        time.sleep(300)
    real_save_file(tensors, path, metadata=metadata)
safetensors.torch.save_file = slow_save_file
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_while_weights_are_written_keeps_the_previous_checkpoint_and_resume_ends_as_the_uninterrupted_run(
        data, tiny_json, tmp_path):
    """Killed while step 4's model.safetensors is half written (after step 4's evaluation was logged); --resume
    goes back to step 2 and ends with the weights and metrics.jsonl of the run that was never stopped (dropout on,
    so the optimizer, schedule, data order, masking and RNG states must all come back)."""
    common = ["--save-every", "2", "--keep-last", "0", "--eval-every", "2", "--eval-batches", "1"]
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert main(pretrain_args(data, tiny_json, straight, 8, *common)) == 0
    args = pretrain_args(data, tiny_json, run, 8, *common)
    process = subprocess.Popen([sys.executable, "-c", SLOW_WEIGHTS, *args], cwd=REPO, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "WRITING"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    checkpoints = run / "checkpoints"
    [debris] = [p for p in checkpoints.iterdir() if p.name.startswith(".tmp-step-0000004")]
    assert not (debris / "model.safetensors").exists()  # the half file still has its temporary name
    assert any(p.name.startswith(".model.safetensors.") for p in debris.iterdir())
    assert latest_checkpoint(checkpoints) == checkpoints / "step-0000002"
    assert checkpoint_step(checkpoints / "step-0000002") == 2
    assert max(e["step"] for e in read_metrics(run / "metrics.jsonl")) == 4  # the lines --resume must cut back

    assert main([*args, "--resume"]) == 0
    assert [step for step, _ in list_checkpoints(checkpoints)] == [2, 4, 6, 8]
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]
    assert train_steps(run) == list(range(1, 9))
    expected, actual = events_without_wall_clock(straight), events_without_wall_clock(run)
    assert [(e["kind"], e["step"]) for e in actual] == [
        event for last in (2, 4, 6, 8) for event in (("train", last - 1), ("train", last), ("eval", last))]
    assert actual == expected
    assert_same_weights(straight / "final" / "model.safetensors", run / "final" / "model.safetensors")
    assert_same_weights(straight / "checkpoints" / "step-0000004" / "model.safetensors",
                        checkpoints / "step-0000004" / "model.safetensors")  # written again, whole


# ---- kill -9 mid-run, then --resume: the run ends as the uninterrupted one does -------------------------------------

BLOCK_AT_STEP = """
import sys, time
from bert.cli import main
from bert.pretraining.batches import DataOrder
real_next_step = DataOrder.next_step
calls = 0
def next_step(self):
    global calls
    calls += 1
    if calls == int(sys.argv[1]):  # the start of this step: hold still to be killed (changes nothing before it)
        print("BLOCKED", flush=True)
        time.sleep(300)
    return real_next_step(self)
DataOrder.next_step = next_step
sys.exit(main(sys.argv[2:]))
"""
def test_kill_9_then_resume_from_an_older_checkpoint_ends_with_the_uninterrupted_runs_weights_and_metrics(
        data, tiny_json, tmp_path):
    """Dropout on (the tiny config's 0.1), so the RNG states must come back too. Killed at the start of step 7:
    metrics.jsonl already holds steps 5 and 6, the latest checkpoint is step 4's; --resume must cut the metrics
    back to step 4 and redo steps 5-12 exactly as the run that was never stopped did them."""
    common = ["--eval-every", "4", "--eval-batches", "1", "--save-every", "4", "--keep-last", "0"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    result = subprocess.run([sys.executable, "-m", "bert", *pretrain_args(data, tiny_json, straight, 12, *common)],
                            cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]

    args = pretrain_args(data, tiny_json, killed, 12, *common)
    process = subprocess.Popen([sys.executable, "-c", BLOCK_AT_STEP, "7", *args], cwd=REPO, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "BLOCKED", process.communicate()[1][-3000:]
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert train_steps(killed) == [1, 2, 3, 4, 5, 6]
    assert latest_checkpoint(killed / "checkpoints") == killed / "checkpoints" / "step-0000004"
    assert not (killed / "final").exists()

    result = subprocess.run([sys.executable, "-m", "bert", *args, "--resume"], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [step for step, _ in list_checkpoints(killed / "checkpoints")] == [4, 8, 12]
    expected, actual = events_without_wall_clock(straight), events_without_wall_clock(killed)
    assert [(e["kind"], e["step"]) for e in actual] == [("train", s) for s in range(1, 5)] + [("eval", 4)] + [
        ("train", s) for s in range(5, 9)] + [("eval", 8)] + [("train", s) for s in range(9, 13)] + [("eval", 12)]
    assert actual == expected
    assert_same_weights(straight / "final" / "model.safetensors", killed / "final" / "model.safetensors")


# ---- a full disk ----------------------------------------------------------------------------------------------------

def can_mount_tmpfs() -> bool:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


MOUNTABLE = can_mount_tmpfs()


def require_real_mounts_in_ci() -> None:
    """In CI (``CI`` set), fail unless a tmpfs can be mounted. CI runs as root on a machine where ``unshare -m`` and
    ``mount -t tmpfs`` work, so docs/guides/reliability.md's "a real full disk (tmpfs) and a read-only output folder"
    must be the real thing there: the simulated failures below (a write raising ENOSPC, a chmod'ed folder) must not let
    CI pass. They stay for local runs without root, where a mount is not allowed and the simulation is the best there
    is."""
    if os.environ.get("CI") and not MOUNTABLE:
        pytest.fail("CI is set but no tmpfs can be mounted here (needs root and unshare -m): the full-disk and "
                    "read-only-folder tests would only simulate the failure")


def checkpoint_size(data: Path, tiny_json: Path, tmp_path: Path) -> int:
    run = tmp_path / "measure"
    assert main(pretrain_args(data, tiny_json, run, 1)) == 0
    folder = latest_checkpoint(run / "checkpoints")
    return sum(f.stat().st_size for f in folder.iterdir())


def run_on_small_disk(args_before_out: list[str], out_name: str, args_after_out: list[str], size: int,
                      tmp_path: Path, then: str = "") -> tuple[int, str, Path]:
    """Run ``bert ARGS`` with its output on a fresh tmpfs of ``size`` bytes (in a private mount namespace); return
    the exit status, stderr and a copy of what the run left on that disk."""
    mount = tmp_path / "disk"
    mount.mkdir()
    copy = tmp_path / "left-on-disk"
    command = " ".join([sys.executable, "-m", "bert", *map(shlex_quote, args_before_out), shlex_quote(mount / out_name),
                        *map(shlex_quote, args_after_out)])
    script = (f"mount -t tmpfs -o size={size} tmpfs {mount} && {{ {command}; echo $? > {tmp_path}/rc; "
              f"{then} cp -a {mount} {copy}; }}")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, env=ENV, capture_output=True, text=True,
                            timeout=240)
    return int((tmp_path / "rc").read_text()), result.stderr, copy


def shlex_quote(value) -> str:
    return shlex.quote(str(value))


def test_a_disk_that_fills_up_stops_with_one_line_keeps_the_last_checkpoint_and_resume_works(
        data, tiny_json, tmp_path, monkeypatch, capsys):
    require_real_mounts_in_ci()
    size = checkpoint_size(data, tiny_json, tmp_path)
    args = pretrain_args(data, tiny_json, Path("OUT"), 12, "--save-every", "2", "--keep-last", "0")
    before, after = args[: args.index("OUT")], args[args.index("OUT") + 1:]
    if MOUNTABLE:  # the real thing: room for one checkpoint and a half; then more room, and --resume
        resume = " ".join([sys.executable, "-m", "bert", *map(shlex_quote, before), shlex_quote(tmp_path / "disk/run"),
                           *map(shlex_quote, after), "--resume"])
        then = (f"mount -o remount,size={size * 12} {tmp_path / 'disk'} && cp -a {tmp_path / 'disk'} "
                f"{tmp_path / 'at-failure'} && {resume} > /dev/null 2> {tmp_path / 'resume.err'}; "
                f"echo $? > {tmp_path / 'resume.rc'};")
        code, err, left = run_on_small_disk(before, "run", after, size * 3 // 2, tmp_path, then=then)
        at_failure = tmp_path / "at-failure" / "run"
        resumed = left / "run"
        resume_rc = int((tmp_path / "resume.rc").read_text())
    else:  # no mount allowed here: the same failure, raised by the write itself
        import bert.engine.checkpointing as checkpointing
        real_save = checkpointing.torch.save

        def full_disk(obj, path):
            if obj["step"] >= 4:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_save(obj, path)

        monkeypatch.setattr(checkpointing.torch, "save", full_disk)
        at_failure = resumed = tmp_path / "run"
        capsys.readouterr()
        code = main([*before, str(at_failure), *after])
        err = capsys.readouterr().err
        snapshot = tmp_path / "at-failure-copy"
        shutil.copytree(at_failure, snapshot)
        monkeypatch.undo()
        resume_rc = main([*before, str(resumed), *after, "--resume"])
        at_failure = snapshot
    assert code == 1, err
    *notes, error = err.splitlines()  # the notes of the run's start, then one line
    assert error.startswith("bert pretrain: error: ") and "Traceback" not in err, err
    assert all(line.startswith("bert pretrain: ") for line in notes), err
    assert "No space left on device" in err, err
    assert "step-0000002" in err and "--resume" in err, err
    checkpoints = at_failure / "checkpoints"
    assert [step for step, _ in list_checkpoints(checkpoints)] == [2]
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]  # no half-written debris left
    assert checkpoint_step(checkpoints / "step-0000002") == 2
    assert resume_rc == 0
    assert [step for step, _ in list_checkpoints(resumed / "checkpoints")] == [2, 4, 6, 8, 10, 12]
    assert train_steps(resumed) == list(range(1, 13))


def test_a_disk_without_room_for_one_checkpoint_is_refused_before_training(data, tiny_json, tmp_path, monkeypatch,
                                                                           capsys):
    require_real_mounts_in_ci()
    size = checkpoint_size(data, tiny_json, tmp_path)
    args = pretrain_args(data, tiny_json, Path("OUT"), 12)
    before, after = args[: args.index("OUT")], args[args.index("OUT") + 1:]
    if MOUNTABLE:
        code, err, left = run_on_small_disk(before, "run", after, max(size // 3, 16384), tmp_path)
        run = left / "run"
    else:
        import bert.engine.checkpointing as checkpointing
        usage = shutil.disk_usage(tmp_path)
        monkeypatch.setattr(checkpointing.shutil, "disk_usage", lambda _: usage._replace(free=size // 3))
        run = tmp_path / "run"
        capsys.readouterr()
        code = main([*before, str(run), *after])
        err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(r"has [\d.]+ MB free, but one checkpoint of this model needs about [\d.]+ MB", err), err
    assert not (run / "metrics.jsonl").exists() and not list_checkpoints(run / "checkpoints")


# ---- output folders that cannot be written ---------------------------------------------------------------------------

DRIVER = """
import contextlib, io, json, sys, time
from bert.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results.append({"argv": argv, "code": code, "err": err.getvalue(), "seconds": time.perf_counter() - start})
print(json.dumps(results))
"""


def test_every_writing_command_refuses_a_read_only_output_folder_at_once(data, tiny_json, corpus, tiny_encoder,
                                                                         tmp_path):
    require_real_mounts_in_ci()
    locked = tmp_path / "locked"
    locked.mkdir()
    train = sentiment_file(tmp_path / "train.tsv")
    classifier = tmp_path / "classifier"
    model = bert.BertForSequenceClassification(bert.BertConfig(**TINY, id2label={0: "neg", 1: "pos"}))
    model.save_pretrained(classifier)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_encoder / name, classifier / name)
    commands = {
        "pretrain": pretrain_args(data, tiny_json, locked / "run", 5),
        "prepare": ["prepare", str(corpus), "--tokenizer", str(data / "tokenizer"), "--out", str(locked / "data")],
        "train-tokenizer": ["train-tokenizer", str(corpus), "--vocab-size", "100", "--out", str(locked / "tok")],
        "finetune": ["finetune", "classify", "--model", str(tiny_encoder), "--train", str(train), "--out",
                     str(locked / "ft"), "--no-progress"],
        "convert": ["convert", str(tiny_encoder), str(locked / "converted")],
        "quantize": ["quantize", str(tiny_encoder), str(locked / "int8")],
        "predict": ["predict", "classify", "--model", str(classifier), "--text", "great", "--output",
                    str(locked / "predictions.jsonl")],
    }
    argvs = json.dumps(list(commands.values()))
    if MOUNTABLE:  # root ignores permissions: mount a read-only file system there instead
        script = (f"mount -t tmpfs -o ro,size=64k tmpfs {shlex.quote(str(locked))} && "
                  f"{shlex.quote(sys.executable)} -c {shlex.quote(DRIVER)} {shlex.quote(argvs)}")
        result = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, env=ENV, capture_output=True,
                                text=True, timeout=240)
    elif os.geteuid() != 0:  # permissions bind
        locked.chmod(0o555)
        try:
            result = subprocess.run([sys.executable, "-c", DRIVER, argvs], cwd=REPO, env=ENV, capture_output=True,
                                    text=True, timeout=240)
        finally:
            locked.chmod(0o755)
    else:  # root without mounts: permissions do not bind; a file where the folder should be does
        locked.rmdir()
        locked.write_text("a file, not a folder")
        result = subprocess.run([sys.executable, "-c", DRIVER, argvs], cwd=REPO, env=ENV, capture_output=True,
                                text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    for name, outcome in zip(commands, json.loads(result.stdout.strip().splitlines()[-1]), strict=True):
        err = without_device_note(outcome["err"])  # predict loads its model before it writes
        assert outcome["code"] == 1, (name, err)
        assert err.startswith(f"bert {outcome['argv'][0]}: error: cannot ") and err.count("\n") == 1, (name, err)
        assert any(reason in err for reason in ("Read-only file system", "Permission denied", "Not a directory")), \
            (name, err)
        assert str(locked) in err, (name, err)
        assert outcome["seconds"] < 20, (name, outcome["seconds"])  # refused up front, before the long work


# ---- determinism -----------------------------------------------------------------------------------------------------

DETERMINISM_DRIVER = """
import os, sys
from bert.cli import main
corpus, tokenizer, out, config, seed = sys.argv[1:]
os.makedirs(out)
assert main(["prepare", corpus, "--tokenizer", tokenizer, "--out", out + "/data", "--max-seq-len", "32",
             "--eval-fraction", "0.1", "--seed", seed, "--quiet"]) == 0
assert main(["pretrain", "--data", out + "/data", "--config", config, "--out", out + "/run", "--max-steps", "8",
             "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "2", "--log-every", "1", "--eval-every", "4",
             "--eval-batches", "1", "--save-every", "4", "--no-progress", "--threads", "1", "--seed", seed]) == 0
"""


def test_the_same_seed_gives_the_same_data_bytes_and_loss_curve_in_separate_processes(data, corpus, tiny_json,
                                                                                      tmp_path):
    runs = {}
    for name, hash_seed, seed in (("first", "1", "5"), ("second", "2", "5"), ("other-seed", "1", "6")):
        out = tmp_path / name
        subprocess.run([sys.executable, "-c", DETERMINISM_DRIVER, str(corpus), str(data / "tokenizer"), str(out),
                        str(tiny_json), seed], cwd=REPO, env={**ENV, "PYTHONHASHSEED": hash_seed}, check=True,
                       capture_output=True, timeout=180)
        runs[name] = out

    def data_files(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "data").rglob("*")) if p.is_file()}

    def curve(out: Path) -> list[tuple]:
        return [(e["kind"], e["step"], e["mlm_loss"], e["nsp_loss"], e["mlm_accuracy"])
                for e in read_metrics(out / "run" / "metrics.jsonl")]

    first, second, other = (runs[n] for n in ("first", "second", "other-seed"))
    assert data_files(first) == data_files(second)  # byte for byte, meta.json and tokenizer included
    assert curve(first) == curve(second)  # exactly: the same floats
    assert len(curve(first)) == 8 + 2
    for name in ("model.safetensors", "config.json"):
        assert (first / "run/final" / name).read_bytes() == (second / "run/final" / name).read_bytes()
    assert data_files(first) != data_files(other) and curve(first) != curve(other)  # the seed does matter
