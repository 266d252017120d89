"""Which examples each optimizer step reads, and how a process turns its share into a masked batch.

The training split is shuffled once per epoch by a dedicated ``torch.Generator`` (the *data-order* generator)
and consumed in *global batches* of ``batch_size × world_size × grad_accum`` examples; an incomplete last
global batch is dropped and a new epoch (a new permutation) begins. The position (epoch, index into the epoch's
order) plus the generator's state at the start of the epoch are all a checkpoint needs to continue exactly.

A global batch is split into ``grad_accum`` micro-batches of ``batch_size × world_size`` examples, and each
process reads only its own ``batch_size`` rows of each micro-batch. Early in a run from random weights the rows may be
cut in two (:func:`cut_in_two`: half the length, twice the rows, the same tokens) before they are masked.

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


def cut_in_two(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each row [T] of a batch [B, T] as two rows [T/2]: [2B, T/2], the first halves at even rows (a row of odd
    length gets one padding column first). For MLM-only data, whose rows are text packed to the full length: the
    second half starts mid-text, without [CLS], which the masked-LM loss never reads. Per-example tensors [B] are
    repeated for both halves."""
    length = batch["input_ids"].shape[1]
    cut = {}
    for key, value in batch.items():
        if value.dim() == 1:
            cut[key] = value.repeat_interleave(2)
            continue
        if length % 2:
            value = torch.cat([value, value.new_zeros(value.shape[0], 1)], dim=1)  # attention_mask 0 there
        cut[key] = value.reshape(value.shape[0] * 2, -1)
    return cut


def masked_rows(dataset: PretrainingDataset, collator: MaskingCollator, indices: torch.Tensor,
                rank: int, world_size: int, halves: bool = False) -> dict[str, torch.Tensor]:
    """Read and mask this process's rows of one micro-batch (``halves``: each cut in two first, see
    :func:`cut_in_two`; halves that hold only padding are then left out).

    ``indices`` are the micro-batch's examples for *all* processes ([batch_size × world_size]); this process
    reads rows ``rank·b .. (rank+1)·b`` (b = batch_size). The masking generator advances as if the whole
    micro-batch were masked here (see the module docstring).
    """
    per_rank = len(indices) // world_size
    mine = indices[rank * per_rank:(rank + 1) * per_rank]
    batch = dataset.batch(mine.tolist())
    if halves:
        batch = cut_in_two(batch)
    if world_size == 1:
        masked = collator(batch)
    else:
        rows_per_example = 2 if halves else 1
        full = {key: torch.zeros((len(indices) * rows_per_example, *value.shape[1:]), dtype=value.dtype)
                for key, value in batch.items()}
        rows = slice(rank * per_rank * rows_per_example, (rank + 1) * per_rank * rows_per_example)
        for key, value in batch.items():
            full[key][rows] = value  # the other rows stay all-zero: attention_mask 0, so nothing there is masked
        masked = {key: value[rows] for key, value in collator(full).items()}
    if halves:  # a short example's second half can be all padding: a row no token of which attends anywhere
        real = masked["attention_mask"].any(dim=1)
        masked = {key: value[real] for key, value in masked.items()}
    return masked


def microbatches(indices: torch.Tensor, grad_accum: int) -> list[torch.Tensor]:
    """Split a global batch into ``grad_accum`` equal micro-batches (each for all processes)."""
    return list(indices.chunk(grad_accum))
