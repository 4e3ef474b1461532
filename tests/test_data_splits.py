"""Splits, IMU min-max scaling, from_arrays, the synthetic entry point and the cache."""
import json
import re
import shutil
import warnings

import numpy as np
import pytest

import dcatkit.data as D
from dcatkit.data import cache as C
from dcatkit.data.dataset import PairedDataset
from dcatkit.data.preprocess import UnreadableFile
from dcatkit.data.splits import LazyRows
from helpers import rows_of


def _arrays(n=200, k=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    arrays = {"imu": rng.normal(size=(n, 3, 16)).astype(np.float32) * 5 + 2,
              "video": rng.integers(0, 255, (n, 2, 3, 8, 8), dtype=np.uint8),
              "audio": rng.normal(size=(n, 100)).astype(np.float32)}
    return arrays, labels, np.arange(n) % 10


def test_from_arrays_sizes_items_and_stratification():
    arrays, labels, subjects = _arrays()
    s = D.from_arrays(arrays, labels, subjects, groups="samples", classes=list("abcd"), seed=1)
    assert [len(d) for d in s] == [140, 30, 30]
    item = s.val[0]
    assert item["imu"].shape == (3, 16) and item["imu"].dtype.is_floating_point
    assert item["video"].shape == (2, 3, 8, 8) and str(item["video"].dtype) == "torch.uint8"
    assert item["audio"].shape == (100,)
    assert s.classes == list("abcd")
    for d in (s.val, s.test):  # stratified: 30 samples of 4 balanced classes -> 7 or 8 each
        assert set(np.bincount(d.labels, minlength=4)) <= {7, 8}
    # each item keeps its own data: video of id i equals the input row i
    i = rows_of(arrays, s.test.ids)[3]
    assert np.array_equal(s.test[3]["video"].numpy(), arrays["video"][i])
    assert s.test[3]["label"] == labels[i] and s.test[3]["subject"] == subjects[i]
    all_ids = sorted(r for d in s for r in rows_of(arrays, d.ids))
    assert all_ids == list(range(200))


def test_ood_split_is_subject_disjoint():
    arrays, labels, subjects = _arrays()
    s = D.from_arrays(arrays, labels, subjects, groups="samples", split="ood", seed=3)
    parts = [set(d.subjects.tolist()) for d in s]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(range(10))
    assert s.report["split"]["subjects"]["test"] == sorted(parts[2])


def test_ood_without_subjects_says_what_is_missing():
    arrays, labels, _ = _arrays()
    with pytest.raises(ValueError, match="subject"):
        D.from_arrays(arrays, labels, groups="samples", split="ood")


def test_windows_of_a_recording_never_straddle_splits():
    arrays, labels, subjects = _arrays()
    groups = [f"rec{i // 5}" for i in range(200)]
    labels = np.array([(i // 5) % 4 for i in range(200)])
    s = D.from_arrays(arrays, labels, subjects, groups=groups, seed=0)
    seen = [{groups[r] for r in rows_of(arrays, d.ids)} for d in s]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(len(x) for x in seen) == 40


def test_imu_minmax_uses_train_statistics_only():
    arrays, labels, subjects = _arrays()
    pos = [str(i) for i in range(len(labels))]  # given ids: the split ignores IMU values (content ids would not)
    out = int(D.from_arrays(arrays, labels, subjects, ids=pos, groups="samples", seed=0).test.ids[0])
    arrays["imu"][out] += 100.0  # an extreme test sample must not move the statistics
    s = D.from_arrays(arrays, labels, subjects, ids=pos, groups="samples", seed=0)
    train_raw = arrays["imu"][[int(i) for i in s.train.ids]]
    lo, hi = train_raw.min(axis=(0, 2)), train_raw.max(axis=(0, 2))
    np.testing.assert_allclose(s.report["imu_minmax"]["min"], lo, rtol=1e-6)
    np.testing.assert_allclose(s.report["imu_minmax"]["max"], hi, rtol=1e-6)
    assert s.train.imu_minmax == s.report["imu_minmax"]
    tr = s.train.arrays["imu"]
    np.testing.assert_allclose(tr.min(axis=(0, 2)), -1, atol=1e-6)
    np.testing.assert_allclose(tr.max(axis=(0, 2)), 1, atol=1e-6)
    assert s.test[s.test.ids.index(str(out))]["imu"].min() > 1.5  # scaled beyond 1, not clipped
    for d in (s.val, s.test):  # val/test scaled with the same affine map
        raw = arrays["imu"][[int(i) for i in d.ids]]
        np.testing.assert_allclose(d.arrays["imu"], 2 * (raw - lo[:, None]) / (hi - lo)[:, None] - 1, atol=1e-5)


def test_split_is_seeded_and_written_then_reloaded(tmp_path):
    arrays, labels, subjects = _arrays()
    f = tmp_path / "split.json"
    a = D.from_arrays(arrays, labels, subjects, groups="samples", seed=5, split_file=f)
    stored = json.loads(f.read_text())
    assert sorted(stored["test"]) == sorted(a.test.ids) and stored["split"] == "id" and stored["seed"] == 5
    b = D.from_arrays(arrays, labels, subjects, groups="samples", seed=99, split_file=f)  # file wins over the seed
    assert b.test.ids == a.test.ids and b.report["split"]["reloaded"]
    c = D.from_arrays(arrays, labels, subjects, groups="samples", seed=5)
    d = D.from_arrays(arrays, labels, subjects, groups="samples", seed=6)
    assert c.test.ids == a.test.ids and d.test.ids != a.test.ids
    with pytest.raises(ValueError, match="'id' split"):
        D.from_arrays(arrays, labels, subjects, groups="samples", split="ood", split_file=f)
    with pytest.raises(ValueError, match="does not place"):
        D.from_arrays(arrays, labels, subjects, groups="samples", ids=[f"x{i}" for i in range(200)], split_file=f)


def test_a_damaged_split_file_is_named_with_the_fix(tmp_path):
    """A split file cut short (an interrupted write or copy) was json's bare JSONDecodeError, naming
    no file; one holding other JSON a KeyError or AttributeError. Now a ValueError naming the file
    and saying to delete it to make a new split."""
    arrays, labels, subjects = _arrays()
    f = tmp_path / "split.json"
    D.from_arrays(arrays, labels, subjects, groups="samples", split_file=f)
    text = f.read_text()
    for damaged, said in ((text[:len(text) // 2], "is not valid JSON"), ("[1, 2]", "is not a split"),
                          ('{"split": "id", "train": [], "val": []}', "is not a split")):
        f.write_text(damaged)
        with pytest.raises(ValueError, match=rf"split file {re.escape(str(f))} {said} .*delete it to make a new split"):
            D.from_arrays(arrays, labels, subjects, groups="samples", split_file=f)


def test_load_synthetic_normalises_imu_and_splits_by_subject():
    s = D.load("synthetic", n_samples=160, n_subjects=6, split="ood", modalities=("imu", "audio"), seed=2)
    assert s.train.modalities == ("imu", "audio") and len(s.classes) == 8
    parts = [set(d.subjects.tolist()) for d in s]
    assert not (parts[0] & parts[2]) and not (parts[0] & parts[1])
    x = s.train.arrays["imu"]
    assert np.isclose(x.min(), -1) and np.isclose(x.max(), 1)
    with pytest.raises(ValueError, match="expected one of"):
        D.load("imagenet")
    with pytest.raises(ValueError, match="root"):
        D.load("uestc")


def test_lazy_rows_keep_memmap_unloaded(tmp_path):
    base = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.uint8, shape=(10, 2, 3, 4, 4))
    base[:] = np.arange(10, dtype=np.uint8)[:, None, None, None, None]
    ro = np.load(tmp_path / "v.npy", mmap_mode="r")
    rows = LazyRows(ro, np.array([7, 2, 5]))
    ds = PairedDataset({"video": rows}, [0, 1, 0], ["a", "b"])
    assert ds.input_shape("video") == (2, 3, 4, 4)
    assert int(ds[0]["video"][0, 0, 0, 0]) == 7
    sub = ds.subset([2, 0])
    assert isinstance(sub.arrays["video"], LazyRows)
    assert [int(sub[i]["video"].flatten()[0]) for i in range(2)] == [5, 7]


# --------------------------------------------------------------------------- cache

def _decoder(calls, fail_on=None, bad=None, nan=None):
    def decode(rec):
        calls.append(rec)
        if rec == fail_on:
            raise KeyboardInterrupt  # an interruption in the middle of the build
        if rec == bad:
            raise UnreadableFile(f"/data/{rec}.mp4", "moov atom not found")
        k = rec + 1
        return {"arrays": {"imu": np.full((k, 2, 3), np.nan if rec == nan else rec, np.float32), "video": np.full((k, 1, 3, 2, 2), rec, np.uint8)},
                "labels": [rec % 2] * k, "subjects": [rec] * k, "ids": [f"{rec}#{j}" for j in range(k)],
                "groups": [str(rec)] * k}
    return decode


def test_cache_built_once_reused_and_rebuilt_when_settings_change(tmp_path):
    calls = []
    kw = dict(classes=["a", "b"], settings={"window": 3}, cache_dir=tmp_path, progress=False)
    w1 = C.collect("toy", [0, 1, 2], _decoder(calls), **kw)
    assert calls == [0, 1, 2] and len(w1) == 6
    assert isinstance(w1.arrays["video"], np.memmap) and w1.arrays["imu"].dtype == np.float16
    w2 = C.collect("toy", [0, 1, 2], _decoder(calls), **kw)
    assert calls == [0, 1, 2]  # nothing decoded again
    assert w2.ids == w1.ids and np.array_equal(np.asarray(w2.arrays["video"]), np.asarray(w1.arrays["video"]))
    assert w2.arrays["video"][5].max() == 2 and w2.subjects.tolist() == [0, 1, 1, 2, 2, 2]
    C.collect("toy", [0, 1, 2], _decoder(calls), **dict(kw, settings={"window": 4}))
    assert calls == [0, 1, 2] * 2


def test_interrupted_cache_build_is_never_reused(tmp_path):
    calls = []
    kw = dict(classes=["a", "b"], settings={}, cache_dir=tmp_path, progress=False)
    with pytest.raises(KeyboardInterrupt):
        C.collect("toy", [0, 1, 2], _decoder(calls, fail_on=1), **kw)
    assert list(tmp_path.iterdir()) == []  # neither a final folder nor a leftover temp folder
    calls.clear()
    w = C.collect("toy", [0, 1, 2], _decoder(calls), **kw)
    assert calls == [0, 1, 2] and len(w) == 6
    # a folder whose marker is missing (e.g. killed mid-copy) is rebuilt, not read
    folder = next(p for p in tmp_path.iterdir() if p.name.startswith("toy-"))
    (folder / C.MARKER).unlink()
    (folder / "meta.json").write_text("garbage")
    calls.clear()
    w = C.collect("toy", [0, 1, 2], _decoder(calls), **kw)
    assert calls == [0, 1, 2] and (folder / C.MARKER).exists() and len(w) == 6


def test_unreadable_file_raises_or_is_skipped_and_reported(tmp_path):
    kw = dict(classes=["a", "b"], settings={}, cache_dir=None, progress=False)
    with pytest.raises(UnreadableFile, match=r"/data/1\.mp4.*on_error='skip'"):
        C.collect("toy", [0, 1, 2], _decoder([], bad=1), **kw)
    w = C.collect("toy", [0, 1, 2], _decoder([], bad=1), on_error="skip", **kw)
    assert w.report["n_skipped"] == 1 and "/data/1.mp4" in w.report["skipped"][0]
    assert not any(i.startswith("1#") for i in w.ids) and len(w) == 4
    # a decoder that lets NaN through: the recording is refused like an unreadable one, never cached
    with pytest.raises(UnreadableFile, match=r"cannot read 2: NaN or infinite values in its decoded imu.*on_error"):
        C.collect("toy", [0, 1, 2], _decoder([], nan=2), **{**kw, "cache_dir": tmp_path / "c"})
    w = C.collect("toy", [0, 1, 2], _decoder([], nan=2), on_error="skip", **{**kw, "cache_dir": tmp_path / "c"})
    assert w.report["n_skipped"] == 1 and "NaN" in w.report["skipped"][0] and len(w) == 3
    assert np.isfinite(np.asarray(w.arrays["imu"], dtype=np.float32)).all()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_cache_built_skipping_an_unreadable_file_is_not_read_back_under_raise(tmp_path):
    """on_error changes the output (a skip-built cache lacks the unreadable recording): a later
    load with on_error='raise' must decode again and raise, not reuse the skip-built windows."""
    kw = dict(classes=["a", "b"], settings={}, cache_dir=tmp_path, progress=False)
    w = C.collect("toy", [0, 1, 2], _decoder([], bad=1), on_error="skip", **kw)
    assert len(w) == 1 + 3 and w.report["n_skipped"] == 1
    with pytest.raises(UnreadableFile, match=r"/data/1\.mp4"):
        C.collect("toy", [0, 1, 2], _decoder([], bad=1), on_error="raise", **kw)


def test_from_arrays_refuses_what_a_cast_or_a_split_would_silently_change():
    """Labels that are names, fractions, NaN or negative; float video outside [0, 1] (read as
    already scaled: 255x too bright); NaN audio; split ratios that are not three fractions summing
    to 1: each a ValueError saying what was expected and what was found."""
    arrays, labels, subjects = _arrays(n=40)
    kw = dict(groups="samples", classes=list("abcd"))
    with pytest.raises(ValueError, match=r"labels must be class indices 0..K-1 .*got dtype <U4"):
        D.from_arrays(arrays, np.array(["walk"] * 40), **kw)
    with pytest.raises(ValueError, match=r"1 are not whole numbers .*position 5: 0.5"):
        D.from_arrays(arrays, np.where(np.arange(40) == 5, 0.5, labels), **kw)
    with pytest.raises(ValueError, match=r"1 are not whole numbers .*position 7: nan"):
        D.from_arrays(arrays, np.where(np.arange(40) == 7, np.nan, labels), **kw)
    with pytest.raises(ValueError, match=r"1 are negative, the first at position 3: -2"):
        D.from_arrays(arrays, np.where(np.arange(40) == 3, -2, labels), **kw)
    whole = D.from_arrays(arrays, labels.astype(float), **kw)           # whole-number floats are labels
    assert sorted(np.concatenate([d.labels for d in whole])) == sorted(labels)
    with pytest.raises(ValueError, match=r"'video' \(video\) holds floats in \[0, 254\].*pass uint8"):
        D.from_arrays({**arrays, "video": arrays["video"].astype(np.float32)}, labels, **kw)
    D.from_arrays({**arrays, "video": arrays["video"].astype(np.float32) / 255}, labels, **kw)   # scaled: fine
    # integer frames other than uint8 trained unscaled (0-255 as floats) while the Predictor scales them;
    # integer PCM trained at +-32768 while the Predictor asks for [-1, 1]: both refused, with the cast
    with pytest.raises(ValueError, match=r"'video' \(video\) holds int64 frames.*astype\(np.uint8\)"):
        D.from_arrays({**arrays, "video": arrays["video"].astype(np.int64)}, labels, **kw)
    pcm = (arrays["audio"] * 32767).astype(np.int16)
    with pytest.raises(ValueError, match=r"'audio' \(audio\) holds integer samples \(int16\).*pass x / 32768"):
        D.from_arrays({**arrays, "audio": pcm}, labels, **kw)
    D.from_arrays({**arrays, "audio": pcm / 32768}, labels, **kw)       # scaled: fine
    # the same refusal for a PairedDataset built by hand (the check is on the dtype, so cheap on a memmap);
    # an integer spectrogram (a precomputed (n_mels, F) audio input) is not PCM and is left alone
    with pytest.raises(ValueError, match=r"'video' \(video\) holds uint16 frames.*astype\(np.uint8\)"):
        D.PairedDataset({"video": arrays["video"].astype(np.uint16)}, labels, list("abcd"))
    with pytest.raises(ValueError, match=r"'audio' \(audio\) holds integer samples \(uint8\).*pass \(x - 128\) / 128"):
        D.PairedDataset({"audio": (arrays["audio"] * 127 + 128).astype(np.uint8)}, labels, list("abcd"))
    assert len(D.PairedDataset({"audio": np.zeros((40, 8, 5), np.int16)}, labels, list("abcd"))) == 40
    audio = arrays["audio"].copy()
    audio[4, 10] = np.nan
    with pytest.raises(ValueError, match=r"modality 'audio' has 1 NaN or infinite values"):
        D.from_arrays({**arrays, "audio": audio}, labels, **kw)
    for bad in [(0.5, 0.5, 0.5), (1.2, -0.1, -0.1), (0.7, 0.3), (0.0, 0.5, 0.5), (70, 15, 15)]:
        with pytest.raises(ValueError, match=r"ratios must be the \(train, val, test\) fractions"):
            D.from_arrays(arrays, labels, ratios=bad, **kw)
    assert [len(d) for d in D.from_arrays(arrays, labels, ratios=(0.5, 0.25, 0.25), **kw)] == [20, 10, 10]


def test_a_recording_is_stratified_by_its_most_common_label():
    """A recording whose windows carry several labels counts for the label most of its windows
    have (the first of equal counts), whatever the windows' order."""
    from dcatkit.data.splits import _recordings

    groups = ["r1", "r1", "r1", "r1", "r2", "r2", "r3", "r3", "r3", "r3"]
    labels = np.array([2, 0, 0, 3, 1, 1, 3, 1, 1, 3])                # r1: 0 (twice), r2: 1, r3: 1 and 3 tie -> 1
    names, glabel, gsubject, mixed = _recordings(groups, labels, np.zeros(10, np.int64), "id")
    assert names == ["r1", "r2", "r3"] and glabel == {"r1": 0, "r2": 1, "r3": 1} and mixed == 2


def test_too_few_recordings_for_three_parts_is_said_so():
    arrays, labels, _ = _arrays(n=2, k=2)
    for split in ("id", "ood"):
        with pytest.raises(ValueError, match="cannot split 2 units into train/val/test"):
            D.from_arrays(arrays, labels, np.arange(2), groups="samples", split=split)


def test_content_ids_see_dtype_shape_and_order_free_fingerprint():
    """A sample's content id covers its dtype and shape, not only its bytes (the same bytes read
    as another shape or type are another sample); the data fingerprint is of the set of ids, so a
    reordered copy of the same data has the same fingerprint."""
    from dcatkit.data.splits import content_ids, data_fingerprint

    x = np.arange(24, dtype=np.float32).reshape(1, 4, 6)
    same_bytes = [x.reshape(1, 6, 4), x.reshape(1, 2, 12), x.view(np.int32)]
    ids = [content_ids({"imu": a})[0] for a in [x] + same_bytes]
    assert len(set(ids)) == 4
    arrays, labels, subjects = _arrays(n=40)
    a = D.from_arrays(arrays, labels, subjects, groups="samples")
    order = np.random.default_rng(0).permutation(40)
    b = D.from_arrays({m: v[order] for m, v in arrays.items()}, labels[order], subjects[order], groups="samples")
    assert b.report["data_fingerprint"] == a.report["data_fingerprint"]
    assert data_fingerprint(["b", "a", "c"]) == data_fingerprint(["a", "b", "c"]) != data_fingerprint(["a", "b"])


def test_a_constant_channel_scales_to_zero_in_every_part():
    """A channel with one value in the training part (hi == lo) maps to 0 in train, val and test,
    whatever value val and test hold there (there is no range to scale by)."""
    from dcatkit.data.preprocess import minmax_apply, minmax_stats

    train = np.stack([np.full((2, 5), 3.0), np.random.default_rng(0).normal(size=(2, 5))], axis=1)   # (2, 2, 5)
    lo, hi = minmax_stats(train)
    assert lo[0] == hi[0] == 3.0
    other = train + 1.0                                              # val / test: another constant there
    for x in (train, other):
        out = minmax_apply(x, lo, hi)
        assert (out[:, 0] == 0).all()
        np.testing.assert_allclose(out[:, 1], 2 * (x[:, 1] - lo[1]) / (hi[1] - lo[1]) - 1, rtol=1e-6)


def test_a_label_equal_to_the_number_of_classes_is_refused():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\] for 2 classes"):
        PairedDataset({"imu": np.zeros((3, 1, 4), np.float32)}, [0, 1, 2], ["a", "b"])
    assert len(PairedDataset({"imu": np.zeros((3, 1, 4), np.float32)}, [0, 1, -1], ["a", "b"])) == 3  # -1: unlabeled


def test_unequal_val_and_test_ratios_land_where_asked():
    """ratios = (train, val, test): with unequal val and test shares the sizes are not swapped,
    for sample splits and subject splits."""
    import numpy as np

    from dcatkit.data.splits import from_arrays

    rng = np.random.default_rng(0)
    n = 100
    arrays = {"imu": rng.normal(size=(n, 3, 8)).astype(np.float32)}
    labels, subjects = np.arange(n) % 4, np.arange(n) % 10
    sp = from_arrays(arrays, labels, subjects=subjects, groups="samples", ratios=(0.6, 0.1, 0.3))
    assert [len(sp.train), len(sp.val), len(sp.test)] == [60, 10, 30]
    ood = from_arrays(arrays, labels, subjects=subjects, groups="samples", split="ood", ratios=(0.6, 0.1, 0.3))
    assert [len(set(ood.val.subjects)), len(set(ood.test.subjects))] == [1, 3]


def test_stratified_draw_gives_the_extra_labels_to_the_largest_remainders():
    """5 of 14 recordings, classes of 6 / 5 / 3: quotas 2.14 / 1.79 / 1.07 round down to 2 / 1 / 1,
    and the fifth goes to the largest remainder (the second class): 2 / 2 / 1 for every seed."""
    import numpy as np

    from dcatkit.data.dataset import _stratified_groups

    names = np.array([f"r{i}" for i in range(14)])
    glabel = np.array([0] * 6 + [1] * 5 + [2] * 3)
    for seed in range(3):
        kept = _stratified_groups(names, glabel, 5, np.random.default_rng(seed))
        got = np.bincount(glabel[np.isin(names, sorted(kept))], minlength=3)
        assert got.tolist() == [2, 2, 1], (seed, got)


def test_identical_samples_under_groups_samples_stay_in_one_part():
    """groups='samples' made each sample its own recording, identical copies too (content ids tell
    them apart as h, h~2): a copy landed in train and its twin in validation or test, and
    check_leakage passed. Now a copy is one recording with its original (content ids or given
    ids), counted in report['identical_samples'] with a warning."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3, 16)).astype(np.float32)
    x = np.concatenate([x, x[:10]])                         # 10 samples twice (a copied file)
    y = np.r_[np.arange(30) % 3, np.arange(10) % 3]
    for ids in (None, [f"row{i}" for i in range(40)]):
        for seed in range(3):
            with pytest.warns(UserWarning, match=r"10 of 40 samples are identical copies of another sample"):
                s = D.from_arrays({"imu": x}, y, groups="samples", ids=ids, seed=seed)
            assert s.report["identical_samples"] == 10
            part = {}                                       # a sample's content -> the parts holding it
            for p, d in enumerate(s):
                rows = rows_of({"imu": x}, d.ids) if ids is None else [int(i[3:]) for i in d.ids]
                for r in rows:
                    part.setdefault(x[r].tobytes(), set()).add(p)
            assert len(part) == 30 and all(len(v) == 1 for v in part.values()), (ids is None, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # no copy: no warning, no count
        s = D.from_arrays({"imu": x[:30]}, y[:30], groups="samples", seed=0)
    assert "identical_samples" not in s.report


def test_a_reloaded_subject_split_reports_the_subjects_of_the_data_not_of_the_file(tmp_path):
    """A split file places recordings; the subjects it names are those of the data it was written
    for. Reloaded for the same recordings under another subject numbering, the report still said
    the file's (test subjects [5] where the data's are [15]). Now they are the data's; the same
    data reads back the very report it wrote."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3, 16)).astype(np.float32)
    y, subj, rec = np.arange(60) % 3, np.arange(60) % 6, np.arange(60)
    for split in ("ood", "loso"):
        f = tmp_path / f"{split}.json"
        a = D.from_arrays({"imu": x}, y, subj, groups=rec, split=split, split_file=f)
        same = D.from_arrays({"imu": x}, y, subj, groups=rec, split=split, split_file=f)
        b = D.from_arrays({"imu": x}, y, subj + 10, groups=rec, split=split, split_file=f)
        for sa, ss, sb in zip(*(s if isinstance(s, list) else [s] for s in (a, same, b))):
            assert sb.report["split"]["reloaded"] and sb.test.ids == sa.test.ids
            actual = {k: sorted(set(d.subjects.tolist())) for k, d in zip(("train", "val", "test"), sb)}
            assert sb.report["split"]["subjects"] == actual
            assert actual["test"] == [t + 10 for t in sa.report["split"]["subjects"]["test"]]
            if split == "loso":
                assert sb.report["split"]["held_out_subjects"] == actual["test"]
            assert ({k: v for k, v in ss.report["split"].items() if k not in ("reloaded", "absent_from_data")}
                    == {k: v for k, v in sa.report["split"].items()})


def test_auto_split_files_of_two_ratio_settings_are_two_files_each_with_its_sizes(tmp_path):
    """split_file="auto" names the file after the ratios too: a second ratio setting on the same
    recordings writes its own file and gets the sizes it asked for, not the first file's split."""
    from dcatkit.data.cache import Windows
    from dcatkit.data.splits import auto_split_file, make_splits

    n = 40                                                  # 40 one-window recordings, 4 balanced classes
    w = Windows({"imu": np.random.default_rng(0).normal(size=(n, 3, 8)).astype(np.float32)}, np.arange(n) % 4,
                np.full(n, -1), [f"w{i}" for i in range(n)], [f"r{i}" for i in range(n)], list("abcd"))
    files, sizes = [], []
    for ratios in [(0.7, 0.15, 0.15), (0.5, 0.25, 0.25)]:
        f = auto_split_file("auto", tmp_path, "uestc", "id", 0, ratios, w)
        sp = make_splits(w, "id", ratios, 0, split_file=f)
        files.append(f)
        sizes.append([len(sp.train), len(sp.val), len(sp.test)])
    assert files[0] != files[1] and files[0].exists() and files[1].exists()
    assert files[0].parent == files[1].parent == tmp_path / "splits"
    assert sizes == [[28, 6, 6], [20, 10, 10]]             # 40 * (0.7, 0.15, 0.15) and 40 * (0.5, 0.25, 0.25)
    again = make_splits(w, "id", (0.5, 0.25, 0.25), 0,     # the same setting again: its own file, reloaded
                        split_file=auto_split_file("auto", tmp_path, "uestc", "id", 0, (0.5, 0.25, 0.25), w))
    assert [len(again.train), len(again.val), len(again.test)] == [20, 10, 10]
    assert again.report["split"]["split_file"] == str(files[1]) and again.report["split"]["reloaded"]


def test_from_arrays_refuses_duplicate_ids_and_counts_them():
    imu = np.zeros((6, 2, 4), np.float32)
    labels = [0, 1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"ids must be unique, got 1 duplicate\(s\)"):
        D.from_arrays({"imu": imu}, labels, ids=["a", "b", "c", "a", "d", "e"], groups="samples")
    with pytest.raises(ValueError, match=r"ids must be unique, got 2 duplicate\(s\)"):
        D.from_arrays({"imu": imu}, labels, ids=[7, 7, 7, 1, 2, 3], groups="samples")   # ids are compared as str
