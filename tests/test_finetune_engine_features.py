"""What fine-tuning gained by running on the training engine, each tested as pretraining's is: bf16 autocast takes
effect, ``--compile`` compiles, ``torchrun`` DDP with 2 processes equals 1 process, and a time budget that the epochs
would overrun re-fits the schedule so the learning rate reaches 0 when the time does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import REPO, conll_file, make_tiny_model, sentiment_file, squad_file
from test_compile import count_inductor_compilations

import bert.engine.loop as engine_loop
from bert.cli import main
from bert.engine.metrics import read_metrics
from bert.finetune import classification
from bert.model import BertModel


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BertModel without dropout, with bert-base-uncased's tokenizer files."""
    return make_tiny_model(tmp_path_factory.mktemp("encoder"), max_positions=128, cls=BertModel)


def classify(encoder: Path, data: Path, out: Path, *flags: str) -> list[str]:
    return ["finetune", "classify", "--model", str(encoder), "--train", str(data), "--eval", str(data),
            "--out", str(out), "--lr", "5e-3", "--no-progress", *flags]


def train_losses(out: Path) -> list[float]:
    return [e["loss"] for e in read_metrics(out / "metrics.jsonl") if e["kind"] == "train"]


def test_bf16_runs_the_training_and_evaluation_forwards_under_bfloat16_autocast(
        encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[bool, list] = {True: [], False: []}  # model.training → autocast state at each encoder forward
    forward = BertModel.forward

    def recording_forward(self, *args, **kwargs):
        seen[self.training].append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertModel, "forward", recording_forward)
    data = sentiment_file(tmp_path / "t.tsv", repeat=1)
    assert main(classify(encoder, data, tmp_path / "bf16", "--max-steps", "3", "--batch-size", "4", "--bf16")) == 0
    assert len(seen[True]) == 3 and set(seen[True]) == {(True, torch.bfloat16)}  # one forward per training step
    assert seen[False] and set(seen[False]) == {(True, torch.bfloat16)}  # evaluation too
    seen[True].clear()
    assert main(classify(encoder, data, tmp_path / "fp32", "--max-steps", "3", "--batch-size", "4")) == 0
    assert seen[True] and not any(enabled for enabled, _ in seen[True])  # without --bf16: float32


def test_compiled_finetuning_is_compiled_by_inductor_and_follows_the_eager_loss_curve(
        encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch._dynamo.reset()
    compiled_graphs = count_inductor_compilations(monkeypatch)
    data = sentiment_file(tmp_path / "t.tsv", repeat=1)
    losses, graphs = {}, {}
    for name, flags in (("eager", []), ("compiled", ["--compile"])):
        before = len(compiled_graphs)
        assert main(classify(encoder, data, tmp_path / name, "--max-steps", "4", "--batch-size", "4", *flags)) == 0
        losses[name], graphs[name] = train_losses(tmp_path / name), compiled_graphs[before:]
    assert graphs["eager"] == [] and graphs["compiled"] and max(graphs["compiled"]) > 20  # the model's layers
    assert len(losses["compiled"]) == 4
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-4)


def test_ddp_two_processes_match_one_process(encoder: Path, tmp_path: Path) -> None:
    """2 CPU processes (gloo) × batch 4 vs 1 process × batch 8, with grad accumulation 2 and an odd number of
    examples (the epoch's last micro-batch splits unevenly): the same losses, evaluations and final weights."""
    data = sentiment_file(tmp_path / "t.tsv", repeat=2)
    rows = data.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(rows[:-1]) + "\n", encoding="utf-8")  # an odd number of examples
    common = ["--epochs", "2", "--grad-accum", "2", "--seed", "3", "--save-every", "2", "--max-seq-len", "32"]
    single = tmp_path / "single"
    assert main(classify(encoder, data, single, "--batch-size", "8", *common)) == 0
    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "bert", *classify(encoder, data, ddp, "--batch-size", "4", *common)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = read_metrics(single / "metrics.jsonl"), read_metrics(ddp / "metrics.jsonl")
    assert [(e["kind"], e["step"]) for e in a] == [(e["kind"], e["step"]) for e in b]
    assert len(train_losses(single)) > 3
    for x, y in zip(a, b, strict=True):
        for key in ("loss", "accuracy", "f1"):
            if key in x:
                assert x[key] == pytest.approx(y[key], rel=1e-5, abs=1e-6), (x["step"], key)
    wa, wb = load_file(single / "model.safetensors"), load_file(ddp / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=1e-5, msg=name)
    assert json.loads((ddp / "metrics.json").read_text())["steps"] == json.loads(
        (single / "metrics.json").read_text())["steps"]


# NER: sentences of different lengths, so the processes' micro-batches hold different numbers of labelled tokens;
# QA: several windows per question, long and short contexts.
DDP_TASKS = {"ner": (conll_file, ["--max-seq-len", "16"]),
             "qa": (squad_file, ["--max-seq-len", "24", "--doc-stride", "8", "--max-query-len", "10"])}


@pytest.mark.parametrize("task", DDP_TASKS)
def test_ddp_two_processes_match_one_process_for_ner_and_qa(task: str, encoder: Path, tmp_path: Path) -> None:
    """NER (its loss a mean over labelled tokens, which the two processes' halves hold unequally) and QA (windows of
    one question split between processes): 2 processes × batch 2 equal 1 process × batch 4, with accumulation 2 —
    the same losses, evaluations and final weights."""
    make_file, sizes = DDP_TASKS[task]
    data = make_file(tmp_path / f"data.{'json' if task == 'qa' else 'conll'}")
    common = [*sizes, "--epochs", "2", "--grad-accum", "2", "--seed", "3", "--lr", "5e-3", "--no-progress"]
    runs = {}
    for name, launcher, batch in (("single", [], "4"), ("ddp", ["-m", "torch.distributed.run", "--standalone",
                                                                  "--nproc_per_node", "2"], "2")):
        out = tmp_path / name
        argv = ["finetune", task, "--model", str(encoder), "--train", str(data), "--eval", str(data), "--out",
                str(out), "--batch-size", batch, *common]
        result = subprocess.run([sys.executable, *launcher, "-m", "bert", *argv], cwd=REPO, capture_output=True,
                                text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = out
    a, b = (read_metrics(runs[name] / "metrics.jsonl") for name in ("single", "ddp"))
    assert [(e["kind"], e["step"]) for e in a] == [(e["kind"], e["step"]) for e in b]
    assert len(train_losses(runs["single"])) >= 3
    for x, y in zip(a, b, strict=True):
        for key in ("loss", "f1", "exact_match", "precision", "recall"):
            if key in x:
                assert x[key] == pytest.approx(y[key], rel=1e-5, abs=1e-6), (x["step"], key)
    wa, wb = (load_file(runs[name] / "model.safetensors") for name in ("single", "ddp"))
    for name in wa:
        # 5e-5 apart at most (1% of one step at lr 5e-3): QA's output bias has gradients near round-off, whose Adam
        # updates (m / sqrt(v)) follow the round-off's sign (2.2e-5 measured on a CPU with AMX, 2026-12-07)
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=5e-5 if task == "qa" else 1e-5, msg=name)


def test_a_time_budget_the_epochs_would_overrun_refits_the_schedule_so_the_learning_rate_ends_near_zero(
        encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe is told 1,000,000 steps fit (so the up-front plan keeps the 100 epochs' steps, far more than fit),
    and every evaluation (every 4 steps) takes 0.2 s more: only re-fitting after each evaluation can bring the
    learning rate down by the end of the 6-second budget; without it the run would stop near the peak."""
    monkeypatch.setattr(engine_loop, "estimate_total_steps",
                        lambda budget, per_step, *args: 1_000_000 if args else engine_real(budget, per_step))
    real_logits = classification.classifier_logits

    def slow_logits(*args, **kwargs):
        time.sleep(0.2)
        return real_logits(*args, **kwargs)

    monkeypatch.setattr(classification, "classifier_logits", slow_logits)
    data = sentiment_file(tmp_path / "t.tsv", repeat=4)
    out = tmp_path / "run"
    assert main(classify(encoder, data, out, "--epochs", "100", "--batch-size", "4", "--warmup", "0",
                         "--time-budget", "0.1", "--eval-every", "4")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    train = [e for e in read_metrics(out / "metrics.jsonl") if e["kind"] == "train"]
    assert metrics["stopped_by"] == "time_budget" and metrics["epochs_completed"] < 100
    assert train[-1]["elapsed"] >= 6 * 0.8  # the budget, not the epochs, ended it
    assert train[-1]["lr"] < 0.2 * 5e-3  # instead of near the peak


engine_real = engine_loop.estimate_total_steps


def test_a_time_budget_the_epochs_fit_in_changes_nothing(encoder: Path, tmp_path: Path) -> None:
    """The same run with and without a 60-minute budget: the same schedule, losses, evaluations and weights."""
    data = sentiment_file(tmp_path / "t.tsv", repeat=1)
    runs = {name: tmp_path / name for name in ("plain", "budget")}
    assert main(classify(encoder, data, runs["plain"], "--epochs", "2", "--batch-size", "4")) == 0
    assert main(classify(encoder, data, runs["budget"], "--epochs", "2", "--batch-size", "4",
                         "--time-budget", "60")) == 0
    plain, budget = (json.loads((run / "metrics.json").read_text()) for run in runs.values())
    assert budget["total_steps_planned"] == plain["total_steps_planned"] and budget["stopped_by"] == "epochs"
    assert train_losses(runs["budget"]) == train_losses(runs["plain"]) and budget["history"] == plain["history"]
    wa, wb = (load_file(run / "model.safetensors") for run in runs.values())
    assert all(torch.equal(wa[name], wb[name]) for name in wa)
