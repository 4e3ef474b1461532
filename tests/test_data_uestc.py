"""UESTC-MMEA-CL loader against a tiny copy of the distributed layout."""
import os
import shutil
import warnings

import numpy as np
import pytest

import dcatkit.data as D
from dcatkit.data import uestc as U
from dcatkit.data.preprocess import UnreadableFile, uniform_indices
from fixtures_data import frame_means, make_uestc

ROWS, W, T = 40, 10, 4
OPTS = dict(imu_window=W, frames=T, frame_size=8, progress=False)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("uestc") / "UESTC-MMEA-CL"
    r.mkdir()
    subjects = make_uestc(r, rows=ROWS, jpeg_every=3)  # mp4s and both JPEG naming schemes
    return r, subjects


@pytest.fixture(scope="module")
def splits(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return D.load("uestc", root[0], **OPTS)


def _raw_imu(s, d):
    lo, hi = (np.array(s.report["imu_minmax"][k]) for k in ("min", "max"))
    return (d.arrays["imu"] + 1) / 2 * np.where(hi > lo, hi - lo, 1)[:, None] + lo[:, None]


def test_paper_subset_items_labels_and_shapes(splits):
    assert splits.classes == list(U.PAPER_CLASSES)
    assert sum(len(d) for d in splits) == 8 * 3 * (ROWS // W)  # 3 recordings per class, 4 windows each
    item = splits.train[0]
    assert item["imu"].shape == (6, W) and item["video"].shape == (T, 3, 8, 8)
    assert str(item["video"].dtype) == "torch.uint8" and item["subject"] == -1
    for d in splits:
        for i, label in zip(d.ids, d.labels):
            folder = i.split("/")[0]
            assert folder != "1_upstairs" and splits.classes[label] == folder
    assert splits.classes.index("27_open_close_door") == 7
    assert splits.train.sample_rates["video"] == 25.0  # read from the mp4


def test_windows_hold_consecutive_imu_rows_and_the_matching_frames(root, splits):
    checked, kinds = 0, set()
    for d in splits:
        raw = _raw_imu(splits, d)
        for k, wid in enumerate(d.ids):
            start = int(wid.split("#")[1])
            rows = np.rint(raw[k, 0] * 16384 / 16).astype(int)  # acc x = row * 16 counts
            assert rows.tolist() == list(range(start, start + W))
            # gyro y = -row counts, 16.4 counts per deg/s (the layout spec); float16 on disk
            np.testing.assert_allclose(raw[k, 4], -np.arange(start, start + W) / 16.4, rtol=2e-3, atol=1e-3)
            folder, stem = wid.split("#")[0].split("/")
            src = root[0] / "video" / folder / stem
            src = src if src.is_dir() else src.with_suffix(".mp4")
            kinds.add(src.suffix or next(src.iterdir()).name[:4])
            expect = frame_means(src)[uniform_indices(start, start + W, T, ROWS)]
            got = d[k]["video"].float().mean(dim=(1, 2, 3)).numpy()
            np.testing.assert_allclose(got, expect, atol=1)
            checked += 1
    assert checked == 96 and kinds == {".mp4", "img_", "0000"}  # mp4 and both JPEG naming schemes


def test_windows_of_one_recording_stay_in_one_split(splits):
    recs = [{i.split("#")[0] for i in d.ids} for d in splits]
    assert not (recs[0] & recs[1] or recs[0] & recs[2] or recs[1] & recs[2])
    assert splits.report["split"]["unit"] == "recording"


def test_list_files_placeholder_prefix_no_final_newline_and_short_lines(root, tmp_path):
    rows = U.parse_list_file(root[0] / "test.txt")
    assert not (root[0] / "test.txt").read_text().endswith("\n")
    assert len(rows) == 9 and rows[-1][0] == "27_open_close_door" and rows[-1][3] == 26
    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    short = next(stem for folder, stem, _, _ in U.parse_list_file(r / "train.txt") if folder == "3_drinking")
    enough = next(stem for folder, stem, _, _ in U.parse_list_file(r / "train.txt") if folder == "5_reading")
    text = (r / "train.txt").read_text().replace(f"3_drinking/{short} {ROWS}", f"3_drinking/{short} 2")
    text = text.replace(f"5_reading/{enough} {ROWS}", f"5_reading/{enough} 3")   # exactly min_frames (3): kept
    (r / "train.txt").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("uestc", r, cache_dir=False, modalities=["imu"], **OPTS)
    assert s.report["too_few_frames"] == [f"3_drinking/{short}"]
    assert not any(short in i for d in s for i in d.ids)
    assert sum(enough in i for d in s for i in d.ids) == ROWS // W


def test_class_choice_by_name_and_all(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        two = D.load("uestc", root[0], modalities=["imu"], classes=["drinking", "27_open_close_door"], **OPTS)
        every = D.load("uestc", root[0], modalities=["imu"], classes="all", **OPTS)
    assert two.classes == ["3_drinking", "27_open_close_door"]
    assert sum(len(d) for d in two) == 2 * 3 * 4
    assert every.classes[0] == "1_upstairs" and len(every.classes) == 9
    with pytest.raises(ValueError, match="not found; available"):
        D.load("uestc", root[0], classes=["juggling"], **OPTS)


def test_ood_needs_a_subject_map_and_is_subject_disjoint(root, tmp_path):
    r, subjects = root
    with pytest.raises(ValueError, match="subject_map.*CLI: --data-option subject_map=FILE"):
        D.load("uestc", r, split="ood", **OPTS)
    smap = tmp_path / "subjects.csv"
    smap.write_text("stem,subject\n" + "".join(f"{k},P{v}\n" for k, v in subjects.items()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("uestc", r, split="ood", subject_map=smap, **OPTS)
    parts = [set(d.subjects.tolist()) for d in s]
    assert all(parts) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    for d in s:  # the map was applied per recording
        names = {f"P{subjects[i.split('/')[1].split('#')[0]]}" for i in d.ids}
        assert len(names) == len(set(d.subjects.tolist()))
    proxy = D.load("uestc", r, split="ood", subject_proxy="date", **OPTS)
    assert "proxy" in proxy.report["subject_source"]
    with pytest.raises(ValueError, match=r"split=\('group_kfold', 2\) needs to know who recorded"):
        D.load("uestc", r, split=("group_kfold", 2), **OPTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folds = D.load("uestc", r, split=("group_kfold", 2), subject_map=smap, **OPTS)
    assert sorted(u for f in folds for u in f.report["split"]["held_out_subjects"]) == [0, 1, 2, 3]
    dates = [{i.split("_2020_")[1][:5] for i in d.ids} for d in proxy]
    assert not (dates[0] & dates[1] or dates[0] & dates[2])


def test_cache_is_reused_across_loads(root, monkeypatch):
    calls = []
    real = U._read_imu
    monkeypatch.setattr(U, "_read_imu", lambda *a: calls.append(a[0]) or real(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s1 = D.load("uestc", root[0], **dict(OPTS, frames=2))
        n = len(calls)
        s2 = D.load("uestc", root[0], **dict(OPTS, frames=2))
    assert n == 24 and len(calls) == n
    assert s1.report["cache"] == s2.report["cache"] and s1.test.ids == s2.test.ids
    assert s1.report["split"].get("split_file") and s2.report["split"]["reloaded"]


def test_missing_root_and_folders_show_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected layout"):
        D.load("uestc", tmp_path / "nowhere")
    (tmp_path / "sensor").mkdir()
    with pytest.raises(FileNotFoundError, match="video/ folder.*\n.*Expected layout"):
        D.load("uestc", tmp_path)


def test_unreadable_csv_and_missing_video(root, tmp_path):
    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    bad = sorted((r / "sensor" / "5_reading").iterdir())[0]
    bad.write_text("1,2\n3,4\n")
    gone = sorted((r / "video" / "7_cut_fruits").glob("*.mp4"))[0]
    gone.unlink()
    with pytest.raises(UnreadableFile, match=bad.name + ".*6 columns"):
        D.load("uestc", r, cache_dir=False, **OPTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("uestc", r, cache_dir=False, on_error="skip", **OPTS)
    assert s.report["n_skipped"] == 1 and bad.name in s.report["skipped"][0]
    assert len(s.report["missing_modality"]) == 1 and gone.stem in s.report["missing_modality"][0]
    ids = {i for d in s for i in d.ids}
    assert not any(bad.stem in i or gone.stem in i for i in ids)
    assert len(ids) == (24 - 2) * 4


def test_an_empty_cell_in_a_sensor_csv_is_named_not_passed_on_as_nan(root, tmp_path):
    """One empty value in one UESTC csv: pandas reads it as NaN, which would make that channel's
    min-max bounds (and every window of every split) NaN. The loader names the file, how many
    values and where the first is; with on_error="skip" the recording is left out and listed."""
    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    bad = sorted((r / "sensor" / "5_reading").iterdir())[0]
    rows = bad.read_text().splitlines()
    cells = rows[3].split(",")
    cells[2] = ""
    rows[3] = ",".join(cells)
    bad.write_text("\n".join(rows) + "\n")
    with pytest.raises(UnreadableFile, match=bad.name + r".*1 empty, NaN or infinite value\(s\), the first at "
                                          r"\(row, column\) \(4, 3\)"):
        D.load("uestc", r, cache_dir=False, **OPTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("uestc", r, cache_dir=False, on_error="skip", **OPTS)
    assert s.report["n_skipped"] == 1 and bad.name in s.report["skipped"][0]
    assert all(np.isfinite(d.arrays["imu"]).all() for d in s)
    assert np.isfinite(s.report["imu_minmax"]["min"]).all()


def test_a_class_left_without_samples_is_named(root, tmp_path):
    """Every sensor file of one class missing: its recordings are left out (missing modality), and a
    warning names the class that now has no sample at all (the models still have its output)."""
    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    for f in (r / "sensor" / "5_reading").iterdir():
        f.unlink()
    with pytest.warns(UserWarning) as caught:
        s = D.load("uestc", r, cache_dir=False, **OPTS)
    said = [str(w.message) for w in caught if "no sample at all" in str(w.message)]
    assert len(said) == 1 and f"1 of {len(s.classes)} classes have no sample at all" in said[0]
    gone = [c for c in s.classes if c in said[0]]
    assert len(gone) == 1 and "reading" in gone[0]
    assert not any((d.labels == s.classes.index(gone[0])).any() for d in s)


def test_subject_map_mixing_numeric_and_named_ids_keeps_participants_apart():
    """'2' was kept as 2 while 'P1' was numbered by its sorted position (2 as well): two
    participants became one. With any non-integer id, every id is numbered in sorted order."""
    recs = [U._Rec("3_drinking", f"s{i}", 0) for i in range(4)]
    got = U._subjects_from_map({"s0": "1", "s1": "2", "s2": "P1", "s3": "P2"}, recs)
    assert len(set(got.values())) == 4, got
    assert U._subjects_from_map({"s0": 7, "s1": "7", "s2": 12, "s3": 3}, recs) == {"s0": 7, "s1": 7, "s2": 12, "s3": 3}


def test_loader_arguments_are_checked_and_one_string_is_one_name(root, tmp_path):
    """imu_window = 0 or frames = 0 failed deep in numpy, imu_stride = 0 silently became the window;
    classes='drinking' looked for a class 'd'. Now: a ValueError naming the argument, and one string
    is one name."""
    for bad, said in ((dict(imu_window=0), "imu_window must be an integer > 0, got 0"),
                      (dict(imu_stride=0), "imu_stride must be an integer > 0, got 0"),
                      (dict(frames=0), "frames must be an integer > 0, got 0"),
                      (dict(frame_size=-8), "frame_size must be an integer > 0, got -8"),
                      (dict(acc_scale=0), "acc_scale must be a number > 0, got 0")):
        with pytest.raises(ValueError, match=said):
            D.load("uestc", tmp_path / "not-read", **{**OPTS, **bad})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = U.load_uestc(root[0], classes="drinking", modalities="imu", cache_dir=False, **OPTS)
    assert s.classes == ["3_drinking"] and list(s.train.arrays) == ["imu"]


def test_jpeg_frames_overwritten_in_place_are_decoded_again(root, tmp_path):
    """A folder of JPEG frames re-extracted in place (same file names; the folder's own mtime
    does not change) is an input change: the cache is rebuilt, never read back with the old frames."""
    from PIL import Image

    r = tmp_path / "UESTC-MMEA-CL"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    folder = next(p for p in sorted((r / "video" / "3_drinking").iterdir()) if p.is_dir())
    mine = lambda s: np.concatenate([d.arrays["video"][[j for j, i in enumerate(d.ids) if folder.name in i]]
                                     for d in s])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = D.load("uestc", r, **OPTS)
        stamp = folder.stat().st_mtime_ns
        for p in folder.iterdir():
            Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(p, quality=100)
            os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
        os.utime(folder, ns=(folder.stat().st_atime_ns, stamp))
        after = D.load("uestc", r, **OPTS)
    assert after.report["cache"] != before.report["cache"]
    assert abs(mine(before).mean() - 200) > 20 and abs(mine(after).astype(float).mean() - 200) < 2


def test_uniform_indices_are_the_frames_at_the_centres_of_equal_spans():
    """count frames from [start, stop): the frame under the centre of each of count equal spans
    (known values; the window tests above use the function itself, so they cannot see it)."""
    assert uniform_indices(0, 10, 5, 100).tolist() == [1, 3, 5, 7, 9]
    assert uniform_indices(20, 30, 2, 100).tolist() == [22, 27]
    assert uniform_indices(0, 4, 8, 100).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]   # fewer frames than asked: repeats
    assert uniform_indices(90, 110, 4, 100).tolist() == [92, 97, 99, 99]         # clipped to the last frame
    assert uniform_indices(5, 5, 2, 100).tolist() == [5, 5]                      # an empty span: its start frame


def test_jpeg_frames_are_ordered_by_number_not_by_name(tmp_path):
    """Frame files without zero padding (1.jpg, 2.jpg, 10.jpg) are in temporal order by their number,
    in either naming scheme (one scheme per folder: both in one are refused, test_preprocess.py)."""
    from dcatkit.data.preprocess import list_jpeg_frames

    ffmpeg, img = tmp_path / "ffmpeg", tmp_path / "img"
    for d in (ffmpeg, img):
        d.mkdir()
        (d / "notes.txt").write_bytes(b"")
    for k in (10, 2, 1, 9):
        (ffmpeg / f"{k}.jpg").write_bytes(b"")
        (img / f"img_{k - 1}.jpg").write_bytes(b"")
    assert [p.name for p in list_jpeg_frames(ffmpeg)] == ["1.jpg", "2.jpg", "9.jpg", "10.jpg"]
    assert [p.name for p in list_jpeg_frames(img)] == ["img_0.jpg", "img_1.jpg", "img_8.jpg", "img_9.jpg"]


def _copy(root, tmp_path):
    r = tmp_path / "UESTC-MMEA-CL"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    return r


def test_frames_follow_the_imu_window_in_proportion_when_the_video_has_fewer_frames(tmp_path):
    """IMU rows and video frames both span the recording, so a window of rows [s, s + W) of a
    recording with 40 rows and a 20-frame video takes its frames from [s / 2, (s + W) / 2), and
    the IMU rate is 40 / 20 x the video's 25 fps = 50 Hz (the fixture elsewhere has one frame per
    row, where both readings agree)."""
    from fixtures_data import write_mp4

    r = tmp_path / "UESTC-MMEA-CL"
    r.mkdir()
    make_uestc(r, per_class=3, rows=ROWS)
    for mp4 in (r / "video").glob("*/*.mp4"):
        write_mp4(mp4, ROWS // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("uestc", r, cache_dir=False, **OPTS)
    assert s.train.sample_rates["imu"] == pytest.approx(50.0) and s.train.sample_rates["video"] == 25.0
    checked = 0
    for d in s:
        for k, wid in enumerate(d.ids):
            start = int(wid.split("#")[1])
            folder, stem = wid.split("#")[0].split("/")
            means = frame_means(r / "video" / folder / f"{stem}.mp4")
            expect = means[[int((start + (j + 0.5) * W / T) / 2) for j in range(T)]]   # frame under each span's centre
            np.testing.assert_allclose(d[k]["video"].float().mean(dim=(1, 2, 3)).numpy(), expect, atol=1)
            checked += 1
    assert checked == 24 * (ROWS // W)


def test_settings_that_change_the_windows_are_in_the_cache_key(root, tmp_path):
    """A second load with another acc_scale or imu_stride must not read back the first load's
    windows: acc x of the last row is 39 x 16 counts / acc_scale g, and a stride of 5 rows gives
    7 windows of 10 rows out of 40 (known values of the fixture)."""
    r = _copy(root, tmp_path)
    opts = dict(OPTS, modalities=["imu"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = D.load("uestc", r, **opts)
        other_scale = D.load("uestc", r, acc_scale=8192.0, **opts)
        other_stride = D.load("uestc", r, imu_stride=5, **opts)
    assert first.report["imu_minmax"]["max"][0] == pytest.approx(39 * 16 / 16384, rel=1e-3)
    assert other_scale.report["imu_minmax"]["max"][0] == pytest.approx(39 * 16 / 8192, rel=1e-3)
    assert sum(len(d) for d in first) == 24 * 4 and sum(len(d) for d in other_stride) == 24 * 7
    assert len({first.report["cache"], other_scale.report["cache"], other_stride.report["cache"]}) == 3


def test_subject_map_keyed_by_folder_and_stem_and_an_unmapped_recording_is_unknown_and_listed(root, tmp_path):
    """The map's keys may be 'folder/stem' (a list file's path) as well as 'stem'; a recording the
    map does not name has subject -1 (unknown, never a participant's number) and is listed."""
    r, subjects = root
    left_out = sorted(subjects)[0]
    smap = {f"{s.rsplit('_2020_', 1)[0]}/{s}": f"P{v}" for s, v in subjects.items() if s != left_out}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("uestc", r, modalities=["imu"], subject_map=smap, cache_dir=False, **OPTS)
    for d in s:
        for i, subj in zip(d.ids, d.subjects.tolist()):
            stem = i.split("#")[0].split("/")[1]
            assert subj == (-1 if stem == left_out else subjects[stem]), i   # P0..P3 -> 0..3 in sorted order
    assert s.report["unmapped_recordings"] == [f"{left_out.rsplit('_2020_', 1)[0]}/{left_out}"]


def test_a_list_line_whose_label_contradicts_its_folder_is_refused(root, tmp_path):
    """Label id = class number - 1 (the layout spec): a list line that says otherwise is an error."""
    r = _copy(root, tmp_path)
    stem = next(st for f, st, _, _ in U.parse_list_file(r / "val.txt") if f == "5_reading")
    text = (r / "val.txt").read_text()
    (r / "val.txt").write_text(text.replace(f"5_reading/{stem} {ROWS} {ROWS} 4", f"5_reading/{stem} {ROWS} {ROWS} 5"))
    with pytest.raises(ValueError, match=f"5_reading/{stem} has label 5, but its folder says 4"):
        D.load("uestc", r, modalities=["imu"], cache_dir=False, **OPTS)


def test_the_date_proxy_is_the_recording_day_not_the_hour():
    """Stems end in YYYY_MM_DD_HH_MM_SS: the proxy groups by the day."""
    recs = ["3_drinking/3_drinking_2020_12_15_09_58_48", "5_reading/5_reading_2020_12_15_16_01_02",
            "5_reading/5_reading_2020_12_16_09_58_48"]
    assert [U._DATE.search(g).group(1) for g in recs] == ["2020_12_15", "2020_12_15", "2020_12_16"]


def test_a_sensor_csv_rewritten_with_the_same_size_is_read_again(root, tmp_path):
    """A csv rewritten in place with other values of the same length (same size, a later time)
    is an input change: the cache key sees file times, not only sizes."""
    r = _copy(root, tmp_path)
    f = sorted((r / "sensor" / "3_drinking").iterdir())[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = D.load("uestc", r, modalities=["imu"], **OPTS)
        text = f.read_text()
        f.write_text(text.replace(",3\n", ",4\n"))                      # gyro z: 3 -> 4 counts, same size
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
        after = D.load("uestc", r, modalities=["imu"], **OPTS)
    assert len(f.read_text()) == len(text) and after.report["cache"] != before.report["cache"]
    assert after.report["imu_minmax"]["max"][5] == pytest.approx(4 / 16.4, rel=1e-3)


def test_a_truncated_mp4_is_unreadable_not_its_last_frame_repeated(tmp_path):
    """A copy cut short whose header still counts every frame: the frames past the cut were the
    last decodable one, repeated (three quarters of a recording's windows paired IMU with one
    frozen frame). Now it is an UnreadableFile naming how many decode; a header that overshoots
    by a frame or two still reuses the last frame."""
    from dcatkit.data.preprocess import OVERSHOOT, read_video_frames, video_info
    from fixtures_data import frame_value, write_mp4

    vid = tmp_path / "cut.mp4"
    write_mp4(vid, 40, faststart=True)
    assert video_info(vid)[0] == 40
    whole = read_video_frames(vid, np.arange(40), 8)
    assert np.allclose([f.mean() for f in whole[::8]], [frame_value(k) for k in range(0, 40, 8)], atol=3)
    av = pytest.importorskip("av", reason="writing an mp4 fixture needs the av package, which is not installed")

    def decodable(path):
        try:
            with av.open(str(path)) as c:
                return sum(1 for _ in c.decode(video=0))
        except av.error.FFmpegError:                # cut inside a packet: an error, not a short file
            return -1

    data = vid.read_bytes()
    for frac in np.arange(0.5, 0.95, 0.05):         # a cut at a packet boundary: some frames decode, not all
        vid.write_bytes(data[:int(len(data) * frac)])
        decoded = decodable(vid)
        if 0 < decoded < 40 - OVERSHOOT - 4:
            break
    assert 0 < decoded < 40 - OVERSHOOT - 4, decoded
    assert video_info(vid)[0] == 40                                        # the header still says 40
    with pytest.raises(UnreadableFile, match=r"frame 36 was asked for .* but only \d+ frames decode: a truncated"):
        read_video_frames(vid, np.arange(0, 40, 4), 8)
    got = read_video_frames(vid, np.arange(decoded + OVERSHOOT), 8)        # overshoot: the last frame reused
    assert np.array_equal(got[-1], got[decoded - 1])


def test_recordings_shorter_than_their_list_line_are_named(root, tmp_path):
    """A frame folder whose extraction stopped early, or an IMU csv cut short, aligns by
    proportion with the wrong part of the other stream: the load warns and lists them in
    report["count_mismatch"] (frames and rows found against the list's); whole copies are silent."""
    from fixtures_data import uestc_stem

    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", message=".*than their list line")
        whole = D.load("uestc", r, cache_dir=False, **OPTS)
    assert not whole.report.get("count_mismatch")
    jpgs = r / "video" / "3_drinking" / uestc_stem("3_drinking", 0)
    assert jpgs.is_dir()
    for f in sorted(jpgs.iterdir())[10:]:
        f.unlink()                                                         # extraction killed after 10 frames
    csv = r / "sensor" / "5_reading" / f"{uestc_stem('5_reading', 1)}.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:20]))     # a copy cut at 20 of 40 rows
    with pytest.warns(UserWarning) as caught:
        cut = D.load("uestc", r, cache_dir=False, **OPTS)
    assert [str(w.message)[:74] for w in caught if "list line" in str(w.message)] == [
        "2 recordings have fewer IMU rows or video frames than their list line says"]
    assert sorted(cut.report["count_mismatch"]) == [
        f"3_drinking/{uestc_stem('3_drinking', 0)}: 10 video frames, the list says {ROWS}",
        f"5_reading/{uestc_stem('5_reading', 1)}: 20 IMU rows, the list says {ROWS}"]


def test_a_complete_mp4_cut_with_an_edit_list_is_read_not_refused(tmp_path):
    """A clip cut with `ffmpeg -ss ... -c copy` keeps every packet in the header's frame count (40)
    but plays only the edited part (30 frames): its frames are the ones that decode, not a
    truncated file (the truncation check refused it, with 'copy it again', which cannot help)."""
    av = pytest.importorskip("av", reason="writing an mp4 fixture needs the av package, which is not installed")

    from dcatkit.data.preprocess import read_video_frames, video_info
    from fixtures_data import frame_value, write_mp4

    src, dst = tmp_path / "src.mp4", tmp_path / "edit.mp4"
    write_mp4(src, 40)
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        s = i.streams.video[0]
        out = o.add_stream_from_template(s)
        shift = None
        for p in i.demux(s):
            if p.dts is None:
                continue
            shift = int(10 * p.duration) if shift is None else shift        # the first 10 frames before the cut
            p.pts -= shift
            p.dts -= shift
            p.stream = out
            o.mux(p)
    with av.open(str(dst)) as c:
        header, decoded = c.streams.video[0].frames, sum(1 for _ in c.decode(video=0))
    assert (header, decoded) == (40, 30)
    assert video_info(dst) == (30, 25.0)
    got = read_video_frames(dst, np.arange(30), 8)
    assert np.allclose([f.mean() for f in got[::10]], [frame_value(k) for k in (10, 20, 30)], atol=3)


def test_windows_cached_by_an_earlier_decoder_are_decoded_again(root, tmp_path, monkeypatch):
    """The loader's cache settings name the video decoder's version: windows cached before the
    truncation and list-count checks existed are not reused (they could hold a repeated last
    frame, and carry no count_mismatch note), they are built again."""
    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    cache = tmp_path / "cache"
    monkeypatch.setattr(U, "VIDEO_DECODER", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        D.load("uestc", r, cache_dir=cache, **OPTS)
        monkeypatch.undo()
        D.load("uestc", r, cache_dir=cache, **OPTS)
        D.load("uestc", r, cache_dir=cache, **OPTS)                       # the same decoder: reused
    assert len([d for d in cache.iterdir() if d.name.startswith("uestc-")]) == 2


def test_a_list_file_saved_with_a_byte_order_mark_reads_as_the_plain_one(root, tmp_path):
    """Notepad and Excel save UTF-8 with a byte-order mark: it is not part of the first line's path
    (else a first line without the placeholder prefix, ``1_upstairs/<stem> ...``, has the class
    folder '\ufeff1_upstairs' and the load is refused)."""
    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    text = (root[0] / "train.txt").read_text().replace("yourdataset_path/data/", "")   # paths <folder>/<stem>
    assert not text.startswith("yourdataset_path")
    (r / "train.txt").write_text(text)
    plain = U.parse_list_file(r / "train.txt", with_imu_rows=True)
    (r / "train.txt").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert U.parse_list_file(r / "train.txt", with_imu_rows=True) == plain
    assert U.parse_list_file(r / "train.txt") == [row[:4] for row in plain]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = D.load("uestc", root[0], cache_dir=False, modalities=["imu"], **OPTS)
        b = D.load("uestc", r, cache_dir=False, modalities=["imu"], **OPTS)
    assert [list(d.ids) for d in a] == [list(d.ids) for d in b]


def _scan_copy(root, tmp_path):
    """The fixture without its list files (the loader scans the folders)."""
    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    for f in U.LIST_FILES:
        (r / f).unlink()
    return r


def test_without_list_files_a_video_without_its_csv_is_counted_as_missing_not_dropped(root, tmp_path):
    """No list files: the recordings are found on the video side too, so one with an mp4 and one
    with a frame folder, both without a csv, are named in report["missing_modality"] (and
    warned about) in a load with video and in an imu-only load, not left out uncounted."""
    r = _scan_copy(root, tmp_path)
    mp4 = sorted((r / "video" / "5_reading").glob("*.mp4"))[0]
    frames = next(p for p in sorted((r / "video").glob("*/*")) if p.is_dir() and p.parent.name in U.PAPER_CLASSES)
    for v in (mp4, frames):
        (r / "sensor" / v.parent.name / f"{v.name.removesuffix('.mp4')}.csv").unlink()
    for modalities in (("imu", "video"), ("imu",)):
        with pytest.warns(UserWarning, match="2 missing modality"):
            s = D.load("uestc", r, cache_dir=False, modalities=modalities, **OPTS)
        missing = s.report["missing_modality"]
        assert len(missing) == 2 and s.report["n_missing_modality"] == 2
        assert any(mp4.stem in m for m in missing) and any(frames.name in m for m in missing)
        assert sum(len(d) for d in s) == (24 - 2) * (ROWS // W)


def test_a_list_line_whose_path_holds_a_space_is_read_from_the_right(root, tmp_path):
    """A prefix such as ``/home/me/my data/`` splits the line into more than four fields: the
    last three (integers) are the counts and the label, the rest is the path. A line of four
    fields reads as before, and a line whose counts are not all integers is still refused."""
    p = tmp_path / "list.txt"
    p.write_text("/home/me/my data/27_open_close_door/27_open_close_door_2022_05_05_16_05_51 418 419 26\n"
                 "yourdataset_path/data/3_drinking/3_drinking_2020_12_10_15_58_00 40 41 2\n")
    assert U.parse_list_file(p, with_imu_rows=True) == [
        ("27_open_close_door", "27_open_close_door_2022_05_05_16_05_51", 418, 26, 419),
        ("3_drinking", "3_drinking_2020_12_10_15_58_00", 40, 2, 41)]
    p.write_text("my data/3_drinking/3_drinking_2020_12_10_15_58_00 40 x 2\n")
    with pytest.raises(ValueError, match=r"list.txt:1: "):         # counts not all integers: refused
        U.parse_list_file(p)
    # a load through list files under a folder with a space in its name
    r = tmp_path / "u"
    shutil.copytree(root[0], r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    for f in U.LIST_FILES:
        (r / f).write_text((r / f).read_text().replace("yourdataset_path/data/", "/home/me/my data/"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("uestc", r, cache_dir=False, modalities=["imu"], **OPTS)
    assert sum(len(d) for d in s) == 8 * 3 * (ROWS // W)


def test_a_tab_or_semicolon_subject_map_is_read_and_a_map_naming_no_recording_is_refused(root, tmp_path):
    """A subject map exported with tabs or semicolons was read as rows of one field, each dropped:
    an empty map, and then the ood split asked for a map. Such a map is read as its comma form;
    a row of one field is refused with its line; a map none of whose keys names a recording
    (another key form) is refused showing one of its keys beside one of the recordings."""
    r, subjects = root
    recs = [U._Rec(s.rsplit("_2020_", 1)[0], s, 0) for s in sorted(subjects)]
    want = U._subjects_from_map({s: f"P{v}" for s, v in subjects.items()}, recs)
    for sep in ("\t", ";", ","):
        f = tmp_path / "subjects.txt"
        f.write_text(f"stem{sep}subject\n" + "".join(f"{k}{sep}P{v}\n" for k, v in subjects.items()) + "\n")
        assert U._subjects_from_map(f, recs) == want, repr(sep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = D.load("uestc", r, split="ood", subject_map=f, modalities=["imu"], cache_dir=False, **OPTS)
    assert s.report["unmapped_recordings"] == []
    f.write_text("stem,subject\n" + f"{recs[0].stem},P1\n" + f"{recs[1].stem} P2\n")
    with pytest.raises(ValueError, match=r"subjects\.txt:3: expected <stem>','<id>, found '" + recs[1].stem
                                         + " P2'; a subject map is"):
        U._subjects_from_map(f, recs)
    with pytest.raises(ValueError, match=r"none of its 2 keys names one of the 2 recordings loaded \(e\.g\. its key "
                                         r"'subject-7' and this load's recording '" + recs[0].stem + "'.*a subject map is"):
        U._subjects_from_map({"subject-7": 1, "subject-8": 2}, recs[:2])
    with pytest.raises(ValueError, match="it has no entries"):
        U._subjects_from_map({}, recs)


def test_a_nested_sensor_folder_and_misnamed_frames_are_named_with_the_expected_layout(root, tmp_path):
    """Without list files, csvs one level too deep (sensor/sensor/<class>/, a nested unzip) gave
    "class '3_drinking' not found; available: []"; the error now says no csv was found as
    sensor/<n>_<class>/<stem>.csv, shows the one found and the layout. A frame folder of
    frame_000001.jpg files gave "no video frames"; it now names the accepted names and what the
    folder holds."""
    r = _scan_copy(root, tmp_path)
    (r / "sensor").rename(tmp_path / "sensor")
    (r / "sensor").mkdir()
    (tmp_path / "sensor").rename(r / "sensor" / "sensor")
    with pytest.raises(ValueError, match=r"no csv found as sensor/<n>_<class>/<stem>\.csv .*found "
                                         r"sensor/sensor/\d+_\w+/\d+_\w+\.csv .*Expected layout:\n"
                                         r"UESTC-MMEA-CL/"):
        D.load("uestc", r, cache_dir=False, **OPTS)
    r2 = tmp_path / "u2"
    shutil.copytree(root[0], r2, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    frames = next(p for p in sorted((r2 / "video").glob("*/*")) if p.is_dir() and p.parent.name in U.PAPER_CLASSES)
    for p in sorted(frames.iterdir()):
        p.rename(frames / f"frame_{p.name.removeprefix('img_')}")
    n = len(list(frames.iterdir()))
    with pytest.raises(UnreadableFile, match=r"no video frames: frames must be named 000001\.jpg .*img_000000\.jpg"
                                             rf".*it holds {n} files, e\.g\. 'frame_00000[01]\.jpg'"):
        D.load("uestc", r2, cache_dir=False, **OPTS)


# --------------------------------------------------------------------------- split="lists": the published split

LISTS_OPTS = dict(OPTS, modalities=["imu"])


def _listed_parts(r):
    """{"<folder>/<stem>": "train" | "val" | "test"} as the list files in ``r`` say (every class)."""
    return {f"{folder}/{stem}": name[:-4] for name in U.LIST_FILES
            for folder, stem, _, _ in U.parse_list_file(r / name)}


def _parts(s):
    """{part: recordings of its windows}, each window's recording read from its id and its group."""
    out = {}
    for part in ("train", "val", "test"):
        d = getattr(s, part)
        assert [i.split("#")[0] for i in d.ids] == list(d.groups)
        out[part] = set(d.groups)
    return out


def test_split_lists_puts_each_recording_and_all_its_windows_in_its_list_files_part(root, tmp_path):
    """train.txt -> train, val.txt -> val, test.txt -> test, every window with its recording; the
    parts' recordings are the lists' (of the classes loaded) less the min_frames drops."""
    r = _copy(root, tmp_path)
    want = _listed_parts(r)
    short = next(g for g, k in want.items() if k == "val" and g.startswith("5_reading/"))
    (r / "val.txt").write_text((r / "val.txt").read_text().replace(f"{short} {ROWS}", f"{short} 2"))
    s = D.load("uestc", r, split="lists", **LISTS_OPTS)
    assert s.report["too_few_frames"] == [short]
    paper = {g: k for g, k in want.items() if g.split("/")[0] in U.PAPER_CLASSES and g != short}
    assert _parts(s) == {k: {g for g, p in paper.items() if p == k} for k in ("train", "val", "test")}
    assert all(len(getattr(s, k)) == len(_parts(s)[k]) * (ROWS // W) for k in ("train", "val", "test"))
    info = s.report["split"]
    assert (info["kind"], info["parts_from"], info["ratios"]) == ("lists", "published list files", None)
    assert s.report["listing"] == list(U.LIST_FILES)
    assert s.report["leakage_check"]["recordings"] == "disjoint"


def test_split_lists_does_not_depend_on_seed_or_ratios_and_keeps_its_own_split_files(root, tmp_path):
    """Another seed or ratios gives the same parts; the auto split files of a lists run and an id run
    have their own names, and neither kind reads the other's file."""
    r = _copy(root, tmp_path)
    a = D.load("uestc", r, split="lists", seed=0, **LISTS_OPTS)
    b = D.load("uestc", r, split="lists", seed=7, ratios=(0.5, 0.25, 0.25), **LISTS_OPTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # 2 test recordings for 8 classes: not stratified
        rand = D.load("uestc", r, split="id", seed=0, **LISTS_OPTS)
    assert _parts(a) == _parts(b) != _parts(rand)
    assert b.report["split"]["seed"] == 7                 # the seed is still recorded (it seeds n_labeled...)
    kinds = [p.name.split("-")[1] for p in (r / ".dcatkit_cache" / "splits").iterdir()]
    assert set(kinds) == {"lists", "id"} and kinds.count("id") == 1
    lists_file = a.report["split"]["split_file"]
    with pytest.raises(ValueError, match="holds a 'lists' split but split='id'"):
        D.load("uestc", r, split="id", split_file=lists_file, **LISTS_OPTS)
    with pytest.raises(ValueError, match="holds a 'id' split but split='lists'"):
        D.load("uestc", r, split="lists", split_file=rand.report["split"]["split_file"], **LISTS_OPTS)


def test_edited_lists_are_followed_and_a_split_file_of_the_old_lists_is_refused(root, tmp_path):
    """Moving a recording from val.txt to test.txt moves it to test (the auto split file's key holds
    the lists); an explicit split file written from the old lists no longer agrees and is refused."""
    r = _copy(root, tmp_path)
    old = tmp_path / "old.json"
    shutil.copy(D.load("uestc", r, split="lists", **LISTS_OPTS).report["split"]["split_file"], old)
    val = (r / "val.txt").read_text().splitlines()
    moved = next(line for line in val if "/3_drinking/" in line)
    (r / "val.txt").write_text("\n".join(line for line in val if line != moved) + "\n")
    (r / "test.txt").write_text((r / "test.txt").read_text() + "\n" + moved)
    g = "/".join(moved.split()[0].split("/")[-2:])
    s = D.load("uestc", r, split="lists", **LISTS_OPTS)
    assert g in _parts(s)["test"] and g not in _parts(s)["val"]
    with pytest.raises(ValueError, match=f"another part than the list files do, e.g. '{g}': val in the file, test"):
        D.load("uestc", r, split="lists", split_file=old, **LISTS_OPTS)


def test_split_lists_refusals(root, tmp_path):
    """A recording in two list files (named, with both files); missing list files (named; the scan
    of sensor/ gives no parts); other datasets, which publish no lists."""
    r = _copy(root, tmp_path)
    line = next(x for x in (r / "train.txt").read_text().splitlines() if "/7_cut_fruits/" in x)
    g = "/".join(line.split()[0].split("/")[-2:])
    test_txt = (r / "test.txt").read_text()
    (r / "test.txt").write_text(test_txt + "\n" + line)
    with pytest.raises(ValueError, match=rf"{g} is listed in both .*train\.txt and .*test\.txt"):
        D.load("uestc", r, split="lists", **LISTS_OPTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        D.load("uestc", r, split="id", cache_dir=False, **LISTS_OPTS)      # the random splits do not use the files
    (r / "test.txt").write_text(test_txt)
    (r / "val.txt").unlink()
    with pytest.raises(ValueError, match=r"split='lists' .* list files train\.txt, val\.txt, test\.txt .*; missing: "
                                         r"val\.txt\. "):
        D.load("uestc", r, split="lists", **LISTS_OPTS)
    with pytest.raises(ValueError, match=r"missing: train\.txt, val\.txt, test\.txt \(without them the recordings "
                                         r"are found by a scan of sensor/"):
        D.load("uestc", _scan_copy(root, tmp_path / "scan"), split="lists", **LISTS_OPTS)
    for name, root_ in (("synthetic", None), ("cough", tmp_path), ("vggsound", tmp_path), ("arrays", tmp_path)):
        with pytest.raises(ValueError, match=f"only UESTC-MMEA-CL ships them .*; dataset '{name}' has none"):
            D.load(name, root_, split="lists")
    with pytest.raises(ValueError, match="only UESTC-MMEA-CL ships them .*; this data has none"):
        D.from_arrays({"imu": np.random.default_rng(0).normal(size=(6, 6, 4))}, [0, 1] * 3, groups="samples",
                      split="lists")
