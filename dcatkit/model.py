"""A per-modality classifier: encoder -> self-attention -> temporal pooling ->
dropout -> linear head (paper Fig. 1). Its forward takes only its own
modality's input, which is what makes single-sensor inference possible.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .attention import SelfAttention
from .encoders import AudioEncoder, FrameEncoder, IMUEncoder
from .presets import Preset

MODALITIES = ("imu", "video", "audio")


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


def build_encoder(modality: str, input_shape: tuple[int, ...], encoder_kwargs: dict) -> nn.Module:
    """input_shape is one sample's shape: IMU (C, L), video (T, 3, H, W), audio (N,)."""
    kw = dict(encoder_kwargs)
    if modality == "imu":
        if len(input_shape) != 2:
            raise ValueError(f"IMU input shape must be (channels, length), got {input_shape}")
        return IMUEncoder(in_channels=input_shape[0], **kw)
    if modality == "video":
        if len(input_shape) != 4 or input_shape[1] != 3:
            raise ValueError(f"video input shape must be (T, 3, H, W), got {input_shape}")
        return FrameEncoder(**kw)
    if modality == "audio":
        if len(input_shape) not in (1, 2):
            raise ValueError(f"audio input shape must be (samples,) or (n_mels, frames), got {input_shape}")
        return AudioEncoder(**kw)
    raise ValueError(f"unknown modality {modality!r}: expected one of {MODALITIES}")


def build_model(modality: str, num_classes: int, input_shape: tuple[int, ...], preset: Preset,
                **encoder_overrides) -> Classifier:
    """The classifier for one modality, sized by a preset (see ``dcatkit.presets``)."""
    enc_kw = {**preset.encoder, **encoder_overrides}
    model = Classifier(build_encoder(modality, tuple(input_shape), enc_kw), num_classes,
                       d_attn=preset.d_attn, dropout=preset.dropout)
    model.config = {"modality": modality, "num_classes": num_classes, "input_shape": list(input_shape),
                    "encoder": enc_kw, "d_attn": preset.d_attn, "dropout": preset.dropout}
    return model


def model_from_config(config: dict) -> Classifier:
    enc = build_encoder(config["modality"], tuple(config["input_shape"]), config["encoder"])
    model = Classifier(enc, config["num_classes"], config["d_attn"], config["dropout"])
    model.config = dict(config)
    return model
