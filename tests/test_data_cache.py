"""The window cache (``dcatkit.data.cache``) read back: a cache folder whose files do not
agree with each other (a meta file of another build, a raw file of another array, junk
bytes) is a ValueError naming the damaged file, never windows read with the wrong rows."""
import json

import numpy as np
import pytest

from dcatkit.data import cache as C
from dcatkit.data.preprocess import UnreadableFile


def _decode(rec):
    x = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3) + 100 * rec
    return {"arrays": {"imu": x}, "labels": [rec % 2, 1], "subjects": [rec, rec],
            "ids": [f"{rec}#0", f"{rec}#1"], "groups": [str(rec)] * 2}


def _collect(cache_dir):
    return C.collect("toy", [0, 1, 2], _decode, classes=["a", "b"], settings={"v": 1}, cache_dir=cache_dir,
                     progress=False)


@pytest.fixture
def folder(tmp_path):
    w = _collect(tmp_path)
    expected = np.concatenate([_decode(r)["arrays"]["imu"] for r in range(3)]).astype(np.float16)
    np.testing.assert_array_equal(np.asarray(w.arrays["imu"]), expected)
    return tmp_path, w.report["cache"]


def _damaged(tmp_path, path):
    with pytest.raises(ValueError, match=path.name) as e:
        _collect(tmp_path)
    assert str(path.parent) in str(e.value) and "delete" in str(e.value)


def test_a_meta_file_with_one_label_fewer_than_the_arrays_is_named(folder):
    tmp_path, f = folder
    meta_path = tmp_path / f.split("/")[-1] / "meta.json"
    meta = json.loads(meta_path.read_text())
    for k in ("labels", "subjects", "ids", "groups"):       # one window's entry lost: 5 labels for 6 rows
        meta[k] = meta[k][:-1]
    meta_path.write_text(json.dumps(meta))
    _damaged(tmp_path, meta_path)


def test_a_meta_file_without_a_key_is_named(folder):
    tmp_path, f = folder
    meta_path = tmp_path / f.split("/")[-1] / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["subjects"]
    meta_path.write_text(json.dumps(meta))
    _damaged(tmp_path, meta_path)


def test_a_raw_file_longer_than_its_shape_is_named(folder):
    """A raw file that holds more than shape x dtype (another, longer array's): not read
    as its first rows."""
    tmp_path, f = folder
    raw = tmp_path / f.split("/")[-1] / "imu.bin"
    raw.write_bytes(raw.read_bytes() + np.zeros((2, 2, 3), np.float16).tobytes())
    _damaged(tmp_path, raw)


def test_a_meta_file_of_binary_junk_is_named(folder):
    tmp_path, f = folder
    meta_path = tmp_path / f.split("/")[-1] / "meta.json"
    meta_path.write_bytes(b"\xff\xfe\x00\x81junk")
    _damaged(tmp_path, meta_path)


@pytest.mark.parametrize("cached", [False, True])
def test_windows_of_another_shape_are_refused_naming_the_rule(tmp_path, cached):
    """Every window must have one shape: a recording whose windows differ is refused with that
    rule, with or without a cache (not as a damaged cache file, nor numpy's concatenate error)."""
    def decode(rec):
        return {"arrays": {"imu": np.zeros((1, 2, 3 + rec), np.float32)}, "labels": [0], "subjects": [0],
                "ids": [str(rec)], "groups": [str(rec)]}
    with pytest.raises(ValueError, match=r"same shape"):
        C.collect("toy", [0, 1], decode, classes=["a"], settings={}, cache_dir=tmp_path if cached else None,
                  progress=False)


def test_a_frame_folder_is_fingerprinted_by_every_file_in_it(tmp_path):
    """A folder of JPEG frames stands for each of its files (path relative to the root, size,
    mtime): any frame rewritten, not only the first, changes the fingerprint (a stale cache key
    otherwise), and two recordings holding a same-named file are told apart by their folders."""
    import os
    root = tmp_path
    clips = [root / "c1" / "rec", root / "c2" / "rec"]
    for c in clips:
        c.mkdir(parents=True)
        for i in range(3):
            (c / f"{i:05d}.jpg").write_bytes(b"x" * (10 + i))
    want = [[os.path.relpath(p, root), p.stat().st_size, p.stat().st_mtime_ns]
            for c in clips for p in sorted(c.iterdir())]
    got = C.fingerprint(clips, root)
    assert got == want and len({g[0] for g in got}) == 6
    (clips[0] / "00002.jpg").write_bytes(b"y" * 50)                  # the last frame of a clip rewritten
    assert C.fingerprint(clips, root) != got


@pytest.mark.parametrize("cached", [False, True])
def test_the_loaders_sample_rates_win_over_the_native_ones(tmp_path, cached):
    """``sample_rates`` (the rate a loader resamples to) is the windows' rate, not the median of the
    recordings' native rates (kept under report['native_rates']); read back the same from a cache."""
    def decode(rec):
        return dict(_decode(rec), rates={"imu": [50.0, 52.0, 60.0][rec]})
    kw = dict(classes=["a", "b"], settings={}, cache_dir=tmp_path if cached else None, progress=False)
    for _ in range(2):                                          # built, then (cached) read back
        w = C.collect("toy", [0, 1, 2], decode, sample_rates={"imu": 20.0}, **kw)
        assert w.sample_rates == {"imu": 20.0} and w.report["native_rates"] == {"imu": [50.0, 52.0, 60.0]}
    assert C.collect("toy2", [0, 1, 2], decode, **kw).sample_rates == {"imu": 52.0}   # none given: the median


def test_a_single_nan_value_in_a_window_is_refused_not_cached(tmp_path):
    """One NaN among finite values (not a whole NaN window) is refused like an unreadable file."""
    def decode(rec):
        d = _decode(rec)
        if rec == 1:
            d["arrays"]["imu"][0, 0, 0] = np.nan
        return d
    with pytest.raises(UnreadableFile, match="NaN"):
        C.collect("toy", [0, 1, 2], decode, classes=["a", "b"], settings={}, cache_dir=tmp_path, progress=False)


def _decode_two(rec, lack_video=1, short=None):
    """Two modalities per recording; recording ``lack_video`` gives its IMU only, recording
    ``short`` one video window fewer than labels (decoder bugs)."""
    out = _decode(rec)
    if rec != lack_video:
        video = np.full((2, 3), rec, np.uint8)
        out["arrays"]["video"] = video[:1] if rec == short else video
    return out


@pytest.mark.parametrize("cached", [True, False])
def test_a_decoder_that_drops_a_modality_for_one_recording_is_named_and_nothing_is_cached(tmp_path, cached):
    """A decoder that gives recording 1 no video (recordings 0 and 2 have it) stops the build with
    a ValueError naming recording 1 and both modality sets; no cache folder is left complete, so
    the fixed decoder builds afresh (before, a complete cache was written that every later load
    refused as damaged, and deleting it rebuilt the same one)."""
    cache_dir = tmp_path if cached else None
    with pytest.raises(ValueError, match=r"recording 1 the modalities \['imu'\], the recordings before it "
                                         r"\['imu', 'video'\]"):
        C.collect("toy", [0, 1, 2], _decode_two, classes=["a", "b"], settings={"v": 2}, cache_dir=cache_dir,
                  progress=False)
    if cached:
        assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".bin")]
    w = C.collect("toy", [0, 1, 2], lambda r: _decode_two(r, lack_video=None), classes=["a", "b"],
                  settings={"v": 2}, cache_dir=cache_dir, progress=False)
    assert np.asarray(w.arrays["video"]).shape == (6, 3) and len(w.labels) == 6


def test_a_decoder_giving_fewer_windows_than_labels_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"recording 2 2 labels but 2 imu windows, 1 video windows"):
        C.collect("toy", [0, 1, 2], lambda r: _decode_two(r, lack_video=None, short=2), classes=["a", "b"],
                  settings={"v": 3}, cache_dir=tmp_path, progress=False)


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("field", ["subjects", "ids", "groups"])
def test_a_decoder_giving_fewer_ids_subjects_or_groups_than_labels_is_named(tmp_path, cached, field):
    """A decoder whose recording gives 2 windows and labels but 1 id (or subject, or group) was
    stacked and cached as it was: 6 windows beside 4 ids, so every later window took another
    window's id, subject and recording (the split then assigned windows to the wrong recordings,
    a leak, and left the last ones out), and the cache was reused. Now the build stops naming the
    recording, and nothing is cached."""
    def decode(rec):
        out = _decode(rec)
        if rec == 1:
            out[field] = out[field][:1]
        return out

    with pytest.raises(ValueError, match=rf"recording 1 2 labels but .*1 {field}.*: every window needs one label, "
                                         "subject, id and group"):
        C.collect("toy", [0, 1, 2], decode, classes=["a", "b"], settings={"v": 4}, cache_dir=tmp_path if cached
                  else None, progress=False)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".bin")]


@pytest.mark.parametrize("field", ["subjects", "ids", "groups"])
def test_a_meta_file_with_one_id_subject_or_group_fewer_than_the_labels_is_named(folder, field):
    """A cache whose meta data lists fewer ids (subjects, groups) than windows and labels is damaged:
    read back, its windows would take other windows' ids."""
    tmp_path, f = folder
    meta_path = tmp_path / f.split("/")[-1] / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta[field] = meta[field][:-1]
    meta_path.write_text(json.dumps(meta))
    _damaged(tmp_path, meta_path)
