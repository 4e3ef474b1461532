"""dcatkit.experiment's train_unimodal / train_transfer: the seed given is the seed trained with,
the test metrics are the test part's, the two names of the target must agree, and unlabeled
pairs may not hold a test subject of a subject split."""
import numpy as np
import pytest

from dcatkit.data import load
from dcatkit.data.dataset import UNLABELED, PairedDataset, Splits
from dcatkit.experiment import check_unlabeled, train_transfer, train_unimodal
from dcatkit.train import evaluate
from helpers import TINY, same_state, tiny_splits

P = TINY["imu"]


@pytest.fixture(scope="module")
def setup():
    sp = tiny_splits(60, modalities=("imu", "video"))
    # a test part smaller than validation: metrics of the wrong part have another sample count
    sp = Splits(sp.train, sp.val, sp.test.subset(np.arange(5)), sp.report)
    assert len(sp.val) != len(sp.test)
    src = train_unimodal(sp, "video", preset=TINY["video"], seed=0, progress=False, device="cpu")
    return sp, src


def test_a_given_seed_is_the_seed_trained_with(setup):
    """seed=3 trains as a preset whose own seed is 3 (and whose seed differs from P's), for the
    baseline and for a transfer run; the run records 3."""
    sp, src = setup
    three = P.with_(seed=3)
    assert P.seed != 3
    kw = dict(epochs=1, progress=False, device="cpu")
    a = train_unimodal(sp, "imu", preset=P, seed=3, **kw)
    b = train_unimodal(sp, "imu", preset=three, **kw)
    assert a.meta["seed"] == b.meta["seed"] == 3 and same_state(a.model, b.model)
    a = train_transfer(sp, src, "imu", preset=P, seed=3, source_cache=False, **kw)
    b = train_transfer(sp, src, "imu", preset=three, source_cache=False, **kw)
    assert a.meta["seed"] == b.meta["seed"] == 3 and same_state(a.model, b.model)


def test_the_test_metrics_are_the_test_parts(setup):
    """Run.test is evaluate() of the kept model on splits.test (5 samples), not on validation (12)."""
    sp, src = setup
    kw = dict(preset=P, epochs=1, progress=False, device="cpu")
    for run in (train_unimodal(sp, "imu", **kw), train_transfer(sp, src, "imu", source_cache=False, **kw)):
        want = evaluate(run.model, sp.test, "imu", device="cpu")
        assert int(np.asarray(run.test["confusion"]).sum()) == len(sp.test) == 5
        np.testing.assert_array_equal(run.test["confusion"], want["confusion"])
        assert run.test["f1"] == pytest.approx(want["f1"])


def test_target_and_target_modality_that_disagree_are_refused(setup):
    sp, src = setup
    with pytest.raises(ValueError, match=r"target='video' and target_modality='imu' disagree"):
        train_transfer(sp, src, "imu", target="video", preset=P, epochs=1, progress=False)


def test_unlabeled_pairs_of_a_test_subject_are_leakage_in_a_subject_split():
    """ood: recordings (renamed, so no recording is shared) of the test part's subjects given as
    unlabeled pairs leak those people into training: refused, naming the test part. The same
    recordings under the ID split (recordings, not subjects) are accepted."""
    ood = load("synthetic", n_samples=160, modalities=("imu",), split="ood", seed=1)
    t = ood.test
    renamed = PairedDataset(dict(t.arrays), np.full(len(t), UNLABELED), t.classes, t.subjects,
                            [f"other-{i}" for i in t.ids], t.sample_rates, [f"other-{g}" for g in t.groups])
    assert set(renamed.subjects.tolist()) <= set(t.subjects.tolist())
    assert not set(renamed.subjects.tolist()) & set(ood.val.subjects.tolist())
    with pytest.raises(ValueError, match=r"leakage through the unlabeled pairs: \d+ subject\(s\) in unlabeled & test"):
        check_unlabeled(Splits(ood.train, ood.val, ood.test, ood.report, unlabeled=renamed))
    as_id = {**ood.report, "split": {**ood.report["split"], "kind": "id", "split": "id"}}
    check_unlabeled(Splits(ood.train, ood.val, ood.test, as_id, unlabeled=renamed))
