"""What a killed sweep leaves behind, and what the next sweep does with it: the temp file of a
run record whose write a SIGKILL cut short, the ``running/`` marker of a run whose process was
killed, and the half-trained state of a source whose training was killed."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dcatkit import train
from dcatkit.files import writer_tag
from dcatkit.runner import _killed_report, _marker, run_grid, run_key
from test_resume import _dead_pid

KILLED_MID_WRITE = """
import sys, time
from pathlib import Path
from dcatkit import runner
out, ready = map(Path, sys.argv[1:])
real = runner.write_atomically
def cut_short(path, write, **kw):          # the record's write: half a file, then killed
    def part(f):
        f.write('{"params": ')
        f.flush()
        ready.touch()
        time.sleep(600)
    return real(path, part, **kw)
runner.write_atomically = cut_short
def task(seed):
    return {"f1": float(seed)}
runner.run_grid(task, [{"seed": 1}], out, workers=0, progress=False)
"""


def plain_task(seed):
    return {"f1": float(seed)}


def _killed_while_writing_the_record(out: Path) -> None:
    """A sweep process (``workers=0``) SIGKILLed while it writes its run's record."""
    ready = out.parent / "ready"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_MID_WRITE, str(out), str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the sweep never wrote its record"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_a_rerun_clears_what_a_sweep_killed_mid_write_left(tmp_path):
    """The killed write leaves ``runs/<key>.json.w<host>-<pid>-<random>.tmp`` and the run's
    ``running/<key>.<...>`` marker, and no record; the rerun trains the run, writes its record and
    leaves neither behind."""
    out = tmp_path / "sweep"
    _killed_while_writing_the_record(out)
    key = run_key({"seed": 1})
    assert not (out / "runs" / f"{key}.json").exists()
    assert [p.name.startswith(f"{key}.json.w") for p in (out / "runs").iterdir()] == [True]
    assert len(list((out / "running").iterdir())) == 1
    df = run_grid(plain_task, [{"seed": 1}], out, workers=0, progress=False)
    assert df["f1"].tolist() == [1.0]
    assert sorted(p.name for p in (out / "runs").iterdir()) == [f"{key}.json"]
    assert not list((out / "running").iterdir())


def test_a_rerun_removes_only_the_markers_of_dead_processes_of_this_machine(tmp_path):
    """A rerun removes a marker whose process is gone from this machine (also one named the old
    way, ``<key>.<pid>``); it keeps the marker of a live process (another sweep into the same
    folder) and one of another machine (its processes cannot be seen from here)."""
    running = tmp_path / "running"
    running.mkdir()
    dead_pid = _dead_pid()
    here, pid = writer_tag()[1:9], os.getpid()
    other = "1" * 8 if here == "0" * 8 else "0" * 8
    dead = _marker(tmp_path, "a" * 16, dead_pid)
    dead_old = running / f"{'b' * 16}.{dead_pid}"
    live = _marker(tmp_path, "c" * 16, pid)
    live_old = running / f"{'d' * 16}.{pid}"
    elsewhere = running / _marker(tmp_path, "e" * 16, dead_pid).name.replace(f"w{here}-", f"w{other}-")
    for m in (dead, dead_old, live, live_old, elsewhere):
        m.touch()
    run_grid(plain_task, [{"seed": 2}], tmp_path, workers=0, progress=False)
    assert sorted(running.iterdir()) == sorted([live, live_old, elsewhere])


def test_a_marker_of_another_machine_is_not_read_as_this_pools_run(tmp_path):
    """Shards on two machines share a folder: a marker another machine's worker left, whose pid
    happens to be one of this pool's workers, leaves the run 'not started' and is kept."""
    p = {"seed": 0}
    own = _marker(tmp_path, run_key(p), 4242)
    here = writer_tag()[1:9]
    other = own.with_name(own.name.replace(f"w{here}-", f"w{'1' * 8 if here == '0' * 8 else '0' * 8}-"))
    other.parent.mkdir()
    other.touch()

    class Proc:
        exitcode = -9

    assert _killed_report(tmp_path, [(p, run_key(p))], {4242: Proc()}) == ([], [], [p])
    assert other.exists()


SMALL = {"frame_size": 16, "n_frames": 4}


def _source(out: Path, **kw) -> dict:
    from dcatkit.sweep import source_task

    return source_task(out_dir=str(out), seed=0, n_samples=120, data_options=SMALL, epochs_source=3, device="cpu",
                       **kw)


@pytest.fixture(scope="module")
def source_ref(tmp_path_factory):
    """The uninterrupted source (3 epochs) and its checkpoint."""
    out = tmp_path_factory.mktemp("ref")
    res = _source(out)
    (ckpt,) = (out / "sources").glob("*.pt")
    return res, ckpt


def _epochs_trained(monkeypatch) -> list:
    """The epochs that train._train_epoch trains from now on."""
    trained, real = [], train._train_epoch

    def counted(*a, **k):
        trained.append(k["epoch"])
        return real(*a, **k)
    monkeypatch.setattr(train, "_train_epoch", counted)
    return trained


def test_a_sweeps_source_killed_mid_training_resumes_to_the_uninterrupted_source(tmp_path, monkeypatch, source_ref):
    """A sweep's source whose training died after epoch 1 (its state saved, epoch 2 trained but not
    saved) resumes from that state in the next sweep call: only epochs 2 and 3 train, and the
    source is the uninterrupted one's, bit for bit (CPU)."""
    ref, ref_ckpt = source_ref
    real = train._save_state

    def die_at_epoch_2(path, state):
        if state["epoch"] == 2:
            raise KeyboardInterrupt                  # the process dies before epoch 2's state is written
        real(path, state)
    with monkeypatch.context() as m:
        m.setattr(train, "_save_state", die_at_epoch_2)
        with pytest.raises(KeyboardInterrupt):
            _source(tmp_path / "run")
    (state,) = (tmp_path / "run" / "sources").glob("*.pt.state")
    assert torch.load(state, weights_only=True)["epoch"] == 1
    trained = _epochs_trained(monkeypatch)
    assert _source(tmp_path / "run") == ref
    assert trained == [2, 3]
    ckpt = state.with_name(state.name[:-len(".state")])
    assert ckpt.name == ref_ckpt.name and not state.exists()
    got, want = (torch.load(p, weights_only=True)["state_dict"] for p in (ckpt, ref_ckpt))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


def test_a_sweeps_source_whose_state_cannot_resume_it_trains_from_epoch_1(tmp_path, monkeypatch, source_ref):
    """A state at the source's path that cannot resume it (here an unreadable file; also one of
    other settings or another format version) does not stop the sweep: it says so and trains the
    source from epoch 1, replacing the state."""
    ref, ref_ckpt = source_ref
    state = tmp_path / "run" / "sources" / f"{ref_ckpt.name}.state"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"not a state")
    trained = _epochs_trained(monkeypatch)
    with pytest.warns(UserWarning, match="saved state cannot resume it, so it trains from epoch 1"):
        assert _source(tmp_path / "run") == ref
    assert trained == [1, 2, 3] and not state.exists()


def test_record_writes_do_not_list_the_runs_folder_the_sweep_clears_it_once(tmp_path, monkeypatch):
    """A sweep writes thousands of records into ``runs/`` (maybe a network folder shared by shards):
    listing the folder at each write would make a sweep quadratic. The records' writes skip the
    per-write clearing; the killed writes' temp files are found by one listing before the runs."""
    import dcatkit.files as files

    listed = []
    real = files.left_temp_files
    monkeypatch.setattr(files, "left_temp_files", lambda path, *a, **k: listed.append(Path(path)) or real(path, *a, **k))
    df = run_grid(plain_task, [{"seed": s} for s in range(3)], tmp_path, workers=0, progress=False)
    assert df["f1"].tolist() == [0.0, 1.0, 2.0]
    assert [p for p in listed if p.parent.name == "runs"] == []


def test_a_finished_sweep_is_read_back_whatever_the_leftovers_and_their_permissions(tmp_path, monkeypatch):
    """Clearing is best effort and only before runs that train: a finished sweep in a folder this
    user may not write (a colleague's results) is read back; a leftover that cannot be removed
    does not stop a sweep that has runs to do."""
    params = [{"seed": s} for s in range(2)]
    run_grid(plain_task, params, tmp_path, workers=0, progress=False)
    dead = _marker(tmp_path, "a" * 16, _dead_pid())
    dead.parent.mkdir(exist_ok=True)
    dead.touch()

    real, tried = Path.unlink, []

    def refused(self, missing_ok=False):          # the colleague's file: this user may not remove it
        if self == dead:
            tried.append(self)
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refused)
    assert run_grid(plain_task, params, tmp_path, workers=0, progress=False)["f1"].tolist() == [0.0, 1.0]
    assert tried == []                                     # nothing to run: nothing cleared
    df = run_grid(plain_task, params + [{"seed": 2}], tmp_path, workers=0, progress=False)
    assert df["f1"].tolist() == [0.0, 1.0, 2.0] and tried == [dead] and dead.exists()
