"""VGGSound loader against a tiny copy of the distributed layout."""
import shutil
import warnings

import numpy as np
import pytest

import dcatkit.data as D
from dcatkit.data import vggsound as V
from dcatkit.data.preprocess import UnreadableFile, uniform_indices
from fixtures_data import (VGG_LABELS, _needs, frame_means, frame_value, make_vggsound, make_vggsound_overlapping,
                           write_jpegs)

SECONDS, FPS = 2.0, 10
OPTS = dict(window_s=1.0, frames=4, frame_size=8, progress=False)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("vgg") / "VGGSound"
    r.mkdir()
    make_vggsound(r, seconds=SECONDS, fps=FPS)
    return r


def _load(root, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return D.load("vggsound", root, **dict(OPTS, **kw))


def test_csv_quoted_labels_with_commas(root):
    rows = V.read_csv(root / "vggsound.csv")
    assert '"female speech, woman speaking"' in (root / "vggsound.csv").read_text()
    assert rows[0][2] == "female speech, woman speaking" and rows[0][3] == "test" and rows[0][1] == 30
    assert {r[2] for r in rows} == set(VGG_LABELS)


def test_named_classes_padded_and_unpadded_names_shapes_and_frames(root):
    s = _load(root, classes=["female speech, woman speaking", "rain, thunder"])
    assert s.classes == ["female speech, woman speaking", "rain, thunder"]
    stems = {i.split("#")[0] for d in s for i in d.ids}
    assert len(stems) == 6
    assert any(st.endswith("_000030") for st in stems) and any(st.endswith("_60") for st in stems)
    item = s.train[0]
    assert item["audio"].shape == (16000,) and item["video"].shape == (4, 3, 8, 8)
    assert s.train.sample_rates == {"audio": 16000.0, "video": float(FPS)}
    n_frames = int(SECONDS * FPS)
    for d in s:
        for k, i in enumerate(d.ids):
            stem, t0 = i.split("#")[0], float(i.split("#")[1][:-1])
            ref = frame_means(root / "video" / f"{stem}.mp4")
            expect = ref[uniform_indices(t0 / SECONDS * n_frames, (t0 + 1) / SECONDS * n_frames, 4, n_frames)]
            np.testing.assert_allclose(d[k]["video"].float().mean(dim=(1, 2, 3)).numpy(), expect, atol=1)
            assert d[k]["audio"].abs().max() > 0.1  # the clip's tone, decoded from the mp4's aac stream
    labels_by_stem = {r[0]: r[2] for r in V.read_csv(root / "vggsound.csv")}
    for d in s:
        for i, y in zip(d.ids, d.labels):
            assert labels_by_stem[i.split("#")[0].rsplit("_", 1)[0]] == s.classes[y]
    assert s.report["missing_files"] == ["gone0xxxxx_000010"]


def test_random_class_draw_is_seeded(root):
    a = _load(root, num_classes=3, class_seed=4, modalities=["audio"])
    b = _load(root, num_classes=3, class_seed=4, modalities=["audio"])
    draws = {tuple(_load(root, num_classes=3, class_seed=k, modalities=["audio"]).classes) for k in range(6)}
    assert a.classes == b.classes and len(a.classes) == 3 and a.report["classes_drawn"]["seed"] == 4
    assert len(draws) > 1
    with pytest.raises(ValueError, match="did you mean"):
        _load(root, classes=["dog barkng"])


def test_class_draw_does_not_follow_the_split_seed(root):
    """Changing the data (split) seed re-splits the same classes; only class_seed changes them."""
    drawn = [_load(root, num_classes=3, seed=k, modalities=["audio"]) for k in range(4)]
    assert all(d.classes == drawn[0].classes for d in drawn) and drawn[0].report["classes_drawn"]["seed"] == 0
    assert len({tuple(d.test.ids) for d in drawn}) > 1  # the split itself does follow the seed


def test_ood_keeps_each_youtube_video_in_one_split(root):
    s = _load(root, split="ood", num_classes=5, modalities=["audio"])
    vids = [{i.split("#")[0].rsplit("_", 1)[0] for i in d.ids} for d in s]
    assert all(vids) and not (vids[0] & vids[1] or vids[0] & vids[2] or vids[1] & vids[2])
    assert "proxy" in s.report["subject_source"]


def test_pre_extracted_wav_and_frames(root, tmp_path):
    sf = pytest.importorskip("soundfile", reason="writing a wav fixture needs the soundfile package, which is not installed")

    r = tmp_path / "vgg"
    r.mkdir()
    shutil.copy(root / "vggsound.csv", r)
    rows = V.read_csv(r / "vggsound.csv")[:6]
    for yid, start, _, _ in rows:
        stem = f"{yid}_{start:06d}"
        sf.write(r / "wav" / f"{stem}.wav" if (r / "wav").exists() else _mk(r / "wav") / f"{stem}.wav",
                 np.full(22050 * 2, 0.25, np.float32), 22050)
        write_jpegs(r / "frames" / stem, 2, "img")  # 1 fps frames
    s = _load(r, classes=[VGG_LABELS[0], VGG_LABELS[1]], audio_dir=r / "wav", frames_dir=r / "frames")
    assert sum(len(d) for d in s) == 6 * 2
    assert s.report["native_rates"]["audio_native"] == [22050.0]
    x = s.train[0]
    assert x["audio"].shape == (16000,) and abs(float(x["audio"].mean()) - 0.25) < 0.01
    t0 = float(s.train.ids[0].split("#")[1][:-1])
    assert abs(float(x["video"].float().mean()) - frame_value(int(t0))) < 3


def _mk(p):
    p.mkdir(parents=True, exist_ok=True)
    return p


def test_bad_input(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="Expected layout"):
        D.load("vggsound", tmp_path / "missing")
    (tmp_path / "nocsv").mkdir()
    with pytest.raises(FileNotFoundError, match="VGGSound csv.*\n.*Expected layout"):
        D.load("vggsound", tmp_path / "nocsv")
    r = tmp_path / "v"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    bad = sorted((r / "video").glob("-1x*.mp4"))[0]  # a "dog barking" clip
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(UnreadableFile, match=bad.name):
        _load(r, classes=[VGG_LABELS[1]], cache_dir=False)
    s = _load(r, classes=[VGG_LABELS[1], VGG_LABELS[2]], cache_dir=False, on_error="skip")
    assert s.report["n_skipped"] == 1 and bad.name in s.report["skipped"][0]
    assert not any(bad.stem in i for d in s for i in d.ids) and sum(len(d) for d in s) == 5 * 2


def test_csv_rows_are_checked_line_by_line(root, tmp_path):
    """An unquoted comma in a label or a truncated last row became a bogus class, a typo in the
    first row's start was skipped as a header, and a clip listed under two labels took the first:
    each is now an error naming the line (or the clip and both labels); a real header is skipped."""
    c = tmp_path / "vggsound.csv"
    good = (root / "vggsound.csv").read_text()
    c.write_text(good.replace('"female speech, woman speaking"', "female speech, woman speaking", 1))
    with pytest.raises(ValueError, match=r"vggsound.csv:1: expected 4 fields, .* found 5: .* Quote the label"):
        V.read_csv(c)
    lines = good.splitlines()
    c.write_text("\n".join(lines[:-1] + [lines[-1].rsplit(",", 2)[0] + ",eng"]))
    with pytest.raises(ValueError, match=rf"vggsound.csv:{len(lines)}: expected 4 fields, .* found 3: "):
        V.read_csv(c)
    c.write_text(good.replace(",train", ",trian", 1))
    with pytest.raises(ValueError, match=r"vggsound.csv:2: the 4th field must be 'train' or 'test', found 'trian'"):
        V.read_csv(c)
    c.write_text(good.replace(",30,", ",3O,", 1))
    with pytest.raises(ValueError, match=r"vggsound.csv:1: start_seconds '3O' is not a number"):
        V.read_csv(c)
    c.write_text("youtube_id,start_seconds,label,split\n" + good)
    assert V.read_csv(c) == V.read_csv(root / "vggsound.csv")
    r = tmp_path / "v"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    yid, start = V.read_csv(c)[0][:2]
    (r / "vggsound.csv").write_text(good + f"{yid},{start},engine,train\n")
    with pytest.raises(ValueError, match=rf"clip {yid}_0*{start} is listed twice with different labels, "
                                         r"'female speech, woman speaking' and 'engine'.*on_error='skip'"):
        _load(r, cache_dir=False, num_classes=5)
    with warnings.catch_warnings(record=True) as said:                          # skip: left out, and said
        warnings.simplefilter("always")
        sp = D.load("vggsound", r, **dict(OPTS, cache_dir=False, num_classes=5, on_error="skip"))
    assert any("1 conflicting labels" in str(w.message) for w in said), [str(w.message) for w in said]
    every = [i for d in (sp.train, sp.val, sp.test) for i in d.ids]
    assert not any(str(i).startswith(yid) for i in every) and len(sp.report["conflicting_labels"]) == 1


def test_loader_arguments_are_checked_and_one_string_is_one_name(root, tmp_path):
    """window_s = 0 was a ZeroDivisionError, stride_s = 0 silently became the window; classes='engine'
    looked for a class 'e'. Now: a ValueError naming the argument, and one string is one name."""
    for bad, said in ((dict(window_s=0), "window_s must be a number > 0, got 0"),
                      (dict(stride_s=0), "stride_s must be a number > 0, got 0"),
                      (dict(frames=0), "frames must be an integer > 0, got 0"),
                      (dict(frame_size=0), "frame_size must be an integer > 0, got 0"),
                      (dict(sample_rate=-1), "sample_rate must be an integer > 0, got -1"),
                      (dict(num_classes=0), "num_classes must be an integer > 0, got 0")):
        with pytest.raises(ValueError, match=said):
            D.load("vggsound", tmp_path / "not-read", **{**OPTS, **bad})
    s = _load(root, classes="engine", modalities="audio", cache_dir=False)
    assert s.classes == ["engine"] and list(s.train.arrays) == ["audio"]


def test_windows_follow_the_clock_of_long_wavs_jpeg_folders_and_stop_at_the_shorter_stream(root, tmp_path):
    """A 3 s wav (0.25, 0.5, 0.75 in its three seconds) gives 1 s windows at 0, 1 and 2 s holding
    those values; a JPEG folder of 3 frames is spread over the audio's 3 s (1 fps), so the window
    at t s shows frame t; with the fixture's 2 s mp4 instead, windows stop where the video does."""
    sf = pytest.importorskip("soundfile", reason="writing a wav fixture needs the soundfile package, which is not installed")

    r = tmp_path / "vgg"
    r.mkdir()
    shutil.copy(root / "vggsound.csv", r)
    wave = np.repeat(np.float32([0.25, 0.5, 0.75]), 16000)
    stems = []
    for yid, start, _, _ in V.read_csv(r / "vggsound.csv")[:6]:
        stem = next(s for s in (f"{yid}_{start:06d}", f"{yid}_{start}") if (root / "video" / f"{s}.mp4").exists())
        stems.append(stem)
        sf.write(_mk(r / "wav") / f"{stem}.wav", wave, 16000)
        write_jpegs(r / "frames" / stem, 3, "img")
    two = [VGG_LABELS[0], VGG_LABELS[1]]
    s = _load(r, classes=two, audio_dir=r / "wav", frames_dir=r / "frames", cache_dir=False)
    assert sum(len(d) for d in s) == 6 * 3
    for d in s:
        for k, i in enumerate(d.ids):
            t0 = int(float(i.split("#")[1][:-1]))
            assert abs(float(d[k]["audio"].mean()) - (0.25, 0.5, 0.75)[t0]) < 0.01, i
            assert abs(float(d[k]["video"].float().mean()) - frame_value(t0)) < 3, i
    s = _load(r, classes=two, audio_dir=r / "wav", video_dir=root / "video", cache_dir=False)
    assert sorted(i for d in s for i in d.ids) == sorted(f"{st}#{t}s" for st in stems for t in (0, 1))


def test_a_window_pairs_the_frames_with_the_audio_of_the_same_seconds_when_the_audio_track_starts_late(tmp_path):
    """Every clip's audio track starts 0.5 s after its video (a 2 s tone over a 3 s video): the
    0.5 s windows at 0 s (frames 0-4) hold silence, the tone starts with the window at 0.5 s.
    Read from the track's first sample, the tone was paired with frames 0.5 s earlier."""
    r = tmp_path / "VGGSound"
    r.mkdir()
    make_vggsound(r, seconds=3.0, fps=FPS, missing=0, audio_start=0.5)
    s = _load(r, classes=list(VGG_LABELS[:2]), window_s=0.5, cache_dir=False)
    for d in s:
        for k, i in enumerate(d.ids):
            t0 = float(i.split("#")[1][:-1])
            assert (float(d[k]["audio"].abs().max()) > 0.2) == (t0 >= 0.5), i
            assert abs(float(d[k]["video"].float().mean()) - frame_value(int(t0 * FPS) + 2)) < 4, i


def test_two_clips_of_one_youtube_video_are_one_subject(root, tmp_path):
    """The subject proxy is the YouTube video: a second clip of the same video (another start)
    has the same subject, and split='ood' keeps both clips in one split."""
    r = tmp_path / "vgg"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    yid, start, label, part = V.read_csv(r / "vggsound.csv")[0]
    first = next(s for s in (f"{yid}_{start:06d}", f"{yid}_{start}") if (r / "video" / f"{s}.mp4").exists())
    shutil.copy(r / "video" / f"{first}.mp4", r / "video" / f"{yid}_{start + 100:06d}.mp4")
    with open(r / "vggsound.csv", "a") as f:
        f.write(f'{yid},{start + 100},"{label}",{part}\n')
    for split in ("id", "ood"):
        s = _load(r, classes=[VGG_LABELS[0], VGG_LABELS[1]], modalities=["audio"], cache_dir=False, split=split)
        subj = {i.split("#")[0]: (p, x) for p, d in enumerate(s) for i, x in zip(d.ids, d.subjects.tolist())}
        a, b = subj[first], subj[f"{yid}_{start + 100:06d}"]
        assert a[1] == b[1] and len({x for _, x in subj.values()}) == 6
        if split == "ood":
            assert a[0] == b[0]


def test_the_random_classes_are_drawn_among_labels_with_clips_on_disk(root, tmp_path):
    """A csv label without any clip on disk is never drawn: with 5 labels on disk and num_classes=5,
    every class seed draws exactly those 5."""
    r = tmp_path / "vgg"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    with open(r / "vggsound.csv", "a") as f:
        f.write('notondisk1,10,"a label without clips",train\nnotondisk2,20,"another label without clips",test\n')
    for class_seed in range(5):
        s = _load(r, num_classes=5, class_seed=class_seed, modalities=["audio"], cache_dir=False)
        assert s.classes == sorted(VGG_LABELS), class_seed


def test_a_clip_relabelled_in_the_csv_is_not_read_back_with_its_old_label(root, tmp_path):
    """Moving a clip from one chosen class to the other in the csv changes no file on disk and
    no setting: the window cache must still not hand back the old label."""
    r = tmp_path / "vgg"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    two = [VGG_LABELS[1], VGG_LABELS[2]]
    before = _load(r, classes=two, modalities=["audio"])
    text = (r / "vggsound.csv").read_text().splitlines()
    k = next(j for j, line in enumerate(text) if line.endswith(f"{VGG_LABELS[1]},train"))
    yid = text[k].split(",")[0]
    text[k] = text[k].replace(VGG_LABELS[1], VGG_LABELS[2])
    (r / "vggsound.csv").write_text("\n".join(text) + "\n")
    after = _load(r, classes=two, modalities=["audio"])
    label = {i.split("#")[0].rsplit("_", 1)[0]: y for d in after for i, y in zip(d.ids, d.labels.tolist())}
    old = {i.split("#")[0].rsplit("_", 1)[0]: y for d in before for i, y in zip(d.ids, d.labels.tolist())}
    assert old[yid] == 0 and label[yid] == 1


def test_clip_seconds_times_jpeg_frames_without_audio_and_is_in_the_cache_key(root, tmp_path):
    """Without audio, a JPEG folder's frames are spread over clip_seconds: 4 frames over 2 s
    give 1 s windows at 0 and 1 s; over 4 s (1 fps), windows at 0..3 s, the window at t s
    showing frame t. The second load must not read back the first one's cached windows."""
    r = tmp_path / "vgg"
    r.mkdir()
    shutil.copy(root / "vggsound.csv", r)
    stems = [f"{yid}_{start:06d}" for yid, start, _, _ in V.read_csv(r / "vggsound.csv")[:6]]
    for stem in stems:
        write_jpegs(r / "frames" / stem, 4, "img")
    kw = dict(classes=[VGG_LABELS[0], VGG_LABELS[1]], modalities=["video"], frames_dir=r / "frames")
    two = _load(r, clip_seconds=2.0, **kw)
    four = _load(r, clip_seconds=4.0, **kw)
    assert sorted(i for d in two for i in d.ids) == sorted(f"{st}#{t}s" for st in stems for t in (0, 1))
    assert sorted(i for d in four for i in d.ids) == sorted(f"{st}#{t}s" for st in stems for t in range(4))
    for d in four:
        for k, i in enumerate(d.ids):
            assert abs(float(d[k]["video"].float().mean()) - frame_value(int(i.split("#")[1][:-1]))) < 3, i


def test_overlapping_clips_of_one_youtube_video_never_put_the_same_audio_in_two_splits(tmp_path):
    """Two clips of one YouTube video at starts 0 and 2 s (6 s long) share 4 s of audio: the window
    at 2 s of the first is byte for byte the window at 0 s of the second. Each clip was its own
    split unit, so split='id' put such twins in train and test while check_leakage passed. Now
    overlapping clips are one unit (report["merged_clips"]); a clip of the same video that shares
    no audio (at 12 s) stays a unit of its own."""
    r = tmp_path / "vgg"
    stems = make_vggsound_overlapping(r)
    two = [VGG_LABELS[1], VGG_LABELS[2]]
    merged = sorted(f"{a}+{b}" for a, b, *_ in stems.values())
    for seed in range(3):
        s = _load(r, classes=two, modalities=["audio"], audio_dir=r / "wav", sample_rate=1000, window_s=2.0,
                  cache_dir=False, split_file=None, seed=seed)
        assert s.report["merged_clips"] == merged
        part = {g: p for p, d in enumerate(s) for g in d.groups}
        assert all(v[2] in part for v in stems.values() if len(v) == 3)        # the far clip: a unit alone
        audio = [(p, i, np.asarray(d.arrays["audio"][k])) for p, d in enumerate(s) for k, i in enumerate(d.ids)]
        twins = [(i, j) for p, i, a in audio for q, j, b in audio if p < q and np.array_equal(a, b)]
        assert twins == [], (seed, twins[:3])
    assert any(np.array_equal(a, b) for _, i, a in audio for _, j, b in audio if i != j)   # the fixture has twins


def test_a_csv_saved_with_a_byte_order_mark_reads_as_the_plain_one(root, tmp_path):
    """Excel and Notepad save UTF-8 with a byte-order mark: it is not part of the first row's
    youtube id (else that clip is silently reported missing)."""
    r = tmp_path / "v"
    shutil.copytree(root, r, ignore=shutil.ignore_patterns(".dcatkit_cache"))
    (r / "vggsound.csv").write_bytes(b"\xef\xbb\xbf" + (root / "vggsound.csv").read_bytes())
    assert V.read_csv(r / "vggsound.csv") == V.read_csv(root / "vggsound.csv")
    a = _load(root, cache_dir=False, classes=list(VGG_LABELS))
    b = _load(r, cache_dir=False, classes=list(VGG_LABELS))
    assert [list(d.ids) for d in a] == [list(d.ids) for d in b]
    assert b.report["missing_files"] == a.report["missing_files"] == ["gone0xxxxx_000010"]


@pytest.mark.parametrize("unpadded", ["frames", "wav"])
def test_a_clip_whose_wav_and_frame_folder_use_the_two_names_loads_paired_as_with_one_name(tmp_path, unpadded):
    """The padded/unpadded name is looked up per modality: a clip stored as <id>_000030.wav with its
    frames in <id>_30/ (or the other way round) is read, its windows the same as when both files
    use one name (it was dropped as having no frame folder / no audio)."""
    sf = pytest.importorskip("soundfile", reason="writing a wav fixture needs the soundfile package, which is not installed")

    roots = {}
    for variant in ("same", "mixed"):
        r = tmp_path / variant
        rows = []
        for li, label in enumerate(VGG_LABELS[1:3]):
            for i in range(3):
                yid = f"m{li}{i}xxxxxxxx"[:11]
                rows.append(f'{yid},30,"{label}",train')
                names = {"wav": f"{yid}_000030", "frames": f"{yid}_000030"}
                if variant == "mixed" and i == 0:
                    names[unpadded] = f"{yid}_30"
                wave = np.repeat(np.float32([0.1, 0.2, 0.3]) * (1 + li + 3 * i), 1000)   # 3 s, one level a second
                sf.write(_mk(r / "wav") / f"{names['wav']}.wav", wave, 1000, subtype="FLOAT")
                write_jpegs(r / "frames" / names["frames"], 3, "ffmpeg")             # frame t: second t
        (r / "vggsound.csv").write_text("\n".join(rows) + "\n")
        roots[variant] = _load(r, classes=list(VGG_LABELS[1:3]), audio_dir=r / "wav", frames_dir=r / "frames",
                               window_s=1.0, frames=2, sample_rate=1000, cache_dir=False)
    same, mixed = roots["same"], roots["mixed"]
    assert not mixed.report.get("missing_modality")
    for a, b in zip(same, mixed):
        assert list(a.ids) == list(b.ids) and len(a.ids)
        for m in ("audio", "video"):
            np.testing.assert_array_equal(np.asarray(a.arrays[m]), np.asarray(b.arrays[m]))
    assert sorted(i for d in mixed for i in d.ids if i.startswith("m10")) == [f"m10xxxxxxxx_000030#{t}s" for t in range(3)]
    for d in mixed:
        for k, i in enumerate(d.ids):
            t = int(i.split("#")[1][:-1])
            assert abs(float(d[k]["video"].float().mean()) - frame_value(t)) < 3, i


def test_a_clip_whose_audio_track_is_shorter_than_its_video_is_reported_with_the_windows_lost(tmp_path):
    """An mp4 with 4 s of video and a 1.2 s audio track gives 1 window of 1 s, not 4: its windows stop
    at the shorter stream (no window without its audio), and the clip is listed with both lengths
    and the windows lost, with a warning; clips whose streams agree are not listed."""
    from fixtures_data import write_mp4

    r = tmp_path / "VGGSound"
    rows = []
    for li, label in enumerate(VGG_LABELS[1:3]):
        for i in range(3):
            yid = f"a{li}{i}xxxxxxxx"[:11]
            rows.append(f'{yid},30,"{label}",train')
            write_mp4(r / "video" / f"{yid}_000030.mp4", 40, fps=10, audio_sr=8000,
                      audio_seconds=1.2 if (li, i) == (0, 0) else 4.0)
    (r / "vggsound.csv").write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = D.load("vggsound", r, classes=list(VGG_LABELS[1:3]), **dict(OPTS, frames=2, cache_dir=False))
    assert any("1 VGGSound clips have audio and video of lengths that differ" in str(w.message) for w in caught)
    ids = sorted(i for d in s for i in d.ids)
    assert [i for i in ids if i.startswith("a00")] == ["a00xxxxxxxx_000030#0s"]
    assert len(ids) == 1 + 5 * 4
    (note,) = s.report["streams_differ"]
    assert note.startswith("a00xxxxxxxx_000030: audio 1.") and "video 4.00 s (40 frames at 10 fps)" in note
    assert "3 of 4 windows lost" in note


def test_jpeg_frames_at_frames_fps_are_timed_by_it_not_spread_over_a_short_wav(tmp_path):
    """A 2 s wav with 10 one-per-second frames of the 10 s clip: with frames_fps=1, the window of
    audio 1-2 s holds frame 1 (spread over the wav's 2 s it held frames of seconds 5-9), and the
    clip is listed in streams_differ (2 s against 10 s: 8 of 10 windows lost). Without
    frames_fps the report says frames are spread over the audio, unchecked."""
    sf = pytest.importorskip("soundfile", reason="writing a wav fixture needs the soundfile package, which is not installed")

    r = tmp_path / "vgg"
    rows = []
    for li, label in enumerate(VGG_LABELS[1:3]):
        for i in range(3):
            yid = f"b{li}{i}xxxxxxxx"[:11]
            stem = f"{yid}_000030"
            rows.append(f'{yid},30,"{label}",train')
            secs = 2 if (li, i) == (0, 0) else 10
            sf.write(_mk(r / "wav") / f"{stem}.wav", np.repeat(np.float32(np.arange(secs) + 1) / 20, 1000), 1000)
            write_jpegs(r / "frames" / stem, 10, "ffmpeg")            # frame k: second k of the clip
    (r / "vggsound.csv").write_text("\n".join(rows) + "\n")
    kw = dict(classes=list(VGG_LABELS[1:3]), audio_dir=r / "wav", frames_dir=r / "frames", sample_rate=1000,
              frames=2, cache_dir=False)
    s = _load(r, frames_fps=1, **kw)
    for d in s:
        for k, i in enumerate(d.ids):
            t = int(i.split("#")[1][:-1])
            assert abs(float(d[k]["audio"].mean()) - (t + 1) / 20) < 1e-3, i              # audio of second t
            assert abs(float(d[k]["video"].float().mean()) - frame_value(t)) < 3, i       # frame of second t
    assert sorted(i for d in s for i in d.ids if i.startswith("b00")) == ["b00xxxxxxxx_000030#0s", "b00xxxxxxxx_000030#1s"]
    (note,) = s.report["streams_differ"]
    assert note == ("b00xxxxxxxx_000030: audio 2.00 s, video 10.00 s (10 JPEG frames at 1 fps): windows stop at "
                    "the shorter stream, 8 of 10 windows lost")
    assert "jpeg_frame_timing" not in s.report and "jpeg_rate_outliers" not in s.report
    # without frames_fps: the six clips compared at the median clip's rate (1 fps) find the short wav
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spread = D.load("vggsound", r, **dict(OPTS, **kw))
    assert spread.report["jpeg_rate_outliers"] == [
        "b00xxxxxxxx_000030: 10 JPEG frames, audio 2.00 s; at 1 fps, the median clip's rate, the frames span 10.00 s"]
    assert "1 of 6 clips' frames span" in spread.report["jpeg_frame_timing"]
    (w,) = [str(w.message) for w in caught if "JPEG frames span another length" in str(w.message)]
    assert "pass frames_fps=1 " in w and "if every folder's 10 frames are a fixed number per clip" in w


def test_jpeg_frames_without_frames_fps_are_compared_across_clips_at_the_median_rate():
    """Folders extracted at 2 fps from clips of 10, 8 and 6 s (20, 16, 12 frames) beside wavs of those
    lengths agree at the median rate: nothing listed, no warning. One wav cut to 3 s is listed (its
    12 frames span 6 s at 2 fps). Fewer than 3 clips, or a cache without the per-clip record, say
    that nothing was checked."""
    spans = [["a", 20, 10.0], ["b", 16, 8.0], ["c", 12, 6.0]]
    report = {"jpeg_frames_and_audio": spans}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        V._check_jpeg_timing(report, 1.0)
    assert "jpeg_rate_outliers" not in report and "2 fps, 0 of 3 clips" in report["jpeg_frame_timing"]
    report = {"jpeg_frames_and_audio": spans + [["d", 12, 3.0]]}
    with pytest.warns(UserWarning, match=r"1 VGGSound clips' JPEG frames .* pass frames_fps=2 ") as caught:
        V._check_jpeg_timing(report, 1.0)
    assert "fixed number per clip" not in str(caught[0].message)          # frame counts differ: a rate
    assert report["jpeg_rate_outliers"] == [
        "d: 12 JPEG frames, audio 3.00 s; at 2 fps, the median clip's rate, the frames span 6.00 s"]
    for report in ({"jpeg_frames_and_audio": spans[:2]}, {}):
        V._check_jpeg_timing(report, 1.0)
        assert "unchecked" in report["jpeg_frame_timing"] and "jpeg_rate_outliers" not in report


def test_a_frame_folder_of_misnamed_frames_says_which_names_are_read(tmp_path):
    """Frames extracted as frame_000001.jpg are no frames to the loader: the error names the
    accepted names and what the folder holds (it said only "no video frames", and named the
    clip's mp4 where there was one beside the folder)."""
    import csv

    r = tmp_path / "vgg"
    r.mkdir()
    rows = [(f"-{k}xYtId0000"[:11], 30, VGG_LABELS[0], "train") for k in range(2)]
    with open(r / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    for yid, start, _, _ in rows:
        write_jpegs(r / "frames" / f"{yid}_{start:06d}", 2, "img")
    bad = r / "frames" / f"{rows[0][0]}_000030"
    for p in sorted(bad.iterdir()):
        p.rename(bad / p.name.replace("img_", "frame_"))
    with pytest.raises(UnreadableFile, match=r"_000030: no video frames: frames must be named 000001.jpg .* it holds "
                                             r"2 files, e.g. 'frame_000000.jpg'"):
        _load(r, classes=[VGG_LABELS[0]], modalities=["video"], frames_dir=r / "frames", cache_dir=False)


def test_a_clip_without_its_frames_is_reported_under_both_of_its_names(tmp_path):
    """A clip's files may be named <id>_000030 or <id>_30 (each looked up under both); the report
    of a clip whose wav is there but whose frames are not says both names, not only the wav's."""
    import csv

    sf = _needs("soundfile", "writing a wav fixture")
    r = tmp_path / "vgg"
    (r / "wav").mkdir(parents=True)
    rows = [(f"-{k}xYtId0000"[:11], 30, VGG_LABELS[0], "train") for k in range(4)]
    with open(r / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    for k, (yid, start, _, _) in enumerate(rows):
        sf.write(r / "wav" / f"{yid}_{start:06d}.wav", np.full(8000 * 2, 0.25, np.float32), 8000)
        if k:
            write_jpegs(r / "frames" / f"{yid}_{start}", 2, "img")
    s = _load(r, classes=[VGG_LABELS[0]], audio_dir=r / "wav", frames_dir=r / "frames", cache_dir=False,
              split_file=None)
    (gone,) = s.report["missing_modality"]
    yid = rows[0][0]
    assert f"no video: expected {r}/{yid}_000030.mp4 or a frame folder in frames_dir (named {yid}_000030 or {yid}_30)" \
        in gone, gone
