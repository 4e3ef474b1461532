"""VGGSound (audio + video of 10 s YouTube clips), in its distributed layout.

Each clip is cut into windows of ``window_s`` seconds (paper: 2 s) every
``stride_s``; a window's ``frames`` video frames (paper: 30) are spread uniformly
over the same seconds. Audio and frames come from the mp4 (PyAV), or from
pre-extracted ``<stem>.wav`` files and ``<stem>/`` JPEG frame folders. Items:
``audio`` (window_s * sample_rate,) mono; ``video`` uint8 (frames, 3, frame_size, frame_size).

VGGSound has no subject annotations. The subject of a clip is a proxy: its
YouTube video (one uploader's recording session), so ``split="ood"`` keeps every
YouTube video in one split. The split unit (recording) of ``split="id"`` is the clip,
except that clips of one YouTube video whose windows overlap in time (two clips whose 10 s
spans overlap share audio and frames) form one unit, listed in ``report["merged_clips"]``:
no stretch of a video is in two splits. The csv's own train/test column is not used: the
paper re-splits 70/15/15.
"""
from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..warn import warn
from . import cache as cache_mod
from .dataset import Splits
from .preprocess import (MP4_AUDIO_DECODER, VIDEO_DECODER, MissingModality, UnreadableFile, as_names, check_positive, cut,
                         list_jpeg_frames, no_jpeg_frames, read_jpeg_frames, read_mp4_audio, read_video_frames, read_wav, reading,
                         require_dir, require_file, resample, uniform_indices, video_info)
from .splits import SplitArg, auto_split_file, make_splits, overlapping_units

LAYOUT = """\
VGGSound/
  vggsound.csv                    no header: youtube_id,start_seconds,"label, with commas",train|test
  video/<youtube_id>_<start:06d>.mp4   (or unpadded <youtube_id>_<start>.mp4; video/ may also be
                                        clips/ or the root itself, or pass video_dir=)
  optional pre-extracted: <audio_dir>/<stem>.wav, <frames_dir>/<stem>/000001.jpg"""


@dataclass(frozen=True)
class _Clip:
    youtube_id: str
    start: int
    label: int
    stem: str                    # the file stem found on disk

    def __str__(self) -> str:
        return self.stem

    def find(self, index: dict[str, Path]) -> Path | None:
        """This clip's file (or frame folder) in ``index``, under either name: the stem found on
        disk first, then the other of ``<id>_<start:06d>`` and ``<id>_<start>``. Looked up per
        modality: a clip's wav may be padded and its frame folder unpadded."""
        return next((index[s] for s in (self.stem, *self.names) if s in index), None)

    @property
    def names(self) -> tuple[str, str]:
        """The two names a clip's files may have: ``<id>_<start:06d>`` and ``<id>_<start>``."""
        return f"{self.youtube_id}_{self.start:06d}", f"{self.youtube_id}_{self.start}"


def read_csv(path: Path) -> list[tuple[str, int, str, str]]:
    """(youtube_id, start_seconds, label, split) rows; labels may contain quoted commas.

    Every row has exactly these 4 fields, split ``train`` or ``test``; a first row is skipped
    only if it is a header (its start field names a time, e.g. ``start_seconds``)."""
    rows = []
    with reading(path):
        text = path.read_text(encoding="utf-8-sig")     # a BOM (Excel's csv) is not part of the first id
    for k, r in enumerate(csv.reader(text.splitlines()), 1):
        if not r or not "".join(r).strip():
            continue
        if k == 1 and len(r) > 1 and re.search(r"start|sec|time", r[1], re.IGNORECASE):
            continue  # a header row
        if len(r) != 4:
            raise ValueError(f"{path}:{k}: expected 4 fields, youtube_id,start_seconds,label,train|test (a label "
                             f"with commas in double quotes); found {len(r)}: {r}. Quote the label, or fix or "
                             "remove a truncated row")
        if r[3].strip() not in ("train", "test"):
            raise ValueError(f"{path}:{k}: the 4th field must be 'train' or 'test', found {r[3]!r} in {r}")
        try:
            start = int(float(r[1]))
        except ValueError:
            raise ValueError(f"{path}:{k}: start_seconds {r[1]!r} is not a number") from None
        rows.append((r[0].strip(), start, r[2].strip(), r[3].strip()))
    return rows


def _index(folder: Path | None, suffix: str | None) -> dict[str, Path]:
    """stem -> path of the files (suffix) or sub-folders (None) in ``folder``."""
    if folder is None:
        return {}
    if suffix is None:
        return {p.name: p for p in folder.iterdir() if p.is_dir()}
    return {p.stem: p for p in folder.iterdir() if p.suffix.lower() == suffix}


def _n_windows(seconds: float, window_s: float, stride: float) -> int:
    """How many windows (start 0, every ``stride``) fit in ``seconds``: as the decoder cuts them."""
    return len(np.arange(0.0, seconds - window_s + 1e-6, stride))


def _clip_groups(ids: Sequence[str], clip_of: dict[str, _Clip], window_s: float) -> tuple[list[str], list[str]]:
    """Each window's split unit, and the merged ones: a clip, except that clips of one YouTube
    video whose windows overlap in the video's time (e.g. clips starting at 0 s and 4 s share
    6 s of audio and frames) form one unit, named ``"<stem>+<stem>"``, so no stretch of a video
    is in two splits. Windows are named ``<stem>#<start in the clip>s``; the clip's csv start
    places them on the video's clock. Computed from the ids, so a cache built before is split
    the same way."""
    stems, starts = [], []
    for i in ids:
        stem, t = str(i).rsplit("#", 1)
        stems.append(stem)
        starts.append(clip_of[stem].start + float(t[:-1]))
    by_video: dict[str, list[int]] = {}
    for k, stem in enumerate(stems):
        by_video.setdefault(clip_of[stem].youtube_id, []).append(k)
    unit: dict[str, str] = {}
    for ks in by_video.values():
        unit.update(overlapping_units([stems[k] for k in ks], [starts[k] for k in ks], window_s))
    return [unit[s] for s in stems], sorted({u for u in unit.values() if "+" in u})


def _check_jpeg_timing(report: dict, window_s: float) -> None:
    """Without ``frames_fps`` each JPEG folder's frames are spread over its clip's audio. That is right
    for a fixed number of frames per clip, and for folders extracted at one fixed rate whose wav is
    as long as its frames; it is wrong for a wav cut short (or long) beside frames extracted at a
    rate. The clips are compared with each other: the median clip gives the rate (frames / audio
    seconds), and a clip whose frames at that rate span a length other than its audio's by more
    than a window is listed in ``report["jpeg_rate_outliers"]`` with a warning naming the rate to
    pass as ``frames_fps``. Where every folder holds the same number of frames, that may instead be a
    fixed number per clip (then spreading is right): the warning says so. ``report["jpeg_frame_timing"]``
    says what was checked."""
    spans = report.get("jpeg_frames_and_audio")      # [clip, frames, audio seconds] per clip
    head = "no frames_fps: each JPEG folder's frames are spread over its clip's audio"
    if spans is None:
        report["jpeg_frame_timing"] = f"{head}; unchecked (a window cache built before this check: delete it to check)"
        return
    rates = [n / d for _, n, d in spans if d > 0]
    if len(rates) < 3:
        report["jpeg_frame_timing"] = f"{head}; unchecked (fewer than 3 clips to compare their frame rates)"
        return
    rate = float(np.median(rates))
    odd = [f"{c}: {n} JPEG frames, audio {d:.2f} s; at {rate:.3g} fps, the median clip's rate, the frames span "
           f"{n / rate:.2f} s" for c, n, d in spans if abs(n / rate - d) > window_s + 1e-6]
    report["jpeg_frame_timing"] = (f"{head}; at the median clip's rate, {rate:.3g} fps, {len(odd)} of {len(spans)} "
                                   "clips' frames span a length other than their audio's by more than a window "
                                   "(report['jpeg_rate_outliers'])")
    if odd:
        counts = {n for _, n, _ in spans}
        report["jpeg_rate_outliers"] = odd
        warn(f"{len(odd)} VGGSound clips' JPEG frames span another length than their audio at the frame rate the "
             f"median clip implies ({rate:.3g} fps): spread over the audio, their windows pair sounds with frames of "
             f"other seconds. If the folders were extracted at {rate:.3g} fps, pass frames_fps={rate:.3g} (CLI: "
             f"--data-option frames_fps={rate:.3g})"
             + (f"; if every folder's {counts.pop()} frames are a fixed number per clip, spreading them is right"
                if len(counts) == 1 else "")
             + f". Names and lengths in Splits.report['jpeg_rate_outliers'], e.g. {odd[0]}")


def load_vggsound(
    root: str | Path,
    split: SplitArg = "id",
    modalities: Sequence[str] = ("video", "audio"),
    seed: int = 0,
    *,
    classes: Sequence[str] | None = None,
    num_classes: int = 9,
    class_seed: int = 0,
    window_s: float = 2.0,
    stride_s: float | None = None,
    frames: int = 30,
    frame_size: int = 224,
    sample_rate: int = 16000,
    csv_file: str = "vggsound.csv",
    video_dir: str | Path | None = None,
    audio_dir: str | Path | None = None,
    frames_dir: str | Path | None = None,
    clip_seconds: float = 10.0,
    frames_fps: float | None = None,
    ratios: Sequence[float] = (0.7, 0.15, 0.15),
    split_file: str | Path | None = "auto",
    cache_dir: str | Path | None | bool = None,
    on_error: str = "raise",
    progress: bool = True,
) -> Splits | list[Splits]:
    """Load a class subset of VGGSound from ``root`` (layout in ``LAYOUT``).

    classes: label names (exactly as in the csv); default: ``num_classes`` (paper: 9)
      drawn at random, seeded by ``class_seed``, among labels that have at least one clip on
      disk. The drawn names are in ``Splits.classes``. ``class_seed`` is separate from ``seed``
      (the split's seed): runs over several split seeds use the same classes.
    window_s / stride_s: seconds per window (paper: 2 s) and step (default: window).
    frames / frame_size: frames per window (paper: 30) and square size (paper: 224).
    audio_dir / frames_dir: pre-extracted wav files / JPEG frame folders named by clip stem.
    clip_seconds: clip length, used only to time JPEG frames when no audio is decoded
      (with audio, a JPEG folder's frames are spread over the audio's duration).
    frames_fps: the frame rate the JPEG folders were extracted at (e.g. 1): frame k is then at
      k / frames_fps s, whatever the audio's or the clip's length. Default None: no rate is known,
      frames are spread as above, so a wav shorter than its frames would pair its audio with frames
      of other seconds; the clips are compared at the rate the median clip implies, and one whose
      frames span another length than its audio is listed in ``report["jpeg_rate_outliers"]`` with
      a warning (``report["jpeg_frame_timing"]`` says what was checked).
    Frame times come from the mp4's frame rate; windows stop at the shorter of audio and video.
    A clip whose audio and video (mp4, or JPEG frames with ``frames_fps``) differ in length by more
    than one window loses the windows of the longer stream's rest: it is listed, with both lengths
    and the windows lost, in ``report["streams_differ"]``, and a warning says how many.
    Time 0 of a clip is its first video frame: audio decoded from the mp4 is placed by its
    stream's start time (an audio track that starts 0.5 s after the video gets 0.5 s of
    silence before it, one that starts earlier is cut), so a window's audio and frames are the
    same seconds. A pre-extracted wav carries no start time: it is taken to begin with the video.
    """
    check_positive("window_s", window_s)
    stride = window_s if stride_s is None else check_positive("stride_s", stride_s)
    for name, value in (("frames", frames), ("frame_size", frame_size), ("sample_rate", sample_rate)):
        check_positive(name, value, integer=True)
    check_positive("clip_seconds", clip_seconds)
    if frames_fps is not None:
        check_positive("frames_fps", frames_fps)
    if classes is None:
        check_positive("num_classes", num_classes, integer=True)
    modalities = as_names(modalities)
    root = require_dir(Path(root).expanduser(), "VGGSound root", LAYOUT)
    if set(modalities) - {"video", "audio"}:
        raise ValueError(f"VGGSound has video and audio, not {sorted(set(modalities) - {'video', 'audio'})}")
    rows = read_csv(require_file(root / csv_file, "VGGSound csv", LAYOUT))
    if video_dir is not None:
        vdir = require_dir(Path(video_dir), "VGGSound video_dir", LAYOUT)
    else:
        vdir = next((d for d in (root / "video", root / "clips") if d.is_dir()), root)
    adir = require_dir(Path(audio_dir), "VGGSound audio_dir", LAYOUT) if audio_dir else None
    fdir = require_dir(Path(frames_dir), "VGGSound frames_dir", LAYOUT) if frames_dir else None
    mp4s, wavs, jpg_dirs = _index(vdir, ".mp4"), _index(adir, ".wav"), _index(fdir, None)
    on_disk = set(mp4s) | set(wavs) | set(jpg_dirs)

    # ---- clips present on disk (padded or unpadded names), then the class subset
    report: dict[str, Any] = {"duplicate_rows": [], "conflicting_labels": []}
    found: dict[str, tuple[str, int, str]] = {}
    missing: list[tuple[str, str]] = []
    conflicted: set[str] = set()
    for yid, start, label, _ in rows:
        stem = next((s for s in (f"{yid}_{start:06d}", f"{yid}_{start}") if s in on_disk), None)
        if stem is None:
            missing.append((f"{yid}_{start:06d}", label))
        elif stem in found:
            if found[stem][2] != label:
                if on_error != "skip":
                    raise ValueError(f"{csv_file}: clip {stem} is listed twice with different labels, "
                                     f"{found[stem][2]!r} and {label!r}: keep the row with the right label, or "
                                     "pass on_error='skip' (CLI: --data-option on_error=skip) to leave such clips out")
                conflicted.add(stem)
            else:
                report["duplicate_rows"].append(stem)
        else:
            found[stem] = (yid, start, label)
    for stem in sorted(conflicted):                 # on_error="skip": a clip with two labels is left out, listed
        report["conflicting_labels"].append(stem)
        del found[stem]
    all_labels = sorted({r[2] for r in rows})
    present = sorted({v[2] for v in found.values()})
    if classes is not None:
        chosen = list(as_names(classes))
        for c in chosen:
            if c not in all_labels:
                close = difflib.get_close_matches(c, all_labels, n=3)
                raise ValueError(f"VGGSound class {c!r} is not in {csv_file}" +
                                 (f"; did you mean {close}?" if close else ""))
    else:
        if num_classes > len(present):
            raise ValueError(f"asked for {num_classes} random classes but only {len(present)} labels have "
                             f"clips under {vdir}: lower num_classes or add clips")
        rng = np.random.default_rng(class_seed)
        chosen = sorted(rng.choice(present, size=num_classes, replace=False).tolist())
        report["classes_drawn"] = {"seed": class_seed, "classes": chosen}
    index = {c: i for i, c in enumerate(chosen)}
    clips = [_Clip(y, s, index[lab], stem) for stem, (y, s, lab) in sorted(found.items()) if lab in index]
    report["missing_files"] = [stem for stem, lab in missing if lab in index]  # clips of chosen classes not on disk
    if not clips:
        raise ValueError(f"no clips of classes {chosen} found in {vdir} (names <youtube_id>_<start:06d>.mp4)")
    subject_of = {y: i for i, y in enumerate(sorted({c.youtube_id for c in clips}))}

    def decode(c: _Clip) -> dict:
        mp4, wav, jdir = c.find(mp4s), c.find(wavs), c.find(jpg_dirs)
        wave, dur = None, None
        notes: dict[str, list[str]] = {}
        if "audio" in modalities:
            if wav is not None:
                wave, sr = read_wav(wav)
            elif mp4 is not None:
                wave, sr = read_mp4_audio(mp4)
            else:
                raise MissingModality(str(c), "audio", f"{vdir}/{c.stem}.mp4 or a wav in audio_dir "
                                                       f"(named {' or '.join(c.names)})")
            wave = resample(wave, sr, sample_rate)
            dur = len(wave) / sample_rate
        rates: dict[str, float] = {"audio_native": sr} if wave is not None else {}
        if "video" in modalities:
            if jdir is not None:  # no rate in a JPEG folder: frames_fps, else spread over the clip
                jpgs = list_jpeg_frames(jdir)
                n_frames, fps = len(jpgs), None
                rate = frames_fps or len(jpgs) / (dur or clip_seconds)
                source = f"{n_frames} JPEG frames at {frames_fps:g} fps" if frames_fps else None
                if not frames_fps and dur is not None:   # compared across clips after the build
                    notes["jpeg_frames_and_audio"] = [[str(c), n_frames, dur]]
            elif mp4 is not None:
                n_frames, fps = video_info(mp4)
                rates["video"] = rate = fps
                source = f"{n_frames} frames at {fps:g} fps"
            else:
                raise MissingModality(str(c), "video", f"{vdir}/{c.stem}.mp4 or a frame folder in frames_dir "
                                                       f"(named {' or '.join(c.names)})")
            if n_frames == 0:
                raise UnreadableFile(jdir if jdir is not None else mp4,
                                     no_jpeg_frames(jdir) if jdir is not None else "no video frames")
            video_dur = n_frames / rate
            if dur is not None and source is not None and abs(dur - video_dur) > window_s + 1e-6:
                lost = _n_windows(max(dur, video_dur), window_s, stride) - _n_windows(min(dur, video_dur), window_s, stride)
                notes["streams_differ"] = [f"{c}: audio {dur:.2f} s, video {video_dur:.2f} s ({source}): windows stop "
                                           f"at the shorter stream, {lost} of {_n_windows(max(dur, video_dur), window_s, stride)} "
                                           "windows lost"]
            dur = min(dur or np.inf, video_dur)  # aac padding makes audio a little longer
        starts = np.arange(0.0, dur - window_s + 1e-6, stride)
        if len(starts) == 0:
            notes["too_short"] = [f"{c} ({dur:.2f} s < window {window_s} s)"]
            return {"arrays": {}, "labels": [], "subjects": [], "ids": [], "groups": [], "notes": notes}
        arrays = {}
        if wave is not None:
            n = int(round(window_s * sample_rate))
            arrays["audio"] = np.stack([cut(wave, int(round(t * sample_rate)), n) for t in starts])  # (K, n)
        if "video" in modalities:
            idx = np.concatenate([uniform_indices(t * rate, (t + window_s) * rate, frames, n_frames)
                                  for t in starts])
            clip = read_video_frames(mp4, idx, frame_size) if fps is not None else read_jpeg_frames(jpgs, idx, frame_size)
            arrays["video"] = clip.reshape(len(starts), frames, *clip.shape[1:])  # (K, T, 3, H, W)
        k = len(starts)
        return {"arrays": arrays, "labels": [c.label] * k, "subjects": [subject_of[c.youtube_id]] * k,
                "ids": [f"{c.stem}#{t:g}s" for t in starts], "groups": [c.stem] * k,  # (clips merged below)
                "rates": rates, **({"notes": notes} if notes else {})}

    files = [p for c in clips for p in (c.find(mp4s), c.find(wavs), c.find(jpg_dirs)) if p is not None]
    cache_dir = cache_mod.resolve_cache_dir(cache_dir, root)
    settings = {"modalities": modalities, "window_s": window_s, "stride_s": stride, "frames": frames,
                "frame_size": frame_size, "sample_rate": sample_rate, "clip_seconds": clip_seconds,
                "clips": [[str(c), c.label] for c in clips], "files": cache_mod.fingerprint(files, root),
                "decoder": VIDEO_DECODER}     # caches of an earlier decoder are built again
    if "audio" in modalities:                 # (a video-only cache keeps its key)
        settings["audio_decoder"] = MP4_AUDIO_DECODER
    if frames_fps is not None:                # (so does a load without frames_fps)
        settings["frames_fps"] = frames_fps
    windows = cache_mod.collect("vggsound", clips, decode, classes=chosen, settings=settings, cache_dir=cache_dir,
                                sample_rates={"audio": float(sample_rate)} if "audio" in modalities else {},
                                on_error=on_error, progress=progress)
    windows.groups, merged = _clip_groups(windows.ids, {c.stem: c for c in clips}, window_s)
    windows.report.update(report, n_missing_files=len(report["missing_files"]), merged_clips=merged,
                          subject_source="proxy: YouTube video id (VGGSound has no subject annotations)")
    windows.sample_rates = {m: r for m, r in windows.sample_rates.items() if m in modalities}
    if frames_fps is None and "audio" in modalities and "video" in modalities and any(c.find(jpg_dirs) for c in clips):
        _check_jpeg_timing(windows.report, window_s)
    differ = windows.report.get("streams_differ") or []
    if differ:
        warn(f"{len(differ)} VGGSound clips have audio and video of lengths that differ by more than one window: "
             f"their windows stop at the shorter stream (names, lengths and windows lost in "
             f"Splits.report['streams_differ'], e.g. {differ[0]})")
    sf = auto_split_file(split_file, cache_dir, "vggsound", split, seed, ratios, windows)
    return make_splits(windows, split, ratios, seed, sf)
