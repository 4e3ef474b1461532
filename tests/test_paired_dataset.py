"""Audit 6 (data/dataset.py): PairedDataset's checks of labels, groups and float audio (both
ends of each range), unknown subjects as -1, subset keeping sample rates, training_set's join
and class check, and thin_validation's dropped-recording count."""
import numpy as np
import pytest

from dcatkit.data import PairedDataset


def test_a_label_below_unlabeled_is_refused():
    """Labels lie in [0, K) or are -1 (UNLABELED): -2 is refused with the range found."""
    with pytest.raises(ValueError, match=r"found range \[-2, 1\]"):
        PairedDataset({"imu": np.zeros((3, 2, 8), np.float32)}, [0, -2, 1], ["a", "b"])
    assert PairedDataset({"imu": np.zeros((3, 2, 8), np.float32)}, [0, -1, 1], ["a", "b"]).n_unlabeled == 1


def test_a_single_sample_with_a_label_out_of_range_is_refused():
    """The label range is checked for a dataset of one sample too (label 2 for 2 classes)."""
    with pytest.raises(ValueError, match=r"found range \[2, 2\]"):
        PairedDataset({"imu": np.zeros((1, 2, 8), np.float32)}, [2], ["a", "b"])


def test_float_audio_at_pcm_scale_is_refused_also_when_only_its_negative_peak_is():
    """The peak of a float waveform is max |x|: int16 PCM cast to float whose largest value is
    small but whose smallest is -20000 is refused as not in [-1, 1], like its mirror image."""
    wave = np.full((2, 64), 0.5, np.float32)
    wave[1, 3] = -20000.0
    for w in (wave, -wave):
        with pytest.raises(ValueError, match=r"not a float waveform in \[-1, 1\].*peak here 20000"):
            PairedDataset({"audio": w}, [0, 1], ["a", "b"])


def test_unknown_subjects_are_minus_one():
    """Without ``subjects`` every sample's subject is -1 (unknown), in the array and in each
    item, never a real subject id such as 0."""
    d = PairedDataset({"imu": np.zeros((3, 2, 8), np.float32)}, [0, 1, 0], ["a", "b"])
    assert d.subjects.tolist() == [-1, -1, -1] and d[1]["subject"] == -1


def test_groups_of_another_length_are_refused():
    """``groups`` needs one recording per sample: 2 groups for 3 samples is refused, naming
    the counts."""
    with pytest.raises(ValueError, match=r"groups \(2\) must have 3 entries"):
        PairedDataset({"imu": np.zeros((3, 2, 8), np.float32)}, [0, 1, 0], ["a", "b"], groups=["r1", "r2"])


def test_a_subset_keeps_the_sample_rates():
    """``subset`` keeps the modalities' sample rates (an audio model reads its rate from them)."""
    d = PairedDataset({"audio": np.zeros((3, 64), np.float32)}, [0, 1, 0], ["a", "b"], sample_rates={"audio": 8000})
    assert d.subset([0, 2]).sample_rates == {"audio": 8000}


def _part(ids, labels, groups=None, classes=("a", "b"), rates=None, norm=None):
    x = np.arange(len(ids) * 16, dtype=np.float32).reshape(len(ids), 2, 8)
    return PairedDataset({"imu": x}, labels, list(classes), ids=ids, groups=groups, sample_rates=rates,
                         normalization=norm)


def test_training_set_joins_train_and_unlabeled_keeping_rates_and_scaling():
    """training_set is the training part then the unlabeled one, the latter's labels all -1
    whatever it held, with the training part's sample rates and normalisation record."""
    from dcatkit.data.dataset import Splits, training_set

    norm = {"imu": {"method": "minmax", "min": [0.0, 1.0], "max": [2.0, 3.0], "from": "train"}}
    train = _part(["t0", "t1"], [0, 1], rates={"imu": 50}, norm=norm)
    extra = _part(["u0", "u1", "u2"], [1, 1, 0], rates={"imu": 50}, norm=norm)
    joined = training_set(Splits(train, train, train, {}, unlabeled=extra))
    assert joined.labels.tolist() == [0, 1, -1, -1, -1] and joined.ids == ["t0", "t1", "u0", "u1", "u2"]
    assert joined.sample_rates == {"imu": 50} and joined.normalization == train.normalization


def test_training_set_refuses_parts_with_other_classes():
    """An unlabeled part whose classes differ from the training part's is refused."""
    from dcatkit.data.dataset import Splits, training_set

    train, extra = _part(["t0"], [0]), _part(["u0"], [0], classes=("a", "c"))
    with pytest.raises(ValueError, match="they must match"):
        training_set(Splits(train, train, train, {}, unlabeled=extra))


def test_thin_validation_counts_dropped_recordings_and_keeps_the_unlabeled_part():
    """thin_validation's ``n_dropped`` counts recordings (2 of its 3 recordings, 6 windows),
    and the unlabeled part passes through untouched."""
    from dcatkit.data.dataset import Splits, thin_validation

    val = _part([f"v{i}" for i in range(6)], [0, 0, 1, 1, 0, 0], groups=["r0", "r0", "r1", "r1", "r2", "r2"])
    extra = _part(["u0"], [0])
    thin = thin_validation(Splits(val, val, val, {}, unlabeled=extra), 1, seed=0)
    assert thin.report["validation"]["n_dropped"] == 2 and len(set(thin.val.groups)) == 1
    assert thin.unlabeled is extra


def test_rows_of_two_caches_are_joined_each_from_its_own_array():
    """``concat_rows`` of lazy rows over two different arrays (two caches) reads each row from
    its own array, as the eager concatenation gives; only rows of one array become one LazyRows."""
    from dcatkit.data.dataset import concat_rows
    from dcatkit.data.splits import LazyRows

    a, b = np.arange(8, dtype=np.float32).reshape(4, 2), 100 + np.arange(8, dtype=np.float32).reshape(4, 2)
    joined = concat_rows([LazyRows(a, [3, 0]), LazyRows(b, [1, 2])])
    np.testing.assert_array_equal(np.asarray(joined), np.concatenate([a[[3, 0]], b[[1, 2]]]))
    np.testing.assert_array_equal(joined[2], b[1])
