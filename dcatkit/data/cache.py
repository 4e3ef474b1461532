"""Decode a dataset once into on-disk, memory-mapped window arrays.

A loader describes its recordings and a ``decode(recording)`` function that
returns that recording's windows; :func:`collect` runs it over all recordings
(with a progress bar) and stacks the windows. With a ``cache_dir`` the windows
go straight to raw files on disk::

    <cache_dir>/<name>-<key>/meta.json       labels, subjects, ids, groups, classes, report
                             <modality>.bin  raw array, shape and dtype in meta.json
                             COMPLETE        written last

``key`` hashes the preprocessing settings and the input files (path, size,
mtime; a folder of frames by its files), so changing either builds a new cache.
The build happens in a temporary folder that is renamed into place only after
``COMPLETE`` is written: an interrupted build is never mistaken for a complete cache, and is rebuilt; the
temporary folder a killed build left behind is removed by the next build (a live
build's folder is locked and kept: ``build_folder``, ``remove_stale_builds``). A
damaged cache file (truncated, missing, unreadable) is a ValueError naming it.
Under torchrun one process per node (local rank 0) builds while the others wait
at a barrier and then read it; a complete folder is never removed or replaced
(two builders racing for one key: the later one keeps the first one's folder).

On-disk dtypes: video uint8 (N, T, 3, H, W), audio float16 (N, S), IMU float16
(N, C, L) (raw, un-normalised: min-max scaling needs the split, which comes later).
A window whose audio or IMU values lie beyond float16's +-65504 (which the cast would make
infinite, and min-max scaling NaN) is refused like an unreadable file, with a hint at the
loader's scale options; the same holds without a cache (the windows are kept as float16 too).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .. import distributed as dist
from .preprocess import Dropped, UnreadableFile

DISK_DTYPES = {"video": np.uint8, "audio": np.float16, "imu": np.float16}
MARKER = "COMPLETE"


@dataclass
class Windows:
    """All windows of a dataset before splitting; every field has one entry per window."""

    arrays: dict[str, np.ndarray]           # modality -> (N, ...), np.memmap when cached
    labels: np.ndarray                      # (N,) int64
    subjects: np.ndarray                    # (N,) int64, -1 unknown
    ids: list[str]                          # (N,) unique window ids
    groups: list[str]                       # (N,) recording id: windows of a group share a split
    classes: list[str]
    sample_rates: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)


def fingerprint(paths: Iterable[Path], root: Path) -> list[list]:
    """[relative path, size, mtime_ns] of each file, the part of a cache key that tracks inputs.
    A folder (of JPEG frames) stands for the files in it: its own mtime does not change when
    a file in it is overwritten."""
    out = []
    for p in paths:
        if p.is_dir():
            out.extend(fingerprint(sorted(p.iterdir()), root))
            continue
        st = p.stat() if p.exists() else None
        out.append([os.path.relpath(p, root), st.st_size if st else -1, st.st_mtime_ns if st else -1])
    return out


def cache_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_cache_dir(root: Path) -> Path:
    """``<root>/.dcatkit_cache`` when the dataset folder is writable, else ``~/.cache/dcatkit``."""
    if os.access(root, os.W_OK):
        return root / ".dcatkit_cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dcatkit"


def resolve_cache_dir(cache_dir, root: Path) -> Path | None:
    """A loader's ``cache_dir`` option as a folder: None or True, the default
    (``default_cache_dir``); False, no cache (None); a path, that folder. Anything else
    is a ValueError naming what was found."""
    if cache_dir is None or cache_dir is True:
        return default_cache_dir(root)
    if cache_dir is False:
        return None
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise ValueError(f"cache_dir must be a folder (a str or path), True (the default folder) or False (no cache); "
                         f"got {cache_dir!r} ({type(cache_dir).__name__})")
    return Path(cache_dir)


def collect(
    name: str,
    recordings: Sequence[Any],
    decode: Callable[[Any], dict],
    *,
    classes: Sequence[str],
    settings: dict,
    cache_dir: Path | str | None,
    sample_rates: dict[str, float] | None = None,
    on_error: str = "raise",
    progress: bool = True,
) -> Windows:
    """Decode every recording (or reuse a complete cache) and stack the windows.

    ``decode(rec)`` returns ``{"arrays": {m: (K, ...)}, "labels": (K,), "subjects": (K,),
    "ids": [K], "groups": [K], "rates": {m: native Hz}, "notes": {reason: [names]}}`` (rates and
    notes optional; notes list parts left out, e.g. too-short segments) or raises
    :class:`UnreadableFile` (re-raised, or skipped and listed under ``report["skipped"]``
    when ``on_error="skip"``) or :class:`Dropped` (always listed under ``report[reason]``).
    ``str(rec)`` names a recording in messages. ``settings`` must describe everything that
    changes the output (preprocessing options, file fingerprints).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    settings = dict(settings, name=name, on_error=on_error, classes=list(classes))
    windows = _collect(name, recordings, decode, classes, settings, cache_dir, sample_rates, on_error, progress)
    windows.report["preprocessing"] = preprocessing_key(settings)
    return windows


def preprocessing_key(settings: dict) -> str:
    """What the windows are made of, in short: a hash of the loader's settings with each
    input file named by path and size only (not its time: a copy of the dataset on another
    node has the same key). ``Splits.report["preprocessing"]``: a resumed run must share it."""
    files = [f[:2] for f in settings.get("files", [])]
    return cache_key({**settings, "files": files})


def _collect(name, recordings, decode, classes, settings, cache_dir, sample_rates, on_error, progress) -> Windows:
    if cache_dir is None:
        return _build(recordings, decode, classes, sample_rates or {}, on_error, progress, name, None)
    cache_dir = Path(cache_dir)
    final = cache_dir / f"{name}-{cache_key(settings)}"

    def build() -> Windows:
        if (final / MARKER).exists():
            return _load(final)
        # leftovers of killed builds (of any key) go first; this build's folder is locked
        with build_folder(cache_dir, f".tmp-{final.name}-", stale=".tmp-") as tmp:
            _build(recordings, decode, classes, sample_rates or {}, on_error, progress, name, tmp)
            (tmp / "settings.json").write_text(json.dumps(settings, sort_keys=True, default=str))
            (tmp / MARKER).write_text("ok\n")  # last file written: its presence means complete
            dist.publish_folder(tmp, final, MARKER)
        return _load(final)

    # under torchrun: local rank 0 builds, the node's other processes wait, then read
    return dist.build_once(build, lambda: _load(final))



class _Sink:
    """Appends window arrays to raw files (``folder``) or to in-memory lists (None)."""

    def __init__(self, folder: Path | None):
        self.folder, self.files, self.parts, self.meta = folder, {}, {}, {}

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        for m, a in arrays.items():
            a = np.ascontiguousarray(a, dtype=DISK_DTYPES[m])
            shape = self.meta.setdefault(m, {"dtype": np.dtype(a.dtype).name, "shape": [0, *a.shape[1:]]})["shape"]
            if list(a.shape[1:]) != shape[1:]:
                raise ValueError(f"{m} windows of shape {a.shape[1:]} after {shape[1:]}: preprocessing must "
                                 "give every window the same shape")
            shape[0] += len(a)
            if self.folder is None:
                self.parts.setdefault(m, []).append(a)
            else:
                if m not in self.files:
                    self.files[m] = open(self.folder / f"{m}.bin", "wb")
                self.files[m].write(a.tobytes())

    def close(self) -> dict[str, np.ndarray]:
        for f in self.files.values():
            f.close()
        if self.folder is None:
            return {m: np.concatenate(p) for m, p in self.parts.items()}
        return {}


F16_MAX = float(np.finfo(np.float16).max)     # 65504: the largest value a float16 cache holds
_SCALE_HINTS = {
    "imu": "the IMU scale options are likely off (UESTC: acc_scale= and gyro_scale= are raw counts per g and "
           "per deg/s, 16384 and 16.4 by default; Cough reads g and deg/s from its csv files)",
    "audio": "a waveform must lie in [-1, 1] (integer PCM divided by its full scale, e.g. x / 32768)",
}


def _beyond_disk_range(arrays: dict[str, np.ndarray]) -> str | None:
    """Why a window's values cannot be stored in their on-disk float16 dtype (None: they can).
    The cast would turn |x| > 65504 into inf, and min-max scaling then into NaN."""
    for m, a in arrays.items():
        a = np.asarray(a)
        if DISK_DTYPES.get(m) != np.float16 or not a.size or not np.issubdtype(a.dtype, np.number):
            continue
        peak = float(np.abs(a).max())
        if peak > F16_MAX:
            return (f"its decoded {m} values reach {peak:.6g} in magnitude, beyond the +-{F16_MAX:g} that the {m} cache "
                    f"(float16) holds: {_SCALE_HINTS.get(m, 'check the loader options that scale ' + m)}")
    return None


def _check_chunk(chunk: dict, seen: dict, rec: Any, name: str) -> None:
    """A decoder's windows of one recording must hold every modality, one window per label, and
    the same modalities as the recordings before it; otherwise the build stops here, naming the
    recording, before a cache is written that every later load would refuse as damaged."""
    n = len(chunk["labels"])
    counts = {m: len(a) for m, a in chunk["arrays"].items()}
    if any(c != n for c in counts.values()):
        raise ValueError(f"{name}: the decoder gave recording {rec} {n} labels but "
                         + ", ".join(f"{c} {m} windows" for m, c in counts.items())
                         + ": every modality needs one window per label")
    rows = {k: len(chunk[k]) for k in ("subjects", "ids", "groups")}
    if any(c != n for c in rows.values()):       # else the windows pair with other windows' ids and recordings
        raise ValueError(f"{name}: the decoder gave recording {rec} {n} labels but "
                         + ", ".join(f"{c} {k}" for k, c in rows.items())
                         + ": every window needs one label, subject, id and group")
    if seen and set(counts) != set(seen):
        raise ValueError(f"{name}: the decoder gave recording {rec} the modalities {sorted(counts)}, the "
                         f"recordings before it {sorted(seen)}: every recording needs the same modalities "
                         "(a recording that lacks one should raise UnreadableFile or Dropped in the decoder)")


def _build(recordings, decode, classes, sample_rates, on_error, progress, name, folder) -> Windows:
    from tqdm.auto import tqdm

    sink = _Sink(folder)
    labels, subjects, ids, groups = [], [], [], []
    rates: dict[str, list[float]] = {}
    report: dict[str, Any] = {"recordings": len(recordings), "skipped": []}
    try:
        for rec in tqdm(recordings, desc=f"decoding {name}", disable=not progress, unit="rec"):
            try:
                chunk = decode(rec)
            except UnreadableFile as e:
                if on_error == "raise":
                    raise UnreadableFile(e.path, f"{e.reason} -- pass on_error='skip' (CLI: --data-option "
                                                 "on_error=skip) to leave such samples out and list them in "
                                                 "Splits.report") from e
                report["skipped"].append(f"{rec}: {e}")
                continue
            except Dropped as e:
                report.setdefault(e.reason, []).append(str(e))
                continue
            for reason, names in chunk.get("notes", {}).items():
                report.setdefault(reason, []).extend(names)
            if not len(chunk["labels"]):
                continue
            bad = [m for m, a in chunk["arrays"].items()
                   if np.issubdtype(np.asarray(a).dtype, np.floating) and not np.isfinite(a).all()]
            if bad:                       # a decoder that let NaN through: never into the cache
                err = UnreadableFile(str(rec), f"NaN or infinite values in its decoded {', '.join(bad)}")
                if on_error == "raise":
                    raise UnreadableFile(err.path, f"{err.reason} -- pass on_error='skip' (CLI: --data-option "
                                                   "on_error=skip) to leave such samples out and list them in "
                                                   "Splits.report")
                report["skipped"].append(f"{rec}: {err}")
                continue
            over = _beyond_disk_range(chunk["arrays"])
            if over:                      # float16 on disk: beyond +-65504 a value becomes inf, then NaN
                err = UnreadableFile(str(rec), over)
                if on_error == "raise":
                    raise err
                report["skipped"].append(f"{rec}: {err}")
                continue
            _check_chunk(chunk, sink.meta, rec, name)
            sink.add(chunk["arrays"])
            labels.extend(int(x) for x in chunk["labels"])
            subjects.extend(int(x) for x in chunk["subjects"])
            ids.extend(chunk["ids"])
            groups.extend(chunk["groups"])
            for m, r in chunk.get("rates", {}).items():
                if r:
                    rates.setdefault(m, []).append(float(r))
    finally:
        arrays = sink.close()
    for key, items in list(report.items()):
        if isinstance(items, list):
            report[f"n_{key}"] = len(items)
    if not labels:
        raise ValueError(f"{name}: no usable windows out of {len(recordings)} recordings; "
                         f"report: { {k: v for k, v in report.items() if v} }")
    report["native_rates"] = {m: sorted(set(v)) for m, v in rates.items()}
    rates_out = {m: float(np.median(v)) for m, v in rates.items()}
    rates_out.update(sample_rates)
    meta = {"labels": labels, "subjects": subjects, "ids": ids, "groups": groups, "classes": list(classes),
            "sample_rates": rates_out, "report": report, "arrays": sink.meta}
    if folder is not None:
        (folder / "meta.json").write_text(json.dumps(meta))
    return Windows(arrays, np.asarray(labels, np.int64), np.asarray(subjects, np.int64), ids, groups,
                   list(classes), rates_out, report)


def _load(folder: Path) -> Windows:
    """A complete cache folder; a missing, truncated or unreadable file in it is a
    ValueError naming the file (never numpy's error, never wrong windows)."""
    meta = read_json(folder / "meta.json")
    need = {"labels", "subjects", "ids", "groups", "classes", "sample_rates", "report", "arrays"}
    try:                   # valid JSON of another shape (a list, a number, a spec without its shape or dtype)
        ok = isinstance(meta, dict) and need <= set(meta) and isinstance(meta["report"], dict) and all(
            spec["shape"][0] == len(meta["labels"]) and np.dtype(spec["dtype"]) is not None
            for spec in meta["arrays"].values()) and all(
            len(meta[k]) == len(meta["labels"]) for k in ("subjects", "ids", "groups"))
    except (TypeError, KeyError, IndexError, AttributeError):
        ok = False
    if not ok:
        raise _corrupt(folder / "meta.json", f"not the meta data of a window cache (keys {sorted(need)}, "
                                             "one label, subject, id and group per window, each array's dtype "
                                             "and shape)")
    arrays = {m: open_raw(folder / f"{m}.bin", spec["dtype"], spec["shape"]) for m, spec in meta["arrays"].items()}
    report = dict(meta["report"], cache=str(folder))
    return Windows(arrays, np.asarray(meta["labels"], np.int64), np.asarray(meta["subjects"], np.int64),
                   meta["ids"], meta["groups"], meta["classes"], meta["sample_rates"], report)


# ------------------------------------------------------------------ build folders


def _try_lock(f) -> bool:
    """Take the exclusive ``flock`` of the open file ``f`` without waiting: False when a
    live process holds it (a lock dies with its process, even one killed by SIGKILL)."""
    import fcntl
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def remove_stale_builds(root: str | Path, prefix: str, orphan_lock_age_s: float = 60.0) -> list[Path]:
    """Remove the temporary folders ``root/<prefix>*`` that builds killed mid-way left
    behind, and return them. A folder made by ``build_folder`` is locked (``flock`` on
    ``<folder>.lock``) by its live builder and kept; an unlocked one (its builder died,
    or an older dcatkit made it without a lock) is removed. Lock files without a folder
    are removed once older than ``orphan_lock_age_s``. Without ``fcntl`` (Windows),
    nothing can tell a live build from a dead one: nothing is removed."""
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return []
    root, removed = Path(root), []
    if not root.is_dir():
        return removed
    for d in sorted(root.glob(f"{prefix}*")):
        if d.name.endswith(".lock"):
            if not d.with_name(d.name[:-5]).exists():
                try:
                    old = time.time() - d.stat().st_mtime > orphan_lock_age_s
                    with open(d, "a") as f:
                        if old and _try_lock(f):
                            d.unlink(missing_ok=True)
                except FileNotFoundError:
                    pass
            continue
        if not d.is_dir():
            continue
        lock = d.with_name(d.name + ".lock")
        with open(lock, "a") as f:
            if _try_lock(f):
                shutil.rmtree(d, ignore_errors=True)
                lock.unlink(missing_ok=True)
                removed.append(d)
    return removed


@contextlib.contextmanager
def build_folder(root: str | Path, prefix: str, stale: str | None = None):
    """A new empty folder ``root/<prefix>XXXX`` to build a cache in, locked for as long as
    the block runs and removed after it (what was published from it has been moved
    away). Leftovers of killed builds (``root/<stale>*``, ``stale`` defaulting to
    ``prefix``) are removed first: see ``remove_stale_builds``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(root, prefix if stale is None else stale)
    try:
        import fcntl
    except ImportError:
        fcntl = None
    fd, lock = tempfile.mkstemp(dir=root, prefix=prefix, suffix=".lock")
    with os.fdopen(fd, "w") as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)              # held until the block ends or the process dies
        tmp = Path(lock[:-len(".lock")])
        tmp.mkdir()
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            Path(lock).unlink(missing_ok=True)        # before the lock is released


def _corrupt(path: Path, what: str) -> ValueError:
    folder = path.parent
    return ValueError(f"{path} is {what}: the cache folder {folder} is damaged (a truncated or interrupted "
                      f"copy?); delete {folder} and it is rebuilt on the next run")


def read_json(path: Path) -> dict:
    """A cache's JSON file; a missing, truncated or unparsable one is a ValueError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise _corrupt(Path(path), "missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _corrupt(Path(path), f"not valid JSON ({e})") from e


def open_raw(path: Path, dtype, shape) -> np.memmap:
    """Memory-map a raw array file; a missing one, or one whose size is not that of
    ``shape`` x ``dtype`` (truncated, or another array's), is a ValueError naming it."""
    path, shape = Path(path), tuple(shape)
    want = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if not path.is_file():
        raise _corrupt(path, "missing")
    got = path.stat().st_size
    if got != want:
        raise _corrupt(path, f"{got} bytes where a {np.dtype(dtype).name} array of shape {list(shape)} "
                             f"takes {want}")
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


def open_npy(path: Path, shape=None, mmap: bool = True) -> np.ndarray:
    """``np.load`` a cache's ``.npy`` file (memory-mapped by default); a missing,
    truncated or unreadable one, or one of another shape than ``shape``, is a ValueError
    naming it."""
    path = Path(path)
    if not path.is_file():
        raise _corrupt(path, "missing")
    try:
        a = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:              # a truncated header or body: numpy's error names neither
        raise _corrupt(path, f"not a readable .npy file ({type(e).__name__}: {e})") from e
    if shape is not None and tuple(a.shape) != tuple(shape):
        raise _corrupt(path, f"an array of shape {list(a.shape)} where {list(shape)} was written")
    return a
