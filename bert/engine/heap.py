"""Keep freed memory in the process for the next step, instead of giving it back to the kernel and faulting it in
again (glibc on Linux).

A training step allocates and frees the same large tensors every time: activations, their gradients, the [M, V]
logits of the MLM head (2,048 × 8,192 in bfloat16, 34 MB, for bert-mini at 50% masking). glibc's ``malloc`` hands
the top of its heap back to the kernel when more than a small threshold of it is free, and serves blocks over its
mmap threshold (at most 32 MB) with fresh ``mmap`` calls. Either way the next step touches new pages, and the
kernel zero-fills every 4 KB of them on first touch. Measured on bert-mini (batch 32 × 128, bfloat16, 2 cores of an
AMX Xeon; ``scripts/bench_heap.py``): about 16,000 page faults and 27 ms of kernel time a step with glibc's defaults,
700 and 2 ms with this setting, 1.07× the tokens/s (docs/experiments/2026-12-08-step.md).

With ``M_TOP_PAD`` set, every time the heap grows it grows by a further 1 GB of address space, and when memory is
freed that much stays mapped: the next step reuses pages it already touched, and a block too big for the free lists
(even one over the mmap threshold, like those logits) comes from that room at the top before malloc considers
``mmap``. Only pages the process has touched are resident, so the peak RSS stays what the step needs (tested).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3  # mallopt's parameter numbers (malloc.h)
TOP_PAD_BYTES = 1 << 30
MMAP_THRESHOLD_BYTES = 32 << 20  # the largest glibc accepts on 64-bit


def keep_freed_memory(pad_bytes: int = TOP_PAD_BYTES) -> bool:
    """Set glibc's ``M_TOP_PAD`` to ``pad_bytes`` and its mmap threshold to 32 MB for this process (setting one
    turns off glibc's own adjustment of the other, which would leave the threshold at 128 KB); True if they were set
    (False where the C library is not glibc: macOS, Windows, musl)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD_BYTES))
                and libc.mallopt(M_TOP_PAD, ctypes.c_int(pad_bytes)))
