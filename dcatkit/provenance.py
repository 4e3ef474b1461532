"""Where a model and a result come from: the data it was trained on and the environment.

A frozen source is only a fair teacher if it never saw the target run's validation or
test samples. Every model ``fit`` trains therefore carries a *provenance* record (in
its checkpoint's ``meta["provenance"]``, as ``model.provenance`` in memory and in
``Run.meta["provenance"]``)::

    {"dataset": "uestc" | None,           # Splits.report["dataset"] when the loader set it
     "split": {"split": "id", "seed": 0, "ratios": [...], ...} | None,  # Splits.report["split"]
     "data_seed": 0 | None,
     "modality": "video", "input_shape": [T, 3, H, W], "classes": [...],
     "n_train": N, "train_ids_sha256": "...", "train_ids": [N ids],
     "imu_minmax": {"min": [...], "max": [...]} | None,   # the per-channel IMU scaling
     "normalization": {"method": "minmax", "min": [...], "max": [...]} | None,  # this modality's
                                                          # scaling (any timeseries name)
     "sample_rates": {"imu": 50.0, ...},
     "environment": environment()}

:func:`check_source` compares a source's record with the target run's splits and
refuses a source whose training ids overlap the target's validation or test ids
(leakage) or whose classes differ. ``environment()`` is also written into every
results file (``report.write_results``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
import warnings
from pathlib import Path
from typing import Any, Sequence


class SourceMismatch(ValueError):
    """A source model that must not be used for this target run (leakage, other classes,
    other inputs). The command line prints its message instead of a traceback."""


# ------------------------------------------------------------------ environment


@functools.lru_cache(maxsize=None)
def git_commit(folder: str | None = None) -> str | None:
    """The commit of the git checkout that holds dcatkit's own files (``-dirty`` appended
    when tracked files were changed), or None: not a checkout, git missing, or the
    package installed outside one. Never raises."""
    pkg = Path(folder) if folder is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(pkg), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    # the package's own file must be tracked there: a venv inside someone else's repo is not ours
    if git("ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit + ("-dirty" if status else "")


def environment(device: Any = None) -> dict:
    """Versions and hardware a result was produced with: dcatkit, torch, numpy, python,
    platform, the device (``device`` when given, else the default one: CUDA when
    available) with its name, and the git commit of dcatkit when run from a checkout."""
    import numpy as np
    import torch

    from . import __version__

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    name = None
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = torch.device(device)
        name = torch.cuda.get_device_name(dev.index if dev.index is not None else torch.cuda.current_device())
    return {"dcatkit": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "device_name": name, "git_commit": git_commit()}


# ------------------------------------------------------------------ the data a model saw


def ids_hash(ids: Sequence[str]) -> str:
    """sha256 of the sorted sample ids (one per line): the same set gives the same hash."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


def _plain(x: Any) -> Any:
    """JSON-plain copy (lists, dicts, str, int, float, bool, None): what torch.load's
    ``weights_only=True`` accepts and results files can hold."""
    return json.loads(json.dumps(x, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def record(train, modality: str, report: dict | None = None, dataset: str | None = None,
           device: Any = None) -> dict:
    """The provenance of a model of ``modality`` trained on the dataset ``train``
    (a ``PairedDataset``); ``report`` is the ``Splits.report`` it came from, when known
    (split kind and seed, dataset name, IMU scaling). See the module docstring."""
    report = report or {}
    split = report.get("split")
    ids = [str(i) for i in getattr(train, "ids", [])]
    minmax = getattr(train, "imu_minmax", None) or report.get("imu_minmax")
    norm = (getattr(train, "normalization", None) or report.get("normalization") or {}).get(modality)
    if norm is None and modality == "imu" and minmax:
        norm = {"method": "minmax", **minmax}
    shape = list(train.input_shape(modality)) if hasattr(train, "input_shape") else None
    return _plain({
        "dataset": dataset if dataset is not None else report.get("dataset"),
        "split": split,
        "data_seed": split.get("seed") if isinstance(split, dict) else None,
        "modality": modality,
        "input_shape": shape,
        "classes": list(getattr(train, "classes", [])),
        "n_train": len(ids),
        "train_ids_sha256": ids_hash(ids),
        "train_ids": ids,
        "imu_minmax": minmax if modality == "imu" else None,
        "normalization": norm,
        "sample_rates": dict(getattr(train, "sample_rates", {}) or {}),
        "environment": environment(device),
    })


def describe(prov: dict) -> str:
    """'dataset 'synthetic', split id (seed 0)' for messages."""
    split = prov.get("split") or {}
    kind = split.get("split", "?") if isinstance(split, dict) else "?"
    return f"dataset {prov.get('dataset')!r}, split {kind} (data seed {prov.get('data_seed')})"


def _split_of(splits) -> str:
    report = getattr(splits, "report", {}) or {}
    split = report.get("split") or {}
    return (f"dataset {report.get('dataset')!r}, split {split.get('split', '?')} "
            f"(data seed {split.get('seed')})")


def check_source(prov: dict | None, splits) -> None:
    """Refuse (``SourceMismatch``) a source for the target run on ``splits`` when
    its training samples overlap the target's validation or test samples, or its
    classes differ. ``prov``: the source's provenance record, or None for a model
    without one (then a warning says that overlap cannot be checked; the caller
    checks what the model itself tells, e.g. its number of classes)."""
    classes = list(splits.train.classes)
    if prov is None:
        warnings.warn("the source model carries no provenance (it was not trained by dcatkit's fit, or "
                      "comes from an older checkpoint): dcatkit cannot check that it never saw this run's "
                      "validation or test samples, nor its class names and order", stacklevel=3)
        return
    if list(prov.get("classes") or []) != classes:
        raise SourceMismatch(f"the source was trained on classes {prov.get('classes')} but this run's data has "
                             f"{classes} (same names, same order needed): use a source trained on this data")
    if prov.get("train_ids") is None:
        warnings.warn("the source's provenance has no training ids: overlap with this run's validation and "
                      "test samples cannot be checked", stacklevel=3)
        return
    seen = set(prov["train_ids"])
    n_val = sum(i in seen for i in splits.val.ids)
    n_test = sum(i in seen for i in splits.test.ids)
    if n_val or n_test:
        split = (getattr(splits, "report", {}) or {}).get("split") or {}
        kind, seed = split.get("split", "<split>"), split.get("seed", "<seed>")
        raise SourceMismatch(
            f"leakage: the source was trained on {n_val + n_test} samples that this run evaluates on "
            f"({n_val} of {len(splits.val)} validation, {n_test} of {len(splits.test)} test). Source: "
            f"{describe(prov)}; this run: {_split_of(splits)}. Train the source on this run's training "
            f"split (same dataset, split and data seed, e.g. `python -m dcatkit train --split {kind} "
            f"--data-seed {seed} ...`) and transfer from that checkpoint.")


def warn_if_inputs_differ(prov: dict | None, splits, modality: str) -> None:
    """Warn when the source saw its inputs scaled (IMU min-max) or sampled differently
    from this run's data: the source then classifies shifted inputs."""
    if not prov:
        return
    rate, here = (prov.get("sample_rates") or {}).get(modality), splits.train.sample_rates.get(modality)
    if rate and here and abs(float(rate) - float(here)) > 1e-6 * max(abs(float(rate)), 1.0):
        warnings.warn(f"the source saw {modality} at {rate} Hz, this run's data is at {here} Hz", stacklevel=3)
    theirs = prov.get("imu_minmax")
    ours = getattr(splits.train, "imu_minmax", None) or (getattr(splits, "report", {}) or {}).get("imu_minmax")
    if modality == "imu" and theirs and ours:
        ours = _plain(ours)
        if [ours.get("min"), ours.get("max")] != [theirs.get("min"), theirs.get("max")]:
            warnings.warn("the source's IMU inputs were min-max scaled with other per-channel statistics than "
                          "this run's (another training split): it sees differently scaled inputs here",
                          stacklevel=3)


__all__ = ["SourceMismatch", "environment", "git_commit", "ids_hash", "record", "check_source",
           "warn_if_inputs_differ", "describe"]
