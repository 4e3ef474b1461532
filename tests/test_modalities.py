"""Named modalities with a kind: the registry, from_arrays with any names, per-modality
timeseries normalisation (checked against a direct numpy computation), and bad input."""
import io

import numpy as np
import pytest
import torch

import dcatkit
import dcatkit.data as D
from dcatkit import modalities as M
from dcatkit.data.dataset import PairedDataset
from dcatkit.encoders import FeatureEncoder
from dcatkit.experiment import train_transfer, train_unimodal
from dcatkit.model import build_model, model_from_config
from dcatkit.presets import SYNTHETIC, TABLE_I, get_preset
from dcatkit.provenance import SourceMismatch
from dcatkit.train import load_checkpoint, save_checkpoint
from helpers import TINY
from helpers import rows_of


def _sensors(n=120, k=3, seed=0):
    """acc and gyro with very different per-channel ranges, so one modality's statistics
    applied to the other would be visibly wrong; labels cycle through k classes."""
    rng = np.random.default_rng(seed)
    acc = (rng.normal(size=(n, 3, 16)) * np.array([1.0, 5.0, 20.0])[:, None] + 3.0).astype(np.float32)
    gyro = (rng.normal(size=(n, 2, 16)) * np.array([100.0, 0.1])[:, None] - 50.0).astype(np.float32)
    return {"acc": acc, "gyro": gyro}, np.arange(n) % k


KINDS2 = {"acc": "timeseries", "gyro": "timeseries"}


# ------------------------------------------------------------------ the registry


def test_default_kinds_and_given_kinds():
    assert [M.kind_of(m) for m in ("imu", "video", "audio")] == ["timeseries", "video", "audio"]
    assert M.kind_of("gyro", {"gyro": "timeseries"}) == "timeseries"
    assert M.kind_of("imu", {"imu": "features"}) == "features"           # a given kind wins over the default
    assert M.resolve_kinds(["acc", "imu"], {"acc": "features"}) == {"acc": "features", "imu": "timeseries"}
    assert set(M.KINDS) == {"timeseries", "video", "audio", "features"}


@pytest.mark.parametrize("call, message", [
    (lambda: M.kind_of("gyro"), r"modality 'gyro' has no kind.*kinds=\{'gyro': 'timeseries'\}"),
    (lambda: M.kind_of("gyro", {"gyro": "imu"}), r"unknown modality kind 'imu': expected one of"),
    # a preset asked for an unknown kind: the same ValueError, not a bare KeyError of the preset table
    (lambda: get_preset("synthetic", "acc", kind="sensor"), r"^unknown modality kind 'sensor': expected one of"),
    (lambda: M.kind_of("label", {"label": "timeseries"}), r"'label' cannot name a modality"),
    (lambda: M.kind_of("", {"": "timeseries"}), "non-empty string"),
    (lambda: M.resolve_kinds(["acc"], {"acc": "timeseries", "gyr": "timeseries"}),
     r"kinds= names \['gyr'\], which the data does not have: its modalities are \['acc'\]"),
])
def test_registry_errors_say_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name, why", [
    ("../acc", f"holds {'/'!r}"), ("a\\b", f"holds {chr(92)!r}"), ("a=b", "holds '='"), (".acc", "starts with '.'"),
    (" acc", "starts or ends with a space"), ("acc\n", f"holds {chr(10)!r}"), ("a\tb", f"holds {chr(9)!r}"),
])
def test_a_name_that_cannot_be_a_file_name_or_a_cli_key_is_refused_where_the_data_is_made(name, why):
    """A sweep writes a source to sources/<name>_<key>.pt ('../acc' wrote outside its folder) and the
    command line reads --lam NAME=VALUE ('a=b' could not be given its lambda): such names are refused
    where the data is made, saying why; a space inside a name stays fine."""
    import re

    x = np.zeros((4, 3, 8), np.float32)
    with pytest.raises(ValueError, match=re.escape(f"{name!r} cannot name a modality: it {why}")):
        D.from_arrays({name: x}, [0, 1, 0, 1], kinds={name: "timeseries"}, groups="samples")
    assert M.kind_of("left wrist", {"left wrist": "timeseries"}) == "timeseries"


@pytest.mark.parametrize("kind, good, bad", [
    ("timeseries", (6, 64), (64,)),
    ("video", (4, 3, 8, 8), (4, 8, 8, 3)),
    ("audio", (16000,), (1, 2, 3)),
    ("features", (10, 32), (320,)),
])
def test_sample_shape_per_kind(kind, good, bad):
    assert M.check_sample_shape("x", kind, good) == good
    with pytest.raises(ValueError, match=rf"kind '{kind}': one sample must have shape"):
        M.check_sample_shape("x", kind, bad)
    for axis in range(len(good)):                                   # an empty axis (no channel, no step...)
        empty = tuple(0 if i == axis else s for i, s in enumerate(good))
        with pytest.raises(ValueError, match=rf"kind '{kind}': one sample must have shape"):
            M.check_sample_shape("x", kind, empty)


# ------------------------------------------------------------------ from_arrays with any names


def test_two_timeseries_modalities_each_scaled_with_its_own_train_statistics():
    arrays, labels = _sensors()
    s = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2, seed=1)
    assert s.kinds == {"acc": "timeseries", "gyro": "timeseries"} and s.kind("gyro") == "timeseries"
    assert s.report["kinds"] == s.kinds and set(s.report["normalization"]) == {"acc", "gyro"}
    assert "imu_minmax" not in s.report and s.train.imu_minmax is None      # the old key is imu's alone
    train_rows = rows_of(arrays, s.train.ids)
    for m, raw in arrays.items():
        lo, hi = raw[train_rows].min(axis=(0, 2)), raw[train_rows].max(axis=(0, 2))  # independent reference
        norm = s.normalization[m]
        assert norm["method"] == "minmax" and norm["from"] == "train"
        np.testing.assert_allclose(norm["min"], lo, rtol=1e-6)
        np.testing.assert_allclose(norm["max"], hi, rtol=1e-6)
        for d in s:                                  # all three parts: the same affine map, per channel
            assert d.normalization == s.report["normalization"] and d.kinds == s.kinds
            x = raw[rows_of(arrays, d.ids)]
            np.testing.assert_allclose(d.arrays[m], 2 * (x - lo[:, None]) / (hi - lo)[:, None] - 1, atol=1e-5)
        np.testing.assert_allclose(s.train.arrays[m].min(axis=(0, 2)), -1, atol=1e-6)
        np.testing.assert_allclose(s.train.arrays[m].max(axis=(0, 2)), 1, atol=1e-6)
    item = s.test[0]
    assert item["acc"].shape == (3, 16) and item["gyro"].shape == (2, 16) and item["acc"].dtype == torch.float32


def test_normalize_false_leaves_every_timeseries_raw():
    arrays, labels = _sensors()
    s = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2, normalize=False)
    old = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2, normalize_imu=False)   # the older name
    for split in (s, old):
        assert split.normalization == {}
        rows = rows_of(arrays, split.train.ids)
        np.testing.assert_array_equal(split.train.arrays["gyro"], arrays["gyro"][rows])


def test_defaults_unchanged_and_imu_key_kept_beside_a_named_timeseries():
    rng = np.random.default_rng(3)
    n = 90
    arrays = {"imu": rng.normal(size=(n, 6, 8)).astype(np.float32) * 4,
              "emg": rng.normal(size=(n, 4, 32)).astype(np.float32) * 0.01,
              "video": rng.integers(0, 256, (n, 2, 3, 4, 4), dtype=np.uint8),
              "feat": rng.normal(size=(n, 5, 7)).astype(np.float32) * 9}
    s = D.from_arrays(arrays, np.arange(n) % 3, groups="samples", kinds={"emg": "timeseries", "feat": "features"})
    assert s.kinds == {"imu": "timeseries", "emg": "timeseries", "video": "video", "feat": "features"}
    assert set(s.normalization) == {"imu", "emg"}                      # features and video are not scaled
    assert s.report["imu_minmax"] == {k: v for k, v in s.normalization["imu"].items() if k != "method"}
    assert s.train.imu_minmax == s.report["imu_minmax"]
    rows = rows_of(arrays, s.test.ids)
    np.testing.assert_array_equal(s.test.arrays["feat"], arrays["feat"][rows])    # features as given
    np.testing.assert_array_equal(s.test.arrays["video"], arrays["video"][rows])
    assert s.test[0]["feat"].shape == (5, 7) and s.test[0]["video"].dtype == torch.uint8


def test_subset_and_select_keep_kinds_and_normalization():
    arrays, labels = _sensors()
    s = D.from_arrays(arrays, labels, groups=[f"rec{i // 3}" for i in range(len(labels))], kinds=KINDS2)
    sub = s.train.subset([0, 2, 4])
    assert sub.kinds == s.kinds and sub.normalization == s.normalization
    assert sub.groups == [s.train.groups[i] for i in (0, 2, 4)]     # recordings kept: check_leakage reads them
    only = s.train.select(["gyro"])
    assert only.kinds == {"gyro": "timeseries"} and set(only.normalization) == {"gyro"}
    assert only.groups == s.train.groups and only.ids == s.train.ids
    assert only.input_shape("gyro") == (2, 16)


def test_normalization_is_what_a_checkpoint_can_store():
    arrays, labels = _sensors()
    s = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2)
    buf = io.BytesIO()
    torch.save({"meta": {"normalization": s.report["normalization"], "kinds": s.report["kinds"]}}, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=True)["meta"]             # plain lists / floats / strings only
    assert back == {"normalization": s.report["normalization"], "kinds": s.kinds}


def test_imu_minmax_setter_still_works_for_older_code():
    ds = PairedDataset({"imu": np.zeros((4, 2, 3), np.float32)}, [0, 1, 0, 1], ["a", "b"])
    ds.imu_minmax = {"min": [0, 1], "max": [2, 3], "from": "train"}
    assert ds.normalization["imu"] == {"method": "minmax", "min": [0.0, 1.0], "max": [2.0, 3.0], "from": "train"}
    assert ds.imu_minmax == {"min": [0.0, 1.0], "max": [2.0, 3.0], "from": "train"}


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("change, message", [
    (lambda a, k: ({**a, "gyro": a["gyro"][:-1]}, k),
     r"arrays of different lengths: acc 120, gyro 119 samples, labels 120"),
    (lambda a, k: (a, {"acc": "timeseries", "gyro": "imu"}), r"unknown modality kind 'imu': expected one of"),
    (lambda a, k: (a, {"acc": "timeseries"}), r"modality 'gyro' has no kind"),
    (lambda a, k: (a, {**k, "magnetometer": "timeseries"}), r"kinds= names \['magnetometer'\], which the data"),
    (lambda a, k: ({**a, "gyro": a["gyro"][:, 0]}, k), r"modality 'gyro' is of kind 'timeseries': one sample must"),
    (lambda a, k: ({**a, "gyro": np.where(np.arange(16) == 3, np.nan, a["gyro"])}, k), r"'gyro' has 240 NaN"),
    (lambda a, k: ({**a, "gyro": a["gyro"].astype(str)}, k), r"'gyro' must hold numbers"),
    (lambda a, k: ({"id": a["acc"]}, None), r"'id' cannot name a modality"),
    (lambda a, k: ({}, None), r"at least one modality"),
])
def test_from_arrays_bad_input_says_what_was_expected(change, message):
    arrays, labels = _sensors()
    arrays, kinds = change(arrays, KINDS2)
    with pytest.raises(ValueError, match=message):
        D.from_arrays(arrays, labels, groups="samples", kinds=kinds)


def test_a_name_not_in_the_data_is_a_clear_error():
    arrays, labels = _sensors()
    s = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2)
    for call in (lambda: s.kind("gyr"), lambda: s.train.input_shape("gyr")):
        with pytest.raises(ValueError, match=r"the data has no modality 'gyr': its modalities are \('acc', 'gyro'\)"):
            call()
    with pytest.raises(ValueError, match="asked for missing"):
        s.train.select(["gyr"])


# ------------------------------------------------------------------ deploy follows the kind


def test_predictor_scales_a_named_timeseries_with_its_own_statistics():
    arrays, labels = _sensors()
    s = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2, classes=["a", "b", "c"])
    torch.manual_seed(0)
    model = build_model("gyro", 3, (2, 16), TINY["imu"], kind="timeseries").eval()
    p = dcatkit.Predictor.load(model, classes=s.classes, normalization=s, device="cpu")
    assert p.modality == "gyro" and p.kind == "timeseries" and p.input_shape == (2, 16)
    assert p.normalization["min"] == pytest.approx(s.normalization["gyro"]["min"])
    raw = arrays["gyro"][rows_of(arrays, s.test.ids)]                   # unscaled test windows
    with torch.no_grad():                                               # the pipeline's scaled windows
        ref = model(torch.from_numpy(np.asarray(s.test.arrays["gyro"]))).logits.numpy()
    np.testing.assert_allclose(p.predict(raw).logits, ref, rtol=1e-5, atol=1e-5)
    # the mapping keyed by modality works as well; acc's bounds would not fit (3 channels)
    q = dcatkit.Predictor.load(model, classes=s.classes, normalization=s.normalization, device="cpu")
    assert q.normalization == p.normalization
    with pytest.raises(ValueError, match="records no scaling of 'gyro'"):
        dcatkit.Predictor.load(model, classes=s.classes, normalization=s.train.select(["acc"]), device="cpu")
    # a timeseries model of any name needs its scaling (as imu did), or an explicit None
    with pytest.raises(ValueError, match=r"gyro model \(timeseries\) does not record.*splits.normalization\['gyro'\]"):
        dcatkit.Predictor.load(model, classes=s.classes, device="cpu")


def test_deploy_kind_decides_dtype_and_scaling_not_the_name():
    torch.manual_seed(0)
    ts = build_model("video", 2, (3, 8), TINY["imu"], kind="timeseries")     # a timeseries called 'video'
    p = dcatkit.Predictor.load(ts, classes=["x", "y"], normalization={"min": [0] * 3, "max": [2] * 3}, device="cpu")
    assert p.kind == "timeseries" and p.info["input_dtype"] == "float32"
    x = np.full((1, 3, 8), 2.0, np.float32)                              # the max of each channel -> +1
    with torch.no_grad():
        ref = ts.eval()(torch.ones(1, 3, 8)).logits.numpy()
    np.testing.assert_allclose(p.predict(x).logits, ref, rtol=1e-5, atol=1e-6)
    unknown = build_model("gyro", 2, (3, 8), TINY["imu"], kind="timeseries")
    unknown.config = {k: v for k, v in unknown.config.items() if k != "kind"}      # as if from an older config
    with pytest.raises(ValueError, match=r"'gyro' model's config records no kind"):
        dcatkit.Predictor.load(unknown, classes=["x", "y"], normalization=None)


# ------------------------------------------------------------------ encoders and models by kind


FEAT = TINY["imu"].with_(encoder={"hidden": 8, "d_model": 16})     # sizes for the features encoder


def test_feature_encoder_matches_a_hand_computation_step_by_step():
    torch.manual_seed(0)
    enc = FeatureEncoder(in_features=5, d_model=4, hidden=6).eval()
    with torch.no_grad():                       # non-trivial running statistics and affine parameters
        enc.norm.running_mean.uniform_(-2, 2), enc.norm.running_var.uniform_(0.5, 3)
        enc.norm.weight.uniform_(0.5, 2), enc.norm.bias.uniform_(-1, 1)
    x = torch.randn(3, 7, 5) * 4
    bn, (l1, _, _, l2) = enc.norm, enc.mlp
    ref = torch.stack([torch.stack([                                   # one step of one sample at a time
        l2.weight @ torch.relu(l1.weight @ ((x[b, t] - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
                                            * bn.weight + bn.bias) + l1.bias) + l2.bias
        for t in range(7)]) for b in range(3)])
    out = enc(x)
    assert out.shape == (3, 7, 4)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    one = FeatureEncoder(in_features=5, d_model=4, hidden=0).eval()       # hidden=0: one linear map per step
    torch.testing.assert_close(one(x), one.norm(x.transpose(1, 2)).transpose(1, 2) @ one.mlp.weight.T + one.mlp.bias)
    with pytest.raises(ValueError, match=r"expects \(B, T, 5\), got \(3, 7, 4\)"):
        enc(x[..., :4])


def test_feature_encoder_standardises_raw_features_itself():
    """In training, each feature is standardised over (batch, time): features on any scale and offset
    give the same output, so precomputed vectors need no scaling outside the model (as long as a
    feature's variance is well above BatchNorm's eps, 1e-5)."""
    torch.manual_seed(0)
    enc = FeatureEncoder(in_features=3, d_model=4, hidden=5, dropout=0.0).train()
    x = torch.randn(8, 6, 3)
    scaled = x * torch.tensor([1000.0, 0.5, 7.0]) + torch.tensor([-50.0, 3.0, 1e4])
    torch.testing.assert_close(enc(scaled), enc(x), rtol=1e-3, atol=1e-3)


def test_feature_encoder_evaluates_with_the_training_datas_statistics():
    """What evaluation uses is the training data's mean / variance after any number of steps: with
    BatchNorm's default momentum (0.1, starting from 0) a feature at ~1013 was still ~350 off
    after 10 steps, many standard deviations, and test F1 fell from 0.92 to 0.23 (audit)."""
    torch.manual_seed(0)
    enc = FeatureEncoder(in_features=3, d_model=4, hidden=5, dropout=0.0).train()
    x = torch.randn(80, 6, 3) * torch.tensor([1.0, 0.5, 2.0]) + torch.tensor([1013.0, -40.0, 0.0])
    for batch in x.split(8):                                           # 10 training steps of 8 samples
        enc(batch)
    flat = x.reshape(-1, 3)
    torch.testing.assert_close(enc.norm.running_mean, flat.mean(0), rtol=0, atol=1e-3)
    torch.testing.assert_close(enc.norm.running_var, flat.var(0), rtol=0.1, atol=0)
    standardised = enc.eval().norm(x.transpose(1, 2)).transpose(1, 2)
    assert standardised.mean().abs() < 0.05 and (standardised.std() - 1).abs() < 0.1


def test_feature_encoder_trains_on_a_batch_of_one_feature_vector():
    """Feature vectors of one step (T = 1) in a last partial batch of one sample (a training set of
    33 samples in batches of 32): BatchNorm in training refuses one value per channel ("Expected more
    than 1 value per channel"), which stopped the run at its first epoch's last step (audit). Such a
    batch is standardised with the running statistics, as in evaluation, and leaves them unchanged;
    batches with more values keep BatchNorm's batch statistics."""
    torch.manual_seed(0)
    enc = FeatureEncoder(in_features=3, d_model=4, hidden=5, dropout=0.0).train()
    x = torch.randn(32, 1, 3) * torch.tensor([1.0, 0.5, 2.0]) + torch.tensor([1013.0, -40.0, 0.0])
    enc(x)                                                              # one full batch: statistics
    mean, var, steps = enc.norm.running_mean.clone(), enc.norm.running_var.clone(), int(enc.norm.num_batches_tracked)
    one = torch.tensor([[[1014.0, -39.0, 1.0]]])                         # (1, 1, 3): the last batch
    out = enc(one)
    assert out.shape == (1, 1, 4) and torch.isfinite(out).all()
    out.sum().backward()                                                # it trains: gradients reach the MLP
    assert enc.mlp[0].weight.grad is not None and torch.isfinite(enc.mlp[0].weight.grad).all()
    torch.testing.assert_close(out, enc.eval()(one))                      # = evaluation's standardisation
    assert torch.equal(enc.norm.running_mean, mean) and torch.equal(enc.norm.running_var, var)
    assert int(enc.norm.num_batches_tracked) == steps
    enc.train()
    two = torch.cat([one, one + 1])                                      # two values per feature: batch statistics
    ref = torch.nn.functional.batch_norm(two.transpose(1, 2), None, None, enc.norm.weight, enc.norm.bias,
                                         True, 0.0, enc.norm.eps).transpose(1, 2)
    torch.testing.assert_close(enc(two), enc.mlp(ref))


def test_a_training_batch_of_one_that_batch_norm_refuses_says_what_to_change():
    """Cnn14 on 32 x 32 log-mels (the smallest it accepts) ends in a 1 x 1 map: a last training batch
    of one sample gives its batch norm one value per channel. The run stops with the step, the
    training size and what to change, not torch's bare "Expected more than 1 value per channel"."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 32, 32)).astype("float32"), np.arange(40) % 2
    s = D.from_arrays({"audio": x}, y, groups="samples", seed=0, sample_rates={"audio": 8000})
    p = get_preset("synthetic", "audio")
    p = p.with_(batch_size=len(s.train) - 1, encoder={**p.encoder, "arch": "cnn14", "width": 0.25})
    with pytest.raises(ValueError, match=rf"epoch 1, step 1 is a training batch of one sample \(the last batch of "
                                         rf"{len(s.train)} training samples.*Change the preset's batch_size") as e:
        train_unimodal(s, "audio", preset=p, epochs=1, progress=False, device="cpu")
    assert "Expected more than 1 value per channel" in str(e.value.__cause__)
    train_unimodal(s, "audio", preset=p.with_(batch_size=len(s.train) - 2), epochs=1, progress=False, device="cpu")


@pytest.mark.parametrize("name, kind, shape, encoder", [
    ("gyro", "timeseries", (2, 16), "IMUEncoder"),
    ("wrist", "timeseries", (9, 12), "IMUEncoder"),
    ("emb", "features", (5, 7), "FeatureEncoder"),
    ("imu", "features", (5, 7), "FeatureEncoder"),        # a given kind wins over the name's default
    ("imu", None, (6, 16), "IMUEncoder"),                 # the defaults, unchanged
])
def test_build_model_dispatches_on_the_kind(name, kind, shape, encoder):
    preset = FEAT if (kind or "timeseries") == "features" else TINY["imu"]
    torch.manual_seed(0)
    model = build_model(name, 3, shape, preset, kind=kind).eval()
    assert type(model.encoder).__name__ == encoder
    assert model.config["modality"] == name and model.config["kind"] == (kind or "timeseries")
    assert model(torch.randn(2, *shape)).logits.shape == (2, 3)


def test_build_model_bad_kind_or_shape_says_what_was_expected():
    with pytest.raises(ValueError, match=r"unknown modality 'gyro'.*pass kind="):
        build_model("gyro", 3, (2, 16), TINY["imu"])
    with pytest.raises(ValueError, match=r"unknown modality kind 'emg'"):
        build_model("gyro", 3, (2, 16), TINY["imu"], kind="emg")
    with pytest.raises(ValueError, match=r"'emb' is of kind 'features': one sample must have shape \(steps, features\)"):
        build_model("emb", 3, (35,), FEAT, kind="features")


def test_checkpoint_records_name_and_kind_and_old_configs_still_load(tmp_path):
    torch.manual_seed(0)
    model = build_model("emb", 3, (5, 7), FEAT, kind="features").eval()
    save_checkpoint(tmp_path / "emb.pt", model, {"modality": "emb"})
    loaded, _ = load_checkpoint(tmp_path / "emb.pt")
    assert loaded.config["modality"] == "emb" and loaded.config["kind"] == "features"
    assert isinstance(loaded.encoder, FeatureEncoder)
    x = torch.randn(2, 5, 7)
    torch.testing.assert_close(loaded.eval()(x).logits, model(x).logits)
    old = build_model("imu", 3, (6, 16), TINY["imu"])
    old.config.pop("kind")                                  # a config written before kinds existed
    save_checkpoint(tmp_path / "old.pt", old, {"modality": "imu"})
    back, _ = load_checkpoint(tmp_path / "old.pt")
    assert back.config["kind"] == "timeseries" and isinstance(back.encoder, type(old.encoder))
    cfg = {k: v for k, v in model.config.items() if k != "kind"}
    with pytest.raises(ValueError, match="unknown modality 'emb'"):
        model_from_config(cfg)                              # 'emb' has no default kind to fall back on


def test_exported_named_models_carry_their_kind(tmp_path):
    arrays, labels = _sensors()
    s = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2, classes=["a", "b", "c"])
    torch.manual_seed(0)
    gyro = build_model("gyro", 3, (2, 16), TINY["imu"], kind="timeseries").eval()
    res = dcatkit.export(gyro, tmp_path / "gyro.pt2", classes=s.classes, normalization=s, check_inputs=s.test)
    p = dcatkit.Predictor.load(res.path, device="cpu", trusted=True)
    assert (p.modality, p.kind, p.input_shape) == ("gyro", "timeseries", (2, 16))
    raw = arrays["gyro"][rows_of(arrays, s.test.ids)]
    with torch.no_grad():
        ref = gyro(torch.from_numpy(np.asarray(s.test.arrays["gyro"]))).logits.numpy()
    np.testing.assert_allclose(p.predict(raw).logits, ref, rtol=1e-4, atol=1e-4)
    emb = build_model("emb", 3, (5, 7), FEAT, kind="features").eval()
    res = dcatkit.export(emb, tmp_path / "emb.pt2", classes=s.classes)
    q = dcatkit.Predictor.load(res.path, device="cpu", trusted=True)
    assert (q.kind, q.normalization, q.info["input_dtype"]) == ("features", None, "float32")
    x = np.random.default_rng(0).normal(size=(4, 5, 7)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(q.predict(x).logits, emb(torch.from_numpy(x)).logits.numpy(), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ presets by kind


def test_presets_are_chosen_by_kind():
    assert get_preset("synthetic", "gyro", kind="timeseries") is get_preset("synthetic", "imu")
    assert get_preset("synthetic", "imu") is SYNTHETIC["imu"]                     # the name still works
    assert get_preset("synthetic", "cam", kind="video") is SYNTHETIC["video"]
    feat = get_preset("synthetic", "emb", kind="features")
    assert feat.encoder.keys() == {"hidden", "d_model", "dropout"}                # the FeatureEncoder's knobs
    assert get_preset("synthetic", "imu", kind="features") is feat                # the kind, not the name
    assert get_preset("paper", "wrist", "uestc", kind="timeseries") is TABLE_I[("uestc", "imu")]
    assert get_preset("cough", "mic", kind="audio") is TABLE_I[("cough", "audio")]
    with pytest.raises(ValueError, match=r"no preset 'uestc' for modality 'imu' \(kind 'features'\)"):
        get_preset("uestc", "imu", kind="features")                  # Table I has no features row
    with pytest.raises(ValueError, match=r"no preset 'cough' for modality 'cam' \(kind 'video'\)"):
        get_preset("cough", "cam", kind="video")
    with pytest.raises(ValueError, match=r"unknown modality 'gyro'.*pass kind="):
        get_preset("synthetic", "gyro")
    model = build_model("emb", 3, (5, 7), feat, kind="features")                 # the preset builds its model
    assert isinstance(model.encoder, FeatureEncoder) and model.encoder.d_model == 64


# ------------------------------------------------------------------ transfer between any two names


def _wrist(n=96, seed=0):
    """acc and gyro windows of one shared motion (so the two sensors carry the same classes)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    t = np.linspace(0, 2 * np.pi, 16)
    motion = np.sin((labels[:, None, None] + 1) * t + rng.uniform(0, 6, (n, 3, 1)))
    acc = (9.81 * motion + rng.normal(0, 0.5, (n, 3, 16))).astype(np.float32)
    gyro = (200 * np.gradient(motion, axis=2) + rng.normal(0, 5, (n, 3, 16))).astype(np.float32)
    return {"acc": acc, "gyro": gyro}, labels


def test_accelerometer_to_gyroscope_transfer_end_to_end(tmp_path):
    arrays, labels = _wrist()
    s = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2, classes=list("abcd"))
    tiny = dict(preset=TINY["imu"], epochs=1, seed=0, device="cpu", progress=False)
    source = train_unimodal(s, "acc", checkpoint=tmp_path / "acc.pt", **tiny)
    target = train_transfer(s, tmp_path / "acc.pt", "gyro", lam=1.0, checkpoint=tmp_path / "gyro.pt", **tiny)
    assert source.model.config["modality"] == "acc" and target.model.config["modality"] == "gyro"
    model, meta = load_checkpoint(tmp_path / "gyro.pt")
    assert model.config["kind"] == "timeseries" and meta["provenance"]["modality"] == "gyro"
    assert meta["provenance"]["normalization"] == s.normalization["gyro"]         # gyro's own bounds, stored
    assert meta["source_modality"] == "acc" and target.name == "D-CAT acc->gyro"
    assert set(target.test) >= {"accuracy", "f1"} and np.isfinite(target.history["train_loss"]).all()
    # preset by name, chosen by kind: the synthetic IMU preset for a gyro timeseries
    assert train_unimodal(s, "gyro", preset="synthetic", epochs=1, device="cpu", progress=False).model.config[
        "encoder"] == get_preset("synthetic", "imu").encoder


def test_transfer_refuses_a_name_not_in_the_data_or_a_source_of_another_kind(tmp_path):
    arrays, labels = _wrist()
    s = D.from_arrays(arrays, labels, groups="samples", kinds=KINDS2, classes=list("abcd"))
    tiny = dict(preset=TINY["imu"], epochs=1, seed=0, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"the data has no modality 'gyr': its modalities are \('acc', 'gyro'\)"):
        train_unimodal(s, "gyr", **tiny)
    source = train_unimodal(s, "acc", checkpoint=tmp_path / "acc.pt", **tiny)
    # the same arrays, but this data calls acc precomputed features (T=3 steps of F=16): same shape, other kind
    f = D.from_arrays(arrays, labels, groups="samples", kinds={"acc": "features", "gyro": "timeseries"},
                      classes=list("abcd"))
    for src in (tmp_path / "acc.pt", source):
        with pytest.raises(SourceMismatch, match=r"'timeseries' model of 'acc' but this data's 'acc' is of kind "
                                                 r"'features'"):
            train_transfer(f, src, "gyro", **tiny)
