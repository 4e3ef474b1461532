"""The simulator: determinism, the frozen negative control, shapes, bad input, and
that the headroom regime's IMU really carries the class cues (no training here)."""
import sys
from pathlib import Path

import numpy as np
import pytest

from dcatkit.data import load
from dcatkit.data.synthetic import CLASSES, HEADROOM_KNOBS, REGIMES, make_synthetic, sample_ids

sys.path.insert(0, str(Path(__file__).parent))
import synthetic_v0  # noqa: E402  (frozen copy of the generator before the regimes)

SMALL = dict(n_frames=4, frame_size=16, audio_rate=2000)  # keeps audio/video cheap


def _equal(a: dict, b: dict) -> None:
    assert sorted(a["arrays"]) == sorted(b["arrays"])
    for m in a["arrays"]:
        assert a["arrays"][m].dtype == b["arrays"][m].dtype, m
        assert np.array_equal(a["arrays"][m], b["arrays"][m]), m
    for k in ("labels", "subjects", "ids", "classes", "sample_rates"):
        assert np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k], k


@pytest.mark.parametrize("regime", REGIMES)
def test_same_seed_same_arrays_other_seed_other_arrays(regime):
    a = make_synthetic(48, n_subjects=4, seed=3, regime=regime, **SMALL)
    _equal(a, make_synthetic(48, n_subjects=4, seed=3, regime=regime, **SMALL))
    c = make_synthetic(48, n_subjects=4, seed=4, regime=regime, **SMALL)
    assert all(not np.array_equal(a["arrays"][m], c["arrays"][m]) for m in a["arrays"])


@pytest.mark.parametrize("kwargs", [
    dict(n_samples=40, seed=0),
    dict(n_samples=33, n_subjects=4, seed=7, duration=1.0, n_frames=4, frame_size=16, audio_rate=2000,
         imu_noise=0.1, video_noise=0.05, audio_noise=0.5, modalities=("audio", "imu")),
    dict(n_samples=20, n_subjects=3, seed=2, imu_rate=50, modalities=("video",)),
])
def test_ambiguous_regime_is_bit_identical_to_the_old_generator(kwargs):
    old = synthetic_v0.make_synthetic(**kwargs)
    # the ids alone changed on purpose: they name the draw (regime, seed, size), so two draws share none
    old["ids"] = sample_ids("ambiguous", kwargs["seed"], kwargs["n_samples"], kwargs.get("n_subjects", 10),
                            kwargs.get("duration", 2.0))
    _equal(make_synthetic(regime="ambiguous", **kwargs), old)


@pytest.mark.parametrize("regime", REGIMES)
def test_shapes_dtypes_and_labels(regime):
    d = make_synthetic(50, n_subjects=5, seed=1, duration=1.5, imu_rate=20, regime=regime, **SMALL)
    a = d["arrays"]
    assert a["imu"].shape == (50, 6, 30) and a["imu"].dtype == np.float32
    assert a["video"].shape == (50, 4, 3, 16, 16) and a["video"].dtype == np.uint8
    assert a["audio"].shape == (50, 3000) and a["audio"].dtype == np.float32
    assert all(np.isfinite(x).all() for x in a.values())
    assert d["labels"].dtype == np.int64 and d["subjects"].dtype == np.int64
    assert np.bincount(d["labels"], minlength=8).tolist() == [7, 7, 6, 6, 6, 6, 6, 6]   # balanced classes
    assert set(d["subjects"]) <= set(range(5)) and d["classes"] == CLASSES and d["regime"] == regime
    assert d["sample_rates"] == {"imu": 20.0, "video": 4 / 1.5, "audio": 2000.0}


def test_headroom_modalities_do_not_change_each_other():
    full = make_synthetic(40, seed=5, **SMALL)
    for m in ("imu", "video", "audio"):
        alone = make_synthetic(40, seed=5, modalities=(m,), **SMALL)
        assert np.array_equal(alone["arrays"][m], full["arrays"][m]), m
        assert np.array_equal(alone["labels"], full["labels"])


def test_default_regime_is_headroom_and_load_passes_it_on():
    d = make_synthetic(16, n_subjects=2, modalities=("imu",))
    assert d["regime"] == "headroom"
    a = load("synthetic", n_samples=80, modalities=("imu",), regime="ambiguous", seed=1)
    b = load("synthetic", n_samples=80, modalities=("imu",), regime="headroom", seed=1)
    assert not np.array_equal(np.asarray(a.train.arrays["imu"]), np.asarray(b.train.arrays["imu"]))


def test_video_noise_default_is_the_regimes():
    """video_noise=None is the regime's own level: HEADROOM_KNOBS in the headroom regime (chosen
    from the video baseline, benchmarks/SIMULATOR.md), 0.15 in the unchanged negative control.
    Only the video changes with it: the IMU and audio of a seed stay bit for bit the same."""
    for regime, level in (("headroom", HEADROOM_KNOBS["video_noise"]), ("ambiguous", 0.15)):
        default = make_synthetic(60, seed=2, regime=regime)["arrays"]
        given = make_synthetic(60, seed=2, regime=regime, video_noise=level)["arrays"]
        other = make_synthetic(60, seed=2, regime=regime, video_noise=level + 0.1)["arrays"]
        assert all(np.array_equal(default[m], given[m]) for m in ("imu", "video", "audio")), regime
        assert not np.array_equal(default["video"], other["video"]), regime
        assert np.array_equal(default["imu"], other["imu"]) and np.array_equal(default["audio"], other["audio"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(regime="easy"), "unknown regime 'easy'"),
    (dict(regime="Headroom"), "expected one of"),
    (dict(knobs={"noise": 1.0}), "unknown knobs \\['noise'\\]"),
    (dict(regime="ambiguous", knobs={"imu_noise": 0.0}), "headroom' only"),
    (dict(imu_noise=-1.0), "imu_noise must be >= 0"),
    (dict(video_noise=-0.1), "video_noise must be >= 0"),
    (dict(n_samples=0), "n_samples and n_subjects must be >= 1"),
    (dict(modalities=("imu", "lidar")), "unknown modalities \\['lidar'\\]"),
    (dict(frame_size=8), "frame_size must be >= 16"),
])
def test_bad_input_is_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_synthetic(**{"n_samples": 8, **kwargs})


# --------------------------------------------------------------------------- class cues in the IMU
# Three hand-made statistics of the accelerometer, independent of any model:
#   axis_share_1: fraction of motion energy on axis 1;
#   shortest_gap: shortest time between two local maxima above half the largest (s);
#   neg_lobe: -min / max of the main axis (0 for one-signed events, ~1 for push-pull).
# On clean recordings (no noise, head motion, rotation or jitter) each of the four
# class pairs that the ambiguous regime cannot tell apart is split by one of them.
PAIRS = {("drinking", "reading"): "axis_share_1", ("type_pc", "type_phone"): "axis_share_1",
         ("sweep_floor", "open_close_door"): "shortest_gap", ("cut_fruits", "wash_hand"): "neg_lobe"}
CLEAN = {"imu_noise": 0.0, "head_motion": 0.0, "subject_angle": 0.0, "sample_angle": 0.0, "timing_jitter": 0.0}


def _cue_stats(acc: np.ndarray, rate: float) -> dict[str, np.ndarray]:
    """acc (N, 3, L) -> the three statistics above, each (N,)."""
    x = acc - np.median(acc, axis=2, keepdims=True)                 # remove gravity / posture
    energy = (x ** 2).sum(axis=2)                                    # (N, 3)
    main = x[np.arange(len(x)), energy.argmax(axis=1)]               # (N, L)
    s = main * np.sign(main[np.arange(len(x)), np.abs(main).argmax(axis=1)])[:, None]   # largest lobe up
    peak = (s[:, 1:-1] > s[:, :-2]) & (s[:, 1:-1] >= s[:, 2:]) & (s[:, 1:-1] > 0.5 * s.max(1, keepdims=True))
    gaps = [np.diff(np.flatnonzero(p)) / rate for p in peak]
    return {"axis_share_1": energy[:, 1] / energy.sum(axis=1),
            "shortest_gap": np.array([g.min() if len(g) else x.shape[2] / rate for g in gaps]),
            "neg_lobe": -s.min(axis=1) / s.max(axis=1)}


def _stump_accuracy(v: np.ndarray, y: np.ndarray) -> float:
    """Best accuracy of one threshold on v to tell y == 1 from y == 0 (either direction)."""
    best = 0.0
    for thr in np.unique(v):
        acc = ((v >= thr) == y).mean()
        best = max(best, acc, 1 - acc)
    return best


def _pair_separation(regime: str, knobs: dict | None, imu_noise=None) -> dict:
    d = make_synthetic(640, n_subjects=8, seed=11, imu_rate=64, modalities=("imu",), regime=regime,
                       knobs=knobs, imu_noise=imu_noise)
    stats = _cue_stats(d["arrays"]["imu"][:, :3].astype(np.float64), rate=64)
    out = {}
    for (a, b), name in PAIRS.items():
        keep = np.isin(d["labels"], [CLASSES.index(a), CLASSES.index(b)])
        out[(a, b)] = _stump_accuracy(stats[name][keep], d["labels"][keep] == CLASSES.index(b))
    return out


def test_headroom_imu_carries_every_class_pair_cue():
    sep = _pair_separation("headroom", CLEAN)
    assert all(v >= 0.97 for v in sep.values()), sep


def test_ambiguous_imu_does_not_carry_the_pair_cues():
    sep = _pair_separation("ambiguous", None, imu_noise=0.0)
    assert all(v <= 0.75 for v in sep.values()), sep



# --------------------------------------------------------------------------- measure_headroom (tiny)

def test_measure_headroom_table_and_summary():
    from dcatkit.headroom import COLUMNS, measure_headroom, summarize_headroom

    df = measure_headroom("headroom", "imu", sizes=(40,), n_ceiling=800, seeds=(0, 1), epochs=4,
                          n_subjects=4)
    assert list(df.columns) == list(COLUMNS) and len(df) == 4
    assert sorted(zip(df.seed, df.role, df.n_samples)) == [(0, "baseline", 40), (0, "ceiling", 800),
                                                           (1, "baseline", 40), (1, "ceiling", 800)]
    assert set(df.n_train) == {28, 560}                                # the 70% training split
    assert df.f1.between(0, 1).all() and (df.regime == "headroom").all() and (df.split == "id").all()
    # 20x the data: the ceiling beats the near-chance tiny baseline for every seed
    wide = df.pivot(index="seed", columns="role", values="f1")
    assert (wide["ceiling"] > wide["baseline"]).all(), wide
    s = summarize_headroom(df).set_index("role")
    assert s.loc["baseline", "headroom_mean"] == pytest.approx((wide["ceiling"] - wide["baseline"]).mean())
    assert s.loc["baseline", "ceiling_mean"] == pytest.approx(wide["ceiling"].mean())
    assert s.loc["ceiling", "f1_mean"] == pytest.approx(wide["ceiling"].mean())
    assert s.loc["baseline", "n_seeds"] == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(regime="easy"), "unknown regime"),
    (dict(sizes=(500,), n_ceiling=400), "n_ceiling \\(400\\) must be larger"),
    (dict(sizes=(500,), n_ceiling=500), "n_ceiling \\(500\\) must be larger"),
    (dict(sizes=(), n_ceiling=None), "sizes must be positive"),
    (dict(sizes=(0,)), "sizes must be positive"),
    (dict(seeds=()), "at least one seed"),
])
def test_measure_headroom_refuses_bad_input(kwargs, message):
    from dcatkit.headroom import measure_headroom

    with pytest.raises(ValueError, match=message):
        measure_headroom(**{"sizes": (40,), "n_ceiling": 800, **kwargs})


def test_measure_headroom_draws_each_seeds_own_data(monkeypatch):
    """Every run loads the synthetic data with its own seed (the data seed is the training
    seed) at its own size, and trains with that seed: two seeds are two draws, not one."""
    import types

    import dcatkit.headroom as H

    loads, trains = [], []

    def fake_load(name, **kw):
        loads.append((kw["seed"], kw["n_samples"]))
        return types.SimpleNamespace(train=[0] * kw["n_samples"])

    def fake_train(splits, modality, **kw):
        trains.append((kw["seed"], len(splits.train)))
        return types.SimpleNamespace(test={"accuracy": 0.5, "f1": 0.5})

    monkeypatch.setattr(H, "load", fake_load)
    monkeypatch.setattr(H, "train_unimodal", fake_train)
    H.measure_headroom("headroom", "imu", sizes=(40, 80), n_ceiling=800, seeds=(3, 7))
    want = [(3, 40), (3, 80), (3, 800), (7, 40), (7, 80), (7, 800)]
    assert loads == want and trains == want


def test_summarize_headroom_pairs_ceiling_and_baseline_by_seed():
    """headroom = ceiling - baseline of the same seed: its mean and std (ddof 1) over seeds,
    computed by hand on a table whose ceiling rows come in another seed order."""
    import pandas as pd

    from dcatkit.headroom import summarize_headroom

    base = {0: 0.50, 1: 0.70, 2: 0.60}
    ceil = {2: 0.90, 0: 0.95, 1: 0.80}                               # listed in another order
    rows = [("baseline", 300, s, f) for s, f in base.items()] + [("ceiling", 20000, s, f) for s, f in ceil.items()]
    df = pd.DataFrame([{"regime": "headroom", "modality": "imu", "split": "id", "seed": s, "role": r, "n_samples": n,
                        "n_train": int(0.7 * n), "accuracy": f, "f1": f} for r, n, s, f in rows])
    gap = [ceil[s] - base[s] for s in base]                           # 0.45, 0.10, 0.30
    s = summarize_headroom(df).set_index("role")
    assert s.loc["baseline", "headroom_mean"] == pytest.approx(np.mean(gap))
    assert s.loc["baseline", "headroom_std"] == pytest.approx(np.std(gap, ddof=1))
    assert s.loc["baseline", "f1_std"] == pytest.approx(np.std(list(base.values()), ddof=1))
    assert s.loc["ceiling", "f1_mean"] == pytest.approx(np.mean(list(ceil.values())))


def test_sample_ids_name_the_draw():
    """Sample ids differ between draws that simulate other recordings (another seed, size,
    number of subjects or duration) and are the same for the same draw."""
    one = sample_ids("headroom", 0, 20, 4, 2.0)
    assert one == sample_ids("headroom", 0, 20, 4, 2.0) and len(set(one)) == 20
    for other in (sample_ids("headroom", 1, 20, 4, 2.0), sample_ids("headroom", 0, 21, 4, 2.0),
                  sample_ids("headroom", 0, 20, 5, 2.0), sample_ids("headroom", 0, 20, 4, 1.0),
                  sample_ids("ambiguous", 0, 20, 4, 2.0)):
        assert not set(one) & set(other)


def test_summarize_headroom_refuses_other_tables():
    import pandas as pd

    from dcatkit.headroom import summarize_headroom

    with pytest.raises(ValueError, match="not a measure_headroom table"):
        summarize_headroom(pd.DataFrame({"f1": [0.5]}))


def test_read_headroom_keeps_todays_knobs_and_ceilings(tmp_path):
    """Rows measured with other knobs (probes) are dropped; the ceiling is their mean/std."""
    import json

    import pandas as pd

    from dcatkit.data.synthetic import HEADROOM_KNOBS
    from dcatkit.headroom import ceilings, read_headroom

    today = json.dumps({"imu_noise": HEADROOM_KNOBS["imu_noise"]})
    probe = json.dumps({"imu_noise": HEADROOM_KNOBS["imu_noise"] + 0.05})
    rows = [("headroom", "ceiling", 20000, s, f, k) for s, f, k in
            [(0, 0.96, today), (1, 0.94, today), (2, 0.50, probe), (3, 0.90, "{}")]]
    rows += [("ambiguous", "ceiling", 20000, 0, 0.74, "{}"), ("headroom", "baseline", 300, 0, 0.6, "{}")]
    df = pd.DataFrame([{"regime": r, "modality": "imu", "split": "id", "seed": s, "role": role, "n_samples": n,
                        "n_train": int(n * 0.7), "accuracy": f, "f1": f, "knobs": k} for r, role, n, s, f, k in rows])
    df.to_csv(tmp_path / "h.csv", index=False)
    kept = read_headroom(tmp_path / "h.csv")
    assert len(kept) == 5 and 0.50 not in kept.f1.tolist()
    c = ceilings(kept).set_index("regime")
    assert c.loc["headroom", "f1_mean"] == pytest.approx((0.96 + 0.94 + 0.90) / 3)
    assert c.loc["headroom", "f1_std"] == pytest.approx(pd.Series([0.96, 0.94, 0.90]).std())
    assert c.loc["headroom", "n_seeds"] == 3 and c.loc["ambiguous", "f1_mean"] == pytest.approx(0.74)
    assert set(c.index) == {"headroom", "ambiguous"}                      # baselines are not ceilings
    with pytest.raises(FileNotFoundError, match="no headroom table"):
        read_headroom(tmp_path / "missing.csv")
    pd.DataFrame({"f1": [0.5]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="not a measure_headroom table"):
        read_headroom(tmp_path / "bad.csv")


def test_stored_ceiling_is_the_documented_one():
    """benchmarks/headroom_runs.csv (what notebook 06 reads) gives SIMULATOR.md's ceilings."""
    from pathlib import Path

    from dcatkit.headroom import ceilings, read_headroom

    c = ceilings(read_headroom(Path(__file__).resolve().parent.parent / "benchmarks" / "headroom_runs.csv"))
    c = c[(c.modality == "imu") & (c.split == "id")].set_index("regime")
    assert round(c.loc["headroom", "f1_mean"], 3) == 0.960 and round(c.loc["ambiguous", "f1_mean"], 3) == 0.736


def test_load_refuses_an_option_its_loader_does_not_take():
    with pytest.raises(ValueError, match=r"synthetic takes no option\(s\) \['imu_nois'\]; its options: \[.*'imu_noise'"):
        load("synthetic", n_samples=40, imu_nois=0.1)
    assert len(load("synthetic", n_samples=40, imu_noise=0.1, ratios=(0.6, 0.2, 0.2)).train)   # real ones pass
