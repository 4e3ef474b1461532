"""The two controls of a transfer study, built from any dataset's splits.

A verdict ("method X helps") is only as good as the pipeline that produced it. Two
studies run beside it check the pipeline on the same data, models and statistics:

- **Negative control** (:func:`break_pairing`): the target modality's inputs are
  shuffled across the samples of each part (train, unlabeled, validation and test
  separately, each with its own permutation), while labels, ids, subjects and the
  source's inputs stay where they were. The target's input then carries no
  information about a sample's label, in training or at test time, so every
  method's expected test macro recall is exactly 1 / classes (every class in the
  test part): for a predictor f fitted without the test permutation, the expected
  recall of class c is the share of test inputs f calls c, and those shares sum
  to 1. With classes absent from the test part (macro recall averages over those
  present) the expectation is the mean of the present classes' shares instead,
  which predictions of an absent class lower, so it can differ between methods
  (``metrics.chance_recall``; the sweep records it per run). With every class
  present, transfer cannot move it; a paired difference whose interval excludes 0
  is a false call. Read it on recall, not F1 (F1's expectation depends on how
  predictions spread over the classes).
  One draw may lean (a method and the baseline can differ on one realised
  permutation); the expectation over draws is 0, which is what pooled verdicts test.

- **Positive control** (:func:`with_teacher`): the source is a copy of the target's
  own sensor (``teacher_name(target)``, the same kind, inputs, rate and scaling),
  trained on every training label, and the target then trains on few labels
  (``data.dataset.hide_labels``) with the rest of the training recordings as
  unlabeled pairs. The teacher knows the labels the target lacks, from an input the
  target also sees, so a transfer method that uses a teacher at all should help here
  by construction. When one does not, that is a finding about the method or the
  setting (its lambda, its pull against cross-entropy), not something to hide.

``sweep.control_studies`` runs both beside a grid (``python -m dcatkit sweep
--controls``); notebook 06 runs simulator-specific controls of the same design
(``studies.STUDIES``).
"""
from __future__ import annotations

import numpy as np

from .dataset import PairedDataset, Splits
from .splits import LazyRows

TEACHER_SUFFIX = "_teacher"
PERMUTATION_TAG = 0x6e6567      # mixed into the seed: the permutation is not the split's own random stream


def teacher_name(target: str) -> str:
    """The modality name of the positive control's teacher: a copy of ``target``."""
    return f"{target}{TEACHER_SUFFIX}"


def _parts(splits: Splits) -> dict[str, PairedDataset]:
    parts = {"train": splits.train, "val": splits.val, "test": splits.test}
    if splits.unlabeled is not None:
        parts["unlabeled"] = splits.unlabeled
    return parts


def _with_arrays(ds: PairedDataset, arrays: dict, kinds: dict, normalization: dict) -> PairedDataset:
    return PairedDataset(arrays, ds.labels, ds.classes, ds.subjects, ds.ids, ds.sample_rates, ds.groups,
                         kinds=kinds, normalization=normalization)


def _permuted(a, perm: np.ndarray):
    """The rows ``a[perm]`` without reading a disk-backed array: a raw ``np.memmap`` becomes
    ``LazyRows`` over it (numpy's ``memmap[perm]`` would copy every row into memory), the
    lazy row views (``LazyRows``, ``ConcatRows``) index themselves lazily, and an in-memory
    array is indexed as usual."""
    if isinstance(a, np.memmap):
        return LazyRows(a, perm)
    return a[perm]


def break_pairing(splits: Splits, modality: str, seed: int = 0) -> Splits:
    """The negative control's data: ``splits`` with ``modality``'s inputs permuted across the
    samples of each part (its own permutation per part, seeded by ``seed``); every other
    modality, the labels, ids, subjects and groups unchanged. Within a part the inputs are
    the same multiset, so the part's scaling statistics hold. A memory-mapped target (the
    real loaders' video and audio caches) stays on disk: its rows are permuted lazily.
    ``report["control"]`` records what was done."""
    splits.train.kind(modality)                   # a clear error when the data lacks it
    rng = np.random.default_rng([int(seed), PERMUTATION_TAG])
    out = {}
    for name, ds in _parts(splits).items():
        perm = rng.permutation(len(ds))
        arrays = {m: (_permuted(a, perm) if m == modality else a) for m, a in ds.arrays.items()}
        out[name] = _with_arrays(ds, arrays, ds.kinds, ds.normalization)
    report = {**splits.report, "control": {"kind": "negative", "modality": modality, "seed": int(seed),
                                           "what": f"{modality}'s inputs permuted within each part"}}
    return Splits(out["train"], out["val"], out["test"], report, unlabeled=out.get("unlabeled"))


def with_teacher(splits: Splits, target: str) -> Splits:
    """The positive control's data: ``splits`` plus a modality ``teacher_name(target)``
    holding the same inputs as ``target`` (same arrays, kind, sample rate and scaling), the
    frozen source of the control. Hide the target's labels afterwards
    (``hide_labels``); train the teacher on every label first."""
    kind = splits.train.kind(target)
    teacher = teacher_name(target)
    if teacher in splits.modalities:
        raise ValueError(f"the data already has a modality {teacher!r}: the positive control's teacher needs that "
                         "name for its copy of the target")
    out = {}
    for name, ds in _parts(splits).items():
        arrays = {**ds.arrays, teacher: ds.arrays[target]}
        norm = dict(ds.normalization)
        if target in norm:
            norm[teacher] = norm[target]
        kinds = {**ds.kinds, teacher: kind}
        copy = _with_arrays(ds, arrays, kinds, norm)
        if target in ds.sample_rates:
            copy.sample_rates = {**ds.sample_rates, teacher: ds.sample_rates[target]}
        out[name] = copy
    report = {**splits.report, "control": {"kind": "positive", "modality": target, "teacher": teacher,
                                           "what": f"{teacher}: a copy of {target}, the teacher"}}
    return Splits(out["train"], out["val"], out["test"], report, unlabeled=out.get("unlabeled"))


POSITIVE_LABEL_SHARE = 0.1      # the positive control's labels by default: a tenth of the training recordings


def default_labels(splits: Splits) -> int:
    """How many training recordings keep their labels in the positive control when the user
    does not say: a tenth of them (``POSITIVE_LABEL_SHARE``), at least one per class, at most
    all but one (so some pairs stay unlabeled). Chosen before any transfer run, from the
    data's size only; ``--control-labels`` overrides it."""
    n_rec = len(set(splits.train.groups))
    return int(min(max(round(POSITIVE_LABEL_SHARE * n_rec), splits.train.num_classes), n_rec - 1))
