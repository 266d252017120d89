"""Pretraining BERT: ``pretrain(PretrainConfig(...))``, the API behind ``bert pretrain``, and knowledge
distillation: ``distill(DistillConfig(...))``, behind ``bert distill`` — two tasks of the training engine
(:mod:`bert.engine`).

Modules, one idea each: :mod:`~bert.train.config` (settings), :mod:`~bert.train.model_choice` (which model, on
which data), :mod:`~bert.train.init_from` (starting from a checkpoint), :mod:`~bert.train.loss` (masked-only MLM
loss), :mod:`~bert.train.batches` (data order, per-process masked batches), :mod:`~bert.train.evaluate` (held-out
MLM), :mod:`~bert.train.pretraining` (the pretraining task) and :mod:`~bert.train.distill` (a teacher's loss on it).
"""

from bert.train.config import PretrainConfig
from bert.train.distill import DistillConfig, distill
from bert.train.pretraining import pretrain

__all__ = ["DistillConfig", "PretrainConfig", "distill", "pretrain"]
