"""What dcatkit.explore shows, against the tables it reads and plain computations: notebook
06's results cell (runs of one study, size, method and lambda; the pooled and per-draw rows),
its figure's data (dots, bars, intervals, filled marks) and text, and the alignment view of
notebook 03 (panels, bars, titles; L_CA without MCMA; masked-out samples out of the quick steps)."""
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dcatkit import explore, stats, studies  # noqa: E402

EFFECT = {300: [0.06, 0.07, 0.08], 1000: [-0.05, -0.06, -0.04]}       # helps at 300, hurts at 1000


def _tidy():
    """One study, two sizes (one Holm family of two cells), a second study that must not leak in.
    Rows of the larger size come first."""
    rng = np.random.default_rng(0)
    rows = []
    for study, shift in (("s", 0.0), ("other", 0.2)):
        for size in (1000, 300):
            for d in range(3):
                for seed in range(10):
                    b = 0.5 + shift + 0.03 * d + 0.01 * seed + (0.1 if size == 1000 else 0.0)
                    v = b + EFFECT[size][d] + rng.normal(0, 0.004)
                    for m, lam, val in (("none", 0.0, b), ("dcat", 1.0, v)):
                        rows.append(dict(study=study, kind="main", method=m, lam=lam, size=size, unit="recordings",
                                         data_seed=d, seed=seed, metric="f1", value=val, f1=val, recall=val,
                                         source_f1=0.9))
    return pd.DataFrame(rows, columns=list(studies.TIDY))


def _by_hand(tidy, size):
    """{draw: (baseline values, dcat values, mean paired difference)} of study s at ``size``."""
    out = {}
    for d in range(3):
        t = tidy[(tidy.study == "s") & (tidy["size"] == size) & (tidy.data_seed == d)]
        b = t[t.method == "none"].set_index("seed").value.sort_index()
        a = t[t.method == "dcat"].set_index("seed").value.sort_index()
        out[d] = (b.to_numpy(), a.to_numpy(), float((a - b).mean()))
    return out


@pytest.fixture(scope="module")
def tables():
    tidy = _tidy()
    pooled, per = studies.pooled_verdicts(tidy)
    return tidy, pooled, per.sample(frac=1.0, random_state=1)           # per-draw rows in no order


def test_results_choices_list_sizes_in_ascending_order(tables):
    tidy, _, _ = tables
    assert explore.results_choices(tidy)["s"]["sizes"] == [300, 1000]


@pytest.mark.parametrize("size", [300, 1000])
def test_results_cell_takes_the_rows_of_its_own_size_and_study(tables, size):
    tidy, pooled, per = tables
    cell = explore.results_cell(tidy, pooled, per, "s", "dcat", 1.0, size)
    hand = _by_hand(tidy, size)
    draw_means = [hand[d][2] for d in range(3)]
    assert cell["pooled"]["size"] == size and cell["pooled"]["diff_mean"] == pytest.approx(np.mean(draw_means))
    assert cell["per_draw"]["data_seed"].tolist() == [0, 1, 2]
    assert cell["per_draw"]["diff_mean"].tolist() == pytest.approx(draw_means)
    assert sorted(cell["base"]["value"]) == pytest.approx(sorted(np.concatenate([hand[d][0] for d in range(3)])))
    assert sorted(cell["arm"]["value"]) == pytest.approx(sorted(np.concatenate([hand[d][1] for d in range(3)])))
    # the text: each draw's own mean difference, in draw order
    assert cell["text"].endswith("per draw " + ", ".join(stats.signed(m) for m in draw_means))
    # its family named as the verdict lines name it (it printed "(holm within the study, t on draw means)")
    assert "(Holm over 2 cells, 95% family-wise; t on draw means): " in cell["text"], cell["text"]


def _point_x(ln):
    return float(np.mean(ln.get_xdata()))


@pytest.mark.parametrize("size", [300, 1000])
def test_results_figure_draws_the_cells_runs_and_intervals(tables, size):
    tidy, pooled, per = tables
    cell = explore.results_cell(tidy, pooled, per, "s", "dcat", 1.0, size)
    hand = _by_hand(tidy, size)
    fig = explore.results_figure(cell)
    a, b = fig.axes[:2]
    # left: per draw i, the baseline's dots left of i and the method's right of it; a bar at each mean
    seen = set()
    for ln in a.lines:
        x, y = _point_x(ln), np.asarray(ln.get_ydata(), float)
        i, j = int(round(x)), int(x > round(x))               # j = 0 baseline (left), 1 the method (right)
        want = hand[i][j]
        if ln.get_marker() == "o":
            assert sorted(y) == pytest.approx(sorted(want)), (i, j)
            seen.add((i, j))
        else:                                                  # the draw's mean, as a bar
            assert list(y) == pytest.approx([np.mean(want)] * 2), (i, j)
    assert seen == {(i, j) for i in range(3) for j in (0, 1)}
    # right: each draw's own interval and mean difference, then the pooled (family-adjusted) one
    row = cell["pooled"]
    if size == 300:                                  # Holm's first cell of 2 (alpha / 2): not the cell's own
        assert row["level"] > row["confidence"] and not np.isclose(row["ci_low"], row["ci_low_cell"])
    names = [t.get_text() for t in b.get_yticklabels()]
    draws = cell["per_draw"].set_index("data_seed")
    for ln in b.lines:
        if ln.get_xdata()[0] == 0 and len(ln.get_xdata()) == 2 and ln.get_xdata()[1] == 0:
            continue                                               # the zero line
        y = ln.get_ydata()[0]
        name = names[int(np.argmin(np.abs(np.asarray(b.get_yticks()) - y)))]
        if name.startswith("pooled"):
            lo, hi, mean = row["ci_low"], row["ci_high"], row["diff_mean"]
        else:
            d = draws.loc[int(name.split()[1])]
            lo, hi, mean = d["ci_low"], d["ci_high"], d["diff_mean"]
        want = [lo, hi] if len(ln.get_xdata()) == 2 else [mean]
        assert list(ln.get_xdata()) == pytest.approx(want), name
    # a call either way is filled: "helps" at 300, "hurts" at 1000
    assert row["call"] == ("helps" if size == 300 else "hurts")
    pooled_point = [ln for ln in b.lines if len(ln.get_xdata()) == 1][-1]
    assert pooled_point.get_markerfacecolor() != "white"
    # the kit's colours (plots.colours): the baseline black, the method its own, its pooled bar too
    from dcatkit.plots import colours

    pal = colours(["baseline", "dcat"])
    assert {ln.get_color() for ln in a.lines if _point_x(ln) < round(_point_x(ln))} == {pal["baseline"]}
    assert {ln.get_color() for ln in a.lines if _point_x(ln) > round(_point_x(ln))} == {pal["dcat"]}
    assert pooled_point.get_color() == pal["dcat"]
    plt.close("all")


# --------------------------------------------------------------------------- the alignment view


def _state(mcma=True):
    rng = np.random.default_rng(3)
    t, s = rng.normal(size=(4, 5, 5)), rng.normal(size=(4, 5, 5)) * 3
    return explore.AlignmentState(t, s, np.array([0.3, 1.1, 0.7, 1.9]), np.array([True, False, True, True]),
                                  np.array([2, 0, 1, 2]), np.array([2, 1, 1, 0]), 0.5, mcma, 10.0,
                                  steps=[{"step": 0, "l_ca": 1.2, "ce": 2.0, "f1": 0.1},
                                         {"step": 1, "l_ca": 0.9, "ce": 1.5, "f1": 0.4}])


def test_alignment_figure_shows_each_matrix_the_bars_and_the_steps():
    st = _state()
    fig = explore.alignment_figure(st, sample=1, classes=["a", "b", "c"])
    target, source, bars, steps = fig.axes[:4]
    np.testing.assert_allclose(target.get_images()[0].get_array(), st.target_kv[1])
    np.testing.assert_allclose(source.get_images()[0].get_array(), st.source_kv[1])
    lim = max(np.abs(st.target_kv[1]).max(), np.abs(st.source_kv[1]).max())
    for ax in (target, source):                        # one colour scale, symmetric, holding both matrices
        assert ax.get_images()[0].get_clim() == pytest.approx((-lim, lim))
    assert [p.get_height() for p in bars.patches] == pytest.approx(st.per_sample.tolist())
    assert "1 of 4 dropped" in bars.get_title()                       # the one the source got wrong
    assert [ln.get_ydata().tolist() for ln in steps.lines] == [[1.2, 0.9]]          # L_CA on the left axis
    twin = [ax for ax in fig.axes if ax is not steps and ax.bbox.bounds == steps.bbox.bounds]
    assert [ln.get_ydata().tolist() for ln in twin[0].lines] == [[0.1, 0.4]]        # F1 on the right one
    # both on their whole range, as the batch panel: notebook 03's 20 steps moved L_CA 1.414 -> 1.408, which
    # an autoscaled axis of 1.408 .. 1.416 drew as a steep fall beside the text's "barely move"
    assert steps.get_ylim() == (0, 2) == bars.get_ylim() and twin[0].get_ylim() == (0, 1)
    # sample 1 is of class a (its label), which the source took for b
    assert fig._suptitle.get_text().startswith("sample 1 (class a): L_CA = 1.100")
    assert fig._suptitle.get_text().endswith("source wrong")
    # MCMA off: every bar in the kept colour, none dropped
    off = explore.alignment_figure(_state(mcma=False), sample=0)
    colours = {tuple(p.get_facecolor()) for p in off.axes[2].patches}
    assert len(colours) == 1 and "0 of 4 dropped" in off.axes[2].get_title()
    plt.close("all")


class _Source(torch.nn.Module):
    """A frozen source stand-in: x[:, 0, :K] are its logits, x[:, 1:] its keys and values."""

    def __init__(self, k):
        super().__init__()
        self.k_ = k

    def forward(self, x):
        return types.SimpleNamespace(logits=x[:, 0, :self.k_], k=x[:, 1:], v=x[:, 1:].flip(-1))


class _Target(torch.nn.Module):
    def __init__(self, f, d, k):
        super().__init__()
        self.wk, self.wv, self.wc = torch.nn.Linear(f, d), torch.nn.Linear(f, d), torch.nn.Linear(f, k)

    def forward(self, x):
        return types.SimpleNamespace(logits=self.wc(x.mean(1)), k=self.wk(x), v=self.wv(x))


def _batch(rng, n=6, t=5, d=4, k=3, f=3):
    y = torch.as_tensor(rng.integers(0, k, n))
    src = torch.as_tensor(rng.normal(size=(n, t + 1, d)), dtype=torch.float32)
    src[:, 0, :k] = -5.0
    wrong = torch.as_tensor(np.arange(n) % 3 == 0)                  # the source is wrong on samples 0 and 3
    pred = torch.where(wrong, (y + 1) % k, y)
    src[torch.arange(n), 0, pred] = 5.0
    return {"src": src, "tgt": torch.as_tensor(rng.normal(size=(n, t, f)), dtype=torch.float32), "label": y}, wrong


def _per_sample_lca(b, a):
    def unit(k, v):
        m = k.transpose(1, 2).double() @ v.double()
        return m / m.flatten(1).norm(dim=1)[:, None, None]
    return (unit(b.k, b.v) - unit(a.k, a.v)).flatten(1).norm(dim=1)


def test_alignment_state_without_mcma_is_the_mean_over_every_sample():
    rng = np.random.default_rng(0)
    batch, wrong = _batch(rng)
    src, tgt = _Source(3), _Target(3, 4, 3)
    with torch.no_grad():
        per = _per_sample_lca(tgt(batch["tgt"]), src(batch["src"])).numpy()
    on = explore.alignment_state(src, tgt, batch, "src", "tgt", mcma=True)
    off = explore.alignment_state(src, tgt, batch, "src", "tgt", mcma=False)
    np.testing.assert_array_equal(on.mask, ~wrong.numpy())
    assert on.l_ca == pytest.approx(per[~wrong.numpy()].mean(), abs=1e-6)
    assert off.l_ca == pytest.approx(per.mean(), abs=1e-6)


def test_quick_steps_with_mcma_never_read_the_samples_the_source_gets_wrong():
    """With MCMA, the keys and values of a sample the source misclassifies are out of the
    loss (Eq. 16): changing them leaves the trained copy as it was; without MCMA they count."""
    rng = np.random.default_rng(1)
    batches, eval_batch = [_batch(rng)[0] for _ in range(2)], _batch(rng)[0]
    torch.manual_seed(0)
    tgt, src = _Target(3, 4, 3), _Source(3)
    moved = []
    for bt in batches:
        c = {k: v.clone() for k, v in bt.items()}
        wrong = torch.as_tensor(np.arange(len(c["label"])) % 3 == 0)
        c["src"][wrong, 1:] += 3.0 * torch.randn_like(c["src"][wrong, 1:])
        moved.append(c)

    def trained(bs, mcma):
        model, _ = explore.quick_steps(src, tgt, bs, eval_batch, "src", "tgt", lam=10.0, mcma=mcma, lr=1e-2,
                                       watch=batches[0])
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    torch.testing.assert_close(trained(batches, True), trained(moved, True))
    assert not torch.allclose(trained(batches, False), trained(moved, False))
