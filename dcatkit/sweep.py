"""Sweeps: a grid of runs (method x lambda x training-set size x data draw x seed x ...)
in parallel worker processes, resumable, shardable over a job array, returned as one tidy table.

    from dcatkit.sweep import run_transfer_sweep
    df = run_transfer_sweep("runs/sweep", methods=["none", "dcat", "kd"], lams=[1.0],
                            sizes=[300, 700, 2000], seeds=range(10),      # video -> IMU, synthetic
                            data_seeds=range(3))                         # three draws of the data
    summary = dcatkit.stats.summarise(df, draw="data_seed")              # paired CIs per cell

``run_transfer_sweep`` trains the frozen sources first (one per seed and data draw:
every method of that seed and draw shares it), then one target per (method, lambda,
size, draw, seed) with ``experiment.train_transfer`` (method ``"none"`` is the
baseline, the same model as ``train_unimodal``). ``run_studies`` runs several such
grids (e.g. video -> IMU on two splits and IMU -> video) as one sweep, sharing the
workers. Both run on ``dcatkit.runner`` (``grid``, ``run_grid``: any task, in parallel
worker processes, resumable; its names are importable from here too), so workers,
resuming and failures behave as it says. What this module adds:

- Run identity: every transfer run's parameters include ``setup``
  (``setup_fingerprint``: a hash of the resolved presets, the simulator's settings and
  a small canonical draw of its output, or a real dataset's ``data_identity``: the
  content of its windows), so a run stored before a preset, simulator or data change
  is trained again instead of read back. ``redo=True`` trains sources again too.
- Workers on a GPU: each run's memory is estimated from its preset's batch and its
  input shapes (``estimate_run_bytes``) and passed to ``run_grid``, whose
  ``default_workers`` then lets several small runs share one GPU.
- Shards (``shard=(k, n)``, CLI ``--shard k/n`` or ``--shard auto`` inside a SLURM
  job array, ``--shard auto/N`` for ``--array=0-(N-1)``): shard k of n runs a fixed 1/n
  of the target runs (contiguous blocks of the grid ordered by source, so at most n - 1
  sources are needed by more than one shard) into
  the same ``out_dir`` with the same run identities; a source two shards need is
  trained once, under a file lock, and read by the other. ``gather=True`` then
  reads every run back (training nothing) and names the missing ones.
- Results: one row per run, the parameters' columns, the task's results, ``wall_s`` and the
  ``env_*`` columns (``runner``). The baseline of a paired comparison (``dcatkit.stats.summarise``) is the run
  with method ``"none"`` and the same seed, size and data.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .runner import (ACTIVATION_FACTOR, CUDA_CONTEXT_BYTES, GPU_MEMORY_FRACTION, NO_LAMBDA,  # noqa: F401 (re-exported)
                     default_workers, estimate_run_bytes, gpu_workers_per_device, grid, read_run, read_sweep,
                     run_grid, run_key)
from .runner import _plain
from .warn import warn

SOURCE_KEYS = ("dataset", "root", "split", "seed", "n_samples", "regime", "data_options", "source", "target",
               "preset", "epochs_source", "setup")
TARGET_DEFAULTS = {"dataset": "synthetic", "root": None, "split": "id", "regime": "headroom", "data_options": None,
                   "source": "video",
                   "target": "imu", "preset": "synthetic", "mcma": True, "epochs_source": None,
                   "epochs_target": None, "options": None, "monitor": None, "data_seed": None, "source_seed": None,
                   "control": None, "n_labeled": None}
CONTROLS = ("negative", "positive")      # data.controls: break_pairing, with_teacher


def source_identity(p: Mapping[str, Any]) -> dict:
    """What makes a run's frozen source: ``SOURCE_KEYS``, with ``seed`` the source's
    training seed. By default the data seed and the source's seed are the run's seed;
    ``data_seed`` / ``source_seed`` (not None) fix them, so runs of every seed share
    one dataset and one source (the source's key then holds both)."""
    ident = {k: p.get(k, TARGET_DEFAULTS.get(k)) for k in SOURCE_KEYS}
    if p.get("fold") is not None:                      # a cross-validation fold: its own data, its own source
        ident["fold"] = p["fold"]
    if p.get("control") == "positive":                 # the teacher: its own source. The negative control
        ident["control"] = p["control"]                # shuffles the target only, so its source is the main
                                                       # study's (and sweeps without controls keep their keys)
    data_seed, source_seed = p.get("data_seed"), p.get("source_seed")
    if data_seed is None and source_seed is None:
        return ident                                   # the key of a sweep without them, unchanged
    ident["seed"] = p["seed"] if source_seed is None else source_seed
    ident["data_seed"] = p["seed"] if data_seed is None else data_seed
    return ident


def _splits(dataset: str, root, split, seed: int, n_samples, regime, data_options, modalities: tuple,
            fold: int | None = None, control: str | None = None, n_labeled: int | None = None,
            hide: bool = False):
    """The data of one run (cached per worker: every method of a seed reads the same).
    ``data_options``: more arguments of ``data.load`` (e.g. the simulator's frame_size).
    ``split``: "id", "ood", or a cross-validation split ("loso", ["group_kfold", k]),
    of which fold ``fold`` is used. ``control`` ("negative", "positive"; ``data.controls``):
    the control's data, with ``modalities`` = (source, target) as the control names them
    (the positive control's source is ``teacher_name(target)``, a copy the loader does not
    know). ``hide``: the target run's data, with the labels of all but ``n_labeled``
    training recordings hidden (positive control: None = ``controls.default_labels``;
    elsewhere None = every label); the source trains on every label (``hide`` False)."""
    from .data import controls

    if control not in (None, *CONTROLS):
        raise ValueError(f"control must be None or one of {CONTROLS}, got {control!r}")
    source, target = modalities
    if control == "positive" and source != controls.teacher_name(target):
        raise ValueError(f"the positive control's source is the target's copy {controls.teacher_name(target)!r}, "
                         f"got source={source!r}")
    split = tuple(split) if isinstance(split, list) else split
    loaded = (target,) if control == "positive" else modalities
    got = _load(dataset, root, split, seed, n_samples, regime, json.dumps(data_options or {}, sort_keys=True),
                loaded)
    if isinstance(got, list):
        if fold is None or not 0 <= fold < len(got):
            raise ValueError(f"split {split!r} has {len(got)} folds: give fold = 0 .. {len(got) - 1} "
                             f"(run_transfer_sweep(folds=...)), got {fold!r}")
        got = got[fold]
    elif fold is not None:
        raise ValueError(f"fold={fold} given but split {split!r} has no folds (use 'loso' or ['group_kfold', k])")
    if control == "negative":
        got = controls.break_pairing(got, target, seed=seed)
    elif control == "positive":
        got = controls.with_teacher(got, target)
    if hide and (n_labeled is not None or control == "positive"):
        from .data.dataset import hide_labels

        got = hide_labels(got, controls.default_labels(got) if n_labeled is None else n_labeled, seed=seed)
    return got


@functools.lru_cache(maxsize=4)
def _load(dataset, root, split, seed, n_samples, regime, data_options: str, modalities):
    from .data import load

    opts = ({"regime": regime, **({} if n_samples is None else {"n_samples": n_samples})}   # None: the simulator's
            if dataset == "synthetic" else {})
    return load(dataset, root=root, split=split, seed=seed, modalities=modalities, **opts, **json.loads(data_options))


def _source_path(out_dir: str | Path, p: Mapping[str, Any]) -> Path:
    """``p``: a ``source_identity``."""
    key = run_key(p)
    return Path(out_dir) / "sources" / f"{p.get('source', 'video')}_{key}.pt"


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` + ".lock" (``fcntl.lockf``: POSIX record locks, which
    also hold across the nodes of a cluster file system that supports them, NFS through
    lockd). Other shards that need the same source wait here, then read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:                          # not POSIX: no lock (one machine, one process at a time)
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)


def source_task(*, out_dir: str, seed: int, n_samples: int | None = None, dataset: str = "synthetic",
                root=None, split: str = "id", regime: str | None = "headroom", data_options: dict | None = None,
                source: str = "video",
                target: str = "imu", preset: str = "synthetic", epochs_source: int | None = None,
                data_seed: int | None = None, fold: int | None = None, setup: str | None = None,
                control: str | None = None, device="auto", redo: bool = False) -> dict:
    """Train (or find) the frozen source of one seed and data, saved under
    ``out_dir/sources/``; returns its test metrics. The data seed is the training seed
    unless ``data_seed`` is given. ``setup``: ``setup_fingerprint`` (identity only).
    ``control``: the source of a control's data (``_splits``), trained on every label.
    ``redo``: train it again even if its checkpoint exists. Training happens under a
    file lock, so shards that need the same source train it once; each training adds a
    line to ``out_dir/sources/trained.log`` (time, host, process, file), which says so.
    A training that was killed (its state ``<checkpoint>.state``, written after every epoch, is
    left) resumes from its last saved epoch (``train.fit``'s ``resume``), to the uninterrupted
    source bit for bit when it resumes on the same device (another device's epochs mix in as
    they would in any resumed run); a state this source cannot resume (other settings, e.g. one
    another dcatkit saved, or an unreadable file) is said and replaced: it trains from epoch 1.
    ``redo`` never resumes."""
    from .checkpoint import UnusableState, state_path_for
    from .experiment import load_source, train_unimodal
    from .train import evaluate

    sp = _splits(dataset, root, split, seed if data_seed is None else data_seed, n_samples, regime, data_options,
                 (source, target), fold, control)
    ident = dict(seed=seed, n_samples=n_samples, dataset=dataset, root=root, split=split, regime=regime,
                 data_options=data_options, source=source, target=target, preset=preset,
                 epochs_source=epochs_source, setup=setup)
    ident.update({k: v for k, v in (("fold", fold), ("data_seed", data_seed), ("control", control))
                  if v is not None})
    path = _source_path(out_dir, ident)
    test = None
    with _locked(path):
        if redo or not path.is_file():
            def fit(resume: bool) -> dict:
                return train_unimodal(sp, source, preset=preset, dataset=dataset, epochs=epochs_source, seed=seed,
                                      device=device, checkpoint=path, progress=False, resume=resume).test
            try:                     # only a state that is there: "no saved state" is no news for a new source
                test = fit(not redo and state_path_for(path).is_file())
            except UnusableState as e:                  # raised before any epoch trains
                warn(f"the source's saved state cannot resume it, so it trains from epoch 1 (the state is "
                     f"replaced): {e}")
                test = fit(False)
            with open(path.parent / "trained.log", "a") as f:       # one short append, under the source's lock
                f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {socket.gethostname()} pid {os.getpid()} {path.name}\n")
    if test is None:
        model = load_source(path, sp, target)
        test = evaluate(model, sp.test, source, device=device)
    return {"source_f1": float(test["f1"]), "source_accuracy": float(test["accuracy"])}


def transfer_task(*, out_dir: str, method: str, seed: int, lam: float | None = None, n_samples: int | None = None,
                  dataset: str = "synthetic", root=None, split: str = "id", regime: str | None = "headroom",
                  data_options: dict | None = None, source: str = "video", target: str = "imu",
                  mcma: bool = True, preset: str = "synthetic",
                  epochs_source: int | None = None, epochs_target: int | None = None, options: dict | None = None,
                  monitor: str | None = None, data_seed: int | None = None, source_seed: int | None = None,
                  fold: int | None = None, setup: str | None = None, control: str | None = None,
                  n_labeled: int | None = None, device="auto") -> dict:
    """One target run of a sweep: ``experiment.train_transfer`` from the seed's frozen
    source (trained first if missing) with the objective ``method`` (``"none"``: the
    baseline). ``data_seed`` / ``source_seed``: fixed data and source for every seed
    (None: the run's ``seed``; see ``source_identity``). ``setup``: ``setup_fingerprint``
    (part of the run's identity, not used to train). ``control``: a control's data
    (``control_studies``); ``n_labeled``: the labels the target keeps, the other
    training recordings becoming unlabeled pairs (``_splits``). Returns test metrics, the
    source's test F1, the labelled and unlabeled training-set sizes (samples; ``n_recordings``:
    the labelled training recordings, which ``n_labeled`` counts), the last epoch's
    training loss and, when L_CA was optimised or monitored, its last-epoch training
    value (``train_ca_last``). ``chance_recall``: the test recall these predictions would
    have in expectation with the test inputs shuffled (``metrics.chance_recall``);
    ``recall_above_chance``: recall minus it, what the negative control is read on."""
    from .experiment import train_transfer
    from .metrics import chance_recall

    from .objectives import accepted_options

    ident = source_identity(dict(seed=seed, n_samples=n_samples, dataset=dataset, root=root, split=split,
                                 regime=regime, data_options=data_options, source=source, target=target,
                                 preset=preset, epochs_source=epochs_source, data_seed=data_seed,
                                 source_seed=source_seed, fold=fold, setup=setup, control=control))
    src = source_task(out_dir=out_dir, device=device, **ident)
    sp = _splits(dataset, root, split, seed if data_seed is None else data_seed, n_samples, regime, data_options,
                 (source, target), fold, control, n_labeled, hide=True)
    options = {k: v for k, v in (options or {}).items() if k in accepted_options(method)}
    run = train_transfer(sp, _source_path(out_dir, ident),
                         target, lam=0.0 if lam is None else lam, mcma=mcma, method=method, options=options,
                         monitor=monitor, preset=preset, dataset=dataset, epochs=epochs_target, seed=seed,
                         device=device, progress=False, cache_dir=Path(out_dir) / "cache")
    h, chance = run.history, chance_recall(run.test["confusion"])
    out = {**{m: float(run.test[m]) for m in ("accuracy", "precision", "recall", "f1")}, **src,
           "n_train": len(sp.train), "n_unlabeled": 0 if sp.unlabeled is None else len(sp.unlabeled),
           "n_recordings": len(set(sp.train.groups)),
           "n_classes": len(sp.classes), "chance_recall": chance,
           "recall_above_chance": float(run.test["recall"]) - chance,
           "best_epoch": int(run.meta["best_val"]["epoch"]),
           "val_f1": float(run.meta["best_val"]["f1"]), "train_loss_last": float(h["train_loss"].iloc[-1]),
           "train_time_s": float(h["train_time_s"].sum())}
    if "train_ca" in h:
        out["train_ca_last"] = float(h["train_ca"].iloc[-1])
    return out


CANONICAL_DRAW = {"n_samples": 64, "seed": 0}      # the simulator draw hashed into setup_fingerprint


def _summary_of(x) -> list:
    """Per-sample mean, standard deviation and mean absolute step along the last axis of an
    array, at 4 significant digits: any change to what the simulator draws moves them, and
    a last-bit difference of floating-point maths between machines (SIMD sin / exp) does not."""
    a = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    step = np.abs(np.diff(a, axis=1)).mean(axis=1) if a.shape[1] > 1 else np.zeros(len(a))
    return [f"{v:.4g}" for v in np.concatenate([a.mean(axis=1), a.std(axis=1), step])]


def simulator_fingerprint(regimes: Sequence[str] = ("headroom",)) -> dict:
    """What the simulator draws, in short: for every regime, ``make_synthetic(**CANONICAL_DRAW)``
    summarised (labels, subjects and ids exactly; every array per sample, see ``_summary_of``),
    and the ids of that draw's "id" and "ood" splits (``data.load``: ``data.RATIOS`` and the
    splitting code). A change to the generator, its tables (``EVENT_SHAPES``, colours, sizes,
    tones, ...) or its defaults changes it."""
    from .data import RATIOS, load
    from .data import synthetic as sim

    out = {"ratios": RATIOS}
    for regime in sorted(set(regimes)):
        d = sim.make_synthetic(regime=regime, **CANONICAL_DRAW)
        draw = {"labels": d["labels"].tolist(), "subjects": d["subjects"].tolist(), "ids": list(d["ids"]),
                "classes": list(d["classes"]), "rates": d["sample_rates"],
                "arrays": {m: _summary_of(v) for m, v in sorted(d["arrays"].items())}}
        for split in ("id", "ood"):
            sp = load("synthetic", split=split, regime=regime, **CANONICAL_DRAW)
            draw[split] = [list(getattr(sp, part).ids) for part in ("train", "val", "test")]
        out[regime] = draw
    return out


def data_identity(splits) -> str:
    """What a real dataset's windows are (of a cross-validation split, its first fold: every
    fold holds the same windows): a hash of every part's sample ids, subjects, labels and
    input bytes, per modality, and of the modalities' kinds and sample rates (an audio model's
    front end is built from its rate). It follows the content, not the files' times: a copy
    of the dataset (another node's, a re-download) has the same identity, changed files another."""
    from .frozen_source import _hash_data

    sp = splits[0] if isinstance(splits, list) else splits
    h = hashlib.sha256()
    h.update(json.dumps({"kinds": sp.train.kinds, "sample_rates": {k: None if v is None else float(v) for k, v in
                                                                  sp.train.sample_rates.items()}},
                        sort_keys=True).encode())
    for d in (sp.train, sp.val, sp.test, sp.unlabeled):
        if d is None:
            continue
        h.update(json.dumps([int(s) for s in d.subjects]).encode())
        for m in sorted(d.arrays):                   # ids, labels and bytes of each modality's inputs
            h.update(_hash_data(d, m).encode())
    return h.hexdigest()[:16]


def setup_fingerprint(dataset: str = "synthetic", preset: str = "synthetic", source: str = "video",
                      target: str = "imu", regimes: Sequence[str | None] = ("headroom",),
                      data: str | None = None, kinds: Mapping[str, str] | None = None) -> str:
    """A short hash of what a run's result depends on beyond its parameters: the resolved
    presets of source and target (their content: epochs, learning rate, encoder sizes; not
    the preset's name, except for a modality no preset resolves, such as the simulator's
    ``imu_clean``, recorded by the preset's name) and, for the synthetic dataset, the simulator's settings
    (``HEADROOM_KNOBS``, the class motions, ``make_synthetic``'s defaults) and a small
    canonical draw of its output for every regime in ``regimes`` (``simulator_fingerprint``);
    for a real dataset, ``data`` (its ``data_identity``). Sweeps put it in every run's
    identity (column ``setup``), so a run stored before a preset, simulator or data change
    is trained again instead of being read back as if it were current. Other changes to the
    code (the training loop, the models) are not detected: use ``redo=True`` after one.
    ``kinds``: the data's {modality: kind} (a real dataset's, whose names may be your own):
    each preset is resolved for its kind, and one that does not exist is an error here, not
    in every run."""
    import inspect

    from .presets import get_preset

    from .presets import PRESET_NAMES

    if preset not in PRESET_NAMES:          # said here, not in every run
        raise ValueError(f"preset must be one of {list(PRESET_NAMES)}, got {preset!r}")
    if preset == "paper" and dataset == "synthetic":
        raise ValueError("preset 'paper' picks its Table I row by the dataset ('uestc', 'cough' or 'vggsound'); "
                         "on the simulator use preset 'synthetic' or 'uestc-target'")
    what: dict[str, Any] = {}
    for role, m in (("source", source), ("target", target)):
        if kinds is not None:
            what[role] = get_preset(preset, m, dataset, kind=kinds.get(m)).to_dict()
            continue
        try:
            what[role] = get_preset(preset, m, None if dataset == "synthetic" else dataset).to_dict()
        except ValueError:          # the simulator's copies (imu_clean): the preset's name stands for them
            what[role] = preset
    if dataset == "synthetic":
        from .data import synthetic as sim

        what["simulator"] = {"knobs": sim.HEADROOM_KNOBS, "motions": sim.MOTION_HEADROOM,
                             "defaults": {k: v.default for k, v in
                                          inspect.signature(sim.make_synthetic).parameters.items()},
                             "draw": simulator_fingerprint([r or "headroom" for r in regimes])}
    if data is not None:
        what["data"] = data
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _check_control(fixed: Mapping[str, Any]) -> None:
    """A grid's ``control`` and ``n_labeled``, checked before anything trains."""
    from .data.controls import teacher_name

    control, n_labeled = fixed.get("control"), fixed.get("n_labeled")
    if control not in (None, *CONTROLS):
        raise ValueError(f"control must be None or one of {CONTROLS} (data.controls), got {control!r}")
    if n_labeled is not None and (isinstance(n_labeled, bool) or not isinstance(_plain(n_labeled), int)
                                  or n_labeled < 1):
        raise ValueError(f"n_labeled must be None (every label) or a positive int (the training recordings that "
                         f"keep their labels), got {n_labeled!r}")
    target = fixed.get("target", TARGET_DEFAULTS["target"])
    if control == "positive" and fixed.get("source") != teacher_name(target):
        raise ValueError(f"the positive control's source is the target's copy {teacher_name(target)!r} "
                         f"(control_studies sets it), got source={fixed.get('source')!r}")


def _check_control_labels(g: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> None:
    """The positive control's ``n_labeled`` against the training recordings of each draw, size
    and fold, before the sources train: it must leave some unlabeled, or the control has no
    few-label setting (``hide_labels`` would keep every label). Every draw is checked: a
    subject-disjoint split puts a different number of recordings in training in each."""
    where_keys = (("draw", "data_seed"), ("size", "n_samples"), ("fold", "fold"))
    for data_seed, n_samples, fold in dict.fromkeys((r.get("data_seed", g["data_seed"]), r.get("n_samples"),
                                                     r.get("fold")) for r in runs):
        seed = g["seed"] if data_seed is None else data_seed
        sp = _splits(g["dataset"], g["root"], g["split"], seed, n_samples, g["regime"], g["data_options"],
                     (g["source"], g["target"]), fold, "positive")
        n_rec = len(set(sp.train.groups))
        values = dict(data_seed=data_seed, n_samples=n_samples, fold=fold)
        where = ", ".join(f"{name} {values[k]}" for name, k in where_keys if values[k] is not None)
        if g["n_labeled"] >= n_rec:
            raise ValueError(f"control_labels = {g['n_labeled']}: the positive control keeps that many training "
                             f"recordings' labels, but the data{f' ({where})' if where else ''} has {n_rec} "
                             f"training recordings: give fewer than {n_rec}, so some stay unlabeled pairs")


# What each study of control_studies is read on: F1, except the negative control, read on its recall
# above the run's own chance (recall - chance_recall). With the target shuffled, a model's expected
# recall is its chance_recall, a function of its predictions' class shares alone (the shares do not
# change with the shuffle), so recall above chance has expectation exactly 0 for every model and
# method; recall alone does too only with every class in the test part (then chance is 1 / classes).
# F1's expectation depends on the predictions' spread.
STUDY_METRIC = {"main": "f1", "negative control": "recall_above_chance", "positive control": "f1"}


def control_studies(methods: Sequence[str], *, sizes: Sequence[int | None] = (None,),
                    target: str | None = None, control_labels: int | None = None,
                    folds: Sequence[int] | None = None) -> list[dict]:
    """The studies of a sweep with its controls, for ``run_studies``: ``"main"`` (the grid
    as asked), ``"negative control"`` (the same grid on ``data.controls.break_pairing``'s
    data: the target's inputs shuffled, read on recall above chance; the main study's source) and
    ``"positive control"`` (the same grid from ``data.controls.with_teacher``'s teacher,
    a copy of the target trained on every label, the target keeping ``control_labels``
    labels, None: ``controls.default_labels``, the rest unlabeled pairs). Summarise each
    study on ``STUDY_METRIC[study]`` with Holm within it (``summarise_studies``)."""
    from .data.controls import teacher_name

    target = target or TARGET_DEFAULTS["target"]
    common = {"methods": list(methods), "sizes": list(sizes), **({"folds": list(folds)} if folds is not None else {})}
    return [{"study": "main", **common},
            {"study": "negative control", **common, "control": "negative"},
            {"study": "positive control", **common, "control": "positive", "source": teacher_name(target),
             "n_labeled": control_labels}]


def _transfer_params(methods, lams, sizes, seeds, folds, fixed: Mapping[str, Any],
                     data_seeds: Sequence[int] | None = None) -> list[dict]:
    """The runs of one transfer grid, checked: method x lambda x size (x data draw) x seed
    (x fold), each with the grid's fixed settings and the setup fingerprint."""
    unknown = set(fixed) - set(TARGET_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown sweep setting(s) {sorted(unknown)}: expected some of {sorted(TARGET_DEFAULTS)}")
    _check_control(fixed)
    if data_seeds is not None and fixed.get("data_seed") is not None:
        raise ValueError(f"data_seeds={list(data_seeds)} (an axis) and data_seed={fixed['data_seed']} (one fixed "
                         "draw) exclude each other: give one")
    from .losses import check_lam
    from .objectives import accepted_options, make_objective

    # a bad lambda, baseline or pair fails here, before any source trains; a lambda is a float (check_lam), so
    # lam=1 and lam=1.0 are one run (one run_key), as the default 1.0 and the CLI's --lams (type=float) spell it
    lams = [None if lam is None else check_lam(lam, "every value of lams") for lam in lams]
    if fixed.get("source", TARGET_DEFAULTS["source"]) == fixed.get("target", TARGET_DEFAULTS["target"]):
        raise ValueError(f"source and target are both {fixed.get('source', TARGET_DEFAULTS['source'])!r}: a transfer "
                         "needs two modalities")
    if fixed.get("dataset", TARGET_DEFAULTS["dataset"]) == "synthetic":     # real data: its load below says it
        from .data.controls import teacher_name
        from .data.synthetic import MODALITIES as SIM

        target = fixed.get("target", TARGET_DEFAULTS["target"])
        known = (*SIM, teacher_name(target)) if fixed.get("control") == "positive" else SIM
        for role in ("source", "target"):
            if fixed.get(role, TARGET_DEFAULTS[role]) not in known:
                raise ValueError(f"{role} {fixed.get(role)!r}: the simulator's modalities are {list(known)}")
    options = fixed.get("options") or {}
    if options:              # kd_temperature=2 and 2.0 are one run: a float parameter's whole number as a float
        floats = _float_options(methods)
        options = {str(k): float(v) if k in floats and type(v) is int else v
                   for k, v in ((k, _plain(v)) for k, v in options.items())}
        fixed = {**fixed, "options": options}
    for m in methods:           # a typo fails here, not in every worker
        make_objective(m, d_target=1, d_source=1, **{k: v for k, v in options.items() if k in accepted_options(m)})
    unused = set(options) - set().union(*(accepted_options(m) for m in methods))
    if unused:
        raise ValueError(f"option(s) {sorted(unused)} are taken by none of the methods {list(methods)}")
    axes = dict(method=list(methods), lam=list(lams), n_samples=list(sizes))
    if data_seeds is not None:
        bad = [d for d in data_seeds if isinstance(d, bool) or not isinstance(_plain(d), int)]
        if bad or not list(data_seeds):
            raise ValueError(f"data_seeds must be a non-empty list of integers (one data draw each), got "
                             f"{list(data_seeds)}")
        axes["data_seed"] = list(data_seeds)
    axes["seed"] = list(seeds)
    if folds is not None:
        axes["fold"] = list(folds)
    runs = grid(**axes)
    g = {**TARGET_DEFAULTS, **fixed, **runs[0]}
    if g["dataset"] != "synthetic" and any(n is not None for n in sizes):
        raise ValueError(f"sizes={list(sizes)}: a size is the simulator's n_samples; {g['dataset']!r} has the "
                         "recordings it has (leave sizes out)")
    if g["split"] == "lists" and data_seeds is not None and len(set(data_seeds)) > 1 \
            and g["n_labeled"] is None and g["control"] is None:     # those draw hidden labels / a shuffle
        raise ValueError(f"data_seeds={list(data_seeds)} with split='lists': the published lists are one split that "
                         "no data seed changes, so every draw would be the same data and the verdicts pooled over "
                         "them would count one draw as several; leave data_seeds out (the seeds still vary training)")
    check_data_options(g["dataset"], g["data_options"])
    data = kinds = None
    if g["dataset"] != "synthetic":      # real data: loaded here once (as the first run loads it) for its identity
        _load.cache_clear()              # files may have changed since this process last loaded them
        # the negative control's shuffle follows from the data and seed (its runs' keys hold control): its
        # setup is the main study's, so its source is the main study's source, not a second one
        sp = _splits(g["dataset"], g["root"], g["split"], g["seed"] if g["data_seed"] is None else g["data_seed"],
                     g["n_samples"], g["regime"], g["data_options"], (g["source"], g["target"]), g.get("fold"),
                     None if g["control"] == "negative" else g["control"])
        data, kinds = data_identity(sp), (sp[0] if isinstance(sp, list) else sp).train.kinds
    setup = setup_fingerprint(*(g[k] for k in ("dataset", "preset", "source", "target")), regimes=[g["regime"]],
                              data=data, kinds=kinds)
    if g["control"] == "positive" and g["n_labeled"] is not None:   # after the reload above: today's files
        _check_control_labels(g, runs)
    # settings are the same for every run, even list-valued ones (split=["group_kfold", 5])
    fixed = {k: v for k, v in fixed.items() if not (k == "data_seed" and data_seeds is not None)}
    out = [{**p, **{k: _plain(v) for k, v in fixed.items()}, "setup": setup} for p in runs]
    if options:              # a run's identity holds the options its method takes (adding kd's keeps dcat's runs)
        for p in out:
            mine = {k: v for k, v in p.pop("options").items() if k in accepted_options(p["method"])}
            if mine:
                p["options"] = mine
    return out


def _float_options(methods: Sequence[str]) -> set[str]:
    """The options of the methods' objectives whose default is a float (``kd_temperature``,
    ``nce_temperature``): ``_transfer_params`` spells their whole numbers as floats."""
    from .objectives import OBJECTIVES

    out = set()
    for m in methods:
        for name in m.split("+"):
            for a, prm in inspect.signature(OBJECTIVES[name].__init__).parameters.items():
                if type(prm.default) is float:
                    out.add(a)
    return out


def _need_baseline(methods: Sequence[str]) -> None:
    """A grid's methods must hold the baseline, "none": every method is compared with it."""
    if "none" not in methods:
        raise ValueError(f"methods {list(dict.fromkeys(methods))} have no baseline: add 'none' (every method is "
                         "compared with the baseline trained with the same seed and data)")


def parse_shard(shard: str | Sequence[int] | None, environ: Mapping[str, str] | None = None
                ) -> tuple[int, int] | None:
    """``(k, n)``, shard k of n (1 <= k <= n), from ``(k, n)``, ``"k/n"`` or ``"auto"``: a
    job array's index from the environment (SLURM: ``SLURM_ARRAY_TASK_ID`` minus
    ``SLURM_ARRAY_TASK_MIN``, of ``SLURM_ARRAY_TASK_COUNT``; so ``--array=0-3`` and
    ``--array=1-4`` both give shards 1..4 of 4) or ``"auto/N"``: shard ``SLURM_ARRAY_TASK_ID`` + 1
    of N, for ``--array=0-(N-1)``. Only "auto/N" survives resubmitting some of the array's tasks:
    the environment of a resubmitted task does not hold the first array's size, so "auto" refuses
    what it can tell (ids not contiguous, a one-task array whose id is not 0) and cannot tell
    ``--array=3-4`` from a 2-task array. None: no sharding."""
    if shard is None:
        return None
    if isinstance(shard, str) and shard.startswith("auto/"):
        env = os.environ if environ is None else environ
        try:
            n = int(shard[len("auto/"):])
        except ValueError:
            raise ValueError(f"shard='auto/N' needs the array's size N, a whole number, got {shard!r}") from None
        if env.get("SLURM_ARRAY_TASK_ID") in (None, ""):
            raise ValueError(f"shard={shard!r} reads the job array's index from SLURM_ARRAY_TASK_ID (SLURM's "
                             "sbatch --array); it is not set: give shard='k/n' instead")
        task = int(env["SLURM_ARRAY_TASK_ID"])
        if not 0 <= task < n:
            raise ValueError(f"shard={shard!r} runs task ids 0..{n - 1} (--array=0-{n - 1}) as shards 1..{n}; "
                             f"this task's SLURM_ARRAY_TASK_ID is {task}")
        return parse_shard((task + 1, n))
    if isinstance(shard, str) and shard == "auto":
        env = os.environ if environ is None else environ
        need = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")
        if not all(v in env for v in need):
            raise ValueError(f"shard='auto' reads the job array's index from {need[0]} and {need[1]} "
                             "(SLURM's sbatch --array); they are not set: give shard='k/n' instead")
        task, lo, n = (int(env[v]) if env.get(v) not in (None, "") else None for v in
                       ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"))
        lo = 0 if lo is None else lo
        step = int(env.get("SLURM_ARRAY_TASK_STEP") or 1)
        hi = env.get("SLURM_ARRAY_TASK_MAX")
        if step != 1 or (hi not in (None, "") and int(hi) - lo + 1 != n) or (n == 1 and lo != 0):
            raise ValueError(f"shard='auto' needs a job array of contiguous task ids (--array=0-{n - 1}); this one "
                             f"has {n} tasks from {lo} to {hi} in steps of {step} (a resubmission of some "
                             "tasks, or a stepped array), which would run the wrong shards: give "
                             "--shard k/n explicitly, or --shard auto/N for --array=0-(N-1), which a "
                             "resubmission of some of its tasks keeps")
        return parse_shard((task - lo + 1, n))
    try:
        k, n = (int(x) for x in shard.split("/")) if isinstance(shard, str) else (int(x) for x in shard)
    except (ValueError, TypeError):
        raise ValueError(f"shard must be 'k/n' (shard k of n, 1 <= k <= n), (k, n), 'auto' or 'auto/N', "
                         f"got {shard!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"shard k/n needs 1 <= k <= n (k counts from 1), got {k}/{n}")
    return k, n


def shard_of(params: Sequence[Mapping[str, Any]], k: int, n: int) -> list[dict]:
    """The target runs of shard k of n: the grid ordered by its source's identity (then by
    run), cut into n contiguous blocks of nearly equal size; block k. Every shard computes
    the same order from the same grid, so the shards cover it exactly once."""
    order = sorted(params, key=lambda p: (run_key(source_identity(p)), run_key(p)))
    return [dict(p) for p in order[(k - 1) * len(order) // n: k * len(order) // n]]


def _run_bytes(p: Mapping[str, Any], modality: str) -> int | None:
    """``estimate_run_bytes`` for the runs like ``p`` training ``modality`` (the source for
    the sources, the target for the targets, which read the source from a cache). Only
    with CUDA (it loads the data once for its shapes); None when it cannot tell."""
    import torch

    if not torch.cuda.is_available():
        return None
    from .presets import get_preset

    try:
        g = {**TARGET_DEFAULTS, **p}
        sp = _splits(g["dataset"], g["root"], g["split"], g["seed"] if g["data_seed"] is None else g["data_seed"],
                     g["n_samples"], g["regime"], g["data_options"], (g["source"], g["target"]), g.get("fold"),
                     g["control"])
        batch = get_preset(g["preset"], modality, None if g["dataset"] == "synthetic" else g["dataset"],
                           kind=sp.kinds.get(modality) if hasattr(sp, "kinds") else None).batch_size
        return estimate_run_bytes(batch, [sp.train.input_shape(modality)])
    except Exception:             # noqa: BLE001 - no estimate: one worker per GPU, as without one
        return None


def _mine(params: list[dict], shard, gather: bool, redo: bool = False) -> list[dict]:
    """The runs this call does: all of them, or its shard's (``parse_shard``, ``shard_of``)."""
    shard = parse_shard(shard)
    if shard is None:
        return params
    if gather:
        raise ValueError("gather reads the runs of every shard: give no shard with it")
    if redo:
        raise ValueError("redo with a shard would train a source two shards share twice (each shard redoes it, "
                         "and the later copy replaces the one the other shard's runs used): to train a sharded "
                         "sweep again, move its folder's runs/ and sources/ away and run the shards without redo")
    return shard_of(params, *shard)


def _run_transfer_params(out_dir, params: list[dict], workers, redo, progress, device,
                         gather: bool = False, shard: bool = False) -> pd.DataFrame:
    """Sources first (each distinct one once, in parallel), then the target runs;
    gather: read every run back, train nothing. ``shard``: this call is a shard, which refuses
    redo, so the warnings' advice to retrain says what a shard can do instead."""
    out = Path(out_dir)
    if gather:
        if redo:
            raise ValueError("gather reads finished runs back and redo trains them again: give one")
        return run_grid(functools.partial(transfer_task, out_dir=str(out), device=device), params, out,
                        read_only=True, progress=False)
    if not params:                  # a shard with nothing to do (more shards than runs)
        return pd.DataFrame()
    sources = {}
    for p in params:
        ident = source_identity(p)
        sources[run_key(ident)] = {k: v for k, v in ident.items() if k in p or k in ("seed", "data_seed")}
    src_params = list(sources.values())
    run_grid(functools.partial(source_task, out_dir=str(out), device=device, redo=redo), src_params,
             out / "sources", workers=workers, redo=redo, progress=progress, shard_runs=out / "runs" if shard else None,
             run_bytes=_run_bytes(params[0], params[0].get("source", TARGET_DEFAULTS["source"])))
    return run_grid(functools.partial(transfer_task, out_dir=str(out), device=device), params, out,
                    workers=workers, redo=redo, progress=progress, shard_runs=out / "runs" if shard else None,
                    run_bytes=_run_bytes(params[0], params[0].get("target", TARGET_DEFAULTS["target"])))


def check_data_options(dataset: str, data_options) -> None:
    """Refuse loader options that the sweep sets itself (``data.LOAD_ARGS``; on the synthetic data
    also ``n_samples`` and ``regime``): a value there would clash with its own. ``n_labeled`` too:
    as a data option it would hide the frozen source's labels as well as the target's (the
    sweep's own ``n_labeled`` setting hides the target's alone)."""
    from .data import LOAD_ARGS

    clash = sorted(set(data_options or {}) & (LOAD_ARGS | (
        {"n_samples", "regime"} if dataset == "synthetic" else set())))
    if clash:
        raise ValueError(f"data_options may not set {clash}: the sweep sets them itself (root, split, the data seed "
                         "or seed, source/target, sizes, regime), so a value there would clash with its own")
    if "n_labeled" in (data_options or {}):   # data options load the source's data too
        raise ValueError(f"data_options may not set n_labeled (got {data_options['n_labeled']!r}): every run loads "
                         "them, the frozen source's data too, so the source would train on those few labels (and "
                         "the positive control's runs fail), where a sweep's source trains on every label. The "
                         "labels the target keeps are the sweep's own setting: --n-labeled K (run_transfer_sweep(..., "
                         "n_labeled=K)) or, for the positive control, --controls --control-labels K")


def run_transfer_sweep(out_dir: str | Path, *, methods: Sequence[str] = ("none", "dcat"),
                       lams: Sequence[float] = (1.0,), sizes: Sequence[int | None] = (None,),
                       seeds: Iterable[int] = range(10), folds: Sequence[int] | None = None,
                       data_seeds: Iterable[int] | None = None,
                       workers: int | None = None, redo: bool = False, progress: bool = True, device="auto",
                       shard: str | Sequence[int] | None = None, gather: bool = False,
                       **fixed: Any) -> pd.DataFrame:
    """A method x lambda x size (``n_samples``, synthetic data) x data draw x seed (x fold, for a
    cross-validation ``split`` such as "loso" or ["group_kfold", k]: folds run like seeds,
    summarise with ``pair=("seed", "fold")``) grid of transfer runs, sources first, as one
    table (one row per target run; see ``transfer_task`` for the columns and ``TARGET_DEFAULTS``
    for what ``fixed`` may set: dataset, split, regime, data_options, source, target, preset,
    mcma, epochs_source, epochs_target, options, monitor, data_seed, source_seed; ``options``
    reach the methods that take them, e.g. ``kd_temperature`` only kd and dcat+kd).

    ``data_seeds``: several draws of the data as an axis (column ``data_seed``): each draw
    gets its own sources, trained on it, and its own targets; summarise with
    ``dcatkit.stats.summarise(df, draw="data_seed")``. None: the data seed is the run's
    seed (or the fixed ``data_seed``). Resumable and parallel as ``run_grid``; ``out_dir``
    holds the runs, the source checkpoints and the source caches. ``redo=True`` trains
    sources and targets again. ``shard`` (``(k, n)``, ``"k/n"``, ``"auto"`` or ``"auto/N"``,
    ``parse_shard``): run only shard k of n (``shard_of``) and return its rows;
    ``gather=True``: train nothing, return every run of the grid (an error names a missing
    one). ``device`` is not part of a run's identity: a run finished on a GPU is not redone
    on a CPU; the presets and simulator or, for a real dataset, the content of its windows
    (``setup_fingerprint``) are."""
    _need_baseline(methods)
    params = _transfer_params(methods, lams, sizes, list(seeds), folds, fixed,
                              None if data_seeds is None else list(data_seeds))
    params = _mine(params, shard, gather, redo)
    return _run_transfer_params(out_dir, params, workers, redo, progress, device, gather,
                                parse_shard(shard) is not None)


def run_studies(out_dir: str | Path, studies: Sequence[Mapping[str, Any]], *, lams: Sequence[float] = (1.0,),
                seeds: Iterable[int] = range(10), data_seeds: Iterable[int] | None = None,
                workers: int | None = None, redo: bool = False,
                progress: bool = True, device="auto", shard: str | Sequence[int] | None = None,
                gather: bool = False, **fixed: Any) -> pd.DataFrame:
    """Several transfer grids run as one sweep. ``studies``: dicts, each with ``study``
    (its name), ``methods``, ``sizes`` (optional, default ``[None]``), ``lams`` (optional,
    default the ``lams`` argument), ``folds`` (optional: a cross-validation split's folds, as
    in ``run_transfer_sweep``) and settings of
    ``TARGET_DEFAULTS`` (e.g. source, target, split, regime) that override ``fixed``.
    ``data_seeds``, ``shard``, ``gather``: as in ``run_transfer_sweep``, for every study.

    Every frozen source of every study trains first, in one pool of workers, then
    every target run of every study in one pool, so no worker waits for the end of a
    study (run one ``run_transfer_sweep`` per study and a study's slowest source or
    last run leaves the other workers idle). Returns one table, the runs of each study
    in order, with a ``study`` column; a run two studies share is trained once."""
    seeds, per_study = list(seeds), []
    data_seeds = None if data_seeds is None else list(data_seeds)
    for s in studies:
        s = dict(s)
        missing = {"study", "methods"} - set(s)
        if missing:
            raise ValueError(f"a study needs {sorted(missing)}; got the keys {sorted(s)}")
        name, methods, sizes = s.pop("study"), s.pop("methods"), s.pop("sizes", [None])
        folds = s.pop("folds", None)           # a cross-validation split's folds (as run_transfer_sweep's folds=)
        study_lams = s.pop("lams", lams)       # a study's own lambda grid (e.g. one tuned on validation F1)
        per_study.append((name, _transfer_params(methods, study_lams, sizes, seeds, folds, {**fixed, **s},
                                                 data_seeds)))
    _need_baseline([m for s in studies for m in s["methods"]])   # studies may share one study's baseline
    names = [n for n, _ in per_study]
    if len(set(names)) != len(names):
        raise ValueError(f"study names must be distinct, got {names}")
    unique = {run_key(p): p for _, ps in per_study for p in ps}
    mine = _mine(list(unique.values()), shard, gather, redo)
    table = _run_transfer_params(out_dir, mine, workers, redo, progress, device, gather,
                                 parse_shard(shard) is not None)
    row_of = {run_key(p): i for i, p in enumerate(mine)}
    parts = [table.iloc[[row_of[run_key(p)] for p in ps if run_key(p) in row_of]].assign(study=name)
             for name, ps in per_study]
    return pd.concat(parts, ignore_index=True)


def summarise_study(df: pd.DataFrame, metric: str = "f1") -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``(summary, per_draw)`` of one grid's runs on ``metric``: paired with the baseline on seed
    (and fold), one Holm family. With data draws as an axis (a ``data_seed`` column, e.g.
    ``data_seeds=``) the cells pool the draws (``stats.summarise_draws``: a t on the draw means)
    and ``per_draw`` holds each draw's own, descriptive rows; without, every seed is its own draw
    (``stats.summarise``) and ``per_draw`` is None."""
    from . import stats

    pair = ["seed", "fold"] if "fold" in df else ["seed"]
    if "data_seed" in df and df["data_seed"].notna().any():
        return stats.summarise_draws(df, metric, pair=pair, draw="data_seed")
    return stats.summarise(df, metric, pair=pair), None


def summarise_studies(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``summarise_study`` for each study of ``run_studies(control_studies(...))``, on its
    metric (``STUDY_METRIC``), each its own Holm family; the rows carry ``study`` and ``metric``."""
    summaries, per_draws = [], []
    for study, part in df.groupby("study", sort=False):
        metric = STUDY_METRIC[study]
        summary, per_draw = summarise_study(part, metric)
        summaries.append(summary.assign(study=study, metric=metric))
        if per_draw is not None:
            per_draws.append(per_draw.assign(study=study, metric=metric))
    return (pd.concat(summaries, ignore_index=True),
            pd.concat(per_draws, ignore_index=True) if per_draws else None)

