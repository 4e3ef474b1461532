"""Diagnostics (dcatkit.diagnostics): Theorem 4.1's per-sample linear map against
constructed cases with known R^2 and against scikit-learn, and the model outputs it reads."""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression

from dcatkit.diagnostics import alignment_curve, attention_outputs, check_theorem41, linear_map_r2, theorem41
from dcatkit.model import build_model
from helpers import TINY, tiny_splits


def test_exact_linear_maps_give_one_and_random_targets_give_ts_over_d():
    rng = np.random.default_rng(0)
    src = rng.standard_normal((300, 4, 32))
    mix = rng.standard_normal((300, 4, 6))                        # per sample: K_t^T = K_s^T R_n
    tgt = np.einsum("nsd,nst->ntd", src, mix)
    assert linear_map_r2(src, tgt) == pytest.approx(np.ones(300), abs=1e-10)
    # independent isotropic targets: the 4 source vectors explain 4/32 of the energy on average
    rand = rng.standard_normal((300, 6, 32))
    assert linear_map_r2(src, rand).mean() == pytest.approx(4 / 32, abs=0.01)
    # half signal, half noise of equal energy per entry: R^2 ~ (1 + 4/32) / 2
    noisy = tgt / np.sqrt((tgt ** 2).mean((1, 2), keepdims=True)) + rand
    assert linear_map_r2(src, noisy).mean() == pytest.approx((1 + 4 / 32) / 2, abs=0.03)


def test_matches_scikit_learn_per_sample():
    rng = np.random.default_rng(1)
    src, tgt = rng.standard_normal((5, 3, 16)), rng.standard_normal((5, 7, 16))
    got = linear_map_r2(src, tgt)
    for n in range(5):
        x, y = src[n].T, tgt[n].T                                 # (d, T_s), (d, T_t)
        pred = LinearRegression(fit_intercept=False).fit(x, y).predict(x)
        assert got[n] == pytest.approx(1 - ((y - pred) ** 2).sum() / (y ** 2).sum(), abs=1e-10)


def test_bad_shapes():
    with pytest.raises(ValueError, match="the check needs T_s < d"):
        linear_map_r2(np.zeros((2, 8, 8)), np.zeros((2, 3, 8)))
    with pytest.raises(ValueError, match="same N samples and d"):
        linear_map_r2(np.zeros((2, 3, 8)), np.zeros((3, 3, 8)))


def test_theorem41_table_with_a_shuffled_control():
    rng = np.random.default_rng(2)
    n, lab = 50, np.arange(50) % 4
    src = {"k": rng.standard_normal((n, 3, 24)), "v": rng.standard_normal((n, 3, 24)), "label": lab}
    aligned = {f: np.einsum("nsd,nst->ntd", src[f], rng.standard_normal((n, 3, 5))) for f in ("k", "v")}
    unrelated = {f: rng.standard_normal((n, 5, 24)) for f in ("k", "v")}
    t = theorem41(src, {"D-CAT": {**aligned, "label": lab}, "baseline": {**unrelated, "label": lab}})
    t = t.set_index(["run", "tensor"])
    assert t.loc[("D-CAT", "K"), "r2"] == pytest.approx(1.0, abs=1e-9)
    assert t.loc[("D-CAT", "V"), "r2_shuffled"] < 0.4                 # another sample's vectors do not fit
    assert t.loc[("baseline", "K"), "r2"] == pytest.approx(3 / 24, abs=0.05)
    assert abs(t.loc[("baseline", "V"), "r2_gain"]) < 0.05
    assert t.loc[("D-CAT", "V"), "r2"] == pytest.approx(1.0, abs=1e-9)     # V fitted on the source's V
    with pytest.raises(ValueError, match="same samples"):
        theorem41(src, {"x": {**aligned, "label": lab[::-1]}})


def test_theorem41_fits_each_tensor_on_the_sources_same_tensor():
    """K is fitted on the source's K and V on the source's V, for the real pairing and for the
    shuffled control alike. A source whose V is the same for every sample leaves nothing
    sample-specific in V: the shuffled pairing explains a target V built from it as fully as
    the real one (gain 0), while K, different per sample, keeps its gain."""
    rng = np.random.default_rng(5)
    n, lab = 40, np.arange(40) % 4
    shared_v = np.repeat(rng.standard_normal((1, 3, 24)), n, axis=0)          # one V for every sample
    src = {"k": rng.standard_normal((n, 3, 24)), "v": shared_v, "label": lab}
    tgt = {f: np.einsum("nsd,nst->ntd", src[f], rng.standard_normal((n, 3, 5))) for f in ("k", "v")}
    t = theorem41(src, {"t": {**tgt, "label": lab}}).set_index("tensor")
    assert t.loc["V", "r2"] == pytest.approx(1.0, abs=1e-9) and t.loc["V", "r2_shuffled"] == pytest.approx(1.0, abs=1e-9)
    assert t.loc["K", "r2"] == pytest.approx(1.0, abs=1e-9) and t.loc["K", "r2_shuffled"] < 0.4


def test_attention_outputs_and_alignment_curve():
    sp = tiny_splits(48, modalities=("imu",))
    torch.manual_seed(0)
    model = build_model("imu", 8, sp.test.input_shape("imu"), TINY["imu"])
    out = attention_outputs(model, sp.test, "imu", batch_size=4)
    x = torch.stack([sp.test[i]["imu"] for i in range(len(sp.test))])
    with torch.no_grad():
        ref = model.eval()(x)
    for f in ("k", "v", "pooled", "logits"):
        assert np.allclose(out[f], getattr(ref, f).numpy(), atol=1e-5)
    assert np.array_equal(out["label"], sp.test.labels)
    h = pd.DataFrame({"epoch": [1, 2], "train_ca": [0.9, 0.7]})
    curve = alignment_curve({"D-CAT": h, "baseline": h.assign(train_ca=[1.0, 1.0])})
    assert curve.loc[2].tolist() == [0.7, 1.0]
    with pytest.raises(ValueError, match="monitor='dcat'"):
        alignment_curve({"x": h.drop(columns="train_ca")})


def test_check_theorem41_on_models():
    """A target whose K and V are the source's own (the same model) gives R^2 = 1; the
    shuffled pairing does not; the table equals theorem41 on the collected outputs."""
    sp = tiny_splits(48, modalities=("imu", "video"))
    torch.manual_seed(0)
    video = build_model("video", 8, sp.test.input_shape("video"), TINY["video"])
    imu = build_model("imu", 8, sp.test.input_shape("imu"), TINY["imu"])
    t = check_theorem41(video, {"same": video}, sp.test, source_modality="video", target_modality="video")
    t = t.set_index(["run", "tensor"])
    assert t.loc[("same", "K"), "r2"] == pytest.approx(1.0, abs=1e-6)
    assert t.loc[("same", "V"), "r2_shuffled"] < 0.95               # measured 0.87: keys share a subspace
    got = check_theorem41(video, {"imu": imu}, sp.test, source_modality="video", target_modality="imu")
    want = theorem41(attention_outputs(video, sp.test, "video"), {"imu": attention_outputs(imu, sp.test, "imu")})
    pd.testing.assert_frame_equal(got, want)


def test_theorem41_needs_two_samples():
    """With one sample the 'random other sample' of the shuffled control is the sample itself."""
    rng = np.random.default_rng(3)
    one = {"k": rng.standard_normal((1, 3, 24)), "v": rng.standard_normal((1, 3, 24)), "label": np.array([0])}
    with pytest.raises(ValueError, match="needs at least 2 held-out samples .*got 1"):
        theorem41(one, {"t": one})
    two = {f: np.concatenate([one[f], one[f]]) for f in one}
    assert len(theorem41(two, {"t": two})) == 2                  # K and V rows


def test_theorem41_checks_the_same_samples_by_id():
    """Target outputs of the same test split with the samples reordered within each class have
    the same labels in the same order: the label check passed them and paired every sample with
    another's source vectors. attention_outputs now returns the ids, and theorem41 compares them."""
    sp = tiny_splits(48, modalities=("imu",))
    torch.manual_seed(0)
    model = build_model("imu", 8, sp.test.input_shape("imu"), TINY["imu"])
    out = attention_outputs(model, sp.test, "imu", batch_size=4)
    assert out["id"].tolist() == list(sp.test.ids)
    lab = sp.test.labels
    index = np.arange(len(lab))
    for c in np.unique(lab):                                     # reverse the order within each class
        at = np.flatnonzero(lab == c)
        index[at] = at[::-1]
    assert (index != np.arange(len(lab))).any() and np.array_equal(lab[index], lab)
    moved = attention_outputs(model, sp.test.subset(index), "imu", batch_size=4)
    assert np.array_equal(moved["label"], out["label"])          # the labels cannot tell
    with pytest.raises(ValueError, match="not run on the same samples as the source .*sample ids differ"):
        theorem41(out, {"moved": moved})
    assert len(theorem41(out, {"same": attention_outputs(model, sp.test, "imu", batch_size=8)})) == 2
    no_ids = {k: v for k, v in moved.items() if k != "id"}       # without ids: the labels, and the message says so
    assert len(theorem41(out, {"moved": no_ids})) == 2
    with pytest.raises(ValueError, match="labels differ \\(no sample ids to compare"):
        theorem41(out, {"x": {**no_ids, "label": no_ids["label"][::-1]}})


def test_theorem41_gain_is_r2_minus_the_shuffled_r2():
    """``r2_gain`` is ``r2 - r2_shuffled`` (what the sample's own source vectors explain beyond
    another sample's), positive for an aligned target. With 2 samples the only pairing with
    *another* sample is the swap, so the shuffled R^2 is computed here by hand, whatever the
    seed's cycle: the fit of each target against the other sample's source vectors."""
    rng = np.random.default_rng(7)
    lab = np.array([0, 1])
    src = {"k": rng.standard_normal((2, 3, 24)), "v": rng.standard_normal((2, 3, 24)), "label": lab}
    tgt = {f: np.einsum("nsd,nst->ntd", src[f], rng.standard_normal((2, 3, 5))) for f in ("k", "v")}
    t = theorem41(src, {"t": {**tgt, "label": lab}}).set_index("tensor")
    for f in ("k", "v"):
        swapped = linear_map_r2(src[f][::-1], tgt[f]).mean()
        row = t.loc[f.upper()]
        assert row["r2"] == pytest.approx(1.0, abs=1e-9)
        assert row["r2_shuffled"] == pytest.approx(swapped, abs=1e-12) and swapped < 0.5
        assert row["r2_gain"] == pytest.approx(1.0 - swapped, abs=1e-9) and row["r2_gain"] > 0.5


def test_a_zero_target_sample_gives_r2_one_not_nan():
    """A sample whose target vectors are all zero (a dead head) lies in any span: its R^2 is 1
    (the energy is clamped, not divided by 0), so one such sample does not turn the mean R^2 of
    theorem41 into NaN."""
    rng = np.random.default_rng(8)
    src = rng.standard_normal((3, 2, 8))
    tgt = rng.standard_normal((3, 4, 8))
    tgt[1] = 0.0
    r2 = linear_map_r2(src, tgt)
    assert np.isfinite(r2).all() and r2[1] == 1.0
    assert r2[[0, 2]] == pytest.approx(linear_map_r2(src[[0, 2]], tgt[[0, 2]]), abs=1e-12)
