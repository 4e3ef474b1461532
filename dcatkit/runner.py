"""Run any grid of tasks: one run per combination of parameters, in parallel worker
processes, resumable, returned as one tidy table. ``dcatkit.sweep`` builds its transfer
grids (sources, targets, studies, shards) on this layer, and re-exports its public names.

    from dcatkit.runner import grid, run_grid
    params = grid(method=["none", "dcat", "kd"], lam=[1.0], n_samples=[300, 700], seed=range(10))
    df = run_grid(my_task, params, "runs/sweep")      # my_task(**p) -> dict of numbers

- Workers: ``workers=None`` uses one process per CPU core (``os.sched_getaffinity``).
  With CUDA and an estimate of one run's memory (``run_bytes``, which the sweeps pass),
  several workers share each GPU (without one, one worker per GPU): as many as fit in
  its free memory (``torch.cuda.mem_get_info``) at ``estimate_run_bytes`` each, at most the CPU cores
  per GPU, at least one (``gpu_workers_per_device``); each worker sees only its own
  GPU through ``CUDA_VISIBLE_DEVICES`` (an entry of this process's own list: ``visible_gpus``).
  Each worker runs torch with one thread
  (``torch.set_num_threads(1)``): runs, not threads, share the cores. Workers are
  started with the ``"spawn"`` method (safe with CUDA and threads, the same on every
  OS), so ``task`` must be a module-level function. ``workers=0`` runs everything in
  this process (for debugging).
- Resumable: each finished run is written atomically to ``out_dir/runs/`` as its
  own small JSON file named after a hash of its parameters (``run_key``), with the
  code and machine that trained it. A rerun reads those back and never redoes them
  (``redo=True`` does), warning when other code (a dcatkit version, or a git commit
  whose training code differs: ``provenance.other_code``) trained some. A failed run
  writes nothing, so a rerun retries exactly the failed ones; ``run_grid`` raises
  after the others finished, naming the failures. A worker
  killed from outside (e.g. by the OS out of memory) is reported as killed, with its
  run's parameters and the signal; runs it left unstarted are reported as not started.
  ``read_only=True`` reads every run back, trains nothing, and names the missing ones.
- Results: one row per run, the parameters' columns then the task's results, ``wall_s``,
  then the ``env_*`` columns (the code and machine of each run); ``read_sweep`` reads a folder's
  runs back as the same table.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from .files import _alive, left_temp_files_in, local_writer, write_atomically, writer_gone, writer_tag
from .provenance import code_version, describe_code, machine, other_code
from .warn import warn


NO_LAMBDA = ("none",)        # methods without a transfer term: their runs do not repeat over lambda


class NotFinished(ValueError, RuntimeError):
    """A read-only grid (gathering shards) with runs not stored yet: the command line says so
    in one line (exit status 2)."""


class RunsFailed(RuntimeError):
    """Runs of a grid failed (their tracebacks in the message); the finished ones are stored.
    The command line prints the message without its own traceback (exit status 1)."""


def _plain(v: Any) -> Any:
    """Numpy scalars -> Python scalars, tuples -> lists, paths -> strings, so a parameter has
    one JSON form (the one ``run_key`` hashes)."""
    if isinstance(v, os.PathLike):
        return os.fspath(v)
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
    """Write atomically (temp file + os.replace): a killed run never leaves half a file. The temp
    files of records whose write was killed are cleared once per sweep (``_clear_left``), not here."""
    write_atomically(path, lambda f: json.dump(payload, f, default=_json_default), clear_left=False)


def _json_default(o):
    v = _plain(o)
    if v is o:
        raise TypeError(f"a sweep result must be JSON-serialisable (numbers, strings, lists, dicts); "
                        f"got {type(o).__name__}")
    return v


def _env_record(device: Any = None) -> dict:
    """The code and machine a run is trained with (``report.ENV_COLUMNS`` of
    ``provenance.environment(device)``), stored in its record: a run read back later keeps
    its own, and a table of runs says which code and machine produced each row.
    ``device`` None or "auto": the default one (CUDA when available)."""
    from .provenance import environment
    from .report import ENV_COLUMNS

    env = environment(None if device in (None, "auto") else device)
    return {k: env.get(k) for k in ENV_COLUMNS}


def _task_device(task: Callable) -> Any:
    """The device a task trains on when it is a ``functools.partial`` that names one (the
    sweeps' tasks: ``partial(transfer_task, out_dir=..., device=...)``), else None."""
    return (getattr(task, "keywords", None) or {}).get("device")


def _retrain_advice(read_only: bool, runs: Path, what: str, where: str = "", shard_runs: Path | None = None) -> str:
    """How to train ``what`` again, closing a warning about runs read back: ``redo=True``
    (``--redo``) where this call trains; when it only gathers (``read_only``) or is a shard
    (``shard_runs``: the grid's runs folder), which both refuse redo (a shard would retrain the
    sources the shards share), what to do instead. ``where``: the machines to train on (" on one machine")."""
    if shard_runs is not None and not read_only:
        return (f"A shard refuses redo (each shard would train a source the shards share again): to train {what}"
                f"{where}, run the grid{where} in one call without --shard (shard=None), with redo=True (--redo), or "
                f"move {shard_runs} away (and the sources/ beside it) and run the shards again{where}, then gather.")
    if not read_only:
        return f"Pass redo=True (--redo) to train {what}."
    return (f"Gathering trains nothing and refuses redo: to train {what}{where}, run the grid{where} without gather "
            f"(--gather), with redo=True (--redo), or move {runs} away (a sweep's sources/ beside it too) and run "
            f"the shards again{where}, then gather.")


def _machines_note(records: Iterable[dict], n_todo: int, task: Callable, read_only: bool = False,
                   runs: Path | None = None, shard_runs: Path | None = None) -> str | None:
    """A warning's text when the runs of one grid come from more than one machine: the read-back
    records' machines (``provenance.machine`` of each record's env) and, when runs are left to
    train, this one's. None when they agree or nothing says (records without a machine).
    ``read_only`` (gathering), ``shard_runs`` (a shard's) and ``runs`` (the runs' folder): advice that
    call can follow."""
    counts: dict[str, int] = {}
    for r in records:
        m = machine(r.get("env"))
        if m is not None:
            counts[m] = counts.get(m, 0) + 1
    if not counts:
        return None
    here = machine(_env_record(_task_device(task))) if n_todo else None
    if len(set(counts) | ({here} if here else set())) == 1:
        return None
    parts = [f"{n} read back from runs trained on {m}" for m, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    if here:
        parts.append(f"{n_todo} to train here on {here}")
    return (f"the runs of this grid come from more than one machine ({'; '.join(parts)}). A run's numbers "
            "depend on the machine (benchmarks/RESULTS.md, 'Run to run'), so a paired difference between "
            "runs of two machines mixes the machine's effect with the method's (env_cpu / env_device_name "
            "say which row is which). "
            + _retrain_advice(read_only, runs or Path("runs"), "every run" if read_only else "every run here",
                              " on one machine", shard_runs))


def _code_version() -> dict:
    """This process's code (``provenance.code_version``; a name of its own so tests can set it)."""
    return code_version()


def _other_code(records: Iterable[dict], now: Mapping[str, Any]) -> list[dict]:
    """The records trained by another dcatkit version or commit than ``now``
    (``provenance.other_code``)."""
    return [r for r in records if other_code(r.get("env"), now)]


def _load_record(path: Path) -> dict:
    """The run record at ``path`` ({"params": {...}, "result": {...}, "wall_s": seconds, ...}); an
    unreadable file, or JSON of another shape (a list, null, a record without its result), is a
    ValueError naming the file, never a KeyError in the table built from it."""
    again = "a hand edit or a damaged copy (records are written atomically); delete it and that run is trained again"
    try:
        rec = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable run record ({e}): {again}") from None
    if not (isinstance(rec, dict) and isinstance(rec.get("params"), dict) and isinstance(rec.get("result"), dict)
            and isinstance(rec.get("wall_s"), (int, float))):
        found = (f"an object with the keys {sorted(rec)}" if isinstance(rec, dict) else
                 f"a JSON {type(rec).__name__}")
        raise ValueError(f"{path} is not a run record (expected a JSON object with 'params' and 'result' objects and "
                         f"'wall_s' seconds; found {found}): {again}")
    return rec


def read_run(out_dir: str | Path, params: Mapping[str, Any]) -> dict | None:
    """The stored record of a finished run ({"params", "result", "wall_s", "env", ...}), or None."""
    path = _path(Path(out_dir), params)
    if not path.is_file():
        return None
    rec = _load_record(path)
    if rec.get("params") != {k: _plain(v) for k, v in params.items()}:
        raise ValueError(f"{path} holds the run {rec.get('params')}, not {dict(params)} (a hash clash or "
                         "a hand-edited file): move it away and rerun")
    return rec


def _marker(out_dir: Path, key: str, pid: int) -> Path:
    """The file a worker holds while it runs a run (left behind if the worker is killed):
    ``running/<key>.w<host>-<pid>-run`` (``files.writer_tag``: shards on several machines share
    the folder, and a pid says which process only on its own machine)."""
    return out_dir / "running" / f"{key}.{writer_tag(pid)}run"


def _clear_left(out_dir: Path) -> None:
    """Before a sweep runs anything: remove what killed processes of this machine left in
    ``out_dir``, best effort (a file this user may not remove, in a shared folder, stays).

    - the temp files of run records whose write was killed (``files.left_temp_files_in``; one
      listing of ``runs/`` here instead of one at each record's write);
    - the markers of processes that are gone (killed with the parent, which never read them: a
      killed pool's parent removes its workers' own in ``_killed_report``), so a later pool whose
      worker gets the same pid cannot read one as its run. Kept: a live process's (another sweep
      into this folder) and another machine's. A marker named the old way (``<key>.<pid>``,
      before names said their machine) is judged as this machine's."""
    left = left_temp_files_in(out_dir / "runs", ".json")
    for m in (out_dir / "running").glob("*.*"):
        who = m.name.split(".", 1)[1]
        if (not _alive(int(who))) if who.isdigit() else writer_gone(who):
            left.append(m)
    for f in left:
        try:
            f.unlink(missing_ok=True)
        except OSError:
            pass


def _run_one(task: Callable[..., Mapping[str, Any]], params: dict, out_dir: str) -> dict:
    """Run one task and store its record (in the worker, so finished work survives the parent).
    While it runs, its marker (``_marker``) says so: a run whose worker is killed leaves it,
    which tells the parent the run had started."""
    marker = _marker(Path(out_dir), run_key(params), os.getpid())
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    try:
        t0 = time.perf_counter()
        result = task(**params)
        if not isinstance(result, Mapping):
            raise TypeError(f"a sweep task must return a dict of results, got {type(result).__name__}")
        clash = set(result) & set(params)
        if clash:
            raise ValueError(f"the task's results reuse parameter names {sorted(clash)}: rename them")
        rec = {"params": params, "result": dict(result), "wall_s": time.perf_counter() - t0, "pid": os.getpid(),
               "env": _env_record(_task_device(task))}
        rec = json.loads(json.dumps(rec, default=_json_default))     # as a rerun will read it back
        _write_json(_path(Path(out_dir), params), rec)
        return rec
    finally:
        marker.unlink(missing_ok=True)


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


def visible_gpus(n: int) -> list[str]:
    """What names each of this process's ``n`` GPUs in a worker's ``CUDA_VISIBLE_DEVICES``:
    torch's device i is the i-th entry of this process's own ``CUDA_VISIBLE_DEVICES`` (a
    scheduler's "2,3" gives devices 0 and 1 = physical GPUs 2 and 3; a UUID names a GPU or MIG
    slice), so a worker given device i must see that entry, not "i" (which is physical GPU i, maybe
    another job's). Unset, or listing fewer than ``n`` entries: the indices "0" .. "n-1"."""
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    return listed[:n] if len(listed) >= n and all(listed[:n]) else [str(i) for i in range(n)]


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                       # not on Linux
        return os.cpu_count() or 1


GPU_MEMORY_FRACTION = 0.8            # of a GPU's free memory that a sweep's workers may plan to use


def gpu_workers_per_device(free_bytes: int, run_bytes: int | None, cores_per_device: int) -> int:
    """Workers that share one GPU: as many runs as fit in ``GPU_MEMORY_FRACTION`` of its
    free memory at ``run_bytes`` each, at most one per CPU core of that GPU (each worker
    is a Python process that launches the kernels and loads the data), at least one.
    ``run_bytes=None`` (no estimate): one."""
    if run_bytes is None:
        return 1
    if run_bytes <= 0:
        raise ValueError(f"run_bytes must be > 0 (a run's GPU memory estimate), got {run_bytes}")
    return max(1, min(int(cores_per_device), int(free_bytes * GPU_MEMORY_FRACTION // run_bytes)))


def default_workers(run_bytes: int | None = None) -> int:
    """Without CUDA: one worker per usable CPU core. With CUDA: on every GPU the number of
    ``gpu_workers_per_device`` for the smallest free memory over the GPUs
    (``torch.cuda.mem_get_info``) and the run estimate ``run_bytes`` (None: one per GPU)."""
    import torch

    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        if run_bytes is None:
            return n
        free = min(torch.cuda.mem_get_info(i)[0] for i in range(n))
        return n * gpu_workers_per_device(free, run_bytes, max(1, _cpu_cores() // n))
    return _cpu_cores()


CUDA_CONTEXT_BYTES = 1 << 30          # a worker's CUDA context, cuDNN workspace and allocator slack
ACTIVATION_FACTOR = 200               # training memory per input byte of a batch (deep CNN: ~100-200)


def estimate_run_bytes(batch_size: int, sample_shapes: Iterable[Sequence[int]]) -> int:
    """A rough upper estimate of one training run's GPU memory: ``CUDA_CONTEXT_BYTES`` plus
    ``ACTIVATION_FACTOR`` times the float32 bytes of one batch of every input the run
    feeds forward (``sample_shapes``: per-sample shapes). It decides how many runs share
    a GPU (``default_workers``); set ``workers=`` when you know better."""
    per_sample = sum(4 * _prod(s) for s in sample_shapes)
    return CUDA_CONTEXT_BYTES + ACTIVATION_FACTOR * int(batch_size) * per_sample


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for x in shape:
        out *= int(x)
    return out


def _signal_name(code: int | None) -> str:
    if code is None:
        return "an unknown exit status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _killed_report(out: Path, broken: list[tuple[dict, str]], procs: Mapping[int, Any]) -> tuple[list, list, list]:
    """Runs lost when the pool broke: (killed, stopped, not_started). A run had started if its
    worker left its marker; a worker ended by anything but the pool's own SIGTERM was killed
    (the pool terminates the other workers once one dies: their runs are "stopped")."""
    started = {}
    for p, k in broken:
        for m in (out / "running").glob(f"{k}.*"):
            pid = local_writer(m.name[len(k) + 1:])
            if pid in procs:            # one of this pool's workers (not another shard's, nor another machine's)
                started[k] = pid
                m.unlink(missing_ok=True)
    codes = {pid: getattr(pr, "exitcode", None) for pid, pr in procs.items()}
    pool_term = -signal.SIGTERM
    any_killed = any(c is not None and c != pool_term and c != 0 for c in codes.values())
    killed, stopped, not_started = [], [], []
    for p, k in broken:
        if k not in started:
            not_started.append(p)
            continue
        pid = started[k]
        entry = (p, pid, codes.get(pid))
        (stopped if any_killed and codes.get(pid) == pool_term else killed).append(entry)
    return killed, stopped, not_started


def _main_is_a_script() -> bool:
    """True when the main module is a file run as a script (whose spawned workers re-import it),
    not an interactive session or a notebook kernel."""
    import sys

    return bool(getattr(sys.modules.get("__main__"), "__file__", None)) and "ipykernel" not in sys.modules


def _failure_message(out: Path, n_todo: int, failures, killed, stopped, not_started) -> str:
    parts = []
    for p, pid, code in killed:
        why = " (SIGKILL: the OS kills a process that runs out of memory this way)" if code == -signal.SIGKILL else ""
        parts.append(f"killed: the worker (pid {pid}) running {p} ended by {_signal_name(code)}{why}")
    for p, pid, code in stopped:
        parts.append(f"stopped with the pool after a worker was killed: {p} (pid {pid})")
    if not_started:
        parts.append(f"{len(not_started)} run(s) not started (the pool stopped first): "
                     f"{not_started[:3]}{' ...' if len(not_started) > 3 else ''}")
    lost = len(killed) + len(stopped) + len(not_started)
    done = n_todo - len(failures) - lost
    if lost:
        msg = (f"of {n_todo} runs: {done} finished, {len(failures)} failed, {len(killed)} killed, {len(stopped)} "
               f"stopped with them, {len(not_started)} not started (the finished are saved in {out / 'runs'}; "
               "rerun to do only the others).")
    else:
        msg = (f"{len(failures)} of {n_todo} runs failed (the {done} others are saved in {out / 'runs'}; "
               "rerun to retry only the failed ones).")
    if parts:
        msg += "\n" + "\n".join(parts)
    if not_started and not done and not killed and not stopped and _main_is_a_script():
        msg += ("\nNo worker ran anything. Called from a script? Put the call under "
                "`if __name__ == \"__main__\":` (workers start with multiprocessing's \"spawn\", which "
                "re-imports the script: see \"Safe importing of main module\" in the multiprocessing docs), "
                "or pass workers=0 to run in this process.")
    if failures:
        first_p, first_tb = failures[0]
        msg += f"\nFirst failure, {first_p}:\n{first_tb}"
    return msg


def run_grid(task: Callable[..., Mapping[str, Any]], params: Sequence[Mapping[str, Any]],
             out_dir: str | Path, *, workers: int | None = None, redo: bool = False,
             progress: bool = True, threads: int = 1, read_only: bool = False,
             run_bytes: int | None = None, shard_runs: str | Path | None = None) -> pd.DataFrame:
    """Run ``task(**p)`` for every ``p`` in ``params`` and return one row per run.

    ``task``: a module-level function returning a dict of JSON-serialisable results
    (e.g. test metrics). ``out_dir``: where finished runs are stored and read back.
    ``workers``: processes (None: ``default_workers(run_bytes)``; 0: in this process).
    ``threads``: torch threads per worker. ``read_only``: run nothing; a run not stored
    yet is an error naming it (gathering shards). ``run_bytes``: a run's GPU memory
    estimate (``estimate_run_bytes``), used only with CUDA and ``workers=None``.
    ``shard_runs``: this call is one shard of a grid whose runs are kept there (a sweep's
    ``runs/``, also for its sources' grid); a shard refuses redo, so the warnings about runs read
    back advise what a shard can do instead of ``--redo``.
    The table's columns are the parameters, the results, ``wall_s`` (the run's own time)
    and the ``env_*`` columns (its code and machine). Row order = ``params`` order.
    """
    out = Path(out_dir)
    shard_runs = None if shard_runs is None else Path(shard_runs)
    params = [{str(k): _plain(v) for k, v in p.items()} for p in params]
    for p in params:              # checked before anything trains: a run's record is written after it
        for k, v in p.items():
            try:
                json.dumps(v)
            except (TypeError, ValueError):
                raise ValueError(f"parameter {k!r} is a {type(v).__name__} ({v!r}): a run's parameters are stored "
                                 "as JSON (numbers, strings, lists, dicts, None); pass it as one of those") from None
    keys = [run_key(p) for p in params]
    if len(set(keys)) != len(keys):
        raise ValueError("the grid lists the same run twice; use grid() or drop the duplicates")
    if read_only and redo:
        raise ValueError("read_only (gather) and redo exclude each other")
    records: dict[str, dict] = {}
    if not redo:
        for p, k in zip(params, keys):
            rec = read_run(out, p)
            if rec is not None:
                records[k] = rec
    todo = [(p, k) for p, k in zip(params, keys) if k not in records]
    if records:
        now = _code_version()
        older = _other_code(records.values(), now)
        if older:
            seen = sorted({describe_code(r["env"]) for r in older})
            warn(f"{len(older)} of {len(params)} runs were read back from {out / 'runs'}, not retrained, and "
                 f"were trained by other code ({'; '.join(seen[:3])}{'; ...' if len(seen) > 3 else ''}; this "
                 f"is {describe_code(now)}): their rows are what that code "
                 f"gave (their env_* columns say so). "
                 + _retrain_advice(read_only, out / "runs", "them again", shard_runs=shard_runs))
        mixed = _machines_note(records.values(), 0 if read_only else len(todo), task, read_only, out / "runs",
                               shard_runs)
        if mixed:
            warn(mixed)
    if read_only:
        if todo:
            raise NotFinished(f"{len(todo)} of {len(params)} runs are not finished in {out / 'runs'} (a shard "
                               f"not run yet, or failed: run it again); the first: {todo[0][0]}")
        return _table([records[k] for k in keys])
    workers = default_workers(run_bytes) if workers is None else int(workers)
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = in this process), got {workers}")
    if todo:
        _clear_left(out)
    failures: list[tuple[dict, str]] = []
    broken: list[tuple[dict, str]] = []
    procs: dict[int, Any] = {}
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
        from concurrent.futures.process import BrokenProcessPool

        import torch

        ctx = mp.get_context("spawn")
        n = min(workers, len(todo))
        gpus = None
        if torch.cuda.is_available():
            gpus, ids = ctx.Queue(), visible_gpus(torch.cuda.device_count())
            for i in range(n):
                gpus.put(ids[i % len(ids)])
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker, initargs=(threads, gpus)) as ex:
            futures = {ex.submit(_run_one, task, p, str(out)): (p, k) for p, k in todo}
            procs.update(getattr(ex, "_processes", None) or {})      # the workers, to read their exit codes
            try:
                for f in as_completed(futures):
                    procs.update(getattr(ex, "_processes", None) or {})
                    p, k = futures[f]
                    try:
                        records[k] = f.result()
                    except BrokenProcessPool:              # a worker died: this run was in it or never began
                        broken.append((p, k))
                    except Exception:
                        failures.append((p, traceback.format_exc()))
                    bar.update()
            except BaseException:
                ex.shutdown(wait=True, cancel_futures=True)
                raise
        for pr in procs.values():                       # exit codes are known once the pool has joined them
            if getattr(pr, "exitcode", 0) is None:
                pr.join(timeout=5)
    bar.close()
    if failures or broken:
        killed, stopped, not_started = _killed_report(out, broken, procs)
        raise RunsFailed(_failure_message(out, len(todo), failures, killed, stopped, not_started))
    return _table([records[k] for k in keys])


def _table(records: Iterable[dict]) -> pd.DataFrame:
    """One row per record: parameters, results, ``wall_s``, and ``env_*`` (the code and machine
    that trained it; missing for records stored before runs kept their environment)."""
    rows = [{**r["params"], **r["result"], "wall_s": r["wall_s"],
             **{f"env_{k}": v for k, v in (r.get("env") or {}).items()}} for r in records]
    return pd.DataFrame(rows)


def read_sweep(out_dir: str | Path) -> pd.DataFrame:
    """Every finished run stored under ``out_dir`` (any grid), one row each, in file-name order."""
    files = sorted((Path(out_dir) / "runs").glob("*.json"))
    return _table(_load_record(f) for f in files)



# ------------------------------------------------------------------ transfer sweeps
