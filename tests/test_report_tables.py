"""What a researcher reads off dcatkit.report's tables, against values computed by hand:
per-class and per-pair changes (columns and order), the ablation summary's row order and
seed counts, Table IV's columns, best_lambda's numbers at the chosen lambda, tidy's
parameters and the report command's text."""
import math

import numpy as np
import pandas as pd
import pytest

from dcatkit import report

# rows = true class, columns = predicted
A = np.array([[5, 0, 0],
              [1, 3, 0],
              [0, 0, 4]])
B = np.array([[5, 0, 0],
              [0, 2, 2],
              [0, 0, 4]])


def _f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn)


def test_per_class_change_columns_hold_each_models_own_f1_and_rows_go_by_the_change():
    # A: a TP 5 FP 1 FN 0; b TP 3 FP 0 FN 1; c TP 4 FP 0 FN 0
    # B: a TP 5 FP 0 FN 0; b TP 2 FP 0 FN 2; c TP 4 FP 2 FN 0
    fa = {"a": _f1(5, 1, 0), "b": _f1(3, 0, 1), "c": 1.0}
    fb = {"a": 1.0, "b": _f1(2, 0, 2), "c": _f1(4, 2, 0)}
    df = report.per_class_change(A, B, ["a", "b", "c"], names=("base", "new"))
    for c in "abc":
        assert df.loc[c, "f1_base"] == pytest.approx(fa[c])
        assert df.loc[c, "f1_new"] == pytest.approx(fb[c])
        assert df.loc[c, "delta_f1"] == pytest.approx(fb[c] - fa[c])
    # a +0.091, b -0.190, c -0.200: sorted by the change, not by either F1 (B: a, c, b)
    by_change = sorted("abc", key=lambda c: -(fb[c] - fa[c]))
    assert list(df.index) == by_change
    assert by_change != sorted("abc", key=lambda c: -fb[c])          # the two orders differ here


def test_pair_changes_keeps_a_pair_only_one_model_confuses_and_sorts_by_the_change():
    a = np.array([[4, 1, 0, 0],       # {0,1}: a 1+0 = 1, b 0 -> fewer (-1)
                  [0, 4, 0, 0],
                  [0, 0, 4, 0],       # {2,3}: a 0, b 3+0 = 3 -> more (+3), newly confused
                  [0, 0, 0, 4]])
    b = np.array([[5, 0, 0, 0],
                  [0, 2, 2, 0],       # {1,2}: a 0, b 2 -> more (+2)
                  [0, 0, 1, 3],
                  [0, 0, 0, 4]])
    # (columns are the predictions; a's and b's rows need not share supports for pair_changes)
    df = report.pair_changes(a, b, ["w", "x", "y", "z"])
    got = df[["class_a", "class_b", "confused_baseline", "confused_dcat", "change", "direction"]].values.tolist()
    assert got == [["w", "x", 1, 0, -1, "fewer"], ["x", "y", 0, 2, 2, "more"], ["y", "z", 0, 3, 3, "more"]]
    # sorted by the change: a pair b confuses more but whose change is smaller comes first
    a2 = a.copy()
    a2[2, 3] = 2                                      # {2,3}: 2 -> 3, change +1 (b confuses it most)
    rows = report.pair_changes(a2, b, ["w", "x", "y", "z"])
    assert rows[["class_a", "class_b", "change"]].values.tolist() == [["w", "x", -1], ["y", "z", 1], ["x", "y", 2]]


def test_ablation_summary_rows_in_first_seen_variant_order_lambda_ascending_within():
    rows = []
    for seed in (0, 1, 2):
        rows += [dict(variant="v2", lam=10.0, seed=seed, f1=0.2 + seed / 100),
                 dict(variant="v1", lam=1.0, seed=seed, f1=0.5 + seed / 100),
                 dict(variant="v2", lam=0.1, seed=seed, f1=0.3 + seed / 100)]
    rows.append(dict(variant="v1", lam=3.0, seed=0, f1=0.9))             # one seed only at v1, lam 3
    df = pd.DataFrame(rows).assign(dataset="d", modality="imu", accuracy=0.5, precision=0.5, recall=0.5)
    s = report.ablation_summary(df)
    assert [(k[2], k[3]) for k in s.index] == [("v2", 0.1), ("v2", 10.0), ("v1", 1.0), ("v1", 3.0)]
    assert s["f1"].tolist() == pytest.approx([0.31, 0.21, 0.51, 0.9])
    assert s["n_seeds"].tolist() == [3, 3, 3, 1]
    assert s["f1_std"].iloc[:3].tolist() == pytest.approx([0.01] * 3) and math.isnan(s["f1_std"].iloc[3])
    t = report.ablation_table(df)
    assert t["seeds"].tolist() == [3, 3, 3, 1]


def test_table_iv_puts_each_metric_under_its_own_name_with_its_own_std():
    rows = []
    for seed, (acc, prec, rec, f1) in enumerate([(0.90, 0.70, 0.50, 0.30), (0.92, 0.74, 0.56, 0.38)]):
        rows.append(dict(dataset="d", modality="imu", variant="v", lam=1.0, seed=seed,
                         accuracy=acc, precision=prec, recall=rec, f1=f1))
    t = report.ablation_table(pd.DataFrame(rows))
    sd = lambda a, b: abs(a - b) / math.sqrt(2)                               # noqa: E731  std (ddof 1) of two
    assert list(t.columns) == ["Accuracy", "Recall", "Precision", "F1-Score", "seeds"]
    assert t["Accuracy"].iloc[0] == f"{0.91:.3f} ± {sd(0.90, 0.92):.3f}"
    assert t["Precision"].iloc[0] == f"{0.72:.3f} ± {sd(0.70, 0.74):.3f}"
    assert t["Recall"].iloc[0] == f"{0.53:.3f} ± {sd(0.50, 0.56):.3f}"
    assert t["F1-Score"].iloc[0] == f"{0.34:.3f} ± {sd(0.30, 0.38):.3f}"


def _lam_grid():
    """The best lambda (10) is not the first: seeds beating the baseline at 10 are 2 of 3,
    at 0.1 (the first) 0 of 3. accuracy points to another lambda (0.1) than f1."""
    rows = []
    base = [0.50, 0.60, 0.70]
    at = {0.1: [0.45, 0.55, 0.65], 10.0: [0.56, 0.64, 0.69]}
    for s in range(3):
        rows.append(dict(variant="baseline", lam=math.nan, seed=s, f1=base[s], accuracy=0.9))
        for lam, v in at.items():
            rows.append(dict(variant="dcat", lam=lam, seed=s, f1=v[s], accuracy=0.95 if lam == 0.1 else 0.8))
    return pd.DataFrame(rows), base, at


def test_best_lambda_reports_the_chosen_lambdas_seeds_and_std():
    df, base, at = _lam_grid()
    out = report.best_lambda(df)
    assert list(out.index) == ["dcat"]                                   # the baseline is no variant
    b = out.loc["dcat"]
    assert b["best_lam"] == 10.0
    assert b["f1"] == pytest.approx(np.mean(at[10.0]))
    assert b["f1_std"] == pytest.approx(np.std(at[10.0], ddof=1))
    assert b["seeds_beating_baseline"] == sum(v > w for v, w in zip(at[10.0], base)) == 2
    assert b["delta"] == pytest.approx(np.mean(at[10.0]) - np.mean(base))


def test_best_lambda_on_another_metric_reads_that_metric_of_the_baseline_too():
    df, _, _ = _lam_grid()
    b = report.best_lambda(df, metric="accuracy").loc["dcat"]
    assert b["best_lam"] == 0.1 and b["accuracy"] == pytest.approx(0.95)
    assert b["baseline_accuracy"] == pytest.approx(0.9) and b["delta"] == pytest.approx(0.05)
    assert b["seeds_beating_baseline"] == 3


def test_tidy_stores_a_tuple_parameter_whole_in_every_row():
    table = pd.DataFrame({"f1": [0.5, 0.6]}, index=pd.Index(["baseline", "dcat"], name="run"))
    df = report.tidy(table, seeds=(0, 1), lam=0.1)
    assert df["seeds"].tolist() == ["[0, 1]", "[0, 1]"] and df["lam"].tolist() == [0.1, 0.1]


def test_format_results_shows_the_grid_columns_and_the_deltas():
    """A grid's rows are told apart by their lambda and seed, and the delta a row carries is shown."""
    df = pd.DataFrame({"variant": ["dcat", "dcat"], "lam": [0.1, 10.0], "seed": [3, 4], "f1": [0.5, 0.6],
                       "delta_f1": [-0.0123, 0.0456], "modality": "imu"})
    lines = report.format_results(df).splitlines()
    assert lines[0].split() == ["lam", "seed", "f1", "delta_f1"]
    assert [ln.split() for ln in lines if ln.startswith("dcat ")] == [["dcat", "0.100", "3", "0.500", "-0.012"],
                                                                       ["dcat", "10.000", "4", "0.600", "0.046"]]
