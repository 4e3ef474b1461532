"""Train / validation / test splits, IMU min-max scaling, and ``from_arrays``.

Splitting works on *recordings* (groups), never on windows, so all windows and
all modalities of one recording land in the same split:

- ``split="id"``: stratified random split of recordings (sklearn
  ``train_test_split`` with ``stratify``), in-distribution;
- ``split="ood"``: subject-disjoint split (sklearn ``GroupShuffleSplit`` over
  subjects): every subject is in exactly one of train / val / test.

Ratios are fractions of recordings (ID) or of subjects (OOD). The chosen
recording ids can be written to a JSON ``split_file`` and are reloaded from it
when it exists, so runs compare on the same split.

After splitting, IMU windows are min-max scaled to [-1, 1] per channel with the
*training* split's minimum and maximum (paper Sec. V-B.1); validation and test
use the same statistics, so their values may fall outside [-1, 1].
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .cache import Windows
from .dataset import PairedDataset, Splits, check_modality
from .preprocess import minmax_apply, minmax_stats

SPLIT_NAMES = ("train", "val", "test")


class LazyRows:
    """Rows ``base[index]`` of a (memory-mapped) array, read only when an item is asked for.

    ``PairedDataset`` indexes its arrays with ``a[i]`` and ``a[index_array]``; this
    keeps both lazy so that a split of a 30 GB video cache does not load it into memory.
    """

    def __init__(self, base: np.ndarray, index: np.ndarray):
        self.base, self.index = base, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __getitem__(self, i):
        if np.isscalar(i) or isinstance(i, (int, np.integer)):
            return self.base[self.index[i]]
        return LazyRows(self.base, self.index[i])

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.base[self.index])
        return out if dtype is None else out.astype(dtype)


# --------------------------------------------------------------------------- splitting

def _counts(n: int, ratios: Sequence[float]) -> tuple[int, int]:
    """(n_val, n_test) for ``n`` units, each at least 1 and leaving at least 1 for training."""
    r = np.asarray(ratios, dtype=float)
    r = r / r.sum()
    n_test = max(1, int(round(r[2] * n)))
    n_val = max(1, int(round(r[1] * n)))
    if n_val + n_test >= n:
        raise ValueError(f"cannot split {n} units into train/val/test with ratios {tuple(ratios)}: "
                         "need at least 3, and enough for a non-empty training split")
    return n_val, n_test


def split_recordings(
    groups: Sequence[str], labels: np.ndarray, subjects: np.ndarray, split: str,
    ratios: Sequence[float], seed: int,
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Assign each distinct recording (group) to train / val / test.

    Returns ({"train": [group ids], "val": [...], "test": [...]}, info).
    ID: stratified by the recording's label (falls back to unstratified, noted in
    ``info``, when some class has too few recordings). OOD: subject-disjoint.
    """
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    glabel: dict[str, int] = {}
    gsubject: dict[str, int] = {}
    for g, y, s in zip(groups, labels.tolist(), subjects.tolist()):
        if glabel.setdefault(g, y) != y:
            raise ValueError(f"recording {g!r} has windows with labels {glabel[g]} and {y}: a recording "
                             "(split unit) must have one label")
        gsubject.setdefault(g, s)
    names = sorted(glabel)
    info: dict[str, Any] = {"split": split, "seed": seed, "ratios": list(ratios), "unit": "recording"}
    if split == "id":
        y = np.array([glabel[g] for g in names])
        n_val, n_test = _counts(len(names), ratios)
        try:
            rest, test = train_test_split(names, test_size=n_test, stratify=y, random_state=seed)
            y_rest = np.array([glabel[g] for g in rest])
            train, val = train_test_split(rest, test_size=n_val, stratify=y_rest, random_state=seed)
            info["stratified"] = True
        except ValueError as e:  # a class with fewer recordings than splits
            warnings.warn(f"stratified split impossible ({e}); splitting recordings at random instead",
                          stacklevel=3)
            rest, test = train_test_split(names, test_size=n_test, random_state=seed)
            train, val = train_test_split(rest, test_size=n_val, random_state=seed)
            info["stratified"] = False
    elif split == "ood":
        s = np.array([gsubject[g] for g in names])
        if (s < 0).any():
            bad = [g for g in names if gsubject[g] < 0][:3]
            raise ValueError(f"split='ood' needs a subject for every recording; {int((s < 0).sum())} have none "
                             f"(e.g. {bad}). Provide subjects (or a subject map), or use split='id'.")
        n_subj = len(np.unique(s))
        n_val, n_test = _counts(n_subj, ratios)
        idx = np.arange(len(names))
        rest, test = next(GroupShuffleSplit(1, test_size=n_test, random_state=seed).split(idx, groups=s))
        tr, va = next(GroupShuffleSplit(1, test_size=n_val, random_state=seed).split(rest, groups=s[rest]))
        train, val, test = [names[i] for i in rest[tr]], [names[i] for i in rest[va]], [names[i] for i in test]
        info["subjects"] = {k: sorted({int(gsubject[g]) for g in v})
                            for k, v in zip(SPLIT_NAMES, (train, val, test))}
    else:
        raise ValueError(f"split must be 'id' (stratified) or 'ood' (subject-disjoint), got {split!r}")
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}, info


def read_split_file(path: Path, groups: Sequence[str], split: str) -> tuple[dict[str, list[str]], dict]:
    """Recording ids per split from a JSON file written by :func:`write_split_file`."""
    data = json.loads(Path(path).read_text())
    if data.get("split", split) != split:
        raise ValueError(f"split file {path} holds a {data['split']!r} split but split={split!r} was asked "
                         "for: pass another split_file, or delete this one to make a new split")
    assigned = {g: k for k in SPLIT_NAMES for g in data[k]}
    present = set(groups)
    unknown = sorted(present - set(assigned))
    if unknown:
        raise ValueError(f"split file {path} does not place {len(unknown)} recording(s) of this dataset, "
                         f"e.g. {unknown[:3]}: it was made for other data or settings. Delete it (or pass "
                         "another split_file) to make a new split.")
    missing = sorted(set(assigned) - present)
    out = {k: [g for g in data[k] if g in present] for k in SPLIT_NAMES}
    info = {k: v for k, v in data.items() if k not in SPLIT_NAMES}
    info.update(split_file=str(path), reloaded=True, absent_from_data=missing)
    return out, info


def write_split_file(path: Path, assignment: dict[str, list[str]], info: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({**info, **assignment}, indent=1))
    tmp.replace(path)


# --------------------------------------------------------------------------- assembling

def auto_split_file(split_file, cache_dir, name: str, split: str, seed: int, ratios,
                    windows: Windows) -> Path | None:
    """Resolve ``split_file="auto"``: a file in the cache folder named after what it splits."""
    if split_file != "auto":
        return None if split_file is None else Path(split_file)
    if cache_dir is None:
        return None
    from .cache import cache_key

    key = cache_key({"groups": sorted(set(zip(windows.groups, windows.subjects.tolist()))),
                     "ratios": list(ratios)})
    return Path(cache_dir) / "splits" / f"{name}-{split}-seed{seed}-{key}.json"


def make_splits(
    windows: Windows,
    split: str = "id",
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    split_file: str | Path | None = None,
    normalize_imu: bool = True,
) -> Splits:
    """Split ``windows`` by recording, min-max scale IMU with train statistics, build datasets."""
    if split_file is not None and Path(split_file).exists():
        assignment, info = read_split_file(Path(split_file), windows.groups, split)
    else:
        assignment, info = split_recordings(windows.groups, windows.labels, windows.subjects, split, ratios, seed)
        if split_file is not None:
            write_split_file(Path(split_file), assignment, info)
            info["split_file"] = str(split_file)
    where = {g: k for k, v in assignment.items() for g in v}
    part = np.array([where[g] for g in windows.groups])
    index = {k: np.flatnonzero(part == k) for k in SPLIT_NAMES}
    for k, ix in index.items():
        if len(ix) == 0:
            raise ValueError(f"the {k} split is empty ({len(set(windows.groups))} recordings); "
                             "use more data or other ratios")

    arrays: dict[str, dict[str, Any]] = {k: {} for k in SPLIT_NAMES}
    report = dict(windows.report)
    for m, a in windows.arrays.items():
        check_modality(m)
        if m == "imu" and normalize_imu:
            lo, hi = minmax_stats(a[index["train"]])
            report["imu_minmax"] = {"min": lo.tolist(), "max": hi.tolist(), "from": "train"}
            for k in SPLIT_NAMES:
                arrays[k][m] = minmax_apply(a[index[k]], lo, hi)
        else:
            for k in SPLIT_NAMES:
                arrays[k][m] = LazyRows(a, index[k]) if isinstance(a, np.memmap) else a[index[k]]

    datasets = {
        k: PairedDataset(arrays[k], windows.labels[ix], windows.classes, windows.subjects[ix],
                         [windows.ids[i] for i in ix], windows.sample_rates)
        for k, ix in index.items()
    }
    if "imu_minmax" in report:
        for d in datasets.values():
            d.imu_minmax = report["imu_minmax"]
    report["split"] = info
    report["sizes"] = {k: len(ix) for k, ix in index.items()}
    listed = {k: v for k, v in report.items() if isinstance(v, list) and v and k in
              ("skipped", "missing_modality", "too_short", "unlabelled", "missing_files")}
    if listed:
        warnings.warn("left out: " + ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in listed.items())
                      + " (names in Splits.report)", stacklevel=3)
    return Splits(datasets["train"], datasets["val"], datasets["test"], report)


def from_arrays(
    arrays: Mapping[str, np.ndarray],
    labels: Sequence[int],
    subjects: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    split: str = "id",
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    ids: Sequence[str] | None = None,
    sample_rates: Mapping[str, float] | None = None,
    groups: Sequence[str] | None = None,
    split_file: str | Path | None = None,
    normalize_imu: bool = True,
) -> Splits:
    """Train / val / test datasets from paired in-memory arrays, for your own sensors.

    ``arrays``: modality -> (N, ...) with the item format of ``dcatkit.data.dataset``
    (imu (N, C, L) raw — any channel count, scaled here with training statistics;
    video uint8 (N, T, 3, H, W); audio (N, S)). ``labels`` (N,) ints in [0, K).
    ``subjects`` (N,) enables ``split="ood"``. ``groups`` (N,) recording ids keep
    windows of one recording in one split (default: every sample its own recording).
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if classes is None:
        classes = [str(c) for c in range(int(labels.max()) + 1 if n else 0)]
    ids = [str(i) for i in (ids if ids is not None else range(n))]
    if len(set(ids)) != n:
        raise ValueError(f"ids must be unique, got {n - len(set(ids))} duplicate(s)")
    subj = np.full(n, -1, np.int64) if subjects is None else np.asarray(subjects, dtype=np.int64)
    if len(subj) != n:
        raise ValueError(f"subjects has {len(subj)} entries, labels {n}: give one subject per sample")
    arrays = {check_modality(m): np.asarray(a) for m, a in arrays.items()}
    for m, a in arrays.items():
        if len(a) != n:
            raise ValueError(f"{m} has {len(a)} samples, labels {n}: arrays must be paired sample by sample")
    if "imu" in arrays and arrays["imu"].ndim != 3:
        raise ValueError(f"imu must be (N, channels, length), got shape {arrays['imu'].shape}")
    windows = Windows(arrays, labels, subj, ids, list(groups) if groups is not None else ids,
                      list(classes), dict(sample_rates or {}), {})
    return make_splits(windows, split, ratios, seed, split_file, normalize_imu)
