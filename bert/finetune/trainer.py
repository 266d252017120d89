"""The fine-tuning loop shared by the three tasks.

AdamW without weight decay on biases and LayerNorm and the linear warmup/decay schedule come from
:mod:`bert.train` (the pretraining code), so both trainings follow the same BERT recipe. Per epoch: shuffled (or
length-grouped) batches padded per batch, gradient accumulation, gradient clipping at 1.0; then an evaluation, and
the model is saved to ``OUT`` (``save_pretrained`` + tokenizer files) whenever its main metric is the best so far.
A time budget or ``max_steps`` ends training early, with a last evaluation. Ctrl-C stops cleanly: the best model
(or, before any evaluation, the current one) is in ``OUT`` and ``OUT/metrics.json`` says ``"interrupted": true``.

Files written: ``OUT/metrics.json`` (the best evaluation's metrics at the top level, plus history and costs),
``OUT/metrics.jsonl`` (one line per logged train step / evaluation) and ``OUT/curves.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bert.checkpoint import PreTrainedModel, check_writable_directory
from bert.errors import BertError
from bert.finetune.batching import Feature, batch_order, collate
from bert.finetune.curves import plot_finetune_curves
from bert.tokenizer import FastTokenizer
from bert.train.optim import build_optimizer
from bert.train.schedule import WarmupLinearSchedule

logger = logging.getLogger("bert")

Evaluate = Callable[[nn.Module], dict[str, Any]]


@dataclass
class FinetuneConfig:
    """Training settings; the CLI flags of ``bert finetune`` map one to one onto these fields."""

    epochs: int = 3
    lr: float = 2e-5
    batch_size: int = 32
    max_seq_len: int = 128
    warmup: float = 0.1  # fraction of all optimizer steps spent warming up
    weight_decay: float = 0.01
    grad_accum: int = 1
    seed: int = 42
    time_budget: float | None = None  # minutes of training (evaluations included)
    max_steps: int | None = None  # optimizer steps; the schedule then ends here
    group_by_length: bool = False
    max_grad_norm: float = 1.0
    eval_batch_size: int = 64
    progress: bool = True
    device: str | None = None  # default: cuda when available, else cpu
    gradient_checkpointing: bool = False  # recompute layers in backward: long inputs (QA at 384) need far less memory

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "max_seq_len", "grad_accum", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise BertError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise BertError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.warmup <= 1:
            raise BertError(f"warmup is a fraction of the steps, between 0 and 1; got {self.warmup}")
        if self.max_steps is not None and self.max_steps < 1:
            raise BertError(f"max-steps must be at least 1, got {self.max_steps}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise BertError(f"time-budget must be positive (minutes), got {self.time_budget}")


def load_pretrained(model: str | Path, task: str, **config_overrides: Any) -> tuple[PreTrainedModel, FastTokenizer]:
    """The ``task`` class ("sequence_classification", ...) of the checkpoint's model type (BertFor..., RobertaFor...,
    see :func:`bert.variants.auto_class`) loaded from ``model``, and the checkpoint's own kind of tokenizer.
    ``config_overrides`` as for ``from_pretrained`` (num_labels, id2label, ...); a new head is initialised from
    torch's generator, so seed it first (:func:`set_seed`)."""
    from bert.hub import resolve_model_folder
    from bert.variants.auto import auto_class, auto_tokenizer

    folder = resolve_model_folder(model)
    return auto_class(folder, task).from_pretrained(folder, **config_overrides), auto_tokenizer(folder)


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


def train(model: nn.Module, tokenizer: FastTokenizer, train_features: Sequence[Feature], out: str | Path,
          config: FinetuneConfig, evaluate: Evaluate | None = None, main_metric: str = "accuracy",
          info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fine-tune ``model`` on ``train_features``, keep the best checkpoint in ``out``; return metrics.json's dict.

    ``evaluate(model)`` (model already in eval mode) returns the evaluation metrics; the one named
    ``main_metric`` (higher is better) picks the checkpoint that is kept. Without ``evaluate`` the last model is
    saved. ``info`` is copied into metrics.json (task, model name, data sizes...).
    """
    config.validate()
    if not train_features:
        raise BertError("no training examples")
    out = check_writable_directory(out)
    device = pick_device(config.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.to(device)
    model.gradient_checkpointing_enable(config.gradient_checkpointing)
    rng = random.Random(config.seed)
    lengths = [len(f["input_ids"]) for f in train_features]
    micro_per_epoch = math.ceil(len(train_features) / config.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    schedule = WarmupLinearSchedule(config.lr, int(round(config.warmup * total_steps)), total_steps)
    optimizer = build_optimizer(model, "adamw", config.lr, config.weight_decay)
    pad_id = tokenizer.pad_token_id

    events: list[dict[str, Any]] = []
    jsonl = out / "metrics.jsonl"
    jsonl.write_text("", encoding="utf-8")

    def log(event: dict[str, Any]) -> None:
        events.append(event)
        with open(jsonl, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    state: dict[str, Any] = {"best": None, "best_metrics": None, "history": [], "saved": False}

    def save() -> None:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        state["saved"] = True

    def run_evaluation(step: int, epoch: float) -> None:
        if evaluate is None:
            return
        model.eval()
        with torch.no_grad():
            metrics = evaluate(model)
        model.train()
        record = {"step": step, "epoch": round(epoch, 3), **metrics}
        state["history"].append(record)
        log({"kind": "eval", **{k: v for k, v in record.items() if not isinstance(v, dict)}})
        score = metrics.get(main_metric, float("-inf"))
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        logger.warning("eval at step %d (epoch %.2f): %s", step, epoch, shown)
        if state["best"] is None or score > state["best"]:
            state["best"], state["best_metrics"] = score, record
            save()

    log_every = max(1, total_steps // 100)
    step, micro, loss_sum, loss_count = 0, 0, 0.0, 0
    epoch_done = 0.0
    stopped_by = "epochs"
    start = time.monotonic()
    deadline = start + config.time_budget * 60 if config.time_budget is not None else None
    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, disable=not config.progress, desc="fine-tuning", unit="step", dynamic_ncols=True)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    try:
        for epoch in range(config.epochs):
            batches = batch_order(lengths, config.batch_size, shuffle=True, group_by_length=config.group_by_length,
                                  rng=rng)
            for number, indices in enumerate(batches):
                batch = {k: v.to(device) for k, v in collate([train_features[i] for i in indices], pad_id).items()}
                loss = model(**batch).loss
                (loss / config.grad_accum).backward()
                loss_sum += loss.item()
                loss_count += 1
                micro += 1
                if micro % config.grad_accum and number != len(batches) - 1:
                    continue
                if config.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                step += 1
                lr = schedule.apply(optimizer, step)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                epoch_done = epoch + (number + 1) / len(batches)
                bar.update(1)
                if step % log_every == 0:
                    log({"kind": "train", "step": step, "epoch": round(epoch_done, 3), "loss": loss_sum / loss_count,
                         "lr": lr, "elapsed": round(time.monotonic() - start, 2)})
                    bar.set_postfix(loss=f"{loss_sum / loss_count:.4f}")
                    loss_sum, loss_count = 0.0, 0
                if config.max_steps is not None and step >= config.max_steps:
                    stopped_by = "max_steps"
                elif deadline is not None and time.monotonic() >= deadline:
                    stopped_by = "time_budget"
                if stopped_by != "epochs":
                    break
            run_evaluation(step, epoch_done)
            if stopped_by != "epochs":
                break
        interrupted = False
    except KeyboardInterrupt:
        interrupted, stopped_by = True, "interrupted"
        logger.warning("interrupted at step %d: saving and stopping", step)
    finally:
        bar.close()
    model.eval()
    if not state["saved"]:
        save()
    train_time = time.monotonic() - start
    best = state["best_metrics"] or {}
    result = {
        **{k: v for k, v in best.items() if k not in ("step", "epoch")},
        **(info or {}),
        "main_metric": main_metric if evaluate is not None else None,
        "best_step": best.get("step"),
        "best_epoch": best.get("epoch"),
        "steps": step,
        "total_steps_planned": total_steps,
        "epochs_completed": round(epoch_done, 3),
        "stopped_by": stopped_by,
        "interrupted": interrupted,
        "train_examples": len(train_features),
        "train_time_seconds": round(train_time, 2),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "device": str(device),
        "history": state["history"],
        "config": dataclasses.asdict(config),
    }
    try:
        (out / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        plot_finetune_curves(events, out / "curves.png", main_metric)
    except OSError as error:
        raise BertError(f"cannot write the metrics into {out}: {error.strerror or error} (the model is saved "
                        "there)") from None
    return result
