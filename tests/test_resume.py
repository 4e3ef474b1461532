"""Runs that survive interruption: a killed fit_transfer resumes from its last finished
epoch to the very same result as an uninterrupted run (CPU, same seed, bit for bit);
resuming other settings, and truncated state / checkpoint / cache files, are clear errors;
leftovers of interrupted cache builds are removed by the next build; TensorBoard scalars."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dcatkit import train
from dcatkit.train import load_checkpoint
from resume_worker import run

WORKER = Path(__file__).with_name("resume_worker.py")
TIME_COLUMNS = ["train_time_s", "time_s"]           # wall-clock: the only columns allowed to differ


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: 4 epochs, seed 0."""
    folder = tmp_path_factory.mktemp("reference")
    res = run(folder)
    assert not (folder / "target.pt.state").exists(), "the state file is removed when the run finishes"
    return res, load_checkpoint(folder / "target.pt")[0].state_dict()


def assert_same_run(res, ckpt: Path, reference):
    ref, ref_weights = reference
    pd.testing.assert_frame_equal(res.history.drop(columns=TIME_COLUMNS),
                                  ref.history.drop(columns=TIME_COLUMNS), check_exact=True)
    assert res.best == ref.best
    weights = load_checkpoint(ckpt)[0].state_dict()
    assert weights.keys() == ref_weights.keys()
    assert all(torch.equal(weights[k], ref_weights[k]) for k in weights)        # bit for bit
    for a, b in zip(res.objective.parameters(), ref.objective.parameters(), strict=True):
        assert torch.equal(a, b)                                                  # fitnet's learned map


def interrupt_at(monkeypatch, epoch):
    """Interrupt the in-process loop (KeyboardInterrupt) when it is about to save ``epoch``'s state."""
    real = train._save_state

    def save(path, state):
        if state["epoch"] == epoch:
            raise KeyboardInterrupt
        real(path, state)
    monkeypatch.setattr(train, "_save_state", save)


def as_saved_before(state_file, *field):
    """Rewrite ``state_file``'s resume key without ``field`` (a path of keys into it): the state as
    a dcatkit that did not record that field yet saved it."""
    import json

    state = torch.load(state_file, weights_only=True)
    key = json.loads(state["key"])
    *parents, last = field
    inner = key
    for k in parents:
        inner = inner[k]
    del inner[last]
    state["key"] = json.dumps(key, sort_keys=True)
    torch.save(state, state_file)


def test_killed_subprocess_resumes_to_the_uninterrupted_result(tmp_path, reference):
    # the killed run's epochs must add up like the reference's: same number of torch threads (a CPU
    # reduction's order, and so its last bit, follows the thread count)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": f"{WORKER.parent}{os.pathsep}{WORKER.parent.parent}"}   # the checkout: dcatkit need not be installed
    proc = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path), "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "ready").exists():
            if proc.poll() is not None:
                pytest.fail(f"the worker ended before epoch 3 (rc {proc.returncode}):\n"
                            f"{proc.stdout.read().decode()}")
            assert time.monotonic() < deadline, "the worker did not reach epoch 3 in 300 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)                        # epoch 3 trained, its state never written
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = tmp_path / "target.pt.state"
    assert torch.load(state, weights_only=True)["epoch"] == 2
    assert not (tmp_path / "target.pt").exists() and not (tmp_path / "finished").exists()
    (tmp_path / "target.pt.state.x1y2.tmp").write_bytes(b"a save cut short")    # as a kill mid-save leaves
    res = run(tmp_path, resume=True)
    assert not (tmp_path / "target.pt.state.x1y2.tmp").exists()
    assert_same_run(res, tmp_path / "target.pt", reference)
    assert not state.exists()


def test_interrupted_in_process_resumes(tmp_path, reference, monkeypatch):
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.undo()
    assert torch.load(tmp_path / "target.pt.state", weights_only=True)["epoch"] == 1
    assert_same_run(run(tmp_path, resume=True), tmp_path / "target.pt", reference)


def test_killed_after_the_last_epoch_only_writes_the_checkpoint(tmp_path, reference, monkeypatch):
    def die(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(train, "save_checkpoint", die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.undo()
    assert torch.load(tmp_path / "target.pt.state", weights_only=True)["epoch"] == 4
    assert_same_run(run(tmp_path, resume=True), tmp_path / "target.pt", reference)


def test_resume_without_state_starts_over_and_resume_false_ignores_a_state(tmp_path, reference, monkeypatch):
    """resume=True with nothing to resume trains from epoch 1; resume=False starts over
    even when a state is lying there (and replaces it)."""
    interrupt_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.undo()
    assert_same_run(run(tmp_path, resume=False), tmp_path / "target.pt", reference)
    assert not (tmp_path / "target.pt.state").exists()


@pytest.mark.parametrize("change, named", [({"seed": 1}, "seed"), ({"epochs": 5}, "epochs"),
                                           ({"method": "kd"}, "method"),
                                           ({"source_seed": 7}, r"run\.source: saved '[0-9a-f]+', now '[0-9a-f]+'"),
                                           ({"source_cache": False}, r"run\.source_cache: saved True, now False")])
def test_resume_with_other_settings_is_an_error(tmp_path, monkeypatch, change, named):
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=named) as e:
        run(tmp_path, resume=True, **change)
    assert "target.pt.state" in str(e.value) and "resume=False" in str(e.value)


def test_resume_needs_a_place_for_the_state(tmp_path):
    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits
    sp = tiny_splits(32, modalities=("imu",))
    model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), TINY["imu"])
    with pytest.raises(ValueError, match="checkpoint= or state_path="):
        train.fit(model, sp.train, sp.val, preset=TINY["imu"], resume=True, progress=False)


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_truncated_state_is_a_clear_error(tmp_path, monkeypatch):
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.undo()
    state = tmp_path / "target.pt.state"
    truncate(state)
    with pytest.raises(ValueError, match="target.pt.state") as e:
        run(tmp_path, resume=True)
    assert "resume=False" in str(e.value)
    state.write_bytes(b"")
    with pytest.raises(ValueError, match="target.pt.state"):
        run(tmp_path, resume=True)


def test_truncated_checkpoint_is_a_clear_error(tmp_path, reference):
    from dcatkit.train import save_checkpoint
    ref, _ = reference
    path = save_checkpoint(tmp_path / "model.pt", ref.model, {"modality": "imu"})
    for keep in (0.5, 0.0):
        truncate(path, keep)
        with pytest.raises(ValueError, match="model.pt"):
            load_checkpoint(path)


# ------------------------------------------------------------------ leftovers and damaged caches

KILLED_BUILD = """
import os, signal, sys
from dcatkit.data.cache import build_folder
with build_folder(sys.argv[1], sys.argv[2]) as tmp:
    (tmp / "k.npy").write_bytes(b"half a file")
    os.kill(os.getpid(), signal.SIGKILL)            # dies mid-build: no finally, no cleanup
"""


def killed_build(root: Path, prefix: str) -> Path:
    """The temporary folder a build killed by SIGKILL leaves in ``root``."""
    proc = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(root), prefix],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (left,) = [d for d in root.glob(f"{prefix}*") if d.is_dir()]
    assert (left / "k.npy").is_file()
    return left


def test_dead_builds_are_removed_live_ones_kept(tmp_path):
    from dcatkit.data.cache import build_folder, remove_stale_builds
    dead = killed_build(tmp_path, ".building-")
    legacy = tmp_path / ".building-legacy"                 # left by a dcatkit without build locks
    legacy.mkdir()
    with build_folder(tmp_path, ".building-") as live:     # a build in progress (this process holds its lock)
        assert not dead.exists() and not legacy.exists()   # build_folder cleaned up first
        (live / "part.npy").write_bytes(b"in progress")
        assert remove_stale_builds(tmp_path, ".building-") == []
        assert (live / "part.npy").is_file()
    assert not live.exists()
    assert list(tmp_path.iterdir()) == []                  # no folder, no lock file left


def test_source_cache_build_removes_a_killed_build(tmp_path):
    from dcatkit.model import build_model
    from dcatkit.source_cache import SourceCache
    from helpers import TINY, tiny_splits
    dead = killed_build(tmp_path, ".building-")
    sp = tiny_splits(32, modalities=("imu", "video"))
    src = build_model("video", sp.train.num_classes, sp.train.input_shape("video"), TINY["video"])
    cache = SourceCache.build(src, sp.train, "video", tmp_path, progress=False)
    assert not dead.exists()
    assert [p.name for p in tmp_path.iterdir()] == [cache.folder.name] or \
        {p.name for p in tmp_path.iterdir()} == {cache.folder.name, f".{cache.folder.name}.lock"}


def test_damaged_source_cache_is_a_clear_error(tmp_path):
    from dcatkit.model import build_model
    from dcatkit.source_cache import SourceCache
    from helpers import TINY, tiny_splits
    sp = tiny_splits(32, modalities=("imu", "video"))
    src = build_model("video", sp.train.num_classes, sp.train.input_shape("video"), TINY["video"])
    folder = SourceCache.build(src, sp.train, "video", tmp_path, progress=False).folder
    good = {p.name: p.read_bytes() for p in folder.iterdir()}
    for name, keep in [("k.npy", 0.5), ("k.npy", 0.01), ("correct.npy", 0.5), ("meta.json", 0.5)]:
        truncate(folder / name, keep)
        with pytest.raises(ValueError, match=name) as e:
            SourceCache.build(src, sp.train, "video", tmp_path, progress=False)     # a finished key: reused
        assert str(folder) in str(e.value) and "delete" in str(e.value)
        (folder / name).write_bytes(good[name])
    (folder / "v.npy").unlink()
    with pytest.raises(ValueError, match="v.npy"):
        SourceCache.build(src, sp.train, "video", tmp_path, progress=False)


def _decode(rec):
    rng = np.random.default_rng(rec)
    return {"arrays": {"imu": rng.normal(size=(3, 2, 8))}, "labels": [0, 1, rec % 2], "subjects": [rec] * 3,
            "ids": [f"{rec}-{i}" for i in range(3)], "groups": [str(rec)] * 3}


def _collect(cache_dir):
    from dcatkit.data.cache import collect
    return collect("toy", [0, 1, 2], _decode, classes=["a", "b"], settings={"v": 1}, cache_dir=cache_dir,
                   progress=False)


def test_window_cache_removes_a_killed_build_and_names_a_damaged_file(tmp_path):
    dead = killed_build(tmp_path, ".tmp-toy-0123-")            # a killed build of another key
    w = _collect(tmp_path)
    assert not dead.exists()
    folder = Path(w.report["cache"])
    np.testing.assert_array_equal(np.asarray(w.arrays["imu"]),
                                  np.concatenate([_decode(r)["arrays"]["imu"] for r in range(3)]).astype(np.float16))
    for name in ("imu.bin", "meta.json"):
        good = (folder / name).read_bytes()
        truncate(folder / name)
        with pytest.raises(ValueError, match=name) as e:
            _collect(tmp_path)
        assert str(folder) in str(e.value)
        (folder / name).write_bytes(good)
    assert _collect(tmp_path).labels.tolist() == w.labels.tolist()


# ------------------------------------------------------------------ TensorBoard


def read_scalars(log_dir: Path) -> dict:
    """tag -> [(step, value)] from the event files in ``log_dir``."""
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea.EventAccumulator(str(log_dir))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_tensorboard_scalars_match_the_history_also_after_a_resume(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    logs = tmp_path / "tb"
    interrupt_at(monkeypatch, 3)             # epoch 3's scalars are written, its state is not
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, method="dcat", log_dir=logs)
    monkeypatch.undo()
    res = run(tmp_path, method="dcat", log_dir=logs, resume=True)
    got = read_scalars(logs)
    assert {"train/loss", "train/ce", "train/ca", "train/mask_frac", "val/f1", "val/accuracy"} <= set(got)
    for tag, values in got.items():
        column = tag.replace("/", "_", 1)
        assert [s for s, _ in values] == [1, 2, 3, 4], tag      # the killed run's epoch 3 is purged
        np.testing.assert_allclose([v for _, v in values], res.history[column], rtol=1e-6, err_msg=tag)


def test_log_dir_without_tensorboard_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)     # as if it were not installed
    with pytest.raises(ImportError, match="pip install tensorboard"):
        run(tmp_path, log_dir=tmp_path / "tb")


def test_train_unimodal_resumes(tmp_path, monkeypatch, capsys):
    """The experiment functions pass resume= through (what notebooks and the CLI call)."""
    from dcatkit.experiment import train_unimodal
    from helpers import TINY, tiny_splits
    sp = tiny_splits(48, modalities=("imu",))
    kw = dict(preset=TINY["imu"].with_(epochs=3), seed=5, progress=False)
    ref = train_unimodal(sp, "imu", checkpoint=tmp_path / "ref.pt", **kw)
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_unimodal(sp, "imu", checkpoint=tmp_path / "run.pt", **kw)
    monkeypatch.undo()
    capsys.readouterr()
    res = train_unimodal(sp, "imu", checkpoint=tmp_path / "run.pt", resume=True, **kw)
    assert "resumes after epoch 1 of 3" in capsys.readouterr().out        # it did not start over
    pd.testing.assert_frame_equal(res.history.drop(columns=TIME_COLUMNS), ref.history.drop(columns=TIME_COLUMNS))
    assert all(res.test[m] == ref.test[m] for m in ("accuracy", "precision", "recall", "f1"))
    assert np.array_equal(res.test["confusion"], ref.test["confusion"])
    a, b = load_checkpoint(tmp_path / "run.pt")[0].state_dict(), load_checkpoint(tmp_path / "ref.pt")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)



def test_a_run_started_on_a_new_split_file_resumes(tmp_path, monkeypatch, capsys):
    """The load that writes a split file (a real loader's split_file="auto") and every load that reads
    it back report the split differently (reloaded, absent_from_data): the run started on the first
    load was refused its resume by every later one. Still refused: a split file of other samples."""
    from dcatkit.data import load
    from dcatkit.experiment import train_unimodal
    from helpers import TINY
    sp = lambda seed=0: load("synthetic", n_samples=64, seed=seed, modalities=("imu",),   # noqa: E731
                             split_file=tmp_path / f"split{seed}.json")
    kw = dict(preset=TINY["imu"].with_(epochs=3), seed=0, device="cpu", progress=False,
              checkpoint=tmp_path / "m.pt")
    first = sp()
    assert "reloaded" not in first.report["split"] and sp().report["split"]["reloaded"]
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_unimodal(first, "imu", **kw)
    monkeypatch.undo()
    capsys.readouterr()
    train_unimodal(sp(), "imu", resume=True, **kw)
    assert "resumes after epoch 1 of 3" in capsys.readouterr().out
    (tmp_path / "m.pt").unlink()
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_unimodal(sp(), "imu", **kw)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"other settings \(.*data\.split\.seed: saved 0, now 1"):
        train_unimodal(sp(1), "imu", resume=True, **kw)


def test_resume_on_other_preprocessing_of_the_same_samples_is_an_error(tmp_path, monkeypatch):
    """Same ids, classes and shapes, but the windows scaled differently (normalize=False after
    a run started scaled): the run resumed silently and trained on a mix of the two."""
    from dcatkit.data import from_arrays
    from dcatkit.experiment import train_unimodal
    from helpers import TINY
    rng = np.random.default_rng(0)
    y = np.arange(48) % 4
    x = (200 * rng.normal(size=(48, 3, 16)) + 50 * y[:, None, None]).astype(np.float32)
    kw = dict(preset=TINY["imu"].with_(epochs=3), device="cpu", checkpoint=tmp_path / "g.pt", progress=False)
    data = lambda normalize: from_arrays({"gyro": x}, y, groups="samples", kinds={"gyro": "timeseries"},  # noqa: E731
                                         normalize=normalize)
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_unimodal(data(True), "gyro", **kw)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"other settings \(data\.normalization"):
        train_unimodal(data(False), "gyro", resume=True, **kw)


def test_numpy_settings_give_a_state_and_checkpoint_that_load_back(tmp_path, monkeypatch):
    """A learning rate from a numpy grid (np.logspace) reached the optimiser's state and the
    checkpoint's meta as np.float64, which torch.load(weights_only=True) refuses: the state
    could not be resumed and the finished checkpoint was called truncated."""
    from dcatkit.experiment import train_unimodal
    from helpers import TINY, tiny_splits
    sp = tiny_splits(48, modalities=("imu",))
    kw = dict(preset=TINY["imu"].with_(epochs=2, lr=np.logspace(-3, -2, 2)[0]), device="cpu",
              checkpoint=tmp_path / "run.pt", progress=False)
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_unimodal(sp, "imu", **kw)
    monkeypatch.undo()
    train_unimodal(sp, "imu", resume=True, **kw)
    model, meta = load_checkpoint(tmp_path / "run.pt")
    assert meta["preset"]["lr"] == 1e-3 and type(meta["preset"]["lr"]) is float
    torch.save({"state_dict": model.state_dict(), "config": model.config, "meta": {"lr": np.float64(1e-3)}},
               tmp_path / "old.pt")                                     # as such a run wrote it before
    with pytest.raises(ValueError, match="beyond tensors and plain values"):
        load_checkpoint(tmp_path / "old.pt")

def test_resume_under_torchrun(tmp_path):
    """2 gloo processes: resuming from epoch 1's state gives the uninterrupted run's history
    on both ranks and the same weights."""
    import json
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parent), str(WORKER.parent.parent),
                                                        os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           str(WORKER.with_name("ddp_resume_worker.py")), str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    state = torch.load(tmp_path / "epoch1.state", weights_only=True)
    assert state["epoch"] == 1 and len(state["rng"]) == 2                   # every process's random streams
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["resumed"] == got["full"] and len(got["full"]["epoch"]) == 3
    a, b = (load_checkpoint(tmp_path / n)[0].state_dict() for n in ("full.pt", "resumed.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "resumed.pt.state").exists()


def test_a_state_of_another_format_version_is_refused_naming_the_version(tmp_path):
    """A state with every key but another version number (a later dcatkit's layout) is not
    resumed from; the same file with version 1 is."""
    from dcatkit import checkpoint as ck

    need = ("key", "epoch", "model", "extra_params", "optimizer", "scaler", "rng", "best", "best_state", "history")
    state = {k: 0 for k in need} | {"key": '{"a": 1}', "version": ck.STATE_VERSION + 1}
    path = tmp_path / "x.state"
    ck._save_state(path, state)
    with pytest.raises(ValueError, match=f"not a dcatkit training state of version {ck.STATE_VERSION} .*; found "
                                         f"version {ck.STATE_VERSION + 1}\\); delete it"):
        ck._load_state(path, '{"a": 1}')
    ck._save_state(path, {k: v for k, v in state.items() if k not in ("rng", "scaler")} | {"version": ck.STATE_VERSION})
    with pytest.raises(ValueError, match=f"found version {ck.STATE_VERSION}, without \\['rng', 'scaler'\\]\\)"):
        ck._load_state(path, '{"a": 1}')
    ck._save_state(path, {**state, "version": ck.STATE_VERSION})
    assert ck._load_state(path, '{"a": 1}')["epoch"] == 0


def test_the_saved_random_streams_restore_python_numpy_torch_and_the_loader():
    """A dataset drawing augmentations from numpy's or Python's global generator resumes with the
    draws it would have had: every stream in the state is put back (the toy run reads torch only)."""
    import random

    from dcatkit import checkpoint as ck

    gen = torch.Generator().manual_seed(3)
    saved = ck._rng_state(gen)
    first = (random.random(), np.random.rand(3).tolist(), torch.rand(2).tolist(), torch.rand(2, generator=gen).tolist())
    ck._set_rng_state(saved, gen)
    again = (random.random(), np.random.rand(3).tolist(), torch.rand(2).tolist(), torch.rand(2, generator=gen).tolist())
    assert again == first


def test_resume_with_other_labels_or_loader_settings_is_an_error(tmp_path, monkeypatch):
    """The same samples with other labels (``hide_labels`` with another count: the training set of
    labelled + unlabeled samples keeps every id) or from a loader with other window settings
    (``Splits.report["preprocessing"]``: e.g. the cough set's other microphone, same ids) are other
    runs: resuming one from the other's state is refused, naming the part (before: it resumed and
    mixed an epoch on 8 labels with epochs on 24)."""
    from dcatkit.data.dataset import hide_labels, training_set
    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits

    sp = tiny_splits(48, modalities=("imu",))
    preset = TINY["imu"].with_(epochs=3)

    def fit(splits, report=None, resume=False):
        torch.manual_seed(0)
        model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), preset)
        return train.fit(model, training_set(splits), splits.val, preset=preset, checkpoint=tmp_path / "run.pt",
                         progress=False, device="cpu", report=report, resume=resume)

    few, more = hide_labels(sp, 8, seed=0), hide_labels(sp, 24, seed=0)
    assert sorted(training_set(few).ids) == sorted(training_set(more).ids)
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fit(few, report={"preprocessing": "mic out"})
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"other settings \(labels_sha256"):
        fit(more, report={"preprocessing": "mic out"}, resume=True)
    with pytest.raises(ValueError, match=r"other settings \(preprocessing"):
        fit(few, report={"preprocessing": "mic in"}, resume=True)
    # a state saved before the key held labels and loader settings resumes when all it recorded agrees
    import json
    state_file = tmp_path / "run.pt.state"
    state = torch.load(state_file, weights_only=True)
    key = json.loads(state["key"])
    state["key"] = json.dumps({k: v for k, v in key.items() if k not in ("labels_sha256", "preprocessing")},
                              sort_keys=True)
    torch.save(state, state_file)
    assert fit(few, report={"preprocessing": "mic out"}, resume=True).history["epoch"].tolist() == [1, 2, 3]
    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fit(few, report={"preprocessing": "mic out"})
    monkeypatch.undo()
    state = torch.load(state_file, weights_only=True)
    key = {k: v for k, v in json.loads(state["key"]).items() if k not in ("labels_sha256", "preprocessing")}
    state["key"] = json.dumps({**key, "seed": 99}, sort_keys=True)         # ... and only then
    torch.save(state, state_file)
    with pytest.raises(ValueError, match=r"other settings \(seed: saved 99"):
        fit(few, report={"preprocessing": "mic out"}, resume=True)


def test_the_preprocessing_key_follows_the_loader_settings_not_the_file_times():
    """``Splits.report["preprocessing"]`` (what a resumed run must share): another setting or a file
    of another size changes it; a copy of the files (other times) does not."""
    from dcatkit.data.cache import preprocessing_key

    base = {"mic": "out", "window_s": 1.0, "files": [["a.wav", 100, 1], ["b.csv", 20, 2]]}
    assert preprocessing_key({**base, "files": [["a.wav", 100, 9], ["b.csv", 20, 7]]}) == preprocessing_key(base)
    assert preprocessing_key({**base, "mic": "in"}) != preprocessing_key(base)
    assert preprocessing_key({**base, "files": [["a.wav", 101, 1], ["b.csv", 20, 2]]}) != preprocessing_key(base)


def test_resume_with_other_validation_labels_is_an_error(tmp_path, monkeypatch):
    """The best epoch so far was chosen on the validation labels: the same validation ids with
    other labels are another run (it resumed, and kept a best epoch picked on the old labels).
    A state saved before the key held them resumes when everything it recorded agrees."""
    from dcatkit.data.dataset import PairedDataset
    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits

    sp = tiny_splits(48, modalities=("imu",))
    v = sp.val
    relabelled = PairedDataset(v.arrays, np.roll(v.labels, 1), v.classes, v.subjects, v.ids, v.sample_rates)
    assert list(relabelled.ids) == list(v.ids) and (relabelled.labels != v.labels).any()
    preset = TINY["imu"].with_(epochs=3)

    def fit(val, resume=False):
        torch.manual_seed(0)
        model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), preset)
        return train.fit(model, sp.train, val, preset=preset, checkpoint=tmp_path / "run.pt", progress=False,
                         device="cpu", resume=resume)

    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fit(v)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"other settings \(val_labels_sha256: saved '[0-9a-f]+', now"):
        fit(relabelled, resume=True)
    as_saved_before(tmp_path / "run.pt.state", "val_labels_sha256")   # as a state saved before it
    assert fit(v, resume=True).history["epoch"].tolist() == [1, 2, 3]


def test_a_transfer_state_saved_before_the_source_identity_was_recorded_resumes(tmp_path, monkeypatch):
    """train_transfer records its source's identity in the meta (report.finished_runs reads it), and
    the meta is part of a resumable run's key: a state saved by a dcatkit before that field resumes
    when everything it recorded agrees (it was refused: 'meta.source_identity: saved None')."""
    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits

    sp = tiny_splits(48, modalities=("imu",))
    preset = TINY["imu"].with_(epochs=3)

    def fit(meta, resume=False):
        torch.manual_seed(0)
        model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), preset)
        return train.fit(model, sp.train, sp.val, preset=preset, checkpoint=tmp_path / "run.pt", progress=False,
                         device="cpu", resume=resume, meta=meta)

    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fit({"source_identity": "abc"})
    monkeypatch.undo()
    as_saved_before(tmp_path / "run.pt.state", "meta", "source_identity")   # as a state saved before it
    assert fit({"source_identity": "abc"}, resume=True).history["epoch"].tolist() == [1, 2, 3]


def test_resume_with_a_source_of_other_settings_is_an_error(tmp_path, monkeypatch):
    """Two audio sources with the same weights and another hop length give K / V of another
    length: a run resumed with the other one is refused (``run.source_settings``), as is the
    cache's reuse (test_source_cache); a state saved before the field resumes."""
    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits

    sp = tiny_splits(32, modalities=("imu", "audio"))
    shape = sp.train.input_shape("audio")
    torch.manual_seed(0)
    a = build_model("audio", sp.train.num_classes, shape, TINY["audio"])
    b = build_model("audio", sp.train.num_classes, shape, TINY["audio"], hop_length=64)
    b.load_state_dict(a.state_dict())
    preset = TINY["imu"].with_(epochs=2)

    def fit(source, resume=False):
        torch.manual_seed(0)
        model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), preset)
        return train.fit_transfer(model, source, sp.train, sp.val, lam=1.0, preset=preset, device="cpu",
                                  checkpoint=tmp_path / "run.pt", cache_dir=tmp_path / "cache", progress=False,
                                  resume=resume)

    interrupt_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        fit(a)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"other settings \(run\.source_settings: saved '[0-9a-f]+', now"):
        fit(b, resume=True)
    as_saved_before(tmp_path / "run.pt.state", "run", "source_settings")   # as a state saved before it
    assert fit(a, resume=True).history["epoch"].tolist() == [1, 2]


def test_a_run_removes_only_its_own_left_over_temp_files(tmp_path):
    """A save killed midway leaves ``<state>.<random>.tmp``; the next run of that state removes it.
    The state's name is no glob pattern (``lam[1].pt.state`` took ``lam1.pt.state``'s temp files
    and kept its own) and another run whose state name starts with this one's keeps its own."""
    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits

    sp = tiny_splits(32, modalities=("imu",))
    preset = TINY["imu"].with_(epochs=1)
    from dcatkit.files import writer_tag

    dead_tag = writer_tag().replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")     # a writer that has exited
    own = [tmp_path / "lam[1].pt.state.ab_c1234.tmp",                        # named before names held the writer
           tmp_path / f"lam[1].pt.state.{dead_tag}ab_c1234.tmp"]
    others = [tmp_path / "lam1.pt.state.wxyz5678.tmp", tmp_path / "lam[1].pt.state.b.qrst9012.tmp"]
    for p in (*own, *others):
        p.write_bytes(b"a save cut short")
    model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), preset)
    train.fit(model, sp.train, sp.val, preset=preset, device="cpu", checkpoint=tmp_path / "lam[1].pt",
              progress=False)
    assert not any(p.exists() for p in own) and all(p.exists() for p in others)


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


SAVER = """
import sys, time
from pathlib import Path
from dcatkit.files import write_atomically
state, ready, go = map(Path, sys.argv[1:])
def save(f):                            # mid-save: torch.save into the temp file, as train._save_state does
    f.write(b"part of run A's state")
    ready.touch()
    t0 = time.time()
    while not go.exists():
        if time.time() - t0 > 120:
            raise SystemExit("never told to finish")
        time.sleep(0.05)
write_atomically(state, save, binary=True)
print("A saved")
"""


def test_a_run_keeps_the_temp_file_another_live_run_is_saving(tmp_path):
    """Two processes train the same checkpoint: A is saving its state (its temp file exists)
    when B starts. B removes leftovers of killed saves only: A's save then completes (the
    audit's race: B removed A's temp file and A's os.replace failed after its epochs).
    A temp file of another machine (whose processes cannot be seen) is kept too."""
    from dcatkit.files import writer_tag
    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits

    ck = tmp_path / "baseline.pt"
    ready, go = tmp_path / "ready", tmp_path / "go"
    elsewhere = tmp_path / f"baseline.pt.state.w{'0' * 8}-{_dead_pid()}-abcd1234.tmp"   # its pid: none here
    if writer_tag().startswith(f"w{'0' * 8}-"):              # this host's name hashes to 0s: another name
        elsewhere = elsewhere.with_name(elsewhere.name.replace("w" + "0" * 8, "w" + "1" * 8))
    elsewhere.write_bytes(b"a save on another machine")
    a = subprocess.Popen([sys.executable, "-c", SAVER, str(Path(f"{ck}.state")), str(ready), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    try:
        t0 = time.time()
        while not ready.exists():
            assert a.poll() is None and time.time() - t0 < 60, a.communicate()
            time.sleep(0.05)
        sp = tiny_splits(32, modalities=("imu",))
        preset = TINY["imu"].with_(epochs=1)
        model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), preset)
        train.fit(model, sp.train, sp.val, preset=preset, device="cpu", checkpoint=ck, progress=False)   # B
    finally:
        go.touch()
        out, err = a.communicate(timeout=60)
    assert a.returncode == 0 and "A saved" in out, err[-2000:]
    assert elsewhere.exists()


def test_a_state_holding_python_objects_is_not_called_truncated(tmp_path):
    """A state an older dcatkit wrote with a numpy learning rate holds a Python object that a
    weights-only load refuses: the error says so and how to convert a trusted file, not
    'truncated or corrupted'; junk bytes are still called what they are."""
    from dcatkit import checkpoint as ck

    path = tmp_path / "t.pt.state"
    torch.save({"version": 1, "key": "{}", "optimizer": {"param_groups": [{"lr": np.float64(1e-3)}]}}, path)
    with pytest.raises(ValueError) as e:
        ck._load_state(path, "{}")
    msg = str(e.value)
    assert "Python object" in msg and "numpy" in msg and "weights_only=False" in msg and "resume=False" in msg
    assert "truncated" not in msg and str(path) in msg
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a file torch.save wrote, or is empty, truncated or corrupted") as e:
        ck._load_state(path, "{}")
    assert "weights_only=False" not in str(e.value) and "resume=False" in str(e.value)


def test_contrastive_skipped_batches_resume_with_the_run(tmp_path, monkeypatch):
    """17 samples in batches of 16: each epoch's last batch (1 sample) has no negative and is
    skipped. The count is part of the saved state: a run killed before epoch 3's save and resumed
    ends with the uninterrupted run's 3 (it said 1: the count restarted at 0)."""
    import warnings

    from dcatkit.model import build_model
    from helpers import TINY, tiny_splits

    sp = tiny_splits(64, modalities=("imu", "video"))
    tr = sp.train.subset(range(17))
    preset = TINY["imu"].with_(epochs=3)

    def fit(folder, resume=False):
        torch.manual_seed(123)
        source = build_model("video", tr.num_classes, tr.input_shape("video"), TINY["video"])
        torch.manual_seed(0)
        model = build_model("imu", tr.num_classes, tr.input_shape("imu"), preset)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return train.fit_transfer(model, source, tr, sp.val, lam=1.0, method="contrastive", preset=preset,
                                      seed=0, device="cpu", checkpoint=folder / "t.pt", cache_dir=tmp_path / "c",
                                      progress=False, resume=resume)

    ref = fit(tmp_path / "ref")
    assert ref.objective.skipped_batches == 3
    interrupt_at(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "run")
    monkeypatch.undo()
    state = torch.load(tmp_path / "run" / "t.pt.state", weights_only=True)
    assert state["objectives"] == [{"_extra_state": {"skipped_batches": 2}}]
    res = fit(tmp_path / "run", resume=True)
    assert res.objective.skipped_batches == 3
    assert all(torch.equal(x, y) for x, y in zip(res.model.state_dict().values(), ref.model.state_dict().values()))
