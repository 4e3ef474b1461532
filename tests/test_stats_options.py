"""dcatkit.stats: options that must reach every row (per-draw rows' min_seeds and test, the
Monte Carlo seed), the treatment check and a cell without an interval."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from dcatkit.stats import call, signflip_test, summarise, summarise_draws

DIFFS = {0: [0.10, 0.12, 0.08, 0.11], 1: [0.09, 0.13, 0.10, 0.07]}     # dcat - none, per draw and seed


def _two_draws():
    rows = []
    for draw, ds in DIFFS.items():
        for seed, dv in enumerate(ds):
            base = 0.5 + 0.01 * seed + 0.02 * draw
            rows += [dict(method="none", lam=0.0, n_samples=300, data_seed=draw, seed=seed, f1=base),
                     dict(method="dcat", lam=1.0, n_samples=300, data_seed=draw, seed=seed, f1=base + dv)]
    return pd.DataFrame(rows)


def test_per_draw_rows_use_the_min_seeds_and_test_asked_for():
    _, per = summarise_draws(_two_draws(), min_seeds=3, test="t")
    per = per[per.method == "dcat"].sort_values("data_seed")
    assert list(per.data_seed) == [0, 1]
    for r, ds in zip(per.itertuples(), DIFFS.values()):
        d = np.array(ds)
        half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))    # the t-interval by hand
        assert r.min_seeds == 3 and r.test == "t" and r.n_pairs == 4
        assert r.ci_low_cell == pytest.approx(d.mean() - half) and r.ci_high_cell == pytest.approx(d.mean() + half)
        assert r.call == "helps"          # 4 pairs >= min_seeds 3, interval above 0
    # the default: 4 pairs are too few, and the test is the exact sign-flip
    _, per10 = summarise_draws(_two_draws())
    assert (per10[per10.method == "dcat"].call == "too few seeds").all()
    assert (per10[per10.method == "dcat"].test == "exact sign-flip").all()


def test_a_treatment_without_the_method_column_is_refused():
    df = _two_draws()[lambda d: d.data_seed == 0]
    with pytest.raises(ValueError, match="must include the method column 'method'"):
        summarise(df, treatment=("lam",))


def _naive_monte_carlo_p(d, seed, n_resamples=9999):
    """p = 2 min(P(flipped sum >= observed), P(flipped sum <= observed)), over the identity and
    ``n_resamples`` patterns drawn as rows of 0/1 (1: flip) from ``default_rng(seed)``."""
    flips = np.vstack([np.zeros((1, len(d))), np.random.default_rng(seed).integers(0, 2, (n_resamples, len(d)))])
    sums = (1 - 2 * flips) @ d
    obs, tol = d.sum(), 1e-12
    return min(1.0, 2 * min(np.mean(sums >= obs - tol), np.mean(sums <= obs + tol)))


def test_monte_carlo_sign_flip_draws_its_patterns_from_the_seed_given():
    d = np.random.default_rng(1).normal(0.01, 0.05, 20)          # 20 > 16 seeds: Monte Carlo
    ps = {}
    for seed in (0, 7, 8):
        ps[seed] = signflip_test(d, rng=seed).p
        assert ps[seed] == pytest.approx(_naive_monte_carlo_p(d, seed), abs=1e-12)
        assert signflip_test(d, rng=np.random.default_rng(seed)).p == ps[seed]
    assert len(set(ps.values())) == 3


def test_a_cell_without_an_interval_is_not_called_no_evidence():
    """A NaN bound with enough seeds (and draws) has no call and no true reason for none: refused,
    not "no evidence" (NaN compares False) nor "too few seeds" (12 >= 10 is not too few)."""
    for draws in (None, 3):
        with pytest.raises(ValueError, match=r"call needs the cell's interval: got \[nan, nan\] with 12 paired "
                                             r"seeds \(min_seeds 10\).*pass its columns"):
            call(0.05, np.nan, np.nan, 12, n_draws=draws)
    assert call(0.05, np.nan, np.nan, 9) == "too few seeds"                  # its true reason
    assert call(0.05, np.nan, np.nan, 12, n_draws=1) == "too few draws"
    assert call(0.05, 0.01, 0.09, 12) == "helps"


@pytest.mark.parametrize("min_seeds", [1, 0, 2.5, True])
def test_a_min_seeds_below_two_is_refused_not_printed_as_too_few_seeds(min_seeds):
    """min_seeds=1 with the t: one pair has no t-interval, and the cell read 'too few seeds: 1 paired,
    1 needed'. No test can call a cell of fewer than 2 seeds, so such a min_seeds is refused."""
    rows = [dict(method=m, lam=1.0, n_samples=300, seed=0, f1=0.5 + (0.1 if m == "dcat" else 0.0))
            for m in ("none", "dcat")]
    with pytest.raises(ValueError, match=rf"min_seeds must be an integer >= 2, got {min_seeds!r}: a t-interval"):
        summarise(pd.DataFrame(rows), min_seeds=min_seeds, test="t")
    two = [dict(r, seed=s, f1=r["f1"] + 0.01 * s * (1 + (r["method"] == "dcat"))) for r in rows for s in (0, 1)]
    assert summarise(pd.DataFrame(two), min_seeds=2, test="t").set_index("method").loc["dcat", "call"] == "helps"


@pytest.mark.parametrize("kw, message", [
    (dict(correction="bonf"), r"correction must be one of \('holm', 'bonferroni', 'none'\), got 'bonf'"),
    (dict(correction="Holm"), "correction must be one of"),
    (dict(test="T"), r"test must be one of \('signflip', 't'\), got 'T'"),
    (dict(confidence=1.0), r"confidence must be in \(0, 1\), got 1.0"),
])
def test_a_misspelt_option_or_a_confidence_of_one_is_refused_by_its_name(kw, message):
    """A misspelt correction or test is refused, not read as Holm / the t-test, and confidence 1 is
    named (not an alpha of 0 met inside a cell's interval)."""
    rows = [dict(method=m, lam=1.0, n_samples=300, seed=s, f1=0.5 + 0.01 * s + (0.05 if m == "dcat" else 0.0))
            for m in ("none", "dcat") for s in range(10)]
    with pytest.raises(ValueError, match=message):
        summarise(pd.DataFrame(rows), **kw)
