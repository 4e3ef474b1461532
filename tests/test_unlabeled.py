"""Paired unlabeled recordings (issue 17 item 4): cross-entropy never reads an unlabeled
sample's label, the transfer objective does read the unlabeled pairs, MCMA on unlabeled
pairs follows the source's confidence, and a run without unlabeled pairs is today's run
bit for bit."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dcatkit.data import load
from dcatkit.data.dataset import UNLABELED, PairedDataset, Splits, hide_labels, training_set
from dcatkit.experiment import check_unlabeled, train_transfer
from dcatkit.objectives import SourceOutput
from dcatkit.runtime import make_loader, seed_everything
from dcatkit.train import _unlabeled_mask, fit_transfer
from helpers import TINY, same_state, video_source_setup
from helpers import new_imu_model as new_model

P = TINY["imu"]


@pytest.fixture(scope="module")
def setup():
    return video_source_setup()


def _with_unlabeled(sp, n_keep, labels=None, video=None):
    """Splits whose first n_keep training samples are labelled, the rest an unlabeled part
    holding ``labels`` (default: their true labels) and ``video`` (default: theirs)."""
    tr = sp.train
    rest = tr.subset(np.arange(n_keep, len(tr)))
    if labels is not None:
        rest.labels = np.asarray(labels, dtype=np.int64)
    if video is not None:
        rest.arrays["video"] = video
    return Splits(tr.subset(np.arange(n_keep)), sp.val, sp.test, sp.report, unlabeled=rest)


def test_hide_labels_counts_strata_and_untouched_parts():
    sp = load("synthetic", n_samples=160, modalities=("imu",), seed=2)
    h = hide_labels(sp, 24, seed=5)
    assert len(h.train) == 24 and len(h.unlabeled) == len(sp.train) - 24
    assert (h.unlabeled.labels == UNLABELED).all() and (h.train.labels >= 0).all()
    assert set(h.train.ids) | set(h.unlabeled.ids) == set(sp.train.ids)
    assert not set(h.train.ids) & set(h.unlabeled.ids)
    # stratified: every class keeps its share of the 24 labels (largest remainders), computed here by hand
    share = np.bincount(sp.train.labels, minlength=8) * 24 / len(sp.train)
    got = np.bincount(h.train.labels, minlength=8)
    assert got.sum() == 24 and np.all(np.abs(got - share) < 1)
    assert h.val is sp.val and h.test is sp.test and h.report["labels"]["n_labeled"] == 24
    assert hide_labels(sp, len(sp.train)) is sp                   # every label kept: the same splits
    assert np.array_equal(hide_labels(sp, 24, seed=5).train.ids, h.train.ids)       # seeded
    assert set(hide_labels(sp, 24, seed=6).train.ids) != set(h.train.ids)            # by the seed given
    for bad in (0, len(sp.train) + 1, 2.5, True):
        with pytest.raises(ValueError, match="n_labeled must be an int"):
            hide_labels(sp, bad)
    with pytest.raises(ValueError, match="already have an unlabeled part"):
        hide_labels(h, 10)
    # load(n_labeled=) is hide_labels of the same load, seeded by the split seed
    via = load("synthetic", n_samples=160, modalities=("imu",), seed=2, n_labeled=24)
    assert list(via.train.ids) == list(hide_labels(sp, 24, seed=2).train.ids)


def test_ce_never_reads_an_unlabeled_label(setup):
    """Training with the unlabeled part's labels scrambled (or true, or -1) gives the same
    model, for the baseline and for a transfer objective: the labels are hidden."""
    sp, src = setup
    n_keep = 30
    true = sp.train.labels[n_keep:]
    scrambled = np.random.default_rng(0).permutation(8)[true]
    for method in ("none", "kd"):
        runs = [train_transfer(_with_unlabeled(sp, n_keep, labels=y), src, "imu", method=method, lam=1.0,
                               preset=P, seed=2, progress=False, source_cache=False, device="cpu")
                for y in (true, scrambled, np.full(len(true), UNLABELED))]
        assert same_state(runs[0].model, runs[1].model) and same_state(runs[0].model, runs[2].model)
        assert runs[0].meta["unlabeled"]["n_unlabeled"] == len(true)


def test_baseline_with_unlabeled_is_ce_on_labelled_rows_by_hand(setup):
    """method="none" over train + unlabeled == a hand loop over the same shuffled batches
    whose loss is the mean cross-entropy of each batch's labelled rows (0 without any)."""
    sp, src = setup
    s = _with_unlabeled(sp, 30)
    seed = 4
    res = fit_transfer(new_model(sp, seed), src.model, training_set(s), sp.val, lam=1.0, method="none", preset=P,
                       epochs=1, seed=seed, progress=False, device="cpu")
    model = new_model(sp, seed)
    seed_everything(seed)
    opt = torch.optim.Adam(model.parameters(), lr=P.lr, weight_decay=P.weight_decay)
    model.train()
    per_sample = []                          # each labelled row's cross-entropy, as its batch saw it
    for batch in make_loader(training_set(s), P.batch_size, shuffle=True, seed=seed):
        y = batch["label"]
        logits = model(batch["imu"]).logits
        keep = [i for i in range(len(y)) if y[i] >= 0]
        loss = F.cross_entropy(logits[keep], y[keep]) if keep else logits.sum() * 0
        per_sample += F.cross_entropy(logits[keep], y[keep], reduction="none").tolist() if keep else []
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert same_state(res.model, model)
    assert 0 < res.history["train_labeled_frac"].iloc[0] < 1
    # the logged CE is the mean over the epoch's labelled rows (a batch's mean weighs by its labelled rows)
    assert res.history["train_ce"].iloc[0] == pytest.approx(np.mean(per_sample), rel=1e-5)


def test_the_share_of_unlabeled_pairs_kept_is_over_the_unlabeled_pairs(setup):
    """unlabeled_mask="all" keeps every unlabeled pair: train_mask_frac_unlabeled is 1, also when
    some batches hold no unlabeled pair (they logged 0, weighted by their size: 0.84 here before)."""
    sp, src = setup
    s = _with_unlabeled(sp, len(sp.train) - 3)                     # 3 unlabeled pairs: most batches have none
    res = train_transfer(s, src, "imu", method="dcat", lam=1.0, unlabeled_mask="all", preset=P, seed=3,
                         progress=False, source_cache=False, device="cpu")
    assert res.history["train_mask_frac_unlabeled"].tolist() == [1.0] * len(res.history)


def test_the_objective_reads_the_unlabeled_pairs(setup):
    """Changing only the unlabeled pairs' source inputs (video) changes a kd / dcat /
    contrastive target, and leaves the baseline (which never reads video) unchanged."""
    sp, src = setup
    n_keep = 30
    video = np.asarray(sp.train.arrays["video"][n_keep:])
    other = np.ascontiguousarray(video[::-1])                        # other recordings' video
    for method, changes in (("none", False), ("kd", True), ("dcat", True), ("contrastive", True)):
        a, b = (train_transfer(_with_unlabeled(sp, n_keep, video=v), src, "imu", method=method, lam=1.0,
                               unlabeled_mask="all", preset=P, seed=3, progress=False, source_cache=False,
                               device="cpu") for v in (video, other))
        assert same_state(a.model, b.model) != changes, method


def test_no_unlabeled_pairs_is_todays_run_bit_for_bit(setup):
    """No unlabeled part, an empty one, or hide_labels keeping every label: the run of
    plain splits, which is fit_transfer on splits.train (the unchanged code path)."""
    sp, src = setup
    kw = dict(method="dcat", lam=0.7, preset=P, seed=1, progress=False, source_cache=False, device="cpu")
    plain = train_transfer(sp, src, "imu", **kw)
    empty = train_transfer(Splits(sp.train, sp.val, sp.test, sp.report, unlabeled=sp.train.subset([])), src,
                           "imu", **kw)
    assert same_state(plain.model, empty.model) and "unlabeled" not in plain.meta
    assert list(plain.history.columns) == list(empty.history.columns) and "train_labeled_frac" not in plain.history
    direct = fit_transfer(new_model(sp, 1), src.model, sp.train, sp.val, lam=0.7, method="dcat", preset=P,
                          seed=1, progress=False, source_cache=False, device="cpu")
    assert same_state(plain.model, direct.model)


def test_unlabeled_mask_by_hand():
    """Labelled pairs keep Eq. (16); unlabeled pairs count when the source's top softmax
    probability is >= the threshold ("confidence") or always ("all")."""
    logits = torch.tensor([[4.0, 0.0], [0.2, 0.0], [0.0, 3.0], [0.0, 0.1]])
    correct = torch.tensor([True, False, False, True])
    labels = torch.tensor([0, 1, UNLABELED, UNLABELED])
    src = SourceOutput(None, None, correct, logits, None)
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    conf = p.max(1) >= 0.9                                                       # [T, F, T, F]
    got, st = _unlabeled_mask(src, labels, True, "confidence", 0.9)
    assert got.correct.tolist() == [True, False, bool(conf[2]), bool(conf[3])] == [True, False, True, False]
    assert [float(x) for x in st["mask_frac_unlabeled"]] == [0.5, 2]      # (share kept, of how many pairs)
    got, st = _unlabeled_mask(src, labels, True, "all", 0.9)
    assert got.correct.tolist() == [True, False, True, True] and float(st["mask_frac_unlabeled"][0]) == 1.0
    # no MCMA: the objectives ignore the mask, which is the one MCMA would use, so that
    # train_mask_frac is the share it would keep (it counted every unlabeled pair as rejected)
    got, st = _unlabeled_mask(src, labels, False, "confidence", 0.9)
    assert got.correct.tolist() == [True, False, True, False] and float(st["mask_frac_unlabeled"][0]) == 0.5
    got, st = _unlabeled_mask(src._replace(logits=None), labels, False, "confidence", 0.9)
    assert got.correct.tolist() == [True, False, True, True] and float(st["mask_frac_unlabeled"][0]) == 1.0
    with pytest.raises(ValueError, match="reads the source's logits"):
        _unlabeled_mask(src._replace(logits=None), labels, True, "confidence", 0.9)
    # the threshold is on the softmax probability, not the raw logit, and inclusive: a top logit of
    # 2.0 against 1.9 is p = 0.52 (out at 0.9, though 2.0 >= 0.9); equal logits are p = 0.5 exactly
    # (in at 0.5)
    unl = torch.tensor([UNLABELED, UNLABELED])
    two = SourceOutput(None, None, torch.tensor([False, False]), torch.tensor([[2.0, 1.9], [0.0, 0.0]]), None)
    assert _unlabeled_mask(two, unl, True, "confidence", 0.9)[0].correct.tolist() == [False, False]
    assert _unlabeled_mask(two, unl, True, "confidence", 0.5)[0].correct.tolist() == [True, True]


def test_confidence_threshold_one_masks_out_every_unlabeled_pair(setup):
    """The mask on unlabeled pairs is used: a threshold of 1.0 masks pairs out that
    unlabeled_mask="all" keeps (all of them), and the two runs differ."""
    sp, src = setup
    s = _with_unlabeled(sp, 30)
    kw = dict(method="kd", lam=1.0, preset=P, seed=5, progress=False, source_cache=False, device="cpu", epochs=1)
    none_in = train_transfer(s, src, "imu", confidence=1.0, **kw)
    all_in = train_transfer(s, src, "imu", unlabeled_mask="all", **kw)
    assert none_in.history["train_mask_frac_unlabeled"].iloc[0] < all_in.history["train_mask_frac_unlabeled"].iloc[0]
    assert all_in.history["train_mask_frac_unlabeled"].iloc[0] == 1.0
    assert not same_state(none_in.model, all_in.model)
    assert none_in.meta["unlabeled"]["mask"] == "confidence" and all_in.meta["unlabeled"]["mask"] == "all"


def test_without_mcma_the_mask_is_only_logged(setup):
    """mcma=False: every pair counts, so the unlabeled rule changes nothing in training, and
    train_mask_frac / _unlabeled are the shares MCMA would keep -- those of the mcma=True run
    (the frozen source alone decides them). Before, every unlabeled pair read as rejected."""
    sp, src = setup
    s = _with_unlabeled(sp, 30)
    with torch.no_grad():                  # a threshold at the source's median confidence: some pairs in, some out
        x = torch.stack([s.unlabeled[i]["video"] for i in range(len(s.unlabeled))])
        median = float(torch.softmax(src.model.eval()(x).logits, dim=1).amax(1).median())
    kw = dict(method="dcat", lam=1.0, preset=P, seed=5, progress=False, source_cache=False, device="cpu", epochs=2)
    off = train_transfer(s, src, "imu", mcma=False, confidence=median, **kw)
    off_all = train_transfer(s, src, "imu", mcma=False, unlabeled_mask="all", **kw)
    on = train_transfer(s, src, "imu", mcma=True, confidence=median, **kw)
    assert same_state(off.model, off_all.model)
    assert not same_state(off.model, on.model)
    for col in ("train_mask_frac", "train_mask_frac_unlabeled"):
        assert off.history[col].tolist() == on.history[col].tolist(), col
    assert 0 < off.history["train_mask_frac_unlabeled"].iloc[0] < 1
    cached = train_transfer(s, src, "imu", mcma=False, confidence=median, **{**kw, "source_cache": True})
    for col in ("train_mask_frac", "train_mask_frac_unlabeled"):      # the cache stores the logits it needs
        np.testing.assert_allclose(cached.history[col], off.history[col], atol=1e-6)


def test_bad_unlabeled_input(setup):
    sp, src = setup
    s = _with_unlabeled(sp, 30)
    with pytest.raises(ValueError, match="unlabeled_mask must be one of"):
        train_transfer(s, src, "imu", unlabeled_mask="sometimes", preset=P, progress=False)
    with pytest.raises(ValueError, match="confidence must be a probability"):
        train_transfer(s, src, "imu", confidence=1.5, preset=P, progress=False)
    leaky = Splits(s.train, sp.val, sp.test, sp.report, unlabeled=sp.test)      # test recordings as "unlabeled"
    with pytest.raises(ValueError, match="leakage through the unlabeled pairs.*test"):
        check_unlabeled(leaky)
    with pytest.raises(ValueError, match="leakage through the unlabeled pairs"):
        train_transfer(leaky, src, "imu", preset=P, progress=False)
    with pytest.raises(ValueError, match=r"leakage through the unlabeled pairs: \d+ recording\(s\) in unlabeled & val"):
        check_unlabeled(Splits(s.train, sp.val, sp.test, sp.report, unlabeled=sp.val))
    # a subject split: other recordings of a validation subject leak that person, though no recording is shared
    ood = load("synthetic", n_samples=160, modalities=("imu",), split="ood", seed=1)
    v = ood.val
    renamed = PairedDataset(dict(v.arrays), np.full(len(v), UNLABELED), v.classes, v.subjects,
                            [f"other-{i}" for i in v.ids], v.sample_rates, [f"other-{g}" for g in v.groups])
    with pytest.raises(ValueError, match=r"subject\(s\) in unlabeled & val"):
        check_unlabeled(Splits(ood.train, ood.val, ood.test, ood.report, unlabeled=renamed))
    val_unl = PairedDataset(dict(sp.val.arrays), np.full(len(sp.val), UNLABELED), sp.val.classes,
                            ids=sp.val.ids)
    with pytest.raises(ValueError, match="validation part holds"):
        fit_transfer(new_model(sp, 0), src.model, sp.train, val_unl, lam=1.0, preset=P, progress=False)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 7\].*or be -1"):
        PairedDataset(dict(sp.val.arrays), np.full(len(sp.val), -2), sp.val.classes)
    with pytest.raises(ValueError, match="no labelled sample"):
        training_set(Splits(sp.train.subset([]), sp.val, sp.test, unlabeled=sp.train))


def test_an_unlabeled_window_of_a_training_recording_is_refused():
    """A recording is either labelled or not: unlabeled windows that come from a recording of the
    labelled training part are refused, naming it (the transfer term would otherwise be fed the
    training recordings twice, once under their labels and once as "unlabeled" data, and the
    semi-supervised result would overstate what unlabeled recordings add)."""
    sp = load("synthetic", n_samples=160, modalities=("imu",), seed=2)
    g = sp.train.groups[0]
    assert list(sp.train.groups).count(g) == 1 and g not in set(sp.val.groups) | set(sp.test.groups)
    unlabeled = sp.train.subset([0])                       # a training recording also given as unlabeled
    with pytest.raises(ValueError, match=rf"^leakage through the unlabeled pairs: 1 recording\(s\) in "
                                         rf"unlabeled & train \(e\.g\. \[{g!r}\]\)"):
        check_unlabeled(Splits(sp.train, sp.val, sp.test, sp.report, unlabeled=unlabeled))
    check_unlabeled(Splits(sp.train.subset(np.arange(1, len(sp.train))), sp.val, sp.test, sp.report,
                           unlabeled=unlabeled))       # the same window, its recording out of train: accepted


def test_thin_validation_counts_strata_and_untouched_parts():
    from dcatkit.data.dataset import thin_validation

    sp = hide_labels(load("synthetic", n_samples=200, modalities=("imu",), seed=3), 16, seed=3)
    t = thin_validation(sp, 12, seed=4)
    assert len(t.val) == 12 and set(t.val.ids) <= set(sp.val.ids)
    # stratified: every class keeps its share of the 12 (largest remainders), computed here by hand
    share = np.bincount(sp.val.labels, minlength=8) * 12 / len(sp.val)
    got = np.bincount(t.val.labels, minlength=8)
    assert got.sum() == 12 and np.all(np.abs(got - share) < 1)
    # the kept samples are the originals (labels and inputs), and nothing else moved
    pos = {i: k for k, i in enumerate(sp.val.ids)}
    idx = [pos[i] for i in t.val.ids]
    assert np.array_equal(t.val.labels, sp.val.labels[idx])
    assert np.array_equal(t.val.arrays["imu"], sp.val.arrays["imu"][idx])
    assert t.train is sp.train and t.test is sp.test and t.unlabeled is sp.unlabeled
    assert t.report["validation"] == {"n_val": 12, "n_dropped": len(sp.val) - 12, "seed": 4, "unit": "recording"}
    assert t.report["labels"] == sp.report["labels"]
    assert thin_validation(sp, len(sp.val)) is sp
    assert list(thin_validation(sp, 12, seed=4).val.ids) == list(t.val.ids)                 # seeded
    assert list(thin_validation(sp, 12, seed=5).val.ids) != list(t.val.ids)
    for bad in (0, len(sp.val) + 1, 2.5, True):
        with pytest.raises(ValueError, match="n_val must be an int"):
            thin_validation(sp, bad)


def test_dcat_with_the_confidence_mask_runs_from_the_source_cache(setup):
    """Notebook 06's default path: D-CAT (which needs no logits itself) on unlabeled pairs with the
    confidence mask, the frozen source read from the cache: the cache must store the source's
    logits for the mask, and the run matches the live source's (the cache stores K, V at reduced
    precision: within tolerance), mask fractions included."""
    sp, src = setup
    few = _with_unlabeled(sp, 30)
    with torch.no_grad():                  # a threshold at the source's median confidence: some pairs in, some out
        x = torch.stack([few.unlabeled[i]["video"] for i in range(len(few.unlabeled))])
        top = torch.softmax(src.model.eval()(x).logits, dim=1).amax(1)
    kw = dict(method="dcat", lam=1.0, preset=P, seed=4, progress=False, device="cpu", epochs=2,
              confidence=float(top.median()))
    live = train_transfer(few, src, "imu", source_cache=False, **kw)
    cached = train_transfer(few, src, "imu", source_cache=True, **kw)
    for col in ("train_mask_frac", "train_mask_frac_unlabeled"):
        np.testing.assert_allclose(cached.history[col], live.history[col], atol=1e-6)
    np.testing.assert_allclose(cached.history["train_loss"], live.history["train_loss"], rtol=2e-3)
    assert 0 < live.history["train_mask_frac_unlabeled"].iloc[0] < 1


def test_a_training_set_without_a_labelled_sample_is_refused(setup):
    """fit and fit_transfer on a training set whose every label is UNLABELED: a clear error
    (cross-entropy has nothing to read), not a run."""
    from dcatkit.train import fit

    sp, src = setup
    train = sp.train.subset(np.arange(16))
    train.labels = np.full(16, UNLABELED, dtype=np.int64)
    msg = r"^the training set has no labelled sample: cross-entropy needs at least one$"
    with pytest.raises(ValueError, match=msg):
        fit(new_model(sp, 0), train, sp.val, preset=P, epochs=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match=msg):
        fit_transfer(new_model(sp, 0), src.model, train, sp.val, lam=1.0, method="kd", preset=P, epochs=1,
                     source_cache=False, progress=False, device="cpu")


def test_the_checkpoint_records_the_unlabeled_mask_actually_used(setup, tmp_path):
    """With unlabeled pairs, the checkpoint's meta names the mask that chose them: the one asked
    for under MCMA (with its threshold for "confidence"), "all (mcma=False)" without MCMA, where
    every pair counts whatever unlabeled_mask says."""
    from dcatkit.checkpoint import load_checkpoint

    sp, src = setup
    train = sp.train.subset(np.arange(len(sp.train)))
    train.labels = train.labels.copy()
    train.labels[30:] = UNLABELED
    kw = dict(lam=1.0, method="kd", preset=P, seed=0, epochs=1, source_cache=False, progress=False, device="cpu")
    got = {}
    for mcma, mask in ((False, "confidence"), (True, "confidence"), (True, "all")):
        path = tmp_path / f"{mcma}_{mask}.pt"
        fit_transfer(new_model(sp, 0), src.model, train, sp.val, mcma=mcma, unlabeled_mask=mask, confidence=0.7,
                     checkpoint=path, **kw)
        meta = load_checkpoint(path)[1]
        got[mcma, mask] = (meta["unlabeled_mask"], meta.get("confidence"))
    assert got == {(False, "confidence"): ("all (mcma=False)", None), (True, "confidence"): ("confidence", 0.7),
                   (True, "all"): ("all", None)}
