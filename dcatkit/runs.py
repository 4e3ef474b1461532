"""The notebooks' plumbing, out of the learner's view: load the data (one fold of a
cross-validation split), find a trained model or train it, name a run's results files
(``results_stem``), what a frozen source gives the masked alignment (``source_reach``),
and the per-subject view.

>>> splits = load_splits("synthetic", checked, data_seed=0, data_opts={})   # checked: paths.check_params
>>> src = source_run(splits, "video", "imu", ck_source, preset="synthetic", dataset="synthetic")
>>> model, how = load_or_train(ck_baseline, lambda: train_unimodal(...))

Every function prints one line saying what it did (loaded from where, or trained in how
long), so an executed notebook shows where each model came from.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from . import paths
from .metrics import classification_metrics


def load_splits(dataset: str, checked: Mapping[str, Any], data_seed: int, data_opts: Mapping[str, Any],
                verbose: bool = True):
    """The train / val / test ``Splits`` a notebook works on.

    ``checked``: what ``paths.check_params`` returned (data root, modalities, split, fold).
    For "id" / "ood" that is ``dcatkit.data.load``'s result; for a cross-validation split
    ("loso", ("group_kfold", k)) it is fold ``checked["fold"]`` of the list ``load``
    returns (a clear error when the split has fewer folds)."""
    from .data import load

    t0 = time.perf_counter()
    got = load(dataset, root=checked["data_root"], split=checked["split"], modalities=checked["modalities"],
               seed=data_seed, **data_opts)
    if isinstance(got, list):
        fold = checked["fold"]
        if not 0 <= fold < len(got):
            raise ValueError(f"split {checked['split']!r} has {len(got)} folds on this data: fold must be "
                             f"0 .. {len(got) - 1}, got {fold}")
        splits = got[fold]
        which = (f", fold {fold} of {len(got)} (test subjects "
                 f"{splits.report['split'].get('held_out_subjects')})")
    else:
        splits = got
        which = ""
    if verbose:
        print(f"loaded {dataset!r} ({checked['split_name']}{which}) in {time.perf_counter() - t0:.1f}s: "
              f"train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)} samples, "
              f"{len(splits.classes)} classes, modalities {splits.train.modalities}")
    return splits


def n_folds(dataset: str, checked: Mapping[str, Any], data_seed: int, data_opts: Mapping[str, Any]) -> int:
    """How many folds the notebook's split has (1 for "id" / "ood")."""
    if not checked["cv"]:
        return 1
    from .data import load

    return len(load(dataset, root=checked["data_root"], split=checked["split"], modalities=checked["modalities"],
                    seed=data_seed, **data_opts))


def data_key(dataset: str, split_name: str, data_seed: int, data_opts: Mapping[str, Any], preset: str,
             source: str, target: str, *, splits=None) -> dict:
    """What a notebook's checkpoint names hash besides the run's own settings
    (``paths.checkpoint_path(out_dir, name, **data_key(...), epochs=..., seed=...)``): the
    data (dataset, split, data seed, loader options), the preset's name and ``setup``, the
    fingerprint of the resolved presets and, on the synthetic dataset, of the simulator
    (``sweep.setup_fingerprint``); on a real dataset, of the loaded ``splits``' content
    (``sweep.data_identity``: ids, subjects, labels, every input's bytes), which it needs. A
    model trained before a preset, simulator or data change (another copy or version of the
    dataset at ``data_root``, re-extracted frames) is then trained again instead of being
    read back as current."""
    from .sweep import data_identity, setup_fingerprint

    regime = data_opts.get("regime") if dataset == "synthetic" else None
    if dataset != "synthetic" and splits is None:
        raise ValueError(f"data_key on the real dataset {dataset!r} needs splits= (the loaded data): its "
                         "checkpoint names hold the data's content, so a model trained on other data is not read back")
    data = None if dataset == "synthetic" else data_identity(splits)
    kinds = None if dataset == "synthetic" else (splits[0] if isinstance(splits, list) else splits).train.kinds
    return dict(dataset=dataset, split=split_name, data_seed=data_seed, data=dict(data_opts), preset=preset,
                setup=setup_fingerprint(dataset, preset, source, target, regimes=(regime,), data=data, kinds=kinds))


def results_stem(head: str, params: Mapping[str, Any], tail: str = "") -> str:
    """The name (without ``.csv`` / ``.json``) a notebook writes a results file under:
    ``<head>-<key>``, or ``<head>-<key>-<tail>`` with a ``tail``.

    ``head`` and ``tail`` are the readable part (``"transfer-synthetic-id-video-imu"``,
    ``"lam1-seed0"``: a glob such as ``'transfer-*-seed0.csv'`` still picks runs by them);
    ``key`` is ``paths.settings_key`` of ``params`` in their JSON form, the 10 hex digits
    checkpoint names end with. Pass the very ``params`` the file records
    (``report.write_results(..., params=params)``): then two runs whose recorded
    parameters differ in anything (data seed, fold, data size, epochs, preset, loader
    options, ...) write two files instead of the second replacing the first, and the same
    parameters give the same name again (how ``report.finished_runs`` finds a finished run).
    The readable part alone never decides."""
    from .report import _jsonable

    if not isinstance(head, str) or not head.strip() or any(c in head for c in "/\\"):
        raise ValueError(f"head must be a non-empty file-name part without '/' or '\\' (e.g. "
                         f"'transfer-synthetic-id-video-imu'), got {head!r}")
    if not isinstance(tail, str) or any(c in tail for c in "/\\"):
        raise ValueError(f"tail must be a file-name part without '/' or '\\' (e.g. 'lam1-seed0'), got {tail!r}")
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise ValueError(f"params must be a mapping with str keys (the parameters the results file records), "
                         f"got {type(params).__name__}: {params!r}"[:300])
    key = paths.settings_key(**_jsonable(dict(params)))
    return f"{head}-{key}-{tail}" if tail else f"{head}-{key}"


def only(splits, modality: str):
    """The same splits with one modality (what a unimodal run trains on)."""
    from .data import Splits

    return Splits(splits.train.select([modality]), splits.val.select([modality]), splits.test.select([modality]),
                  splits.report)


def source_run(splits, source: str, target: str, checkpoint: str | Path, *, preset: str = "synthetic",
               dataset: str | None = None, epochs: int | None = None, seed: int = 0, device: str = "auto",
               resume: bool = False, verbose: bool = True, progress: bool = False):
    """The frozen source as a ``Run``: read back from ``checkpoint`` when it exists
    (checked against the data's classes and the target modality), else trained with
    cross-entropy and saved there (what notebook 02 does). ``progress``: a progress bar
    while training, cleared afterwards (:func:`clear_progress`)."""
    from .experiment import Run, load_source, train_unimodal
    from .train import evaluate

    checkpoint = Path(checkpoint)
    t0 = time.perf_counter()
    if checkpoint.is_file():
        model = load_source(checkpoint, splits, target, source_modality=source)
        run = Run(f"{source} source", source, model, evaluate(model, splits.test, source, device=device),
                  checkpoint=checkpoint)
        how = f"loaded the frozen source from {paths.shown(checkpoint)}"
    else:
        run = train_unimodal(only(splits, source), source, preset=preset, dataset=dataset, epochs=epochs, seed=seed,
                             device=device, checkpoint=checkpoint, progress=progress, name=f"{source} source",
                             resume=resume)
        if progress:
            clear_progress()
        how = f"no source checkpoint yet: trained it, saved to {paths.shown(checkpoint)}"
    if verbose:
        print(f"{how} ({time.perf_counter() - t0:.0f}s); {run.name}: test accuracy {run.test['accuracy']:.3f}, "
              f"macro-F1 {run.test['f1']:.3f}")
    return run


def source_reach(run, splits, device: str = "auto") -> dict:
    """What a frozen source (a ``Run``, e.g. :func:`source_run`'s) gives the masked
    alignment, split by split.

    ``kept``: the share of the training samples the source classifies correctly -- the
    samples MCMA aligns the target on (Eq. 17; a D-CAT run logs it as ``train_mask_frac``).
    ``val_f1`` / ``test_f1``: its macro-F1 on samples it never trained on (on a
    subject-disjoint split, people it never saw; the test F1 is the run's own, not computed
    again). A source can keep most training samples and still not carry to new people: the
    two numbers answer different questions.
    """
    from .train import evaluate, predict

    y, p = predict(run.model, splits.train, run.modality, device=device)
    return {"kept": float((y == p).mean()) if len(y) else float("nan"),
            "val_f1": evaluate(run.model, splits.val, run.modality, device=device)["f1"],
            "test_f1": run.test["f1"]}


def load_or_train(checkpoint: str | Path, train: Callable[[], Any], name: str = "model", verbose: bool = True,
                  source: str | Path | None = None):
    """The model saved at ``checkpoint``, or ``train()``'s (a ``Run``, which saves it
    there). Returns the model.

    ``source``: for a transfer run, the checkpoint path of the frozen source ``train()``
    would use now. The saved model is read back only when it records that very source
    (``experiment.source_identity``, as ``report.finished_runs(source=)`` checks): a source
    trained again under its file name since (notebook 02 re-run on another device or
    machine), a missing source file, or a checkpoint that records no source make it train
    again, with a line saying why."""
    from .checkpoint import load_checkpoint

    checkpoint = Path(checkpoint)
    t0 = time.perf_counter()
    model = None
    if checkpoint.is_file():
        model, meta = load_checkpoint(checkpoint)
        why = _stale_source(name, checkpoint, meta, source) if source is not None else None
        if why:
            print(f"dcatkit: not reading {name} back: {why}; training it again")
            model = None
        how = "loaded"
    if model is None:
        model = train().model
        how = "trained, saved to"
    if verbose:
        print(f"{name}: {how} {paths.shown(checkpoint)} ({time.perf_counter() - t0:.0f}s)")
    return model


def _stale_source(name: str, checkpoint: Path, meta: Mapping[str, Any], source: str | Path) -> str | None:
    """Why the transfer model at ``checkpoint`` is not a model of the frozen source saved at
    ``source`` now, or None."""
    from .experiment import source_identity
    from .report import _other_source

    source = Path(source)
    if not source.is_file():
        return (f"its frozen source {paths.shown(source)} is missing (it is trained now, "
                "and the saved model was trained from another)")
    return _other_source(name, checkpoint, {"kind": "transfer", **meta}, [source_identity(source)])


def clear_progress() -> None:
    """Clear the running cell's output (its finished progress bars) in a notebook kernel;
    nothing elsewhere. Call it before printing a cell's summary: an executed notebook then
    saves the summary, not progress-bar residue such as "0%| | 0/20"."""
    try:
        from IPython import get_ipython
        from IPython.display import clear_output
    except ImportError:
        return
    if get_ipython() is not None and type(get_ipython()).__name__ == "ZMQInteractiveShell":
        clear_output()


def per_subject(y: np.ndarray, p_base: np.ndarray, p_other: np.ndarray, subjects: np.ndarray, num_classes: int,
                fold: np.ndarray | None = None) -> pd.DataFrame:
    """Baseline vs a transfer model, one row per test subject.

    Columns: ``subject``, ``fold`` (when given), ``n`` (test samples), ``f1_baseline``,
    ``f1_other`` (macro-F1 over the classes present in that subject's samples),
    ``delta_f1``, ``fixed`` (baseline wrong, other right), ``broke`` (baseline right,
    other wrong), ``net`` = fixed - broke, sorted by ``delta_f1``.
    """
    y, p_base, p_other, subjects = map(np.asarray, (y, p_base, p_other, subjects))
    if not (y.shape == p_base.shape == p_other.shape == subjects.shape) or y.ndim != 1:
        raise ValueError(f"y, both predictions and subjects must be 1-D of one length, got {y.shape}, "
                         f"{p_base.shape}, {p_other.shape}, {subjects.shape}")
    rows = []
    import warnings

    for s in np.unique(subjects):
        i = subjects == s
        with warnings.catch_warnings():            # a subject rarely has every class: macro over its own
            warnings.simplefilter("ignore")
            fb = classification_metrics(y[i], p_base[i], num_classes)["f1"]
            fo = classification_metrics(y[i], p_other[i], num_classes)["f1"]
        ok_b, ok_o = p_base[i] == y[i], p_other[i] == y[i]
        row = {"subject": int(s), "n": int(i.sum()), "f1_baseline": fb, "f1_other": fo, "delta_f1": fo - fb,
               "fixed": int((~ok_b & ok_o).sum()), "broke": int((ok_b & ~ok_o).sum())}
        if fold is not None:
            row = {"fold": int(np.asarray(fold)[i][0]), **row}
        rows.append(row)
    df = pd.DataFrame(rows)
    df["net"] = df["fixed"] - df["broke"]
    return df.sort_values("delta_f1", kind="stable").reset_index(drop=True)


def subject_summary(df: pd.DataFrame, tie: int = 0) -> dict:
    """Counts from :func:`per_subject`: subjects where transfer fixed more samples than it
    broke (``helped``), fewer (``hurt``), or within ``tie`` (``same``)."""
    return {"subjects": len(df), "helped": int((df["net"] > tie).sum()), "hurt": int((df["net"] < -tie).sum()),
            "same": int((df["net"].abs() <= tie).sum()), "fixed": int(df["fixed"].sum()),
            "broke": int(df["broke"].sum())}


__all__ = ["load_splits", "n_folds", "results_stem", "only", "source_run", "source_reach", "load_or_train", "clear_progress", "per_subject", "subject_summary"]
