"""Where a model and a result come from: the data it was trained on and the environment.

A frozen source is only a fair teacher if it never saw the target run's validation or
test samples. Every model ``fit`` trains therefore carries a *provenance* record (in
its checkpoint's ``meta["provenance"]``, as ``model.provenance`` in memory and in
``Run.meta["provenance"]``)::

    {"dataset": "uestc" | None,           # Splits.report["dataset"] when the loader set it
     "split": {"split": "id", "seed": 0, "ratios": [...], ...} | None,  # Splits.report["split"]
     "data_seed": 0 | None,
     "modality": "video", "input_shape": [T, 3, H, W], "classes": [...],
     "input_dtype": "float32" | "uint8" | None,   # dtype of the inputs it trained on (export follows it)
     "n_train": N, "train_ids_sha256": "...", "train_ids": [N ids],
     "n_val": M, "val_ids": [M ids],      # the samples its best epoch was chosen on
     "id_source": "given" | "content",    # the data's own ids, or content hashes (from_arrays)
     "train_content": [N] | None, "val_content": [M] | None,  # content ids: this modality's alone
     "preprocessing": "..." | None,       # the loader's settings key (Splits.report["preprocessing"])
     "data_fingerprint": "...",           # the data the ids come from (Splits.report)
     "imu_minmax": {"min": [...], "max": [...]} | None,   # the per-channel IMU scaling
     "normalization": {"method": "minmax", "min": [...], "max": [...]} | None,  # this modality's
                                                          # scaling (any timeseries name)
     "sample_rates": {"imu": 50.0, ...},
     "environment": environment()}

:func:`check_source` compares a source's record with the target run's splits and
refuses a source whose training ids overlap the target's validation or test ids, or
whose validation ids (its model selection) overlap the target's test ids (leakage), or
whose classes differ. Ids name samples across data draws and datasets (synthetic ids
carry their draw; ``from_arrays`` ids are the user's or content hashes, with each
modality's own content kept too), so a source trained on another draw of the same
simulator shares no id and is accepted, with a message saying so; a source of other data,
or of the same dataset loaded otherwise, is accepted with a message saying how many
sample ids it shares with this run, not that it cannot overlap. A source without a
(complete) record is refused unless the caller trusts it (``trust_source=True``, CLI
``--trust-source``), which the run then records.
Input scaling is compared for every timeseries modality. ``environment()`` is also
written into every results file (``report.write_results``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence


class SourceMismatch(ValueError):
    """A source model that must not be used for this target run (leakage, other classes,
    other inputs). The command line prints its message instead of a traceback."""


# ------------------------------------------------------------------ environment


def _git(folder: str | Path, *args: str) -> str | None:
    """``git -C folder args``'s output, or None: git missing, not a checkout, or an error."""
    env = {k: v for k, v in os.environ.items() if k != "GIT_LITERAL_PATHSPECS"}   # it would void the magic
    try:
        r = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def git_commit(folder: str | None = None) -> str | None:
    """The commit of the git checkout that holds dcatkit's own files, or None: not a
    checkout, git missing, or the package installed outside one. Never raises.

    ``-dirty`` is appended when a tracked Python file anywhere in the checkout (the package,
    a benchmark script, a notebook's paired ``.py``) or ``pyproject.toml`` was changed; shell
    scripts, the Makefile and the pins (``constraints.txt``, ``environment.yml``) are not
    looked at. Executed notebooks, figures, results and prose do not count: ``make
    notebooks`` executes them in place one after the other, and every notebook after the
    first would otherwise be stamped as run from changed code. A notebook's code edited in
    its ``.ipynb`` alone (no jupytext pair saved) is therefore not seen."""
    pkg = Path(folder) if folder is not None else Path(__file__).resolve().parent
    # the package's own file must be tracked there: a venv inside someone else's repo is not ours
    if _git(pkg, "ls-files", "--error-unmatch", "__init__.py") is None:
        return None
    commit = _git(pkg, "rev-parse", "HEAD")
    if not commit:
        return None
    # glob magic: the same match whatever GIT_*_PATHSPECS the caller's environment sets
    status = _git(pkg, "status", "--porcelain", "--untracked-files=no", "--", ":(top,glob)**/*.py",
                  ":(top,literal)pyproject.toml")
    return commit + ("-dirty" if status else "")


# dcatkit's modules that read, judge or show runs but never train one: a commit that changed only
# these (or files outside the package: notebooks, tests, prose) trains every run as before.
# tests/test_provenance.py checks that training a source, a baseline and a transfer run in a
# fresh interpreter imports none of them.
NOT_TRAINING = ("__main__.py", "deploy.py", "diagnostics.py", "explore.py", "headroom.py", "plots.py")


@functools.lru_cache(maxsize=None)
def same_training_code(a: str, b: str, folder: str | None = None) -> bool:
    """Whether commits ``a`` and ``b`` train runs with the same code: ``git diff`` between them
    touches no file of the package but ``NOT_TRAINING``, and not ``pyproject.toml``. False
    when either is ``-dirty`` (which files changed is not known), when this checkout does not
    know both commits, or git is missing: then they count as other code."""
    if a == b:
        return True
    if a.endswith("-dirty") or b.endswith("-dirty"):
        return False
    pkg = Path(folder) if folder is not None else Path(__file__).resolve().parent
    top = _git(pkg, "rev-parse", "--show-prefix")               # the package's folder in its checkout
    if top is None:
        return False
    where = top.rstrip("/")
    changed = _git(pkg, "diff", "--name-only", a, b, "--", f":(top,literal){where}",
                   ":(top,literal)pyproject.toml", *(f":(top,literal,exclude){where}/{f}" for f in NOT_TRAINING))
    return changed == ""


def code_version() -> dict:
    """This process's dcatkit version and git commit: what a run read back instead of trained
    is compared with (:func:`other_code`). Cheaper than :func:`environment`, which starts CUDA."""
    from . import __version__

    return {"dcatkit": __version__, "git_commit": git_commit()}


def other_code(env: Mapping[str, Any] | None, now: Mapping[str, Any]) -> bool:
    """Whether ``env`` (a stored environment record) names another dcatkit version than
    ``now`` (:func:`code_version`), or a git commit whose training code differs from now's
    (:func:`same_training_code`: a commit that changed only notebooks, prose, tests or the
    modules that show results trains as before). Unknown on either side (a record from
    before environments were stored, a copy without ``.git``) does not count as other. A
    commit with ``-dirty`` says only that the tree had changes, not which: two such records
    compare equal, and against any other commit they count as other."""
    def differs(k):
        return env.get(k) is not None and now.get(k) is not None and env.get(k) != now.get(k)

    return bool(env) and (differs("dcatkit") or (differs("git_commit")
                                                 and not same_training_code(env["git_commit"], now["git_commit"])))


def describe_code(env: Mapping[str, Any]) -> str:
    """``dcatkit <version> at <commit>``: how a code version is named in messages."""
    return f"dcatkit {env.get('dcatkit')} at {env.get('git_commit')}"


MACHINE_KEYS = ("device", "device_name", "cpu", "cpu_capability")


def machine(env: Mapping[str, Any] | None) -> str | None:
    """The machine a run was trained on, as its stored environment names it: the GPU's
    name for a CUDA run, else the CPU model and torch's CPU kernel level. Two runs of
    the same code, seed and data on machines with other names can give other numbers
    (benchmarks/RESULTS.md, "Run to run": the CPU type, most likely, decides), so a
    paired difference between them mixes the machine's effect with the method's.
    None when the record does not name it (records from before the CPU was stored, a CPU
    that reports no model name)."""
    if not env:
        return None
    if str(env.get("device") or "").startswith("cuda"):
        name = env.get("device_name")
        return f"{name} (CUDA)" if name else None
    cpu, cap = env.get("cpu"), env.get("cpu_capability")
    if not cpu:
        return None
    return f"{cpu} ({cap})" if cap else cpu


@functools.lru_cache(maxsize=None)
def cpu_name() -> str | None:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def environment(device: Any = None) -> dict:
    """Versions and hardware a result was produced with: dcatkit, torch, numpy, python,
    platform, the device (``device`` when given, else the default one: CUDA when
    available) with its name, the CPU (model, torch's CPU kernel level such as "AVX512",
    torch's thread count: a CPU result can differ in its last digits between machines and
    thread counts, and then a training run differs; benchmarks/RESULTS.md, "Run to run")
    and the git commit of dcatkit when run from a checkout."""
    import numpy as np
    import torch

    from . import __version__

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    name = None
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = torch.device(device)
        name = torch.cuda.get_device_name(dev.index if dev.index is not None else torch.cuda.current_device())
    return {"dcatkit": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "device": device, "device_name": name, "cpu": cpu_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "git_commit": git_commit()}


# ------------------------------------------------------------------ the data a model saw


def ids_hash(ids: Sequence[str]) -> str:
    """sha256 of the sorted sample ids (one per line): the same set gives the same hash."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


def _plain(x: Any) -> Any:
    """JSON-plain copy (lists, dicts, str, int, float, bool, None): what torch.load's
    ``weights_only=True`` accepts and results files can hold."""
    return json.loads(json.dumps(x, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def record(train, modality: str, report: dict | None = None, dataset: str | None = None,
           device: Any = None, val=None) -> dict:
    """The provenance of a model of ``modality`` trained on the dataset ``train``
    (a ``PairedDataset``) with its best epoch chosen on ``val`` (when given); ``report``
    is the ``Splits.report`` it came from, when known (split kind and seed, dataset name,
    scaling, data fingerprint). See the module docstring."""
    report = report or {}
    split = report.get("split")
    ids = [str(i) for i in getattr(train, "ids", [])]
    val_ids = None if val is None else [str(i) for i in getattr(val, "ids", range(len(val)))]
    minmax = getattr(train, "imu_minmax", None) or report.get("imu_minmax")
    norm = (getattr(train, "normalization", None) or report.get("normalization") or {}).get(modality)
    if norm is None and modality == "imu" and minmax:
        norm = {"method": "minmax", **minmax}
    shape = list(train.input_shape(modality)) if hasattr(train, "input_shape") else None
    arrays = getattr(train, "arrays", None)
    dtype = str(arrays[modality].dtype) if isinstance(arrays, dict) and hasattr(arrays.get(modality), "dtype") else None
    own = (report.get("modality_content") or {}).get(modality)      # from_arrays content ids: this modality's alone
    return _plain({
        "dataset": dataset if dataset is not None else report.get("dataset"),
        "split": split,
        "data_seed": split.get("seed") if isinstance(split, dict) else None,
        "modality": modality,
        "input_shape": shape,
        "input_dtype": dtype,           # e.g. float32 frames in [0, 1]: export then writes a float32 video graph
        "classes": list(getattr(train, "classes", [])),
        "n_train": len(ids),
        "train_ids_sha256": ids_hash(ids),
        "train_ids": ids,
        "n_val": None if val_ids is None else len(val_ids),
        "val_ids": val_ids,
        "id_source": report.get("id_source"),
        # the content of this modality alone of each training / validation sample (from_arrays data named by
        # content ids, which hash every modality loaded): the same samples loaded with other modalities
        "train_content": None if own is None else [own.get(i) for i in ids],
        "val_content": None if own is None or val_ids is None else [own.get(i) for i in val_ids],
        "preprocessing": report.get("preprocessing"),     # the loader's settings (window stride...): its ids' meaning
        # the loaders' Splits carry it; hand-built ones: the ids this model saw stand for the data
        "data_fingerprint": report.get("data_fingerprint") or ids_hash(ids + (val_ids or []))[:24],
        "imu_minmax": minmax if modality == "imu" else None,
        "normalization": norm,
        "sample_rates": dict(getattr(train, "sample_rates", {}) or {}),
        "environment": environment(device),
    })


def _split_words(split) -> tuple[str, int | None]:
    """(the split as the CLI's ``--split`` spells it: "id", "ood", "loso", "group_kfold:5"; its
    fold or None) from a split record (``Splits.report["split"]``, a provenance's ``split``).
    Two folds of one cross-validation split differ only in the fold, so messages name it."""
    split = split if isinstance(split, dict) else {}
    kind, k = split.get("kind", split.get("split", "?")), split.get("k")
    if isinstance(kind, (list, tuple)):               # an older record: ["group_kfold", k] as the split
        kind, k = kind[0], kind[1] if len(kind) > 1 else k
    return (f"{kind}:{k}" if k is not None else str(kind)), split.get("fold")


def _split_text(split, seed) -> str:
    """"split loso fold 1 (data seed 0)" (no fold for a split without folds)."""
    name, fold = _split_words(split)
    return f"split {name}{'' if fold is None else f' fold {fold}'} (data seed {seed})"


def describe(prov: dict) -> str:
    """"dataset 'synthetic', split id (data seed 0), 600 training samples" for messages (two
    draws of one seed at other sizes differ in the count; a cross-validation split names its fold)."""
    n = len(prov["train_ids"]) if prov.get("train_ids") is not None else "?"
    return (f"dataset {prov.get('dataset')!r}, {_split_text(prov.get('split'), prov.get('data_seed'))}, "
            f"{n} training samples")


def _split_of(splits) -> str:
    report = getattr(splits, "report", {}) or {}
    split = report.get("split") or {}
    return (f"dataset {report.get('dataset')!r}, {_split_text(split, split.get('seed'))}, "
            f"{len(splits.train)} training samples")


TRUST_HINT = ("if you know where the source comes from and that it never saw this run's validation or test "
              "samples, say so: load_source(..., trust_source=True) / train_transfer(..., trust_source=True) / "
              "python -m dcatkit transfer --trust-source (the run's results record that you did)")
REQUIRED = ("train_ids", "val_ids", "data_fingerprint")     # what a record needs for the overlap check


def check_classes(classes: Sequence, *, n: int | None = None, names: Sequence | None = None,
                  who: str = "the source") -> None:
    """Refuse (``SourceMismatch``) a source whose classes are not the data's ``classes``: its number
    of classes ``n`` (its outputs; None: not known) and the class ``names`` it records (None: not
    recorded) must be the data's, the same names in the same order (compared as text). Its MCMA
    mask (Eq. 16) compares its argmax with the labels by index, so another count or order would
    mask by the wrong classes without a word. ``who`` names the source in the message."""
    classes = [str(c) for c in classes]
    named = None if names is None else [str(c) for c in names]
    if n is None:
        n = len(classes) if named is None else len(named)
    if n == len(classes) and (named is None or named == classes):
        return
    raise SourceMismatch(f"{who} has {n} classes{'' if named is None else f' {named}'} but the data has "
                         f"{len(classes)} {classes}: they do not match the target run's classes (same names, "
                         "same order needed), and its MCMA mask compares its predictions with the labels by "
                         "index, so it would mask by the wrong classes. Use a source trained on this data's "
                         "classes, in this order")


def check_input_shape(shape: Sequence | None, data_shape: Sequence, *, modality: str, who: str = "the source",
                      advice: str) -> None:
    """Refuse (``SourceMismatch``) a model built for inputs of ``shape`` (its recorded
    ``input_shape``; None: not recorded, passes) on the data's ``modality`` inputs of
    ``data_shape``. ``who`` names the model in the message, ``advice`` (the caller's) says
    what to do."""
    if shape is not None and list(shape) != list(data_shape):
        raise SourceMismatch(f"{who} takes inputs of shape {list(shape)} but the data's {modality!r} "
                             f"inputs are {list(data_shape)}: {advice}")


def check_modality(own: str | None, named: str | None, *, who: str = "the source", advice: str) -> None:
    """Refuse (``SourceMismatch``) a model of modality ``own`` (the one it was trained on) that
    its caller names ``named``: it would read the ``named`` inputs (nothing else stops it where
    the shapes match: two timeseries sensors). Either None: not known, passes. ``who`` names
    the model in the message, ``advice`` (the caller's) says what to do."""
    if own and named and own != named:
        raise SourceMismatch(f"{who} is a {own!r} model, not a {named!r} one: it would read the {named!r} inputs "
                             f"as {own!r} ones (where their shapes match, nothing else stops it); {advice}")


def check_source(prov: dict | None, splits, trust_source: bool = False) -> dict:
    """Refuse (``SourceMismatch``) a source for the target run on ``splits`` when

    - its training samples overlap the target's validation or test samples, or the samples
      it chose its best epoch on (its validation part) overlap the target's test samples;
    - its classes differ;
    - its ids are of another kind than the target's (content hashes vs ids given with the
      data: one sample has two ids, so no overlap can be seen), unless ``trust_source=True``;
    - it carries no provenance, or an incomplete one (older checkpoints: no validation ids or
      data fingerprint), unless ``trust_source=True``: then a warning, and the outcome says so.

    Samples are compared by id and, for ``from_arrays`` data named by content ids (which hash
    every modality loaded), also by the content of the source's own modality
    (``report["modality_content"]``, the record's ``train_content`` / ``val_content``).

    ``prov``: the source's provenance record (``record``) or None. Returns what was found,
    for the run's results: {"source_check": "same data" | "same samples" | "another draw" |
    "same dataset, no shared id" | "other data" | "trusted without provenance" | "trusted with
    incomplete provenance" | "trusted with other ids" (the three trusted outcomes hold only
    ``source_check`` and ``trust_source``), "shared_train": 0, "shared_val": 0 (its training / validation
    samples among this run's evaluated ones: a source with any is refused),
    "shared_target_train": n (this run's training samples it trained on), ...}. With another
    data fingerprint the source is accepted with a warning saying what was measured: "same
    samples": it trained on ``n`` > 0 of this run's training samples (all of them: the data
    loaded with other modalities, or files changed since; some: loaded with other settings,
    e.g. another window stride, named in the warning when the record has the loader's
    ``preprocessing``); "another draw": a simulated source of another draw (the simulator's
    ids name their draw, so none is shared); "same dataset, no shared id" / "other data": no
    sample id in common, which rules out an overlap only where both name samples alike."""
    if prov is None or any(prov.get(k) is None for k in REQUIRED):
        what = ("carries no provenance (it was not trained by dcatkit's fit, or comes from an older checkpoint)"
                if prov is None else
                "has an incomplete provenance (no " + ", ".join(k for k in REQUIRED if prov.get(k) is None)
                + ": written by an older dcatkit)")
        if not trust_source:
            raise SourceMismatch(f"the source {what}: dcatkit cannot check that it never saw this run's validation "
                                 f"or test samples, so it is refused. Train the source with this dcatkit on this "
                                 f"run's training split, or, {TRUST_HINT}.")
        warnings.warn(f"the source {what}; used because trust_source=True: its overlap with this run's "
                      "validation and test samples is not checked", stacklevel=3)
        if prov is not None:
            check_classes(splits.train.classes, names=prov.get("classes"))
        return {"source_check": "trusted without provenance" if prov is None else
                "trusted with incomplete provenance", "trust_source": True}
    if not prov.get("classes"):
        classes = [str(c) for c in splits.train.classes]
        raise SourceMismatch(f"the source's provenance record names no classes (its 'classes' is "
                             f"{prov.get('classes')!r}), so nothing says it has this run's {len(classes)} classes "
                             f"{classes} (same names, same order needed): use a source trained with dcatkit on "
                             "this data's classes (its record names them), or record the classes it was trained "
                             "on, in label order, as its provenance's 'classes'")
    check_classes(splits.train.classes, names=prov["classes"])
    theirs, ours = prov.get("id_source"), (getattr(splits, "report", {}) or {}).get("id_source")
    if theirs and ours and theirs != ours:          # content hashes vs given ids: one sample, two ids
        what = {"content": "ids derived from the content", "given": "ids given with the data"}
        msg = (f"the source's samples have {what.get(theirs, theirs)} ({theirs!r}), this run's have "
               f"{what.get(ours, ours)} ({ours!r}): the same sample has another id in each, so their overlap "
               "with this run's validation and test samples cannot be checked")
        if not trust_source:
            raise SourceMismatch(f"{msg}. Build both splits the same way (from_arrays with the same ids=, or "
                                 f"both without), or, {TRUST_HINT}.")
        warnings.warn(f"{msg}; used because trust_source=True: the overlap is not checked", stacklevel=3)
        return {"source_check": "trusted with other ids", "trust_source": True}
    report = getattr(splits, "report", {}) or {}
    seen, chosen = set(map(str, prov["train_ids"])), set(map(str, prov["val_ids"]))
    # from_arrays content ids hash every modality loaded: the same sample loaded with other modalities has
    # another id, but the same content of the source's own modality (when both sides recorded it)
    content = (report.get("modality_content") or {}).get(prov.get("modality"))
    compared = content is not None and prov.get("train_content") is not None
    seen_c = set(prov["train_content"]) - {None} if compared else set()
    chosen_c = set(prov.get("val_content") or []) - {None} if compared else set()

    def shared(part, ids: set, contents: set) -> int:
        """Samples of ``part`` named in ``ids``, or whose content of the source's modality is in ``contents``."""
        return sum(str(i) in ids or (compared and content.get(str(i)) in contents) for i in part.ids)

    n_val, n_test, n_sel = shared(splits.val, seen, seen_c), shared(splits.test, seen, seen_c), \
        shared(splits.test, chosen, chosen_c)
    if n_val or n_test or n_sel:
        split = report.get("split") or {}
        (kind, fold), seed = _split_words(split), split.get("seed", "<seed>")
        fold_flag = "" if fold is None else f" --fold {fold}"
        parts = []
        if n_val or n_test:
            parts.append(f"the source was trained on {n_val + n_test} samples that this run evaluates on "
                         f"({n_val} of {len(splits.val)} validation, {n_test} of {len(splits.test)} test)")
        if n_sel:
            parts.append(f"the source chose its best epoch on {n_sel} of this run's {len(splits.test)} test samples "
                         "(its validation part)")
        raise SourceMismatch(
            "leakage: " + "; ".join(parts) + f". Source: {describe(prov)}; this run: {_split_of(splits)}. Train "
            f"the source on this run's training split (same dataset, split{'' if fold is None else ', fold'} and data "
            f"seed, e.g. `python -m dcatkit train --split {kind}{fold_flag} --data-seed {seed} ...`) and transfer "
            "from that checkpoint.")
    here = report.get("data_fingerprint")
    n_common = shared(splits.train, seen, seen_c)       # this run's training samples the source trained on
    out = {"source_check": "same data", "shared_train": 0, "shared_val": 0, "shared_target_train": n_common,
           "source_data_fingerprint": prov["data_fingerprint"]}
    if here is None or prov["data_fingerprint"] == here:
        return out
    fp = f"data fingerprint ({prov['data_fingerprint'][:8]} vs {here[:8]} here)"     # "another <fp>"
    theirs_pre, ours_pre = prov.get("preprocessing"), report.get("preprocessing")
    other_pre = theirs_pre is not None and ours_pre is not None and theirs_pre != ours_pre
    pre = f"other loader settings (preprocessing {theirs_pre[:8]} vs {ours_pre[:8]} here)" if other_pre else None
    basis = (f"by sample id or by its {prov.get('modality')!r} inputs" if compared else "by sample id")
    both = f"Source: {describe(prov)}; this run: {_split_of(splits)}"
    if n_common and seen == set(map(str, splits.train.ids)):
        # the fingerprint hashes every modality loaded: the same samples loaded with other modalities
        # (the CLI loads all three, a notebook two) differ there, and so do files changed since
        out["source_check"] = "same samples"
        warnings.warn(f"the source was trained on this run's training samples (the same ids) but its data "
                      f"fingerprint differs ({prov['data_fingerprint'][:8]} vs {here[:8]} here): the data was "
                      f"loaded with other modalities, or its files changed since{f' ({pre})' if pre else ''}. "
                      f"{both}", stacklevel=3)
    elif n_common:
        out["source_check"] = "same samples"
        warnings.warn(f"the source was trained on {n_common} of this run's {len(splits.train)} training samples "
                      f"({basis}; it trained on {len(seen)} samples) and on none of its validation or test samples "
                      f"{basis}, with another {fp}: the data was loaded with "
                      f"{pre or 'other settings (another window stride, other modalities or a subset)'}, or its "
                      f"files changed since. {both}", stacklevel=3)
    else:
        dataset = report.get("dataset")
        same_name = dataset is not None and prov.get("dataset") == dataset
        measured = "no sample id" + (f" and no {prov.get('modality')!r} input" if compared else "")
        if same_name and dataset == "synthetic":       # simulated ids name their draw
            out["source_check"] = "another draw"
            warnings.warn(f"the source was trained on another draw of the same {dataset!r} data (another {fp}): "
                          f"{describe(prov)}; this run: {_split_of(splits)}. It shares {measured} with this run "
                          "(the simulator's ids name their draw), and it has never seen this run's data",
                          stacklevel=3)
        else:
            out["source_check"] = "same dataset, no shared id" if same_name else "other data"
            what = (f"the same {dataset!r} dataset with another {fp}" + (f", loaded with {pre}" if pre else "")
                    if same_name else f"other data (another {fp})")
            warnings.warn(f"the source was trained on {what}: {both}. It shares {measured} with this run; an "
                          "overlap with this run's validation and test samples cannot be ruled out by that (the same "
                          "recordings loaded with other settings or modalities can be named otherwise)",
                          stacklevel=3)
    return out


def warn_if_inputs_differ(prov: dict | None, splits, modality: str) -> None:
    """Warn when the source saw its inputs scaled (min-max of any timeseries modality) or
    sampled differently from this run's data: the source then classifies shifted inputs."""
    if not prov:
        return
    rate, here = (prov.get("sample_rates") or {}).get(modality), splits.train.sample_rates.get(modality)
    if rate and here and abs(float(rate) - float(here)) > 1e-6 * max(abs(float(rate)), 1.0):
        warnings.warn(f"the source saw {modality} at {rate} Hz, this run's data is at {here} Hz", stacklevel=3)
    theirs = prov.get("normalization") or (prov.get("imu_minmax") if modality == "imu" else None)
    norms = getattr(splits.train, "normalization", None) or (getattr(splits, "report", {}) or {}).get("normalization")
    ours = (norms or {}).get(modality)
    if ours is None and modality == "imu":
        ours = getattr(splits.train, "imu_minmax", None) or (getattr(splits, "report", {}) or {}).get("imu_minmax")
    if theirs and ours:
        ours = _plain(ours)
        if [ours.get("min"), ours.get("max")] != [theirs.get("min"), theirs.get("max")]:
            warnings.warn(f"the source's {modality} inputs were min-max scaled with other per-channel statistics "
                          "than this run's (another training split): it sees differently scaled inputs here",
                          stacklevel=3)
    elif bool(theirs) != bool(ours):
        warnings.warn(f"the source's {modality} inputs were {'' if theirs else 'not '}min-max scaled, this run's "
                      f"are {'' if ours else 'not '}: it sees differently scaled inputs here", stacklevel=3)


__all__ = ["SourceMismatch", "TRUST_HINT", "environment", "git_commit", "ids_hash", "record", "check_classes",
           "check_input_shape", "check_modality", "check_source", "warn_if_inputs_differ", "describe"]
