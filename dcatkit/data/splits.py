"""Train / validation / test splits, leakage checks, timeseries min-max scaling, and ``from_arrays``.

Splitting works on *recordings* (groups), never on windows, so all windows and
all modalities of one recording land in the same part. ``split=``:

- ``"id"``: stratified random split of recordings (sklearn ``train_test_split``
  with ``stratify``), in-distribution;
- ``"ood"``: subject-disjoint split (sklearn ``GroupShuffleSplit`` over subjects):
  every subject is in exactly one of train / val / test;
- ``"loso"``: leave-one-subject-out cross-validation (sklearn ``LeaveOneGroupOut``
  over subjects): one fold per subject, that subject is the test part;
- ``("group_kfold", k)``: k folds over subjects (sklearn ``GroupKFold``, which
  balances the folds' sizes; the folds do not depend on the seed);
- ``"lists"``: each recording's part is the one a dataset's published list files give
  (``make_splits(lists={recording: part})``); only UESTC-MMEA-CL ships such lists
  (``train.txt`` / ``val.txt`` / ``test.txt``), every other dataset refuses it. ``ratios``
  and ``seed`` do not change it (``report["split"]["ratios"]`` is None).

``"id"``, ``"ood"`` and ``"lists"`` return one :class:`Splits`; ``"loso"`` and ``"group_kfold"``
return a list of them, one per fold, each saying in ``report["split"]`` its
``fold`` and ``held_out_subjects``. In a fold the validation subjects are drawn
(seeded, ``GroupShuffleSplit``) from the fold's training subjects, so the three
parts are subject-disjoint; their number is ``ratios[1] / (ratios[0] + ratios[1])``
of the remaining subjects, at least one.

Ratios are fractions of recordings (ID) or of subjects (OOD). The chosen
recording ids can be written to a JSON ``split_file`` and are reloaded from it
when it exists, so runs compare on the same split; of processes that make the same
split file at once, the first one written is the split they all use.

Before a split is returned, :func:`check_leakage` makes sure no recording (and,
for the subject splits ``ood`` / ``loso`` / ``group_kfold``, no subject) is in
two parts; training code can call it on any :class:`Splits` too.

After splitting, the windows of every ``timeseries`` modality (IMU, or any name
given that kind, see ``dcatkit.modalities``) are min-max scaled to [-1, 1] per
channel with the *training* part's minimum and maximum (paper Sec. V-B.1);
validation and test use the same statistics, so their values may fall outside
[-1, 1]. The statistics are kept so that a model can scale raw data the same way:
``report["normalization"][name]`` = {"method": "minmax", "min": [C], "max": [C],
"from": "train"} (also ``splits.normalization``, ``dataset.normalization``), and,
for ``imu``, the older ``report["imu_minmax"]`` = {"min", "max", "from"}.
``report["kinds"]`` holds {name: kind}.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from .cache import Windows
from ..modalities import NORMALIZED_KINDS, check_sample_shape, check_usable_name, resolve_kinds
from .dataset import PairedDataset, Splits, check_dtype, check_waveform_peak
from .preprocess import minmax_apply, minmax_stats

SPLIT_NAMES = ("train", "val", "test")
SUBJECT_SPLITS = ("ood", "loso", "group_kfold")    # kinds whose parts must not share a subject
FOLD_SPLITS = ("loso", "group_kfold")              # kinds that return one Splits per fold
LIST_SPLIT = "lists"                               # parts from a dataset's published list files (UESTC only)
PLAIN_SPLITS = ("id", "ood", "loso", LIST_SPLIT)    # kinds named by a string alone (group_kfold also takes k)

SplitArg = Union[str, tuple]   # "id" | "ood" | "loso" | "lists" | ("group_kfold", k)

NO_LISTS = ("split='lists' takes each recording's part from a dataset's published train / val / test list "
            "files, and only UESTC-MMEA-CL ships them (load('uestc', root=..., split='lists')); {what} has none: "
            "use split='id' (stratified random) or a subject split")


class LazyRows:
    """Rows ``base[index]`` of a (memory-mapped) array, read only when an item is asked for.

    ``PairedDataset`` indexes its arrays with ``a[i]`` and ``a[index_array]``; this
    keeps both lazy so that a split of a 30 GB video cache does not load it into memory.
    """

    def __init__(self, base: np.ndarray, index: np.ndarray):
        self.base, self.index = base, np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __getitem__(self, i):
        if np.isscalar(i) or isinstance(i, (int, np.integer)):
            return self.base[self.index[i]]
        return LazyRows(self.base, self.index[i])

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.base[self.index])
        return out if dtype is None else out.astype(dtype)


# --------------------------------------------------------------------------- sample identity

CONTENT_ID_PREFIX = "sha256:"


def content_ids(arrays: Mapping[str, np.ndarray]) -> list[str]:
    """A stable id per sample from its content: ``"sha256:<24 hex>"`` of the sample's arrays
    (every modality by name, dtype, shape and bytes, in sorted name order), so the same
    sample has the same id in any order, subset or copy of the data, and two different
    samples (another draw) share none. Identical samples get ``"~2"``, ``"~3"``... appended
    to the second, third... copy (in order), so ids stay unique."""
    names = sorted(arrays)
    n = len(arrays[names[0]]) if names else 0
    ids, seen = [], {}
    for i in range(n):
        h = hashlib.sha256()
        for m in names:
            a = np.ascontiguousarray(np.asarray(arrays[m][i]))
            h.update(f"{m}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        sid = CONTENT_ID_PREFIX + h.hexdigest()[:24]
        seen[sid] = seen.get(sid, 0) + 1
        ids.append(sid if seen[sid] == 1 else f"{sid}~{seen[sid]}")
    return ids


def sample_groups(by_content: Sequence[str], ids: Sequence[str]) -> tuple[list[str], int]:
    """(groups, copies) for ``groups="samples"``: each sample its own recording, named by its id,
    except that identical copies (the same content id, its ``~n`` copy suffix left off) are one
    recording, named by the first copy's id. ``by_content``: :func:`content_ids` over every
    modality of the data (a load of some modalities passes the whole file's, so its split is
    the full load's). ``copies``: how many samples were merged into an earlier one."""
    first: dict[str, str] = {}                               # content (the ~n copy suffix left off) -> 1st id
    groups = [first.setdefault(c.split("~")[0], i) for c, i in zip(by_content, ids)]
    return groups, len(groups) - len(first)


def warn_identical_samples(copies: int, n: int, stacklevel: int = 2) -> None:
    warnings.warn(f"{copies} of {n} samples are identical copies of another sample (every modality equal "
                  "byte for byte: a copied file or row?); with groups='samples' each copy is kept in "
                  "the part of its original, so no sample is in two parts (report['identical_samples'])",
                  stacklevel=stacklevel)


class ModalityContent(dict):
    """``{modality: {sample id: content id of that modality alone}}``: ``report["modality_content"]``
    of ``from_arrays`` data named by content ids. Those ids hash every modality loaded, so one
    sample loaded with (acc) and with (acc, gyro) has two ids; a source's provenance keeps the
    content of its own modality (``provenance.record``), which names the sample in both. Shown
    in short (a report is printed)."""

    def __repr__(self) -> str:
        n = len(next(iter(self.values()), {}))
        return f"ModalityContent({', '.join(self)}: {n} samples)"


def data_fingerprint(ids: Sequence[str]) -> str:
    """sha256 (24 hex) of the sorted ids of a whole dataset (all parts): which data a split
    was cut from. With content ids it is a fingerprint of the content itself."""
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()[:24]


def overlapping_units(units: Sequence, starts: Sequence[float], length: float) -> dict:
    """Unit -> split-unit name: units whose windows overlap in time join one split unit.

    ``units`` / ``starts``: each window's unit (an annotated segment, a clip) and start time (s)
    on one clock (one recording's). Windows all last ``length``, so sorted by start, two overlap
    exactly when their starts are less than ``length`` apart, and a chain of such neighbours is
    one stretch of shared signal. Windows may come in any order (annotations out of time order).
    Names: ``"3"`` for a unit alone, ``"2+3+4"`` for merged ones (members in sorted order).
    """
    parent = {u: u for u in units}

    def root(u):
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    starts = np.asarray(starts, dtype=np.float64)
    order = np.argsort(starts, kind="stable")
    for a, b in zip(order[:-1], order[1:]):
        if starts[b] - starts[a] < length - 1e-9:
            parent[root(units[a])] = root(units[b])
    members: dict = {}
    for u in parent:
        members.setdefault(root(u), []).append(u)
    return {u: "+".join(str(v) for v in sorted(members[root(u)])) for u in parent}


# --------------------------------------------------------------------------- split kinds

def parse_split(split: SplitArg) -> tuple[str, int | None]:
    """``(kind, k)`` from a ``split=`` argument: ``("id", None)`` ... ``("group_kfold", 5)``."""
    if isinstance(split, str) and split in PLAIN_SPLITS:
        return split, None
    if isinstance(split, (tuple, list)) and len(split) == 2 and split[0] == "group_kfold":
        k = split[1]
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 2:
            return "group_kfold", int(k)
        raise ValueError(f"split=('group_kfold', k) needs an integer k >= 2 (the number of folds), got {k!r}")
    hint = " (say how many folds: split=('group_kfold', 5))" if split == "group_kfold" else ""
    raise ValueError(f"split must be 'id' (stratified), 'ood' (subject-disjoint), 'loso' (leave one subject "
                     f"out), ('group_kfold', k) (k folds over subjects) or 'lists' (UESTC-MMEA-CL's published "
                     f"train/val/test lists), got {split!r}{hint}")


def split_tag(split: SplitArg) -> str:
    """A file-name-safe name of a split: ``"id"``, ``"ood"``, ``"loso"``, ``"lists"``, ``"group_kfold5"``."""
    kind, k = parse_split(split)
    return kind if k is None else f"{kind}{k}"


# --------------------------------------------------------------------------- splitting

def check_ratios(ratios) -> tuple[float, float, float]:
    """(train, val, test) fractions: three finite numbers >= 0 that sum to 1, training's above 0."""
    try:
        r = tuple(float(x) for x in ratios)
    except (TypeError, ValueError):
        r = ()
    if len(r) != 3 or not all(np.isfinite(r)) or min(r) < 0 or r[0] <= 0 or abs(sum(r) - 1) > 1e-6:
        raise ValueError(f"ratios must be the (train, val, test) fractions: three numbers >= 0 that sum to 1, "
                         f"e.g. (0.7, 0.15, 0.15); got {ratios!r}")
    return r


def _counts(n: int, ratios: Sequence[float]) -> tuple[int, int]:
    """(n_val, n_test) for ``n`` units, each at least 1 and leaving at least 1 for training."""
    r = np.asarray(ratios, dtype=float)
    r = r / r.sum()
    n_test = max(1, int(round(r[2] * n)))
    n_val = max(1, int(round(r[1] * n)))
    if n_val + n_test >= n:
        raise ValueError(f"cannot split {n} units into train/val/test with ratios {tuple(ratios)}: "
                         "need at least 3, and enough for a non-empty training split")
    return n_val, n_test


def _recordings(groups: Sequence[str], labels: np.ndarray, subjects: np.ndarray, kind: str
                ) -> tuple[list[str], dict[str, int], dict[str, int], int]:
    """Sorted recording ids, each recording's label (its most common one: the stratification
    key) and subject (checked to be unique for subject splits), and how many recordings
    hold windows of several labels."""
    glabels: dict[str, list[int]] = {}
    gsubject: dict[str, int] = {}
    for g, y, s in zip(groups, labels.tolist(), subjects.tolist()):
        glabels.setdefault(g, []).append(y)
        if gsubject.setdefault(g, s) != s and kind in SUBJECT_SPLITS:
            raise ValueError(f"recording {g!r} has windows of subjects {gsubject[g]} and {s}: a subject-wise "
                             f"split (split={kind!r}) needs one subject per recording (split unit)")
    names = sorted(glabels)
    glabel = {g: int(np.bincount(ys).argmax()) for g, ys in glabels.items()}
    mixed = sum(len(set(ys)) > 1 for ys in glabels.values())
    if kind in SUBJECT_SPLITS:
        missing = [g for g in names if gsubject[g] < 0]
        if missing:
            raise ValueError(f"split={kind!r} needs a subject for every recording; {len(missing)} have none "
                             f"(e.g. {missing[:3]}). Provide subjects (or a subject map), or use split='id'.")
    return names, glabel, gsubject, mixed


def _parts_subjects(parts: Mapping[str, Sequence[str]], gsubject: Mapping[str, int]) -> dict[str, list[int]]:
    return {k: sorted({int(gsubject[g]) for g in parts[k]}) for k in SPLIT_NAMES}


def split_recordings(
    groups: Sequence[str], labels: np.ndarray, subjects: np.ndarray, split: SplitArg,
    ratios: Sequence[float], seed: int, lists: Mapping[str, str] | None = None,
) -> list[tuple[dict[str, list[str]], dict[str, Any]]]:
    """Assign each distinct recording (group) to train / val / test, once per fold.

    Returns ``[(parts, info), ...]``: one entry for ``"id"`` / ``"ood"``, one per fold
    for ``"loso"`` / ``("group_kfold", k)``; ``parts`` = {"train": [group ids], "val": [...],
    "test": [...]}, ``info`` = what ``report["split"]`` shows (kind, seed, ratios, fold...).
    ID: stratified by the recording's (most common) label (falls back to unstratified,
    noted in ``info``, when some class has too few recordings). Subject kinds: subject-disjoint.
    ``"lists"``: the part ``lists`` ({recording: "train" | "val" | "test"}) gives each recording.
    """
    from sklearn.model_selection import GroupKFold, GroupShuffleSplit, LeaveOneGroupOut, train_test_split

    kind, k = parse_split(split)
    names, glabel, gsubject, mixed = _recordings(groups, np.asarray(labels), np.asarray(subjects), kind)
    info: dict[str, Any] = {"split": kind, "kind": kind, "seed": seed, "ratios": list(ratios),
                            "unit": "recording", "fold": None, "n_folds": None}
    if mixed:
        info["mixed_label_recordings"] = mixed
    if kind == LIST_SPLIT:
        if lists is None:
            raise ValueError(NO_LISTS.format(what="this data"))
        unplaced = [g for g in names if lists.get(g) not in SPLIT_NAMES]
        if unplaced:
            raise ValueError(f"split='lists': {len(unplaced)} recording(s) have no part (one of {SPLIT_NAMES}) in "
                             f"the lists, e.g. {unplaced[0]!r}: {lists.get(unplaced[0])!r}")
        parts = {k_: [g for g in names if lists[g] == k_] for k_ in SPLIT_NAMES}
        return [(parts, {**info, "ratios": None, "parts_from": "published list files"})]
    if kind == "id":
        y = np.array([glabel[g] for g in names])
        n_val, n_test = _counts(len(names), ratios)
        try:
            rest, test = train_test_split(names, test_size=n_test, stratify=y, random_state=seed)
            y_rest = np.array([glabel[g] for g in rest])
            train, val = train_test_split(rest, test_size=n_val, stratify=y_rest, random_state=seed)
            info["stratified"] = True
        except ValueError as e:  # a class with fewer recordings than splits
            warnings.warn(f"stratified split impossible ({e}); splitting recordings at random instead",
                          stacklevel=3)
            rest, test = train_test_split(names, test_size=n_test, random_state=seed)
            train, val = train_test_split(rest, test_size=n_val, random_state=seed)
            info["stratified"] = False
        return [({"train": sorted(train), "val": sorted(val), "test": sorted(test)}, info)]

    s = np.array([gsubject[g] for g in names])
    idx = np.arange(len(names))
    n_subj = len(np.unique(s))
    if kind == "ood":
        n_val, n_test = _counts(n_subj, ratios)
        rest, test = next(GroupShuffleSplit(1, test_size=n_test, random_state=seed).split(idx, groups=s))
        tr, va = next(GroupShuffleSplit(1, test_size=n_val, random_state=seed).split(rest, groups=s[rest]))
        parts = {k_: sorted(names[i] for i in ix) for k_, ix in zip(SPLIT_NAMES, (rest[tr], rest[va], test))}
        return [(parts, {**info, "subjects": _parts_subjects(parts, gsubject)})]

    # cross-validation over subjects: the fold gives the test subjects, validation comes from the rest
    if kind == "group_kfold":
        if k > n_subj:
            raise ValueError(f"split=('group_kfold', {k}) needs at least {k} subjects, found {n_subj}: "
                             f"use fewer folds (or split='loso')")
        folds, info["k"] = GroupKFold(n_splits=k).split(idx, groups=s), k
    else:
        folds = LeaveOneGroupOut().split(idx, groups=s)
    folds = list(folds)
    r = np.asarray(ratios, dtype=float)
    out = []
    for f, (rest, test) in enumerate(folds):
        n_rest = len(np.unique(s[rest]))
        n_val = max(1, int(round(r[1] / (r[0] + r[1]) * n_rest)))
        if n_val >= n_rest:
            raise ValueError(f"fold {f} of split={split!r} leaves {n_rest} subject(s) for training and "
                             f"validation: need at least 2 (validation subjects come from the training ones); "
                             f"use more subjects or fewer folds")
        tr, va = next(GroupShuffleSplit(1, test_size=n_val, random_state=seed).split(rest, groups=s[rest]))
        parts = {k_: sorted(names[i] for i in ix) for k_, ix in zip(SPLIT_NAMES, (rest[tr], rest[va], test))}
        subj = _parts_subjects(parts, gsubject)
        out.append((parts, {**info, "fold": f, "n_folds": len(folds), "held_out_subjects": subj["test"],
                            "subjects": subj}))
    return out


def check_leakage(splits: Splits | Sequence[Splits], subject_disjoint: bool | None = None
                  ) -> dict | list[dict]:
    """Raise ``ValueError`` when train / val / test share a sample id, a recording or (subject
    splits) a subject.

    splits: a :class:`Splits` (or a list of them, e.g. the folds of ``split="loso"``); a part's
      recordings are ``PairedDataset.groups`` (default: each sample its own recording).
    subject_disjoint: whether no subject may be in two parts; default: from
      ``splits.report["split"]["kind"]`` (yes for ``ood``, ``loso``, ``group_kfold``).
    Returns {"recordings": "disjoint", "subjects": "disjoint" or "not checked (...)"}.
    """
    if isinstance(splits, (list, tuple)):
        return [check_leakage(s, subject_disjoint) for s in splits]
    info = splits.report.get("split") or {}
    kind = info.get("kind", info.get("split"))
    if subject_disjoint is None:
        subject_disjoint = kind in SUBJECT_SPLITS
    parts = dict(zip(SPLIT_NAMES, (splits.train, splits.val, splits.test)))
    problems = []

    pairs = [(a, b) for i, a in enumerate(SPLIT_NAMES) for b in SPLIT_NAMES[i + 1:]]

    def shared(what: str, values: Mapping[str, set]) -> None:
        both = {(a, b): sorted(values[a] & values[b], key=str) for a, b in pairs}
        if any(both.values()):
            n = len(set().union(*both.values()))
            problems.append(f"{n} {what}(s) in more than one part — " + "; ".join(
                f"{a} & {b}: {len(v)} (e.g. {v[:3]})" for (a, b), v in both.items() if v))

    shared("sample", {k: set(d.ids) for k, d in parts.items()})
    shared("recording", {k: set(d.groups) for k, d in parts.items()})
    if subject_disjoint:
        unknown = {k: int((d.subjects < 0).sum()) for k, d in parts.items() if (d.subjects < 0).any()}
        if unknown:
            problems.append(f"samples without a subject (-1) cannot be checked for subject overlap: {unknown}")
        shared("subject", {k: set(d.subjects[d.subjects >= 0].tolist()) for k, d in parts.items()})
    if problems:
        raise ValueError(
            "leakage between train / val / test" + (f" (split={kind!r})" if kind else "") + ": "
            + " | ".join(problems) + ". Windows of one recording (and, for a subject split, all recordings of "
            "one subject) must stay in one part: give the recording of each window (groups=) and its subject, "
            "or delete a split file made for other data.")
    return {"recordings": "disjoint",
            "subjects": "disjoint" if subject_disjoint else f"not checked (split={kind!r} is not subject-wise)"}


# --------------------------------------------------------------------------- split files

def read_split_file(path: Path, groups: Sequence[str], split: SplitArg
                    ) -> list[tuple[dict[str, list[str]], dict]]:
    """``[(parts, info), ...]`` (one per fold) from a JSON file written by :func:`write_split_file`."""
    kind, k = parse_split(split)
    fix = "(a truncated or interrupted copy?): delete it to make a new split, or pass another split_file"
    try:
        data = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"split file {path} is not valid JSON ({e}) {fix}") from None
    listed = data.get("folds", [data]) if isinstance(data, dict) else None
    if not isinstance(listed, list) or not all(isinstance(f, dict) and set(SPLIT_NAMES) <= set(f) and all(
            isinstance(f[k_], list) for k_ in SPLIT_NAMES) for f in listed):   # a string would be read by letter
        raise ValueError(f"split file {path} is not a split (a JSON object with lists {list(SPLIT_NAMES)}, or "
                         f"'folds' of them) {fix}")
    stored = data.get("kind", data.get("split", kind)), data.get("k")
    if stored != (kind, k):
        have = stored[0] if stored[1] is None else (stored[0], stored[1])
        raise ValueError(f"split file {path} holds a {have!r} split but split={split!r} was asked "
                         "for: pass another split_file, or delete this one to make a new split")
    folds = data["folds"] if "folds" in data else [{k_: data[k_] for k_ in SPLIT_NAMES}]
    common = {k_: v for k_, v in data.items() if k_ not in (*SPLIT_NAMES, "folds")}
    present = set(groups)
    out = []
    for fold in folds:
        assigned = {g for k_ in SPLIT_NAMES for g in fold[k_]}
        unknown = sorted(present - assigned)
        if unknown:
            raise ValueError(f"split file {path} does not place {len(unknown)} recording(s) of this dataset, "
                             f"e.g. {unknown[:3]}: it was made for other data or settings. Delete it (or pass "
                             "another split_file) to make a new split.")
        parts = {k_: [g for g in fold[k_] if g in present] for k_ in SPLIT_NAMES}
        info = {"kind": kind, "fold": None, **common, **{k_: v for k_, v in fold.items() if k_ not in SPLIT_NAMES}}
        info.update(split_file=str(path), reloaded=True, absent_from_data=sorted(assigned - present))
        out.append((parts, info))
    return out


def write_split_file(path: Path, folds: Sequence[tuple[dict[str, list[str]], dict]], replace: bool = True) -> bool:
    """One split (``{info..., "train": [...], "val": [...], "test": [...]}``) or, for cross-validation,
    ``{info..., "folds": [{"fold": 0, "held_out_subjects": [...], "train": [...], ...}, ...]}``.

    Written to a temp file of its own (never a name another writer shares) and then moved into
    place, so a reader sees a whole file or none. ``replace=False``: a file already at ``path``
    (another process's, written meanwhile) is kept and False returned; True: this call wrote it."""
    import os

    from ..files import temp_beside

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(folds) == 1 and folds[0][1].get("fold") is None:
        data = {**folds[0][1], **folds[0][0]}
    else:
        per_fold = ("fold", "held_out_subjects", "subjects")
        data = {k: v for k, v in folds[0][1].items() if k not in per_fold}
        data["folds"] = [{**{k: info[k] for k in per_fold if k in info}, **parts} for parts, info in folds]
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=1))
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)                  # takes the name only if it is free: the first writer wins
        except FileExistsError:
            return False
        except OSError:                         # a file system without hard links
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------- assembling

def auto_split_file(split_file, cache_dir, name: str, split: SplitArg, seed: int, ratios,
                    windows: Windows, lists: Mapping[str, str] | None = None) -> Path | None:
    """Resolve ``split_file="auto"``: a file in the cache folder named after what it splits
    (``lists``, the parts of a ``"lists"`` split, are in its key: edited lists get a new file)."""
    if split_file != "auto":
        return None if split_file is None else Path(split_file)
    if cache_dir is None:
        return None
    from .cache import cache_key

    key = cache_key({"groups": sorted(set(zip(windows.groups, windows.subjects.tolist()))),
                     "ratios": list(ratios), **({"lists": sorted(lists.items())} if lists is not None else {})})
    return Path(cache_dir) / "splits" / f"{name}-{split_tag(split)}-seed{seed}-{key}.json"


def _assemble(windows: Windows, parts: dict[str, list[str]], info: dict, normalize: bool,
              kinds: Mapping[str, str]) -> Splits:
    """Datasets of one split (one fold): every timeseries modality min-max scaled with its
    train statistics (recorded in ``report["normalization"]``), leakage checked."""
    groups = np.asarray(windows.groups)
    index = {k: np.flatnonzero(np.isin(groups, np.asarray(parts[k], dtype=groups.dtype))) for k in SPLIT_NAMES}
    for k, ix in index.items():
        if len(ix) == 0:
            raise ValueError(f"the {k} split{'' if info.get('fold') is None else ' of fold %d' % info['fold']} "
                             f"is empty ({len(set(windows.groups))} recordings); use more data or other ratios")
    arrays: dict[str, dict[str, Any]] = {k: {} for k in SPLIT_NAMES}
    report = dict(windows.report)
    normalization: dict[str, dict] = {}
    for m, a in windows.arrays.items():
        if kinds[m] in NORMALIZED_KINDS and normalize:
            lo, hi = minmax_stats(a[index["train"]])
            normalization[m] = {"method": "minmax", "min": lo.tolist(), "max": hi.tolist(), "from": "train"}
            for k in SPLIT_NAMES:
                arrays[k][m] = minmax_apply(a[index[k]], lo, hi)
        else:
            for k in SPLIT_NAMES:
                arrays[k][m] = LazyRows(a, index[k]) if isinstance(a, np.memmap) else a[index[k]]

    report["kinds"] = dict(kinds)
    report["normalization"] = normalization
    if "imu" in normalization:               # the older key, kept for code and files that read it
        report["imu_minmax"] = {k: v for k, v in normalization["imu"].items() if k != "method"}
    datasets = {
        k: PairedDataset(arrays[k], windows.labels[ix], windows.classes, windows.subjects[ix],
                         [windows.ids[i] for i in ix], windows.sample_rates, [windows.groups[i] for i in ix],
                         kinds=kinds, normalization=normalization)
        for k, ix in index.items()
    }
    report["split"] = info
    report["sizes"] = {k: len(ix) for k, ix in index.items()}
    splits = Splits(datasets["train"], datasets["val"], datasets["test"], report)
    report["leakage_check"] = check_leakage(splits)
    return splits


def _subjects_of_data(folds: list[tuple[dict[str, list[str]], dict]], windows: Windows, kind: str
                      ) -> list[tuple[dict[str, list[str]], dict]]:
    """A reloaded subject split's ``subjects`` (and a fold's ``held_out_subjects``) as this data
    has them: the file names the subjects of the data it was written for, which another subject
    numbering of the same recordings changes (the file places recordings, not subjects)."""
    if kind not in SUBJECT_SPLITS:
        return folds
    of: dict[str, set[int]] = {}
    for g, s in zip(windows.groups, np.asarray(windows.subjects).tolist()):
        of.setdefault(g, set()).add(int(s))
    for parts, info in folds:
        subj = {k: sorted(set().union(*(of[g] for g in parts[k] if g in of))) for k in SPLIT_NAMES}
        info["subjects"] = subj
        if kind in FOLD_SPLITS:
            info["held_out_subjects"] = subj["test"]
    return folds


def make_splits(
    windows: Windows,
    split: SplitArg = "id",
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    split_file: str | Path | None = None,
    normalize: bool = True,
    kinds: Mapping[str, str] | None = None,
    *,
    normalize_imu: bool | None = None,
    lists: Mapping[str, str] | None = None,
) -> Splits | list[Splits]:
    """Split ``windows`` by recording, min-max scale every timeseries modality with train
    statistics (``normalize=False``: leave them raw), build datasets.

    ``kinds``: {name: kind} for modalities other than imu / video / audio.
    ``normalize_imu``: the older name of ``normalize``.
    ``lists``: {recording: "train" | "val" | "test"} of ``split="lists"`` (a split file it reloads
    must agree with them).
    Returns one :class:`Splits` for ``"id"`` / ``"ood"`` / ``"lists"``, a list (one per fold) for ``"loso"`` /
    ``("group_kfold", k)``. Every one is checked by :func:`check_leakage` before it is returned.
    """
    if normalize_imu is not None:
        normalize = normalize_imu
    ratios = check_ratios(ratios)
    kinds = resolve_kinds(list(windows.arrays), kinds)
    kind, _ = parse_split(split)
    listed = (split_recordings(windows.groups, windows.labels, windows.subjects, split, ratios, seed, lists)
              if kind == LIST_SPLIT else None)            # what the lists say, whatever a split file says
    if split_file is not None and Path(split_file).exists():
        folds = _subjects_of_data(read_split_file(Path(split_file), windows.groups, split), windows, kind)
    else:
        folds = listed or split_recordings(windows.groups, windows.labels, windows.subjects, split, ratios, seed)
        if split_file is not None:
            if write_split_file(Path(split_file), folds, replace=False):
                for _, info in folds:
                    info["split_file"] = str(split_file)
            else:          # another process wrote it meanwhile: its split is the one every run uses
                folds = _subjects_of_data(read_split_file(Path(split_file), windows.groups, split), windows, kind)
    if listed is not None and folds is not listed:
        _agrees_with_lists(folds[0][0], listed[0][0], split_file)
    if "data_fingerprint" not in windows.report:         # a loader's windows: named by the loader's ids
        windows = dataclasses.replace(windows, report={**windows.report, "id_source": "given",
                                                       "data_fingerprint": data_fingerprint(windows.ids)})
    out = [_assemble(windows, parts, info, normalize, kinds) for parts, info in folds]
    labels = np.asarray(windows.labels, dtype=np.int64)
    counts = np.bincount(labels[labels >= 0], minlength=len(windows.classes))
    empty = [c for c, n in zip(windows.classes, counts) if n == 0]
    if empty:
        warnings.warn(f"{len(empty)} of {len(windows.classes)} classes have no sample at all: {empty} (every one of "
                      "their recordings was left out or none exists; see Splits.report). The models still get "
                      f"{len(windows.classes)} outputs; choose the classes to load to leave them out.", stacklevel=3)
    listed = {k: v for k, v in windows.report.items() if isinstance(v, list) and v and k in
              ("skipped", "missing_modality", "too_short", "unlabelled", "missing_files", "out_of_range",
               "unmatched_annotations", "duplicate_annotations", "conflicting_labels")}
    if listed:
        warnings.warn("left out: " + ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in listed.items())
                      + " (names in Splits.report)", stacklevel=3)
    return out if kind in FOLD_SPLITS else out[0]


def _agrees_with_lists(parts: Mapping[str, Sequence[str]], listed: Mapping[str, Sequence[str]], path) -> None:
    """Refuse a reloaded ``"lists"`` split file that puts a recording in another part than the lists do."""
    in_file = {g: k for k, gs in parts.items() for g in gs}
    moved = [(g, k) for k, gs in listed.items() for g in gs if in_file.get(g) != k]
    if moved:
        g, k = moved[0]
        raise ValueError(f"split file {path} puts {len(moved)} recording(s) in another part than the list files "
                         f"do, e.g. {g!r}: {in_file.get(g)} in the file, {k} in the lists (made from other "
                         "lists?): delete it, or pass another split_file, to split by these lists")


def _whole_numbers(values, hint: str) -> np.ndarray:
    """(N,) int64 from ``values``, refusing what a cast would fail on or silently change (names,
    booleans, fractions, NaN, another shape) with ``hint`` saying what is expected."""
    raw = np.asarray(values)
    if raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.number):
        raise ValueError(f"{hint}; got dtype {raw.dtype}, e.g. {raw.ravel()[:3].tolist()}")
    if raw.ndim != 1:
        raise ValueError(f"{hint}, one per sample: shape (N,), got {raw.shape}")
    if np.issubdtype(raw.dtype, np.floating):
        bad = ~np.isfinite(raw) | (raw != np.round(raw))
        if bad.any():
            raise ValueError(f"{hint}; {int(bad.sum())} are not whole numbers (NaN or fractions), "
                             f"the first at position {int(np.flatnonzero(bad)[0])}: {float(raw[bad][0])!r}")
    return raw.astype(np.int64)


def _int_labels(labels) -> np.ndarray:
    """(N,) int64 labels, refusing what a cast would silently change (names, fractions, NaN, < 0)."""
    hint = "labels must be class indices 0..K-1 (map names to indices and pass classes=[...] in that order)"
    out = _whole_numbers(labels, hint)
    if len(out) and out.min() < 0:
        raise ValueError(f"{hint}; {int((out < 0).sum())} are negative, the first at position "
                         f"{int(np.flatnonzero(out < 0)[0])}: {int(out[out < 0][0])}")
    return out


def _int_subjects(subjects) -> np.ndarray:
    """(N,) int64 subject ids (-1: unknown), refusing names and fractions, which a cast would fail on or change."""
    return _whole_numbers(subjects, "subjects must be integer ids (-1: unknown); to number names such as 'P0', "
                                    "pass np.unique(names, return_inverse=True)[1]")


def from_arrays(
    arrays: Mapping[str, np.ndarray],
    labels: Sequence[int],
    subjects: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    split: SplitArg = "id",
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    ids: Sequence[str] | None = None,
    sample_rates: Mapping[str, float] | None = None,
    groups: Sequence[str] | str | None = None,
    split_file: str | Path | None = None,
    normalize: bool = True,
    kinds: Mapping[str, str] | None = None,
    *,
    normalize_imu: bool | None = None,
) -> Splits | list[Splits]:
    """Train / val / test datasets from paired in-memory arrays, for your own sensors.

    >>> splits = from_arrays({"acc": acc, "gyro": gyro}, labels, groups=recording_ids,
    ...                      kinds={"acc": "timeseries", "gyro": "timeseries"})

    ``arrays``: modality name -> (N, ...) with the item format of ``dcatkit.data.dataset``,
    one sample's shape fitting the modality's kind: timeseries (N, C, L) raw — any channel
    count, min-max scaled here with training statistics (``normalize=False``: left raw);
    video (N, T, 3, H, W) uint8 RGB, or float RGB already in [0, 1] (a model trained on float
    frames is exported with ``dcatkit.export(..., input_dtype="float32")`` to take them);
    audio (N, S) mono float waveforms in [-1, 1] (integer PCM, or float at PCM scale -- peak
    |x| beyond ``dataset.WAVEFORM_PEAK_LIMIT`` -- is refused: pass x / 32768 for 16-bit PCM, the
    refusal names other depths' scaling); features (N, T, F).
    ``kinds``: {name: kind} ("timeseries", "video", "audio", "features"); the names imu,
    video and audio default to their kinds, every other name needs one.
    ``labels`` (N,) ints in [0, K).
    ``subjects`` (N,) integer ids (-1: unknown) enables the subject splits (``"ood"``, ``"loso"``,
    ``("group_kfold", k)``).
    ``groups`` is required: (N,) the recording each sample was cut from, so windows of one
    recording stay in one part; or ``"samples"`` when every sample is an independent
    recording (never true of overlapping or consecutive windows of one recording); then
    identical samples (every modality equal byte for byte) are one recording, counted in
    ``report["identical_samples"]`` with a warning, so a copy is never in two parts.
    ``ids``: (N,) your sample ids, unique and the same for the same sample wherever it
    appears (a file name and window start, say); without them each sample's id is derived
    from its content (:func:`content_ids`, ``"sha256:..."``), so a source trained on a subset
    or a reordered copy of the same data is still recognised. ``report["id_source"]`` says
    which ("given" or "content"); ``report["data_fingerprint"]`` identifies the data
    (:func:`data_fingerprint` of all samples' content ids, whichever ids are used). Both go into a trained model's provenance and
    decide whether a reused source saw this run's validation or test samples. Content ids hash
    every modality passed, so with them ``report["modality_content"]`` (:class:`ModalityContent`)
    also names each sample by each modality's content alone: a source trained on ``{"acc": acc}``
    is then recognised on ``{"acc": acc, "gyro": gyro}``.
    ``split``: see the module docstring; the cross-validation splits return a list of
    :class:`Splits`, one per fold. ``normalize_imu``: the older name of ``normalize``.
    Raises ValueError for arrays of different lengths, an unknown kind, a name without a
    kind, a kind for a name that is not in ``arrays``, or a sample shape that does not fit.
    """
    if not isinstance(arrays, Mapping) or not arrays:
        raise ValueError("from_arrays needs arrays={name: (N, ...) array}, at least one modality, e.g. "
                         f"{{'acc': acc, 'gyro': gyro}}; got {type(arrays).__name__} {arrays!r:.60}")
    labels = _int_labels(labels)
    n = len(labels)
    if classes is None:
        classes = [str(c) for c in range(int(labels.max()) + 1 if n else 0)]
    id_source = "given" if ids is not None else "content"
    if ids is not None:
        ids = [str(i) for i in ids]
        if len(ids) != n:
            raise ValueError(f"ids has {len(ids)} entries, labels {n}: give one id per sample (or none: then "
                             "ids are derived from each sample's content)")
        if len(set(ids)) != n:
            raise ValueError(f"ids must be unique, got {n - len(set(ids))} duplicate(s)")
    if groups is None:
        raise ValueError(
            "from_arrays needs groups=: the recording each sample was cut from, e.g. groups=recording_ids "
            "(N,). Windows cut from one longer recording share most of their signal; split one by one, "
            "neighbouring windows land in train and test and the test score is inflated (leakage). If every "
            "sample really is an independent recording, say so with groups='samples'.")
    if isinstance(groups, str):
        if groups != "samples":
            raise ValueError(f"groups must be a sequence of recording ids (one per sample) or 'samples', "
                             f"got the string {groups!r}")
        groups = None                                        # = the ids, once they are known
    else:
        groups = [str(g) for g in groups]
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries, labels {n}: give one recording id per sample")
    subj = np.full(n, -1, np.int64) if subjects is None else _int_subjects(subjects)
    if len(subj) != n:
        raise ValueError(f"subjects has {len(subj)} entries, labels {n}: give one subject per sample")
    arrays = {check_usable_name(m): np.asarray(a) for m, a in arrays.items()}
    kinds = resolve_kinds(list(arrays), kinds)
    lengths = {m: (len(a) if a.ndim else 0) for m, a in arrays.items()}
    if any(v != n for v in lengths.values()):
        shown = ", ".join(f"{m} {v}" for m, v in lengths.items())
        raise ValueError(f"arrays of different lengths: {shown} samples, labels {n}. Every modality needs one "
                         "sample per label, in the same order (paired sample by sample)")
    for m, a in arrays.items():
        check_sample_shape(m, kinds[m], a.shape[1:])
        if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"modality {m!r} must hold numbers, got dtype {a.dtype}")
        if kinds[m] == "video" and np.issubdtype(a.dtype, np.floating) and a.size and (a.min() < 0 or a.max() > 1):
            raise ValueError(f"modality {m!r} (video) holds floats in [{a.min():g}, {a.max():g}]: float frames are read "
                             "as already scaled to [0, 1]; pass uint8 frames (0-255) or divide by 255 first")
        check_dtype(m, kinds[m], a.dtype, a.ndim - 1)
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise ValueError(f"modality {m!r} has {int((~np.isfinite(a)).sum())} NaN or infinite values: fill or "
                             "drop those samples first (min-max scaling and training need finite numbers)")
        check_waveform_peak(m, kinds[m], a, a.ndim - 1)     # float audio at PCM scale, over all samples
    by_content = content_ids(arrays)                        # (N,) one hash per sample
    ids = by_content if ids is None else ids
    report = {"id_source": id_source, "data_fingerprint": data_fingerprint(by_content)}
    if id_source == "content":             # each modality's own content, which names a sample whatever else is loaded
        own = {m: by_content if len(arrays) == 1 else content_ids({m: a}) for m, a in arrays.items()}
        report["modality_content"] = ModalityContent(
            {m: {i: c.split("~")[0] for i, c in zip(ids, h)} for m, h in own.items()})
    if groups is None:             # groups="samples": each sample its own recording, but identical copies one
        groups, copies = sample_groups(by_content, ids)
        if copies:
            report["identical_samples"] = copies
            warn_identical_samples(copies, n, stacklevel=3)
    windows = Windows(arrays, labels, subj, ids, groups, list(classes), dict(sample_rates or {}), report)
    return make_splits(windows, split, ratios, seed, split_file, normalize, kinds,
                       normalize_imu=normalize_imu)
