"""A per-modality classifier: encoder -> self-attention -> temporal pooling ->
dropout -> linear head (paper Fig. 1). Its forward takes only its own
modality's input, which is what makes single-sensor inference possible.

The encoder follows the modality's *kind* (``dcatkit.modalities``), not its name:
timeseries -> ``IMUEncoder`` (1D CNN), video -> ``FrameEncoder``, audio ->
``AudioEncoder``, features -> ``FeatureEncoder``. ``model.config`` (stored in
checkpoints) records the name and the kind; configs written before kinds existed
hold only the name, which is one of imu / video / audio and so gives the kind.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .attention import SelfAttention
from .encoders import AudioEncoder, FeatureEncoder, FrameEncoder, IMUEncoder, logmel_min_size
from .modalities import DEFAULT_KINDS, check_sample_shape, resolve_kind
from .presets import Preset, audio_encoder_at_rate

MODALITIES = tuple(DEFAULT_KINDS)    # the names with a default kind; any other name needs kind=
ENCODERS = {"timeseries": IMUEncoder, "video": FrameEncoder, "audio": AudioEncoder, "features": FeatureEncoder}


class ClassifierOutput(NamedTuple):
    logits: torch.Tensor  # (B, num_classes)
    q: torch.Tensor       # (B, T, d_attn)
    k: torch.Tensor       # (B, T, d_attn)
    v: torch.Tensor       # (B, T, d_attn)
    pooled: torch.Tensor  # (B, d_attn): attention output averaged over time, before dropout and head


class Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, num_classes: int, d_attn: int = 512, dropout: float = 0.5):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.encoder = encoder
        self.attention = SelfAttention(encoder.d_model, d_attn)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_attn, num_classes)
        self.config: dict = {}  # filled by build_model; stored in checkpoints

    @property
    def num_classes(self) -> int:
        """Its number of classes: the head's outputs (what the weights fix, whatever ``config`` says)."""
        return self.head.out_features

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        e = self.encoder(x)                                   # (B, T, d_model)
        att = self.attention(e)                               # out/q/k/v: (B, T, d_attn)
        pooled = att.out.mean(dim=1)                          # (B, d_attn): mean over time
        return ClassifierOutput(self.head(self.dropout(pooled)), att.q, att.k, att.v, pooled)


def _check_logmel_shape(modality: str, shape: tuple[int, ...], arch: str) -> None:
    """A precomputed log-mel sample (n_mels, frames) must survive the audio CNN's 2x2 poolings."""
    need = logmel_min_size(arch)
    if shape[0] < need or shape[1] < need:
        axis = 1 if shape[0] <= shape[1] else 2                  # the short axis of the (N, *shape) array
        stereo = (f". If the samples are waveforms of {min(shape)} channels, {tuple(shape)} as "
                  f"({'channels, samples' if axis == 1 else 'samples, channels'}), mix them to mono first: "
                  f"x.mean(axis={axis}) of the (N, {shape[0]}, {shape[1]}) array, as the loaders do (a waveform "
                  "sample is (samples,))") if min(shape) <= 8 else ""
        raise ValueError(f"{modality!r}: a log-mel sample of shape {tuple(shape)} (n_mels, frames) is too small "
                         f"for the audio encoder {arch!r}, whose 2x2 poolings need >= {need} mel bins and >= "
                         f"{need} frames: use longer windows, more mel bins, or a smaller arch "
                         f"({', '.join(f'{a}: {logmel_min_size(a)}' for a in ('cnn6', 'cnn10', 'cnn14'))}){stereo}")


def build_encoder(modality: str, input_shape: tuple[int, ...], encoder_kwargs: dict,
                  kind: str | None = None) -> nn.Module:
    """The encoder of ``kind`` (default: from the name) for one sample's ``input_shape``:
    timeseries (C, L), video (T, 3, H, W), audio (N,) or (n_mels, frames), features (T, F).
    The sample's shape sets the input size: channels (timeseries), features, and for a
    precomputed log-mel (n_mels, frames) its mel-bin count (``n_mels``, whatever the kwargs
    say: a waveform keeps the kwargs' front end)."""
    kind = resolve_kind(modality, kind)
    shape = check_sample_shape(modality, kind, input_shape)
    kw = dict(encoder_kwargs)
    if kind == "timeseries":
        if shape[1] < IMUEncoder.min_length:     # refused here, naming the sensor, not at the first batch
            raise ValueError(f"{modality!r} is a timeseries sensor of {shape[1]} time step(s) per window (shape "
                             f"{shape}); its encoder, a 1D CNN that pools time by 4, needs windows of >= "
                             f"{IMUEncoder.min_length}: cut longer windows, or give a window of one vector per time "
                             f"step as kind 'features', shape (steps, values) = {shape[::-1]}")
        return IMUEncoder(in_channels=shape[0], **kw)
    if kind == "features":
        return FeatureEncoder(in_features=shape[1], **kw)
    if kind == "audio" and len(shape) == 2:
        kw["n_mels"] = shape[0]
        _check_logmel_shape(modality, shape, kw.get("arch", "cnn14"))
    return ENCODERS[kind](**kw)


def build_model(modality: str, num_classes: int, input_shape: tuple[int, ...], preset: Preset,
                kind: str | None = None, **encoder_overrides) -> Classifier:
    """The classifier for one modality, sized by a preset (see ``dcatkit.presets``).

    modality: the name the data uses (``"imu"``, ``"gyro"``...); kind: its kind
    (default: from the name, ``dcatkit.modalities.resolve_kind``); both go into ``model.config``.
    ``encoder_overrides`` replace the preset's encoder kwargs; an audio ``sample_rate`` among
    them (the data's rate) brings a PANNs front end's n_fft and hop along
    (``presets.audio_encoder_at_rate``) unless those are passed too. A log-mel input shape
    (n_mels, frames) sets ``n_mels``. ``model.config["encoder"]`` records the kwargs as built.
    """
    kind = resolve_kind(modality, kind)
    enc_kw = {**preset.encoder, **encoder_overrides}
    if kind == "audio" and "sample_rate" in encoder_overrides:   # the data's rate: the front end follows it
        base = {k: v for k, v in enc_kw.items() if k not in ("sample_rate", "n_fft", "hop_length")}
        base.update({k: preset.encoder[k] for k in ("sample_rate", "n_fft", "hop_length") if k in preset.encoder})
        enc_kw = {**audio_encoder_at_rate(base, encoder_overrides["sample_rate"]), **encoder_overrides}
    if kind == "audio" and len(input_shape) == 2:                # a log-mel: its bins are the data's
        if "n_mels" in encoder_overrides and encoder_overrides["n_mels"] != input_shape[0]:
            raise ValueError(f"{modality!r}: the samples are log-mels of {input_shape[0]} mel bins (shape "
                             f"{tuple(input_shape)}), but n_mels={encoder_overrides['n_mels']} was passed")
        enc_kw["n_mels"] = int(input_shape[0])                   # recorded as built (build_encoder sets it)
    model = Classifier(build_encoder(modality, tuple(input_shape), enc_kw, kind), num_classes,
                       d_attn=preset.d_attn, dropout=preset.dropout)
    model.config = {"modality": modality, "kind": kind, "num_classes": num_classes,
                    "input_shape": list(input_shape), "encoder": enc_kw, "d_attn": preset.d_attn,
                    "dropout": preset.dropout}
    return model


def model_from_config(config: dict, *, pretrained: bool = True) -> Classifier:
    """The (untrained) model a config describes; a config without ``kind`` (written before
    kinds existed) takes it from the name, and gets it recorded. ``pretrained=False``
    builds it without reading the encoder's ``weights_path`` (the config keeps it): for a
    model whose every weight comes from a checkpoint next, which must load on a machine
    that lacks the pretrained file."""
    kind = resolve_kind(config["modality"], config.get("kind"))
    enc_kw = config["encoder"] if pretrained else {k: v for k, v in config["encoder"].items() if k != "weights_path"}
    enc = build_encoder(config["modality"], tuple(config["input_shape"]), enc_kw, kind)
    model = Classifier(enc, config["num_classes"], config["d_attn"], config["dropout"])
    model.config = {**config, "kind": kind}
    return model
