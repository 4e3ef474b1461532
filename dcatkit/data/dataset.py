"""In-memory paired dataset and the split container every loader returns.

An item is a dict::

    {"imu":   FloatTensor (C, L)         # channels first, min-max scaled to [-1, 1]
     "video": ByteTensor  (T, 3, H, W)   # uint8 RGB; FrameEncoder normalises
     "audio": FloatTensor (N,)           # mono waveform at `sample_rates["audio"]`
     "label": int, "subject": int (-1 when unknown), "id": str}

holding only the modalities that were asked for. The default collate of
``torch.utils.data.DataLoader`` batches these dicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

MODALITIES = ("imu", "video", "audio")


def check_modality(name: str) -> str:
    if name not in MODALITIES:
        raise ValueError(f"unknown modality {name!r}: expected one of {MODALITIES}")
    return name


class PairedDataset(Dataset):
    """Samples with one array per modality, all indexed by the same sample index.

    ``arrays[m]`` has shape (N, ...) — numpy arrays or ``np.memmap`` (so a
    preprocessing cache can back it without loading it into memory).
    ``groups`` (N,): the recording each sample was cut from (default: its id, i.e. every
    sample its own recording); :func:`dcatkit.data.check_leakage` reads it.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        labels: Sequence[int],
        classes: Sequence[str],
        subjects: Sequence[int] | None = None,
        ids: Sequence[str] | None = None,
        sample_rates: Mapping[str, float] | None = None,
        groups: Sequence[str] | None = None,
    ):
        if not arrays:
            raise ValueError("PairedDataset needs at least one modality array, got none")
        self.labels = np.asarray(labels, dtype=np.int64)
        n = len(self.labels)
        for m, a in arrays.items():
            check_modality(m)
            if len(a) != n:
                raise ValueError(
                    f"modality {m!r} has {len(a)} samples but there are {n} labels: "
                    "every modality needs one entry per sample, in the same order"
                )
        self.arrays = dict(arrays)
        self.classes = list(classes)
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"labels must lie in [0, {len(self.classes) - 1}] for {len(self.classes)} "
                f"classes, found range [{self.labels.min()}, {self.labels.max()}]"
            )
        self.subjects = (
            np.full(n, -1, dtype=np.int64) if subjects is None else np.asarray(subjects, dtype=np.int64)
        )
        self.ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
        self.groups = list(self.ids) if groups is None else [str(g) for g in groups]
        if len(self.subjects) != n or len(self.ids) != n or len(self.groups) != n:
            raise ValueError(f"subjects ({len(self.subjects)}), ids ({len(self.ids)}) and groups "
                             f"({len(self.groups)}) must have {n} entries, one per sample")
        self.sample_rates = dict(sample_rates or {})

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.arrays)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def input_shape(self, modality: str) -> tuple[int, ...]:
        """Per-sample shape of one modality, e.g. (6, 64) for IMU."""
        return tuple(self.arrays[check_modality(modality)].shape[1:])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for m, a in self.arrays.items():
            x = np.asarray(a[i])
            t = torch.from_numpy(np.array(x, copy=True))
            item[m] = t if t.dtype == torch.uint8 else t.float()
        item["label"] = int(self.labels[i])
        item["subject"] = int(self.subjects[i])
        item["id"] = self.ids[i]
        return item

    def subset(self, index: Sequence[int]) -> "PairedDataset":
        index = np.asarray(index, dtype=np.int64)
        return PairedDataset(
            {m: a[index] for m, a in self.arrays.items()},
            self.labels[index],
            self.classes,
            self.subjects[index],
            [self.ids[i] for i in index],
            self.sample_rates,
            [self.groups[i] for i in index],
        )

    def select(self, modalities: Sequence[str]) -> "PairedDataset":
        """A view with only some modalities (same samples, same order)."""
        missing = [m for m in modalities if m not in self.arrays]
        if missing:
            raise ValueError(f"dataset has modalities {self.modalities}, asked for missing {missing}")
        return PairedDataset({m: self.arrays[m] for m in modalities}, self.labels, self.classes,
                             self.subjects, self.ids, self.sample_rates, self.groups)


@dataclass
class Splits:
    """What ``dcatkit.data.load`` returns: three datasets plus a load report.

    ``report["split"]`` says how it was split (kind, seed, ratios, fold); a cross-validation
    split (``"loso"``, ``("group_kfold", k)``) returns a list of these, one per fold.
    """

    train: PairedDataset
    val: PairedDataset
    test: PairedDataset
    report: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):  # allows `train, val, test = load(...)`
        return iter((self.train, self.val, self.test))

    @property
    def classes(self) -> list[str]:
        return self.train.classes
