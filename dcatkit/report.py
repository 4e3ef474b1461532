"""Results as files and tables: what the notebooks write and print.

- ``class_counts`` / ``subject_counts``: what a split holds;
- ``tidy``, ``write_results``, ``read_results``, ``latest_results``: one row per
  run with the run's parameters as columns, written as CSV and JSON, so a
  papermill sweep is aggregated with ``pd.concat(map(read_results, files))``;
  every file carries the environment it was made in (``provenance.environment``);
- ``find_results`` / ``finished_runs``: a re-run of a papermill sweep finds the
  results file written with exactly its parameters and reads the runs back from
  their checkpoints instead of training them again (notebook 03; ``redo=True``
  there trains them again), saying so when other code (a dcatkit version, or a git
  commit whose training code differs: ``provenance.other_code``) trained them;
- ``per_class_f1``, ``per_class_change``, ``pair_changes``, ``flips``: what
  transfer changed, class by class and class pair by class pair;
- ``ablation_summary`` / ``ablation_table``: the lambda x MCMA x seed grid laid
  out like the paper's Table IV (mean +- std over seeds).

``python -m dcatkit.report <results.csv | folder> [PATTERN]`` prints a results file, or
every results table of a folder (oldest first; with ``PATTERN``, a glob such as
``'transfer-*'``, the matching ones), each formatted for what it holds: ``make demo``
uses it.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .checkpoint import load_checkpoint
from .experiment import Run, format_table
from .files import write_atomically
from .provenance import code_version, describe_code, environment, other_code
from .runtime import resolve_device
from .stats import signed
from .train import evaluate

METRICS = ("accuracy", "precision", "recall", "f1")
# Table IV's column order and names.
TABLE_IV_COLUMNS = {"accuracy": "Accuracy", "recall": "Recall", "precision": "Precision", "f1": "F1-Score"}


# --------------------------------------------------------------------------- data


def class_counts(splits) -> pd.DataFrame:
    """Samples per class in each split: rows = class names, columns train / val / test / total."""
    cols = {}
    for name, ds in zip(("train", "val", "test"), splits):
        cols[name] = np.bincount(ds.labels, minlength=len(ds.classes))
    df = pd.DataFrame(cols, index=pd.Index(list(splits.train.classes), name="class"))
    df["total"] = df.sum(axis=1)
    return df


def subject_counts(splits) -> pd.DataFrame:
    """Samples per subject in each split (subject -1 = unknown): rows = subjects."""
    parts = {name: pd.Series(ds.subjects).value_counts() for name, ds in zip(("train", "val", "test"), splits)}
    df = pd.DataFrame(parts).fillna(0).astype(int).sort_index()
    df.index.name = "subject"
    df["total"] = df.sum(axis=1)
    return df


# --------------------------------------------------------------------------- results files


def tidy(table: pd.DataFrame, **params: Any) -> pd.DataFrame:
    """A ``metrics_table`` (index = run names) as plain rows with ``params`` as columns.

    Lists and dicts among ``params`` are stored as JSON strings so the CSV stays flat.
    """
    df = table.reset_index()
    for k, v in params.items():
        df[k] = json.dumps(v, default=str) if isinstance(v, (list, tuple, dict)) else v
    return df


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in v]
    return v


# written as env_<name>; the CPU's model and kernel level because a CPU run's numbers depend on them
# (benchmarks/RESULTS.md, "Run to run": the same code and seeds give other F1 on another VM)
ENV_COLUMNS = ("dcatkit", "torch", "device", "device_name", "cpu", "cpu_capability", "git_commit")


def write_results(df: pd.DataFrame, folder: str | Path, stem: str,
                  params: Mapping[str, Any] | None = None, env: Mapping[str, Any] | None = None,
                  histories: Mapping[str, pd.DataFrame] | None = None, device: Any = None) -> dict[str, Path]:
    """Write ``<folder>/<stem>.csv`` (the rows) and ``<folder>/<stem>.json``
    ({"params": ..., "environment": ..., "rows": [...]}). Returns {"csv": path, "json": path}.

    ``device``: the device the runs used, as the run was given it ("auto", "cpu", "cuda:0"; the
    notebooks' ``device`` parameter), recorded as the environment's device and its name
    (``provenance.environment`` of ``runtime.resolve_device(device)``). Without it the record
    names the machine's default device, CUDA whenever CUDA exists: a run made with
    ``device="cpu"`` on a GPU machine would be recorded as a CUDA run.
    ``env``: the environment record (default ``provenance.environment(device)``: versions,
    device, git commit); give ``env`` or ``device``, not both. All of it goes to the JSON; its main fields also go to every
    row as ``env_dcatkit``, ``env_torch``, ``env_device``, ``env_device_name``, ``env_cpu``,
    ``env_cpu_capability``, ``env_git_commit`` columns, so they survive ``pd.concat`` of many
    files and a table of runs says which machine gave each row.
    ``histories``: {run name: its per-epoch history}, kept in the JSON (``"histories"``)
    so :func:`finished_runs` can give the runs back without training them again.
    Both are written atomically (temp file + ``os.replace``: an interrupted write never leaves
    half a file), the JSON last: it marks the results as finished."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if env is not None and device is not None:
        raise ValueError(f"write_results takes env= (a whole environment record) or device= (the device the runs "
                         f"used), not both: got device={device!r} and an env naming {env.get('device')!r}")
    env = dict(environment(None if device is None else str(resolve_device(device))) if env is None else env)
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    flat = df.reset_index() if df.index.name is not None or isinstance(df.index, pd.MultiIndex) else df
    # rows read back from older files keep the environment they were made in; a field those rows
    # lack (older records stored fewer) stays empty rather than taking this machine's
    old = any(str(c).startswith("env_") for c in flat.columns)
    flat = flat.assign(**{f"env_{k}": None if old else env.get(k) for k in ENV_COLUMNS
                          if f"env_{k}" not in flat.columns})
    write_atomically(csv_path, lambda f: flat.to_csv(f, index=False))
    rows = [{str(k): _jsonable(v) for k, v in r.items()} for r in flat.to_dict(orient="records")]
    blob = {"params": _jsonable(dict(params or {})), "environment": _jsonable(env), "rows": rows}
    if histories is not None:
        blob["histories"] = {str(name): [{str(k): _jsonable(v) for k, v in r.items()}
                                         for r in pd.DataFrame(h).to_dict(orient="records")]
                             for name, h in histories.items()}
    write_atomically(json_path, lambda f: f.write(json.dumps(blob, indent=1)))
    return {"csv": csv_path, "json": json_path}


def _read_blob(path: Path) -> dict:
    try:
        blob = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable results file ({type(e).__name__}: {e}); it is truncated or "
                         "corrupted: delete it (or rerun with redo=True) to make it again") from e
    if not isinstance(blob, dict) or not isinstance(blob.get("rows"), list):
        raise ValueError(f"{path} is not a results file written by dcatkit.report.write_results "
                         f"(expected a JSON object with 'params' and 'rows'): delete it or rerun with redo=True")
    return blob


def find_results(folder: str | Path, stem: str, params: Mapping[str, Any]) -> pd.DataFrame | None:
    """The rows of ``<folder>/<stem>.json`` when :func:`write_results` wrote it with exactly
    ``params`` (compared in their JSON form, so ``(1, 2)`` matches ``[1, 2]``); None when
    there is no such file or it was written with other parameters (another data size,
    number of epochs, ...: the run must be made again). A damaged file is a ValueError
    naming it."""
    path = Path(folder) / f"{stem}.json"
    if not path.is_file():
        return None
    blob = _read_blob(path)
    if blob.get("params") != json.loads(json.dumps(_jsonable(dict(params)))):
        return None
    return pd.DataFrame(blob["rows"])


def finished_runs(folder: str | Path, stem: str, params: Mapping[str, Any], checkpoints: Mapping[str, str | Path],
                  splits, device="auto", metrics: Sequence[str] = METRICS, source=None) -> dict[str, Run] | None:
    """The runs of a finished execution, read back instead of trained again.

    ``checkpoints``: {run name: its checkpoint}. Returns {run name: Run} (model from the
    checkpoint, test metrics evaluated again on ``splits.test``, history from the
    results file) when ``<folder>/<stem>.json`` holds results with exactly ``params``
    (:func:`find_results`) and histories for every run, every checkpoint exists, and
    every reloaded model gives the test ``metrics`` stored for its run (so a
    checkpoint overwritten since, e.g. by another notebook, is never taken for the
    run the file describes). Otherwise None, with a line saying why (then: train).
    Runs given back make their results file the newest (its time stamps are touched):
    ``latest_results`` and ``python -m dcatkit.report ... --latest`` then show the run a
    notebook just used, also when it read the run back instead of writing it.
    ``source``: the frozen source (a ``Run``, model or checkpoint path; a list of them for
    several) the runs would be trained from now. A transfer run (``experiment.train_transfer``'s
    checkpoint, also a baseline trained with ``method="none"`` beside a monitored source) is read
    back only when its checkpoint records that very source (``experiment.source_identity``:
    weights and settings): a source trained again under its file name since (another device or
    machine, notebook 02 re-run) makes them None, with a line saying so, as does a transfer
    checkpoint that records no source (written before dcatkit recorded it).
    Runs given back that another dcatkit version or training code trained
    (``provenance.other_code`` of the file's environment) come with a line naming both:
    their numbers are what that code gave, and a change to the training code since is not
    seen by the check above (which reloads and evaluates, but does not train).
    """
    found = find_results(folder, stem, params)
    if found is None:
        return None
    current = None
    if source is not None:
        from .experiment import source_identity

        many = isinstance(source, (list, tuple))
        current = sorted(source_identity(s) for s in source) if many else [source_identity(source)]
    why, path = None, Path(folder) / f"{stem}.json"
    blob = _read_blob(path)
    histories = blob.get("histories") or {}
    stored = found.set_index("run") if "run" in found.columns else None
    runs: dict[str, Run] = {}
    for name, ck in checkpoints.items():
        ck = Path(ck)
        if stored is None or name not in stored.index or name not in histories:
            why = f"{path} has no results or history of the run {name!r}"
        elif not ck.is_file():
            why = f"the checkpoint of {name!r} ({ck}) is missing"
        else:
            model, meta = load_checkpoint(ck)
            modality = meta["modality"]
            why = _other_source(name, ck, meta, current)
        if not why:
            test = evaluate(model, splits.test, modality, device=device)
            off = {m: (float(stored.loc[name, m]), test[m]) for m in metrics
                   if not math.isclose(float(stored.loc[name, m]), test[m], rel_tol=0, abs_tol=1e-9)}
            if off:
                why = (f"the checkpoint of {name!r} ({ck}) does not give the stored results "
                       f"({', '.join(f'{m} {a:.4f} stored, {b:.4f} now' for m, (a, b) in off.items())}): "
                       "it was overwritten since")
            else:
                runs[name] = Run(name, modality, model, test, pd.DataFrame(histories[name]), ck,
                                 {"seed": meta.get("seed"), "best_val": meta.get("val"),
                                  "provenance": getattr(model, "provenance", None)})
        if why:
            print(f"dcatkit: not reading the runs back: {why}; training them")
            return None
    for f in (path, path.with_suffix(".csv")):        # the run last made or read back is the newest results file:
        if f.is_file():                                  # what `report --latest` (and so `make demo`) prints
            os.utime(f)
    env, now = blob.get("environment") or {}, code_version()
    if other_code(env, now):
        print(f"dcatkit: these runs were trained by other code ({describe_code(env)}; this is {describe_code(now)}): "
              "their numbers are what that code gave (redo=True trains them again)")
    return runs


def _other_source(name: str, ck: Path, meta: Mapping[str, Any], current: list[str] | None) -> str | None:
    """Why the transfer run ``name`` (checkpoint ``ck``) cannot be read back for the frozen
    source(s) ``current`` (their ``source_identity``, sorted), or None (it can; or it is no
    transfer run; or no source was given to compare)."""
    if current is None or (meta.get("kind") != "transfer" and "source_identity" not in meta):
        return None
    recorded = meta.get("source_identity")
    if recorded is None:
        return (f"the checkpoint of {name!r} ({ck}) does not record the frozen source it was trained from "
                "(written before dcatkit recorded it), so it cannot be told from a run of another source")
    recorded = sorted(recorded) if isinstance(recorded, (list, tuple)) else [recorded]
    if recorded != current:
        short = lambda ids: ", ".join(i[:12] for i in ids)          # noqa: E731
        return (f"the checkpoint of {name!r} ({ck}) was trained from another frozen source (source identity "
                f"{short(recorded)}) than the current one ({short(current)}): the source was trained again "
                "since (e.g. notebook 02 re-run, on another device or machine)")
    return None


def read_results(path: str | Path) -> pd.DataFrame:
    """The rows of a results file written by :func:`write_results` (``.csv`` or ``.json``).
    A ``.csv`` that is empty or does not end its last row with a newline (``to_csv`` always does:
    a copy cut short, whose last row pandas would read with its cut number and NaN after it) is
    a ValueError naming the file."""
    path = Path(path)
    if path.suffix == ".json":
        return pd.DataFrame(_read_blob(path)["rows"])
    if path.suffix == ".csv":
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size:
                f.seek(-1, os.SEEK_END)
            last = f.read(1)
        if last != b"\n":
            raise ValueError(f"{path} is not a whole results table: "
                             f"{'it is empty' if not size else 'its last row does not end with a newline (cut short)'}"
                             "; a table written by write_results ends every row with one. Copy it again, or "
                             "read its .json beside it")
        return pd.read_csv(path)
    raise ValueError(f"{path}: expected a .csv or .json results file")


def latest_results(folder: str | Path, pattern: str = "*.csv") -> Path:
    """The most recently written file matching ``pattern`` under ``folder`` (recursively)."""
    folder = Path(folder)
    files = sorted(folder.rglob(pattern), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no {pattern} results under {folder}: run the notebook first "
                                "(e.g. make demo or make notebooks)")
    return files[-1]


# --------------------------------------------------------------------------- what transfer changed


def per_class_f1(confusion: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix (rows = true, columns = predicted).

    F1_c = 2 TP / (2 TP + FP + FN); 0 for a class never seen nor predicted
    (scikit-learn's ``zero_division=0``).
    """
    c = np.asarray(confusion, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion must be a square (K, K) matrix, got shape {c.shape}")
    tp = np.diag(c)
    fp = c.sum(axis=0) - tp
    fn = c.sum(axis=1) - tp
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)


def per_class_change(conf_a: np.ndarray, conf_b: np.ndarray, classes: Sequence[str],
                     names: tuple[str, str] = ("baseline", "dcat")) -> pd.DataFrame:
    """Per-class F1 of two models on the same test set and its change (b - a),
    sorted from the largest gain to the largest loss. ``support`` = true samples."""
    a, b = np.asarray(conf_a), np.asarray(conf_b)
    if a.shape != b.shape or a.shape[0] != len(classes):
        raise ValueError(f"confusions {a.shape} and {b.shape} must both be ({len(classes)}, {len(classes)})")
    if not np.array_equal(a.sum(1), b.sum(1)):
        raise ValueError("the two confusion matrices have different class supports: "
                         "compare two models on the same test set")
    fa, fb = per_class_f1(a), per_class_f1(b)
    df = pd.DataFrame({"support": a.sum(1).astype(int), f"f1_{names[0]}": fa, f"f1_{names[1]}": fb,
                       "delta_f1": fb - fa}, index=pd.Index(list(classes), name="class"))
    return df.sort_values("delta_f1", ascending=False, kind="stable")


def pair_changes(conf_a: np.ndarray, conf_b: np.ndarray, classes: Sequence[str],
                 names: tuple[str, str] = ("baseline", "dcat")) -> pd.DataFrame:
    """Confusions between each unordered class pair {i, j} (i -> j plus j -> i)
    under model a and model b, and how the count changed (``change`` = b - a).

    ``direction`` is ``change``'s sign in words: "fewer" when b confused the pair
    fewer times than a, "more" when more, "same" otherwise. It describes the test
    samples of these two trained models, often one or two of them; it is no
    verdict (in this kit a verdict is the Holm-corrected call on paired runs
    pooled over seeds, ``dcatkit.studies``). Pairs neither model confuses are
    left out. Sorted by ``change``: fewer (largest drop first), then same, then
    more (largest rise last).
    """
    a, b = np.asarray(conf_a), np.asarray(conf_b)
    k = len(classes)
    if a.shape != (k, k) or b.shape != (k, k):
        raise ValueError(f"confusions {a.shape} and {b.shape} must both be ({k}, {k})")
    rows = []
    for i in range(k):
        for j in range(i + 1, k):
            ca, cb = int(a[i, j] + a[j, i]), int(b[i, j] + b[j, i])
            if ca == 0 and cb == 0:
                continue
            d = cb - ca
            rows.append({"class_a": classes[i], "class_b": classes[j], f"confused_{names[0]}": ca,
                         f"confused_{names[1]}": cb, "change": d,
                         "direction": "fewer" if d < 0 else "more" if d > 0 else "same"})
    cols = ["class_a", "class_b", f"confused_{names[0]}", f"confused_{names[1]}", "change", "direction"]
    return pd.DataFrame(rows, columns=cols).sort_values("change", kind="stable").reset_index(drop=True)


def flips(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict[str, int]:
    """Sample by sample: {"both_right", "fixed" (a wrong, b right), "broke" (a right,
    b wrong), "both_wrong", "n"}; accuracy(b) - accuracy(a) = (fixed - broke) / n."""
    y, pa, pb = (np.asarray(x) for x in (y_true, pred_a, pred_b))
    if not (y.shape == pa.shape == pb.shape):
        raise ValueError(f"y_true {y.shape}, pred_a {pa.shape} and pred_b {pb.shape} must have one entry per sample")
    ra, rb = pa == y, pb == y
    return {"both_right": int((ra & rb).sum()), "fixed": int((~ra & rb).sum()),
            "broke": int((ra & ~rb).sum()), "both_wrong": int((~ra & ~rb).sum()), "n": int(len(y))}


def describe_change(table: pd.DataFrame, baseline: str, runs: Sequence[str], metric: str = "f1") -> str:
    """One line per run: its ``metric``, the baseline's and their difference, as measured,
    with no direction word. Each row of ``table`` is one training run: one seed's
    difference can have either sign whatever the method does, so a direction is read
    only from paired runs pooled over seeds and data draws (``dcatkit.studies``). The
    difference is that of the two numbers as shown (``experiment.format_table``'s rule)."""
    b = float(table.loc[baseline, metric])
    lines = []
    for r in runs:
        v = float(table.loc[r, metric])
        lines.append(f"{r}: {metric} {v:.3f} vs {baseline} {b:.3f}, difference {signed(round(v, 3) - round(b, 3))} "
                     "(one training seed each: no direction is read from it)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the lambda ablation


def ablation_summary(df: pd.DataFrame, by: Sequence[str] = ("dataset", "modality", "variant", "lam"),
                     metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for one seed) and number of seeds of each metric over
    the rows sharing ``by``. Rows of ``df``: one per run and seed. Missing values in
    the ``by`` columns (e.g. lam of the baseline) form their own group."""
    missing = [c for c in (*by, *metrics) if c not in df.columns]
    if missing:
        raise ValueError(f"ablation rows lack columns {missing}; they have {list(df.columns)}")
    g = df.groupby(list(by), sort=False, dropna=False)[list(metrics)]
    out = g.mean().join(g.std(ddof=1).add_suffix("_std"))
    out["n_seeds"] = g.size()
    # rows: groups in order of first appearance, numbers (lambda) ascending within, NaN first
    keys = out.index.to_frame(index=False)
    order = []
    for c in keys.columns:
        col = keys[c]
        if pd.api.types.is_numeric_dtype(col):
            order.append(col.fillna(-np.inf).to_numpy())
        else:
            first = {v: i for i, v in enumerate(pd.unique(col))}
            order.append(col.map(first).to_numpy())
    return out.iloc[np.lexsort(order[::-1])]


def best_lambda(df: pd.DataFrame, metric: str = "f1", baseline: str = "baseline") -> pd.DataFrame:
    """For each variant of an ablation grid (rows: variant, lam, seed, metrics): the
    lambda with the best mean ``metric`` over seeds, its mean and std, the baseline's
    mean, the difference, and on how many seeds it beat the same seed's baseline.
    ``df`` holds one grid (one dataset, modality, size...): a seed that appears twice in the
    baseline, or in one (variant, lambda), is an error (rows of several grids would pair a
    variant's seed with another grid's baseline).

    Paired over shared seeds: a variant's lambdas and the baseline are compared on the seeds
    that every one of its lambdas and the baseline have (``seeds``), so each mean is over the
    same seeds and ``delta`` is the mean of paired differences. A grid where some seeds did not
    finish at some lambda loses those seeds for that variant, with a warning naming them
    (comparing a lambda's mean over seeds {0, 1} with another's over {0, 1, 2, 3}, or with the
    baseline over all of its seeds, compares seeds, not lambdas); no shared seed is an error."""
    import warnings

    for who, rows in (("the baseline", df[df["variant"] == baseline]),
                      *(((f"variant {v!r} at lam {l}", g) for (v, l), g in
                         df[df["variant"] != baseline].groupby(["variant", "lam"], sort=False, dropna=False)))):
        twice = sorted(rows["seed"][rows["seed"].duplicated()].unique().tolist())
        if twice:
            extra = [c for c in df.columns if c in ("dataset", "modality", "n_samples", "preset", "data_seed")
                     and rows[c].nunique(dropna=False) > 1]
            raise ValueError(f"{who} has seed(s) {twice} more than once: best_lambda reads one grid; these rows "
                             f"differ in {extra or 'columns other than variant, lam and seed'}: pass one grid's rows "
                             "(e.g. df[df.dataset == ...])")
    base_all = df[df["variant"] == baseline].set_index("seed")[metric]
    rows = []
    for variant, sub in df[df["variant"] != baseline].groupby("variant", sort=False):
        seeds = {lam: set(g["seed"]) for lam, g in sub.groupby("lam")}
        shared = set(base_all.index).intersection(*seeds.values())
        if not shared:
            raise ValueError(f"variant {variant!r}: no seed was run at every lambda and for the baseline (baseline "
                             f"{sorted(base_all.index.tolist())}, "
                             + ", ".join(f"lam {lam:g}: {sorted(v)}" for lam, v in seeds.items())
                             + "): best_lambda compares paired means over shared seeds")
        left_out = sorted(set(base_all.index).union(*seeds.values()) - shared)
        if left_out:
            every = shared | set(left_out)
            missing = "; ".join(f"lam {lam:g} lacks {sorted(every - v)}" for lam, v in seeds.items() if every - v)
            if not set(left_out) <= set(base_all.index):
                missing += f"; the baseline lacks {sorted(set(left_out) - set(base_all.index))}"
            warnings.warn(f"best_lambda: variant {variant!r} is compared over the seeds every lambda and the baseline "
                          f"share, {sorted(shared)}; seed(s) {left_out} left out ({missing.lstrip('; ')})",
                          stacklevel=2)
        sub = sub[sub["seed"].isin(shared)]
        base = base_all[base_all.index.isin(shared)]
        g = sub.groupby("lam")[metric]
        mean, std = g.mean(), g.std(ddof=1)
        lam = float(mean.idxmax())
        at = sub[sub["lam"] == lam].set_index("seed")[metric]
        common = at.index.intersection(base.index)
        rows.append({"variant": variant, "best_lam": lam, metric: float(mean[lam]), f"{metric}_std": float(std[lam]),
                     f"baseline_{metric}": float(base.mean()), "delta": float(mean[lam] - base.mean()),
                     "seeds_beating_baseline": int((at[common] > base[common]).sum()), "seeds": int(len(common))})
    return pd.DataFrame(rows).set_index("variant")


def ablation_table(df: pd.DataFrame, digits: int = 3,
                   by: Sequence[str] = ("dataset", "modality", "variant", "lam")) -> pd.DataFrame:
    """The grid laid out like the paper's Table IV: rows (Dataset, Modality, Variant, λ),
    columns Accuracy, Recall, Precision, F1-Score as "mean ± std" over seeds
    ("mean" alone for one seed). λ is "—" for rows without one (the baseline)."""
    s = ablation_summary(df, by)
    out = pd.DataFrame(index=s.index)
    for m, title in TABLE_IV_COLUMNS.items():
        mean, std = s[m], s[f"{m}_std"]
        out[title] = [f"{a:.{digits}f}" + (f" ± {b:.{digits}f}" if np.isfinite(b) else "")
                      for a, b in zip(mean, std)]
    out["seeds"] = s["n_seeds"].astype(int).values
    names = {"dataset": "Dataset", "modality": "Modality", "variant": "Variant", "lam": "λ"}
    idx = out.index.to_frame(index=False)
    if "lam" in idx:
        idx["lam"] = ["—" if pd.isna(v) else f"{v:g}" for v in idx["lam"]]
    out.index = pd.MultiIndex.from_frame(idx.rename(columns=names))
    return out


# --------------------------------------------------------------------------- command line


def format_results(df: pd.DataFrame, digits: int = 3) -> str:
    """A results file's rows as text, formatted for what they hold: a metrics table (a
    ``run`` / ``variant`` column and metric columns) shows the run name and the metrics (and
    deltas) first; any other table (e.g. notebook 03's Theorem 4.1 fits) is shown whole,
    numbers to ``digits`` decimals. ``env_*`` columns are never shown."""
    first = [c for c in ("run", "variant", "lam", "seed") if c in df.columns]
    nums = [c for c in df.columns if c in METRICS or c.startswith("delta_")]
    if first and any(c in METRICS for c in nums):
        return format_table(df[first + nums].set_index(first[0]), digits)
    view = df[[c for c in df.columns if not str(c).startswith("env_")]]
    if view.empty:
        return "(no rows)"
    return view.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}" if np.isfinite(v) else "nan")


def results_files(folder: str | Path, pattern: str = "*") -> list[Path]:
    """The results tables (``.csv``) under ``folder`` whose name matches ``pattern`` (a glob on
    the file name, ``.csv`` optional), oldest first."""
    folder = Path(folder)
    pattern = pattern if pattern.endswith(".csv") else pattern + ".csv"
    files = sorted(folder.rglob(pattern), key=lambda p: (p.stat().st_mtime, str(p)))
    if not files:
        raise FileNotFoundError(f"no results tables matching {pattern!r} under {folder}: run the notebook first "
                                "(e.g. make demo or make notebooks)")
    return files


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    latest = "--latest" in args
    args = [a for a in args if a != "--latest"]
    if not 1 <= len(args) <= 2 or args[0] in ("-h", "--help"):
        print("usage: python -m dcatkit.report <results.csv|results.json|folder> [PATTERN] [--latest]\n"
              "prints a results file, or every results table (.csv) of a folder, oldest first; PATTERN "
              "(a glob on the file name, e.g. 'transfer-*') picks some of them; --latest prints only the "
              "newest of those (what `make demo` shows: the run it just made, not every run before it)")
        return 0 if args and args[0] in ("-h", "--help") else 2
    path = Path(args[0])
    if not path.exists():
        print(f"dcatkit.report: no such file or folder: {path}", file=sys.stderr)
        return 2
    try:
        files = results_files(path, *args[1:]) if path.is_dir() else [path]
    except FileNotFoundError as e:
        print(f"dcatkit.report: {e}", file=sys.stderr)
        return 2
    if latest:
        files = files[-1:]
    if len(args) == 2 and not path.is_dir():
        print(f"dcatkit.report: PATTERN {args[1]!r} picks files of a folder; {path} is a file", file=sys.stderr)
        return 2
    try:
        tables = [(f, read_results(f)) for f in files]
    except (ValueError, pd.errors.EmptyDataError) as e:      # not a results file, empty, cut short
        print(f"dcatkit.report: {e}", file=sys.stderr)
        return 2
    print("\n\n".join(f"{f}:\n{format_results(t)}" for f, t in tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
