"""Seed statistics: does a transfer method help, hurt, or is its effect not yet told apart from zero?

Every claim of "helps" or "hurts" in the kit comes from here. The unit is the
*paired difference*: a method's metric minus the metric of the baseline trained
with the same seed on the same data (same training-set size, same split, same
fold, same data draw), so the seed-to-seed spread both share cancels.

**Per cell** (a method, a lambda, a size, ...) the test is the exact *sign-flip
permutation test* of the mean difference (Fisher's randomisation test): if the
method does nothing, a run and its same-seed baseline are exchangeable, so each
difference is as likely to carry either sign. The p-value counts the 2^n sign
patterns (``n <= 16`` paired seeds; a Monte Carlo draw of ``n_resamples``
patterns above) whose mean is at least as extreme, and the interval is its exact
inversion (Hartigan 1969): the order statistics of the 2^n - 1 subset means.
Why this test: in ``benchmarks/null_tables.py`` (10 paired seeds, 2000 null sets
each) the BCa bootstrap interval the kit used before covered 0 in 0.84-0.91 of
them, the sign-flip interval in 0.951-0.968 under normal, heavy-tailed (t3),
skewed-but-exchangeable and tied/discrete (F1 on 50 test samples) differences:
exact by construction when the differences are symmetric about 0, which a method
that does nothing guarantees (its run and the baseline's are exchangeable). The
t-interval (``test="t"``) did as well (0.952-0.971) but leans on normality; the
sign-flip test needs none, so it is the default, and the t is what the pooled
draw level uses (below: 3 draws allow only 8 sign patterns). Neither holds for a
method that changes the *shape* of F1 while keeping its mean (a centred
exponential difference, skewness 2): 0.90 for both at 10 seeds, 0.88 for BCa.
The interval and the p-value come from one construction, so an interval excludes
0 exactly when its p-value is at most its level.

**Across the cells printed together** (the *family*: by default every
non-baseline cell of the table with at least ``min_seeds`` pairs, or one family
per value of the ``family=`` columns) the calls are corrected by Holm's
step-down procedure (family-wise error <= 1 - confidence: the chance that *any*
"helps"/"hurts" of a table with no effect anywhere is printed). ``p_adj`` is
Holm's adjusted p-value. The printed interval of each cell is the one at the
level Holm tested it at: alpha / (m - j) for the cell with the (j+1)-th smallest
p-value while Holm keeps rejecting, and alpha / (the number of cells left) for
every cell after Holm stopped. So **the call is read off the printed interval**
("helps": it lies above 0, "hurts": below, "no evidence": it holds 0) and always
agrees with ``p_adj <= alpha``, alpha being ``alpha_of(confidence)`` (1 - confidence rounded
to 12 decimals: 0.1 at 0.9, not the float 0.09999999999999998; ``p_value`` and ``p_adj`` are
rounded to 12 decimals alike, so a p-value equal to alpha in exact arithmetic, such as Holm's
3 x 0.05 at confidence 0.85, compares equal to it). Each printed interval is on its own a
(1 - alpha/m)- to (1 - alpha)-level interval; as a set only
``correction="bonferroni"`` (every interval at alpha/m) promises *simultaneous*
coverage, at the price of fewer calls. ``correction="none"`` gives per-cell 95% intervals (not for claims made
from a whole table). With 10 seeds the smallest sign-flip p-value is 2/1024: a
family of more than 25 cells cannot call anything at 95% family-wise.

**Data draws** (``draw="data_seed"``): runs pair within (draw, seed); a cell's
effect is the mean over draws of the per-draw mean differences, inferred at the
draw level with a t-interval on the D draw means (D - 1 degrees of freedom).
That is the exact test of the balanced one-way random-effects model: the effect
may differ from draw to draw (a draw x method interaction), and a claim must hold
for the population of draws, not for the one drawn. With D = 3 the t has 2
degrees of freedom and the interval is wide: that is the honest price of 3
draws. A pooled cell of one draw is "too few draws" (never a call, whatever its
seeds). ``summarise_draws`` also returns the per-draw rows (descriptive,
uncorrected).

Columns of ``summarise`` per cell: ``mean``, ``std`` (ddof=1), ``n``;
``n_pairs``, ``baseline_mean`` and ``paired_mean`` (the paired baselines' and the cell's
paired runs' means, weighted as ``diff_mean`` is, so ``paired_mean - baseline_mean ==
diff_mean``; ``mean`` counts every run of the cell, paired or not), ``diff_mean``,
``diff_std``; ``ci_low``,
``ci_high`` (the family-adjusted interval the call is read from), ``level`` (its
two-sided confidence), ``ci_low_cell``, ``ci_high_cell`` (the uncorrected
interval at ``confidence``); ``p_value`` (the cell's own test), ``p_adj``,
``family_size``, ``correction``, ``test``, ``confidence``, ``call``;
``n_better`` / ``n_worse``; with ``draw``: ``n_draws``, ``draw_means``,
``draw_sd``. ``verdict`` turns these into plain words and names the family and
the method once.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

MIN_SEEDS = 10   # fewer paired seeds than this: no "helps" / "hurts" is said
N_EXACT = 16     # up to this many paired seeds the sign-flip test enumerates all 2^n sign patterns
CORRECTIONS = ("holm", "bonferroni", "none")
TESTS = ("signflip", "t")


def bootstrap_ci(diff, confidence: float = 0.95, n_resamples: int = 9999, method: str = "BCa",
                 rng: int | np.random.Generator = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean of ``diff`` (1-D: one paired
    difference per seed), resampling the differences with ``scipy.stats.bootstrap``.
    All differences equal -> (d, d); fewer than 2 -> (nan, nan).

    Kept for comparison only: at 10 seeds its 95% interval covers about 0.91
    (see the module docstring); verdicts use the sign-flip test."""
    d = _diffs(diff)
    if len(d) < 2:
        return float("nan"), float("nan")
    if np.all(d == d[0]):                 # no spread: every resample has the same mean
        return float(d[0]), float(d[0])
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    res = sps.bootstrap((d,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                        method=method, rng=gen)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def wilcoxon_p(diff) -> float:
    """Two-sided paired Wilcoxon signed-rank p-value of ``diff`` (zero differences
    dropped, as in Wilcoxon's original test). All zero -> 1.0; none -> nan.
    Not used for verdicts (it tests the median of the Walsh averages, not the mean)."""
    d = np.asarray(diff, dtype=float)
    if len(d) == 0:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    return float(sps.wilcoxon(d).pvalue)


def _diffs(diff) -> np.ndarray:
    d = np.asarray(diff, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"diff must be 1-D (one paired difference per seed), got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError(f"diff has non-finite values: {d[~np.isfinite(d)]}")
    return d


_PATTERNS: dict[int, np.ndarray] = {}


def _all_subsets(n: int) -> np.ndarray:
    """(2^n, n) 0/1 matrix: row k flips the seeds whose bit is set in k (row 0 flips none)."""
    if n not in _PATTERNS:
        _PATTERNS[n] = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
    return _PATTERNS[n]


class CellTest:
    """One cell's test of "mean paired difference = 0": ``p`` (two-sided) and
    ``interval(alpha)``, a two-sided 1 - alpha interval that excludes 0 exactly
    when ``p <= alpha`` (sign-flip) or ``p < alpha`` (t)."""

    def __init__(self, p: float, interval):
        self.p, self._interval = float(p), interval

    def interval(self, alpha: float) -> tuple[float, float]:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        return self._interval(alpha)


def signflip_test(diff, *, n_exact: int = N_EXACT, n_resamples: int = 9999,
                  rng: int | np.random.Generator = 0) -> CellTest:
    """Exact sign-flip permutation test of the mean of ``diff`` and its inverted interval.

    Flipping the signs of the seeds in a set S changes the sum of (d_i - mu) by
    -2 sum_S (d_i - mu), so a flipped pattern is at least as large as the observed
    one exactly when mean_S(d) <= mu. Hence, over the N sign patterns (all 2^n,
    or the identity plus ``n_resamples`` random ones when n > ``n_exact``),
    ``p+(mu) = #{S: mean_S(d) <= mu} / N`` (the empty S counting always),
    ``p-(mu)`` likewise with >=, p = min(1, 2 min(p+(0), p-(0))), and the
    1 - alpha interval is [the (K+1)-th smallest, the (K+1)-th largest] subset
    mean, K = floor(alpha/2 N), the empty S taken as -inf / +inf (Hartigan 1969).
    A subset mean within 1e-12 of 0 (relative) is 0, so ties such as
    [0]*9 + [0.05] give ci_low = 0.0 exactly and "no evidence"."""
    d = _diffs(diff)
    n = len(d)
    if n == 0:
        return CellTest(float("nan"), lambda a: (float("nan"), float("nan")))
    if n <= n_exact:
        flips = _all_subsets(n)
    else:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        flips = np.vstack([np.zeros((1, n)), gen.integers(0, 2, (n_resamples, n))]).astype(np.float64)
    size = flips.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (flips @ d) / size                        # (N,) subset means; the empty set -> nan
    scale = max(float(np.abs(d).max()), 1e-300)
    means[np.abs(means) <= 1e-12 * scale] = 0.0
    empty = size == 0
    asc = np.sort(np.where(empty, -np.inf, means))         # p+(mu) = #{asc <= mu} / N
    desc = -np.sort(-np.where(empty, np.inf, means))       # p-(mu) = #{desc >= mu} / N
    N = len(means)
    p_plus, p_minus = (asc <= 0).sum() / N, (desc >= 0).sum() / N
    p = min(1.0, 2 * min(p_plus, p_minus))

    def interval(alpha):
        k = int(np.floor(alpha / 2 * N + 1e-9))
        return float(asc[k]), float(desc[k])
    return CellTest(p, interval)


def t_test(diff) -> CellTest:
    """One-sample t-test of the mean of ``diff`` (n - 1 df) and its t-interval.
    No spread (every difference equal): nothing to test the mean against, so p = 1 and
    the interval is unbounded (no call), or [0, 0] when every difference is 0."""
    d = _diffs(diff)
    n = len(d)
    if n < 2:
        return CellTest(float("nan"), lambda a: (float("nan"), float("nan")))
    m, se = d.mean(), d.std(ddof=1) / np.sqrt(n)
    if se <= 1e-12 * np.abs(d).max():   # n equal values (up to rounding): the spread is unknown, not zero
        return CellTest(1.0, lambda a: (0.0, 0.0) if m == 0 else (-np.inf, np.inf))
    p = 2 * sps.t.sf(abs(m / se), n - 1)
    return CellTest(p, lambda a: (float(m - sps.t.ppf(1 - a / 2, n - 1) * se),
                                  float(m + sps.t.ppf(1 - a / 2, n - 1) * se)))


def signflip_p(diff, **kw) -> float:
    """Two-sided p-value of the sign-flip test (``signflip_test``)."""
    return signflip_test(diff, **kw).p


def signflip_ci(diff, confidence: float = 0.95, **kw) -> tuple[float, float]:
    """The sign-flip test's inverted interval of the mean of ``diff`` at ``confidence``."""
    return signflip_test(diff, **kw).interval(alpha_of(confidence))


P_DECIMALS = 12   # alpha and the p-values summarise prints are rounded to this many decimals


def alpha_of(confidence: float) -> float:
    """The alpha of a ``confidence``: ``1 - confidence`` rounded to ``P_DECIMALS`` decimals, so
    confidence 0.9 gives 0.1, not the float ``1 - 0.9 = 0.09999999999999998`` (against which a
    p-value of exactly 0.1 would read as above alpha while the interval excludes 0)."""
    return round(1 - float(confidence), P_DECIMALS)


def _rounded_p(p) -> np.ndarray:
    """p-values rounded to ``P_DECIMALS`` decimals: a p-value equal to alpha in exact arithmetic
    compares equal to ``alpha_of(confidence)`` (Holm's 3 x 0.05 is 0.15000000000000002 in floating
    point, Bonferroni's likewise), so ``p_adj <= alpha`` and the interval read the same."""
    return np.round(np.asarray(p, dtype=float), P_DECIMALS)


def holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and is not counted):
    sorted ascending, p_adj(j) = max over i <= j of min(1, (m - i + 1) p(i))."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def _family_levels(tests: list[CellTest], alpha: float, correction: str) -> tuple[np.ndarray, np.ndarray]:
    """(levels, p_adj): the two-sided alpha of each cell's printed interval, and the adjusted p
    (``_rounded_p``: a p_adj equal to alpha in exact arithmetic is not read as above it)."""
    m = len(tests)
    p = np.array([t.p for t in tests], dtype=float)
    if correction == "none":
        return np.full(m, alpha), _rounded_p(p)
    if correction == "bonferroni":
        return np.full(m, alpha / m), _rounded_p(np.minimum(1.0, m * p))
    levels = np.full(m, np.nan)
    order = np.argsort(p, kind="stable")
    for j, i in enumerate(order):                 # Holm: step down while the interval excludes 0
        lo, hi = tests[i].interval(alpha / (m - j))
        if lo > 0 or hi < 0:
            levels[i] = alpha / (m - j)
        else:
            levels[order[j:]] = alpha / (m - j)    # stopped: every cell left at the level Holm stopped at
            break
    return levels, _rounded_p(holm(p))


def _missing(v) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and bool(np.isnan(v)))


def _key(values) -> tuple:
    """A row key in which every missing value (None, a NaN of any float type) is the same: NaN !=
    NaN, so a run and its baseline with fold = NaN would otherwise never pair (pd.NA and NaT are
    singletons, which a dict finds by identity)."""
    return tuple(None if _missing(v) else v for v in values)


def _check(df, metric, treatment, context, pair, baseline, method_col, draw, family, correction, test, confidence,
           min_seeds, need_baseline=True):
    if method_col not in treatment:
        raise ValueError(f"treatment {treatment} must include the method column {method_col!r}")
    missing = [c for c in (*treatment, *context, *pair, *([draw] if draw else []), *family, metric)
               if c not in df.columns]
    if missing:
        raise ValueError(f"results lack column(s) {missing}; they have {list(df.columns)}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if isinstance(min_seeds, bool) or not isinstance(min_seeds, (int, np.integer)) or min_seeds < 2:
        raise ValueError(f"min_seeds must be an integer >= 2, got {min_seeds!r}: a t-interval needs 2 paired "
                         "seeds and a sign-flip test of 1 has p = 1, so fewer can never be tested (a cell "
                         f"below it reads 'too few seeds'; the default is MIN_SEEDS = {MIN_SEEDS})")
    if draw is None and "data_seed" in pair and df["data_seed"].nunique(dropna=False) > 1:
        raise ValueError("pair= holds 'data_seed' with several data draws: that treats every draw's seeds as "
                         "independent replicates and ignores how much draws differ (it calls effects that "
                         "do not generalise). Pool the draws instead: draw=\"data_seed\" (a t on the draw "
                         "means), with pair= the seed columns only")
    if need_baseline and not (df[method_col] == baseline).any():
        raise ValueError(f"no baseline runs ({method_col} == {baseline!r}) to pair with; "
                         f"{method_col} values: {sorted(map(str, df[method_col].unique()))}")
    cells = context + treatment
    for c in (c for c in family if c not in cells):     # a family column beside the cell's: one value per cell
        k = df.groupby(cells, dropna=False, sort=False)[c].nunique(dropna=False)
        if (k > 1).any():
            key = k.index[int(np.argmax(k.to_numpy()))]
            sel = np.ones(len(df), dtype=bool)
            for n, v in zip(cells, key if isinstance(key, tuple) else (key,)):
                sel &= (df[n].isna() if pd.isna(v) else df[n] == v).to_numpy()
            raise ValueError(f"family column {c!r} is neither a context nor a treatment column and varies within a "
                             f"cell: {_shown(cells, key)} has {c} values {sorted(map(str, df.loc[sel, c].unique()))}. "
                             f"A cell belongs to one family: give family= columns among context {context} / "
                             f"treatment {treatment}, or a column with one value per cell")
    lvl = [draw] if draw else []
    for key, g in df.groupby(cells + lvl + pair, dropna=False, sort=False):
        if len(g) > 1:
            raise ValueError(f"{len(g)} runs share {_shown(cells + lvl + pair, key)}: one run per seed and "
                             "cell expected (drop duplicates, or add the column that tells them apart: to context=, or, for "
                             "runs on several data draws, pass draw=, e.g. draw=\"data_seed\")")
    base = df[df[method_col] == baseline]
    for key, g in base.groupby(context + lvl + pair, dropna=False, sort=False):
        if len(g) > 1:
            shown = g[[*context, *lvl, *pair, *treatment, metric]].to_string(index=True)
            raise ValueError(f"ambiguous baseline: {len(g)} baseline rows ({method_col} == {baseline!r}) match "
                             f"{_shown(context + lvl + pair, key)}, which one pairs with the methods' runs?\n"
                             f"{shown}\nkeep one, or add the column that tells them apart to context=")


def _shown(names: list, key) -> dict:
    """A group's key as a message shows it: {'seed': 0}, not {'seed': np.int64(0)} (numpy 2's repr,
    which pandas < 3 hands out as group keys)."""
    key = key if isinstance(key, tuple) else (key,)
    return {n: v.item() if hasattr(v, "item") else v for n, v in zip(names, key)}


def _machines(df) -> list | None:
    """Each row's machine (``provenance.machine`` of its ``env_*`` columns), or None when the
    table has no such columns (a table not read from run records)."""
    from .provenance import MACHINE_KEYS, machine

    cols = [f"env_{k}" for k in MACHINE_KEYS if f"env_{k}" in df.columns]
    if not cols:
        return None
    return [machine({c[4:]: (None if pd.isna(v) else v) for c, v in zip(cols, vals)})
            for vals in df[cols].itertuples(index=False)]


def _mixed_pairs(df, context, pair, baseline, method_col, draw) -> list[tuple[dict, str, str]]:
    """The pairs whose run and baseline partner were trained on machines with other names
    (both known): (the run's key, its machine, the partner's machine)."""
    ms = _machines(df)
    if ms is None:
        return []
    lvl = [draw] if draw else []
    keys = [_key(k) for k in df[context + lvl + pair].itertuples(index=False)]
    is_base = (df[method_col] == baseline).to_numpy()
    base = {k: m for k, m, b in zip(keys, ms, is_base) if b}
    out = []
    for k, m, b, row in zip(keys, ms, is_base, df[[method_col] + context + lvl + pair].itertuples(index=False)):
        pm = base.get(k)
        if not b and m is not None and pm is not None and m != pm:
            out.append((_shown([method_col] + context + lvl + pair, tuple(row)), m, pm))
    return out


def _warn_mixed(mixed: list, n_runs: int) -> None:
    if not mixed:
        return
    from .warn import warn

    pairs = sorted({(m, pm) for _, m, pm in mixed})
    warn(f"{len(mixed)} of the {n_runs} runs are paired with a baseline trained on another machine "
         f"(e.g. {mixed[0][0]}: {mixed[0][1]} vs the baseline's {mixed[0][2]}"
         f"{f'; {len(pairs)} machine pairs in all' if len(pairs) > 1 else ''}). A run's numbers depend "
         "on the machine (benchmarks/RESULTS.md, 'Run to run'), so these differences mix the machine's "
         "effect with the method's: train both sides of every pair on one machine (redo=True / --redo "
         "there) before reading a call off them.")


def _cell_rows(df, metric, treatment, context, pair, baseline, method_col, draw, carry=()):
    """Per cell: its descriptive row (with the ``carry`` columns' one value per cell) and its
    paired differences, per draw."""
    cells = context + treatment
    lvl = [draw] if draw else []
    b = df[df[method_col] == baseline]
    base = {_key(k): v for k, v in zip(b[context + lvl + pair].itertuples(index=False), b[metric])}
    out = []
    for key, g in df.groupby(cells, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g.sort_values(lvl + pair, kind="stable")          # seed order: independent of row order
        vals = g[metric].to_numpy(float)
        row = {**dict(zip(cells, key)), **{c: g[c].iloc[0] for c in carry}, "n": len(g), "mean": vals.mean(),
               "std": vals.std(ddof=1) if len(g) > 1 else float("nan")}
        is_base = g[method_col].iloc[0] == baseline
        partners = [base.get(_key(k)) for k in g[context + lvl + pair].itertuples(index=False)]
        draws = g[draw].tolist() if draw else [None] * len(g)
        per_draw: dict = {}
        for v, bv, dv in zip(vals, partners, draws):
            if bv is not None and not is_base:
                per_draw.setdefault(_key([dv]), []).append((v, bv))
        out.append((row, is_base, per_draw))
    return out


def summarise(df: pd.DataFrame, metric: str = "f1", *, treatment: Sequence[str] = ("method", "lam"),
              context: Sequence[str] = ("n_samples",), pair: Sequence[str] = ("seed",),
              baseline: str = "none", method_col: str = "method", confidence: float = 0.95,
              correction: str = "holm", family: Sequence[str] | None = None, draw: str | None = None,
              test: str = "signflip", min_seeds: int = MIN_SEEDS, n_resamples: int = 9999,
              rng: int = 0) -> pd.DataFrame:
    """Per-cell summaries of a tidy results table (one row per run), with family-wise calls.

    A *cell* is one value of ``context + treatment`` (e.g. n_samples, method, lam).
    Each run is paired with the baseline run (``method_col == baseline``) that has
    the same ``context``, ``draw`` and ``pair`` values (e.g. same n_samples and
    seed): the baseline's own treatment columns (its lam) are ignored. The family
    is every non-baseline cell with at least ``min_seeds`` pairs (and, with
    ``draw``, at least 2 draws), or one family per value of the ``family``
    columns; ``correction`` ("holm", "bonferroni", "none") is applied within it.
    A ``family`` column is a context or treatment column, or one with a single value
    in each cell (e.g. a study's kind beside ``context=("study", ...)``), which the
    rows then carry; one that varies within a cell is refused (a cell is in one family).
    ``test`` ("signflip" or "t") is the per-cell test when ``draw`` is None; with
    ``draw`` the pooled cell is always a t on the draw means. Columns: see the
    module docstring. Baseline cells get NaN in the difference columns.

    Raises if a cell has two runs with the same ``pair`` values (which one is the
    seed's?), if several baseline rows match one context + pair (ambiguous
    baseline), if a ``family`` column varies within a cell, or if the columns are missing.
    """
    return summarise_draws(df, metric, treatment=treatment, context=context, pair=pair, baseline=baseline,
                           method_col=method_col, confidence=confidence, correction=correction, family=family,
                           draw=draw, test=test, min_seeds=min_seeds, n_resamples=n_resamples, rng=rng,
                           _per_draw=False)[0]


def summarise_draws(df: pd.DataFrame, metric: str = "f1", *, treatment: Sequence[str] = ("method", "lam"),
                    context: Sequence[str] = ("n_samples",), pair: Sequence[str] = ("seed",),
                    baseline: str = "none", method_col: str = "method", confidence: float = 0.95,
                    correction: str = "holm", family: Sequence[str] | None = None, draw: str | None = "data_seed",
                    test: str = "signflip", min_seeds: int = MIN_SEEDS, n_resamples: int = 9999,
                    rng: int = 0, _per_draw: bool = True, _warn: bool = True,
                    _need_baseline: bool = True,
                    _carry: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``(pooled, per_draw)``: ``summarise``'s rows pooled over ``draw`` (see there), and
    one row per draw and cell (each draw summarised alone, per-cell intervals at
    ``confidence`` with ``correction="none"``: descriptive, not claims) with the
    ``draw`` column; ``per_draw`` is None when ``draw`` is None."""
    treatment, context, pair = list(treatment), list(context), list(pair)
    fam = [] if family is None else ([family] if isinstance(family, str) else list(family))
    _check(df, metric, treatment, context, pair, baseline, method_col, draw, fam, correction, test, confidence,
           min_seeds, _need_baseline)
    if _warn:                             # once per table (not again for each draw's rows)
        _warn_mixed(_mixed_pairs(df, context, pair, baseline, method_col, draw),
                    int((df[method_col] != baseline).sum()))
    alpha = alpha_of(confidence)          # the one alpha of the intervals and of p_adj <= alpha
    rows, tests = [], []
    carry = [c for c in (*fam, *_carry) if c not in context + treatment]     # family columns beside the cell's
    for row, is_base, per_draw in _cell_rows(df, metric, treatment, context, pair, baseline, method_col, draw,
                                             list(dict.fromkeys(carry))):
        d = np.array([v - b for ps in per_draw.values() for v, b in ps], dtype=float)
        if not np.isfinite(d).all():
            cell = _shown(treatment + context, tuple(row[c] for c in treatment + context))
            raise ValueError(f"{metric} is missing or not finite for a run of {cell} or its baseline partner"
                             f" ({int((~np.isfinite(d)).sum())} of {len(d)} pairs): "
                             "drop the failed runs (and their partners) or rerun them")
        # the paired runs' and baselines' means, weighted as diff_mean is (with draws: each draw the same)
        groups = list(per_draw.values()) if draw else [[p for ps in per_draw.values() for p in ps]]
        row.update({"n_pairs": len(d) if not is_base else np.nan,
                    "baseline_mean": np.mean([np.mean([b for _, b in ps]) for ps in groups]) if len(d) else np.nan,
                    "paired_mean": np.mean([np.mean([v for v, _ in ps]) for ps in groups]) if len(d) else np.nan,
                    "diff_mean": d.mean() if len(d) else np.nan,
                    "diff_std": d.std(ddof=1) if len(d) > 1 else np.nan,
                    "n_better": int((d > 0).sum()) if len(d) else np.nan,
                    "n_worse": int((d < 0).sum()) if len(d) else np.nan})
        t, testable = None, False
        if draw:
            means = np.array([np.mean([v - b for v, b in ps]) for ps in per_draw.values()])
            row.update({"n_draws": len(means) if not is_base else np.nan,
                        "draw_means": ", ".join(signed(m, 4) for m in means) if len(means) else "",
                        "draw_sd": means.std(ddof=1) if len(means) > 1 else np.nan})
            if len(d):
                row["diff_mean"] = means.mean()               # every draw weighs the same
                t = t_test(means)
                testable = len(d) >= min_seeds and len(means) >= 2
        elif len(d):
            t = signflip_test(d, n_resamples=n_resamples, rng=rng) if test == "signflip" else t_test(d)
            testable = len(d) >= min_seeds
        lo, hi = t.interval(alpha) if t is not None and np.isfinite(t.p) else (np.nan, np.nan)
        tested = testable and t is not None and np.isfinite(t.p)     # untested: no interval to read a call off
        row.update({"ci_low": lo if tested else np.nan, "ci_high": hi if tested else np.nan,
                    "level": confidence if tested else np.nan, "ci_low_cell": lo, "ci_high_cell": hi,
                    "p_value": float(_rounded_p(t.p)) if t is not None else np.nan, "p_adj": np.nan,
                    "family_size": np.nan,
                    "min_seeds": min_seeds,
                    "correction": correction, "test": ("t on draw means" if draw else "t" if test != "signflip" else
                                                       "exact sign-flip" if len(d) <= N_EXACT else
                                                       f"sign-flip, Monte Carlo ({n_resamples} patterns)"),
                    "confidence": confidence})
        rows.append(row)
        tests.append(t if testable and np.isfinite(t.p) else None)
    groups: dict = {}
    for i in (i for i, t in enumerate(tests) if t is not None):
        groups.setdefault(_key([rows[i][c] for c in fam]), []).append(i)
    for idx in groups.values():
        levels, p_adj = _family_levels([tests[i] for i in idx], alpha, correction)
        for i, lev, pa in zip(idx, levels, p_adj):
            lo, hi = tests[i].interval(lev)
            rows[i].update({"ci_low": lo, "ci_high": hi, "level": 1 - lev, "p_adj": pa, "family_size": len(idx)})
    out = pd.DataFrame(rows)
    if _warn:
        alone = [_shown(context + treatment, tuple(r[c] for c in context + treatment))
                 for r in rows if r.get("n_pairs") == 0]
        if alone:
            from .warn import warn

            warn(f"{len(alone)} cell(s) have no baseline run to pair with (e.g. {alone[0]}): no run with "
                 f"{method_col} == {baseline!r} shares their {context + ([draw] if draw else []) + pair} values. "
                 "A missing or failed baseline, or the same value of another type (100 vs '100', 1 vs 1.0 is "
                 "fine) on one side; they show 'too few seeds'")
        left = [(r, int(r["n"] - r["n_pairs"])) for r in rows if r.get("n_pairs", 0) > 0 and r["n_pairs"] < r["n"]]
        if left:
            from .warn import warn

            r0, k0 = left[0]
            warn(f"{sum(k for _, k in left)} run(s) in {len(left)} cell(s) have no baseline partner and are left "
                 f"out of their cell's difference (e.g. {k0} of the {int(r0['n'])} runs of "
                 f"{_shown(context + treatment, tuple(r0[c] for c in context + treatment))}"
                 f"{'; a data draw without baseline runs leaves a cell fewer draws' if draw else ''}): a missing "
                 "or failed baseline run; rerun it to count them")
    out["call"] = [call(r.diff_mean, r.ci_low, r.ci_high, r.n_pairs, min_seeds, getattr(r, "n_draws", None))
                   if np.isfinite(r.family_size) else
                   (call(r.diff_mean, np.nan, np.nan, r.n_pairs, min_seeds, getattr(r, "n_draws", None))
                    if np.isfinite(r.n_pairs) else "baseline") for r in out.itertuples()]
    per_draw = None
    if draw and _per_draw:
        parts = []
        for v, g in df.groupby(draw, dropna=False, sort=True):
            s = summarise_draws(g, metric, treatment=treatment, context=context, pair=pair, baseline=baseline,
                                method_col=method_col, confidence=confidence, correction="none", draw=None,
                                test=test, min_seeds=min_seeds, n_resamples=n_resamples, rng=rng, _per_draw=False,
                                _warn=False, _need_baseline=False,
                                _carry=carry)[0]     # a draw without baselines: no pairs
            parts.append(s.assign(**{draw: v}))
        per_draw = pd.concat(parts, ignore_index=True)
    return out, per_draw


def call(diff_mean: float, ci_low: float, ci_high: float, n_pairs: float, min_seeds: int = MIN_SEEDS,
         n_draws: float | None = None) -> str:
    """One cell in words: "helps" (interval above 0), "hurts" (below 0), "no evidence"
    (interval holds 0), "too few seeds" (fewer than ``min_seeds`` pairs) or, for a cell
    pooled over data draws (``n_draws`` given), "too few draws" (one draw: its mean has no
    spread to test against, however many seeds). Give it ``summarise``'s ``ci_low`` /
    ``ci_high``: they are already family-adjusted. An unbounded interval (the level Holm
    asks is below the smallest p the seeds can give, or the draw means do not vary) is
    "no evidence". A NaN bound with enough seeds and draws is refused: ``summarise`` leaves
    an interval NaN only for a cell with too few of them, so there is no call to read and no
    true reason to give ("too few seeds" would be false)."""
    if not np.isfinite(n_pairs) or n_pairs < min_seeds:
        return "too few seeds"
    if n_draws is not None and np.isfinite(n_draws) and n_draws < 2:
        return "too few draws"
    if np.isnan(ci_low) or np.isnan(ci_high):        # no interval, yet enough seeds and draws to have one
        raise ValueError(f"call needs the cell's interval: got [{ci_low}, {ci_high}] with {n_pairs:g} paired "
                         f"seeds (min_seeds {min_seeds}){'' if n_draws is None else f' over {n_draws:g} draws'}. "
                         "summarise's ci_low / ci_high are NaN only for cells with too few seeds or draws: "
                         "pass its columns (or its 'call' column)")
    if ci_low > 0:
        return "helps"
    if ci_high < 0:
        return "hurts"
    return "no evidence"


def _num(x: float, d: int) -> str:
    if not np.isfinite(x):
        return f"{x:+}"
    s = f"{x:+.{d}f}"
    return "+" + s[1:] if float(s) == 0 else s          # never "-0.00"


def signed(x: float, digits: int = 3) -> str:
    """A difference with its sign: "+0.012", "-0.030"; a value that rounds to zero is
    "+0.000", never "-0.000" (a sign the shown digits cannot support)."""
    return _num(float(x), digits)


def format_interval(mean: float, low: float, high: float, digits: int = 2, max_digits: int = 6) -> str:
    """"+0.06 [+0.03, +0.09]". Digits are added (up to ``max_digits``) until no nonzero
    bound reads as 0, so an interval that excludes 0 never reads as touching it
    ("+0.010 [+0.004, +0.015]", not "+0.01 [+0.00, +0.01]"); a bound still rounding to
    0 at ``max_digits`` is written in e-notation. Zero is "+0.00", never "-0.00"."""
    m, lo, hi = _interval_parts(mean, low, high, digits, max_digits)
    return f"{m} [{lo}, {hi}]"


def format_bounds(low: float, high: float, digits: int = 2, max_digits: int = 6) -> str:
    """An interval's bounds alone, "[+0.03, +0.09]", written as ``format_interval`` writes them
    (digits widen until no nonzero bound reads as 0), for text that gives the estimate itself
    elsewhere."""
    _, lo, hi = _interval_parts(0.0, low, high, digits, max_digits)
    return f"[{lo}, {hi}]"


def _interval_parts(mean: float, low: float, high: float, digits: int = 2, max_digits: int = 6) -> tuple[str, str, str]:
    """``format_interval``'s three numbers as strings (the mean, the low and the high bound)."""
    d = digits
    while d < max_digits and any(x != 0 and np.isfinite(x) and round(x, d) == 0 for x in (low, high)):
        d += 1

    def bound(x):
        return f"{x:+.1e}" if x != 0 and np.isfinite(x) and round(x, d) == 0 else _num(x, d)
    return _num(mean, d), bound(low), bound(high)


INTERVALS = (("ci_low", "ci_high"), ("ci_low_cell", "ci_high_cell"))


COUNTS = ("n_pairs", "n_better", "n_worse", "n_draws", "family_size")   # summarise's columns that count
P_COLUMNS = ("p_value", "p_adj")                                      # summarise's p-values


def interval_table(rows: pd.DataFrame, columns: Sequence[str] | None = None, digits: int = 3) -> pd.DataFrame:
    """``summarise`` rows for display, so no printed bound contradicts the call: ``rows[columns]``
    (every column by default) with ``diff_mean`` and each interval (``ci_low`` / ``ci_high``,
    ``ci_low_cell`` / ``ci_high_cell``) as the strings ``format_interval(diff_mean, low, high,
    digits)`` writes, row by row (its digits widen until no bound that is not 0 reads as 0:
    "-0.0003", never "-0.000" above a "hurts"); ``diff_mean`` takes the digits of the row's
    ``ci_low`` / ``ci_high`` (of the other pair when those are not shown). Every other float
    column is rounded to ``digits`` (-0.0 shown as 0.0), but a count (``COUNTS``: seeds better
    and worse, pairs, draws, family size) is shown as the whole number it is ("6", not "6.0"), and a
    p-value (``P_COLUMNS``) that is not 0 but rounds to 0 as "< 0.001" (its column then as text,
    every p with ``digits`` decimals).
    A missing value (a baseline row, an untested cell's bounds) stays NaN (a count's: <NA>)."""
    cols = list(rows.columns) if columns is None else list(columns)
    missing = [c for c in cols if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack column(s) {missing}; they have {list(rows.columns)}")
    out = rows[cols].copy()
    for c in cols:
        if c in COUNTS and pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round().astype("Int64")            # summarise's counts are floats only for NaN
        elif c in P_COLUMNS and pd.api.types.is_float_dtype(out[c]) and ((out[c] > 0) & (out[c] < 0.5 * 10.0 ** -digits)).any():
            floor = f"{10.0 ** -digits:.{digits}f}"              # a p that rounds to 0 is not 0: "< 0.001"
            out[c] = pd.Series([np.nan if not np.isfinite(v) else f"< {floor}" if 0 < v < 0.5 * 10.0 ** -digits
                                else f"{v:.{digits}f}" for v in out[c].astype(float)], index=out.index, dtype=object)
        elif pd.api.types.is_float_dtype(out[c]) and not any(c in pair or c == "diff_mean" for pair in INTERVALS):
            out[c] = out[c].round(digits) + 0.0                  # + 0.0: -0.0 becomes 0.0
    shown = [pair for pair in INTERVALS if any(c in cols for c in pair)]
    mean = (rows["diff_mean"] if "diff_mean" in rows.columns else pd.Series(np.nan, index=rows.index)).astype(float)
    text = lambda x: np.nan if isinstance(x, str) and x.endswith("nan") else x  # noqa: E731
    means = [signed(m, digits) if np.isfinite(m) else np.nan for m in mean]
    for pair in reversed(shown):                 # the first pair shown sets diff_mean's digits
        lows, highs = [], []
        bounds = [rows[c].astype(float).to_numpy() if c in rows.columns else np.full(len(rows), np.nan) for c in pair]
        for i, (m, lo, hi) in enumerate(zip(mean, *bounds)):
            ms, los, his = _interval_parts(m, lo, hi, digits)
            lows.append(text(los))
            highs.append(text(his))
            if np.isfinite(m):
                means[i] = ms
        for c, v in zip(pair, (lows, highs)):
            if c in cols:
                out[c] = pd.Series(v, index=out.index, dtype=object)
    if "diff_mean" in cols:
        out["diff_mean"] = pd.Series(means, index=out.index, dtype=object)
    return out


def _where(values: list, group: list, over: str) -> str:
    """"n <= 700" for the smallest values, "n >= 2000" for the largest, "n = 300" for one,
    "every tested n" for all of them (several), else "n in {300, 2000}"."""
    name = "n" if over in ("n_train", "n_samples") else over
    fmt = lambda v: f"{v:g}" if isinstance(v, (int, float, np.number)) else str(v)   # noqa: E731
    if len(group) == 1:
        return f"{name} = {fmt(group[0])}"
    if group == values:              # "lam <= 100" read as a range; the values follow in parentheses
        return f"every tested {name}"
    if group == values[:len(group)]:
        return f"{name} <= {fmt(group[-1])}"
    if group == values[-len(group):]:
        return f"{name} >= {fmt(group[0])}"
    return f"{name} in {{{', '.join(map(fmt, group))}}}"


def family_note(rows: pd.DataFrame) -> str:
    """"Holm over 12 cells, 95% family-wise; exact sign-flip" from ``summarise`` rows
    (the tested ones); "" when they carry no family columns or none was tested."""
    if not {"family_size", "correction", "confidence", "test"} <= set(rows.columns):
        return ""
    r = rows[np.isfinite(rows["family_size"].astype(float))]
    if r.empty:
        return ""
    sizes = sorted({int(v) for v in r["family_size"]})
    size = " / ".join(map(str, sizes)) + (" cell" if sizes == [1] else " cells")
    conf = f"{100 * r['confidence'].iloc[0]:g}%"
    corr, test = r["correction"].iloc[0], " / ".join(dict.fromkeys(r["test"].astype(str)))
    if corr == "none":
        return f"per cell {conf}, not corrected for the other cells; {test}"
    return f"{corr.capitalize()} over {size}, {conf} family-wise; {test}"


DESCRIBED = {"helps": "interval above 0", "hurts": "interval below 0", "no evidence": "interval holds 0"}


def verdict(summary: pd.DataFrame, *, over: str = "n_samples", min_seeds: int | None = None, digits: int = 2,
            one_draw: bool = False, **where) -> str:
    """A plain-words verdict for one method from ``summarise``'s rows, along ``over``.

    ``where`` picks the rows (e.g. ``method="dcat", lam=1.0``); they must differ only
    in ``over``. Consecutive values with the same call are grouped::

        helps at n <= 700 (n = 300: +0.06 [+0.03, +0.09]; n = 700: +0.04 [+0.01, +0.07]);
        no evidence at n = 2000: +0.00 [-0.01, +0.02] (Holm over 12 cells, 95% family-wise; exact sign-flip)

    Each number is the mean paired difference and its (family-adjusted) interval,
    the call read off that interval; the family and the method are named once at
    the end. A cell with fewer than ``min_seeds`` paired seeds says "too few seeds
    at n = 300: 3 paired, 10 needed". The calls are ``summarise``'s (its ``call``
    column, made with its ``min_seeds``, which the summary records): ``min_seeds`` here
    may only repeat that value.

    ``one_draw=True`` words the calls as what each interval does (``DESCRIBED``: "interval
    below 0", ...) instead of "helps" / "hurts": for a summary of one data draw, which
    describes that draw and claims nothing about the method (a claim pools draws).
    """
    rows = summary
    for col, val in where.items():
        if col not in rows.columns:
            raise ValueError(f"summary has no column {col!r}; it has {list(rows.columns)}")
        rows = rows[rows[col].isna()] if val is None else rows[rows[col] == val]
    if over not in rows.columns:
        raise ValueError(f"summary has no column {over!r} to give the verdict along")
    if rows.empty:
        raise ValueError(f"no summary rows match {where}")
    if rows[over].duplicated().any():
        raise ValueError(f"the rows matching {where} repeat values of {over!r}: narrow them down "
                         f"(e.g. by lam) so each {over} appears once")
    rows = rows.sort_values(over)
    values = rows[over].tolist()
    if "min_seeds" not in rows.columns:              # rows made by hand, not by summarise: call them here
        made_with = MIN_SEEDS if min_seeds is None else min_seeds
    else:
        made_with = int(rows["min_seeds"].iloc[0])
    if min_seeds is not None and min_seeds != made_with:
        raise ValueError(f"these calls were made by summarise with min_seeds={made_with}; a verdict cannot "
                         f"change that (got min_seeds={min_seeds}): pass min_seeds={min_seeds} to summarise")
    min_seeds = made_with
    calls = (rows["call"].tolist() if "call" in rows.columns else
             [call(r.diff_mean, r.ci_low, r.ci_high, r.n_pairs, min_seeds, getattr(r, "n_draws", None))
              for r in rows.itertuples()])
    if one_draw and "n_draws" in rows.columns and (rows["n_draws"] > 1).any():
        raise ValueError("one_draw=True words a one-draw summary; these rows pool "
                         f"{int(rows['n_draws'].max())} data draws, so their calls are claims: drop one_draw")
    words = (lambda c: DESCRIBED.get(c, c)) if one_draw else (lambda c: c)
    parts, i = [], 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and calls[j + 1] == calls[i]:
            j += 1
        group = rows.iloc[i:j + 1]

        def num(r):
            if calls[i] == "too few seeds":
                return f"{0 if not np.isfinite(r.n_pairs) else int(r.n_pairs)} paired, {min_seeds} needed"
            if calls[i] == "too few draws":
                return f"{int(r.n_draws)} data draw, 2 needed"
            shown = format_interval(r.diff_mean, r.ci_low, r.ci_high, digits)
            if np.isinf(r.ci_low) or np.isinf(r.ci_high):
                test = str(getattr(r, "test", "exact sign-flip"))
                shown += (", unbounded: the draw means do not vary" if "draw" in test else
                          ", unbounded: the paired differences do not vary" if test == "t" else
                          f", unbounded: {int(r.n_pairs)} paired seeds cannot reach the level the correction asks")
            return shown
        nums = [num(r) for r in group.itertuples()]
        where_txt = _where(values, values[i:j + 1], over) if len(values) > 1 else ""
        if len(group) == 1:
            parts.append(f"{words(calls[i])}" + (f" at {where_txt}" if where_txt else "") + f": {nums[0]}")
        else:
            each = "; ".join(f"{_where(values, [v], over)}: {x}" for v, x in zip(values[i:j + 1], nums))
            parts.append(f"{words(calls[i])} at {where_txt} ({each})")
        i = j + 1
    note = family_note(rows[[c not in ("too few seeds", "too few draws") for c in calls]])
    return "; ".join(parts) + (f" ({note})" if note else "")
