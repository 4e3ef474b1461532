"""The data dcatkit.plots' result figures hold (line data, error-bar segments, bands, bar
heights, tick labels, titles), checked against the input table row by row: each interval and
point on its own row and panel, bands of ± 1 std, what the axis label says about adjustment."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dcatkit import plots  # noqa: E402


def _rows_of_forest(ax, names=None):
    """{y tick label: {"seg": (lo, hi), "pt": x}} of a forest plot (the zero line left out);
    ``names``: the tick labels, where the axes shares them with another."""
    names = names or [t.get_text() for t in ax.get_yticklabels()]
    ticks = np.asarray(ax.get_yticks(), float)
    out: dict = {}
    for ln in ax.lines:
        x, y = np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float)
        if ln.get_marker() == "x" or not len(x) or (len(x) == 2 and x[0] == x[1] == 0):
            continue
        name = names[int(np.argmin(np.abs(ticks - y[0])))]
        out.setdefault(name, {})["seg" if len(x) == 2 else "pt"] = tuple(x) if len(x) == 2 else x[0]
    return out


def _summary():
    """stats.summarise-like rows: dcat and kd at two sizes in two panels, asymmetric intervals."""
    rows = []
    for regime, shift in (("headroom", 0.0), ("ambiguous", 0.1)):
        for n in (300, 1000):
            rows.append(dict(regime=regime, n_samples=n, method="none", mean=0.6 + shift, std=0.02, n=10,
                             diff_mean=np.nan, ci_low=np.nan, ci_high=np.nan, level=np.nan))
            for m, d in (("dcat", 0.05 if n == 300 else -0.03), ("kd", 0.01 if n == 300 else 0.02)):
                d += shift
                rows.append(dict(regime=regime, n_samples=n, method=m, mean=0.6 + shift + d,
                                 std=0.03 if n == 300 else 0.04, n=10, diff_mean=d, ci_low=d - 0.04,
                                 ci_high=d + 0.01, level=0.95))
    return pd.DataFrame(rows)


def test_paired_intervals_draw_each_rows_own_interval_and_mean():
    s = _summary()
    fig = plots.paired_intervals(s)
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]          # the panels share the rows
    for ax, regime in zip(fig.axes, ("headroom", "ambiguous")):
        got = _rows_of_forest(ax, names)
        for r in s[(s.regime == regime) & (s.method != "none")].itertuples():
            row = got[f"{r.method}, n = {r.n_samples}"]
            assert row["seg"] == pytest.approx((r.ci_low, r.ci_high)) and row["pt"] == pytest.approx(r.diff_mean)
    plt.close("all")


def test_transfer_curves_draw_each_panels_own_rows_with_one_std_bars_and_the_ceiling_band():
    s = _summary()
    fig = plots.transfer_curves(s, ceilings={"headroom": (0.9, 0.03)})
    for ax, regime in zip(fig.axes, ("headroom", "ambiguous")):
        for c in ax.containers:
            label = c.get_label().removesuffix(" (baseline)")
            want = s[(s.regime == regime) & (s.method == label)].sort_values("n_samples")
            assert list(c.lines[0].get_xdata()) == want.n_samples.tolist()
            assert list(c.lines[0].get_ydata()) == pytest.approx(want["mean"].tolist())
            ends = sorted((float(g[0][0]), float(g[0][1]), float(g[1][1])) for g in c.lines[2][0].get_segments())
            np.testing.assert_allclose(ends, [(x, m - sd, m + sd) for x, m, sd in
                                              zip(want.n_samples, want["mean"], want["std"])])
    band = [p for p in fig.axes[0].patches if abs(p.get_alpha() - 0.12) < 1e-9][0]
    ys = band.get_patch_transform().transform(band.get_path().vertices)[:, 1]
    assert (ys.min(), ys.max()) == pytest.approx((0.87, 0.93))
    plt.close("all")


def test_lambda_curve_band_is_one_std_over_seeds_at_each_lambda():
    rng = np.random.default_rng(0)
    rows = [dict(variant="baseline", lam=np.nan, seed=s, f1=0.5 + 0.01 * s) for s in range(4)]
    rows += [dict(variant="dcat", lam=lam, seed=s, f1=float(0.55 + 0.02 * np.log10(lam) + rng.normal(0, 0.03)))
             for lam in (0.1, 1.0, 10.0) for s in range(4)]
    df = pd.DataFrame(rows)
    ax = plots.lambda_curve(df).axes[0]
    bands = [c for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)]
    assert len(bands) == 1
    v = bands[0].get_paths()[0].vertices
    for lam, g in df[df.variant == "dcat"].groupby("lam"):
        ys = v[np.isclose(v[:, 0], lam), 1]
        m, sd = g.f1.mean(), g.f1.std(ddof=1)
        assert (ys.min(), ys.max()) == pytest.approx((m - sd, m + sd)), lam
    plt.close("all")


def test_f1_intervals_draw_each_runs_interval_and_score():
    scores = pd.DataFrame({"f1": [0.62, 0.70], "ci_low": [0.50, 0.66], "ci_high": [0.65, 0.80], "n": 40},
                          index=["baseline", "dcat"])
    got = _rows_of_forest(plots.f1_intervals(scores).axes[0])
    for name, r in scores.iterrows():
        assert got[name]["seg"] == pytest.approx((r.ci_low, r.ci_high)) and got[name]["pt"] == pytest.approx(r.f1)
    plt.close("all")


def _pooled():
    rows = []
    for size, m, lam, d, lo, hi in ((1000, "dcat", 1.0, 0.03, 0.01, 0.09), (300, "dcat", 1.0, -0.02, -0.05, 0.04),
                                    (300, "kd", 1.0, 0.06, 0.02, 0.07)):
        rows.append(dict(study="neg", method=m, lam=lam, size=size, unit="recordings", diff_mean=d, ci_low=lo,
                         ci_high=hi, metric="recall"))
    rows.append(dict(study="neg", method="none", lam=0.0, size=300, unit="recordings", diff_mean=np.nan,
                     ci_low=np.nan, ci_high=np.nan, metric="recall"))
    draws = {("dcat", 1000): [0.02, 0.04], ("dcat", 300): [-0.03, -0.01], ("kd", 300): [0.05, 0.06, 0.07]}
    per = pd.DataFrame([dict(study="neg", method=m, lam=1.0, size=n, data_seed=i, diff_mean=v)
                        for (m, n), vs in draws.items() for i, v in enumerate(vs)])
    return pd.DataFrame(rows), per, draws


def test_pooled_intervals_rows_by_size_each_with_its_interval_mean_and_own_draws():
    pooled, per, draws = _pooled()
    ax = plots.pooled_intervals(pooled, per).axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names == ["dcat, n = 300", "kd, n = 300", "dcat, n = 1000"]           # sizes ascending, then as run
    got = _rows_of_forest(ax)
    for r in pooled[pooled.method != "none"].itertuples():
        row = got[f"{r.method}, n = {r.size}"]
        assert row["seg"] == pytest.approx((r.ci_low, r.ci_high)) and row["pt"] == pytest.approx(r.diff_mean)
    ticks = np.asarray(ax.get_yticks(), float)
    crosses = {names[int(np.argmin(np.abs(ticks - ln.get_ydata()[0])))]: sorted(ln.get_xdata().tolist())
               for ln in ax.lines if ln.get_marker() == "x"}
    assert crosses == {f"{m}, n = {n}": pytest.approx(sorted(v)) for (m, n), v in draws.items()}
    assert "(read on macro recall)" in ax.get_title()
    plt.close("all")


def test_a_family_of_one_cell_is_not_called_adjusted():
    """Holm or Bonferroni over one cell adjusts nothing: the x-label gives the cell's level."""
    s = _summary().assign(family_size=1.0, correction="holm", confidence=0.95)
    assert plots.paired_intervals(s).axes[0].get_xlabel().endswith("(95% interval)")
    plt.close("all")


def test_class_counts_stack_train_val_test_only():
    counts = pd.DataFrame({"train": [5, 3], "val": [1, 2], "test": [2, 1]}, index=pd.Index(["a", "b"], name="class"))
    counts["total"] = counts.sum(axis=1)
    ax = plots.class_counts(counts).axes[0]
    assert len(ax.containers) == 3
    for c, split in zip(ax.containers, ("train", "val", "test")):
        assert [p.get_height() for p in c.patches] == counts[split].tolist()
    tops = [max(p.get_y() + p.get_height() for c in ax.containers for p in c.patches if abs(p.get_x() + p.get_width() / 2 - i) < 1e-9)
            for i in range(2)]
    assert tops == counts["total"].tolist()
    plt.close("all")


def test_f1_change_labels_each_bar_with_its_own_class_counts():
    """The bars come sorted by the change; each label's counts are of the bar's class (its row
    of the confusion matrices), not of the class at that position in ``classes``."""
    from dcatkit import report

    classes = ["a", "b", "c"]
    base = np.array([[6, 2, 0], [1, 5, 0], [0, 1, 9]])
    other = np.array([[5, 3, 0], [0, 6, 0], [0, 0, 10]])
    change = report.per_class_change(base, other, classes)
    assert list(change.index) != classes                                  # sorted: positions differ
    ax = plots.f1_change(change, conf_base=base, conf_other=other, classes=classes).axes[0]
    for t, (c, d) in zip(ax.texts, change["delta_f1"].items()):
        j = classes.index(c)
        assert t.get_text() == f"{d:+.3f} (right {base[j, j]} → {other[j, j]} of {base[j].sum()})"
    bottom, top = ax.get_ylim()
    assert bottom > top                                  # the table's first row (the largest gain) on top
    plt.close("all")


def test_f1_change_labels_the_difference_the_table_prints():
    """Each label's ΔF1 is the one ``format_table(..., diffs=...)`` prints beside the figure (the
    difference of the F1s as shown), also where an F1 falls on a rounding boundary: notebook 05's
    sweep_floor, F1 26/32 = 0.8125 (shown 0.812) -> 32/37 = 0.8649 (0.865), printed +0.053 in the
    table while the figure said the unrounded +0.052."""
    from dcatkit import report
    from dcatkit.experiment import format_table

    classes = ["sweep_floor", "other"]
    base = np.array([[13, 5], [1, 9]])                  # sweep_floor: TP 13, FN 5, FP 1 -> F1 26/32
    dcat = np.array([[16, 2], [3, 7]])                  # TP 16, FN 2, FP 3 -> F1 32/37
    change = report.per_class_change(base, dcat, classes)
    assert change.loc["sweep_floor", "f1_baseline"] == 26 / 32 and change.loc["sweep_floor", "f1_dcat"] == 32 / 37
    assert f"{change.loc['sweep_floor', 'delta_f1']:+.3f}" == "+0.052"            # the unrounded difference
    lines = format_table(change, diffs={"delta_f1": ("f1_dcat", "f1_baseline")}).splitlines()[2:]
    printed = {line.split()[0]: line.split()[-1] for line in lines}
    assert printed["sweep_floor"] == "0.053"
    ax = plots.f1_change(change).axes[0]
    labels = {c: t.get_text() for c, t in zip(change.index, ax.texts)}
    assert labels == {c: ("+" if not p.startswith("-") else "") + p for c, p in printed.items()}, (labels, printed)
    ax = plots.f1_change(change.rename(columns={"f1_dcat": "f1_kd"}), of=("f1_kd", "f1_baseline")).axes[0]
    assert ax.texts[0].get_text() == "+0.053"
    with pytest.raises(ValueError, match="f1_\\* columns"):
        plots.f1_change(change.drop(columns="f1_dcat"))
    plt.close("all")


def test_confusion_pair_shares_one_colour_scale_from_0_to_1():
    """One colour bar (beside the second matrix) is read for both: each heatmap maps shares
    0 .. 1, whatever its largest share."""
    a = np.array([[3, 3], [3, 3]])                       # largest share 0.5
    b = np.array([[6, 0], [1, 5]])
    fig = plots.confusion_pair(a, b, ["x", "y"])
    for ax in fig.axes[:2]:
        assert ax.collections[0].get_clim() == (0, 1)
    plt.close("all")


def test_lambda_curve_baseline_band_from_two_seeds():
    """Two baseline seeds have a std (ddof 1): the band is drawn at mean ± std."""
    df = pd.DataFrame({"variant": ["baseline"] * 2 + ["dcat"] * 2, "lam": [np.nan, np.nan, 1.0, 1.0],
                       "seed": [0, 1, 0, 1], "f1": [0.50, 0.56, 0.6, 0.62]})
    ax = plots.lambda_curve(df).axes[0]
    band = [p for p in ax.patches if p.get_alpha() == 0.08]
    assert len(band) == 1
    ys = band[0].get_patch_transform().transform(band[0].get_path().vertices)[:, 1]
    sd = np.std([0.50, 0.56], ddof=1)
    assert (ys.min(), ys.max()) == pytest.approx((0.53 - sd, 0.53 + sd))
    plt.close("all")


def test_subject_change_labels_each_bar_with_its_own_subject():
    """Rows come sorted by the change (runs.per_subject), not by subject: each bar keeps its
    row's subject, ΔF1 and counts."""
    table = pd.DataFrame({"subject": [7, 2, 5], "n": [10, 12, 8], "f1_baseline": [0.5, 0.6, 0.7],
                          "f1_other": [0.7, 0.6, 0.4], "delta_f1": [0.2, 0.0, -0.3], "fixed": [3, 1, 0],
                          "broke": [1, 1, 2]})
    ax = plots.subject_change(table).axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    ticks = np.asarray(ax.get_yticks(), float)
    bars = {names[int(np.argmin(np.abs(ticks - (p.get_y() + p.get_height() / 2))))]: p.get_width()
            for p in ax.patches}
    assert bars == {f"subject {r.subject}": pytest.approx(r.delta_f1) for r in table.itertuples()}
    assert [t.get_text().split(" (")[1] for t in ax.texts] == [f"fixed {r.fixed}, broke {r.broke} of {r.n})"
                                                               for r in table.itertuples()]
    plt.close("all")
