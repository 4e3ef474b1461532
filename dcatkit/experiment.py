"""The experiments of the paper as functions: what the CLI, the notebooks and the
demo call (one implementation, many front ends).

- ``train_unimodal``: a source or a baseline (one modality, cross-entropy);
- ``train_transfer``: a target trained from a frozen source (Eq. 19) with a transfer
  objective chosen by name (D-CAT by default; kd, fitnet, contrastive, ...), MCMA on/off;
- ``compare``: source + baseline + D-CAT + No-MCMA on one split, as a table (its checkpoints'
  names: ``compare_checkpoints``, checked up front by ``check_compare_outputs``);
- ``metrics_table``: test metrics of several runs, with deltas to a baseline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import provenance
from .data.dataset import training_set
from .data.splits import check_leakage
from .losses import check_lam
from .modalities import default_kind
from .model import Classifier, build_model
from .presets import Preset, get_preset
from .checkpoint import check_source_fits, check_writable, load_checkpoint, state_path_for
from .runtime import seed_everything
from .train import FitResult, evaluate, fit, fit_transfer

METRICS = ("accuracy", "precision", "recall", "f1")


@dataclass
class Run:
    """One trained model and its test metrics."""

    name: str
    modality: str
    model: Classifier
    test: dict                       # accuracy, precision, recall, f1, confusion
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    checkpoint: Path | None = None
    meta: dict = field(default_factory=dict)


def _kind(ds, modality: str) -> str | None:
    """The kind of ``modality`` in ``ds`` (a clear error when the data lacks it); None for a
    dataset that records no kinds (then the name's default kind applies)."""
    return ds.kind(modality) if hasattr(ds, "kind") else None


def _preset(preset: str | Preset, modality: str, dataset: str | None, ds=None) -> Preset:
    """A Preset as given, or by name for the modality's kind in ``ds`` (``get_preset``)."""
    kind = None if ds is None else _kind(ds, modality)
    return preset if isinstance(preset, Preset) else get_preset(preset, modality, dataset, kind=kind)


def _build(modality: str, ds, p: Preset) -> Classifier:
    """The preset's model for this data, by the modality's kind: the audio front end takes
    the data's sample rate (read from the files by the loader), never the preset's assumption."""
    kind = _kind(ds, modality)
    extra = {}
    rate = getattr(ds, "sample_rates", {}).get(modality)
    if (kind or modality) == "audio":
        if not rate:      # a log-mel filterbank at the preset's assumed rate is another filterbank, silently
            raise ValueError(f"the audio modality {modality!r} records no sample rate: its log-mel front end needs "
                             f"the waveforms' rate (the preset assumes {p.encoder.get('sample_rate')} Hz, which "
                             f"may not be yours); give it, e.g. from_arrays(..., sample_rates={{{modality!r}: 16000}})")
        extra["sample_rate"] = int(round(rate))
    return build_model(modality, ds.num_classes, ds.input_shape(modality), p, kind=kind, **extra)


def train_unimodal(splits, modality: str, *, preset: str | Preset = "synthetic", dataset: str | None = None,
                   epochs: int | None = None, seed: int | None = None, device="auto",
                   checkpoint: str | Path | None = None, progress: bool = True, name: str | None = None,
                   resume: bool = False, log_dir: str | Path | None = None) -> Run:
    """Train one modality's classifier on ``splits`` (train/val/test) and test it.
    ``resume=True`` continues a killed run from ``<checkpoint>.state``; ``log_dir``:
    TensorBoard scalars (see ``train.fit``)."""
    check_leakage(splits)                                 # no recording (subject) in two parts
    p = _preset(preset, modality, dataset, splits.train)
    seed = p.seed if seed is None else seed
    seed_everything(seed)                                  # model init is part of the seeded run
    model = _build(modality, splits.train, p)
    res: FitResult = fit(model, splits.train, splits.val, modality=modality, preset=p, epochs=epochs,
                         seed=seed, device=device, checkpoint=checkpoint, progress=progress,
                         meta={"dataset": dataset, "kind": "unimodal"}, report=getattr(splits, "report", None),
                         resume=resume, log_dir=log_dir)
    test = evaluate(res.model, splits.test, modality, device=device)
    return Run(name or f"{modality} baseline", modality, res.model, test, res.history, res.checkpoint,
               {"seed": seed, "best_val": res.best, "provenance": res.model.provenance})


def load_source(source: str | Path | Run | Classifier, splits, target_modality: str, *,
                trust_source: bool = False, source_modality: str | None = None) -> Classifier:
    """A frozen-source model from a checkpoint path (returned in eval mode), a Run or a
    Classifier (returned in the caller's mode: ``fit_transfer`` runs it frozen in eval mode and
    gives it back as it was), checked against the target run on ``splits``. Raises ``provenance.SourceMismatch``
    (a ValueError) when the source

    - is of the target's modality, or of one the data lacks, or not of ``source_modality``
      (when given), or of another kind than the data's modality of its name (a timeseries
      source for features data);
    - has other classes (its number of outputs, and the names and order its provenance
      records: ``provenance.check_classes``), or another input shape than the data;
    - was trained on samples that are in ``splits.val`` or ``splits.test``, or chose its
      best epoch on samples of ``splits.test`` (leakage; the message gives the counts and
      the fix);
    - carries no provenance, or one without validation ids and data fingerprint (built by
      hand, older checkpoints): refused unless ``trust_source=True`` (then a warning).

    A source trained on another draw of the same simulator shares no sample: accepted, with
    a warning saying so. What the check found is kept as ``model.source_check``
    (``provenance.check_source``); ``train_transfer`` records it in ``Run.meta``."""
    if isinstance(source, Run):
        model, modality = source.model, source.modality
        prov = source.meta.get("provenance") or getattr(model, "provenance", None)
        meta = {"modality": modality, "classes": (prov or {}).get("classes")}
    elif isinstance(source, Classifier):
        model, prov = source, getattr(source, "provenance", None)
        meta = {"modality": source.config.get("modality"), "classes": (prov or {}).get("classes")}
    else:
        model, meta = load_checkpoint(source)
        prov = meta.get("provenance")
    modality = meta["modality"]
    where = f" {source}" if isinstance(source, (str, Path)) else ""
    provenance.check_modality(modality, source_modality, who=f"the source{where}",
                              advice=f"give the {source_modality} source's checkpoint (or source={modality!r})")
    check_source_fits(meta, classes=splits.train.classes, target_modality=target_modality,
                      available_modalities=splits.train.modalities,
                      num_classes=model.num_classes, who=f"the source{where}")
    src_kind, data_kind = model.config.get("kind") or default_kind(modality), _kind(splits.train, modality)
    if data_kind is not None and src_kind != data_kind:
        raise provenance.SourceMismatch(f"the source is a {src_kind!r} model of {modality!r} but this data's "
                                        f"{modality!r} is of kind {data_kind!r}: use a source trained on this "
                                        f"kind of data (or give {modality!r} the source's kind)")
    provenance.check_input_shape(model.config.get("input_shape"), splits.train.input_shape(modality),
                                 modality=modality, who=f"the source{where} ({modality!r} model)",
                                 advice="load the data with the source's preprocessing")
    model.source_check = provenance.check_source(prov, splits, trust_source)
    provenance.warn_if_inputs_differ(prov, splits, modality)
    # a model read from a file is put in eval mode; a caller's model keeps theirs (fit_transfer runs it
    # frozen in eval mode and gives it back as it was)
    return model if isinstance(source, (Run, Classifier)) else model.eval()


def train_transfer(splits, source=None, target_modality: str | None = None, *, sources: list | None = None,
                   target: str | None = None, lam: float | dict = 1.0, mcma: bool = True,
                   method: str | None = None, options: dict | None = None, monitor: str | None = None,
                   loss: str = "dcat", preset: str | Preset = "synthetic", dataset: str | None = None,
                   epochs: int | None = None, seed: int | None = None, device="auto",
                   checkpoint: str | Path | None = None, progress: bool = True, name: str | None = None,
                   source_cache: bool | str = "auto", cache_dir: str | Path | None = None,
                   resume: bool = False, log_dir: str | Path | None = None, trust_source: bool = False,
                   unlabeled_mask: str = "confidence",
                   confidence: float = 0.9) -> Run:
    """Train a target (CE + lam * L_transfer) from a frozen ``source`` and test it on
    the target modality alone. ``method``: the transfer objective by name (``"dcat"``
    when None; ``"kd"``, ``"fitnet"``, ``"contrastive"``, ``"dcat+kd"``, ``"none"``;
    see ``dcatkit.objectives``), ``options`` its options (e.g. ``kd_temperature``),
    ``monitor`` an objective logged but not optimised (``method="none",
    monitor="dcat"``: the baseline with its L_CA measured). ``resume``, ``log_dir``: as
    in ``train_unimodal``. See ``train.fit_transfer``.

    Several frozen sources: ``train_transfer(splits, sources=[video_ckpt, audio_ckpt],
    target="imu", lam={"video": 1.0, "audio": 0.5})`` -- L = L_CE + sum_s lam_s * L_s
    (Eq. 19 with one term per source), MCMA per source, each source checked by
    ``load_source`` and cached on its own; ``lam`` one number for all or a dict naming
    every source's modality. ``target`` is ``target_modality`` by another name.
    ``trust_source=True``: use a source without (complete) provenance, whose overlap with
    this run's validation and test samples cannot be checked (``load_source``); recorded in
    ``Run.meta["trust_source"]`` and the checkpoint's meta. The checkpoint's meta also records
    the frozen source(s) (``source_identity``: weights and settings hashed), so
    ``report.finished_runs(..., source=)`` never reads back a run of another source.

    Paired unlabeled recordings: with ``splits.unlabeled`` (e.g. ``data.dataset.hide_labels``)
    the target trains on ``data.dataset.training_set(splits)``: cross-entropy on the
    labelled ``splits.train`` only, the transfer objective on every pair (labelled and
    unlabeled), MCMA on unlabeled pairs from the source's confidence (``unlabeled_mask``,
    ``confidence``; see ``train.fit_transfer``); the unlabeled part must share no recording
    (and, for subject splits, no subject) with validation or test. ``method="none"`` then
    trains the baseline over the same batches (CE on the same labelled samples), so a
    paired comparison differs by the transfer term alone. ``Run.meta["unlabeled"]``
    records the counts and the mask used."""
    if target is not None and target_modality is not None and target != target_modality:
        raise ValueError(f"target={target!r} and target_modality={target_modality!r} disagree: pass one")
    target_modality = target_modality or target
    if target_modality is None:
        raise ValueError("train_transfer needs the target modality: train_transfer(splits, source, 'imu') or "
                         "target='imu'")
    if (source is None) == (sources is None):
        raise ValueError("pass one frozen source (source=) or a list of them (sources=), not "
                         + ("both" if source is not None else "neither"))
    multi = sources is not None
    if multi and not isinstance(sources, (str, Path)):
        sources = list(sources)                           # once: a generator is read here, not used up by a check
    if multi and (isinstance(sources, (str, Path)) or not sources):
        raise ValueError(f"sources= takes a non-empty list of checkpoints, Runs or models, got {sources!r}")
    if checkpoint is not None:        # before anything trains: never over a source checkpoint, a folder, ...
        files = [s.checkpoint if isinstance(s, Run) else s for s in (sources if multi else [source])]  # Run: its file
        check_writable(checkpoint, keep=tuple(f for f in files if isinstance(f, (str, Path))))
    check_leakage(splits)                                 # no recording (subject) in two parts
    check_unlabeled(splits)
    srcs = [load_source(s, splits, target_modality, trust_source=trust_source)
            for s in (sources if multi else [source])]
    mods = [s.config["modality"] for s in srcs]
    if len(set(mods)) != len(mods):
        raise ValueError(f"two sources of the same modality: {mods}; give at most one source per modality")
    p = _preset(preset, target_modality, dataset, splits.train)
    seed = p.seed if seed is None else seed
    seed_everything(seed)                                  # same init as the baseline with this seed
    model = _build(target_modality, splits.train, p)
    train = training_set(splits)                           # + the unlabeled pairs, labels hidden
    # the checkpoint says which frozen source(s) it was trained from: report.finished_runs reads a run
    # back only with the same source (a source retrained under its file name is another source)
    ident = {} if checkpoint is None else \
        {"source_identity": [source_identity(s) for s in srcs] if multi else source_identity(srcs[0])}
    res = fit_transfer(model, srcs if multi else srcs[0], train, splits.val, lam=lam, mcma=mcma, loss=loss,
                       method=method, options=options, monitor=monitor, modality=target_modality,
                       source_modality=mods if multi else mods[0], preset=p,
                       epochs=epochs, seed=seed, device=device, checkpoint=checkpoint, progress=progress,
                       meta={"dataset": dataset, "kind": "transfer", **({"trust_source": True} if trust_source else {}),
                             **ident},
                       source_cache=source_cache,
                       cache_dir=cache_dir, report=getattr(splits, "report", None), resume=resume,
                       log_dir=log_dir, unlabeled_mask=unlabeled_mask, confidence=confidence)
    test = evaluate(res.model, splits.test, target_modality, device=device)
    n_unl = len(train) - len(splits.train)
    unl = None if not n_unl else {"n_labeled": len(splits.train), "n_unlabeled": n_unl,
                                  "mask": unlabeled_mask if mcma else "all (mcma=False)",
                                  "confidence": float(confidence) if mcma and unlabeled_mask == "confidence" else None}
    shown = {None: "D-CAT", "dcat": "D-CAT", "none": "baseline"}.get(method, method)
    label = name or f"{shown} {'+'.join(mods)}->{target_modality}" + ("" if mcma else " (no MCMA)")
    return Run(label, target_modality, res.model, test, res.history, res.checkpoint,
               {"seed": seed, "lam": dict(lam) if isinstance(lam, dict) else lam, "mcma": mcma,
                "method": method or ("dcat" if loss == "dcat" else loss), "sources": mods,
                "options": dict(options or {}), "best_val": res.best, "provenance": res.model.provenance,
                "trust_source": trust_source, "source_checks": [s.source_check for s in srcs],
                **({"unlabeled": unl} if unl else {})})


def source_identity(source: str | Path | Run | Classifier) -> str:
    """What identifies a frozen source: sha256 of its weights and its settings (config,
    tensor names, shapes and dtypes; ``frozen_source._hash_model``, the source cache's key).
    ``source``: a ``Run``, a ``Classifier`` or a checkpoint path. ``train_transfer`` records it
    in its checkpoint's meta (``source_identity``; a list with several sources), and
    ``report.finished_runs(..., source=)`` compares it with the current source's."""
    from .frozen_source import _hash_model

    if isinstance(source, Run):
        source = source.model
    elif isinstance(source, (str, Path)):
        source = load_checkpoint(source)[0]
    if not isinstance(source, Classifier):
        raise ValueError(f"source_identity takes a frozen source as a Run, a Classifier or a checkpoint path, "
                         f"got {type(source).__name__}")
    return _hash_model(source)


# The lambda grid every method is tuned over (tune_transfer; notebook 06's tuned cells). Two decades,
# because the objectives pull with very different strengths at one lambda: at lambda = 1 D-CAT's gradient
# is ~2% of cross-entropy's and KD's ~80% (studies.gradient_scale, notebook 06), so a grid around 1 alone
# would tune KD and starve D-CAT. It holds the paper's lambda = 1.
TUNE_LAMS = (1.0, 10.0, 100.0)
TUNE_KD_TEMPERATURES = (4.0,)        # kd's temperature grid; one value: every method gets len(TUNE_LAMS) runs


def tune_transfer(splits, source, target_modality: str, *, method: str, lams=TUNE_LAMS,
                  kd_temperatures=TUNE_KD_TEMPERATURES, seed: int | None = None, **kwargs) -> dict:
    """A fair rival: ``method``'s lambda (and, for objectives that take one, the KD
    temperature) chosen on VALIDATION macro-F1, and the TEST metrics of the chosen run.

    Every grid point is a ``train_transfer`` run with the same seed, data and budget
    (epochs, preset: ``kwargs``); each keeps its best-on-validation epoch, and the point
    with the highest validation F1 of that epoch wins (ties: the first in grid order:
    ``lams`` as given, ascending in ``TUNE_LAMS``, then temperature). Test labels play no part in the
    choice: the test metrics of the other points are never looked at (nested in the
    sense that test is held out of both the epoch and the lambda choice).
    ``method="none"`` is one run (nothing to tune). With the default grids every
    method gets ``len(TUNE_LAMS)`` runs; kd's temperature is tuned only when
    ``kd_temperatures`` has several values, which gives kd that many times the budget
    (recorded as ``n_runs``).

    Returns {"method", "lam", "options", "val_f1" (chosen), "test" (its test metrics),
    "run" (the chosen Run), "n_runs", "grid" (a DataFrame: lam, options, val_f1, best_epoch
    per point; no test column)}.
    """
    from .objectives import accepted_options

    given = sorted(k for k in ("checkpoint", "resume") if kwargs.get(k))
    if given:      # every grid point would write (or resume) the one file: the last point's model would win
        raise ValueError(f"tune_transfer trains one run per grid point and takes no {' or '.join(given)}: "
                         "save the chosen run's model yourself (result['run'].model, checkpoint.save_checkpoint), "
                         "or call train_transfer with the chosen lam and options and a checkpoint")
    lams = [float(x) for x in lams]
    if not lams:
        raise ValueError("tune_transfer needs at least one lambda")
    temps = list(kd_temperatures) if "kd_temperature" in accepted_options(method) else [None]
    if not temps:
        raise ValueError("kd_temperatures is empty: give at least one temperature")
    points = [(0.0, None)] if method == "none" else [(lam, t) for lam in lams for t in temps]
    rows, runs = [], []
    for lam, t in points:
        opts = {} if t is None else {"kd_temperature": float(t)}
        run = train_transfer(splits, source, target_modality, method=method, lam=lam, options=opts or None,
                             seed=seed, **kwargs)
        runs.append(run)
        rows.append({"lam": lam, "options": opts, "val_f1": float(run.meta["best_val"]["f1"]),
                     "best_epoch": int(run.meta["best_val"]["epoch"])})
    i = choose_on_validation([r["val_f1"] for r in rows])
    return {"method": method, "lam": rows[i]["lam"], "options": rows[i]["options"], "val_f1": rows[i]["val_f1"],
            "test": runs[i].test, "run": runs[i], "n_runs": len(points), "grid": pd.DataFrame(rows)}


def choose_on_validation(val_f1s) -> int:
    """The index of the grid point a tuned method takes: the highest validation F1, the
    first in grid order on a tie (the rule of ``tune_transfer`` and of
    ``studies.with_tuned``, which chooses among a sweep's stored runs). NaN never wins."""
    vals = np.asarray(list(val_f1s), dtype=float)
    if not len(vals) or np.isnan(vals).all():
        raise ValueError(f"no validation F1 to choose from, got {list(vals)}")
    return int(np.nanargmax(vals))             # nanargmax returns the first of equal maxima


def check_unlabeled(splits) -> None:
    """Raise ``ValueError`` when ``splits.unlabeled`` shares a recording (or, for the
    subject splits, a subject) with validation or test, or a recording with ``train``
    (a recording is either labelled or not). Nothing to check without an unlabeled part."""
    extra = getattr(splits, "unlabeled", None)
    if extra is None or len(extra) == 0:
        return
    from .data.splits import SUBJECT_SPLITS

    problems = []
    for part in ("train", "val", "test"):
        both = sorted(set(extra.groups) & set(getattr(splits, part).groups))
        if both:
            problems.append(f"{len(both)} recording(s) in unlabeled & {part} (e.g. {both[:3]})")
    info = (getattr(splits, "report", None) or {}).get("split") or {}
    if info.get("kind", info.get("split")) in SUBJECT_SPLITS:
        for part in ("val", "test"):
            both = sorted(set(extra.subjects[extra.subjects >= 0].tolist())
                          & set(getattr(splits, part).subjects.tolist()))
            if both:
                problems.append(f"{len(both)} subject(s) in unlabeled & {part} (e.g. {both[:3]})")
    if problems:
        raise ValueError("leakage through the unlabeled pairs: " + "; ".join(problems) + ". Unlabeled recordings "
                         "must come from the training side of the split (data.dataset.hide_labels does so)")


def metrics_table(runs: list[Run], baseline: str | None = None) -> pd.DataFrame:
    """Rows = runs, columns = test accuracy / precision / recall / F1 (macro), plus
    ``delta_<metric>`` against the run named ``baseline``."""
    df = pd.DataFrame([{"run": r.name, "modality": r.modality, **{m: r.test[m] for m in METRICS}}
                       for r in runs]).set_index("run")
    if baseline is not None:
        for m in METRICS:
            df[f"delta_{m}"] = df[m] - df.loc[baseline, m]
    return df


def compare_checkpoints(out_dir: str | Path | None, *, source: str = "video", target: str = "imu", seed: int = 0,
                        source_checkpoint: str | Path | None = None) -> dict[str, Path | None]:
    """The checkpoint each run of ``compare`` (one seed) writes, by role (source, baseline, dcat, no_mcma):
    ``<out_dir>/source_<source>_seed<seed>.pt``, ``baseline_<target>_...``, ``dcat_<source>_<target>_...``,
    ``dcat_nomcma_<source>_<target>_...``; the source's is ``source_checkpoint`` when given (None
    when that file exists: it is loaded, not written), the others None without ``out_dir``.
    The one place of these names: ``compare`` saves there and the CLI's demo checks them all
    (``check_compare_outputs``) before its first seed trains."""
    out = Path(out_dir) if out_dir is not None else None
    ck = (lambda n: out / f"{n}_seed{seed}.pt") if out is not None else (lambda n: None)
    given = source_checkpoint is not None and Path(source_checkpoint).is_file()
    return {"source": None if given else (Path(source_checkpoint) if source_checkpoint is not None
                                          else ck(f"source_{source}")),
            "baseline": ck(f"baseline_{target}"), "dcat": ck(f"dcat_{source}_{target}"),
            "no_mcma": ck(f"dcat_nomcma_{source}_{target}")}


def check_compare_outputs(out_dir: str | Path | None, *, source: str = "video", target: str = "imu",
                          seeds=(0,), source_checkpoint: str | Path | None = None) -> None:
    """Refuse (a ValueError naming the path, ``checkpoint.check_writable``) any file that ``compare``
    would write for ``seeds`` and could not -- each checkpoint of ``compare_checkpoints`` and its
    resumable state ``<checkpoint>.state``: a folder there, a file where a folder must be, a folder
    this user cannot write in -- or must not (a transfer run's checkpoint that is the source's file).
    Run before anything trains: a bad path of the last seed otherwise stops the command after the
    first seeds trained."""
    for seed in seeds:
        paths = compare_checkpoints(out_dir, source=source, target=target, seed=seed,
                                    source_checkpoint=source_checkpoint)
        src = Path(source_checkpoint) if source_checkpoint is not None else paths["source"]
        for role, path in paths.items():
            if path is not None:
                what = f"seed {seed}'s {role} checkpoint"
                check_writable(path, what, keep=(src,) if role in ("dcat", "no_mcma") else ())
                check_writable(state_path_for(path), f"{what}'s resumable state")


def compare(splits, *, source: str = "video", target: str = "imu", lam: float = 1.0,
            preset: str = "synthetic", dataset: str | None = "synthetic", seed: int = 0,
            epochs: dict | None = None, device="auto", out_dir: str | Path | None = None,
            source_checkpoint: str | Path | None = None, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """The paper's comparison for one source->target pair and one seed:
    source model, target baseline, D-CAT (MCMA) and D-CAT without MCMA.

    ``epochs`` may override per role: {"source": .., "target": ..}. With
    ``source_checkpoint`` pointing to an existing file the source is loaded,
    otherwise trained (and saved there). Returns (table, runs by role).
    """
    check_lam(lam)                                         # before the source and the baseline train
    if source == target:
        raise ValueError(f"source and target are both {source!r}: D-CAT transfers between two modalities")
    given = source_checkpoint is not None and Path(source_checkpoint).is_file()   # load_source checks its modality
    for role, m in ((("target", target),) if given else (("source", source), ("target", target))):
        if m not in splits.train.modalities:
            raise ValueError(f"{role} {m!r}: the data has no modality {m!r}; its modalities are "
                             f"{splits.train.modalities}")
    epochs = epochs or {}
    check_compare_outputs(out_dir, source=source, target=target, seeds=(seed,), source_checkpoint=source_checkpoint)
    ck = compare_checkpoints(out_dir, source=source, target=target, seed=seed, source_checkpoint=source_checkpoint)
    if given:
        model = load_source(source_checkpoint, splits, target, source_modality=source)
        src = Run(f"{source} source", source, model, evaluate(model, splits.test, source, device=device),
                  checkpoint=Path(source_checkpoint))
    else:
        src = train_unimodal(splits, source, preset=preset, dataset=dataset, epochs=epochs.get("source"),
                             seed=seed, device=device, checkpoint=ck["source"],
                             progress=progress, name=f"{source} source")
    common = dict(preset=preset, dataset=dataset, epochs=epochs.get("target"), seed=seed, device=device,
                  progress=progress)
    base = train_unimodal(splits, target, checkpoint=ck["baseline"], name=f"{target} baseline",
                          **common)
    dcat = train_transfer(splits, src, target, lam=lam, mcma=True, checkpoint=ck["dcat"],
                          name="D-CAT", **common)
    nomcma = train_transfer(splits, src, target, lam=lam, mcma=False, name="No MCMA",
                            checkpoint=ck["no_mcma"], **common)
    runs = {"source": src, "baseline": base, "dcat": dcat, "no_mcma": nomcma}
    table = metrics_table([src, base, dcat, nomcma], baseline=base.name)
    return table, runs


def summarise_seeds(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean and std over seeds of per-seed ``metrics_table`` results. The std is the sample
    std (ddof 1): NaN for one seed, where no spread was measured (0 would read as none)."""
    allt = pd.concat([t.assign(seed=i) for i, t in enumerate(tables)]).reset_index()
    num = [c for c in allt.columns if c not in ("run", "modality", "seed")]
    g = allt.groupby("run", sort=False)[num]
    mean, std = g.mean(), g.std(ddof=1)
    return mean.join(std, rsuffix="_std")


def format_table(df: pd.DataFrame, digits: int = 3, diffs: dict | None = None, index: bool = True) -> str:
    """The table with ``digits`` decimals; a value that rounds to zero is "0.000", never
    "-0.000" (a sign the shown digits cannot support, as ``stats.signed`` says).

    A difference column is shown as the difference of its two columns *as shown*, so a
    reader's subtraction of the printed numbers gives the printed difference (0.509 and
    0.414 show a difference of 0.095, not the unrounded 0.0955's 0.096): ``diffs`` maps
    a column to its (a, b) columns (shown: a - b); a ``delta_<m>`` column beside ``<m>``
    (``metrics_table``'s, against a baseline row) is one by default. Only the display
    changes: the stored values (results files) keep every digit."""
    view = df.copy()
    for col in view.columns:
        m = col[len("delta_"):] if isinstance(col, str) and col.startswith("delta_") else None
        if col in (diffs or {}) or m not in view.columns or m.endswith("_std"):
            continue                                     # a std of deltas is no difference of two columns
        base = view[m] - view[col]                       # the baseline row's value, per row
        view[col] = view[m].round(digits) - base.round(digits)
    for col, (a, b) in (diffs or {}).items():
        missing = [c for c in (col, a, b) if c not in view.columns]
        if missing:
            raise ValueError(f"format_table: diffs names columns {missing} the table does not have; it has "
                             f"{list(view.columns)}")
        view[col] = view[a].round(digits) - view[b].round(digits)

    def fmt(v):
        if not np.isfinite(v):
            return "nan"
        text = f"{v:.{digits}f}"
        return f"{0.0:.{digits}f}" if float(text) == 0 else text
    return view.to_string(float_format=fmt, index=index)
