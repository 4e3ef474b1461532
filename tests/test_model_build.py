"""The classifier: head sizes and rates without a meaning are refused, a precomputed log-mel is
checked against the encoder it will really get (AudioEncoder's default Cnn14 when the kwargs
name no arch), and a config rebuilt with pretrained=True reads the weights file it records."""
import pytest
import torch

from dcatkit.encoders import FrameEncoder, IMUEncoder
from dcatkit.model import Classifier, build_encoder, build_model, model_from_config
from dcatkit.presets import get_preset


@pytest.mark.parametrize("kwargs, message", [
    (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), r"dropout must be in \[0, 1\)"),
    (dict(d_attn=0), "d_model and d_out must be positive"),
])
def test_head_settings_without_a_meaning_are_refused(kwargs, message):
    """dropout 1.0 would zero every pooled feature (the head would see nothing); an attention
    of size 0 would hand out empty Q, K and V."""
    with pytest.raises(ValueError, match=message):
        Classifier(IMUEncoder(3, d_model=8, hidden=4), 3, **{"d_attn": 4, **kwargs})


def test_a_logmel_is_checked_against_the_default_arch_when_none_is_named():
    """Encoder kwargs without ``arch`` build AudioEncoder's default, Cnn14 (32 frames needed):
    a (64, 20) log-mel is refused at build time with Cnn14's need, and (64, 40) builds a Cnn14."""
    assert build_encoder("mel", (64, 40), {"width": 1 / 32}, "audio").arch == "cnn14"
    with pytest.raises(ValueError, match=r"\(64, 20\).*encoder 'cnn14'.*need >= 32 mel bins and >= 32 frames"):
        build_encoder("mel", (64, 20), {"width": 1 / 32}, "audio")


def test_a_config_rebuilt_with_pretrained_weights_reads_them(tmp_path):
    """model_from_config(config) (pretrained=True, the default) starts from the weights file the
    config records; pretrained=False starts from a fresh random init instead."""
    torch.manual_seed(0)
    file_weights = FrameEncoder(depth=10).backbone.state_dict()
    path = tmp_path / "r10.pth"
    torch.save(file_weights, path)
    model = build_model("video", 4, (2, 3, 32, 32), get_preset("synthetic", "video"), weights_path=str(path))
    want = file_weights["conv1.weight"]
    torch.manual_seed(1)
    assert torch.equal(model_from_config(model.config).encoder.backbone.conv1.weight, want)
    torch.manual_seed(1)
    assert not torch.equal(model_from_config(model.config, pretrained=False).encoder.backbone.conv1.weight, want)


def test_encoder_overrides_win_over_the_presets_kwargs():
    """build_model's encoder_overrides replace the preset's encoder kwargs of the same name (the
    synthetic IMU preset has hidden 32 and d_model 64; its video preset depth 10) and the config
    records the kwargs as built."""
    imu = build_model("imu", 3, (6, 64), get_preset("synthetic", "imu"), hidden=8, d_model=24)
    assert imu.encoder.d_model == 24 and imu.attention.w_q.in_features == 24
    assert imu.encoder.net[0].out_channels == 8
    assert imu.config["encoder"] == {**get_preset("synthetic", "imu").encoder, "hidden": 8, "d_model": 24}
    video = build_model("video", 3, (2, 3, 32, 32), get_preset("synthetic", "video"), depth=18)
    assert video.encoder.depth == 18 and video.config["encoder"]["depth"] == 18


@pytest.mark.parametrize("length", [1, 3])
def test_a_timeseries_window_shorter_than_the_cnn_pools_is_refused_at_build_naming_the_sensor(length):
    """A timeseries sensor of 1-3 time steps per window built a model that failed only at its
    first batch ("IMU windows need at least 4 time steps"), naming neither the sensor nor a way
    out; it is refused at build time with both. 4 steps build and run."""
    p = get_preset("synthetic", "imu").with_(d_attn=8, encoder={"hidden": 4, "d_model": 8})
    with pytest.raises(ValueError, match=rf"'ecg L' is a timeseries sensor of {length} time step.*>= 4.*'features'"):
        build_model("ecg L", 3, (1, length), p, kind="timeseries")
    m = build_model("ecg L", 3, (1, 4), p, kind="timeseries").eval()
    assert m(torch.zeros(2, 1, 4)).logits.shape == (2, 3)


def test_a_classifiers_num_classes_is_its_heads_outputs():
    """Classifier.num_classes (read-only) is what the weights fix, the head's outputs, whatever the
    config says (a hand-built Classifier has none); evaluate scores over those classes (it took the
    labels' and predictions' largest + 1 when the config said nothing, so a class never predicted
    nor present was left out of the confusion matrix)."""
    import numpy as np

    from dcatkit.data.splits import from_arrays
    from dcatkit.train import evaluate

    assert build_model("imu", 5, (3, 64), get_preset("synthetic", "imu"), hidden=8, d_model=24).num_classes == 5
    model = Classifier(IMUEncoder(3, d_model=8, hidden=4), 5, d_attn=4)
    assert model.num_classes == 5
    model.config = {"num_classes": 7}                     # a config that disagrees with the weights
    assert model.num_classes == 5
    with pytest.raises(AttributeError):
        model.num_classes = 3
    sp = from_arrays({"acc": np.random.default_rng(0).normal(size=(24, 3, 16)).astype(np.float32)}, np.repeat(np.arange(4), 6), groups="samples",
                     kinds={"acc": "timeseries"})
    model.config = {}
    with torch.no_grad():                                 # predicts class 0 for every sample
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([1.0, 0, 0, 0, 0]))
    with pytest.warns(UserWarning, match="have no sample"):
        assert evaluate(model, sp.train, "acc", device="cpu")["confusion"].shape == (5, 5)
