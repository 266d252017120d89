"""Multi-process data-parallel training (torchrun), and the single-process case as a world of one.

``torchrun --nproc_per_node N -m bert pretrain ...`` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; :func:`setup` then joins the process group (NCCL on CUDA, Gloo on CPU). Rank 0 alone logs,
evaluates, plots and checkpoints; the others only train.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

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
        bfloat16 and autocast trains many times slower than float32); on CUDA, torch's own check."""
        if self.device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return native_bf16()

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


def setup() -> World:
    """Read the torchrun environment and join the process group; a plain run gets a world of one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
        owns = True
    return World(rank, world_size, local_rank, local_world_size, device, owns)


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
    times slower; values below 1e-38 make no difference to the update.
    """
    torch.set_flush_denormal(True)
    if threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = max(1, cores // world.local_world_size)
    torch.set_num_threads(threads)
    return threads
