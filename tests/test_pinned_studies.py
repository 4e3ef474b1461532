"""Pins of dcatkit.studies found unpinned by the mutation audit: verdict_table's printed family
("1 cell", "N cells", "untested") and gradient_scale's batch count."""
import numpy as np
import pandas as pd
import pytest

from dcatkit import studies
from helpers import video_source_setup


def test_verdict_table_rows_and_the_family_in_words():
    """verdict_table's rows, string for string, from hand-made pooled and per-draw rows: a family of
    one cell reads "1 cell", of three "3 cells", an untested cell "untested" (no interval)."""
    cols = ["study", "method", "lam", "size", "unit", "metric", "baseline_mean", "paired_mean", "diff_mean", "ci_low",
            "ci_high", "family_size", "call", "draw_sd"]
    pooled = pd.DataFrame([
        ("neg", "none", 0.0, -1, "labels", "recall", 0.5, np.nan, np.nan, np.nan, np.nan, np.nan, "", np.nan),
        ("neg", "kd", 1.0, -1, "labels", "recall", 0.5, 0.512, 0.012, -0.004, 0.028, 1.0, "no evidence", 0.01),
        ("pos", "dcat", 30.0, 20, "labels", "f1", 0.6, 0.65, 0.05, 0.02, 0.08, 3.0, "helps", 0.02),
        ("pos", "kd", 1.0, 20, "labels", "f1", 0.6, 0.62, 0.02, np.nan, np.nan, np.nan, "too few draws", np.nan),
    ], columns=cols)
    per_draw = pd.DataFrame([
        ("neg", "kd", 1.0, -1, 1, 0.02, 7, 3, 10), ("neg", "kd", 1.0, -1, 0, 0.004, 5, 5, 10),
        ("pos", "dcat", 30.0, 20, 0, 0.05, 9, 1, 10), ("pos", "kd", 1.0, 20, 0, 0.0, 0, 0, 0),
    ], columns=["study", "method", "lam", "size", "data_seed", "diff_mean", "n_better", "n_worse", "n_pairs"])
    got = studies.verdict_table(pooled, per_draw).to_dict("records")
    keys = ["study", "method", "size", "metric", "baseline", "method mean", "Δ pooled [adjusted CI]", "call",
            "Δ per draw (seeds +/-)", "draw sd", "family"]
    want = [("neg", "kd", "all labels", "recall", "0.500", "0.512", "+0.012 [-0.004, +0.028]", "no evidence",
             "+0.004 (5/5); +0.020 (7/3)", "0.010", "1 cell"),
            ("pos", "dcat (λ = 30)", "20 labels", "f1", "0.600", "0.650", "+0.050 [+0.020, +0.080]", "helps",
             "+0.050 (9/1)", "0.020", "3 cells"),
            ("pos", "kd", "20 labels", "f1", "0.600", "0.620", "+0.020", "too few draws", "no pairs", "", "untested")]
    assert got == [dict(zip(keys, w)) for w in want]


@pytest.fixture(scope="module")
def setup():
    return video_source_setup()


def test_gradient_scale_averages_exactly_n_batches(setup, monkeypatch):
    """gradient_scale runs the target on exactly the first ``n_batches`` training batches (57
    recordings in batches of 32: 32 then 25; asking for more than there are uses all there are)
    and its norms are the means over those batches of the two gradients' norms."""
    import torch

    import dcatkit.experiment as E

    sp, src = setup
    build, grad = E._build, torch.autograd.grad
    seen, norms = [], []

    def counting_build(*a, **kw):
        model = build(*a, **kw)
        forward = model.forward
        model.forward = lambda x, *r, **k: (seen.append(len(x)), forward(x, *r, **k))[1]
        return model

    def recording_grad(outputs, inputs, *a, **kw):
        g = grad(outputs, inputs, *a, **kw)
        norms.append(float(torch.cat([x.reshape(-1) for x in g if x is not None]).norm()))
        return g

    monkeypatch.setattr(E, "_build", counting_build)
    monkeypatch.setattr(torch.autograd, "grad", recording_grad)
    for n, batches in ((1, [32]), (2, [32, 25]), (4, [32, 25])):
        seen.clear(), norms.clear()
        got = studies.gradient_scale(sp, src, "imu", method="kd", lam=1.0, n_batches=n)
        assert seen == batches, n
        assert len(norms) == 2 * len(batches)                     # per batch: CE's gradient, then the transfer's
        assert got["grad_ce"] == pytest.approx(np.mean(norms[0::2]), rel=1e-6)
        assert got["grad_transfer"] == pytest.approx(np.mean(norms[1::2]), rel=1e-6)
        assert got["ratio"] == pytest.approx(got["grad_transfer"] / got["grad_ce"])


def test_verdict_table_reads_each_lambdas_per_draw_rows_only():
    """One method at two lambdas in one study and size (no training: a made-up tidy table of
    runs): each verdict_table row's per-draw text is its own lambda's draws only (two draws,
    not the four of both lambdas), each draw's mean difference and seeds won / lost by hand."""
    diffs = {1.0: {0: [0.25, 0.25, 0.25, -0.25], 1: [0.5, 0.5, 0.5, 0.5]},           # +0.125 (3/1); +0.500 (4/0)
             30.0: {0: [-0.125] * 4, 1: [-0.25, -0.25, 0.25, -0.25]}}               # -0.125 (0/4); -0.125 (1/3)
    rows = []
    for d in (0, 1):
        for s in range(4):
            base = 2.0 + 0.5 * d + 0.125 * s
            rows.append(("none", 0.0, d, s, base))
            rows += [("dcat", lam, d, s, base + per[d][s]) for lam, per in diffs.items()]
    tidy = pd.DataFrame(rows, columns=["method", "lam", "data_seed", "seed", "value"]).assign(
        study="pos", kind="positive", size=20, unit="labels", metric="f1")
    tidy = tidy.assign(f1=tidy.value, recall=tidy.value, source_f1=0.9)[list(studies.TIDY)]
    pooled, per = studies.pooled_verdicts(tidy)
    table = studies.verdict_table(pooled, per).set_index("method")["Δ per draw (seeds +/-)"]
    by_hand = {}
    for lam, per_lam in diffs.items():
        by_hand[studies.method_label("dcat", lam)] = "; ".join(
            f"{np.mean(v):+.3f} ({sum(x > 0 for x in v)}/{sum(x < 0 for x in v)})" for v in per_lam.values())
    assert by_hand == {"dcat": "+0.125 (3/1); +0.500 (4/0)", "dcat (λ = 30)": "-0.125 (0/4); -0.125 (1/3)"}
    assert table.to_dict() == by_hand
