"""Pretrained encoders load the files users have and compute what the originals compute.

References, with random weights (nothing is downloaded):
- audio: PANNs' own model definitions from the ``panns-inference`` package (Cnn14);
  its checkpoint layout is ``{"model": state_dict}`` with the keys in PANNs' order
  (conv1, conv2, bn1, bn2), front-end buffers and the AudioSet head;
- video: torchvision's ResNets, saved with ``torch.save(model.state_dict(), path)``.
All BatchNorm weights, biases and running statistics are set away from their
default init, with which every BN is the same map, so that a mix-up of bn1/bn2
(or of any two BNs) could not go unnoticed.
"""
import importlib.util
import sys
import types

import pytest
import torch
import torchvision
from torch import nn
from torchvision.transforms.v2 import functional as TF

from dcatkit.encoders import AudioEncoder, FrameEncoder, LogMel

TOL = 1e-4   # see _assert_close


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt to fetch weights fails the test."""
    def refuse(*a, **k):
        raise AssertionError(f"tried to download: {a}")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def _randomise(model: nn.Module, seed: int, calibrate) -> nn.Module:
    """Random BN affine parameters and Linear biases; BN running statistics set,
    as training would, to the statistics of the batch that ``calibrate(model)``
    runs (which keeps activations O(1)). Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))
            m.momentum = 1.0                         # running stats := this batch's stats
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
        calibrate(model.train())
    for m in bns:
        m.momentum = 0.1
    return model.eval()


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> str:
    return f"max |diff| {float((a - b).abs().max()):.2e}, scale {float(b.abs().max()):.2e}"


def _assert_close(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal to TOL relative to the features' scale (max |want|, at least 1): float32
    rounding (an FFT vs PANNs' DFT-as-convolution, x / 255 vs x * (1 / 255)) grows
    through tens of layers; a wrong weight or layer gives differences of order 1."""
    assert got.shape == want.shape, (got.shape, want.shape)
    assert (got - want).abs().max() <= TOL * max(1.0, float(want.abs().max())), _max_diff(got, want)


# ------------------------------------------------------------------------------------ PANNs


def _load_panns_models():
    """``panns_inference/models.py`` loaded WITHOUT running the package's __init__.

    ``import panns_inference`` runs its ``config.py``, which wgets AudioSet's label
    CSV into ~/panns_data. We only need the model definitions, so we register a
    stub parent package (a private name, whose __path__ is the installed folder)
    and load ``models.py`` from its file; its ``from .pytorch_utils import ...``
    then resolves inside the stub, and ``__init__.py`` / ``config.py`` never run.
    """
    spec = importlib.util.find_spec("panns_inference")   # top-level: locates, does not import
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = list(spec.submodule_search_locations)[0]
    stub = types.ModuleType("_panns_reference")
    stub.__path__ = [folder]
    sys.modules["_panns_reference"] = stub
    mspec = importlib.util.spec_from_file_location("_panns_reference.models", f"{folder}/models.py")
    models = importlib.util.module_from_spec(mspec)
    sys.modules["_panns_reference.models"] = models
    mspec.loader.exec_module(models)
    return models


@pytest.fixture(scope="module")
def panns():
    models = _load_panns_models()
    if models is None:
        pytest.skip("panns-inference is not installed: `pip install -e .[dev]` (or "
                    "`pip install 'panns-inference>=0.1.1,<0.2'`) to check PANNs checkpoint loading")
    return models


# PANNs' Cnn14 at 32 kHz (its released checkpoint's settings)
PANNS_32K = dict(sample_rate=32000, n_fft=1024, hop_length=320, n_mels=64, f_min=50.0, f_max=14000.0)


@pytest.fixture(scope="module")
def cnn14(panns, tmp_path_factory):
    """A random-weight PANNs Cnn14 and its checkpoint file, in PANNs' layout."""
    torch.manual_seed(0)
    ref = panns.Cnn14(sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50,
                      fmax=14000, classes_num=527)
    _randomise(ref, 0, calibrate=lambda m: m(_wave(20480, seed=7)))
    path = tmp_path_factory.mktemp("panns") / "Cnn14_random.pth"
    torch.save({"model": ref.state_dict()}, path)
    return ref, path


def _wave(n: int, seed: int = 0) -> torch.Tensor:
    """(2, n) at 32 kHz: noise, a rising 440 Hz tone, and 0.1 s of digital silence
    (its power is below amin: -100 dB, which a top_db would clip)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 32000
    tone = torch.sin(2 * torch.pi * 440 * t) * torch.linspace(0, 1, n)
    wav = 0.1 * torch.randn(2, n, generator=g) + 0.3 * tone
    wav[:, n // 4: n // 4 + 3200] = 0.0
    return wav


def test_checkpoint_layout_is_panns(cnn14):
    """The file holds what real PANNs checkpoints hold, in their key order."""
    _, path = cnn14
    keys = list(torch.load(path, weights_only=True)["model"])
    block1 = [k.rsplit(".", 1)[0] for k in keys if k.startswith("conv_block1.")]
    assert list(dict.fromkeys(block1)) == ["conv_block1.conv1", "conv_block1.conv2",
                                           "conv_block1.bn1", "conv_block1.bn2"]
    assert {"logmel_extractor.melW", "bn0.running_var", "fc1.weight", "fc_audioset.weight"} <= set(keys)


def test_panns_frontend_matches_panns(cnn14):
    """torchaudio with frontend='panns' = PANNs' torchlibrosa STFT + librosa Slaney mel + power_to_db."""
    ref, _ = cnn14
    ours = LogMel(**PANNS_32K, frontend="panns")
    mel_w = ref.logmel_extractor.melW.detach()                          # (513, 64)
    assert torch.allclose(ours.filterbank, mel_w, rtol=0, atol=1e-6)   # values up to 0.018, _max_diff(ours.filterbank, mel_w)
    wav = _wave(12800)
    with torch.no_grad():
        want = ref.logmel_extractor(ref.spectrogram_extractor(wav))[:, 0].transpose(1, 2)  # (2, 64, 41)
        got = ours(wav)
    assert got.shape == want.shape == (2, 64, 12800 // 320 + 1)
    assert (got - want).abs().max() < 1e-3, _max_diff(got, want)        # dB; values span [-100, 20]
    plain = LogMel(**PANNS_32K)(wav)                                    # torchaudio's default (HTK) is not PANNs'
    assert (plain - want).abs().max() > 1.0


def test_cnn14_checkpoint_gives_panns_embedding(cnn14):
    ref, path = cnn14
    enc = AudioEncoder("cnn14", **PANNS_32K, frontend="panns", weights_path=path).eval()
    wav = _wave(20480)                                                  # 65 frames -> T_audio 2
    seen = {}
    ref.conv_block6.register_forward_hook(lambda m, i, o: seen.__setitem__("ref", o))
    enc.fc1.register_forward_pre_hook(lambda m, i: seen.__setitem__("ours", i[0]))
    with torch.no_grad():
        out_ref = ref(wav)
        out = enc(wav)
        want = seen["ref"].mean(dim=3).transpose(1, 2)                  # PANNs: conv_block6 -> mean over mel bins
        got = seen["ours"]
        assert got.shape == (2, 2, 2048)
        _assert_close(got, want)
        # fc1 + ReLU on every time step, with PANNs' fc1
        want_out = torch.relu(ref.fc1(want))
        assert out.shape == (2, 2, enc.d_model)
        _assert_close(out, want_out)
        # PANNs' own clip embedding: its max + mean pooling over time, then fc1 + ReLU
        pooled = got.max(dim=1).values + got.mean(dim=1)
        emb = torch.relu(enc.fc1(pooled))
        _assert_close(emb, out_ref["embedding"])


def test_cnn10_is_cnn14s_first_four_blocks(cnn14, tmp_path):
    """PANNs' Cnn10 is conv_block1-4 (the same ConvBlock, 2x2 pooling) + fc1(512): a Cnn10
    checkpoint cut from the Cnn14 one must give Cnn14's conv_block4 features."""
    ref, path = cnn14
    sd = torch.load(path, weights_only=True)["model"]
    keep = ("bn0.", "conv_block1.", "conv_block2.", "conv_block3.", "conv_block4.", "logmel_extractor.")
    sd10 = {k: v for k, v in sd.items() if k.startswith(keep)}
    sd10.update({"fc1.weight": torch.randn(512, 512) / 23, "fc1.bias": torch.zeros(512)})
    torch.save({"model": sd10}, tmp_path / "cnn10.pth")
    enc = AudioEncoder("cnn10", **PANNS_32K, frontend="panns", weights_path=tmp_path / "cnn10.pth").eval()
    seen = {}
    ref.conv_block4.register_forward_hook(lambda m, i, o: seen.__setitem__("ref", o))
    enc.fc1.register_forward_pre_hook(lambda m, i: seen.__setitem__("ours", i[0]))
    with torch.no_grad():
        ref(_wave(10240, seed=1))
        enc(_wave(10240, seed=1))
    want = seen["ref"].mean(dim=3).transpose(1, 2)
    assert want.shape == (2, 2, 512)
    _assert_close(seen["ours"], want)


def test_panns_checkpoint_that_does_not_fit(cnn14, tmp_path):
    _, path = cnn14
    with pytest.raises(ValueError, match="pass frontend='panns'"):
        AudioEncoder("cnn14", **PANNS_32K, weights_path=path)
    # same shape (513, 64), other values: it said "(513, 64) is not this front end's (513, 64)"
    with pytest.raises(ValueError, match=r"mel filterbank has the same shape \(513, 64\) but its values differ "
                                         r".*sample_rate=16000") as e:
        AudioEncoder("cnn14", **{**PANNS_32K, "sample_rate": 16000, "f_max": 8000.0},
                     frontend="panns", weights_path=path)
    assert "is not this front end's" not in str(e.value)
    with pytest.raises(ValueError, match=r"mel filterbank \(513, 64\) \(n_fft 1024, 64 mels\) is not this front "
                                         r"end's \(257, 64\)"):
        AudioEncoder("cnn14", **{**PANNS_32K, "sample_rate": 16000, "n_fft": 512, "f_max": 8000.0},
                     frontend="panns", weights_path=path)
    with pytest.raises(ValueError, match=r"unexpected .*conv_block5.*looks like a PANNs Cnn14: pass arch='cnn14'"):
        AudioEncoder("cnn10", **PANNS_32K, frontend="panns", weights_path=path)
    with pytest.raises(ValueError, match=r"wrong shape .*conv1.weight.*looks like a PANNs Cnn14: pass arch='cnn14'"):
        AudioEncoder("cnn6", **PANNS_32K, frontend="panns", weights_path=path)
    # the arch passed is the file's: no "pass arch=" (it named what the user had passed)
    with pytest.raises(ValueError, match=r"wrong shape .*is a PANNs Cnn14, as passed, at PANNs' sizes: pass "
                                         r"width=1.0 .*got width=0.5") as e:
        AudioEncoder("cnn14", **PANNS_32K, width=0.5, frontend="panns", weights_path=path)
    assert "pass arch" not in str(e.value)
    sd = torch.load(path, weights_only=True)["model"]
    del sd["conv_block3.bn2.running_var"]
    torch.save({"model": sd}, tmp_path / "cut.pth")
    with pytest.raises(ValueError, match=r"missing 1 \(blocks.2.bn2.running_var\)\. The file is a PANNs Cnn14, as "
                                         r"passed, but .* incomplete") as e:
        AudioEncoder("cnn14", **PANNS_32K, frontend="panns", weights_path=tmp_path / "cut.pth")
    assert "pass arch" not in str(e.value)


def test_vggsound_preset_at_16k_is_panns_16k_front_end(panns, cnn14, tmp_path):
    """VGGSound's wavs load at 16 kHz (load_vggsound's default) and the data's rate replaces the
    preset's (experiment._build passes it to build_model): the front end must then be PANNs' own
    16 kHz one (Cnn14_16k: n_fft 512, hop 160, f_max 8000), so that its checkpoint loads and the
    log-mel is the one it was trained on; it was n_fft 1024, hop 320 at 16 kHz, which fits no
    PANNs checkpoint."""
    from dcatkit.model import build_model
    from dcatkit.presets import get_preset

    ref32, _ = cnn14
    torch.manual_seed(1)
    ref = panns.Cnn14(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000,
                      classes_num=527).eval()
    sd = {**{k: v for k, v in ref32.state_dict().items() if not k.startswith(("spectrogram_", "logmel_"))},
          **{k: v for k, v in ref.state_dict().items() if k.startswith(("spectrogram_", "logmel_"))}}
    path = tmp_path / "Cnn14_16k_random.pth"
    torch.save({"model": sd}, path)                          # Cnn14_16k's front end, the random Cnn14's weights
    model = build_model("audio", 9, (32000,), get_preset("vggsound", "audio"), sample_rate=16000,
                        weights_path=str(path)).eval()
    enc = model.encoder
    assert (enc.frontend.sample_rate, enc.frontend.mel.n_fft, enc.frontend.mel.hop_length) == (16000, 512, 160)
    assert {k: model.config["encoder"][k] for k in ("sample_rate", "n_fft", "hop_length")} == \
        {"sample_rate": 16000, "n_fft": 512, "hop_length": 160}
    wav = _wave(8000)                                        # 0.5 s at 16 kHz
    with torch.no_grad():
        want = ref.logmel_extractor(ref.spectrogram_extractor(wav))[:, 0].transpose(1, 2)
        got = enc.frontend(wav)
    assert got.shape == want.shape == (2, 64, 8000 // 160 + 1)
    assert (got - want).abs().max() < 1e-3, _max_diff(got, want)
    assert torch.equal(enc.bn0.running_var, ref32.bn0.running_var)   # the checkpoint's weights, loaded


def test_a_file_that_is_not_a_state_dict_is_named(tmp_path):
    """A whole pickled model, a training script's checkpoint with Python objects beside its
    tensors, junk bytes and a folder: each a clear error naming the path (torch's raw
    UnpicklingError named no file and advised weights_only=False, which dcatkit never takes)."""
    import argparse

    from dcatkit.encoders import load_state_dict_file

    net = torchvision.models.resnet18(weights=None)
    torch.save(net, tmp_path / "whole.pth")
    with pytest.raises(ValueError) as e:
        FrameEncoder(depth=18, weights_path=tmp_path / "whole.pth")
    msg = str(e.value)
    assert str(tmp_path / "whole.pth") in msg and "torchvision.models.resnet.ResNet" in msg
    assert "name -> tensor" in msg and "TRUST" in msg
    assert "torch.save(torch.load(p, weights_only=False).state_dict(), new)" in msg
    p = tmp_path / "whole.pth"                               # the conversion it names works
    new = tmp_path / "converted.pth"
    torch.save(torch.load(p, weights_only=False).state_dict(), new)
    assert torch.equal(FrameEncoder(depth=18, weights_path=new).backbone.conv1.weight, net.conv1.weight)

    torch.save({"model": net.state_dict(), "epoch": 3, "args": argparse.Namespace(lr=0.1)}, tmp_path / "ckpt.pth")
    with pytest.raises(ValueError, match=r"ckpt.pth: it holds a Python object .*\(argparse.Namespace\).*"
                                         r"torch.load\(p, weights_only=False\)\['model'\]"):
        load_state_dict_file(tmp_path / "ckpt.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"junk.pth: it is not a file torch.save wrote") as e:
        AudioEncoder("cnn6", width=0.0625, frontend="panns", weights_path=tmp_path / "junk.pth")
    assert "weights_only=False" not in str(e.value)          # no advice to unpickle junk
    with pytest.raises(FileNotFoundError, match=r"is a folder") as e:
        load_state_dict_file(tmp_path)
    assert "not found" not in str(e.value)


# ----------------------------------------------------------------------------------- ResNet


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_resnet_file_gives_torchvision_features(depth, tmp_path):
    torch.manual_seed(depth)
    ref = _randomise(getattr(torchvision.models, f"resnet{depth}")(weights=None), depth,
                     calibrate=lambda m: m(torch.randn(4, 3, 64, 64)))
    path = tmp_path / f"resnet{depth}.pth"
    torch.save(ref.state_dict(), path)
    enc = FrameEncoder(depth=depth, weights_path=path).eval()
    frames = torch.randint(0, 256, (2, 3, 3, 64, 64), dtype=torch.uint8)   # (B, T, 3, H, W)
    # torchvision's own preprocessing: uint8 -> [0, 1] float -> its weights' ImageNet mean/std
    meta = getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1.transforms()
    x = TF.normalize(TF.to_dtype(frames.flatten(0, 1), torch.float32, scale=True), meta.mean, meta.std)
    ref.fc = nn.Identity()
    with torch.no_grad():
        want = ref(x).view(2, 3, -1)
        got = enc(frames)
    assert want.shape == (2, 3, enc.d_model)
    _assert_close(got, want)


@pytest.mark.parametrize("form", ["without counters", "under 'state_dict'", "under 'model'"])
def test_a_resnet_file_without_batchnorm_counters_or_nested_in_a_checkpoint_loads(form, tmp_path):
    """Pretrained ResNet files come in more shapes than a bare state_dict(): older or exported ones
    lack BatchNorm's num_batches_tracked counters (which inference never reads), and training
    scripts' checkpoints nest the weights under 'state_dict' or 'model'. Each loads, every weight
    and running statistic the file's (refusing them would send users to convert files by hand)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    sd = {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v
          for k, v in FrameEncoder(depth=10).backbone.state_dict().items()}     # no tensor at its init value
    kept = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert len(kept) < len(sd)                            # the file below does lack counters
    blob = {"without counters": kept, "under 'state_dict'": {"state_dict": sd}, "under 'model'": {"model": sd}}[form]
    torch.save(blob, tmp_path / "w.pth")
    got = FrameEncoder(depth=10, weights_path=tmp_path / "w.pth").backbone.state_dict()
    assert got.keys() == sd.keys()
    assert all(torch.equal(got[k], v) for k, v in kept.items())


def test_wrong_resnet_file_is_named(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit a torchvision ResNet-50: missing .*looks like a ResNet-18: "
                                         r"pass depth=18"):
        FrameEncoder(depth=50, weights_path=path)
    torch.save({"model": {"conv_block1.conv1.weight": torch.zeros(64, 1, 3, 3)}}, tmp_path / "panns.pth")
    with pytest.raises(ValueError, match=r"unexpected 1 \(conv_block1.conv1.weight\).*Expected the state dict "
                                         r"of torchvision"):
        FrameEncoder(depth=18, weights_path=tmp_path / "panns.pth")
    # the depth passed is the file's: the hint must not tell the user to pass what they passed
    sd = torchvision.models.resnet18(weights=None).state_dict()
    del sd["layer2.0.bn1.weight"]
    torch.save(sd, tmp_path / "cut.pth")
    with pytest.raises(ValueError, match=r"missing 1 \(layer2.0.bn1.weight\)\. The file's blocks are a "
                                         r"ResNet-18's, as passed, .*incomplete") as e:
        FrameEncoder(depth=18, weights_path=tmp_path / "cut.pth")
    assert "pass depth" not in str(e.value)
    sd = {**torchvision.models.resnet18(weights=None).state_dict(), "extra.w": torch.zeros(1)}
    torch.save(sd, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"unexpected 1 \(extra.w\)\. The file's blocks are a ResNet-18's") as e:
        FrameEncoder(depth=18, weights_path=tmp_path / "extra.pth")
    assert "pass depth" not in str(e.value)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        FrameEncoder(depth=18, weights_path=tmp_path / "list.pth")


def test_a_checkpoint_of_a_pretrained_model_loads_without_the_pretrained_file(tmp_path):
    """A model initialised from a local weights file keeps that path in its config (where it
    came from), but its checkpoint holds every weight: it loads, on a machine without the
    file, to the same model (the pretrained file is not read again; a changed file cannot
    change the trained model either)."""
    from dcatkit.checkpoint import load_checkpoint, save_checkpoint
    from dcatkit.model import build_model
    from dcatkit.presets import get_preset

    weights = tmp_path / "r10.pth"
    torch.save(FrameEncoder(depth=10).backbone.state_dict(), weights)
    model = build_model("video", 4, (2, 3, 32, 32), get_preset("synthetic", "video"), depth=10,
                        weights_path=str(weights)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)                                   # "trained": no longer the file's weights
    save_checkpoint(tmp_path / "m.pt", model, {"modality": "video"})
    torch.save(FrameEncoder(depth=10).backbone.state_dict(), weights)      # the file changed since ...
    x = torch.rand(2, 2, 3, 32, 32)
    back, _ = load_checkpoint(tmp_path / "m.pt")
    weights.unlink()                                                        # ... or is gone
    again, _ = load_checkpoint(tmp_path / "m.pt")
    assert back.config["encoder"]["weights_path"] == str(weights)
    with torch.no_grad():
        assert torch.equal(back.eval()(x).logits, model(x).logits)
        assert torch.equal(again.eval()(x).logits, model(x).logits)
