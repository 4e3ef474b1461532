"""Controls that control, a positive control, and the unlabeled-pairs curve (issue 17, items 3-5).

Three studies, each a grid of target runs through the kit's own functions
(``dcatkit.studies.study_task`` -> ``experiment.train_transfer``,
``data.dataset.hide_labels``, ``sweep.run_grid`` for the workers, ``stats.summarise``
for the paired intervals, ``studies.with_tuned`` for ``--tune``):

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
method, lambda: per draw and pooled over draws x seeds) and ``<out>/controls.json``.

``--tune``: every transfer method runs at every lambda of ``--lams`` (default
``experiment.TUNE_LAMS``) as cells of their own, and ``studies.with_tuned`` turns them
into a tuned cell per method: each seed's lambda is the one of highest validation F1
averaged over the OTHER seeds of its draw (leave one seed out, as notebook 06 and
``benchmarks/study_draws.py``). The grid's cells are summarised as their own family
(study ``"<study>, every λ"``). Before 2026-12-06 ``--tune`` ran ``experiment.tune_transfer``
per seed, which chooses on that seed's own validation F1: the tuned cell got the best of
K runs' luck (a 17.5% false-call rate for a method with no effect, simulated;
RESULTS.md "Tuned cells"). No committed result came from that path.

The negative control's verdict (``controls.json``: ``negative_false_verdicts``) is the
count of POOLED cells (draws, then seeds; t on the draw means, Holm per study) whose
interval excludes 0, so it needs ``--draws`` >= 2 (None with one draw). How many single
draws lean one way is descriptive (``negative_per_draw_leanings``), not a verdict.

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

import numpy as np

from dcatkit import stats, studies
from dcatkit.experiment import TUNE_LAMS
from dcatkit.studies import GRID_KIND, STUDIES, control_setup, study_source_task, study_task
from dcatkit.sweep import run_grid


def _size(v: str):
    return None if v == "all" else int(v)


def plan(study_names, methods, seeds, draws, sizes, n_samples, lam, epochs_source, epochs_target, tune,
         unlabeled_mask, curve_source_labels="same", lams=TUNE_LAMS) -> tuple[list[dict], list[dict]]:
    """(source runs, target runs) of the grid, as parameter dicts of study_source_task / study_task.
    ``tune``: each transfer method at every lambda of ``lams`` (cells of their own, chosen
    from afterwards by ``tuned_runs``), instead of at ``lam``. No run tunes itself."""
    targets, sources = [], {}
    lams_of = lambda method: [None] if method == "none" else ([float(x) for x in lams] if tune else [lam])
    for study in study_names:
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
                    for lam_m in lams_of(method):
                        for seed in seeds:
                            targets.append({"study": study, "method": method, "seed": seed, "draw": draw,
                                            "n_samples": n_samples, "n_labeled": n_lab, "source": cfg["source"],
                                            "target": cfg["target"], "control": cfg["control"],
                                            "source_labels": cfg["source_labels"], "lam": lam_m,
                                            "epochs_source": epochs_source, "epochs_target": epochs_target,
                                            "unlabeled_mask": unlabeled_mask, "tune": False, "setup": setup})
    return list(sources.values()), targets


def _prepared(df: pd.DataFrame) -> pd.DataFrame:
    """Runs with n_labeled -1 for every label, a baseline's lam 0, source_labels and kind."""
    df = df.assign(n_labeled=df["n_labeled"].fillna(-1).astype(int),
                   lam=df["lam"].where(df["method"] != "none", 0.0).astype(float))
    if "kind" not in df.columns:
        df["kind"] = df["study"]
    if "source_labels" not in df.columns:
        df["source_labels"] = df["kind"].map(lambda k: STUDIES[k]["source_labels"])
    return df


def tuned_runs(df: pd.DataFrame, lams) -> pd.DataFrame:
    """The runs of a ``--tune`` grid with each method's tuned cell chosen by
    ``studies.with_tuned`` (per study and source_labels): rows of method "<m> (tuned)"
    (lam 0, the chosen lambda in ``lam_chosen``) beside the baseline in the study, and
    every grid run, with the baseline, in study "<study>, every λ" (kind "<kind>-grid"):
    a family of its own. Each seed's lambda is chosen on the other seeds' validation F1."""
    df = _prepared(df)
    lams = [float(x) for x in lams]
    parts = []
    for (study, source_labels), g in df.groupby(["study", "source_labels"], sort=False):
        tidy = studies.with_tuned(studies.tidy_studies(None, g.assign(n_labeled=g["n_labeled"].replace(-1, np.nan))),
                                  study, lams)
        parts.append(tidy.rename(columns={"data_seed": "draw"})
                     .assign(n_labeled=tidy["size"], source_labels=source_labels)
                     .drop(columns=["size", "unit", "metric", "value"]))
    return pd.concat(parts, ignore_index=True)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Paired differences against the baseline (method "none", same study, size, source
    labels, draw, seed) per (method, lambda) with ``stats.summarise``: per draw (each
    draw's cells, descriptive) and pooled over draws (``draw="draw"``: the kit's
    two-level pooling, a t on the draw means, Holm per study: the verdicts; needs >= 2
    draws). ``df``: controls runs, or ``tuned_runs``' rows."""
    df = _prepared(df)
    parts = []
    for study, g in df.groupby("study", sort=False):
        kind = g["kind"].iloc[0].removesuffix(GRID_KIND)
        metric = STUDIES[kind]["metric"]
        ctx = ("n_labeled", "source_labels")
        per = stats.summarise(g, metric, treatment=("method", "lam"), context=("draw",) + ctx, pair=("seed",))
        pooled = stats.summarise(g, metric, treatment=("method", "lam"), context=ctx, pair=("seed",),
                                 draw="draw").assign(draw="pooled")          # draws, then seeds (stats)
        parts.append(pd.concat([per, pooled], ignore_index=True).assign(study=study, kind=kind, metric=metric))
    out = pd.concat(parts, ignore_index=True)
    out["excludes_0"] = (out["ci_low"] > 0) | (out["ci_high"] < 0)
    lead = ["study", "kind", "metric", "draw", "n_labeled", "source_labels", "method", "lam"]
    return out[lead + [c for c in out.columns if c not in lead]]


def negative_verdicts(summ: pd.DataFrame) -> dict:
    """The negative control's false verdicts in a ``summarise`` table: pooled cells (every
    family of kind "negative", the tuned cells' and the grid's) whose interval excludes 0,
    of the pooled cells tested (>= 2 draws and enough seeds; None when none was). The
    per-draw cells that exclude 0 are counted apart, as descriptive leanings: one draw's
    seeds share that draw's data and sources, and the kit makes no claim on one draw."""
    neg = summ[(summ["kind"] == "negative") & (summ["method"] != "none")]
    pooled, per = neg[neg["draw"] == "pooled"], neg[neg["draw"] != "pooled"]
    tested = pooled[np.isfinite(pooled["ci_low"].astype(float))]
    return {"negative_false_verdicts": int(tested["excludes_0"].sum()) if len(tested) else None,
            "negative_cells": len(tested), "negative_untested_cells": len(pooled) - len(tested),
            "negative_per_draw_leanings": int(per["excludes_0"].sum()), "negative_per_draw_cells": len(per)}


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
    ap.add_argument("--tune", action="store_true",
                    help="run each transfer method at every lambda of --lams and choose per seed on the OTHER seeds' "
                         "validation F1 (studies.with_tuned); needs --seeds >= 2")
    ap.add_argument("--lams", nargs="+", type=float, default=list(TUNE_LAMS), help="the lambda grid of --tune")
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
    if a.tune and a.seeds < 2 and a.draws < 2:
        ap.error("--tune chooses each seed's lambda on the other seeds' validation F1: give --seeds >= 2")
    t0 = time.perf_counter()
    srcs, targets = plan(a.studies, a.methods, list(range(a.seeds)), list(range(a.draws)), a.sizes, a.n_samples,
                         a.lam, a.epochs_source, a.epochs_target, a.tune, a.unlabeled_mask, a.curve_source_labels,
                         a.lams)
    print(f"controls: {len(srcs)} sources, {len(targets)} target runs", flush=True)
    runs = Path(a.runs_dir)
    run_grid(functools.partial(study_source_task, out_dir=str(runs), device=a.device), srcs, runs / "sources",
             workers=a.workers, progress=False)
    df = run_grid(functools.partial(study_task, out_dir=str(runs), device=a.device), targets, runs,
                  workers=a.workers, progress=False)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    df.drop(columns=["pid"], errors="ignore").to_csv(out / "controls_runs.csv", index=False)
    rows = tuned_runs(df, a.lams) if a.tune else df
    summ = summarise(rows)
    summ.to_csv(out / "controls_summary.csv", index=False)
    info = {"command": "PYTHONPATH=. python benchmarks/controls.py " + " ".join(sys.argv[1:] if argv is None
                                                                              else argv),
            "n_sources": len(srcs), "n_runs": len(targets), "wall_s": round(time.perf_counter() - t0, 1),
            **negative_verdicts(summ),
            "negative_note": "false verdicts: pooled cells (>= 2 draws) whose interval excludes 0; per-draw "
                             "leanings are descriptive, not verdicts"}
    if a.tune:
        tidy = rows.rename(columns={"n_labeled": "size"})
        info["lams_chosen"] = studies.lam_choices(tidy).to_dict("records")
    (out / "controls.json").write_text(json.dumps(info, indent=1))
    cols = ["study", "draw", "n_labeled", "source_labels", "method", "lam", "paired_mean", "diff_mean", "ci_low",
            "ci_high", "excludes_0"]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(summ[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
