"""The Cough audio-IMU dataset (Chen et al., EMBC 2024), in its distributed layout.

Samples come from the annotated segments of ``DataAnnotation.json``. Each segment
(in audio time) gives windows of ``window_s`` seconds (paper: 0.5 s) every
``stride_s``; a segment shorter than a window gives one window centred on it, which
reaches into the audio around it. The
IMU of a window covers the *same time span*: audio time is mapped to IMU time with
the trial's sync offsets (``t_imu = t_audio - audio_offset + imu_offset``) and the
accelerometer and gyroscope are interpolated (on their ``elapsed (s)`` clock) onto
``imu_window`` evenly spaced instants of the span (paper: 60), because the
MetaMotion's effective rate (~98.6 Hz) is irregular. Items:
``audio`` (window_s * sample_rate,) mono; ``imu`` (3 * len(imu_sensors), imu_window).

The split unit (recording) is the annotated segment, except that segments whose
windows share audio (a short segment's centred window reaching a neighbour's
windows, or overlapping annotations) form one unit, listed in
``report["merged_segments"]``: no stretch of audio is in two splits. The subject
is the folder id.

A window's id, ``<subject>/<trial folder>#seg<i>#w<k>``, names the k-th window of the i-th
annotated segment, not a time: under another ``stride_s`` (or ``window_s``) the same id names
another span. ``report["preprocessing"]``, which a trained model's provenance keeps, says
which settings the ids were cut with; ``provenance.check_source`` names them when a source's
differ from the run's.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import cache as cache_mod
from .dataset import Splits
from .preprocess import (MissingModality, UnreadableFile, as_names, check_positive, cut, read_wav, reading,
                         require_dir, require_file, require_finite, resample)
from .splits import SplitArg, auto_split_file, make_splits, overlapping_units

# 1-based ``values.id`` of an annotation -> class; id 9 ("Unknown") and others are left out.
CLASSES = ("Cough", "Speech", "Sneeze", "Deep breath", "Groan", "Laugh", "Speech (far)", "Other Sound")

LAYOUT = """\
MultimodalCoughDataset/
  DataAnnotation.json
  005/                      (one folder per participant, 005 ... 017)
    Trial_1_No_Talking/     005_..._In.wav  005_..._Out.wav  Accelerometer.csv  Gyroscope.csv
    Trial_2_Talking/        ...
    Trial_3_Nonverbal/      ...
    sync_time.txt           8 tokens per trial; the 5th = audio offset, the 8th = IMU offset (s)"""


@dataclass(frozen=True)
class _Trial:
    subject: str                     # folder name, e.g. "005"
    trial: int                       # 1, 2, 3
    folder: Path
    segments: tuple                  # ((start_s, end_s, label or -1), ...)

    def __str__(self) -> str:
        return f"{self.subject}/{self.folder.name}"


def trial_of(audio_name: str) -> int:
    """Trial number from an annotated file name, by the dataset's rule (datasets.md), case-insensitively:
    a name holding "no" and "talking" -> 1, "talking" alone -> 2, anything else (nonverbal) -> 3.
    Substrings, not words: ``005_NoTalking_out.wav`` is trial 1 like ``005_no_talking_in.wav``."""
    name = audio_name.lower()
    if "talking" in name:
        return 1 if "no" in name else 2
    return 3


def _label_id(seg: dict) -> int | None:
    """The 1-based ``values.id`` of a segment's annotation, tolerating list/dict nesting."""
    ann = seg.get("annotation", seg.get("annotations"))
    for _ in range(4):  # unwrap {"name": {...}} / [ {...} ] until a dict with "values" or "id"
        if isinstance(ann, list):
            ann = ann[0] if ann else None
        elif isinstance(ann, dict) and "values" not in ann and "id" not in ann and len(ann) == 1:
            ann = next(iter(ann.values()))
        else:
            break
    if isinstance(ann, dict) and "values" in ann:
        ann = ann["values"]
        ann = ann[0] if isinstance(ann, list) and ann else ann
    if isinstance(ann, dict) and "id" in ann:
        return int(ann["id"])
    return None


def parse_annotations(path: Path) -> list[tuple[str, list[tuple[float, float, int | None]]]]:
    """[(audio file name, [(start_s, end_s, 1-based label id or None), ...]), ...].

    Accepts a list of entries (the file name under ``original_filename``, ``filename``,
    ``file`` or ``name``) or a dict keyed by file name, each with ``segmentations``.
    """
    with reading(path):
        data = json.loads(path.read_text())
    entries = data.items() if isinstance(data, dict) else [(None, e) for e in data]
    out = []
    for key, e in entries:
        name = key
        if isinstance(e, dict):
            name = next((e[k] for k in ("original_filename", "filename", "file", "name", "audio") if k in e), key)
            segs = e.get("segmentations", e.get("segments", []))
        else:
            segs = e
        if name is None:
            raise UnreadableFile(path, f"an entry has no file name (keys: {sorted(e)})")
        rows = []
        for i, s in enumerate(segs):
            lacking = [k for k in ("start_time", "end_time") if not isinstance(s, dict) or k not in s]
            if lacking:
                raise UnreadableFile(path, f"segment {i} of {name} has no {lacking[0]!r}: every segment needs "
                                           f"start_time and end_time (s); found "
                                           f"{sorted(s) if isinstance(s, dict) else repr(s)[:80]}")
            try:
                rows.append((float(s["start_time"]), float(s["end_time"]), _label_id(s)))
            except (TypeError, ValueError):
                raise UnreadableFile(path, f"segment {i} of {name}: start_time, end_time and the label id must be "
                                           f"numbers, found {s['start_time']!r}, {s['end_time']!r}, "
                                           f"{s.get('annotation', s.get('annotations'))!r}"[:300]) from None
        out.append((Path(str(name)).name, rows))
    return out


def read_sync(path: Path, trial: int) -> tuple[float, float]:
    """(audio offset, IMU offset) in seconds for ``trial`` (1-based) from ``sync_time.txt``:
    8 whitespace-separated tokens per trial, the 5th the audio and the 8th the IMU offset (as
    the authors' code reads it), one trial per line, or every token on one line or one per
    line (read 8 at a time). Lines of other lengths are refused: read 8 at a time they would
    shift every later trial's offsets onto its neighbours' tokens."""
    with reading(path):
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
        if len(lines) == 1 or all(len(ln) == 1 for ln in lines):
            tokens = [t for ln in lines for t in ln]
            rows = [tokens[i:i + 8] for i in range(0, len(tokens), 8)]
        else:
            odd = [(i, len(ln)) for i, ln in enumerate(lines, 1) if len(ln) != 8]
            if odd:
                raise UnreadableFile(path, f"expected 8 whitespace-separated tokens per trial, one trial per line "
                                           f"(or every token on one line, or one per line); non-blank line {odd[0][0]} "
                                           f"of {len(lines)} has {odd[0][1]} token(s)"
                                           + (f" ({len(odd)} such lines)" if len(odd) > 1 else ""))
            rows = lines
        if trial > len(rows) or len(rows[trial - 1]) < 8:
            raise UnreadableFile(path, f"expected 8 whitespace-separated tokens per trial (the 5th the audio offset, "
                                       f"the 8th the IMU offset, in s) for trial {trial}; found {len(rows)} trial(s), "
                                       f"the last with {len(rows[-1]) if rows else 0} token(s)")
        tok = rows[trial - 1]
        try:
            return float(tok[4]), float(tok[7])
        except ValueError:
            raise UnreadableFile(path, f"trial {trial}: the 5th and 8th tokens must be numbers (offsets in s), "
                                       f"got {tok[4]!r} and {tok[7]!r}") from None


def read_imu_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(elapsed seconds (n,), x/y/z (n, 3)) from a MetaMotion csv, columns selected by name."""
    import pandas as pd

    with reading(path):
        df = pd.read_csv(path)
    cols = {c.strip().lower(): c for c in df.columns}

    def col(prefix: str) -> str:
        hit = [c for k, c in cols.items() if k.startswith(prefix)]
        if not hit:
            raise UnreadableFile(path, f"no column starting with {prefix!r}; found {list(df.columns)}")
        return hit[0]

    t = df[col("elapsed")].to_numpy(np.float64)
    xyz = df[[col("x-axis"), col("y-axis"), col("z-axis")]].to_numpy(np.float32)
    if len(t) < 2:
        raise UnreadableFile(path, f"expected data rows under the header (at least 2), found {len(t)}")
    require_finite(path, np.column_stack([t, xyz]), "(data row, column of elapsed/x/y/z)")
    back = np.flatnonzero(np.diff(t) < 0)          # a repeated time (logging jitter) is fine for np.interp
    if len(back):
        k = int(back[0]) + 2                                     # data row, counted from 1
        raise UnreadableFile(path, f"{col('elapsed')!r} must not decrease row by row, but data row {k} has "
                                   f"{t[k - 1]:g} after {t[k - 2]:g}: sort the rows by time")
    return t, xyz


def _shared_audio_groups(segments: Sequence[int], starts: Sequence[float], window_s: float) -> dict[int, str]:
    """Segment index -> split-unit name: segments whose windows overlap in time join one unit.

    ``segments`` / ``starts``: each window's segment and start time (s). Windows all last
    ``window_s``, so sorted by start, two overlap exactly when their starts are less than
    ``window_s`` apart, and a chain of such neighbours is one stretch of shared audio.
    Names: ``"3"`` for a segment alone, ``"2+3+4"`` for merged ones. Annotations may be listed
    out of time order: windows are compared in time order (``splits.overlapping_units``).
    """
    return overlapping_units(list(segments), starts, window_s)


def load_cough(
    root: str | Path,
    split: SplitArg = "id",
    modalities: Sequence[str] = ("imu", "audio"),
    seed: int = 0,
    *,
    window_s: float = 0.5,
    stride_s: float | None = None,
    imu_window: int = 60,
    sample_rate: int = 16000,
    mic: str = "out",
    imu_sensors: Sequence[str] = ("Accelerometer", "Gyroscope"),
    min_segment_s: float = 0.0,
    use_sync: bool = True,
    annotation_file: str = "DataAnnotation.json",
    ratios: Sequence[float] = (0.65, 0.18, 0.17),
    split_file: str | Path | None = "auto",
    cache_dir: str | Path | None | bool = None,
    on_error: str = "raise",
    progress: bool = True,
) -> Splits | list[Splits]:
    """Load the Cough dataset from ``root`` (layout in ``LAYOUT``).

    window_s / stride_s: window length and step in seconds (paper: 0.5 s; stride default = window).
    imu_window: IMU instants per window (paper: 60). sample_rate: audio is resampled to it.
    mic: ``"out"`` (always present), ``"in"`` (some are missing: those trials are reported)
      or ``"any"`` (out, else in).
    min_segment_s: segments shorter than this are left out (the paper drops the shortest).
    use_sync: apply ``sync_time.txt`` offsets (False: audio and IMU clocks taken as equal).
    Annotation entries map to trials by file name (``trial_of``); of two entries for the same
    subject, trial and mic the first listed is used, the other listed (and warned about) in
    ``report["duplicate_annotations"]``.
    """
    check_positive("window_s", window_s)
    stride = window_s if stride_s is None else check_positive("stride_s", stride_s)
    check_positive("imu_window", imu_window, integer=True)
    check_positive("sample_rate", sample_rate, integer=True)
    modalities, imu_sensors = as_names(modalities), as_names(imu_sensors)
    root = require_dir(Path(root).expanduser(), "Cough dataset root", LAYOUT)
    if set(modalities) - {"imu", "audio"}:
        raise ValueError(f"the Cough dataset has imu and audio, not {sorted(set(modalities) - {'imu', 'audio'})}")
    if mic not in ("out", "in", "any"):
        raise ValueError(f"mic must be 'out', 'in' or 'any', got {mic!r}")
    ann_path = require_file(root / annotation_file, "annotation file", LAYOUT)
    subjects = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.isdigit())
    if not subjects:
        raise FileNotFoundError(f"no participant folders (005 ... 017) in {root}.\nExpected layout:\n{LAYOUT}")

    # ---- group annotated segments by (subject, trial); per trial, the annotation of the mic whose wav is
    # read (mic="any" reads Out, else In), else of the other mic in `mics`' order, else the first listed
    mics = {"out": ["out"], "in": ["in"], "any": ["out", "in"]}[mic]

    def mic_of(name: str) -> str | None:
        return next((m for m in ("out", "in") if f"_{m}." in name.lower()), None)

    def wavs_in(folder: Path) -> dict[str, Path]:
        return {p.stem.lower().rsplit("_", 1)[-1]: p for p in folder.glob("*.wav")}

    notes: dict[str, list[str]] = {"unlabelled": [], "unmatched_annotations": [], "duplicate_annotations": []}
    per_trial: dict[tuple[str, int], list[tuple[str, list]]] = {}
    for name, segs in parse_annotations(ann_path):
        m = re.match(r"(\d+)", name)
        subj = m.group(1).zfill(3) if m else None
        if subj not in subjects:
            notes["unmatched_annotations"].append(name)
            continue
        per_trial.setdefault((subj, trial_of(name)), []).append((name, segs))
    trials = []
    for (subj, k), listed in sorted(per_trial.items()):
        folders = [p for p in (root / subj).iterdir() if p.is_dir() and p.name.lower().startswith(f"trial_{k}")]
        read = next((w for w in mics if w in wavs_in(folders[0])), None) if folders else None
        order = ([read] if read else []) + [w for w in mics if w != read]
        ranked = sorted(listed, key=lambda a: order.index(mic_of(a[0])) if mic_of(a[0]) in order else len(order))
        name, segs = ranked[0]                  # sorted() is stable: of equals, the first listed
        for other, other_segs in ranked[1:]:    # another entry for the same subject, trial and mic: not used
            if mic_of(other) == mic_of(name):
                notes["duplicate_annotations"].append(
                    f"{other} (subject {subj}, trial {k}, mic {mic_of(name) or 'not named'}: the entry {name} is "
                    f"used{', same segments' if other_segs == segs else ''})")
        if not folders:
            notes["unmatched_annotations"].append(f"{name} (no {subj}/Trial_{k}_* folder)")
            continue
        kept = []
        for i, (a, b, lid) in enumerate(segs):
            if lid is None or not 1 <= lid <= len(CLASSES):
                notes["unlabelled"].append(f"{name}#{i} (id {lid})")
            elif b - a < min_segment_s:
                notes.setdefault("too_short", []).append(f"{name}#{i} ({b - a:.3f} s)")
            else:
                kept.append((a, b, lid - 1, i))
        trials.append(_Trial(subj, k, folders[0], tuple(kept)))
    if not trials:
        raise ValueError(f"no annotation in {ann_path} matches a trial folder under {root}")

    def wav_of(t: _Trial) -> Path:
        wavs = wavs_in(t.folder)
        for which in mics:
            if which in wavs:
                return wavs[which]
        raise MissingModality(str(t), "audio", " or ".join(str(t.folder / f"{t.subject}_..._{w.capitalize()}.wav")
                                                         for w in mics))

    def decode(t: _Trial) -> dict:
        a_off, i_off = read_sync(t.folder.parent / "sync_time.txt", t.trial) if use_sync else (0.0, 0.0)
        wave, sr, dur = None, None, np.inf
        if "audio" in modalities:
            wave, sr = read_wav(wav_of(t))
            wave = resample(wave, sr, sample_rate)
            dur = len(wave) / sample_rate
        imus = []
        if "imu" in modalities:
            for s in imu_sensors:
                p = t.folder / f"{s}.csv"
                if not p.exists():
                    raise MissingModality(str(t), "imu", p)
                imus.append(read_imu_csv(p))
        rows: dict[str, list] = {"audio": [], "imu": [], "labels": [], "ids": [], "segment": [], "start": []}
        notes_t: dict[str, list[str]] = {"out_of_range": []}
        n_audio = int(round(window_s * sample_rate))
        for a, b, label, i in t.segments:
            starts = np.arange(a, b - window_s + 1e-9, stride) if b - a >= window_s else \
                np.array([max((a + b) / 2 - window_s / 2, 0.0)])
            for w, t0 in enumerate(starts):
                if t0 + window_s > dur + 1e-9:
                    notes_t["out_of_range"].append(f"{t}#seg{i}@{t0:.2f}s (audio ends at {dur:.2f}s)")
                    continue
                if imus:
                    grid = t0 - a_off + i_off + (np.arange(imu_window) + 0.5) * window_s / imu_window
                    if any(grid[0] < tt[0] or grid[-1] > tt[-1] for tt, _ in imus):
                        notes_t["out_of_range"].append(f"{t}#seg{i}@{t0:.2f}s (outside the IMU recording)")
                        continue
                    rows["imu"].append(np.concatenate([np.stack([np.interp(grid, tt, x[:, c]) for c in range(3)])
                                                       for tt, x in imus]))               # (3S, imu_window)
                if wave is not None:
                    rows["audio"].append(cut(wave, int(round(t0 * sample_rate)), n_audio))
                rows["labels"].append(label)
                rows["ids"].append(f"{t}#seg{i}#w{w}")
                rows["segment"].append(i)
                rows["start"].append(t0)
        groups = _shared_audio_groups(rows["segment"], rows["start"], window_s)
        rows["groups"] = [f"{t}#seg{groups[i]}" for i in rows["segment"]]
        notes_t["merged_segments"] = sorted({g for g in rows["groups"] if "+" in g})
        n = len(rows["labels"])
        arrays = {m: np.stack(rows[m]) for m in modalities if n}
        rates = {"audio_native": sr} if sr else {}
        if imus:
            rates["imu_native"] = float(np.mean([(len(tt) - 1) / (tt[-1] - tt[0]) for tt, _ in imus]))
        return {"arrays": arrays, "labels": rows["labels"], "subjects": [int(t.subject)] * n, "ids": rows["ids"],
                "groups": rows["groups"], "notes": notes_t, "rates": rates}

    files = [ann_path] + [p for t in trials for p in sorted(t.folder.iterdir())] + \
        [root / s / "sync_time.txt" for s in subjects]
    cache_dir = cache_mod.resolve_cache_dir(cache_dir, root)
    settings = {"modalities": modalities, "window_s": window_s, "stride_s": stride, "imu_window": imu_window,
                "sample_rate": sample_rate, "mic": mic, "imu_sensors": list(imu_sensors), "use_sync": use_sync,
                "min_segment_s": min_segment_s, "groups": "segments sharing audio merged",
                "annotation": "of the mic whose wav is read",      # caches paired otherwise before are not reused
                "segments": [[str(t), list(t.segments)] for t in trials],   # what is cut where (trial mapping)
                "files": cache_mod.fingerprint(files, root)}
    rates = {"audio": float(sample_rate)}
    if "imu" in modalities:
        rates["imu"] = imu_window / window_s
    windows = cache_mod.collect("cough", trials, decode, classes=CLASSES, settings=settings, cache_dir=cache_dir,
                                sample_rates=rates, on_error=on_error, progress=progress)
    for k, v in notes.items():
        windows.report[k] = v
        windows.report[f"n_{k}"] = len(v)
    windows.sample_rates = {m: r for m, r in windows.sample_rates.items() if m in ("imu", "audio", "video")}
    sf = auto_split_file(split_file, cache_dir, "cough", split, seed, ratios, windows)
    return make_splits(windows, split, ratios, seed, sf)
