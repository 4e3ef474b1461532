"""Datasets: one entry point, :func:`load`, and :func:`from_arrays` for your own sensors.

>>> train, val, test = load("synthetic", n_samples=200)               # no files needed
>>> splits = load("uestc", root="~/data/UESTC-MMEA-CL", split="id")  # paper's 8 classes
>>> splits.report["skipped"]                                         # what was left out, and why
>>> for fold in load("cough", root="~/data/MultimodalCoughDataset", split="loso"):
...     fold.report["split"]["held_out_subjects"]                       # one Splits per subject

Every loader returns :class:`Splits` (train / val / test :class:`PairedDataset`
plus a ``report`` dict), or a list of them, one per fold, for the cross-validation
splits ``"loso"`` and ``("group_kfold", k)``; items follow the format documented in
``dataset.py``. Every split is checked by :func:`check_leakage` before it is returned.

Your own sensors: any modality names, each with a kind (``dcatkit.modalities``)::

    splits = from_arrays({"acc": acc, "gyro": gyro}, labels, groups=recording_ids,
                         kinds={"acc": "timeseries", "gyro": "timeseries"})
    splits.kinds                      # {"acc": "timeseries", "gyro": "timeseries"}
    splits.normalization["gyro"]      # the per-channel min-max of gyro's training part

Saved once with :func:`save_arrays` (one ``.npz`` file), they are a dataset like the paper's:
``load("arrays", root="wrist.npz", split=..., seed=...)``, and every sweep, notebook and
command that takes ``dataset`` / ``root`` (``dcatkit.data.arrays``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..modalities import KINDS, check_usable_name
from .dataset import MODALITIES, PairedDataset, Splits, check_modality
from .preprocess import as_names
from .arrays import save_arrays
from .splits import LIST_SPLIT, NO_LISTS, SplitArg, check_leakage, from_arrays, parse_split

NAMES = ("synthetic", "uestc", "cough", "vggsound", "arrays")
# The paper's train / val / test fractions (Sec. V-A); synthetic uses 70/15/15.
RATIOS = {"synthetic": (0.7, 0.15, 0.15), "uestc": (0.8, 0.1, 0.1), "cough": (0.65, 0.18, 0.17),
          "vggsound": (0.7, 0.15, 0.15)}


def load(
    name: str = "synthetic",
    root: str | Path | None = None,
    split: SplitArg = "id",
    modalities: Sequence[str] | None = None,
    seed: int = 0,
    **options,
) -> Splits | list[Splits]:
    """Load a dataset by name and split it into train / val / test.

    name: ``"synthetic"`` (default, no root), ``"uestc"``, ``"cough"``, ``"vggsound"``, or
      ``"arrays"``: your own sensors, saved by :func:`save_arrays` (root: that ``.npz`` file).
    root: the dataset folder, as distributed (see each loader's ``LAYOUT``).
    split: ``"id"`` (stratified random), ``"ood"`` (subject-disjoint), or cross-validation over
      subjects — ``"loso"`` (leave one subject out) or ``("group_kfold", k)`` — which returns a
      list of :class:`Splits`, one per fold (``report["split"]["fold"]``, ``["held_out_subjects"]``);
      ``"lists"`` (UESTC only): the published train / val / test list files' split.
    modalities: subset of the dataset's two modalities (default: both).
    options: passed to the loader — ``dcatkit.data.uestc.load_uestc``, ``cough.load_cough``,
      ``vggsound.load_vggsound``, ``arrays.load_arrays``, or ``synthetic.make_synthetic`` (plus ``ratios`` and
      ``split_file``, which every loader accepts).
    ``report["dataset"]`` is ``name``; ``report["split"]`` holds kind, seed, ratios and fold;
    ``report["control"]`` what a simulated control (``make_synthetic(control=...)``) replaced.
    ``n_labeled``: keep the labels of that many training recordings (stratified, seeded by
    ``seed``), the rest becoming ``Splits.unlabeled`` (``dataset.hide_labels``).
    """
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}: expected one of {NAMES}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed (the data draw: the split, and the simulated data) must be an int >= 0, got {seed!r}")
    _check_options(name, options)
    if parse_split(split)[0] == LIST_SPLIT and name != "uestc":          # before any file is decoded
        raise ValueError(NO_LISTS.format(what=f"dataset {name!r}"))
    n_labeled = options.pop("n_labeled", None)
    if n_labeled is not None:
        from .dataset import hide_labels

        out = load(name, root, split, modalities, seed, **options)
        return [hide_labels(s, n_labeled, seed) for s in out] if isinstance(out, list) \
            else hide_labels(out, n_labeled, seed)
    if modalities is not None:
        modalities = tuple(check_usable_name(m) for m in as_names(modalities))   # each loader says which names it has
    if name == "synthetic":
        if root is not None:
            raise ValueError("the synthetic dataset is simulated: it takes no root")
        make_synthetic = _loader(name)
        ratios = options.pop("ratios", RATIOS[name])
        split_file = options.pop("split_file", None)
        options.setdefault("seed", seed)
        if modalities is not None:
            options["modalities"] = modalities
        d = make_synthetic(**options)
        # each simulated sample is its own independent recording unless the simulator says otherwise
        out = from_arrays(d["arrays"], d["labels"], d.get("subjects"), d["classes"], split=split,
                          ratios=ratios, seed=seed, ids=d.get("ids"), sample_rates=d.get("sample_rates"),
                          groups=d.get("groups", "samples"), split_file=split_file, kinds=d.get("kinds"))
        if d.get("control") is not None:        # a control asked for says so in the report (as break_pairing's)
            from .synthetic import control_report

            for s in out if isinstance(out, list) else [out]:
                s.report["control"] = control_report(d["control"], d["arrays"])
        return _named(out, name)
    if root is None:
        raise ValueError(f"load({name!r}) needs root=, " + ("the .npz file written by dcatkit.data.save_arrays"
                         if name == "arrays" else "the folder holding the dataset as distributed"))
    loader = _loader(name)
    if modalities is not None:
        options["modalities"] = modalities
    return _named(loader(root, split=split, seed=seed, **options), name)


def _loader(name: str):
    """The function that loads (or simulates) dataset ``name``, imported on first use."""
    if name == "synthetic":
        from .synthetic import make_synthetic as loader
    elif name == "uestc":
        from .uestc import load_uestc as loader
    elif name == "cough":
        from .cough import load_cough as loader
    elif name == "vggsound":
        from .vggsound import load_vggsound as loader
    else:
        from .arrays import load_arrays as loader
    return loader


LOAD_ARGS = frozenset({"root", "split", "seed", "modalities"})    # load()'s own arguments, never loader options


def _check_options(name: str, options: dict) -> None:
    """Every key of ``options`` is one the loader of ``name`` takes (or n_labeled, ratios,
    split_file); a misspelt one is a ValueError listing the accepted names, not a TypeError
    from inside the loader."""
    import inspect

    own = LOAD_ARGS
    params = inspect.signature(_loader(name)).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):           # takes anything: its own checks
        return
    takes = {k for k, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - own | {"n_labeled", "ratios", "split_file"}
    wrong = sorted(set(options) - takes)
    if wrong:
        raise ValueError(f"{name} takes no option(s) {wrong}"
                         + (f" ({', '.join(sorted(set(wrong) & own))}: load()'s own argument, e.g. the CLI's --split / "
                            "--data-seed / --root)" if set(wrong) & own else "")
                         + f"; its options: {sorted(takes)}")
    import typing

    hints = typing.get_type_hints(_loader(name))
    for k, v in options.items():                 # a flag given as text: "False" is a true string
        if hints.get(k) is bool and not isinstance(v, (bool, np.bool_)):
            raise ValueError(f"{name}'s option {k} is a flag: true or false, got {v!r} ({type(v).__name__})"
                             + (f"; on the command line, --data-option {k}=false (JSON: lower case)"
                                if isinstance(v, str) else ""))


def _named(out: Splits | list[Splits], name: str) -> Splits | list[Splits]:
    """Record the dataset's name in each report (checkpoint provenance reads it)."""
    for s in out if isinstance(out, list) else [out]:
        s.report["dataset"] = name
    return out


__all__ = ["load", "from_arrays", "save_arrays", "check_leakage", "PairedDataset", "Splits", "MODALITIES", "KINDS",
           "check_modality", "NAMES", "RATIOS"]
