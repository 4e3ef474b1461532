"""Encoders: sizes and inputs that have no meaning are refused with a clear ValueError (not
accepted, nor left to fail deep inside torch), the dropout passed is the one applied, and the
audio CNNs pool as PANNs' do (Cnn6: one 5x5 conv per block; Cnn14: five 2x2 poolings)."""
import pytest
import torch
from torch import nn

from dcatkit.encoders import AudioEncoder, FeatureEncoder, FrameEncoder, IMUEncoder, logmel_min_size


@pytest.mark.parametrize("build, message", [
    (lambda: IMUEncoder(in_channels=0), "in_channels must be >= 1"),
    (lambda: IMUEncoder(3, kernel_size=4), "kernel_size must be odd"),
    (lambda: AudioEncoder("cnn6", width=0.0), "width must be > 0"),
    (lambda: FeatureEncoder(3, d_model=0), "d_model >= 1"),
    (lambda: FeatureEncoder(3, hidden=-1), "hidden must be >= 0"),
])
def test_sizes_without_a_meaning_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_imu_encoder_takes_windows_of_four_steps_or_more():
    """Two 2x poolings: 4 steps give one output step; 3 would give none (an empty sequence
    for the attention), so they are refused."""
    enc = IMUEncoder(3, d_model=8, hidden=4).eval()
    assert enc(torch.randn(2, 3, 4)).shape == (2, 1, 8)
    with pytest.raises(ValueError, match="at least 4 time steps, got 3"):
        enc(torch.randn(2, 3, 3))


def _dropout_only(enc: nn.Module) -> nn.Module:
    """enc in eval mode (running BN statistics) with its Dropout layers alone in training mode."""
    enc.eval()
    for m in enc.modules():
        if isinstance(m, nn.Dropout):
            m.train()
    return enc


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_imu_encoder_applies_the_dropout_passed(p):
    """Against the same encoder without dropout (eval), every positive output is either dropped
    (0) or scaled by 1 / (1 - p), and about a fraction p of them is dropped."""
    torch.manual_seed(0)
    enc = IMUEncoder(3, d_model=32, hidden=8, dropout=p)
    x = torch.randn(8, 3, 64)
    with torch.no_grad():
        plain = enc.eval()(x)
        dropped = _dropout_only(enc)(x)
    pos = plain > 0
    ratio = dropped[pos] / plain[pos]
    kept = ratio != 0
    assert torch.allclose(ratio[kept], torch.full_like(ratio[kept], 1 / (1 - p)), rtol=1e-5)
    assert abs((~kept).float().mean().item() - p) < 0.05, (~kept).float().mean()


def test_frame_encoder_refuses_frames_with_channels_last():
    """(B, T, H, W, 3) frames (a decoder's layout) are said to be the wrong layout."""
    enc = FrameEncoder(depth=10)
    with pytest.raises(ValueError, match=r"expects \(B, T, 3, H, W\), got \(2, 4, 32, 32, 3\)"):
        enc(torch.rand(2, 4, 32, 32, 3))


def test_audio_blocks_are_panns():
    """PANNs (Kong et al. 2020): Cnn6 stacks ConvBlock5x5 (one 5x5 conv-BN-ReLU per block),
    Cnn10 and Cnn14 ConvBlock (two 3x3 conv-BN-ReLU per block)."""
    for arch, n_convs, k in (("cnn6", 1, 5), ("cnn10", 2, 3), ("cnn14", 2, 3)):
        enc = AudioEncoder(arch, width=1 / 16)
        for blk in enc.blocks:
            convs = [m for m in blk.modules() if isinstance(m, nn.Conv2d)]
            assert len(convs) == n_convs and all(c.kernel_size == (k, k) for c in convs), arch


def test_cnn14_pools_five_times_as_panns():
    """PANNs' Cnn14 has six conv blocks and 2x2 pooling after the first five only: a log-mel of
    32 frames and 32 mel bins is enough (one output step per 32 frames); 31 frames are not."""
    assert logmel_min_size("cnn14") == 2 ** 5 and logmel_min_size("cnn6") == 2 ** 4
    enc = AudioEncoder("cnn14", n_mels=32, width=1 / 32, spec_augment=False).eval()
    with torch.no_grad():
        assert enc(torch.randn(1, 32, 40)).shape[1] == 40 // 32
        assert enc(torch.randn(1, 32, 64)).shape[1] == 64 // 32
    with pytest.raises(ValueError, match="audio too short for 5 pooling blocks"):
        enc(torch.randn(1, 32, 31))


def test_too_few_mel_bins_are_refused_by_the_audio_encoder():
    """A log-mel of 8 mel bins cannot go through Cnn6's four 2x2 poolings: a ValueError that says
    so, not torch's error from inside the third pooling."""
    enc = AudioEncoder("cnn6", n_mels=8, width=0.125, sample_rate=8000, n_fft=256, hop_length=128,
                       f_max=4000.0).eval()
    with pytest.raises(ValueError, match=r"64 frames x 8 mel bins, need >= 16 of each"):
        enc(torch.randn(1, 8, 64))


def test_spec_augment_masks_only_in_training():
    """With every dropout off and batch norms in training mode (both deterministic), the
    training-mode output still changes with the random seed (SpecAugment's masks) unless
    ``spec_augment=False``; in eval mode it never does."""
    def outputs(spec_augment, train):
        torch.manual_seed(0)
        enc = AudioEncoder("cnn6", sample_rate=8000, n_fft=256, hop_length=128, n_mels=32, f_max=4000.0,
                           width=0.125, spec_augment=spec_augment).train(train)
        for m in enc.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        wav = torch.randn(2, 8000, generator=torch.Generator().manual_seed(3))
        got = []
        for seed in range(4):
            torch.manual_seed(seed)
            with torch.no_grad():
                got.append(enc(wav))
        return got

    masked = outputs(True, True)
    assert any(not torch.equal(masked[0], o) for o in masked[1:])
    for spec_augment, train in ((False, True), (True, False)):
        same = outputs(spec_augment, train)
        assert all(torch.equal(same[0], o) for o in same[1:]), (spec_augment, train)
