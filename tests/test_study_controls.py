"""benchmarks/controls.py (the controls sweep of issue 17) on stub runs: --tune runs a lambda
grid as cells of their own and chooses with studies.with_tuned (each seed's lambda on the
OTHER seeds' validation F1), never a run that tuned itself; the negative control's false
verdicts are the pooled calls, per-draw leanings apart; studies.study_task refuses tune=True."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dcatkit import studies

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("controls_bench", ROOT / "benchmarks" / "controls.py")
controls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(controls)


def test_tune_plans_every_lambda_as_its_own_cell():
    kw = dict(seeds=[0, 1], draws=[0], sizes=[40], n_samples=300, lam=1.0, epochs_source=None, epochs_target=None,
              unlabeled_mask="confidence")
    _, tuned = controls.plan(["negative", "positive"], ["none", "dcat", "kd"], tune=True, lams=(1.0, 10.0, 100.0),
                             **kw)
    _, plain = controls.plan(["negative", "positive"], ["none", "dcat", "kd"], tune=False, **kw)
    assert not any(t["tune"] for t in tuned + plain)                      # no run chooses its own lambda
    for study in ("negative", "positive"):
        for method in ("dcat", "kd"):
            cells = [(t["seed"], t["lam"]) for t in tuned if t["study"] == study and t["method"] == method]
            assert sorted(cells) == [(s, x) for s in (0, 1) for x in (1.0, 10.0, 100.0)]
            assert {t["lam"] for t in plain if t["study"] == study and t["method"] == method} == {1.0}
        assert [t["lam"] for t in tuned if t["study"] == study and t["method"] == "none"] == [None, None]
    # the grid's cell at the plain lambda is the plain run (same parameters: read back, not trained twice)
    assert all(p in tuned for p in plain)


def test_study_task_refuses_to_tune_its_own_run(monkeypatch, tmp_path):
    def trained(**kw):
        raise AssertionError("study_task went on to train")

    monkeypatch.setattr(studies, "study_source_task", trained)
    with pytest.raises(ValueError, match=r"own validation F1.*studies.with_tuned"):
        studies.study_task(out_dir=str(tmp_path), study="negative", method="dcat", seed=0, draw=0, n_samples=60,
                           n_labeled=None, source="video", target="imu", control="negative", tune=True)


# Stub runs of the negative control, 2 draws x 4 seeds, dcat at lambda 1 and 10. A run's validation F1
# and its test recall rise together (seed 0's lucky run at lambda 1). Seed 0's own best is lambda 1,
# the others' lambda 10; on the OTHER seeds' mean it is the opposite (seed 0: 10; seeds 1-3: 1, which
# the lucky seed 0 lifts). Recall over the baseline: lambda 10 +0.02; lambda 1 +0.08 (seed 0), -0.01.
def _stub_run(p):
    base = 0.10 + 0.01 * p["seed"] + 0.005 * p["draw"]
    row = {k: p[k] for k in ("study", "method", "seed", "draw", "n_samples", "n_labeled", "source", "target",
                             "control", "source_labels", "lam", "tune")}
    if p["method"] == "none":
        val, rec = 0.35, base
    elif p["lam"] == 10.0:
        val, rec = 0.40, base + 0.02
    else:
        val, rec = (0.90, base + 0.08) if p["seed"] == 0 else (0.30, base - 0.01)
    return {**row, "recall": rec, "f1": rec, "accuracy": rec, "val_f1": val, "source_f1": 0.98}


def test_tune_chooses_on_the_other_seeds_validation(monkeypatch, tmp_path):
    def fake_grid(fn, params, out, **kw):
        if fn.func is controls.study_source_task:
            return pd.DataFrame()
        return pd.DataFrame([_stub_run(p) for p in params])

    monkeypatch.setattr(controls, "run_grid", fake_grid)
    controls.main(["--studies", "negative", "--methods", "none", "dcat", "--seeds", "4", "--draws", "2", "--tune",
                   "--lams", "1", "10", "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path)])
    runs = pd.read_csv(tmp_path / "controls_runs.csv")
    assert not runs["tune"].any() and sorted(runs.loc[runs.method == "dcat", "lam"].unique()) == [1.0, 10.0]
    chosen = controls.tuned_runs(runs, [1.0, 10.0])
    t = chosen[chosen.method == "dcat (tuned)"]
    assert len(t) == 8 and dict(zip(t.seed, t.lam_chosen)) == {0: 10.0, 1: 1.0, 2: 1.0, 3: 1.0}
    summ = pd.read_csv(tmp_path / "controls_summary.csv")
    cell = summ[(summ.study == "negative") & (summ.draw == "pooled") & (summ.method == "dcat (tuned)")]
    assert len(cell) == 1
    # leave one seed out: (+0.02 - 3 x 0.01) / 4 in each draw; each seed's own best would give +0.035
    assert cell["diff_mean"].iloc[0] == pytest.approx(-0.0025)
    grid = summ[(summ.study == "negative, every λ") & (summ.draw == "pooled") & (summ.method == "dcat")]
    assert sorted(grid["lam"]) == [1.0, 10.0]                             # the grid: a family of its own
    info = json.loads((tmp_path / "controls.json").read_text())
    assert info["lams_chosen"] == [{"study": "negative", "method": "dcat (tuned)", "size": -1,
                                    "chosen": "λ = 1: 6, λ = 10: 2"}]
    with pytest.raises(SystemExit):                                       # one seed: no other seeds to choose on
        controls.main(["--studies", "negative", "--seeds", "1", "--tune", "--out", str(tmp_path)])


def test_negative_false_verdicts_are_the_pooled_calls():
    """study_draws_runs.csv's few-label negative control, KD at lambda 100 against the baseline
    (5 draws x 10 seeds): two single draws lean (their intervals exclude 0), the pooled call,
    the claim, is "no evidence": 0 false verdicts of 1 cell, 2 leanings of 5 apart."""
    r = pd.read_csv(ROOT / "benchmarks" / "study_draws_runs.csv")
    neg = r[(r.study == "(b) negative control, 20 labels") & ((r.method == "none") | ((r.method == "kd")
                                                                                    & (r.lam == 100)))]
    got = controls.negative_verdicts(controls.summarise(neg.assign(study="negative")))
    assert got == {"negative_false_verdicts": 0, "negative_cells": 1, "negative_untested_cells": 0,
                   "negative_per_draw_leanings": 2, "negative_per_draw_cells": 5}
    # a method that moves the recall on every draw is counted once, as the pooled call it is
    rng = np.random.default_rng(0)
    rows = [{"study": "negative", "method": m, "seed": s, "draw": d, "n_labeled": None, "lam": lam,
             "recall": 0.125 + (0.05 if m == "kd" else 0.0) + rng.normal(0, 0.01)}
            for d in range(3) for s in range(5) for m, lam in (("none", None), ("kd", 1.0))]
    got = controls.negative_verdicts(controls.summarise(pd.DataFrame(rows)))
    assert got["negative_false_verdicts"] == 1 and got["negative_cells"] == 1
    one = controls.negative_verdicts(controls.summarise(pd.DataFrame([x for x in rows if x["draw"] == 0])))
    assert one["negative_false_verdicts"] is None and one["negative_untested_cells"] == 1   # one draw: no verdict


def test_study_task_reports_the_objective_at_the_best_epoch(monkeypatch, tmp_path):
    """objective_best is the transfer term's value in the history row of the best epoch (epochs
    count from 1, history rows from 0), beside the first and the last epoch's. Stub training."""
    from types import SimpleNamespace

    import dcatkit.experiment as E

    hist = pd.DataFrame({"epoch": [1, 2, 3, 4], "train_ca": [0.9, 0.5, 0.7, 0.2],
                         "train_mask_frac": [0.2, 0.4, 0.6, 0.8]})
    run = SimpleNamespace(history=hist, test={"accuracy": 0.6, "recall": 0.55, "f1": 0.5},
                          meta={"best_val": {"epoch": 2, "f1": 0.45}})
    monkeypatch.setattr(studies, "study_source_task", lambda **kw: {"source_f1": 0.9, "source_recall": 0.8})
    monkeypatch.setattr(studies, "study_splits", lambda *a, **kw: SimpleNamespace(train=[0] * 20, val=[0] * 5,
                                                                                   unlabeled=None))
    monkeypatch.setattr(E, "train_transfer", lambda *a, **kw: run)
    monkeypatch.setattr(studies, "gradient_scale", lambda *a, **kw: {"ratio": 0.25})
    out = studies.study_task(out_dir=str(tmp_path), study="positive", method="dcat", seed=0, draw=0, n_samples=60,
                             n_labeled=None, source="video", target="imu", lam=1.0)
    assert out["best_epoch"] == 2 and out["val_f1"] == 0.45
    assert (out["objective_first"], out["objective_best"], out["objective_last"]) == (0.9, 0.5, 0.2)
    assert out["mask_frac"] == pytest.approx(0.5) and out["grad_ratio_init"] == 0.25


def test_with_tuned_leaves_a_method_missing_one_grid_point_untouched():
    """A method that ran every lambda for some seeds but not for one (kd: seed 2 has no lambda 10)
    is not tuned: its runs stay in the study as they were, and not in the grid study; a method
    with the whole grid (dcat) is tuned, each seed on the other two seeds' validation F1."""
    lams = [1.0, 10.0]
    val = {(0, 1.0): 0.2, (0, 10.0): 0.8, (1, 1.0): 0.9, (1, 10.0): 0.2, (2, 1.0): 0.1, (2, 10.0): 0.5}
    rows = [dict(study="pos", kind="positive", method="none", lam=0.0, size=20, unit="labels", data_seed=0, seed=s,
                 f1=0.5, val_f1=0.4) for s in range(3)]
    rows += [dict(study="pos", kind="positive", method="dcat", lam=lam, size=20, unit="labels", data_seed=0,
                  seed=s, f1=0.6 + 0.01 * s + lam / 100, val_f1=val[s, lam]) for s in range(3) for lam in lams]
    rows += [dict(study="pos", kind="positive", method="kd", lam=lam, size=20, unit="labels", data_seed=0, seed=s,
                  f1=0.7 + 0.01 * s, val_f1=0.5) for s in range(3) for lam in lams if (s, lam) != (2, 10.0)]
    tidy = pd.DataFrame(rows)
    out = studies.with_tuned(tidy, "pos", lams)
    kd = tidy[tidy.method == "kd"].reset_index(drop=True)
    pd.testing.assert_frame_equal(out[out.method == "kd"].reset_index(drop=True), kd[out.columns.drop("lam_chosen")]
                                  .assign(lam_chosen=np.nan)[out.columns])
    assert set(out[out.method == "kd"].study) == {"pos"} and "kd (tuned)" not in set(out.method)
    # the other seeds' mean validation F1 at lambda 1 vs 10: seed 0 (seeds 1, 2) 0.5 vs 0.35 -> 1;
    # seed 1 (seeds 0, 2) 0.15 vs 0.65 -> 10; seed 2 (seeds 0, 1) 0.55 vs 0.5 -> 1
    t = out[out.method == "dcat (tuned)"]
    assert dict(zip(t.seed, t.lam_chosen)) == {0: 1.0, 1: 10.0, 2: 1.0} and set(t.study) == {"pos"}
    assert t.f1.tolist() == pytest.approx([0.61, 0.71, 0.63])
    grid = out[out.study == "pos, every λ"]
    assert sorted(set(grid.method)) == ["dcat", "none"] and len(grid) == 3 + 6
