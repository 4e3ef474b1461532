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
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

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


def make_loader(ds: Dataset, batch_size: int, shuffle: bool, seed: int = 0, device=None,
                num_workers: int = 0, shard: bool = False) -> DataLoader:
    """A seeded DataLoader; pinned memory on CUDA. ``shard=True`` under torchrun gives
    each rank its part: a DistributedSampler when shuffling (call ``set_epoch``),
    a plain rank::world_size slice for evaluation (no padding, no duplicates)."""
    gen = torch.Generator().manual_seed(seed)
    pin = device is not None and torch.device(device).type == "cuda"
    sampler = None
    if shard and dist.is_dist():
        if shuffle:
            sampler = DistributedSampler(ds, shuffle=True, seed=seed)
        else:
            ds = Subset(ds, range(dist.rank(), len(ds), dist.world_size()))
        shuffle = False
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, sampler=sampler, generator=gen,
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
