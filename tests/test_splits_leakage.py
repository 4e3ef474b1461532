"""Leakage and input checks of dcatkit.data.splits that the loaders never exercise: a sample
id under two recording names, a recording of two subjects in a subject split, and a subject
list of the wrong length."""
import numpy as np
import pytest

import dcatkit.data as D
from dcatkit.data.dataset import PairedDataset, Splits


def _ds(ids, groups, subjects):
    n = len(ids)
    return PairedDataset({"imu": np.zeros((n, 1, 2), np.float32)}, [0] * n, ["a"], subjects, ids, None, groups)


def test_one_sample_under_two_recording_names_is_leakage():
    """Sample "w" copied into the test part under another recording name: the recordings are
    disjoint, the samples are not, and check_leakage names the shared sample."""
    leaky = Splits(_ds(["w", "x"], ["r1", "r1"], [1, 1]), _ds(["y"], ["r2"], [2]),
                   _ds(["w"], ["copy-of-r1"], [3]), {"split": {"kind": "id"}})
    assert set(leaky.train.groups).isdisjoint(leaky.test.groups)          # nothing shared by recording
    with pytest.raises(ValueError, match=r"1 sample\(s\) in more than one part — train & test: 1 \(e\.g\. \['w'\]\)"):
        D.check_leakage(leaky)
    clean = Splits(_ds(["w", "x"], ["r1", "r1"], [1, 1]), _ds(["y"], ["r2"], [2]), _ds(["z"], ["r3"], [3]),
                   {"split": {"kind": "id"}})
    assert D.check_leakage(clean)["recordings"] == "disjoint"


def _recordings(n_subj=6, per_rec=2, recs_per_subj=3, seed=0):
    rng = np.random.default_rng(seed)
    n = n_subj * recs_per_subj * per_rec
    subjects = np.repeat(np.arange(n_subj), recs_per_subj * per_rec)
    groups = [f"rec{i // per_rec}" for i in range(n)]
    labels = np.array([(i // per_rec) % 2 for i in range(n)])
    return {"imu": rng.normal(size=(n, 2, 8)).astype(np.float32)}, labels, subjects, groups


@pytest.mark.parametrize("split", ["ood", "loso", ("group_kfold", 3)])
def test_a_recording_with_windows_of_two_subjects_is_refused_by_a_subject_split(split):
    """rec0's second window is given subject 1 (the recording's first is subject 0): a subject
    split cannot place that recording, so it names the recording and both subjects; the ID
    split (recordings, not subjects) takes the same data."""
    arrays, labels, subjects, groups = _recordings()
    subjects = subjects.copy()
    assert groups[0] == groups[1] == "rec0" and subjects[0] == subjects[1] == 0
    subjects[1] = 1
    with pytest.raises(ValueError, match=r"recording 'rec0' has windows of subjects 0 and 1"):
        D.from_arrays(arrays, labels, subjects, groups=groups, split=split)
    sp = D.from_arrays(arrays, labels, subjects, groups=groups, split="id")
    assert len(sp.train) + len(sp.val) + len(sp.test) == len(labels)


@pytest.mark.parametrize("extra", [-1, 1])
def test_subjects_of_another_length_than_labels_are_refused(extra):
    """One subject per sample: a list one shorter or one longer is an error naming both counts
    (a longer one was silently cut, and a shorter one left samples out of every part)."""
    arrays, labels, subjects, groups = _recordings()
    n = len(labels)
    bad = np.concatenate([subjects, [0]]) if extra > 0 else subjects[:-1]
    with pytest.raises(ValueError, match=rf"subjects has {n + extra} entries, labels {n}"):
        D.from_arrays(arrays, labels, bad, groups=groups, split="ood")


def test_a_negative_label_is_refused_naming_its_position():
    """-1 is the kit's mark of an unlabeled pair (data.dataset.UNLABELED), not a class: from_arrays
    takes labelled data only, so a -1 is named with its position, not split into train/val/test."""
    arrays, labels, subjects, groups = _recordings()
    labels = labels.copy()
    labels[3] = -1
    with pytest.raises(ValueError, match=r"class indices 0\.\.K-1.*1 are negative, the first at position 3: -1"):
        D.from_arrays(arrays, labels, subjects, groups=groups)
