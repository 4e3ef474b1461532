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
