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
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from bert.checkpoint import check_writable_directory
from bert.compile import compile_for_training
from bert.config import BertConfig
from bert.data.dataset import PretrainingDataset
from bert.data.masking import MaskingCollator
from bert.data.prepare import load_meta
from bert.errors import BertError
from bert.heads import IGNORE_INDEX, BertForPreTraining
from bert.tokenizer import BertTokenizer
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
from bert.train.loss import PretrainingObjective, summarize
from bert.train.metrics import MetricsLog, peak_rss_gb, plot_curves
from bert.train.optim import build_optimizer
from bert.train.schedule import WarmupLinearSchedule, estimate_total_steps, resolve_warmup

PROBE_PASSES = 3  # forward+backward passes timed to estimate steps from --time-budget (the fastest counts)


def pretrain(config: PretrainConfig) -> Path:
    """Pretrain a BertForPreTraining as ``config`` says; returns ``RUN/final`` (model + tokenizer files).

    Under torchrun every process calls this; the returned path is the same on all of them.
    """
    config.validate()
    world = setup()
    try:
        return Trainer(config, world).run()
    except OSError as error:  # e.g. the disk filled up while writing metrics.jsonl or curves.png
        where = f"{error.filename}: " if error.filename else ""
        latest = latest_checkpoint(Path(config.out) / "checkpoints")
        kept = f"the latest complete checkpoint is {latest}" if latest else "no checkpoint was saved yet"
        raise BertError(f"{where}{error.strerror or error}; training stopped and {kept}. Fix that, then continue "
                        "with --resume") from None
    finally:
        teardown(world)


def build_model_config(spec: str, vocab_size: int, pad_token_id: int,
                       overrides: dict[str, Any] | None = None) -> BertConfig:
    """A preset name or a config.json path, with the data's vocabulary size."""
    fields = {"vocab_size": vocab_size, "pad_token_id": pad_token_id}
    if spec.endswith(".json") or os.sep in spec or Path(spec).is_file():
        return BertConfig.from_json_file(spec, **fields, **(overrides or {}))
    return dataclasses.replace(BertConfig.preset(spec, **fields), **(overrides or {}))


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
    """Holds the state of one run; :meth:`run` trains. Use :func:`pretrain` rather than this class."""

    def __init__(self, config: PretrainConfig, world: World) -> None:
        self.cfg = config
        self.world = world
        self.data_dir = Path(config.data)
        self.out = Path(config.out)
        self.checkpoints_dir = self.out / "checkpoints"
        set_threads(world, config.threads)

        meta = load_meta(self.data_dir)
        self.tokenizer_dir = self.data_dir / "tokenizer"
        self.tokenizer = BertTokenizer.from_pretrained(self.tokenizer_dir)
        self.train_data = PretrainingDataset(self.data_dir / "train")
        eval_dir = self.data_dir / "eval"
        self.eval_data = PretrainingDataset(eval_dir) if (eval_dir / "input_ids.npy").is_file() else None
        if self.eval_data is not None and len(self.eval_data) == 0:
            self.eval_data = None
        self.seq_len = self.train_data.max_seq_len
        self.meta = meta
        data_objective = meta.get("objective", "mlm+nsp")
        if config.objective == "mlm+nsp" and data_objective == "mlm":
            raise BertError(f"{self.data_dir} holds MLM-only data (no next-sentence labels); train it with "
                            "--objective mlm, or prepare sentence pairs with bert prepare --objective mlm+nsp")
        self.nsp = (config.objective or data_objective) == "mlm+nsp"
        self.init: InitCheckpoint | None = None
        init_state = None
        if config.init_from is not None:  # checked before anything is written
            self.init = InitCheckpoint.resolve(config.init_from, config.model_overrides)
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

        collator_args = {"whole_word_masking": config.whole_word_masking, "mlm_probability": config.mlm_probability,
                         "max_predictions_per_seq": config.max_predictions_per_seq}
        self.collator = MaskingCollator.from_tokenizer(self.tokenizer, seed=config.seed + 1, **collator_args)
        self.eval_collator = eval_collator(self.tokenizer, self.seq_len, config.whole_word_masking)

        wanted = round(config.mlm_probability * (self.seq_len - 3))
        if config.max_predictions_per_seq is not None and config.max_predictions_per_seq < wanted:
            self._note(f"--max-predictions-per-seq {config.max_predictions_per_seq} caps the masking: a full "
                       f"{self.seq_len}-token sequence masks {config.max_predictions_per_seq} tokens, not the "
                       f"{wanted} that a masking probability of {config.mlm_probability} asks for")

        if self.init is not None:
            self.model_config = self.init.config
        else:
            self.model_config = build_model_config(config.config or "mini", self.collator.vocab_size,
                                                   self.tokenizer.pad_token_id, config.model_overrides)
        if self.model_config.max_position_embeddings < self.seq_len:
            raise BertError(f"the data has sequences of {self.seq_len} tokens but the model only "
                            f"{self.model_config.max_position_embeddings} positions")
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        self.model = BertForPreTraining(self.model_config)
        if self.init is not None and init_state is not None:
            note = fresh_heads_note(self.init.load_into(self.model, init_state))
            del init_state
            self._note(f"continuing pretraining from {self.init.folder}" + (f"; {note}" if note else ""))
        if not self.nsp:  # MLM only: the pooler and NSP layer get no gradient; leave them as they are
            for parameter in [*self.model.bert.pooler.parameters(), *self.model.cls.seq_relationship.parameters()]:
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

        self.objective = PretrainingObjective(self.model, nsp=self.nsp)
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

    def _resume(self) -> None:
        path = latest_checkpoint(self.checkpoints_dir)
        if path is None:
            self._note(f"--resume: no checkpoint in {self.checkpoints_dir}; starting from scratch")
            if self.metrics is not None:
                self.metrics.truncate_after(-1)
            return
        state = load_checkpoint(path, self.model)
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

    def _note(self, message: str) -> None:
        if self.world.is_main:
            print(f"bert pretrain: {message}", file=sys.stderr, flush=True)

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

            bar = tqdm(total=max_steps, initial=self.step, desc="pretrain", unit="step", dynamic_ncols=True)
        window = torch.zeros(6, dtype=torch.float64)
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
                        self.metrics.write({"kind": "train", "step": self.step, **summarize(window), "lr": lr,
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
            self.metrics.write({"kind": "train", "step": self.step, **summarize(window),
                                "lr": self.schedule.lr(self.step),
                                "tokens_per_second": window_tokens / max(window_seconds, 1e-9),
                                "elapsed": self.elapsed})
        if interrupted:
            path = self._save()
            if world.is_main:
                print(f"bert pretrain: interrupted at step {self.step}; saved {path}. To continue, run the same "
                      "command with --resume", file=sys.stderr, flush=True)
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
        totals = torch.tensor([float(sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in batches)),
                               float(sum(len(b["next_sentence_label"]) for b in batches))], dtype=torch.float64)
        world.all_reduce_sum(totals)
        mlm_total, nsp_total = max(totals[0].item(), 1.0), max(totals[1].item(), 1.0)

        lr = self.schedule.apply(self.optimizer, self.step + 1)
        stats = torch.zeros(6, dtype=torch.float64)
        for k, batch in enumerate(batches):
            last = k == len(batches) - 1
            sync = contextlib.nullcontext() if last or not world.distributed else self.wrapped.no_sync()
            with sync:
                with self._autocast():
                    out = self.wrapped(**batch, mlm_normalizer=mlm_total, nsp_normalizer=nsp_total)
                # DDP averages gradients over processes; the normalisers already divide by the global totals.
                (out.loss * world.world_size).backward()
            stats += out.stats().cpu()
        world.all_reduce_sum(stats)
        max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        summary = summarize(stats)
        if not all(math.isfinite(v) for v in (summary["mlm_loss"], summary.get("nsp_loss", 0.0), grad_norm)):
            last_good = latest_checkpoint(self.checkpoints_dir)
            kept = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was saved yet"
            raise BertError(
                f"the loss became non-finite at step {self.step + 1} (MLM loss {summary['mlm_loss']:.4g}, "
                f"NSP loss {summary.get('nsp_loss', 0.0):.4g}, gradient norm {grad_norm:.4g}); training stopped and "
                f"{kept}. Lower --lr or lengthen the warmup, then continue with --resume")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return stats, lr

    def _evaluate(self, bar: Any) -> dict[str, float] | None:
        """Held-out MLM loss/accuracy and NSP accuracy on the first eval_batches × batch_size eval examples,
        masked with a fixed seed (rank 0 only; see :mod:`bert.train.evaluate`)."""
        if not self.world.is_main or self.eval_data is None or self.cfg.eval_batches == 0:
            return None
        result = evaluate(self.objective, self.eval_data, self.eval_collator, self.cfg.batch_size,
                          self.cfg.eval_batches * self.cfg.batch_size, device=self.world.device,
                          autocast=self._autocast())
        event = {"kind": "eval", "step": self.step, **result, "elapsed": self.elapsed, "peak_rss_gb": peak_rss_gb()}
        assert self.metrics is not None
        self.metrics.write(event)
        plot_curves(self.metrics.events, self.out / "curves.png")
        message = (f"step {self.step}: eval MLM loss {result['mlm_loss']:.4f}, MLM accuracy "
                   f"{result['mlm_accuracy']:.3f}" + (f", NSP accuracy {result['nsp_accuracy']:.3f}"
                                                      if "nsp_accuracy" in result else ""))
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
                data_order_generator=self.order.epoch_start_state)
            path = save_checkpoint(self.checkpoints_dir, self.model, state)
            prune_checkpoints(self.checkpoints_dir, self.cfg.keep_last)
        self.world.barrier()
        return path

    def _export_final(self) -> Path:
        """``RUN/final``: save_pretrained + the data's tokenizer files, swapped in atomically."""
        final = self.out / "final"
        if self.world.is_main:
            tmp = self.out / f".tmp-final-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            self.model.save_pretrained(tmp)
            for file in self.tokenizer_dir.iterdir():
                if file.is_file():
                    shutil.copy2(file, tmp / file.name)
            if final.exists():
                old = self.out / f".old-final-{os.getpid()}"
                os.rename(final, old)
                os.rename(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, final)
            peak = peak_rss_gb()
            memory = f", peak memory {peak:.2f} GB" if peak is not None else ""
            self._note(f"done: {self.step} steps{memory}; model and tokenizer in {final}")
        self.world.barrier()
        return final
