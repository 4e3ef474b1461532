"""Edge cases of the real-dataset loaders found by an audit: each test pins one fix."""
import shutil
import warnings

import numpy as np
import pytest

import dcatkit.data as D
from dcatkit.data import cache as C
from dcatkit.data.preprocess import UnreadableFile
from fixtures_data import make_uestc

W = 10
IMU = dict(modalities=["imu"], imu_window=W, progress=False)


@pytest.fixture(scope="module")
def uestc(tmp_path_factory):
    """A UESTC copy with 2 recordings per class (the paper's 8 plus 1_upstairs), 20 IMU rows each."""
    r = tmp_path_factory.mktemp("uestc_edges") / "UESTC-MMEA-CL"
    r.mkdir()
    make_uestc(r, per_class=2, rows=20)
    return r


def _copy(src, tmp_path):
    dst = tmp_path / "UESTC-MMEA-CL"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    return dst


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


# --------------------------------------------------------------------------- 1: float16 range

def _toy(peak, modality="imu"):
    def decode(rec):
        shape = (1, 2, 3) if modality == "imu" else (1, 8)
        x = np.full(shape, 1.0, np.float32)
        if rec == 1:
            x.flat[0] = peak
        return {"arrays": {modality: x}, "labels": [rec % 2], "subjects": [rec], "ids": [f"{rec}#0"],
                "groups": [str(rec)]}
    return decode


@pytest.mark.parametrize("cache", [False, True])
def test_values_beyond_float16_are_refused_not_cached_as_inf(tmp_path, cache):
    kw = dict(classes=["a", "b"], settings={}, cache_dir=tmp_path / "c" if cache else None, progress=False)
    with pytest.raises(UnreadableFile, match=r"cannot read 1: its decoded imu values reach 70000.*float16.*acc_scale"):
        C.collect("toy", [0, 1, 2], _toy(70000.0), **kw)
    with pytest.raises(UnreadableFile, match=r"audio values reach 70000 in magnitude.*float16.*\[-1, 1\]"):
        C.collect("toy", [0, 1, 2], _toy(-70000.0, "audio"), **kw)
    w = C.collect("toy", [0, 1, 2], _toy(70000.0), on_error="skip", **kw)
    assert w.report["n_skipped"] == 1 and "float16" in w.report["skipped"][0] and w.ids == ["0#0", "2#0"]
    # the largest float16 value itself is stored as it is
    w = C.collect("toy", [0, 1, 2], _toy(65504.0), **kw)
    assert np.isfinite(np.asarray(w.arrays["imu"], np.float32)).all() and float(w.arrays["imu"][1].max()) == 65504.0


def test_uestc_acc_scale_that_overflows_float16_is_named_not_turned_into_nan(uestc):
    with pytest.raises(UnreadableFile, match=r"imu values reach .*float16.*acc_scale= and gyro_scale="):
        _quiet(D.load, "uestc", uestc, cache_dir=False, acc_scale=1 / 16384, **IMU)
    s = _quiet(D.load, "uestc", uestc, cache_dir=False, **IMU)
    assert all(np.isfinite(d.arrays["imu"]).all() for d in s)


# --------------------------------------------------------------------------- 2: stereo mp4 audio

@pytest.mark.parametrize("right", ["same", "silent"])
def test_a_stereo_mp4_is_read_as_the_mean_of_its_channels_like_a_wav(tmp_path, right):
    """The same stereo sound from an mp4 and from a wav: the same loudness (FFmpeg's mono
    downmix weighs each channel by 0.707, which made the mp4 1.41x louder, past 1 here)."""
    sf = pytest.importorskip("soundfile")
    from dcatkit.data.preprocess import read_mp4_audio, read_wav
    from fixtures_data import write_audio_mp4

    sr = 16000
    t = np.arange(2 * sr) / sr
    left = 0.9 * np.sin(2 * np.pi * 300 * t)
    x = np.stack([left, left if right == "same" else 0 * left]).astype(np.float32)
    write_audio_mp4(tmp_path / "s.mp4", x, sr)
    sf.write(tmp_path / "s.wav", x.T, sr, subtype="FLOAT")
    mp4, sr_mp4 = read_mp4_audio(tmp_path / "s.mp4")
    wav, _ = read_wav(tmp_path / "s.wav")
    assert sr_mp4 == sr and mp4.ndim == 1 and mp4.dtype == np.float32
    mid = slice(4000, 28000)                    # away from the aac priming and padding at the ends
    rms = lambda w: float(np.sqrt(np.mean(w[mid].astype(np.float64) ** 2)))
    assert rms(mp4) == pytest.approx(rms(wav), rel=0.03)
    want = 0.9 if right == "same" else 0.45     # the mean of the two channels' peaks
    assert np.abs(mp4[mid]).max() == pytest.approx(want, rel=0.03) and np.abs(mp4).max() < 1


def test_a_mono_mp4_is_read_unchanged(tmp_path):
    from dcatkit.data.preprocess import read_mp4_audio
    from fixtures_data import write_audio_mp4

    sr = 16000
    x = (0.5 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)).astype(np.float32)[None]
    write_audio_mp4(tmp_path / "m.mp4", x, sr)
    w, _ = read_mp4_audio(tmp_path / "m.mp4")
    assert np.abs(w[4000:14000]).max() == pytest.approx(0.5, rel=0.03)     # past the aac onset transient


@pytest.mark.parametrize("audio_start, video_start", [(0.5, None), (0.0, 0.5), (0.0, None)])
def test_mp4_audio_is_read_on_the_video_clock_by_the_streams_start_times(tmp_path, audio_start, video_start):
    """A 2 s tone whose track starts 0.5 s after the video (an edit list's delay) plays from 0.5 s
    to 2.5 s of the video: read with 0.5 s of silence first (it was read from sample 0, 0.5 s
    early against the frames). A video that starts 0.5 s after the audio: the tone's first 0.5 s
    come before the first frame and are cut. Both streams at 0: read as decoded."""
    from dcatkit.data.preprocess import read_mp4_audio
    from fixtures_data import write_mp4

    sr = 8000
    write_mp4(tmp_path / "d.mp4", 30, fps=10, audio_sr=sr, audio_seconds=2.0, audio_start=audio_start,
              video_start=video_start)
    w, _ = read_mp4_audio(tmp_path / "d.mp4")
    loud = np.flatnonzero(np.abs(w) > 0.05) / sr                     # the tone (0.3 peak), in video seconds
    on, off = {(0.5, None): (0.5, 2.5), (0.0, 0.5): (0.0, 1.5), (0.0, None): (0.0, 2.0)}[audio_start, video_start]
    assert loud[0] == pytest.approx(on, abs=0.002) and loud[-1] == pytest.approx(off, abs=0.002)


def test_vggsound_audio_caches_of_the_earlier_mp4_audio_decoder_are_built_again(tmp_path, monkeypatch):
    """Stereo clips cached by the 0.707-downmix decoder are louder: their cache is not reused."""
    from dcatkit.data import vggsound as V
    from fixtures_data import make_vggsound

    r = tmp_path / "VGG"
    r.mkdir()
    make_vggsound(r, per_class=3, seconds=1.0, fps=4, missing=0)
    cache = tmp_path / "cache"
    opts = dict(classes=["dog barking", "playing piano", "engine"], window_s=1.0, frames=2, frame_size=8,
                progress=False, cache_dir=cache)
    monkeypatch.setattr(V, "MP4_AUDIO_DECODER", 1)
    _quiet(D.load, "vggsound", r, **opts)
    monkeypatch.undo()
    _quiet(D.load, "vggsound", r, **opts)
    _quiet(D.load, "vggsound", r, **opts)                             # the same decoder: reused
    _quiet(D.load, "vggsound", r, modalities=["video"], **opts)
    monkeypatch.setattr(V, "MP4_AUDIO_DECODER", 1)
    _quiet(D.load, "vggsound", r, modalities=["video"], **opts)       # video only: the audio decoder is not in it
    assert len([d for d in cache.iterdir() if d.name.startswith("vggsound-")]) == 3


# --------------------------------------------------------------------------- 3: subject maps

def test_blank_subject_ids_are_unknown_not_one_shared_participant():
    from dcatkit.data import uestc as U

    recs = [U._Rec("3_drinking", f"s{i}", 0) for i in range(6)]
    got = U._subjects_from_map({"s0": None, "s1": " ", "s2": float("nan"), "s3": "", "s4": "3", "s5": " 4 "}, recs)
    assert got == {"s4": 3, "s5": 4}
    # named ids: the blanks are not numbered among them either
    assert U._subjects_from_map({"s0": "P1", "s1": "NaN", "s2": "null", "s3": "P2"}, recs) == {"s0": 0, "s3": 1}


def test_a_subject_csv_with_blank_cells_lists_them_unmapped_and_ood_refuses(uestc, tmp_path):
    stems = sorted(p.stem for p in (uestc / "sensor").glob("*/*.csv") if not p.parent.name.startswith("1_"))
    blank = set(stems[:3])
    f = tmp_path / "smap.csv"
    cells = ["", "  ", "nan"]
    f.write_text("stem,subject\n" + "".join(f"{s},{cells[i] if i < 3 else 1 + i % 4}\n" for i, s in enumerate(stems)))
    s = _quiet(D.load, "uestc", uestc, subject_map=f, cache_dir=False, **IMU)
    assert sorted(g.split("/")[1] for g in s.report["unmapped_recordings"]) == sorted(blank)
    for d in s:
        for g, subj in zip(d.groups, d.subjects.tolist()):
            assert (subj == -1) == (g.split("/")[1] in blank), (g, subj)
    with pytest.raises(ValueError, match=r"split='ood' needs a subject for every recording; 3 have none"):
        _quiet(D.load, "uestc", uestc, split="ood", subject_map=f, cache_dir=False, **IMU)


def test_a_subject_csv_with_a_bom_keeps_its_first_row_and_its_numeric_ids(tmp_path):
    from dcatkit.data import uestc as U

    recs = [U._Rec("3_drinking", f"s{i}", 0) for i in range(3)]
    f = tmp_path / "m.csv"
    f.write_bytes("\ufeffs0,7\ns1,9\ns2,12\n".encode("utf-8"))
    assert U._subjects_from_map(f, recs) == {"s0": 7, "s1": 9, "s2": 12}
    f.write_bytes("\ufeffstem,subject\ns0,7\ns1,9\ns2,12\n".encode("utf-8"))   # the header is still a header
    assert U._subjects_from_map(f, recs) == {"s0": 7, "s1": 9, "s2": 12}
    j = tmp_path / "m.json"
    j.write_bytes('\ufeff{"s0": 7, "3_drinking/s1.csv": 9, "s2.mp4": null}'.encode("utf-8"))
    assert U._subjects_from_map(j, recs) == {"s0": 7, "s1": 9}        # file names are stems too


def test_a_subject_map_that_is_a_list_of_records_is_refused_with_the_expected_form(tmp_path):
    import json

    from dcatkit.data import uestc as U

    recs = [U._Rec("3_drinking", "s0", 0)]
    j = tmp_path / "m.json"
    j.write_text(json.dumps([{"stem": "s0", "subject": 1}]))
    with pytest.raises(ValueError, match=r"m\.json: a subject map is \{sample stem.*JSON object.*found a list of 1 "
                                         r"entries, e.g. \{'stem': 's0'"):
        U._subjects_from_map(j, recs)
    with pytest.raises(ValueError, match=r"subject_map: a subject map is .*the id of 's0' is \{'subject': 1\}"):
        U._subjects_from_map({"s0": {"subject": 1}}, recs)


# --------------------------------------------------------------------------- 4: cough trial names

@pytest.mark.parametrize("name, trial", [
    ("005_no_talking_in.wav", 1), ("006_No_Talking_Out.wav", 1), ("005_NoTalking_out.wav", 1),
    ("005_No-Talking_Out.wav", 1), ("005_NOTALKING_IN.WAV", 1), ("005_Talking_Out.wav", 2),
    ("006_talking_in.wav", 2), ("005_Nonverbal_Out.wav", 3), ("005_nonverbal_in.wav", 3)])
def test_cough_trial_from_a_name_holding_no_and_talking_case_insensitively(name, trial):
    from dcatkit.data.cough import trial_of

    assert trial_of(name) == trial


def test_a_notalking_entry_is_trial_1_and_a_second_entry_for_one_trial_and_mic_is_reported(tmp_path):
    import json

    from fixtures_data import make_cough

    r = tmp_path / "Cough"
    r.mkdir()
    make_cough(r, subjects=("005",), missing_in=())
    entries = json.loads((r / "DataAnnotation.json").read_text())
    assert entries[0]["original_filename"] == "005_no_talking_out.wav"
    entries[0]["original_filename"] = "005_NoTalking_out.wav"
    # a second Out entry for trial 1 (another spelling), with other segments: listed, never silently dropped
    entries.append({"original_filename": "005_No_Talking_Out.wav",
                    "segmentations": [{"start_time": 0.2, "end_time": 0.7,
                                       "annotation": {"values": {"id": 6}}}]})
    (r / "DataAnnotation.json").write_text(json.dumps(entries))
    s = _quiet(D.load, "cough", r, modalities=["audio"], sample_rate=8000, cache_dir=False, split_file=None,
               progress=False)
    labels = {}
    for d in s:
        for i, y in zip(d.ids, d.labels.tolist()):
            labels.setdefault(i.split("#")[0], set()).add(s.classes[y])
    # trial 1: Cough, Sneeze and class id 2 + 1 (Sneeze) of the first entry; trial 2 before: + Deep breath
    assert labels == {"005/Trial_1_No_Talking": {"Cough", "Sneeze"},
                      "005/Trial_2_Talking": {"Cough", "Sneeze", "Deep breath"},
                      "005/Trial_3_Nonverbal": {"Cough", "Sneeze", "Groan"}}
    assert s.report["duplicate_annotations"] == [
        "005_No_Talking_Out.wav (subject 005, trial 1, mic out: the entry 005_NoTalking_out.wav is used)"]
    assert s.report["n_duplicate_annotations"] == 1
    with pytest.warns(UserWarning, match="1 duplicate annotations"):
        D.load("cough", r, modalities=["audio"], sample_rate=8000, cache_dir=False, split_file=None, progress=False)


def test_cough_windows_cached_under_another_trial_mapping_are_cut_again(tmp_path, monkeypatch):
    """The same files mapped to trials otherwise (the earlier word-based rule put NoTalking in
    trial 3): every trial folder is read under both rules, so only the cache key's segments per
    trial tell the two apart; the old windows must not be reused."""
    import json
    import re

    from dcatkit.data import cough as K
    from fixtures_data import make_cough

    r = tmp_path / "Cough"
    r.mkdir()
    entries = make_cough(r, subjects=("005",), missing_in=())          # Out entries for trials 1, 2, 3
    laugh = {"values": {"id": 6}}
    entries.append({"original_filename": "005_NoTalking_in.wav",       # the In mic's entry of trial 1: a Laugh
                    "segmentations": [{"start_time": 1.0, "end_time": 1.5, "annotation": laugh}]})
    (r / "DataAnnotation.json").write_text(json.dumps(entries))
    opts = dict(modalities=["audio"], mic="in", sample_rate=8000, cache_dir=tmp_path / "cache", split_file=None,
                progress=False, ratios=(0.5, 0.25, 0.25))

    def by_words(name):
        words = re.split(r"[^a-z]+", name.lower())
        return (1 if "no" in words else 2) if "talking" in words else 3

    def laughs(s):
        return sorted({i.split("#")[0] for d in s for i, y in zip(d.ids, d.labels.tolist()) if s.classes[y] == "Laugh"})

    monkeypatch.setattr(K, "trial_of", by_words)
    assert laughs(_quiet(D.load, "cough", r, **opts)) == ["005/Trial_3_Nonverbal"]
    monkeypatch.undo()
    assert laughs(_quiet(D.load, "cough", r, **opts)) == ["005/Trial_1_No_Talking"]
    assert len([d for d in (tmp_path / "cache").iterdir() if d.name.startswith("cough-")]) == 2


# --------------------------------------------------------------------------- 5: list counts in the cache key

def test_a_list_file_count_changed_after_caching_gives_fresh_count_mismatch_notes(uestc, tmp_path):
    r = _copy(uestc, tmp_path)
    opts = dict(IMU, cache_dir=tmp_path / "cache")
    first = _quiet(D.load, "uestc", r, **opts)
    assert not first.report.get("count_mismatch")
    lines = (r / "train.txt").read_text().splitlines()
    k = next(k for k, ln in enumerate(lines) if "/3_drinking/" in ln)     # a class that is loaded
    path, frames, rows, label = lines[k].split()
    lines[k] = f"{path} {frames} 400 {label}"                             # the list now says 400 IMU rows
    (r / "train.txt").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="1 recordings have fewer IMU rows"):
        cached = D.load("uestc", r, **opts)
    uncached = _quiet(D.load, "uestc", r, **dict(opts, cache_dir=False))
    rec = "/".join(path.split("/")[-2:])
    assert cached.report["count_mismatch"] == uncached.report["count_mismatch"] == [
        f"{rec}: 20 IMU rows, the list says 400"]


# --------------------------------------------------------------------------- 6: split files written at once

def _split_writer(args):
    """Child process: write one split file over and over while reading it back."""
    path, n, rounds = args
    from dcatkit.data.splits import read_split_file, write_split_file

    names = [f"r{i}" for i in range(n)]
    folds = [({"train": names[2:], "val": names[:1], "test": names[1:2]}, {"kind": "id", "fold": None, "seed": 0})]
    errors = []
    for _ in range(rounds):
        for step in (lambda: write_split_file(path, folds), lambda: read_split_file(path, names, "id")):
            try:
                step()
            except Exception as e:                     # FileNotFoundError, a half-written file...
                errors.append(f"{type(e).__name__}: {e}"[:120])
    return errors


def test_two_processes_writing_one_split_file_never_collide(tmp_path):
    import multiprocessing as mp

    path = tmp_path / "splits" / "x.json"
    from dcatkit.data.splits import write_split_file
    write_split_file(path, [({"train": ["r2"], "val": ["r0"], "test": ["r1"]}, {"kind": "id", "fold": None})])
    with mp.get_context("fork").Pool(2) as pool:
        errors = pool.map(_split_writer, [(path, 3000, 150)] * 2)
    assert errors == [[], []]
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]       # no temp file left behind


def test_a_split_file_written_meanwhile_by_another_process_is_the_split_used(tmp_path, monkeypatch):
    """Between 'no split file yet' and writing one, another process wrote it: its split is kept
    on disk and returned, not replaced by this process's own (which the other run already uses)."""
    from dcatkit.data import splits as S

    path = tmp_path / "s.json"
    rng = np.random.default_rng(0)
    x, y, g = rng.normal(size=(40, 2, 8)).astype(np.float32), np.arange(40) % 2, [f"g{i}" for i in range(40)]
    mine = S.split_recordings(g, y, np.full(40, -1), "id", (0.7, 0.15, 0.15), 0)
    theirs = S.split_recordings(g, y, np.full(40, -1), "id", (0.7, 0.15, 0.15), 1)     # another seed: differs
    assert mine[0][0] != theirs[0][0]
    real = S.split_recordings

    def racing(*a, **kw):
        S.write_split_file(path, theirs)          # the other process wins the race
        return real(*a, **kw)

    monkeypatch.setattr(S, "split_recordings", racing)
    s = S.from_arrays({"imu": x}, y, groups=g, ids=g, split_file=path)
    assert sorted(s.test.groups) == sorted(theirs[0][0]["test"]) and sorted(s.train.groups) == theirs[0][0]["train"]
    assert S.read_split_file(path, g, "id")[0][0] == theirs[0][0] and s.report["split"]["reloaded"] is True


# --------------------------------------------------------------------------- 7: training_set stays lazy

def _memmap_splits(tmp_path, n=24):
    """Splits whose video rows are LazyRows of one read-only memory-mapped cache, as the loaders make them."""
    from dcatkit.data.dataset import PairedDataset, Splits
    from dcatkit.data.splits import LazyRows

    base = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.uint8, shape=(n, 2, 3, 4, 4))
    base[:] = np.arange(n, dtype=np.uint8)[:, None, None, None, None]
    base.flush()
    ro = np.load(tmp_path / "v.npy", mmap_mode="r")
    imu = np.random.default_rng(0).normal(size=(n, 2, 8)).astype(np.float32)
    parts = {"train": np.arange(0, 16), "val": np.arange(16, 20), "test": np.arange(20, 24)}
    ds = {k: PairedDataset({"video": LazyRows(ro, ix), "imu": imu[ix]}, ix % 2, ["a", "b"], ix % 4,
                           [f"s{i}" for i in ix], groups=[f"g{i}" for i in ix]) for k, ix in parts.items()}
    return Splits(ds["train"], ds["val"], ds["test"], {})


def test_training_set_with_unlabeled_pairs_keeps_a_memmapped_cache_on_disk(tmp_path):
    from dcatkit.data.dataset import UNLABELED, ConcatRows, hide_labels, training_set
    from dcatkit.data.splits import LazyRows

    sp = hide_labels(_memmap_splits(tmp_path), 4, seed=0)
    assert isinstance(sp.unlabeled.arrays["video"], LazyRows)
    t = training_set(sp)
    video = t.arrays["video"]
    assert isinstance(video, (LazyRows, ConcatRows)) and not isinstance(video, np.ndarray)
    assert isinstance(video.base, np.memmap)                        # rows of the cache itself, nothing read
    eager = np.concatenate([np.asarray(sp.train.arrays["video"]), np.asarray(sp.unlabeled.arrays["video"])])
    assert np.array_equal(np.asarray(video), eager) and video.shape == eager.shape and video.dtype == np.uint8
    for i in range(len(t)):
        assert np.array_equal(t[i]["video"].numpy(), eager[i])
    assert t.labels.tolist() == sp.train.labels.tolist() + [UNLABELED] * len(sp.unlabeled)
    assert t.ids == sp.train.ids + sp.unlabeled.ids and t.input_shape("video") == (2, 3, 4, 4)
    assert np.array_equal(np.asarray(t.subset([5, 0]).arrays["video"]), eager[[5, 0]])


def test_rows_of_different_arrays_are_joined_lazily_and_read_like_the_eager_concatenation(tmp_path):
    from dcatkit.data.dataset import ConcatRows, concat_rows
    from dcatkit.data.splits import LazyRows

    a = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    np.save(tmp_path / "b.npy", -np.arange(4 * 3, dtype=np.float32).reshape(4, 3))
    b = LazyRows(np.load(tmp_path / "b.npy", mmap_mode="r"), np.array([3, 1, 0]))
    c = concat_rows([a, b])
    eager = np.concatenate([a, np.asarray(b)])
    assert isinstance(c, ConcatRows) and c.shape == (8, 3) and c.dtype == np.float32 and len(c) == 8
    assert all(np.array_equal(c[i], eager[i]) for i in range(-8, 8))
    assert np.array_equal(np.asarray(c[np.array([7, 0, 5, 4])]), eager[[7, 0, 5, 4]])
    assert np.array_equal(np.asarray(c[2:7]), eager[2:7]) and np.array_equal(np.asarray(c), eager)
    assert np.array_equal(np.asarray(c[[6, 1]][1:]), eager[[1]])
    assert isinstance(concat_rows([a, a]), np.ndarray)                # in memory already: concatenated
    with pytest.raises(ValueError, match="differ in sample shape"):
        ConcatRows([a, a[:, :2]])


# --------------------------------------------------------------------------- 8: messages

def test_uestc_scan_skips_hidden_folders_and_names_a_stray_folder(uestc, tmp_path):
    r = _copy(uestc, tmp_path)
    for f in ("train.txt", "val.txt", "test.txt"):
        (r / f).unlink()                                    # no list files: every csv under sensor/
    hidden = r / "sensor" / ".ipynb_checkpoints"
    hidden.mkdir()
    (hidden / "x-checkpoint.csv").write_text("1,2,3,4,5,6\n")
    s = _quiet(D.load, "uestc", r, cache_dir=False, **IMU)
    assert not any(".ipynb" in g for d in s for g in d.groups)
    assert len({g for d in s for g in d.groups}) == 16                       # the 8 classes' 2 recordings each
    stray = r / "sensor" / "misc"
    stray.mkdir()
    (stray / "notes.csv").write_text("1,2,3,4,5,6\n")
    with pytest.raises(ValueError, match=rf"{stray} \(a folder in sensor/.*\): class folder 'misc' is not named "
                                         r"<class_number>_<class_name>"):
        _quiet(D.load, "uestc", r, cache_dir=False, **IMU)


def test_uestc_list_line_without_a_class_number_names_its_list_file(uestc, tmp_path):
    r = _copy(uestc, tmp_path)
    lines = (r / "train.txt").read_text().splitlines()
    lines[0] = "data/drinking/abc 40 40 2"
    (r / "train.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"train\.txt, the line of drinking/abc: class folder 'drinking' is not"):
        _quiet(D.load, "uestc", r, cache_dir=False, **IMU)


def test_from_arrays_with_named_or_fractional_subjects_says_they_must_be_integers():
    x, y, g = np.zeros((8, 1, 4), np.float32), np.arange(8) % 2, [f"g{i}" for i in range(8)]
    with pytest.raises(ValueError, match=r"subjects must be integer ids.*got dtype <U2, e.g. \['P0', 'P1', 'P0'\]"):
        D.from_arrays({"imu": x}, y, subjects=[f"P{i % 2}" for i in range(8)], groups=g)
    with pytest.raises(ValueError, match=r"subjects must be integer ids.*1 are not whole numbers.*position 3: 1\.5"):
        D.from_arrays({"imu": x}, y, subjects=[0, 1, 0, 1.5, 0, 1, 0, 1], groups=g)
    s = D.from_arrays({"imu": x}, y, subjects=np.array([0, 1, 2, 3] * 2, dtype=float), groups=g,
                      ratios=(0.5, 0.25, 0.25))
    assert sorted({int(v) for d in s for v in d.subjects}) == [0, 1, 2, 3]


def test_cough_any_mic_without_a_wav_names_both_files_it_looked_for(tmp_path):
    from fixtures_data import make_cough

    r = tmp_path / "Cough"
    r.mkdir()
    make_cough(r, subjects=("005",), missing_in=())
    for w in (r / "005" / "Trial_2_Talking").glob("*.wav"):
        w.unlink()
    s = _quiet(D.load, "cough", r, modalities=["audio"], mic="any", sample_rate=8000, cache_dir=False,
               split_file=None, progress=False, ratios=(0.5, 0.25, 0.25))
    folder = r / "005" / "Trial_2_Talking"
    assert s.report["missing_modality"] == [f"005/Trial_2_Talking: missing_modality (no audio: expected "
                                            f"{folder}/005_..._Out.wav or {folder}/005_..._In.wav)"]


# --------------------------------------------------------------------------- hide_labels / training_set

def _part(labels, ids=None, groups=None):
    from dcatkit.data.dataset import PairedDataset

    n = len(labels)
    imu = np.arange(n * 2 * 4, dtype=np.float32).reshape(n, 2, 4)
    return PairedDataset({"imu": imu}, labels, ["a", "b", "c"], ids=ids, groups=groups)


def test_as_many_labels_as_classes_leave_one_label_in_every_class_however_imbalanced():
    """n_labeled == number of classes, train classes 28/4/4: largest remainders alone would give the
    majority class all 3 labels ([3, 0, 0]); every class present keeps one instead."""
    from dcatkit.data.dataset import UNLABELED, Splits, hide_labels

    labels = [0] * 28 + [1] * 4 + [2] * 4
    sp = Splits(_part(labels), _part([0, 1, 2], ids=["v0", "v1", "v2"]), _part([0, 1, 2], ids=["t0", "t1", "t2"]))
    for seed in (0, 1):
        h = hide_labels(sp, 3, seed=seed)
        assert np.bincount(h.train.labels, minlength=3).tolist() == [1, 1, 1]
        assert len(h.unlabeled) == 33 and (h.unlabeled.labels == UNLABELED).all()
        assert sorted(h.train.ids + h.unlabeled.ids) == sorted(sp.train.ids)
        assert h.report["labels"] == {"n_labeled": 3, "n_unlabeled": 33, "seed": seed, "unit": "recording"}


def test_n_unlabeled_counts_recordings_not_windows():
    """6 training recordings of 2 windows each, 2 kept labelled: 4 unlabeled recordings (8 windows)."""
    from dcatkit.data.dataset import Splits, hide_labels

    rec_labels = [0, 1, 2, 0, 1, 2]
    train = _part([c for c in rec_labels for _ in range(2)], ids=[f"w{i}" for i in range(12)],
                  groups=[f"r{i // 2}" for i in range(12)])
    sp = Splits(train, _part([0, 1, 2], ids=["v0", "v1", "v2"]), _part([0, 1, 2], ids=["t0", "t1", "t2"]))
    h = hide_labels(sp, 2, seed=0)
    assert len(set(h.train.groups)) == 2 and len(h.train) == 4
    assert len(set(h.unlabeled.groups)) == 4 and len(h.unlabeled) == 8
    assert h.report["labels"] == {"n_labeled": 2, "n_unlabeled": 4, "seed": 0, "unit": "recording"}


def test_training_set_refuses_samples_given_both_as_training_and_unlabeled_and_counts_them():
    from dcatkit.data.dataset import Splits, training_set

    train = _part([0, 1, 2, 0, 1, 2], ids=[f"s{i}" for i in range(6)])
    val, test = _part([0, 1, 2], ids=["v0", "v1", "v2"]), _part([0, 1, 2], ids=["t0", "t1", "t2"])
    clash = _part([0, 1, 2, 0], ids=["s1", "u1", "s4", "u3"])      # 2 of the 4 are training samples
    with pytest.raises(ValueError, match=r"^2 sample id\(s\) are in both the training and the unlabeled part"):
        training_set(Splits(train, val, test, unlabeled=clash))
    ok = training_set(Splits(train, val, test, unlabeled=_part([0, 1, 2, 0], ids=["u0", "u1", "u2", "u3"])))
    assert len(ok) == 10 and ok.ids == [f"s{i}" for i in range(6)] + ["u0", "u1", "u2", "u3"]


# --------------------------------------------------------------------------- PCM of every bit depth

PCM_DEPTHS = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32")


def _advised(message: str, x: np.ndarray) -> np.ndarray:
    """The scaling a refusal says to pass ("pass (x - 128) / 128 (8-bit ...", "pass x / 8388608 if it
    is ..."), applied to ``x``."""
    import re

    formula = re.search(r"pass (.+?)(?: \(| if it is)", message).group(1)
    return eval(formula, {"x": np.asarray(x, np.float64)})


@pytest.mark.parametrize("subtype", PCM_DEPTHS)
def test_a_wav_of_any_pcm_depth_reads_at_the_float_scale_and_the_refusals_give_back_that_scale(tmp_path, subtype):
    """The loaders read wavs with soundfile as float32: 8-bit unsigned, 16-, 24- and 32-bit PCM all
    come out in [-1, 1]. The same file read as integers by scipy (uint8, int16, int32 with 24-bit at
    the top), as is or cast to float (wav.astype(np.float32)), is refused by from_arrays, and the
    scaling the message names gives back the loaders' waveform. Before, unsigned 8-bit cast to float
    was told x / 32768 (offset by +1 and 256 times too quiet, let through)."""
    sf = pytest.importorskip("soundfile")
    from scipy.io import wavfile

    from dcatkit.data.preprocess import read_wav

    sr, n = 8000, 400
    wave = (0.9 * np.sin(2 * np.pi * 250 * np.arange(n) / sr)).astype(np.float32)
    sf.write(tmp_path / "x.wav", wave, sr, subtype=subtype)
    read, rate = read_wav(tmp_path / "x.wav")
    step = 1 / 128 if subtype == "PCM_U8" else 1 / 32768
    assert rate == sr and read.dtype == np.float32 and np.abs(read - wave).max() <= step
    _, pcm = wavfile.read(tmp_path / "x.wav")
    assert pcm.dtype == {"PCM_U8": np.uint8, "PCM_16": np.int16}.get(subtype, np.int32)
    labels = np.arange(4) % 2
    for given in (pcm, pcm.astype(np.float32)):
        with pytest.raises(ValueError, match="pass ") as e:
            D.from_arrays({"audio": np.stack([given] * 4)}, labels, groups="samples")
        np.testing.assert_allclose(_advised(str(e.value), given), read, atol=1e-6)


def test_pcm_in_a_container_that_does_not_say_its_depth_is_advised_by_its_values():
    """24-bit samples as they are stored (+-8388608, cast to float, or unpacked by hand into an
    int32) and 16-bit samples in an int64 array (np.array of Python ints): the advice follows the
    values (it said x / 2147483648 and x / 9223372036854775808: waveforms 256 times, or far more,
    too quiet, which nothing refuses after) and names the general rule."""
    from dcatkit.data.dataset import pcm_scaling

    wave = 0.9 * np.sin(np.arange(400) / 5)
    s24 = np.round(wave * 2 ** 23)
    with pytest.raises(ValueError, match=r"pass x / 8388608 if it is 24-bit PCM, as its peak suggests \(another bit "
                                         r"depth: x / 2\*\*\(depth - 1\); unsigned 8-bit: \(x - 128\) / 128\)") as e:
        D.from_arrays({"audio": np.stack([s24.astype(np.float32)] * 4)}, np.arange(4) % 2, groups="samples")
    np.testing.assert_allclose(_advised(str(e.value), s24), wave, atol=1e-6)
    assert pcm_scaling(np.int32, s24.min(), s24.max()).endswith("24-bit samples not shifted to 32 bits: then "
                                                                 "x / 8388608)")
    s16 = np.round(wave * 32767).astype(np.int64)
    assert pcm_scaling(s16.dtype, s16.min(), s16.max()).startswith("x / 32768 if it is 16-bit PCM")
    with pytest.raises(ValueError, match=r"holds integer samples \(int64\).*pass x / 2\*\*\(depth - 1\) for the "
                                         r"recording's bit depth, x / 32768 for 16-bit PCM \(int64 does not say"):
        D.from_arrays({"audio": np.stack([s16] * 4)}, np.arange(4) % 2, groups="samples")


# --------------------------------------------------------------------------- flags and cache_dir by type

def test_a_flag_given_as_text_is_refused_not_read_as_true(uestc, tmp_path):
    """``--data-option use_sync=False`` reaches the loader as the string 'False' (not JSON), which
    Python reads as true: sync stayed on. ``load`` refuses a flag that is not a bool, naming the
    option and the command line's spelling; a real bool passes."""
    with pytest.raises(ValueError, match=r"cough's option use_sync is a flag: true or false, got 'False' \(str\); "
                                         r"on the command line, --data-option use_sync=false"):
        D.load("cough", tmp_path, use_sync="False")
    with pytest.raises(ValueError, match=r"uestc's option progress is a flag: true or false, got 1 \(int\)$"):
        D.load("uestc", uestc, modalities=["imu"], imu_window=W, progress=1)
    s = D.load("uestc", _copy(uestc, tmp_path), modalities=["imu"], imu_window=W, progress=np.bool_(False))
    assert len(s.train) > 0


def test_cache_dir_true_is_the_default_folder_and_other_types_are_named(uestc, tmp_path):
    """``cache_dir`` (typed ``str | Path | None | bool``): None and True the default folder, False no
    cache, a path that folder; True crashed in ``Path(True)`` with a bare TypeError."""
    root = _copy(uestc, tmp_path)
    assert C.resolve_cache_dir(None, root) == C.resolve_cache_dir(True, root) == C.default_cache_dir(root)
    assert C.resolve_cache_dir(False, root) is None and C.resolve_cache_dir(str(tmp_path / "c"), root) == tmp_path / "c"
    with pytest.raises(ValueError, match=r"cache_dir must be a folder .* got 3 \(int\)"):
        C.resolve_cache_dir(3, root)
    _quiet(D.load, "uestc", root, cache_dir=True, **IMU)
    assert (root / ".dcatkit_cache").is_dir()
