"""Where a run reads and writes, and what it asks the data loader for.

Notebooks run from the repo root, from ``notebooks/``, from JupyterLab or from a
papermill sweep in any working directory; their relative paths (``out_dir``,
``figures_dir``) must mean the same folder each time. So relative paths here are
resolved against the *repository root*, never the working directory:

>>> resolve("outputs")             # <repo>/outputs, wherever the kernel was started
>>> checkpoint_path("outputs", "video-source", dataset="synthetic", seed=0)

The repository root is ``$DCATKIT_ROOT`` when set, else the folder holding
dcatkit's ``pyproject.toml`` (an editable install, the normal case), else the
working directory (dcatkit installed as a plain package).

``check_params`` is the validation cell of every notebook: it turns a bad
parameter (unknown dataset or modality, lambda < 0, a real dataset without its
folder...) into an error that says what was expected and what to do.
"""
from __future__ import annotations

import hashlib
import json
import os
from numbers import Integral
from pathlib import Path
from typing import Any, Sequence

from .data import NAMES as DATASETS
from .data.dataset import MODALITIES
from .data.splits import FOLD_SPLITS, PLAIN_SPLITS
from .data.synthetic import DEFAULT_N_SAMPLES, REGIMES  # noqa: F401  (DEFAULT_N_SAMPLES: the notebooks' default)
from .losses import check_lam
from .modalities import check_usable_name
from .presets import PRESET_NAMES, get_preset

# The two modalities each dataset records (synthetic simulates all three).
DATASET_MODALITIES = {"synthetic": ("imu", "video", "audio"), "uestc": ("imu", "video"),
                      "cough": ("imu", "audio"), "vggsound": ("video", "audio")}
SPLITS = ("id", "ood", "loso", "lists", "group_kfold")   # "group_kfold" as ("group_kfold", k) / ["group_kfold", k]


def repo_root() -> Path:
    """The dcatkit repository: ``$DCATKIT_ROOT``, else the parent of the package
    folder when it holds dcatkit's ``pyproject.toml``, else the working directory."""
    env = os.environ.get("DCATKIT_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve().parent.parent
    pp = here / "pyproject.toml"
    if pp.is_file() and 'name = "dcatkit"' in pp.read_text():
        return here
    return Path.cwd().resolve()


def resolve(path: str | os.PathLike) -> Path:
    """``path`` as an absolute path: ``~`` expanded; a relative path is taken
    relative to :func:`repo_root`, not to the working directory."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else repo_root() / p


def shown(path: str | os.PathLike) -> str:
    """``path`` for printing: relative to the repo root when inside it (so committed
    notebook outputs do not carry one machine's absolute paths), else absolute."""
    p = resolve(path)
    try:
        return str(p.relative_to(repo_root()))
    except ValueError:
        return str(p)


def _not_empty(name: str, value: Any, e_g: str = "'outputs'") -> None:
    """Refuse an empty (or blank) path: ``resolve("")`` is the repository root itself, so
    ``out_dir=""`` would write results and checkpoints among the repository's files."""
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{name} is an empty string ({value!r}), which would mean the repository root itself: give "
                         f"a path, e.g. {name}={e_g} (relative paths are taken from the repository root)")


def out_path(base: str | os.PathLike, *parts: str, mkdir: bool = True) -> Path:
    """``resolve(base) / parts...``; with ``mkdir`` the folder (the last part when it
    has no suffix, else its parent) is created. An empty ``base`` (``out_dir=""``) is a
    ValueError, not the repository root."""
    _not_empty("out_dir", base)
    p = resolve(base).joinpath(*parts)
    if mkdir:
        (p if not p.suffix else p.parent).mkdir(parents=True, exist_ok=True)
    return p


def settings_key(**settings: Any) -> str:
    """A short stable hash of a run's settings (JSON, sorted keys): 10 hex digits."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def checkpoint_path(out_dir: str | os.PathLike, name: str, **settings: Any) -> Path:
    """``<out_dir>/checkpoints/<name>-<settings_key>.pt``.

    The key hashes everything that makes two checkpoints differ (dataset, split,
    data options, preset, epochs, seed, lambda...), so a notebook finds the model
    another notebook trained with the same settings and never a stale one.
    """
    return out_path(out_dir, "checkpoints") / f"{name}-{settings_key(**settings)}.pt"


def figures_path(figures_dir: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path:
    """Where a notebook saves its PNG figures: ``figures_dir`` (resolved like every
    path here); when it is None, ``$DCATKIT_FIGURES_DIR`` if set, else ``<out_dir>/figures``.
    The notebooks default to None, so a papermill sweep never overwrites the committed
    ``figures/``; only ``make notebooks`` sets ``DCATKIT_FIGURES_DIR=figures`` (an
    environment variable, not ``-p``: an injected-parameters cell must not be committed).
    The folder is created. An empty ``figures_dir`` is a ValueError, not the repository root."""
    _not_empty("figures_dir", figures_dir, "None (<out_dir>/figures) or 'figures'")
    env = os.environ.get("DCATKIT_FIGURES_DIR")
    if figures_dir is not None:
        p = resolve(figures_dir)
    else:
        p = resolve(env) if env else out_path(out_dir, "figures", mkdir=False)
    p.mkdir(parents=True, exist_ok=True)
    return p


def check_split(split: Any, fold: Any = 0) -> dict:
    """Validate a notebook's ``split`` (and, for a cross-validation split, ``fold``).

    ``split``: "id" (stratified random), "ood" (subject-disjoint), "loso" (leave one
    subject out: one fold per subject) or ``("group_kfold", k)`` / ``["group_kfold", k]``
    (k folds over subjects; papermill: ``-y 'split: [group_kfold, 5]'``), or "lists" (UESTC's
    published train / val / test lists). ``fold``: an int >= 0, the fold a cross-validation split
    uses (checked against the number of folds when the data is loaded); it must stay 0 for "id" /
    "ood" / "lists".

    Returns {"split": the argument for ``dcatkit.data.load`` (a tuple for group_kfold),
    "cv": True for loso / group_kfold, "fold": the fold or None, "split_name": a
    file-name-safe name, "id" / "ood" / "lists" unchanged (checkpoint names of these splits stay
    what they were), "loso-fold3", "group_kfold5-fold0"}.
    """
    if isinstance(split, str) and split in PLAIN_SPLITS:
        arg = split
    elif isinstance(split, (tuple, list)) and len(split) == 2 and split[0] == "group_kfold":
        k = split[1]
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"split=['group_kfold', k] needs an int k >= 2 (the number of folds over subjects), "
                             f"got k={k!r}")
        arg = ("group_kfold", k)
    else:
        hint = " (say how many folds: ['group_kfold', 5])" if split == "group_kfold" else ""
        raise ValueError(f"split must be 'id' (in-distribution), 'ood' (subject-disjoint), 'loso' (leave one "
                         f"subject out), ['group_kfold', k] (k folds over subjects) or 'lists' (UESTC's published "
                         f"lists), got {split!r}{hint}")
    cv = (arg[0] if isinstance(arg, tuple) else arg) in FOLD_SPLITS
    if isinstance(fold, bool) or not isinstance(fold, int) or fold < 0:
        raise ValueError(f"fold must be an int >= 0 (which fold of a cross-validation split), got {fold!r}")
    if not cv and fold != 0:
        raise ValueError(f"fold={fold} only applies to a cross-validation split ('loso' or ['group_kfold', k]); "
                         f"split={split!r} has one train/val/test split: leave fold=0")
    if not cv:
        name = arg
    else:
        name = f"{'loso' if arg == 'loso' else f'group_kfold{arg[1]}'}-fold{fold}"
    return {"split": arg, "cv": cv, "fold": fold if cv else None, "split_name": name}


def data_options(dataset: str, *, n_samples: int | None = None, frame_size: int | None = None,
                 n_frames: int | None = None, cache_dir: str | None = None) -> dict:
    """Keyword options for ``dcatkit.data.load`` from the notebooks' flat parameters.

    ``None`` means "the dataset's default" (synthetic: ``DEFAULT_N_SAMPLES`` = 1000
    samples of 8 frames at 32x32; real datasets: the paper's 30 frames at 224x224). ``n_samples`` only
    applies to the synthetic data, ``cache_dir`` (the preprocessing cache) only to
    real datasets.
    """
    for name, value in (("n_samples", n_samples), ("frame_size", frame_size), ("n_frames", n_frames)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral) or value < 1):
            raise ValueError(f"{name} must be None (the dataset's default) or an int >= 1, got {value!r}")
    opts: dict[str, Any] = {}
    if dataset == "synthetic":
        if n_samples is not None:
            opts["n_samples"] = int(n_samples)
        if frame_size is not None:
            opts["frame_size"] = int(frame_size)
        if n_frames is not None:
            opts["n_frames"] = int(n_frames)
        return opts
    if frame_size is not None:
        opts["frame_size"] = int(frame_size)
    if n_frames is not None:
        opts["frames"] = int(n_frames)
    if cache_dir is not None:
        opts["cache_dir"] = str(resolve(cache_dir))
    return opts


def _check_epochs(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be None (the preset's value) or an int >= 1, got {value!r}")


def _check_sizes(n_samples: Any, sizes: Sequence[Any] | None) -> None:
    """n_samples / sizes: positive ints (synthetic: simulated recordings, split 70/15/15;
    below ~60 some of the 8 classes miss val or test, which the metrics warn about)."""
    if sizes is not None and (isinstance(sizes, (str, int)) or len(sizes) == 0):
        raise ValueError(f"sizes must be a non-empty list of sample counts, e.g. [300, 1000], got {sizes!r}")
    for name, values in (("n_samples", [] if n_samples is None else [n_samples]), ("every value of sizes", sizes or [])):
        for n in values:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"{name} must be a positive int (simulated recordings, split 70/15/15), "
                                 f"got {n!r}")
    if sizes is not None and len(set(sizes)) != len(sizes):
        raise ValueError(f"sizes lists a size twice: {list(sizes)}")


def _check_device(device: str) -> None:
    """The device exists on this machine (``runtime.resolve_device``; and a ``cuda:N`` with
    N below the number of GPUs): a notebook stops in its validation cell, not after loading
    the data or training a source."""
    import torch

    from .runtime import resolve_device

    try:
        dev = resolve_device(device)
    except ValueError as e:
        raise ValueError(f"device={device!r}: {e}") from None
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"numbered 0 .. {torch.cuda.device_count() - 1}; use 'auto', 'cuda' or 'cpu'")


def _check_methods(methods: Sequence[str] | None) -> None:
    """Every name must build an objective (``dcatkit.objectives.make_objective``: one name
    or an 'a+b' combination); no name twice."""
    if methods is None:
        return
    from .objectives import make_objective

    if isinstance(methods, str) or len(methods) == 0:
        raise ValueError(f"methods must be a non-empty list of transfer methods, e.g. ['none', 'dcat'], got {methods!r}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods lists a method twice: {list(methods)}")
    for m in methods:
        make_objective(m, d_target=8, d_source=8)        # unknown name -> ValueError listing the known ones


def dataset_modalities(dataset: str, data_root: str | Path | None = None) -> tuple[str, ...]:
    """The modalities ``dataset`` has: the loaders' fixed names, or for ``"arrays"`` the names
    saved in the file ``data_root`` (``data.save_arrays``)."""
    if dataset == "arrays":
        from .data.arrays import saved_modalities

        if data_root is None:
            raise ValueError("dataset='arrays' needs data_root, the .npz file written by dcatkit.data.save_arrays")
        return tuple(saved_modalities(resolve(data_root)))
    return DATASET_MODALITIES[dataset]


def check_params(*, dataset: str, data_root: str | None = None, split: str = "id",
                 modalities: Sequence[str] = (), source: str | None = None, target: str | None = None,
                 lam: float | None = None, lams: Sequence[float] | None = None,
                 preset: str = "synthetic", epochs: int | None = None, source_epochs: int | None = None,
                 seed: int = 0, seeds: Sequence[int] | None = None, device: str = "auto",
                 n_samples: int | None = None, sizes: Sequence[int] | None = None,
                 methods: Sequence[str] | None = None, regimes: Sequence[str] | None = None,
                 resume: bool = False, redo: bool = False, fold: int = 0) -> dict:
    """Validate a notebook's parameters; return what is derived from them.

    ``split`` / ``fold``: see :func:`check_split` ("id", "ood", "loso" or
    ``["group_kfold", k]``; ``fold`` picks the fold of a cross-validation split).

    ``n_samples`` / ``sizes`` (synthetic only): simulated recordings, one size or a
    list (positive ints); ``methods``: transfer objectives by name
    (``dcatkit.objectives``, e.g. ``"none"``, ``"dcat"``, ``"dcat+kd"``);
    ``regimes`` (synthetic only): simulator regimes (``"headroom"``, ``"ambiguous"``);
    ``resume`` (continue a killed run from its checkpoint's ``.state``) and ``redo``
    (train finished runs again instead of reading them back): True or False.

    Returns {"data_root": absolute Path or None, "modalities": tuple the run loads,
    plus ``check_split``'s "split", "cv", "fold" and "split_name"}.
    Raises ValueError (FileNotFoundError for a data_root that does not exist)
    saying what was expected and what to do.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {DATASETS}")
    split_info = check_split(split, fold)
    if split_info["split"] == "lists" and dataset != "uestc":
        from .data.splits import NO_LISTS

        raise ValueError(NO_LISTS.format(what=f"dataset {dataset!r}"))
    _not_empty("data_root", data_root, f"'~/data/{dataset}'")
    root = None
    if dataset == "synthetic":
        if data_root is not None:
            raise ValueError("dataset='synthetic' is simulated and takes no data_root: set data_root=None, "
                             "or pick a real dataset ('uestc', 'cough', 'vggsound')")
    elif dataset == "arrays":        # your own sensors: one file written by data.save_arrays, your names
        if data_root is None:
            raise ValueError("dataset='arrays' needs data_root, the .npz file written by dcatkit.data.save_arrays; "
                             "e.g. -p data_root ~/data/wrist.npz")
        root = resolve(data_root)
        if not root.is_file():
            raise FileNotFoundError(f"data_root {str(data_root)!r} -> {root} is not a file: point it at the .npz "
                                    "written by dcatkit.data.save_arrays (a relative path is taken from the "
                                    "repository root)")
        from .data.arrays import saved_modalities

        saved = saved_modalities(root)
    else:
        if data_root is None:
            raise ValueError(f"dataset={dataset!r} needs data_root, the folder holding the dataset as "
                             f"distributed (see dcatkit.data.{dataset}.LAYOUT); e.g. -p data_root ~/data/{dataset}")
        root = resolve(data_root)
        if not root.is_dir():
            raise FileNotFoundError(f"data_root {str(data_root)!r} -> {root} is not a folder: point it at the "
                                    f"{dataset} dataset as distributed")
    available = tuple(saved) if dataset == "arrays" else DATASET_MODALITIES[dataset]
    wanted = [m for m in (*modalities, source, target) if m is not None]
    for m in wanted:
        if dataset != "arrays" and m not in MODALITIES:
            raise ValueError(f"unknown modality {m!r}: expected one of {MODALITIES}")
        if m not in available:
            raise ValueError(f"dataset {dataset!r} has modalities {available}, not {m!r}")
        try:                     # a modality's name is part of checkpoint and results file names; an
            check_usable_name(m)  # arrays file saved before save_arrays checked names may hold another
        except ValueError as e:
            raise ValueError(f"{e} (it becomes part of checkpoint and results file names, source-<name>-...pt): "
                             "save the arrays under another name (dcatkit.data.save_arrays)") from None
    if source is not None and source == target:
        raise ValueError(f"source and target are both {source!r}: D-CAT transfers between two modalities")
    for name, values, e_g in (("lams", lams, "[0.01, 0.1, 1.0]"), ("seeds", seeds, "[0, 1, 2]")):
        if values is not None and (isinstance(values, str) or not hasattr(values, "__len__")):
            raise ValueError(f"{name} must be a list, e.g. {e_g}, got {values!r}: for one value write [{values!r}]")
    if lam is not None:
        check_lam(lam, "lam")
    for x in lams or ():
        check_lam(x, "every value of lams")
    if lams is not None and len(lams) == 0:
        raise ValueError("lams is empty: give at least one lambda, e.g. [0.01, 0.1, 1.0, 10.0]")
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}: expected one of {PRESET_NAMES}")
    for m in wanted:
        get_preset(preset, m, dataset, kind=saved.get(m) if dataset == "arrays" else None)   # Table I has a row?
    _check_epochs("epochs", epochs)
    _check_epochs("source_epochs", source_epochs)
    for s in [seed, *(seeds or ())]:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seeds must be ints >= 0, got {s!r}")
    if seeds is not None and len(seeds) == 0:
        raise ValueError("seeds is empty: give at least one seed, e.g. [0, 1, 2]")
    if not (device == "auto" or device == "cpu" or str(device).startswith("cuda")):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    _check_device(device)
    _check_sizes(n_samples, sizes)
    _check_methods(methods)
    for name, value in (("resume", resume), ("redo", redo)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__}); with papermill "
                             f"pass -p {name} True")
    if regimes is not None:
        if dataset != "synthetic":
            raise ValueError(f"regimes are settings of the simulator (dataset='synthetic'), not of {dataset!r}: "
                             "set regimes=None or dataset='synthetic'")
        if isinstance(regimes, str) or len(regimes) == 0:
            raise ValueError(f"regimes must be a non-empty list of names from {REGIMES}, got {regimes!r}")
        for r in regimes:
            if r not in REGIMES:
                raise ValueError(f"unknown regime {r!r}: expected one of {REGIMES} ('headroom' = the default "
                                 "simulator, 'ambiguous' = the pre-06d5f82 one, not a control)")
    return {"data_root": root, "modalities": tuple(dict.fromkeys(wanted)), **split_info}
