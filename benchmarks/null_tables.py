"""Are the kit's verdicts calibrated? Simulated seeds with no effect (and with a known one) through
``dcatkit.stats``; writes ``benchmarks/null_tables.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/null_tables.py            # ~2.5 min of CPU (estimated, RESULTS.md)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/null_tables.py --scale 0.1

1. **Per cell, 10 paired seeds**: how often a 95% interval excludes a true mean difference of 0,
   for the BCa bootstrap (the kit's old basis), the exact sign-flip interval (the new one) and
   the t-interval, under five nulls: normal; heavy-tailed (t, 3 df); skewed but exchangeable
   (the difference of two i.i.d. log-normal runs: what a method that does nothing gives, however
   skewed F1 is); tied/discrete (each run's F1 read as correct/50 test samples, ties and zeros);
   and mean-zero skewed (a centred exponential: a method that changes the *shape* of F1 while
   keeping its mean; no exchangeability).
2. **Tables** of 4 methods x 3 sizes x 10 seeds with no effect anywhere, through
   ``summarise`` + ``call`` (seed sd 0.03 shared by a seed's runs, paired-difference sd
   ``SD_DIFF``): per-cell and family-wise (>= 1 call per table) false-verdict rates, old (BCa,
   no correction) against new (sign-flip + Holm); and power at a true +0.03 in one method's 3
   cells (the 9 others null).
3. **Three (and five) data draws** pooled (``summarise(..., draw="data_seed")``, t on draw means), with a
   random draw x method effect of sd ``TAU`` per cell: the same rates, against pooling all 30
   seeds as if one draw (sign-flip over all 30 differences) and against a two-level percentile
   bootstrap (draws, then seeds); and the null rates of the t on draw means again from 20000
   tables simulated straight as draw means (no pandas, so many more tables fit).

``SD_DIFF`` = 0.035 is the median paired-difference sd implied by benchmarks/data_draws_06.csv's
intervals (10 seeds; 0.017-0.046 over its 9 cells); its draw means spread by 0.009-0.044 between
draws (so TAU = 0.011, the within-draw sd of a draw mean, and 0.035 are both realistic).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dcatkit import stats

SD_DIFF = 0.035
SEED_SD = 0.03
N_SEEDS = 10
METHODS = ("dcat", "kd", "fitnet", "contrastive")
SIZES = (300, 1000, 2000)


# ----------------------------------------------------------------------------- 1. per cell

def null_diffs(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n paired differences with true mean 0, sd about SD_DIFF."""
    if kind == "normal":
        return rng.normal(0, SD_DIFF, n)
    if kind == "t3":
        return rng.standard_t(3, n) * SD_DIFF / np.sqrt(3)
    if kind == "skewed_exchangeable":
        x, y = rng.lognormal(0, 1, (2, n))
        return (x - y) * SD_DIFF / np.sqrt(2 * (np.e - 1) * np.e)
    if kind == "tied_f1":
        p = np.clip(rng.normal(0.8, SEED_SD, n), 0, 1)       # the seed's shared difficulty
        return (rng.binomial(50, p) - rng.binomial(50, p)) / 50
    if kind == "skewed_mean_zero":
        return (rng.exponential(1, n) - 1) * SD_DIFF
    raise ValueError(kind)


NULLS = ("normal", "t3", "skewed_exchangeable", "tied_f1", "skewed_mean_zero")


def per_cell(n_sets: int, rng) -> dict:
    out = {}
    for kind in NULLS:
        hits = {"bca_bootstrap": 0, "signflip": 0, "t": 0}
        for _ in range(n_sets):
            d = null_diffs(kind, N_SEEDS, rng)
            for name, (lo, hi) in (("bca_bootstrap", stats.bootstrap_ci(d, rng=rng)),
                                   ("signflip", stats.signflip_ci(d)), ("t", stats.t_test(d).interval(0.05))):
                hits[name] += lo > 0 or hi < 0
        out[kind] = {k: round(1 - v / n_sets, 4) for k, v in hits.items()}
        print(f"coverage of 0, {kind:<20} " + "  ".join(f"{k} {v:.3f}" for k, v in out[kind].items()), flush=True)
    return out


# ----------------------------------------------------------------------------- 2. tables

def table(rng, effect: dict | None = None, n_draws: int = 1, tau: float = 0.0) -> pd.DataFrame:
    """One tidy results table: baseline + METHODS at SIZES, N_SEEDS seeds per draw."""
    effect = effect or {}
    rows = []
    for draw in range(n_draws):
        for n in SIZES:
            base = 0.8 + rng.normal(0, SEED_SD, N_SEEDS)
            rows += [{"method": "none", "lam": np.nan, "n_samples": n, "data_seed": draw, "seed": s, "f1": base[s]}
                     for s in range(N_SEEDS)]
            for m in METHODS:
                shift = effect.get(m, 0.0) + rng.normal(0, tau)        # the draw x method effect
                f1 = base + shift + rng.normal(0, SD_DIFF, N_SEEDS)
                rows += [{"method": m, "lam": 1.0, "n_samples": n, "data_seed": draw, "seed": s, "f1": f1[s]}
                         for s in range(N_SEEDS)]
    return pd.DataFrame(rows)


def old_calls(df: pd.DataFrame, rng) -> list[str]:
    """The kit's old verdict: a per-cell 95% BCa interval, no correction."""
    base = df[df.method == "none"].set_index(["n_samples", "seed"]).f1
    out = []
    for (_, _), g in df[df.method != "none"].groupby(["n_samples", "method"]):
        d = g.f1.to_numpy() - base.loc[list(zip(g.n_samples, g.seed))].to_numpy()
        lo, hi = stats.bootstrap_ci(d, rng=rng)
        out.append(stats.call(d.mean(), lo, hi, len(d)))
    return out


def rates(calls_per_table: list[list[str]], true_cells: list[list[bool]] | None = None) -> dict:
    """False-verdict rate per null cell, family-wise (>= 1 false call in a table), and power."""
    false, fw, n_null, hit, n_true = 0, 0, 0, 0, 0
    for k, cs in enumerate(calls_per_table):
        truth = true_cells[k] if true_cells else [False] * len(cs)
        f = sum(c in ("helps", "hurts") for c, t in zip(cs, truth) if not t)
        false, fw, n_null = false + f, fw + (f > 0), n_null + sum(not t for t in truth)
        hit += sum(c == "helps" for c, t in zip(cs, truth) if t)
        n_true += sum(truth)
    out = {"per_cell_false": round(false / max(n_null, 1), 4), "familywise_false": round(fw / len(calls_per_table), 4)}
    if n_true:
        out["power"] = round(hit / n_true, 4)
    return out


def tables(n_tables: int, rng) -> dict:
    res = {}
    for label, effect in (("null", {}), ("one_method_+0.03", {"dcat": 0.03})):
        old, new, bonf, unc, truth = [], [], [], [], []
        for _ in range(n_tables):
            df = table(rng, effect)
            s = stats.summarise(df)
            s = s[s.method != "none"].sort_values(["n_samples", "method"])
            new.append(list(s.call))
            # the same cells' own tests: Bonferroni calls p <= alpha/m, uncorrected reads the per-cell interval
            # (for the sign-flip test both are exact equivalents of summarise(correction=...), tested there)
            bonf.append(["no evidence" if p * len(s) > 0.05 else "helps" if m > 0 else "hurts"
                         for p, m in zip(s.p_value, s.diff_mean)])
            unc.append([stats.call(r.diff_mean, r.ci_low_cell, r.ci_high_cell, r.n_pairs) for r in s.itertuples()])
            old.append(old_calls(df, rng))
            truth.append([m in effect for m in s.method])
        res[label] = {"old_bca_uncorrected": rates(old, truth), "signflip_holm": rates(new, truth),
                      "signflip_bonferroni": rates(bonf, truth), "signflip_uncorrected": rates(unc, truth)}
        print(f"tables, {label}: {res[label]}", flush=True)
    return res


# ----------------------------------------------------------------------------- 3. draws

def two_level_bootstrap_calls(df: pd.DataFrame, rng, n_boot: int = 999) -> list[str]:
    """Percentile interval of the mean of draw means, resampling draws then seeds within them."""
    base = df[df.method == "none"].set_index(["data_seed", "n_samples", "seed"]).f1
    out = []
    for (_, _), g in df[df.method != "none"].groupby(["n_samples", "method"]):
        d = (g.f1.to_numpy() - base.loc[list(zip(g.data_seed, g.n_samples, g.seed))].to_numpy())
        d = d.reshape(g.data_seed.nunique(), N_SEEDS)                      # (D, seeds)
        D = len(d)
        pick_d = rng.integers(0, D, (n_boot, D))
        pick_s = rng.integers(0, N_SEEDS, (n_boot, D, N_SEEDS))
        means = d[pick_d[..., None], pick_s].mean(axis=(1, 2))
        lo, hi = np.percentile(means, [2.5, 97.5])
        out.append(stats.call(d.mean(), lo, hi, d.size))
    return out


def draws(n_tables: int, rng) -> dict:
    res = {}
    configs = [(3, tau, label, effect) for tau in (0.011, 0.035)
               for label, effect in (("null", {}), ("one_method_+0.03", {"dcat": 0.03}))]
    for n_draws, tau, label, effect in configs + [(5, 0.011, "one_method_+0.03", {"dcat": 0.03})]:
        pooled, unc, naive, boot, truth = [], [], [], [], []
        for _ in range(n_tables):
            df = table(rng, effect, n_draws=n_draws, tau=tau)
            s = stats.summarise(df, draw="data_seed").query("method != 'none'").sort_values(["n_samples", "method"])
            pooled.append(list(s.call))
            unc.append([stats.call(r.diff_mean, r.ci_low_cell, r.ci_high_cell, r.n_pairs) for r in s.itertuples()])
            one = df.assign(seed=df.data_seed * 1000 + df.seed)          # every seed as if from one draw
            naive.append(list(stats.summarise(one).query("method != 'none'").sort_values(["n_samples", "method"]).call))
            boot.append(two_level_bootstrap_calls(df, rng))
            truth.append([m in effect for m in s.method])
        key = f"{n_draws} draws, tau={tau}, {label}"
        res[key] = {"t_on_draw_means_holm": rates(pooled, truth), "t_on_draw_means_uncorrected": rates(unc, truth),
                    "naive_all_seeds_one_draw_signflip_holm": rates(naive, truth),
                    "two_level_bootstrap_uncorrected": rates(boot, truth)}
        print(f"{key}: {res[key]}", flush=True)
    return res


def draws_direct(n_tables: int, rng, n_draws: int = 3, tau: float = 0.011) -> dict:
    """The draw-level rates with many more null tables: the same model (shared baseline per draw
    and size, a draw x method effect of sd ``tau``) simulated straight as draw means, tested by a
    t on the draw means (scipy) and Holm (``stats.holm``) over the 12 cells."""
    from scipy import stats as sps
    b = rng.normal(0, SEED_SD, (n_tables, n_draws, len(SIZES), 1, N_SEEDS))
    m = (b + rng.normal(0, tau, (n_tables, n_draws, len(SIZES), len(METHODS), 1))
         + rng.normal(0, SD_DIFF, (n_tables, n_draws, len(SIZES), len(METHODS), N_SEEDS)))
    means = (m - b).mean(-1).reshape(n_tables, n_draws, -1)                  # (tables, draws, cells)
    p = sps.ttest_1samp(means, 0, axis=1).pvalue                             # (tables, cells)
    calls = np.array([stats.holm(row) <= 0.05 for row in p])
    out = {"n_tables": n_tables, "per_cell_false_uncorrected": round(float((p <= 0.05).mean()), 4),
           "per_cell_false_holm": round(float(calls.mean()), 4), "familywise_false_holm": round(float(calls.any(1).mean()), 4)}
    print(f"{n_draws} draws, tau={tau}, null, direct: {out}", flush=True)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every simulation count (default 1)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("null_tables.json")))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    t0 = time.time()
    n = lambda k: max(10, int(k * a.scale))    # noqa: E731
    res = {"settings": {"n_seeds": N_SEEDS, "methods": list(METHODS), "sizes": list(SIZES), "sd_diff": SD_DIFF,
                        "seed_sd": SEED_SD, "confidence": 0.95, "n_cell_sets": n(2000), "n_tables": n(300),
                        "n_draw_tables": n(200), "rng_seed": a.seed},
           "per_cell_coverage_of_0": per_cell(n(2000), rng),
           "tables_4x3": tables(n(300), rng),
           "draws_4x3": draws(n(200), rng),
           "draws_4x3_direct": draws_direct(n(20000), rng)}
    res["settings"]["wall_s"] = round(time.time() - t0, 1)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {a.out} in {res['settings']['wall_s']} s")
    return res


if __name__ == "__main__":
    main()
