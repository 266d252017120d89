"""Devices and float16 for the training commands (``bert pretrain``, ``distill``, ``finetune``; docs/guides/gpu.md):

* ``--device auto|cpu|cuda|cuda:N|mps`` is one setting of the engine (RunConfig), offered by all three commands;
  a device this machine lacks, and one GPU named for every process of a torchrun, are one-line errors;
* a run says where and how it trains in one line (``bert pretrain: device cpu, float32``) and records the device in
  RUN/settings.json;
* ``--fp16`` (float16 autocast + gradient scaler) is refused with ``--bf16`` and off CUDA, in one line; its training
  step itself is device-generic, so it is exercised here on the CPU: the loss falls, the scaler's state is saved in
  each checkpoint and restored exactly by ``--resume``, and an overflowed gradient skips its update and halves the
  scale instead of stopping the run;
* scripts/gpu_check.py says in one line, exit status 2, that a machine has no CUDA GPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import REPO, make_tiny_model, sentiment_file
from test_pretrain_loop import data, settings, train_events  # noqa: F401 - data is a fixture

import bert.devices
import bert.engine.distributed as distributed
from bert.cli import main
from bert.devices import DEVICE_HELP
from bert.engine.checkpointing import read_training_state
from bert.engine.config import RunConfig
from bert.engine.distributed import World, setup
from bert.engine.loop import Engine
from bert.engine.mixed_precision import MixedPrecision, check_training_precision
from bert.errors import BertError
from bert.finetune import FinetuneConfig
from bert.model import BertModel
from bert.pretraining import DistillConfig, PretrainConfig
from bert.pretraining.task import PretrainingTask
from bert.settings import settings_differences

TRAINING = {"pretrain": PretrainConfig, "distill": DistillConfig, "finetune classify": FinetuneConfig}


def command_parser(command: str):
    from test_settings import command_parser as parser_of

    return parser_of(*command.split())


def pretrain_argv(prepared: Path, out: Path, *flags: str) -> list[str]:
    return ["pretrain", "--data", str(prepared), "--out", str(out), "--config", "tiny", "--max-steps", "2",
            "--batch-size", "4", "--eval-every", "0", "--threads", "1", "--no-progress", *flags]


def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine, whatever it is, without CUDA and without Apple's mps."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bert.devices, "_mps_available", lambda: False)


# ---- the flag ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", TRAINING)
def test_device_is_one_engine_setting_that_every_training_command_offers(command: str) -> None:
    (field,) = [f for f in dataclasses.fields(TRAINING[command]) if f.name == "device"]
    assert field is next(f for f in dataclasses.fields(RunConfig) if f.name == "device")  # not redefined
    parser = command_parser(command)
    (action,) = [a for a in parser._actions if "--device" in a.option_strings]
    assert action.default == "auto" and action.help == DEVICE_HELP
    required = {"pretrain": ["--data", "d", "--out", "o"], "distill": ["--data", "d", "--out", "o", "--teacher", "t"],
                "finetune classify": ["--model", "m", "--train", "f", "--out", "o"]}[command]
    assert parser.parse_args([*required, "--device", "cuda:1"]).device == "cuda:1"


@pytest.mark.parametrize(("flags", "message"), [
    (["--device", "cuda"], "--device cuda: torch sees no CUDA GPU here"),
    (["--device", "cuda:1"], "--device cuda:1: torch sees no CUDA GPU here"),
    (["--device", "mps"], "--device mps: Apple's mps backend is not available here"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--fp16", "--bf16"], "--fp16 and --bf16 together: choose one"),
    (["--fp16", "--device", "cpu"], "--fp16 is for CUDA GPUs (float16 autocast with a gradient scaler); on the CPU "
                                    "use --bf16"),
])
def test_a_device_or_precision_this_machine_cannot_train_with_is_one_line_before_anything_is_written(
        flags: list[str], message: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 - the fixture
        capsys: pytest.CaptureFixture) -> None:
    no_gpu(monkeypatch)
    assert main(pretrain_argv(data, tmp_path / "run", *flags)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"bert pretrain: error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_finetune_refuses_a_missing_gpu_in_one_line_before_loading_the_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        caplog: pytest.LogCaptureFixture) -> None:
    no_gpu(monkeypatch)
    encoder = make_tiny_model(tmp_path / "encoder", max_positions=128, cls=BertModel)
    train = sentiment_file(tmp_path / "t.tsv", repeat=1)
    assert main(["finetune", "classify", "--model", str(encoder), "--train", str(train), "--out",
                 str(tmp_path / "run"), "--no-progress", "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bert finetune: error: --device cuda: torch sees no CUDA GPU here"), err
    assert err.count("\n") == 1
    assert not caplog.records  # the model was not loaded (its fresh classifier would have been announced)


@pytest.mark.parametrize("flag", ["--bf16", "--fp16"])
def test_mps_trains_in_float32_only_and_says_so_in_one_line(flag: str, data: Path, tmp_path: Path,  # noqa: F811 - the fixture
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    """Apple's mps: older torch has no bfloat16 autocast there, and neither precision is tested: both refused."""
    monkeypatch.setattr(bert.devices, "_mps_available", lambda: True)  # a Mac, as far as the check can tell
    assert main(pretrain_argv(data, tmp_path / "run", "--device", "mps", flag)) == 1
    err = capsys.readouterr().err
    assert err == (f"bert pretrain: error: {flag} on Apple mps: mixed precision is not offered there (older torch "
                   f"lacks bfloat16 autocast on mps, and this project has tested neither); drop {flag} to train in "
                   "float32\n")
    check_training_precision(torch.device("mps"), fp16=False, bf16=False)  # float32 is
    assert not World(device=torch.device("mps")).native_bf16  # so the from-scratch recipe picks float32 there


@pytest.mark.parametrize(("capability", "native"), [((7, 5), False), ((7, 0), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_is_native_on_gpus_of_compute_capability_8_or_more(capability: tuple[int, int], native: bool,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """T4 (7.5) and V100 (7.0) emulate bfloat16: the from-scratch recipe leaves it off there (use --fp16);
    A100 (8.0) and H100 (9.0) run it."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert World(device=torch.device("cuda", 0)).native_bf16 is native


def test_auto_under_torchrun_takes_the_gpu_of_the_local_rank_and_one_named_gpu_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: None)
    monkeypatch.setenv("LOCAL_RANK", "1")
    for spec in ("auto", "cuda"):
        assert setup(spec).device == torch.device("cuda", 1)
    assert chosen == [torch.device("cuda", 1)] * 2
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda *a, **k: pytest.fail("joined a group"))
    with pytest.raises(BertError, match=r"^--device cuda:0 under torchrun: each process takes the GPU of its local "
                                        r"rank; use --device cuda \(or auto\)$"):
        setup("cuda:0")


# ---- the notice line and settings.json -----------------------------------------------------------------------------

@pytest.mark.parametrize(("flags", "line"), [(["--device", "cpu", "--no-bf16"], "device cpu, float32"),
                                             (["--bf16"], "device cpu, bfloat16 autocast")])  # auto: the CPU here
def test_a_run_says_its_device_and_precision_in_one_line_and_records_the_device(
        flags: list[str], line: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811 - the fixture
        capsys: pytest.CaptureFixture) -> None:
    no_gpu(monkeypatch)
    run = tmp_path / "run"
    assert main(pretrain_argv(data, run, *flags)) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("bert pretrain: device")]
    assert lines == [f"bert pretrain: {line}"]
    assert json.loads((run / "settings.json").read_text())["device"] == "cpu"


def test_finetune_says_its_device_in_one_line_and_records_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    encoder = make_tiny_model(tmp_path / "encoder", max_positions=128, cls=BertModel)
    train = sentiment_file(tmp_path / "t.tsv", repeat=1)
    run = tmp_path / "run"
    assert main(["finetune", "classify", "--model", str(encoder), "--train", str(train), "--out", str(run),
                 "--max-steps", "1", "--batch-size", "4", "--no-progress", "--device", "cpu"]) == 0
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("device")] == ["device cpu, float32"]
    assert json.loads((run / "settings.json").read_text())["device"] == "cpu"
    assert json.loads((run / "metrics.json").read_text())["device"] == "cpu"


def test_a_checkpoint_written_before_fp16_existed_still_resumes_in_float32() -> None:
    old = {"lr": 1e-3, "bf16": False}
    assert settings_differences(old, {**old, "fp16": False}) == []
    assert settings_differences(old, {**old, "fp16": True}) == ["fp16 None (now True)"]


# ---- the float16 step, run on the CPU ------------------------------------------------------------------------------

def fp16_engine(prepared: Path, out: Path, **overrides) -> Engine:
    """A pretraining engine training in float16 with a gradient scaler on the CPU (the CLI refuses --fp16 there:
    it is slow, emulated; the step is the one CUDA runs)."""
    return Engine(PretrainingTask(settings(prepared, out, fp16=True, **overrides), World()))


def overflow_at(engine: Engine, step: int) -> None:
    """Make every gradient of the word embeddings inf during optimizer step ``step`` (1-based)."""
    embeddings = engine.task.model.base_model.embeddings.word_embeddings.weight
    embeddings.register_hook(lambda grad: torch.full_like(grad, math.inf) if engine.step == step - 1 else grad)


def test_fp16_trains_under_float16_autocast_with_a_scaled_loss_and_the_loss_falls(
        data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811 - the fixture
    dtypes = []
    engine = fp16_engine(data, tmp_path / "run", max_steps=30, batch_size=16)
    assert engine.precision.name == "float16 autocast + gradient scaler"
    layer = engine.task.model.base_model.encoder.layer[0].attention.self.query
    layer.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    scaled = []
    real_scale = engine.precision.scaler.scale
    monkeypatch.setattr(engine.precision.scaler, "scale", lambda loss: scaled.append(real_scale(loss)) or scaled[-1])
    engine.run()
    assert set(dtypes) == {torch.float16}
    assert len(scaled) == 30 and all(s.dtype == torch.float32 for s in scaled)
    losses = [e["mlm_loss"] for e in train_events(tmp_path / "run")]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    assert engine.precision.scaler.get_scale() == 2.0 ** 16  # no overflow in a healthy run


def test_an_overflowed_fp16_gradient_skips_the_update_and_halves_the_scale(data: Path,  # noqa: F811 - the fixture
                                                                            tmp_path: Path) -> None:
    engine = fp16_engine(data, tmp_path / "run", max_steps=10)
    engine.train_step()
    engine.step = 1
    before = {name: p.detach().clone() for name, p in engine.task.model.named_parameters()}
    moments = {k: v.clone() for k, v in engine.optimizer.state[next(engine.task.model.parameters())].items()}
    overflow_at(engine, 2)
    engine.train_step()  # no BertError: the scaler's to handle
    assert engine.precision.scaler.get_scale() == 2.0 ** 15
    for name, parameter in engine.task.model.named_parameters():
        assert torch.equal(parameter, before[name]), name
    state = engine.optimizer.state[next(engine.task.model.parameters())]
    assert all(torch.equal(state[k], v) for k, v in moments.items())  # Adam's moments untouched too


def test_fp16_clips_the_true_gradients_not_the_scaled_ones(data: Path, tmp_path: Path,  # noqa: F811 - the fixture
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    norms = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda *a, **k: norms.append(float(clip(*a, **k))) or
                        torch.tensor(norms[-1]))
    fp16_engine(data, tmp_path / "fp16", max_steps=10).train_step()
    Engine(PretrainingTask(settings(data, tmp_path / "fp32", max_steps=10), World())).train_step()  # same weights
    assert norms[0] == pytest.approx(norms[1], rel=0.05)  # not 2^16 times it


def test_without_a_scaler_an_inf_gradient_still_stops_the_run(data: Path, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    engine = Engine(PretrainingTask(settings(data, tmp_path / "run", max_steps=10), World()))
    overflow_at(engine, 1)
    with pytest.raises(BertError, match="non-finite at step 1"):
        engine.train_step()


def test_under_fp16_a_non_finite_loss_still_stops_the_run(data: Path, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    engine = fp16_engine(data, tmp_path / "run", max_steps=10)
    embeddings = engine.task.model.base_model.embeddings
    embeddings.register_forward_hook(lambda module, inputs, output: output * math.nan)
    with pytest.raises(BertError, match=r"the loss became non-finite at step 1 \(MLM loss nan"):
        engine.train_step()


def test_the_fp16_scaler_is_checkpointed_and_resume_restores_it_exactly(data: Path, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    straight = fp16_engine(data, tmp_path / "straight", max_steps=8, save_every=4)
    overflow_at(straight, 2)  # the scale halves at step 2, so the checkpoint's is not the fresh one
    straight.run()
    checkpoint = tmp_path / "straight" / "checkpoints" / "step-0000004"
    saved = read_training_state(checkpoint).scaler
    assert saved["scale"] == 2.0 ** 15 and saved["_growth_tracker"] == 2  # steps 3 and 4 without overflow

    resumed_dir = tmp_path / "resumed"
    shutil.copytree(checkpoint, resumed_dir / "checkpoints" / checkpoint.name)
    resumed = fp16_engine(data, resumed_dir, max_steps=8, save_every=4, resume=True)
    assert resumed.step == 4 and resumed.precision.state_dict() == saved
    resumed.run()
    assert resumed.precision.state_dict() == straight.precision.state_dict()
    a, b = (load_file(run / "final" / "model.safetensors") for run in (tmp_path / "straight", resumed_dir))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    steps = [e["step"] for e in train_events(resumed_dir)]
    assert steps == [5, 6, 7, 8]


def test_the_fp16_checkpoint_refuses_a_float32_resume(data: Path, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    fp16_engine(data, tmp_path / "run", max_steps=2, save_every=2).run()
    with pytest.raises(BertError, match=r"fp16 True \(now False\)"):
        Engine(PretrainingTask(settings(data, tmp_path / "run", max_steps=4, resume=True), World()))


def test_mixed_precision_names_what_the_notice_line_says() -> None:
    assert [MixedPrecision("cpu", dtype).name for dtype in (torch.float32, torch.bfloat16, torch.float16)] == [
        "float32", "bfloat16 autocast", "float16 autocast + gradient scaler"]
    assert MixedPrecision("cpu").scaler is None and MixedPrecision("cpu").state_dict() == {}


# ---- scripts/gpu_check.py ------------------------------------------------------------------------------------------

def test_gpu_check_on_a_machine_without_cuda_exits_2_in_one_line(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: scripts/gpu_check.py runs its checks instead")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr == (f"gpu_check: no CUDA GPU here (torch {torch.__version__}); run this on a machine with one "
                           "(docs/guides/gpu.md)\n")
    assert not (tmp_path / "work").exists()  # nothing was started
