"""Device, seeds and data loaders: what training, evaluation and the frozen source share.

``resolve_device`` ("auto" -> CUDA when present), ``seed_everything``, the AMP dtype
of a device, ``make_loader`` (seeded; sharded under torchrun) and ``only_modalities``.
The lowest layer of training: it imports no other training module, so
``dcatkit.frozen_source``, ``dcatkit.checkpoint`` and ``dcatkit.train`` all build on it.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from . import distributed as dist


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when present, else CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return dist.local_device() if dist.is_dist() else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available; use 'auto' or 'cpu'")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """AMP on CUDA only: bf16 where supported, else fp16 (with a GradScaler)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class ShardBatches:
    """The training batches of process ``rank`` of ``world``: each epoch, ``randperm(n)`` seeded
    with ``seed + epoch`` (``set_epoch``; DistributedSampler's order) is cut into steps of
    ``batch_size * world`` samples, and the process takes every ``world``-th sample of each step
    from its ``rank``-th on. Each sample is trained exactly once per epoch across the processes
    (no padding: DistributedSampler repeats samples to make the shards equal), every process
    has the same number of steps (DDP's gradient averaging waits for all), and no process has
    an empty batch: a last step of fewer than ``world`` samples is folded into the step before.
    Batches of one step differ in size by at most one; the training loop averages over the
    step's samples of all processes (``train.global_masked_mean``). When ``world`` divides
    ``n`` these are DistributedSampler's batches."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world: int):
        if n < world:
            raise ValueError(f"the training set has {n} sample(s) for {world} processes: each process needs at "
                             f"least one; train on more samples or with at most {n} process(es)")
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, {world}), got {rank}")
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _steps(self) -> list[tuple[int, int]]:
        step = self.batch_size * self.world
        starts = list(range(0, self.n, step))
        if len(starts) > 1 and self.n - starts[-1] < self.world:   # too few to give every process one
            starts.pop()
        return list(zip(starts, starts[1:] + [self.n]))

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        return iter([perm[a:b][self.rank::self.world] for a, b in self._steps()])

    def __len__(self) -> int:
        return len(self._steps())


def make_loader(ds: Dataset, batch_size: int, shuffle: bool, seed: int = 0, device=None,
                num_workers: int = 0, shard: bool = False) -> DataLoader:
    """A seeded DataLoader; pinned memory on CUDA. ``shard=True`` under torchrun gives
    each rank its part, no sample twice: ``ShardBatches`` when shuffling (call its
    ``set_epoch``: ``loader.batch_sampler.set_epoch``), a plain rank::world_size slice
    for evaluation (no padding, no duplicates)."""
    gen = torch.Generator().manual_seed(seed)
    pin = device is not None and torch.device(device).type == "cuda"
    if shard and dist.is_dist():
        if shuffle:
            batches = ShardBatches(len(ds), batch_size, seed, dist.rank(), dist.world_size())
            return DataLoader(ds, batch_sampler=batches, generator=gen, num_workers=num_workers, pin_memory=pin)
        ds, shuffle = Subset(ds, range(dist.rank(), len(ds), dist.world_size())), False
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      num_workers=num_workers, pin_memory=pin, drop_last=False)


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device, non_blocking=True)


def only_modalities(ds: Dataset, modalities) -> Dataset:
    """``ds`` restricted to the modalities a run reads (datasets with ``select``, e.g.
    ``PairedDataset``): an IMU epoch then neither reads nor collates video frames it never
    uses. ``modalities=None`` or a dataset without ``select`` -> ``ds`` unchanged."""
    if modalities is None or not hasattr(ds, "select") or set(ds.modalities) <= set(modalities):
        return ds
    return ds.select([m for m in ds.modalities if m in modalities])
