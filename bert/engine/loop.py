"""The training engine: one loop for every task (pretraining, distillation, classification, NER, QA).

One optimizer step (:meth:`Engine.train_step`):

1. the task gives this process's micro-batches of the next step and what each micro-batch's loss is divided by —
   totals over the whole global batch, summed over processes, so that accumulation and DDP give the gradient of the
   mean loss over the global batch whatever the split;
2. forward + backward per micro-batch in the run's precision (:mod:`~bert.engine.mixed_precision`; DDP synchronises
   the gradients on the last micro-batch only);
3. the stats are summed over processes, the gradients clipped; a non-finite loss or gradient norm stops the run with a
   :class:`~bert.errors.BertError` naming the step (the checkpoints already written are kept; under ``fp16`` an
   overflowed gradient only skips its update); the update.

After each step rank 0 logs (progress bar, ``metrics.jsonl``) and evaluates when due — every ``eval_every`` steps,
at the end of an epoch and when the run stops. With a ``main_metric`` the task's best model so far is kept in ``OUT``
and ``patience`` evaluations without a better one stop the run. Checkpoints (see :mod:`bert.engine.checkpointing`)
are written every ``save_every`` steps and when the run stops; ``resume`` continues from the latest, exactly: the
same batches, masks and dropout, so the run ends as the one that was never stopped.

The run stops at the schedule's end (``max_steps`` or the task's epochs), when ``time_budget`` runs out (rank 0's
clock; with a time budget and no ``max_steps``, the schedule's end is sized from a timed probe and re-fit after every
evaluation, so that the learning rate reaches 0 when the time does), after ``patience``, or on Ctrl-C / SIGTERM: the
step (and its evaluation) finishes, a checkpoint is written and the run stops; a second Ctrl-C stops at once. All
processes stop at the same step.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch.nn.parallel import DistributedDataParallel

from bert.atomic import copy_file_atomically, write_text_atomically
from bert.compile import compile_for_training
from bert.devices import device_note
from bert.engine.checkpointing import (
    TrainingState,
    capture_rng_states,
    check_free_space,
    checkpoint_bytes,
    latest_checkpoint,
    load_model_weights,
    prune_checkpoints,
    read_training_state,
    restore_rng_states,
    save_checkpoint,
)
from bert.engine.config import RunConfig
from bert.engine.distributed import World, setup, teardown
from bert.engine.flops import matmul_peak
from bert.engine.interrupt import interrupt_flag
from bert.engine.metrics import MetricsLog, peak_rss_gb
from bert.engine.mixed_precision import MixedPrecision, training_dtype
from bert.engine.schedule import WarmupLinearSchedule, estimate_total_steps
from bert.engine.task import Outcome, Task
from bert.engine.trackers import open_reporters, tracker_names
from bert.errors import BertError
from bert.plotting import plot_curves
from bert.settings import settings_dict

SETTINGS_FILE = "settings.json"  # in the run folder: every setting of the run, readable, rewritten at each start
PROBE_PASSES = 3  # forward+backward passes timed to size the schedule to --time-budget (the fastest counts)
BEST_FILE = "best.safetensors"  # in a checkpoint: the best model so far (a copy of OUT/model.safetensors)

T = TypeVar("T")


def run_task(make_task: Callable[[World], Task], config: RunConfig, out: str | Path) -> Any:
    """Join the processes (torchrun) or make a world of one on ``config.device``, build the task, train it; what the
    task's ``finish`` returns. A failed write (a full disk) becomes a one-line BertError naming the checkpoint that
    is kept."""
    world = setup(config.device)
    engine = None
    try:
        engine = Engine(make_task(world))
        return engine.run()
    except OSError as error:  # e.g. the disk filled up while writing metrics.jsonl or curves.png
        where = f"{error.filename}: " if error.filename else ""
        latest = latest_checkpoint(Path(out) / "checkpoints")
        kept = f"the latest complete checkpoint is {latest}" if latest else "no checkpoint was saved yet"
        raise BertError(f"{where}{error.strerror or error}; training stopped and {kept}. Fix that, then continue "
                        "with --resume") from None
    finally:
        if engine is not None and engine.metrics is not None:
            engine.metrics.close()  # the experiment trackers flush and close, however the run ended
        del engine  # its DDP wrapper holds the process group: free it before teardown destroys the group
        teardown(world)


def loss_label(key: str) -> str:
    """A metric's name as a message says it: ``mlm_loss`` → "MLM loss", ``soft_target_loss`` → "soft target loss"."""
    return " ".join(word.upper() if word in ("mlm", "nsp", "sop") else word for word in key.split("_"))


class Engine:
    """Trains a :class:`~bert.engine.task.Task`; :meth:`run` returns what the task's ``finish`` returns."""

    def __init__(self, task: Task) -> None:
        self.task, self.cfg, self.world = task, task.config, task.world
        self.out, self.checkpoints_dir = task.out, task.out / "checkpoints"
        world, model = self.world, task.model
        self.precision = MixedPrecision(world.device.type, training_dtype(self.cfg.fp16, self.cfg.bf16))
        if self.cfg.bf16 and not world.native_bf16:
            needs = " (AVX512-BF16 or AMX)" if world.device.type == "cpu" else ""
            task.note(f"--bf16: this {world.device.type.upper()} has no bfloat16 instructions{needs}, so autocast "
                      "emulates them and trains many times slower than float32 here; drop --bf16 on this machine")
        model.to(world.device).train()
        model.gradient_checkpointing_enable(self.cfg.gradient_checkpointing)
        self.optimizer = task.make_optimizer()
        if world.is_main and (task.checkpoint_at_end or self.cfg.save_every):
            # fine-tuning keeps one more weight-sized copy in a checkpoint: the best model
            check_free_space(self.out, checkpoint_bytes(model, 3 if task.main_metric else 2))
        self.step, self.elapsed = 0, 0.0
        self.history: list[dict[str, Any]] = []  # every evaluation: step, position, metrics
        self.best_record: dict[str, Any] | None = None
        self.evals_since_best = 0
        self.window = torch.zeros(len(task.stat_names) + 1, dtype=torch.float64)  # stats + tokens since the last log
        self.window_seconds, self.window_steps = 0.0, 0
        self.planned = task.planned_steps()
        self.schedule: WarmupLinearSchedule | None = (task.make_schedule(self.planned) if self.planned is not None
                                                      else None)
        # With a time budget and no --max-steps the schedule's end follows the clock (see the module docstring).
        self.replanning = self.cfg.time_budget is not None and self.cfg.max_steps is None
        self.metrics = MetricsLog(self.out / "metrics.jsonl") if world.is_main else None
        if world.is_main:  # the settings this run trains with, the recipe's included (an --args-file for another)
            settings = {**settings_dict(self.cfg), "device": world.device_setting}
            write_text_atomically(self.out / SETTINGS_FILE, json.dumps(settings, indent=1) + "\n")
        self.peak = None  # the CPU's matmul peak (the FLOP share is measured against a CPU's only)
        if task.flops_per_token() is not None and world.is_main and world.device.type == "cpu":
            self.peak = matmul_peak(self.precision.dtype)  # once, on the run's threads
        self.rng_to_restore: dict[str, Any] | None = None
        self.resumed_from = self._resume() if self.cfg.resume else None
        if self.resumed_from is None and self.metrics is not None:
            self.metrics.truncate_after(-1)
        self.objective = task.objective()
        if self.resumed_from is None and self.replanning:  # before DDP wraps the model: the probe must not sync
            self.schedule = task.make_schedule(min(self.planned or math.inf, self._estimate_steps()))
        assert self.schedule is not None
        self.wrapped: torch.nn.Module = self.objective
        if world.distributed:
            device_ids = [world.device.index] if world.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(self.objective, device_ids=device_ids)
        if self.cfg.compile:
            self.wrapped = compile_for_training(self.wrapped)
        if self.metrics is not None:  # last: a tracker's run is opened only once nothing can refuse this one
            self.metrics.reporters = open_reporters(
                tracker_names(self.cfg.report_to), self.out, kept_step=self.step if self.resumed_from else -1,
                settings=json.loads((self.out / SETTINGS_FILE).read_text(encoding="utf-8")),
                wandb_project=self.cfg.wandb_project, note=task.note)

    # ---- resume ------------------------------------------------------------------------------------------------
    def _resume(self) -> Path | None:
        """Continue from the latest complete checkpoint (its path), or None when there is none."""
        path = latest_checkpoint(self.checkpoints_dir)
        if path is None:
            self.task.note(f"--resume: no checkpoint in {self.checkpoints_dir}; starting from scratch")
            return None
        state = read_training_state(path)
        self.task.check_resumable(state.settings, path)  # before the weights: other settings may not fit the model
        load_model_weights(path, self.task.model)
        self.optimizer.load_state_dict(state.optimizer)
        self.precision.load_state_dict(state.scaler)
        self.schedule = WarmupLinearSchedule.from_state_dict(state.schedule)
        if self.cfg.max_steps is not None and self.planned != self.schedule.total_steps:
            self.schedule = self.task.make_schedule(self.planned)  # the user changed --max-steps: follow it
        self.task.load_data_state(state.data)
        self.step, self.elapsed = state.step, state.elapsed
        progress = state.progress
        self.history, self.best_record = progress["history"], progress["best_record"]
        self.evals_since_best = progress["evals_since_best"]
        self.window = progress["window"].clone()
        self.window_seconds, self.window_steps = progress["window_seconds"], progress["window_steps"]
        if self.world.is_main and (path / BEST_FILE).is_file():  # OUT may hold a later model: put the best back
            for source, target in ((path / BEST_FILE, "model.safetensors"), (path / "config.json", "config.json")):
                copy_file_atomically(source, self.out / target)
            self.task.tokenizer.save_pretrained(self.out)
        self.rng_to_restore = state.rng  # restored just before the first step, after everything that draws
        if self.metrics is not None:
            self.metrics.truncate_after(self.step)
        self.task.resumed(path, self.step, self.schedule.total_steps)
        return path

    def _save(self) -> Path:
        """Checkpoint the state after ``self.step`` steps (rank 0 writes; everyone waits for it)."""
        path = self.checkpoints_dir / f"step-{self.step:07d}"
        if self.world.is_main:
            progress = {"history": self.history, "best_record": self.best_record,
                        "evals_since_best": self.evals_since_best, "window": self.window,
                        "window_seconds": self.window_seconds, "window_steps": self.window_steps}
            state = TrainingState(step=self.step, elapsed=self.elapsed, optimizer=self.optimizer.state_dict(),
                                  schedule=self.schedule.state_dict(), rng=capture_rng_states(),
                                  data=self.task.data_state(), progress=progress, settings=self.task.settings(),
                                  scaler=self.precision.state_dict())
            best = {BEST_FILE: self.out / "model.safetensors"} if self.best_record is not None else None
            path = save_checkpoint(self.checkpoints_dir, self.task.model, state, best)
            prune_checkpoints(self.checkpoints_dir, self.cfg.keep_last)
        self.world.barrier()
        return path

    # ---- the time budget ---------------------------------------------------------------------------------------
    def _estimate_steps(self) -> int:
        """Time a few forward+backward passes (no update, RNG restored) to fit the schedule in --time-budget."""
        batch = {key: value.to(self.world.device) for key, value in self.task.probe_batch().items()}
        normalizers = self.task.normalizers([batch])[0]
        rng = torch.get_rng_state()
        seconds = math.inf
        for _ in range(PROBE_PASSES):  # the fastest pass: the first ones pay for warm-up, others for a busy machine
            start = time.perf_counter()
            with self.precision.autocast():
                loss, _ = self.task.forward(self.objective, batch, normalizers)
            loss.backward()
            self.world.synchronize()  # a GPU runs the pass after the calls return: wait for it
            seconds = min(seconds, time.perf_counter() - start)
        self.optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(rng)
        per_step = seconds * self.cfg.grad_accum
        budget = self.cfg.time_budget * 60 - self.elapsed
        steps = estimate_total_steps(budget, per_step, self.task.eval_seconds(seconds), self.cfg.eval_every)
        total = int(self.world.broadcast(torch.tensor([float(steps)])).item())
        self.task.note(f"--time-budget {self.cfg.time_budget:g} min: about {per_step:.3f} s per step, "
                       f"so the learning rate decays to 0 at step {min(total, self.planned or total)}")
        return total

    def _replan(self, first_step: int, first_elapsed: float, budget: float) -> None:
        """After an evaluation: re-fit the schedule's end to the budget from the measured seconds per step so far
        (steps, evaluations, checkpoints, everything), never past the planned end (the epochs)."""
        seconds_per_step = (self.elapsed - first_elapsed) / max(self.step - first_step, 1)
        left = estimate_total_steps(max(budget - self.elapsed, 0.0), seconds_per_step)
        total = int(self.world.broadcast(torch.tensor([float(self.step + left)])).item())
        self.schedule.total_steps = min(max(total, self.step + 1), self.planned or math.inf)

    # ---- one step ----------------------------------------------------------------------------------------------
    def train_step(self) -> tuple[torch.Tensor, float, bool]:
        """One optimizer step: the global batch's summed stats (+ its tokens, last), the learning rate it used and
        whether it ended an epoch."""
        world, task = self.world, self.task
        batches, epoch_end = task.next_step(min(self.step / self.schedule.total_steps, 1.0))
        batches = [{key: value.to(world.device, non_blocking=True) for key, value in b.items()} for b in batches]
        normalizers = task.normalizers(batches)
        lr = self.schedule.apply(self.optimizer, self.step + 1)
        stats = torch.zeros(len(task.stat_names) + 1, dtype=torch.float64)
        for k, batch in enumerate(batches):
            last = k == len(batches) - 1
            sync = contextlib.nullcontext() if last or not world.distributed else self.wrapped.no_sync()
            with sync:
                with self.precision.autocast():
                    loss, step_stats = task.forward(self.wrapped, batch, normalizers[k])
                # DDP averages gradients over processes; the normalisers already divide by the global totals.
                self.precision.backward(loss * world.world_size if world.distributed else loss)
            stats[:-1] += step_stats.cpu()
            stats[-1] += batch["input_ids"].numel()
        world.all_reduce_sum(stats)
        self.precision.unscale(self.optimizer)
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.task.model.parameters(), max_norm))
        summary = task.summarize(stats[:-1])
        # under float16 a gradient overflows now and then: the scaler skips that update (and lowers its scale)
        norm_ok = math.isfinite(grad_norm) or self.precision.skips_overflow
        if not norm_ok or not all(math.isfinite(v) for v in summary.values()):
            self._non_finite(summary, grad_norm)
        self.precision.step(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        return stats, lr, epoch_end

    def _non_finite(self, summary: dict[str, float], grad_norm: float) -> None:
        last_good = latest_checkpoint(self.checkpoints_dir)
        kept = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was saved yet"
        losses = ", ".join(f"{loss_label(key)} {value:.4g}" for key, value in summary.items() if key.endswith("loss"))
        raise BertError(f"the loss became non-finite at step {self.step + 1} ({losses}, gradient norm "
                        f"{grad_norm:.4g}); training stopped and {kept}. Lower --lr or lengthen the warmup, then "
                        "continue with --resume")

    # ---- logging and evaluation --------------------------------------------------------------------------------
    def _log(self, lr: float) -> None:
        """A train line: the steps since the last one, averaged."""
        if self.metrics is not None and self.window_steps:
            tokens_per_second = float(self.window[-1]) / max(self.window_seconds, 1e-9)
            line = {"kind": "train", "step": self.step, **self.task.position(), **self.task.summarize(self.window[:-1]),
                    "lr": lr, "tokens_per_second": tokens_per_second, "elapsed": self.elapsed}
            if (flops_per_token := self.task.flops_per_token()) is not None:  # the last step's count
                line["model_flops_per_second"] = tokens_per_second * flops_per_token
                if self.peak is not None:  # the share of the matmul peak, as a fraction
                    line["flop_share"] = line["model_flops_per_second"] / self.peak
            self.metrics.write(line)
        self.window.zero_()
        self.window_seconds, self.window_steps = 0.0, 0

    def _evaluate(self, bar: Any) -> None:
        """Evaluate (rank 0), log the line, redraw curves.png, keep the model if it is the best so far."""
        if not self.world.is_main:
            return
        self.objective.eval()
        with torch.no_grad(), self.precision.autocast():
            metrics = self.task.evaluate()
        self.objective.train()
        if metrics is None:
            return
        record = {"step": self.step, **self.task.position(), **metrics}
        self.history.append(record)
        assert self.metrics is not None
        self.metrics.write({"kind": "eval", **{k: v for k, v in record.items() if not isinstance(v, dict)},
                            "elapsed": self.elapsed, "peak_rss_gb": peak_rss_gb()})
        improved = self._keep_if_best(record)
        message = self.task.eval_message(self.step, metrics, improved and len(self.history) > 1)
        bar.write(message, file=sys.stderr) if bar is not None else self.task.note(message)
        self._plot()

    def _keep_if_best(self, record: dict[str, Any]) -> bool:
        metric = self.task.main_metric
        if metric is None:
            return False
        if metric not in record:
            raise BertError(f"the evaluation reports no {metric!r} (it reports: {', '.join(record)})")
        best = self.best_record[metric] if self.best_record is not None else None
        improved = best is None or (record[metric] < best if self.task.lower_is_better else record[metric] > best)
        if improved:
            self.best_record, self.evals_since_best = record, 0
            self.task.save_model(self.out)
        else:
            self.evals_since_best += 1
        return improved

    def _plot(self) -> None:
        if self.metrics is not None:
            best_step = self.best_record["step"] if self.best_record is not None else None
            plot_curves(self.metrics.events, self.out / "curves.png", self.task.panels(self.metrics.events, best_step))

    def _flops_note(self) -> None:
        """The run's median model FLOP/s and their share of the matmul peak (the train lines' medians)."""
        if self.metrics is None or self.peak is None:
            return
        lines = [e for e in self.metrics.events if "flop_share" in e]
        if lines:
            median = statistics.median(e["flop_share"] for e in lines)
            per_token = statistics.median(e["model_flops_per_second"] / e["tokens_per_second"] for e in lines)
            self.task.note(f"model FLOP/s {median * self.peak / 1e9:,.0f} G ({per_token / 1e6:.1f} MFLOP a "
                           f"token), {median:.0%} of this machine's matmul peak in "
                           f"{self.precision.dtype_name} on {torch.get_num_threads()} thread(s), "
                           f"{self.peak / 1e9:,.0f} G (median of {len(lines)} train lines)")

    def _out_of_patience(self) -> bool:
        return self.cfg.patience is not None and self.evals_since_best >= self.cfg.patience

    def _stop_reason(self, interrupted: bool, time_up: bool, out_of_patience: bool) -> str | None:
        """Why the run stops after this step, or None (the same on every process: the flags are reduced)."""
        if interrupted:
            return "interrupted"
        if self.cfg.max_steps is not None and self.step >= self.cfg.max_steps:
            return "max_steps"
        if self.step >= self.schedule.total_steps:
            refit = self.replanning and self.schedule.total_steps < (self.planned or math.inf)
            return "time_budget" if refit or self.planned is None else "epochs"
        if time_up:
            return "time_budget"
        if out_of_patience:
            self.task.note(f"no better {self.task.main_metric} in {self.cfg.patience} evaluations (best "
                           f"{self.best_record[self.task.main_metric]:.4f} at step {self.best_record['step']}): "
                           "stopping early" if self.best_record is not None else "out of patience: stopping early")
            return "patience"
        return None

    def _stop_together(self, interrupt: bool, budget: float) -> str | None:
        """Any process's Ctrl-C, rank 0's clock and rank 0's patience (it alone evaluates), agreed by all."""
        control = torch.tensor([float(interrupt), float(self.world.is_main and self.elapsed >= budget),
                                float(self.world.is_main and self._out_of_patience())])
        self.world.all_reduce_sum(control)
        return self._stop_reason(*(bool(value > 0) for value in control))

    # ---- the loop ----------------------------------------------------------------------------------------------
    def run(self) -> Any:
        """Train until the run stops (see the module docstring); then the task's ``finish``."""
        cfg, world, task = self.cfg, self.world, self.task
        budget = cfg.time_budget * 60 if cfg.time_budget is not None else math.inf
        if self.rng_to_restore is not None:
            restore_rng_states(self.rng_to_restore)
        task.note(device_note(world.device, self.precision.name))  # once nothing can refuse the run
        if self.step == 0 and (note := task.start_note()) is not None:
            task.note(note)
        if task.evaluate_at_start and self.step == 0:
            self._evaluate(None)
        bar = None
        if world.is_main and cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.schedule.total_steps, initial=self.step, desc=task.name, unit="step",
                       dynamic_ncols=True)
        # A resumed run may have nothing left to do (its flags are the checkpoint's, the same everywhere).
        stopped_by = self._stop_reason(False, self.elapsed >= budget, self._out_of_patience())
        checkpoint = latest_checkpoint(self.checkpoints_dir) if self.resumed_from is not None else None
        # where this session started: the clock, and the step and time for re-fitting the schedule
        self._session_start = (self.step, self.elapsed, time.perf_counter() - self.elapsed)
        aborted = False
        try:
            with interrupt_flag() as flag:
                while stopped_by is None:
                    stopped_by = self._one_step(bar, flag, budget)
                    if cfg.save_every and self.step % cfg.save_every == 0 or (
                            stopped_by is not None and (cfg.save_every or task.checkpoint_at_end)):
                        checkpoint = self._save()
        except KeyboardInterrupt:  # a second Ctrl-C (or one outside the main thread): stopped mid-step
            stopped_by, aborted = "interrupted", True
        finally:
            if bar is not None:
                bar.close()
        if not aborted:
            self._plot()
            self._flops_note()
        return task.finish(Outcome(stopped_by, stopped_by == "interrupted", aborted, checkpoint, self.best_record,
                                   self.history, self.step, self.schedule.total_steps, self.elapsed))

    def _one_step(self, bar: Any, flag: dict[str, bool], budget: float) -> str | None:
        """Train one step, log, evaluate when due; why the run stops now (None: it goes on)."""
        cfg, task = self.cfg, self.task
        step_start = time.perf_counter()
        stats, lr, epoch_end = self.train_step()
        seconds = time.perf_counter() - step_start
        self.step += 1
        self.elapsed = time.perf_counter() - self._session_start[2]
        self.window += stats
        self.window_seconds += seconds
        self.window_steps += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(**task.postfix(task.summarize(stats[:-1])), lr=f"{lr:.2e}",
                            tok_s=f"{float(stats[-1]) / seconds:,.0f}", refresh=False)
        if self.step % task.log_every == 0:
            self._log(lr)
        evaluated = bool(epoch_end or (cfg.eval_every and self.step % cfg.eval_every == 0))
        if evaluated:
            self._evaluate(bar)
            self.elapsed = time.perf_counter() - self._session_start[2]  # re-planning must count its seconds too
            if self.replanning and self.step < self.schedule.total_steps:
                self._replan(*self._session_start[:2], budget)
                if bar is not None:
                    bar.total = self.schedule.total_steps
        stopped_by = self._stop_together(flag["set"], budget)
        if stopped_by not in (None, "interrupted"):  # a checkpoint taken on Ctrl-C carries the log window instead
            self._log(lr)
            if not evaluated:
                self._evaluate(bar)  # the final evaluation
        return stopped_by
