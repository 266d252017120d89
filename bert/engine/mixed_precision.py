"""Mixed precision for training: the dtype the forward pass runs in under autocast, and float16's gradient scaler.

* float32 (the default): no autocast.
* ``--bf16``: bfloat16 autocast. bfloat16 keeps float32's exponent range, so gradients need no scaling.
* ``--fp16``: float16 autocast with a gradient scaler (``torch.amp.GradScaler``, as Hugging Face's ``--fp16`` and
  nanoGPT's ``dtype='float16'``). float16's range ends at 65504 and its smallest normal number is 6e-5, so small
  gradients would underflow to zero: the loss is multiplied by a scale (2¹⁶ at first) before backward, the gradients
  are divided by it again before clipping and the update, and a step whose gradients overflowed (inf or NaN) is
  skipped and the scale halved; after 2000 steps in a row without overflow the scale doubles. The scaler's state is
  part of every checkpoint, so ``--resume`` continues with the same scale.

Which precision a device may train in is :func:`check_training_precision`'s to say (the settings' ``validate`` asks it
before anything is loaded): ``--fp16`` on CUDA only (T4, V100 and older GPUs have float16 tensor cores but no
bfloat16). :class:`MixedPrecision` itself takes any device type, so the tests train in float16 on the CPU, where
torch's autocast and GradScaler run it too.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from bert.errors import BertError


class MixedPrecision:
    """How a training step computes on ``device_type`` ("cpu", "cuda", "mps") in ``dtype``: float32 (no autocast),
    bfloat16 or float16 (autocast; float16 with a gradient scaler)."""

    def __init__(self, device_type: str, dtype: torch.dtype = torch.float32) -> None:
        self.device_type, self.dtype = device_type, dtype
        self.scaler = torch.amp.GradScaler(device_type) if dtype == torch.float16 else None

    @property
    def dtype_name(self) -> str:
        """The dtype's name: float32, bfloat16 or float16."""
        return str(self.dtype).removeprefix("torch.")

    @property
    def name(self) -> str:
        """What the run's notice line says: "float32", "bfloat16 autocast", "float16 autocast + gradient scaler"."""
        if self.dtype == torch.float32:
            return "float32"
        return f"{self.dtype_name} autocast" + (" + gradient scaler" if self.scaler else "")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context a forward pass runs in (none for float32: not even a disabled autocast, which some device
        types of older torch refuse)."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (scaled first under float16)."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the scale (float16), so that clipping and the gradient norm see their true
        values; once per step, after the last backward."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    @property
    def skips_overflow(self) -> bool:
        """Whether an inf or NaN gradient is expected now and then (float16): the scaler skips that step."""
        return self.scaler is not None

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The update: ``optimizer.step()``, or under float16 the scaler's step (skipped when a gradient overflowed)
        and its new scale."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state for a checkpoint (scale, growth tracker; empty without a scaler)."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def training_dtype(fp16: bool, bf16: bool | None) -> torch.dtype:
    """The dtype ``--fp16`` / ``--bf16`` ask for (float32 without either)."""
    return torch.float16 if fp16 else torch.bfloat16 if bf16 else torch.float32


def check_training_precision(device: torch.device, fp16: bool, bf16: bool | None) -> None:
    """BertError when ``device`` cannot train with ``--fp16`` / ``--bf16``: float16 is for CUDA; Apple's mps trains
    in float32 here (its autocast lacks bfloat16 before torch 2.6, and this project has tested neither)."""
    if fp16 and device.type == "cpu":
        raise BertError("--fp16 is for CUDA GPUs (float16 autocast with a gradient scaler); on the CPU use --bf16 "
                        "(fast where the CPU has AVX512-BF16 or AMX) or float32")
    if (fp16 or bf16) and device.type == "mps":
        given = "--fp16" if fp16 else "--bf16"
        raise BertError(f"{given} on Apple mps: mixed precision is not offered there (older torch lacks bfloat16 "
                        f"autocast on mps, and this project has tested neither); drop {given} to train in float32")
