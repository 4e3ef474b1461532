"""Modality-specific encoders (paper Section V-B), one per kind of modality
(``dcatkit.modalities``): ``IMUEncoder`` (timeseries: IMU, EMG, ECG...),
``FrameEncoder`` (video), ``AudioEncoder`` (audio), ``FeatureEncoder`` (features:
precomputed vectors). Each maps its sensor input to a sequence of embeddings
(B, T_m, d_model) that keeps a time axis for the self-attention module.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

# ----------------------------------------------------------------------------- IMU


class IMUEncoder(nn.Module):
    """1D CNN after the paper's Fig. 2 (SAMoSA-style; layer sizes are ours).

    conv-BN-ReLU-maxpool, two more conv-BN-ReLU blocks, maxpool, dropout.
    Input (B, C, L) with any channel count C -> output (B, L // 4, d_model).
    """

    min_length = 4      # time steps: its two 2x max poolings leave L // 4 >= 1 of them

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
        if x.shape[2] < self.min_length:
            raise ValueError(f"IMU windows need at least {self.min_length} time steps, got {x.shape[2]}")
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


_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def torch_load_problem(e: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed with ``e``, in words for a user.

    Two cases differ in what to do: the file holds a Python object that a weights-only
    load refuses (its class named, when torch names it: a whole pickled model, argparse
    arguments, numpy values), which a trusted file can be converted from; or the file is
    not one ``torch.save`` wrote (empty, truncated, corrupted, another format), which no
    load option reads. torch words both as "Weights only load failed", so that phrase
    alone does not tell them apart; the "Unsupported global" it names does."""
    m = _UNSAFE_GLOBAL.search(str(e))
    if m:
        return f"it holds a Python object a weights-only load refuses to build ({m.group(1)})"
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if "weights_only" in first:                  # torch's advice to load it unsafely fits no such file
        first = ""
    return ("it is not a file torch.save wrote, or is empty, truncated or corrupted "
            f"({type(e).__name__}{': ' + first[:160] if first else ''})")


def load_state_dict_file(path: str | Path) -> dict:
    """Read a state dict from a local file (never downloads). Accepts a bare
    state dict or one nested under "model" / "state_dict" (PANNs, Lightning).
    The file is read with ``weights_only=True`` (no code in it runs): a whole pickled
    model or a checkpoint with Python objects beside its tensors is a ValueError that
    names the object and the one-off conversion of a trusted file."""
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"pretrained weights path {path} is a folder: name the state-dict file "
                                "in it (e.g. its .pth / .pt file)")
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights not found at {path}: pass the path of a local state-dict file "
            "(dcatkit never downloads weights)")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise                                          # unreadable (permissions...): its message names the path
    except Exception as e:
        why = torch_load_problem(e)
        fix = ("If you TRUST the file, convert it once: for a whole model saved with torch.save(model, p), "
               "torch.save(torch.load(p, weights_only=False).state_dict(), new); for a checkpoint dict, save "
               "its state-dict entry: torch.save(torch.load(p, weights_only=False)['model'], new) (its key "
               "may differ); then pass new."
               if _UNSAFE_GLOBAL.search(str(e)) else
               "Copy or download it again, or save the weights with torch.save(model.state_dict(), path).")
        raise ValueError(f"cannot read pretrained weights {path}: {why}. dcatkit wants a state dict, "
                         "name -> tensor (bare, or under 'model' / 'state_dict'), and never runs code from "
                         f"a file. {fix}") from e
    for key in ("model", "state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f"{path} does not hold a state dict (name -> tensor), nor one under "
                         f"'model' / 'state_dict'; found {type(sd).__name__}")
    return sd


def _short(keys: list[str], n: int = 6) -> str:
    return f"{len(keys)} ({', '.join(keys[:n])}{', ...' if len(keys) > n else ''})"


def load_by_name(module: nn.Module, sd: dict[str, torch.Tensor], what: str, hint: str = "",
                 rename=None, computed: tuple[str, ...] = ()) -> None:
    """Load the state dict ``sd`` into ``module``, pairing tensors by NAME.

    ``rename(file_key)`` gives the module's key for a file key, or None to skip
    it (default: the same name). Every parameter and buffer of ``module`` must be
    present with the same shape (BatchNorm's ``num_batches_tracked`` counters may
    be absent), except keys starting with a ``computed`` prefix (buffers the module
    builds itself, e.g. a mel filterbank); a file key ``module`` lacks is an error
    too. On mismatch raises a ValueError that lists the missing (module names),
    unexpected (file names) and wrongly shaped keys, then ``hint``.
    """
    rename = rename or (lambda k: k)
    ours_of = {k: rename(k) for k in sd}
    mine = {ours_of[k]: v for k, v in sd.items() if ours_of[k] is not None}
    own = {k: v for k, v in module.state_dict().items() if not (computed and k.startswith(computed))}
    missing = [k for k in own if k not in mine and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if ours_of[k] is not None and ours_of[k] not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[ours_of[k]].shape)}" for k in sd
              if ours_of[k] in own and sd[k].shape != own[ours_of[k]].shape]
    if missing or unexpected or shapes:
        parts = [f"missing {_short(missing)}" if missing else "",
                 f"unexpected {_short(unexpected)}" if unexpected else "",
                 f"wrong shape (file vs model) {_short(shapes, 3)}" if shapes else ""]
        raise ValueError(f"{what}: " + "; ".join(p for p in parts if p) + (f". {hint}" if hint else ""))
    module.load_state_dict(mine, strict=False)   # checked above: only computed buffers and counters left out


def _resnet_depth_of(sd: dict) -> int | None:
    """The depth in ``_RESNETS`` whose block type and block counts a torchvision
    ResNet state dict has, or None."""
    counts = [len({k.split(".")[1] for k in sd if k.startswith(f"layer{i}.")}) for i in range(1, 5)]
    block = Bottleneck if any(k.endswith(".conv3.weight") for k in sd) else BasicBlock
    return next((d for d, spec in _RESNETS.items() if spec == (block, counts)), None)


class FrameEncoder(nn.Module):
    """A torchvision ResNet applied to every frame (paper Fig. 3: ResNet-101).

    Input (B, T, 3, H, W), uint8 in [0, 255] or float in [0, 1]; frames are
    normalised with ImageNet statistics. Output (B, T, d_model) with d_model the
    ResNet's feature size (512 for depth 10/18/34, 2048 for 50/101).
    Random init by default; ``weights_path`` loads a local torchvision state-dict
    file (``torch.save(torchvision.models.resnet101(...).state_dict(), path)``) by
    key name; its final fc layer is ignored, anything else that does not fit is
    an error naming the keys.
    """

    def __init__(self, depth: int = 101, weights_path: str | Path | None = None,
                 channels_last: bool = False):
        super().__init__()
        if depth not in _RESNETS:
            raise ValueError(f"ResNet depth must be one of {sorted(_RESNETS)}, got {depth}")
        block, layers = _RESNETS[depth]
        self.depth = depth
        self.backbone: ResNet = ResNet(block, layers)
        self.d_model = self.backbone.fc.in_features
        self.backbone.fc = nn.Identity()                                # features, not ImageNet logits
        if weights_path is not None:
            sd = {k: v for k, v in load_state_dict_file(weights_path).items() if not k.startswith("fc.")}
            found = _resnet_depth_of(sd)
            hint = (f"The file looks like a ResNet-{found}: pass depth={found}." if found and found != depth else
                    f"The file's blocks are a ResNet-{depth}'s, as passed, but the keys listed above do not "
                    "fit: the file is incomplete, renamed or has extra entries." if found else
                    "Expected the state dict of torchvision.models.resnet{18,34,50,101}.")
            load_by_name(self.backbone, sd, f"{weights_path} does not fit a torchvision ResNet-{depth}", hint)
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


FRONTENDS = ("torchaudio", "panns")


class LogMel(nn.Module):
    """Log-mel front end from torchaudio: MelSpectrogram (power, hann window,
    centred frames with reflect padding) -> 10*log10 (AmplitudeToDB: amin 1e-10,
    ref 1, no top_db). (B, N) waveform -> (B, n_mels, 1 + N // hop_length).

    ``frontend`` picks the mel filterbank:
    - ``"torchaudio"``: torchaudio's defaults (HTK mel scale, unnormalised triangles);
    - ``"panns"``: PANNs' (librosa's) Slaney mel scale and Slaney area norm — the
      front end PANNs' checkpoints were trained on, required with their weights.
    PANNs' own settings at 32 kHz: n_fft 1024, hop 320, 64 mels, f_min 50, f_max 14000.
    """

    def __init__(self, sample_rate: int = 32000, n_fft: int = 1024, hop_length: int = 320,
                 n_mels: int = 64, f_min: float = 50.0, f_max: float | None = 14000.0,
                 frontend: str = "torchaudio"):
        super().__init__()
        if frontend not in FRONTENDS:
            raise ValueError(f"frontend must be one of {FRONTENDS}, got {frontend!r}")
        if f_max is not None and f_max > sample_rate / 2:
            f_max = sample_rate / 2
        self.sample_rate, self.n_mels, self.frontend = sample_rate, n_mels, frontend
        scale = {"mel_scale": "slaney", "norm": "slaney"} if frontend == "panns" else {"mel_scale": "htk", "norm": None}
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
            f_min=f_min, f_max=f_max, power=2.0, window_fn=torch.hann_window, center=True,
            pad_mode="reflect", **scale)
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=None)

    @property
    def filterbank(self) -> torch.Tensor:
        """The mel filterbank (n_fft // 2 + 1, n_mels), the layout of PANNs' ``logmel_extractor.melW``."""
        return self.mel.mel_scale.fb

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        with torch.autocast(wav.device.type, enabled=False):
            return self.to_db(self.mel(wav.float()))


class _ConvBlock(nn.Module):
    """PANNs' ConvBlock, (conv3x3-BN-ReLU) x 2, or ConvBlock5x5 (Cnn6), one
    conv5x5-BN-ReLU; then 2x2 average pooling (or none) and dropout 0.2.
    Attribute names are PANNs' (conv1, bn1, conv2, bn2) so that its checkpoints
    load by name. (B, i, F, M) -> (B, o, F // 2, M // 2), or (B, o, F, M) unpooled."""

    def __init__(self, i: int, o: int, five: bool, pool: bool = True):
        super().__init__()
        k = 5 if five else 3
        self.conv1 = nn.Conv2d(i, o, k, padding=k // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(o)
        if not five:
            self.conv2 = nn.Conv2d(o, o, k, padding=k // 2, bias=False)
            self.bn2 = nn.BatchNorm2d(o)
        self.pool = nn.AvgPool2d(2) if pool else nn.Identity()
        self.dropout = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        if hasattr(self, "conv2"):
            x = torch.relu(self.bn2(self.conv2(x)))
        return self.dropout(self.pool(x))


# arch -> (channels per block, 2x2 pooling per block): PANNs' Cnn14 does not pool after block 6
_PANNS = {"cnn6": ((64, 128, 256, 512), (True,) * 4),
          "cnn10": ((64, 128, 256, 512), (True,) * 4),
          "cnn14": ((64, 128, 256, 512, 1024, 2048), (True,) * 5 + (False,))}


def logmel_min_size(arch: str) -> int:
    """The fewest log-mel frames (and mel bins) audio CNN ``arch`` takes: 2 ** its poolings."""
    if arch not in _PANNS:
        raise ValueError(f"audio arch must be one of {sorted(_PANNS)}, got {arch!r}")
    return 2 ** sum(_PANNS[arch][1])


def _panns_arch_of(sd: dict) -> str | None:
    """Which PANNs CNN a checkpoint's keys describe (Cnn6 / Cnn10 / Cnn14), or None."""
    if "conv_block6.conv1.weight" in sd:
        return "cnn14"
    if "conv_block4.conv2.weight" in sd:
        return "cnn10"
    if "conv_block4.conv1.weight" in sd:
        return "cnn6"
    return None


def _ours_of_panns_key(key: str) -> str | None:
    """PANNs' key -> ours: ``conv_block{i}.*`` -> ``blocks.{i-1}.*``, ``bn0.*`` and
    ``fc1.*`` unchanged; None for what we do not load: the front end's buffers
    (STFT kernels, mel filterbank; ours are torchaudio's) and ``fc_audioset``."""
    if key.startswith(("spectrogram_extractor.", "logmel_extractor.", "fc_audioset.")):
        return None
    head, _, rest = key.partition(".")
    if head.startswith("conv_block") and head[len("conv_block"):].isdigit():
        return f"blocks.{int(head[len('conv_block'):]) - 1}.{rest}"
    return key


class AudioEncoder(nn.Module):
    """PANNs CNN (Kong et al. 2020; paper Fig. 4) over a log-mel front end.

    Input: a mono waveform (B, N) at ``sample_rate`` — or a precomputed log-mel
    (B, n_mels, frames). Steps, as in PANNs' Cnn6/10/14: log-mel -> ``bn0``, a
    batch norm over mel bins -> SpecAugment (torchaudio Time/FrequencyMasking,
    training only) -> conv blocks (2x2 average pooling after each, except
    Cnn14's last) -> mean over mel bins -> ``fc1`` + ReLU + dropout 0.5 (Fig. 4's
    final layer). Output (B, T_audio, d_model), T_audio = frames // 2**pools.
    Our choice: the time axis is kept for the self-attention, so ``fc1`` acts on
    every time step; PANNs pools over time (max + mean) before its fc1.

    ``width`` scales the channel counts (1.0 = PANNs). ``weights_path`` loads a
    local PANNs checkpoint (``{"model": state_dict}`` as PANNs saves it) by key
    name: ``bn0``, ``conv_block{i}.conv1/bn1/conv2/bn2``, ``fc1``; its front-end
    buffers only check that our filterbank is the one it was trained with, and
    ``fc_audioset`` (AudioSet's classes) is ignored. Pretrained weights need
    ``frontend="panns"``, ``width=1.0``, ``n_mels=64`` and the checkpoint's own
    sample rate, n_fft, hop, f_min and f_max (Cnn14 at 32 kHz: 1024, 320, 50, 14000).
    """

    def __init__(self, arch: str = "cnn14", sample_rate: int = 32000, n_fft: int = 1024,
                 hop_length: int = 320, n_mels: int = 64, f_min: float = 50.0,
                 f_max: float | None = 14000.0, width: float = 1.0, spec_augment: bool = True,
                 weights_path: str | Path | None = None, frontend: str = "torchaudio"):
        super().__init__()
        if arch not in _PANNS:
            raise ValueError(f"audio arch must be one of {sorted(_PANNS)}, got {arch!r}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        widths, pools = _PANNS[arch]
        chans = [max(4, int(round(c * width))) for c in widths]
        self.arch, self.width = arch, float(width)
        self.frontend = LogMel(sample_rate, n_fft, hop_length, n_mels, f_min, f_max, frontend)
        self.bn0 = nn.BatchNorm2d(n_mels)
        self.spec_augment = nn.Sequential(
            torchaudio.transforms.TimeMasking(time_mask_param=min(64, 16), iid_masks=True),
            torchaudio.transforms.TimeMasking(time_mask_param=min(64, 16), iid_masks=True),
            torchaudio.transforms.FrequencyMasking(freq_mask_param=8, iid_masks=True),
            torchaudio.transforms.FrequencyMasking(freq_mask_param=8, iid_masks=True),
        ) if spec_augment else nn.Identity()
        blocks, c_in = [], 1
        for c, pool in zip(chans, pools):
            blocks.append(_ConvBlock(c_in, c, five=(arch == "cnn6"), pool=pool))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.n_pools = sum(pools)
        self.fc1 = nn.Linear(c_in, c_in)
        self.dropout = nn.Dropout(0.5)
        self.d_model = c_in
        if weights_path is not None:
            self.load_panns(weights_path)

    def load_panns(self, path: str | Path) -> None:
        """Load a local PANNs checkpoint by key name (see the class docstring)."""
        sd = load_state_dict_file(path)
        found = _panns_arch_of(sd)
        sizes = {"width": self.width, "n_mels": self.frontend.n_mels}
        off = {k: v for k, v in sizes.items() if v != {"width": 1.0, "n_mels": 64}[k]}
        if found and found != self.arch:
            hint = f"The file looks like a PANNs {found.capitalize()}: pass arch={found!r}, width=1.0, n_mels=64."
        elif found and off:
            hint = (f"The file is a PANNs {found.capitalize()}, as passed, at PANNs' sizes: pass width=1.0 and a "
                    f"64-bin log-mel (n_mels=64), got {', '.join(f'{k}={v}' for k, v in off.items())}.")
        elif found:
            hint = (f"The file is a PANNs {found.capitalize()}, as passed, but the keys listed above do not fit: "
                    "the file is incomplete, renamed or has extra entries.")
        else:
            hint = "Expected a PANNs Cnn6/Cnn10/Cnn14 checkpoint (keys bn0.*, conv_block1.*, fc1.*)."
        if self.frontend.frontend != "panns":
            raise ValueError(f"{path}: PANNs weights were trained on PANNs' front end (Slaney mel scale "
                             f"and norm); pass frontend='panns', got frontend={self.frontend.frontend!r}")
        mel_w = sd.get("logmel_extractor.melW")
        ours = self.frontend.filterbank
        if mel_w is not None and (mel_w.shape != ours.shape or not torch.allclose(
                mel_w.float(), ours, rtol=1e-4, atol=1e-4 * float(ours.abs().max()))):
            f = self.frontend
            differ = (f"has the same shape {tuple(ours.shape)} but its values differ (another sample rate, "
                      "f_min or f_max)" if mel_w.shape == ours.shape else
                      f"{tuple(mel_w.shape)} (n_fft {2 * (mel_w.shape[0] - 1)}, {mel_w.shape[1]} mels) is not "
                      f"this front end's {tuple(ours.shape)}")
            raise ValueError(
                f"{path}: the checkpoint's mel filterbank {differ} (this front end: sample_rate={f.sample_rate}, "
                f"n_fft={f.mel.n_fft}, n_mels={f.n_mels}, f_min={f.mel.f_min}, f_max={f.mel.f_max}): use the "
                "checkpoint's settings (PANNs' Cnn14 at 32 kHz: n_fft 1024, hop 320, 64 mels, f_min 50, f_max "
                "14000; Cnn14_16k at 16 kHz: n_fft 512, hop 160, 64 mels, f_min 50, f_max 8000) and resample "
                "the audio to its rate")
        load_by_name(self, sd, f"{path} does not fit AudioEncoder(arch={self.arch!r}) at these sizes "
                     "(PANNs conv_block{i} is our blocks.{i-1})", hint, rename=_ours_of_panns_key,
                     computed=("frontend.",))

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
        need = 2 ** self.n_pools
        if x.shape[2] < need or x.shape[3] < need:
            raise ValueError(f"audio too short for {self.n_pools} pooling blocks: log-mel has {x.shape[2]} "
                             f"frames x {x.shape[3]} mel bins, need >= {need} of each")
        for blk in self.blocks:
            x = blk(x)                                                  # (B, C, F', M')
        x = x.mean(dim=3).transpose(1, 2)                               # (B, T_audio, C): mean over mel bins
        return self.dropout(torch.relu(self.fc1(x)))                    # (B, T_audio, d_model)


# ------------------------------------------------------------------------ features


class FeatureEncoder(nn.Module):
    """Precomputed feature vectors, one per time step (kind ``features``): a small MLP per step.

    Input (B, T, F) -> output (B, T, d_model). Each of the F features is standardised by
    a batch norm over (batch, time) whose running mean / variance (what evaluation uses) are
    the cumulative average over every training batch (``momentum=None``; a training batch of
    one single-step sample, e.g. a last partial batch of one feature vector (T = 1), has no
    batch statistics: it is standardised with the running ones and leaves them as they are), not BatchNorm's
    default exponential average: that one starts at 0 / 1 and moves 10% a step, so after the
    few dozen steps of a small run a feature far from 0 (air pressure, ~1013 hPa) was still
    shifted by many standard deviations at evaluation (test F1 0.92 -> 0.23). The statistics
    are part of the model, so raw features need no scaling outside it; only a feature whose
    variance is near BatchNorm's eps, 1e-5, is not fully standardised. Then every step goes
    through the same Linear(F, hidden) -> ReLU -> Dropout -> Linear(hidden, d_model);
    ``hidden=0`` makes it one Linear(F, d_model). Steps do not mix: the self-attention
    after the encoder relates them.
    """

    def __init__(self, in_features: int, d_model: int = 128, hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features must be >= 1, got {in_features}")
        if hidden < 0 or d_model < 1:
            raise ValueError(f"hidden must be >= 0 and d_model >= 1, got hidden={hidden}, d_model={d_model}")
        self.in_features, self.d_model = in_features, d_model
        self.norm = nn.BatchNorm1d(in_features, momentum=None)       # cumulative: the training data's statistics
        self.mlp = (nn.Linear(in_features, d_model) if hidden == 0 else
                    nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(hidden, d_model)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"FeatureEncoder expects (B, T, {self.in_features}), got {tuple(x.shape)}")
        x = x.float().transpose(1, 2)                                   # (B, F, T)
        if self.training and x.shape[0] * x.shape[2] == 1:             # one value per feature: no batch
            n = self.norm                                               # statistics (BatchNorm refuses it)
            x = F.batch_norm(x, n.running_mean, n.running_var, n.weight, n.bias, False, 0.0, n.eps)
        else:
            x = self.norm(x)                                            # per-feature standardised
        return self.mlp(x.transpose(1, 2))                              # (B, T, d_model)
