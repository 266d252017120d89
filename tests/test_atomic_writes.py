"""Every folder writer goes through bert.atomic: killed with SIGKILL mid-write, it leaves the whole old folder or the
whole new one, never a half one, and the next write cleans what the killed one left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bert import atomic
from bert.atomic import replace_folder_atomically, write_file_atomically
from bert.errors import BertError
from tests.support import REPO

# The runner writes version "old" of a writer's target, then a copy of it brought to "new" (the references); then,
# for each kill point k, a forked child brings another copy of "old" to "new" but stops inside the k-th fsync of
# the write (after the files before it are written); the runner SIGKILLs it there, keeps a copy of what the kill
# left, and writes "new" once more over it (the next write, which must clean up).
RUNNER = r'''
import json, os, shutil, signal, sys, time
from pathlib import Path
from types import SimpleNamespace
import torch
import bert.atomic as atomic
from bert.config import BertConfig
from bert.heads import BertForPreTraining
from bert.inference.pipelines import DEMO_MODEL
from bert.tokenizer.wordpiece import BertTokenizer

writer, work, fractions = sys.argv[1], Path(sys.argv[2]), [float(f) for f in sys.argv[3].split(",")]
tokenizer = BertTokenizer.from_pretrained(DEMO_MODEL)

def model(version, same_config=False):
    # old and new differ in config.json too (not only in their weights), so that a folder written file by file
    # would show a mix of the two; fine-tuning's best models all share the run's config (same_config)
    torch.manual_seed({"old": 1, "new": 2}[version])
    wide = 32 if same_config or version == "old" else 48
    return BertForPreTraining(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=wide, max_position_embeddings=64))

def write(root, version):
    root.mkdir(parents=True, exist_ok=True)
    if writer == "checkpoint":
        from bert.engine.checkpointing import TrainingState, save_checkpoint
        step = {"old": 2, "new": 4}[version]
        save_checkpoint(root / "checkpoints", model(version), TrainingState(
            step=step, elapsed=1.0, optimizer={"param_groups": [{"lr": 0.1}]}, schedule={"total_steps": 4}, rng={},
            data={"epoch": 0, "index": step}))
    elif writer == "final":
        from bert.engine.task import Outcome
        from bert.pretraining.task import PretrainingTask
        world = SimpleNamespace(is_main=True, barrier=lambda: None, device=torch.device("cpu"))
        task = SimpleNamespace(out=root, model=model(version), tokenizer=tokenizer, world=world,
                               note=lambda message: None)
        task.save_model = lambda folder: PretrainingTask.save_model(task, folder)
        PretrainingTask.finish(task, Outcome("max_steps", False, False, None, None, [], 1, 1, 1.0))
    elif writer == "prepare":
        from bert.data.prepare import prepare_pretraining_data
        corpus = work / "corpus.txt"
        if not corpus.exists():
            corpus.write_text("".join(f"Document {d} says hello. It has two sentences.\n\n" for d in range(20)))
        prepare_pretraining_data([corpus], tokenizer, root / "data", max_seq_len=32, seed={"old": 1, "new": 2}[version],
                                 overwrite=True, progress=False)
    elif writer == "finetune_best":
        from bert.finetune.task import FinetuneTask
        FinetuneTask.save_model(SimpleNamespace(model=model(version, same_config=True), tokenizer=tokenizer), root)
    elif writer in ("convert", "quantize"):
        from bert.cli.inference import run_convert, run_quantize
        for each in ("old", "new"):  # both sources made before the first write, so no write counts their fsyncs
            source = work / f"source-{each}"
            if not source.exists():
                model(each).save_pretrained(source)
                for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
                    shutil.copyfile(DEMO_MODEL / name, source / name)
        run = run_convert if writer == "convert" else run_quantize
        run(SimpleNamespace(source=str(work / f"source-{version}"), out=str(root / "out")))
    else:
        raise SystemExit(f"unknown writer {writer}")

real_fsync, calls, hang_at = atomic.fsync_path, [0], [None]
def fsync_path(path):
    calls[0] += 1
    if calls[0] == hang_at[0]:
        print("HANG", flush=True)
        time.sleep(300)
    real_fsync(path)
atomic.fsync_path = fsync_path

write(work / "old", "old")
shutil.copytree(work / "old", work / "new")
calls[0] = 0
write(work / "new", "new")
total = calls[0]
points = sorted({max(1, min(total, round(f * total))) for f in fractions})
for k in points:
    target = work / f"target-{k}"
    shutil.copytree(work / "old", target)
    read, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.dup2(write_end, 1)
        sys.stdout = os.fdopen(1, "w")
        calls[0], hang_at[0] = 0, k
        write(target, "new")
        print("DONE", flush=True)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read) as pipe:
        line = pipe.readline().strip()
        while line and line != "HANG":
            line = pipe.readline().strip()
    assert line == "HANG", (k, line)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    shutil.copytree(target, work / f"killed-{k}", symlinks=True)
    hang_at[0] = None
    write(target, "new")
print(json.dumps({"total": total, "points": points}))
'''


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (by relative path) with its bytes, leaving out names that start with a dot: the
    writers' temporary names, which no reader opens (the tests check separately that the next write removes
    them)."""
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)}


def run_kills(writer: str, work: Path, fractions: str = "0.0,0.5,1.0") -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", RUNNER, writer, str(work), fractions], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("writer", ["checkpoint", "final", "prepare", "finetune_best", "convert", "quantize"])
def test_a_writer_killed_mid_write_leaves_the_old_or_the_new_folder_and_the_next_write_cleans_up(
        writer, tmp_path) -> None:
    """SIGKILL at the first fsync (files of the new version half written), at eight more spread to the last one (the
    swap done, the parent folder not yet fsync'ed): the target is byte for byte the old or the new version; every
    kill point is one or the other, the first leaves the old, the last the new; after one more write it is the new
    version with no temporary debris beside it."""
    info = run_kills(writer, tmp_path, ",".join(str(k / 8) for k in range(9)))
    old, new = snapshot(tmp_path / "old"), snapshot(tmp_path / "new")
    assert old != new and old and new
    changed = [name for name in new if old.get(name) != new[name]]
    # a folder writer's versions differ in several files (else a file-by-file writer would pass); fine-tuning's
    # best model changes its weights file alone (its config and tokenizer are the run's)
    assert len(changed) == 1 if writer == "finetune_best" else len(changed) >= 2, changed
    seen = []
    for k in info["points"]:
        left = snapshot(tmp_path / f"killed-{k}")
        assert left in (old, new), (writer, k, sorted(set(left) ^ set(new)), sorted(set(left) ^ set(old)))
        seen.append("old" if left == old else "new")
        target = tmp_path / f"target-{k}"
        assert snapshot(target) == new
        debris = [p.relative_to(target) for p in target.rglob(".*")]
        assert not debris, (writer, k, debris)
    assert seen[0] == "old" and seen[-1] == "new", (writer, info, seen)


# ---- the two functions ------------------------------------------------------------------------------------------

def test_replace_folder_atomically_swaps_a_whole_folder_in_and_a_failing_fill_leaves_the_old_one(tmp_path) -> None:
    target = tmp_path / "out"
    replace_folder_atomically(target, lambda tmp: (tmp / "a.txt").write_text("old a"))

    def failing(tmp: Path) -> None:
        (tmp / "a.txt").write_text("new a")
        (tmp / "b.txt").write_text("new b")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        replace_folder_atomically(target, failing)
    assert snapshot(target) == {"a.txt": b"old a"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left

    def fill(tmp: Path) -> None:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("new b")

    assert replace_folder_atomically(target, fill) == target
    assert snapshot(target) == {"sub/b.txt": b"new b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_on_linux_an_existing_folder_is_swapped_by_rename_exchange_not_the_fallback(tmp_path, monkeypatch) -> None:
    """The atomic swap itself runs here (CI is Linux): renameat2(RENAME_EXCHANGE) succeeds and swaps two folders,
    and replace_folder_atomically over an existing folder goes through it, never the two-rename fallback."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "which").write_text("a")
    (b / "which").write_text("b")
    assert atomic._exchange(a, b) is True
    assert (a / "which").read_text() == "b" and (b / "which").read_text() == "a"
    outcomes = []
    real = atomic._exchange
    monkeypatch.setattr(atomic, "_exchange", lambda x, y: outcomes.append(real(x, y)) or outcomes[-1])
    target = tmp_path / "out"
    replace_folder_atomically(target, lambda tmp: (tmp / "w").write_text("old"))
    replace_folder_atomically(target, lambda tmp: (tmp / "w").write_text("new"))
    assert outcomes == [True] and snapshot(target) == {"w": b"new"}


def test_without_rename_exchange_a_crash_between_the_two_renames_is_undone_by_the_next_write(
        tmp_path, monkeypatch) -> None:
    """The fallback path (no renameat2): the old folder renamed aside, then a crash before the new one is renamed
    in. The next write into the parent folder puts the old folder back first, so it is never lost."""
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "final"
    replace_folder_atomically(target, lambda tmp: (tmp / "w").write_text("old"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    os.rename(target, tmp_path / f".old-final-{dead}")  # what a writer killed between the renames leaves
    (tmp_path / f".tmp-final-{dead}").mkdir()
    atomic.clean_leftovers(tmp_path)
    assert snapshot(target) == {"w": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    replace_folder_atomically(target, lambda tmp: (tmp / "w").write_text("new"))
    assert snapshot(target) == {"w": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_write_file_atomically_keeps_the_old_file_on_failure_and_words_an_oserror_as_one_line(tmp_path) -> None:
    path = tmp_path / "metrics.json"
    write_file_atomically(path, lambda tmp: tmp.write_text("old"))

    def failing(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(BertError, match=rf"^cannot write {path}: No space left on device$"):
        write_file_atomically(path, failing)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".metrics.json.{dead}-abc123.tmp").write_text("half")  # a killed writer's
    write_file_atomically(path, lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
