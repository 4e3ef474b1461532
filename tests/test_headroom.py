"""dcatkit.headroom on made-up tables and the committed benchmarks/headroom_runs.csv: a
baseline is paired with the ceiling of its own seed AND simulator (the ``knobs`` column of
benchmarks/headroom.py), never with a probe's; a table with two ceilings for one seed is
refused; measure_headroom's refusals say what was wrong."""
import json
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
