"""The pretraining loop: :func:`pretrain` (the Python API behind ``bert pretrain``).

One optimizer step:

1. take the next global batch from :class:`~bert.train.batches.DataOrder`, split it into ``grad_accum``
   micro-batches, read and mask this process's rows of each;
2. count the masked tokens and examples of the whole global batch (summed over processes) — the loss of every
   micro-batch is divided by these totals, so the accumulated gradient is that of the mean loss over the global
   batch, whatever the split into micro-batches and processes;
3. forward + backward per micro-batch (DDP synchronises gradients on the last one), clip, check the loss and
   gradient norm are finite, update, set the next learning rate;
4. rank 0 logs (tqdm + metrics.jsonl), evaluates, draws curves.png and checkpoints on schedule.

Ctrl-C (or SIGTERM) sets a flag; the current step finishes, a checkpoint is saved and KeyboardInterrupt is
re-raised after printing how to resume (a second Ctrl-C aborts at once). A non-finite loss stops the run with a
:class:`~bert.errors.BertError` naming the step; the checkpoints already written are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from bert.atomic import replace_folder_atomically
from bert.compile import compile_for_training
from bert.config import MODEL_TYPES, VARIANT_PRESET_FIELDS, BertConfig, split_preset
from bert.data.dataset import PretrainingDataset
from bert.data.masking import MaskingCollator
from bert.data.prepare import load_meta
from bert.errors import BertError
from bert.heads import IGNORE_INDEX
from bert.plotting import Panel, plot_curves
from bert.pretrained import PreTrainedModel
from bert.settings import settings_differences
from bert.tokenizer.fast import FastTokenizer
from bert.train.batches import DataOrder, masked_rows, microbatches
from bert.train.checkpointing import (
    TrainingState,
    capture_rng_states,
    check_free_space,
    checkpoint_bytes,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    restore_rng_states,
    save_checkpoint,
)
from bert.train.config import PretrainConfig
from bert.train.distributed import World, set_threads, setup, teardown
from bert.train.evaluate import eval_collator, evaluate
from bert.train.init_from import InitCheckpoint, fresh_heads_note
from bert.train.loss import (
    SENTENCE_TASKS,
    STAT_NAMES,
    PretrainingObjective,
    pretraining_heads,
    sentence_tasks,
    summarize,
)
from bert.train.metrics import MetricsLog, peak_rss_gb, pretraining_panels
from bert.train.optim import build_optimizer
from bert.train.schedule import WarmupLinearSchedule, estimate_total_steps, resolve_warmup
from bert.variants.auto import TOKENIZERS, auto_class, model_type_of
from bert.weights import check_writable_directory

PROBE_PASSES = 3  # forward+backward passes timed to estimate steps from --time-budget (the fastest counts)


def pretrain(config: PretrainConfig, trainer_class: type[Trainer] | None = None) -> Path:
    """Pretrain a model as ``config`` says (see :func:`pretraining_model_class`); returns ``RUN/final`` (model +
    tokenizer files). ``trainer_class``: a :class:`Trainer` subclass to run instead (distillation's).

    Under torchrun every process calls this; the returned path is the same on all of them.
    """
    config.validate()
    world = setup()
    trainer = None
    try:
        trainer = (trainer_class or Trainer)(config, world)
        return trainer.run()
    except OSError as error:  # e.g. the disk filled up while writing metrics.jsonl or curves.png
        where = f"{error.filename}: " if error.filename else ""
        latest = latest_checkpoint(Path(config.out) / "checkpoints")
        kept = f"the latest complete checkpoint is {latest}" if latest else "no checkpoint was saved yet"
        raise BertError(f"{where}{error.strerror or error}; training stopped and {kept}. Fix that, then continue "
                        "with --resume") from None
    finally:
        del trainer  # its DDP wrapper holds the process group: free it before teardown destroys the group
        teardown(world)


def _is_config_file(spec: str) -> bool:
    return spec.endswith(".json") or os.sep in spec or Path(spec).is_file()


def config_model_type(spec: str) -> str:
    """The model type that ``--config`` names: a preset's ("albert-mini" → "albert", "mini" → "bert") or a
    config.json's ``model_type``."""
    return model_type_of(spec) if _is_config_file(spec) else split_preset(spec)[0]


def build_model_config(spec: str, vocab_size: int, pad_token_id: int,
                       overrides: dict[str, Any] | None = None) -> BertConfig:
    """A preset name (BERT's "mini", a variant's "albert-mini") or a config.json path (of any model type), in the
    model type's config class, with the data's vocabulary size and padding id."""
    fields = {"vocab_size": vocab_size, "pad_token_id": pad_token_id}
    if _is_config_file(spec):
        return auto_class(spec, "base").config_class.from_json_file(spec, **fields, **(overrides or {}))
    model_type, size = split_preset(spec)
    config = auto_class({"model_type": model_type}, "base").config_class.preset(
        size, **fields, **VARIANT_PRESET_FIELDS.get(model_type, {}))
    return dataclasses.replace(config, **(overrides or {}))


def pretraining_model_class(model_type: str) -> type[PreTrainedModel]:
    """What ``bert pretrain`` trains for a model type: its ``*ForPreTraining`` (MLM + a sentence head: BERT,
    ALBERT), or where it has none its ``*ForMaskedLM`` (RoBERTa, DistilBERT: MLM only)."""
    try:
        return auto_class({"model_type": model_type}, "pretraining")
    except BertError:
        return auto_class({"model_type": model_type}, "masked_lm")


def training_objective(flag: str | None, data_objective: str, data_dir: Path) -> str:
    """The objective to train: ``--objective`` (None: what the data holds); BertError when the data lacks its
    labels. "mlm" trains on any data (sentence-pair labels are then ignored)."""
    if flag in (None, "mlm", data_objective):
        return flag or data_objective
    if data_objective == "mlm":
        raise BertError(f"{data_dir} holds MLM-only data (no sentence-pair labels); train it with --objective mlm, "
                        f"or prepare sentence pairs with bert prepare --objective {flag}")
    raise BertError(f"{data_dir} holds {data_objective} data ({SENTENCE_TASKS[data_objective].upper()} labels), not "
                    f"{flag}; train it with --objective {data_objective} or --objective mlm, or prepare it again with "
                    f"bert prepare --objective {flag}")


def check_model_objective(model_type: str, model_class: type[PreTrainedModel], objective: str) -> None:
    """BertError when the model cannot train the objective's sentence task (RoBERTa has no sentence head, ALBERT's
    learns sentence order only)."""
    task, tasks = SENTENCE_TASKS[objective], sentence_tasks(model_class)
    if task is None or task in tasks:
        return
    name = MODEL_TYPES[model_type]
    fix = (f"its sentence head learns {' or '.join(t.upper() for t in tasks)} only: prepare the data with "
           f"bert prepare --objective mlm+{tasks[0]}, or" if tasks else "it has no sentence-pair head:")
    raise BertError(f"{name} cannot train {task.upper()} ({objective} data); {fix} pass --objective mlm to train the "
                    "masked LM alone")


def data_tokenizer(model_type: str, tokenizer_dir: Path, data_dir: Path) -> FastTokenizer:
    """The prepared data's tokenizer, as the model type's tokenizer class (so that ``RUN/final`` loads with
    :func:`~bert.variants.auto.auto_tokenizer`); BertError when the data was tokenized for another family."""
    try:
        return TOKENIZERS[model_type].from_pretrained(tokenizer_dir)
    except BertError as error:
        raise BertError(f"{data_dir} was not tokenized for {MODEL_TYPES[model_type]} ({error}); prepare it with "
                        f"{MODEL_TYPES[model_type]}'s tokenizer: bert prepare ... --tokenizer DIR|NAME") from None


def check_writable(out: Path) -> None:
    """BertError unless ``out`` can be created and written into."""
    check_writable_directory(out, "run folder")


@contextlib.contextmanager
def interrupt_flag() -> Iterator[dict[str, bool]]:
    """While active, the first Ctrl-C (SIGINT) or SIGTERM (a scheduler's or torchrun's polite kill) only sets
    ``flag["set"]``: the loop finishes its step, saves and stops. A second Ctrl-C raises at once.

    Outside the main thread signal handlers cannot be installed; Ctrl-C then stays an immediate KeyboardInterrupt.
    """
    flag = {"set": False}
    signals = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous: dict[int, Any] = {}

    def handle(signum: int, frame: Any) -> None:
        if not flag["set"]:  # an evaluation can take a while: say why nothing stops yet (os.write: signal-safe)
            os.write(2, b"\nstopping: finishing the current step (and its evaluation), then saving; press Ctrl-C "
                        b"again to stop at once\n")
        flag["set"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    try:
        for sig in signals:
            old = signal.getsignal(sig)
            signal.signal(sig, handle)
            previous[sig] = old
    except ValueError:  # not the main thread
        pass
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)


class Trainer:
    """Holds the state of one run; :meth:`run` trains. Use :func:`pretrain` rather than this class.

    A subclass (:class:`bert.train.distill.DistillTrainer`) changes what is trained through the hooks
    :meth:`_init_checkpoint`, :meth:`_start_note`, :meth:`_build_objective`, :meth:`_normalizers`,
    :meth:`_summarize` (with ``stats_size``), :meth:`_held_out` and :meth:`_curve_panels`.
    """

    command = "pretrain"  # the `bert` sub-command, in messages
    stats_size = len(STAT_NAMES)  # the length of the objective's stats() vector

    def __init__(self, config: PretrainConfig, world: World) -> None:
        self.cfg = config
        self.world = world
        self.data_dir = Path(config.data)
        self.out = Path(config.out)
        self.checkpoints_dir = self.out / "checkpoints"
        set_threads(world, config.threads)
        if config.bf16 and not world.native_bf16:
            needs = " (AVX512-BF16 or AMX)" if world.device.type == "cpu" else ""
            self._note(f"--bf16: this {world.device.type.upper()} has no bfloat16 instructions{needs}, so autocast "
                       "emulates them and trains many times slower than float32 here; drop --bf16 on this machine")

        meta = load_meta(self.data_dir)
        self.tokenizer_dir = self.data_dir / "tokenizer"
        self.train_data = PretrainingDataset(self.data_dir / "train")
        eval_dir = self.data_dir / "eval"
        self.eval_data = PretrainingDataset(eval_dir) if (eval_dir / "input_ids.npy").is_file() else None
        if self.eval_data is not None and len(self.eval_data) == 0:
            self.eval_data = None
        self.seq_len = self.train_data.max_seq_len
        self.meta = meta
        objective = training_objective(config.objective, meta.get("objective", "mlm+nsp"), self.data_dir)
        # The sentence task trained ("nsp", "sop"; None: MLM only); it names the metrics.
        self.sentence_task = SENTENCE_TASKS[objective]
        self.init: InitCheckpoint | None = self._init_checkpoint()  # checked before anything is written
        init_state = None
        model_type = model_type_of(self.init.config) if self.init else config_model_type(config.config or "mini")
        self.model_class = pretraining_model_class(model_type)
        check_model_objective(model_type, self.model_class, objective)
        self.tokenizer = data_tokenizer(model_type, self.tokenizer_dir, self.data_dir)
        if self.init is not None:
            self.init.check_vocabulary(self.tokenizer, self.data_dir)
            # A resumed run continues from its own checkpoint: the initial weights are not read over it.
            if not (config.resume and latest_checkpoint(self.checkpoints_dir)):
                init_state = self.init.read_weights()

        if world.is_main:
            check_writable(self.out)
            if not config.resume and list_checkpoints(self.checkpoints_dir):
                raise BertError(f"{self.out} already holds checkpoints: pass --resume to continue that run, "
                                "or choose another --out")
        world.barrier()

        collator_args = {"whole_word_masking": config.whole_word_masking, "mlm_probability": config.mask_prob,
                         "max_predictions_per_seq": config.max_predictions_per_seq}
        self.collator = MaskingCollator.from_tokenizer(self.tokenizer, seed=config.seed + 1, **collator_args)
        self.eval_collator = eval_collator(self.tokenizer, self.seq_len, config.whole_word_masking)

        wanted = round(config.mask_prob * (self.seq_len - 3))
        if config.max_predictions_per_seq is not None and config.max_predictions_per_seq < wanted:
            self._note(f"--max-predictions-per-seq {config.max_predictions_per_seq} caps the masking: a full "
                       f"{self.seq_len}-token sequence masks {config.max_predictions_per_seq} tokens, not the "
                       f"{wanted} that --mask-prob {config.mask_prob} asks for")

        if self.init is not None:
            self.model_config = self.init.config
        else:
            self.model_config = build_model_config(config.config or "mini", self.collator.vocab_size,
                                                   self.tokenizer.pad_token_id, config.model_changes())
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        self.model = self.model_class(self.model_config)
        positions = self.model.base_model.embeddings.max_length()  # RoBERTa's table also holds its padding offset
        if positions < self.seq_len:
            raise BertError(f"the data has sequences of {self.seq_len} tokens but the model only {positions} positions")
        if self.init is not None and init_state is not None:
            note = fresh_heads_note(self.init.load_into(self.model, init_state))
            del init_state
            self._note(self._start_note(note))
        sentence_head = pretraining_heads(self.model).sentence
        if self.sentence_task is None and sentence_head is not None:
            # MLM only: the pooler and sentence head get no gradient; leave them as they are
            for parameter in [*self.model.base_model.pooler.parameters(), *sentence_head.parameters()]:
                parameter.requires_grad_(False)
        self.model.to(world.device).train()
        self.model.gradient_checkpointing_enable(config.gradient_checkpointing)
        head_lr_scale = config.head_lr / config.lr if config.head_lr is not None else 1.0
        self.optimizer = build_optimizer(self.model, config.optimizer, config.lr, config.weight_decay, head_lr_scale)
        if world.is_main:
            check_free_space(self.out, checkpoint_bytes(self.model))
        self.per_step = config.batch_size * world.world_size * config.grad_accum
        self.order = DataOrder(len(self.train_data), self.per_step, config.seed)
        self.step = 0
        self.elapsed = 0.0
        self.schedule: WarmupLinearSchedule | None = None
        if config.max_steps is not None:
            self.schedule = self._schedule(config.max_steps)

        self.metrics = MetricsLog(self.out / "metrics.jsonl") if world.is_main else None
        self.rng_to_restore: dict[str, Any] | None = None
        self.resumed_from: Path | None = None
        if config.resume:
            self._resume()
        elif self.metrics is not None:
            self.metrics.truncate_after(-1)

        self.objective = self._build_objective()
        if self.schedule is None:  # --time-budget alone: time a probe (before DDP wraps the model) to size it
            self.schedule = self._schedule(self._estimate_steps())
        self.wrapped: torch.nn.Module = self.objective
        if world.distributed:
            device_ids = [world.device.index] if world.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.objective, device_ids=device_ids)
        if config.compile:
            self.wrapped = compile_for_training(self.wrapped)

    # ---- setup helpers ------------------------------------------------------------------------------------------
    def _schedule(self, total_steps: int) -> WarmupLinearSchedule:
        warmup = resolve_warmup(total_steps, self.cfg.warmup_steps, self.cfg.warmup_fraction)
        return WarmupLinearSchedule(self.cfg.lr, warmup, total_steps)

    def _init_checkpoint(self) -> InitCheckpoint | None:
        """The checkpoint whose weights the model starts from (None: random weights), before anything is written."""
        if self.cfg.init_from is None:
            return None
        return InitCheckpoint.resolve(self.cfg.init_from, self.cfg.model_changes())

    def _start_note(self, fresh: str | None) -> str:
        """The log line saying where the weights come from (``fresh``: what the checkpoint lacked, or None)."""
        assert self.init is not None
        return f"continuing pretraining from {self.init.folder}" + (f"; {fresh}" if fresh else "")

    def _build_objective(self) -> torch.nn.Module:
        """The module that turns a masked batch into loss sums (see :mod:`bert.train.loss`); DDP wraps it."""
        return PretrainingObjective(self.model, self.sentence_task)

    def _resume(self) -> None:
        path = latest_checkpoint(self.checkpoints_dir)
        if path is None:
            self._note(f"--resume: no checkpoint in {self.checkpoints_dir}; starting from scratch")
            if self.metrics is not None:
                self.metrics.truncate_after(-1)
            return
        state = load_checkpoint(path, self.model)
        self._check_resumable(state.extra, path)
        self.optimizer.load_state_dict(state.optimizer)
        self.schedule = WarmupLinearSchedule.from_state_dict(state.schedule)
        if self.cfg.max_steps is not None and self.cfg.max_steps != self.schedule.total_steps:
            self.schedule = self._schedule(self.cfg.max_steps)  # the user changed --max-steps: follow it
        self.order.restore(state.epoch, state.index, state.data_order_generator)
        self.collator.load_state_dict({"generator_state": state.masking_generator})
        self.step, self.elapsed = state.step, state.elapsed
        self.rng_to_restore = state.rng  # restored just before the first step, after everything that draws
        self.resumed_from = path
        if self.metrics is not None:
            self.metrics.truncate_after(self.step)
        self._note(f"resuming from {path} (step {self.step})")

    def _checkpoint_extra(self) -> dict[str, Any]:
        """What a checkpoint holds besides the training state, checked by :meth:`_check_resumable`: the run's
        settings (all but those a resumed run may change; a subclass adds its own state)."""
        return {"settings": self.cfg.fixed_on_resume()}

    def _check_resumable(self, extra: dict[str, Any], path: Path) -> None:
        """BertError when this run cannot continue checkpoint ``path`` (given its :meth:`_checkpoint_extra`): one
        line naming each setting that differs, as fine-tuning's ``--resume`` does."""
        if "settings" not in extra:
            return  # a checkpoint from before settings were recorded: nothing to compare
        differences = settings_differences(extra["settings"], self.cfg.fixed_on_resume())
        if differences:
            raise BertError(f"--resume: {path} was made with other settings: {', '.join(differences)}; resume with "
                            "the same settings, or choose another --out to start afresh")

    def _note(self, message: str) -> None:
        if self.world.is_main:
            print(f"bert {self.command}: {message}", file=sys.stderr, flush=True)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=self.world.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def _to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: value.to(self.world.device, non_blocking=True) for key, value in batch.items()}

    def _estimate_steps(self) -> int:
        """Time a few forward+backward passes (no update, RNG restored) to fit the schedule in --time-budget."""
        rows = torch.arange(min(self.cfg.batch_size, len(self.train_data)))
        probe_collator = MaskingCollator.from_tokenizer(self.tokenizer, seed=0)
        batch = self._to_device(probe_collator(self.train_data.batch(rows.tolist())))
        rng = torch.get_rng_state()
        seconds = math.inf
        for _ in range(PROBE_PASSES):  # the fastest pass: the first ones pay for warm-up, others for a busy machine
            start = time.perf_counter()
            with self._autocast():
                out = self.objective(**batch)
            out.loss.backward()
            seconds = min(seconds, time.perf_counter() - start)
        self.optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(rng)
        per_step = seconds * self.cfg.grad_accum
        eval_seconds = 0.0
        if self.eval_data is not None:  # a forward pass is about a third of forward + backward
            eval_batches = min(self.cfg.eval_batches, math.ceil(len(self.eval_data) / self.cfg.batch_size))
            eval_seconds = eval_batches * seconds / 3
        budget = self.cfg.time_budget * 60 - self.elapsed
        estimate = torch.tensor([float(estimate_total_steps(budget, per_step, eval_seconds, self.cfg.eval_every))])
        total = int(self.world.broadcast(estimate).item())
        self._note(f"--time-budget {self.cfg.time_budget:g} min: about {per_step:.3f} s per step, "
                   f"so the learning rate decays to 0 at step {total}")
        return total

    def _replan(self, first_step: int, first_elapsed: float, budget: float) -> int:
        """--time-budget alone: after each evaluation, re-fit the schedule's end to the budget using the measured
        seconds per step so far (optimizer steps, evaluations, checkpoints, everything), so that the learning
        rate reaches 0 about when the time runs out instead of wherever the up-front estimate put it."""
        assert self.schedule is not None
        seconds_per_step = (self.elapsed - first_elapsed) / max(self.step - first_step, 1)
        left = estimate_total_steps(max(budget - self.elapsed, 0.0), seconds_per_step)
        total = torch.tensor([float(self.step + left)])
        self.schedule.total_steps = max(int(self.world.broadcast(total).item()), self.step + 1)
        return self.schedule.total_steps

    # ---- the loop -----------------------------------------------------------------------------------------------
    def run(self) -> Path:
        cfg, world = self.cfg, self.world
        assert self.schedule is not None
        max_steps = cfg.max_steps if cfg.max_steps is not None else self.schedule.total_steps
        budget = cfg.time_budget * 60 if cfg.time_budget is not None else math.inf
        if self.rng_to_restore is not None:
            restore_rng_states(self.rng_to_restore)
        if self.init is not None and self.step == 0:
            self._evaluate(None)  # the starting point: did continuing to train help?

        bar = None
        if world.is_main and cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=max_steps, initial=self.step, desc=self.command, unit="step", dynamic_ncols=True)
        window = torch.zeros(self.stats_size, dtype=torch.float64)
        window_tokens, window_seconds, window_steps = 0, 0.0, 0
        tokens_per_step = self.per_step * self.seq_len
        started = time.perf_counter() - self.elapsed
        session_start = (self.step, self.elapsed)  # for re-planning the schedule from measured step times
        replan = cfg.max_steps is None
        interrupted = False
        time_up = self.elapsed >= budget  # the same on every process (restored from the checkpoint)
        try:
            with interrupt_flag() as flag:
                while self.step < max_steps and not time_up:
                    step_start = time.perf_counter()
                    stats, lr = self._train_step()
                    seconds = time.perf_counter() - step_start
                    self.step += 1
                    self.elapsed = time.perf_counter() - started
                    window += stats
                    window_tokens += tokens_per_step
                    window_seconds += seconds
                    window_steps += 1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(mlm_loss=f"{float(stats[0] / max(stats[2], 1)):.3f}", lr=f"{lr:.2e}",
                                        tok_s=f"{tokens_per_step / seconds:,.0f}", refresh=False)
                    if self.metrics is not None and self.step % cfg.log_every == 0:
                        self.metrics.write({"kind": "train", "step": self.step,
                                            **self._summarize(window), "lr": lr,
                                            "tokens_per_second": window_tokens / window_seconds,
                                            "elapsed": self.elapsed})
                        window.zero_()
                        window_tokens, window_seconds, window_steps = 0, 0.0, 0
                    if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < max_steps:
                        self._evaluate(bar)
                        if replan:
                            max_steps = self._replan(*session_start, budget)
                            if bar is not None:
                                bar.total = max_steps
                    if cfg.save_every and self.step % cfg.save_every == 0:
                        self._save()
                    # Stop together: any process's Ctrl-C, or rank 0's clock.
                    control = torch.tensor([float(flag["set"]), float(world.is_main and self.elapsed >= budget)])
                    world.all_reduce_sum(control)
                    if control[0] > 0:
                        interrupted = True
                        break
                    time_up = bool(control[1] > 0)
        finally:
            if bar is not None:
                bar.close()
        if self.metrics is not None and window_steps:  # the steps since the last train line
            self.metrics.write({"kind": "train", "step": self.step, **self._summarize(window),
                                "lr": self.schedule.lr(self.step),
                                "tokens_per_second": window_tokens / max(window_seconds, 1e-9),
                                "elapsed": self.elapsed})
        if interrupted:
            path = self._save()
            self._note(f"interrupted at step {self.step}; saved {path}. To continue, run the same command with "
                       "--resume")
            raise KeyboardInterrupt
        self._evaluate(None)
        self._save()
        return self._export_final()

    def _train_step(self) -> tuple[torch.Tensor, float]:
        """One optimizer step; returns the global batch's summed stats and the learning rate it used."""
        cfg, world = self.cfg, self.world
        indices = self.order.next_step()
        batches = [self._to_device(masked_rows(self.train_data, self.collator, chunk, world.rank, world.world_size))
                   for chunk in microbatches(indices, cfg.grad_accum)]
        normalizers = self._normalizers(batches)

        lr = self.schedule.apply(self.optimizer, self.step + 1)
        stats = torch.zeros(self.stats_size, dtype=torch.float64)
        for k, batch in enumerate(batches):
            last = k == len(batches) - 1
            sync = contextlib.nullcontext() if last or not world.distributed else self.wrapped.no_sync()
            with sync:
                with self._autocast():
                    out = self.wrapped(**batch, **normalizers)
                # DDP averages gradients over processes; the normalisers already divide by the global totals.
                (out.loss * world.world_size).backward()
            stats += out.stats().cpu()
        world.all_reduce_sum(stats)
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        summary = self._summarize(stats)
        pair_loss = summary.get(f"{self.sentence_task}_loss", 0.0)
        if not all(math.isfinite(v) for v in (summary["mlm_loss"], pair_loss, grad_norm)):
            last_good = latest_checkpoint(self.checkpoints_dir)
            kept = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was saved yet"
            pair = f"{self.sentence_task.upper()} loss {pair_loss:.4g}, " if self.sentence_task else ""
            raise BertError(
                f"the loss became non-finite at step {self.step + 1} (MLM loss {summary['mlm_loss']:.4g}, {pair}"
                f"gradient norm {grad_norm:.4g}); training stopped and {kept}. Lower --lr or lengthen the warmup, "
                "then continue with --resume")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return stats, lr

    def _normalizers(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """What every micro-batch's loss sums are divided by: the global batch's masked tokens and examples (summed
        over processes), so that accumulation and DDP give the gradient of the mean loss over the global batch."""
        totals = torch.tensor([float(sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in batches)),
                               float(sum(len(b["next_sentence_label"]) for b in batches))], dtype=torch.float64)
        self.world.all_reduce_sum(totals)
        return {"mlm_normalizer": max(totals[0].item(), 1.0), "nsp_normalizer": max(totals[1].item(), 1.0)}

    def _summarize(self, stats: torch.Tensor) -> dict[str, float]:
        """Summed stats [stats_size] → the metrics of a train line."""
        return summarize(stats, self.sentence_task)

    def _held_out(self) -> dict[str, float]:
        """The metrics of one evaluation (see :func:`~bert.train.evaluate.evaluate`)."""
        return evaluate(self.objective, self.eval_data, self.eval_collator, self.cfg.batch_size,
                        self.cfg.eval_batches * self.cfg.batch_size, device=self.world.device,
                        autocast=self._autocast())

    def _curve_panels(self) -> Sequence[Panel]:
        """What curves.png draws (see :func:`~bert.train.metrics.pretraining_panels`)."""
        assert self.metrics is not None
        return pretraining_panels(self.metrics.events)

    def _plot_curves(self) -> None:
        assert self.metrics is not None
        plot_curves(self.metrics.events, self.out / "curves.png", self._curve_panels())

    def _evaluate(self, bar: Any) -> dict[str, float] | None:
        """Held-out MLM loss/accuracy and NSP or SOP accuracy on the first eval_batches × batch_size eval examples,
        masked with a fixed seed (rank 0 only; see :mod:`bert.train.evaluate`)."""
        if not self.world.is_main or self.eval_data is None or self.cfg.eval_batches == 0:
            return None
        result = self._held_out()
        event = {"kind": "eval", "step": self.step, **result, "elapsed": self.elapsed, "peak_rss_gb": peak_rss_gb()}
        assert self.metrics is not None
        self.metrics.write(event)
        self._plot_curves()
        accuracy = f"{self.sentence_task}_accuracy"
        message = (f"step {self.step}: eval MLM loss {result['mlm_loss']:.4f}, MLM accuracy "
                   f"{result['mlm_accuracy']:.3f}" + (f", {self.sentence_task.upper()} accuracy {result[accuracy]:.3f}"
                                                      if accuracy in result else ""))
        if bar is not None:
            bar.write(message)
        else:
            self._note(message)
        return result

    def _save(self) -> Path:
        """Checkpoint the state after ``self.step`` steps (rank 0 writes; everyone waits for it)."""
        path = self.checkpoints_dir / f"step-{self.step:07d}"
        if self.world.is_main:
            state = TrainingState(
                step=self.step, epoch=self.order.epoch, index=self.order.index, elapsed=self.elapsed,
                optimizer=self.optimizer.state_dict(), schedule=self.schedule.state_dict(), rng=capture_rng_states(),
                masking_generator=self.collator.generator.get_state(),
                data_order_generator=self.order.epoch_start_state, extra=self._checkpoint_extra())
            path = save_checkpoint(self.checkpoints_dir, self.model, state)
            prune_checkpoints(self.checkpoints_dir, self.cfg.keep_last)
        self.world.barrier()
        return path

    def _export_final(self) -> Path:
        """``RUN/final``: save_pretrained + the data's tokenizer, swapped in atomically. The tokenizer is saved as the
        model's family (a DistilBERT's says DistilBertTokenizer: transformers then gives it no token_type_ids)."""
        final = self.out / "final"
        if self.world.is_main:
            def fill(tmp: Path) -> None:
                self.model.save_pretrained(tmp)
                self.tokenizer.save_pretrained(tmp)

            replace_folder_atomically(final, fill)
            peak = peak_rss_gb()
            memory = f", peak memory {peak:.2f} GB" if peak is not None else ""
            self._note(f"done: {self.step} steps{memory}; model and tokenizer in {final}")
        self.world.barrier()
        return final
