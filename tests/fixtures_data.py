"""Tiny copies of the three datasets in their native layouts, written by the tests.

Nothing is downloaded. Signals carry their own coordinates so tests can check
alignment: video frame k of every clip is a flat grey of value ``frame_value(k)``,
UESTC IMU row r has acc x = r * 16 counts, and the Cough IMU x-axis equals its
own elapsed time.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest


def _needs(module: str, what: str):
    """``module``, or skip the test that needs it (the GPU box lacks PyAV / soundfile; CI has both)."""
    return pytest.importorskip(module, reason=f"{what} needs the {module} package, which is not installed")


def frame_value(k: int) -> int:
    return 20 + 5 * k


def write_mp4(path: Path, n_frames: int, size: int = 16, fps: int = 25, audio_sr: int | None = None,
              audio_seconds: float | None = None, tone_hz: float = 440.0, faststart: bool = False,
              audio_start: float | None = None, video_start: float | None = None) -> None:
    """An mp4 (mpeg4 video, optional aac audio) whose frame k is a flat grey of ``frame_value(k)``
    (``faststart``: its header first, so a copy cut short still says how many frames it had).
    ``audio_start`` / ``video_start``: the time (s) the stream's first sample / frame is presented
    at (the muxer writes it as the stream's start, an edit list's delay); None leaves the encoder's."""
    from fractions import Fraction

    av = _needs("av", "writing an mp4 fixture")

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width = v.height = size
        v.pix_fmt = "yuv420p"
        v.options = {"qscale": "1"}
        a = None
        if audio_sr:
            a = c.add_stream("aac", rate=audio_sr)
            a.layout = "mono"
        for k in range(n_frames):
            img = np.full((size, size, 3), frame_value(k), np.uint8)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            if video_start is not None:
                vf.pts, vf.time_base = int(round(video_start * fps)) + k, Fraction(1, fps)
            for p in v.encode(vf):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            n = int(audio_sr * (audio_seconds or n_frames / fps))
            x = (0.3 * np.sin(2 * np.pi * tone_hz * np.arange(n) / audio_sr)).astype(np.float32)[None]
            fr = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
            fr.sample_rate = audio_sr
            if audio_start is not None:
                fr.pts, fr.time_base = int(round(audio_start * audio_sr)), Fraction(1, audio_sr)
            for p in a.encode(fr):
                c.mux(p)
            for p in a.encode():
                c.mux(p)


def write_audio_mp4(path: Path, wave: np.ndarray, sr: int) -> None:
    """An audio-only mp4 (aac) of ``wave`` (channels, samples) float32 in [-1, 1]: 1 channel mono, 2 stereo."""
    av = _needs("av", "writing an mp4 fixture")

    layout = {1: "mono", 2: "stereo"}[len(wave)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=sr)
        a.layout = layout
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave, dtype=np.float32), format="fltp", layout=layout)
        fr.sample_rate = sr
        for p in a.encode(fr):
            c.mux(p)
        for p in a.encode():
            c.mux(p)


def write_jpegs(folder: Path, n_frames: int, scheme: str, size: int = 16) -> None:
    """JPEG frames named ``000001.jpg`` (scheme "ffmpeg", from 1) or ``img_000000.jpg`` ("img", from 0)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n_frames):
        name = f"{k + 1:06d}.jpg" if scheme == "ffmpeg" else f"img_{k:06d}.jpg"
        Image.fromarray(np.full((size, size, 3), frame_value(k), np.uint8)).save(folder / name, quality=100)


# --------------------------------------------------------------------------- UESTC

UESTC_FOLDERS = ("1_upstairs", "3_drinking", "5_reading", "6_sweep_floor", "7_cut_fruits", "11_wash_hand",
                 "14_type_pc", "25_type_phone", "27_open_close_door")


def uestc_stem(folder: str, i: int) -> str:
    return f"{folder}_2020_12_{10 + i % 3:02d}_15_58_{i:02d}"


def make_uestc(root: Path, per_class: int = 3, rows: int = 40, jpeg_every: int = 0) -> dict:
    """UESTC layout with the paper's 8 classes plus 1_upstairs. Returns {stem: subject}.

    Recording i of a class has ``rows`` IMU rows and a ``rows``-frame video; when
    ``jpeg_every`` > 0, every jpeg_every-th recording has pre-extracted JPEG frames
    (alternating naming schemes) in ``video/<folder>/<stem>/`` instead of an mp4.
    """
    subjects = {}
    lines = {"train.txt": [], "val.txt": [], "test.txt": []}
    n = 0
    for folder in UESTC_FOLDERS:
        label = int(folder.split("_")[0]) - 1
        for i in range(per_class):
            stem = uestc_stem(folder, i)
            subjects[stem] = n % 4  # 4 participants
            csv_path = root / "sensor" / folder / f"{stem}.csv"
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            r = np.arange(rows)
            imu = np.stack([r * 16, r * 0 + 100 * label, r * 0 + i, r % 7, -r, r * 0 + 3], axis=1)
            np.savetxt(csv_path, imu.astype(int), fmt="%d", delimiter=",")
            if jpeg_every and n % jpeg_every == 0:
                write_jpegs(root / "video" / folder / stem, rows, "ffmpeg" if n % 2 == 0 else "img")
            else:
                write_mp4(root / "video" / folder / f"{stem}.mp4", rows)
            split = ("train.txt", "val.txt", "test.txt")[n % 3]
            lines[split].append(f"yourdataset_path/data/{folder}/{stem} {rows} {rows} {label}")
            n += 1
    for name, ls in lines.items():
        text = "\n".join(ls) + ("" if name == "test.txt" else "\n")  # test.txt lacks the final newline
        (root / name).write_text(text)
    return subjects


# --------------------------------------------------------------------------- Cough

COUGH_TRIALS = ("Trial_1_No_Talking", "Trial_2_Talking", "Trial_3_Nonverbal")


def make_cough(root: Path, subjects=("005", "006", "007", "008"), sr: int = 8000, seconds: float = 6.0,
               imu_hz: float = 98.6, audio_offset: float = 0.5, imu_offset: float = 0.2,
               missing_in: tuple = ("006",), segments=None) -> list:
    """Cough layout; each trial has 4 annotated segments. Returns the annotation entries.

    ``segments``: [(start_s, end_s, 1-based label id), ...] used in every trial instead
    (default: a cough, a short sneeze, a trial-dependent class, an "Unknown" id 9).

    Sync: audio time t is IMU time t - audio_offset + imu_offset; the IMU x-axis
    stores its own elapsed time, so a window's IMU x values reveal where it was cut.
    """
    entries = []
    for s in subjects:
        sdir = root / s
        sync = []
        for k, trial in enumerate(COUGH_TRIALS, 1):
            tdir = sdir / trial
            tdir.mkdir(parents=True)
            sf = _needs("soundfile", "writing a wav fixture")

            n = int(sr * seconds)
            x = 0.1 * np.sin(2 * np.pi * 300 * np.arange(n) / sr)
            tag = trial.split("_", 2)[2]
            sf.write(tdir / f"{s}_{tag}_Out.wav", x, sr)
            if s not in missing_in:
                sf.write(tdir / f"{s}_{tag}_In.wav", x, sr)
            t = np.arange(0, seconds, 1 / imu_hz)
            for sensor in ("Accelerometer", "Gyroscope"):
                with open(tdir / f"{sensor}.csv", "w", newline="") as f:
                    w = csv.writer(f)
                    unit = "g" if sensor == "Accelerometer" else "deg/s"
                    w.writerow(["epoc (ms)", "timestamp (+0000)", "elapsed (s)",
                                f"x-axis ({unit})", f"y-axis ({unit})", f"z-axis ({unit})"])
                    for ti in t:
                        w.writerow([int(1e6 + ti * 1000), "2022-01-01T00:00:00", f"{ti:.4f}", f"{ti:.4f}",
                                    "0.5" if sensor == "Accelerometer" else "-1", "1.0"])
            sync.append(f"trial{k} a b c {audio_offset} e f {imu_offset}")
            name = f"{s}_{tag.lower()}_out.wav" if int(s) % 2 else f"{s}_{tag}_Out.wav"
            segs = []
            for a, b, lid in segments or [(1.0, 2.1, 1), (2.5, 2.8, 3), (3.2, 4.3, 2 + k), (4.5, 5.0, 9)]:
                segs.append({"start_time": a, "end_time": b,
                             "annotation": {"label": {"label_id": 1, "values": {"id": lid, "value": "x"}}}})
            entries.append({"original_filename": name, "segmentations": segs})
        (sdir / "sync_time.txt").write_text("\n".join(sync) + "\n")
    (root / "DataAnnotation.json").write_text(json.dumps(entries))
    return entries


# --------------------------------------------------------------------------- VGGSound

VGG_LABELS = ("female speech, woman speaking", "dog barking", "playing piano", "rain, thunder", "engine")


def make_vggsound(root: Path, per_class: int = 3, seconds: float = 2.0, fps: int = 10, sr: int = 8000,
                  missing: int = 1, audio_start: float | None = None) -> list:
    """VGGSound layout: csv (quoted labels with commas) + mp4 clips, padded and unpadded names.

    Returns the csv rows. ``missing`` extra rows point to clips that are not on disk.
    ``audio_start``: every clip's audio track starts this many seconds after its video.
    """
    rows = []
    n = 0
    for li, label in enumerate(VGG_LABELS):
        for i in range(per_class):
            yid = f"-{li}x{i}_YtId"[:11]
            start = 30 * (i + 1)
            rows.append((yid, start, label, "train" if i else "test"))
            stem = f"{yid}_{start:06d}" if n % 2 == 0 else f"{yid}_{start}"
            write_mp4(root / "video" / f"{stem}.mp4", int(seconds * fps), fps=fps, audio_sr=sr,
                      audio_seconds=seconds, tone_hz=200 + 100 * li, audio_start=audio_start)
            n += 1
    for j in range(missing):
        rows.append((f"gone{j}xxxxx", 10, VGG_LABELS[0], "train"))
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return rows


def frame_means(path: Path) -> np.ndarray:
    """Mean value of every frame of an mp4 (PyAV) or a JPEG folder: an independent decode
    to compare the loaders' frame choice with (mpeg4 is lossy, so not ``frame_value``)."""
    if path.is_dir():
        from PIL import Image

        from dcatkit.data.preprocess import list_jpeg_frames
        return np.array([np.asarray(Image.open(p).convert("RGB")).mean() for p in list_jpeg_frames(path)])
    av = _needs("av", "decoding an mp4 fixture")

    with av.open(str(path)) as c:
        return np.array([f.to_ndarray(format="rgb24").mean() for f in c.decode(video=0)])


def make_vggsound_overlapping(root: Path, videos: int = 6, sr: int = 1000, clip_s: int = 6,
                              starts=(0, 2), far: int = 12) -> dict:
    """VGGSound layout with pre-extracted wavs (``root/wav``) of clips that overlap: every YouTube
    video (20 s of its own noise) gives clips at ``starts`` (``clip_s`` long, so they share audio),
    and the even videos one more clip at ``far`` that shares none. Two labels, ``videos`` each.
    Returns {youtube_id: [stems]}."""
    sf = _needs("soundfile", "writing a wav fixture")
    wav = root / "wav"
    wav.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows, out = [], {}
    for li, label in enumerate(VGG_LABELS[1:3]):
        for v in range(videos):
            yid = f"ov{li}{v}xxxxxxxxx"[:11]
            sound = (0.3 * rng.uniform(-1, 1, 20 * sr)).astype(np.float32)
            for start in (*starts, far) if v % 2 == 0 else starts:
                rows.append((yid, start, label, "train"))
                stem = f"{yid}_{start:06d}"
                sf.write(wav / f"{stem}.wav", sound[start * sr:(start + clip_s) * sr], sr, subtype="FLOAT")
                out.setdefault(yid, []).append(stem)
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return out
