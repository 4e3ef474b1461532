"""Modality-specific encoders (paper Section V-B). Each maps its sensor input to a
sequence of embeddings (B, T_m, d_model) that keeps a time axis for the
self-attention module.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torchaudio
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

# ----------------------------------------------------------------------------- IMU


class IMUEncoder(nn.Module):
    """1D CNN after the paper's Fig. 2 (SAMoSA-style; layer sizes are ours).

    conv-BN-ReLU-maxpool, two more conv-BN-ReLU blocks, maxpool, dropout.
    Input (B, C, L) with any channel count C -> output (B, L // 4, d_model).
    """

    def __init__(self, in_channels: int = 6, d_model: int = 128, hidden: int = 64,
                 kernel_size: int = 5, dropout: float = 0.2):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (to keep lengths), got {kernel_size}")
        self.in_channels, self.d_model = in_channels, d_model
        p = kernel_size // 2

        def block(i, o):
            return [nn.Conv1d(i, o, kernel_size, padding=p), nn.BatchNorm1d(o), nn.ReLU(inplace=True)]

        self.net = nn.Sequential(
            *block(in_channels, hidden), nn.MaxPool1d(2),
            *block(hidden, hidden * 2),
            *block(hidden * 2, d_model),
            nn.MaxPool1d(2), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"IMUEncoder expects (B, {self.in_channels}, L), got {tuple(x.shape)}")
        if x.shape[2] < 4:
            raise ValueError(f"IMU windows need at least 4 time steps, got {x.shape[2]}")
        return self.net(x).transpose(1, 2)                            # (B, L//4, d_model)


# --------------------------------------------------------------------------- video

_RESNETS = {  # depth -> (block, layers); 10 is a small variant for quick presets
    10: (BasicBlock, [1, 1, 1, 1]),
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def load_state_dict_file(path: str | Path) -> dict:
    """Read a state dict from a local file (never downloads). Accepts a bare
    state dict or one nested under "model" / "state_dict" (PANNs, Lightning)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights not found at {path}: pass the path of a local state-dict file "
            "(dcatkit never downloads weights)")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    return sd


class FrameEncoder(nn.Module):
    """A torchvision ResNet applied to every frame (paper Fig. 3: ResNet-101).

    Input (B, T, 3, H, W), uint8 in [0, 255] or float in [0, 1]; frames are
    normalised with ImageNet statistics. Output (B, T, d_model) with d_model the
    ResNet's feature size (512 for depth 10/18/34, 2048 for 50/101).
    Random init by default; ``weights_path`` loads a local torchvision state dict
    (the final fc layer is ignored).
    """

    def __init__(self, depth: int = 101, weights_path: str | Path | None = None,
                 channels_last: bool = False):
        super().__init__()
        if depth not in _RESNETS:
            raise ValueError(f"ResNet depth must be one of {sorted(_RESNETS)}, got {depth}")
        block, layers = _RESNETS[depth]
        self.depth = depth
        self.backbone: ResNet = ResNet(block, layers)
        if weights_path is not None:
            sd = {k: v for k, v in load_state_dict_file(weights_path).items() if not k.startswith("fc.")}
            missing, unexpected = self.backbone.load_state_dict(sd, strict=False)
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing or unexpected:
                raise ValueError(
                    f"{weights_path} is not a torchvision ResNet-{depth} state dict: "
                    f"missing {missing[:5]}..., unexpected {unexpected[:5]}...")
        self.d_model = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()
        self.channels_last = channels_last
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[2] != 3:
            raise ValueError(f"FrameEncoder expects (B, T, 3, H, W), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        x = x.flatten(0, 1)                                            # (B*T, 3, H, W)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.backbone(x).view(b, t, -1)                          # (B, T, d_model)


# --------------------------------------------------------------------------- audio


class LogMel(nn.Module):
    """PANNs' front end from torchaudio: MelSpectrogram -> 10*log10 (AmplitudeToDB).
    (B, N) waveform -> (B, n_mels, frames)."""

    def __init__(self, sample_rate: int = 32000, n_fft: int = 1024, hop_length: int = 320,
                 n_mels: int = 64, f_min: float = 50.0, f_max: float | None = 14000.0):
        super().__init__()
        if f_max is not None and f_max > sample_rate / 2:
            f_max = sample_rate / 2
        self.sample_rate, self.n_mels = sample_rate, n_mels
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
            f_min=f_min, f_max=f_max, power=2.0)
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=None)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        with torch.autocast(wav.device.type, enabled=False):
            return self.to_db(self.mel(wav.float()))


class _ConvBlock(nn.Module):
    """PANNs ConvBlock: (conv3x3-BN-ReLU) x2 -> 2x2 avg pool; Cnn6 uses one 5x5 conv."""

    def __init__(self, i: int, o: int, five: bool):
        super().__init__()
        if five:
            layers = [nn.Conv2d(i, o, 5, padding=2, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
        else:
            layers = [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                      nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers, nn.AvgPool2d(2), nn.Dropout(0.2))

    def forward(self, x):
        return self.net(x)


_PANNS = {"cnn6": (64, 128, 256, 512), "cnn10": (64, 128, 256, 512),
          "cnn14": (64, 128, 256, 512, 1024, 2048)}


class AudioEncoder(nn.Module):
    """PANNs-style CNN (Kong et al. 2020; paper Fig. 4) over a log-mel front end.

    Input: a mono waveform (B, N) at ``sample_rate`` — or a precomputed log-mel
    (B, n_mels, frames). Steps: log-mel -> batch norm over mel bins ->
    SpecAugment (torchaudio Time/FrequencyMasking, training only) -> conv blocks
    -> mean over mel bins. Output (B, T_audio, d_model) keeps the time axis
    (PANNs' final max+mean pooling over time is left to the classifier).
    ``width`` scales the channel counts (1.0 = PANNs); ``weights_path`` loads a
    local PANNs checkpoint's conv blocks (keys ``conv_block{i}.*``) when widths match.
    """

    def __init__(self, arch: str = "cnn14", sample_rate: int = 32000, n_fft: int = 1024,
                 hop_length: int = 320, n_mels: int = 64, f_min: float = 50.0,
                 f_max: float | None = 14000.0, width: float = 1.0, spec_augment: bool = True,
                 weights_path: str | Path | None = None):
        super().__init__()
        if arch not in _PANNS:
            raise ValueError(f"audio arch must be one of {sorted(_PANNS)}, got {arch!r}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        chans = [max(4, int(round(c * width))) for c in _PANNS[arch]]
        self.arch = arch
        self.frontend = LogMel(sample_rate, n_fft, hop_length, n_mels, f_min, f_max)
        self.bn0 = nn.BatchNorm2d(n_mels)
        self.spec_augment = nn.Sequential(
            torchaudio.transforms.TimeMasking(time_mask_param=min(64, 16), iid_masks=True),
            torchaudio.transforms.TimeMasking(time_mask_param=min(64, 16), iid_masks=True),
            torchaudio.transforms.FrequencyMasking(freq_mask_param=8, iid_masks=True),
            torchaudio.transforms.FrequencyMasking(freq_mask_param=8, iid_masks=True),
        ) if spec_augment else nn.Identity()
        blocks, c_in = [], 1
        for c in chans:
            blocks.append(_ConvBlock(c_in, c, five=(arch == "cnn6")))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.d_model = c_in
        if weights_path is not None:
            sd = load_state_dict_file(weights_path)
            own = self.state_dict()
            picked = {}
            for i in range(len(blocks)):
                # PANNs names: conv_block{i+1}.conv1.weight, .bn1.*, conv2, bn2 (or conv_block{i+1}.conv.* for Cnn6)
                pre = f"conv_block{i + 1}."
                ours = [k for k in own if k.startswith(f"blocks.{i}.")]
                theirs = [k for k in sd if k.startswith(pre) and not k.endswith("num_batches_tracked")]
                ours = [k for k in ours if not k.endswith("num_batches_tracked")]
                if len(ours) != len(theirs):
                    raise ValueError(f"{weights_path}: block {i + 1} has {len(theirs)} tensors, expected {len(ours)}"
                                     f" for {arch} at width {width}")
                picked.update(dict(zip(ours, (sd[k] for k in theirs))))
            self.load_state_dict(picked, strict=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            x = self.frontend(x)                                        # (B, n_mels, F)
        if x.ndim != 3 or x.shape[1] != self.frontend.n_mels:
            raise ValueError(f"AudioEncoder expects a waveform (B, N) or a log-mel "
                             f"(B, {self.frontend.n_mels}, F), got {tuple(x.shape)}")
        x = self.bn0(x.unsqueeze(1).transpose(1, 2)).transpose(1, 2)    # BN over mel bins, (B,1,n_mels,F)
        if self.training:
            x = self.spec_augment(x)
        x = x.transpose(2, 3)                                           # (B, 1, F, n_mels): time, freq
        n_blocks = len(self.blocks)
        if x.shape[2] < 2 ** n_blocks or x.shape[3] < 2 ** n_blocks:
            raise ValueError(f"audio too short for {n_blocks} pooling blocks: log-mel has {x.shape[2]} "
                             f"frames x {x.shape[3]} mel bins, need >= {2 ** n_blocks} of each")
        for blk in self.blocks:
            x = blk(x)
        return x.mean(dim=3).transpose(1, 2)                            # (B, T_audio, d_model)
