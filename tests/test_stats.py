"""Seed statistics (dcatkit.stats) against known values and straightforward references:
Wilcoxon against a textbook example and an exact enumeration of sign patterns,
bootstrap intervals against a naive percentile loop and the normal-theory interval,
pairing against hand-computed differences, verdicts as exact sentences."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from dcatkit.stats import MIN_SEEDS, bootstrap_ci, call, summarise, verdict, wilcoxon_p

# Darwin's Zea mays data as analysed by Fisher: cross- minus self-fertilised heights
# (eighths of an inch), the textbook example of the signed-rank test (and scipy's).
ZEA = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75], dtype=float)


def exact_signed_rank_p(d):
    """Two-sided exact p of the signed-rank test by enumerating all 2^n sign patterns
    (no ties, no zeros): p = P(T+ <= t) + P(T+ >= n(n+1)/2 - t), t = min(T+, T-)."""
    n = len(d)
    ranks = sps.rankdata(np.abs(d))
    t_obs = min(ranks[d > 0].sum(), ranks[d < 0].sum())
    signs = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1          # (2^n, n): 1 = positive
    t_plus = signs @ ranks
    total = n * (n + 1) / 2
    return ((t_plus <= t_obs).sum() + (t_plus >= total - t_obs).sum()) / 2 ** n


def test_wilcoxon_textbook_and_enumeration():
    # W = sum of the ranks of the negative differences: ranks of 48 and 67 are 10 and 14 -> 24
    assert sps.rankdata(np.abs(ZEA))[ZEA < 0].sum() == 24
    assert wilcoxon_p(ZEA) == pytest.approx(0.041259765625, abs=1e-12)
    assert wilcoxon_p(ZEA) == pytest.approx(exact_signed_rank_p(ZEA), abs=1e-12)
    rng = np.random.default_rng(1)
    d = rng.normal(0.02, 0.05, 12)                                   # a 12-seed difference vector
    assert wilcoxon_p(d) == pytest.approx(exact_signed_rank_p(d), abs=1e-12)
    assert wilcoxon_p(-d) == pytest.approx(wilcoxon_p(d))            # two-sided: symmetric
    assert wilcoxon_p(np.zeros(10)) == 1.0                           # identical runs: no evidence
    assert np.isnan(wilcoxon_p([]))


def test_bootstrap_percentile_matches_a_naive_loop():
    d = np.array([0.05, 0.02, 0.08, -0.01, 0.04, 0.06, 0.03, 0.07, 0.00, 0.05, 0.09, 0.02])
    lo, hi = bootstrap_ci(d, method="percentile", n_resamples=20000, rng=0)
    rng = np.random.default_rng(123)
    means = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(20000)])
    n_lo, n_hi = np.percentile(means, [2.5, 97.5])
    se = d.std(ddof=1) / np.sqrt(len(d))
    assert abs(lo - n_lo) < 0.1 * se and abs(hi - n_hi) < 0.1 * se       # Monte Carlo error ~0.02 se
    assert lo < d.mean() < hi


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_bootstrap_ci_is_an_interval_for_the_mean(method):
    """For many normal differences any sound interval for the mean is close to
    mean +- 1.96 sd / sqrt(n) (an interval for single values, or for the median, is not)."""
    d = np.random.default_rng(2).normal(0.03, 0.05, 400)
    lo, hi = bootstrap_ci(d, method=method, rng=0)
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    assert lo == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert hi == pytest.approx(d.mean() + half, abs=0.1 * half)


def test_bootstrap_ci_known_and_reproducible():
    assert bootstrap_ci(np.full(10, 0.05)) == (0.05, 0.05)             # no spread
    assert all(np.isnan(bootstrap_ci([0.1])))
    d = np.random.default_rng(3).normal(0, 1, 10)
    assert bootstrap_ci(d, rng=7) == bootstrap_ci(d, rng=7)
    direct = sps.bootstrap((d,), np.mean, n_resamples=9999, method="BCa", rng=np.random.default_rng(7))
    assert bootstrap_ci(d, rng=7) == (direct.confidence_interval.low, direct.confidence_interval.high)
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ci(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_ci([0.1, np.nan])


# ----------------------------------------------------------------------------- summarise


def results(n_seeds=12, seed=0):
    """A tidy table: baseline ("none", lam NaN), dcat and kd (lam 1) at two sizes.
    The baseline varies a lot from seed to seed (sd 0.1); dcat adds +0.05 at n = 100
    (+-0.005) and nothing at n = 300; kd subtracts 0.03 (+-0.005) at both."""
    rng = np.random.default_rng(seed)
    rows, diffs = [], {}
    for n in (100, 300):
        base = 0.6 + 0.1 * rng.standard_normal(n_seeds)
        effect = {"dcat": 0.05 if n == 100 else 0.0, "kd": -0.03}
        for s in range(n_seeds):
            rows.append({"method": "none", "lam": np.nan, "n_samples": n, "seed": s, "f1": base[s]})
        for m, e in effect.items():
            noise = (0.005 if e else 0.01) * rng.standard_normal(n_seeds)
            diffs[(m, n)] = e + noise
            for s in range(n_seeds):
                rows.append({"method": m, "lam": 1.0, "n_samples": n, "seed": s, "f1": base[s] + e + noise[s]})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)    # any row order
    return df, diffs


def test_summarise_pairs_by_seed_and_size():
    df, diffs = results()
    s = summarise(df).set_index(["n_samples", "method"])
    for (m, n), d in diffs.items():
        r = s.loc[(n, m)]
        assert r["n"] == 12 and r["n_pairs"] == 12 and r["lam"] == 1.0
        assert r["diff_mean"] == pytest.approx(d.mean(), abs=1e-12)
        assert r["diff_std"] == pytest.approx(d.std(ddof=1), abs=1e-12)
        cell = lambda m: df[(df.method == m) & (df.n_samples == n)].set_index("seed")["f1"].sort_index()  # noqa: E731
        exact = (cell(m) - cell("none")).to_numpy()              # the same differences, as the table holds them
        assert exact == pytest.approx(d, abs=1e-12)
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(bootstrap_ci(exact), abs=1e-12)
        assert r["p_value"] == pytest.approx(wilcoxon_p(exact), abs=1e-12)
        assert r["n_better"] == (d > 0).sum() and r["n_worse"] == (d < 0).sum()
        vals = df[(df.method == m) & (df.n_samples == n)]["f1"]
        assert r["mean"] == pytest.approx(vals.mean()) and r["std"] == pytest.approx(vals.std(ddof=1))
        assert r["baseline_mean"] == pytest.approx(df[(df.method == "none") & (df.n_samples == n)]["f1"].mean())
    # pairing is what makes a 0.05 effect visible under a 0.1 seed spread
    assert s.loc[(100, "dcat"), "ci_low"] > 0.03 and s.loc[(100, "kd"), "ci_high"] < -0.02
    assert s.loc[(300, "dcat"), "ci_low"] < 0 < s.loc[(300, "dcat"), "ci_high"]
    base = s.loc[(100, "none")]
    assert base["n"] == 12 and np.isnan(base["n_pairs"]) and np.isnan(base["diff_mean"])


def test_summarise_unpaired_runs_and_bad_tables():
    df, diffs = results()
    drop = (df.method == "none") & (df.n_samples == 100) & (df.seed == 3)
    s = summarise(df[~drop]).set_index(["n_samples", "method"])
    assert s.loc[(100, "dcat"), "n"] == 12 and s.loc[(100, "dcat"), "n_pairs"] == 11
    assert s.loc[(100, "dcat"), "diff_mean"] == pytest.approx(np.delete(diffs[("dcat", 100)], 3).mean())
    assert s.loc[(300, "dcat"), "n_pairs"] == 12
    with pytest.raises(ValueError, match="2 runs share"):
        summarise(pd.concat([df, df.iloc[:1]]))
    with pytest.raises(ValueError, match=r"lack column\(s\) \['n_samples'\]"):
        summarise(df.drop(columns="n_samples"))
    with pytest.raises(ValueError, match="no baseline runs"):
        summarise(df[df.method != "none"])
    # a second context column (e.g. the split) keeps baselines apart
    both = pd.concat([df.assign(split="id"), df.assign(split="ood", f1=df.f1 + (df.method == "dcat") * 0.2)])
    s2 = summarise(both, context=("split", "n_samples")).set_index(["split", "n_samples", "method"])
    assert s2.loc[("id", 100, "dcat"), "diff_mean"] == pytest.approx(diffs[("dcat", 100)].mean())
    assert s2.loc[("ood", 100, "dcat"), "diff_mean"] == pytest.approx(diffs[("dcat", 100)].mean() + 0.2)


# ----------------------------------------------------------------------------- verdicts


def cells(*rows):
    return pd.DataFrame([{"method": "dcat", "n_samples": n, "diff_mean": m, "ci_low": lo, "ci_high": hi,
                          "n_pairs": k} for n, m, lo, hi, k in rows])


def test_verdict_sentences():
    s = cells((300, 0.06, 0.03, 0.09, 10), (700, 0.04, 0.01, 0.07, 12), (2000, 0.0, -0.01, 0.02, 10))
    assert verdict(s, method="dcat") == ("helps at n <= 700 (n = 300: +0.06 [+0.03, +0.09]; "
                                         "n = 700: +0.04 [+0.01, +0.07]); no evidence at n = 2000: +0.00 [-0.01, +0.02]")
    s = cells((300, 0.01, -0.02, 0.03, 10), (700, -0.05, -0.08, -0.02, 10), (2000, -0.04, -0.06, -0.01, 10))
    assert verdict(s, method="dcat") == ("no evidence at n = 300: +0.01 [-0.02, +0.03]; hurts at n >= 700 "
                                         "(n = 700: -0.05 [-0.08, -0.02]; n = 2000: -0.04 [-0.06, -0.01])")
    s = cells((300, 0.06, 0.03, 0.09, 9), (700, 0.0, -0.01, 0.01, 10), (2000, 0.06, 0.03, 0.09, 9))
    assert verdict(s, method="dcat") == ("too few seeds at n = 300: 9 paired, 10 needed; no evidence at "
                                         "n = 700: +0.00 [-0.01, +0.01]; too few seeds at n = 2000: 9 paired, 10 needed")
    s = cells((300, 0.06, 0.03, 0.09, 10), (700, 0.0, -0.01, 0.01, 10), (2000, 0.06, 0.03, 0.09, 10),
              (5000, 0.0, -0.1, 0.1, 10))
    assert verdict(s.iloc[[0, 2, 1]], method="dcat", min_seeds=5).startswith("helps at n = 300")
    assert verdict(cells((300, 0.06, 0.03, 0.09, 10)), method="dcat") == "helps: +0.06 [+0.03, +0.09]"
    assert MIN_SEEDS == 10 and call(0.1, 0.05, 0.2, 9) == "too few seeds" and call(0.1, 0.05, 0.2, 10) == "helps"
    with pytest.raises(ValueError, match="no summary rows match"):
        verdict(s, method="kd")
    with pytest.raises(ValueError, match="repeat values of 'n_samples'"):
        verdict(pd.concat([s, s]), method="dcat")


def test_verdict_from_a_summary():
    df, _ = results()
    s = summarise(df)
    text = verdict(s, method="dcat", lam=1.0)
    assert text.startswith("helps at n = 100: +0.05 [") and "; no evidence at n = 300: " in text
    assert verdict(s, method="kd", lam=1.0).startswith("hurts at n <= 300 (n = 100: -0.03 [")
    few = summarise(df[df.seed < 5])
    assert verdict(few, method="dcat", lam=1.0) == "too few seeds at n <= 300 (n = 100: 5 paired, 10 needed; " \
                                                   "n = 300: 5 paired, 10 needed)"
