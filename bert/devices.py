"""Which device a command runs on: ``--device auto|cpu|cuda|cuda:N|mps`` and ``device=`` in the Python API.

``auto`` takes CUDA when torch sees a GPU, else Apple's ``mps`` when present, else the CPU. Asking for a device this
machine lacks is a one-line :class:`~bert.errors.BertError`, never torch's traceback.
"""

from __future__ import annotations

import torch

from bert.errors import BertError

DEVICE_HELP = "auto (CUDA, then Apple mps, then the CPU), cpu, cuda, cuda:N or mps (default: auto)"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(spec: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """The torch device ``spec`` names; ``auto`` (or None) picks the best one present.

    ``local_rank`` chooses the GPU of a torchrun process when ``spec`` is ``auto`` or a bare ``cuda``.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise BertError(f"unknown device {spec!r}: use {DEVICE_HELP}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BertError(f"--device {spec}: torch sees no CUDA GPU here (torch {torch.__version__}); "
                            "use --device cpu, or install a CUDA build of torch")
        count = torch.cuda.device_count()
        index = local_rank % count if device.index is None else device.index
        if index >= count:
            raise BertError(f"--device {spec}: this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise BertError(f"--device {spec}: Apple's mps backend is not available here; use --device cpu")
        return device
    raise BertError(f"unknown device {spec!r}: use {DEVICE_HELP}")


def device_note(device: torch.device, precision: str) -> str:
    """The one line a command prints about where and how it runs, e.g. ``device cuda:0 (NVIDIA T4), float16``."""
    name = ""
    if device.type == "cuda":
        name = f" ({torch.cuda.get_device_name(device)})"
    return f"device {device}{name}, {precision}"
