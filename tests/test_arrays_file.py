"""Audit 6 (data/arrays.py): a file saved with ``groups="samples"`` loads back, fractional
sample rates are kept as given, a subset load reports the sample rates of the loaded
modalities only, ``load``'s ratios / normalize / split_file reach ``from_arrays``, a file of another
format version is refused, and naming every saved modality is the whole-file load."""
import json

import numpy as np
import pytest

from dcatkit.data import from_arrays, load, save_arrays

KINDS = {"acc": "timeseries", "gyro": "timeseries"}


def _data(n=40, seed=0):
    """Independent samples (no recordings): 2 classes, acc and gyro windows (3 axes x 16)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    return {"acc": rng.normal(size=(n, 3, 16)), "gyro": rng.normal(size=(n, 3, 16))}, labels


def test_a_file_saved_with_groups_samples_loads_as_from_arrays_gives_it(tmp_path):
    """``groups="samples"`` (each sample its own recording) is written as such: the saved file
    loads, with the same parts, ids and groups as ``from_arrays(..., groups="samples")``."""
    arrays, labels = _data()
    path = save_arrays(tmp_path / "s.npz", arrays, labels, groups="samples", kinds=KINDS)
    got = load("arrays", root=path, seed=2)
    want = from_arrays(arrays, labels, groups="samples", kinds=KINDS, seed=2)
    for part in ("train", "val", "test"):
        x, y = getattr(got, part), getattr(want, part)
        assert list(x.ids) == list(y.ids) and list(x.groups) == list(y.groups)
        assert np.array_equal(np.asarray(x.arrays["acc"]), np.asarray(y.arrays["acc"]))
    assert got.train.groups == got.train.ids          # every sample its own recording


def test_sample_rates_come_back_as_given_and_per_loaded_modality(tmp_path):
    """A fractional rate (12.5 Hz) is saved and read back as 12.5, not rounded; a load of one
    modality carries only that modality's rate, as ``from_arrays`` on that modality alone does."""
    arrays, labels = _data()
    rates = {"acc": 12.5, "gyro": 100.0}
    path = save_arrays(tmp_path / "r.npz", arrays, labels, groups="samples", kinds=KINDS, sample_rates=rates)
    assert load("arrays", root=path).train.sample_rates == rates
    gyro = load("arrays", root=path, modalities=["gyro"])
    want = from_arrays({"gyro": arrays["gyro"]}, labels, groups="samples", kinds={"gyro": "timeseries"},
                       sample_rates={"gyro": 100.0})
    assert gyro.train.sample_rates == want.train.sample_rates == {"gyro": 100.0}


def test_load_passes_ratios_and_normalize_on_to_from_arrays(tmp_path):
    """``load("arrays", ratios=..., normalize=False)`` splits and scales as ``from_arrays`` with
    those arguments: 20 / 10 / 10 of 40 samples for ratios (0.5, 0.25, 0.25), and the raw
    values with no normalisation record when ``normalize=False``."""
    arrays, labels = _data()
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups="samples", kinds=KINDS)
    got = load("arrays", root=path, ratios=(0.5, 0.25, 0.25), normalize=False, seed=1)
    want = from_arrays(arrays, labels, groups="samples", kinds=KINDS, ratios=(0.5, 0.25, 0.25), normalize=False,
                       seed=1)
    assert [len(p) for p in got] == [len(p) for p in want] == [20, 10, 10]
    assert got.normalization == want.normalization == {}
    for part in ("train", "val", "test"):
        x, y = getattr(got, part), getattr(want, part)
        assert list(x.ids) == list(y.ids)
        np.testing.assert_array_equal(np.asarray(x.arrays["gyro"]), np.asarray(y.arrays["gyro"]))


def test_load_writes_and_reloads_the_split_file_it_is_given(tmp_path):
    """``load("arrays", split_file=...)`` passes the file on: the first load writes the split
    there, a second load reads it back (``report["split"]["reloaded"]``) with the same parts."""
    arrays, labels = _data()
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups="samples", kinds=KINDS)
    first = load("arrays", root=path, split_file=tmp_path / "split.json")
    assert (tmp_path / "split.json").is_file()
    assert first.report["split"]["split_file"] == str(tmp_path / "split.json")
    again = load("arrays", root=path, split_file=tmp_path / "split.json")
    assert again.report["split"]["reloaded"] is True
    assert [list(p.ids) for p in again] == [list(p.ids) for p in first]


def test_a_file_of_another_format_version_is_refused(tmp_path):
    """A file whose meta names another format (a later ``dcatkit-arrays/2``) is refused with the
    format found and the one this dcatkit reads, not read as if it were the known layout."""
    arrays, labels = _data()
    path = save_arrays(tmp_path / "w.npz", arrays, labels, groups="samples", kinds=KINDS)
    with np.load(path) as f:
        entries = {k: f[k] for k in f.files}
    meta = json.loads(str(entries["meta"]))
    entries["meta"] = np.array(json.dumps({**meta, "format": "dcatkit-arrays/2"}))
    np.savez(tmp_path / "v2.npz", **entries)
    with pytest.raises(ValueError, match=r"format 'dcatkit-arrays/2', this dcatkit reads 'dcatkit-arrays/1'"):
        load("arrays", root=tmp_path / "v2.npz")


def test_naming_every_saved_modality_loads_as_naming_none(tmp_path):
    """``modalities=`` listing every saved modality (in the saved order) is the whole file: the
    same ids and the same report, including ``modality_content`` (each modality's own content,
    which recognises a source trained on fewer modalities of the same samples). Only a true
    subset takes the subset path."""
    arrays, labels = _data()
    path = save_arrays(tmp_path / "m.npz", arrays, labels, groups="samples", kinds=KINDS)
    whole = load("arrays", root=path, seed=1)
    named = load("arrays", root=path, modalities=["acc", "gyro"], seed=1)
    assert set(whole.report) == set(named.report)
    for key, value in whole.report.items():
        assert named.report[key] == value, key
    assert dict(named.report["modality_content"]) == dict(whole.report["modality_content"])
    assert set(named.report["modality_content"]) == {"acc", "gyro"}
    for part in ("train", "val", "test"):
        assert list(getattr(named, part).ids) == list(getattr(whole, part).ids)


@pytest.mark.parametrize("with_ids", [False, True])
def test_a_partial_load_of_a_groups_samples_file_splits_as_the_full_load(tmp_path, with_ids):
    """Identical copies are merged by their content in *every* saved modality, whatever is
    loaded: six windows whose gyro is all zero (acc differs) are six recordings in a gyro-only
    load too, so a source trained on acc and a gyro target see the same train / val / test
    samples for one seed (grouped by the loaded gyro alone, they were one recording and the
    split moved). The full load's split is unchanged, and real copies are still merged."""
    arrays, labels = _data(60)
    arrays["gyro"][:6] = 0.0                          # gyro off in six windows
    arrays["acc"][50], arrays["gyro"][50] = arrays["acc"][7], arrays["gyro"][7]   # one true copy
    labels[50] = labels[7]
    ids = [f"w{i}" for i in range(60)] if with_ids else None
    path = save_arrays(tmp_path / "z.npz", arrays, labels, groups="samples", kinds=KINDS, ids=ids)
    with pytest.warns(UserWarning, match="identical copies"):
        want = from_arrays(arrays, labels, groups="samples", kinds=KINDS, ids=ids, seed=0)
    parts = ("train", "val", "test")
    for modalities in (None, ["acc", "gyro"], ["acc"], ["gyro"]):
        with pytest.warns(UserWarning, match="identical copies"):
            got = load("arrays", root=path, modalities=modalities, seed=0)
        for part in parts:
            x, y = getattr(got, part), getattr(want, part)
            assert list(x.ids) == list(y.ids), (modalities, part)
            assert list(x.groups) == list(y.groups), (modalities, part)
        assert got.report["identical_samples"] == 1
