"""DistributedDataParallel plumbing over gloo (CPU): process group, sums across ranks, gathers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from training.config import ProcessPlace


@contextmanager
def process_group(place: ProcessPlace) -> Iterator[None]:
    """Join the job's process group (torchrun's env:// rendezvous) for the duration of a run."""
    if not place.distributed:
        yield
        return
    dist.init_process_group("gloo", rank=place.rank, world_size=place.world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def all_sum(values: list[float], place: ProcessPlace) -> list[float]:
    """Element-wise sum over every rank (float64, so sample counts stay exact)."""
    if not place.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def shard(count: int, place: ProcessPlace) -> torch.Tensor:
    """This rank's indices of ``count`` items: rank, rank + world, ... (no padding, no repeats)."""
    return torch.arange(place.rank, count, place.world_size)


def gather_shards(local: torch.Tensor, count: int, place: ProcessPlace) -> torch.Tensor:
    """Reassemble rows computed by ``shard`` on every rank into the full ``count`` rows, everywhere."""
    if not place.distributed:
        return local
    rows = -(-count // place.world_size)
    padded = torch.zeros((rows, *local.shape[1:]), dtype=local.dtype)
    padded[: len(local)] = local
    gathered = [torch.empty_like(padded) for _ in range(place.world_size)]
    dist.all_gather(gathered, padded)
    full = torch.empty((count, *local.shape[1:]), dtype=local.dtype)
    for rank, part in enumerate(gathered):
        mine = len(range(rank, count, place.world_size))
        full[rank::place.world_size] = part[:mine]
    return full


def barrier(place: ProcessPlace) -> None:
    if place.distributed:
        dist.barrier()
