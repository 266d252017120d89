"""The fine-tuning loop shared by the three tasks.

AdamW without weight decay on biases and LayerNorm and the linear warmup/decay schedule come from
:mod:`bert.train` (the pretraining code), so both trainings follow the same BERT recipe. Per epoch: shuffled (or
length-grouped) batches padded per batch, gradient accumulation (groups of ``grad_accum`` micro-batches inside the
epoch; its last group may be shorter), gradient clipping at 1.0. The model is evaluated after every epoch, every
``eval_every`` optimizer steps, and when a time budget or ``max_steps`` ends training early; it is saved to ``OUT``
(``save_pretrained`` + tokenizer files) whenever the chosen metric (the task's main one, or ``metric``) is the best
so far, and ``patience`` stops training after that many evaluations without a new best. Ctrl-C (or SIGTERM) lets
the current step finish, then stops cleanly: the best model (or, before any evaluation, the current one) is in
``OUT`` and ``OUT/metrics.json`` says ``"interrupted": true``.

Checkpoints (``save_every`` > 0) go to ``OUT/checkpoints/step-NNNNNNN/`` through :mod:`bert.train.checkpointing`, as
pretraining's do (written to a temporary folder and renamed; the last ``keep_last`` kept), every ``save_every``
steps, at the last step and when Ctrl-C stops the run. Each holds the model, the optimizer, the schedule, the
position in the data (the epoch, the batches of it already read, and the state of the data-order generator before it
drew that epoch's order), the Python/NumPy/torch RNG states, the evaluation history with the best score, the best
model itself (``best.safetensors``, a copy of ``OUT/model.safetensors``), the loss summed since the last train line,
and the run's settings. With ``resume`` the run continues from the latest complete one, reading the same batches
with the same dropout masks, so it ends with the weights and metrics of the run that was never stopped;
``OUT/metrics.jsonl`` is cut back to the checkpoint's step first. A checkpoint made with other settings is refused,
naming them, and a fresh run refuses a folder with checkpoints.

Files written: ``OUT/metrics.json`` (the best evaluation's metrics at the top level, plus history and costs),
``OUT/metrics.jsonl`` (one line per logged train step / evaluation), ``OUT/curves.png`` and the checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import pickle
import random
import resource
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bert.atomic import write_file_atomically, write_text_atomically
from bert.errors import BertError
from bert.finetune.batching import Feature, batch_order, collate
from bert.plotting import Panel, Series, plot_curves
from bert.pretrained import PreTrainedModel
from bert.settings import fixed_on_resume, setting
from bert.settings import settings_differences as differences_of
from bert.tokenizer.fast import FastTokenizer
from bert.train.checkpointing import (
    TrainingState,
    capture_rng_states,
    check_free_space,
    checkpoint_bytes,
    latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
    read_training_state,
    restore_rng_states,
    save_checkpoint,
)
from bert.train.loop import interrupt_flag
from bert.train.metrics import MetricsLog
from bert.train.optim import build_optimizer
from bert.train.schedule import WarmupLinearSchedule
from bert.weights import check_writable_directory, find_weights, load_into, read_state_dict

logger = logging.getLogger("bert")

Evaluate = Callable[[nn.Module], dict[str, Any]]

LOWER_IS_BETTER = frozenset({"mse"})
TRAINED_KEYS = ("input_ids", "token_type_ids", "labels", "start_positions", "end_positions")  # what collate() reads
BEST_FILE = "best.safetensors"  # in a checkpoint: the best model so far (OUT/model.safetensors when it was written)


@dataclass
class FinetuneConfig:
    """Training settings; each field is a flag of ``bert finetune`` (``--field-name``, see :mod:`bert.settings`),
    those marked ``free_on_resume`` may change when a run continues with ``resume``."""

    epochs: int = setting(3, "passes over the training file", metavar="N")
    lr: float = setting(2e-5, "peak learning rate")
    batch_size: int = setting(32, "examples per micro-batch", metavar="B")
    max_seq_len: int = setting(128, "word pieces per input (default 128; 384 for qa)", metavar="N")
    warmup: float = setting(0.1, "warmup fraction of the optimizer steps", metavar="F")
    weight_decay: float = setting(0.01, "none on biases/LayerNorm", metavar="D")
    grad_accum: int = setting(1, "micro-batches per optimizer step", metavar="K")
    seed: int = setting(42, "seed of the head's weights, the data order and dropout", metavar="N")
    time_budget: float | None = setting(None, "stop (and evaluate) after this many minutes of training, evaluations "
                                              "included", metavar="MINUTES", free_on_resume=True)
    max_steps: int | None = setting(None, "stop after N optimizer steps (the schedule then ends there)", metavar="N")
    group_by_length: bool = setting(False, "batch similar lengths together (less padding)")
    max_grad_norm: float = setting(1.0, "gradient clipping (0: off)", metavar="NORM")
    eval_batch_size: int = setting(64, "examples per evaluation batch", metavar="B", free_on_resume=True)
    progress: bool = setting(True, "show a progress bar (on by default)", free_on_resume=True)
    device: str | None = setting(None, "cpu, cuda, cuda:1 ... (default: cuda if available)", free_on_resume=True)
    gradient_checkpointing: bool = setting(
        False, "recompute each layer in backward: far less memory on long inputs (qa at 384), ~1/3 more compute",
        free_on_resume=True)
    eval_every: int = setting(0, "also evaluate every N optimizer steps (default: after each epoch only)",
                              metavar="N")
    metric: str | None = setting(None, "evaluation metric that picks the best model (default: the task's main one: "
                                       "accuracy, or pearson for regression; f1 for ner and qa)", metavar="NAME")
    patience: int | None = setting(None, "stop after P evaluations in a row without a better --metric", metavar="P")
    save_every: int = setting(0, "write a checkpoint to OUT/checkpoints every N optimizer steps (default: none)",
                              metavar="N", free_on_resume=True)
    keep_last: int = setting(3, "checkpoints kept (0: all)", metavar="K", free_on_resume=True)
    resume: bool = setting(False, "continue exactly from the latest complete checkpoint in OUT (same settings, but "
                                  "those free to change)", free_on_resume=True)

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "max_seq_len", "grad_accum", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise BertError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every", "keep_last"):
            if getattr(self, name) < 0:
                raise BertError(f"{name.replace('_', '-')} must be 0 (off) or more, got {getattr(self, name)}")
        if not self.lr > 0:
            raise BertError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup <= 1:
            raise BertError(f"warmup is a fraction of the steps, between 0 and 1; got {self.warmup}")
        if self.max_steps is not None and self.max_steps < 1:
            raise BertError(f"max-steps must be at least 1, got {self.max_steps}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise BertError(f"time-budget must be positive (minutes), got {self.time_budget}")
        if self.patience is not None and self.patience < 1:
            raise BertError(f"patience must be at least 1 evaluation, got {self.patience}")

    def check_evaluation(self, evaluating: bool) -> None:
        """BertError when a setting about evaluations is given to a run that has nothing to evaluate on."""
        used = [flag for flag, value in (("--eval-every", self.eval_every), ("--metric", self.metric),
                                         ("--patience", self.patience)) if value]
        if used and not evaluating:
            raise BertError(f"{' and '.join(used)} {'needs' if len(used) == 1 else 'need'} an evaluation file "
                            "(--eval)")


def choose_metric(config: FinetuneConfig, default: str, available: Sequence[str], evaluating: bool) -> str:
    """The metric that picks the best model: ``config.metric`` if the task reports it (else a BertError listing
    ``available``), or the task's ``default``. Called before any loading, so a typo fails at once."""
    config.check_evaluation(evaluating)
    if config.metric is None:
        return default
    if config.metric not in available:
        raise BertError(f"unknown metric {config.metric!r} for --metric; this task reports: {', '.join(available)}")
    return config.metric


def refuse_overwrite(out: str | Path, resume: bool) -> None:
    """BertError when a fresh run (no ``resume``) would write over a run that has checkpoints in ``out``."""
    if not resume and list_checkpoints(Path(out) / "checkpoints"):
        raise BertError(f"{out} already holds checkpoints of a run: pass --resume to continue it, or choose another "
                        "--out")


def data_digest(features: Sequence[Feature]) -> str:
    """SHA-256 of what training reads of the encoded examples (token and segment ids, targets): another file, or
    the same one read with other settings, gives another digest. (Pickled: a few seconds for all of SQuAD.)"""
    digest = hashlib.sha256()
    for feature in features:
        digest.update(pickle.dumps([feature.get(key) for key in TRAINED_KEYS], protocol=4))
    return digest.hexdigest()


def resumes_from_checkpoint(config: FinetuneConfig, out: str | Path) -> bool:
    """Whether :func:`train` will continue from a checkpoint in ``out`` (``config.resume`` and one is there): the
    model loaded to start from then gets the checkpoint's weights, a new head's included."""
    return config.resume and latest_checkpoint(Path(out) / "checkpoints") is not None


class _NoFreshWeightsWarning(logging.Filter):
    """Drops ``from_pretrained``'s warning that weights were freshly initialised: untrue of a resumed run, whose
    head is the checkpoint's (the line that says it is resuming names them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "freshly initialised" not in str(record.msg)


def load_pretrained(model: str | Path, task: str, resuming: bool = False,
                    **config_overrides: Any) -> tuple[PreTrainedModel, FastTokenizer]:
    """The ``task`` class ("sequence_classification", ...) of the checkpoint's model type (BertFor..., RobertaFor...,
    see :func:`bert.variants.auto_class`) loaded from ``model``, and the checkpoint's own kind of tokenizer.
    ``config_overrides`` as for ``from_pretrained`` (num_labels, id2label, ...); a new head is initialised from
    torch's generator, so seed it first (:func:`set_seed`). With ``resuming`` (see :func:`resumes_from_checkpoint`)
    the new head is not announced as freshly initialised: a checkpoint's weights are about to replace it."""
    from bert.hub import resolve_model_folder
    from bert.variants.auto import auto_class, auto_tokenizer

    folder = resolve_model_folder(model)
    quiet = _NoFreshWeightsWarning()
    if resuming:
        logger.addFilter(quiet)
    try:
        net = auto_class(folder, task).from_pretrained(folder, **config_overrides)
    finally:
        logger.removeFilter(quiet)
    return net, auto_tokenizer(folder)


def input_limit(model: PreTrainedModel, max_seq_len: int) -> int:
    """``max_seq_len``, or fewer when the model's position table is shorter (RoBERTa reads 2 fewer than its
    max_position_embeddings)."""
    return min(max_seq_len, model.base_model.embeddings.max_length())


def set_seed(seed: int) -> None:
    """Seed Python's and torch's generators (call before building the model: the new head's init uses them)."""
    random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated (CUDA), else the process's peak resident memory, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_settings(config: FinetuneConfig, info: dict[str, Any], features: Sequence[Feature],
                 main_metric: str) -> dict[str, Any]:
    """What a resumed run must share with its checkpoint: the config (all but its ``free_on_resume`` fields), the task's
    ``info`` (model, files, labels, ...), the metric and the digest of the training examples."""
    settings = fixed_on_resume(config)
    settings.update(info)
    for key in ("model", "train_file", "eval_file"):  # the same folder or file, however it was spelled
        if isinstance(settings.get(key), str) and Path(settings[key]).exists():
            settings[key] = str(Path(settings[key]).resolve())
    settings["metric"] = main_metric
    settings["train_data"] = data_digest(features)
    return settings


def settings_differences(then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Human-readable differences between a checkpoint's settings and this run's, e.g. ``batch-size 8 (now 4)``."""
    return differences_of(then, now, lambda key: "the training examples differ" if key == "train_data" else None)


def finetune_panels(main_metric: str, best_step: int | None) -> list[Panel]:
    """curves.png of a fine-tuning run: train loss (and learning rate, right axis) and ``main_metric`` at every
    evaluation (per epoch and ``--eval-every``), the kept one (at ``best_step``) starred."""
    return [Panel("training loss", "loss", [Series("train", "loss", "train loss")],
                  right=[Series("train", "lr", color="tab:gray")], right_ylabel="learning rate"),
            Panel(f"eval {main_metric}", main_metric,
                  [Series("eval", main_metric, style="o-", color="tab:green", star_step=best_step)])]


class _Run:
    """One fine-tuning run: model, optimizer, schedule, the position in the data and the evaluations so far."""

    def __init__(self, model: nn.Module, tokenizer: FastTokenizer, features: Sequence[Feature], out: Path,
                 config: FinetuneConfig, evaluate: Evaluate | None, main_metric: str, info: dict[str, Any]) -> None:
        self.model, self.tokenizer, self.features, self.out, self.config = model, tokenizer, features, out, config
        self.evaluate_fn, self.main_metric, self.info = evaluate, main_metric, info
        self.checkpoints_dir = out / "checkpoints"
        self.device = pick_device(config.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        model.to(self.device)
        model.gradient_checkpointing_enable(config.gradient_checkpointing)
        self.lengths = [len(f["input_ids"]) for f in features]
        micro_per_epoch = math.ceil(len(features) / config.batch_size)
        self.total_steps = math.ceil(micro_per_epoch / config.grad_accum) * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.schedule = WarmupLinearSchedule(config.lr, int(round(config.warmup * self.total_steps)),
                                             self.total_steps)
        self.optimizer = build_optimizer(model, "adamw", config.lr, config.weight_decay)
        self.log_every = max(1, self.total_steps // 100)
        self.settings = run_settings(config, info, features, main_metric) if config.save_every or config.resume \
            else {}

        # Where the run stands (all of it goes into a checkpoint).
        self.step = 0
        self.epoch, self.index = 0, 0  # the batches of this epoch already read
        self.order_state = random.Random(config.seed).getstate()  # the data-order generator before this epoch's draw
        self.progress = 0.0  # epochs done, fractional
        self.elapsed = 0.0
        self.loss_sum, self.loss_count = 0.0, 0  # since the last train line
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.best_record: dict[str, Any] | None = None
        self.evals_since_best = 0
        self.saved = False  # OUT holds a model of this run
        self.rng_to_restore: dict[str, Any] | None = None

        if config.save_every:
            # One more weight-sized copy than pretraining's checkpoints: the best model.
            check_free_space(out, checkpoint_bytes(model, optimizer_states_per_parameter=3))
        self.metrics = MetricsLog(out / "metrics.jsonl")
        if config.resume:
            self._resume()
        else:
            self.metrics.truncate_after(-1)

    # ---- checkpoints ----------------------------------------------------------------------------------------------
    def _resume(self) -> None:
        path = latest_checkpoint(self.checkpoints_dir)
        if path is None:
            logger.warning("--resume: no checkpoint in %s; starting from scratch", self.checkpoints_dir)
            self.metrics.truncate_after(-1)
            return
        state = read_training_state(path)
        extra = state.extra
        if "settings" not in extra:
            raise BertError(f"--resume: {path} is not a fine-tuning checkpoint")
        differences = settings_differences(extra["settings"], self.settings)
        if differences:
            raise BertError(f"--resume: {path} was made with other settings: {', '.join(differences)}; resume with "
                            "the same settings, or choose another --out to start afresh")
        load_into(self.model, read_state_dict(find_weights(path)), source=str(path))
        self.optimizer.load_state_dict(state.optimizer)
        self.schedule = WarmupLinearSchedule.from_state_dict(state.schedule)
        self.step, self.epoch, self.index, self.elapsed = state.step, state.epoch, state.index, state.elapsed
        version, internal, gauss = extra["order_state"]
        self.order_state = (version, tuple(internal), gauss)
        self.progress = extra["progress"]
        self.loss_sum, self.loss_count = extra["loss_window"]
        self.history, self.best, self.best_record = extra["history"], extra["best"], extra["best_record"]
        self.evals_since_best = extra["evals_since_best"]
        if (path / BEST_FILE).is_file():  # OUT may hold a later model from after the checkpoint: put its best back
            for source, target in ((path / BEST_FILE, "model.safetensors"), (path / "config.json", "config.json")):
                write_file_atomically(self.out / target, lambda tmp, source=source: shutil.copyfile(source, tmp))
            self.tokenizer.save_pretrained(self.out)
            self.saved = True
        self.rng_to_restore = state.rng  # restored just before the first step
        self.metrics.truncate_after(self.step)
        report = getattr(self.model, "load_report", None)  # from_pretrained's: what the starting model lacked
        head = f", {', '.join(report.missing)} included" if report is not None and report.missing else ""
        logger.warning("resuming from %s (step %d of %d): the model's weights are the checkpoint's%s", path,
                       self.step, self.total_steps, head)

    def _save_checkpoint(self) -> Path:
        extra = {"settings": self.settings, "order_state": self.order_state, "progress": self.progress,
                 "loss_window": [self.loss_sum, self.loss_count], "history": self.history, "best": self.best,
                 "best_record": self.best_record, "evals_since_best": self.evals_since_best}
        state = TrainingState(step=self.step, epoch=self.epoch, index=self.index, elapsed=self.elapsed,
                              optimizer=self.optimizer.state_dict(), schedule=self.schedule.state_dict(),
                              rng=capture_rng_states(), extra=extra)
        best = {BEST_FILE: self.out / "model.safetensors"} if self.best_record is not None else None
        path = save_checkpoint(self.checkpoints_dir, self.model, state, best)
        prune_checkpoints(self.checkpoints_dir, self.config.keep_last)
        return path

    # ---- training -------------------------------------------------------------------------------------------------
    def _steps(self) -> Iterator[tuple[list[list[int]], bool]]:
        """The micro-batches (example indices) of each remaining optimizer step, and whether it ends an epoch.

        The position moves past a step before the step is yielded, so a checkpoint taken after it resumes with the
        next one; the batches of an epoch are redrawn from the generator state saved before its draw."""
        while self.epoch < self.config.epochs:
            rng = random.Random()
            rng.setstate(self.order_state)
            batches = batch_order(self.lengths, self.config.batch_size, shuffle=True,
                                  group_by_length=self.config.group_by_length, rng=rng)
            while True:
                group = batches[self.index:self.index + self.config.grad_accum]
                self.index += len(group)
                self.progress = self.epoch + self.index / len(batches)
                if self.index < len(batches):
                    yield group, False
                    continue
                self.epoch, self.index, self.order_state = self.epoch + 1, 0, rng.getstate()
                yield group, True
                break

    def _train_step(self, group: list[list[int]]) -> float:
        """Forward and backward over the step's micro-batches (their mean loss), clip, update; returns the lr."""
        pad_id = self.tokenizer.pad_token_id
        for indices in group:
            batch = {k: v.to(self.device) for k, v in collate([self.features[i] for i in indices], pad_id).items()}
            loss = self.model(**batch).loss
            (loss / len(group)).backward()
            self.loss_sum += loss.item()
            self.loss_count += 1
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        lr = self.schedule.apply(self.optimizer, self.step + 1)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return lr

    def _better(self, score: float) -> bool:
        if self.best is None:
            return True
        return score < self.best if self.main_metric in LOWER_IS_BETTER else score > self.best

    def _save_model(self) -> None:
        self.model.save_pretrained(self.out)
        self.tokenizer.save_pretrained(self.out)
        self.saved = True

    def _evaluate(self) -> None:
        """Evaluate, log the line, keep the model in OUT if it is the best so far."""
        assert self.evaluate_fn is not None
        self.model.eval()
        with torch.no_grad():
            metrics = self.evaluate_fn(self.model)
        self.model.train()
        if self.main_metric not in metrics:
            raise BertError(f"the evaluation reports no {self.main_metric!r} (it reports: {', '.join(metrics)})")
        record = {"step": self.step, "epoch": round(self.progress, 3), **metrics}
        self.history.append(record)
        self.metrics.write({"kind": "eval", **{k: v for k, v in record.items() if not isinstance(v, dict)}})
        score = metrics[self.main_metric]
        improved = self._better(score)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        logger.warning("eval at step %d (epoch %.2f): %s%s", self.step, self.progress, shown,
                       " (best so far)" if improved and self.history[:-1] else "")
        if improved:
            self.best, self.best_record, self.evals_since_best = score, record, 0
            self._save_model()
        else:
            self.evals_since_best += 1

    def _out_of_patience(self) -> bool:
        return self.config.patience is not None and self.evals_since_best >= self.config.patience

    def _limit(self, deadline: float | None) -> str | None:
        """Why training must stop now (max_steps, time_budget, patience), or None."""
        if self.config.max_steps is not None and self.step >= self.config.max_steps:
            return "max_steps"
        if deadline is not None and time.monotonic() >= deadline:
            return "time_budget"
        return "patience" if self._out_of_patience() else None

    def run(self) -> dict[str, Any]:
        config = self.config
        start = time.monotonic() - self.elapsed
        deadline = start + config.time_budget * 60 if config.time_budget is not None else None
        from tqdm.auto import tqdm

        bar = tqdm(total=self.total_steps, initial=self.step, disable=not config.progress, desc="fine-tuning",
                   unit="step", dynamic_ncols=True)
        stopped_by = self._limit(deadline) if self.step else None  # a resumed run may have nothing left to do
        interrupted = False
        checkpoint = latest_checkpoint(self.checkpoints_dir) if config.resume else None
        if self.rng_to_restore is not None:
            restore_rng_states(self.rng_to_restore)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        try:
            with interrupt_flag() as flag:
                for group, epoch_end in self._steps() if stopped_by is None else ():
                    lr = self._train_step(group)
                    self.step += 1
                    self.elapsed = time.monotonic() - start
                    bar.update(1)
                    if self.step % self.log_every == 0:
                        loss = self.loss_sum / self.loss_count
                        self.metrics.write({"kind": "train", "step": self.step, "epoch": round(self.progress, 3),
                                            "loss": loss, "lr": lr, "elapsed": round(self.elapsed, 2)})
                        bar.set_postfix(loss=f"{loss:.4f}")
                        self.loss_sum, self.loss_count = 0.0, 0
                    stopped_by = self._limit(deadline)
                    if self.evaluate_fn is not None and (epoch_end or stopped_by is not None or (
                            config.eval_every and self.step % config.eval_every == 0)):
                        self._evaluate()
                        if stopped_by is None and self._out_of_patience():
                            stopped_by = "patience"
                            logger.warning("no better %s in %d evaluations (best %.4f at step %d): stopping early",
                                           self.main_metric, config.patience, self.best,
                                           self.best_record["step"] if self.best_record else 0)
                    if flag["set"]:
                        interrupted, stopped_by = True, "interrupted"
                    if config.save_every and (self.step % config.save_every == 0 or stopped_by is not None
                                              or self.epoch == config.epochs):  # the last step too
                        checkpoint = self._save_checkpoint()
                    if stopped_by is not None:
                        break
        except KeyboardInterrupt:  # a second Ctrl-C, or one outside the main thread: no consistent state to save
            interrupted, stopped_by = True, "interrupted"
        finally:
            bar.close()
        if interrupted:
            logger.warning("interrupted at step %d: saving and stopping", self.step)
        self.model.eval()
        if not self.saved:
            self._save_model()
        return self._finish(stopped_by or "epochs", interrupted, checkpoint)

    def _finish(self, stopped_by: str, interrupted: bool, checkpoint: Path | None) -> dict[str, Any]:
        """metrics.json and curves.png; returns metrics.json's dict."""
        best = self.best_record or {}
        result = {
            **{k: v for k, v in best.items() if k not in ("step", "epoch")},
            **self.info,
            "main_metric": self.main_metric if self.evaluate_fn is not None else None,
            "best_step": best.get("step"),
            "best_epoch": best.get("epoch"),
            "steps": self.step,
            "total_steps_planned": self.total_steps,
            "epochs_completed": round(self.progress, 3),
            "stopped_by": stopped_by,
            "interrupted": interrupted,
            "checkpoint": str(checkpoint) if checkpoint is not None else None,
            "train_examples": len(self.features),
            "train_time_seconds": round(self.elapsed, 2),
            "peak_memory_mb": round(peak_memory_mb(self.device), 1),
            "device": str(self.device),
            "history": self.history,
            "config": dataclasses.asdict(self.config),
        }
        try:
            write_text_atomically(self.out / "metrics.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
            panels = finetune_panels(self.main_metric, best.get("step"))
            plot_curves(self.metrics.events, self.out / "curves.png", panels)
        except OSError as error:
            raise BertError(f"cannot write the metrics into {self.out}: {error.strerror or error} (the model is "
                            "saved there)") from None
        except BertError as error:
            raise BertError(f"{error} (the model is saved in {self.out})") from None
        return result


def train(model: nn.Module, tokenizer: FastTokenizer, train_features: Sequence[Feature], out: str | Path,
          config: FinetuneConfig, evaluate: Evaluate | None = None, main_metric: str = "accuracy",
          info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fine-tune ``model`` on ``train_features``, keep the best checkpoint in ``out``; return metrics.json's dict.

    ``evaluate(model)`` (model already in eval mode) returns the evaluation metrics; the one named
    ``main_metric`` (higher is better, but for those in :data:`LOWER_IS_BETTER`) picks the model that is kept.
    Without ``evaluate`` the last model is saved. ``info`` is copied into metrics.json (task, model name, files,
    data sizes...) and, with checkpoints, must not change between a run and its resumption.
    """
    config.validate()
    config.check_evaluation(evaluate is not None)
    if not train_features:
        raise BertError("no training examples")
    out = check_writable_directory(out)
    refuse_overwrite(out, config.resume)
    try:
        return _Run(model, tokenizer, train_features, out, config, evaluate, main_metric, info or {}).run()
    except OSError as error:  # e.g. the disk filled up while metrics.jsonl was written
        where = f"{error.filename}: " if error.filename else ""
        latest = latest_checkpoint(out / "checkpoints")
        kept = f"; the latest complete checkpoint is {latest}, continue from it with --resume" if latest else ""
        raise BertError(f"{where}{error.strerror or error}; training stopped{kept}") from None
