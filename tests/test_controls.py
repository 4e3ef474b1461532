"""The simulator's controls (issue 17 item 3) and fair rivals (item 5): the default draw is
the one it always was; ``imu_clean`` is the noisy IMU without its noise; the negative
control's IMU is another draw's, so it says nothing of the labels; ``tune_transfer``
chooses lambda on validation F1 alone."""
import numpy as np
import pytest

import synthetic_v1
from dcatkit.data.dataset import Splits
from dcatkit.data import synthetic
from dcatkit.data.synthetic import make_synthetic
from dcatkit.experiment import train_transfer, tune_transfer
from helpers import TINY, video_source_setup

SMALL = dict(frame_size=16, n_frames=4, duration=1.0)


@pytest.mark.parametrize("kw", [dict(n_samples=64, seed=0, **SMALL), dict(n_samples=40, seed=3, modalities=("imu",)),
                                dict(n_samples=40, seed=1, regime="ambiguous", **SMALL),
                                dict(n_samples=48, seed=2, imu_noise=0.3, knobs={"head_motion": 0.0}, **SMALL)])
def test_default_draw_is_the_frozen_one(kw):
    """Without imu_clean or control= the simulator gives exactly the arrays, labels and
    subjects of the frozen copy made before they were added (tests/synthetic_v1.py)."""
    a, b = make_synthetic(**kw), synthetic_v1.make_synthetic(**kw)
    assert list(a["arrays"]) == list(b["arrays"]) and "kinds" not in a and "control" not in a
    for m in a["arrays"]:
        assert a["arrays"][m].dtype == b["arrays"][m].dtype and np.array_equal(a["arrays"][m], b["arrays"][m]), m
    assert np.array_equal(a["labels"], b["labels"]) and np.array_equal(a["subjects"], b["subjects"])


def test_imu_clean_is_the_imu_without_its_noise():
    d = make_synthetic(200, seed=4, modalities=("imu_clean", "imu", "video"), **SMALL)
    plain = make_synthetic(200, seed=4, **SMALL)
    quiet = make_synthetic(200, seed=4, modalities=("imu",), imu_noise=0.0, **SMALL)
    assert d["kinds"] == {"imu_clean": "timeseries"} and list(d["arrays"]) == ["imu_clean", "imu", "video"]
    assert np.array_equal(d["arrays"]["imu_clean"], quiet["arrays"]["imu"])       # imu_noise=0: the same recordings
    for m in ("imu", "video"):
        assert np.array_equal(d["arrays"][m], plain["arrays"][m])                  # asking for it changes nothing
    noise = (d["arrays"]["imu"] - d["arrays"]["imu_clean"]).astype(float)
    assert abs(noise.std() - 0.12) < 0.005 and abs(noise.mean()) < 0.005           # HEADROOM_KNOBS["imu_noise"]
    only = make_synthetic(200, seed=4, modalities=("imu_clean",), **SMALL)        # without the noisy imu
    assert list(only["arrays"]) == ["imu_clean"] and np.array_equal(only["arrays"]["imu_clean"], d["arrays"]["imu_clean"])
    with pytest.raises(ValueError, match="belong to regime='headroom'"):
        make_synthetic(50, regime="ambiguous", modalities=("imu_clean",))


def test_negative_control_imu_comes_from_an_independent_draw():
    """Labels, subjects, video and audio are the draw's own; the IMU (and imu_clean) are
    those of another seed's draw, so they carry no information about these labels."""
    kw = dict(n_samples=120, seed=7, modalities=("imu", "imu_clean", "video", "audio"), **SMALL)
    neg, plain = make_synthetic(control="negative", **kw), make_synthetic(**kw)
    other = int(np.random.default_rng([7, 20]).integers(2 ** 62))
    ref = make_synthetic(**{**kw, "seed": other})
    for m in ("video", "audio"):
        assert np.array_equal(neg["arrays"][m], plain["arrays"][m])
    assert np.array_equal(neg["labels"], plain["labels"]) and np.array_equal(neg["subjects"], plain["subjects"])
    for m in ("imu", "imu_clean"):
        assert np.array_equal(neg["arrays"][m], ref["arrays"][m]) and not np.array_equal(neg["arrays"][m],
                                                                                          plain["arrays"][m])
    assert neg["control"] == "negative"
    # the IMU's own labels (the other draw's) agree with these labels at chance rate
    assert abs((ref["labels"] == neg["labels"]).mean() - 1 / 8) < 0.1
    with pytest.raises(ValueError, match="unknown control"):
        make_synthetic(20, control="positive")


def test_negative_control_imu_is_drawn_with_the_studys_knobs():
    """The independent IMU draw of the negative control is simulated with the caller's knobs
    (sensor noise, head motion), like the draw it replaces: it is exactly the other seed's IMU
    under the same knobs, and not the default knobs' one."""
    K = {"imu_noise": 0.5, "head_motion": 0.0}
    assert set(K) <= set(synthetic.HEADROOM_KNOBS) and all(synthetic.HEADROOM_KNOBS[k] != v for k, v in K.items())
    neg = make_synthetic(40, seed=3, modalities=("imu", "video"), control="negative", knobs=K, **SMALL)
    other = int(np.random.default_rng([3, 20]).integers(2 ** 62))
    same = make_synthetic(40, seed=other, modalities=("imu",), knobs=K, **SMALL)["arrays"]["imu"]
    default = make_synthetic(40, seed=other, modalities=("imu",), **SMALL)["arrays"]["imu"]
    assert np.array_equal(neg["arrays"]["imu"], same)
    assert not np.allclose(neg["arrays"]["imu"], default)


def test_negative_control_without_an_imu_is_refused_and_load_reports_it():
    """control="negative" replaces imu / imu_clean: asked of data without either (video ->
    audio) it would be the plain, label-bearing draw tagged as a control, so it is refused
    and says what it replaces; load() carries the control into Splits.report (and a plain
    load has none)."""
    for mods in (("video", "audio"), ("video",), ("audio",)):
        with pytest.raises(ValueError, match=r"control='negative' replaces the IMU \(imu, imu_clean\).*hold neither"):
            make_synthetic(40, control="negative", modalities=mods, **SMALL)
    assert make_synthetic(40, control="negative", modalities=("imu_clean", "video"), **SMALL)["control"] == "negative"
    from dcatkit.data import load
    from dcatkit.data.dataset import hide_labels

    with pytest.raises(ValueError, match="hold neither"):
        load("synthetic", modalities=("video", "audio"), n_samples=40, control="negative", **SMALL)
    neg = load("synthetic", modalities=("video", "imu"), n_samples=60, control="negative", **SMALL)
    assert neg.report["control"]["kind"] == "negative" and neg.report["control"]["modality"] == ["imu"]
    assert "independent draw" in neg.report["control"]["what"]
    assert hide_labels(neg, 16, seed=0).report["control"] == neg.report["control"]      # kept downstream
    assert "control" not in load("synthetic", modalities=("video", "imu"), n_samples=60, **SMALL).report
    folds = load("synthetic", split="loso", modalities=("imu",), n_samples=60, n_subjects=3, control="negative")
    assert all(f.report["control"]["kind"] == "negative" for f in folds)


def test_study_splits_negative_control_is_the_independent_draws_imu():
    """Notebook 06's negative control (studies.study_splits(..., control="negative")): every
    part's IMU is the independent draw's (scaled with the training part's bounds), not the
    plain draw's; labels and video are the plain draw's."""
    from dcatkit.data.preprocess import minmax_apply, minmax_stats
    from dcatkit.studies import study_splits

    n, draw = 60, 5
    neg = study_splits(draw, n, "video", "imu", control="negative")
    plain = study_splits(draw, n, "video", "imu")
    other = int(np.random.default_rng([draw, 20]).integers(2 ** 62))
    raw = {"negative": make_synthetic(n, seed=other, modalities=("imu",))["arrays"]["imu"],
           "plain": make_synthetic(n, seed=draw, modalities=("imu",))["arrays"]["imu"]}
    index = lambda ds: [int(i.rsplit("/", 1)[1]) for i in ds.ids]         # sample i of the draw
    for name in ("train", "val", "test"):
        a, b = getattr(neg, name), getattr(plain, name)
        assert a.ids == b.ids and np.array_equal(a.labels, b.labels)
        assert np.array_equal(np.asarray(a.arrays["video"]), np.asarray(b.arrays["video"]))
        for which, ds in (("negative", a), ("plain", b)):
            lo, hi = minmax_stats(raw[which][index(getattr(neg if which == "negative" else plain, "train"))])
            want = minmax_apply(raw[which][index(ds)], lo, hi)
            assert np.allclose(np.asarray(ds.arrays["imu"]), want, atol=1e-6), (name, which)
        assert not np.allclose(np.asarray(a.arrays["imu"]), np.asarray(b.arrays["imu"]))
    assert neg.report["control"]["kind"] == "negative" and "control" not in plain.report


@pytest.fixture(scope="module")
def setup():
    return video_source_setup()


def test_tune_transfer_chooses_on_validation_only(setup):
    """The chosen lambda is the grid point of highest validation F1 (checked against
    separate runs), its test metrics are that run's; scrambling the test labels changes
    neither the choice nor the validation scores."""
    sp, src = setup
    kw = dict(preset=TINY["imu"], progress=False, source_cache=False, device="cpu")
    lams = (0.1, 1.0, 10.0)
    got = tune_transfer(sp, src, "imu", method="kd", lams=lams, kd_temperatures=(2.0, 4.0), seed=1, **kw)
    assert got["n_runs"] == 6 and list(got["grid"].columns) == ["lam", "options", "val_f1", "best_epoch"]
    by_hand = [(train_transfer(sp, src, "imu", method="kd", lam=lam, options={"kd_temperature": t}, seed=1, **kw),
                lam, t) for lam in lams for t in (2.0, 4.0)]
    vals = [r.meta["best_val"]["f1"] for r, _, _ in by_hand]
    assert got["grid"]["val_f1"].tolist() == vals
    best = int(np.argmax(vals))                                   # first of the maxima
    assert (got["lam"], got["options"]) == (by_hand[best][1], {"kd_temperature": by_hand[best][2]})
    assert got["test"]["f1"] == by_hand[best][0].test["f1"]
    test = sp.test.subset(np.arange(len(sp.test)))
    test.labels = np.random.default_rng(0).permutation(test.labels)
    scrambled = tune_transfer(Splits(sp.train, sp.val, test, sp.report), src, "imu", method="kd", lams=lams,
                              kd_temperatures=(2.0, 4.0), seed=1, **kw)
    assert scrambled["grid"]["val_f1"].tolist() == vals
    assert (scrambled["lam"], scrambled["options"]) == (got["lam"], got["options"])
    one = tune_transfer(sp, src, "imu", method="dcat", lams=(1.0,), kd_temperatures=(2.0, 4.0), seed=1, **kw)
    assert one["n_runs"] == 1 and one["options"] == {}             # dcat takes no temperature
    assert tune_transfer(sp, src, "imu", method="none", seed=1, **kw)["n_runs"] == 1


def test_tune_transfer_picks_on_validation_and_reports_that_points_test(monkeypatch):
    """With a stub train_transfer whose grid points differ (validation and test F1 scripted per
    lambda): the tuned method takes the lambda of the highest validation F1 (the first of a tie),
    returns that point's own run and test metrics (not the last point's, not the best test), and
    every method gets the same budget with the default grids (kd's temperature is not tuned)."""
    from types import SimpleNamespace

    import dcatkit.experiment as E

    val = {0.0: 0.50, 1.0: 0.40, 10.0: 0.55, 100.0: 0.55}          # 0.0: the baseline's one run
    test = {0.0: 0.50, 1.0: 0.90, 10.0: 0.30, 100.0: 0.80}         # the best test (lam 1) must not matter
    calls = []

    def stub(splits, source, target, *, method, lam, options=None, seed=None, **kw):
        calls.append((method, lam, options))
        return SimpleNamespace(meta={"best_val": {"f1": val[lam], "epoch": 1}}, test={"f1": test[lam]},
                               lam=lam)

    monkeypatch.setattr(E, "train_transfer", stub)
    out = E.tune_transfer(None, None, "imu", method="dcat", seed=0)
    assert out["lam"] == 10.0 and out["val_f1"] == 0.55 and out["test"] == {"f1": 0.30} and out["run"].lam == 10.0
    assert "test" not in out["grid"].columns and out["grid"]["val_f1"].tolist() == [0.40, 0.55, 0.55]
    for method in ("dcat", "kd", "fitnet", "contrastive", "dcat+kd"):
        calls.clear()
        assert E.tune_transfer(None, None, "imu", method=method, seed=0)["n_runs"] == len(E.TUNE_LAMS) == len(calls)
    assert E.tune_transfer(None, None, "imu", method="none", seed=0)["n_runs"] == 1


def test_gradient_scale_is_the_ratio_of_the_two_pulls(setup):
    """gradient_scale: the transfer gradient scales with lambda exactly (twice lambda, twice the
    norm; lambda 0, none), cross-entropy's does not move, the ratio is transfer over CE (kd: the tiny
    test source has another attention size than the target); and with
    unlabeled pairs the confidence mask is applied (every pair counting pulls differently)."""
    from dcatkit.data.dataset import hide_labels
    from dcatkit.studies import gradient_scale

    sp, src = setup
    one = gradient_scale(sp, src, "imu", method="kd", lam=1.0, n_batches=2)
    two = gradient_scale(sp, src, "imu", method="kd", lam=2.0, n_batches=2)
    zero = gradient_scale(sp, src, "imu", method="kd", lam=0.0, n_batches=2)
    assert one["grad_transfer"] > 0 and two["grad_transfer"] == pytest.approx(2 * one["grad_transfer"], rel=1e-5)
    assert zero["grad_transfer"] == 0 and two["grad_ce"] == one["grad_ce"] == zero["grad_ce"] > 0
    assert one["ratio"] == pytest.approx(one["grad_transfer"] / one["grad_ce"])
    few = hide_labels(sp, 20, seed=0)
    conf = gradient_scale(few, src, "imu", method="kd", lam=1.0, n_batches=2)
    every = gradient_scale(few, src, "imu", method="kd", lam=1.0, n_batches=2, unlabeled_mask="all")
    assert conf["grad_ce"] == every["grad_ce"] and conf["grad_transfer"] != every["grad_transfer"]
    model = src.model if hasattr(src, "model") else src              # the caller's model is given back as it was
    mode, grads = model.training, [q.requires_grad for q in model.parameters()]
    model.train().requires_grad_(True)
    try:
        gradient_scale(sp, src, "imu", method="kd", lam=1.0, n_batches=1)
        assert model.training and all(q.requires_grad for q in model.parameters())
    finally:
        model.train(mode)
        for q, g in zip(model.parameters(), grads):
            q.requires_grad_(g)


def test_gradient_scale_measures_the_target_in_training_mode(setup):
    """gradient_scale measures the pulls on the target as training will see it, in train mode
    (batch statistics, not running ones): its CE gradient norm on one batch is the one rebuilt
    here step by step (same seed, same init, same objective built, same first batch of the
    seeded loader) with the target in train mode, not the one in eval mode."""
    import torch
    import torch.nn.functional as F

    from dcatkit.data.dataset import UNLABELED, training_set
    from dcatkit.experiment import _build, _preset, load_source
    from dcatkit.objectives import make_objective
    from dcatkit.runtime import make_loader, seed_everything
    from dcatkit.studies import gradient_scale

    sp, src = setup
    got = gradient_scale(sp, src, "imu", method="kd", lam=1.0, n_batches=1, seed=0)

    def ce_norm(train_mode: bool) -> float:
        frozen = load_source(src, sp, "imu")
        p = _preset("synthetic", "imu", "synthetic", sp.train)
        seed_everything(0)
        model = _build("imu", sp.train, p)
        make_objective("kd", d_target=model.attention.d_out, d_source=frozen.attention.d_out)
        model.train(train_mode)
        batch = next(iter(make_loader(training_set(sp), p.batch_size, shuffle=True, seed=0)))
        lab = batch["label"] != UNLABELED
        ce = F.cross_entropy(model(batch["imu"]).logits[lab], batch["label"][lab])
        params = [q for q in model.parameters() if q.requires_grad]
        grads = torch.autograd.grad(ce, params, allow_unused=True)
        return float(torch.cat([(g if g is not None else torch.zeros_like(q)).reshape(-1)
                                for g, q in zip(grads, params)]).norm())

    train_norm, eval_norm = ce_norm(True), ce_norm(False)
    assert got["grad_ce"] == pytest.approx(train_norm, rel=1e-6)
    assert eval_norm != pytest.approx(train_norm, rel=1e-2)           # the two modes are told apart
