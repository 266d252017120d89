"""Pretraining BERT: ``pretrain(PretrainConfig(...))``, the API behind ``bert pretrain``, and knowledge
distillation: ``distill(DistillConfig(...))``, behind ``bert distill``.

Modules, one idea each: :mod:`~bert.train.config` (settings), :mod:`~bert.train.loss` (masked-only MLM loss),
:mod:`~bert.train.optim` (AdamW groups, LAMB), :mod:`~bert.train.schedule` (warmup + linear decay),
:mod:`~bert.train.batches` (data order, per-process masked batches), :mod:`~bert.train.checkpointing` (atomic,
resumable checkpoints), :mod:`~bert.train.metrics` (metrics.jsonl, curves.png), :mod:`~bert.train.distributed`
(torchrun/DDP), :mod:`~bert.train.loop` (the loop itself) and :mod:`~bert.train.distill` (a teacher's loss
on the same loop).
"""

from bert.train.config import PretrainConfig
from bert.train.distill import DistillConfig, distill
from bert.train.loop import pretrain

__all__ = ["DistillConfig", "PretrainConfig", "distill", "pretrain"]
