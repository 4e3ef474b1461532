"""How much room is there for transfer? Baseline vs ceiling on the synthetic data.

A transfer method can only lift a target model up to what the target signal
itself carries. :func:`measure_headroom` measures both ends for one modality:

- the *baseline*: the modality's unimodal model trained at the sizes of interest
  (``sizes``, total simulated recordings, split 70/15/15);
- the *ceiling*: the same model trained on a much larger simulated set
  (``n_ceiling``), an estimate of what the modality can learn at all.

``headroom = ceiling - baseline``. Large headroom: a transfer method has
something to give. Near zero (as in ``regime="ambiguous"``): nothing can help.

>>> df = measure_headroom("headroom", "imu", sizes=(300, 2000), n_ceiling=20000, seeds=(0, 1, 2))
>>> summarize_headroom(df)

Training and data come from :func:`dcatkit.experiment.train_unimodal` and
:func:`dcatkit.data.load`; the data seed equals the training seed for each run.
These measurements are what the simulator's knobs are chosen from
(see ``dcatkit.data.synthetic``), never a transfer method's result.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

import pandas as pd

from .data import load
from .data.synthetic import DEFAULT_N_SAMPLES, REGIMES
from .experiment import train_unimodal

COLUMNS = ("regime", "modality", "split", "seed", "role", "n_samples", "n_train", "accuracy", "f1")


def measure_headroom(regime: str = "headroom", modality: str = "imu",
                     sizes: Sequence[int] = (DEFAULT_N_SAMPLES,), n_ceiling: int | None = 20000,
                     seeds: Sequence[int] = (0, 1, 2), split: str = "id",
                     preset: str = "synthetic", epochs: int | None = None, device="auto",
                     progress: bool = False, **options) -> pd.DataFrame:
    """Train ``modality`` alone at every size in ``sizes`` (role "baseline") and at
    ``n_ceiling`` (role "ceiling", skipped when None; ``sizes`` may be empty to
    measure the ceiling alone), once per seed, on the
    synthetic data of ``regime`` with ``split`` ("id" or "ood").

    Only ``modality`` is simulated (the headroom regime draws each modality from
    its own random stream, so this is the same data as with all three).
    ``options`` go to ``make_synthetic`` (e.g. ``frame_size``, ``imu_noise``).
    Returns a tidy DataFrame, one row per run, columns ``COLUMNS`` (test metrics,
    macro-averaged).
    """
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}: expected one of {REGIMES}")
    sizes = [int(n) for n in sizes]
    if (not sizes and n_ceiling is None) or (sizes and min(sizes) < 1):
        raise ValueError(f"sizes must be positive sample counts (or empty with n_ceiling set), got {sizes}")
    if n_ceiling is not None and n_ceiling < 1:
        raise ValueError(f"n_ceiling must be a positive number of recordings (or None: no ceiling), got {n_ceiling}"
                         + ("" if sizes else "; sizes is empty, so the ceiling is all there is to measure"))
    if n_ceiling is not None and sizes and n_ceiling <= max(sizes):
        raise ValueError(f"n_ceiling ({n_ceiling}) must be larger than every baseline size (max {max(sizes)})")
    if not len(seeds):
        raise ValueError("seeds must name at least one seed")
    runs = [("baseline", n) for n in sizes] + ([("ceiling", int(n_ceiling))] if n_ceiling is not None else [])
    rows = []
    for seed in seeds:
        for role, n in runs:
            splits = load("synthetic", split=split, modalities=(modality,), seed=int(seed), n_samples=n,
                          regime=regime, **options)
            run = train_unimodal(splits, modality, preset=preset, epochs=epochs, seed=int(seed),
                                 device=device, progress=progress)
            rows.append({"regime": regime, "modality": modality, "split": split, "seed": int(seed),
                         "role": role, "n_samples": n, "n_train": len(splits.train),
                         "accuracy": float(run.test["accuracy"]), "f1": float(run.test["f1"])})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def knobs_key(knobs) -> str:
    """The simulator a row's ``knobs`` (JSON of ``HEADROOM_KNOBS`` values; NaN / absent: none)
    describe, as the JSON of the values that differ from today's ``HEADROOM_KNOBS`` (sorted
    keys): ``"{}"`` is today's simulator, however the row spelled it (``read_headroom`` keeps
    exactly those rows). ``benchmarks/headroom.py`` records every knob a run used
    (``effective_knobs``); older rows hold only the overrides of the defaults of their day, and
    a knob a row does not name is read as today's default."""
    from .data.synthetic import HEADROOM_KNOBS

    if knobs is None or (isinstance(knobs, float) and knobs != knobs):
        given = {}
    else:
        try:
            given = json.loads(knobs)
        except (TypeError, ValueError):             # not text, or not JSON: refused below, naming knobs
            given = None
    if not isinstance(given, dict):
        raise ValueError(f"knobs must be a JSON object of HEADROOM_KNOBS overrides (text such as "
                         f"'{{\"imu_noise\": 0.2}}'; None or NaN for none), got {type(knobs).__name__} {knobs!r}")
    return json.dumps({k: v for k, v in given.items() if HEADROOM_KNOBS.get(k, object()) != v}, sort_keys=True)


def effective_knobs(regime: str, overrides: dict | None = None) -> str:
    """The ``knobs`` value a stored run records (``benchmarks/headroom.py``): the JSON of every
    ``HEADROOM_KNOBS`` value the run used (today's defaults with ``overrides`` applied, sorted
    keys), so the row says what it measured whatever the defaults become later (a row with the
    overrides alone is read against the defaults of the day it is read). The ambiguous regime
    takes no knobs: ``"{}"``, and overrides for it are refused."""
    from .data.synthetic import HEADROOM_KNOBS

    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(HEADROOM_KNOBS))
    if unknown:
        raise ValueError(f"unknown knob(s) {unknown}: HEADROOM_KNOBS has {sorted(HEADROOM_KNOBS)}")
    if regime != "headroom":
        if overrides:
            raise ValueError(f"the {regime!r} regime takes no knobs (only 'headroom' does), got {overrides}")
        return "{}"
    return json.dumps({**HEADROOM_KNOBS, **overrides}, sort_keys=True)


def summarize_headroom(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (regime, modality, split[, knobs], role, n_samples): mean, std and count
    (``n_seeds``) of F1 over seeds; for baselines also ``n_paired`` (how many of those seeds
    have a ceiling run of their own simulator), the ceiling's mean and std F1 over those
    paired seeds and the headroom (ceiling minus baseline, paired by seed: its mean and std
    over the same paired seeds). Where ``n_paired`` is below ``n_seeds`` (some seeds have a
    ceiling, some not) a warning names the cell and its unpaired seeds: the headroom and the
    ceiling then describe fewer seeds than ``f1_mean``, so ``ceiling_mean - f1_mean`` is not
    ``headroom_mean``. A baseline with no ceiling at all has ``n_paired`` 0 and NaN headroom.

    With a ``knobs`` column (``benchmarks/headroom.py`` writes one: probes of other
    simulator settings beside today's), rows are grouped by the simulator they measured
    (``knobs_key``: the overrides that differ from today's ``HEADROOM_KNOBS``, ``"{}"`` =
    today's) and a baseline is paired only with the ceiling of its own simulator. A table
    with more than one ceiling row for one (regime, modality, split[, knobs], seed) is
    refused: which one is the seed's ceiling?"""
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"not a measure_headroom table: missing columns {sorted(missing)}")
    sim = ["regime", "modality", "split"]
    if "knobs" in df.columns:
        df = df.assign(knobs=df["knobs"].map(knobs_key))
        sim.append("knobs")
    keys = sim + ["role", "n_samples"]
    out = df.groupby(keys, sort=True)["f1"].agg(f1_mean="mean", f1_std="std", n_seeds="count").reset_index()
    ceil_rows = df[df.role == "ceiling"]
    twice = ceil_rows.duplicated(sim + ["seed"], keep=False)
    if twice.any():
        first = ceil_rows.loc[twice, sim + ["seed"]].iloc[0].to_dict()
        sizes = sorted(ceil_rows.loc[twice & (ceil_rows[sim + ["seed"]] == pd.Series(first)).all(axis=1),
                                     "n_samples"].tolist())
        raise ValueError(f"{int(twice.sum())} ceiling rows share their (regime, modality, split"
                         f"{', knobs' if 'knobs' in sim else ''}, seed), e.g. {first} (n_samples {sizes}): one "
                         "ceiling run per seed and simulator expected (drop the extra runs, or give each simulator "
                         "its knobs column)")
    ceil = ceil_rows.set_index(sim + ["seed"])["f1"]
    base = df[df.role == "baseline"].join(ceil.rename("ceiling_f1"), on=sim + ["seed"])
    base["headroom"] = base["ceiling_f1"] - base["f1"]
    gap = base.groupby(keys)[["ceiling_f1", "headroom"]].agg(["mean", "std"])
    gap.columns = ["ceiling_mean", "ceiling_std", "headroom_mean", "headroom_std"]
    gap.insert(0, "n_paired", base.groupby(keys)["headroom"].count())
    for key, g in base.groupby(keys):
        if 0 < g["headroom"].notna().sum() < len(g):
            unpaired = sorted(int(v) for v in g.loc[g["headroom"].isna(), "seed"])
            warnings.warn(f"headroom of {dict(zip(keys, key))}: {int(g['headroom'].notna().sum())} of {len(g)} "
                          f"baseline seeds have a ceiling run (seeds {unpaired} have none): n_paired < n_seeds, "
                          "so headroom_mean and ceiling_mean are over fewer seeds than f1_mean", stacklevel=2)
    return out.join(gap, on=keys)


def read_headroom(path) -> pd.DataFrame:
    """The runs of a stored ``measure_headroom`` table (e.g. ``benchmarks/headroom_runs.csv``,
    written by ``benchmarks/headroom.py``) that were measured with today's simulator: rows
    whose knob overrides (column ``knobs``, JSON; absent = none) all equal today's
    ``HEADROOM_KNOBS``. Rows of probes with other knobs are dropped, so a ceiling read
    from the file is the ceiling of the data the kit simulates now."""
    from .data.synthetic import HEADROOM_KNOBS

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no headroom table at {path}: measure one with dcatkit.headroom.measure_headroom "
                                "(or benchmarks/headroom.py) and save it as CSV")
    df = pd.read_csv(path)
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path} is not a measure_headroom table: missing columns {sorted(missing)}")
    knobs = df["knobs"] if "knobs" in df.columns else pd.Series("{}", index=df.index)
    today = knobs.fillna("{}").map(lambda k: all(HEADROOM_KNOBS.get(name) == v for name, v in json.loads(k).items()))
    return df[today].reset_index(drop=True)


def ceilings(df: pd.DataFrame) -> pd.DataFrame:
    """The ceiling rows of a headroom table, summarised: one row per (regime, modality,
    split[, knobs]) with ``n_samples``, ``f1_mean``, ``f1_std`` and ``n_seeds``
    (``summarize_headroom``; ``knobs`` when the table has that column)."""
    with warnings.catch_warnings():          # about baselines' pairing: not what a ceiling is
        warnings.simplefilter("ignore")
        s = summarize_headroom(df)
    s = s[s.role == "ceiling"]
    cols = ["regime", "modality", "split"] + (["knobs"] if "knobs" in s.columns else [])
    return s[cols + ["n_samples", "f1_mean", "f1_std", "n_seeds"]].reset_index(drop=True)
