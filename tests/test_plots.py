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


def test_browser_builds(splits):
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
                             "diff_mean": d, "ci_low": d - 0.02, "ci_high": d + 0.02})
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
    _png(plots.save(fig, tmp_path, "intervals"))
    plt.close("all")
