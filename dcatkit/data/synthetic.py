"""A deterministic simulator of paired IMU, video and audio recordings.

Eight activities named after the paper's UESTC-MMEA-CL subset are "recorded" by
several simulated subjects. Every sample has one latent motion: a train of
events (taps, strokes, sips...) whose times are shared by all three sensors, so
the same events show in the IMU trace, in the moving object of the video and in
the bursts of the audio.

Two regimes (``make_synthetic(regime=...)``):

``"headroom"`` (default) — transfer *can* help. Every class has its own motion
  in the shared latent: event rate, main axis, timing pattern (single events or
  doublets) and the shape of each event (smooth lift, stroke, sharp impact,
  biphasic rub, tap). The IMU therefore carries all eight classes: an IMU model
  trained on 20,000 samples separates them (the *IMU ceiling*: macro-F1 0.96,
  benchmarks/SIMULATOR.md). But those cues are hard to learn from the IMU:
  small amplitudes under sensor noise, background head motion, a sensor
  orientation of its own per subject (any rotation) plus a small one per
  recording. With little data an IMU baseline sits well below its ceiling
  (0.80 at the default 1,000 recordings, 0.87 at 2,000), while video (object colour, shape,
  size) and audio (tone band) learn the class easily: the gap a source
  modality may help close. Subjects also use their own objects (object colour
  and size partly their own), make their own sounds (tone per subject and
  class) in their own room (a steady hum at the subject's frequency), and wear
  the sensor their own way, so the subject-disjoint (OOD) split is harder than
  the ID split for every modality, as in the paper.
  Its difficulty knobs are ``HEADROOM_KNOBS`` (``make_synthetic(knobs=...)``
  overrides them, for studies of the simulator).

``"ambiguous"`` — the simulator as it was up to commit 06d5f82 (bit-identical
  output for the same seed and arguments). The eight classes form four pairs that
  share rate and axis and differ in IMU only by ~15% amplitude, which the
  subjects' +-25% amplitude style hides: the IMU ceiling is ~0.74 macro-F1 and
  the baseline at 2000 samples ~0.69. It used to serve as the negative control,
  but it is not one: at n = 1000 its baseline (0.657, 3 seeds) sits 0.079 below
  that ceiling (half the headroom regime's room), so a method could move it. Kept
  for reference, unchanged.

Controls (``make_synthetic(control=..., modalities=...)``, headroom regime):

- *negative* (``control="negative"``): the IMU comes from an independent draw, so
  it carries no information about the labels it is scored on; every method's
  expected test macro recall is exactly 1/8 (chance): nothing can move it;
- *positive* (the modality ``"imu_clean"``, the target's own sensor without noise,
  as the source of the noisy ``"imu"`` target, with few labels and many unlabeled
  pairs, ``data.dataset.hide_labels``): a much stronger teacher of the same
  recordings, so transfer should help (``benchmarks/controls.py``).

Rule for changing this file: the simulator's knobs (noise, amplitudes, style
ranges, ...) are chosen from baseline-vs-ceiling measurements only
(``dcatkit.headroom.measure_headroom``), never from a transfer method's result,
and the ``"ambiguous"`` regime is kept unchanged. Re-measure and
update benchmarks/SIMULATOR.md after any change to the ``"headroom"`` regime.

Subjects have their own style: tempo, amplitude, sensor orientation (a rotation
of the IMU axes), camera/scene (background colour, brightness) and room
acoustics (reverberation, noise level). Splitting by subject therefore makes an
out-of-distribution test set.

Everything is vectorised numpy: a few thousand samples take seconds.
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
MODALITIES = ("imu", "video", "audio", "imu_clean")   # what make_synthetic draws (imu_clean: the noise-free IMU)
REGIMES = ("headroom", "ambiguous")
CONTROLS = ("negative",)
NEGATIVE_REPLACES = ("imu", "imu_clean")    # the modalities control="negative" takes from an independent draw
# Default number of recordings: the size at which the headroom regime's IMU baseline
# sits >= 0.12 macro-F1 below its ceiling (benchmarks/SIMULATOR.md).
DEFAULT_N_SAMPLES = 1000

# --- "ambiguous" regime (the pre-06d5f82 simulator) -----------------------------------
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

# --- "headroom" regime --------------------------------------------------------
# Event shapes: (width sigma in seconds, biphasic). A monophasic event is a
# Gaussian bump exp(-u^2 / 2 sigma^2); a biphasic one its derivative (a push
# and a pull), both scaled to peak 1.
EVENT_SHAPES = {
    "lift": (0.12, False),     # slow raise of the arm (cup, page)
    "stroke": (0.05, False),   # a sweep or a pull
    "impact": (0.015, False),  # a knife hitting the board
    "rub": (0.04, True),       # hands rubbing back and forth
    "tap": (0.015, False),     # a key press
}
# Motion of each class: (events per second, main IMU axis, event shape,
# doublet gap in seconds or 0 for single events, amplitude in g).
# The pairs of the ambiguous regime keep their rate; what tells a pair apart:
# drinking/reading: axis; sweep_floor/open_close_door: timing (door = doublets,
# open then close); cut_fruits/wash_hand: event shape (sharp vs biphasic);
# type_pc/type_phone: axis.
MOTION_HEADROOM = {
    "drinking": (0.8, 1, "lift", 0.0, 0.30),
    "reading": (0.8, 0, "lift", 0.0, 0.30),
    "sweep_floor": (1.6, 0, "stroke", 0.0, 0.35),
    "open_close_door": (1.6, 0, "stroke", 0.25, 0.35),
    "cut_fruits": (3.0, 2, "impact", 0.0, 0.30),
    "wash_hand": (3.0, 2, "rub", 0.0, 0.30),
    "type_pc": (5.0, 2, "tap", 0.0, 0.20),
    "type_phone": (5.0, 1, "tap", 0.0, 0.20),
}
# Knobs of the headroom regime's IMU difficulty (chosen from baseline-vs-ceiling
# measurements only, see the module docstring and benchmarks/SIMULATOR.md).
HEADROOM_KNOBS = {
    "imu_noise": 0.12,         # white sensor noise, in g (and rad/s for the gyroscope)
    "video_noise": 0.05,       # white pixel noise (pixel values in [0, 1]); 0.15 until the video baseline was measured
    "head_motion": 0.05,       # background head motion (smooth, 0.2-1.5 Hz), in g
    "subject_angle": 3.14,     # max sensor rotation per subject (radians): any orientation
    "sample_angle": 0.15,      # max extra rotation per recording (radians)
    "timing_jitter": 0.02,     # std of each event's time around the rhythm (s)
    "object_mix": 0.3,         # weight of the subject's own object colour (0 = class colour only)
    "size_jitter": 0.15,       # +- relative object size per subject
    "tone_spread": 0.12,       # +- relative tone per subject and class
    "room_hum": 0.6,           # amplitude of a steady hum at the subject's own frequency (tone peak = 1)
}

# Colour (RGB in [0, 1]) and object half-size in pixels at 32x32, per class.
_COLOUR = np.array(
    [[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.9], [0.9, 0.9, 0.1],
     [0.1, 0.9, 0.9], [0.9, 0.2, 0.9], [1.0, 0.6, 0.1], [0.6, 0.6, 0.6]]
)
_SIZE = np.array([3, 5, 4, 6, 3, 5, 4, 6])
# Tone of each class in Hz (audio at 8 kHz).
_TONE = np.array([300.0, 450.0, 650.0, 900.0, 1200.0, 1600.0, 2100.0, 2700.0])
CLASS_TONES = dict(zip(CLASSES, _TONE.tolist()))   # the same, by class name (each subject's within +-tone_spread)


def _rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """A random 3x3 rotation of at most ~max_angle radians (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _rotations(rng: np.random.Generator, n: int, max_angle: float) -> np.ndarray:
    """``n`` random rotations (n, 3, 3), each of at most max_angle radians (Rodrigues, vectorised)."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = rng.uniform(-max_angle, max_angle, n)[:, None, None]
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= k.transpose(0, 2, 1)
    return np.eye(3)[None] + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """(N, F) -> (N, n) by linear interpolation on an evenly spaced grid."""
    grid = np.linspace(0, x.shape[1] - 1, n)
    lo = np.floor(grid).astype(int)
    hi = np.minimum(lo + 1, x.shape[1] - 1)
    w = grid - lo
    return x[:, lo] * (1 - w) + x[:, hi] * w


def _bin_mean(x: np.ndarray, n: int) -> np.ndarray:
    """(..., F) -> (..., n): the mean of x over n equal bins (what a sensor's
    anti-alias filter does before sampling). Exact for any F/n, via the cumulative sum."""
    F = x.shape[-1]
    c = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x, axis=-1)], axis=-1)
    edges = np.linspace(0, F, n + 1)
    lo = np.floor(edges).astype(int)
    hi = np.minimum(lo + 1, F)
    w = edges - lo
    at = c[..., lo] * (1 - w) + c[..., hi] * w                          # integral up to each edge
    return np.diff(at, axis=-1) * (n / F)


def _event_signals(onsets: np.ndarray, strength: np.ndarray, labels: np.ndarray, n_fine: int,
                   fine: int) -> tuple[np.ndarray, np.ndarray]:
    """Event trains on a fine grid (``fine`` Hz, ``n_fine`` points from t = 0).

    onsets (N, K) in seconds (NaN = no event), strength (N, K): each event is the
    class's shape (EVENT_SHAPES via MOTION_HEADROOM) scaled by its strength.
    Returns (motion (N, n_fine): the signed motion, peak ~1 per event;
    env (N, n_fine): the unsigned bumps clipped to [0, 1], what video and audio see).
    Computed as an impulse train convolved with each class's shape (FFT).
    """
    shapes = [EVENT_SHAPES[MOTION_HEADROOM[c][2]] for c in CLASSES]
    h = int(np.ceil(5 * max(sig for sig, _ in shapes) * fine))          # kernel half-length
    P = 1 << int(np.ceil(np.log2(n_fine + 2 * h)))
    pos = onsets * fine + h
    ok = np.isfinite(pos) & (pos >= 0) & (pos < P - 1)
    rows = np.broadcast_to(np.arange(len(onsets))[:, None], pos.shape)[ok]
    i0 = np.floor(pos[ok]).astype(int)
    w1 = pos[ok] - i0                                                   # split between grid points
    imp = np.zeros((len(onsets), P))
    np.add.at(imp, (rows, i0), strength[ok] * (1 - w1))
    np.add.at(imp, (rows, i0 + 1), strength[ok] * w1)
    lag = np.arange(P)
    lag = np.where(lag < P // 2, lag, lag - P) / fine                   # circular lags in seconds
    u = lag[None] / np.array([sig for sig, _ in shapes])[:, None]       # (8, P)
    bump = np.exp(-0.5 * u ** 2)
    signed = np.where(np.array([bi for _, bi in shapes])[:, None], u * np.exp(0.5) * bump, bump)
    spec = np.fft.rfft(imp, axis=1)
    motion = np.fft.irfft(spec * np.fft.rfft(signed, axis=1)[labels], P, axis=1)[:, h:h + n_fine]
    env = np.fft.irfft(spec * np.fft.rfft(bump, axis=1)[labels], P, axis=1)[:, h:h + n_fine]
    return motion, np.clip(env, 0.0, 1.0)


def _render_video(rng, e, colour, size, square, background, brightness, noise, S):
    """Frames uint8 (N, T, 3, S, S): an object of ``colour`` (N, 3), half-size ``size``
    (N,) pixels at 32x32, square or round, moving down with the envelope ``e`` (N, T)
    over the subject's ``background`` (N, 3) times ``brightness`` (N,), plus noise."""
    n, n_frames = e.shape
    yy, xx = np.mgrid[0:S, 0:S]
    size = size * (S / 32)
    cx = rng.uniform(0.3, 0.7, n) * S
    cy0 = rng.uniform(0.35, 0.55, n) * S
    cy = cy0[:, None] + e * 0.25 * S                               # object moves with events
    frames = np.empty((n, n_frames, 3, S, S), dtype=np.uint8)
    for ti in range(n_frames):  # loop over a handful of frames only
        dx = np.abs(xx[None] - cx[:, None, None])
        dy = np.abs(yy[None] - cy[:, ti, None, None])
        inside = np.where(square[:, None, None],
                          np.maximum(dx, dy) <= size[:, None, None],
                          dx ** 2 + dy ** 2 <= size[:, None, None] ** 2)   # (N, S, S)
        img = np.where(inside[:, None], colour[:, :, None, None],
                       background[:, :, None, None])                    # (N, 3, S, S)
        img = img * brightness[:, None, None, None]
        img = img + rng.normal(0, noise, img.shape)
        frames[:, ti] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return frames


def _render_audio(rng, ir_rng, e, tone, reverb, room_noise, noise, audio_rate):
    """Audio float32 (N, L): a tone (N,) Hz with one harmonic, in bursts following the
    envelope ``e`` (N, L), through a room of decay ``reverb`` (N,) s, plus room noise."""
    n, N = e.shape
    ta = np.arange(N) / audio_rate
    f0 = tone * rng.uniform(0.97, 1.03, n)
    wave = np.sin(2 * np.pi * f0[:, None] * ta[None] + rng.uniform(0, 2 * np.pi, (n, 1)))
    wave += 0.5 * np.sin(4 * np.pi * f0[:, None] * ta[None])       # one harmonic
    dry = e * wave
    # room: exponentially decaying noise impulse response, per subject
    k = int(0.05 * audio_rate)
    tk = np.arange(k) / audio_rate
    ir = np.exp(-tk[None] / reverb[:, None]) * ir_rng.normal(size=(n, k))
    ir[:, 0] = 1.0
    wet = np.fft.irfft(np.fft.rfft(dry, N + k) * np.fft.rfft(ir, N + k), N + k)[:, :N]
    wet /= np.abs(wet).max(axis=1, keepdims=True) + 1e-8
    wet += rng.normal(0, noise, wet.shape) * room_noise[:, None]
    return (0.5 * wet).astype(np.float32)


def sample_ids(regime: str, seed: int, n_samples: int, n_subjects: int, duration: float) -> list[str]:
    """Ids naming the draw each sample comes from: ``"synthetic/<regime>/seed<seed>/<draw>/<i>"``,
    ``<draw>`` a hash of the settings that decide the simulated recordings themselves
    (number of samples and subjects, duration: sample i of another n is another recording).
    Two draws never share an id, and the same draw always gives the same ids; sensor settings
    (noise, rates, frame size, modalities) are left out on purpose: they render the same
    recordings, so a model trained on one rendering has seen the other's recordings."""
    import hashlib

    draw = hashlib.sha256(repr((int(n_samples), int(n_subjects), float(duration))).encode()).hexdigest()[:8]
    return [f"synthetic/{regime}/seed{seed}/{draw}/{i:06d}" for i in range(n_samples)]


def make_synthetic(
    n_samples: int = DEFAULT_N_SAMPLES,
    n_subjects: int = 10,
    seed: int = 0,
    duration: float = 2.0,
    imu_rate: int = 32,
    n_frames: int = 8,
    frame_size: int = 32,
    audio_rate: int = 8000,
    imu_noise: float | None = None,
    video_noise: float | None = None,
    audio_noise: float = 0.3,
    modalities: tuple[str, ...] = ("imu", "video", "audio"),
    regime: str = "headroom",
    knobs: dict | None = None,
    control: str | None = None,
) -> dict:
    """Simulate ``n_samples`` paired recordings.

    Returns a dict with
      ``arrays``: {"imu": float32 (N, 6, duration*imu_rate)  raw acc (g) + gyro (rad/s),
                   "video": uint8 (N, n_frames, 3, frame_size, frame_size),
                   "audio": float32 (N, duration*audio_rate)},
      ``labels`` int64 (N,), ``subjects`` int64 (N,), ``ids`` list of str,
      ``classes`` tuple of names, ``sample_rates`` {"imu", "video", "audio"} in Hz,
      ``regime`` the regime's name.

    regime: ``"headroom"`` (default: the IMU carries every class, but learns it
      slowly) or ``"ambiguous"`` (the old simulator, where the IMU cannot tell the
      class pairs apart; not a control, see the module docstring).
    imu_noise: sensor noise; ``None`` = the regime's default (headroom: in g,
      ``HEADROOM_KNOBS["imu_noise"]``; ambiguous: 0.25 times the mean motion amplitude).
    video_noise: pixel noise; ``None`` = the regime's default (headroom:
      ``HEADROOM_KNOBS["video_noise"]``; ambiguous: 0.15).
    knobs: headroom regime only: overrides of some ``HEADROOM_KNOBS`` entries,
      e.g. ``{"head_motion": 0.0}`` (for studies of the simulator itself).
    modalities may include ``"imu_clean"`` (headroom regime): the same IMU recordings
      without sensor noise (``imu_noise=0``; the noisy ``imu`` is this plus white noise),
      a timeseries (``kinds["imu_clean"]``). It is the *positive control*'s source: the
      target's own sensor, privileged with its noise removed.
    control: ``None`` (default) or ``"negative"`` (headroom regime): the *negative
      control*. The ``imu`` and ``imu_clean`` arrays then come from an independent draw
      of the simulator (its own labels, subjects and events, from a seed derived from
      ``seed``), while labels, subjects, video and audio are this draw's: the target's
      input is independent of the label it is scored on. For ANY model trained on such
      data its expected macro recall (balanced accuracy) on the test part is exactly
      chance, 1 / 8: given the training data, a test input x is independent of its label
      y, so P(f(x) = c | y = c) = P(f(x) = c) = q_c and the mean over classes of q_c is
      1 / 8 whatever the class balance. So no transfer method can move it: the paired
      difference of any two methods has expectation 0, by construction. ``modalities``
      must hold ``imu`` or ``imu_clean`` (what the control replaces; without them the data
      would be the plain draw: a ValueError). The returned dict's ``"control"`` names it,
      and ``data.load`` records it in ``Splits.report["control"]`` (``control_report``).

    The default call (no ``imu_clean``, no ``control``) gives exactly the arrays it
    always gave (tested).

    The same ``seed`` gives bit-identical arrays. In the headroom regime each
    modality has its own random stream, so asking for fewer ``modalities`` does
    not change the ones returned. IMU is *raw* (not min-max scaled): scaling
    with training statistics is the data pipeline's job.
    """
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}: expected one of {REGIMES} "
                         "('headroom' = default, 'ambiguous' = the pre-06d5f82 simulator)")
    if n_samples < 1 or n_subjects < 1:
        raise ValueError(f"n_samples and n_subjects must be >= 1, got {n_samples} and {n_subjects}")
    unknown = set(modalities) - set(MODALITIES)
    if unknown:
        raise ValueError(f"unknown modalities {sorted(unknown)}: expected imu, video, audio (or imu_clean)")
    if control is not None and control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}: expected None or one of {CONTROLS}")
    if regime == "ambiguous" and (control is not None or "imu_clean" in modalities):
        raise ValueError("control= and the imu_clean modality belong to regime='headroom'; the 'ambiguous' "
                         "regime is kept exactly as it was")
    if control == "negative" and not set(modalities) & set(NEGATIVE_REPLACES):
        raise ValueError(f"control='negative' replaces the IMU ({', '.join(NEGATIVE_REPLACES)}) with an independent "
                         f"draw's; modalities {tuple(modalities)} hold neither, so the data would be the plain, "
                         "label-bearing draw tagged as a control: include 'imu' (the negative control's target)")
    if frame_size < 16:
        raise ValueError(f"frame_size must be >= 16 pixels, got {frame_size}")
    if imu_noise is not None and imu_noise < 0:
        raise ValueError(f"imu_noise must be >= 0 (or None for the regime's default), got {imu_noise}")
    if video_noise is not None and video_noise < 0:
        raise ValueError(f"video_noise must be >= 0 (or None for the regime's default), got {video_noise}")
    args = (n_samples, n_subjects, seed, duration, imu_rate, n_frames, frame_size, audio_rate, imu_noise,
            video_noise, audio_noise, modalities)
    if regime == "ambiguous":
        if knobs:
            raise ValueError(f"knobs {sorted(knobs)} apply to regime='headroom' only; the 'ambiguous' "
                             "regime has no knobs (it is kept exactly as it was)")
        out, labels, subjects = _make_ambiguous(*args)
    else:
        bad = set(knobs or {}) - set(HEADROOM_KNOBS)
        if bad:
            raise ValueError(f"unknown knobs {sorted(bad)}: expected some of {sorted(HEADROOM_KNOBS)}")
        kn = {**HEADROOM_KNOBS, **(knobs or {})}
        out, labels, subjects = _make_headroom(*args, kn)
        if control == "negative":        # the IMU of an independent draw: no information about these labels
            imus = tuple(m for m in modalities if m in NEGATIVE_REPLACES)      # never empty (checked above)
            other = int(np.random.default_rng([seed, 20]).integers(2 ** 62))
            out.update(_make_headroom(*args[:2], other, *args[3:-1], imus, kn)[0])
    if "imu_clean" in out:
        out = {m: out[m] for m in modalities}                         # the caller's order
    extra = {"kinds": {"imu_clean": "timeseries"}} if "imu_clean" in out else {}
    if control is not None:
        extra["control"] = control
    return {
        "arrays": out,
        "labels": labels.astype(np.int64),
        "subjects": subjects.astype(np.int64),
        "ids": sample_ids(regime, seed, n_samples, n_subjects, duration),
        "classes": CLASSES,
        "sample_rates": {"imu": float(imu_rate), "video": n_frames / duration, "audio": float(audio_rate)},
        "regime": regime,
        **extra,
    }


def event_sizes(n_samples: int = DEFAULT_N_SAMPLES, seed: int = 0, knobs: dict | None = None,
                imu_noise: float | None = None, **options) -> dict:
    """How large the IMU events of the headroom regime are in the data ``make_synthetic``
    returns for these arguments, not in its settings.

    Per recording: the largest deflection of its acceleration, in g. It is measured on the
    same recordings without sensor noise (``imu_clean``) and with the background head motion
    off (``knobs["head_motion"] = 0``: the rest of the draw is unchanged), the time mean of
    each axis removed (gravity, as the figures of ``dcatkit.plots`` remove it), as the length
    of the 3-axis acceleration vector (so the sensor's rotation does not matter), at its
    largest over the recording. A class's nominal amplitude (``MOTION_HEADROOM``) is scaled
    by the subject's, the recording's and each event's random factors and smoothed by the
    IMU's bin average (short taps and impacts lose most), so these sizes spread around and
    below it.

    ``options`` go to ``make_synthetic`` (``n_subjects``, ``duration``, ``imu_rate``; video
    and audio options are accepted and change nothing here). Returns ``{"peak": (N,) float
    in g, "labels": (N,) int, "classes", "noise": the standard deviation in g of the white
    noise on each axis of the noisy ``imu`` of these arguments}``.
    """
    kn = {**HEADROOM_KNOBS, **(knobs or {})}
    d = make_synthetic(n_samples, seed=seed, modalities=("imu_clean",), knobs={**(knobs or {}), "head_motion": 0.0},
                       imu_noise=imu_noise, **options)
    acc = d["arrays"]["imu_clean"][:, :3].astype(np.float64)                  # (N, 3, L) in g
    dev = acc - acc.mean(axis=2, keepdims=True)
    return {"peak": np.sqrt((dev ** 2).sum(axis=1)).max(axis=1), "labels": d["labels"], "classes": d["classes"],
            "noise": float(kn["imu_noise"] if imu_noise is None else imu_noise)}


def control_report(control: str, modalities) -> dict:
    """What ``make_synthetic(control=...)`` did, for ``Splits.report["control"]`` (laid out as
    ``data.controls.break_pairing``'s): kind, the modalities replaced, and how."""
    if control != "negative":
        raise ValueError(f"unknown control {control!r}: expected one of {CONTROLS}")
    replaced = [m for m in modalities if m in NEGATIVE_REPLACES]
    return {"kind": "negative", "modality": replaced,
            "what": f"{' and '.join(replaced)} from an independent draw of the simulator (a seed derived from the "
                    "data seed): independent of the labels"}


def _make_ambiguous(n_samples, n_subjects, seed, duration, imu_rate, n_frames, frame_size, audio_rate,
                    imu_noise, video_noise, audio_noise, modalities):
    """The 'ambiguous' regime: the generator as of commit 06d5f82, draw for draw (once used
    as a negative control, which it is not: see the module docstring)."""
    imu_noise = 0.25 if imu_noise is None else imu_noise
    video_noise = 0.15 if video_noise is None else video_noise
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
    if "imu" in modalities:
        L = int(duration * imu_rate)
        e = _resample(env, L)                                          # (N, L)
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
        out["video"] = _render_video(rng, _resample(env, n_frames), _COLOUR[labels], _SIZE[labels],
                                     labels % 2 == 1, background[subjects], brightness[subjects],
                                     video_noise, frame_size)
    if "audio" in modalities:
        out["audio"] = _render_audio(rng, np.random.default_rng([seed, 2]),
                                     _resample(env, int(duration * audio_rate)), _TONE[labels],
                                     reverb[subjects], room_noise[subjects], audio_noise, audio_rate)
    return out, labels, subjects


def _make_headroom(n_samples, n_subjects, seed, duration, imu_rate, n_frames, frame_size, audio_rate,
                   imu_noise, video_noise, audio_noise, modalities, kn):
    """The default regime: every class has its own motion (see MOTION_HEADROOM); ``kn`` the knobs."""
    imu_noise = kn["imu_noise"] if imu_noise is None else imu_noise
    video_noise = kn["video_noise"] if video_noise is None else video_noise
    n_cls = len(CLASSES)
    rng = np.random.default_rng([seed, 10])                 # latent: labels, subjects, events

    # --- subjects' style -------------------------------------------------
    sub_rng = np.random.default_rng([seed, 11])
    tempo = sub_rng.uniform(0.8, 1.25, n_subjects)          # event-rate factor
    amp = sub_rng.uniform(0.8, 1.25, n_subjects)            # motion amplitude factor
    rot = _rotations(sub_rng, n_subjects, kn["subject_angle"])  # sensor orientation
    background = sub_rng.uniform(0.2, 0.6, (n_subjects, 3))  # scene colour
    brightness = sub_rng.uniform(0.8, 1.2, n_subjects)
    reverb = sub_rng.uniform(0.002, 0.03, n_subjects)        # room decay time (s)
    room_noise = sub_rng.uniform(0.5, 1.5, n_subjects)
    own_colour = sub_rng.uniform(0, 1, (n_subjects, n_cls, 3))          # each subject's own objects
    own_size = sub_rng.uniform(1 - kn["size_jitter"], 1 + kn["size_jitter"], (n_subjects, n_cls))
    own_tone = sub_rng.uniform(1 - kn["tone_spread"], 1 + kn["tone_spread"], (n_subjects, n_cls))
    hum = np.exp(sub_rng.uniform(np.log(250.0), np.log(3000.0), n_subjects))  # fridge, fan... (Hz)

    labels = np.arange(n_samples) % n_cls
    rng.shuffle(labels)
    subjects = rng.integers(0, n_subjects, n_samples)

    # --- shared latent motion: event times -> signals on a fine grid --------
    spec = [MOTION_HEADROOM[c] for c in CLASSES]
    fine = 256
    t = np.arange(int(duration * fine)) / fine                     # (F,)
    rate = np.array([m[0] for m in spec])[labels] * tempo[subjects] * rng.uniform(0.9, 1.1, n_samples)
    gap = np.array([m[3] for m in spec])[labels]                        # doublet gap (0 = single)
    n_ev = int(np.ceil(duration * max(m[0] for m in spec) * 1.25 * 1.1)) + 2   # the fastest rhythm
    k = np.arange(-1, n_ev - 1)
    times = (k[None] + rng.uniform(0, 1, (n_samples, 1))) / rate[:, None]    # (N, K) rhythm
    times += rng.normal(0, kn["timing_jitter"], times.shape)
    strength = rng.uniform(0.7, 1.0, (n_samples, 1)) * rng.uniform(0.8, 1.2, times.shape)  # (N, K)
    doublets = np.where(gap[:, None] > 0, times + gap[:, None], np.nan)     # second event of a doublet
    motion, env = _event_signals(np.concatenate([times, doublets], 1), np.concatenate([strength] * 2, 1),
                                 labels, t.size, fine)
    out: dict[str, np.ndarray] = {}
    if "imu" in modalities or "imu_clean" in modalities:
        imu_rng = np.random.default_rng([seed, 12])
        axis = np.array([m[1] for m in spec])[labels]
        a = np.array([m[4] for m in spec])[labels] * amp[subjects]
        # background head motion: three slow random sinusoids on every axis
        f = imu_rng.uniform(0.2, 1.5, (n_samples, 3, 3))
        ph = imu_rng.uniform(0, 2 * np.pi, (n_samples, 3, 3))
        w = imu_rng.normal(0, kn["head_motion"] / np.sqrt(1.5), (n_samples, 3, 3))
        R = np.einsum("nij,njk->nik", rot[subjects], _rotations(imu_rng, n_samples, kn["sample_angle"]))
        L = int(duration * imu_rate)
        imu = np.empty((n_samples, 6, L))
        for c in range(0, n_samples, 1024):                             # chunks bound the memory
            s = slice(c, c + 1024)
            acc = np.zeros((len(a[s]), 3, t.size))
            acc[np.arange(len(a[s])), axis[s]] = a[s, None] * motion[s]
            for i in range(3):
                acc += w[s, :, i, None] * np.sin(2 * np.pi * f[s, :, i, None] * t + ph[s, :, i, None])
            gyro = np.gradient(acc, axis=2) * fine * 0.1                # rotation follows motion
            acc = np.einsum("nij,njl->nil", R[s], acc + np.array([0.0, 0.0, 1.0])[None, :, None])
            gyro = np.einsum("nij,njl->nil", R[s], gyro)
            imu[s] = _bin_mean(np.concatenate([acc, gyro], axis=1), L)   # (n, 6, L)
        if "imu_clean" in modalities:                                   # the same recordings, noise-free
            out["imu_clean"] = imu.astype(np.float32)
        if "imu" in modalities:
            imu += imu_rng.normal(0, imu_noise, imu.shape)
            out["imu"] = imu.astype(np.float32)
    if "video" in modalities:
        mix = kn["object_mix"]
        colour = (1 - mix) * _COLOUR[labels] + mix * own_colour[subjects, labels]
        out["video"] = _render_video(np.random.default_rng([seed, 13]), _resample(env, n_frames), colour,
                                     _SIZE[labels] * own_size[subjects, labels], labels % 2 == 1,
                                     background[subjects], brightness[subjects], video_noise, frame_size)
    if "audio" in modalities:
        a_rng = np.random.default_rng([seed, 14])
        wave = _render_audio(a_rng, np.random.default_rng([seed, 15]), _resample(env, int(duration * audio_rate)),
                             _TONE[labels] * own_tone[subjects, labels], reverb[subjects], room_noise[subjects],
                             audio_noise, audio_rate)
        ta = np.arange(wave.shape[1]) / audio_rate
        steady = np.sin(2 * np.pi * hum[subjects][:, None] * ta + a_rng.uniform(0, 2 * np.pi, (n_samples, 1)))
        out["audio"] = (wave + 0.5 * kn["room_hum"] * steady).astype(np.float32)
    return out, labels, subjects
