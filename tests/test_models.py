import math

import pytest
import torch

from dcatkit.attention import SelfAttention
from dcatkit.encoders import AudioEncoder, FrameEncoder, IMUEncoder
from dcatkit.model import build_model
from dcatkit.presets import TABLE_I, get_preset


def test_self_attention_matches_formula():
    torch.manual_seed(0)
    att = SelfAttention(6, 4)
    e = torch.randn(2, 5, 6)
    out, q, k, v = att(e)
    assert torch.allclose(q, e @ att.w_q.weight.T) and torch.allclose(k, e @ att.w_k.weight.T)
    assert torch.allclose(v, e @ att.w_v.weight.T)                   # V from W_V (D-CAT's K^T V reads it)
    # Eq. (2), written out element by element for one sample, from the weights alone
    Q, K, V = (e[0] @ w.weight.T for w in (att.w_q, att.w_k, att.w_v))
    s = torch.zeros(5, 5)
    for i in range(5):
        for j in range(5):
            s[i, j] = (Q[i] * K[j]).sum() / math.sqrt(4)
    ref = torch.softmax(s, -1) @ V
    assert torch.allclose(out[0], ref, atol=1e-6)
    assert out.shape == q.shape == k.shape == v.shape == (2, 5, 4)


@pytest.mark.parametrize("modality,shape", [("imu", (6, 64)), ("video", (4, 3, 32, 32))])
def test_classifier_hands_out_the_attention_q_k_v(modality, shape):
    """The Q, K, V a classifier returns (what D-CAT's loss reads) are the projections of its
    encoder's embeddings by W_Q, W_K, W_V, computed here from the weights alone; and logits
    and pooled follow from the attention output (mean over time, head; eval: no dropout)."""
    torch.manual_seed(3)
    model = build_model(modality, 5, shape, get_preset("synthetic", modality)).eval()
    x = torch.rand(2, *shape)
    with torch.no_grad():
        out = model(x)
        e = model.encoder(x)
        att = model.attention
        q, k, v = (e @ w.weight.T for w in (att.w_q, att.w_k, att.w_v))
        a = torch.softmax(q @ k.mT / math.sqrt(att.d_out), -1) @ v
    for got, want in ((out.q, q), (out.k, k), (out.v, v), (out.pooled, a.mean(1)),
                      (out.logits, model.head(a.mean(1)))):
        assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(out.k, out.q) and not torch.allclose(out.k, out.v)


def test_self_attention_permutation_equivariant():
    torch.manual_seed(1)
    att = SelfAttention(8, 8)
    e = torch.randn(1, 6, 8)
    perm = torch.randperm(6)
    assert torch.allclose(att(e).out[:, perm], att(e[:, perm]).out, atol=1e-6)


@pytest.mark.parametrize("channels,length", [(6, 64), (3, 20), (9, 70)])
def test_imu_encoder_shapes(channels, length):
    enc = IMUEncoder(in_channels=channels, d_model=16, hidden=8)
    assert enc(torch.randn(2, channels, length)).shape == (2, length // 4, 16)


def test_frame_encoder_shapes_and_uint8():
    enc = FrameEncoder(depth=10).eval()
    x = torch.randint(0, 256, (2, 3, 3, 32, 32), dtype=torch.uint8)
    out = enc(x)
    assert out.shape == (2, 3, 512)
    assert torch.allclose(out, enc(x.float() / 255), atol=1e-5)   # uint8 and [0,1] floats agree
    assert FrameEncoder(depth=50).d_model == 2048


def test_frame_encoder_local_weights(tmp_path):
    src = FrameEncoder(depth=10)
    path = tmp_path / "r10.pt"
    torch.save(src.backbone.state_dict(), path)
    dst = FrameEncoder(depth=10, weights_path=path)
    assert torch.equal(dst.backbone.conv1.weight, src.backbone.conv1.weight)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        FrameEncoder(depth=10, weights_path=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match=r"does not fit a torchvision ResNet-18: missing .*looks like a ResNet-10"):
        FrameEncoder(depth=18, weights_path=path)


def test_audio_encoder_shapes_and_specaugment():
    enc = AudioEncoder("cnn6", sample_rate=8000, n_fft=256, hop_length=128, n_mels=32, f_max=4000, width=0.125)
    wav = torch.randn(2, 8000)
    enc.eval()
    out = enc(wav)
    assert out.shape[0] == 2 and out.shape[2] == enc.d_model == 64
    assert out.shape[1] == (8000 // 128 + 1) // 16                 # 4 pooling blocks over time
    assert torch.equal(out, enc(wav))                               # eval: no SpecAugment, deterministic
    assert torch.allclose(enc(enc.frontend(wav)), out, atol=1e-5)   # precomputed log-mel accepted
    enc.train()
    torch.manual_seed(0)
    a = enc(wav)
    torch.manual_seed(1)
    assert not torch.allclose(a, enc(wav))                          # training: random masks
    assert AudioEncoder("cnn14", width=0.0625).d_model == 128


def test_imu_and_video_time_lengths_differ():
    """T_t != T_s: a 64-step IMU window gives 16 steps, 4 frames give 4."""
    imu = build_model("imu", 8, (6, 64), get_preset("synthetic", "imu"))
    vid = build_model("video", 8, (4, 3, 32, 32), get_preset("synthetic", "video"))
    o_i = imu(torch.randn(2, 6, 64))
    o_v = vid(torch.randint(0, 255, (2, 4, 3, 32, 32), dtype=torch.uint8))
    assert o_i.k.shape == (2, 16, 128) and o_v.k.shape == (2, 4, 128)
    assert o_i.logits.shape == o_v.logits.shape == (2, 8)


def test_bad_parameters_rejected():
    with pytest.raises(ValueError, match="depth must be one of"):
        FrameEncoder(depth=12)
    with pytest.raises(ValueError, match="audio arch"):
        AudioEncoder("cnn99")
    with pytest.raises(ValueError, match=r"expects \(B, 6, L\)"):
        IMUEncoder(6)(torch.randn(2, 3, 64))
    with pytest.raises(ValueError, match="unknown modality"):
        build_model("lidar", 8, (6, 64), get_preset("synthetic", "imu"))
    with pytest.raises(ValueError, match="num_classes"):
        build_model("imu", 1, (6, 64), get_preset("synthetic", "imu"))
    with pytest.raises(ValueError, match=r"preset 'paper' is Table I's row .* got dataset=None"):
        get_preset("paper", "imu")
    # your own sensors: it read "no preset 'arrays' ... valid names are (..., 'paper', ...)"
    with pytest.raises(ValueError, match=r"got dataset='arrays': for other data use 'synthetic'"):
        get_preset("paper", "gyro", "arrays", kind="timeseries")
    with pytest.raises(ValueError, match="no preset"):
        get_preset("uestc", "audio")
    with pytest.raises(ValueError, match="unknown preset fields"):
        get_preset("synthetic", "imu").with_(epoch=3)


def test_table_one():
    p = get_preset("paper", "imu", "uestc")
    assert (p.epochs, p.lr, p.dropout, p.batch_size, p.weight_decay, p.window, p.seed) == (10, 5e-4, 0.8, 16, 0.005, 70, 11)
    assert get_preset("vggsound", "audio").epochs == 150 and get_preset("cough", "audio").window == 0.5
    assert all(p.d_attn == 512 for p in TABLE_I.values()) and len(TABLE_I) == 6
    assert get_preset("uestc", "video").encoder["depth"] == 101
    assert all(get_preset(d, "audio").encoder["frontend"] == "panns" for d in ("cough", "vggsound"))


@pytest.mark.parametrize("dataset", ["cough", "vggsound"])
def test_paper_audio_presets_fit_their_windows(dataset):
    """Table I's audio windows (0.5 s, 2 s) at the loaders' 16 kHz go through Cnn14's six poolings."""
    p = get_preset("paper", "audio", dataset)
    n = int(p.window * 16000)
    model = build_model("audio", 8, (n,), p, sample_rate=16000, width=0.0625).eval()
    out = model(torch.randn(1, n))
    assert out.logits.shape == (1, 8) and out.k.shape[1] >= 1


def test_imu_encoder_keeps_time_local():
    """Output step j of the IMU encoder sees only the input around steps 4j..4j+3 (three
    k=5 convolutions and two poolings: a receptive field of a few dozen steps), so a change
    in the first quarter of a window leaves the last half of the output unchanged, and a
    change in the last quarter the first half. The embedding axis is not mixed with time
    (a reshape in place of the transpose would move later channels into early steps)."""
    torch.manual_seed(0)
    enc = IMUEncoder(in_channels=3, d_model=16, hidden=8).eval()
    x = torch.randn(2, 3, 256)
    y = x.clone()
    y[..., :64] += torch.randn(2, 3, 64)                           # input steps 0..63 -> output steps 0..~22
    z = x.clone()
    z[..., 192:] += torch.randn(2, 3, 64)                          # input steps 192..255 -> output steps ~42..63
    with torch.no_grad():
        ox, oy, oz = enc(x), enc(y), enc(z)
    assert ox.shape == (2, 64, 16)
    assert torch.equal(oy[:, 32:], ox[:, 32:]) and not torch.allclose(oy[:, :16], ox[:, :16])
    assert torch.equal(oz[:, :32], ox[:, :32]) and not torch.allclose(oz[:, 48:], ox[:, 48:])


def test_logmel_f_max_above_nyquist_is_nyquist():
    """A mel top above half the sample rate has nothing to measure there: it is clamped to
    sample_rate / 2, so the filterbank is that of f_max = Nyquist (no all-zero filters)."""
    from dcatkit.encoders import LogMel

    wav = torch.randn(1, 4000)
    high = LogMel(sample_rate=8000, n_fft=256, hop_length=128, n_mels=32, f_max=14000.0)
    nyq = LogMel(sample_rate=8000, n_fft=256, hop_length=128, n_mels=32, f_max=4000.0)
    assert torch.equal(high.filterbank, nyq.filterbank) and (high.filterbank.sum(0) > 0).all()
    assert torch.equal(high(wav), nyq(wav))


def test_resnet_depth_is_read_from_a_state_dicts_blocks():
    """The hint for a file that does not fit names the depth its keys describe: block type
    (Bottleneck has conv3) and block counts per stage; ResNet-34 and ResNet-50 have the same
    counts (3, 4, 6, 3) and differ only by block type."""
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    from dcatkit.encoders import _resnet_depth_of

    spec = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3]),
            101: (Bottleneck, [3, 4, 23, 3])}                     # torchvision's definitions
    for depth, (block, layers) in spec.items():
        with torch.device("meta"):                                 # keys and shapes only, no memory
            sd = ResNet(block, layers).state_dict()
        assert _resnet_depth_of(sd) == depth


# Table I of the paper, transcribed: (epochs, learning rate, dropout, batch size, weight decay,
# window, stride, seed); window = stride as the table gives one "Window/Stride Length".
PAPER_TABLE_I = {
    ("uestc", "imu"): (10, 5e-4, 0.8, 16, 0.005, 70, 70, 11),
    ("uestc", "video"): (100, 5e-4, 0.8, 8, 0.005, 30, 30, 17),
    ("cough", "imu"): (10, 1e-4, 0.8, 32, 0.001, 60, 60, 7),
    ("cough", "audio"): (100, 1e-4, 0.6, 32, 0.0001, 0.5, 0.5, 17),
    ("vggsound", "video"): (100, 1e-4, 0.5, 8, 0.005, 30, 30, 17),
    ("vggsound", "audio"): (150, 1e-4, 0.5, 8, 0.0, 2.0, 2.0, 11),
}


@pytest.mark.parametrize("dataset, modality", sorted(PAPER_TABLE_I))
def test_every_table_one_row_is_the_papers(dataset, modality):
    p = get_preset("paper", modality, dataset)
    assert p is TABLE_I[(dataset, modality)] and p.d_attn == 512
    assert (p.epochs, p.lr, p.dropout, p.batch_size, p.weight_decay, p.window, p.stride, p.seed) == \
        PAPER_TABLE_I[(dataset, modality)]


def test_a_logmel_input_sets_n_mels_and_rebuilds_the_same():
    """Precomputed log-mels (n_mels, frames) with another bin count than the preset's (32
    synthetic, 64 paper) build an encoder of that many bins (it built one of the preset's, and
    failed at the first batch "expects (B, 32, F), got (32, 40, 64)"); the config records it and
    a checkpoint rebuilds the same model. A waveform keeps the preset's front end. Too few frames
    or too few mel bins for the CNN's poolings are each refused at build time (not at the first
    batch, deep in the encoder)."""
    import tempfile
    from pathlib import Path

    from dcatkit.checkpoint import load_checkpoint, save_checkpoint
    from dcatkit.model import build_encoder, model_from_config

    p = get_preset("synthetic", "mel", kind="audio")
    torch.manual_seed(0)
    model = build_model("mel", 3, (40, 64), p, kind="audio").eval()
    assert model.encoder.frontend.n_mels == 40 and model.encoder.bn0.num_features == 40
    assert model.config["encoder"]["n_mels"] == 40 and model.config["input_shape"] == [40, 64]
    assert build_encoder("mel", (40, 64), p.encoder, "audio").frontend.n_mels == 40   # the shape, not the kwargs
    x = torch.randn(2, 40, 64)
    with torch.no_grad():
        out = model(x).logits
    assert out.shape == (2, 3)
    again = model_from_config(model.config).eval()
    again.load_state_dict(model.state_dict())
    with tempfile.TemporaryDirectory() as d:
        save_checkpoint(Path(d) / "m.pt", model, {})
        back, _ = load_checkpoint(Path(d) / "m.pt")
    with torch.no_grad():
        assert torch.equal(again(x).logits, out) and torch.equal(back.eval()(x).logits, out)
    wave = build_model("mic", 3, (8000,), p, kind="audio")          # a waveform: unchanged
    assert wave.encoder.frontend.n_mels == 32 and wave.config["encoder"] == p.encoder
    # too few frames for cnn6's four 2x2 poolings: said at build time, with what is needed
    with pytest.raises(ValueError, match=r"log-mel sample of shape \(40, 10\).*need >= 16 mel bins and >= 16 frames"):
        build_model("mel", 3, (40, 10), p, kind="audio")
    with pytest.raises(ValueError, match=r"log-mel sample of shape \(10, 64\).*need >= 16 mel bins"):
        build_model("mel", 3, (10, 64), p, kind="audio")                 # enough frames, too few mel bins
    with pytest.raises(ValueError, match=r"log-mels of 40 mel bins .*n_mels=64 was passed"):
        build_model("mel", 3, (40, 64), p, kind="audio", n_mels=64)


def test_stereo_waveforms_given_as_audio_samples_are_refused_naming_the_mono_mix():
    """Stereo audio (N, 2, S) or (N, S, 2) passes from_arrays as log-mels (an audio sample may be
    (n_mels, frames)) and is refused when the model is built; the refusal said only "use longer
    windows, more mel bins", and now names the mix to mono over the axis the channels are on."""
    import numpy as np

    from dcatkit.data import from_arrays
    from dcatkit.experiment import _build

    p = get_preset("synthetic", "audio")
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, (12, 2, 4000)).astype(np.float32)
    kw = dict(groups="samples", sample_rates={"audio": 8000})
    for x, axis in ((stereo, 1), (stereo.transpose(0, 2, 1), 2)):
        splits = from_arrays({"audio": x}, np.arange(12) % 2, **kw)
        with pytest.raises(ValueError, match=rf"too small .*If the samples are waveforms of 2 channels, .*mix them "
                                             rf"to mono first: x.mean\(axis={axis}\) of the \(N, .*\) array"):
            _build("audio", splits.train, p)
        mono = from_arrays({"audio": x.mean(axis=axis)}, np.arange(12) % 2, **kw)
        assert _build("audio", mono.train, p).config["input_shape"] == [4000]
    with pytest.raises(ValueError, match=r"shape \(40, 10\).*smaller arch \(cnn6: 16, cnn10: 16, cnn14: 32\)$"):
        build_model("mel", 3, (40, 10), get_preset("synthetic", "mel", kind="audio"), kind="audio")   # no channels


def test_a_rebuilt_model_keeps_the_dropout_its_config_records(tmp_path):
    """model_from_config, and so load_checkpoint, builds the head's dropout with the rate the
    config records (the preset's), not a fixed one: a model read back from its checkpoint and
    trained on further regularises as the preset says, as the one saved did."""
    from dcatkit.checkpoint import load_checkpoint, save_checkpoint
    from dcatkit.model import model_from_config

    model = build_model("imu", 3, (6, 64), get_preset("synthetic", "imu").with_(dropout=0.15))
    assert model.dropout.p == 0.15 and model.config["dropout"] == 0.15
    assert model_from_config(model.config).dropout.p == 0.15
    save_checkpoint(tmp_path / "m.pt", model, {})
    assert load_checkpoint(tmp_path / "m.pt")[0].dropout.p == 0.15


def test_panns_front_end_follows_the_data_rate():
    """The data's rate replaces the preset's; a PANNs front end keeps its window and hop in
    seconds (VGGSound's 32 kHz 1024 / 320 -> 512 / 160 at 16 kHz, PANNs' Cnn14_16k's), what the
    caller passes wins, and other front ends and the preset's own rate are unchanged. The new
    window and hop are rounded to the nearest sample, not truncated (1024 * 11025 / 32000 = 352.8
    -> 353), so the window in seconds is as close to PANNs' as the rate allows."""
    from dcatkit.presets import audio_encoder_at_rate

    def fe(model):
        m = model.encoder.frontend
        return m.sample_rate, m.mel.n_fft, m.mel.hop_length

    vgg, cough, syn = (get_preset(d, "audio") for d in ("vggsound", "cough", "synthetic"))
    small = {"width": 0.0625}
    assert fe(build_model("audio", 3, (32000,), vgg, sample_rate=16000, **small)) == (16000, 512, 160)
    assert fe(build_model("audio", 3, (32000,), vgg, sample_rate=32000, **small)) == (32000, 1024, 320)
    assert fe(build_model("audio", 3, (8000,), cough, sample_rate=16000, **small)) == (16000, 512, 80)
    assert fe(build_model("audio", 3, (16000,), cough, sample_rate=32000, **small)) == (32000, 1024, 160)
    assert fe(build_model("audio", 3, (32000,), vgg, sample_rate=16000, n_fft=1024, **small)) == (16000, 1024, 160)
    assert fe(build_model("audio", 3, (8000,), syn, sample_rate=16000)) == (16000, 256, 128)   # torchaudio's
    assert audio_encoder_at_rate(vgg.encoder, 8000)["n_fft"] == 256          # PANNs' Cnn14_8k: 256 / 80
    assert audio_encoder_at_rate(vgg.encoder, 8000)["hop_length"] == 80
    assert vgg.encoder["sample_rate"] == 32000                                # the preset itself is untouched
    at = {r: audio_encoder_at_rate(vgg.encoder, r) for r in (11025, 22050)}
    assert (at[11025]["n_fft"], at[11025]["hop_length"]) == (353, 110)         # 352.8 -> 353, 110.25 -> 110
    assert (at[22050]["n_fft"], at[22050]["hop_length"]) == (706, 220)         # 705.6 -> 706, 220.5 -> 220


def test_train_unimodal_builds_the_vggsound_front_end_at_the_datas_rate():
    """Through experiment: 16 kHz data (load_vggsound's default) gets PANNs' 16 kHz front end."""
    import numpy as np

    from dcatkit.data import from_arrays
    from dcatkit.experiment import train_unimodal

    rng = np.random.default_rng(0)
    n = 18
    x = (0.1 * rng.standard_normal((n, 32000))).astype(np.float32)          # 2 s at 16 kHz
    splits = from_arrays({"audio": x}, np.arange(n) % 3, sample_rates={"audio": 16000}, groups="samples",
                         split="id")
    p = get_preset("vggsound", "audio")
    p = p.with_(batch_size=8, encoder={**p.encoder, "width": 0.0625})
    run = train_unimodal(splits, "audio", preset=p, epochs=1, progress=False, device="cpu")
    mel = run.model.encoder.frontend.mel
    assert (mel.sample_rate, mel.n_fft, mel.hop_length) == (16000, 512, 160)


def test_an_audio_sensor_without_a_sample_rate_is_refused_before_a_model_is_built():
    """A named audio sensor given without ``sample_rates=`` has no rate: its mel front end
    would be the preset's (32 kHz for vggsound) over 16 kHz waveforms, another filterbank,
    silently. Training refuses it, naming the sensor and the fix; with the rate it trains."""
    import numpy as np

    from dcatkit.data import from_arrays
    from dcatkit.experiment import train_unimodal

    rng = np.random.default_rng(0)
    n = 12
    x = (0.1 * rng.standard_normal((n, 8000))).astype(np.float32)
    p = get_preset("vggsound", "audio")
    p = p.with_(batch_size=8, encoder={**p.encoder, "width": 0.0625})
    kw = dict(kinds={"mic": "audio"}, groups="samples", split="id")
    splits = from_arrays({"mic": x}, np.arange(n) % 3, **kw)
    with pytest.raises(ValueError, match=r"audio modality 'mic' records no sample rate.*sample_rates=\{'mic': "):
        train_unimodal(splits, "mic", preset=p, epochs=1, progress=False, device="cpu")
    splits = from_arrays({"mic": x}, np.arange(n) % 3, sample_rates={"mic": 8000}, **kw)
    run = train_unimodal(splits, "mic", preset=p, epochs=1, progress=False, device="cpu")
    assert run.model.encoder.frontend.mel.sample_rate == 8000


def test_loader_defaults_are_the_windows_table_one_records():
    """Preset.window / stride record Table I; the loaders' arguments cut the windows. Their
    defaults must be the same numbers, or the record would be false."""
    import inspect

    from dcatkit.data.cough import load_cough
    from dcatkit.data.uestc import load_uestc
    from dcatkit.data.vggsound import load_vggsound

    def default(f, name):
        return inspect.signature(f).parameters[name].default

    assert default(load_uestc, "imu_window") == TABLE_I[("uestc", "imu")].window == TABLE_I[("uestc", "imu")].stride
    assert default(load_uestc, "imu_stride") is None and default(load_uestc, "frames") == TABLE_I[("uestc", "video")].window
    assert default(load_cough, "imu_window") == TABLE_I[("cough", "imu")].window
    assert default(load_cough, "window_s") == TABLE_I[("cough", "audio")].window and default(load_cough, "stride_s") is None
    assert default(load_vggsound, "window_s") == TABLE_I[("vggsound", "audio")].window
    assert default(load_vggsound, "frames") == TABLE_I[("vggsound", "video")].window
    assert default(load_vggsound, "stride_s") is None


def test_self_attention_refuses_empty_sizes():
    """d_model and d_out must be >= 1: nn.Linear builds a zero-sized projection without a word
    (d_out=0 would hand out empty Q, K and V); the message gives both values."""
    with pytest.raises(ValueError) as e:
        SelfAttention(8, 0)
    assert str(e.value) == "d_model and d_out must be positive, got 8 and 0"
    with pytest.raises(ValueError) as e:
        SelfAttention(0, 8)
    assert str(e.value) == "d_model and d_out must be positive, got 0 and 8"
    assert SelfAttention(1, 1).w_k.weight.shape == (1, 1)
