"""Decoding and per-modality preprocessing shared by the real-dataset loaders.

Everything here reads rates from the files (wav header, mp4 stream) and never
assumes them. Shapes:

- video frames: uint8 (T, 3, H, W), RGB
- audio: float32 (N,) mono at the requested sample rate
- IMU (any ``timeseries`` modality): float32 (C, L), channels first

Library code does the work: PyAV decodes mp4, soundfile reads wav, PIL reads
JPEG, torchvision resizes, torchaudio resamples.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch


class UnreadableFile(ValueError):
    """A data file that exists but could not be decoded; ``path`` names it. A ValueError (bad input),
    so the command line reports it as ``dcatkit: error: cannot read ...``, not as a traceback."""

    def __init__(self, path: Path | str, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"cannot read {self.path}: {reason}")


def require_finite(path: Path | str, x: np.ndarray, where: str = "(row, column)") -> np.ndarray:
    """``x`` unchanged if every value is finite; else ``UnreadableFile`` naming the file, how many
    values are empty / NaN / infinite and where the first one is (its index in ``x`` as read,
    counted from 1, described by ``where``): such a value would turn min-max bounds and training into NaN."""
    bad = ~np.isfinite(x)
    if bad.any():
        first = tuple(int(i) + 1 for i in np.argwhere(bad)[0])
        raise UnreadableFile(path, f"{int(bad.sum())} empty, NaN or infinite value(s), the first at "
                                   f"{where} {first}: fill or remove them")
    return x


class Dropped(Exception):
    """A sample left out on purpose (too short, unlabelled...): listed under ``report[reason]``."""

    def __init__(self, name: str, reason: str, detail: str = ""):
        self.name, self.reason = name, reason
        super().__init__(f"{name}: {reason}" + (f" ({detail})" if detail else ""))


class MissingModality(Dropped):
    """A sample lacks the file of one modality; it is reported and dropped, never re-paired."""

    def __init__(self, sample: str, modality: str, expected: Path | str):
        self.modality, self.expected = modality, str(expected)
        super().__init__(sample, "missing_modality", f"no {modality}: expected {self.expected}")


@contextlib.contextmanager
def reading(path: Path | str) -> Iterator[None]:
    """Turn any decoding failure inside the block into an ``UnreadableFile`` naming ``path``."""
    try:
        yield
    except (UnreadableFile, Dropped):
        raise
    except Exception as e:  # decoders raise many kinds; the file name is what the user needs
        raise UnreadableFile(path, f"{type(e).__name__}: {e}") from e


# --------------------------------------------------------------------------- loader arguments

def check_positive(name: str, value, integer: bool = False):
    """``value`` when it is a finite number > 0 (an int when ``integer``), else a ValueError naming it."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'} > 0, got {value!r}")
    return value


def as_names(value) -> tuple:
    """A list-of-names argument as a tuple; a single string is one name, not its characters."""
    return (value,) if isinstance(value, str) else tuple(value)


# --------------------------------------------------------------------------- windows

def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start indices of full sliding windows: (K,), empty when ``length < window``."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window} and {stride}")
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, stride, dtype=np.int64)


def uniform_indices(start: float, stop: float, count: int, n_total: int) -> np.ndarray:
    """``count`` frame indices spread uniformly over [start, stop), clipped to [0, n_total)."""
    if stop <= start:
        stop = start + 1
    centres = start + (np.arange(count) + 0.5) * (stop - start) / count
    return np.clip(np.floor(centres).astype(np.int64), 0, max(n_total - 1, 0))


# --------------------------------------------------------------------------- video

def resize_frames(frames: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, 3, h, w) uint8 with torchvision's antialiased resize."""
    from torchvision.transforms.v2 import functional as TF

    hw = (size, size) if isinstance(size, int) else tuple(size)
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2)  # (T, 3, H, W), a writable copy
    return TF.resize(x, list(hw), antialias=True).numpy()


def video_info(path: Path) -> tuple[int, float | None]:
    """(number of frames, frames per second) of an mp4's first video stream: the frames its
    duration holds at its rate, when the header gives both (a cut made with ``-c copy`` keeps
    every packet in the header's count but plays, and decodes, only the edited part), else the
    header's count, else the packets counted."""
    import av

    with reading(path), av.open(str(path)) as c:
        if not c.streams.video:
            raise UnreadableFile(path, "no video stream")
        s = c.streams.video[0]
        fps = float(s.average_rate) if s.average_rate else None
        n = s.frames
        if s.duration and s.time_base and fps:
            held = int(round(float(s.duration * s.time_base) * fps))
            n = min(n, held) if n else held
        n = n or sum(1 for p in c.demux(s) if p.size)      # count packets when the header says nothing
    return int(n), fps


OVERSHOOT = 2    # frames a header's count may promise beyond the last decodable one (then: the last is reused)
VIDEO_DECODER = 2  # in the loaders' cache settings: 2 (2026-12-06) refuses truncated mp4s and reads edit-list cuts
MP4_AUDIO_DECODER = 3  # in VGGSound's cache settings: 3 places the audio on the video's clock (its start
#                        time), 2 averages an mp4's channels (1: FFmpeg's 0.707 downmix)


def read_video_frames(path: Path, indices: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Decode the frames at ``indices`` (any order, repeats allowed): uint8 (len(indices), 3, h, w)."""
    import av

    wanted = set(int(i) for i in indices)
    got: dict[int, np.ndarray] = {}
    decoded = 0
    with reading(path), av.open(str(path)) as c:
        for k, frame in enumerate(c.decode(video=0)):
            decoded = k + 1
            if k in wanted:
                got[k] = resize_frames(frame.to_ndarray(format="rgb24")[None], size)[0]
            if len(got) == len(wanted):
                break
    if not got:
        raise UnreadableFile(path, "no decodable video frames")
    missing = max(wanted - set(got), default=-1)
    if missing > decoded - 1 + OVERSHOOT:
        raise UnreadableFile(path, f"frame {missing} was asked for (the header's frame count), but only {decoded} "
                                   "frames decode: a truncated file? Copy it again")
    last = max(got)  # header frame counts can overshoot by a frame or two: reuse the last one
    return np.stack([got[i] if i in got else got[last] for i in indices.tolist()])


_JPEG_PATTERNS = (re.compile(r"^(\d+)\.jpe?g$", re.I), re.compile(r"^img_(\d+)\.jpe?g$", re.I))


def list_jpeg_frames(folder: Path) -> list[Path]:
    """JPEG frames of one video in temporal order.

    Accepts both naming schemes found in the wild: ``000001.jpg`` (ffmpeg, from 1)
    and ``img_000000.jpg`` (the UESTC authors' trainer, from 0), one per folder: a folder
    holding both, or one frame number twice (``000001.jpg`` and ``000001.jpeg``), is an
    ``UnreadableFile`` (sorted together, two extractions would interleave).
    """
    frames: list[tuple[int, Path]] = []
    schemes: dict[int, str] = {}
    for p in folder.iterdir():
        for k, pat in enumerate(_JPEG_PATTERNS):
            m = pat.match(p.name)
            if m:
                frames.append((int(m.group(1)), p))
                schemes.setdefault(k, p.name)
                break
    if len(schemes) > 1:
        raise UnreadableFile(folder, f"frames of both naming schemes ({' and '.join(schemes.values())}): two "
                                     "extractions in one folder? Keep one")
    numbers = [n for n, _ in frames]
    if len(set(numbers)) < len(numbers):
        twice = sorted(p.name for n, p in frames if numbers.count(n) > 1)[:2]
        raise UnreadableFile(folder, f"frame number given twice ({' and '.join(twice)}): keep one of them")
    return [p for _, p in sorted(frames)]


JPEG_FRAME_NAMES = "000001.jpg (ffmpeg's numbering, from 1) or img_000000.jpg (from 0), .jpg or .jpeg"


def no_jpeg_frames(folder: Path) -> str:
    """Why ``list_jpeg_frames(folder)`` found nothing: the accepted names and what the folder holds
    (how many files, one of them), e.g. frames extracted as ``frame_000001.jpg``."""
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    found = f"it holds {len(files)} files, e.g. {files[0]!r}" if files else "it is empty"
    return (f"no video frames: frames must be named {JPEG_FRAME_NAMES}; {found} (rename them, e.g. "
            "frame_000001.jpg to 000001.jpg, or extract them again)")


def read_jpeg_frames(files: Sequence[Path], indices: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Load ``files[i]`` for i in ``indices``: uint8 (len(indices), 3, h, w)."""
    from PIL import Image

    out = []
    cache: dict[int, np.ndarray] = {}
    for i in indices.tolist():
        if i not in cache:
            with reading(files[i]), Image.open(files[i]) as im:
                cache[i] = resize_frames(np.asarray(im.convert("RGB"))[None], size)[0]
        out.append(cache[i])
    return np.stack(out)


# --------------------------------------------------------------------------- audio

def resample(wave: np.ndarray, orig_sr: float, new_sr: float) -> np.ndarray:
    """(N,) float32 at ``orig_sr`` -> (N * new_sr / orig_sr,) with torchaudio's sinc resampler."""
    if int(orig_sr) == int(new_sr):
        return wave.astype(np.float32, copy=False)
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
                       int(orig_sr), int(new_sr)).numpy()


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 waveform (N,) and its sample rate from the header (channels averaged)."""
    import soundfile as sf

    with reading(path):
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (N, ch)
    return x.mean(axis=1), int(sr)


def read_mp4_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 waveform (N,) of an mp4's first audio stream and its rate (from the stream):
    decoded in the stream's own channel layout, then the channels averaged, as :func:`read_wav`
    does (FFmpeg's own downmix to mono weighs each channel of a stereo pair by 0.707, so the
    same sound would be 1.41x louder from an mp4 than from a wav, and could exceed 1).

    On the video's clock: sample 0 plays with the first video frame, as a player presents them.
    An audio stream that starts later than the video (its start time, e.g. an edit list's delay)
    is preceded by that much silence; one that starts earlier is cut by as much. An mp4 without
    video is read from its first audio sample."""
    import av

    with reading(path), av.open(str(path)) as c:
        if not c.streams.audio:
            raise MissingModality(path.stem, "audio", f"an audio stream in {path}")
        stream = c.streams.audio[0]
        sr = int(stream.sample_rate)
        video = c.streams.video[0] if c.streams.video else None
        planar, chunks, start = None, [], 0.0
        for frame in c.decode(audio=0):
            if planar is None:      # float planar in the native layout: one row per channel, nothing mixed
                planar = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=sr)
                start = float(frame.time or 0.0)                  # when its first sample plays (s)
            chunks.extend(f.to_ndarray() for f in planar.resample(frame))
        if planar is not None:
            chunks.extend(f.to_ndarray() for f in planar.resample(None))
        if video is not None and video.start_time is not None:
            start -= float(video.start_time * video.time_base)
    if not chunks:
        raise UnreadableFile(path, "no decodable audio frames")
    wave = np.concatenate(chunks, axis=1).mean(axis=0).astype(np.float32)
    lag = int(round(start * sr)) if video is not None else 0
    return (np.pad(wave, (lag, 0)) if lag > 0 else wave[-lag:]), sr


def cut(wave: np.ndarray, start: int, length: int) -> np.ndarray:
    """``wave[start:start+length]``, zero-padded at the end when the recording is shorter."""
    seg = wave[max(start, 0): max(start, 0) + length]
    if len(seg) < length:
        seg = np.pad(seg, (0, length - len(seg)))
    return seg


# --------------------------------------------------------------------------- timeseries (IMU...)

def minmax_stats(train_windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (min, max), each (C,), over training windows (N, C, L) of a timeseries modality."""
    x = np.asarray(train_windows, dtype=np.float32)
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"min-max statistics need training windows (N, channels, length) with N >= 1, "
                         f"got shape {x.shape}")
    return x.min(axis=(0, 2)), x.max(axis=(0, 2))


def minmax_apply(windows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Scale timeseries windows (N, C, L) to [-1, 1] with given per-channel bounds (C,) (paper Sec. V-B.1).

    Values outside the training range map outside [-1, 1]; they are not clipped.
    A constant channel (hi == lo) maps to 0.
    """
    span = np.where(hi > lo, hi - lo, 1.0).astype(np.float32)
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] != len(lo) or len(lo) != len(hi):
        raise ValueError(f"min-max scaling takes windows (N, C, L) and {len(lo)} per-channel bounds, got "
                         f"windows of shape {x.shape} and {len(lo)} min / {len(hi)} max values")
    out = 2.0 * (x - lo[None, :, None]) / span[None, :, None] - 1.0
    out[:, hi <= lo] = 0.0
    return out.astype(np.float32)


# --------------------------------------------------------------------------- layout checks

def require_dir(path: Path, what: str, layout: str) -> Path:
    """``path`` if it is a folder, else a ``FileNotFoundError`` that shows the expected layout."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{what} not found: {path} {'is not a folder' if path.exists() else 'does not exist'}.\n"
            f"Expected layout:\n{layout}\nPoint root= at the folder that holds this layout.")
    return path


def require_file(path: Path, what: str, layout: str) -> Path:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} not found: {path} does not exist.\nExpected layout:\n{layout}")
    return Path(path)
