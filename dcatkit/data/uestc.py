"""UESTC-MMEA-CL (egocentric video + IMU from smart glasses), in its distributed layout.

Each recording is cut into IMU windows of ``imu_window`` rows (paper: 70) with
``imu_stride`` (default: the window). The video frames of a window are the
``frames`` frames (paper: 30) spread uniformly over the same stretch of the
recording; IMU rows and video frames are aligned proportionally (both streams
span the recording), so no IMU rate has to be assumed. Items:
``imu`` (6, imu_window) — acc x,y,z in g, gyro x,y,z in deg/s, then min-max scaled;
``video`` uint8 (frames, 3, frame_size, frame_size).
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..warn import warn
from . import cache as cache_mod
from .dataset import Splits
from .preprocess import (VIDEO_DECODER, MissingModality, UnreadableFile, as_names, check_positive,
                         list_jpeg_frames, no_jpeg_frames, read_jpeg_frames, read_video_frames, reading, require_dir,
                         require_finite, uniform_indices, video_info, window_starts)
from .splits import LIST_SPLIT, SUBJECT_SPLITS, SplitArg, auto_split_file, make_splits, parse_split

# The paper's 8-class subset (Sec. V-A.1), as folder names.
PAPER_CLASSES = ("3_drinking", "5_reading", "6_sweep_floor", "7_cut_fruits", "11_wash_hand",
                 "14_type_pc", "25_type_phone", "27_open_close_door")

LAYOUT = """\
UESTC-MMEA-CL/
  train.txt  val.txt  test.txt          lines: <any/prefix>/<folder>/<stem> <n_frames> <n_imu_rows> <label>
  video/<n>_<class>/<stem>.mp4          (or pre-extracted frames: <frames_dir>/<n>_<class>/<stem>/000001.jpg
  sensor/<n>_<class>/<stem>.csv          or .../img_000000.jpg); csv: 6 integer columns, no header"""

LIST_FILES = ("train.txt", "val.txt", "test.txt")
_FOLDER = re.compile(r"^(\d+)_(.+)$")
_DATE = re.compile(r"(\d{4}_\d{2}_\d{2})_\d{2}_\d{2}_\d{2}$")


@dataclass(frozen=True)
class _Rec:
    folder: str
    stem: str
    label: int

    def __str__(self) -> str:
        return f"{self.folder}/{self.stem}"


COUNT_SLACK = 2    # frames / IMU rows a recording may lack against its list line before it is named


def _integers(fields: Sequence[str]) -> bool:
    """Every field is a whole number as the list files write them ("12", "-1")."""
    return all(re.fullmatch(r"[+-]?\d+", x) for x in fields)


def parse_list_file(path: Path, with_imu_rows: bool = False) -> list[tuple]:
    """(folder, stem, n_rgb_frames, label) per line of a UESTC list file
    (``with_imu_rows``: (folder, stem, n_rgb_frames, label, n_imu_rows)).

    The path prefix is a placeholder from the authors' machine: only its last two
    parts are used. Blank lines and a missing final newline are fine; a path with spaces
    is read up to the line's last three fields when those are integers.
    """
    out = []
    with reading(path):
        text = path.read_text(encoding="utf-8-sig")     # a BOM (Notepad, Excel) is not part of the first path
    for k, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 4:
            raise ValueError(f"{path}:{k}: expected 'path n_frames n_imu_rows label', found {line!r}")
        if len(parts) > 4 and not _integers(parts[1:4]) and _integers(parts[-3:]):
            parts = [x.strip() for x in line.rsplit(maxsplit=3)]    # a space in the path ("my data/...")
        p = parts[0].replace("\\", "/").rstrip("/").split("/")
        if len(p) < 2:
            raise ValueError(f"{path}:{k}: path {parts[0]!r} should end in <class_folder>/<stem>")
        try:
            row = (p[-2], p[-1], int(parts[1]), int(parts[3]))
            out.append(row + (int(parts[2]),) if with_imu_rows else row)
        except ValueError:
            raise ValueError(f"{path}:{k}: n_frames, n_imu_rows and label must be integers, found {line!r}") from None
    return out


def _class_number(folder: str, where: str = "") -> int:
    """The 1-based class number of a class folder name; ``where`` (the file or path it came from) goes
    into the error."""
    m = _FOLDER.match(folder)
    if not m:
        raise ValueError(f"{where + ': ' if where else ''}class folder {folder!r} is not named "
                         "<class_number>_<class_name> (e.g. 3_drinking)")
    return int(m.group(1))


def _select_classes(requested, available: Sequence[str]) -> list[str]:
    """Folder names of the chosen classes, ordered by class number."""
    if requested is None or requested == "all":
        chosen = set(available)
    else:
        by_name = {_FOLDER.match(f).group(2): f for f in available}
        chosen = set()
        for c in as_names(requested):
            c = str(c)
            f = c if c in available else by_name.get(c)
            if f is None:
                raise ValueError(f"UESTC class {c!r} not found; available: {sorted(available, key=_class_number)}")
            chosen.add(f)
    return sorted(chosen, key=_class_number)


def _read_imu(path: Path, acc_scale: float, gyro_scale: float) -> np.ndarray:
    """(6, L) float32: acc x,y,z / acc_scale (g), gyro x,y,z / gyro_scale (deg/s)."""
    import pandas as pd

    with reading(path):
        x = pd.read_csv(path, header=None).to_numpy(dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 6:
        raise UnreadableFile(path, f"expected 6 columns (acc x,y,z, gyro x,y,z), found shape {x.shape}")
    require_finite(path, x, "(row, column)")
    x[:, :3] /= acc_scale
    x[:, 3:] /= gyro_scale
    return x.T.copy()


BLANK_SUBJECTS = ("", "none", "null", "nan")   # a map's "don't know" (empty cell, JSON null, NaN): unmapped

SUBJECT_MAP_FORM = ("a subject map is {sample stem (or folder/stem): participant id}: a dict, a JSON object "
                    '{"<stem>": "<id>", ...}, or a csv of rows <stem>,<id> (an optional header row stem,subject; '
                    'a tab or a semicolon may stand for the comma)')


def _map_key(key) -> str:
    """A subject map's key as a sample stem: the last part of a path, a file's .csv / .mp4 dropped."""
    k = str(key).strip().replace("\\", "/").rstrip("/").split("/")[-1]
    return k[:-4] if k.lower().endswith((".csv", ".mp4")) else k


def _read_subject_csv(path: Path, text: str) -> dict[str, str]:
    """{key: id} of a csv subject map: rows ``<stem>,<id>`` (a tab or a semicolon instead of the comma
    when the first row holds no comma, as spreadsheets export), an optional header row ``stem,subject``;
    blank rows are skipped, a row of one field is refused with its line (never dropped silently)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = next((d for d in (",", "\t", ";") if d in first), ",")
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    raw = {}
    for r in reader:
        if not any(c.strip() for c in r):
            continue
        if len(r) < 2:
            raise ValueError(f"{path}:{reader.line_num}: expected <stem>{delimiter!r}<id>, found {r[0]!r}; "
                             f"{SUBJECT_MAP_FORM}")
        if r[0].strip().lower() not in ("stem", "sample"):
            raw[r[0].strip()] = r[1]
    return raw


def _subjects_from_map(subject_map, recs: Sequence[_Rec]) -> dict[str, int]:
    """stem or folder/stem -> subject (int): the ids themselves when all are integers, else every id
    numbered in sorted order (numbering only the non-integer ones could give two participants one number).
    A blank id (empty cell, whitespace, JSON null / None, NaN) is no participant: that recording is left
    out of the result (unmapped, subject -1), never given one made-up participant shared by all blanks."""
    where = "subject_map"
    if isinstance(subject_map, (str, Path)):
        path = where = Path(subject_map)
        with reading(path):
            text = path.read_text(encoding="utf-8-sig")          # a BOM (Excel's csv) is not part of the first key
            if path.suffix.lower() == ".json":
                raw = json.loads(text)
            else:
                raw = _read_subject_csv(path, text)
    else:
        raw = subject_map
    if not isinstance(raw, Mapping):
        found = f"a {type(raw).__name__}" + (f" of {len(raw)} entries, e.g. {raw[0]!r:.80}"
                                             if isinstance(raw, list) and raw else "")
        raise ValueError(f"{where}: {SUBJECT_MAP_FORM}; found {found}")
    nested = [k for k, v in raw.items() if isinstance(v, (Mapping, list, tuple, set))]
    if nested:
        raise ValueError(f"{where}: {SUBJECT_MAP_FORM}; the id of {nested[0]!r} is {raw[nested[0]]!r:.80}")
    raw = {_map_key(k): str(v).strip() for k, v in raw.items()}
    stems = {r.stem for r in recs}
    if recs and not stems & set(raw):       # keys of another form (or another data set): say so, not "give a map"
        key = next(iter(raw), None)
        shown = (f"e.g. its key {key!r} and this load's recording {recs[0].stem!r}" if key is not None
                 else "it has no entries")
        raise ValueError(f"{where}: none of its {len(raw)} keys names one of the {len(stems)} recordings loaded "
                         f"({shown}); {SUBJECT_MAP_FORM}")
    raw = {k: v for k, v in raw.items() if v.lower() not in BLANK_SUBJECTS}
    names = sorted(set(raw.values()))
    numeric = all(s.lstrip("-").isdigit() for s in names)
    number = {s: int(s) if numeric else i for i, s in enumerate(names)}
    return {r.stem: number[raw[r.stem]] for r in recs if r.stem in raw}


def load_uestc(
    root: str | Path,
    split: SplitArg = "id",
    modalities: Sequence[str] = ("imu", "video"),
    seed: int = 0,
    *,
    classes: Sequence[str] | str | None = PAPER_CLASSES,
    imu_window: int = 70,
    imu_stride: int | None = None,
    frames: int = 30,
    frame_size: int = 224,
    frames_dir: str | Path | None = None,
    acc_scale: float = 16384.0,
    gyro_scale: float = 16.4,
    subject_map: Mapping[str, Any] | str | Path | None = None,
    subject_proxy: str | None = None,
    min_frames: int = 3,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    split_file: str | Path | None = "auto",
    cache_dir: str | Path | None | bool = None,
    on_error: str = "raise",
    progress: bool = True,
) -> Splits | list[Splits]:
    """Load UESTC-MMEA-CL from ``root`` (layout in ``LAYOUT``).

    classes: folder names (``"3_drinking"``) or class names (``"drinking"``); default the
      paper's 8-class subset, ``"all"`` for all 32. Labels are renumbered 0..K-1 in
      class-number order; ``Splits.classes`` gives the folder names.
    imu_window / imu_stride: IMU rows per window (paper: 70) and step (default: window).
    frames / frame_size: video frames per window (paper: 30) and square size (paper: 224).
    frames_dir: pre-extracted JPEG frames instead of ``video/`` mp4s.
    acc_scale / gyro_scale: raw MPU counts per g and per deg/s (the authors' code: 8192 for acc).
    subject_map: stem -> participant (dict, or csv ``stem,subject`` / json file); needed for
      the subject splits (``"ood"``, ``"loso"``, ``("group_kfold", k)``) since no public file
      says who recorded what. ``subject_proxy="date"`` groups by recording date instead (a
      proxy, recorded as such in the report). A recording the map does not name, or names with
      a blank id (empty cell, JSON null, NaN), is unknown (subject -1) and listed in
      ``report["unmapped_recordings"]``.
    min_frames: list lines with fewer RGB frames are dropped (as the authors' loader does).
    split: ``"id"`` (stratified random, ``ratios`` of recordings, drawn with ``seed``), the subject
      splits above, or ``"lists"``: the published split, each recording in the part of the list
      file that names it (train.txt -> train, val.txt -> val, test.txt -> test; public lists:
      4,553 / 653 / 1,316 lines, less the classes not loaded and the ``min_frames`` drops), all its
      windows with it. It needs all three list files in ``root``; a recording named in two of them
      is refused. ``ratios`` and ``seed`` do not change it (``seed`` still seeds what else it seeds,
      e.g. ``n_labeled``); ``report["split"]`` says ``kind="lists"``, ``parts_from="published list
      files"``, and ``report["listing"]`` names the files.
    """
    check_positive("imu_window", imu_window, integer=True)
    stride = imu_window if imu_stride is None else check_positive("imu_stride", imu_stride, integer=True)
    for name, value in (("frames", frames), ("frame_size", frame_size)):
        check_positive(name, value, integer=True)
    check_positive("acc_scale", acc_scale)
    check_positive("gyro_scale", gyro_scale)
    modalities = as_names(modalities)
    root = require_dir(Path(root).expanduser(), "UESTC-MMEA-CL root", LAYOUT)
    if set(modalities) - {"imu", "video"}:
        raise ValueError(f"UESTC-MMEA-CL has imu and video, not {sorted(set(modalities) - {'imu', 'video'})}")
    sensor = require_dir(root / "sensor", "UESTC sensor/ folder", LAYOUT)
    video_root = None
    if "video" in modalities:
        video_root = require_dir(Path(frames_dir) if frames_dir else root / "video",
                                 "UESTC frames_dir" if frames_dir else "UESTC video/ folder", LAYOUT)
    kind = parse_split(split)[0]
    if kind in SUBJECT_SPLITS and subject_map is None and subject_proxy is None:
        raise ValueError(
            f"split={split!r} needs to know who recorded each sample, and UESTC-MMEA-CL ships no such "
            "file. Pass subject_map= (dict or csv/json: sample stem -> participant id; CLI: --data-option "
            "subject_map=FILE), or subject_proxy='date' to group recordings by recording date (a proxy, not true "
            "participants), or use split='id'.")
    if subject_proxy not in (None, "date"):
        raise ValueError(f"subject_proxy must be None or 'date', got {subject_proxy!r}")

    # ---- which recordings: the list files, else every csv under sensor/
    report: dict[str, Any] = {"too_few_frames": []}
    lists = [root / f for f in LIST_FILES if (root / f).exists()]
    if kind == LIST_SPLIT and len(lists) < len(LIST_FILES):
        missing = [f for f in LIST_FILES if not (root / f).exists()]
        raise ValueError(f"split='lists' takes each recording's part from the list files {', '.join(LIST_FILES)} "
                         f"in {root}; missing: {', '.join(missing)}"
                         + (" (without them the recordings are found by a scan of sensor/, which gives no parts)"
                            if not lists else "") + ". Put the dataset's list files there, or use split='id'")
    entries: list[tuple[str, str, int | None]] = []
    listed: dict[str, tuple[int, int]] = {}             # "<folder>/<stem>": (frames, IMU rows) the list gives
    part_of: dict[str, Path] = {}                       # "<folder>/<stem>": the list file naming it
    if lists:
        for lf in lists:
            for folder, stem, n_rgb, label, n_imu in parse_list_file(lf, with_imu_rows=True):
                listed[f"{folder}/{stem}"] = (n_rgb, n_imu)
                if part_of.setdefault(f"{folder}/{stem}", lf) != lf and kind == LIST_SPLIT:
                    raise ValueError(f"{folder}/{stem} is listed in both {part_of[f'{folder}/{stem}']} and {lf}: "
                                     "split='lists' puts a recording in the part of the one list file naming it; "
                                     "remove it from one of them")
                if _class_number(folder, f"{lf}, the line of {folder}/{stem}") - 1 != label:
                    raise ValueError(f"{lf}: {folder}/{stem} has label {label}, but its folder says "
                                     f"{_class_number(folder) - 1} (class number - 1)")
                if n_rgb < min_frames:
                    report["too_few_frames"].append(f"{folder}/{stem}")
                    continue
                entries.append((folder, stem, label))
        report["listing"] = [f.name for f in lists]
    else:
        for f in sorted(sensor.glob("*/*.csv")):
            if f.parent.name.startswith(".") or f.name.startswith("."):
                continue                      # hidden: .ipynb_checkpoints, ._ files of macOS copies...
            _class_number(f.parent.name, f"{f.parent} (a folder in sensor/; move it out if it holds no class)")
            entries.append((f.parent.name, f.stem, None))
        if not entries:                       # e.g. sensor/sensor/<class>/ of a nested unzip: say where csvs go
            deeper = next((f for f in sorted(sensor.rglob("*.csv")) if not f.name.startswith(".")), None)
            found = (f"found {deeper.relative_to(root).as_posix()} (one folder level off? move the class folders "
                     "up to sensor/)" if deeper is not None else "sensor/ holds no csv at all")
            raise ValueError(f"UESTC: no list files ({', '.join(LIST_FILES)}) and no csv found as "
                             f"sensor/<n>_<class>/<stem>.csv under {root}; {found}. Expected layout:\n{LAYOUT}")
        # a recording with a video (mp4 or frame folder) but no csv: kept as an entry, so decode names it
        # in report["missing_modality"] (no imu) as a list file's recording without a csv is, never dropped
        # uncounted
        with_csv = {(f, st) for f, st, _ in entries}
        video_side = video_root or (root / "video" if (root / "video").is_dir() else None)
        for v in sorted(video_side.glob("*/*")) if video_side is not None else ():
            folder, stem = v.parent.name, (v.stem if v.suffix.lower() == ".mp4" and v.is_file() else v.name)
            if (folder.startswith(".") or v.name.startswith(".") or not _FOLDER.match(folder)
                    or not (v.is_dir() or v.suffix.lower() == ".mp4") or (folder, stem) in with_csv):
                continue
            with_csv.add((folder, stem))
            entries.append((folder, stem, None))
        report["listing"] = "scan of sensor/ (no list files)"
    available = sorted({e[0] for e in entries}, key=_class_number)
    chosen = _select_classes(classes, available)
    index = {f: i for i, f in enumerate(chosen)}
    recs = sorted({_Rec(f, s, index[f]) for f, s, _ in entries if f in index}, key=str)
    if not recs:
        raise ValueError(f"no UESTC recordings of classes {chosen} found under {root}")

    def paths(r: _Rec) -> tuple[Path, Path | None]:
        imu = sensor / r.folder / f"{r.stem}.csv"
        if video_root is None:
            return imu, None
        mp4 = video_root / r.folder / f"{r.stem}.mp4"
        return imu, mp4 if mp4.exists() else video_root / r.folder / r.stem

    def decode(r: _Rec) -> dict:
        imu_path, vid = paths(r)
        if not imu_path.exists():
            raise MissingModality(str(r), "imu", imu_path)
        imu = _read_imu(imu_path, acc_scale, gyro_scale)                 # (6, L)
        n_rows = imu.shape[1]
        starts = window_starts(n_rows, imu_window, stride)
        out: dict[str, Any] = {"arrays": {}, "rates": {}}
        want_frames, want_rows = listed.get(str(r), (None, None))
        short = []                                   # fewer than the list says: a partial copy or extraction?
        if want_rows is not None and n_rows < want_rows - COUNT_SLACK:
            short.append(f"{n_rows} IMU rows, the list says {want_rows}")
        if len(starts) == 0:
            return {**out, "labels": [], "subjects": [], "ids": [], "groups": [],
                    "notes": {"too_short": [f"{r} ({n_rows} IMU rows < window {imu_window})"]}}
        if "imu" in modalities:
            out["arrays"]["imu"] = np.stack([imu[:, s:s + imu_window] for s in starts])  # (K, 6, W)
        if vid is not None:
            if vid.suffix == ".mp4":
                n_frames, fps = video_info(vid)
            elif vid.is_dir():
                jpgs = list_jpeg_frames(vid)
                n_frames, fps = len(jpgs), None
            else:
                raise MissingModality(str(r), "video", f"{vid}.mp4 or a folder of JPEG frames {vid}/")
            if n_frames == 0:
                raise UnreadableFile(vid, no_jpeg_frames(vid) if fps is None else "no video frames")
            if want_frames is not None and n_frames < want_frames - COUNT_SLACK:
                short.append(f"{n_frames} video frames, the list says {want_frames}")
            idx = np.concatenate([uniform_indices(s * n_frames / n_rows, (s + imu_window) * n_frames / n_rows,
                                                  frames, n_frames) for s in starts])
            clip = read_video_frames(vid, idx, frame_size) if fps is not None else read_jpeg_frames(jpgs, idx, frame_size)
            out["arrays"]["video"] = clip.reshape(len(starts), frames, *clip.shape[1:])  # (K, T, 3, H, W)
            if fps:
                out["rates"] = {"video": fps, "imu": n_rows * fps / n_frames}
        n = len(starts)
        notes = {"count_mismatch": [f"{r}: {'; '.join(short)}"]} if short else {}
        return {**out, "labels": [r.label] * n, "subjects": [-1] * n,
                "ids": [f"{r}#{s}" for s in starts], "groups": [str(r)] * n, "notes": notes}

    files = [p for r in recs for p in paths(r) if p is not None]
    cache_dir = cache_mod.resolve_cache_dir(cache_dir, root)
    settings = {"modalities": modalities, "imu_window": imu_window, "stride": stride, "frames": frames,
                "frame_size": frame_size, "acc_scale": acc_scale, "gyro_scale": gyro_scale,
                "recs": [str(r) for r in recs], "files": cache_mod.fingerprint(files, root),
                "listed": [[str(r), *listed[str(r)]] for r in recs if str(r) in listed],  # the count_mismatch notes
                "decoder": [VIDEO_DECODER, "list counts"]}   # caches of an earlier decoder are built again
    windows = cache_mod.collect("uestc", recs, decode, classes=chosen, settings=settings, cache_dir=cache_dir,
                                on_error=on_error, progress=progress)
    windows.report.update(report, n_too_few_frames=len(report["too_few_frames"]))
    short = windows.report.get("count_mismatch") or []
    if short:
        warn(f"{len(short)} recordings have fewer IMU rows or video frames than their list line says "
             f"(e.g. {short[0]}): a partial copy or frame extraction? Video is aligned to the IMU by "
             "proportion, so a recording with a missing part pairs IMU with the wrong frames; copy them "
             "again (names in Splits.report['count_mismatch'])")

    # ---- subjects: a user map, or the date proxy; never guessed
    if subject_map is not None:
        smap = _subjects_from_map(subject_map, recs)
        windows.subjects = np.array([smap.get(g.split("/")[-1], -1) for g in windows.groups], np.int64)
        windows.report["subject_source"] = "subject_map"
        windows.report["unmapped_recordings"] = sorted({g for g, s in zip(windows.groups, windows.subjects) if s < 0})
    elif subject_proxy == "date":
        dates = [(_DATE.search(g).group(1) if _DATE.search(g) else "unknown") for g in windows.groups]
        number = {d: i for i, d in enumerate(sorted(set(dates)))}
        windows.subjects = np.array([number[d] for d in dates], np.int64)
        windows.report["subject_source"] = "proxy: recording date (not true participants)"
    parts = {str(r): part_of[str(r)].stem for r in recs} if kind == LIST_SPLIT else None   # train.txt -> train
    sf = auto_split_file(split_file, cache_dir, "uestc", split, seed, ratios, windows, parts)
    return make_splits(windows, split, ratios, seed, sf, lists=parts)
