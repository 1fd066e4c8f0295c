"""Data-parallel training across processes (``torchrun``): one fold on several GPUs or nodes.

Started by ``torchrun --nproc_per_node N seg-train ...``, every process trains the same fold on
its shard of each batch: ``train.batch_size`` stays the global batch, split evenly over the
ranks, so a run on N GPUs computes the gradients of a single-process run (averaged over the
ranks before every optimiser step). Only rank 0 writes files and prints; the others wait for it
at the end of each fold. Without torchrun's environment (``WORLD_SIZE`` unset or 1) every
function here is a no-op, so the single-process path is the same code.

Gradients are averaged by hand (one flat all-reduce per update) rather than with
``DistributedDataParallel``: the segmentation step backpropagates twice through the segmentor
(the supervised and the adversarial gradient are measured apart) with the discriminator frozen
in between, which DDP's hooks do not follow, and checkpoints keep plain module state.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True in the process that writes files and prints (rank 0, or the only process)."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device_type: str) -> None:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU) once; nothing without torchrun."""
    if not launched_by_torchrun() or dist.is_initialized():
        return
    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks (one flat all-reduce)."""
    if world_size() == 1:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Epoch means of the training terms, averaged over the ranks (each saw as many batches)."""
    if world_size() == 1 or not values:
        return values
    keys = sorted(values)
    stacked = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(stacked)
    return {k: float(v) / world_size() for k, v in zip(keys, stacked.tolist(), strict=True)}


def broadcast_module(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers in every rank (seeded inits agree already; this makes sure)."""
    if world_size() == 1:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


class ShardedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Each global batch of a seeded permutation, cut into ``world`` equal shards; yields this
    rank's shard. The permutation is ``torch.randperm(n, generator)``, the order PyTorch's
    ``RandomSampler`` draws for the same generator, so the union of the shards of batch k is the
    single-process batch k."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, drop_last: bool, world: int, rank: int):
        if batch_size % world:
            raise ValueError(f"train.batch_size {batch_size} must be divisible by the {world} processes")
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.drop_last, self.world, self.rank = drop_last, world, rank

    def __len__(self) -> int:
        short = self.n % self.batch_size >= self.world and not self.drop_last  # a last batch every rank shares
        return self.n // self.batch_size + short

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.n, generator=self.generator).tolist()
        shard = self.batch_size // self.world
        for k in range(len(self)):
            batch = order[k * self.batch_size : (k + 1) * self.batch_size]
            if len(batch) < self.batch_size:  # the last, short batch: equal shards, the rest dropped
                shard = len(batch) // self.world
            yield batch[self.rank * shard : (self.rank + 1) * shard]
