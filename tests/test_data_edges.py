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
