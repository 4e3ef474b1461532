"""Cough audio-IMU loader against a tiny copy of the distributed layout."""
import json
import re
import shutil
import warnings

import numpy as np
import pytest

import dcatkit.data as D
from dcatkit.data import cough as K
from dcatkit.data.preprocess import UnreadableFile
from fixtures_data import make_cough

OPTS = dict(progress=False)
# (audio time of window start) per segment/window of the fixture's annotations
STARTS = {(0, 0): 1.0, (0, 1): 1.5, (1, 0): 2.4, (2, 0): 3.2, (2, 1): 3.7}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("cough") / "MultimodalCoughDataset"
    r.mkdir()
    make_cough(r)
    return r


@pytest.fixture(scope="module")
def splits(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return D.load("cough", root, **OPTS)


def _seg_win(i):
    _, seg, w = i.split("#")
    return int(seg[3:]), int(w[1:])


def test_items_shapes_labels_subjects(splits):
    assert splits.classes == list(K.CLASSES)
    item = splits.train[0]
    assert item["audio"].shape == (8000,) and item["imu"].shape == (6, 60)
    assert splits.train.sample_rates["audio"] == 16000.0
    assert splits.train.sample_rates["imu"] == 120.0   # 60 IMU instants spread over each 0.5 s window
    assert splits.report["native_rates"]["audio_native"] == [8000.0]  # from the wav header
    assert sum(len(d) for d in splits) == 4 * 3 * 5  # 4 subjects x 3 trials x 5 windows
    for d in splits:
        for i, y, s in zip(d.ids, d.labels, d.subjects):
            subj, trial = i.split("/")[0], int(i.split("Trial_")[1][0])
            seg, _ = _seg_win(i)
            assert s == int(subj)
            expect = {0: "Cough", 1: "Sneeze", 2: K.CLASSES[2 + trial - 1]}[seg]
            assert K.CLASSES[y] == expect
    # both the lower-case (005) and mixed-case (006) annotation names were matched
    ids = [i for d in splits for i in d.ids]
    assert any(i.startswith("005/Trial_1") for i in ids) and any(i.startswith("006/Trial_1") for i in ids)
    assert splits.report["n_unlabelled"] == 12 and "(id 9)" in splits.report["unlabelled"][0]


def test_audio_and_imu_cut_from_the_same_synchronised_span(splits):
    lo, hi = (np.array(splits.report["imu_minmax"][k]) for k in ("min", "max"))
    for d in splits:
        for k, i in enumerate(d.ids):
            t0 = STARTS[_seg_win(i)]
            imu_x = (d.arrays["imu"][k, 0] + 1) / 2 * (hi[0] - lo[0]) + lo[0]  # x-axis = IMU elapsed time
            grid = t0 - 0.5 + 0.2 + (np.arange(60) + 0.5) * 0.5 / 60  # audio offset 0.5 s, IMU 0.2 s
            np.testing.assert_allclose(imu_x, grid, atol=2e-3)


def test_windows_of_a_segment_stay_together_and_ood_is_subject_disjoint(root, splits):
    segs = [{i.rsplit("#", 1)[0] for i in d.ids} for d in splits]
    assert not (segs[0] & segs[1] or segs[0] & segs[2] or segs[1] & segs[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ood = D.load("cough", root, split="ood", **OPTS)
    parts = [set(d.subjects.tolist()) for d in ood]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_in_mic_missing_files_are_reported_not_repaired(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("cough", root, mic="in", sample_rate=8000, cache_dir=False, **OPTS)
    assert s.train[0]["audio"].shape == (4000,)
    assert len(s.report["missing_modality"]) == 3 and all(m.startswith("006/") for m in s.report["missing_modality"])
    assert 6 not in {int(x) for d in s for x in d.subjects}


def test_sync_file_formats():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as t:
        p = Path(t) / "sync_time.txt"
        p.write_text("t1 a b c 1.5 e f 0.25\nt2 a b c 2.5 e f 0.5\nt3 a b c 3.5 e f 0.75")
        assert K.read_sync(p, 2) == (2.5, 0.5)
        p.write_text(" ".join(f"x y z w {k}.5 u v {k}.25" for k in (1, 2, 3)))  # one line, 24 tokens
        assert K.read_sync(p, 3) == (3.5, 3.25)
        p.write_text("1 2 3\n")                                     # garbage: the format is named
        with pytest.raises(UnreadableFile, match=r"sync_time.txt: expected 8 whitespace-separated tokens per trial "
                                                 r".*trial 2; found 1 trial\(s\), the last with 3 token\(s\)"):
            K.read_sync(p, 2)
        p.write_text("\n".join(f"{k} 0 0 0 {k}.5 0 0 {k}.25" for k in (1, 2, 3, 4)) + "\n")      # a few trials
        assert K.read_sync(p, 4) == (4.5, 4.25) and K.read_sync(p, 1) == (1.5, 1.25)
        p.write_text("\n".join(f"{t}" for k in (1, 2) for t in f"{k} 0 0 0 {k}.5 0 0 {k}.25".split()))  # one per line
        assert K.read_sync(p, 2) == (2.5, 2.25)
        # a line one token short: read 8 at a time it shifted trial 2's IMU offset onto trial 3's first token
        p.write_text("1 0 0 0 0.50 0 0 0.20\n2 0 0 0 0.70 0 0.30\n3 0 0 0 0.90 0 0 0.40\n")
        with pytest.raises(UnreadableFile, match=r"one trial per line .*non-blank line 2 of 3 has 7 token\(s\)"):
            K.read_sync(p, 1)
        p.write_text("x y z w a u v 0.25\n" * 3)
        with pytest.raises(UnreadableFile, match=r"trial 1: the 5th and 8th tokens must be numbers .*'a' and '0.25'"):
            K.read_sync(p, 1)
    assert [K.trial_of(n) for n in ("005_no_talking_in.wav", "006_Talking_Out.wav", "007_Nonverbal_OUT.wav")] == [1, 2, 3]


def test_bad_input(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected layout"):
        D.load("cough", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="annotation file.*\n.*Expected layout"):
        D.load("cough", tmp_path / "empty")
    r = tmp_path / "c"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    wav = next((r / "007" / "Trial_2_Talking").glob("*_Out.wav"))
    wav.write_bytes(b"RIFF not really a wav")
    (r / "008" / "Trial_3_Nonverbal" / "Gyroscope.csv").unlink()
    with pytest.raises(UnreadableFile, match=wav.name):
        D.load("cough", r, cache_dir=False, **OPTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("cough", r, cache_dir=False, on_error="skip", **OPTS)
    assert s.report["n_skipped"] == 1 and wav.name in s.report["skipped"][0]
    assert s.report["missing_modality"] == [
        "008/Trial_3_Nonverbal: missing_modality (no imu: expected "
        f"{r / '008' / 'Trial_3_Nonverbal' / 'Gyroscope.csv'})"]
    ids = {i for d in s for i in d.ids}
    assert len(ids) == 60 - 10 and not any(i.startswith(("007/Trial_2", "008/Trial_3")) for i in ids)


def _audio_starts(s, a_off=0.5, i_off=0.2):
    """Audio start time of every window, read back from its IMU x-axis (= IMU elapsed time)."""
    lo, hi = (np.array(s.report["imu_minmax"][k]) for k in ("min", "max"))
    out = {}
    for part, d in zip(("train", "val", "test"), s):
        x = (d.arrays["imu"][:, 0, 0] + 1) / 2 * (hi[0] - lo[0]) + lo[0]      # first IMU instant
        for i, t in zip(d.ids, x - 0.5 * 0.5 / 60 + a_off - i_off):
            out[i] = (part, i.split("#")[0], float(t))
    return out


def test_no_audio_in_two_splits_when_a_short_segment_sits_between_neighbours(tmp_path):
    """A 0.2 s sneeze between two speech segments: its centred 0.5 s window overlaps both
    neighbours' windows, so the three must share a split (or the same audio is in two)."""
    r = tmp_path / "MultimodalCoughDataset"
    r.mkdir()
    make_cough(r, subjects=("005", "006", "007"),
               segments=[(1.0, 2.0, 2), (2.05, 2.25, 3), (2.3, 3.3, 2), (3.6, 4.6, 1), (4.7, 5.7, 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("cough", r, cache_dir=False, seed=0, **OPTS)
    win = _audio_starts(s)
    assert len(win) == 3 * 3 * 9
    shared = [(i, j) for i in win for j in win
              if win[i][1] == win[j][1] and win[i][0] < win[j][0] and abs(win[i][2] - win[j][2]) < 0.5 - 1e-3]
    assert shared == []
    merged = s.report["merged_segments"]
    assert len(merged) == 9 and all(g.endswith("#seg0+1+2") for g in merged)   # one per trial
    assert s.report["split"]["mixed_label_recordings"] == 9                      # speech + sneeze units


def test_shared_audio_groups_chain_and_separate():
    # windows of 0.5 s: seg 0 at 0.0/0.25 (overlapping, stride < window), seg 1 at 0.6 (overlaps 0.25),
    # seg 2 at 1.0 (overlaps seg 1 at 0.6), seg 3 at 1.5 (touches 1.0 exactly: no shared audio)
    g = K._shared_audio_groups([0, 0, 1, 2, 3], [0.0, 0.25, 0.6, 1.0, 1.5], 0.5)
    assert g == {0: "0+1+2", 1: "0+1+2", 2: "0+1+2", 3: "3"}


def test_leave_one_subject_out_on_cough(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folds = D.load("cough", root, split="loso", **OPTS)
    assert [f.report["split"]["held_out_subjects"] for f in folds] == [[5], [6], [7], [8]]
    for f in folds:
        assert f.report["dataset"] == "cough" and len(set(f.val.subjects.tolist())) == 1
        parts = [set(d.subjects.tolist()) for d in f]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_an_empty_value_in_an_imu_csv_is_named(root, tmp_path):
    """An empty cell in a MetaMotion csv would be NaN in the window (and in its split's min-max
    bounds): the loader names the file and the first (data row, column) instead."""
    r = tmp_path / "c"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    csv = next((r / "006").glob("Trial_*/Accelerometer.csv"))
    lines = csv.read_text().splitlines()
    cells = lines[5].split(",")
    cells[-1] = ""
    lines[5] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(UnreadableFile, match=r"Accelerometer.csv: 1 empty, NaN or infinite value\(s\), the first at "
                                             r"\(data row, column of elapsed/x/y/z\) \(5, 4\)"):
        D.load("cough", r, cache_dir=False, **OPTS)


def test_imu_rows_out_of_time_order_a_header_only_csv_and_a_segment_without_times_are_named(root, tmp_path):
    """np.interp takes unsorted times silently (wrong IMU in the windows), a header-only csv was an
    IndexError and a segment lacking start_time a KeyError: each now names the file and what is wrong."""
    r = tmp_path / "c"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    csv = next((r / "006").glob("Trial_*/Accelerometer.csv"))
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:10] + lines[20:30] + lines[10:20] + lines[30:]) + "\n")
    with pytest.raises(UnreadableFile, match=r"Accelerometer.csv: 'elapsed \(s\)' must not decrease row by row, but "
                                             r"data row 20 has .* sort the rows by time"):
        D.load("cough", r, cache_dir=False, **OPTS)
    csv.write_text("\n".join(lines[:10] + [lines[9]] + lines[10:]) + "\n")   # one row logged twice: still loads
    D.load("cough", r, cache_dir=False, **OPTS)
    csv.write_text(lines[0] + "\n")
    with pytest.raises(UnreadableFile, match=r"Accelerometer.csv: expected data rows under the header .*found 0"):
        D.load("cough", r, cache_dir=False, **OPTS)
    csv.write_text("\n".join(lines) + "\n")
    import json

    ann = r / "DataAnnotation.json"
    entries = json.loads(ann.read_text())
    del entries[1]["segmentations"][2]["start_time"]
    ann.write_text(json.dumps(entries))
    with pytest.raises(UnreadableFile, match=r"DataAnnotation.json: segment 2 of .* has no 'start_time'"):
        D.load("cough", r, cache_dir=False, **OPTS)
    entries[1]["segmentations"][2]["start_time"] = "1.O"
    ann.write_text(json.dumps(entries))
    with pytest.raises(UnreadableFile, match=r"DataAnnotation.json: segment 2 of .* must be numbers, found '1.O'"):
        D.load("cough", r, cache_dir=False, **OPTS)


def test_windows_lost_to_a_short_recording_and_annotations_without_a_folder_are_warned(root, tmp_path):
    """Windows past the end of a truncated wav were listed only in report['out_of_range'], and the
    annotations of a deleted participant folder only in report['unmatched_annotations']: both
    left data out without a word. The 'left out' warning now counts them."""
    sf = pytest.importorskip("soundfile", reason="writing a wav fixture needs the soundfile package, which is not installed")

    r = tmp_path / "c"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    wav = next((r / "005" / "Trial_1_No_Talking").glob("*_Out.wav"))
    x, sr = sf.read(wav)
    sf.write(wav, x[:int(2.0 * sr)], sr)                  # the audio now ends at 2 s: 3 windows lost
    shutil.rmtree(r / "007")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = D.load("cough", r, cache_dir=False, **OPTS)
    said = [str(w.message) for w in caught if str(w.message).startswith("left out:")]
    assert len(said) == 1 and re.search(r"3 out of range, .*, 3 unmatched annotations", said[0]), said
    assert len(s.report["out_of_range"]) == 3 and len(s.report["unmatched_annotations"]) == 3


def test_loader_arguments_are_checked_and_one_string_is_one_name(root, tmp_path):
    """window_s = 0 was a ZeroDivisionError, stride_s = 0 silently became the window, imu_window = 0
    an IndexError, sample_rate = 0 torchaudio's error; a string where a list is expected was split
    into its characters. Now: a ValueError naming the argument, and one string is one name."""
    for bad, said in ((dict(window_s=0), "window_s must be a number > 0, got 0"),
                      (dict(window_s=-1.0), "window_s must be a number > 0, got -1.0"),
                      (dict(stride_s=0.0), "stride_s must be a number > 0, got 0.0"),
                      (dict(imu_window=0), "imu_window must be an integer > 0, got 0"),
                      (dict(imu_window=60.5), "imu_window must be an integer > 0, got 60.5"),
                      (dict(sample_rate=0), "sample_rate must be an integer > 0, got 0")):
        with pytest.raises(ValueError, match=said):
            D.load("cough", tmp_path / "not-read", **bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("cough", root, modalities="imu", imu_sensors="Accelerometer", cache_dir=False, **OPTS)
    assert list(s.train.arrays) == ["imu"] and s.train[0]["imu"].shape == (3, 60)


def test_cut_pads_a_short_recording_at_its_end():
    from dcatkit.data.preprocess import cut

    wave = np.arange(1, 6, dtype=np.float32)                              # 5 samples
    assert cut(wave, 1, 3).tolist() == [2, 3, 4]
    assert cut(wave, 3, 4).tolist() == [4, 5, 0, 0]                       # past the end: zeros after the signal


def test_a_stereo_wav_is_read_as_the_mean_of_its_channels(tmp_path):
    sf = pytest.importorskip("soundfile", reason="writing a wav fixture needs the soundfile package, which is not installed")

    from dcatkit.data.preprocess import read_wav

    rng = np.random.default_rng(0)
    lr = rng.uniform(-0.5, 0.5, (800, 2)).astype(np.float32)
    sf.write(tmp_path / "s.wav", lr, 16000, subtype="FLOAT")
    wave, sr = read_wav(tmp_path / "s.wav")
    assert sr == 16000 and wave.shape == (800,)
    np.testing.assert_allclose(wave, (lr[:, 0] + lr[:, 1]) / 2, atol=1e-7)


def test_other_sound_is_a_class_and_a_window_past_the_imu_recording_is_left_out(tmp_path):
    """values.id 8 ("Other Sound") is the last of the 8 classes (only 9, "Unknown", is left out);
    a window whose IMU span (audio time - audio offset + IMU offset) runs past the end of the
    IMU recording is left out and listed, never filled with the last IMU value."""
    r = tmp_path / "MultimodalCoughDataset"
    r.mkdir()
    # IMU time = audio time + 0.8 s; the IMU ends at 6 s, so the window at 5.2 s would need IMU up to 6.5 s
    make_cough(r, audio_offset=0.0, imu_offset=0.8, segments=[(1.0, 2.0, 8), (2.0, 3.0, 1), (5.2, 5.7, 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("cough", r, cache_dir=False, **OPTS)
    got = {(_seg_win(i), K.CLASSES[y]) for d in s for i, y in zip(d.ids, d.labels)}
    assert got == {((0, 0), "Other Sound"), ((0, 1), "Other Sound"), ((1, 0), "Cough"), ((1, 1), "Cough")}
    lost = s.report["out_of_range"]
    assert len(lost) == 4 * 3 and all("#seg2@5.20s (outside the IMU recording)" in x for x in lost)


def test_sync_and_imu_settings_are_in_the_cache_key(root, tmp_path):
    """A second load with use_sync=False (or a third with another imu_window) must not read back
    an earlier load's windows: without the sync offsets the IMU x-axis (its own elapsed time) starts at
    the audio time of the window."""
    r = tmp_path / "c"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synced = D.load("cough", r, modalities=["imu"], **OPTS)
        raw = D.load("cough", r, modalities=["imu"], use_sync=False, **OPTS)
        short = D.load("cough", r, modalities=["imu"], use_sync=False, imu_window=30, **OPTS)
    assert synced.report["cache"] != raw.report["cache"]
    assert short.train[0]["imu"].shape == (6, 30)            # 30 IMU instants per window, not the cached 60
    lo, hi = (np.array(raw.report["imu_minmax"][k]) for k in ("min", "max"))
    for d in raw:
        for k, i in enumerate(d.ids):
            imu_x = (d.arrays["imu"][k, 0] + 1) / 2 * (hi[0] - lo[0]) + lo[0]
            grid = STARTS[_seg_win(i)] + (np.arange(60) + 0.5) * 0.5 / 60
            np.testing.assert_allclose(imu_x, grid, atol=2e-3)


def test_the_chosen_mics_annotation_and_wav_are_used_and_any_means_out(tmp_path):
    """Each trial has an In and an Out wav, each with its own annotation entry (In listed first).
    mic="out" / "in" reads that mic's wav and its annotation, whatever the json order; mic="any"
    is Out when it is there: its wav and its annotation, never the Out wav cut at the In times."""
    sf = pytest.importorskip("soundfile", reason="writing a wav fixture needs the soundfile package, which is not installed")

    r = tmp_path / "MultimodalCoughDataset"
    r.mkdir()
    out_entries = make_cough(r, subjects=("005",), missing_in=(), segments=[(1.0, 1.5, 1)])    # Cough at 1 s
    speech = {"label": {"label_id": 1, "values": {"id": 2, "value": "x"}}}
    in_entries = [{"original_filename": e["original_filename"].lower().replace("_out.wav", "_in.wav"),
                   "segmentations": [{"start_time": 3.0, "end_time": 3.5, "annotation": speech}]}
                  for e in out_entries]                                                      # Speech at 3 s
    (r / "DataAnnotation.json").write_text(json.dumps(in_entries + out_entries))
    ins = sorted(r.glob("005/*/*_In.wav"))
    assert len(ins) == 3
    for w in ins:
        sf.write(w, np.full(6 * 8000, 0.3), 8000)      # In: constant 0.3; Out: the fixture's 300 Hz sine (mean 0)
    keys = set()
    for mic, label, level in (("out", "Cough", 0.0), ("in", "Speech", 0.3), ("any", "Cough", 0.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = D.load("cough", r, modalities=["audio"], mic=mic, sample_rate=8000, cache_dir=False, **OPTS)
        got = [(K.CLASSES[y], round(float(d[k]["audio"].mean()), 2)) for d in s for k, y in enumerate(d.labels)]
        assert got == [(label, level)] * 3, mic
        keys.add(s.report["preprocessing"])
    assert len(keys) == 3            # other windows of the same ids: a resumed run must not mix them
    # a trial whose Out wav is missing: mic="any" reads its In wav, so In's annotation goes with it
    # (before: Out's annotation, preferred by name, cut from the In audio)
    gone = sorted(r.glob("005/*/*_Out.wav"))[0]
    gone.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("cough", r, modalities=["audio"], mic="any", sample_rate=8000, cache_dir=False, **OPTS)
    got = sorted((K.CLASSES[y], round(float(d[k]["audio"].mean()), 2)) for d in s for k, y in enumerate(d.labels))
    assert got == sorted([("Cough", 0.0)] * 2 + [("Speech", 0.3)])


def test_segments_annotated_out_of_time_order_are_merged_by_time():
    """Windows are compared in time order, not in the order the annotation file lists segments:
    windows of segments 0 (0.0, 0.5 s), 2 (3.0, 3.5 s) and 1 (0.9, 1.4 s), listed in that order,
    share audio between 0 and 1 only (0.5 s and 0.9 s are 0.4 s apart); compared in list order,
    2 and 1 were merged and 0 and 1 were not."""
    g = K._shared_audio_groups([0, 0, 2, 2, 1, 1], [0.0, 0.5, 3.0, 3.5, 0.9, 1.4], 0.5)
    assert g == {0: "0+1", 1: "0+1", 2: "2"}


def test_no_audio_in_two_splits_when_the_annotation_file_lists_segments_out_of_time_order(tmp_path):
    """The annotation lists speech at 1.0-2.0 s, a cough at 3.6-4.6 s, then a sneeze at 2.05-2.25 s:
    the sneeze's centred window (1.9 s) shares audio with the speech's window at 1.5 s, not with
    the cough, so speech and sneeze are one unit in every trial, and no audio is in two splits."""
    r = tmp_path / "MultimodalCoughDataset"
    r.mkdir()
    make_cough(r, subjects=("005", "006", "007"), segments=[(1.0, 2.0, 2), (3.6, 4.6, 1), (2.05, 2.25, 3)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("cough", r, cache_dir=False, split_file=None, seed=0, **OPTS)
    assert s.report["merged_segments"] == sorted(f"{s_}/{t}#seg0+2" for s_ in ("005", "006", "007")
                                                 for t in ("Trial_1_No_Talking", "Trial_2_Talking",
                                                           "Trial_3_Nonverbal"))
    win = _audio_starts(s)
    assert len(win) == 9 * 5
    shared = [(i, j) for i in win for j in win
              if win[i][1] == win[j][1] and win[i][0] < win[j][0] and abs(win[i][2] - win[j][2]) < 0.5 - 1e-3]
    assert shared == []
