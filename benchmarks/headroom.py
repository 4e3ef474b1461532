"""Measure the synthetic simulator's headroom: unimodal baselines vs the IMU ceiling.

Every (regime, modality, split, size, seed) run is one call of
``dcatkit.headroom.measure_headroom`` (which trains with ``train_unimodal``);
runs go to a pool of single-threaded worker processes. The tidy table of all
runs is written as CSV, and the per-cell summary (``summarize_headroom``) printed.

    python benchmarks/headroom.py --out benchmarks/headroom_runs.csv --workers 2 \\
        --regimes headroom ambiguous --modalities imu --splits id ood \\
        --sizes 300 700 2000 --ceiling 20000 --seeds 0 1 2

``--ceiling`` applies to the IMU only (the target modality); ``--knobs`` passes
overrides of ``HEADROOM_KNOBS`` (JSON) to the headroom regime, for probes. Each row's
``knobs`` column records every knob the run used (``headroom.effective_knobs``: today's
defaults with the overrides applied; ``{}`` for the ambiguous regime, which takes none), so a
row stays readable after the defaults change (rows written before 2026-12 hold the overrides
alone: see benchmarks/SIMULATOR.md).
Results and exact commands: benchmarks/SIMULATOR.md.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pandas as pd


def _job(args: tuple) -> pd.DataFrame:
    regime, modality, split, size, seed, ceiling, knobs, device = args
    import torch

    torch.set_num_threads(1)
    from dcatkit.headroom import effective_knobs, measure_headroom

    opts = {"knobs": knobs} if knobs and regime == "headroom" else {}
    t = time.time()
    df = measure_headroom(regime, modality, sizes=() if ceiling else (size,), n_ceiling=size if ceiling else None,
                          seeds=(seed,), split=split, device=device, **opts)
    df["seconds"] = round(time.time() - t, 1)
    df["knobs"] = effective_knobs(regime, knobs if regime == "headroom" else None)   # every knob used
    print(df.drop(columns=["knobs"]).to_string(header=False, index=False), flush=True)
    return df


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="CSV file for the tidy table of runs")
    ap.add_argument("--regimes", nargs="+", default=["headroom"])
    ap.add_argument("--modalities", nargs="+", default=["imu"])
    ap.add_argument("--splits", nargs="+", default=["id"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[2000])
    ap.add_argument("--ceiling", type=int, default=None, help="IMU ceiling size (e.g. 20000); none if omitted")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--knobs", default="{}", help="JSON overrides of HEADROOM_KNOBS (probes only)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    knobs = json.loads(a.knobs)
    from dcatkit.headroom import effective_knobs

    effective_knobs("headroom", knobs)          # an unknown knob is refused before any run starts
    jobs = [(r, m, s, n, seed, False, knobs, a.device)
            for r, m, s, n, seed in itertools.product(a.regimes, a.modalities, a.splits, a.sizes, a.seeds)]
    if a.ceiling:
        jobs += [(r, "imu", s, a.ceiling, seed, True, knobs, a.device)
                 for r, s, seed in itertools.product(a.regimes, a.splits, a.seeds)]
    jobs.sort(key=lambda j: -j[3] * (4 if j[1] != "imu" else 1))     # longest first
    t = time.time()
    with ProcessPoolExecutor(a.workers) as pool:
        df = pd.concat(list(pool.map(_job, jobs)), ignore_index=True)
    df.to_csv(a.out, index=False)
    from dcatkit.headroom import summarize_headroom

    pd.set_option("display.width", 200)
    print(f"{len(jobs)} runs in {time.time() - t:.0f} s with {a.workers} workers; knobs {knobs}")
    print(summarize_headroom(df).round(3).to_string(index=False))
    return df


if __name__ == "__main__":
    sys.exit(main() is None)
