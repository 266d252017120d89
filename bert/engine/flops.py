"""How close a training run comes to the machine: model FLOPs per second and their share of the machine's measured
matmul peak in the run's precision.

A transformer's step is almost all matrix multiplies, so the share of the peak that a run reaches says how much of
its time goes elsewhere (element-wise passes, the optimizer, casts, data, Python). The peak is measured once at the
start (:func:`matmul_peak`: a square matmul in float32, or bfloat16 under ``--bf16``, on the run's threads); the
model's FLOPs are counted, not measured (:func:`training_flops_per_token`), as in the PaLM/MFU convention: a
multiply-add is 2 FLOPs and a training step 3× the forward (the backward computes two products per forward one).
"""

from __future__ import annotations

import time

import torch

from bert.config import BertConfig


def matmul_peak(dtype: torch.dtype = torch.float32, size: int = 1024, seconds: float = 0.4) -> float:
    """FLOP/s of the fastest of repeated [size, size] × [size, size] matmuls in ``dtype`` on the CPU threads torch
    uses now (the first calls warm up and are dropped)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    for _ in range(2):
        torch.mm(a, b)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def training_flops_per_token(config: BertConfig, seq_len: int, predictions_per_token: float) -> float:
    """Model FLOPs of one training step per input token of a BERT-shaped encoder and its MLM head: per layer the
    four H×H projections and the two H×I feed-forward ones (2 FLOPs per multiply-add), attention's scores and
    weighted sum over ``seq_len`` keys (2·2·T·H), and the MLM head's transform and decoder on the
    ``predictions_per_token`` share of tokens it scores (2·(H² + H·V)); × 3 for forward + backward."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
    layer = 2 * (4 * h * h + 2 * h * i) + 4 * seq_len * h
    head = 2 * (h * h + h * v) * predictions_per_token
    return 3.0 * (config.num_hidden_layers * layer + head)
