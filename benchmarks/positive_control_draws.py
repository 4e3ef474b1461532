"""Notebook 06's positive control (c) with more data draws than its default 3: a follow-up.

    python benchmarks/positive_control_draws.py [--draws 5] [--runs-dir outputs/06_when_transfer_helps/controls]

The same study as notebook 06's default (noise-free IMU teacher, 20 labels of 300 recordings, the
rest unlabeled pairs; D-CAT and KD at every lambda of experiment.TUNE_LAMS, 10 seeds), through
the same functions (studies.run_controls, with_tuned, pooled_verdicts), with data draws
0..draws-1. Runs already in --runs-dir (the notebook's, by default) are read back, so after a
default `make notebooks` only the extra draws train (about 1 minute each on 2 CPU cores).

This was first run AFTER seeing a 3-draw verdict (tuned D-CAT +0.167, better on every draw and
29 of 30 seeds, no pooled call): a follow-up of a result already seen, not a pre-registered test;
read its calls with that in mind. Results (two VMs): benchmarks/RESULTS.md, "Positive control
with 5 draws".
"""
from __future__ import annotations

import argparse

import pandas as pd

from dcatkit import studies
from dcatkit.experiment import TUNE_LAMS

STUDY = "(c) positive control"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--runs-dir", default="outputs/06_when_transfer_helps/controls")
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args()
    grid = [float(x) for x in TUNE_LAMS]
    plan = [dict(study=STUDY, kind="positive", labels=[20],
                 methods=["none"] + [[m, x] for m in ("dcat", "kd") for x in grid])]
    runs = studies.run_controls(a.runs_dir, plan, seeds=range(10), draws=range(a.draws), n_samples=300, lam=1.0,
                                workers=a.workers)
    tidy = studies.with_tuned(studies.tidy_studies(None, runs, kinds={STUDY: "positive"}), STUDY, grid,
                              keep=[("dcat", 1.0)])
    pooled, per = studies.pooled_verdicts(tidy)
    with pd.option_context("display.width", 250, "display.max_colwidth", 80):
        print(studies.verdict_table(pooled, per).drop(columns=["metric"]).to_string(index=False))
        print(studies.lam_choices(tidy).to_string(index=False))


if __name__ == "__main__":
    main()
