"""Seed statistics (dcatkit.stats) against known values and straightforward references:
Wilcoxon against a textbook example and an exact enumeration of sign patterns,
bootstrap intervals against a naive percentile loop and the normal-theory interval,
the sign-flip test and its interval against a brute-force loop over sign vectors,
Holm against the step-down procedure run by hand, pairing against hand-computed
differences, draws pooled against a t-test on hand-computed draw means, calibration
on simulated null tables, verdicts as exact sentences."""
import itertools
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from dcatkit.stats import (DESCRIBED, MIN_SEEDS, bootstrap_ci, call, format_bounds, format_interval, holm, signflip_ci, signflip_p,
                           signflip_test, summarise, summarise_draws, t_test, verdict, wilcoxon_p)

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
        assert (r["ci_low_cell"], r["ci_high_cell"]) == pytest.approx(signflip_ci(exact), abs=1e-12)
        assert r["p_value"] == pytest.approx(brute_signflip_p(exact), abs=1e-12)
        assert r["family_size"] == 4 and r["correction"] == "holm" and r["test"] == "exact sign-flip"
        assert (r["ci_low"], r["ci_high"]) == pytest.approx(signflip_ci(exact, r["level"]), abs=1e-12)
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
    with pytest.warns(UserWarning, match=r"2 run\(s\) in 2 cell\(s\) have no baseline partner"):
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


def test_untested_cells_carry_no_interval_and_verdict_keeps_summarises_calls():
    """A cell with too few seeds is not tested: no interval in ci_low / ci_high (its own
    uncorrected one stays in ci_low_cell), and verdict reads the summary's calls, made with the
    min_seeds summarise used; asking verdict for another min_seeds is refused."""
    df, _ = results()
    few = summarise(df[df.seed < 6])
    d = few[few.method == "dcat"]
    assert (d.call == "too few seeds").all() and d.ci_low.isna().all() and d.ci_high.isna().all()
    assert d.ci_low_cell.notna().all() and (d.min_seeds == MIN_SEEDS).all()
    with pytest.raises(ValueError, match="made by summarise with min_seeds=10"):
        verdict(few, method="dcat", lam=1.0, min_seeds=5)
    five = summarise(df[df.seed < 6], min_seeds=5)
    assert verdict(five, method="dcat", lam=1.0) == verdict(five, method="dcat", lam=1.0, min_seeds=5)
    assert not verdict(five, method="dcat", lam=1.0).startswith("too few seeds")


def test_data_seed_as_a_pair_column_is_refused_and_a_missing_metric_names_its_cell():
    df, _ = results()
    two = pd.concat([df.assign(data_seed=0), df.assign(data_seed=1)], ignore_index=True)
    with pytest.raises(ValueError, match='draw="data_seed"'):
        summarise(two, pair=("data_seed", "seed"))
    assert len(summarise(df.assign(data_seed=0), pair=("data_seed", "seed")))     # one draw: pairs as before
    bad = df.copy()
    bad.loc[(bad.method == "kd") & (bad.seed == 3), "f1"] = np.nan
    with pytest.raises(ValueError, match="f1 is missing or not finite for a run of .*'kd'"):
        summarise(bad)


def test_a_level_no_sign_pattern_reaches_is_no_evidence_not_too_few_seeds():
    """Holm over 30 cells asks 5%/30 = 0.0017 of the strongest cell; 10 seeds give at best
    p = 2/1024 = 0.002. The cell was tested: its call is "no evidence", its interval
    unbounded, and the verdict says why (before: "too few seeds ... 10 paired, 10 needed")."""
    rng = np.random.default_rng(3)
    base = 0.6 + 0.05 * rng.standard_normal(10)
    rows = [{"method": "none", "lam": 0.0, "n_samples": 100, "seed": s, "f1": base[s]} for s in range(10)]
    for m in range(30):
        shift = 0.2 if m == 0 else 0.0
        rows += [{"method": f"m{m}", "lam": 1.0, "n_samples": 100, "seed": s,
                  "f1": base[s] + shift + 0.01 * rng.standard_normal()} for s in range(10)]
    s = summarise(pd.DataFrame(rows))
    top = s[s.method == "m0"].iloc[0]
    assert top.family_size == 30 and top.p_value == pytest.approx(2 / 1024)
    assert top.call == "no evidence" and np.isinf(top.ci_low) and np.isinf(top.ci_high)
    assert "10 paired seeds cannot reach the level" in verdict(s, method="m0")


def test_verdict_from_a_summary():
    df, _ = results()
    s = summarise(df)
    text = verdict(s, method="dcat", lam=1.0)
    assert text.startswith("helps at n = 100: +0.05 [") and "; no evidence at n = 300: " in text
    assert verdict(s, method="kd", lam=1.0).startswith("hurts at every tested n (n = 100: -0.03 [")  # not "n <= 300"
    few = summarise(df[df.seed < 5])
    assert verdict(few, method="dcat", lam=1.0) == "too few seeds at every tested n (n = 100: 5 paired, 10 needed; " \
                                                   "n = 300: 5 paired, 10 needed)"


def test_one_draw_verdict_describes_the_interval_and_refuses_pooled_rows():
    """Notebook 04 summarises one data draw: its verdict says where each interval lies, not
    "helps" / "hurts" (a claim pools draws). The numbers and grouping are the same sentence's;
    rows pooled over draws are claims, and one_draw=True is refused on them."""
    s = cells((300, 0.01, -0.02, 0.03, 10), (700, -0.05, -0.08, -0.02, 10), (2000, 0.06, 0.03, 0.09, 10),
              (5000, 0.06, 0.03, 0.09, 9))
    claim = verdict(s, method="dcat")
    told = verdict(s, method="dcat", one_draw=True)
    assert told == ("interval holds 0 at n = 300: +0.01 [-0.02, +0.03]; interval below 0 at n = 700: "
                    "-0.05 [-0.08, -0.02]; interval above 0 at n = 2000: +0.06 [+0.03, +0.09]; "
                    "too few seeds at n = 5000: 9 paired, 10 needed")
    assert "helps" not in told and "hurts" not in told and "no evidence" not in told
    for word, said in DESCRIBED.items():                           # the same sentence, other words
        claim = claim.replace(word, said)
    assert claim == told
    df, _ = results()
    two = pd.concat([df.assign(data_seed=0), df.assign(data_seed=1)], ignore_index=True)
    pooled = summarise(two, draw="data_seed")
    with pytest.raises(ValueError, match="pool 2 data draws"):
        verdict(pooled, method="dcat", lam=1.0, one_draw=True)
    assert verdict(pooled, method="dcat", lam=1.0)                  # as a claim it is fine


# ----------------------------------------------------------------------------- sign-flip test, Holm


def brute_signflip_p(d, mu=0.0):
    """Two-sided sign-flip p of the mean by looping over every sign vector:
    2 x the smaller share of patterns whose sum is >= / <= the observed sum."""
    x = np.asarray(d, float) - mu
    obs = x.sum()
    tol = 1e-12 * max(np.abs(x).max(), 1e-300) * len(x)
    sums = np.array([np.dot(s, x) for s in itertools.product((1, -1), repeat=len(x))])
    return min(1.0, 2 * min((sums >= obs - tol).mean(), (sums <= obs + tol).mean()))


@pytest.mark.parametrize("d", [
    [0.031, -0.012, 0.044, 0.005, 0.027, -0.020, 0.038, 0.012, 0.019, 0.051],
    [0.02, -0.02, 0.04, 0.0, 0.02, 0.06, -0.04, 0.02, 0.0, 0.04],            # F1-like: ties and zeros
    [0.05, 0.01, 0.02, 0.03, 0.04, 0.06, 0.07],
    [-0.01, -0.03, -0.02, -0.05, -0.04, -0.06, -0.07, -0.02, -0.09, -0.01, -0.03],
])
def test_signflip_matches_brute_force_enumeration(d):
    d = np.array(d)
    assert signflip_p(d) == pytest.approx(brute_signflip_p(d), abs=1e-12)
    assert signflip_p(-d) == pytest.approx(signflip_p(d))                       # two-sided: symmetric
    for conf in (0.95, 0.99, 1 - 0.05 / 12):
        lo, hi = signflip_ci(d, conf)
        alpha, eps = 1 - conf, 1e-9
        if 2 / 2 ** len(d) > alpha:             # too few seeds for this level: no mu can be rejected
            assert (lo, hi) == (-np.inf, np.inf)
            continue
        # the interval is exactly the set of mu the test does not reject at alpha
        assert brute_signflip_p(d, lo) > alpha and brute_signflip_p(d, hi) > alpha
        assert brute_signflip_p(d, lo - eps) <= alpha + 1e-12 and brute_signflip_p(d, hi + eps) <= alpha + 1e-12
        assert (lo > 0 or hi < 0) == (signflip_p(d) <= alpha)                  # interval and p agree
    assert signflip_p(np.full(10, 0.01)) == pytest.approx(2 / 1024)            # all 10 positive: the smallest p
    assert signflip_ci(np.full(10, 0.01), 0.99) == pytest.approx((0.01, 0.01), abs=1e-15)


def test_signflip_ties_at_zero_and_monte_carlo():
    d = [0.0] * 9 + [0.05]                                                      # one seed moved, nine tied
    lo, hi = signflip_ci(d)
    assert lo == 0.0 and hi > 0 and signflip_p(d) == 1.0
    # above n_exact, Monte Carlo over sign patterns agrees with the enumeration within its error
    d = np.random.default_rng(4).normal(0.01, 0.03, 17)
    exact, mc = signflip_test(d, n_exact=17), signflip_test(d, n_exact=10, n_resamples=40000, rng=1)
    assert mc.p == pytest.approx(exact.p, abs=4 * np.sqrt(exact.p / 40000) + 1e-4)
    assert mc.interval(0.05) == pytest.approx(exact.interval(0.05), abs=0.1 * d.std() / np.sqrt(17))
    with pytest.raises(ValueError, match="1-D"):
        signflip_p(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        signflip_p([0.1, np.inf])


def test_t_test_matches_scipy():
    d = np.random.default_rng(5).normal(0.02, 0.03, 10)
    t = t_test(d)
    assert t.p == pytest.approx(sps.ttest_1samp(d, 0).pvalue, rel=1e-10)
    assert t.interval(0.05) == pytest.approx(sps.t.interval(0.95, 9, d.mean(), sps.sem(d)), rel=1e-10)
    assert t_test(np.zeros(5)).p == 1.0 and t_test(np.zeros(5)).interval(0.05) == (0.0, 0.0)
    same = t_test(np.full(3, 0.01))             # three equal draw means: no spread to test against, no call
    assert same.p == 1.0 and same.interval(0.05) == (-np.inf, np.inf)
    assert call(0.01, *same.interval(0.05), 30) == "no evidence"
    assert t_test(np.array([0.1, 0.1 + 1e-17, 0.1 - 1e-17, 0.30000000000000004 / 3])).p == 1.0   # rounding only
    df = pd.DataFrame([{"method": m, "lam": 1.0, "n_samples": 100, "seed": k, "f1": 0.5 + (0.02 if m == "dcat" else 0)}
                       for m in ("none", "dcat") for k in range(10)])
    assert verdict(summarise(df, test="t"), method="dcat").endswith(
        "unbounded: the paired differences do not vary (Holm over 1 cell, 95% family-wise; t)")


def holm_by_hand(p, alpha):
    """Holm's procedure as written: sort, reject while p_(j) <= alpha / (m - j + 1)."""
    order, rej = np.argsort(p), np.zeros(len(p), bool)
    for j, i in enumerate(order):
        if p[i] > alpha / (len(p) - j):
            break
        rej[i] = True
    return rej


def test_holm_adjusted_p_matches_the_procedure():
    rng = np.random.default_rng(6)
    for _ in range(50):
        p = rng.uniform(0, 0.05, 8) ** rng.uniform(0.5, 2)
        adj = holm(p)
        for alpha in (0.01, 0.02, 0.05, 0.1):
            assert ((adj <= alpha) == holm_by_hand(p, alpha)).all()
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(holm([0.01, np.nan])[1]) and holm([0.01, np.nan])[0] == 0.01    # NaN not counted


# ----------------------------------------------------------------------------- families, draws, baselines


def null_table(rng, methods=("dcat", "kd", "fitnet", "contrastive"), sizes=(300, 1000, 2000), n_seeds=10,
               effect=None, n_draws=1, tau=0.0):
    effect, rows = effect or {}, []
    for draw in range(n_draws):
        for n in sizes:
            base = 0.8 + rng.normal(0, 0.03, n_seeds)
            rows += [{"method": "none", "lam": np.nan, "n_samples": n, "data_seed": draw, "seed": s, "f1": b}
                     for s, b in enumerate(base)]
            for m in methods:
                f1 = base + effect.get(m, 0.0) + rng.normal(0, tau) + rng.normal(0, 0.035, n_seeds)
                rows += [{"method": m, "lam": 1.0, "n_samples": n, "data_seed": draw, "seed": s, "f1": v}
                         for s, v in enumerate(f1)]
    return pd.DataFrame(rows)


def test_holm_family_calls_agree_with_the_printed_interval():
    """On tables with and without effects: the call is read off the printed (adjusted)
    interval, agrees with Holm's adjusted p, and the interval is the cell's own at its level."""
    rng = np.random.default_rng(7)
    for k in range(12):
        df = null_table(rng, effect={"dcat": 0.04 * (k % 3), "kd": -0.02 * (k % 2)})
        s = summarise(df).query("method != 'none'")
        assert (s.family_size == 12).all() and (s.correction == "holm").all()
        assert ((s.p_adj <= 0.05) == s.call.isin(["helps", "hurts"])).all()
        by_hand = holm_by_hand(s.p_value.to_numpy(), 0.05)
        assert (by_hand == s.call.isin(["helps", "hurts"]).to_numpy()).all()
        assert (s.call == [call(r.diff_mean, r.ci_low, r.ci_high, r.n_pairs) for r in s.itertuples()]).all()
        assert (s.level >= 0.95).all() and (s.level <= 1 - 0.05 / 12 + 1e-12).all()
        for r in s.itertuples():
            d = (df[(df.method == r.method) & (df.n_samples == r.n_samples)].sort_values("seed").f1.to_numpy()
                 - df[(df.method == "none") & (df.n_samples == r.n_samples)].sort_values("seed").f1.to_numpy())
            assert (r.ci_low, r.ci_high) == pytest.approx(signflip_ci(d, r.level), abs=1e-12)
            assert r.ci_low <= r.ci_low_cell <= r.ci_high_cell <= r.ci_high           # adjusted: never narrower


def test_holm_step_removes_a_call_a_single_cell_would_make():
    """12 cells, one with 9 of 10 seeds ahead: p = 0.0156 alone (a 95% call), not after Holm."""
    rng = np.random.default_rng(8)
    df = null_table(rng, effect={})
    d = np.array([0.021, 0.034, 0.012, 0.046, 0.028, 0.017, 0.039, 0.025, 0.031, -0.03])
    base = df[(df.method == "none") & (df.n_samples == 300)].sort_values("seed").f1.to_numpy()
    mask = (df.method == "dcat") & (df.n_samples == 300)
    df.loc[mask, "f1"] = df.loc[mask].seed.map(dict(enumerate(base + d)))
    cell = summarise(df, correction="none").set_index(["n_samples", "method"]).loc[(300, "dcat")]
    holm_ = summarise(df).set_index(["n_samples", "method"]).loc[(300, "dcat")]
    assert cell["p_value"] == pytest.approx(brute_signflip_p(d)) and cell["call"] == "helps"
    assert holm_["p_value"] == cell["p_value"] and holm_["p_adj"] >= 0.05 and holm_["call"] == "no evidence"
    assert holm_["ci_low"] < 0 < holm_["ci_high"] and holm_["family_size"] == 12
    bonf = summarise(df, correction="bonferroni").set_index(["n_samples", "method"]).loc[(300, "dcat")]
    assert bonf["level"] == pytest.approx(1 - 0.05 / 12) and bonf["p_adj"] == pytest.approx(min(1, 12 * cell.p_value))
    # family= splits the table: one family per size, 4 cells each
    fam = summarise(df, family=("n_samples",))
    assert (fam.query("method != 'none'").family_size == 4).all()


def test_zero_tied_cell_is_no_evidence():
    """Differences [0]*9 + [0.05]: the interval starts exactly at 0.0, so the call must be
    "no evidence" (a call made on ci_low >= 0 would say "helps")."""
    rows = [{"method": m, "lam": np.nan if m == "none" else 1.0, "n_samples": 100, "seed": s,
             "f1": 0.7 + 0.01 * s + (0.05 if m == "dcat" and s == 9 else 0.0)} for m in ("none", "dcat") for s in range(10)]
    r = summarise(pd.DataFrame(rows), correction="none").set_index("method").loc["dcat"]
    assert r["ci_low"] == 0.0 and r["ci_high"] > 0 and r["call"] == "no evidence"
    assert call(0.005, 0.0, 0.02, 10) == "no evidence" and call(-0.005, -0.02, 0.0, 10) == "no evidence"


def test_ambiguous_baseline_is_an_error_naming_the_rows():
    rows = [{"method": "none", "lam": lam, "n_samples": 100, "seed": s, "f1": f} for s in range(10)
            for lam, f in ((np.nan, 0.80), (1.0, 0.90))]
    rows += [{"method": "dcat", "lam": 1.0, "n_samples": 100, "seed": s, "f1": 0.85} for s in range(10)]
    with pytest.raises(ValueError, match=r"ambiguous baseline: 2 baseline rows .* match \{'n_samples': 100, 'seed': 0\}"
                                         r"(.|\n)*0\.8(.|\n)*0\.9"):
        summarise(pd.DataFrame(rows))


def test_group_keys_in_messages_are_plain_values():
    """pandas < 3 hands out numpy scalars as group keys, whose numpy-2 repr ("np.int64(100)") made
    the ambiguous-baseline message unreadable on Python 3.10's pandas 2.3 (seen 2026-12-05)."""
    from dcatkit.stats import _shown

    assert repr(_shown(["n_samples", "seed", "lam"], (np.int64(100), np.int64(0), np.float64(0.5)))) == \
        "{'n_samples': 100, 'seed': 0, 'lam': 0.5}"
    assert _shown(["seed"], np.int64(3)) == {"seed": 3}                    # a one-column key


def test_draws_pooled_at_the_draw_level():
    """Unbalanced draws (10, 12, 11 seeds): the effect is the mean of the draw means (not of all
    33 differences), tested by a t on the 3 draw means; per-draw rows are each draw alone."""
    rng = np.random.default_rng(9)
    parts = []
    for draw, n_seeds, shift in ((0, 10, 0.05), (1, 12, 0.0), (2, 11, 0.02)):
        t = null_table(rng, methods=("dcat",), sizes=(300,), n_seeds=n_seeds, effect={"dcat": shift})
        parts.append(t.assign(data_seed=draw + 10))
    df = pd.concat(parts, ignore_index=True)
    pooled, per_draw = summarise_draws(df, draw="data_seed", correction="none")
    r = pooled.set_index("method").loc["dcat"]
    means = []
    for v, g in df.groupby("data_seed"):
        b = g[g.method == "none"].sort_values("seed").f1.to_numpy()
        means.append((g[g.method == "dcat"].sort_values("seed").f1.to_numpy() - b).mean())
    assert r["n_draws"] == 3 and r["n_pairs"] == 33 and r["diff_mean"] == pytest.approx(np.mean(means))
    all_diffs = np.concatenate([g[g.method == "dcat"].sort_values("seed").f1.to_numpy()
                                - g[g.method == "none"].sort_values("seed").f1.to_numpy() for _, g in df.groupby("data_seed")])
    assert abs(all_diffs.mean() - r["diff_mean"]) > 1e-4                          # unbalanced: the two differ
    assert r["draw_sd"] == pytest.approx(np.std(means, ddof=1))
    assert r["p_value"] == pytest.approx(sps.ttest_1samp(means, 0).pvalue, rel=1e-10)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(sps.t.interval(0.95, 2, np.mean(means), sps.sem(means)))
    assert r["draw_means"] == ", ".join(f"{m:+.4f}" for m in means) and r["test"] == "t on draw means"
    assert summarise(df, draw="data_seed", correction="none").equals(pooled)
    one = per_draw[(per_draw.method == "dcat") & (per_draw.data_seed == 11)].iloc[0]
    alone = summarise(df[df.data_seed == 11], correction="none").set_index("method").loc["dcat"]
    assert one["diff_mean"] == pytest.approx(means[1]) and one["ci_low"] == alone["ci_low"]
    # pairing within (draw, seed): without draw= the same seed in three draws is an error, not a pair
    with pytest.raises(ValueError, match="3 runs share .* pass draw="):
        summarise(df)
    # a single draw cannot be pooled into a claim, and says that draws (not seeds) are what is missing
    one_draw = summarise(df[df.data_seed == 10], draw="data_seed").set_index("method").loc["dcat"]
    assert one_draw["n_pairs"] >= MIN_SEEDS and one_draw["call"] == "too few draws"
    assert verdict(summarise(df[df.data_seed == 10], draw="data_seed"), method="dcat") == \
        "too few draws: 1 data draw, 2 needed"
    # with too few seeds as well, the seeds are named first (more draws would not be enough)
    assert call(0.1, np.nan, np.nan, 3, n_draws=1) == "too few seeds"
    assert call(0.1, 0.05, 0.2, 10, n_draws=1) == "too few draws" and call(0.1, 0.05, 0.2, 10, n_draws=2) == "helps"


def test_null_tables_are_calibrated():
    """Loosely, on 20 null tables (240 cells): per cell at 95% the false-call rate is about 0.05
    (the old BCa interval gave 0.09-0.10), and Holm's family-wise calls are rarer still."""
    rng = np.random.default_rng(10)
    per_cell, holm_calls = [], []
    for _ in range(20):
        df = null_table(rng)
        per_cell += list(summarise(df, correction="none").query("method != 'none'").call)
        holm_calls += list(summarise(df).query("method != 'none'").call)
    rate = np.isin(per_cell, ["helps", "hurts"]).mean()
    assert len(per_cell) == 240 and rate < 0.09
    assert np.isin(holm_calls, ["helps", "hurts"]).mean() <= rate and np.isin(holm_calls, ["helps", "hurts"]).mean() < 0.03


# ----------------------------------------------------------------------------- printing


def test_format_bounds_are_format_intervals_bounds():
    """The bounds alone, with the digits format_interval gives them (they widen by the bounds,
    not by the estimate)."""
    assert format_bounds(0.004, 0.0151) == "[+0.004, +0.015]"
    assert format_bounds(-0.069, 0.0654, digits=3) == "[-0.069, +0.065]"
    assert format_bounds(-0.0001, 0.02) == "[-0.0001, +0.0200]"
    assert format_bounds(1e-9, 0.02) == "[+1.0e-09, +0.020000]"
    for m, lo, hi in ((0.0099, 0.004, 0.0151), (-0.0052, -0.0104, -0.0004), (0.5, -1e-7, 3.0)):
        assert format_interval(m, lo, hi, 3).endswith(" " + format_bounds(lo, hi, 3))


def test_format_interval_never_reads_as_touching_zero():
    assert format_interval(0.0099, 0.004, 0.0151) == "+0.010 [+0.004, +0.015]"       # was "+0.01 [+0.00, +0.02]"
    assert format_interval(-0.0052, -0.0104, -0.0004) == "-0.0052 [-0.0104, -0.0004]"
    assert format_interval(0.06, 0.03, 0.09) == "+0.06 [+0.03, +0.09]"
    assert format_interval(-0.0001, -0.02, 0.02) == "+0.00 [-0.02, +0.02]"           # never "-0.00"
    assert format_interval(0.0, 0.0, 0.05) == "+0.00 [+0.00, +0.05]"                 # a bound at 0 is 0
    assert format_interval(0.01, 1e-9, 0.02) == "+0.010000 [+1.0e-09, +0.020000]"
    assert "-0.000" not in format_interval(-0.00004, -0.01, 0.01, digits=3)
    rng = np.random.default_rng(11)
    for _ in range(300):                      # whenever the call is helps/hurts the printed bounds exclude 0
        lo = rng.choice([-1, 1]) * 10 ** rng.uniform(-5, -1)
        hi = lo + 10 ** rng.uniform(-5, -1)
        text = format_interval((lo + hi) / 2, lo, hi)
        printed = [float(x) for x in text.split("[")[1].rstrip("]").split(", ")]
        if call(0, lo, hi, 10) != "no evidence":
            assert printed[0] > 0 or printed[1] < 0, text


def test_verdict_names_the_family_once():
    df, _ = results()
    text = verdict(summarise(df), method="dcat", lam=1.0)
    assert text.endswith("(Holm over 4 cells, 95% family-wise; exact sign-flip)") and text.count("Holm") == 1
    text = verdict(summarise(df, correction="none"), method="kd", lam=1.0)
    assert text.endswith("(per cell 95%, not corrected for the other cells; exact sign-flip)")
    few = summarise(df[df.seed < 5])
    assert "Holm" not in verdict(few, method="dcat", lam=1.0)                       # nothing tested, no family


def test_the_test_label_says_monte_carlo_above_the_exact_limit():
    """Up to ``N_EXACT`` paired seeds the sign-flip test enumerates every pattern ("exact
    sign-flip"); above it, it draws ``n_resamples`` patterns and says so, and a family whose cells
    used both names both in its note (it named the first row's only)."""
    from dcatkit.stats import N_EXACT, family_note

    rng = np.random.default_rng(5)
    rows = [{"method": m, "lam": 1.0, "seed": s, "n_samples": 100, "f1": 0.5 + (0.01 if m == "dcat" else 0) * rng.random()}
            for m in ("none", "dcat") for s in range(N_EXACT + 1)]
    df = pd.DataFrame(rows)
    big = summarise(df, n_resamples=999)
    assert big.loc[big.method == "dcat", "test"].item() == "sign-flip, Monte Carlo (999 patterns)"
    small = summarise(df[df.seed < N_EXACT])
    assert small.loc[small.method == "dcat", "test"].item() == "exact sign-flip"
    both = pd.concat([small[small.method == "dcat"], big[big.method == "dcat"]])
    assert family_note(both).endswith("; exact sign-flip / sign-flip, Monte Carlo (999 patterns)")
    assert family_note(pd.concat([small, small])).endswith("; exact sign-flip")


def test_p_values_never_exceed_one():
    """Adjusted and raw p-values are probabilities: Holm's and Bonferroni's m * p are capped at 1,
    and so is the sign-flip test's doubled one-sided p (every difference 0: p = 1 exactly)."""
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]
    assert holm([0.01, 0.6, np.nan]).tolist()[:2] == [0.02, 0.6] and holm([0.3, 0.6]).tolist() == [0.6, 0.6]
    assert signflip_p(np.zeros(10)) == 1.0 and signflip_p([0.0] * 9 + [0.05]) == 1.0
    rng = np.random.default_rng(3)
    rows = [{"method": m, "lam": np.nan if m == "none" else 1.0, "n_samples": 100, "seed": s,
             "f1": 0.7 + rng.normal(0, 0.01)} for m in ("none", "a", "b", "c") for s in range(10)]
    for correction in ("bonferroni", "holm"):
        s = summarise(pd.DataFrame(rows), correction=correction)
        p_adj = s.loc[s.method != "none", "p_adj"]
        assert (p_adj <= 1).all() and (p_adj >= s.loc[s.method != "none", "p_value"]).all()


def test_cells_left_when_holm_stops_get_the_level_it_stopped_at():
    """Three cells, Holm rejects exactly one: the strong cell is tested at alpha/3, and both cells
    left are printed at alpha/2 (the level Holm stopped at), not alpha/3: level 0.975, each the
    sign-flip interval at 0.975 of its own differences."""
    d = {"strong": np.linspace(0.05, 0.14, 10),
         "weak": np.array([0.02, -0.01, 0.03, -0.02, 0.01, 0.0, -0.03, 0.02, 0.01, -0.01]),
         "null": np.array([-0.02, 0.01, -0.01, 0.02, 0.0, 0.01, -0.02, 0.03, -0.01, 0.0])}
    rows = [{"method": "none", "lam": np.nan, "n_samples": 100, "seed": s, "f1": 0.5} for s in range(10)]
    rows += [{"method": m, "lam": 1.0, "n_samples": 100, "seed": s, "f1": 0.5 + v[s]} for m, v in d.items()
             for s in range(10)]
    out = summarise(pd.DataFrame(rows)).set_index("method")
    assert out.loc["strong", "call"] == "helps" and out.loc["strong", "level"] == pytest.approx(1 - 0.05 / 3)
    for m in ("weak", "null"):
        assert out.loc[m, "call"] == "no evidence" and out.loc[m, "level"] == pytest.approx(0.975)
        assert (out.loc[m, "ci_low"], out.loc[m, "ci_high"]) == pytest.approx(signflip_ci(d[m], 0.975))


def test_per_draw_rows_are_uncorrected_and_few_seed_cells_stay_out_of_the_family():
    """With the default correction (Holm) the pooled cells are corrected but each per-draw row is
    the draw summarised alone with correction="none" (two full cells, so Holm would change it); a
    pooled cell with too few seeds (3 draws x 3 seeds) is no member of the Holm family of 2."""
    rng = np.random.default_rng(5)
    rows = []
    for draw in (0, 1, 2):
        for s in range(10):
            rows.append({"method": "none", "lam": np.nan, "n_samples": 100, "seed": s, "data_seed": draw, "f1": 0.6})
            rows.append({"method": "dcat", "lam": 1.0, "n_samples": 100, "seed": s, "data_seed": draw,
                         "f1": 0.6 + 0.02 + rng.normal(0, 0.01)})
            rows.append({"method": "fitnet", "lam": 1.0, "n_samples": 100, "seed": s, "data_seed": draw,
                         "f1": 0.6 + rng.normal(0, 0.01)})
            if s < 3:
                rows.append({"method": "kd", "lam": 1.0, "n_samples": 100, "seed": s, "data_seed": draw,
                             "f1": 0.6 + rng.normal(0, 0.01)})
    df = pd.DataFrame(rows)
    pooled, per_draw = summarise_draws(df, draw="data_seed")
    p = pooled.set_index("method")
    assert (p.loc[["dcat", "fitnet"], "family_size"] == 2).all()
    assert np.isnan(p.loc["kd", "family_size"]) and p.loc["kd", "call"] == "too few seeds"
    for draw in (0, 1, 2):
        for m in ("dcat", "fitnet"):
            alone = summarise(df[df.data_seed == draw], correction="none").set_index("method").loc[m]
            row = per_draw[(per_draw.method == m) & (per_draw.data_seed == draw)].iloc[0]
            assert (row["ci_low"], row["ci_high"], row["level"]) == (alone["ci_low"], alone["ci_high"], 0.95)


def test_signflip_ties_that_cancel_only_in_exact_arithmetic():
    """Differences computed as (x - 0.1) in floating point: subsets whose mean is exactly 0 in
    decimal arithmetic come out as +-1e-17. The test must count them as ties (mean 0), as an
    exact computation over fractions does, for the p-value and the interval."""
    from fractions import Fraction

    exact = [Fraction(x) for x in ("0", "0.1", "-0.4", "0", "0.1", "-0.4", "0.2", "0.2", "0", "0.1")]
    d = np.array([float(x + Fraction("0.1")) for x in exact]) - 0.1       # the same values, rounded
    assert not np.array_equal(d, [float(x) for x in exact])               # the rounding is really there
    means = sorted(sum((x for x, b in zip(exact, bits) if b), Fraction(0)) / sum(bits)
                   for bits in itertools.product((0, 1), repeat=10) if any(bits))
    n = 2 ** 10                                                            # + the empty set (counts both ways)
    p_plus, p_minus = (1 + sum(m <= 0 for m in means)) / n, (1 + sum(m >= 0 for m in means)) / n
    assert signflip_p(d) == pytest.approx(min(1.0, 2 * min(p_plus, p_minus)), abs=1e-15)
    k = int(np.floor(0.05 / 2 * n + 1e-9))                     # the (k+1)-th smallest / largest, empty set = -+inf
    low, high = ([-np.inf] + [float(m) for m in means])[k], ([np.inf] + [float(m) for m in means[::-1]])[k]
    assert signflip_ci(d, 0.95) == pytest.approx((low, high), abs=1e-12)


def test_pairs_across_machines_are_named():
    """A run paired with a baseline trained on another machine (env_* columns of run records)
    warns with the count and both machines; the same machine, unknown machines or a table
    without env_* columns do not. The per-draw rows do not warn a second time."""
    import warnings

    rows = [{"method": m, "lam": 1.0, "n_samples": 100, "seed": s, "data_seed": d, "f1": 0.5 + 0.01 * s,
             "env_device": "cpu", "env_cpu": "Intel Xeon", "env_cpu_capability": "AVX512"}
            for m in ("none", "dcat") for s in range(3) for d in range(2)]
    df = pd.DataFrame(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summarise_draws(df)
        summarise(df.drop(columns=["env_device", "env_cpu", "env_cpu_capability"]), draw="data_seed")
        summarise_draws(df.assign(env_cpu=[None if r["method"] == "none" else "AMD EPYC" for r in rows]))
    moved = df.copy()
    moved.loc[(moved.method == "dcat") & (moved.data_seed == 1) & (moved.seed < 2), "env_cpu"] = "AMD EPYC"
    with pytest.warns(UserWarning) as caught:
        summarise_draws(moved)
    assert len(caught) == 1
    assert re.search(r"^2 of the 6 runs are paired with a baseline trained on another machine \(e\.g\. \{'method': "
                     r"'dcat', 'n_samples': 100, 'data_seed': 1, 'seed': 0\}: AMD EPYC \(AVX512\) vs the baseline's "
                     r"Intel Xeon \(AVX512\)\)", str(caught[0].message)), str(caught[0].message)
    gpu = df.assign(env_device=["cuda" if r["method"] == "dcat" else "cpu" for r in rows], env_device_name="NVIDIA H200")
    with pytest.warns(UserWarning, match=r"6 of the 6 runs .*NVIDIA H200 \(CUDA\) vs the baseline's Intel Xeon"):
        summarise(gpu, draw="data_seed")


def test_paired_means_are_weighted_as_the_difference_is():
    """With runs missing (five baseline runs of draw 0), ``mean`` counts every run of the cell but the
    difference only the paired ones, per draw: ``paired_mean`` and ``baseline_mean`` are of the paired
    runs, draw means weighted as ``diff_mean`` is, so the two printed means differ by the printed
    difference. Computed by hand here."""
    rng = np.random.default_rng(3)
    rows = [{"method": m, "lam": 1.0, "n_samples": 100, "seed": s, "data_seed": d,
             "f1": 0.6 + 0.05 * (m == "dcat") + 0.02 * d + 0.01 * rng.normal()}
            for m in ("none", "dcat") for d in range(3) for s in range(10)]
    df = pd.DataFrame(rows)
    df = df[~((df.method == "none") & (df.data_seed == 0) & (df.seed < 5))]
    with pytest.warns(UserWarning, match=r"5 run\(s\) in 1 cell\(s\) have no baseline partner .*5 of the 30 runs"):
        cell = summarise_draws(df)[0].query("method == 'dcat'").iloc[0]
    run = df[df.method == "dcat"].set_index(["data_seed", "seed"]).f1
    base = df[df.method == "none"].set_index(["data_seed", "seed"]).f1
    paired = run.loc[base.index]
    by_draw = lambda x: x.groupby(level=0).mean().mean()                     # noqa: E731
    assert cell["n_pairs"] == 25 and cell["mean"] == pytest.approx(run.mean())
    assert cell["paired_mean"] == pytest.approx(by_draw(paired))
    assert cell["baseline_mean"] == pytest.approx(by_draw(base))
    assert cell["paired_mean"] - cell["baseline_mean"] == pytest.approx(cell["diff_mean"])
    assert abs(cell["mean"] - cell["paired_mean"]) > 1e-3                      # the run-level mean is another number


def test_a_cell_with_no_baseline_partner_is_named():
    """A method cell none of whose runs has a baseline partner (its size stored as text on one side,
    or its baseline missing) says so in a warning naming the cell, besides its 'too few seeds'."""
    rows = [{"method": m, "lam": 1.0, "n_samples": 100 if m == "none" else "100", "seed": s, "f1": 0.5 + 0.01 * s}
            for m in ("none", "dcat") for s in range(3)]
    with pytest.warns(UserWarning, match=r"1 cell\(s\) have no baseline run to pair with \(e\.g\. \{'n_samples': "
                                         r"'100', 'method': 'dcat', 'lam': 1\.0\}\)"):
        out = summarise(pd.DataFrame(rows))
    assert out.set_index("method").loc["dcat", "call"] == "too few seeds"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summarise(pd.DataFrame(rows).assign(n_samples=100))                # paired: nothing to say


def test_a_draw_without_baseline_runs_is_no_pairs_not_a_crash():
    """One draw's baseline runs all missing (failed and dropped): the pooled cell counts the draws
    that have pairs, a warning says how many runs were left out, the per-draw row of that draw has
    no pairs, and verdict_table prints "no pairs" there. Before, the per-draw summary raised "no
    baseline runs to pair with" on a table that has them, and verdict_table int(NaN)."""
    from dcatkit.studies import verdict_table

    rng = np.random.default_rng(4)
    rows = [{"study": "main", "unit": "n", "size": 300, "metric": "f1", "method": m, "lam": 1.0, "seed": s,
             "data_seed": d, "f1": 0.6 + 0.05 * (m == "kd") + 0.02 * d + 0.01 * rng.normal()}
            for m in ("none", "kd") for d in range(3) for s in range(10)]
    df = pd.DataFrame(rows)
    df = df[~((df.method == "none") & (df.data_seed == 2))]
    kw = dict(context=["study", "unit", "size", "metric"], family="study")
    with pytest.warns(UserWarning, match=r"10 run\(s\) in 1 cell\(s\) have no baseline partner"):
        pooled, per = summarise_draws(df, **kw)
    kd = pooled.query("method == 'kd'").iloc[0]
    assert kd["n_pairs"] == 20 and kd["n_draws"] == 2 and kd["call"] == "helps"
    by_hand = df.pivot_table(index=["data_seed", "seed"], columns="method", values="f1").dropna()
    assert kd["diff_mean"] == pytest.approx((by_hand.kd - by_hand.none).groupby(level=0).mean().mean())
    d2 = per.query("method == 'kd' and data_seed == 2").iloc[0]
    assert d2["n_pairs"] == 0 and np.isnan(d2["diff_mean"]) and d2["call"] == "too few seeds"
    table = verdict_table(pooled, per)
    assert table.iloc[0]["Δ per draw (seeds +/-)"].endswith("; no pairs")
    assert table.iloc[0]["Δ per draw (seeds +/-)"].count("(10/0)") == 2


def test_verdict_table_prints_no_interval_for_an_untested_cell():
    """An untested cell (too few seeds) has no interval: verdict_table shows its mean difference
    alone, not "[+nan, +nan]"."""
    from dcatkit.studies import verdict_table

    rows = [{"study": "main", "unit": "n", "size": 300, "metric": "f1", "method": m, "lam": 1.0, "seed": s,
             "data_seed": d, "f1": 0.6 + 0.05 * (m == "kd") + 0.001 * s}
            for m in ("none", "kd") for d in range(3) for s in range(3)]
    pooled, per = summarise_draws(pd.DataFrame(rows), context=["study", "unit", "size", "metric"], family="study")
    row = verdict_table(pooled, per).iloc[0]
    assert row["call"] == "too few seeds" and row["Δ pooled [adjusted CI]"] == "+0.050" and row["family"] == "untested"


def test_the_kits_warnings_point_at_the_users_line():
    """A warning raised inside dcatkit (here: a pair across machines, found three calls deep) is
    attributed to the caller's own line, so it says where the table was made and the default
    filter shows it once per such line."""
    import warnings

    rows = [{"method": m, "lam": 1.0, "n_samples": 100, "seed": s, "f1": 0.5, "env_device": "cpu",
             "env_cpu": "A" if m == "none" else "B", "env_cpu_capability": "AVX2"}
            for m in ("none", "dcat") for s in range(3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summarise(pd.DataFrame(rows))                                       # this line
    (w,) = [w for w in caught if "another machine" in str(w.message)]
    assert w.filename == __file__, w.filename


def test_monte_carlo_signflip_counts_the_observed_pattern():
    """Above N_EXACT seeds the sign-flip test samples patterns; the observed one (no flip) is
    counted among them, so p is never below 2 / (n_resamples + 1) (two-sided) and an interval at a
    level the resamples cannot resolve is unbounded. Without it p could be 0 and Holm could call at
    levels the resamples never reached."""
    from dcatkit.stats import N_EXACT, signflip_test

    d = np.linspace(0.01, 0.2, N_EXACT + 4)                 # every difference positive
    t = signflip_test(d, n_resamples=999, rng=0)
    assert t.p == pytest.approx(2 / 1000)
    lo, hi = t.interval(0.001)                               # alpha / 2 * 1000 < 1: no resample that far out
    assert lo == -np.inf and hi == np.inf
    assert np.isfinite(t.interval(0.05)).all()


def test_a_tied_seed_is_neither_better_nor_worse():
    """n_better / n_worse count strict wins and losses: a seed whose run equals its baseline is
    in neither (the 'seeds +/-' columns)."""
    rows = [{"method": m, "lam": 1.0, "n_samples": 100, "seed": s,
             "f1": 0.5 + (0.01 * (s % 3 - 1) if m == "dcat" else 0.0)} for m in ("none", "dcat") for s in range(12)]
    r = summarise(pd.DataFrame(rows)).set_index("method").loc["dcat"]
    assert (r["n_better"], r["n_worse"], r["n_pairs"]) == (4, 4, 12)


# ----------------------------------------------------------------------------- audit: alpha, family, keys, display

def _with_count_at_or_below_zero(rng, n, count, n_resamples=9999):
    """n > N_EXACT differences whose Monte Carlo sign-flip test (summarise's: rng 0, n_resamples)
    has exactly ``count`` of its sign patterns' subset means at or below 0 (the empty one among
    them): p = 2 count / (n_resamples + 1), an exact decimal."""
    d0 = rng.normal(0, 0.05, n)
    flips = np.vstack([np.zeros((1, n)), np.random.default_rng(0).integers(0, 2, (n_resamples, n))]).astype(float)
    size = flips.sum(1)
    with np.errstate(all="ignore"):
        asc = np.sort(np.where(size == 0, -np.inf, (flips @ d0) / size))
    return d0 - (asc[count - 1] + asc[count]) / 2           # shift every subset mean to put 0 between them


def _one_cell_table(diffs: dict, n_seeds):
    rows = [{"method": "none", "lam": np.nan, "n_samples": 300, "seed": s, "f1": 0.6 + 0.01 * s} for s in range(n_seeds)]
    rows += [{"method": m, "lam": 1.0, "n_samples": 300, "seed": s, "f1": 0.6 + 0.01 * s + d[s]}
             for m, d in diffs.items() for s in range(n_seeds)]
    return pd.DataFrame(rows)


def test_the_call_agrees_with_p_adj_at_alpha_when_p_equals_alpha():
    """Audit: at confidence 0.9 a cell with p = 0.1 exactly (20 seeds, Monte Carlo: 500 of the
    10000 patterns at or below 0) has an interval that excludes 0 (p <= alpha): "helps", and its
    p_adj must read <= alpha, alpha = alpha_of(0.9) = 0.1 (not the float 1 - 0.9 =
    0.09999999999999998). Holm at 0.85 over 3 cells: the strongest cell's p = 0.05 is tested at
    0.15 / 3 = 0.05 and called; its p_adj 3 x 0.05 must not read 0.15000000000000002 > 0.15."""
    from dcatkit.stats import alpha_of

    assert alpha_of(0.9) == 0.1 and alpha_of(0.85) == 0.15 and alpha_of(0.95) == 0.05
    rng = np.random.default_rng(5)
    s = summarise(_one_cell_table({"dcat": _with_count_at_or_below_zero(rng, 20, 500)}, 20), confidence=0.9)
    r = s.set_index("method").loc["dcat"]
    assert r.p_value == 0.1 and r.p_adj == 0.1 and r.level == pytest.approx(0.9)
    assert r.ci_low > 0 and r.call == "helps" and r.p_adj <= alpha_of(r.confidence)
    null = np.tile([0.01, -0.01], 10) * np.arange(1, 21)                 # symmetric about 0: p near 1
    s = summarise(_one_cell_table({"dcat": _with_count_at_or_below_zero(rng, 20, 250), "kd": null,
                                   "fitnet": -null}, 20), confidence=0.85).query("method != 'none'")
    r = s.set_index("method").loc["dcat"]
    assert r.p_value == 0.05 and r.level == pytest.approx(0.95) and r.call == "helps"
    assert list(s.call) == ["helps", "no evidence", "no evidence"]
    assert ((s.p_adj <= alpha_of(0.85)) == s.call.isin(["helps", "hurts"])).all(), s[["p_adj", "call"]]
    assert (s.p_adj >= s.p_value).all()
    b = summarise(_one_cell_table({"dcat": _with_count_at_or_below_zero(rng, 20, 250), "kd": null,
                                   "fitnet": -null}, 20), confidence=0.85, correction="bonferroni")
    b = b.query("method != 'none'")
    assert ((b.p_adj <= alpha_of(0.85)) == b.call.isin(["helps", "hurts"])).all() and "helps" in set(b.call)
    # p_value is rounded as p_adj is: uncorrected, p_adj is p_value itself (never a hair below it)
    t = summarise(_one_cell_table({"dcat": _with_count_at_or_below_zero(rng, 20, 250), "kd": null}, 20),
                  test="t", correction="none").query("method != 'none'")
    assert (t.p_adj == t.p_value).all() and (t.p_value < 1).all()


def test_a_family_column_beside_the_cell_is_carried_or_refused():
    """Audit: family= with a column outside context + treatment crashed with a bare KeyError. A
    column with one value per cell (a study's kind) makes one family per value and is carried into
    the rows; one that varies within a cell is refused, naming it and the cell."""
    rng = np.random.default_rng(3)
    rows = []
    for st, kind in (("A", "kA"), ("B", "kA"), ("C", "kC")):
        for s in range(10):
            b = rng.normal(0.6, 0.05)
            rows.append(dict(study=st, kind=kind, method="none", lam=0.0, size=300, seed=s, f1=b))
            rows.append(dict(study=st, kind=kind, method="dcat", lam=1.0, size=300, seed=s,
                             f1=b + 0.03 + rng.normal(0, 0.01)))
    df = pd.DataFrame(rows)
    s = summarise(df, context=("study", "size"), family=("kind",)).set_index(["study", "method"])
    assert s.kind.tolist() == ["kA", "kA", "kA", "kA", "kC", "kC"]
    assert s.loc[("A", "dcat"), "family_size"] == 2 and s.loc[("C", "dcat"), "family_size"] == 1
    assert s.loc[("A", "dcat"), "call"] == "helps"
    pooled, per = summarise_draws(df.assign(data_seed=df.seed % 2), context=("study", "size"), family=("kind",),
                                  draw="data_seed", min_seeds=4)
    assert "kind" in pooled and "kind" in per and (per.groupby("study").kind.nunique() == 1).all()
    mixed = df.assign(kind=np.where(df.seed == 3, "other", df.kind))
    with pytest.raises(ValueError, match=r"family column 'kind' is neither a context nor a treatment column and "
                                         r"varies within a cell: \{'study': 'A', .*\['kA', 'other'\]"):
        summarise(mixed, context=("study", "size"), family=("kind",))
    with pytest.raises(ValueError, match=r"family column 'seed'"):
        summarise(df, context=("study", "size"), family=("seed",))


def test_missing_pair_values_pair_with_each_other():
    """Audit: a pair column that is missing for every run (fold NaN, as a split without folds
    writes it) must pair a run with its same-seed baseline: NaN != NaN, so without _key's
    normalisation no pair was found (n_pairs 0, "too few seeds" instead of "helps")."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(10):
        b = rng.normal(0.6, 0.05)
        rows += [dict(method="none", lam=np.nan, n_samples=300, seed=s, fold=np.nan, f1=b),
                 dict(method="dcat", lam=1.0, n_samples=300, seed=s, fold=np.nan, f1=b + 0.03 + 0.001 * s)]
    df = pd.DataFrame(rows)
    as_objects = df.assign(fold=pd.Series([np.float32("nan") for _ in range(len(df))], dtype=object))
    for table in (df, df.assign(fold=df.fold.astype("float32")), df.assign(fold=df.fold.astype("Int64")), as_objects):
        r = summarise(table, pair=("seed", "fold")).set_index("method").loc["dcat"]
        assert r.n_pairs == 10 and r.call == "helps" and r.diff_mean == pytest.approx(0.0345), table.fold.dtype


def test_interval_table_prints_bounds_as_the_call_reads_them():
    """Audit: a table printed with 3 decimals showed ci_high "-0.000" above "hurts: -0.0023
    [-0.0041, -0.0003]". interval_table writes diff_mean and each interval with format_interval's
    digits, row by row; other floats are rounded (no "-0.0"); missing values stay NaN."""
    from dcatkit.stats import interval_table

    rows = pd.DataFrame({"method": ["none", "dcat", "kd", "fitnet"], "mean": [0.6, 0.59, -0.0001, 0.61],
                         "diff_mean": [np.nan, -0.0023, 0.0099, 0.012], "ci_low": [np.nan, -0.0041, 0.004, np.nan],
                         "ci_high": [np.nan, -0.0003, 0.0151, np.nan],
                         "ci_low_cell": [np.nan, -0.0035, 0.0049, -0.01], "ci_high_cell": [np.nan, -0.0004, 0.014, 0.03],
                         "call": ["baseline", "hurts", "helps", "too few seeds"]})
    t = interval_table(rows, ["method", "mean", "diff_mean", "ci_low", "ci_high", "ci_low_cell", "ci_high_cell"])
    assert t.loc[1, ["diff_mean", "ci_low", "ci_high"]].tolist() == ["-0.0023", "-0.0041", "-0.0003"]
    assert t.loc[2, ["diff_mean", "ci_low", "ci_high"]].tolist() == ["+0.010", "+0.004", "+0.015"]
    for i in (1, 2):                   # the same numbers as format_interval (and so as verdict) writes them
        r = rows.loc[i]
        assert f"{t.loc[i, 'diff_mean']} [{t.loc[i, 'ci_low']}, {t.loc[i, 'ci_high']}]" == \
            format_interval(r.diff_mean, r.ci_low, r.ci_high, 3)
    assert t.loc[1, ["ci_low_cell", "ci_high_cell"]].tolist() == ["-0.0035", "-0.0004"]
    assert t.loc[3, "diff_mean"] == "+0.012" and pd.isna(t.loc[3, "ci_low"]) and pd.isna(t.loc[0, "diff_mean"])
    assert not re.search(r"-0\.0*(?![0-9])", t.to_string()) and str(t.loc[2, "mean"]) == "0.0"   # no "-0.000"
    rng = np.random.default_rng(11)
    for _ in range(200):                  # a call's interval never reads as holding 0
        lo = rng.choice([-1, 1]) * 10 ** rng.uniform(-5, -1)
        hi = lo + 10 ** rng.uniform(-5, -1)
        shown = interval_table(pd.DataFrame({"diff_mean": [(lo + hi) / 2], "ci_low": [lo], "ci_high": [hi]}))
        if call(0, lo, hi, 10) != "no evidence":
            assert float(shown.ci_low[0]) > 0 or float(shown.ci_high[0]) < 0, shown
    with pytest.raises(ValueError, match=r"rows lack column\(s\) \['p_adj'\]"):
        interval_table(rows, ["method", "p_adj"])


def test_interval_table_shows_counts_as_whole_numbers():
    """Audit of notebook 04: its table printed "6.0 4.0 10.0" under prose that says on how many
    seeds. summarise's counts are floats (NaN on the baseline row); interval_table shows them as
    whole numbers, the baseline's as missing, and rounds the other floats as before."""
    from dcatkit.stats import interval_table

    summary = summarise(results()[0])
    assert pd.api.types.is_float_dtype(summary.n_better)          # what the table has to deal with
    t = interval_table(summary, ["method", "n_samples", "mean", "n_better", "n_worse", "n_pairs", "family_size"])
    for c in ("n_better", "n_worse", "n_pairs", "family_size"):
        tested = summary[c].notna()
        assert t[c][tested].tolist() == [int(v) for v in summary[c][tested]], c
        assert t[c][~tested].isna().all(), c
    assert not re.search(r"\b\d+\.0\b", t[["n_better", "n_worse", "n_pairs"]].to_string())   # no "6.0"
    assert t["mean"].tolist() == summary["mean"].round(3).tolist()


def test_interval_table_never_shows_a_nonzero_p_as_zero():
    """The statistics audit: the CLI printed p = 0.0 for p = 2e-4. A p that rounds to 0 at the
    table's digits is "< 0.001"; an exact 0 stays 0, a missing p missing, and a column with no such
    p is the rounded float column it was."""
    from dcatkit.stats import interval_table

    rows = pd.DataFrame({"method": ["none", "a", "b", "c", "d"], "p_value": [np.nan, 2e-4, 0.0123, 0.0, 0.0006],
                         "p_adj": [np.nan, 0.5, 0.25, 1.0, 0.0049]})
    t = interval_table(rows)
    assert t["p_value"].tolist()[1:] == ["< 0.001", "0.012", "0.000", "0.001"] and pd.isna(t["p_value"][0])
    assert pd.api.types.is_float_dtype(t["p_adj"]) and t["p_adj"].tolist()[1:] == [0.5, 0.25, 1.0, 0.005]
    assert interval_table(rows, digits=4)["p_value"].tolist()[1:] == [0.0002, 0.0123, 0.0, 0.0006]   # none rounds to 0
    assert "< 0.001" in interval_table(rows, ["method", "p_value"]).to_string(float_format=lambda v: f"{v:.3f}")


def test_runs_on_an_unknown_machine_are_not_counted_as_mixed():
    """A run whose record does not name its machine (no CPU model: ``provenance.machine`` is None)
    cannot be said to differ from its baseline's: of six dcat runs, two on another CPU than the
    baseline's, two on an unknown one and two on the same, the warning counts the two, with one
    machine pair; runs all on unknown machines beside a known baseline do not warn at all."""
    import warnings

    env = {"env_device": "cpu", "env_cpu_capability": "AVX512"}
    cpu = {0: "AMD EPYC", 1: "AMD EPYC", 2: None, 3: None, 4: "Intel Xeon", 5: "Intel Xeon"}
    rows = [{"method": m, "lam": 1.0, "n_samples": 100, "seed": s, "f1": 0.5 + 0.01 * s, **env,
             "env_cpu": "Intel Xeon" if m == "none" else cpu[s]} for m in ("none", "dcat") for s in range(6)]
    df = pd.DataFrame(rows)
    with pytest.warns(UserWarning) as caught:
        summarise(df, min_seeds=2)
    (w,) = [w for w in caught if "another machine" in str(w.message)]
    assert str(w.message).startswith(
        "2 of the 6 runs are paired with a baseline trained on another machine (e.g. {'method': 'dcat', "
        "'n_samples': 100, 'seed': 0}: AMD EPYC (AVX512) vs the baseline's Intel Xeon (AVX512)). A run's "
        "numbers depend on the machine"), str(w.message)
    unknown = df.assign(env_cpu=["Intel Xeon" if r["method"] == "none" else None for r in rows])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summarise(unknown, min_seeds=2)


def test_verdict_names_the_sample_size_n_and_other_columns_by_name():
    """Along n_train (as along n_samples) the verdict says "n"; along any other column it says
    the column's name: the exact sentences, grouped as ``test_verdict_sentences``."""
    rows = [(300, 0.06, 0.03, 0.09, 10), (700, 0.04, 0.01, 0.07, 12), (2000, 0.0, -0.01, 0.02, 10)]
    s = cells(*rows).rename(columns={"n_samples": "n_train"})
    assert verdict(s, over="n_train", method="dcat") == (
        "helps at n <= 700 (n = 300: +0.06 [+0.03, +0.09]; n = 700: +0.04 [+0.01, +0.07]); "
        "no evidence at n = 2000: +0.00 [-0.01, +0.02]")
    s = cells(*rows).rename(columns={"n_samples": "width"})
    assert verdict(s, over="width", method="dcat") == (
        "helps at width <= 700 (width = 300: +0.06 [+0.03, +0.09]; width = 700: +0.04 [+0.01, +0.07]); "
        "no evidence at width = 2000: +0.00 [-0.01, +0.02]")


def test_a_cells_result_does_not_depend_on_the_tables_row_order():
    """Above 16 paired seeds the sign-flip test draws random sign patterns, which land on the
    differences in the order they are listed: a cell's rows are put in seed order first, so a
    shuffled table gives the very same interval and p-values (not merely close ones). With
    draws, ``draw_means`` lists the draws in draw order, whatever order the table gives them in."""
    rng = np.random.default_rng(1)
    rows = []
    for s in range(20):
        b = 0.7 + rng.normal(0, 0.02)
        rows += [{"method": "none", "lam": np.nan, "n_samples": 300, "seed": s, "f1": b},
                 {"method": "dcat", "lam": 1.0, "n_samples": 300, "seed": s, "f1": b + 0.01 + rng.normal(0, 0.03)}]
    df = pd.DataFrame(rows)
    cols = ["diff_mean", "ci_low", "ci_high", "p_value", "p_adj"]
    ref = summarise(df).set_index("method").loc[["dcat"], cols].to_numpy(float)
    assert np.isfinite(ref).all()
    for k in (0, 1, 2):
        shuffled = df.sample(frac=1, random_state=k)
        assert not shuffled["seed"].is_monotonic_increasing
        got = summarise(shuffled).set_index("method").loc[["dcat"], cols].to_numpy(float)
        assert np.array_equal(got, ref), (k, got, ref)
    rows = [{"method": m, "lam": np.nan if m == "none" else 1.0, "n_samples": 300, "seed": s, "data_seed": d,
             "f1": 0.7 + (0.01 * (d + 1) if m == "dcat" else 0.0)}
            for d in (2, 0, 1) for s in range(10) for m in ("none", "dcat")]
    pooled, _ = summarise_draws(pd.DataFrame(rows), draw="data_seed")
    assert pooled.set_index("method").loc["dcat", "draw_means"] == "+0.0100, +0.0200, +0.0300"
