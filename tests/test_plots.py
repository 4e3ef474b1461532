"""dcatkit.plots: every figure builds from tiny data and saves as a PNG; the
log-mel view is the audio encoder's own front end."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dcatkit import plots, report  # noqa: E402
from dcatkit.encoders import LogMel  # noqa: E402
from helpers import TINY, tiny_splits  # noqa: E402


@pytest.fixture(scope="module")
def splits():
    return tiny_splits(48)


def _png(path):
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_figures(splits, tmp_path):
    ds = splits.train
    enc = TINY["audio"].encoder
    figs = {"counts": plots.class_counts(report.class_counts(splits)), "imu": plots.imu_traces(ds),
            "frames": plots.frame_strips(ds), "spec": plots.spectrograms(ds, enc),
            "sample": plots.sample_figure(ds, 0, enc)}
    for name, fig in figs.items():
        _png(plots.save(fig, tmp_path / "figs", name))
    plt.close("all")


def test_examples_first_of_each_class(splits):
    ds = splits.train
    ex = plots.examples(ds, per_class=2)
    for c, idx in enumerate(ex):
        assert idx == np.flatnonzero(ds.labels == c)[:2].tolist()


def test_logmel_is_the_encoders_front_end(splits):
    ds = splits.train
    enc = TINY["audio"].encoder
    want = LogMel(sample_rate=int(ds.sample_rates["audio"]), n_fft=enc["n_fft"], hop_length=enc["hop_length"],
                  n_mels=enc["n_mels"], f_max=enc["f_max"])(torch.from_numpy(np.asarray(ds.arrays["audio"][3]))[None])[0]
    got = plots.logmel(ds, 3, enc)
    assert got.shape == (enc["n_mels"], want.shape[1])
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-4)


def test_logmel_follows_the_front_end_the_model_builds_at_the_datas_rate():
    """A PANNs preset (32 kHz, n_fft 1024, hop 320) on 16 kHz data: build_model adapts the front
    end to the data's rate (512 / 160, Cnn14_16k's), and notebook 01's spectrograms show that front
    end's output, not the preset's sample counts at the data's rate."""
    from dcatkit.data.dataset import PairedDataset
    from dcatkit.model import build_model
    from dcatkit.presets import get_preset

    rng = np.random.default_rng(0)
    wav = rng.uniform(-0.5, 0.5, (2, 16000)).astype(np.float32)
    ds = PairedDataset({"audio": wav}, np.array([0, 1]), ["a", "b"], np.array([0, 1]), np.array(["x", "y"]),
                       {"audio": 16000})
    preset = get_preset("vggsound", "audio")
    model = build_model("audio", 2, (16000,), preset, sample_rate=16000).eval()
    with torch.no_grad():
        want = model.encoder.frontend(torch.from_numpy(wav[1])[None])[0].numpy()
    got = plots.logmel(ds, 1, preset.encoder)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_spectrograms_have_a_colour_bar_in_db(splits):
    """Notebook 01's spectrograms (and the sample figure's audio panel) had no colour bar: the
    colours' values and unit were nowhere. The values are the front end's AmplitudeToDB of the mel
    power, 10·log10 (ref 1): one colour bar for every panel (one colour scale) says "mel power (dB)";
    a precomputed log-mel's bar says its values are as stored (the kit does not know their unit)."""
    ds, enc = splits.train, TINY["audio"].encoder
    fig = plots.spectrograms(ds, enc)
    images = [im for ax in fig.axes for im in ax.get_images()]
    bars = [im.colorbar for im in images if im.colorbar is not None]
    assert len(images) == len(ds.classes) and len(bars) == 1
    assert bars[0].ax.get_ylabel() == "mel power (dB)"
    lo, hi = min(im.get_array().min() for im in images), max(im.get_array().max() for im in images)
    assert [im.get_clim() for im in images] == [pytest.approx((lo, hi))] * len(images)   # one scale, one bar
    mod = LogMel(sample_rate=int(ds.sample_rates["audio"]), n_fft=enc["n_fft"], hop_length=enc["hop_length"],
                 n_mels=enc["n_mels"], f_max=enc["f_max"])
    first = int(np.flatnonzero(ds.labels == 0)[0])
    power = mod.mel(torch.from_numpy(np.asarray(ds.arrays["audio"][first]))[None])[0].numpy()
    np.testing.assert_allclose(images[0].get_array(), 10 * np.log10(np.maximum(power, 1e-10)), atol=1e-3)   # dB
    (audio,) = [im for ax in plots.sample_figure(ds, 0, enc).axes for im in ax.get_images() if im.colorbar]
    assert audio.colorbar.ax.get_ylabel() == "mel power (dB)"
    from dcatkit.data.dataset import PairedDataset

    stored = PairedDataset({"audio": np.random.default_rng(0).normal(size=(2, 32, 40)).astype(np.float32)},
                           np.array([0, 1]), ["a", "b"], np.array([0, 1]), np.array(["x", "y"]), {"audio": 8000})
    (bar,) = [im.colorbar for ax in plots.spectrograms(stored).axes for im in ax.get_images() if im.colorbar]
    assert bar.ax.get_ylabel() == "as stored (precomputed log-mel)"
    plt.close("all")


def test_browser_builds(splits):
    pytest.importorskip("ipywidgets", reason="the sample browser is an ipywidgets widget (CI installs it)")
    w = plots.sample_browser(splits.train)
    assert w is not None
    cls_dd, subj_dd, pick = w.children[0].children
    cls_dd.value = 1
    assert pick.max == int((splits.train.labels == 1).sum()) - 1
    plt.close("all")


def test_result_figures(tmp_path):
    h = pd.DataFrame({"epoch": [1, 2], "train_ce": [2.0, 1.5], "val_f1": [0.2, 0.3]})
    table = pd.DataFrame({"accuracy": [0.5, 0.6], "precision": [0.4, 0.5], "recall": [0.5, 0.6], "f1": [0.45, 0.55]},
                         index=pd.Index(["baseline", "D-CAT"], name="run"))
    conf = np.array([[3, 1], [0, 4]])
    change = report.per_class_change(conf, np.array([[4, 0], [1, 3]]), ["x", "y"])
    grid = pd.DataFrame({"variant": ["baseline", "D-CAT (MCMA)", "D-CAT (MCMA)"] * 2,
                         "lam": [np.nan, 0.1, 1.0] * 2, "seed": [0, 0, 0, 1, 1, 1],
                         "f1": [0.5, 0.55, 0.6, 0.52, 0.5, 0.62]})
    figs = [plots.training_curves({"a": h, "b": h}), plots.metrics_bars(table),
            plots.confusion_pair(conf, conf, ["x", "y"]), plots.f1_change(change), plots.lambda_curve(grid)]
    for i, fig in enumerate(figs):
        _png(plots.save(fig, tmp_path, f"r{i}"))
    plt.close("all")


def _summary(drop_kd_in=None):
    rows = []
    for regime in ("headroom", "ambiguous"):
        for n in (300, 1000):
            rows.append({"regime": regime, "n_samples": n, "method": "none", "mean": 0.6, "std": 0.02,
                         "diff_mean": np.nan, "ci_low": np.nan, "ci_high": np.nan})
            for m, d in (("dcat", 0.05), ("kd", -0.01)):
                if m == "kd" and regime == drop_kd_in:
                    continue
                rows.append({"regime": regime, "n_samples": n, "method": m, "mean": 0.6 + d, "std": 0.03,
                             "diff_mean": d, "ci_low": d - 0.02, "ci_high": d + 0.02, "level": 0.95,
                             "confidence": 0.95})
    return pd.DataFrame(rows)


def test_transfer_curves_draw_every_method_and_the_ceiling(tmp_path):
    fig = plots.transfer_curves(_summary(drop_kd_in="ambiguous"), ceilings={"headroom": (0.96, 0.01)})
    left, right = fig.axes[:2]
    assert [a.get_title() for a in (left, right)] == ["headroom", "ambiguous"]
    labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert sorted(labels) == sorted(["none (baseline)", "dcat", "kd", "ceiling"])   # every panel's entries, once
    assert 0.96 in [ln.get_ydata()[0] for ln in left.lines if len(ln.get_ydata()) == 2]   # ceiling line
    xs = {tuple(ln.get_xdata()) for ln in left.lines if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == 300}
    assert (300, 1000) in xs
    _png(plots.save(fig, tmp_path, "curves"))
    plt.close("all")



def test_a_summary_joined_by_concat_draws_as_with_a_fresh_index():
    """pd.concat of two studies' tables repeats index labels; the λ labels are set by row, so a
    repeated label raised pandas' InvalidIndexError, which says nothing about the table."""
    both = _summary().assign(lam=1.0)
    both = pd.concat([both, both[both.method == "dcat"].assign(lam=30.0, mean=0.7)])   # repeated labels
    assert not both.index.is_unique
    texts = []
    for table in (both, both.reset_index(drop=True)):
        fig = plots.transfer_curves(table)
        texts.append(sorted(t.get_text() for t in fig.axes[1].get_legend().get_texts()))
    assert texts[0] == texts[1] and "dcat (λ = 30)" in texts[0] and "dcat (λ = 1)" in texts[0]
    plt.close("all")

def test_paired_intervals_one_row_per_method_and_size(tmp_path):
    fig = plots.paired_intervals(_summary())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dcat, n = 300", "kd, n = 300", "dcat, n = 1000",
                                                            "kd, n = 1000"]
    segs = [tuple(ln.get_xdata()) for ln in ax.lines if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] != 0]
    assert (pytest.approx(0.03), pytest.approx(0.07)) in [(a, b) for a, b in segs]     # dcat's interval
    points = [ln for ln in ax.lines if len(ln.get_xdata()) == 1]
    filled = {round(float(p.get_xdata()[0]), 3): p.get_markerfacecolor() != "white" for p in points}
    assert filled == {0.05: True, -0.01: False}                          # kd's interval holds 0: hollow
    assert ax.get_xlabel().endswith("(95% interval)")                    # no family columns: per cell
    adjusted = plots.paired_intervals(_summary().assign(family_size=4.0, correction="holm"))
    assert "adjusted for the cells tested together" in adjusted.axes[0].get_xlabel()
    plain = plots.paired_intervals(_summary().assign(family_size=4.0, correction="none"))
    assert plain.axes[0].get_xlabel().endswith("(95% interval)")
    _png(plots.save(fig, tmp_path, "intervals"))
    plt.close("all")


def _hex(c):
    return matplotlib.colors.to_hex(c)


def _labelled(ax):
    """{legend label: Line2D} of an axes' labelled lines and error-bar lines (their data line)."""
    out = {ln.get_label(): ln for ln in ax.lines if not ln.get_label().startswith("_")}
    out.update({c.get_label(): c.lines[0] for c in ax.containers if hasattr(c, "has_yerr")})
    return out


def _line_colours(ax):
    """{legend label: colour} of an axes' labelled lines (error-bar lines included)."""
    return {k: _hex(ln.get_color()) for k, ln in _labelled(ax).items()}


def _interval_colours(ax):
    """{y tick label: colour of the point drawn on that row} of a forest plot."""
    names = [t.get_text() for t in ax.get_yticklabels()]
    return {names[int(round(ln.get_ydata()[0]))]: _hex(ln.get_color()) for ln in ax.lines
            if len(ln.get_xdata()) == 1}


def _pooled(methods, study="s"):
    return pd.DataFrame([{"study": study, "method": m, "lam": 1.0, "size": 300, "unit": "recordings",
                          "diff_mean": 0.01 * i, "ci_low": -0.1, "ci_high": 0.1, "metric": "f1"}
                         for i, m in enumerate(methods)])


def test_a_method_has_one_colour_in_every_figure():
    """Notebook 03 drew the baseline orange in 03_metrics (the source came first) and blue in
    03_training_curves; notebook 06 drew kd red in one figure and orange in another: each
    figure coloured by the order of its own input. Now a name has one colour, whatever the
    figure and the order: the notebooks' names for one run (imu baseline / none / baseline (measured
    only); D-CAT / dcat / dcat (MCMA); No MCMA / dcat (no MCMA)) share it, and the baseline is black."""
    h = pd.DataFrame({"epoch": [1, 2], "train_ce": [2.0, 1.5], "train_ca": [1.4, 1.3]})
    curves = _line_colours(plots.training_curves({"imu baseline": h, "D-CAT": h, "No MCMA": h}).axes[0])
    align = _line_colours(plots.training_curves({"baseline (measured only)": h, "No MCMA": h, "D-CAT": h},
                                                ("train_ca",)).axes[0])
    scores = pd.DataFrame({"f1": [0.9, 0.6, 0.65, 0.62], "ci_low": [0.8, 0.5, 0.55, 0.52],
                           "ci_high": [0.95, 0.7, 0.75, 0.72], "n": 40},
                          index=["video source", "imu baseline", "D-CAT", "No MCMA"])
    metrics = _interval_colours(plots.f1_intervals(scores).axes[0])
    grid = pd.DataFrame({"variant": ["baseline", "dcat (no MCMA)", "dcat (MCMA)"] * 2, "lam": [np.nan, 1.0, 1.0] * 2,
                         "seed": [0, 0, 0, 1, 1, 1], "f1": [0.5, 0.55, 0.6, 0.52, 0.5, 0.62]})
    lam = _line_colours(plots.lambda_curve(grid).axes[0])
    black = "#000000"
    assert curves["imu baseline"] == align["baseline (measured only)"] == metrics["imu baseline"] == black
    assert curves["D-CAT"] == align["D-CAT"] == metrics["D-CAT"] == lam["dcat (MCMA)"]
    assert curves["No MCMA"] == align["No MCMA"] == metrics["No MCMA"] == lam["dcat (no MCMA)"]
    assert len({curves["D-CAT"], curves["No MCMA"], metrics["video source"], black}) == 4
    # notebook 06: the verdicts' forest (dcat first), the label curve (kd first) and a sweep's intervals
    verdicts = _interval_colours(plots.pooled_intervals(_pooled(["none", "dcat", "dcat (tuned)", "kd"])).axes[0])
    by_size = pd.DataFrame({"study": "curve", "method": ["none", "kd", "contrastive", "dcat"], "size": 20,
                            "mean": [0.3, 0.6, 0.5, 0.3], "std": 0.05})
    labels = _line_colours(plots.transfer_curves(by_size, x="size", col="study").axes[0])
    forest = _interval_colours(plots.paired_intervals(_summary().iloc[::-1]).axes[0])     # kd before dcat
    assert verdicts["kd, n = 300"] == labels["kd"] == forest["kd, n = 300"] == forest["kd, n = 1000"]
    assert verdicts["dcat, n = 300"] == labels["dcat"] == forest["dcat, n = 300"] == curves["D-CAT"]
    assert labels["none (baseline)"] == black
    assert len({verdicts["dcat, n = 300"], verdicts["dcat (tuned), n = 300"], labels["kd"], labels["contrastive"],
                black}) == 5
    plt.close("all")


def test_colours_never_run_out_and_never_collide():
    """More than ten methods (tab10 ran out: KeyError 'm10'): every figure draws them all, each
    in its own colour; a name the kit does not know never takes a kit name's fixed colour, and
    two names of one figure never share one (also two sources, or 40 unknown names)."""
    many = [f"m{i}" for i in range(12)]
    rows = [{"regime": "r", "n_samples": 300, "method": m, "mean": 0.5, "std": 0.01, "diff_mean": 0.01,
             "ci_low": -0.1, "ci_high": 0.1, "level": 0.95} for m in ["none", "dcat", "kd"] + many]
    fig = plots.transfer_curves(pd.DataFrame(rows))
    got = _line_colours(fig.axes[0])
    assert len(got) == 15 == len(set(got.values()))
    assert not {got[m] for m in many} & set(plots.RUN_COLOURS.values())
    forest = _interval_colours(plots.paired_intervals(pd.DataFrame(rows)).axes[0])
    assert len(forest) == 14 == len(set(forest.values()))
    pooled = _interval_colours(plots.pooled_intervals(_pooled(["none", "dcat", "kd"] + many)).axes[0])
    assert len(pooled) == 14 == len(set(pooled.values()))
    assert {k.split(",")[0]: v for k, v in forest.items()} == {k.split(",")[0]: v for k, v in pooled.items()}
    c = plots.colours([f"x{i}" for i in range(40)] + ["video source", "audio source", "D-CAT", "dcat"])
    assert len(set(c.values())) == 44 and c["D-CAT"] == plots.RUN_COLOURS["dcat"]
    assert plots.colours(["kd (MCMA)"]) == {"kd (MCMA)": plots.RUN_COLOURS["kd"]}          # notebook 04's variant
    plt.close("all")


def _two_lambdas():
    """stats.summarise rows of one method at two λ (its default treatment is (method, lam))."""
    rows = []
    for n, base in ((300, 0.6), (1000, 0.7)):
        rows.append({"regime": "headroom", "n_samples": n, "method": "none", "lam": 0.0, "mean": base, "std": 0.02,
                     "diff_mean": np.nan, "ci_low": np.nan, "ci_high": np.nan, "level": np.nan})
        for lam, d in ((1.0, 0.05), (100.0, -0.2)):
            rows.append({"regime": "headroom", "n_samples": n, "method": "dcat", "lam": lam, "mean": base + d,
                         "std": 0.02, "diff_mean": d, "ci_low": d - 0.01, "ci_high": d + 0.01, "level": 0.95})
    return pd.DataFrame(rows)


def test_one_line_and_one_row_per_lambda_of_a_method():
    """transfer_curves joined the two λ of dcat into one zig-zag line and paired_intervals kept
    the first row of each (method, n) only: now each λ is its own line / row, in the method's
    colour, and two rows of one (method, λ, n) are refused."""
    s = _two_lambdas()
    ax = plots.transfer_curves(s).axes[0]
    lines = _labelled(ax)
    assert set(lines) == {"none (baseline)", "dcat (λ = 1)", "dcat (λ = 100)"}
    assert list(lines["dcat (λ = 1)"].get_ydata()) == pytest.approx([0.65, 0.75])
    assert list(lines["dcat (λ = 100)"].get_ydata()) == pytest.approx([0.4, 0.5])
    assert _hex(lines["dcat (λ = 1)"].get_color()) == _hex(lines["dcat (λ = 100)"].get_color())
    assert lines["dcat (λ = 1)"].get_marker() != lines["dcat (λ = 100)"].get_marker()
    ax = plots.paired_intervals(s).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dcat (λ = 1), n = 300", "dcat (λ = 100), n = 300",
                                                            "dcat (λ = 1), n = 1000", "dcat (λ = 100), n = 1000"]
    assert sorted(round(float(ln.get_xdata()[0]), 3) for ln in ax.lines if len(ln.get_xdata()) == 1) == \
        [-0.2, -0.2, 0.05, 0.05]
    twice = pd.concat([s, s[s.lam == 1.0].assign(mcma=False)]).assign(mcma=lambda d: d.mcma.fillna(True))
    for fn in (plots.transfer_curves, plots.paired_intervals):
        with pytest.raises(ValueError, match=r"2 rows share .*'method': 'dcat', 'lam': 1\.0.*differ in \['mcma'\]"):
            fn(twice)
    plt.close("all")


def test_paired_intervals_say_the_rows_own_level():
    """The x-label said "95% interval" whatever the rows' level: a 90% summary says 90%."""
    xlabel = lambda s: plots.paired_intervals(s).axes[0].get_xlabel()      # noqa: E731
    assert xlabel(_summary().assign(level=0.9, confidence=0.9)).endswith("(90% interval)")
    assert xlabel(_summary().drop(columns="level").assign(confidence=0.8)).endswith("(80% interval)")
    assert "unstated level" in xlabel(_summary().drop(columns=["level", "confidence"]))
    mixed = _summary().assign(level=[np.nan, 0.9, 0.95] * 4)
    assert xlabel(mixed).endswith("(intervals at 90%, 95% (each row's own level))")
    holm = xlabel(_summary().assign(family_size=4.0, correction="holm", confidence=0.9))
    assert holm.endswith("adjusted for the cells tested together: holm, family-wise 90%)")
    plt.close("all")


def test_transfer_curves_lines_differ_by_more_than_a_close_colour():
    """06_f1_vs_size drew the baseline, D-CAT (blue) and D-CAT tuned (cyan) all with round
    markers and solid lines, their bars on top of each other: two blues told apart by hue alone.
    Now each line of the figure has its own marker and line style (the same in every panel), the
    colours stay the kit's, the legend names each line, and lines at one x are drawn a few points
    apart (their x values as they are)."""
    rows = [{"panel": p, "n_samples": n, "method": m, "lam": lam, "mean": base + d, "std": 0.07, "n": 30}
            for p in ("a", "b") for n, base in ((300, 0.62), (1000, 0.8))
            for m, lam, d in (("none", 0.0, 0.0), ("dcat", 1.0, -0.01), ("dcat (tuned)", 0.0, -0.005))]
    fig = plots.transfer_curves(pd.DataFrame(rows), col="panel")
    names = ["none (baseline)", "dcat", "dcat (tuned)"]
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == names
    styles = []
    for ax in fig.axes:
        lines = _labelled(ax)
        assert {k: _hex(ln.get_color()) for k, ln in lines.items()} == {
            "none (baseline)": "#000000", "dcat": plots.RUN_COLOURS["dcat"],
            "dcat (tuned)": plots.RUN_COLOURS["dcat (tuned)"]}
        styles.append([(lines[k].get_marker(), lines[k].get_linestyle()) for k in names])
        assert all(list(ln.get_xdata()) == [300, 1000] for ln in lines.values())        # the data as it is
        shown = [ln.get_transform().transform(np.column_stack([ln.get_xdata(), ln.get_ydata()]))[0, 0]
                 for ln in (lines[k] for k in names)]
        assert shown == sorted(shown) and min(np.diff(shown)) >= 2, shown               # side by side, in pixels
        for c in ax.containers:                                                         # each bar with its point
            line, (bars,) = c.lines[0], c.lines[2]
            assert bars.get_transform().transform(bars.get_segments()[0])[0, 0] == pytest.approx(
                line.get_transform().transform((line.get_xdata()[0], line.get_ydata()[0]))[0])
    markers, linestyles = zip(*styles[0])
    assert styles[0] == styles[1] and len(set(markers)) == len(set(linestyles)) == 3, styles
    plt.close("all")


def test_transfer_curves_say_what_the_bars_are():
    """06_f1_vs_labels drew bars without saying over what: the legend's title says it, from
    the rows (with n_draws: draws × seeds) and the runs a point."""
    s = _summary().assign(n=30, n_draws=[np.nan, 3, 3] * 4)
    title = plots.transfer_curves(s).axes[1].get_legend().get_title().get_text()
    assert title == "bars: mean ± 1 std\nover draws × seeds\n(30 runs a point)"
    title = plots.transfer_curves(_summary().assign(n=[10, 10, 9] * 4)).axes[1].get_legend().get_title().get_text()
    assert title == "bars: mean ± 1 std\nover seeds"
    plt.close("all")


# --------------------------------------------------------------------------- teaching figures (issue 20)


class _Scaled:
    """A dataset stand-in: IMU min-max scaled to [-1, 1] with known statistics."""

    def __init__(self, raw, lo, hi, labels, subjects, classes, rate=32.0):
        self.arrays = {"imu": (2 * (raw - lo[:, None]) / (hi - lo)[:, None] - 1)}
        self.imu_minmax = {"min": lo.tolist(), "max": hi.tolist(), "from": "train"}
        self.labels, self.subjects, self.classes = np.asarray(labels), np.asarray(subjects), classes
        self.sample_rates = {"imu": rate}


def test_imu_in_g_undoes_the_scaling_and_pairs_remove_gravity(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 0.2, (4, 6, 64))
    raw[:, 2] += 1.0                                             # gravity on z
    lo, hi = raw.min((0, 2)) - 0.1, raw.max((0, 2)) + 0.1
    ds = _Scaled(raw, lo, hi, [0, 1, 0, 1], [5, 5, 7, 7], ("a", "b"))
    for i in range(4):
        np.testing.assert_allclose(plots.imu_in_g(ds, i), raw[i], atol=1e-9)
    fig = plots.imu_pairs(ds, [("a", "b")])
    ax = fig.axes[2]                                             # acc z, pair (a, b), subject 5
    for line, i in zip(ax.get_lines(), (0, 1)):
        y = line.get_ydata()
        np.testing.assert_allclose(y, raw[i, 2] - raw[i, 2].mean(), atol=1e-9)   # gravity removed, in g
        np.testing.assert_allclose(line.get_xdata()[:2], [0, 1 / 32])             # seconds at 32 Hz
    assert "acc (g)" in fig.axes[0].get_ylabel() and "32 Hz" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match=r"classes \['c'\] are not in this dataset"):
        plots.imu_pairs(ds, [("a", "c")])
    plt.close("all")


def test_bootstrap_f1_matches_a_plain_loop():
    """Same resampled indices as an independent loop with sklearn; a perfect run has [1, 1]."""
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 40)
    p = np.where(rng.random(40) < 0.7, y, rng.integers(0, 3, 40))
    got = plots.bootstrap_f1(y, {"m": p, "perfect": y}, 3, n_boot=200, seed=4)
    idx = np.random.default_rng(4).integers(0, 40, (200, 40))
    boots = [f1_score(y[i], p[i], labels=np.unique(y[i]), average="macro", zero_division=0) for i in idx]
    lo, hi = np.quantile(boots, [0.025, 0.975])
    assert got.loc["m", "ci_low"] == pytest.approx(lo) and got.loc["m", "ci_high"] == pytest.approx(hi)
    assert got.loc["m", "f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert got.loc["perfect", ["f1", "ci_low", "ci_high"]].tolist() == [1.0, 1.0, 1.0]
    fig = plots.f1_intervals(got)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith(f"{got.loc['m', 'f1']:.3f}  [") for t in texts), texts      # 3 decimals
    plt.close("all")


def test_bootstrap_f1_diff_is_the_paired_interval_of_a_plain_loop():
    """The interval of F1(other) - F1(base) from an independent loop with sklearn: the same
    resampled indices as ``bootstrap_f1`` (same seed), both models scored on each resample, the
    2.5 / 97.5% quantiles of the per-resample differences; identical predictions give [0, 0]; two
    models that differ on one sample get a paired interval under half as wide as their own."""
    from sklearn.metrics import f1_score

    def f1(y, p):
        return f1_score(y, p, labels=np.unique(y), average="macro", zero_division=0)

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 40)
    a = np.where(rng.random(40) < 0.7, y, rng.integers(0, 3, 40))
    b = np.where(rng.random(40) < 0.6, y, rng.integers(0, 3, 40))
    got = plots.bootstrap_f1_diff(y, a, b, 3, n_boot=200, seed=4)
    idx = np.random.default_rng(4).integers(0, 40, (200, 40))
    diffs = [f1(y[i], a[i]) - f1(y[i], b[i]) for i in idx]
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert got["ci_low"] == pytest.approx(lo) and got["ci_high"] == pytest.approx(hi)
    assert got["diff"] == pytest.approx(f1(y, a) - f1(y, b))
    assert (got["n"], got["n_boot"], got["level"]) == (40, 200, 0.95)
    same = plots.bootstrap_f1_diff(y, a, a.copy(), 3, n_boot=50)
    assert (same["diff"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    one = a.copy()
    one[np.flatnonzero(a == y)[0]] = (y[np.flatnonzero(a == y)[0]] + 1) % 3    # a right, one wrong: one sample apart
    pair = plots.bootstrap_f1_diff(y, a, one, 3, n_boot=100, seed=4)
    own = plots.bootstrap_f1(y, {"a": a}, 3, n_boot=100, seed=4)
    assert 0 <= pair["ci_low"] <= pair["diff"] <= pair["ci_high"]
    assert pair["ci_high"] - pair["ci_low"] < 0.5 * (own.loc["a", "ci_high"] - own.loc["a", "ci_low"])
    with pytest.raises(ValueError, match="one entry per test sample"):
        plots.bootstrap_f1_diff(y, a, b[:10], 3)


def test_f1_change_is_neutral_and_shows_counts():
    classes = ["a", "b"]
    base = np.array([[8, 2], [1, 9]])
    other = np.array([[9, 1], [2, 8]])                     # a gains, b loses
    change = report.per_class_change(base, other, classes)
    assert (change["delta_f1"] > 0).any() and (change["delta_f1"] < 0).any()
    fig = plots.f1_change(change, conf_base=base, conf_other=other, classes=classes)
    ax = fig.axes[0]
    colours = {tuple(np.round(b.get_facecolor(), 3)) for b in ax.patches}
    assert len(colours) == 1                                    # one colour: no red / green verdict
    texts = {t.get_text() for t in ax.texts}
    assert any("right 8 → 9 of 10" in t for t in texts), texts
    assert any("right 9 → 8 of 10" in t for t in texts), texts
    plt.close("all")


def test_confusion_pair_colours_the_share_of_each_true_class():
    """Colour = row-normalised confusion (the share of each true class, recall on the diagonal),
    numbers = counts, title = accuracy (trace over total); computed by hand."""
    a = np.array([[3, 1, 0], [2, 2, 4], [0, 0, 5]])
    b = np.array([[4, 0, 0], [1, 6, 1], [0, 1, 4]])
    fig = plots.confusion_pair(a, b, ["x", "y", "z"])
    for ax, c, acc in zip(fig.axes[:2], (a, b), (10 / 17, 14 / 17)):
        share = np.asarray(ax.collections[0].get_array()).reshape(3, 3)
        by_hand = [[c[i, j] / sum(c[i]) for j in range(3)] for i in range(3)]
        np.testing.assert_allclose(share, by_hand)
        assert sorted(int(t.get_text()) for t in ax.texts) == sorted(c.ravel().tolist())
        assert f"(accuracy {acc:.3f})" in ax.get_title()
        # the axes name the classes in the matrix's order: rows true, columns predicted
        assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y", "z"]
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    plt.close("all")


def test_lambda_curve_draws_the_baselines_mean_and_std():
    base = [0.50, 0.52, 0.60]                                     # mean 0.54, median 0.52
    grid = pd.DataFrame({"variant": ["baseline"] * 3 + ["D-CAT"] * 3, "lam": [np.nan] * 3 + [1.0] * 3,
                         "seed": [0, 1, 2] * 2, "f1": base + [0.6, 0.6, 0.7]})
    ax = plots.lambda_curve(grid).axes[0]
    line = next(ln for ln in ax.lines if ln.get_label() == "baseline (mean)")
    assert line.get_ydata()[0] == pytest.approx(np.mean(base))
    band = [p for p in ax.patches if p.get_alpha() == 0.08][0]
    band = band.get_patch_transform().transform(band.get_path().vertices)[:, 1]    # y in data units
    assert (band.min(), band.max()) == pytest.approx((np.mean(base) - np.std(base, ddof=1),
                                                      np.mean(base) + np.std(base, ddof=1)))
    plt.close("all")


def test_transfer_curves_points_in_x_order_with_one_std_bars():
    rows = pd.DataFrame({"regime": "headroom", "method": ["none", "none", "none"], "n_samples": [1000, 300, 2000],
                         "mean": [0.7, 0.6, 0.8], "std": [0.01, 0.02, np.nan]})
    ax = plots.transfer_curves(rows).axes[0]
    bars = ax.containers[0]
    assert list(bars.lines[0].get_xdata()) == [300, 1000, 2000] and list(bars.lines[0].get_ydata()) == [0.6, 0.7, 0.8]
    ends = sorted((float(seg[0][0]), float(seg[0][1]), float(seg[1][1])) for seg in bars.lines[2][0].get_segments())
    np.testing.assert_allclose(ends, [(300, 0.58, 0.62), (1000, 0.69, 0.71), (2000, 0.8, 0.8)])   # mean -+ std (NaN: 0)
    plt.close("all")


def test_training_curves_in_words_with_integer_epochs():
    h = pd.DataFrame({"epoch": [1, 2, 3], "train_ce": [2.0, 1.5, 1.2], "val_f1": [0.3, 0.5, 0.6]})
    fig = plots.training_curves({"run": h}, ("train_ce", "val_f1"))
    a, b = fig.axes
    assert a.get_title() == "training cross-entropy (mean over the epoch's batches)" and a.get_ylabel() == "L_CE (Eq. 18)"
    assert b.get_ylabel() == "macro-F1"
    fig.canvas.draw()
    ticks = [t for t in a.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    plt.close("all")


def test_a_run_has_one_colour_in_every_panel():
    """Notebook 03's right panel shows train_mask_frac of D-CAT only: it was drawn in the first
    colour of that panel's cycle, the baseline's colour in the only legend."""
    h = pd.DataFrame({"epoch": [1, 2], "train_ce": [2.0, 1.5], "train_mask_frac": [0.9, 0.95]})
    fig = plots.training_curves({"baseline": h.drop(columns="train_mask_frac"), "D-CAT": h},
                                ("train_ce", "train_mask_frac"))
    a, b = fig.axes
    legend = {ln.get_label(): ln.get_color() for ln in a.lines}
    assert [ln.get_label() for ln in b.lines] == ["D-CAT"] and b.lines[0].get_color() == legend["D-CAT"]
    assert legend["D-CAT"] != legend["baseline"]
    plt.close("all")


# --------------------------------------------------------------------------- the alignment explorer


@pytest.fixture(scope="module")
def pair_models(splits):
    from dcatkit.model import build_model

    torch.manual_seed(0)
    src = build_model("video", 8, splits.train.input_shape("video"), TINY["video"]).eval()
    tgt = build_model("imu", 8, splits.train.input_shape("imu"), TINY["imu"]).eval()
    return src, tgt


def test_alignment_state_is_eq7_per_sample(splits, pair_models, tmp_path):
    from dcatkit import explore
    from dcatkit.losses import cross_attention_loss_dense

    src, tgt = pair_models
    batch = explore.stack(splits.train, range(6))
    st = explore.alignment_state(src, tgt, batch, "video", "imu", mcma=True)
    with torch.no_grad():
        a, b = src(batch["video"]), tgt(batch["imu"])
    for i in range(6):                                  # per sample: the dense formula on a batch of one
        want = cross_attention_loss_dense(b.k[i:i + 1], b.v[i:i + 1], a.k[i:i + 1], a.v[i:i + 1])
        assert st.per_sample[i] == pytest.approx(float(want), abs=1e-5)
    np.testing.assert_array_equal(st.mask, (a.logits.argmax(1) == batch["label"]).numpy())
    kept = st.per_sample[st.mask]
    assert st.l_ca == pytest.approx(kept.mean() if len(kept) else 0.0, abs=1e-5)    # Eq. 17: mean over kept
    assert np.allclose(np.linalg.norm(st.target_kv.reshape(6, -1), axis=1), 1)
    assert explore.cosine_of(np.sqrt(2)) == pytest.approx(0) and explore.cosine_of(0.0) == 1
    assert explore.cosine_of(2.0) == pytest.approx(-1)
    fig = explore.alignment_figure(st, 0)
    _png(plots.save(fig, tmp_path, "al"))
    with pytest.raises(ValueError, match="sample must be in 0 .. 5"):
        explore.alignment_figure(st, 6)
    plt.close("all")


def test_quick_steps_trains_a_copy_and_lambda_moves_l_ca(splits, pair_models):
    from dcatkit import explore

    src, tgt = pair_models
    before = {k: v.clone() for k, v in tgt.state_dict().items()}
    batches = explore.train_batches(splits.train, 6, size=16)
    ev = explore.stack(splits.val, range(len(splits.val)))
    _, off = explore.quick_steps(src, tgt, batches, ev, "video", "imu", lam=0.0, mcma=False, lr=3e-3)
    _, on = explore.quick_steps(src, tgt, batches, ev, "video", "imu", lam=100.0, mcma=False, lr=3e-3)
    assert all(torch.equal(before[k], v) for k, v in tgt.state_dict().items())   # the target is untouched
    assert [r["step"] for r in on] == list(range(7)) and off[0] == on[0]
    assert on[-1]["l_ca"] < off[-1]["l_ca"] - 0.01       # a large lambda aligns; lambda 0 does not try
    # without MCMA the watched L_CA is the mean over every sample (Eq. 7 per sample, by hand)
    st = explore.alignment_state(src, tgt, batches[0], "video", "imu", mcma=False)
    assert not st.mask.all()                              # the source is wrong on some: a mask would matter
    assert off[0]["l_ca"] == pytest.approx(float(st.per_sample.mean()), abs=1e-5)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        explore.quick_steps(src, tgt, batches, ev, "video", "imu", lam=-1.0)


def test_alignment_explorer_widget(splits, pair_models):
    pytest.importorskip("ipywidgets", reason="the alignment explorer is an ipywidgets widget (CI installs it)")
    from dcatkit import explore

    src, tgt = pair_models
    batch = explore.stack(splits.train, range(6))
    w = explore.alignment_explorer(src, tgt, batch, explore.train_batches(splits.train, 3, size=8),
                                   explore.stack(splits.val, range(8)), "video", "imu")
    lam_w, mcma_w, sample_w = w.children[0].children
    steps_w, button = w.children[1].children
    info = w.children[2]
    assert "L_CA = " in info.value and "λ = 1, untrained target" in info.value
    assert steps_w.value == 3                             # all the batches, as the static figure's quick_steps
    button.click()                                        # quick steps run, the view redraws
    assert "after 3 steps" in info.value
    mcma_w.value = False
    assert "drops 0 of 6" in info.value                   # no mask: nothing dropped
    # the notebook's lam is what the explorer shows and trains at: 0 (no transfer) and values off 0.01 .. 100
    for lam in (0.0, 0.001, 1000.0):
        w = explore.alignment_explorer(src, tgt, batch, explore.train_batches(splits.train, 2, size=8),
                                       explore.stack(splits.val, range(8)), "video", "imu", lam=lam)
        assert w.children[0].children[0].value == pytest.approx(lam) and f"λ = {lam:g}," in w.children[2].value


# --------------------------------------------------------------------------- per-subject view


def test_per_subject_by_hand():
    from dcatkit import runs

    y = np.array([0, 1, 0, 1, 0, 1])
    pb = np.array([0, 0, 0, 1, 1, 1])                     # subject 1: 1 wrong; subject 2: 1 wrong
    po = np.array([0, 1, 0, 1, 0, 0])                     # subject 1: fixed 1; subject 2: fixed 1, broke 1
    subj = np.array([1, 1, 1, 2, 2, 2])
    df = runs.per_subject(y, pb, po, subj, 2)
    # rows sorted by delta_f1: subject 2 gains 2/3 - 0.4 (F1 2/3 on both classes), subject 1 gains 1 - 0.4
    assert df["subject"].tolist() == [2, 1] and df["delta_f1"].tolist() == pytest.approx([2 / 3 - 0.4, 0.6])
    df = df.set_index("subject")
    assert df.loc[1, ["n", "fixed", "broke", "net"]].tolist() == [3, 1, 0, 1]
    assert df.loc[2, ["n", "fixed", "broke", "net"]].tolist() == [3, 1, 1, 0]
    assert df.loc[1, "f1_other"] == 1.0 and df.loc[1, "f1_baseline"] == pytest.approx((0.8 + 0.0) / 2)
    assert runs.subject_summary(df.reset_index()) == {"subjects": 2, "helped": 1, "hurt": 0, "same": 1,
                                                      "fixed": 2, "broke": 1}
    fig = plots.subject_change(df.reset_index())
    assert any("fixed 1, broke 1 of 3" in t.get_text() for t in fig.axes[0].texts)
    # the label's ΔF1 is the difference of the F1s as printed: 0.629 and 0.416 show -0.213 (notebook 05
    # labelled the unrounded -0.2135 as -0.214 beside a table printing 0.629 and 0.416)
    odd = pd.DataFrame({"subject": [2], "n": [117], "f1_baseline": [0.6294], "f1_other": [0.4159],
                        "delta_f1": [0.4159 - 0.6294], "fixed": [22], "broke": [44]})
    assert [t.get_text() for t in plots.subject_change(odd).axes[0].texts] == ["-0.213 (fixed 22, broke 44 of 117)"]
    with pytest.raises(ValueError, match="1-D of one length"):
        runs.per_subject(y, pb[:3], po, subj, 2)
    plt.close("all")


def test_demo_batch_and_train_batches_sizes_and_distinct_samples(monkeypatch):
    """demo_batch: ``size`` samples, the first ``wrong`` the source gets wrong among them;
    train_batches: ``n`` batches of ``size`` distinct samples each (no sample twice in a batch)."""
    import dcatkit.train as train_mod
    from dcatkit import explore

    ds = [{"imu": torch.full((2,), float(i)), "label": i % 2} for i in range(30)]
    y = np.array([d["label"] for d in ds])
    p = y.copy()
    p[[3, 7, 11, 20, 25]] = 1 - y[[3, 7, 11, 20, 25]]          # the source is wrong on 5 samples
    monkeypatch.setattr(train_mod, "predict", lambda *a, **k: (y, p))
    batch, n_wrong = explore.demo_batch(ds, None, "imu", size=10, wrong=4)
    idx = batch["imu"][:, 0].long().tolist()
    assert n_wrong == 4 and len(idx) == 10
    assert idx == sorted([3, 7, 11, 20] + [0, 1, 2, 4, 5, 6])   # the 4 first wrong, then the 6 first right
    for b in explore.train_batches(ds, 20, size=25, seed=1):
        got = b["imu"][:, 0].long().tolist()
        assert len(got) == 25 == len(set(got))


def test_quick_steps_are_reproducible_by_their_seed(splits, pair_models):
    """The explorer's steps draw their dropout from ``seed``, not from whatever the notebook drew
    before: the same seed gives the same records after other draws, another seed other ones."""
    from dcatkit import explore
    from dcatkit.model import build_model

    src, _ = pair_models
    torch.manual_seed(1)
    tgt = build_model("imu", 8, splits.train.input_shape("imu"), TINY["imu"].with_(dropout=0.5))
    batches = explore.train_batches(splits.train, 2, size=16)
    ev = explore.stack(splits.val, range(len(splits.val)))

    def steps(seed):
        return explore.quick_steps(src, tgt, batches, ev, "video", "imu", lam=1.0, lr=1e-2, seed=seed)[1]

    first = steps(3)
    torch.rand(1000)                                      # the notebook draws something in between
    assert steps(3) == first != steps(4)


def test_sample_figure_draws_your_own_sensors_by_kind():
    """Names other than imu / video / audio are drawn by their kinds (a panel each), not left
    out: a timeseries as one line per channel, features as a time x feature image."""
    from dcatkit.data import from_arrays

    rng = np.random.default_rng(0)
    sp = from_arrays({"gyro": rng.normal(size=(40, 3, 16)), "emb": rng.normal(size=(40, 5, 7))},
                     np.arange(40) % 4, groups="samples", kinds={"gyro": "timeseries", "emb": "features"})
    fig = plots.sample_figure(sp.train, 0)
    gyro, emb = fig.axes
    assert gyro.get_title().startswith("gyro (min-max") and len(gyro.get_lines()) == 3
    assert emb.get_title() == "emb (features)" and emb.get_images()[0].get_array().shape == (7, 5)
    plt.close(fig)


def test_an_interval_wholly_below_zero_is_filled_like_one_above():
    """Filled = the interval excludes 0, on either side: a clear loss is a call as much as a
    clear gain (paired_intervals and pooled_intervals alike); only an interval holding 0 is
    hollow. (The older tests had clear gains and zero-holding intervals only.)"""
    s = _two_lambdas()                                       # dcat λ = 1: [0.04, 0.06]; λ = 100: [-0.21, -0.19]
    ax = plots.paired_intervals(s).axes[0]
    filled = {round(float(p.get_xdata()[0]), 3): p.get_markerfacecolor() != "white"
              for p in ax.lines if len(p.get_xdata()) == 1}
    assert filled == {0.05: True, -0.2: True}
    pooled = _pooled(["none", "dcat", "kd", "fitnet"])      # diff_mean 0.01, 0.02, 0.03; every interval holds 0
    pooled.loc[pooled.method == "kd", ["diff_mean", "ci_low", "ci_high"]] = [-0.05, -0.08, -0.02]
    pooled.loc[pooled.method == "fitnet", ["diff_mean", "ci_low", "ci_high"]] = [0.05, 0.02, 0.08]
    ax = plots.pooled_intervals(pooled).axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    filled = {names[int(round(ln.get_ydata()[0]))]: ln.get_markerfacecolor() != "white"
              for ln in ax.lines if ln.get_marker() == "o"}
    assert filled == {"dcat, n = 300": False, "kd, n = 300": True, "fitnet, n = 300": True}
    plt.close("all")


def test_pooled_crosses_are_each_rows_own_draws():
    """pooled_intervals' grey crosses on a row are that row's per-draw means only: its method,
    λ and size, not those of the method's other λ or sizes."""
    pooled = pd.DataFrame([{"study": "s", "method": m, "lam": lam, "size": n, "unit": "recordings",
                            "diff_mean": 0.0, "ci_low": -0.1, "ci_high": 0.1, "metric": "f1"}
                           for m, lam, n in (("none", 1.0, 300), ("dcat", 1.0, 300), ("dcat", 30.0, 300),
                                             ("dcat", 1.0, 1000))])
    draws = {(1.0, 300): [0.01, 0.02], (30.0, 300): [-0.03, -0.04, -0.05], (1.0, 1000): [0.07]}
    per_draw = pd.DataFrame([{"study": "s", "method": "dcat", "lam": lam, "size": n, "data_seed": i,
                              "diff_mean": v} for (lam, n), vs in draws.items() for i, v in enumerate(vs)])
    ax = plots.pooled_intervals(pooled, per_draw).axes[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    crosses = {names[int(round(ln.get_ydata()[0]))]: sorted(np.round(ln.get_xdata(), 3).tolist())
               for ln in ax.lines if ln.get_marker() == "x" and len(ln.get_xdata())}
    assert crosses == {"dcat, λ = 1, n = 300": [0.01, 0.02], "dcat, λ = 30, n = 300": [-0.05, -0.04, -0.03],
                       "dcat, λ = 1, n = 1000": [0.07]}
    plt.close("all")


def test_every_pooled_row_is_drawn_and_says_its_lambda():
    """pooled_intervals dropped λ = 1 from every untuned row's label: beside "dcat, λ = 30, n = 300"
    the λ = 1 row read "dcat, n = 300", its λ hidden. Now every row of a method that the figure has
    at another λ than 1 says its λ; a method the study has at λ = 1 only (as notebook 06's printed
    tables name it) and a tuned cell (λ chosen per seed, lam 0) keep their names.
    Every row is drawn: its point at its diff_mean, its interval."""
    cells = [("a", "none", 0.0), ("a", "dcat", 1.0), ("a", "dcat", 30.0), ("a", "dcat (tuned)", 0.0),
             ("a", "kd", 1.0), ("b", "none", 0.0), ("b", "dcat", 1.0), ("b", "kd", 1.0)]
    pooled = pd.DataFrame([{"study": s, "method": m, "lam": lam, "size": 300, "unit": "recordings",
                            "diff_mean": 0.01 * i, "ci_low": 0.01 * i - 0.03, "ci_high": 0.01 * i + 0.03,
                            "metric": "f1"} for i, (s, m, lam) in enumerate(cells)])
    a, b = plots.pooled_intervals(pooled).axes
    assert [t.get_text() for t in a.get_yticklabels()] == ["dcat, λ = 1, n = 300", "dcat, λ = 30, n = 300",
                                                           "dcat (tuned), n = 300", "kd, n = 300"]
    assert [t.get_text() for t in b.get_yticklabels()] == ["dcat, n = 300", "kd, n = 300"]
    for ax, want in ((a, [0.01, 0.02, 0.03, 0.04]), (b, [0.06, 0.07])):
        points = sorted((round(float(ln.get_ydata()[0])), round(float(ln.get_xdata()[0]), 3))
                        for ln in ax.lines if ln.get_marker() == "o")
        assert points == list(enumerate(want))
        segs = sorted(round(float(ln.get_xdata()[0]), 3) for ln in ax.lines
                      if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] != ln.get_xdata()[1])   # not the zero line
        assert segs == pytest.approx([w - 0.03 for w in want])
    plt.close("all")


def test_lambda_curve_title_counts_seeds_not_rows():
    """lambda_curve's title gives the number of seeds its mean ± std is over: the distinct
    seeds (3 here), not the rows (3 seeds × baseline and two λ = 9)."""
    grid = pd.DataFrame({"variant": ["baseline"] * 3 + ["D-CAT"] * 6, "lam": [np.nan] * 3 + [1.0] * 3 + [10.0] * 3,
                         "seed": [0, 1, 2] * 3, "f1": [0.5, 0.52, 0.6, 0.6, 0.6, 0.7, 0.55, 0.6, 0.62]})
    assert plots.lambda_curve(grid).axes[0].get_title() == "test macro-F1 against λ (mean ± std over 3 seeds)"
    one = grid[grid.seed == 0]
    assert plots.lambda_curve(one).axes[0].get_title() == "test macro-F1 against λ (mean ± std over 1 seed)"
    plt.close("all")


def test_figures_read_as_their_text_says():
    """What a reader misread in the committed figures (figures audit, 2026-12-07): F1 and share axes
    ticked at 1.05..1.15 (impossible values, room left for labels); negative bar labels whose minus
    sign vanished in the theme's grid line through their row (05: '-0.213' read as '0.213');
    training curves that did not say an epoch's value is the mean over its batches; 04's 'test f1';
    a colour bar without its quantity."""
    scores = pd.DataFrame({"f1": [0.986, 0.815], "ci_low": [0.965, 0.751], "ci_high": [1.0, 0.874], "n": 150},
                          index=["video source", "imu baseline"])
    ax = plots.f1_intervals(scores).axes[0]
    assert max(ax.get_xticks()) <= 1 and ax.get_xlim()[1] > 1.05           # room kept, no tick past 1
    h = pd.DataFrame({"epoch": [1, 2, 3], "train_ce": [2.0, 1.5, 1.2], "train_mask_frac": [0.974] * 3,
                      "val_f1": [0.97, 0.99, 1.0]})
    fig = plots.training_curves({"D-CAT": h}, ("train_ce", "train_mask_frac", "val_f1"))
    ce, share, f1 = fig.axes
    assert "mean over the epoch's batches" in ce.get_title()
    for a in (share, f1):
        assert max(a.get_yticks()) <= 1 + 1e-9 and a.get_ylim()[1] >= 1, (a.get_title(), a.get_yticks())
    base, other = np.array([[8, 2], [1, 9]]), np.array([[9, 1], [2, 8]])
    change = report.per_class_change(base, other, ["a", "b"])
    odd = pd.DataFrame({"subject": [2], "n": [117], "f1_baseline": [0.6294], "f1_other": [0.4159],
                        "delta_f1": [0.4159 - 0.6294], "fixed": [22], "broke": [44]})
    import seaborn as sns

    with sns.axes_style("whitegrid"):                                        # the notebooks' theme: a grid
        drawn = (plots.f1_change(change).axes[0], plots.subject_change(odd).axes[0])
    for ax in drawn:
        assert not any(g.get_visible() for g in ax.yaxis.get_gridlines())   # no line through a label's row
        assert any(g.get_visible() for g in ax.xaxis.get_gridlines())       # (the theme's x grid stays)
        for t in ax.texts:
            box = t.get_bbox_patch()
            assert box is not None and box.get_facecolor()[:3] == (1.0, 1.0, 1.0), t.get_text()
    (neg,) = plots.subject_change(odd).axes[0].texts
    assert neg.get_window_extent().x0 >= neg.axes.get_window_extent().x0       # inside the axes, not on the spine
    grid = pd.DataFrame({"variant": ["baseline", "dcat (MCMA)"] * 2, "lam": [np.nan, 1.0] * 2,
                         "f1": [0.8, 0.81, 0.82, 0.79], "seed": [0, 0, 1, 1]})
    ax = plots.lambda_curve(grid).axes[0]
    assert ax.get_ylabel() == "test macro-F1"
    fig = plots.confusion_pair(base, other, ["a", "b"])
    assert fig.axes[-1].get_ylabel() == "share of the true class"               # the colour bar
    plt.close("all")
