"""Training presets: the paper's Table I, and a quick CPU preset for the synthetic data.

``get_preset(name, modality, dataset=None, kind=None)``:
- ``"paper"`` -> Table I for ``dataset`` ("uestc", "cough", "vggsound");
- ``"uestc"``, ``"cough"``, ``"vggsound"`` -> Table I directly;
- ``"synthetic"`` -> small models that train in minutes on a 2-core CPU;
- ``"uestc-target"`` -> the paper's recipe for its target on the synthetic data
  (notebook 06, study e): a timeseries model gets Table I's UESTC IMU row (learning
  rate, dropout, batch, weight decay, epochs) with the paper's attention size 512
  (Section V-C, not Table I) and the encoder sizes of the ``paper`` IMU preset
  (hidden 64, d_model 128: ours, Table I gives none; twice the synthetic preset's
  32 / 64); every other kind the synthetic preset at attention size 512, so a
  synthetic frozen source trains in CPU minutes and its attention matches the
  target's, as D-CAT's alignment needs.

Presets are chosen by the modality's *kind* (``dcatkit.modalities``; given, or the
default of imu / video / audio): a ``"gyro"`` of kind timeseries gets the IMU
preset, ``features`` a small per-step MLP (synthetic only: Table I has no such row).
In Table I a name the paper does not use takes the row of the dataset's modality of
the same kind (a timeseries on UESTC: the IMU row).

Table I gives one "Window/Stride Length" per row; we read it as window =
stride (non-overlapping windows): IMU rows (UESTC 70, Cough 60), video frames
(30), audio seconds (Cough 0.5 s, VGGSound 2 s). ``Preset.window`` / ``stride``
record these values; nothing reads them: the windows are cut by the loaders'
arguments, whose defaults are the same numbers (``load_uestc(imu_window=70,
imu_stride=None, frames=30)``, ``load_cough(window_s=0.5, stride_s=None,
imu_window=60)``, ``load_vggsound(window_s=2.0, stride_s=None, frames=30)``;
stride None = window), so other windows are set there, not here.
Attention size 512 and Adam (Section V-C). Encoder sizes the paper does not give
are ours and marked so.

The audio front end's ``sample_rate`` is replaced by the data's own rate when a
model is built for a dataset (``experiment``), never assumed. A PANNs front end
(``frontend="panns"``) then keeps its window and hop in seconds
(``audio_encoder_at_rate``): VGGSound's preset is PANNs' 32 kHz front end (n_fft
1024, hop 320) and, on the loader's default 16 kHz wavs, PANNs' 16 kHz one
(n_fft 512, hop 160: Cnn14_16k's); f_max 14000 is cut to the Nyquist frequency
(8 kHz at 16 kHz, as Cnn14_16k's). So each fits the PANNs checkpoint of its rate.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from .modalities import default_kind, resolve_kind


@dataclass(frozen=True)
class Preset:
    epochs: int
    lr: float
    dropout: float
    batch_size: int
    weight_decay: float
    window: float          # Table I's window (IMU rows, video frames, audio seconds): a record, not read;
    stride: float          # windows are cut by the loaders' imu_window / frames / window_s (and strides)
    seed: int
    d_attn: int = 512
    encoder: dict = field(default_factory=dict)  # kwargs for the modality's encoder

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> "Preset":
        unknown = set(changes) - set(self.to_dict())
        if unknown:
            raise ValueError(f"unknown preset fields {sorted(unknown)}: expected {sorted(self.to_dict())}")
        return replace(self, **changes)


_IMU_PAPER = {"hidden": 64, "d_model": 128, "kernel_size": 5}          # ours: sizes not in the paper
_VIDEO_PAPER = {"depth": 101}                                          # ResNet-101, 224x224 frames
# PANNs' Cnn14 front end at 32 kHz (fits its weights); at the data's rate it keeps its 32 ms window
# and 10 ms hop (audio_encoder_at_rate): at 16 kHz, n_fft 512 and hop 160, Cnn14_16k's.
_AUDIO_PAPER = {"arch": "cnn14", "sample_rate": 32000, "n_fft": 1024, "hop_length": 320, "frontend": "panns"}
# Cough windows are 0.5 s: Cnn14's five 2x2 time poolings (PANNs pools after blocks 1-5 only)
# need >= 32 log-mel frames; the hop is 5 ms here (101 frames: ours; the paper does not say how
# it fit Cnn14 to 0.5 s windows; a 10 ms hop would also fit, with 51 frames). At 16 kHz (the
# loader's default) its filterbank is Cnn14_16k's (n_fft 512, f_max cut to 8000).
_AUDIO_COUGH = {"arch": "cnn14", "sample_rate": 16000, "n_fft": 512, "hop_length": 80, "frontend": "panns"}

TABLE_I: dict[tuple[str, str], Preset] = {
    ("uestc", "imu"): Preset(10, 5e-4, 0.8, 16, 0.005, 70, 70, 11, encoder=_IMU_PAPER),
    ("uestc", "video"): Preset(100, 5e-4, 0.8, 8, 0.005, 30, 30, 17, encoder=_VIDEO_PAPER),
    ("cough", "imu"): Preset(10, 1e-4, 0.8, 32, 0.001, 60, 60, 7, encoder=_IMU_PAPER),
    ("cough", "audio"): Preset(100, 1e-4, 0.6, 32, 0.0001, 0.5, 0.5, 17, encoder=_AUDIO_COUGH),
    ("vggsound", "video"): Preset(100, 1e-4, 0.5, 8, 0.005, 30, 30, 17, encoder=_VIDEO_PAPER),
    ("vggsound", "audio"): Preset(150, 1e-4, 0.5, 8, 0.0, 2.0, 2.0, 11, encoder=_AUDIO_PAPER),
}

SYNTHETIC: dict[str, Preset] = {
    "imu": Preset(20, 1e-3, 0.3, 32, 1e-4, 64, 64, 0, d_attn=128,
                  encoder={"hidden": 32, "d_model": 64, "kernel_size": 5}),
    "video": Preset(6, 1e-3, 0.3, 32, 1e-4, 8, 8, 0, d_attn=128, encoder={"depth": 10}),
    "audio": Preset(10, 1e-3, 0.3, 32, 1e-4, 2.0, 2.0, 0, d_attn=128,
                    encoder={"arch": "cnn6", "width": 0.25, "sample_rate": 8000, "n_fft": 256,
                             "hop_length": 128, "n_mels": 32, "f_min": 50.0, "f_max": 4000.0}),
}

# Precomputed feature vectors (T, F): a per-step MLP (ours); window / stride 0: dcatkit does not cut them.
_FEATURES_SYNTHETIC = Preset(20, 1e-3, 0.3, 32, 1e-4, 0, 0, 0, d_attn=128,
                             encoder={"hidden": 64, "d_model": 64, "dropout": 0.1})
# The synthetic preset of each kind (SYNTHETIC above: the same, by the paper's names).
SYNTHETIC_BY_KIND: dict[str, Preset] = {"timeseries": SYNTHETIC["imu"], "video": SYNTHETIC["video"],
                                        "audio": SYNTHETIC["audio"], "features": _FEATURES_SYNTHETIC}

PRESET_NAMES = ("synthetic", "paper", "uestc", "cough", "vggsound", "uestc-target")


def audio_encoder_at_rate(encoder: dict, sample_rate: int) -> dict:
    """The audio encoder kwargs ``encoder`` (a preset's) for data at ``sample_rate``.

    ``sample_rate`` replaces the preset's rate. A PANNs front end (``frontend="panns"``)
    keeps its window and hop in seconds: ``n_fft`` and ``hop_length`` scale by new rate /
    preset rate (rounded), so PANNs' 32 kHz settings (1024, 320) become its 16 kHz ones
    (512, 160) and its 8 kHz ones (256, 80); f_max is left as it is (``LogMel`` cuts it to
    the Nyquist frequency, as PANNs' 16 kHz and 8 kHz checkpoints have it). Any other front
    end keeps its n_fft and hop (samples), as given. A missing key takes ``AudioEncoder``'s
    default."""
    out = {**encoder, "sample_rate": int(sample_rate)}
    if encoder.get("frontend") != "panns":
        return out
    import inspect

    from .encoders import AudioEncoder                      # lazy: presets stays free of torch
    default = {k: v.default for k, v in inspect.signature(AudioEncoder).parameters.items()}
    old = int(encoder.get("sample_rate", default["sample_rate"]))
    if old == int(sample_rate):
        return out
    for key in ("n_fft", "hop_length"):
        out[key] = max(1, int(round(int(encoder.get(key, default[key])) * int(sample_rate) / old)))
    return out


def get_preset(name: str, modality: str, dataset: str | None = None, kind: str | None = None) -> Preset:
    """The preset for training a model of ``modality`` (its name) of ``kind`` (default:
    the name's, for imu / video / audio). See the module docstring."""
    kind = resolve_kind(modality, kind)
    if name == "synthetic":
        return SYNTHETIC_BY_KIND[kind]
    if name == "uestc-target":
        if kind == "timeseries":
            return TABLE_I[("uestc", "imu")]
        return SYNTHETIC_BY_KIND[kind].with_(d_attn=TABLE_I[("uestc", "imu")].d_attn)
    if name == "paper":
        if dataset not in {d for d, _ in TABLE_I}:
            raise ValueError("preset 'paper' is Table I's row of the paper's datasets ('uestc', 'cough' or "
                             f"'vggsound'), got dataset={dataset!r}: for other data use 'synthetic', or a "
                             "dataset's row by its name (e.g. preset 'uestc' for an IMU like UESTC's)")
        name = dataset
    same_kind = [m for d, m in TABLE_I if d == name and default_kind(m) == kind]   # at most one per dataset
    if same_kind:
        return TABLE_I[(name, same_kind[0])]
    rows = sorted(TABLE_I)
    raise ValueError(f"no preset {name!r} for modality {modality!r} (kind {kind!r}): Table I has {rows}; "
                     f"valid names are {PRESET_NAMES}")
