"""Fine-tuning as a task of the engine: :func:`train`, shared by classification, NER and QA.

What is trained: the task's model (a ``*ForSequenceClassification``, ``*ForTokenClassification`` or
``*ForQuestionAnswering`` loaded by :func:`load_pretrained`) on its encoded examples ("features"), with AdamW (no
weight decay on biases and LayerNorm) and linear warmup/decay over the epochs — pretraining's recipe. Its batches:
each epoch shuffles the examples (or groups similar lengths, ``group_by_length``) into micro-batches of
``batch_size × processes`` examples padded to their own longest member; each process reads its share of each;
``grad_accum`` micro-batches make a step (an epoch's last step may have fewer). Its loss: the model's mean loss per
micro-batch (per example; per labelled token for NER), each micro-batch's counted equally, as one process would.
Its evaluation: the caller's ``evaluate(model)`` after every epoch (and every ``eval_every`` steps, and when the run
stops); the best by ``main_metric`` is kept in ``OUT`` (``save_pretrained`` + tokenizer files) and ``patience``
evaluations without a better one stop training. Ctrl-C (or SIGTERM) lets the step finish, then stops: the best model
(or, before any evaluation, the current one) is in ``OUT`` and ``OUT/metrics.json`` says ``"interrupted": true``.

Everything else is the engine's (:mod:`bert.engine.loop`): checkpoints every ``save_every`` steps and when the run
stops (with the best model so far, ``best.safetensors``), exact ``resume`` (refusing other settings, naming each —
the training examples too, by their digest), the time budget (the schedule re-fit to it when the epochs would not
fit), the device, bf16 or fp16, ``--compile``, gradient checkpointing and ``torchrun`` DDP.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bert.atomic import check_writable_directory, write_text_atomically
from bert.engine.checkpointing import refuse_overwrite, resumes, seed_everything
from bert.engine.distributed import World, set_threads
from bert.engine.loop import run_task
from bert.engine.metrics import peak_memory_gb
from bert.engine.optim import build_optimizer
from bert.engine.task import Batch, Outcome, Task
from bert.errors import BertError
from bert.finetune.batching import Feature, batch_order, collate
from bert.finetune.config import FinetuneConfig
from bert.plotting import Panel, Series
from bert.pretrained import PreTrainedModel
from bert.settings import fixed_on_resume
from bert.tokenizer.fast import FastTokenizer

logger = logging.getLogger("bert")

Evaluate = Callable[[nn.Module], dict[str, Any]]

LOWER_IS_BETTER = frozenset({"mse"})
TRAINED_KEYS = ("input_ids", "token_type_ids", "labels", "start_positions", "end_positions")  # what collate() reads


def data_digest(features: Sequence[Feature]) -> str:
    """SHA-256 of what training reads of the encoded examples (token and segment ids, targets): another file, or
    the same one read with other settings, gives another digest. (Pickled: a few seconds for all of SQuAD.)"""
    digest = hashlib.sha256()
    for feature in features:
        digest.update(pickle.dumps([feature.get(key) for key in TRAINED_KEYS], protocol=4))
    return digest.hexdigest()


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
    torch's generator, so seed it first (:func:`~bert.engine.checkpointing.seed_everything`). With ``resuming`` (see
    :func:`~bert.engine.checkpointing.resumes`)
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


def start_model(model: str | Path, head: str, config: FinetuneConfig, out: str | Path,
                **config_overrides: Any) -> tuple[PreTrainedModel, FastTokenizer]:
    """What every fine-tuning job starts from: the generators seeded (a new head's weights draw from them), then
    ``head`` of the checkpoint's model type loaded with its tokenizer (:func:`load_pretrained`), quiet about a fresh
    head when the run resumes from a checkpoint in ``out`` (whose weights replace it)."""
    seed_everything(config.seed)
    return load_pretrained(model, head, resumes(out, config.resume), **config_overrides)


def input_limit(model: PreTrainedModel, max_seq_len: int) -> int:
    """``max_seq_len``, or fewer when the model's position table is shorter (RoBERTa reads 2 fewer than its
    max_position_embeddings)."""
    return min(max_seq_len, model.base_model.embeddings.max_length())


def finetune_panels(main_metric: str, best_step: int | None) -> list[Panel]:
    """curves.png of a fine-tuning run: train loss (and learning rate, right axis) and ``main_metric`` at every
    evaluation (per epoch and ``--eval-every``), the kept one (at ``best_step``) starred."""
    return [Panel("training loss", "loss", [Series("train", "loss", "train loss")],
                  right=[Series("train", "lr", color="tab:gray")], right_ylabel="learning rate"),
            Panel(f"eval {main_metric}", main_metric,
                  [Series("eval", main_metric, style="o-", color="tab:green", star_step=best_step)])]


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
    return run_task(lambda world: FinetuneTask(model, tokenizer, train_features, out, config, world, evaluate,
                                               main_metric, info or {}), config, out)


class FinetuneTask(Task):
    """One fine-tuning run's model, examples and evaluation (see the module docstring); use :func:`train`."""

    name = "fine-tuning"
    stat_names = ("loss_sum", "micro_batches")  # each micro-batch's mean loss (its share of it, under DDP)

    def __init__(self, model: nn.Module, tokenizer: FastTokenizer, features: Sequence[Feature], out: Path,
                 config: FinetuneConfig, world: World, evaluate: Evaluate | None, main_metric: str,
                 info: dict[str, Any]) -> None:
        self.model, self.tokenizer, self.features, self.out, self.config = model, tokenizer, features, out, config
        self.world, self.evaluate_fn, self.info = world, evaluate, info
        self.main_metric = main_metric if evaluate is not None else None
        self.lower_is_better = main_metric in LOWER_IS_BETTER
        self.checkpoint_at_end = config.save_every > 0  # checkpoints only when asked for
        if world.distributed:
            set_threads(world)  # the cores shared among the processes
        self.lengths = [len(f["input_ids"]) for f in features]
        self.micro_batch = config.batch_size * world.world_size  # examples per micro-batch, all processes
        micro_per_epoch = math.ceil(len(features) / self.micro_batch)
        epochs_total = math.ceil(micro_per_epoch / config.grad_accum) * config.epochs
        self.total_steps = min(epochs_total, config.max_steps) if config.max_steps is not None else epochs_total
        self._settings: dict[str, Any] | None = None
        # The position in the data (a checkpoint holds it all).
        self.epoch, self.index = 0, 0  # the batches of this epoch already read
        self.order_state = random.Random(config.seed).getstate()  # the data-order generator before this epoch's draw
        self.progress = 0.0  # epochs done, fractional
        self._epoch_batches: list[list[int]] | None = None
        self._epoch_rng: random.Random | None = None

    # ---- what is trained ---------------------------------------------------------------------------------------
    def make_optimizer(self) -> torch.optim.Optimizer:
        return build_optimizer(self.model, "adamw", self.config.lr, self.config.weight_decay)

    def planned_steps(self) -> int:
        return self.total_steps

    @property
    def log_every(self) -> int:
        return max(1, self.total_steps // 100)

    # ---- batches -----------------------------------------------------------------------------------------------
    def next_step(self, progress: float) -> tuple[list[Batch], bool]:
        """The step's micro-batches (this process's rows of each). The position moves past the step before it is
        trained, so a checkpoint taken after it resumes with the next one; an epoch's batches are redrawn from the
        generator state saved before its draw."""
        if self._epoch_batches is None:
            self._epoch_rng = random.Random()
            self._epoch_rng.setstate(self.order_state)
            self._epoch_batches = batch_order(self.lengths, self.micro_batch, shuffle=True,
                                              group_by_length=self.config.group_by_length, rng=self._epoch_rng)
        batches = self._epoch_batches
        group = batches[self.index:self.index + self.config.grad_accum]
        self.index += len(group)
        self.progress = self.epoch + self.index / len(batches)
        epoch_end = self.index >= len(batches)
        if epoch_end:
            self.epoch, self.index, self.order_state = self.epoch + 1, 0, self._epoch_rng.getstate()
            self._epoch_batches = None
        return [self._rows(indices) for indices in group], epoch_end

    def _rows(self, indices: list[int]) -> Batch:
        """This process's rows of a micro-batch (every world_size-th); a process left without one reads the first
        example with a ``share`` of 0, so that it still takes part in DDP's gradient exchange."""
        mine = indices[self.world.rank::self.world.world_size]
        batch = collate([self.features[i] for i in (mine or indices[:1])], self.tokenizer.pad_token_id)
        if self.world.distributed:
            count = self._count(batch) if mine else 0
            batch["share"] = torch.tensor(float(count), dtype=torch.float64)
        return batch

    @staticmethod
    def _count(batch: Batch) -> int:
        """What the model's loss is a mean over: labelled tokens for token classification, else examples."""
        labels = batch.get("labels")
        return int((labels != -100).sum()) if labels is not None and labels.dim() == 2 else len(batch["input_ids"])

    def probe_batch(self) -> Batch:
        middle = sorted(range(len(self.features)), key=self.lengths.__getitem__)
        start = max(0, len(middle) // 2 - self.config.batch_size // 2)
        rows = middle[start:start + self.config.batch_size]
        return collate([self.features[i] for i in rows], self.tokenizer.pad_token_id)

    def data_state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index, "order_state": self.order_state, "progress": self.progress}

    def load_data_state(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["order_state"]
        self.epoch, self.index, self.progress = state["epoch"], state["index"], state["progress"]
        self.order_state = (version, tuple(internal), gauss)
        self._epoch_batches = None

    def position(self) -> dict[str, Any]:
        return {"epoch": round(self.progress, 3)}

    # ---- the loss ----------------------------------------------------------------------------------------------
    def normalizers(self, batches: Sequence[Batch]) -> list[dict[str, Any]]:
        """Each micro-batch counts 1/len(batches) of the step; under DDP a process's part of a micro-batch is
        weighted by its share of the micro-batch's examples (or labelled tokens), summed over processes."""
        shares = [1.0] * len(batches)
        if self.world.distributed:
            counts = torch.stack([b["share"] for b in batches])
            totals = self.world.all_reduce_sum(counts.clone())
            shares = (counts / totals.clamp(min=1.0)).tolist()
        return [{"share": share, "micro_batches": len(batches)} for share in shares]

    def forward(self, module: nn.Module, batch: Batch, normalizers: dict[str, Any]) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
        inputs = {key: value for key, value in batch.items() if key != "share"}
        loss = module(**inputs).loss
        share = normalizers["share"]
        if self.world.distributed:
            loss = loss * share
        stats = torch.stack([loss.detach().double().cpu(), torch.tensor(share, dtype=torch.float64)])
        return loss / normalizers["micro_batches"], stats

    def summarize(self, stats: torch.Tensor) -> dict[str, float]:
        return {"loss": float(stats[0] / stats[1]) if stats[1] else float("nan")}

    # ---- evaluation and files ----------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any] | None:
        return self.evaluate_fn(self.model) if self.evaluate_fn is not None else None

    def eval_message(self, step: int, metrics: dict[str, Any], best_so_far: bool) -> str:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        return f"eval at step {step} (epoch {self.progress:.2f}): {shown}" + (" (best so far)" if best_so_far else "")

    def settings(self) -> dict[str, Any]:
        """What a resumed run must share with its checkpoint: the config (all but its ``free_on_resume`` fields),
        the task's ``info`` (model, files, labels, ...), the metric and the digest of the training examples."""
        if self._settings is None:
            settings = fixed_on_resume(self.config)
            settings.update(self.info)
            for key in ("model", "train_file", "eval_file"):  # the same folder or file, however it was spelled
                if isinstance(settings.get(key), str) and Path(settings[key]).exists():
                    settings[key] = str(Path(settings[key]).resolve())
            settings["metric"] = self.main_metric
            settings["train_data"] = data_digest(self.features)
            self._settings = settings
        return self._settings

    def check_resumable(self, settings: dict[str, Any], path: Path) -> None:
        if "train_data" not in settings:
            raise BertError(f"--resume: {path} is not a fine-tuning checkpoint")
        super().check_resumable(settings, path)

    def describe_difference(self, key: str) -> str | None:
        return "the training examples differ" if key == "train_data" else None

    def panels(self, events: list[dict[str, Any]], best_step: int | None) -> Sequence[Panel]:
        return finetune_panels(self.main_metric or "loss", best_step)

    def note(self, message: str) -> None:
        if self.world.is_main:
            logger.warning("%s", message)

    def resumed(self, path: Path, step: int, total_steps: int) -> None:
        report = getattr(self.model, "load_report", None)  # from_pretrained's: what the starting model lacked
        head = f", {', '.join(report.missing)} included" if report is not None and report.missing else ""
        self.note(f"resuming from {path} (step {step} of {total_steps}): the model's weights are the "
                  f"checkpoint's{head}")

    def finish(self, outcome: Outcome) -> dict[str, Any]:
        """The model (the best, or the last when none was evaluated) in OUT, metrics.json; returns its dict."""
        if outcome.interrupted:
            self.note(f"interrupted at step {outcome.step}: saving and stopping")
        self.model.eval()
        best = outcome.best_record or {}
        result = {
            **{k: v for k, v in best.items() if k not in ("step", "epoch")},
            **self.info,
            "main_metric": self.main_metric,
            "best_step": best.get("step"),
            "best_epoch": best.get("epoch"),
            "steps": outcome.step,
            "total_steps_planned": outcome.total_steps,
            "epochs_completed": round(self.progress, 3),
            "stopped_by": outcome.stopped_by,
            "interrupted": outcome.interrupted,
            "checkpoint": str(outcome.checkpoint) if outcome.checkpoint is not None else None,
            "train_examples": len(self.features),
            "train_time_seconds": round(outcome.elapsed, 2),
            "peak_memory_gb": round(peak_memory_gb(self.world.device), 3),
            "device": str(self.world.device),
            "history": outcome.history,
            "config": dataclasses.asdict(self.config),
        }
        if self.world.is_main:
            self._write_files(result, outcome.best_record is None)
        self.world.barrier()
        return result

    def _write_files(self, result: dict[str, Any], save_model: bool) -> None:
        try:
            if save_model:
                self.save_model(self.out)
            write_text_atomically(self.out / "metrics.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        except OSError as error:
            raise BertError(f"cannot write the metrics into {self.out}: {error.strerror or error} (the model is "
                            "saved there)") from None
