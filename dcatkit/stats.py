"""Seed statistics: does a transfer method help, hurt, or is its effect not yet told apart from zero?

Every claim of "helps" or "hurts" in the kit comes from here. The unit is the
*paired difference*: a method's metric minus the metric of the baseline trained
with the same seed on the same data (same training-set size, same split, same
fold), so the seed-to-seed spread both share cancels. Per cell (a method, a
lambda, a size, ...) ``summarise`` reports:

- ``mean``, ``std`` (ddof=1) of the metric over the cell's runs, and ``n``;
- ``n_pairs`` runs that have a baseline partner, ``diff_mean``, ``diff_std``;
- ``ci_low``, ``ci_high``: a bootstrap confidence interval (default 95%, BCa) of
  the mean difference, resampling the per-seed differences
  (``scipy.stats.bootstrap``, a fixed ``rng`` so a table is reproducible);
- ``p_value``: the paired Wilcoxon signed-rank test (``scipy.stats.wilcoxon``,
  two-sided; exact for up to 50 pairs without ties or zero differences);
- ``n_better`` / ``n_worse``: seeds where the method beat / lost to its baseline.

``verdict`` turns these intervals into plain words ("helps at n <= 700: ...;
no evidence at n = 2000: ..."), and says "too few seeds" below ``MIN_SEEDS``
paired seeds rather than calling anything. With 10 seeds a bootstrap interval
is itself rough (percentile-type intervals are somewhat too narrow at small n):
read an interval that barely excludes zero as weak evidence.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

MIN_SEEDS = 10   # fewer paired seeds than this: no "helps" / "hurts" is said


def bootstrap_ci(diff, confidence: float = 0.95, n_resamples: int = 9999, method: str = "BCa",
                 rng: int | np.random.Generator = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean of ``diff`` (1-D: one paired
    difference per seed), resampling the differences with ``scipy.stats.bootstrap``.
    All differences equal -> (d, d); fewer than 2 -> (nan, nan)."""
    d = np.asarray(diff, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"diff must be 1-D (one paired difference per seed), got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError(f"diff has non-finite values: {d[~np.isfinite(d)]}")
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
    dropped, as in Wilcoxon's original test). All zero -> 1.0; none -> nan."""
    d = np.asarray(diff, dtype=float)
    if len(d) == 0:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    return float(sps.wilcoxon(d).pvalue)


def _key(values) -> tuple:
    """A row key in which every missing value (None, NaN) is the same."""
    return tuple(None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in values)


def summarise(df: pd.DataFrame, metric: str = "f1", *, treatment: Sequence[str] = ("method", "lam"),
              context: Sequence[str] = ("n_samples",), pair: Sequence[str] = ("seed",),
              baseline: str = "none", method_col: str = "method", confidence: float = 0.95,
              n_resamples: int = 9999, ci_method: str = "BCa", rng: int = 0) -> pd.DataFrame:
    """Per-cell summaries of a tidy results table (one row per run).

    A *cell* is one value of ``context + treatment`` (e.g. n_samples, method, lam).
    Each run is paired with the baseline run (``method_col == baseline``) that has
    the same ``context`` and ``pair`` values (e.g. same n_samples and seed): the
    baseline's own treatment columns (its lam) are ignored. Columns: see the module
    docstring. Baseline cells get NaN in the difference columns.

    Raises if a cell has two runs with the same ``pair`` values (which one is the
    seed's?), or if the columns are missing.
    """
    treatment, context, pair = list(treatment), list(context), list(pair)
    if method_col not in treatment:
        raise ValueError(f"treatment {treatment} must include the method column {method_col!r}")
    missing = [c for c in (*treatment, *context, *pair, metric) if c not in df.columns]
    if missing:
        raise ValueError(f"results lack column(s) {missing}; they have {list(df.columns)}")
    if not (df[method_col] == baseline).any():
        raise ValueError(f"no baseline runs ({method_col} == {baseline!r}) to pair with; "
                         f"{method_col} values: {sorted(map(str, df[method_col].unique()))}")
    cells = context + treatment
    for key, g in df.groupby(cells + pair, dropna=False, sort=False):
        if len(g) > 1:
            raise ValueError(f"{len(g)} runs share {dict(zip(cells + pair, key))}: one run per seed and "
                             "cell expected (drop duplicates or add the column that tells them apart)")
    base = {_key(k): v for k, v in zip(df.loc[df[method_col] == baseline, context + pair].itertuples(index=False),
                                       df.loc[df[method_col] == baseline, metric])}
    rows = []
    for key, g in df.groupby(cells, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g.sort_values(pair, kind="stable")       # resampled in seed order: independent of row order
        vals = g[metric].to_numpy(float)
        row = {**dict(zip(cells, key)), "n": len(g), "mean": vals.mean(),
               "std": vals.std(ddof=1) if len(g) > 1 else float("nan")}
        is_base = g[method_col].iloc[0] == baseline
        partners = [base.get(_key(k)) for k in g[context + pair].itertuples(index=False)]
        paired = [(v, b) for v, b in zip(vals, partners) if b is not None and not is_base]
        d = np.array([v - b for v, b in paired], dtype=float)
        lo, hi = bootstrap_ci(d, confidence, n_resamples, ci_method, rng) if len(d) else (np.nan, np.nan)
        row.update({"n_pairs": len(d) if not is_base else np.nan,
                    "baseline_mean": np.mean([b for _, b in paired]) if len(d) else np.nan,
                    "diff_mean": d.mean() if len(d) else np.nan,
                    "diff_std": d.std(ddof=1) if len(d) > 1 else np.nan,
                    "ci_low": lo, "ci_high": hi, "p_value": wilcoxon_p(d) if len(d) else np.nan,
                    "n_better": int((d > 0).sum()) if len(d) else np.nan,
                    "n_worse": int((d < 0).sum()) if len(d) else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def call(diff_mean: float, ci_low: float, ci_high: float, n_pairs: float, min_seeds: int = MIN_SEEDS) -> str:
    """One cell in words: "helps" (interval above 0), "hurts" (below 0), "no evidence"
    (interval holds 0), or "too few seeds" (fewer than ``min_seeds`` pairs)."""
    if not np.isfinite(n_pairs) or n_pairs < min_seeds or not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "too few seeds"
    if ci_low > 0:
        return "helps"
    if ci_high < 0:
        return "hurts"
    return "no evidence"


def format_interval(mean: float, low: float, high: float, digits: int = 2) -> str:
    """"+0.06 [+0.03, +0.09]"."""
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _where(values: list, group: list, over: str) -> str:
    """"n <= 700" for the smallest values, "n >= 2000" for the largest, "n = 300" for one,
    else "n in {300, 2000}"."""
    name = "n" if over in ("n_train", "n_samples") else over
    fmt = lambda v: f"{v:g}" if isinstance(v, (int, float, np.number)) else str(v)   # noqa: E731
    if len(group) == 1:
        return f"{name} = {fmt(group[0])}"
    if group == values[:len(group)]:
        return f"{name} <= {fmt(group[-1])}"
    if group == values[-len(group):]:
        return f"{name} >= {fmt(group[0])}"
    return f"{name} in {{{', '.join(map(fmt, group))}}}"


def verdict(summary: pd.DataFrame, *, over: str = "n_samples", min_seeds: int = MIN_SEEDS, digits: int = 2,
            **where) -> str:
    """A plain-words verdict for one method from ``summarise``'s rows, along ``over``.

    ``where`` picks the rows (e.g. ``method="dcat", lam=1.0``); they must differ only
    in ``over``. Consecutive values with the same call are grouped::

        helps at n <= 700 (n = 300: +0.06 [+0.03, +0.09]; n = 700: +0.04 [+0.01, +0.07]);
        no evidence at n = 2000: +0.00 [-0.01, +0.02]

    Each number is the mean paired difference and its bootstrap interval; a cell
    with fewer than ``min_seeds`` paired seeds says "too few seeds at n = 300: 3 paired, 10 needed".
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
    calls = [call(r.diff_mean, r.ci_low, r.ci_high, r.n_pairs, min_seeds) for r in rows.itertuples()]
    parts, i = [], 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and calls[j + 1] == calls[i]:
            j += 1
        group = rows.iloc[i:j + 1]

        def num(r):
            if calls[i] == "too few seeds":
                return f"{0 if not np.isfinite(r.n_pairs) else int(r.n_pairs)} paired, {min_seeds} needed"
            return format_interval(r.diff_mean, r.ci_low, r.ci_high, digits)
        nums = [num(r) for r in group.itertuples()]
        where_txt = _where(values, values[i:j + 1], over) if len(values) > 1 else ""
        if len(group) == 1:
            parts.append(f"{calls[i]}" + (f" at {where_txt}" if where_txt else "") + f": {nums[0]}")
        else:
            each = "; ".join(f"{_where(values, [v], over)}: {x}" for v, x in zip(values[i:j + 1], nums))
            parts.append(f"{calls[i]} at {where_txt} ({each})")
        i = j + 1
    return "; ".join(parts)

