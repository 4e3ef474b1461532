"""Notebook 06's positive control (c) with more data draws than its default 3: a follow-up.

    python benchmarks/positive_control_draws.py [--draws 5] [--runs-dir outputs/06_when_transfer_helps/controls]
                                                [--val-labels 20]

The same study as notebook 06's default (noise-free IMU teacher, 20 labels of 300 recordings, the
rest unlabeled pairs; D-CAT and KD at every lambda of experiment.TUNE_LAMS, 10 seeds), through
the same functions (studies.run_controls, with_tuned, pooled_verdicts), with data draws
0..draws-1. Runs already in --runs-dir (the notebook's, by default) are read back, so after a
default `make notebooks` only the extra draws train (about 1 minute each on 2 CPU cores).

This was first run AFTER seeing a 3-draw verdict (tuned D-CAT +0.167, better on every draw and
29 of 30 seeds, no pooled call): a follow-up of a result already seen, not a pre-registered test;
read its calls with that in mind. Results (two VMs): benchmarks/RESULTS.md, "Positive control
with 5 draws".

--val-labels N adds the same study with only N validation recordings (data.dataset.thin_validation;
the teacher unchanged): the label budget of a user who has 20 labels has no 45-recording validation
part, and every tuned cell (and every baseline's best epoch) is chosen on validation. Question
written down before those runs were made: do the calls of the 5-draw study (tuned D-CAT helps,
tuned KD helps, D-CAT at lambda = 1 helps barely) survive validation as scarce as the training
labels (N = 20)? Each study is its own Holm family. Results: benchmarks/RESULTS.md, "Positive
control with scarce validation".
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
    ap.add_argument("--val-labels", type=int, default=None,
                    help="also run the study with only this many validation recordings")
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args()
    grid = [float(x) for x in TUNE_LAMS]
    methods = ["none"] + [[m, x] for m in ("dcat", "kd") for x in grid]
    plan = [dict(study=STUDY, kind="positive", labels=[20], methods=methods)]
    if a.val_labels is not None:
        plan.append(dict(study=f"{STUDY}, {a.val_labels} validation labels", kind="positive", labels=[20],
                         methods=methods, val_labels=a.val_labels))
    runs = studies.run_controls(a.runs_dir, plan, seeds=range(10), draws=range(a.draws), n_samples=300, lam=1.0,
                                workers=a.workers)
    tidy = studies.tidy_studies(None, runs, kinds={p["study"]: "positive" for p in plan})
    for p in plan:
        tidy = studies.with_tuned(tidy, p["study"], grid, keep=[("dcat", 1.0)])
    pooled, per = studies.pooled_verdicts(tidy)
    with pd.option_context("display.width", 250, "display.max_colwidth", 80):
        print(studies.verdict_table(pooled, per).drop(columns=["metric"]).to_string(index=False))
        print(studies.lam_choices(tidy).to_string(index=False))


if __name__ == "__main__":
    main()
