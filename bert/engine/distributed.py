"""Multi-process data-parallel training (torchrun), and the single-process case as a world of one.

``torchrun --nproc_per_node N -m bert pretrain ...`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; :func:`setup` then picks each process's device (``--device``, see :func:`bert.devices.pick_device`: with
``auto`` or ``cuda`` the GPU of its local rank) and joins the process group (NCCL on CUDA, Gloo otherwise). Rank 0
alone logs, evaluates, plots and checkpoints; the others only train.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bert.devices import pick_device
from bert.engine.heap import keep_freed_memory
from bert.errors import BertError
from bert.precision import native_bf16


@dataclass
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")  # noqa: B008 - an immutable default
    owns_group: bool = False  # True when setup() created the process group (and teardown() must destroy it)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def native_bf16(self) -> bool:
        """Whether bfloat16 runs in hardware here: a CPU needs AVX512-BF16 or AMX (without them, oneDNN emulates
        bfloat16 and autocast trains many times slower than float32); a CUDA GPU compute capability 8.0 or more
        (A100, H100, RTX 30xx: a T4 or V100 emulates it); Apple's mps trains in float32 here (see
        :func:`bert.engine.mixed_precision.check_training_precision`)."""
        if self.device.type == "cuda":
            return torch.cuda.get_device_capability(self.device) >= (8, 0)
        return self.device.type == "cpu" and native_bf16()

    @property
    def device_setting(self) -> str:
        """The ``--device`` value that picks this device again (RUN/settings.json records it): ``cuda:1``, ``cpu``;
        under torchrun the type alone (``cuda``), as each process takes the GPU of its own local rank."""
        return self.device.type if self.distributed else str(self.device)

    def synchronize(self) -> None:
        """Wait until the device has run the work queued on it (a GPU runs kernels after the calls return)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes (in place; a no-op in a single process)."""
        if self.distributed:
            moved = tensor.to(self.device)
            dist.all_reduce(moved)
            tensor.copy_(moved.to(tensor.device))
        return tensor

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's value of ``tensor`` everywhere."""
        if self.distributed:
            moved = tensor.to(self.device)
            dist.broadcast(moved, src=0)
            tensor.copy_(moved.to(tensor.device))
        return tensor

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def setup(device: str = "auto") -> World:
    """Read the torchrun environment, pick this process's ``device`` (a ``--device`` value) and join the process
    group; a plain run gets a world of one. BertError for a device this machine lacks, or one GPU named for all
    the processes of a torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    chosen = pick_device(device, local_rank)
    if world_size > 1 and chosen.type == "cuda" and ":" in device:
        raise BertError(f"--device {device} under torchrun: each process takes the GPU of its local rank; use "
                        "--device cuda (or auto)")
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
        torch.cuda.reset_peak_memory_stats(chosen)  # the run's peak, for its last note and metrics.json
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", rank=rank, world_size=world_size)
        owns = True
    return World(rank, world_size, local_rank, local_world_size, chosen, owns)


def teardown(world: World) -> None:
    """Destroy the process group setup() created.

    Whatever still refers to the group (a DDP wrapper inside a reference cycle) is collected first: a Gloo group
    that outlives destroy_process_group() is freed during interpreter shutdown instead, where its worker threads
    can abort the process ("terminate called without an active exception") after training finished.
    """
    if world.owns_group and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def set_threads(world: World, threads: int | None = None) -> int:
    """CPU threads for this process: ``threads`` if given, else the machine's cores shared among the local
    processes (torch's default would give every process all cores and oversubscribe them).

    Also flushes denormal floats to zero: Adam's moment estimates of embedding rows that receive no gradient decay
    geometrically into the denormal range after a few hundred steps, and CPU arithmetic on denormals is several
    times slower; values below 1e-38 make no difference to the update. And keeps freed memory for the next step
    (:func:`~bert.engine.heap.keep_freed_memory`: faulting pages in again cost a small BERT 4–7% of its tokens/s).
    """
    torch.set_flush_denormal(True)
    keep_freed_memory()
    if threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores // world.local_world_size)
    torch.set_num_threads(threads)
    return threads
