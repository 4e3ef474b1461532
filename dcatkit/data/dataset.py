"""In-memory paired dataset and the split container every loader returns.

Modalities are names with a kind (``dcatkit.modalities``): the paper's ``imu``,
``video`` and ``audio`` by default, or any name you give a kind, e.g. ``acc`` and
``gyro`` of kind ``timeseries``. An item is a dict::

    {"imu":   FloatTensor (C, L)         # kind timeseries: channels first, min-max scaled to [-1, 1]
     "video": ByteTensor  (T, 3, H, W)   # kind video: uint8 RGB; FrameEncoder normalises
     "audio": FloatTensor (N,)           # kind audio: mono waveform at `sample_rates["audio"]`
     "feat":  FloatTensor (T, F)         # kind features: precomputed vectors, one per step
     "label": int, "subject": int (-1 when unknown), "id": str}

holding only the modalities that were asked for, under their names. The default
collate of ``torch.utils.data.DataLoader`` batches these dicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..modalities import DEFAULT_KINDS, check_name, check_sample_shape, kind_of, resolve_kinds

UNLABELED = -1      # the label of a sample without one (a paired recording nobody labelled)
MODALITIES = tuple(DEFAULT_KINDS)   # the names that have a kind without being told: imu, video, audio
# A float waveform whose peak |x| is beyond this is not in [-1, 1]: integer PCM cast to float
# (wav.astype(np.float32)) keeps its scale (int16: up to 32768). Loose on purpose: the synthetic
# data's waveforms peak at 1.34, and a clipped or boosted recording may pass 1 a little.
WAVEFORM_PEAK_LIMIT = 16.0


def check_modality(name: str, kinds: Mapping[str, str] | None = None) -> str:
    """``name`` when it names a modality with a kind (its own in ``kinds``, or a default one),
    else a ValueError saying how to give it one (``dcatkit.modalities.kind_of``)."""
    kind_of(name, kinds)
    return name


def pcm_scaling(dtype, lo: float | None = None, hi: float | None = None) -> str:
    """How to bring PCM samples to float [-1, 1], e.g. "x / 32768 (16-bit PCM)". An integer dtype
    of 1 to 4 bytes is the bit depth (soundfile, scipy and torchaudio put 24-bit PCM in the top bits
    of an int32); 8-bit PCM is unsigned, centred on 128. A float or int64 array does not say its
    depth: it is guessed from the values ``lo`` / ``hi`` (loosely: a boosted waveform may pass its
    full scale) and the general rule follows, since another depth's divisor gives a waveform some
    256 times too quiet (or, for unsigned 8-bit, offset by +1), which no later check can tell."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu" and dtype.itemsize <= 4:
        half = 2 ** (8 * dtype.itemsize - 1)
        if dtype.kind == "u":
            return f"(x - {half}) / {half} ({8 * dtype.itemsize}-bit PCM is unsigned)"
        if half == 2 ** 31 and hi is not None and max(-lo, hi) < 2 ** 23:
            return ("x / 2147483648 (32-bit PCM; values within +-8388608 may be 24-bit samples not shifted "
                    "to 32 bits: then x / 8388608)")
        return f"x / {half} ({8 * dtype.itemsize}-bit PCM)"
    rule = "another bit depth: x / 2**(depth - 1); unsigned 8-bit: (x - 128) / 128"
    if lo is None:
        return f"x / 2**(depth - 1) for the recording's bit depth, x / 32768 for 16-bit PCM ({dtype} does not " \
               "say which; unsigned 8-bit: (x - 128) / 128)"
    if 0 <= lo and hi <= 255:
        return ("(x - 128) / 128 if it is unsigned 8-bit PCM, as its values (0 to 255) suggest "
                "(another bit depth: x / 2**(depth - 1))")
    peak = max(-float(lo), float(hi))
    bits = next((b for b in (16, 24) if peak <= 2 ** (b - 1) * WAVEFORM_PEAK_LIMIT), 32)
    return f"x / {2 ** (bits - 1)} if it is {bits}-bit PCM, as its peak suggests ({rule})"


def check_dtype(name: str, kind: str, dtype, sample_ndim: int) -> None:
    """Refuse integer arrays the encoders would read unscaled: video frames are uint8 RGB (0-255,
    scaled by 1/255 in the encoder; floats are read as already in [0, 1]) and audio waveforms
    floats in [-1, 1] (the kit's audio files and the Predictor's; ``sample_ndim`` 1: a waveform, 2: a
    precomputed spectrogram, left alone). A check of the dtype alone, so
    it is cheap on a memory-mapped cache."""
    dtype = np.dtype(dtype)
    if kind == "video" and np.issubdtype(dtype, np.integer) and dtype != np.uint8:
        raise ValueError(f"modality {name!r} (video) holds {dtype} frames: integer frames are read as uint8 RGB "
                         "values (0-255) and other integer types would be used unscaled; pass "
                         f"{name}.astype(np.uint8) when they are 0-255")
    if kind == "audio" and sample_ndim == 1 and np.issubdtype(dtype, np.integer):
        raise ValueError(f"modality {name!r} (audio) holds integer samples ({dtype}): PCM audio, which would "
                         "train unscaled while the kit's audio files and the Predictor use float waveforms in "
                         f"[-1, 1]; pass {pcm_scaling(dtype)}")


def check_waveform_peak(name: str, kind: str, values, sample_ndim: int, what: str | None = None) -> None:
    """Refuse float audio waveforms at PCM scale: peak |x| > ``WAVEFORM_PEAK_LIMIT`` where the
    kit's audio files, its models and the Predictor use float samples in [-1, 1] (a model trained
    on one scale and fed the other classifies noise). Only waveforms (kind audio, ``sample_ndim``
    1); precomputed spectrograms and features (log-mel values) are left alone. Reads the values:
    the training data (``from_arrays``, in-memory ``PairedDataset`` arrays) and the Predictor's
    input apply the same rule."""
    if kind != "audio" or sample_ndim != 1:
        return
    a = np.asarray(values)
    if not a.size or not np.issubdtype(a.dtype, np.floating):
        return
    peak = float(max(a.max(), -a.min()))
    if peak > WAVEFORM_PEAK_LIMIT:                    # NaN compares False: the finiteness checks say it
        raise ValueError(f"{what or f'modality {name!r} (audio)'} is not a float waveform in [-1, 1]: expected "
                         f"float samples in [-1, 1] (peak here {peak:.6g}; at most {WAVEFORM_PEAK_LIMIT:g} is "
                         "let through), as dcatkit.data reads audio files and its models and the Predictor take "
                         "them. Integer PCM cast to float (wav.astype(np.float32)) keeps the integer scale: "
                         f"pass {pcm_scaling(a.dtype, a.min(), a.max())}")


def _norm_entry(value: Mapping[str, Any]) -> dict:
    """A normalisation record as stored: {"method": "minmax", "min": [C], "max": [C], "from": ...}."""
    out = {"method": value.get("method", "minmax"), "min": [float(v) for v in value["min"]],
           "max": [float(v) for v in value["max"]]}
    if "from" in value:
        out["from"] = value["from"]
    return out


class PairedDataset(Dataset):
    """Samples with one array per modality, all indexed by the same sample index.

    ``arrays[m]`` has shape (N, ...) — numpy arrays or ``np.memmap`` (so a
    preprocessing cache can back it without loading it into memory); its per-sample
    shape must fit the modality's kind (``dcatkit.modalities.check_sample_shape``).
    ``kinds``: {name: kind} for names other than imu / video / audio (which default to
    their kinds). ``groups`` (N,): the recording each sample was cut from (default: its
    id, i.e. every sample its own recording); :func:`dcatkit.data.check_leakage` reads it.
    ``normalization``: {name: {"method": "minmax", "min": [C], "max": [C], "from": "train"}}
    for the timeseries modalities the pipeline scaled (what a model must apply to raw
    data at inference); ``imu_minmax`` is its ``imu`` entry in the older form.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        labels: Sequence[int],
        classes: Sequence[str],
        subjects: Sequence[int] | None = None,
        ids: Sequence[str] | None = None,
        sample_rates: Mapping[str, float] | None = None,
        groups: Sequence[str] | None = None,
        *,
        kinds: Mapping[str, str] | None = None,
        normalization: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        if not arrays:
            raise ValueError("PairedDataset needs at least one modality array, got none")
        self.labels = np.asarray(labels, dtype=np.int64)
        n = len(self.labels)
        for m in arrays:
            check_name(m)
        self._kinds = resolve_kinds(list(arrays), kinds)
        for m, a in arrays.items():
            if len(a) != n:
                raise ValueError(
                    f"modality {m!r} has {len(a)} samples but there are {n} labels: "
                    "every modality needs one entry per sample, in the same order"
                )
            check_sample_shape(m, self._kinds[m], a.shape[1:])
            if getattr(a, "dtype", None) is not None:     # an array-like without one (a wrapper) is left alone
                check_dtype(m, self._kinds[m], a.dtype, len(a.shape) - 1)
            if isinstance(a, np.ndarray) and not isinstance(a, np.memmap):   # in memory: cheap to read; a
                check_waveform_peak(m, self._kinds[m], a, a.ndim - 1)        # cache on disk is the kit's own
        self.arrays = dict(arrays)
        self.classes = list(classes)
        if n and (self.labels.min() < UNLABELED or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"labels must lie in [0, {len(self.classes) - 1}] for {len(self.classes)} "
                f"classes (or be {UNLABELED}: unlabeled), found range [{self.labels.min()}, {self.labels.max()}]"
            )
        self.subjects = (
            np.full(n, -1, dtype=np.int64) if subjects is None else np.asarray(subjects, dtype=np.int64)
        )
        self.ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
        self.groups = list(self.ids) if groups is None else [str(g) for g in groups]
        if len(self.subjects) != n or len(self.ids) != n or len(self.groups) != n:
            raise ValueError(f"subjects ({len(self.subjects)}), ids ({len(self.ids)}) and groups "
                             f"({len(self.groups)}) must have {n} entries, one per sample")
        self.sample_rates = dict(sample_rates or {})
        self.normalization: dict[str, dict] = {}
        for m, v in (normalization or {}).items():
            self._require(m)
            self.normalization[m] = _norm_entry(v)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.arrays)

    @property
    def kinds(self) -> dict[str, str]:
        """{name: kind} of the modalities, in ``modalities`` order."""
        return dict(self._kinds)

    def kind(self, modality: str) -> str:
        """The kind of one modality ("timeseries", "video", "audio" or "features")."""
        return self._kinds[self._require(modality)]

    def _require(self, modality: str) -> str:
        if modality not in self.arrays:
            raise ValueError(f"the data has no modality {modality!r}: its modalities are {self.modalities}")
        return modality

    @property
    def imu_minmax(self) -> dict | None:
        """The ``imu`` scaling as {"min": [C], "max": [C], "from": "train"} (the form older code
        and checkpoints use), or None; ``normalization`` holds it for every modality."""
        entry = self.normalization.get("imu")
        return None if entry is None else {k: v for k, v in entry.items() if k != "method"}

    @imu_minmax.setter
    def imu_minmax(self, value: Mapping[str, Any] | None) -> None:
        if value is None:
            self.normalization.pop("imu", None)
        else:
            self.normalization[self._require("imu")] = _norm_entry(value)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def input_shape(self, modality: str) -> tuple[int, ...]:
        """Per-sample shape of one modality, e.g. (6, 64) for a 6-channel timeseries."""
        return tuple(self.arrays[self._require(modality)].shape[1:])

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_unlabeled(self) -> int:
        """How many samples carry no label (``UNLABELED``)."""
        return int((self.labels == UNLABELED).sum())

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for m, a in self.arrays.items():
            x = np.asarray(a[i])
            t = torch.from_numpy(np.array(x, copy=True))
            item[m] = t if t.dtype == torch.uint8 else t.float()
        item["label"] = int(self.labels[i])
        item["subject"] = int(self.subjects[i])
        item["id"] = self.ids[i]
        return item

    def subset(self, index: Sequence[int]) -> "PairedDataset":
        """The samples at ``index`` (same modalities, kinds and normalisation)."""
        index = np.asarray(index, dtype=np.int64)
        return PairedDataset(
            {m: a[index] for m, a in self.arrays.items()},
            self.labels[index],
            self.classes,
            self.subjects[index],
            [self.ids[i] for i in index],
            self.sample_rates,
            [self.groups[i] for i in index],
            kinds=self._kinds,
            normalization=self.normalization,
        )

    def select(self, modalities: Sequence[str]) -> "PairedDataset":
        """A view with only some modalities (same samples, same order)."""
        missing = [m for m in modalities if m not in self.arrays]
        if missing:
            raise ValueError(f"dataset has modalities {self.modalities}, asked for missing {missing}")
        return PairedDataset({m: self.arrays[m] for m in modalities}, self.labels, self.classes,
                             self.subjects, self.ids, self.sample_rates, self.groups,
                             kinds={m: self._kinds[m] for m in modalities},
                             normalization={m: v for m, v in self.normalization.items() if m in modalities})


@dataclass
class Splits:
    """What ``dcatkit.data.load`` returns: three datasets plus a load report.

    ``report["split"]`` says how it was split (kind, seed, ratios, fold); a cross-validation
    split (``"loso"``, ``("group_kfold", k)``) returns a list of these, one per fold.

    ``unlabeled``: paired recordings without labels (None: none), e.g. from
    :func:`hide_labels`. Transfer training (``experiment.train_transfer``) computes
    cross-entropy on ``train`` only and the transfer objective on ``train`` and
    ``unlabeled`` together; validation and test stay labelled. Their labels, whatever
    they hold, are never read: :func:`training_set` replaces them by ``UNLABELED``.
    """

    train: PairedDataset
    val: PairedDataset
    test: PairedDataset
    report: dict[str, Any] = field(default_factory=dict)
    unlabeled: PairedDataset | None = None

    def __iter__(self):  # allows `train, val, test = load(...)`
        return iter((self.train, self.val, self.test))

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.train.modalities

    @property
    def kinds(self) -> dict[str, str]:
        """{name: kind} of the modalities (see ``dcatkit.modalities``)."""
        return self.train.kinds

    def kind(self, modality: str) -> str:
        return self.train.kind(modality)

    @property
    def normalization(self) -> dict[str, dict]:
        """{name: {"method": "minmax", "min": [C], "max": [C], "from": "train"}} for each scaled
        (timeseries) modality: the training split's statistics, applied to all three parts."""
        return self.train.normalization


def _stratified_groups(names: np.ndarray, glabel: np.ndarray, n: int, rng: np.random.Generator) -> set:
    """``n`` of the recordings ``names`` (one label each, ``glabel``), drawn stratified by
    class: largest-remainder quotas that sum to exactly ``n``, each class proportional to
    its share, every class present keeping at least one while ``n`` >= the number of
    classes; drawn without replacement with ``rng``. Returns the set of kept names."""
    classes, counts = np.unique(glabel, return_counts=True)
    quota = counts * n / counts.sum()
    take = np.floor(quota).astype(int)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n - take.sum()]] += 1
    if n >= len(classes):
        short = take == 0                     # every class present keeps a label when possible
        while short.any():
            donor = int(np.argmax(take))
            take[donor] -= 1
            take[int(np.flatnonzero(short)[0])] += 1
            short = take == 0
    keep = []
    for c, k in zip(classes, take):
        members = np.flatnonzero(glabel == c)
        keep.extend(rng.choice(members, size=min(int(k), len(members)), replace=False).tolist())
    return set(names[np.sort(np.asarray(keep, dtype=np.int64))].tolist())


def hide_labels(splits: Splits, n_labeled: int, seed: int = 0) -> Splits:
    """``splits`` with the labels of all but ``n_labeled`` training recordings taken away:
    the few-labels, many-pairs setting of cross-modal transfer.

    ``n_labeled`` recordings (``PairedDataset.groups``; each synthetic sample is its own)
    keep their labels, drawn stratified by class (every class keeps
    ``round(n_labeled * share)``, at least one while ``n_labeled`` >= the number of
    classes present; seeded by ``seed``); the other training recordings become
    ``Splits.unlabeled`` with every label set to ``UNLABELED``. Validation and test are
    untouched. ``n_labeled`` equal to the training recordings returns ``splits`` itself
    (no unlabeled part), so such a run is today's run. ``report["labels"]`` records
    ``{"n_labeled", "n_unlabeled", "seed", "unit": "recording"}``.
    """
    if splits.unlabeled is not None:
        raise ValueError("these splits already have an unlabeled part; hide labels of the fully labelled splits")
    train = splits.train
    if (train.labels == UNLABELED).any():
        raise ValueError(f"the training part already holds {train.n_unlabeled} unlabeled samples; pass splits "
                         "whose training labels are all known")
    groups = np.asarray(train.groups)
    names, first = np.unique(groups, return_index=True)          # one label per recording: its first sample's
    if isinstance(n_labeled, bool) or not isinstance(n_labeled, (int, np.integer)) or not 1 <= n_labeled <= len(names):
        raise ValueError(f"n_labeled must be an int in [1, {len(names)}] (the training recordings), got {n_labeled!r}")
    n_labeled = int(n_labeled)
    if n_labeled == len(names):
        return splits
    kept = _stratified_groups(names, train.labels[first], n_labeled, np.random.default_rng(seed))
    is_kept = np.array([g in kept for g in groups])
    labelled, hidden = train.subset(np.flatnonzero(is_kept)), train.subset(np.flatnonzero(~is_kept))
    hidden.labels = np.full(len(hidden), UNLABELED, dtype=np.int64)
    report = {**splits.report, "labels": {"n_labeled": n_labeled, "n_unlabeled": len(names) - n_labeled,
                                          "seed": int(seed), "unit": "recording"}}
    return Splits(labelled, splits.val, splits.test, report, unlabeled=hidden)


def thin_validation(splits: Splits, n_val: int, seed: int = 0) -> Splits:
    """``splits`` whose validation part keeps only ``n_val`` recordings, drawn stratified by
    class like :func:`hide_labels` (seeded by ``seed``); the other validation recordings are
    dropped (not made unlabeled pairs, so a comparison with the full validation part changes
    one thing). Train, unlabeled and test are untouched.

    Why: with few labels, a validation part larger than the labelled training part is a
    label budget the user would not have; choosing the best epoch or lambda on it flatters
    every method that is tuned (Oliver et al., 2018, "Realistic evaluation of deep
    semi-supervised learning algorithms"). ``n_val`` equal to the validation recordings
    returns ``splits`` itself. ``report["validation"]`` records
    ``{"n_val", "n_dropped", "seed", "unit": "recording"}``."""
    val = splits.val
    groups = np.asarray(val.groups)
    names, first = np.unique(groups, return_index=True)
    if isinstance(n_val, bool) or not isinstance(n_val, (int, np.integer)) or not 1 <= n_val <= len(names):
        raise ValueError(f"n_val must be an int in [1, {len(names)}] (the validation recordings), got {n_val!r}")
    n_val = int(n_val)
    if n_val == len(names):
        return splits
    kept = _stratified_groups(names, np.asarray(val.labels)[first], n_val, np.random.default_rng(seed))
    report = {**splits.report, "validation": {"n_val": n_val, "n_dropped": len(names) - n_val, "seed": int(seed),
                                              "unit": "recording"}}
    return Splits(splits.train, val.subset(np.flatnonzero([g in kept for g in groups])), splits.test, report,
                  unlabeled=splits.unlabeled)


class ConcatRows:
    """The rows of several arrays one after another, each read only when an item is asked for
    (``a[i]``, ``a[index_array]``, ``a[start:stop]`` as ``PairedDataset`` and the loaders use
    them; ``np.asarray`` reads them all), like ``splits.LazyRows`` for one array."""

    def __init__(self, parts: Sequence, index: np.ndarray | None = None, _offsets: np.ndarray | None = None):
        self.parts = list(parts)
        shapes = {tuple(p.shape[1:]) for p in self.parts}
        dtypes = {np.dtype(p.dtype) for p in self.parts}
        if len(shapes) > 1 or len(dtypes) > 1:
            raise ValueError(f"rows to concatenate differ in sample shape {sorted(shapes)} or dtype "
                             f"{sorted(map(str, dtypes))}: every part must hold the same kind of sample")
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts]) if _offsets is None else _offsets
        self.index = np.arange(self.offsets[-1], dtype=np.int64) if index is None else np.asarray(index, np.int64)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.parts[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.parts[0].dtype)

    def _where(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        return part, rows - self.offsets[part]

    def __getitem__(self, i):
        if np.isscalar(i) or isinstance(i, (int, np.integer)):
            part, local = self._where(np.asarray(self.index[i]))
            return self.parts[int(part)][int(local)]
        return ConcatRows(self.parts, self.index[i], self.offsets)

    def __array__(self, dtype=None, copy=None):
        out = np.empty(self.shape, dtype=self.dtype)
        part, local = self._where(self.index)
        for k, p in enumerate(self.parts):
            at = np.flatnonzero(part == k)
            if len(at):
                out[at] = np.asarray(p[local[at]])
        return out if dtype is None else out.astype(dtype)


def concat_rows(parts: Sequence):
    """``parts`` one after another without reading them: in-memory arrays are concatenated (they
    are in memory already), rows of one memory-mapped cache (``LazyRows`` of one base) become one
    ``LazyRows``, anything else a :class:`ConcatRows`."""
    from .splits import LazyRows

    if all(isinstance(p, np.ndarray) and not isinstance(p, np.memmap) for p in parts):
        return np.concatenate(parts)
    if all(isinstance(p, LazyRows) for p in parts) and all(p.base is parts[0].base for p in parts):
        return LazyRows(parts[0].base, np.concatenate([p.index for p in parts]))
    return ConcatRows(parts)


def training_set(splits: Splits) -> PairedDataset:
    """What transfer training iterates over: ``splits.train`` and then, if present,
    ``splits.unlabeled`` with every label set to ``UNLABELED`` (whatever it held), in
    one dataset; ``splits.train`` itself when there is no unlabeled part. Raises when
    the two parts differ in modalities or classes, or when ``train`` has no labelled sample.
    A memory-mapped cache stays on disk: the parts' rows are joined lazily (:func:`concat_rows`)."""
    train, extra = splits.train, splits.unlabeled
    if extra is None or len(extra) == 0:
        return train
    if tuple(extra.modalities) != tuple(train.modalities) or list(extra.classes) != list(train.classes):
        raise ValueError(f"the unlabeled part has modalities {extra.modalities} and classes {extra.classes}, the "
                         f"training part {train.modalities} and {train.classes}: they must match")
    if not (train.labels != UNLABELED).any():
        raise ValueError("the training part has no labelled sample: cross-entropy needs at least one")
    if set(train.ids) & set(extra.ids):
        raise ValueError(f"{len(set(train.ids) & set(extra.ids))} sample id(s) are in both the training and the "
                         "unlabeled part: a sample is either labelled or not")
    arrays = {m: concat_rows([train.arrays[m], extra.arrays[m]]) for m in train.modalities}
    labels = np.concatenate([train.labels, np.full(len(extra), UNLABELED, dtype=np.int64)])
    return PairedDataset(arrays, labels, train.classes, np.concatenate([train.subjects, extra.subjects]),
                         [*train.ids, *extra.ids], train.sample_rates, [*train.groups, *extra.groups],
                         kinds=train.kinds, normalization=train.normalization)
