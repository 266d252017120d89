"""Pretraining BERT: ``pretrain(PretrainConfig(...))``, the API behind ``bert pretrain``, and knowledge
distillation: ``distill(DistillConfig(...))``, behind ``bert distill`` — two tasks of the training engine
(:mod:`bert.engine`).

Modules, one idea each: :mod:`~bert.pretraining.config` (settings), :mod:`~bert.pretraining.model_choice` (which
model, on which data), :mod:`~bert.pretraining.init_from` (starting from a checkpoint), :mod:`~bert.pretraining.loss`
(masked-only MLM loss), :mod:`~bert.pretraining.batches` (data order, per-process masked batches),
:mod:`~bert.pretraining.evaluate` (held-out MLM), :mod:`~bert.pretraining.task` (the pretraining task) and
:mod:`~bert.pretraining.distill` (a teacher's loss on it).
"""

from bert.pretraining.config import PretrainConfig
from bert.pretraining.distill import DistillConfig, distill
from bert.pretraining.task import pretrain

__all__ = ["DistillConfig", "PretrainConfig", "distill", "pretrain"]
