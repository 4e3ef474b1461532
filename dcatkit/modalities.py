"""Modalities are names you choose; each has a *kind* that says what its samples are.

A modality is a user-chosen name (``"imu"``, ``"acc"``, ``"gyro"``, ``"wrist"``,
``"ecg"``...) plus one of four kinds:

=============  ==========================  ========================================================
kind           one sample                  what dcatkit does with it
=============  ==========================  ========================================================
timeseries     float (C, L)                min-max scaled per channel with training statistics
                                           (paper Sec. V-B.1); the 1D-CNN encoder (IMU, EMG, ECG...)
video          uint8 (T, 3, H, W)          the ResNet frame encoder
audio          float (N,) or (n_mels, F)   the log-mel CNN encoder
features       float (T, F)                precomputed vectors, one per time step; a small
                                           per-step MLP encoder
=============  ==========================  ========================================================

The paper's names keep their kinds (:data:`DEFAULT_KINDS`: ``imu`` -> timeseries,
``video`` -> video, ``audio`` -> audio), so code that only uses them never
names a kind. Any other name needs its kind said once, e.g.
``dcatkit.data.from_arrays({"acc": a, "gyro": g}, labels, kinds={"acc": "timeseries",
"gyro": "timeseries"}, groups=...)``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

KINDS = ("timeseries", "video", "audio", "features")
DEFAULT_KINDS = {"imu": "timeseries", "video": "video", "audio": "audio"}
# Keys every dataset item carries besides its modalities (dcatkit.data.dataset): not usable as names.
RESERVED = ("label", "subject", "id")
# One sample's axes per kind (the per-sample shape, without the batch axis N).
SAMPLE_AXES = {"timeseries": ("(channels, length)",), "video": ("(frames, 3, height, width)",),
               "audio": ("(samples,)", "(n_mels, frames)"), "features": ("(steps, features)",)}
_SAMPLE_NDIM = {"timeseries": (2,), "video": (4,), "audio": (1, 2), "features": (2,)}
# Kinds whose data is min-max scaled per channel with training statistics.
NORMALIZED_KINDS = ("timeseries",)


def check_kind(kind: str) -> str:
    """``kind`` when it is one of :data:`KINDS`, else a ValueError naming them."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"unknown modality kind {kind!r}: expected one of {KINDS}")
    return kind


def check_name(name: str) -> str:
    """``name`` when it can name a modality: a non-empty string, not an item key (label, subject, id)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a modality name must be a non-empty string, got {name!r}")
    if name in RESERVED:
        raise ValueError(f"{name!r} cannot name a modality: dataset items use it for {RESERVED}; "
                         "pick another name")
    return name


def check_usable_name(name: str) -> str:
    """``name`` when :func:`check_name` takes it and it is usable where dcatkit writes it: in file
    names (a sweep's ``sources/<name>_<key>.pt``, so no ``/`` or ``\\``, no leading ``.``) and in the
    command line's ``NAME=VALUE`` (``--lam``, so no ``=``); no leading or trailing space and no
    control character. Spaces inside are fine. Checked where data is made (``from_arrays``,
    ``save_arrays``) and where a name is asked for (``load(modalities=...)``, the notebooks'
    parameters); an arrays file saved before this check still loads its other modalities."""
    check_name(name)
    bad = sorted({c for c in name if c in "/\\=" or not c.isprintable()})
    if bad or name != name.strip() or name.startswith("."):
        why = (f"it holds {', '.join(map(repr, bad))}" if bad else
               "it starts or ends with a space" if name != name.strip() else "it starts with '.'")
        raise ValueError(f"{name!r} cannot name a modality: {why}. A modality's name goes into file names "
                         "(no '/', '\\' or leading '.') and into the command line's NAME=VALUE (no '='): "
                         "pick a name of letters, digits, '_' or '-' (e.g. 'left_wrist')")
    return name


def default_kind(name: str) -> str | None:
    """The kind a name has without being told (``imu``, ``video``, ``audio``), else None."""
    return DEFAULT_KINDS.get(name)


def kind_of(name: str, kinds: Mapping[str, str] | None = None) -> str:
    """The kind of modality ``name``: ``kinds[name]`` when given, else its default.

    Raises ValueError for an unknown kind, or a name that is not one of the defaults and
    has no kind given (saying how to give one).
    """
    check_name(name)
    if kinds and name in kinds:
        return check_kind(kinds[name])
    kind = default_kind(name)
    if kind is None:
        raise ValueError(f"modality {name!r} has no kind: only {tuple(DEFAULT_KINDS)} have a default. Say what "
                         f"its samples are, e.g. kinds={{{name!r}: 'timeseries'}} (one of {KINDS})")
    return kind


def resolve_kind(name: str, kind: str | None = None) -> str:
    """The kind of a model's modality: ``kind`` when given (checked), else the default kind
    of ``name`` (imu, video, audio); another name without a kind is a ValueError saying
    to pass ``kind=``."""
    if kind is not None:
        return check_kind(kind)
    found = default_kind(name)
    if found is None:
        raise ValueError(f"unknown modality {name!r}: only {tuple(DEFAULT_KINDS)} have a default kind; pass "
                         f"kind= (one of {KINDS}), e.g. kind='timeseries' for an IMU-like sensor")
    return found


def resolve_kinds(names: Sequence[str], kinds: Mapping[str, str] | None = None) -> dict[str, str]:
    """{name: kind} for every name in ``names`` (see :func:`kind_of`).

    ``kinds`` may only mention names in ``names``: a kind for a modality the data does
    not have is a typo, and gets a ValueError listing the names there are.
    """
    names = list(names)
    extra = [m for m in (kinds or {}) if m not in names]
    if extra:
        raise ValueError(f"kinds= names {extra}, which the data does not have: its modalities are {names}")
    return {m: kind_of(m, kinds) for m in names}


def check_sample_shape(name: str, kind: str, shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` (one sample, no batch axis) when it fits ``kind``, else a ValueError saying
    what was expected: timeseries (C, L), video (T, 3, H, W), audio (N,) or (n_mels, F),
    features (T, F); every axis at least 1."""
    shape = tuple(int(s) for s in shape)
    want = " or ".join(SAMPLE_AXES[check_kind(kind)])
    bad = len(shape) not in _SAMPLE_NDIM[kind] or (kind == "video" and shape[1] != 3) or min(shape, default=0) < 1
    if bad:
        raise ValueError(f"modality {name!r} is of kind {kind!r}: one sample must have shape {want}, "
                         f"got {shape} (arrays hold N such samples: (N, *sample_shape))")
    return shape


__all__ = ["KINDS", "DEFAULT_KINDS", "RESERVED", "SAMPLE_AXES", "NORMALIZED_KINDS", "check_kind", "check_name", "check_usable_name",
           "default_kind", "kind_of", "resolve_kind", "resolve_kinds", "check_sample_shape"]
