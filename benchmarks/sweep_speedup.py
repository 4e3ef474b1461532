"""Sweep speed-up: a 16-run transfer grid (methods none and dcat x 8 seeds, video -> IMU,
synthetic data) with 1 worker and with 2 workers, each from scratch in its own folder.

    python benchmarks/sweep_speedup.py [--rounds 2] [--n-samples 400] [--json out.json]

Rounds alternate 1, 2, 2, 1 workers (this shared VM's speed drifts over minutes); the
speed-up is the ratio of the summed wall times. The sources (8, one per seed) are
trained by the sweep's first stage and timed with it; the 16 target runs are the
second stage. Reported with the load average, since other processes share the cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def one(workers: int, n_samples: int, epochs: int) -> dict:
    from dcatkit.sweep import run_transfer_sweep

    tmp = Path(tempfile.mkdtemp(prefix=f"sweep-bench-w{workers}-"))
    os.environ["DCATKIT_CACHE"] = str(tmp / "cache")
    t0 = time.perf_counter()
    df = run_transfer_sweep(tmp, methods=["none", "dcat"], sizes=[n_samples], seeds=range(8), workers=workers,
                            progress=False, epochs_source=epochs, epochs_target=epochs)
    wall = time.perf_counter() - t0
    shutil.rmtree(tmp, ignore_errors=True)
    assert len(df) == 16
    return {"workers": workers, "wall_s": wall, "run_s_sum": float(df["wall_s"].sum()),
            "load_avg_1min": os.getloadavg()[0], "f1_by_method": df.groupby("method")["f1"].mean().to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=2, help="pairs of (1 worker, 2 workers) runs, alternated")
    ap.add_argument("--n-samples", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    order = [w for r in range(a.rounds) for w in ((1, 2) if r % 2 == 0 else (2, 1))]
    rows = []
    for w in order:
        rows.append(one(w, a.n_samples, a.epochs))
        print(json.dumps(rows[-1]))
    t1 = sum(r["wall_s"] for r in rows if r["workers"] == 1)
    t2 = sum(r["wall_s"] for r in rows if r["workers"] == 2)
    out = {"cores": len(os.sched_getaffinity(0)), "n_samples": a.n_samples, "epochs": a.epochs, "runs": rows,
           "speedup_2_vs_1": t1 / t2}
    print(f"speed-up of 2 workers over 1: {t1 / t2:.2f}x (summed wall {t1:.1f} s vs {t2:.1f} s, "
          f"{a.rounds} round(s) each, {out['cores']} cores)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
