"""The training engine: one loop for every kind of training, and the contract a task fills in.

:mod:`~bert.engine.loop` (the :class:`~bert.engine.loop.Engine`: the step, schedule, logging, evaluation cadence, best
model and patience, time budget, Ctrl-C, checkpoints and exact resume, the device, bf16/fp16, compile, DDP) runs a
:class:`~bert.engine.task.Task` (:mod:`~bert.engine.task`: what is trained, its batches, loss, evaluation and files).
The tasks: pretraining and distillation (:mod:`bert.pretraining`), classification, NER and QA (:mod:`bert.finetune`).

Modules, one idea each: :mod:`~bert.engine.checkpointing` (atomic, resumable checkpoints),
:mod:`~bert.engine.distributed` (torchrun/DDP), :mod:`~bert.engine.interrupt` (Ctrl-C and SIGTERM),
:mod:`~bert.engine.metrics` (metrics.jsonl), :mod:`~bert.engine.mixed_precision` (bfloat16, float16 and its
gradient scaler), :mod:`~bert.engine.optim` (AdamW groups, LAMB),
:mod:`~bert.engine.schedule` (warmup + linear decay, sized to a time budget).
"""

from bert.engine.loop import Engine, run_task
from bert.engine.task import Outcome, Task

__all__ = ["Engine", "Outcome", "Task", "run_task"]
