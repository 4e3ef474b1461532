"""dcatkit.headroom on made-up tables and the committed benchmarks/headroom_runs.csv: a
baseline is paired with the ceiling of its own seed AND simulator (the ``knobs`` column of
benchmarks/headroom.py), never with a probe's; a table with two ceilings for one seed is
refused; measure_headroom's refusals say what was wrong."""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dcatkit.data.synthetic import HEADROOM_KNOBS
from dcatkit.headroom import ceilings, knobs_key, measure_headroom, read_headroom, summarize_headroom

RUNS = Path(__file__).resolve().parent.parent / "benchmarks" / "headroom_runs.csv"
PROBE = json.dumps({"imu_noise": HEADROOM_KNOBS["imu_noise"] + 0.03})
TODAY_SPELLED = json.dumps({"imu_noise": HEADROOM_KNOBS["imu_noise"]})     # today's value, written out


def _table(rows):
    return pd.DataFrame([{"regime": "headroom", "modality": "imu", "split": "id", "seed": s, "role": role,
                          "n_samples": n, "n_train": int(0.7 * n), "accuracy": f, "f1": f, "knobs": k}
                         for role, n, s, f, k in rows])


def test_headroom_pairs_each_baseline_with_its_own_simulators_ceiling():
    """Two simulators (today's and a probe's) in one table, each with its baseline and ceiling
    per seed: every headroom is the same-seed, same-simulator difference, computed by hand."""
    base = {"{}": {0: 0.50, 1: 0.70}, PROBE: {0: 0.60, 1: 0.62}}
    ceil = {"{}": {0: 0.95, 1: 0.85}, PROBE: {0: 0.70, 1: 0.74}}
    rows = [("baseline", 300, s, f, k) for k, b in base.items() for s, f in b.items()]
    rows += [("ceiling", 20000, s, f, TODAY_SPELLED if k == "{}" and s == 1 else k)   # today's, spelled out
             for k, c in ceil.items() for s, f in c.items()]
    s = summarize_headroom(_table(rows))
    b = s[s.role == "baseline"].set_index("knobs")
    assert set(b.index) == {"{}", knobs_key(PROBE)} and len(s) == 4
    for k in base:
        gap = [ceil[k][seed] - base[k][seed] for seed in (0, 1)]
        assert b.loc[knobs_key(k), "headroom_mean"] == pytest.approx(np.mean(gap))
        assert b.loc[knobs_key(k), "headroom_std"] == pytest.approx(np.std(gap, ddof=1))
        assert b.loc[knobs_key(k), "ceiling_mean"] == pytest.approx(np.mean(list(ceil[k].values())))
    c = ceilings(_table(rows)).set_index("knobs")
    assert c.loc["{}", "n_seeds"] == 2 and c.loc["{}", "f1_mean"] == pytest.approx(0.90)
    # without a knobs column (measure_headroom's own table) nothing changes
    plain = summarize_headroom(_table(rows[:2] + rows[4:6]).drop(columns=["knobs"]))
    assert "knobs" not in plain.columns
    assert plain.set_index("role").loc["baseline", "headroom_mean"] == pytest.approx(np.mean([0.45, 0.15]))


def test_committed_headroom_table_is_not_mixed_across_simulators():
    """On the raw benchmarks/headroom_runs.csv (probes included) today's IMU headroom at the
    default 1000 recordings is the one read_headroom's rows give (0.156), not a blend with
    the imu_noise 0.15 probe's ceiling (0.134 when every ceiling of a seed was joined)."""
    raw = pd.read_csv(RUNS)
    s = summarize_headroom(raw)
    one = s[(s.regime == "headroom") & (s.modality == "imu") & (s.split == "id") & (s.role == "baseline")
            & (s.n_samples == 1000)].set_index("knobs")
    today = summarize_headroom(read_headroom(RUNS))
    t = today[(today.regime == "headroom") & (today.modality == "imu") & (today.split == "id")
              & (today.role == "baseline") & (today.n_samples == 1000)]
    assert round(one.loc["{}", "headroom_mean"], 3) == round(t["headroom_mean"].iloc[0], 3) == 0.156
    assert one.loc["{}", "n_seeds"] == 3


def test_two_ceilings_for_one_seed_are_refused():
    rows = [("baseline", 300, 0, 0.5, "{}"), ("ceiling", 20000, 0, 0.95, "{}"), ("ceiling", 10000, 0, 0.90, "{}")]
    with pytest.raises(ValueError, match=r"2 ceiling rows share.*n_samples \[10000, 20000\].*one ceiling run per "
                                         r"seed"):
        summarize_headroom(_table(rows))
    two = _table(rows).drop(columns=["knobs"])                   # also without a knobs column
    with pytest.raises(ValueError, match="ceiling rows share"):
        summarize_headroom(two)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sizes=(), n_ceiling=0), r"n_ceiling must be a positive number of recordings .*got 0; sizes is empty"),
    (dict(sizes=(40,), n_ceiling=-5), r"n_ceiling must be a positive number of recordings .*got -5$"),
])
def test_measure_headroom_says_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        measure_headroom(**kwargs)


def test_n_paired_counts_the_seeds_with_a_ceiling_and_a_shortfall_warns():
    """Ceiling of seed 0 only, baselines of seeds 0, 1, 2: the headroom (0.35) is seed 0's alone,
    while f1_mean is over three seeds; n_paired says 1 and a warning names the unpaired seeds.
    Every seed paired: n_paired = n_seeds, no warning; no ceiling at all: 0, NaN, no warning."""
    rows = [("baseline", 300, 0, 0.60, "{}"), ("baseline", 300, 1, 0.80, "{}"), ("baseline", 300, 2, 0.90, "{}"),
            ("ceiling", 20000, 0, 0.95, "{}")]
    with pytest.warns(UserWarning, match=r"1 of 3 baseline seeds have a ceiling run \(seeds \[1, 2\] have none\)"):
        s = summarize_headroom(_table(rows))
    b = s[s.role == "baseline"].iloc[0]
    assert (b.n_seeds, b.n_paired) == (3, 1)
    assert b.headroom_mean == pytest.approx(0.35) and b.f1_mean == pytest.approx(0.7666666)
    full = rows + [("ceiling", 20000, 1, 0.9, "{}"), ("ceiling", 20000, 2, 0.9, "{}")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize_headroom(_table(full))
        assert s[s.role == "baseline"].n_paired.tolist() == [3]
        none = summarize_headroom(_table(rows[:3]))
    assert none.n_paired.tolist() == [0] and none.headroom_mean.isna().all()
    with warnings.catch_warnings():          # ceilings() reads the ceiling rows: no warning about baselines
        warnings.simplefilter("error")
        assert ceilings(_table(rows)).n_seeds.tolist() == [1]


def test_stored_runs_record_every_knob_they_used(monkeypatch, tmp_path):
    """benchmarks/headroom.py wrote the command-line overrides alone, which knobs_key reads
    against the defaults of the day it is read: after a change of the defaults the row would
    claim the new simulator. It now records every knob used, so the row keeps saying what it
    ran, also after the defaults change; the ambiguous regime (no knobs) records {}."""
    import importlib.util

    import dcatkit.data.synthetic as synthetic
    import dcatkit.headroom as headroom
    from dcatkit.headroom import effective_knobs

    spec = importlib.util.spec_from_file_location("bench_headroom", RUNS.parent / "headroom.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def fake(regime, modality, sizes, n_ceiling, seeds, split, device, **opts):     # no training
        return _table([("baseline", 300, seeds[0], 0.5, "{}")]).drop(columns="knobs").assign(regime=regime)

    monkeypatch.setattr(headroom, "measure_headroom", fake)
    probe = bench._job(("headroom", "imu", "id", 300, 0, False, {"imu_noise": 0.2}, "cpu"))
    plain = bench._job(("headroom", "imu", "id", 300, 0, False, {}, "cpu"))
    amb = bench._job(("ambiguous", "imu", "id", 300, 0, False, {}, "cpu"))
    assert json.loads(probe.knobs[0]) == {**HEADROOM_KNOBS, "imu_noise": 0.2}
    assert json.loads(plain.knobs[0]) == HEADROOM_KNOBS and amb.knobs[0] == "{}"
    assert knobs_key(plain.knobs[0]) == "{}" and knobs_key(probe.knobs[0]) == '{"imu_noise": 0.2}'
    old = dict(HEADROOM_KNOBS)
    monkeypatch.setitem(synthetic.HEADROOM_KNOBS, "subject_angle", 1.0)          # the defaults change later
    assert knobs_key(plain.knobs[0]) == json.dumps({"subject_angle": old["subject_angle"]})
    with pytest.raises(ValueError, match=r"unknown knob\(s\) \['imu_nois'\]"):
        effective_knobs("headroom", {"imu_nois": 0.1})
    with pytest.raises(ValueError, match="'ambiguous' regime takes no knobs"):
        effective_knobs("ambiguous", {"imu_noise": 0.1})
    with pytest.raises(ValueError, match="unknown knob"):                            # before any run starts
        bench.main(["--out", str(tmp_path / "x.csv"), "--knobs", '{"imu_nois": 0.1}'])


def test_candidate_a_rows_name_the_angles_they_ran_with():
    """Candidate "A" (benchmarks/SIMULATOR.md) ran when the defaults had subject angle 0.6 and
    recording angle 0.25; its rows stored only head motion and noise, so they read as today's
    simulator but for the noise. They now name the angles, and the CSV still gives the A numbers
    SIMULATOR.md quotes (ceiling 0.958 ± 0.006; baselines 0.670 / 0.829 / 0.845 / 0.906, headroom
    0.112 at 1000; OOD 0.757 / 0.857) beside today's (ceiling 0.960, headroom 0.156 at 1000)."""
    raw = pd.read_csv(RUNS)
    a = raw[raw.source.str.startswith("imuA_")]
    assert len(a) == 21 and set(a.knobs.map(knobs_key)) == {
        json.dumps({"imu_noise": 0.15, "sample_angle": 0.25, "subject_angle": 0.6})}
    s = summarize_headroom(raw)
    s = s[(s.regime == "headroom") & (s.modality == "imu")].round(3)
    key = knobs_key(a.knobs.iloc[0])
    cand = s[s.knobs == key].set_index(["split", "role", "n_samples"])
    assert cand.loc[("id", "ceiling", 20000), ["f1_mean", "f1_std"]].tolist() == [0.958, 0.006]
    assert cand.loc[("id", "baseline"), "f1_mean"].tolist() == [0.670, 0.829, 0.845, 0.906]
    assert cand.loc[("id", "baseline", 1000), "headroom_mean"] == 0.112
    assert cand.loc[("ood", "baseline"), "f1_mean"].tolist() == [0.757, 0.857]
    today = s[s.knobs == "{}"].set_index(["split", "role", "n_samples"])
    assert today.loc[("id", "ceiling", 20000), "f1_mean"] == 0.960
    assert today.loc[("id", "baseline", 1000), ["headroom_mean", "headroom_std"]].tolist() == [0.156, 0.062]


def test_simulator_md_default_size_gaps_are_the_csvs():
    """SIMULATOR.md's sentence on the default size quotes per-seed IMU gaps (ceiling - baseline,
    same seed) at n = 700 and 1000: they are the committed runs' (it had said the gap is >= 0.12
    in all three seeds up to about 1000, while one seed's is 0.093 there)."""
    import re

    text = " ".join((RUNS.parent / "SIMULATOR.md").read_text().split())
    t = read_headroom(RUNS)
    t = t[(t.regime == "headroom") & (t.modality == "imu") & (t.split == "id")]
    ceil = t[t.role == "ceiling"].set_index("seed").f1
    gaps = {n: (ceil - t[(t.role == "baseline") & (t.n_samples == n)].set_index("seed").f1).sort_index()
            for n in (700, 1000)}
    assert (gaps[700] >= 0.12).all() and not (gaps[1000] >= 0.12).all()
    m = re.search(r">= 0\.12 in every seed up to n = 700 \(([\d.]+), ([\d.]+), ([\d.]+)\), at n = 1000 only on the "
                  r"mean \(([\d.]+) ± ([\d.]+); per seed ([\d.]+), ([\d.]+), ([\d.]+)\)", text)
    assert m, "SIMULATOR.md's default-size sentence changed: update this test with it"
    shown = [float(v) for v in m.groups()]
    assert shown[:3] == [round(v, 3) for v in gaps[700]]
    assert shown[3:5] == [round(gaps[1000].mean(), 3), round(gaps[1000].std(), 3)]
    assert shown[5:] == [round(v, 3) for v in gaps[1000]]


def test_knobs_that_are_not_a_json_object_are_refused():
    """A knobs value must be the JSON text of an object (or None / NaN: today's simulator). A list,
    a number, a dict passed as such or text that is not JSON is refused with a ValueError naming
    knobs, what it must be and what was found; also from summarize_headroom reading such a cell."""
    want = ("knobs must be a JSON object of HEADROOM_KNOBS overrides (text such as '{\"imu_noise\": 0.2}'; "
            "None or NaN for none), got ")
    for bad, shown in (("[0.2]", "str '[0.2]'"), ("0.2", "str '0.2'"), ("imu_noise=0.2", "str 'imu_noise=0.2'"),
                       ({"imu_noise": 0.2}, "dict {'imu_noise': 0.2}"), (3, "int 3")):
        with pytest.raises(ValueError) as e:
            knobs_key(bad)
        assert str(e.value) == want + shown
    assert knobs_key(None) == knobs_key(float("nan")) == knobs_key("{}") == "{}"
    with pytest.raises(ValueError) as e:
        summarize_headroom(_table([("baseline", 300, 0, 0.5, "[0.2]"), ("ceiling", 20000, 0, 0.9, "{}")]))
    assert str(e.value) == want + "str '[0.2]'"
