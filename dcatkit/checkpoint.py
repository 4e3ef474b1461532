"""Checkpoints and resumable training state.

``save_checkpoint`` / ``load_checkpoint`` (a trained model: {"state_dict", "config",
"meta"}, written atomically), ``check_source_fits`` (may a source checkpoint teach
this target run?), and a run's resumable state: where it lives
(``state_path_for``: ``<checkpoint>.state``), the random streams it carries
(``_rng_state`` / ``_set_rng_state``), and writing / reading it (``_save_state`` /
``_load_state``, checked against the run's settings). The training loop
(``dcatkit.train``) saves it after every epoch and resumes from it.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import provenance
from .files import write_atomically
from .encoders import _UNSAFE_GLOBAL, torch_load_problem
from .model import Classifier, model_from_config


def _loadable(x: Any) -> Any:
    """``x`` with numpy scalars and arrays as Python numbers and lists, paths as str (dicts,
    lists, tuples walked; tensors kept): ``torch.load(weights_only=True)`` reads no others, so a
    learning rate from ``np.logspace`` made a state or checkpoint that could not be read back."""
    if isinstance(x, dict):                      # unchanged (a state_dict keeps its _metadata) unless needed
        new = {k: _loadable(v) for k, v in x.items()}
        return x if all(new[k] is v for k, v in x.items()) else new
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        new = [_loadable(v) for v in x]
        return x if all(a is b for a, b in zip(new, x)) else type(x)(new)
    if isinstance(x, (np.generic, np.ndarray)):
        return x.tolist()
    return str(x) if isinstance(x, os.PathLike) else x


def _atomic_save(payload: Any, path: Path) -> Path:
    """``torch.save`` (of :func:`_loadable` values) to a temp file next to ``path``, then
    ``os.replace``: a reader (or a run killed mid-save) sees the old file or the new one,
    never half of one."""
    payload = _loadable(payload)
    return write_atomically(path, lambda f: torch.save(payload, f), binary=True)


def check_writable(path: str | Path, what: str = "checkpoint", keep: tuple = ()) -> Path:
    """Refuse, before any training, a ``path`` a run could not write at its end or must not
    overwrite: an existing folder, a path under a file, or one of ``keep`` (e.g. the frozen
    source's own checkpoint, which a target written there would replace)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} path {path} is a folder; give a file path in it, e.g. {path / 'model.pt'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} path {path}: {parent} is a file, not a folder; choose another path")
            if not os.access(parent, os.W_OK | os.X_OK):    # the temp file and the rename are made there
                raise ValueError(f"{what} path {path}: the folder {parent} is not writable by this user; choose "
                                 "another path (a run would train and then fail to save)")
            break
    for k in keep:
        if k is not None and Path(k).exists() and path.exists() and os.path.samefile(path, k):
            raise ValueError(f"{what} path {path} is the frozen source's checkpoint {k}: writing the target there "
                             "would replace the source; choose another path")
    return path


def save_checkpoint(path: str | Path, model: Classifier, meta: dict) -> Path:
    """Write {"state_dict", "config", "meta"} atomically (temp file + os.replace),
    so an interrupted save never leaves a half-written checkpoint behind."""
    return _atomic_save({"state_dict": model.state_dict(), "config": model.config, "meta": meta}, Path(path))


def load_checkpoint(path: str | Path, map_location="cpu") -> tuple[Classifier, dict]:
    """Rebuild the model a checkpoint was saved from. Returns (model, meta); the model
    carries ``meta["provenance"]`` (None for older checkpoints) as ``model.provenance``."""
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a folder, not a checkpoint file: name the .pt file in it "
                                f"(e.g. {path / 'video.pt'})")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise                                          # its message names the path
    except Exception as e:
        # torch words both cases "Weights only load failed"; the refused global tells them apart
        why = torch_load_problem(e) + (
            ", beyond tensors and plain values (a numpy learning rate left numpy numbers in older checkpoints):"
            " if you trust it, torch.load(path, weights_only=False) reads it" if _UNSAFE_GLOBAL.search(str(e))
            else ": an interrupted copy? copy it again or retrain")
        raise ValueError(f"{path} is not a readable dcatkit checkpoint: {why}") from e
    if not isinstance(payload, dict) or not {"state_dict", "config", "meta"} <= set(payload) \
            or not isinstance(payload["meta"], dict):
        raise ValueError(f"{path} is not a dcatkit checkpoint: expected keys state_dict, config, meta (a dict)")
    try:
        model = model_from_config(payload["config"], pretrained=False)   # the state dict holds every weight
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: its config and weights do not make a model ({type(e).__name__}: {e})") from e
    model.provenance = payload["meta"].get("provenance")
    return model, payload["meta"]


def check_source_fits(source_meta: dict, *, classes: list[str], target_modality: str,
                      available_modalities: tuple[str, ...], num_classes: int | None = None,
                      who: str = "the source") -> None:
    """A source (its checkpoint's meta, or a model's) must be of a modality that the data has
    and that is not the target's, and have the target run's classes (``provenance.check_classes``):
    the names its meta records (same order; None or absent: not recorded) and, when given,
    ``num_classes`` (its outputs). ``who`` names it in the messages (``load_source``: with the
    file's path for a checkpoint). Raises ``provenance.SourceMismatch`` (a ValueError)."""
    src_mod = source_meta.get("modality")
    if src_mod == target_modality:
        raise provenance.SourceMismatch(f"source and target are both {src_mod!r}: D-CAT transfers between "
                                        "two modalities")
    if src_mod not in available_modalities:
        raise provenance.SourceMismatch(f"{who} is a {src_mod!r} model but the data has only "
                                        f"{tuple(available_modalities)}: use a source of one of the data's modalities")
    provenance.check_classes(classes, n=num_classes, names=source_meta.get("classes"),
                             who=f"{who} ({src_mod!r} model)")


# ------------------------------------------------------------------ resumable training state

STATE_VERSION = 1


def state_path_for(checkpoint: str | Path | None, state_path: str | Path | None = None) -> Path | None:
    """Where a run keeps its resumable state: ``state_path``, else ``<checkpoint>.state``
    (None when neither is given: such a run cannot be resumed)."""
    if state_path is not None:
        return Path(state_path)
    return None if checkpoint is None else Path(f"{checkpoint}.state")


def _rng_state(loader_generator: torch.Generator) -> dict:
    """This process's random streams: Python, NumPy, torch (CPU and every CUDA device)
    and the DataLoader's own generator (the shuffle order and worker seeds)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": (name, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "loader": loader_generator.get_state()}


def _set_rng_state(rng: dict, loader_generator: torch.Generator) -> None:
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader_generator.set_state(rng["loader"])


def _warn_other_code(state: dict, path: Path) -> None:
    """A warning when the state at ``path`` was saved by other training code than this process's
    (``provenance.other_code`` of its ``code``, a ``provenance.code_version``): the resumed run's
    first epochs are that code's and the rest this one's, and its checkpoint records this one
    only. A state without ``code`` (saved before states recorded it) says nothing."""
    saved, now = state.get("code"), provenance.code_version()
    if isinstance(saved, dict) and provenance.other_code(saved, now):
        from .warn import warn

        warn(f"{path} was saved by other code ({provenance.describe_code(saved)}; this is "
             f"{provenance.describe_code(now)}): the resumed run trains its first {state.get('epoch')} epoch(s) as "
             "that code did and the rest as this code does, and its checkpoint names this code only. To train "
             "it with one code, delete the state or pass resume=False (CLI: drop --resume)")


def _save_state(path: Path, state: dict) -> None:
    """Write a run's resumable state (see ``_train_loop``) atomically."""
    _atomic_save(state, path)


def _flat(d: Any, prefix: str = "") -> dict:
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


# Fields of a run's key (train._run_key) added after states were first saved: a state without them
# resumes when everything it did record agrees (2026-12-06: the labels, the loader's settings,
# whether a transfer run read its source from the cache, the validation labels, the source's
# settings beyond its weights; later, the identity of the frozen source a transfer run records).
LATER_KEY_FIELDS = ("labels_sha256", "preprocessing", "run.source_cache", "val_labels_sha256", "run.source_settings",
                    "meta.source_identity")
# What a split's report says about how it was obtained, not what it holds (the samples are in the key's
# ids and labels hashes): the load that writes a split file and the loads that read it back differ only
# here, so these are left out of the comparison and a run started on a new split resumes.
_IGNORED = tuple(f"data.split.{k}" for k in ("reloaded", "absent_from_data", "split_file"))


class UnusableState(ValueError):
    """A saved training state that cannot resume this run (unreadable, another format version, or
    a run with other settings): nothing has trained yet, and ``resume=False`` starts over."""


def _load_state(path: Path, key: str) -> dict:
    """The state saved at ``path`` by a run with the settings ``key`` (JSON); a truncated
    or foreign file, or one of a run with other settings, is an ``UnusableState`` naming it."""
    again = "delete it, or pass resume=False (CLI: drop --resume) to start the run over (the state is then replaced)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise                                          # its message names the path
    except Exception as e:
        # torch words both cases "Weights only load failed"; the refused global tells them apart
        why = torch_load_problem(e) + (
            ", beyond tensors and plain values (a numpy learning rate left numpy numbers in the states of older"
            " dcatkits). If you trust it, convert it once with torch.save(dcatkit.checkpoint._loadable("
            "torch.load(path, weights_only=False)), path) and resume; or" if _UNSAFE_GLOBAL.search(str(e)) else ";")
        raise UnusableState(f"{path} is not a readable dcatkit training state: {why} {again}") from e
    need = {"version", "key", "epoch", "model", "extra_params", "optimizer", "scaler", "rng", "best",
            "best_state", "history"}
    if not isinstance(state, dict) or not need <= set(state) or state["version"] != STATE_VERSION:
        found = (f"version {state.get('version')!r}" + (f", without {sorted(need - set(state))}" if need - set(state)
                                                         else "") if isinstance(state, dict) else f"a {type(state).__name__}")
        raise UnusableState(f"{path} is not a dcatkit training state of version {STATE_VERSION} "
                            f"(expected the keys {sorted(need)}; found {found}); {again}")
    if state["key"] != key:
        saved, now = ({k: v for k, v in _flat(json.loads(x)).items() if k not in _IGNORED} for x in (state["key"], key))
        if saved == now:
            return state
        later = {k for k in LATER_KEY_FIELDS if k not in saved}   # fields the saving dcatkit did not record
        if later and all(saved.get(k) == now.get(k) for k in set(saved) | set(now) if k not in later):
            print(f"dcatkit: {path} was saved by an earlier dcatkit, whose state did not record "
                  f"{sorted(later)}: it is resumed on the settings it did record (the same as this run's)")
            return state
        diff = [f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(saved) | set(now))
                if saved.get(k) != now.get(k) and k not in later] or ["recorded by another dcatkit version"]
        raise UnusableState(f"{path} holds the state of a run with other settings ({'; '.join(diff)}): resume "
                            f"it with the settings it was started with, or {again}")
    return state
