"""The sweep runner (dcatkit.sweep): grids, parallel workers with one thread each,
resuming from stored runs, failures that are retried and nothing else."""
import json
import os
import warnings
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dcatkit.data import load
from dcatkit.experiment import train_unimodal
from dcatkit.stats import summarise
from dcatkit.sweep import (grid, read_run, read_sweep, run_grid, run_key, run_studies, run_transfer_sweep,
                           setup_fingerprint)

SMALL = {"frame_size": 16, "n_frames": 4}          # simulator options: small frames for a fast test


def toy_task(method, lam, seed, n_train=10, log_dir=None, fail_seed=None):
    """A module-level task (workers import it by name): a number from the parameters,
    the worker's torch thread count and pid; leaves a file per call in ``log_dir``."""
    import torch

    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        (Path(log_dir) / f"{method}-{lam}-{seed}-{n_train}-{os.getpid()}-{np.random.rand()}").touch()
    if seed == fail_seed:
        raise RuntimeError(f"seed {seed} is broken")
    return {"f1": seed / 100 + (0 if lam is None else lam) + n_train, "threads": torch.get_num_threads(),
            "pid": os.getpid(), "np_value": np.float32(0.5)}


def calls(log_dir):
    return sorted(p.name.rsplit("-", 2)[0] for p in Path(log_dir).iterdir()) if Path(log_dir).exists() else []


def test_grid():
    g = grid(method=["none", "dcat", "kd"], lam=[0.1, 1.0], n_train=[100, 300], seed=range(3), split="id")
    assert len(g) == 2 * 3 + 2 * 2 * 2 * 3                  # the baseline once per size and seed, not per lam
    assert g[0] == {"method": "none", "lam": None, "n_train": 100, "seed": 0, "split": "id"}
    assert sum(p["method"] == "dcat" and p["lam"] == 0.1 for p in g) == 6
    assert len({run_key(p) for p in g}) == len(g)
    assert grid(method=["dcat"], lam=[np.float64(1.0)], seed=[np.int64(2)]) == [{"method": "dcat", "lam": 1.0, "seed": 2}]
    assert run_key({"a": 1, "b": 2}) == run_key({"b": 2, "a": 1})
    with pytest.raises(ValueError, match="axis 'seed' has no values"):
        grid(method=["none"], seed=[])


def test_run_in_process_resume_redo_and_failures(tmp_path):
    out, log = tmp_path / "sweep", tmp_path / "log"
    params = grid(method=["none", "dcat"], lam=[1.0], seed=range(3), log_dir=str(log))
    df = run_grid(toy_task, params, out, workers=0, progress=False)
    assert list(df.columns[:4]) == ["method", "lam", "seed", "log_dir"]
    assert df["f1"].tolist() == pytest.approx([10.0, 10.01, 10.02, 11.0, 11.01, 11.02])
    assert len(calls(log)) == 6 and len(list((out / "runs").glob("*.json"))) == 6
    assert not list((out / "runs").glob("*.tmp"))
    # a rerun reads everything back and calls nothing
    again = run_grid(toy_task, params, out, workers=0, progress=False)
    assert len(calls(log)) == 6 and again.drop(columns="wall_s").equals(df.drop(columns="wall_s"))
    # one lost record: only that run is redone; redo=True redoes all
    os.remove(out / "runs" / f"{run_key(params[4])}.json")
    run_grid(toy_task, params, out, workers=0, progress=False)
    assert calls(log).count("dcat-1.0-1-10") == 2 and len(calls(log)) == 7
    run_grid(toy_task, params, out, workers=0, redo=True, progress=False)
    assert len(calls(log)) == 13
    # a grown grid runs only the new runs
    bigger = grid(method=["none", "dcat"], lam=[1.0], seed=range(4), log_dir=str(log))
    assert len(run_grid(toy_task, bigger, out, workers=0, progress=False)) == 8 and len(calls(log)) == 15
    # failures: the others are stored, the error names the run; a rerun retries only it
    fail = grid(method=["kd"], lam=[2.0], seed=range(3), log_dir=str(log), fail_seed=1)
    with pytest.raises(RuntimeError, match=r"(?s)1 of 3 runs failed.*'seed': 1.*seed 1 is broken"):
        run_grid(toy_task, fail, out, workers=0, progress=False)
    assert read_run(out, fail[0]) is not None and read_run(out, fail[1]) is None
    n = len(calls(log))
    with pytest.raises(RuntimeError, match="1 of 1 runs failed"):
        run_grid(toy_task, fail, out, workers=0, progress=False)
    assert len(calls(log)) == n + 1
    assert len(read_sweep(out)) == 8 + 2


def test_bad_records_and_results(tmp_path):
    p = {"method": "dcat", "lam": 1.0, "seed": 0}
    run_grid(toy_task, [p], tmp_path, workers=0, progress=False)
    path = tmp_path / "runs" / f"{run_key(p)}.json"
    rec = json.loads(path.read_text())
    rec["params"]["seed"] = 5
    path.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="holds the run"):
        run_grid(toy_task, [p], tmp_path, workers=0, progress=False)
    with pytest.raises(ValueError, match="same run twice"):
        run_grid(toy_task, [p, dict(p)], tmp_path, workers=0, progress=False)
    with pytest.raises(RuntimeError, match="reuse parameter names"):
        run_grid(bad_task, [{"f1": 1}], tmp_path / "b", workers=0, progress=False)
    # a path is stored as its string (same identity as before: run_key hashed str(path)) and read back
    as_path = run_grid(toy_task, [{**p, "n_train": 11, "log_dir": tmp_path / "calls"}], tmp_path / "p",
                       workers=0, progress=False)
    assert as_path.log_dir.tolist() == [str(tmp_path / "calls")]
    assert run_key({**p, "n_train": 11, "log_dir": tmp_path / "calls"}) == \
        run_key({**p, "n_train": 11, "log_dir": str(tmp_path / "calls")})
    # a parameter JSON cannot hold failed after the run had trained, blamed on "a sweep result"; now before
    with pytest.raises(ValueError, match=r"parameter 'n_train' is a set \(\{3\}\): a run's parameters are stored as JSON"):
        run_grid(toy_task, [p, {**p, "seed": 1, "n_train": {3}}], tmp_path / "s", workers=0, progress=False)
    assert not (tmp_path / "s" / "runs").exists() or not any((tmp_path / "s" / "runs").iterdir())


def bad_task(f1):
    return {"f1": f1}


def test_parallel_workers_one_thread_each(tmp_path, monkeypatch):
    """Two spawned workers share the runs; each runs torch with one thread (whatever it inherits)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    params = grid(method=["none", "dcat"], lam=[1.0], seed=range(4), log_dir=str(tmp_path / "log"))
    df = run_grid(toy_task, params, tmp_path / "sweep", workers=2, progress=False)
    assert df["f1"].tolist() == pytest.approx([10.0, 10.01, 10.02, 10.03, 11.0, 11.01, 11.02, 11.03])
    assert set(df["threads"]) == {1}
    assert df["pid"].nunique() == 2 and os.getpid() not in set(df["pid"])
    assert len(calls(tmp_path / "log")) == 8


def test_transfer_sweep_sources_once_baseline_is_unimodal_and_resumes(tmp_path):
    kw = dict(methods=["none", "dcat", "kd"], sizes=[160], seeds=[0, 1], workers=0, progress=False,
              epochs_source=1, epochs_target=2, data_options=SMALL, options={"kd_temperature": 2.0})
    df = run_transfer_sweep(tmp_path, **kw)
    assert len(df) == 6 and sorted(df.method.unique()) == ["dcat", "kd", "none"]
    assert df.loc[df.method == "none", "lam"].isna().all() and (df.loc[df.method != "none", "lam"] == 1.0).all()
    assert len(list((tmp_path / "sources").glob("*.pt"))) == 2           # one source per seed, shared
    assert df.groupby("seed")["source_f1"].nunique().eq(1).all()
    # the baseline runs are train_unimodal with the same seed and data, bit for bit
    sp = load("synthetic", split="id", seed=1, modalities=("video", "imu"), n_samples=160, **SMALL)
    base = train_unimodal(sp, "imu", preset="synthetic", epochs=2, seed=1, progress=False)
    row = df[(df.method == "none") & (df.seed == 1)].iloc[0]
    assert row["train_loss_last"] == base.history["train_loss"].iloc[-1] and row["f1"] == base.test["f1"]
    assert row["n_train"] == len(sp.train)
    dcat = df[df.method == "dcat"]
    assert (dcat["train_ca_last"] > 0).all() and (dcat["train_loss_last"].values != df[df.method == "none"]
                                                  ["train_loss_last"].values).all()
    # a rerun redoes nothing and returns the same table
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}
    again = run_transfer_sweep(tmp_path, **kw)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")} == stamps
    assert again.drop(columns="wall_s").equals(df.drop(columns="wall_s"))
    s = summarise(df).set_index("method")
    assert s.loc["dcat", "n_pairs"] == 2 and s.loc["dcat", "diff_mean"] == pytest.approx(
        (dcat["f1"].values - df[df.method == "none"]["f1"].values).mean())


def test_transfer_sweep_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown sweep setting"):
        run_transfer_sweep(tmp_path, methods=["none"], seeds=[0], epochs=3)
    with pytest.raises(ValueError, match="unknown transfer method 'dcta'"):
        run_transfer_sweep(tmp_path, methods=["none", "dcta"], seeds=[0])
    with pytest.raises(ValueError, match="taken by none of the methods"):
        run_transfer_sweep(tmp_path, methods=["none", "dcat"], seeds=[0], options={"kd_temperature": 2.0})
    # a data option the sweep sets itself was a TypeError inside the worker ('multiple values')
    for clash in ({"n_samples": 60}, {"regime": "ambiguous"}, {"seed": 1}):
        with pytest.raises(ValueError, match=f"data_options may not set \\['{next(iter(clash))}'\\]"):
            run_transfer_sweep(tmp_path, methods=["none"], seeds=[0], data_options=clash)
    # a misspelt modality failed in every worker after the sources' time, as "N of M runs failed"
    for role in ("source", "target"):
        with pytest.raises(ValueError, match=rf"{role} 'vidoe': the simulator's modalities are \['imu', 'video'"):
            run_transfer_sweep(tmp_path, methods=["none"], seeds=[0], **{role: "vidoe"})
    assert not (tmp_path / "runs").exists()


def test_transfer_sweep_fixed_data_and_source(tmp_path):
    """data_seed / source_seed fixed: every seed trains its target on the same data from one
    shared source; the baseline is train_unimodal on that data with the run's own seed."""
    kw = dict(methods=["none", "dcat"], sizes=[120], seeds=[0, 1], workers=0, progress=False, epochs_source=1,
              epochs_target=1, data_options=SMALL, data_seed=3, source_seed=5)
    df = run_transfer_sweep(tmp_path, **kw)
    assert len(list((tmp_path / "sources").glob("*.pt"))) == 1            # one source for both seeds
    assert df["source_f1"].nunique() == 1 and (df["data_seed"] == 3).all()
    sp = load("synthetic", split="id", seed=3, modalities=("video", "imu"), n_samples=120, **SMALL)
    for seed in (0, 1):
        base = train_unimodal(sp, "imu", preset="synthetic", epochs=1, seed=seed, progress=False)
        row = df[(df.method == "none") & (df.seed == seed)].iloc[0]
        assert row["train_loss_last"] == base.history["train_loss"].iloc[-1] and row["f1"] == base.test["f1"]
    src = train_unimodal(sp, "video", preset="synthetic", epochs=1, seed=5, progress=False)
    assert df["source_f1"].iloc[0] == src.test["f1"]                      # the source: data seed 3, seed 5


def test_transfer_sweep_runs_folds_like_seeds(tmp_path):
    """A cross-validation split: one run per fold, each on its own fold's data and source;
    results pair on (seed, fold)."""
    df = run_transfer_sweep(tmp_path, methods=["none", "dcat"], sizes=[160], seeds=[0], folds=[0, 1], workers=0,
                            progress=False, split=["group_kfold", 2], epochs_source=1, epochs_target=1,
                            data_options=SMALL)
    assert sorted(zip(df.method, df.fold)) == [("dcat", 0), ("dcat", 1), ("none", 0), ("none", 1)]
    folds = load("synthetic", split=("group_kfold", 2), seed=0, modalities=("video", "imu"), n_samples=160, **SMALL)
    assert df[df.method == "none"].sort_values("fold")["n_train"].tolist() == [len(f.train) for f in folds]
    assert len(list((tmp_path / "sources").glob("*.pt"))) == 2           # one source per fold
    assert summarise(df, pair=("seed", "fold")).set_index("method").loc["dcat", "n_pairs"] == 2
    with pytest.raises(RuntimeError, match="has 2 folds: give fold"):
        run_transfer_sweep(tmp_path / "x", methods=["none"], sizes=[160], seeds=[0], workers=0, progress=False,
                           split=["group_kfold", 2], data_options=SMALL)


def test_setup_fingerprint_follows_presets_and_simulator(monkeypatch):
    """The fingerprint changes with what a run's result depends on beyond its parameters:
    a preset's epochs, a simulator knob, a default of make_synthetic; not with nothing."""
    from dataclasses import replace

    from dcatkit import presets
    from dcatkit.data import synthetic

    base = setup_fingerprint("synthetic", "synthetic", "video", "imu")
    assert base == setup_fingerprint("synthetic", "synthetic", "video", "imu")
    assert base != setup_fingerprint("synthetic", "synthetic", "audio", "imu")
    with monkeypatch.context() as m:
        m.setitem(presets.SYNTHETIC_BY_KIND, "video", replace(presets.SYNTHETIC_BY_KIND["video"], epochs=99))
        assert setup_fingerprint("synthetic", "synthetic", "video", "imu") != base
    with monkeypatch.context() as m:
        m.setitem(synthetic.HEADROOM_KNOBS, "imu_noise", 0.5)
        assert setup_fingerprint("synthetic", "synthetic", "video", "imu") != base
    with monkeypatch.context() as m:
        m.setattr(synthetic.make_synthetic, "__defaults__",
                  tuple(0.9 if d == 0.3 else d for d in synthetic.make_synthetic.__defaults__))  # audio_noise
        assert setup_fingerprint("synthetic", "synthetic", "video", "imu") != base
    assert setup_fingerprint("synthetic", "synthetic", "video", "imu") == base


def test_sweep_retrains_after_a_preset_change(tmp_path, monkeypatch):
    """A run stored before the preset changed is not read back as if current: the source and
    the target are trained again (new files), and the new table differs."""
    from dataclasses import replace

    from dcatkit import presets

    kw = dict(methods=["none"], sizes=[120], seeds=[0], workers=0, progress=False, data_options=SMALL)
    monkeypatch.setitem(presets.SYNTHETIC_BY_KIND, "video", replace(presets.SYNTHETIC_BY_KIND["video"], epochs=1))
    monkeypatch.setitem(presets.SYNTHETIC_BY_KIND, "timeseries",
                        replace(presets.SYNTHETIC_BY_KIND["timeseries"], epochs=1))
    first = run_transfer_sweep(tmp_path, **kw)
    monkeypatch.setitem(presets.SYNTHETIC_BY_KIND, "timeseries",
                        replace(presets.SYNTHETIC_BY_KIND["timeseries"], epochs=2))
    second = run_transfer_sweep(tmp_path, **kw)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2 and len(list((tmp_path / "sources").glob("*.pt"))) == 2
    assert first.setup.iloc[0] != second.setup.iloc[0]
    assert second.train_loss_last.iloc[0] != first.train_loss_last.iloc[0]


def test_sweep_on_real_data_retrains_after_the_data_changed(tmp_path, monkeypatch):
    """A sweep on a real dataset (a cough fixture) reads its runs back while the files are the
    same, and runs them again, with new sources, once a participant's folder is gone: the run's
    identity holds the data's (``data_identity``), not only the presets. Fake tasks: no training."""
    import shutil

    sf = pytest.importorskip("soundfile", reason="writing a wav fixture needs the soundfile package, which is not installed")

    from dcatkit import sweep
    from fixtures_data import make_cough

    root = tmp_path / "cough"
    root.mkdir()
    make_cough(root)
    ran = []

    def fake_target(*, out_dir, device, **p):
        p = {**sweep.TARGET_DEFAULTS, **p}
        sp = sweep._splits(p["dataset"], p["root"], p["split"], p["seed"], p["n_samples"], p["regime"],
                           p["data_options"], (p["source"], p["target"]))
        ran.append(p["setup"])
        return {"n_train": len(sp.train)}

    monkeypatch.setattr(sweep, "source_task", lambda **p: {"source_f1": 0.0})
    monkeypatch.setattr(sweep, "transfer_task", fake_target)
    kw = dict(methods=["none"], seeds=[0], workers=0, progress=False, dataset="cough", root=str(root),
              source="audio", target="imu", preset="cough", data_options={"sample_rate": 8000, "progress": False})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = run_transfer_sweep(tmp_path / "sw", **kw)
        again = run_transfer_sweep(tmp_path / "sw", **kw)                 # same files: read back
        assert len(ran) == 1 and again.equals(first)
        shutil.rmtree(root / "008")
        second = run_transfer_sweep(tmp_path / "sw", **kw)
        assert len(ran) == 2 and second.setup[0] != first.setup[0]
        assert second.n_train[0] == len(load("cough", root, sample_rate=8000, progress=False).train) < first.n_train[0]
        assert len(list((tmp_path / "sw" / "sources" / "runs").glob("*.json"))) == 2     # a new source too
        wav = sorted((root / "005").rglob("*_Out.wav"))[0]                # rewritten in place: same names, size
        x, sr = sf.read(wav)
        sf.write(wav, x / 2, sr)
        os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
        third = run_transfer_sweep(tmp_path / "sw", **kw)
    assert len(ran) == 3 and third.setup[0] != second.setup[0]
    # a copy of the same files with new times (cp -r, another node's copy): the same identity
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, copy_function=shutil.copy, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    assert next(copy.rglob("*_Out.wav")).stat().st_mtime_ns != next(root.rglob("*_Out.wav")).stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = [sweep.data_identity(load("cough", r, sample_rate=8000, progress=False)) for r in (root, copy)]
    assert ids[0] == ids[1]


def test_run_studies_equals_one_sweep_per_study(tmp_path):
    """Studies run as one sweep give the rows one run_transfer_sweep per study gives, in
    study order with a study column; a run two studies share is trained once."""
    common = dict(sizes=[120], epochs_source=1, epochs_target=1, data_options=SMALL)
    studies = [dict(study="id", methods=["none", "dcat"], split="id", **common),
               dict(study="ood", methods=["none"], split="ood", **common),
               dict(study="id again", methods=["none"], split="id", **common)]
    df = run_studies(tmp_path / "one", studies, seeds=[0, 1], workers=0, progress=False)
    assert df.study.tolist() == ["id"] * 4 + ["ood"] * 2 + ["id again"] * 2
    assert len(list((tmp_path / "one" / "runs").glob("*.json"))) == 6         # "id again" is read, not retrained
    assert len(list((tmp_path / "one" / "sources").glob("*.pt"))) == 4        # per (split, seed)
    for s in studies:
        s = dict(s)
        name = s.pop("study")
        alone = run_transfer_sweep(tmp_path / name, seeds=[0, 1], workers=0, progress=False, **s)
        timing = ["wall_s", "train_time_s"]
        got = df[df.study == name].drop(columns=["study", *timing]).reset_index(drop=True)
        alone = alone.drop(columns=timing).astype({"lam": float})      # None (no lambda) reads as NaN once mixed
        assert got.drop(columns=alone.columns).isna().all().all(), name     # columns other studies' runs have
        pd.testing.assert_frame_equal(got[alone.columns], alone, check_dtype=False, obj=name)
    with pytest.raises(ValueError, match="study names must be distinct"):
        run_studies(tmp_path / "x", [studies[1], studies[1]], seeds=[0], workers=0, progress=False)
    with pytest.raises(ValueError, match=r"a study needs \['methods'\]"):
        run_studies(tmp_path / "x", [{"study": "a"}], seeds=[0], workers=0, progress=False)


# ------------------------------------------------------------------ issue 17 / 18 / 19: draws, identity, shards,
# GPU workers, killed workers


def test_data_seeds_are_an_axis_each_draw_its_own_source(tmp_path):
    """data_seeds=[0, 1]: a data_seed column; the (draw, seed) baseline is train_unimodal on that
    draw with that seed, and its source the video model trained on that draw; draws differ."""
    kw = dict(methods=["none", "dcat"], sizes=[120], seeds=[0, 1], data_seeds=[0, 1], workers=0, progress=False,
              epochs_source=1, epochs_target=1, data_options=SMALL)
    df = run_transfer_sweep(tmp_path, **kw)
    assert len(df) == 8 and sorted(set(zip(df.data_seed, df.seed))) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert list(df.columns[:5]) == ["method", "lam", "n_samples", "data_seed", "seed"]
    assert len(list((tmp_path / "sources").glob("*.pt"))) == 4                 # one per (draw, seed)
    sp = load("synthetic", split="id", seed=1, modalities=("video", "imu"), n_samples=120, **SMALL)
    base = train_unimodal(sp, "imu", preset="synthetic", epochs=1, seed=0, progress=False)
    src = train_unimodal(sp, "video", preset="synthetic", epochs=1, seed=0, progress=False)
    row = df[(df.method == "none") & (df.seed == 0) & (df.data_seed == 1)].iloc[0]
    assert row["f1"] == base.test["f1"] and row["train_loss_last"] == base.history["train_loss"].iloc[-1]
    assert row["source_f1"] == src.test["f1"]
    d0 = df[(df.method == "none") & (df.seed == 0) & (df.data_seed == 0)].iloc[0]
    assert d0["train_loss_last"] != row["train_loss_last"]                      # another draw, another run
    with pytest.raises(ValueError, match="exclude each other"):
        run_transfer_sweep(tmp_path, **{**kw, "data_seed": 3})
    with pytest.raises(ValueError, match="non-empty list of integers"):
        run_transfer_sweep(tmp_path, **{**kw, "data_seeds": [0.5]})


def test_setup_fingerprint_sees_the_simulators_tables_and_resolved_presets(monkeypatch):
    """Tables the settings dicts do not list (event shapes, colours, sizes, tones, the ambiguous
    regime's motions, the split ratios) change the fingerprint through the canonical draw; two
    preset names that resolve to the same presets give the same fingerprint."""
    from dcatkit import data
    from dcatkit.data import synthetic as sim

    fp = lambda regime="headroom": setup_fingerprint("synthetic", "synthetic", "video", "imu", regimes=[regime])
    base, amb = fp(), fp("ambiguous")
    assert base != amb
    changes = [(sim.EVENT_SHAPES, "tap", (0.016, False)), (sim._MOTION, "drinking", (0.85, 1, 0.30)),
               (data.RATIOS, "synthetic", (0.6, 0.2, 0.2))]
    for table, key, value in changes:
        with monkeypatch.context() as m:
            m.setitem(table, key, value)
            assert (fp(), fp("ambiguous")) != (base, amb), key
    for name, value in (("_COLOUR", sim._COLOUR * 0.98), ("_SIZE", sim._SIZE + 1), ("_TONE", sim._TONE * 1.02)):
        with monkeypatch.context() as m:
            m.setattr(sim, name, value)
            assert fp() != base and fp("ambiguous") != amb, name
    with monkeypatch.context() as m:                       # the ambiguous regime's motions only
        m.setitem(sim._MOTION, "drinking", (0.85, 1, 0.30))
        assert fp() == base and fp("ambiguous") != amb
    assert (fp(), fp("ambiguous")) == (base, amb)
    # content, not names: "paper" on UESTC is Table I's UESTC rows, as the "uestc" preset is
    assert setup_fingerprint("uestc", "paper") == setup_fingerprint("uestc", "uestc")
    assert setup_fingerprint("uestc", "paper") != setup_fingerprint("cough", "paper", "audio", "imu")


def test_redo_retrains_a_tampered_source(tmp_path):
    """redo=True trains the sources again: a source whose head was zeroed after the first sweep
    is replaced by a retrained one (the same as the first on the CPU), not read back."""
    import torch

    kw = dict(methods=["none", "dcat"], sizes=[120], seeds=[0], workers=0, progress=False, epochs_source=1,
              epochs_target=1, data_options=SMALL)
    first = run_transfer_sweep(tmp_path, **kw)
    (path,) = (tmp_path / "sources").glob("*.pt")
    ck = torch.load(path, weights_only=True)
    ck["state_dict"]["head.weight"].zero_()
    ck["state_dict"]["head.bias"].zero_()
    torch.save(ck, path)
    again = run_transfer_sweep(tmp_path, **kw, redo=True)
    assert torch.load(path, weights_only=True)["state_dict"]["head.weight"].abs().sum() > 0
    assert (again["source_f1"] == first["source_f1"]).all()
    assert (again["f1"] == first["f1"]).all()


def killer_task(seed, hold=None, kill_seed=None, flag=None):
    """A module-level task: seed ``kill_seed`` kills its own worker (as the OS's out-of-memory
    killer would) once seed ``hold`` has started (it touches ``flag``), and seed ``hold`` sleeps
    until the pool stops it. Waiting on the flag, not a fixed delay: on a 16-core machine the
    kill came before the other worker had picked up its run (seen on the H200 box)."""
    import signal
    import time
    from pathlib import Path

    if seed == hold:
        Path(flag).touch()
        time.sleep(120)
    if seed == kill_seed:
        deadline = time.monotonic() + 60
        while not Path(flag).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
    return {"f1": float(seed)}


def test_killed_worker_is_reported_as_killed_and_the_rest_as_not_started(tmp_path):
    """Issue 19: a worker killed by SIGKILL is "killed" with its run's parameters and the
    signal; the other worker's run, stopped by the pool, is "stopped"; the runs that never
    began are "not started", and none of them is called failed."""
    params = grid(seed=range(6), hold=0, kill_seed=1, flag=str(tmp_path / "hold_started"))
    with pytest.raises(RuntimeError) as e:
        run_grid(killer_task, params, tmp_path / "runs", workers=2, progress=False)
    msg = str(e.value)
    assert msg.startswith("of 6 runs: 0 finished, 0 failed, 1 killed, 1 stopped with them, 4 not started"), msg
    assert "killed: the worker" in msg and "'seed': 1" in msg and "signal SIGKILL" in msg
    assert "stopped with the pool after a worker was killed: {'seed': 0" in msg
    assert "runs failed" not in msg
    assert not list((tmp_path / "runs" / "running").glob("*")), "the killed runs' markers are cleaned up"


def test_gpu_workers_from_free_memory_and_run_size(monkeypatch):
    """Several small runs share a GPU: as many as fit in 80% of its free memory, at most its share
    of the CPU cores, at least one; the smallest free memory over the GPUs decides. CPU: cores."""
    import torch

    from dcatkit import runner, sweep

    GiB = 1 << 30
    assert sweep.gpu_workers_per_device(10 * GiB, 2 * GiB, 16) == 4                  # 8 GiB / 2 GiB
    assert sweep.gpu_workers_per_device(100 * GiB, 2 * GiB, 6) == 6                  # cores bind
    assert sweep.gpu_workers_per_device(GiB, 2 * GiB, 16) == 1                        # never 0
    assert sweep.gpu_workers_per_device(10 * GiB, None, 16) == 1
    assert sweep.estimate_run_bytes(32, [(6, 64)]) == sweep.CUDA_CONTEXT_BYTES + sweep.ACTIVATION_FACTOR * 32 * 6 * 64 * 4
    monkeypatch.setattr(runner, "_cpu_cores", lambda: 16)       # sweep's default_workers is runner's
    if not torch.cuda.is_available():
        assert sweep.default_workers(2 * GiB) == 16                                   # CPU: one per core
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: ((40 * GiB, 80 * GiB), (10 * GiB, 80 * GiB))[i])
    assert sweep.default_workers(2 * GiB) == 2 * 4                                     # GPU 1's 10 GiB free
    assert sweep.default_workers(None) == 2
    assert sweep.default_workers(GiB // 4) == 2 * 8                                   # 8 cores per GPU
    # the sweep's estimate: the target's batch and input shape (SMALL video: 4 frames of 16 x 16)
    p = {"seed": 0, "n_samples": 120, "data_options": SMALL}
    assert sweep._run_bytes(p, "video") == sweep.estimate_run_bytes(32, [(4, 3, 16, 16)])


def test_shards_cover_the_grid_once_and_share_few_sources():
    from dcatkit.sweep import _transfer_params, parse_shard, shard_of, source_identity

    params = _transfer_params(["none", "dcat", "kd"], [1.0], [120], [0, 1, 2, 3], None, {"data_options": SMALL},
                              [0, 1])
    for n in (1, 2, 3, 5, 30):
        parts = [shard_of(params, k, n) for k in range(1, n + 1)]
        keys = [run_key(p) for part in parts for p in part]
        assert sorted(keys) == sorted(run_key(p) for p in params) and len(set(keys)) == len(params), n
        assert max(map(len, parts)) - min(map(len, parts)) <= 1, n
        srcs = [{run_key(source_identity(p)) for p in part} for part in parts]
        assert sum(map(len, srcs)) <= 8 + n - 1, n                           # contiguous: at most n-1 shared
    assert shard_of(list(reversed(params)), 2, 3) == shard_of(params, 2, 3)     # order of the grid: irrelevant
    assert parse_shard("2/4") == (2, 4) and parse_shard((1, 1)) == (1, 1) and parse_shard(None) is None
    env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert parse_shard("auto", env) == (1, 3)
    assert parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}) == (3, 3)
    for bad, msg in (("0/2", "1 <= k <= n"), ("3/2", "1 <= k <= n"), ("2", "'k/n'"), ("auto", "not set")):
        with pytest.raises(ValueError, match=msg):
            parse_shard(bad, {})
    # a resubmission of tasks 2 and 5 of --array=0-7 (ids not contiguous) or a stepped array would run the
    # wrong shards (task 2 -> shard 1 of 2): refused, naming the explicit form
    assert parse_shard("auto", {**env, "SLURM_ARRAY_TASK_MAX": "7", "SLURM_ARRAY_TASK_STEP": "1"}) == (1, 3)
    for odd in ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "5",
                 "SLURM_ARRAY_TASK_COUNT": "2"},
                {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "6",
                 "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_STEP": "2"}):
        with pytest.raises(ValueError, match=r"contiguous task ids .* give --shard k/n explicitly"):
            parse_shard("auto", odd)
    # resubmitting task 3 of --array=0-7 alone: "auto" would read an array of one task (the whole grid);
    # refused. "auto/N" keeps the task's shard through any resubmission
    one = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_MAX": "3",
           "SLURM_ARRAY_TASK_COUNT": "1"}
    with pytest.raises(ValueError, match=r"contiguous task ids"):
        parse_shard("auto", one)
    assert parse_shard("auto", {**one, "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_MIN": "0",
                                "SLURM_ARRAY_TASK_MAX": "0"}) == (1, 1)                    # a one-task array
    assert parse_shard("auto/8", one) == (4, 8)
    assert parse_shard("auto/8", {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "2"}) == (8, 8)
    for bad, env_, msg in (("auto/8", {"SLURM_ARRAY_TASK_ID": "8"}, r"task ids 0..7 .* SLURM_ARRAY_TASK_ID is 8"),
                           ("auto/8", {}, "not set"), ("auto/x", one, "a whole number")):
        with pytest.raises(ValueError, match=msg):
            parse_shard(bad, env_)


def test_a_runs_identity_holds_only_the_options_its_method_takes():
    """Adding kd with its temperature to a grid keeps the identities of the baseline's and dcat's runs
    (they never read kd's option), so they are read back instead of trained again."""
    from dcatkit.sweep import _transfer_params

    fixed = {"data_options": SMALL}
    before = _transfer_params(["none", "dcat"], [1.0], [120], [0, 1], None, fixed)
    after = _transfer_params(["none", "dcat", "kd"], [1.0], [120], [0, 1], None,
                             {**fixed, "options": {"kd_temperature": 2.0}})
    assert {run_key(p) for p in before} == {run_key(p) for p in after if p["method"] != "kd"}
    assert [p["options"] for p in after if p["method"] == "kd"] == [{"kd_temperature": 2.0}] * 2


def test_source_lock_excludes_another_process(tmp_path):
    """Shards that need one source: the second waits on the lock the first holds while training."""
    import subprocess
    import sys

    from dcatkit.sweep import _locked

    path = tmp_path / "sources" / "video_x.pt"
    probe = ("import fcntl, sys; f = open(sys.argv[1], 'a')\n"
             "try:\n    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('got')\n"
             "except OSError:\n    print('busy')")
    with _locked(path):
        r = subprocess.run([sys.executable, "-c", probe, str(path) + ".lock"], capture_output=True, text=True)
        assert r.stdout.strip() == "busy", r.stderr
    r = subprocess.run([sys.executable, "-c", probe, str(path) + ".lock"], capture_output=True, text=True)
    assert r.stdout.strip() == "got", r.stderr


def test_a_script_without_main_guard_is_told_why_no_worker_ran(tmp_path):
    """A sweep called at the top of a script: the spawned workers re-import the script and die
    before running anything. The error says so and names the fix (the main guard or workers=0);
    with the guard the same script runs."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "square_task.py").write_text("def square(a):\n    return {'sq': a * a}\n")
    body = ("from dcatkit.sweep import run_grid; from square_task import square\n"
            "print(run_grid(square, [{'a': 1}, {'a': 2}], OUT, workers=2, progress=False).sq.tolist())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    bare = tmp_path / "bare.py"
    bare.write_text(body.replace("OUT", repr(str(tmp_path / "bare"))))
    r = subprocess.run([sys.executable, str(bare)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode != 0
    assert "No worker ran anything" in r.stderr and 'if __name__ == "__main__":' in r.stderr, r.stderr[-3000:]
    guarded = tmp_path / "guarded.py"
    lines = body.replace("OUT", repr(str(tmp_path / "guarded"))).splitlines()
    guarded.write_text(lines[0] + "\nif __name__ == '__main__':\n    " + lines[1] + "\n")
    r = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "[1, 4]", r.stderr[-3000:]


def test_runs_read_back_keep_their_own_code_version_and_say_so(tmp_path, monkeypatch):
    """A run record stores the code and machine that trained it (env_* columns of the table), so a
    run read back after a code change keeps its own commit instead of being stamped with today's;
    reading such runs back warns, naming both versions. A damaged record is named."""
    import dcatkit.runner as S

    env = {"dcatkit": "0.1.0", "torch": "2.x", "device": "cpu", "device_name": None, "git_commit": "aaa111"}
    monkeypatch.setattr(S, "_env_record", lambda device=None: dict(env))
    monkeypatch.setattr(S, "_code_version", lambda: {k: env[k] for k in ("dcatkit", "git_commit")})
    out = tmp_path / "sweep"
    params = grid(method=["none"], lam=[None], seed=range(2))
    first = run_grid(toy_task, params, out, workers=0, progress=False)
    assert first["env_git_commit"].tolist() == ["aaa111"] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # the same code: nothing to say
        run_grid(toy_task, params, out, workers=0, progress=False)
    env["git_commit"] = "bbb222"
    more = grid(method=["none"], lam=[None], seed=range(3))
    with pytest.warns(UserWarning, match=r"2 of 3 runs were read back .* not retrained, and were trained by other code "
                                         r"\(dcatkit 0.1.0 at aaa111; this is dcatkit 0.1.0 at bbb222\)") as said:
        table = run_grid(toy_task, more, out, workers=0, progress=False)
    assert str(said[0].message).endswith("Pass redo=True (--redo) to train them again.")
    env["git_commit"] = "ccc333"
    with pytest.warns(UserWarning, match="trained by other code") as said:          # gathering: it refuses redo
        run_grid(toy_task, more, out, read_only=True, progress=False)
    text = str(said[0].message)
    assert "Pass redo=True" not in text and text.endswith(
        f"Gathering trains nothing and refuses redo: to train them again, run the grid without gather (--gather), "
        f"with redo=True (--redo), or move {out / 'runs'} away (a sweep's sources/ beside it too) and run the "
        "shards again, then gather.")
    with pytest.raises(ValueError, match="read_only .gather. and redo exclude each other"):    # as it says
        run_grid(toy_task, more, out, read_only=True, redo=True, progress=False)
    assert table["env_git_commit"].tolist() == ["aaa111", "aaa111", "bbb222"]
    assert read_sweep(out)["env_git_commit"].notna().all()
    rec = next((out / "runs").glob("*.json"))
    rec.write_text(rec.read_text()[:40])
    with pytest.raises(ValueError, match=r"\.json is not a readable run record .*delete it and that run is trained again"):
        read_sweep(out)


def test_a_grid_needs_its_baseline_but_studies_may_share_one(tmp_path, monkeypatch):
    """run_transfer_sweep without 'none' stops before anything trains; in run_studies one study's
    baseline serves the others (notebook 04's second study lists only the method), so only a set
    of studies with no 'none' at all is refused."""
    import dcatkit.sweep as S

    def no_runs(*a, **k):
        raise AssertionError("nothing should run")

    with pytest.raises(ValueError, match=r"methods \['dcat'\] have no baseline: add 'none'"):
        run_transfer_sweep(tmp_path, methods=["dcat"], seeds=[0], workers=0, progress=False)
    with pytest.raises(ValueError, match=r"methods \['dcat', 'kd'\] have no baseline"):
        run_studies(tmp_path, [dict(study="a", methods=["dcat"]), dict(study="b", methods=["kd"])], seeds=[0],
                    workers=0, progress=False)
    monkeypatch.setattr(S, "_run_transfer_params", lambda out, params, *a: pd.DataFrame(params))
    table = run_studies(tmp_path, [dict(study="a", methods=["none", "dcat"]), dict(study="b", methods=["kd"])],
                        seeds=[0], workers=0, progress=False)
    assert sorted(set(table.method)) == ["dcat", "kd", "none"] and not (tmp_path / "runs").exists()


def test_a_grid_whose_runs_come_from_two_machines_says_so(tmp_path, monkeypatch):
    """Runs read back from one machine and runs trained on another (or read back from two) give a
    warning naming both machines and the counts; one machine, or records that name none, give
    nothing. A task that names its device (the sweeps' partial(..., device=...)) records it."""
    import functools

    import dcatkit.runner as S

    env = {"dcatkit": "0.1.0", "torch": "2.x", "device": "cpu", "device_name": None, "cpu": "Intel Xeon",
           "cpu_capability": "AVX512", "git_commit": "aaa111"}
    monkeypatch.setattr(S, "_env_record", lambda device=None: dict(env))
    monkeypatch.setattr(S, "_code_version", lambda: {k: env[k] for k in ("dcatkit", "git_commit")})
    out = tmp_path / "sweep"
    run_grid(toy_task, grid(method=["none"], lam=[None], seed=range(2)), out, workers=0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # one machine: nothing to say
        run_grid(toy_task, grid(method=["none"], lam=[None], seed=range(3)), out, workers=0, progress=False)
    env["cpu"] = "AMD EPYC"
    with pytest.warns(UserWarning, match=r"more than one machine \(3 read back from runs trained on Intel Xeon "
                                         r"\(AVX512\); 1 to train here on AMD EPYC \(AVX512\)\)") as said:
        table = run_grid(toy_task, grid(method=["none"], lam=[None], seed=range(4)), out, workers=0, progress=False)
    assert table["env_cpu"].tolist() == ["Intel Xeon"] * 3 + ["AMD EPYC"]
    assert str(said[0].message).endswith("Pass redo=True (--redo) to train every run here.")
    with pytest.warns(UserWarning, match=r"3 read back from runs trained on Intel Xeon \(AVX512\); 1 read back "
                                         r"from runs trained on AMD EPYC \(AVX512\)\)") as said:
        run_grid(toy_task, grid(method=["none"], lam=[None], seed=range(4)), out, read_only=True, progress=False)
    text = str(said[0].message)                  # gathering refuses redo: advice it can follow
    assert "Pass redo=True" not in text and text.endswith(
        "Gathering trains nothing and refuses redo: to train every run on one machine, run the grid on one machine "
        f"without gather (--gather), with redo=True (--redo), or move {out / 'runs'} away (a sweep's sources/ "
        "beside it too) and run the shards again on one machine, then gather.")
    for f in (out / "runs").glob("*.json"):                      # records from before the CPU was stored
        rec = json.loads(f.read_text())
        rec["env"] = {k: v for k, v in rec["env"].items() if k not in ("cpu", "cpu_capability")}
        f.write_text(json.dumps(rec))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_grid(toy_task, grid(method=["none"], lam=[None], seed=range(4)), out, workers=0, progress=False)
    seen = []
    monkeypatch.setattr(S, "_env_record", lambda device=None: seen.append(device) or dict(env))
    run_grid(functools.partial(device_task, device="cpu"), grid(seed=[0]), tmp_path / "dev", workers=0,
             progress=False)
    assert seen == ["cpu"]


def device_task(seed, device):
    return {"f1": float(seed)}


def fake_source_task(**p):
    return {"source_f1": 0.5}


def fake_transfer_task(**p):
    return {"f1": 0.25 + p["seed"]}


def test_a_shard_reading_back_other_runs_gives_advice_a_shard_can_follow(tmp_path, monkeypatch):
    """A shard refuses redo, so its warnings about sources and runs read back from other code or
    another machine do not tell it to add --redo: they say what it can do instead (one call without
    --shard with --redo, or move runs/ and sources/ away and rerun the shards). The same read-back in
    one call still says to pass --redo. The rewritten warning meets the caller's filters."""
    import shutil

    import dcatkit.runner as R
    import dcatkit.sweep as S

    env = {"dcatkit": "0.1.0", "torch": "2.x", "device": "cpu", "device_name": None, "cpu": "Intel Xeon",
           "cpu_capability": "AVX512", "git_commit": "aaa111"}
    monkeypatch.setattr(R, "_env_record", lambda device=None: dict(env))
    monkeypatch.setattr(R, "_code_version", lambda: {k: env[k] for k in ("dcatkit", "git_commit")})
    monkeypatch.setattr(S, "source_task", fake_source_task)
    monkeypatch.setattr(S, "transfer_task", fake_transfer_task)
    kw = dict(methods=["none", "dcat"], workers=0, progress=False)
    shard_dir, one_dir = tmp_path / "shard", tmp_path / "one"
    run_transfer_sweep(shard_dir, seeds=[0], **kw)
    shutil.copytree(shard_dir, one_dir)
    env.update(git_commit="bbb222", cpu="AMD EPYC")          # another machine, other code: seed 0 read back
    with pytest.warns(UserWarning) as said:
        run_transfer_sweep(shard_dir, seeds=[0, 1], shard="1/1", **kw)

    def advice(what, where=""):                  # the sources' grid too names the sweep's runs/
        return (f"A shard refuses redo (each shard would train a source the shards share again): to train {what}"
                f"{where}, run the grid{where} in one call without --shard (shard=None), with redo=True (--redo), or "
                f"move {shard_dir / 'runs'} away (and the sources/ beside it) and run the shards again{where}, "
                "then gather.")

    texts = [str(w.message) for w in said]
    assert len(texts) == 4 and not any("Pass redo=True" in t for t in texts)    # sources, then targets: 2 each
    assert texts[0].startswith("1 of 2 runs were read back") and texts[0].endswith(advice("them again"))
    assert "1 to train here on AMD EPYC" in texts[1] and texts[1].endswith(advice("every run here", " on one machine"))
    assert texts[2].startswith("2 of 4 runs were read back") and texts[2].endswith(advice("them again"))
    assert "2 to train here on AMD EPYC" in texts[3] and texts[3].endswith(advice("every run here", " on one machine"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # the caller's filters apply to the shard's text
        with pytest.raises(UserWarning, match=r"^1 of 3 runs were read back .*A shard refuses redo"):
            run_transfer_sweep(shard_dir, seeds=[0, 1, 2], shard="1/1", **kw)
    with pytest.warns(UserWarning) as said:                  # a shard of run_studies: the same advice
        run_studies(shard_dir, [dict(study="main", methods=["none", "dcat"])], seeds=[0], shard="1/1",
                    workers=0, progress=False)
    assert [str(w.message).endswith(advice("them again")) for w in said] == [True, True]
    with pytest.warns(UserWarning) as said:                  # one call: it takes --redo, and says so
        run_transfer_sweep(one_dir, seeds=[0, 1], **kw)
    texts = [str(w.message) for w in said]
    assert len(texts) == 4 and not any("A shard" in t for t in texts)
    assert [t.rsplit(". ", 1)[1] for t in texts] == ["Pass redo=True (--redo) to train them again.",
                                                     "Pass redo=True (--redo) to train every run here."] * 2


def test_source_seed_alone_keeps_each_runs_data_draw():
    """source_seed fixes the source's training seed; without data_seed each run keeps its own data
    draw (its seed), so its source is trained on the data the run's target uses."""
    from dcatkit.sweep import source_identity

    a, b = source_identity({"seed": 0, "source_seed": 5}), source_identity({"seed": 1, "source_seed": 5})
    assert (a["seed"], a["data_seed"]) == (5, 0) and (b["seed"], b["data_seed"]) == (5, 1) and a != b
    c = source_identity({"seed": 3, "data_seed": 7})
    assert (c["seed"], c["data_seed"]) == (3, 7)


def test_source_task_waits_for_the_lock_and_reads_the_source_another_process_wrote(tmp_path):
    """source_task trains under its source's lock: while another process holds it (training the
    source), this one waits and then reads the checkpoint the other wrote, training nothing. The
    two-shard CLI test cannot see the lock go missing (CPU training is repeatable, and the shards
    rarely race); here the other process is made to hold the lock while the file appears."""
    import shutil
    import subprocess
    import sys

    from dcatkit.sweep import source_task

    kw = dict(seed=0, n_samples=120, data_options=SMALL, epochs_source=1, device="cpu")
    first = source_task(out_dir=str(tmp_path / "a"), **kw)                # a real checkpoint to hand over
    made = next((tmp_path / "a" / "sources").glob("*.pt"))
    path = tmp_path / "b" / "sources" / made.name
    path.parent.mkdir(parents=True)
    holder = ("import fcntl, shutil, sys, time; f = open(sys.argv[1] + '.lock', 'a')\n"
              "fcntl.lockf(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(2)\n"
              "shutil.copyfile(sys.argv[2], sys.argv[1] + '.tmp'); shutil.move(sys.argv[1] + '.tmp', sys.argv[1])")
    p = subprocess.Popen([sys.executable, "-c", holder, str(path), str(made)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        got = source_task(out_dir=str(tmp_path / "b"), **kw)
    finally:
        p.wait(timeout=60)
    assert got == first                                   # the other process's source, read back
    assert not (path.parent / "trained.log").exists()     # and nothing trained here
    assert len((tmp_path / "a" / "sources" / "trained.log").read_text().splitlines()) == 1
    shutil.rmtree(tmp_path / "b")


def test_summarise_study_pairs_on_seed_and_fold():
    """A leave-one-subject-out sweep has several folds per seed: summarise_study pairs each run
    with the baseline of its own seed AND fold (checked against the 10 differences by hand,
    their mean, the counts of wins and losses and the exact two-sided sign-flip p over all
    2^10 sign patterns); pairing on the seed alone would find five runs per seed."""
    import itertools

    from dcatkit.sweep import summarise_study

    base = {(s, f): 0.50 + 0.03 * f + 0.01 * s for s in (0, 1) for f in range(5)}
    gain = {(0, 0): 0.04, (0, 1): 0.02, (0, 2): -0.01, (0, 3): 0.05, (0, 4): 0.03,
            (1, 0): 0.01, (1, 1): 0.06, (1, 2): 0.02, (1, 3): -0.02, (1, 4): 0.04}
    rows = [{"method": "none", "lam": np.nan, "n_samples": 60, "seed": s, "fold": f, "f1": base[s, f]}
            for (s, f) in base]
    rows += [{"method": "dcat", "lam": 1.0, "n_samples": 60, "seed": s, "fold": f, "f1": base[s, f] + gain[s, f]}
             for (s, f) in base]
    summary, per_draw = summarise_study(pd.DataFrame(rows[::-1]))          # the order of the rows plays no part
    assert per_draw is None
    row = summary.set_index("method").loc["dcat"]
    d = np.array([base[k] + gain[k] - base[k] for k in base])
    assert row["n_pairs"] == 10 and row["diff_mean"] == pytest.approx(d.mean(), abs=1e-12)
    assert (row["n_better"], row["n_worse"]) == (8, 2)
    flips = np.array(list(itertools.product((1, -1), repeat=10)))
    p = np.mean(np.abs((flips * d).mean(1)) >= abs(d.mean()) - 1e-12)
    assert row["p_value"] == pytest.approx(p, abs=1e-9)


def test_data_identity_covers_subjects_and_the_unlabeled_part():
    """data_identity: an identical copy of the splits has the same identity; the same windows
    with another subject map (which person each recording is of), or with one unlabeled
    recording edited, have another (a sweep stored on the old data must not be read back)."""
    import copy
    import dataclasses

    from dcatkit.data import from_arrays
    from dcatkit.data.dataset import PairedDataset, hide_labels
    from dcatkit.sweep import data_identity

    rng = np.random.default_rng(0)
    n = 40
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = hide_labels(from_arrays({"imu": rng.normal(size=(n, 3, 16)).astype(np.float32)},
                                     np.arange(n) % 4, subjects=np.arange(n) % 5, groups="samples"), 8, seed=0)
    assert sp.unlabeled is not None and len(sp.unlabeled) > 0
    ident = data_identity(sp)
    assert data_identity(copy.deepcopy(sp)) == ident == data_identity([sp])

    def remade(d, subjects=None, imu=None):
        return PairedDataset({"imu": d.arrays["imu"] if imu is None else imu}, d.labels, d.classes,
                             d.subjects if subjects is None else subjects, d.ids, d.sample_rates, d.groups)

    same = {p: remade(getattr(sp, p)) for p in ("train", "val", "test", "unlabeled")}
    assert data_identity(dataclasses.replace(sp, **same)) == ident               # rebuilt alike: the same
    relabelled = {p: remade(getattr(sp, p), subjects=(getattr(sp, p).subjects + 1) % 5)
                  for p in ("train", "val", "test", "unlabeled")}
    assert data_identity(dataclasses.replace(sp, **relabelled)) != ident
    edited = sp.unlabeled.arrays["imu"].copy()
    edited[0, 0, 0] += 0.5
    assert data_identity(dataclasses.replace(sp, unlabeled=remade(sp.unlabeled, imu=edited))) != ident


def test_gather_refuses_a_shard_and_redo_before_reading_anything(tmp_path):
    """gather reads every run of the grid: with a shard it would return that shard's runs only
    (a gathered table missing the other shards' rows), and redo with it would be silently
    ignored (gather trains nothing). Both are refused with their own message, by
    run_transfer_sweep and run_studies alike (the CLI refuses --gather --shard itself), before
    a run is read or a folder made."""
    kw = dict(methods=["none", "dcat"], seeds=[0, 1], data_options=SMALL, progress=False)
    studies = [{"study": "main", "methods": ["none", "dcat"]}]
    for shard in ("1/2", (2, 2)):
        with pytest.raises(ValueError, match="gather reads the runs of every shard: give no shard with it"):
            run_transfer_sweep(tmp_path, gather=True, shard=shard, **kw)
        with pytest.raises(ValueError, match="gather reads the runs of every shard: give no shard with it"):
            run_studies(tmp_path, studies, seeds=[0, 1], data_options=SMALL, progress=False, gather=True,
                        shard=shard)
    match = "gather reads finished runs back and redo trains them again: give one"
    with pytest.raises(ValueError, match=match):
        run_transfer_sweep(tmp_path, gather=True, redo=True, **kw)
    with pytest.raises(ValueError, match=match):
        run_studies(tmp_path, studies, seeds=[0, 1], data_options=SMALL, progress=False, gather=True, redo=True)
    assert not any(tmp_path.iterdir())


def test_the_sources_phase_trains_the_sources_the_runs_read(tmp_path, monkeypatch):
    """The sources' grid gets every source's full identity: with source_seed alone (each run
    keeps its own data draw), the source of run seed s is trained with seed 5 on data seed s.
    Without data_seed in its parameters the sources' phase trained one source on data seed 5
    (which no run reads) and every target worker then trained its own source again."""
    import dcatkit.sweep as S

    calls = []

    def fake_run_grid(task, params, out, **kw):
        calls.append((task.func.__name__, [dict(p) for p in params]))
        return pd.DataFrame()

    monkeypatch.setattr(S, "run_grid", fake_run_grid)
    monkeypatch.setattr(S, "_run_bytes", lambda p, modality: None)
    params = S._transfer_params(["none", "dcat"], [1.0], [None], [0, 1], None,
                                {"source_seed": 5, "data_options": SMALL})
    S._run_transfer_params(tmp_path, params, 0, False, False, "cpu")
    (src_task, sources), (tgt_task, targets) = calls
    assert (src_task, tgt_task) == ("source_task", "transfer_task") and targets == params
    assert sorted((p["seed"], p["data_seed"]) for p in sources) == [(5, 0), (5, 1)]


def test_n_labeled_as_a_data_option_is_refused_before_anything_trains(tmp_path, capsys):
    """--data-option n_labeled=K reached every load of the sweep, the frozen source's too: the
    source trained on those K recordings' labels (a sweep's source trains on every label), and
    with --controls every positive-control run failed in its worker after the sources had
    trained ("these splits already have an unlabeled part"). Now one error before anything
    trains, naming the sweep's own setting."""
    from dcatkit.__main__ import main

    with pytest.raises(ValueError, match=r"data_options may not set n_labeled \(got 4\).*n_labeled=K"):
        run_transfer_sweep(tmp_path, methods=["none", "dcat"], seeds=[0], data_options={"n_labeled": 4})
    args = ["sweep", "--quick", "--seeds", "0", "--controls", "--device", "cpu", "--out", str(tmp_path)]
    assert main(args + ["--data-option", "n_labeled=4"]) == 2
    assert "dcatkit: error: data_options may not set n_labeled" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() and not (tmp_path / "sources").exists()
