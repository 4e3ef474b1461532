"""The grid runner (dcatkit.runner): what a run's identity is made of, a stored run read back
as itself, a task's bad result refused, the start markers, and the GPU memory a run is planned at."""
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from dcatkit.runner import (ACTIVATION_FACTOR, CUDA_CONTEXT_BYTES, _killed_report, _marker, estimate_run_bytes,
                            gpu_workers_per_device, grid, read_run, run_grid, run_key)


def _key(p):
    """run_key computed independently: the first 16 hex digits of the sha256 of the sorted JSON."""
    return hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:16]


def logged_task(seed, shape=None, log_dir=None):
    """A module-level task: one file per call in ``log_dir``, a result from the parameters."""
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        (Path(log_dir) / f"{seed}-{os.getpid()}-{len(os.listdir(log_dir))}").touch()
    return {"f1": seed + 0.5, "n": 0 if shape is None else int(np.prod(shape))}


def pairs_task(seed):
    return [("f1", float(seed))]                 # a list of pairs: dict() would take it, the runner must not


def test_a_runs_identity_holds_the_names_and_the_plain_values():
    """Two runs whose values are swapped between their parameters are two runs; numpy scalars and
    tuples have the key of the plain number and list (the JSON form a record stores)."""
    a, b = {"lam": 1.0, "seed": 2}, {"lam": 2, "seed": 1.0}
    assert run_key(a) == _key(a) and run_key(b) == _key(b) and run_key(a) != run_key(b)
    assert run_key({"seed": 1}) != run_key({"n_train": 1})
    assert run_key({"seed": np.int64(2), "lam": np.float32(0.5)}) == _key({"seed": 2, "lam": 0.5})
    assert run_key({"shape": (2, 3), "opts": {"t": np.float64(4.0)}}) == _key({"shape": [2, 3], "opts": {"t": 4.0}})


def test_grid_varies_a_tuple_axis_as_a_list():
    """A tuple axis varies like a list or a range (the docstring's rule), a scalar is fixed."""
    want = [{"seed": 0, "lr": 0.1}, {"seed": 1, "lr": 0.1}]
    assert grid(seed=(0, 1), lr=0.1) == grid(seed=[0, 1], lr=0.1) == grid(seed=range(2), lr=0.1) == want


def test_grid_keeps_the_callers_parameter_order(tmp_path):
    """A fixed value named before the varying axes stays before them: in each dict and in the table's columns."""
    g = grid(split="id", seed=[0, 1], lr=[0.1], note="x")
    assert [list(p) for p in g] == [["split", "seed", "lr", "note"]] * 2
    table = run_grid(logged_task, grid(log_dir=str(tmp_path / "log"), seed=[0, 1]), tmp_path / "s", workers=0,
                     progress=False)
    assert list(table.columns[:2]) == ["log_dir", "seed"]


def test_a_run_with_a_tuple_or_numpy_parameter_is_read_back_not_redone(tmp_path):
    """A tuple parameter is stored as a list: the rerun with the same tuple finds the record as
    this run's (not a hash clash) and calls nothing; read_run with numpy scalars finds it too."""
    out, log = tmp_path / "sweep", tmp_path / "log"
    params = [{"seed": 1, "shape": (2, 3), "log_dir": str(log)}]
    first = run_grid(logged_task, params, out, workers=0, progress=False)
    assert first["shape"].tolist() == [[2, 3]] and first["n"].tolist() == [6]
    again = run_grid(logged_task, params, out, workers=0, progress=False)
    assert len(os.listdir(log)) == 1                                      # the task ran once
    assert again.drop(columns="wall_s").equals(first.drop(columns="wall_s"))
    rec = read_run(out, {"seed": np.int64(1), "shape": (np.int64(2), 3), "log_dir": str(log)})
    assert rec is not None and rec["result"] == {"f1": 1.5, "n": 6}
    assert read_run(out, {"seed": 2, "shape": (2, 3), "log_dir": str(log)}) is None


def test_a_task_that_returns_no_dict_fails_and_stores_nothing(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)1 of 1 runs failed.*a sweep task must return a dict of results, "
                                           r"got list"):
        run_grid(pairs_task, [{"seed": 3}], tmp_path, workers=0, progress=False)
    assert not list((tmp_path / "runs").glob("*.json"))


def test_finished_runs_leave_no_start_marker(tmp_path):
    """A run's marker (out/running/<key>.w<host>-<pid>-run) says a worker is running it: after the runs
    finish (or fail) none is left, so a later broken pool cannot read a stale one as started."""
    run_grid(logged_task, grid(seed=range(3)), tmp_path, workers=0, progress=False)
    with pytest.raises(RuntimeError, match="1 of 1 runs failed"):
        run_grid(pairs_task, [{"seed": 9}], tmp_path, workers=0, progress=False)
    assert (tmp_path / "running").is_dir() and not list((tmp_path / "running").iterdir())


def test_another_processs_marker_is_not_read_as_this_pools_run(tmp_path):
    """A marker whose pid is not one of this pool's workers (another shard running the same run)
    leaves the run 'not started', and that marker is left where it is; this pool's own marker
    makes its run 'killed' and is removed."""
    p, q = {"seed": 0}, {"seed": 1}
    running = tmp_path / "running"
    running.mkdir()
    foreign = _marker(tmp_path, run_key(p), 999999)
    foreign.touch()
    own = _marker(tmp_path, run_key(q), 4242)
    own.touch()

    class Proc:
        exitcode = -9

    killed, stopped, not_started = _killed_report(tmp_path, [(p, run_key(p)), (q, run_key(q))], {4242: Proc()})
    assert not_started == [p] and killed == [(q, 4242, -9)] and stopped == []
    assert foreign.exists() and not own.exists()
    # a worker ended by SIGTERM while no worker was killed otherwise: not the pool's stop, a kill
    own.touch()

    class Terminated:
        exitcode = -15

    assert _killed_report(tmp_path, [(q, run_key(q))], {4242: Terminated()}) == ([(q, 4242, -15)], [], [])


def test_gpu_memory_estimate_counts_every_input_and_a_zero_estimate_is_refused():
    """estimate_run_bytes: the CUDA context plus ACTIVATION_FACTOR times the float32 bytes of one
    batch of every input (two here: 3 x 50 and 4 x 16 x 16 floats per sample, given as a
    generator); a run estimate of 0 bytes is refused (it would divide by zero)."""
    shapes = ((3, 50), (4, 16, 16))
    want = CUDA_CONTEXT_BYTES + ACTIVATION_FACTOR * 8 * 4 * (3 * 50 + 4 * 16 * 16)
    assert estimate_run_bytes(8, (s for s in shapes)) == want
    assert estimate_run_bytes(8, shapes) > estimate_run_bytes(8, shapes[:1])
    for bad in (0, -5):
        with pytest.raises(ValueError, match=rf"run_bytes must be > 0 .*got {bad}"):
            gpu_workers_per_device(10 << 30, bad, 4)


def test_gathering_names_a_missing_run_and_trains_nothing(tmp_path):
    """read_only: a grid with a run not stored yet is NotFinished naming that run, and nothing runs."""
    from dcatkit.runner import NotFinished

    log = tmp_path / "log"
    run_grid(logged_task, [{"seed": 0, "log_dir": str(log)}], tmp_path / "s", workers=0, progress=False)
    with pytest.raises(NotFinished, match=r"1 of 2 runs are not finished .*the first: \{'seed': 1"):
        run_grid(logged_task, grid(seed=[0, 1], log_dir=str(log)), tmp_path / "s", read_only=True, progress=False)
    assert len(os.listdir(log)) == 1
    table = run_grid(logged_task, grid(seed=[0], log_dir=str(log)), tmp_path / "s", read_only=True, progress=False)
    assert table["f1"].tolist() == [0.5]


def test_a_negative_worker_count_is_refused_with_its_own_message(tmp_path):
    with pytest.raises(ValueError, match=r"workers must be >= 0 \(0 = in this process\), got -1"):
        run_grid(logged_task, [{"seed": 5}], tmp_path, workers=-1, progress=False)


def gpu_task(seed, flags, fail_seed=None):
    """A module-level task that reports the GPU its worker was given. Each run waits (at most 60 s)
    until runs of two worker processes have started, so both workers take part."""
    import time

    Path(flags, str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(flags)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    if seed == fail_seed:
        raise RuntimeError(f"seed {seed} is broken")
    return {"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid()}


def test_pool_workers_each_see_their_own_gpu_and_a_failed_run_is_named(tmp_path, monkeypatch):
    """With CUDA (mocked in the parent: 2 GPUs) each of 2 spawned workers sees one GPU through
    CUDA_VISIBLE_DEVICES, GPU 0 for one and GPU 1 for the other. A run that raises in a worker is a
    failure named with its traceback; the runs that finished are stored."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "inherited")
    flags = tmp_path / "flags"
    flags.mkdir()
    params = grid(seed=range(4), flags=str(flags), fail_seed=3)
    with pytest.raises(RuntimeError, match=r"(?s)^1 of 4 runs failed .*First failure, \{'seed': 3.*seed 3 is broken"):
        run_grid(gpu_task, params, tmp_path / "out", workers=2, progress=False)
    recs = [read_run(tmp_path / "out", p) for p in params]
    assert recs[3] is None and all(r is not None for r in recs[:3])
    gpu_of = {}
    for r in recs[:3]:
        assert gpu_of.setdefault(r["result"]["pid"], r["result"]["gpu"]) == r["result"]["gpu"]
    assert len(gpu_of) == 2 and sorted(gpu_of.values()) == ["0", "1"]


def test_read_sweep_gives_one_row_per_stored_run_in_file_name_order(tmp_path):
    from dcatkit.runner import read_sweep

    params = grid(seed=range(8))
    run_grid(logged_task, params, tmp_path, workers=0, progress=False)
    table = read_sweep(tmp_path)
    by_name = sorted(params, key=run_key)
    assert table["seed"].tolist() == [p["seed"] for p in by_name]
    assert table["f1"].tolist() == [p["seed"] + 0.5 for p in by_name]


def test_pool_workers_see_the_gpus_this_process_was_given(tmp_path, monkeypatch):
    """A scheduler gives this process GPUs 5 and 7 (CUDA_VISIBLE_DEVICES="5,7": torch's devices 0
    and 1). Each worker must see one of those two; it was given "0" and "1", physical GPUs 0 and 1,
    maybe another job's (or, with MIG slices named by UUID, not the slice this job holds)."""
    import torch

    from dcatkit.runner import visible_gpus

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    flags = tmp_path / "flags"
    flags.mkdir()
    params = grid(seed=range(2), flags=str(flags), fail_seed=-1)
    run_grid(gpu_task, params, tmp_path / "out", workers=2, progress=False)
    assert sorted(read_run(tmp_path / "out", p)["result"]["gpu"] for p in params) == ["5", "7"]
    assert visible_gpus(1) == ["5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-a1b2, MIG-c3d4")
    assert visible_gpus(2) == ["MIG-a1b2", "MIG-c3d4"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus(2) == ["0", "1"]                       # unset: every GPU, by index
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus(2) == ["0", "1"]
