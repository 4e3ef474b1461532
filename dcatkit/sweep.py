"""Sweeps: a grid of runs (method x lambda x training-set size x seed x ...) in
parallel worker processes, resumable, returned as one tidy table.

    from dcatkit.sweep import run_transfer_sweep
    df = run_transfer_sweep("runs/sweep", methods=["none", "dcat", "kd"], lams=[1.0],
                            sizes=[300, 700, 2000], seeds=range(10))     # video -> IMU, synthetic
    summary = dcatkit.stats.summarise(df)                                # paired CIs per cell

``run_transfer_sweep`` trains the frozen sources first (one per seed and data:
every method of that seed shares it), then one target per (method, lambda, size,
seed) with ``experiment.train_transfer`` (method ``"none"`` is the baseline, the
same model as ``train_unimodal``). ``run_studies`` runs several such grids (e.g.
video -> IMU on two splits and IMU -> video) as one sweep, sharing the workers.
The generic layer below it runs any task:

    from dcatkit.sweep import grid, run_grid
    params = grid(method=["none", "dcat", "kd"], lam=[1.0], n_samples=[300, 700], seed=range(10))
    df = run_grid(my_task, params, "runs/sweep")      # my_task(**p) -> dict of numbers

- Workers: ``workers=None`` uses one process per CPU core (``os.sched_getaffinity``),
  or one per GPU when CUDA is present (each worker sees only its own GPU through
  ``CUDA_VISIBLE_DEVICES``). Each worker runs torch with one thread
  (``torch.set_num_threads(1)``): runs, not threads, share the cores. Workers
  are started with the ``"spawn"`` method (safe with CUDA and threads, the same
  on every OS), so ``task`` must be a module-level function. ``workers=0`` runs
  everything in this process (for debugging).
- Resumable: each finished run is written atomically to ``out_dir/runs/`` as its
  own small JSON file named after a hash of its parameters (for transfer runs
  these include ``setup``, a hash of the presets and simulator settings:
  ``setup_fingerprint``). A rerun reads those
  back and never redoes them (``redo=True`` does). A failed run writes nothing,
  so a rerun retries exactly the failed ones; ``run_grid`` raises after the
  others finished, naming the failures.
- Results: one row per run, the parameters' columns then the task's results.
  The baseline of a paired comparison (``dcatkit.stats.summarise``) is the run
  with method ``"none"`` and the same seed, size and data.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

NO_LAMBDA = ("none",)        # methods without a transfer term: their runs do not repeat over lambda


def _plain(v: Any) -> Any:
    """Numpy scalars -> Python scalars, tuples -> lists, so a parameter has one JSON form."""
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 1) == 0:
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def grid(**axes: Any) -> list[dict]:
    """All combinations of the axes' values, as a list of parameter dicts.

    An axis given a list, tuple or range varies; any other value (a number, a
    string, None, a dict) is the same for every run. Runs of a method in
    ``NO_LAMBDA`` (the baseline ``"none"``) get ``lam=None`` and appear once per
    combination of the other axes instead of once per lambda.
    """
    varying = {k: [_plain(x) for x in v] for k, v in axes.items() if isinstance(v, (list, tuple, range))}
    fixed = {k: _plain(v) for k, v in axes.items() if k not in varying}
    for k, v in varying.items():
        if not v:
            raise ValueError(f"axis {k!r} has no values")
    out, seen = [], set()
    for combo in itertools.product(*varying.values()):
        p = {**dict(zip(varying, combo)), **fixed}
        p = {k: p[k] for k in axes}                                   # the caller's column order
        if p.get("method") in NO_LAMBDA and "lam" in p:
            p["lam"] = None
        key = run_key(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def run_key(params: Mapping[str, Any]) -> str:
    """A stable short name for a run's parameters (hash of their sorted JSON form)."""
    text = json.dumps({k: _plain(v) for k, v in params.items()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _path(out_dir: Path, params: Mapping[str, Any]) -> Path:
    return out_dir / "runs" / f"{run_key(params)}.json"


def _write_json(path: Path, payload: dict) -> None:
    """Write atomically (temp file + os.replace): a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(o):
    v = _plain(o)
    if v is o:
        raise TypeError(f"a sweep result must be JSON-serialisable (numbers, strings, lists, dicts); "
                        f"got {type(o).__name__}")
    return v


def read_run(out_dir: str | Path, params: Mapping[str, Any]) -> dict | None:
    """The stored record of a finished run ({"params", "result", "wall_s", ...}), or None."""
    path = _path(Path(out_dir), params)
    if not path.is_file():
        return None
    rec = json.loads(path.read_text())
    if rec.get("params") != {k: _plain(v) for k, v in params.items()}:
        raise ValueError(f"{path} holds the run {rec.get('params')}, not {dict(params)} (a hash clash or "
                         "a hand-edited file): move it away and rerun")
    return rec


def _run_one(task: Callable[..., Mapping[str, Any]], params: dict, out_dir: str) -> dict:
    """Run one task and store its record (in the worker, so finished work survives the parent)."""
    t0 = time.perf_counter()
    result = task(**params)
    if not isinstance(result, Mapping):
        raise TypeError(f"a sweep task must return a dict of results, got {type(result).__name__}")
    clash = set(result) & set(params)
    if clash:
        raise ValueError(f"the task's results reuse parameter names {sorted(clash)}: rename them")
    rec = {"params": params, "result": dict(result), "wall_s": time.perf_counter() - t0, "pid": os.getpid()}
    rec = json.loads(json.dumps(rec, default=_json_default))     # as a rerun will read it back
    _write_json(_path(Path(out_dir), params), rec)
    return rec


def _init_worker(threads: int, gpus) -> None:
    """Worker start: pick a GPU (if any) before CUDA starts, then one torch thread."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus.get())
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:              # already set once in this process
        pass


def default_workers() -> int:
    """One worker per GPU when CUDA is present, else one per usable CPU core."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.device_count()
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                       # not on Linux
        return os.cpu_count() or 1


def run_grid(task: Callable[..., Mapping[str, Any]], params: Sequence[Mapping[str, Any]],
             out_dir: str | Path, *, workers: int | None = None, redo: bool = False,
             progress: bool = True, threads: int = 1) -> pd.DataFrame:
    """Run ``task(**p)`` for every ``p`` in ``params`` and return one row per run.

    ``task``: a module-level function returning a dict of JSON-serialisable results
    (e.g. test metrics). ``out_dir``: where finished runs are stored and read back.
    ``workers``: processes (None: ``default_workers()``; 0: in this process).
    ``threads``: torch threads per worker. The table's columns are the parameters,
    the results, and ``wall_s`` (the run's own time). Row order = ``params`` order.
    """
    out = Path(out_dir)
    params = [{str(k): _plain(v) for k, v in p.items()} for p in params]
    keys = [run_key(p) for p in params]
    if len(set(keys)) != len(keys):
        raise ValueError("the grid lists the same run twice; use grid() or drop the duplicates")
    records: dict[str, dict] = {}
    if not redo:
        for p, k in zip(params, keys):
            rec = read_run(out, p)
            if rec is not None:
                records[k] = rec
    todo = [(p, k) for p, k in zip(params, keys) if k not in records]
    workers = default_workers() if workers is None else int(workers)
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = in this process), got {workers}")
    failures: list[tuple[dict, str]] = []
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"sweep ({len(params) - len(todo)} of {len(params)} already done)",
               disable=not progress or not todo, leave=False)
    if workers == 0:
        for p, k in todo:
            try:
                records[k] = _run_one(task, p, str(out))
            except Exception:
                failures.append((p, traceback.format_exc()))
            bar.update()
    elif todo:
        import multiprocessing as mp

        import torch

        ctx = mp.get_context("spawn")
        n = min(workers, len(todo))
        gpus = None
        if torch.cuda.is_available():
            gpus = ctx.Queue()
            for i in range(n):
                gpus.put(i % torch.cuda.device_count())
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=(threads, gpus)) as ex:
            futures = {ex.submit(_run_one, task, p, str(out)): (p, k) for p, k in todo}
            try:
                for f in as_completed(futures):
                    p, k = futures[f]
                    try:
                        records[k] = f.result()
                    except Exception:
                        failures.append((p, traceback.format_exc()))
                    bar.update()
            except BaseException:
                ex.shutdown(wait=True, cancel_futures=True)
                raise
    bar.close()
    if failures:
        first_p, first_tb = failures[0]
        raise RuntimeError(f"{len(failures)} of {len(todo)} runs failed (the {len(todo) - len(failures)} others "
                           f"are saved in {out / 'runs'}; rerun to retry only the failed ones). "
                           f"First failure, {first_p}:\n{first_tb}")
    return _table([records[k] for k in keys])


def _table(records: Iterable[dict]) -> pd.DataFrame:
    rows = [{**r["params"], **r["result"], "wall_s": r["wall_s"]} for r in records]
    return pd.DataFrame(rows)


def read_sweep(out_dir: str | Path) -> pd.DataFrame:
    """Every finished run stored under ``out_dir`` (any grid), one row each, in file-name order."""
    files = sorted((Path(out_dir) / "runs").glob("*.json"))
    return _table(json.loads(f.read_text()) for f in files)



# ------------------------------------------------------------------ transfer sweeps

SOURCE_KEYS = ("dataset", "root", "split", "seed", "n_samples", "regime", "data_options", "source", "target",
               "preset", "epochs_source", "setup")
TARGET_DEFAULTS = {"dataset": "synthetic", "root": None, "split": "id", "regime": "headroom", "data_options": None,
                   "source": "video",
                   "target": "imu", "preset": "synthetic", "mcma": True, "epochs_source": None,
                   "epochs_target": None, "options": None, "monitor": None, "data_seed": None, "source_seed": None}


def source_identity(p: Mapping[str, Any]) -> dict:
    """What makes a run's frozen source: ``SOURCE_KEYS``, with ``seed`` the source's
    training seed. By default the data seed and the source's seed are the run's seed;
    ``data_seed`` / ``source_seed`` (not None) fix them, so runs of every seed share
    one dataset and one source (the source's key then holds both)."""
    ident = {k: p.get(k, TARGET_DEFAULTS.get(k)) for k in SOURCE_KEYS}
    if p.get("fold") is not None:                      # a cross-validation fold: its own data, its own source
        ident["fold"] = p["fold"]
    data_seed, source_seed = p.get("data_seed"), p.get("source_seed")
    if data_seed is None and source_seed is None:
        return ident                                   # the key of a sweep without them, unchanged
    ident["seed"] = p["seed"] if source_seed is None else source_seed
    ident["data_seed"] = p["seed"] if data_seed is None else data_seed
    return ident


def _splits(dataset: str, root, split, seed: int, n_samples, regime, data_options, modalities: tuple,
            fold: int | None = None):
    """The data of one run (cached per worker: every method of a seed reads the same).
    ``data_options``: more arguments of ``data.load`` (e.g. the simulator's frame_size).
    ``split``: "id", "ood", or a cross-validation split ("loso", ["group_kfold", k]),
    of which fold ``fold`` is used."""
    split = tuple(split) if isinstance(split, list) else split
    got = _load(dataset, root, split, seed, n_samples, regime, json.dumps(data_options or {}, sort_keys=True),
                modalities)
    if isinstance(got, list):
        if fold is None or not 0 <= fold < len(got):
            raise ValueError(f"split {split!r} has {len(got)} folds: give fold = 0 .. {len(got) - 1} "
                             f"(run_transfer_sweep(folds=...)), got {fold!r}")
        return got[fold]
    if fold is not None:
        raise ValueError(f"fold={fold} given but split {split!r} has no folds (use 'loso' or ['group_kfold', k])")
    return got


@functools.lru_cache(maxsize=4)
def _load(dataset, root, split, seed, n_samples, regime, data_options: str, modalities):
    from .data import load

    opts = {"n_samples": n_samples, "regime": regime} if dataset == "synthetic" else {}
    return load(dataset, root=root, split=split, seed=seed, modalities=modalities, **opts, **json.loads(data_options))


def _source_path(out_dir: str | Path, p: Mapping[str, Any]) -> Path:
    """``p``: a ``source_identity``."""
    key = run_key(p)
    return Path(out_dir) / "sources" / f"{p.get('source', 'video')}_{key}.pt"


def source_task(*, out_dir: str, seed: int, n_samples: int | None = None, dataset: str = "synthetic",
                root=None, split: str = "id", regime: str | None = "headroom", data_options: dict | None = None,
                source: str = "video",
                target: str = "imu", preset: str = "synthetic", epochs_source: int | None = None,
                data_seed: int | None = None, fold: int | None = None, setup: str | None = None,
                device="auto") -> dict:
    """Train (or find) the frozen source of one seed and data, saved under
    ``out_dir/sources/``; returns its test metrics. The data seed is the training seed
    unless ``data_seed`` is given. ``setup``: ``setup_fingerprint`` (identity only)."""
    from .experiment import load_source, train_unimodal
    from .train import evaluate

    sp = _splits(dataset, root, split, seed if data_seed is None else data_seed, n_samples, regime, data_options,
                 (source, target), fold)
    ident = dict(seed=seed, n_samples=n_samples, dataset=dataset, root=root, split=split, regime=regime,
                 data_options=data_options, source=source, target=target, preset=preset,
                 epochs_source=epochs_source, setup=setup)
    ident.update({k: v for k, v in (("fold", fold), ("data_seed", data_seed)) if v is not None})
    path = _source_path(out_dir, ident)
    if path.is_file():
        model = load_source(path, sp, target)
        test = evaluate(model, sp.test, source, device=device)
    else:
        test = train_unimodal(sp, source, preset=preset, dataset=dataset, epochs=epochs_source, seed=seed,
                              device=device, checkpoint=path, progress=False).test
    return {"source_f1": float(test["f1"]), "source_accuracy": float(test["accuracy"])}


def transfer_task(*, out_dir: str, method: str, seed: int, lam: float | None = None, n_samples: int | None = None,
                  dataset: str = "synthetic", root=None, split: str = "id", regime: str | None = "headroom",
                  data_options: dict | None = None, source: str = "video", target: str = "imu",
                  mcma: bool = True, preset: str = "synthetic",
                  epochs_source: int | None = None, epochs_target: int | None = None, options: dict | None = None,
                  monitor: str | None = None, data_seed: int | None = None, source_seed: int | None = None,
                  fold: int | None = None, setup: str | None = None, device="auto") -> dict:
    """One target run of a sweep: ``experiment.train_transfer`` from the seed's frozen
    source (trained first if missing) with the objective ``method`` (``"none"``: the
    baseline). ``data_seed`` / ``source_seed``: fixed data and source for every seed
    (None: the run's ``seed``; see ``source_identity``). ``setup``: ``setup_fingerprint``
    (part of the run's identity, not used to train). Returns test metrics, the
    source's test F1, the training-set size, the last epoch's training loss and, when
    L_CA was optimised or monitored, its last-epoch training value (``train_ca_last``)."""
    from .experiment import train_transfer

    from .objectives import accepted_options

    ident = source_identity(dict(seed=seed, n_samples=n_samples, dataset=dataset, root=root, split=split,
                                 regime=regime, data_options=data_options, source=source, target=target,
                                 preset=preset, epochs_source=epochs_source, data_seed=data_seed,
                                 source_seed=source_seed, fold=fold, setup=setup))
    src = source_task(out_dir=out_dir, device=device, **ident)
    sp = _splits(dataset, root, split, seed if data_seed is None else data_seed, n_samples, regime, data_options,
                 (source, target), fold)
    options = {k: v for k, v in (options or {}).items() if k in accepted_options(method)}
    run = train_transfer(sp, _source_path(out_dir, ident),
                         target, lam=0.0 if lam is None else lam, mcma=mcma, method=method, options=options,
                         monitor=monitor, preset=preset, dataset=dataset, epochs=epochs_target, seed=seed,
                         device=device, progress=False, cache_dir=Path(out_dir) / "cache")
    h = run.history
    out = {**{m: float(run.test[m]) for m in ("accuracy", "precision", "recall", "f1")}, **src,
           "n_train": len(sp.train), "best_epoch": int(run.meta["best_val"]["epoch"]),
           "val_f1": float(run.meta["best_val"]["f1"]), "train_loss_last": float(h["train_loss"].iloc[-1]),
           "train_time_s": float(h["train_time_s"].sum())}
    if "train_ca" in h:
        out["train_ca_last"] = float(h["train_ca"].iloc[-1])
    return out


def setup_fingerprint(dataset: str = "synthetic", preset: str = "synthetic", source: str = "video",
                      target: str = "imu") -> str:
    """A short hash of what a run's result depends on beyond its parameters: the resolved
    presets of source and target (epochs, learning rate, encoder sizes) and, for the
    synthetic dataset, the simulator's settings (``HEADROOM_KNOBS``, the class motions,
    ``make_synthetic``'s default noise levels and sizes). Sweeps put it in every run's
    identity (column ``setup``), so a run stored before a preset or simulator change is
    trained again instead of being read back as if it were current. Changes to the code
    itself are not detected: use ``redo=True`` after one."""
    import inspect

    from .presets import get_preset

    what: dict[str, Any] = {"preset": preset}
    for m in (source, target):
        try:
            what[m] = get_preset(preset, m, None if dataset == "synthetic" else dataset).to_dict()
        except ValueError:          # a name without a default kind: the preset's name stands for it
            what[m] = None
    if dataset == "synthetic":
        from .data import synthetic as sim

        what["simulator"] = {"knobs": sim.HEADROOM_KNOBS, "motions": sim.MOTION_HEADROOM,
                             "defaults": {k: v.default for k, v in
                                          inspect.signature(sim.make_synthetic).parameters.items()}}
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _transfer_params(methods, lams, sizes, seeds, folds, fixed: Mapping[str, Any]) -> list[dict]:
    """The runs of one transfer grid, checked: method x lambda x size x seed (x fold),
    each with the grid's fixed settings and the setup fingerprint."""
    unknown = set(fixed) - set(TARGET_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown sweep setting(s) {sorted(unknown)}: expected some of {sorted(TARGET_DEFAULTS)}")
    from .objectives import accepted_options, make_objective

    options = fixed.get("options") or {}
    for m in methods:           # a typo fails here, not in every worker
        make_objective(m, d_target=1, d_source=1, **{k: v for k, v in options.items() if k in accepted_options(m)})
    unused = set(options) - set().union(*(accepted_options(m) for m in methods))
    if unused:
        raise ValueError(f"option(s) {sorted(unused)} are taken by none of the methods {list(methods)}")
    axes = dict(method=list(methods), lam=list(lams), n_samples=list(sizes), seed=list(seeds))
    if folds is not None:
        axes["fold"] = list(folds)
    setup = setup_fingerprint(*(fixed.get(k, TARGET_DEFAULTS[k]) for k in ("dataset", "preset", "source", "target")))
    # settings are the same for every run, even list-valued ones (split=["group_kfold", 5])
    return [{**p, **{k: _plain(v) for k, v in fixed.items()}, "setup": setup} for p in grid(**axes)]


def _run_transfer_params(out_dir, params: list[dict], workers, redo, progress, device) -> pd.DataFrame:
    """Sources first (each distinct one once, in parallel), then the target runs."""
    sources = {}
    for p in params:
        ident = source_identity(p)
        sources[run_key(ident)] = {k: v for k, v in ident.items() if k in p or k in ("seed", "data_seed")}
    out = Path(out_dir)
    run_grid(functools.partial(source_task, out_dir=str(out), device=device), list(sources.values()),
             out / "sources", workers=workers, redo=redo, progress=progress)
    return run_grid(functools.partial(transfer_task, out_dir=str(out), device=device), params, out,
                    workers=workers, redo=redo, progress=progress)


def run_transfer_sweep(out_dir: str | Path, *, methods: Sequence[str] = ("none", "dcat"),
                       lams: Sequence[float] = (1.0,), sizes: Sequence[int | None] = (None,),
                       seeds: Iterable[int] = range(10), folds: Sequence[int] | None = None,
                       workers: int | None = None, redo: bool = False, progress: bool = True, device="auto",
                       **fixed: Any) -> pd.DataFrame:
    """A method x lambda x size (``n_samples``, synthetic data) x seed (x fold, for a
    cross-validation ``split`` such as "loso" or ["group_kfold", k]: folds run like seeds,
    summarise with ``pair=("seed", "fold")``) grid of transfer runs, sources first, as one
    table (one row per target run; see ``transfer_task`` for the columns and ``TARGET_DEFAULTS`` for what ``fixed`` may set: dataset, split,
    regime, data_options, source, target, preset, mcma, epochs_source, epochs_target, options,
    monitor, data_seed, source_seed; ``options`` reach the methods that take them, e.g.
    ``kd_temperature`` only kd and dcat+kd). Resumable and parallel as ``run_grid``; ``out_dir`` holds the runs,
    the source checkpoints and the source caches. ``device`` is not part of a run's
    identity: a run finished on a GPU is not redone on a CPU; the presets and simulator
    settings are (``setup_fingerprint``)."""
    params = _transfer_params(methods, lams, sizes, list(seeds), folds, fixed)
    return _run_transfer_params(out_dir, params, workers, redo, progress, device)


def run_studies(out_dir: str | Path, studies: Sequence[Mapping[str, Any]], *, lams: Sequence[float] = (1.0,),
                seeds: Iterable[int] = range(10), workers: int | None = None, redo: bool = False,
                progress: bool = True, device="auto", **fixed: Any) -> pd.DataFrame:
    """Several transfer grids run as one sweep. ``studies``: dicts, each with ``study``
    (its name), ``methods``, ``sizes`` (optional, default ``[None]``) and settings of
    ``TARGET_DEFAULTS`` (e.g. source, target, split, regime) that override ``fixed``.

    Every frozen source of every study trains first, in one pool of workers, then
    every target run of every study in one pool, so no worker waits for the end of a
    study (run one ``run_transfer_sweep`` per study and a study's slowest source or
    last run leaves the other workers idle). Returns one table, the runs of each study
    in order, with a ``study`` column; a run two studies share is trained once."""
    seeds, per_study = list(seeds), []
    for s in studies:
        s = dict(s)
        missing = {"study", "methods"} - set(s)
        if missing:
            raise ValueError(f"a study needs {sorted(missing)}; got the keys {sorted(s)}")
        name, methods, sizes = s.pop("study"), s.pop("methods"), s.pop("sizes", [None])
        per_study.append((name, _transfer_params(methods, lams, sizes, seeds, None, {**fixed, **s})))
    names = [n for n, _ in per_study]
    if len(set(names)) != len(names):
        raise ValueError(f"study names must be distinct, got {names}")
    unique = {run_key(p): p for _, ps in per_study for p in ps}
    table = _run_transfer_params(out_dir, list(unique.values()), workers, redo, progress, device)
    row_of = dict(zip(unique, range(len(unique))))
    parts = [table.iloc[[row_of[run_key(p)] for p in ps]].assign(study=name) for name, ps in per_study]
    return pd.concat(parts, ignore_index=True)
