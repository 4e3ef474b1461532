"""Audit 6 (data/__init__.py): ``load``'s seed reaches the label hiding of every fold under
``n_labeled``, ``split_file`` reaches the simulated data's split and the
simulated dataset refuses a root."""
import pytest

from dcatkit.data import load
from dcatkit.data.dataset import hide_labels


def test_n_labeled_hides_labels_of_every_fold_with_the_load_seed():
    """With a cross-validation split, ``n_labeled`` hides the labels of each fold with the data
    seed too: fold by fold, ``hide_labels(fold, k, seed)``."""
    got = load("synthetic", n_samples=90, split="loso", modalities=["imu"], n_subjects=3, seed=5, n_labeled=8)
    want = load("synthetic", n_samples=90, split="loso", modalities=["imu"], n_subjects=3, seed=5)
    for g, w in zip(got, want, strict=True):
        assert list(g.train.ids) == list(hide_labels(w, 8, 5).train.ids)


def test_the_split_file_is_used_for_the_simulated_data(tmp_path):
    """``load("synthetic", split_file=...)`` writes the split to that file, and a second load
    reads it back (``report["split"]["reloaded"]``) with the same parts."""
    first = load("synthetic", n_samples=60, modalities=["imu"], split_file=tmp_path / "split.json")
    assert (tmp_path / "split.json").is_file()
    assert first.report["split"]["split_file"] == str(tmp_path / "split.json")
    again = load("synthetic", n_samples=60, modalities=["imu"], split_file=tmp_path / "split.json")
    assert again.report["split"]["reloaded"] is True
    assert [list(p.ids) for p in again] == [list(p.ids) for p in first]


def test_the_simulated_dataset_refuses_a_root():
    """``load("synthetic", root=...)`` is an error saying the data is simulated (a root meant for
    a real dataset must not silently train on simulated data)."""
    with pytest.raises(ValueError, match="the synthetic dataset is simulated: it takes no root"):
        load("synthetic", root="~/data/UESTC-MMEA-CL", n_samples=60)
