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
from .encoders import AudioEncoder, FeatureEncoder, FrameEncoder, IMUEncoder
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

    def forward(self, x: torch.Tensor) -> ClassifierOutput:
        e = self.encoder(x)                                   # (B, T, d_model)
        att = self.attention(e)                               # out/q/k/v: (B, T, d_attn)
        pooled = att.out.mean(dim=1)                          # (B, d_attn): mean over time
        return ClassifierOutput(self.head(self.dropout(pooled)), att.q, att.k, att.v, pooled)


def build_encoder(modality: str, input_shape: tuple[int, ...], encoder_kwargs: dict,
                  kind: str | None = None) -> nn.Module:
    """The encoder of ``kind`` (default: from the name) for one sample's ``input_shape``:
    timeseries (C, L), video (T, 3, H, W), audio (N,) or (n_mels, frames), features (T, F)."""
    kind = resolve_kind(modality, kind)
    shape = check_sample_shape(modality, kind, input_shape)
    kw = dict(encoder_kwargs)
    if kind == "timeseries":
        return IMUEncoder(in_channels=shape[0], **kw)
    if kind == "features":
        return FeatureEncoder(in_features=shape[1], **kw)
    return ENCODERS[kind](**kw)


def build_model(modality: str, num_classes: int, input_shape: tuple[int, ...], preset: Preset,
                kind: str | None = None, **encoder_overrides) -> Classifier:
    """The classifier for one modality, sized by a preset (see ``dcatkit.presets``).

    modality: the name the data uses (``"imu"``, ``"gyro"``...); kind: its kind
    (default: from the name, ``dcatkit.modalities.resolve_kind``); both go into ``model.config``.
    ``encoder_overrides`` replace the preset's encoder kwargs; an audio ``sample_rate`` among
    them (the data's rate) brings a PANNs front end's n_fft and hop along
    (``presets.audio_encoder_at_rate``) unless those are passed too. ``model.config["encoder"]`` records the kwargs as built.
    """
    kind = resolve_kind(modality, kind)
    enc_kw = {**preset.encoder, **encoder_overrides}
    if kind == "audio" and "sample_rate" in encoder_overrides:   # the data's rate: the front end follows it
        base = {k: v for k, v in enc_kw.items() if k not in ("sample_rate", "n_fft", "hop_length")}
        base.update({k: preset.encoder[k] for k in ("sample_rate", "n_fft", "hop_length") if k in preset.encoder})
        enc_kw = {**audio_encoder_at_rate(base, encoder_overrides["sample_rate"]), **encoder_overrides}
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
