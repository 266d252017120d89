"""Optional speed-ups with ``torch.compile``: for inference (with Inductor's weight freezing) and for training steps.

The eager model spends most of its time in matrix multiplies (MKL), but every Linear first copies its bias into
the output, and the GELU, residual adds and LayerNorms each take a pass over memory. Compiled with *freezing*,
the weights become constants of the graph: Inductor pre-packs them for oneDNN GEMMs with the bias and GELU fused
in, and fuses the element-wise work around them. Measured on bert-base, 8 × 128 tokens, 2 CPU cores: about 14%
more tokens/s than eager, outputs equal to float32 round-off (``scripts/bench_performance.py``). The first call
compiles (about 20 s for bert-base); a new input shape compiles again until torch switches to dynamic shapes.

    model = compile_for_inference(BertModel.from_pretrained("bert-base-uncased"))
    with torch.inference_mode():
        out = model(**batch)

For training (``bert pretrain --compile``), the forward *and* backward go through Inductor: it fuses the element-wise
work around the GEMMs (dropout with its own counter-based random numbers, GELU, residual adds, LayerNorm) and, when
it splits forward from backward, recomputes cheap element-wise results instead of storing them, so less memory is
held between the two. It pays off where that element-wise work is a large share (bert-base: see README,
"Performance"); on bert-mini with a 30k vocabulary the step is dominated by the embedding and decoder and gains
nothing. Dropout draws different random numbers than eager mode, so a compiled run is not bit-identical to an eager
one.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

Module = TypeVar("Module", bound=nn.Module)


def compile_for_inference(model: Module) -> Module:
    """The model in eval mode, compiled with frozen weights. Call it under ``torch.inference_mode()`` (or
    ``no_grad``) only, and do not change its weights afterwards: they are baked into the compiled code. (Freezing
    is an Inductor setting for the whole process: later ``torch.compile`` calls in it freeze too.)"""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    return torch.compile(model.eval())


def compile_for_training(module: Module) -> Module:
    """``torch.compile(module)`` for training: call it in train mode, then backward and optimizer steps as usual.
    The first call compiles (about a minute for bert-base on 2 cores); the weights stay ordinary parameters."""
    # Dynamo treats an int attribute of a module as a constant by default, so a new value compiles that code again
    # (until a limit of 8, with a warning in the run's output). Pretraining's MLM head scores as many rows as the
    # masking rate needs (64 → 32 a sequence over a 50% → 25% schedule, bert.pretraining.loss), an int that moves
    # every few steps: made symbolic, it compiles once more and then never again.
    torch._dynamo.config.allow_unspec_int_on_nn_module = True
    return torch.compile(module)
