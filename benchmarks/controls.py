"""Controls that control, a positive control, and the unlabeled-pairs curve (issue 17, items 3-5).

Three studies, each a grid of target runs through the kit's own functions
(``dcatkit.studies.study_task`` -> ``experiment.train_transfer`` / ``tune_transfer``,
``data.dataset.hide_labels``, ``sweep.run_grid`` for the workers, ``stats.summarise``
for the paired intervals):

- ``negative``: the IMU of an independent draw as the target (``make_synthetic(control=
  "negative")``), a video source that knows the labels, every training label given.
  By construction every method's expected test macro recall is 1/8: a paired interval
  that excludes 0 is a false verdict. Read on ``recall``.
- ``positive``: the same recordings' noise-free IMU (``imu_clean``, trained on every
  training label: a strong teacher) as the source of the noisy IMU, at each
  ``--sizes`` number of labels with the other training recordings as unlabeled pairs
  (``all``: every label, no unlabeled pair: the issue's labelled-only setting).
- ``curve``: video -> IMU, target F1 against the number of labels at fixed unlabeled
  pairs; the video source trained on the same few labels as the target
  (``--curve-source-labels same``, default) or on every training label (``all``).

Sources first (one per draw, and per size where the source gets the target's labels),
then every target run, in ``--workers`` processes. Writes ``<out>/controls_runs.csv``
(one row per run), ``<out>/controls_summary.csv`` (paired differences per study, size,
method: per draw and pooled over draws x seeds) and ``<out>/controls.json``.

CPU (small)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/controls.py --seeds 5 --draws 1 --sizes 40 160 \\
        --epochs-target 10 --workers 2 --device cpu

GPU (the full size the controls were planned at; not run to the end yet)::

    PYTHONPATH=. python benchmarks/controls.py --seeds 10 --draws 3 --sizes 40 80 160 all \\
        --workers 16 --device cuda --runs-dir runs/controls_gpu --out benchmarks/gpu
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import pandas as pd

from dcatkit import stats
from dcatkit.studies import STUDIES, control_setup, study_source_task, study_task
from dcatkit.sweep import run_grid


def _size(v: str):
    return None if v == "all" else int(v)


def plan(studies, methods, seeds, draws, sizes, n_samples, lam, epochs_source, epochs_target, tune,
         unlabeled_mask, curve_source_labels="same") -> tuple[list[dict], list[dict]]:
    """(source runs, target runs) of the grid, as parameter dicts of study_source_task / study_task."""
    targets, sources = [], {}
    for study in studies:
        cfg = dict(STUDIES[study])
        if study == "curve":
            cfg["source_labels"] = curve_source_labels
        setup = control_setup(cfg["source"], cfg["target"], cfg["control"])   # as studies.control_plan's runs
        for draw in draws:
            for n_lab in ([None] if study == "negative" else sizes):
                src = {"draw": draw, "n_samples": n_samples, "source": cfg["source"], "target": cfg["target"],
                       "control": cfg["control"], "n_labeled": None if cfg["source_labels"] == "all" else n_lab,
                       "epochs_source": epochs_source, "setup": setup}
                sources[json.dumps(src, sort_keys=True)] = src
                for method in methods:
                    for seed in seeds:
                        targets.append({"study": study, "method": method, "seed": seed, "draw": draw,
                                        "n_samples": n_samples, "n_labeled": n_lab, "source": cfg["source"],
                                        "target": cfg["target"], "control": cfg["control"],
                                        "source_labels": cfg["source_labels"],
                                        "lam": None if method == "none" else lam, "epochs_source": epochs_source,
                                        "epochs_target": epochs_target, "unlabeled_mask": unlabeled_mask,
                                        "tune": bool(tune) and method != "none", "setup": setup})
    return list(sources.values()), targets


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Paired differences against the baseline (method "none", same study, size, draw,
    seed) with ``stats.summarise``: per draw, and pooled over draws (``draw="draw"``: the
    kit's two-level pooling, draws then seeds)."""
    df = df.assign(n_labeled=df["n_labeled"].fillna(-1).astype(int), lam=0.0)   # -1 = every label
    parts = []
    for study, g in df.groupby("study", sort=False):
        metric = STUDIES[study]["metric"]
        per = stats.summarise(g, metric, treatment=("method", "lam"), context=("draw", "n_labeled"),
                              pair=("seed",))
        pooled = stats.summarise(g, metric, treatment=("method", "lam"), context=("n_labeled",), pair=("seed",),
                                 draw="draw").assign(draw="pooled")          # draws, then seeds (stats)
        parts.append(pd.concat([per, pooled], ignore_index=True).assign(study=study, metric=metric))
    out = pd.concat(parts, ignore_index=True)
    out["excludes_0"] = (out["ci_low"] > 0) | (out["ci_high"] < 0)
    lead = ["study", "metric", "draw", "n_labeled", "method"]
    return out[lead + [c for c in out.columns if c not in lead and c != "lam"]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--studies", nargs="+", default=list(STUDIES), choices=list(STUDIES))
    ap.add_argument("--methods", nargs="+", default=["none", "dcat", "kd", "contrastive"])
    ap.add_argument("--seeds", type=int, default=10, help="target seeds per cell (0 .. N-1)")
    ap.add_argument("--draws", type=int, default=1, help="data draws (data seeds 0 .. D-1), each its own sources")
    ap.add_argument("--sizes", nargs="+", type=_size, default=[40, 160, None],
                    help="numbers of training labels for positive/curve ('all' = every label, no unlabeled pair)")
    ap.add_argument("--n-samples", type=int, default=1000, help="simulated recordings per draw (70%% train)")
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--tune", action="store_true", help="choose lambda on validation F1 (experiment.tune_transfer)")
    ap.add_argument("--unlabeled-mask", default="confidence", choices=["confidence", "all"])
    ap.add_argument("--curve-source-labels", default="same", choices=["same", "all"],
                    help="curve: the video source trained on the target's few labels ('same', the user's "
                         "situation) or on every training label ('all', a source that knows the task)")
    ap.add_argument("--epochs-source", type=int, default=None)
    ap.add_argument("--epochs-target", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--runs-dir", default="runs/controls", help="where runs are stored (resumable)")
    ap.add_argument("--out", default="benchmarks", help="folder for controls_runs.csv, controls_summary.csv, "
                                                       "controls.json")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    srcs, targets = plan(a.studies, a.methods, list(range(a.seeds)), list(range(a.draws)), a.sizes, a.n_samples,
                         a.lam, a.epochs_source, a.epochs_target, a.tune, a.unlabeled_mask, a.curve_source_labels)
    print(f"controls: {len(srcs)} sources, {len(targets)} target runs", flush=True)
    runs = Path(a.runs_dir)
    run_grid(functools.partial(study_source_task, out_dir=str(runs), device=a.device), srcs, runs / "sources",
             workers=a.workers, progress=False)
    df = run_grid(functools.partial(study_task, out_dir=str(runs), device=a.device), targets, runs,
                  workers=a.workers, progress=False)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "controls_runs.csv", index=False)
    summ = summarise(df)
    summ.to_csv(out / "controls_summary.csv", index=False)
    neg = summ[(summ.study == "negative") & (summ.method != "none") & (summ.draw != "pooled")]
    info = {"command": "PYTHONPATH=. python benchmarks/controls.py " + " ".join(sys.argv[1:] if argv is None
                                                                              else argv),
            "n_sources": len(srcs), "n_runs": len(targets), "wall_s": round(time.perf_counter() - t0, 1),
            "negative_false_verdicts": int(neg["excludes_0"].sum()) if len(neg) else None,
            "negative_cells": len(neg)}
    (out / "controls.json").write_text(json.dumps(info, indent=1))
    cols = ["study", "draw", "n_labeled", "method", "mean", "diff_mean", "ci_low", "ci_high", "excludes_0"]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(summ[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
