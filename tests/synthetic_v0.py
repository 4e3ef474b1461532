"""FROZEN copy of dcatkit/data/synthetic.py at commit 06d5f82 (before the regimes were added).

Test fixture only: tests/test_synthetic.py checks that make_synthetic(regime="ambiguous")
is bit-identical to this generator. Never edit it (the point is that it does not change).
"""
from __future__ import annotations

import numpy as np

CLASSES = (
    "drinking",
    "reading",
    "sweep_floor",
    "cut_fruits",
    "wash_hand",
    "type_pc",
    "type_phone",
    "open_close_door",
)

# Motion of each class: (events per second, main IMU axis, amplitude in g).
# Pairs share rate and axis, and differ by ~15% in amplitude only:
# drinking/reading, sweep_floor/open_close_door, cut_fruits/wash_hand,
# type_pc/type_phone.
_MOTION = {
    "drinking": (0.8, 1, 0.55),
    "reading": (0.8, 1, 0.45),
    "sweep_floor": (1.6, 0, 1.00),
    "open_close_door": (1.6, 0, 0.85),
    "cut_fruits": (3.0, 2, 0.60),
    "wash_hand": (3.0, 2, 0.70),
    "type_pc": (5.0, 2, 0.25),
    "type_phone": (5.0, 2, 0.20),
}
# Colour (RGB in [0, 1]) and object half-size in pixels at 32x32, per class.
_COLOUR = np.array(
    [[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.9], [0.9, 0.9, 0.1],
     [0.1, 0.9, 0.9], [0.9, 0.2, 0.9], [1.0, 0.6, 0.1], [0.6, 0.6, 0.6]]
)
_SIZE = np.array([3, 5, 4, 6, 3, 5, 4, 6])
# Tone of each class in Hz (audio at 8 kHz).
_TONE = np.array([300.0, 450.0, 650.0, 900.0, 1200.0, 1600.0, 2100.0, 2700.0])


def _rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """A random 3x3 rotation of at most ~max_angle radians (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def make_synthetic(
    n_samples: int = 2000,
    n_subjects: int = 10,
    seed: int = 0,
    duration: float = 2.0,
    imu_rate: int = 32,
    n_frames: int = 8,
    frame_size: int = 32,
    audio_rate: int = 8000,
    imu_noise: float = 0.25,
    video_noise: float = 0.15,
    audio_noise: float = 0.3,
    modalities: tuple[str, ...] = ("imu", "video", "audio"),
) -> dict:
    """Simulate ``n_samples`` paired recordings.

    Returns a dict with
      ``arrays``: {"imu": float32 (N, 6, duration*imu_rate)  raw acc (g) + gyro (rad/s),
                   "video": uint8 (N, n_frames, 3, frame_size, frame_size),
                   "audio": float32 (N, duration*audio_rate)},
      ``labels`` int64 (N,), ``subjects`` int64 (N,), ``ids`` list of str,
      ``classes`` tuple of names, ``sample_rates`` {"imu", "video", "audio"} in Hz.

    The same ``seed`` gives bit-identical arrays. IMU is *raw* (not min-max
    scaled): scaling with training statistics is the data pipeline's job.
    """
    if n_samples < 1 or n_subjects < 1:
        raise ValueError(f"n_samples and n_subjects must be >= 1, got {n_samples} and {n_subjects}")
    unknown = set(modalities) - {"imu", "video", "audio"}
    if unknown:
        raise ValueError(f"unknown modalities {sorted(unknown)}: expected imu, video, audio")
    if frame_size < 16:
        raise ValueError(f"frame_size must be >= 16 pixels, got {frame_size}")
    rng = np.random.default_rng(seed)
    n_cls = len(CLASSES)

    # --- subjects' style -------------------------------------------------
    sub_rng = np.random.default_rng([seed, 1])
    tempo = sub_rng.uniform(0.8, 1.25, n_subjects)          # event-rate factor
    amp = sub_rng.uniform(0.8, 1.25, n_subjects)            # motion amplitude factor
    rot = np.stack([_rotation(sub_rng, 0.6) for _ in range(n_subjects)])  # sensor orientation
    background = sub_rng.uniform(0.2, 0.6, (n_subjects, 3))  # scene colour
    brightness = sub_rng.uniform(0.8, 1.2, n_subjects)
    reverb = sub_rng.uniform(0.002, 0.03, n_subjects)        # room decay time (s)
    room_noise = sub_rng.uniform(0.5, 1.5, n_subjects)

    labels = np.arange(n_samples) % n_cls
    rng.shuffle(labels)
    subjects = rng.integers(0, n_subjects, n_samples)

    # --- shared latent motion: event train -> envelope on a fine grid ------
    fine = 256
    t = np.arange(int(duration * fine)) / fine                     # (F,)
    rate = np.array([_MOTION[c][0] for c in CLASSES])[labels] * tempo[subjects]
    rate *= rng.uniform(0.9, 1.1, n_samples)
    phase = rng.uniform(0, 1, n_samples)
    # events at (k + phase) / rate, each a smooth bump of ~40 ms
    cyc = t[None, :] * rate[:, None] + phase[:, None]               # (N, F)
    frac = cyc - np.floor(cyc)
    width = 0.04 * rate[:, None]
    env = np.exp(-0.5 * (np.minimum(frac, 1 - frac) / width) ** 2)  # (N, F) in [0, 1]
    env *= rng.uniform(0.7, 1.0, (n_samples, 1))

    out: dict[str, np.ndarray] = {}
    ids = [f"synthetic_{i:06d}" for i in range(n_samples)]

    def resample(x: np.ndarray, n: int) -> np.ndarray:  # (N, F) -> (N, n) by interpolation
        grid = np.linspace(0, x.shape[1] - 1, n)
        lo = np.floor(grid).astype(int)
        hi = np.minimum(lo + 1, x.shape[1] - 1)
        w = grid - lo
        return x[:, lo] * (1 - w) + x[:, hi] * w

    if "imu" in modalities:
        L = int(duration * imu_rate)
        e = resample(env, L)                                           # (N, L)
        axis = np.array([_MOTION[c][1] for c in CLASSES])[labels]
        a = np.array([_MOTION[c][2] for c in CLASSES])[labels] * amp[subjects]
        acc = np.zeros((n_samples, 3, L))
        acc[np.arange(n_samples), axis] = a[:, None] * e
        gyro = np.gradient(acc, axis=2) * imu_rate * 0.3                # rotation follows motion
        gravity = np.array([0.0, 0.0, 1.0])[None, :, None]
        acc = np.einsum("nij,njl->nil", rot[subjects], acc + gravity)
        gyro = np.einsum("nij,njl->nil", rot[subjects], gyro)
        imu = np.concatenate([acc, gyro], axis=1)
        imu += rng.normal(0, imu_noise, imu.shape) * a.mean()
        out["imu"] = imu.astype(np.float32)

    if "video" in modalities:
        S = frame_size
        e = resample(env, n_frames)                                    # (N, T)
        yy, xx = np.mgrid[0:S, 0:S]
        scale = S / 32
        size = _SIZE[labels] * scale
        cx = rng.uniform(0.3, 0.7, n_samples) * S
        cy0 = rng.uniform(0.35, 0.55, n_samples) * S
        cy = cy0[:, None] + e * 0.25 * S                               # object moves with events
        frames = np.empty((n_samples, n_frames, 3, S, S), dtype=np.uint8)
        square = labels % 2 == 1                                       # shape: odd classes square
        for ti in range(n_frames):  # loop over a handful of frames only
            dx = np.abs(xx[None] - cx[:, None, None])
            dy = np.abs(yy[None] - cy[:, ti, None, None])
            inside = np.where(square[:, None, None],
                              np.maximum(dx, dy) <= size[:, None, None],
                              dx ** 2 + dy ** 2 <= size[:, None, None] ** 2)   # (N, S, S)
            img = np.where(inside[:, None], _COLOUR[labels][:, :, None, None],
                           background[subjects][:, :, None, None])              # (N, 3, S, S)
            img = img * brightness[subjects][:, None, None, None]
            img = img + rng.normal(0, video_noise, img.shape)
            frames[:, ti] = np.clip(img * 255, 0, 255).astype(np.uint8)
        out["video"] = frames

    if "audio" in modalities:
        N = int(duration * audio_rate)
        ta = np.arange(N) / audio_rate
        e = resample(env, N)                                           # (N_s, N)
        f0 = _TONE[labels] * rng.uniform(0.97, 1.03, n_samples)
        tone = np.sin(2 * np.pi * f0[:, None] * ta[None] + rng.uniform(0, 2 * np.pi, (n_samples, 1)))
        tone += 0.5 * np.sin(4 * np.pi * f0[:, None] * ta[None])       # one harmonic
        dry = e * tone
        # room: exponentially decaying noise impulse response, per subject
        k = int(0.05 * audio_rate)
        tk = np.arange(k) / audio_rate
        ir = np.exp(-tk[None] / reverb[subjects][:, None]) * np.random.default_rng([seed, 2]).normal(
            size=(n_samples, k))
        ir[:, 0] = 1.0
        wet = np.fft.irfft(np.fft.rfft(dry, N + k) * np.fft.rfft(ir, N + k), N + k)[:, :N]
        wet /= np.abs(wet).max(axis=1, keepdims=True) + 1e-8
        wet += rng.normal(0, audio_noise, wet.shape) * room_noise[subjects][:, None]
        out["audio"] = (0.5 * wet).astype(np.float32)

    return {
        "arrays": out,
        "labels": labels.astype(np.int64),
        "subjects": subjects.astype(np.int64),
        "ids": ids,
        "classes": CLASSES,
        "sample_rates": {"imu": float(imu_rate), "video": n_frames / duration, "audio": float(audio_rate)},
    }
