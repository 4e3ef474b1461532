"""Notebook 06's studies: the controls, the unlabeled-pairs curve and their verdicts.

What each study trains (STUDIES), one run of it (study_source_task /
study_task), the plan of a notebook's studies (control_plan) and its runs
through sweep.run_grid (run_controls); every run in one table
(tidy_studies), a method's lambda chosen on validation F1 from the runs of a
grid (with_tuned), and the verdicts pooled over data draws with Holm within
each study (pooled_verdicts, verdict_table). gradient_scale measures how
hard a transfer term pulls against cross-entropy.

Training and data come from dcatkit.experiment and dcatkit.data; the
statistics from dcatkit.stats. How much room a setting leaves for transfer
(baseline vs ceiling) is dcatkit.headroom.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .data import load
from .experiment import train_unimodal

# ------------------------------------------------------------------ controls and the unlabeled-pairs curve

# The studies of benchmarks/controls.py (issue 17): what each one trains, and the metric it is read on.
#   negative: the IMU of an independent draw (make_synthetic(control="negative")) as the target, a video
#             source that knows the labels: every method's expected test macro recall is exactly 1/8
#             where all 8 classes are in the test part (``metrics.chance_recall`` otherwise; the study
#             reads recall above it), so a paired difference that excludes 0 is a false verdict.
#   positive: the noise-free IMU of the same recordings ("imu_clean", trained on every training label: a
#             strong teacher) as the source of the noisy IMU, with few labels and many unlabeled
#             pairs: transfer should help by construction (where it does not, a finding to explain).
#   curve:    video -> IMU, the source trained on the same few labels as the target (the user's
#             situation: few labels for every sensor), target F1 against the number of labels.
STUDIES = {
    "negative": {"source": "video", "target": "imu", "control": "negative", "source_labels": "all",
                 "metric": "recall"},
    "positive": {"source": "imu_clean", "target": "imu", "control": None, "source_labels": "all", "metric": "f1"},
    "curve": {"source": "video", "target": "imu", "control": None, "source_labels": "same", "metric": "f1"},
}


def study_splits(draw: int, n_samples: int, source: str, target: str, control: str | None = None,
                 n_labeled: int | None = None, split: str = "id", n_val: int | None = None):
    """The synthetic data of one draw (data seed ``draw``; modalities source and target),
    with the labels of all but ``n_labeled`` training recordings hidden
    (``data.dataset.hide_labels``, seeded by the draw; None: all labelled) and, with
    ``n_val``, only that many validation recordings kept (``data.dataset.thin_validation``,
    seeded by the draw; None: the whole validation part)."""
    return _study_splits(int(draw), int(n_samples), source, target, control,
                         None if n_labeled is None else int(n_labeled), split, None if n_val is None else int(n_val))


@functools.lru_cache(maxsize=4)
def _study_splits(draw, n_samples, source, target, control, n_labeled, split, n_val=None):
    from .data.dataset import hide_labels, thin_validation

    sp = load("synthetic", split=split, modalities=(source, target), seed=draw, n_samples=n_samples,
              **({"control": control} if control else {}))
    sp = sp if n_labeled is None else hide_labels(sp, n_labeled, seed=draw)
    return sp if n_val is None else thin_validation(sp, n_val, seed=draw)


def _study_source_path(out_dir, ident: dict) -> Path:
    import hashlib

    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return Path(out_dir) / "sources" / f"{ident['source']}_{key}.pt"


def _source_ident(draw, n_samples, source, target, control, source_labels, n_labeled, split, epochs_source,
                  n_val=None, setup=None):
    if source_labels not in ("all", "same"):
        raise ValueError(f"source_labels must be 'all' (the source knows every training label) or 'same' (the "
                         f"target's n_labeled labels), got {source_labels!r}")
    ident = {"draw": int(draw), "n_samples": int(n_samples), "source": source, "target": target, "control": control,
             "n_labeled": None if source_labels == "all" else n_labeled, "split": split,
             "epochs_source": epochs_source}
    if n_val is not None and source_labels == "same":   # only then does the source see the thinned validation
        ident["n_val"] = int(n_val)                      # (absent otherwise: earlier sources keep their names)
    if setup is not None:                                # control_setup: presets, simulator, control
        ident["setup"] = setup
    return ident


def control_setup(source: str, target: str, control: str | None) -> str:
    """``sweep.setup_fingerprint`` of a control study's runs: the resolved presets and the
    simulator, and (as its ``data``) the ``sweep.data_identity`` of the canonical draw of the
    study's two modalities with its ``control`` applied (the negative control's shuffle, the
    positive control's teacher modality). It is in every control run's identity (and its
    source's), so a run stored before a preset, simulator or control change is trained again
    instead of being read back, and paired with new runs, as if it were current."""
    from .data import load
    from .sweep import CANONICAL_DRAW, data_identity, setup_fingerprint

    sp = load("synthetic", modalities=(source, target), **CANONICAL_DRAW, **({"control": control} if control else {}))
    return setup_fingerprint("synthetic", "synthetic", source, target, data=data_identity(sp))


def study_source_task(*, out_dir: str, draw: int, n_samples: int, source: str, target: str,
                      control: str | None = None, n_labeled: int | None = None, split: str = "id",
                      epochs_source: int | None = None, n_val: int | None = None, setup: str | None = None,
                      device="auto", redo: bool = False) -> dict:
    """Train (or find) the frozen source of one draw, on every training label and the whole
    validation part (``n_labeled`` None) or on the ``n_labeled`` labels and ``n_val``
    validation recordings the target gets; its checkpoint goes to ``out_dir/sources/``
    (``redo``: trained again even if it exists, as ``sweep.source_task``). Returns its test
    metrics."""
    from .experiment import load_source
    from .train import evaluate

    if n_labeled is None and n_val is not None:
        raise ValueError("a source that knows every training label keeps the whole validation part: n_val must be "
                         f"None when n_labeled is None, got n_val={n_val!r}")
    ident = _source_ident(draw, n_samples, source, target, control, "all" if n_labeled is None else "same",
                          n_labeled, split, epochs_source, n_val, setup)
    sp = study_splits(draw, n_samples, source, target, control, n_labeled, split, n_val)
    path = _study_source_path(out_dir, ident)
    if path.is_file() and not redo:
        test = evaluate(load_source(path, sp, target), sp.test, source, device=device)
    else:
        test = train_unimodal(sp, source, preset="synthetic", dataset="synthetic", epochs=epochs_source,
                              seed=int(draw), device=device, checkpoint=path, progress=False).test
    return {"source_f1": float(test["f1"]), "source_recall": float(test["recall"])}


def study_task(*, out_dir: str, study: str, method: str, seed: int, draw: int, n_samples: int,
               n_labeled: int | None, source: str, target: str, control: str | None = None,
               source_labels: str = "all", lam: float | None = 1.0, split: str = "id",
               epochs_source: int | None = None, epochs_target: int | None = None,
               unlabeled_mask: str = "confidence", tune: bool = False, n_val: int | None = None,
               setup: str | None = None, device="auto") -> dict:
    """One target run of a control study: ``experiment.train_transfer`` at ``lam`` on the
    draw's data with ``n_labeled`` labels (None: all) and the rest as unlabeled pairs, and
    ``n_val`` validation recordings (None: all), from the frozen source of ``study_source_task``.
    Returns test accuracy / recall / F1, the source's, the lambda used, the best epoch,
    and diagnostics of the transfer term: the mean over epochs of the mask fractions, the
    first and last epoch's objective value, and the gradient-norm ratio
    ||grad lam*L|| / ||grad CE|| at the start (see ``gradient_scale``).

    ``tune`` must be False (the parameter stays in every run's identity): a run that tuned
    its own lambda (``experiment.tune_transfer``, on its own validation F1) and was then
    paired with its seed's baseline gave the tuned cell the best of K runs' luck, a gain a
    method with no effect also gets. Run the lambda grid as cells and choose with
    ``with_tuned`` (leave one seed out)."""
    from .experiment import train_transfer

    if tune:
        raise ValueError("study_task(tune=True) chose each seed's lambda on that run's own validation F1, a biased "
                         "comparison with its baseline (RESULTS.md, 'Tuned cells'): run every lambda of the grid as "
                         "its own cell (tune=False, lam=...) and choose with studies.with_tuned (leave one seed out)")
    same = source_labels != "all"
    src = study_source_task(out_dir=out_dir, draw=draw, n_samples=n_samples, source=source, target=target,
                            control=control, n_labeled=n_labeled if same else None, split=split,
                            epochs_source=epochs_source, n_val=n_val if same else None, setup=setup,
                            device=device)
    ident = _source_ident(draw, n_samples, source, target, control, source_labels, n_labeled, split, epochs_source,
                          n_val, setup)
    sp = study_splits(draw, n_samples, source, target, control, n_labeled, split, n_val)
    common = dict(preset="synthetic", dataset="synthetic", epochs=epochs_target, device=device, progress=False,
                  cache_dir=Path(out_dir) / "cache", unlabeled_mask=unlabeled_mask)
    path = _study_source_path(out_dir, ident)
    lam = 0.0 if lam is None or method == "none" else float(lam)
    run = train_transfer(sp, path, target, method=method, lam=lam, seed=int(seed), **common)
    h = run.history
    out = {**{m: float(run.test[m]) for m in ("accuracy", "recall", "f1")}, **src, "lam_used": lam,
           "n_train_labeled": len(sp.train), "n_unlabeled": 0 if sp.unlabeled is None else len(sp.unlabeled),
           "n_val_recordings": len(sp.val), "best_epoch": int(run.meta["best_val"]["epoch"]),
           "val_f1": float(run.meta["best_val"]["f1"])}
    for col in ("train_mask_frac", "train_mask_frac_unlabeled"):
        if col in h:
            out[col[6:]] = float(h[col].mean())
    term = next((c for c in ("train_ca", "train_kd", "train_nce", "train_fitnet") if c in h), None)
    if term is not None:
        out["objective_first"], out["objective_last"] = float(h[term].iloc[0]), float(h[term].iloc[-1])
        out["objective_best"] = float(h[term].iloc[out["best_epoch"] - 1])
    if method != "none" and lam:
        out["grad_ratio_init"] = gradient_scale(sp, path, target, method=method, lam=lam, seed=int(seed),
                                                unlabeled_mask=unlabeled_mask)["ratio"]
    return out


def gradient_scale(splits, source, target: str, *, method: str, lam: float, seed: int = 0,
                   n_batches: int = 4, unlabeled_mask: str = "confidence") -> dict:
    """How strongly the transfer term pulls against cross-entropy at the start of training:
    on the first ``n_batches`` training batches of a freshly initialised target (the same
    init as ``train_transfer`` with ``seed``), the norms of the gradients of L_CE and of
    ``lam * L_transfer`` with respect to the target's weights (each over all weights,
    averaged over the batches), their ratio and their cosine. Runs on the CPU."""
    import torch
    import torch.nn.functional as F

    from .data.dataset import UNLABELED, training_set
    from .experiment import _build, _preset, load_source
    from .objectives import make_objective
    from .frozen_source import LiveSource
    from .runtime import make_loader, seed_everything
    from .train import _given_back, _unlabeled_mask

    frozen = load_source(source, splits, target)
    with _given_back([frozen]):                  # LiveSource freezes it; a caller's model is given back
        src = LiveSource(frozen, frozen.config["modality"])
        train = training_set(splits)
        p = _preset("synthetic", target, "synthetic", splits.train)
        seed_everything(seed)
        model = _build(target, splits.train, p)
        obj = make_objective(method, d_target=model.attention.d_out, d_source=src.model.attention.d_out)
        params = [q for q in model.parameters() if q.requires_grad]
        norms_ce, norms_tr, cos = [], [], []
        model.train()
        for i, batch in enumerate(make_loader(train, p.batch_size, shuffle=True, seed=seed)):
            if i == n_batches:
                break
            out = model(batch[target])
            y = batch["label"]
            lab = y != UNLABELED
            ce = F.cross_entropy(out.logits[lab], y[lab]) if bool(lab.any()) else out.logits.sum() * 0.0
            s = src(batch, torch.device("cpu"))
            if bool((~lab).any()):
                s, _ = _unlabeled_mask(s, y, True, unlabeled_mask, 0.9)
            tr = lam * obj(out, s)[0]
            g_ce = torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True)
            g_tr = torch.autograd.grad(tr, params, allow_unused=True)
            flat = lambda g: torch.cat([(x if x is not None else torch.zeros_like(q)).reshape(-1)
                                        for x, q in zip(g, params)])
            a, b = flat(g_ce), flat(g_tr)
            norms_ce.append(float(a.norm()))
            norms_tr.append(float(b.norm()))
            cos.append(float(F.cosine_similarity(a, b, dim=0)) if a.norm() > 0 and b.norm() > 0 else float("nan"))
        ce_n, tr_n = float(np.mean(norms_ce)), float(np.mean(norms_tr))
    return {"grad_ce": ce_n, "grad_transfer": tr_n, "ratio": tr_n / ce_n if ce_n > 0 else float("nan"),
            "cosine": float(np.nanmean(cos)) if not all(np.isnan(cos)) else float("nan")}


# ------------------------------------------------------------------ notebook 06: control studies as one sweep

def _method_lam(entry, lam: float) -> tuple[str, float | None]:
    """"dcat" -> ("dcat", lam); ["dcat", 30] -> ("dcat", 30.0); "none" -> ("none", None)."""
    if isinstance(entry, str):
        m, l = entry, lam
    elif isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str):
        m, l = entry[0], float(entry[1])
    else:
        raise ValueError(f"a method is a name or [name, lambda], got {entry!r}")
    return m, (None if m == "none" else float(l))


def control_plan(studies: Sequence[dict], *, seeds: Sequence[int], draws: Sequence[int], n_samples: int,
                 lam: float = 1.0, epochs_source: int | None = None, epochs_target: int | None = None,
                 unlabeled_mask: str = "confidence") -> tuple[list[dict], list[dict]]:
    """(source runs, target runs) of control studies, as parameter dicts of
    ``study_source_task`` / ``study_task``. Each study: ``study`` (its name), ``kind``
    (a key of ``STUDIES``: negative / positive / curve), ``methods`` (names, or
    ``[name, lambda]`` for a method at another lambda than ``lam``; must hold "none"),
    ``labels`` (numbers of training labels, the rest unlabeled pairs; None or absent = every
    label; the negative control too, where it tests the few-label pipeline under the null),
    optionally ``source_labels`` ("all" / "same", overriding the kind's) and ``val_labels``
    (keep only that many validation recordings, ``data.dataset.thin_validation``: validation
    as scarce as the training labels; a source on "all" labels keeps the whole validation
    part). A run's
    parameters hold ``n_val`` only when ``val_labels`` is given, so the identities of
    earlier runs do not change; every run's (and source's) hold ``setup``
    (:func:`control_setup`)."""
    targets, sources, setups = [], {}, {}
    names = [s.get("study") for s in studies]
    if len(set(names)) != len(names):
        raise ValueError(f"study names must be distinct, got {names}")
    for s in studies:
        if s.get("kind") not in STUDIES:
            raise ValueError(f"study {s.get('study')!r}: kind must be one of {sorted(STUDIES)}, got {s.get('kind')!r}")
        cfg = {**STUDIES[s["kind"]], **({"source_labels": s["source_labels"]} if s.get("source_labels") else {})}
        if cfg["source_labels"] not in ("all", "same"):          # refused here, before any source trains
            raise ValueError(f"study {s['study']!r}: source_labels must be 'all' (the source knows every training "
                             f"label) or 'same' (the target's labels), got {cfg['source_labels']!r}")
        methods = [_method_lam(e, lam) for e in s["methods"]]
        if ("none", None) not in methods:
            raise ValueError(f"study {s['study']!r}: methods must include 'none' (the baseline), got {s['methods']}")
        labels = list(s.get("labels") or [None])
        n_val = s.get("val_labels")
        if n_val is not None and (isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)) or n_val < 1):
            raise ValueError(f"study {s['study']!r}: val_labels must be a positive int (validation recordings kept) "
                             f"or None, got {n_val!r}")
        val = {} if n_val is None else {"n_val": int(n_val)}
        data = (cfg["source"], cfg["target"], cfg["control"])
        if data not in setups:
            setups[data] = control_setup(*data)
        setup = setups[data]
        for draw in draws:
            for n_lab in labels:
                src = {"draw": int(draw), "n_samples": int(n_samples), "source": cfg["source"],
                       "target": cfg["target"], "control": cfg["control"],
                       "n_labeled": None if cfg["source_labels"] == "all" else n_lab, "epochs_source": epochs_source,
                       **(val if cfg["source_labels"] == "same" else {}), "setup": setup}
                sources[json.dumps(src, sort_keys=True)] = src
                for m, l in methods:
                    for seed in seeds:
                        targets.append({"study": s["study"], "method": m, "seed": int(seed), "draw": int(draw),
                                        "n_samples": int(n_samples), "n_labeled": n_lab, "source": cfg["source"],
                                        "target": cfg["target"], "control": cfg["control"],
                                        "source_labels": cfg["source_labels"], "lam": l,
                                        "epochs_source": epochs_source, "epochs_target": epochs_target,
                                        "unlabeled_mask": unlabeled_mask, "tune": False, **val, "setup": setup})
    return list(sources.values()), targets


def run_controls(out_dir, studies: Sequence[dict], *, seeds: Sequence[int], draws: Sequence[int], n_samples: int,
                 lam: float = 1.0, epochs_source: int | None = None, epochs_target: int | None = None,
                 workers: int | None = None, device="auto", redo: bool = False) -> pd.DataFrame:
    """The control studies of ``control_plan`` through ``sweep.run_grid``: every source
    first, then every target run (resumable: finished runs are read back). One row per
    target run, with the ``study`` of the plan. ``workers=None``: ``runner.default_workers``
    of each grid's run memory estimate (``control_run_bytes``), as ``sweep.run_studies`` does:
    one per core on a CPU, as many runs per GPU as fit in its memory (without an estimate, one
    per GPU)."""
    from .sweep import run_grid

    if not studies:
        return pd.DataFrame()
    srcs, targets = control_plan(studies, seeds=seeds, draws=draws, n_samples=n_samples, lam=lam,
                                 epochs_source=epochs_source, epochs_target=epochs_target)
    out = Path(out_dir)
    run_grid(functools.partial(study_source_task, out_dir=str(out), device=device, redo=redo), srcs, out / "sources",
             workers=workers, redo=redo, progress=False, run_bytes=control_run_bytes(srcs, "source"))
    return run_grid(functools.partial(study_task, out_dir=str(out), device=device), targets, out, workers=workers,
                    redo=redo, progress=False, run_bytes=control_run_bytes(targets, "target"))


def control_run_bytes(params: Sequence[dict], role: str) -> int | None:
    """``runner.estimate_run_bytes`` of the runs ``params`` (of ``control_plan``) training their
    ``role`` modality ("source" for the sources, "target" for the targets, which read their
    source from a cache, as ``sweep`` estimates its runs): the preset's batch and the sample
    shape that trains, the largest over the plan's (source, target, control) settings. Only with
    CUDA (it loads a draw's data for the shapes; without CUDA the estimate is not used); None when
    it cannot tell (``default_workers`` then gives one worker per GPU)."""
    import torch

    if role not in ("source", "target"):
        raise ValueError(f"role must be 'source' or 'target', got {role!r}")
    if not params or not torch.cuda.is_available():
        return None
    from .experiment import _preset
    from .runner import estimate_run_bytes

    first = {}
    for p in params:
        first.setdefault((p["source"], p["target"], p["control"]), p)
    try:
        sizes = []
        for p in first.values():
            sp = study_splits(p["draw"], p["n_samples"], p["source"], p["target"], p["control"])
            m = p[role]
            batch = _preset("synthetic", m, "synthetic", sp.train).batch_size   # what study_*_task trains with
            sizes.append(estimate_run_bytes(batch, [sp.train.input_shape(m)]))
        return max(sizes)
    except Exception:             # noqa: BLE001 - no estimate: one worker per GPU, as without one
        return None


# One table for every study of notebook 06: the x of a study is `size`, in `unit`; `value` is the metric
# the study is read on (`metric`: recall for the negative control, F1 elsewhere).
TIDY = ("study", "kind", "method", "lam", "size", "unit", "data_seed", "seed", "metric", "value", "f1", "recall",
        "source_f1")


def tidy_studies(main: pd.DataFrame | None = None, controls: pd.DataFrame | None = None,
                 kinds: dict | None = None) -> pd.DataFrame:
    """``sweep.run_studies`` rows (``main``: x = recordings, read on F1) and ``run_controls``
    rows (``controls``: x = training labels, -1 meaning every label; read on the kind's
    metric) as one table with the columns ``TIDY`` (plus the diagnostics the control runs
    carry, and the CPU and commit that trained each run where the runs stored them).
    ``kinds``: {study: kind} of the control studies (from their plan) and of any main study
    that is not of kind "main" (e.g. {"(e) ...": "recipe"}).
    A baseline's lam is 0."""
    parts = []
    kinds = kinds or {}
    if main is not None and len(main):
        m = main.assign(kind=main["study"].map(lambda s: kinds.get(s, "main")) if "study" in main.columns else "main",
                        size=main["n_samples"].astype(int), unit="recordings", metric="f1",
                        value=main["f1"], lam=main["lam"].where(main["method"] != "none", 0.0).astype(float))
        parts.append(m)
    if controls is not None and len(controls):
        c = controls.assign(kind=controls["study"].map(lambda s: kinds.get(s, s)))
        c = c.assign(size=c["n_labeled"].fillna(-1).astype(int), unit="labels", data_seed=c["draw"].astype(int),
                     metric=c["kind"].map(lambda k: STUDIES[k]["metric"] if k in STUDIES else "f1"),
                     lam=c["lam"].where(c["method"] != "none", 0.0).astype(float))
        c["value"] = [r[k] for r, k in zip(c.to_dict("records"), c["metric"])]
        parts.append(c)
    if not parts:
        raise ValueError("no runs: give main and/or controls")
    df = pd.concat(parts, ignore_index=True)
    extra = [c for c in ("n_train", "n_train_labeled", "n_unlabeled", "mask_frac", "mask_frac_unlabeled",
                         "objective_first", "objective_last", "grad_ratio_init", "best_epoch", "val_f1", "n_val",
                         "n_val_recordings", "wall_s", "env_device", "env_device_name", "env_cpu", "env_cpu_capability",
                         "env_git_commit")
             if c in df.columns]          # env_*: the machine and code of each run (a CPU run depends on them)
    return df[list(TIDY) + extra].reset_index(drop=True)


def pooled_verdicts(tidy: pd.DataFrame, confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(pooled, per_draw)`` of ``tidy_studies``' table with ``stats.summarise_draws``:
    each (study, size, method, lambda) paired with its same-draw, same-seed baseline,
    pooled over the data draws (t on the draw means), Holm within each study (the family:
    the cells of one question), and one row per draw (sign-flip over the seeds: exact up to
    ``stats.N_EXACT`` paired seeds, Monte Carlo above, as its ``test`` column says;
    uncorrected: descriptive). Both carry ``metric`` and ``unit``."""
    from . import stats

    pooled, per = stats.summarise_draws(tidy, "value", treatment=("method", "lam"), context=("study", "size"),
                                        pair=("seed",), draw="data_seed", family=("study",), confidence=confidence)
    info = tidy.groupby("study", sort=False)[["kind", "metric", "unit"]].first()
    return pooled.join(info, on="study"), per.join(info, on="study")


def size_label(size: int, unit: str) -> str:
    """"n = 300" (recordings), "20 labels", "all labels"."""
    if unit == "labels":
        return "all labels" if int(size) < 0 else f"{int(size)} labels"
    return f"n = {int(size)}"


def method_label(method: str, lam: float, default_lam: float = 1.0) -> str:
    """"dcat" at the default lambda, "dcat (λ = 30)" at another, a tuned cell's name as it is."""
    if method == "none" or method.endswith("(tuned)") or lam == default_lam:
        return method
    return f"{method} (λ = {lam:g})"


def verdict_table(pooled: pd.DataFrame, per_draw: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The pooled verdicts of ``pooled_verdicts`` beside their per-draw results, one row per
    (study, method, lambda, size), as strings for printing: the baseline's and the method's
    mean metric over the paired runs (weighted as the difference is: method mean - baseline =
    the pooled difference, also when a run is missing), the pooled difference with its family-adjusted interval (``stats.format_interval``),
    the call, each draw's mean difference with its seeds won / lost, and the spread
    (standard deviation) of the draw means."""
    from .stats import format_interval, signed

    rows = []
    for r in pooled[pooled["method"] != "none"].itertuples():
        d = per_draw[(per_draw["study"] == r.study) & (per_draw["method"] == r.method) & (per_draw["lam"] == r.lam)
                     & (per_draw["size"] == r.size)].sort_values("data_seed")
        rows.append({"study": r.study, "method": method_label(r.method, r.lam),
                     "size": size_label(r.size, r.unit), "metric": r.metric,
                     "baseline": f"{r.baseline_mean:.{digits}f}", "method mean": f"{r.paired_mean:.{digits}f}",
                     "Δ pooled [adjusted CI]": (format_interval(r.diff_mean, r.ci_low, r.ci_high, digits)
                                                if np.isfinite(r.family_size) else   # untested: no interval
                                                signed(r.diff_mean, digits) if np.isfinite(r.diff_mean) else ""),
                     "call": r.call,
                     "Δ per draw (seeds +/-)": "; ".join(f"{signed(x.diff_mean, digits)} ({int(x.n_better)}/{int(x.n_worse)})"
                                                         if x.n_pairs > 0 else "no pairs" for x in d.itertuples()),
                     "draw sd": f"{r.draw_sd:.{digits}f}" if np.isfinite(r.draw_sd) else "",
                     "family": (f"{int(r.family_size)} cell{'' if int(r.family_size) == 1 else 's'}"
                                if np.isfinite(r.family_size) else "untested")})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ fair rivals: lambda chosen on validation F1

GRID_KIND = "-grid"     # the kind of a tuned study's grid of runs ("positive-grid"): description beside the verdicts


def tuned_label(method: str) -> str:
    """The method name of a tuned cell: "kd" -> "kd (tuned)"."""
    return f"{method} (tuned)"


def with_tuned(tidy: pd.DataFrame, study: str, lams: Sequence[float], *, keep: Sequence[tuple[str, float]] = (),
               grid_study: str | None = None) -> pd.DataFrame:
    """``tidy`` with the runs of ``study`` over a lambda grid turned into tuned cells.

    Every method of ``study`` that ran at every lambda of ``lams`` (with the same data
    draw and seed) gets, per (size, draw, seed), the run at the lambda with the highest
    VALIDATION F1 averaged over the OTHER seeds of the same size and draw (leave one seed
    out; ``experiment.choose_on_validation`` on those means: ties go to the first lambda
    of ``lams``; a draw with one seed uses the other draws' seeds): a row of method
    ``tuned_label(method)``, ``lam`` 0 and the chosen lambda in ``lam_chosen``, its test
    metrics as they are. Test results play no part in the choice. Nor does the seed's own
    validation F1: choosing each seed's best of K runs on its own validation score would
    hand the tuned cell the best of K training runs' luck (validation and test F1 of one
    run rise and fall together), a gain over the one-run baseline that a method with no
    effect at any lambda also gets. Every method gets the same grid, budget and rule
    (``experiment.tune_transfer`` tunes a single fresh run for a user, on its own
    validation F1, which is fine there: it makes no comparison).

    ``study`` then holds its baseline, the tuned cells and the (method, lambda) pairs
    in ``keep`` (e.g. D-CAT at the paper's lambda); every run of the grid moves to
    ``grid_study`` (default ``"<study>, every λ"``, kind ``"<kind>-grid"``) with the
    baseline, so the grid is shown and tested as its own family and does not widen the
    study's Holm family.
    Methods without a run at every lambda stay in ``study`` untouched."""
    from .experiment import choose_on_validation

    lams = [float(x) for x in lams]
    grid_study = grid_study or f"{study}, every λ"
    if "val_f1" not in tidy.columns:
        raise ValueError("with_tuned needs the runs' validation F1 (column val_f1): tidy_studies keeps it")
    if not len(lams):
        raise ValueError("with_tuned needs a lambda grid")
    mine = tidy[tidy["study"] == study]
    if not len(mine):
        raise ValueError(f"no runs of study {study!r}; studies here: {sorted(tidy['study'].unique())}")
    keys = ["size", "data_seed", "seed"]
    base = mine[mine["method"] == "none"]
    tuned, grid_rows, gridded = [], [], set()
    for method, runs in mine[mine["method"] != "none"].groupby("method", sort=False):
        on_grid = runs[runs["lam"].isin(lams)]
        full = on_grid.groupby(keys)["lam"].nunique()
        if not len(full) or (full < len(lams)).any():
            continue
        twice = on_grid.duplicated(keys + ["lam"])
        if twice.any():
            raise ValueError(f"{method!r} in study {study!r} has more than one run for "
                             f"{on_grid.loc[twice, keys + ['lam']].iloc[0].to_dict()}: one run per grid point expected")
        gridded.add(method)
        grid_rows.append(on_grid)
        val = on_grid.pivot(index=keys, columns="lam", values="val_f1")[lams]     # (size, draw, seed) x lambda
        for (size, draw, seed), cell in on_grid.groupby(keys):
            same_size = val.xs(size, level="size")
            others = same_size.xs(draw, level="data_seed").drop(index=seed)           # this draw's other seeds
            if not len(others):
                others = same_size.drop(index=draw, level="data_seed")
            if not len(others):
                raise ValueError(f"{method!r} in study {study!r}, size {size}: one run per lambda in all; the "
                                 "lambda of a seed is chosen on the other seeds' validation F1, and there are none")
            i = choose_on_validation(others.mean())
            row = cell.set_index("lam").loc[lams].iloc[i].copy()
            row["lam_chosen"], row["method"], row["lam"] = lams[i], tuned_label(method), 0.0
            tuned.append(row)
    if not gridded:
        raise ValueError(f"no method of study {study!r} ran at every lambda of {lams}")
    keep = {(m, float(l)) for m, l in keep}
    stays = mine[~mine["method"].isin(gridded)
                 | pd.Series([(m, float(l)) in keep for m, l in zip(mine["method"], mine["lam"])], index=mine.index)]
    tuned = pd.DataFrame(tuned).assign(study=study)
    grid_part = pd.concat([base] + grid_rows).assign(study=grid_study, kind=lambda d: d["kind"] + GRID_KIND)
    parts = []
    for name in tidy["study"].unique():            # the studies' order, the grid right after its study
        parts += [stays, tuned, grid_part] if name == study else [tidy[tidy["study"] == name]]
    return pd.concat(parts, ignore_index=True)


def lam_choices(tidy: pd.DataFrame) -> pd.DataFrame:
    """How often each lambda was chosen, per tuned cell (study, method, size) of a
    ``with_tuned`` table: columns study, method, size and ``chosen`` ("λ = 1: 12, λ = 10: 18")."""
    t = tidy[tidy["method"].str.endswith("(tuned)")] if "lam_chosen" in tidy.columns else tidy.iloc[:0]
    rows = []
    for (study, method, size), g in t.groupby(["study", "method", "size"], sort=False):
        counts = g["lam_chosen"].value_counts().sort_index()
        rows.append({"study": study, "method": method, "size": size,
                     "chosen": ", ".join(f"λ = {l:g}: {int(n)}" for l, n in counts.items())})
    return pd.DataFrame(rows, columns=["study", "method", "size", "chosen"])
