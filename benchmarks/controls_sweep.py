"""A sweep with its controls on the simulator: `python -m dcatkit sweep --controls`.

    python benchmarks/controls_sweep.py                # the table of benchmarks/controls_sweep_runs.csv
    python benchmarks/controls_sweep.py --run OUT      # run the sweep into OUT first (~16 min, 2 cores)

The sweep (2-core VM, 450 target runs and 60 sources in about 16 minutes; run 2026-12-05 with
settings fixed before it, then once more from scratch on the code of commit 5cf672f: the runs here
are that rerun's; see benchmarks/RESULTS.md for what it reproduced and what it changed):

    python -m dcatkit sweep --controls --methods none dcat kd --lams 1 10 --sizes 300 \
        --seeds 0-9 --data-seeds 0-2 --workers 2 --out OUT

Three studies with the same methods, lambdas, seeds and draws (sweep.control_studies): the main
one (video -> IMU, every label, read on F1), the negative control (the IMU's inputs shuffled within
each part, data.controls.break_pairing: read on recall above chance, chance 1/8) and the positive
control (a copy of the IMU trained on every label teaching an IMU target with 21 of 210 labels,
data.controls.with_teacher: read on F1). What it asks: does the controls' pipeline (any
dataset's negative and positive control, pooled over 3 draws, Holm within each study) make no
call in the negative control and find the built-in gain in the positive one? Its settings were
fixed before the first run (n = 300 is notebook 06's control size; lambda 1 is the paper's and 10
the next value of the tuning grid); the rerun changed no setting.
Its runs are benchmarks/controls_sweep_runs.csv (the sweep's results.csv); the table below
is what the CLI printed, recomputed from them (tests/test_controls_any_data.py checks
benchmarks/RESULTS.md, "Controls on any dataset", against it).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from dcatkit import stats
from dcatkit.sweep import STUDY_METRIC, summarise_studies

HERE = Path(__file__).resolve().parent
RUNS = HERE / "controls_sweep_runs.csv"
COMMAND = ["--controls", "--methods", "none", "dcat", "kd", "--lams", "1", "10", "--sizes", "300",
           "--seeds", "0-9", "--data-seeds", "0-2", "--workers", "2"]


def shown_mean(x: float, metric: str) -> str:
    """A mean as the table shows it: a difference from chance with its sign ("+0.000", never
    "-0.000"), a score as it is."""
    return stats.signed(x) if metric == "recall_above_chance" else f"{x:.3f}"


def summarise(runs: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """One row per (study, method, lambda): the baseline's and the method's mean of the study's
    metric, the pooled difference with its Holm-adjusted interval (t on the draw means, Holm
    within the study) and its call, as the CLI prints them, and the per-draw mean differences
    with the seeds better / worse than the baseline on that draw."""
    rows = []
    summary, per_draws = summarise_studies(runs)
    for study, part in runs.groupby("study", sort=False):
        metric = STUDY_METRIC[study]
        pooled, per_draw = summary[summary.study == study], per_draws[per_draws.study == study]
        base = pooled[pooled.method == "none"]["mean"].iloc[0]
        baseline = part[part.method == "none"].set_index(["data_seed", "seed"])[metric]
        for r in pooled[pooled.method != "none"].itertuples():
            draws = per_draw[(per_draw.method == r.method) & (per_draw.lam == r.lam)].sort_values("data_seed")
            runs = part[(part.method == r.method) & (part.lam == r.lam)].set_index(["data_seed", "seed"])[metric]
            diff = (runs - baseline.reindex(runs.index)).groupby(level="data_seed")
            won, lost = diff.apply(lambda d: int((d > 0).sum())), diff.apply(lambda d: int((d < 0).sum()))
            shown = [f"{stats.signed(d.diff_mean, digits)} ({won[d.data_seed]}/{lost[d.data_seed]})"
                     for d in draws.itertuples()]
            rows.append({"study": study, "metric": metric, "method": r.method, "lam": r.lam,
                         "baseline": shown_mean(base, metric), "mean": shown_mean(r.mean, metric),
                         "pooled": stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, digits),
                         "per_draw": "; ".join(shown), "call": r.call})
    return pd.DataFrame(rows)


STUDY_NAME = {"main": "main: video → IMU, every label", "negative control": "negative control (recall − chance)",
              "positive control": "positive control"}
HEADER = ("| study: method, λ | baseline | method | Δ pooled [Holm-adjusted] | Δ per draw (seeds +/−) | call |\n"
          "|---|---|---|---|---|---|")


def markdown(table: pd.DataFrame) -> str:
    """``summarise``'s rows as the table of benchmarks/RESULTS.md, "Controls on any dataset"."""
    rows = [f"| {STUDY_NAME[r.study]}: {r.method}, λ = {r.lam:g} | {r.baseline} | {r.mean} | {r.pooled} | "
            f"{r.per_draw} | {r.call} |" for r in table.itertuples(index=False)]
    return "\n".join([HEADER, *rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", metavar="OUT", default=None, help="run the sweep into OUT, then summarise its runs")
    a = ap.parse_args(argv)
    runs_file = RUNS
    if a.run:
        subprocess.run([sys.executable, "-m", "dcatkit", "sweep", *COMMAND, "--out", a.run], check=True)
        runs_file = Path(a.run) / "results.csv"
    print(markdown(summarise(pd.read_csv(runs_file))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
