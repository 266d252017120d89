"""Which examples each optimizer step reads, and how a process turns its share into a masked batch.

The training split is shuffled once per epoch by a dedicated ``torch.Generator`` (the *data-order* generator)
and consumed in *global batches* of ``batch_size × world_size × grad_accum`` examples; an incomplete last
global batch is dropped and a new epoch (a new permutation) begins. The position (epoch, index into the epoch's
order) plus the generator's state at the start of the epoch are all a checkpoint needs to continue exactly.

A global batch is split into ``grad_accum`` micro-batches of ``batch_size × world_size`` examples, and each
process reads only its own ``batch_size`` rows of each micro-batch.

Masking is drawn for the whole micro-batch (shape [batch_size × world_size, L]) from a masking generator seeded
identically on every process, and each process fills only its own rows (the others are padding, which is never
masked). Every row's mask depends only on its own row of the random draws, so a process gets exactly the masks
a single process would give those examples, and all generators stay in step without communication.
"""

from __future__ import annotations

import torch

from bert.data.dataset import PretrainingDataset
from bert.data.masking import MaskingCollator
from bert.errors import BertError


class DataOrder:
    """The shuffled order of the training examples and the position reached in it."""

    def __init__(self, num_examples: int, examples_per_step: int, seed: int) -> None:
        if examples_per_step > num_examples:
            raise BertError(f"the training split has {num_examples} examples, fewer than one optimizer step needs "
                            f"({examples_per_step} = batch size × processes × grad accumulation); lower --batch-size "
                            "or --grad-accum, or prepare more data")
        self.num_examples = num_examples
        self.examples_per_step = examples_per_step
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self.epoch = 0
        self.index = 0
        self.epoch_start_state = self.generator.get_state()
        self.order = torch.randperm(num_examples, generator=self.generator)

    def next_step(self) -> torch.Tensor:
        """The example indices of the next optimizer step's global batch [examples_per_step]."""
        if self.index + self.examples_per_step > self.num_examples:
            self.epoch += 1
            self.index = 0
            self.epoch_start_state = self.generator.get_state()
            self.order = torch.randperm(self.num_examples, generator=self.generator)
        indices = self.order[self.index:self.index + self.examples_per_step]
        self.index += self.examples_per_step
        return indices

    def restore(self, epoch: int, index: int, epoch_start_state: torch.Tensor) -> None:
        """Jump to a saved position: regenerate that epoch's order from the generator state that drew it."""
        self.generator.set_state(epoch_start_state)
        self.epoch_start_state = epoch_start_state.clone()
        self.order = torch.randperm(self.num_examples, generator=self.generator)
        self.epoch, self.index = epoch, index


def masked_rows(dataset: PretrainingDataset, collator: MaskingCollator, indices: torch.Tensor,
                rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """Read and mask this process's rows of one micro-batch.

    ``indices`` are the micro-batch's examples for *all* processes ([batch_size × world_size]); this process
    reads rows ``rank·b .. (rank+1)·b`` (b = batch_size). The masking generator advances as if the whole
    micro-batch were masked here (see the module docstring).
    """
    per_rank = len(indices) // world_size
    mine = indices[rank * per_rank:(rank + 1) * per_rank]
    batch = dataset.batch(mine.tolist())
    if world_size == 1:
        return collator(batch)
    full = {key: torch.zeros((len(indices), *value.shape[1:]), dtype=value.dtype) for key, value in batch.items()}
    rows = slice(rank * per_rank, (rank + 1) * per_rank)
    for key, value in batch.items():
        full[key][rows] = value  # the other rows stay all-zero: attention_mask 0, so nothing there is masked
    return {key: value[rows] for key, value in collator(full).items()}


def microbatches(indices: torch.Tensor, grad_accum: int) -> list[torch.Tensor]:
    """Split a global batch into ``grad_accum`` equal micro-batches (each for all processes)."""
    return list(indices.chunk(grad_accum))
