"""Take a trained model out of the training code: export it, and predict on raw data.

A D-CAT target needs only its own sensor at inference (paper Sec. IV), so one
classifier is what ships. Two pieces:

- :func:`export` writes a classifier (a ``Run``, a ``Classifier`` or a checkpoint
  path) as an ONNX file (``.onnx``, run by onnxruntime or any ONNX runtime) or a
  ``torch.export`` program (``.pt2``), both with a dynamic batch size, and checks the
  written file against the eager model on random and (given ``check_inputs``) real
  inputs, at two batch sizes, before it is put in place.
- :class:`Predictor` loads a checkpoint (``.pt``), an ``.onnx`` or a ``.pt2`` file
  and predicts class names and probabilities from *raw* samples.

The exported graph takes *raw* input and is right on its own: input ``x``
(B, *input_shape), by the modality's kind (``dcatkit.modalities``) -- timeseries
(B, C, L) raw, min-max scaled *inside the graph* with the stored per-channel bounds
(the same arithmetic as ``dcatkit.data.preprocess.minmax_apply``), video (B, T, 3, H, W)
uint8 RGB (0-255; the frame encoder scales by 1/255 in the graph), or float32 RGB in [0, 1] for a
file exported with ``input_dtype="float32"`` (a model trained on float frames, which
``from_arrays`` accepts), audio mono waveform (B, N) float in [-1, 1], features (B, T, F)
-- -> outputs ``logits``
(B, K) and ``probabilities`` (B, K) = softmax(logits). So onnxruntime alone (a phone,
a C++ service) fed raw windows gives the Predictor's answer; the bounds are also kept
in the metadata, for reference only. (Files of format 1, written before, took scaled
input; the Predictor still scales for them.)

Loading a ``.pt2`` runs ``torch.export.load``, whose archive reader unpickles some
entries (weights marked ``use_pickle``, opaque constants): a crafted file can run
code. ``Predictor.load`` therefore refuses a ``.pt2`` unless the caller says the file
is trusted (``trusted=True``, e.g. one you exported yourself). ``.onnx`` files
(protobuf) and dcatkit checkpoints (``torch.load(weights_only=True)``) need no flag.

Each file carries what a Predictor needs (:data:`METADATA_KEYS`): classes, the
modality's name and kind, input shape and dtype, the normalisation, sample rates
and the model config -- ONNX as ``metadata_props`` (each value JSON text), ``.pt2`` as the extra
file ``dcatkit.json`` inside the archive. So an exported file is self-contained.

ONNX goes through ``torch.onnx.export(..., dynamo=True)``, the torch.export-based
exporter (onnxscript): it is the default since torch 2.9, the TorchScript one is
deprecated there and warns; the .pt2 and the .onnx file come from the same
``torch.export`` capture. onnx, onnxscript and onnxruntime are optional:
``pip install dcatkit[deploy]``. ONNX export needs torch >= 2.7 (:data:`ONNX_MIN_TORCH`).
"""
from __future__ import annotations

import copy
import importlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .checkpoint import check_writable
from .data.dataset import check_waveform_peak, pcm_scaling
from .data.preprocess import minmax_apply
from .files import left_temp_files, temp_beside
from .modalities import NORMALIZED_KINDS, check_kind, default_kind
from .model import Classifier

FORMAT_VERSION = 2                  # 2: the graph scales raw input itself (1: the Predictor did)
INPUT_NAME = "x"
OUTPUT_NAMES = ("logits", "probabilities")
PT2_EXTRA = "dcatkit.json"          # the metadata file inside a .pt2 archive
METADATA_KEYS = ("dcatkit_format", "classes", "modality", "kind", "input_shape", "input_dtype",
                 "normalization", "sample_rates", "config", "input")   # files without "kind" predate it: by name
RAW_INPUT = "raw"                   # info["input"]: the graph takes raw samples (format >= 2)
# The graph's default input dtype by *kind* of modality: the loaders' video frames are uint8.
INPUT_DTYPES = {"video": "uint8"}   # others: float32
# The dtypes a graph may take, by kind: video frames uint8 (0-255) or float32 in [0, 1] (both
# read by the frame encoder, which scales only uint8 by 1/255); everything else float32.
ALLOWED_INPUT_DTYPES = {"video": ("uint8", "float32")}
REQUIRED_KEYS = ("dcatkit_format", "classes", "modality", "input_shape", "input_dtype", "normalization")
_NORM_KEYS = ("normalization", "normalisation", "imu_minmax")
_AUTO = "auto"


def _require(module: str):
    """Import an optional dependency or say how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"this needs the optional package {module!r}, which is not installed "
                          f"({e}). Install the deploy extra: pip install 'dcatkit[deploy]' "
                          "(onnx, onnxscript, onnxruntime)") from e


# torch.onnx.export(dynamo=True) with today's onnxscript (0.7) fails on BatchNorm in torch 2.5 and
# 2.6 ("Error when translating node _native_batch_norm_legit_no_training"); 2.7.1, 2.8, 2.11 and
# 2.14.1 export every dcatkit model the tests build. .pt2 export works from torch 2.5.
ONNX_MIN_TORCH = "2.7"


def _check_onnx_torch(version=None) -> None:
    """Refuse ONNX export on a torch whose exporter is known to fail, before any work."""
    version = torch.torch_version.TorchVersion(version if version is not None else torch.__version__)
    if version < ONNX_MIN_TORCH:
        raise RuntimeError(f"ONNX export needs torch >= {ONNX_MIN_TORCH}, found torch {version}: its exporter "
                           "fails on BatchNorm layers there. Upgrade torch (pip install 'dcatkit[deploy]' asks "
                           "for it), or export a .pt2 file instead, which works with this torch")


# ------------------------------------------------------------------ what a model needs at inference


class _Inference(nn.Module):
    """The exported graph: raw x (B, *input_shape) -> (logits (B, K), softmax probabilities (B, K)).

    ``normalization`` ({"min": [C], "max": [C]} or None): timeseries windows (B, C, L) are
    scaled in the graph exactly as ``minmax_apply`` scales them in numpy:
    2 (x - min) / (max - min) - 1 per channel, in float32, and 0 for a constant channel
    (max <= min)."""

    def __init__(self, model: Classifier, normalization: dict | None = None):
        super().__init__()
        self.model = model
        self.scaled = normalization is not None
        if self.scaled:
            lo, hi = (np.asarray(normalization[k], np.float32) for k in ("min", "max"))
            span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
            self.register_buffer("lo", torch.from_numpy(lo).view(1, -1, 1))            # (1, C, 1)
            self.register_buffer("span", torch.from_numpy(span).view(1, -1, 1))
            self.register_buffer("live", torch.from_numpy(hi > lo).view(1, -1, 1))    # False: constant channel

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scaled:
            x = x.float()                                                              # (B, C, L)
            x = torch.where(self.live, 2.0 * (x - self.lo) / self.span - 1.0, 0.0)
        logits = self.model(x).logits
        return logits, torch.softmax(logits.float(), dim=-1)


def _canonical_normalization(value: Any, modality: str, n_channels: int | None) -> dict | None:
    """{"method": "minmax", "min": [C floats], "max": [C floats]} or None, from what the
    pipeline stores (``splits.normalization[modality]`` = {"method", "min", "max", "from"},
    or for imu ``Splits.report["imu_minmax"]`` = {"min", "max", "from"}), a dict of such keyed
    by modality (``splits.normalization``), a dataset / Splits carrying it, or None."""
    if value is None:
        return None
    if not isinstance(value, dict):                      # a PairedDataset or Splits
        report = getattr(value, "report", None) or {}
        found = (getattr(value, "normalization", None) or report.get("normalization") or {}).get(modality)
        if found is None and modality == "imu":
            found = getattr(value, "imu_minmax", None) or report.get("imu_minmax")
        if found is None:
            raise ValueError(f"normalization: expected {{'min': [...], 'max': [...]}} (e.g. "
                             f"splits.normalization[{modality!r}]) or None, got a {type(value).__name__} "
                             f"that records no scaling of {modality!r}")
        value = found
    if "min" not in value and modality in value:         # keyed by modality
        return _canonical_normalization(value[modality], modality, n_channels)
    if value.get("method", "minmax") != "minmax" or "min" not in value or "max" not in value:
        raise ValueError(f"normalization: expected per-channel min-max bounds {{'min': [...], 'max': [...]}}, "
                         f"got keys {sorted(value)}")
    lo, hi = (np.asarray(value[k], dtype=np.float32).reshape(-1) for k in ("min", "max"))
    if lo.shape != hi.shape or (n_channels is not None and len(lo) != n_channels):
        raise ValueError(f"normalization has {len(lo)} min and {len(hi)} max values but the {modality} model "
                         f"has {n_channels} channels: expected one bound per channel")
    out = {"method": "minmax", "min": lo.tolist(), "max": hi.tolist()}
    if "from" in value:
        out["from"] = value["from"]
    return out


def _recorded(records: Sequence[dict | None], keys: Sequence[str]) -> tuple[bool, Any]:
    """(found, value) of the first key present in the first record that has one."""
    for rec in records:
        if isinstance(rec, dict):
            for k in keys:
                if k in rec:
                    return True, rec[k]
    return False, None


def _input_dtype(kind: str, modality: str, given: str | None, records: Sequence[dict | None]) -> str:
    """The graph's input dtype: ``given`` (export's ``input_dtype=``), else the training data's
    as a record says (``input_dtype``: a video model trained on float frames takes float32),
    else the kind's default (video uint8, others float32)."""
    allowed = ALLOWED_INPUT_DTYPES.get(kind, ("float32",))
    if given is None:
        found, recorded = _recorded(records, ("input_dtype",))
        if found and kind == "video" and recorded is not None:      # floats of any width: float32 frames
            return "float32" if np.dtype(recorded).kind == "f" else "uint8"
        return INPUT_DTYPES.get(kind, "float32")
    try:
        name = np.dtype(given).name
    except TypeError:
        name = str(given)
    if name not in allowed:
        raise ValueError(f"input_dtype={given!r}: a {kind} model ({modality!r}) takes "
                         + (" or ".join(repr(a) for a in allowed)) +
                         (" (uint8 RGB 0-255, or float32 RGB in [0, 1] for a model trained on float frames)"
                          if kind == "video" else ""))
    return name


def _resolve(source, classes: Sequence[str] | None, normalization,
             input_dtype: str | None = None) -> tuple[Classifier, dict, Path | None]:
    """(model, info, checkpoint path) for a Run, a Classifier or a checkpoint path; ``info``
    holds the METADATA_KEYS, read from the checkpoint meta / provenance unless given."""
    from .experiment import Run
    from .checkpoint import load_checkpoint

    meta: dict = {}
    path = None
    later: list = []                             # read only where the records before them say nothing
    if isinstance(source, Run):                  # its model and meta, then what its checkpoint (if any) records:
        model = source.model                     # the file may since hold another run written to the same path
        meta = dict(source.meta or {})
        if source.checkpoint is not None and Path(source.checkpoint).is_file():
            saved = load_checkpoint(source.checkpoint)[1]
            later = [saved, saved.get("provenance")]
    elif isinstance(source, Classifier):
        model = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        model, meta = load_checkpoint(path)
    else:
        raise TypeError(f"expected a Run, a Classifier or a checkpoint path, got {type(source).__name__}")
    config = dict(model.config)
    if not config:
        raise ValueError("the model has no config (build it with dcatkit.model.build_model): its modality "
                         "and input shape are unknown")
    modality, shape = config["modality"], tuple(config["input_shape"])
    kind = config.get("kind") or default_kind(modality)
    if kind is None:
        raise ValueError(f"the {modality!r} model's config records no kind (timeseries, video, audio, features) "
                         "and its name has no default one: rebuild it with dcatkit.model.build_model")
    check_kind(kind)
    records = [meta, meta.get("provenance"), getattr(model, "provenance", None), *later]

    found, recorded = _recorded(records, ("classes",))
    recorded = list(recorded) if found and recorded else None
    if classes is not None:
        classes = [str(c) for c in classes]
        if recorded is not None and recorded != classes:
            raise ValueError(f"classes={classes} differ from the classes the model was trained on {recorded}")
    classes = classes if classes is not None else recorded
    if classes is None:
        raise ValueError(f"the {modality} model does not record its class names (a bare Classifier or an "
                         f"old checkpoint): pass classes=[...] ({config['num_classes']} names, in label order)")
    if len(classes) != config["num_classes"]:
        raise ValueError(f"{len(classes)} class names for a model with {config['num_classes']} outputs")

    scaled = kind in NORMALIZED_KINDS                    # the pipeline min-max scales timeseries
    n_channels = shape[0] if scaled and len(shape) == 2 else None
    hint = (f"normalization=splits.normalization[{modality!r}]" if modality != "imu" else
            "normalization=splits.report['imu_minmax'] (= splits.normalization['imu'])")
    if isinstance(normalization, str) and normalization == _AUTO:
        found, value = _recorded(records, _NORM_KEYS)
        if not found and scaled:
            raise ValueError(f"the {modality} model ({kind}) does not record the min-max scaling of its training "
                             f"data (a bare Classifier or an old checkpoint): pass {hint} (the splits it was "
                             "trained on), or normalization=None if it saw unscaled data")
        norm = _canonical_normalization(value, modality, n_channels)
        if norm is None and scaled:
            warnings.warn(f"the {modality} model ({kind}) records no min-max scaling (trained on data that was "
                          "not scaled by dcatkit.data): raw inputs are passed to it as they are. If its data "
                          f"was scaled, pass {hint}", stacklevel=3)
    else:
        norm = _canonical_normalization(normalization, modality, n_channels)
        found, value = _recorded(records, _NORM_KEYS)
        kept = _canonical_normalization(value, modality, n_channels) if found else None
        if kept is not None and (norm is None or not all(np.allclose(kept[k], norm[k], rtol=1e-6, atol=0)
                                                         for k in ("min", "max"))):   # its bounds, as with classes
            raise ValueError(f"normalization={normalization!r} differs from the scaling the {modality} model "
                             f"recorded from its training data ({kept}); leave normalization out to use the "
                             "recorded one")
        if kept is not None and "from" in kept:          # the recorded bounds, given again: where they came from
            norm.setdefault("from", kept["from"])        # stays in the file as when they are left out
    if norm is not None and n_channels is None:
        raise ValueError(f"min-max normalization is per channel of timeseries windows (C, L); the {modality} "
                         f"model is of kind {kind!r} and takes {shape}")

    _, rates = _recorded(records, ("sample_rates",))
    info = {"dcatkit_format": FORMAT_VERSION, "classes": classes, "modality": modality, "kind": kind,
            "input_shape": list(shape), "input_dtype": _input_dtype(kind, modality, input_dtype, records),
            "normalization": norm, "sample_rates": dict(rates or {}), "config": config, "input": RAW_INPUT}
    return model, json.loads(json.dumps(info)), path


# ------------------------------------------------------------------ input checks


def _as_batch(x, info: dict, *, eager: bool = False) -> tuple[np.ndarray, bool]:
    """Raw input -> (batch (B, *input_shape) of the model's dtype, was_single_sample).
    One sample has the model's ``input_shape``; a batch has one more leading axis.

    eager: the runner is the eager model (a checkpoint / Run / Classifier), whose frame encoder
    reads uint8 frames (scaled by 1/255) and float frames in [0, 1] alike, so video frames of
    either dtype go to it as they are; an exported graph takes its one ``input_dtype``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:                # numpy has no bfloat16; float32 holds every value exactly
            x = x.float()
        x = x.numpy()
    x = np.asarray(x)
    shape, mod, kind = tuple(info["input_shape"]), info["modality"], info.get("kind")
    waveform = kind == "audio" and len(shape) == 1
    if x.shape == shape:
        x, single = x[None], True
    elif x.ndim == len(shape) + 1 and x.shape[1:] == shape:
        single = False
    else:
        dims = ", ".join(map(str, shape))
        hint = ""
        if waveform and x.ndim == 2 and x.shape[0] == shape[0] and 1 <= x.shape[1] <= 8:
            hint = (f": the model takes mono audio, and ({x.shape[0]}, {x.shape[1]}) looks like (samples, "
                    "channels); mix the channels first, x.mean(axis=1), as dcatkit.data's loaders do")
        elif waveform and x.ndim == 2 and 1 <= x.shape[0] <= 8:
            hint = (f": the model takes mono audio of {shape[0]} samples; if this is one clip of {x.shape[0]} "
                    "channels (channels, samples), as torchaudio.load gives it, mix them first, x.mean(0) (of "
                    f"the model's length, ({x.shape[0]}, {shape[0]}) would be read as a batch of {x.shape[0]} clips)")
        raise ValueError(f"the {mod} model takes one sample of shape {shape} or a batch (B, {dims}), "
                         f"got an array of shape {x.shape}{hint}")
    if len(x) == 0:
        raise ValueError(f"empty batch: got shape {x.shape}, expected at least one {mod} sample")
    want = np.dtype(info["input_dtype"])
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"the {mod} model takes real numbers ({want}), got dtype {x.dtype}")
    if kind == "video" or want == np.uint8:
        return _frames(x, info, eager), single
    if waveform and np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"the {mod} model takes a float waveform in [-1, 1] (as dcatkit.data reads audio files), "
                         f"got integer samples ({x.dtype}, range [{x.min()}, {x.max()}]): PCM audio; pass "
                         f"{pcm_scaling(x.dtype, x.min(), x.max())}")
    if want.kind == "f" and np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(f"the {mod} input has {int((~np.isfinite(x)).sum())} NaN or infinite values")
    with np.errstate(over="ignore"):                          # an overflow is reported below, not warned
        y = x.astype(want, copy=False)
    if want.kind == "f" and not np.isfinite(y).all():       # finite, yet beyond the model's dtype
        raise ValueError(f"the {mod} input has {int((~np.isfinite(y)).sum())} values beyond {want}'s range "
                         f"(largest magnitude {float(np.abs(x).max()):.3g}; {want} holds up to "
                         f"{float(np.finfo(want).max):.3g}): scale the input as the model was trained on it")
    x = y
    if waveform:
        check_waveform_peak(mod, kind, x, len(shape), what=f"the {mod} model's input")
    return x, single


def _frames(x: np.ndarray, info: dict, eager: bool) -> np.ndarray:
    """Video frames (B, T, 3, H, W) in the dtype the runner takes: integers must be RGB values
    0-255 (-> uint8; a float32 graph gets them / 255, as the frame encoder scales uint8 frames),
    floats RGB in [0, 1] (what the frame encoder reads them as), refused by a uint8 graph."""
    mod, want = info["modality"], info["input_dtype"]
    lo, hi = x.min(), x.max()
    if np.issubdtype(x.dtype, np.integer):
        if lo < 0 or hi > 255:
            raise ValueError(f"{mod} frames given as integers must be uint8 RGB values in [0, 255], "
                             f"got dtype {x.dtype} with range [{lo}, {hi}]")
        x = x.astype(np.uint8, copy=False)
        if want == "float32" and not eager:          # float32(v) / 255: the frame encoder's own arithmetic
            return x.astype(np.float32) / np.float32(255.0)
        return x
    if not np.isfinite(x).all():
        raise ValueError(f"the {mod} input has {int((~np.isfinite(x)).sum())} NaN or infinite values")
    # negative values are no RGB values: frames normalised already (the frame encoder normalises them itself)
    normalised = ("negative values, so not RGB values: frames already normalised (to [-1, 1], or by a mean and "
                  "std)? The model's frame encoder applies the ImageNet mean and std itself: pass the frames from "
                  "before that normalisation, ")
    if want == "uint8" and not eager:
        if lo < 0:
            how = normalised + "as uint8 RGB values 0-255"
        elif 1 < hi <= 255:
            how = "they look like 0-255 values: pass np.round(x).astype(np.uint8)"
        else:
            how = ("float frames in [0, 1] (what a model trained on float frames saw) need a graph that takes "
                   "them: export the model with input_dtype='float32'; or pass np.round(x * 255).astype(np.uint8) "
                   "(logits then differ by that rounding)")
        raise ValueError(f"this {mod} graph takes uint8 frames (RGB values 0-255; input_dtype 'uint8'), got "
                         f"{x.dtype} frames in [{lo:g}, {hi:g}]: {how}")
    if lo < 0 or hi > 1:
        how = (normalised + "uint8 RGB values 0-255 or float RGB in [0, 1]" if lo < 0 else
               "pass uint8 frames (0-255) or divide by 255 first")
        raise ValueError(f"the {mod} model reads float frames as RGB values in [0, 1] (only uint8 frames are "
                         f"scaled, by 1/255), got {x.dtype} frames in [{lo:g}, {hi:g}]: {how}")
    return x.astype(np.float32, copy=False)


def _normalize(x: np.ndarray, info: dict) -> np.ndarray:
    """Scale a raw batch as the data pipeline scaled training data (``minmax_apply``)."""
    norm = info.get("normalization")
    if norm is None:
        return x
    return minmax_apply(x, np.asarray(norm["min"], np.float32), np.asarray(norm["max"], np.float32))


def _unscale(x: np.ndarray, info: dict) -> np.ndarray:
    """The inverse of :func:`_normalize` (pipeline-scaled -> raw), for checking an export on a
    dataset's items; a constant channel comes back as its one value."""
    norm = info.get("normalization")
    if norm is None:
        return x
    lo, hi = (np.asarray(norm[k], np.float32)[None, :, None] for k in ("min", "max"))
    return np.where(hi > lo, (np.asarray(x, np.float32) + 1.0) / 2.0 * (hi - lo) + lo, lo).astype(np.float32)


def _graph_takes_raw(info: dict) -> bool:
    """Whether a file's graph scales its input itself (format >= 2; ``_info_from_strings`` says
    so for every such file) or wants it scaled (format 1)."""
    return info.get("input") == RAW_INPUT


# ------------------------------------------------------------------ runners: raw batch -> (logits, probs)


Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class UntrustedFile(ValueError):
    """A model file whose loading could run code (a ``.pt2``), asked for without ``trusted=True``."""


def _torch_runner(module: Callable, device: torch.device) -> Runner:
    @torch.no_grad()
    def run(x: np.ndarray):
        logits, probs = module(torch.from_numpy(np.ascontiguousarray(x)).to(device))
        return logits.float().cpu().numpy(), probs.float().cpu().numpy()
    return run


def _onnx_session(path: Path, providers: Sequence[str] | None):
    ort = _require("onnxruntime")
    try:
        return ort.InferenceSession(str(path), providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ValueError(f"{path} is not a readable ONNX model ({type(e).__name__}: {e})") from e


def _onnx_runner(session) -> Runner:
    def run(x: np.ndarray):
        logits, probs = session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(x)})
        return logits, probs
    return run


def _info_from_strings(props: dict[str, str], path: Path) -> dict:
    """The METADATA_KEYS of a file (each value JSON text), every required one present."""
    if "dcatkit_format" not in props:
        raise ValueError(f"{path} carries no dcatkit metadata (classes, modality, normalisation): "
                         "export it with dcatkit.export")
    info = {}
    for k, v in props.items():
        if k in METADATA_KEYS:
            try:
                info[k] = json.loads(v)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}: its metadata entry {k!r} is not JSON text ({e}): {str(v)[:60]!r}; "
                                 "re-export the model with dcatkit.export") from e
    fmt = info["dcatkit_format"]
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
        raise ValueError(f"{path}: dcatkit_format must be a whole number >= 1, got {fmt!r}")
    if fmt > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer dcatkit (format {fmt}, this one "
                         f"reads {FORMAT_VERSION}): upgrade dcatkit")
    missing = [k for k in REQUIRED_KEYS if k not in info]
    if missing:
        raise ValueError(f"{path} lacks the metadata {missing} (a dcatkit file of format {fmt} carries "
                         f"{list(REQUIRED_KEYS)}): it was edited or not written by dcatkit.export; re-export it")
    if fmt >= 2:
        if info.get("input", RAW_INPUT) != RAW_INPUT:
            raise ValueError(f"{path}: metadata 'input' is {info['input']!r}; a format-{fmt} graph takes "
                             f"{RAW_INPUT!r} input")
        info["input"] = RAW_INPUT                # format >= 2: the graph scales raw input, whatever the key says
    if "kind" not in info:                      # written before kinds: its modality is imu, video or audio
        info["kind"] = default_kind(info["modality"])
        if info["kind"] is None:
            raise ValueError(f"{path} lacks the metadata 'kind' and its modality {info['modality']!r} has no "
                             "default kind: re-export it with dcatkit.export")
    classes = info["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{path}: metadata 'classes' must be a non-empty list of class names, got {classes!r:.80}")
    return info


def _check_graph(info: dict, graph: dict, path: Path) -> None:
    """Refuse a file whose metadata does not describe its graph: ``graph`` = {"classes": output
    width, "input_shape": [dims after the batch; None where symbolic], "input_dtype": str}."""
    k = graph.get("classes")
    if isinstance(k, int) and k != len(info["classes"]):
        raise ValueError(f"{path} names {len(info['classes'])} classes ({info['classes'][:4]}...) but its graph "
                         f"outputs {k} scores per sample: the metadata does not belong to this graph (an edited "
                         "or mismatched file); re-export the model with dcatkit.export")
    shape = graph.get("input_shape")
    if shape is not None and (len(shape) != len(info["input_shape"]) or
                              any(d is not None and d != w for d, w in zip(shape, info["input_shape"]))):
        raise ValueError(f"{path} says one sample has shape {tuple(info['input_shape'])} but its graph takes "
                         f"{tuple('?' if d is None else d for d in shape)} per sample: the metadata does not "
                         "belong to this graph; re-export the model with dcatkit.export")
    dtype = graph.get("input_dtype")
    if dtype is not None and dtype != info["input_dtype"]:
        raise ValueError(f"{path} says its input is {info['input_dtype']} but its graph takes {dtype}: the metadata "
                         "does not belong to this graph; re-export the model with dcatkit.export")


def _onnx_graph(session) -> dict:
    """Output width, per-sample input shape and input dtype of an onnxruntime session's graph."""
    dtypes = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(double)": "float64",
              "tensor(float16)": "float16"}
    inp = session.get_inputs()[0]
    logits = next((o for o in session.get_outputs() if o.name == OUTPUT_NAMES[0]), session.get_outputs()[0])
    width = logits.shape[-1] if logits.shape else None
    return {"classes": width if isinstance(width, int) else None,
            "input_shape": [d if isinstance(d, int) else None for d in inp.shape[1:]],
            "input_dtype": dtypes.get(inp.type, inp.type)}


def _pt2_graph(program) -> dict:
    """The same for a torch.export program (from its placeholder's and outputs' fake tensors)."""
    out: dict = {}
    try:
        nodes = {n.name: n for n in program.graph.nodes}
        val = nodes[program.graph_signature.user_inputs[0]].meta["val"]
        out["input_shape"] = [d if isinstance(d, int) else None for d in val.shape[1:]]
        out["input_dtype"] = str(val.dtype).replace("torch.", "")
        result = next(n for n in program.graph.nodes if n.op == "output").args[0][0].meta["val"]
        out["classes"] = result.shape[-1] if isinstance(result.shape[-1], int) else None
    except (KeyError, IndexError, AttributeError, StopIteration, TypeError):
        pass                                      # a program without that meta: the other checks stand
    return out


def _load_pt2(path: Path, trusted: bool = False) -> tuple[torch.export.ExportedProgram, dict]:
    """The program and metadata of a ``.pt2``. ``torch.export.load`` may unpickle entries of
    the archive (code can run), so it is called only for a file the caller trusts."""
    if not trusted:
        raise UntrustedFile(
            f"{path} is a torch.export archive: loading it runs torch.export.load, which unpickles parts of "
            "the file, and a crafted .pt2 can run code on this machine. Load it only if you trust where it "
            "comes from (e.g. you exported it yourself): Predictor.load(path, trusted=True). A model from "
            "someone else is safe as an .onnx file (no flag needed) or a dcatkit checkpoint (.pt, read with "
            "torch.load(weights_only=True))")
    extra = {PT2_EXTRA: ""}
    try:
        ep = torch.export.load(str(path), extra_files=extra)
    except Exception as e:
        raise ValueError(f"{path} is not a readable torch.export program ({type(e).__name__}: {e})") from e
    if not extra[PT2_EXTRA]:
        raise ValueError(f"{path} carries no {PT2_EXTRA} (classes, modality, normalisation): "
                         "export it with dcatkit.export")
    info = _info_from_strings(json.loads(extra[PT2_EXTRA]), path)
    _check_graph(info, _pt2_graph(ep), path)
    return ep, info


# ------------------------------------------------------------------ export


@dataclass
class ExportResult:
    """What :func:`export` wrote and how closely the file matches the eager model."""

    path: Path
    format: str                 # "onnx" or "pt2"
    info: dict                  # the metadata stored in the file
    max_error: dict = field(default_factory=dict)   # {"random": float, "real": float or None}: max |file - eager|
    exporter: str = ""


def _example_inputs(info: dict, batch: int, seed: int = 0) -> np.ndarray:
    """Random raw inputs: scaled timeseries uniform over 1.5x their training range per channel,
    other timeseries / features ~ N(0, 1), audio 0.1 N(0, 1), video uint8 (float32 graphs:
    uniform in [0, 1])."""
    rng = np.random.default_rng(seed)
    shape = (batch, *info["input_shape"])
    if info["input_dtype"] == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if info["kind"] == "video":                                  # float32 frames: RGB in [0, 1]
        return rng.uniform(0.0, 1.0, shape).astype(np.float32)
    if info.get("normalization") is not None:
        return _unscale(rng.uniform(-1.5, 1.5, shape).astype(np.float32), info)
    scale = 0.1 if info["kind"] == "audio" else 1.0
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def _real_inputs(check_inputs, info: dict, limit: int = 8) -> np.ndarray:
    """Raw inputs from real data: a dataset (its items, scaled by the pipeline, are unscaled
    here) or raw samples (B, *input_shape) as a Predictor takes them."""
    what = "pass splits.test (a PairedDataset) or raw arrays (B, *input_shape)"
    folds = (isinstance(check_inputs, (list, tuple)) and check_inputs
             and all(hasattr(c, "test") for c in check_inputs))
    if hasattr(check_inputs, "test") or folds:                    # a Splits, or cross-validation folds of them
        raise ValueError(f"check_inputs: {what}, got {type(check_inputs).__name__} (the whole split "
                         "container: which part's samples would be checked is not said)")
    arrays = getattr(check_inputs, "arrays", None)
    if arrays is None and not isinstance(check_inputs, (np.ndarray, torch.Tensor, list, tuple)):
        raise ValueError(f"check_inputs: {what}, got {type(check_inputs).__name__}")
    if arrays is not None:                                   # PairedDataset: pipeline-scaled
        if info["modality"] not in arrays:
            raise ValueError(f"check_inputs has modalities {tuple(arrays)}, the model needs {info['modality']!r}")
        try:
            x, _ = _as_batch(np.asarray(arrays[info["modality"]][:limit]), info)
        except ValueError as e:
            raise ValueError(f"check_inputs ({type(check_inputs).__name__} of {info['modality']!r}): {e}") from e
        return _unscale(x, info)
    x, _ = _as_batch(check_inputs, info)
    return x[:limit]


def _compare(run: Runner, eager: Runner, x: np.ndarray, tolerance: float, what: str) -> float:
    got, ref = run(x), eager(x)
    err = max(float(np.abs(g - r).max()) for g, r in zip(got, ref))
    for name, g, r in zip(OUTPUT_NAMES, got, ref):
        if g.shape != r.shape or not np.allclose(g, r, rtol=tolerance, atol=tolerance):
            raise RuntimeError(f"the exported file's {name} differ from the eager model's on {what} "
                               f"(batch {len(x)}): max |diff| {err:.3g} > tolerance {tolerance}")
    return err


def export(source, path: str | Path, *, classes: Sequence[str] | None = None, normalization=_AUTO,
           check_inputs=None, tolerance: float = 1e-4, example_batch: int = 2,
           input_dtype: str | None = None) -> ExportResult:
    """Write one classifier as ``path`` (``.onnx`` or ``.pt2``) with a dynamic batch size.

    source: a ``dcatkit.experiment.Run``, a ``Classifier`` or a checkpoint path.
    classes / normalization: needed only when the model does not record them (a bare
      Classifier; ``normalization`` is {"min": [C], "max": [C]} for a timeseries model, e.g.
      ``splits.normalization["gyro"]`` (``splits.report["imu_minmax"]`` for imu), or None for
      unscaled inputs).
    check_inputs: real samples for the check -- a dataset (e.g. ``splits.test``, not the
      ``Splits``) or raw arrays (B, *input_shape). Random inputs are always checked.
    input_dtype: the graph's input dtype. Video: "uint8" (RGB 0-255, the default and what the
      loaders give; the graph scales by 1/255) or "float32" (RGB in [0, 1]: for a model trained
      on float frames, e.g. through ``from_arrays``, so the file reproduces its logits on them;
      the Predictor also feeds such a graph uint8 frames / 255). None: what the model's records
      say of its training data (``input_dtype``), else the kind's default. Other kinds: float32.
    The file is written next to ``path`` and moved there only after onnxruntime (ONNX) or
    ``torch.export.load`` (pt2) reproduce the eager model's logits and probabilities
    to ``tolerance`` (rtol = atol) at batch sizes other than the exported one.
    """
    path = Path(path)
    fmt = {".onnx": "onnx", ".pt2": "pt2"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unknown export file type {path.suffix!r} ({path}): use .onnx (ONNX) or .pt2 "
                         "(torch.export)")
    if example_batch < 2:
        raise ValueError(f"example_batch must be >= 2 (torch.export specialises batch 1), got {example_batch}")
    check_writable(path, "export")                  # a folder there, or a file above it: say so before any work
    for left in left_temp_files(path, suffix=path.suffix, untagged=False):   # of exports a kill cut short: a
        left.unlink(missing_ok=True)                                          # second <name>.*<suffix> file
    if fmt == "onnx":
        _check_onnx_torch()
        for dep in ("onnx", "onnxscript", "onnxruntime"):
            _require(dep)
    model, info, _ = _resolve(source, classes, normalization, input_dtype)
    model = copy.deepcopy(model).cpu().float().eval()
    if hasattr(model.encoder, "channels_last"):
        model.encoder.channels_last = False                 # a CUDA training layout; plain NCHW on export
    wrapped = _Inference(model, info["normalization"]).eval()   # raw input in: the scaling is in the graph
    eager = _torch_runner(wrapped, torch.device("cpu"))
    example = torch.from_numpy(_example_inputs(info, example_batch, seed=1))
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.export.export(wrapped, (example,), dynamic_shapes={"x": {0: batch}})

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path, suffix=path.suffix)
    os.close(fd)
    try:
        if fmt == "onnx":
            # the program already has the dynamic batch axis; the names become the graph's
            onnx_program = torch.onnx.export(program, dynamo=True, verbose=False,
                                             input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES))
            onnx_program.model.metadata_props.update({k: json.dumps(v) for k, v in info.items()})
            onnx_program.save(tmp, external_data=False)
            opset = onnx_program.model.opset_imports.get("", "?")
            exporter = f"torch.onnx.export(dynamo=True) via onnxscript, opset {opset}"
            session = _onnx_session(Path(tmp), None)
            read_back = _info_from_strings(session.get_modelmeta().custom_metadata_map, Path(tmp))
            _check_graph(read_back, _onnx_graph(session), Path(tmp))
            run = _onnx_runner(session)
        else:
            torch.export.save(program, tmp, extra_files={PT2_EXTRA: json.dumps({k: json.dumps(v)
                                                                                 for k, v in info.items()})})
            exporter = f"torch.export (torch {torch.__version__})"
            loaded, read_back = _load_pt2(Path(tmp), trusted=True)      # the file this call just wrote
            run = _torch_runner(loaded.module(), torch.device("cpu"))
        if read_back != info:
            raise RuntimeError(f"the metadata read back from {tmp} differs from what was written")
        errors = {"random": max(_compare(run, eager, _example_inputs(info, b, seed=2 + b), tolerance,
                                         "random raw inputs") for b in (1, example_batch + 1)),
                  "real": None}
        if check_inputs is not None:
            real = _real_inputs(check_inputs, info)
            errors["real"] = max(_compare(run, eager, x, tolerance, "real raw inputs")
                                 for x in (real, real[:1]) if len(x))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ExportResult(path, fmt, info, errors, exporter)


# ------------------------------------------------------------------ prediction


@dataclass
class Prediction:
    """Predictions for a batch of B samples (B = 1 for one sample) over K classes."""

    labels: list[str]             # (B,) the most probable class name of each sample
    probabilities: np.ndarray     # (B, K) float32 softmax, columns in ``classes`` order
    logits: np.ndarray            # (B, K) float32
    classes: list[str]            # (K,)

    @property
    def indices(self) -> np.ndarray:
        """(B,) int64 class indices of ``labels``."""
        return self.probabilities.argmax(axis=1)


class Predictor:
    """A trained classifier behind one call: raw sample(s) in, class names and probabilities out.

    >>> p = Predictor.load("imu.onnx")       # or a checkpoint .pt, or a .pt2
    >>> p.predict(window).labels[0]          # one raw window (C, L), or a batch (B, C, L)

    ``predict`` passes the raw batch to a graph that applies the stored normalisation itself
    (timeseries modalities: per-channel min-max of the training split, as
    ``dcatkit.data.preprocess.minmax_apply``), so every backend sees the same raw input; only
    for exported files of format 1 (whose graph took scaled input) it scales in numpy first.
    """

    def __init__(self, run: Runner, info: dict, backend: str, path: Path | None = None):
        if not _graph_takes_raw(info) and info.get("normalization") is not None:   # a format-1 file
            graph = run
            run = lambda x: graph(_normalize(x, info))                                  # noqa: E731
        self._run, self.info, self.backend, self.path = run, info, backend, path
        self._eager = backend == "torch"         # the eager model: its frame encoder reads uint8 and float frames

    classes = property(lambda self: list(self.info["classes"]), doc="class names, in output order")
    modality = property(lambda self: self.info["modality"], doc="the sensor the model reads (its name)")
    kind = property(lambda self: self.info["kind"], doc="the modality's kind: timeseries, video, audio, features")
    input_shape = property(lambda self: tuple(self.info["input_shape"]), doc="one sample's shape")
    normalization = property(lambda self: self.info["normalization"],
                             doc="{'method': 'minmax', 'min': [C], 'max': [C]} or None")

    @classmethod
    def load(cls, source, *, device="auto", providers: Sequence[str] | None = None,
             classes: Sequence[str] | None = None, normalization=_AUTO, trusted: bool = False) -> "Predictor":
        """From a checkpoint (``.pt``/``.pth``), an ``.onnx`` or a ``.pt2`` file (or, in
        memory, a ``Run`` / ``Classifier``).

        trusted: a ``.pt2`` is loaded only with ``trusted=True`` (its reader unpickles, so a
          crafted file can run code; see the module docstring); without it an
          ``UntrustedFile`` (a ValueError) says so. Checkpoints (read with
          ``weights_only=True``) and ``.onnx`` files need no flag.
        device: for checkpoints and ``.pt2`` ("auto": CUDA when available); inputs are
          moved there. providers: onnxruntime execution providers for ``.onnx``
          (default CPU). classes / normalization: only for models that do not record
          them (see :func:`export`); exported files always do.
        """
        if not isinstance(source, (str, os.PathLike)):
            return cls._from_model(source, device, classes, normalization)
        path = Path(source)
        kind = path.suffix.lower()
        if kind not in (".pt", ".pth", ".onnx", ".pt2"):
            raise ValueError(f"unknown file type {path.suffix!r} ({path}): expected a dcatkit checkpoint (.pt), "
                             "an ONNX file (.onnx) or a torch.export program (.pt2)")
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
        if kind in (".pt", ".pth"):
            return cls._from_model(path, device, classes, normalization)
        if classes is not None or not (isinstance(normalization, str) and normalization == _AUTO):
            raise ValueError(f"{path.name} is an exported file: it carries its own classes and normalisation")
        if kind == ".onnx":
            session = _onnx_session(path, providers)
            info = _info_from_strings(session.get_modelmeta().custom_metadata_map, path)
            _check_graph(info, _onnx_graph(session), path)
            return cls(_onnx_runner(session), info, "onnxruntime", path)
        from .runtime import resolve_device

        dev = resolve_device(device)
        program, info = _load_pt2(path, trusted=trusted)
        if dev.type != "cpu":
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, dev)
        return cls(_torch_runner(program.module(), dev), info, "torch.export", path)

    @classmethod
    def _from_model(cls, source, device, classes, normalization) -> "Predictor":
        from .runtime import resolve_device

        model, info, path = _resolve(source, classes, normalization)
        dev = resolve_device(device)
        wrapped = _Inference(copy.deepcopy(model).float().eval(), info["normalization"]).to(dev).eval()
        return cls(_torch_runner(wrapped, dev), info, "torch", path)

    @property
    def sample_rate(self) -> float | None:
        """The rate (Hz; video: frames/s) of the model's sensor in its training data, when recorded."""
        rate = (self.info.get("sample_rates") or {}).get(self.modality)
        return None if rate is None else float(rate)

    def predict(self, x, *, sample_rate: float | None = None) -> Prediction:
        """x: one raw sample (``input_shape``) or a batch (B, *input_shape), numpy or torch.
        Returns a :class:`Prediction` with B rows (B = 1 for one sample). By kind:

        - timeseries (C, L) float, raw (the graph applies the training scaling);
        - video (T, 3, H, W) RGB: uint8 0-255, or float in [0, 1] for a checkpoint / Run or a
          file exported with ``input_dtype="float32"`` (a uint8 file refuses float frames);
        - audio waveform (N,): **mono**, float samples in [-1, 1]. Integer PCM, and float at
          PCM scale (peak beyond ``dcatkit.data.dataset.WAVEFORM_PEAK_LIMIT``, e.g.
          ``wav.astype(np.float32)``), are refused: pass x / 32768 for 16-bit PCM (the refusal
          names the scaling of other bit depths). A stereo clip must be
          mixed to mono first, ``x.mean(0)`` for (channels, N) as ``torchaudio.load`` gives it,
          as the loaders do: a (2, N) array is read as a batch of two clips (the shapes are
          the same), and (N, 2) is refused;
        - features (T, F) float.

        ``sample_rate``: the rate ``x`` was recorded at, checked against the training data's
        (:attr:`sample_rate`). A raw array carries no rate, and a window of the right length at
        another rate is a different stretch of time: give it to have that mismatch refused
        rather than classified."""
        if sample_rate is not None:
            want = self.sample_rate
            if want is None:
                raise ValueError(f"this {self.modality} model records no sample rate to check {sample_rate:g} Hz "
                                 "against (a file exported without one): leave sample_rate out")
            if not math.isclose(float(sample_rate), want, rel_tol=1e-6):
                how = (f"take the frames from a video of {want:g} frames per second, as the loader did (it "
                       "spreads a window's frames evenly over the window)" if self.info.get("kind") == "video" else
                       f"resample it first (e.g. torchaudio.functional.resample(x, {float(sample_rate):g}, {want:g}))")
                raise ValueError(f"the {self.modality} model was trained on data at {want:g} Hz; this input is at "
                                 f"{float(sample_rate):g} Hz: {how}")
        batch, _ = _as_batch(x, self.info, eager=self._eager)
        logits, probs = self._run(batch)                   # raw: the graph scales it
        classes = self.classes
        return Prediction([classes[i] for i in probs.argmax(axis=1)], probs, logits, classes)

    def __repr__(self) -> str:
        where = f" from {self.path}" if self.path else ""
        return (f"Predictor({self.modality} ({self.kind}), input {self.input_shape}, {len(self.info['classes'])} classes, "
                f"{self.backend}{where})")


__all__ = ["export", "ExportResult", "Predictor", "Prediction", "UntrustedFile"]
