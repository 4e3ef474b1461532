"""Are the tuned cells calibrated? A method with no effect at any lambda, tuned on validation F1.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tuned_null.py [--tables 250] [--out benchmarks/tuned_null.json]

Simulates notebook 06's few-label studies ((c), (d): 5 draws x 10 seeds, 20 labels) for a method
whose every lambda does nothing: each run, the baseline's included, is its draw's level plus the
run's own luck q, and validation and test F1 share q. The numbers are the baselines' of
benchmarks/study_draws_runs.csv: run-to-run sd 0.049 within a draw, correlation 0.40 between a
run's validation and test F1. Each table goes through studies.with_tuned and
studies.pooled_verdicts as notebook 06's do, and is also tuned by the rule with_tuned used before
2026-12-05 (each seed's lambda chosen on its OWN validation F1), for comparison. A false call is
"helps" or "hurts" for the tuned cell; with Holm over the study's 2 cells it should be at most 5%.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from dcatkit import studies

LAMS = [1.0, 10.0, 100.0]
SD_RUN, RHO = 0.049, 0.40           # baselines of study_draws_runs.csv: sd within a draw, corr(val, test)


def null_table(rng: np.random.Generator, draws: int = 5, seeds: int = 10) -> pd.DataFrame:
    """One study: the baseline and a method at every lambda of LAMS, none of which does anything."""
    sq, se = np.sqrt(RHO) * SD_RUN, np.sqrt(1 - RHO) * SD_RUN      # shared luck, and each split's own noise
    rows = []
    for d in range(draws):
        level = 0.3 + rng.normal(0, 0.05)
        for method, lam in [("none", 0.0)] + [("dcat", x) for x in LAMS]:
            q = rng.normal(0, sq, seeds)
            val, test = level + q + rng.normal(0, se, seeds), level + q + rng.normal(0, se, seeds)
            rows += [dict(study="pos", kind="positive", method=method, lam=lam, size=20, unit="labels", data_seed=d,
                          seed=s, metric="f1", value=test[s], f1=test[s], val_f1=val[s]) for s in range(seeds)]
    return pd.DataFrame(rows)


def own_choice(tidy: pd.DataFrame) -> pd.DataFrame:
    """The rule with_tuned replaced: each seed's run with the highest validation F1 of its own grid."""
    grid = tidy[tidy["method"] == "dcat"].sort_values(["data_seed", "seed", "lam"])
    best = grid.loc[grid.groupby(["data_seed", "seed"])["val_f1"].idxmax()]      # first of equal maxima
    return pd.concat([tidy[tidy["method"] == "none"], best.assign(method="dcat (tuned)", lam=0.0),
                      tidy[(tidy["method"] == "dcat") & (tidy["lam"] == 1.0)]], ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/tuned_null.json")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    res = {rule: {"calls": 0, "diff": []} for rule in ("leave-one-seed-out", "own seed (before)")}
    for _ in range(a.tables):
        tidy = null_table(rng)
        for rule, t in (("leave-one-seed-out", studies.with_tuned(tidy, "pos", LAMS, keep=[("dcat", 1.0)])),
                        ("own seed (before)", own_choice(tidy))):
            pooled, _ = studies.pooled_verdicts(t[t["study"] == "pos"])
            r = pooled[pooled["method"] == "dcat (tuned)"].iloc[0]
            res[rule]["calls"] += r.call in ("helps", "hurts")
            res[rule]["diff"].append(float(r.diff_mean))
    out = {"tables": a.tables, "draws": 5, "seeds": 10, "sd_run": SD_RUN, "rho_val_test": RHO, "lams": LAMS,
           "wall_s": round(time.perf_counter() - t0, 1)}
    for rule, v in res.items():
        p, d = v["calls"] / a.tables, np.asarray(v["diff"])
        out[rule] = {"false_call_rate": round(p, 4), "mc_se": round(float(np.sqrt(p * (1 - p) / a.tables)), 4),
                     "mean_diff": round(float(d.mean()), 4), "mean_diff_se": round(float(d.std(ddof=1) / np.sqrt(len(d))), 4)}
        print(f"{rule:20s} false calls {p:.3f} ± {out[rule]['mc_se']:.3f}; mean tuned - baseline "
              f"{d.mean():+.4f} ± {out[rule]['mean_diff_se']:.4f}")
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", a.out, f"({out['wall_s']} s)")


if __name__ == "__main__":
    main()
