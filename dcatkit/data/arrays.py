"""Your own sensors as a dataset on disk: ``save_arrays`` writes what ``from_arrays`` takes to
one ``.npz`` file, and ``load("arrays", root=that_file, ...)`` reads it back and splits it.

Why a file: a sweep's runs train in worker processes (and on other nodes, with ``--shard``),
and each finds its data by name and root, as for the paper's datasets. With your arrays saved
once, everything that takes ``dataset=`` and ``root=`` works on them: data draws (the split
seed), a sweep with its negative and positive controls, resumable runs identified by the data's
content, the notebooks' ``dataset`` / ``data_root`` parameters and the command line::

    from dcatkit.data import save_arrays
    save_arrays("wrist.npz", {"acc": acc, "gyro": gyro}, labels, groups=recording,
                kinds={"acc": "timeseries", "gyro": "timeseries"}, classes=["walk", "run", "sit", "stand"])

    python -m dcatkit sweep --controls --dataset arrays --root wrist.npz --source acc --target gyro \\
        --seeds 0-9 --data-seeds 0-2

``load("arrays", root, split, seed)`` is ``from_arrays`` on the saved arrays with that split and
seed: the same splits, ids and normalisation as calling ``from_arrays`` yourself. The file is
read without pickle (``allow_pickle=False``): labels, groups, subjects and ids are stored as
plain arrays, names, kinds, classes and sample rates as one JSON string.
"""
from __future__ import annotations

import functools
import json
import zipfile
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..files import write_atomically
from .dataset import Splits
from .preprocess import UnreadableFile
from .splits import SplitArg, content_ids, data_fingerprint, from_arrays, sample_groups, warn_identical_samples

FORMAT = "dcatkit-arrays/1"
LAYOUT = """\
wrist.npz                 one file written by dcatkit.data.save_arrays
  meta                    JSON: format, modality names in order, kinds, classes, sample rates
  sensor_0, sensor_1 ...  the modalities' arrays, (N, ...) each, in the order of meta's names
  labels                  (N,) ints in [0, K)
  groups                  (N,) the recording each sample was cut from
  subjects, ids           (N,) each, when given
  content_ids             (N,) each sample's content id over every modality, when ids are not
                          given (a load of some modalities names samples without reading the rest)"""


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray], labels: Sequence[int], *,
                groups: Sequence | str, subjects: Sequence | None = None, classes: Sequence[str] | None = None,
                ids: Sequence[str] | None = None, kinds: Mapping[str, str] | None = None,
                sample_rates: Mapping[str, float] | None = None) -> Path:
    """Write paired arrays to ``path`` (a ``.npz`` file) for ``load("arrays", root=path)``.

    The arguments are ``from_arrays``'s, which checks them here first (lengths, kinds,
    sample shapes, labels, groups), so a file that is written also loads. Written atomically
    (a temporary file, then ``os.replace``): an interrupted save leaves no half file.
    Returns the path written (``.npz`` appended when missing, as numpy does)."""
    # once, as given (an iterator would be used up by the check below and then saved empty)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    labels, groups, subjects, classes, ids = (x if x is None or isinstance(x, (str, np.ndarray)) else list(x)
                                              for x in (labels, groups, subjects, classes, ids))
    from_arrays(arrays, labels, subjects, classes, ids=ids, sample_rates=sample_rates, groups=groups,
                kinds=kinds, normalize=False)              # every check from_arrays makes, before writing
    path = Path(path).expanduser()
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    names = list(arrays)
    plain = lambda v: v.item() if isinstance(v, np.generic) else v       # noqa: E731  JSON keeps str / int
    meta = {"format": FORMAT, "names": names, "kinds": dict(kinds or {}),
            "classes": None if classes is None else [plain(c) for c in classes],
            "sample_rates": None if sample_rates is None else {k: None if v is None else float(v)
                                                               for k, v in sample_rates.items()},
            "groups": "samples" if isinstance(groups, str) else None}
    payload = {"meta": np.array(json.dumps(meta)), "labels": np.asarray(labels, dtype=np.int64)}
    payload.update({f"sensor_{i}": np.asarray(arrays[name]) for i, name in enumerate(names)})
    if not isinstance(groups, str):
        payload["groups"] = np.asarray([str(g) for g in groups])
    if subjects is not None:
        payload["subjects"] = np.asarray(subjects)
    if ids is not None:
        payload["ids"] = np.asarray([str(i) for i in ids])
    else:     # what from_arrays names the samples by, kept so a subset load need not read every modality
        payload["content_ids"] = np.asarray(content_ids(arrays))
    return write_atomically(path, lambda f: np.savez(f, **payload), binary=True, fsync=True,
                            prefix=f".{path.name}.", suffix=".part")


def saved_modalities(root: str | Path) -> dict[str, str]:
    """{name: kind} of the modalities saved at ``root``, in order, reading only the file's
    ``meta`` entry (what a notebook checks its ``source`` / ``target`` against before
    loading anything)."""
    from ..modalities import resolve_kinds

    path, f = _open(root)
    with f:
        meta = _meta(path, f)
    return resolve_kinds(meta["names"], meta["kinds"])


def _open(root: str | Path):
    """(path, open NpzFile) of a file written by ``save_arrays``, or a clear error."""
    path = Path(root).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"arrays: no file {path} (root is the .npz file written by "
                                "dcatkit.data.save_arrays, not a folder)")
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as e:           # not a zip / npy at all
        raise ValueError(f"arrays: {path} is not a .npz file written by dcatkit.data.save_arrays "
                         f"({type(e).__name__}: {str(e).split('. ')[0]})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"arrays: {path} holds a single array, not the .npz file dcatkit.data.save_arrays writes")
    return path, f


def _entry(path: Path, f, key: str) -> np.ndarray:
    """One entry of the file; one that needs pickle (an object array: code could run on load)
    is refused, not read."""
    try:
        return f[key]
    except ValueError as e:
        if "pickle" not in str(e):
            raise UnreadableFile(path, f"entry {key!r}: {e} (a damaged copy? write it again with save_arrays)") \
                from None
        raise ValueError(f"arrays: {path} entry {key!r} holds Python objects, which would need pickle to read "
                         f"(and could run code); save_arrays writes plain arrays only ({e})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise UnreadableFile(path, f"entry {key!r}: {type(e).__name__}: {e} (a damaged copy? write it again with "
                                   "save_arrays)") from None


def _meta(path: Path, f) -> dict:
    if "meta" not in f.files:
        raise ValueError(f"arrays: {path} has no 'meta' entry (found {sorted(f.files)}): write it with "
                         "dcatkit.data.save_arrays")
    try:
        meta = json.loads(str(_entry(path, f, "meta")))
    except json.JSONDecodeError as e:
        raise UnreadableFile(path, f"its 'meta' entry is not the JSON save_arrays writes ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"arrays: {path} is format {found!r}, this dcatkit reads {FORMAT!r} (files of "
                         "dcatkit.data.save_arrays)")
    need = {"names": list, "kinds": dict, "classes": (list, type(None)), "sample_rates": (dict, type(None)),
            "groups": (str, type(None))}
    bad = [k for k, t in need.items() if not isinstance(meta.get(k, KeyError), t)]
    if bad or not all(isinstance(n, str) for n in meta["names"]):
        raise UnreadableFile(path, f"its 'meta' entry lacks or mistypes {bad or ['names']} (a hand-edited or "
                                   "damaged copy? write it again with save_arrays)")
    return meta


def read_arrays(root: str | Path, modalities: Sequence[str] | None = None) -> dict:
    """The saved file's contents as ``from_arrays``'s arguments: {"arrays", "labels", "groups",
    "subjects", "classes", "ids", "kinds", "sample_rates"}, plus "content_ids" (each sample's
    content id over every saved modality, or None for a file saved with ids or before they
    were kept). ``modalities``: read only these (default: all); the others stay on disk. A
    file not written by ``save_arrays`` is a ValueError that says what was expected and what
    was found."""
    path, f = _open(root)
    with f:
        keys, meta = set(f.files), _meta(path, f)
        names = meta["names"]
        unknown = [m for m in modalities or () if m not in names]
        if unknown:
            raise ValueError(f"arrays: {root} has no modality {unknown}: it holds {names}")
        need = {"labels", *(f"sensor_{i}" for i in range(len(names)))} | ({"groups"} if meta["groups"] is None
                                                                          else set())
        missing = sorted(need - keys)
        if missing:
            raise ValueError(f"arrays: {path} lacks {missing} (a damaged copy?): write it again with save_arrays")
        get = functools.partial(_entry, path, f)
        return {"arrays": {m: get(f"sensor_{names.index(m)}") for m in (names if modalities is None else modalities)},
                "labels": get("labels"), "groups": meta["groups"] or get("groups").tolist(),
                "subjects": get("subjects") if "subjects" in keys else None, "classes": meta["classes"],
                "ids": get("ids").tolist() if "ids" in keys else None, "kinds": meta["kinds"] or None,
                "sample_rates": meta["sample_rates"],
                "content_ids": get("content_ids").tolist() if "content_ids" in keys else None}


def load_arrays(root: str | Path, split: SplitArg = "id", modalities: Sequence[str] | None = None,
                seed: int = 0, *, ratios: Sequence[float] = (0.7, 0.15, 0.15),
                split_file: str | Path | None = None, normalize: bool = True) -> Splits | list[Splits]:
    """``from_arrays`` on the arrays saved at ``root`` by ``save_arrays``, split by ``split``
    with ``seed`` (a data draw); ``modalities``: a subset of the saved names (default: all).
    Without saved ids, a sample's id is its content in *every* saved modality, so a source
    trained on (acc, gyro) and a target loaded with gyro alone name the same samples alike
    (``from_arrays`` on the subset alone would hash the subset). Those ids are kept in the file
    (``content_ids``), so a subset is read without the other modalities (a file saved before
    they were kept is read whole once, to hash every modality)."""
    names = list(saved_modalities(root))
    subset = modalities is not None and list(modalities) != names
    d = read_arrays(root, modalities if subset else None)
    arrays, ids, whole, id_source = d["arrays"], d["ids"], None, None
    groups, copies = d["groups"], 0
    if subset:
        # the file's samples named by every saved modality, whichever are loaded
        by_content = d["content_ids"] or content_ids(read_arrays(root)["arrays"])
        whole = data_fingerprint(by_content)
        if ids is None:
            ids, id_source = by_content, "content"
        if groups == "samples":
            # identical copies are merged by their content in *every* saved modality, as a full load merges
            # them: grouped by the loaded modalities alone (six windows with the gyro all zero would be one
            # recording in a gyro-only load), the split would differ from the full load's for the same seed
            groups, copies = sample_groups(by_content, ids)
    kinds = {k: v for k, v in (d["kinds"] or {}).items() if k in arrays} or None
    rates = {k: v for k, v in (d["sample_rates"] or {}).items() if k in arrays} or None
    out = from_arrays(arrays, d["labels"], d["subjects"], d["classes"], split=split, ratios=ratios, seed=seed,
                      ids=ids, sample_rates=rates, groups=groups, split_file=split_file,
                      normalize=normalize, kinds=kinds)
    if copies:               # as a load of every modality warns and reports them
        warn_identical_samples(copies, len(d["labels"]), stacklevel=3)
    if whole is not None:    # as a load of every modality reports them
        for s in out if isinstance(out, list) else [out]:
            s.report.update(data_fingerprint=whole, **({"id_source": id_source} if id_source else {}),
                            **({"identical_samples": copies} if copies else {}))
    return out
