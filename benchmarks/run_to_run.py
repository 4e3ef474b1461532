"""Notebook 06's default run on two machines: how far single runs move, and which calls move.

    python benchmarks/run_to_run.py                    # committed runs vs benchmarks/run_to_run_06_vm3.csv
    python benchmarks/run_to_run.py A.csv B.csv        # any two 06_runs.csv files of the same grid

Both files are notebook 06's tidy runs (``notebooks/results/06_runs.csv`` layout), the same
code, seeds and parameters. Printed: the share of target runs with the same test F1 and the
mean |ΔF1| per run; the frozen sources' mean |Δ test F1| per (study, draw, size) (the cells of a
study and draw may share one source: the default's 21 cells hold 18 sources); then every
verdict cell (tuned cells rebuilt as notebook 06 builds them, ``studies.with_tuned``; pooled
over the draws with Holm per study, ``studies.pooled_verdicts``) whose call differs between
the two, and the count of cells whose call is the same. ``benchmarks/RESULTS.md``, "Run to
run", reports this for its machines; ``tests/test_results_md.py`` recomputes it from these files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcatkit import studies  # noqa: E402

COMMITTED = ROOT / "notebooks" / "results" / "06_runs.csv"
VM3 = ROOT / "benchmarks" / "run_to_run_06_vm3.csv"
RUN = ["study", "method", "lam", "size", "data_seed", "seed"]
TUNED = ("(a) video→imu, id", "(c) positive control")      # notebook 06's MAIN and POSITIVE
TUNE_LAMS, LAM = [1, 10, 100], 1.0                         # its defaults (tune_lams, lam)


def calls(runs: pd.DataFrame) -> pd.DataFrame:
    """Every verdict cell of a 06 run, as notebook 06 computes it (section 2): each method's
    pooled difference from its baseline, not the baselines' own rows (they have no call to move)."""
    for name in TUNED:
        if name in set(runs.study) and (runs[runs.study == name].method != "none").any():
            runs = studies.with_tuned(runs, name, TUNE_LAMS, keep=[("dcat", LAM)])
    pooled, _ = studies.pooled_verdicts(runs)
    pooled = pooled[pooled.method != "none"]      # a baseline's row has the call "baseline" on every machine
    pooled = pooled.assign(grid=pooled.kind.str.endswith(studies.GRID_KIND))   # a tuning grid's own family
    return pooled[["study", "size", "method", "lam", "grid", "diff_mean", "ci_low", "ci_high", "call"]]


def compare(a: pd.DataFrame, b: pd.DataFrame) -> dict:
    """Run-level and call-level differences between two 06 runs of the same grid."""
    m = a.merge(b, on=RUN, suffixes=("_a", "_b"), validate="one_to_one")
    if len(m) != len(a) or len(m) != len(b):
        raise ValueError(f"the two files hold other grids: {len(a)} and {len(b)} runs, {len(m)} in common")
    src = m.groupby(["study", "data_seed", "size"])[["source_f1_a", "source_f1_b"]].first()
    cells = calls(a).merge(calls(b), on=["study", "size", "method", "lam", "grid"], suffixes=("_a", "_b"))
    return {"runs": len(m), "same_f1": float((m.f1_a == m.f1_b).mean()),
            "mean_abs_df1": float((m.f1_a - m.f1_b).abs().mean()),
            "source_cells": len(src), "source_mean_abs_df1": float((src.source_f1_a - src.source_f1_b).abs().mean()),
            "cells": len(cells), "grid_cells": int(cells.grid.sum()), "moved": cells[cells.call_a != cells.call_b].reset_index(drop=True),
            "max_abs_shift": float((cells.diff_mean_a - cells.diff_mean_b).abs().max())}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", nargs="?", default=str(COMMITTED))
    p.add_argument("b", nargs="?", default=str(VM3))
    args = p.parse_args(argv)
    r = compare(pd.read_csv(args.a), pd.read_csv(args.b))
    print(f"{r['runs']} target runs: {r['same_f1']:.1%} with the same test F1, mean |ΔF1| {r['mean_abs_df1']:.3f}")
    print(f"frozen sources over {r['source_cells']} (study, draw, size) cells (the sizes of a study may share a "
          f"draw's source): mean |Δ source test F1| {r['source_mean_abs_df1']:.3f}")
    print(f"{r['cells']} verdict cells ({r['cells'] - r['grid_cells']} verdicts, {r['grid_cells']} of the tuning grids): "
          f"{r['cells'] - len(r['moved'])} same call, {len(r['moved'])} moved; "
          f"largest shift of a pooled difference {r['max_abs_shift']:.3f}")
    if len(r["moved"]):
        with pd.option_context("display.width", 200, "display.max_colwidth", 40):
            print(r["moved"].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
