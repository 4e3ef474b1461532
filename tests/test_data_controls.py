"""The controls' data (dcatkit.data.controls) on data whose recordings are cut into several
windows: the recordings (``PairedDataset.groups``) are what the controls count and keep."""
import numpy as np

from dcatkit.data.controls import break_pairing, default_labels, with_teacher
from dcatkit.data.dataset import PairedDataset, Splits

CLASSES = [f"c{i}" for i in range(8)]


def _part(n_rec, windows, offset, seed):
    """``n_rec`` recordings of ``windows`` IMU windows each (one label per recording)."""
    rng = np.random.default_rng(seed)
    n = n_rec * windows
    rec = np.repeat(np.arange(offset, offset + n_rec), windows)
    labels = rec % len(CLASSES)
    imu = rng.uniform(-1, 1, (n, 6, 20)).astype(np.float32)
    return PairedDataset({"imu": imu}, labels, CLASSES, subjects=rec % 4, ids=[f"w{i}" for i in range(offset * 10, offset * 10 + n)],
                         sample_rates={"imu": 50.0}, groups=[f"rec{r}" for r in rec])


def _splits(n_train_rec=90, windows=3):
    return Splits(_part(n_train_rec, windows, 0, 0), _part(20, windows, 1000, 1), _part(20, windows, 2000, 2))


def test_default_labels_counts_recordings_not_windows():
    sp = _splits(90, 3)                                  # 90 training recordings, 270 windows
    assert len(sp.train) == 270 and len(set(sp.train.groups)) == 90
    # a tenth of the recordings (9), at least one per class (8), at most all but one (89)
    assert default_labels(sp) == 9
    few = _splits(12, 5)                                 # 12 recordings, 60 windows: 1.2 -> one per class, 8
    assert default_labels(few) == 8


def test_both_controls_keep_each_windows_recording():
    sp = _splits(30, 3)
    for out in (break_pairing(sp, "imu", seed=3), with_teacher(sp, "imu")):
        for name in ("train", "val", "test"):
            assert getattr(out, name).groups == getattr(sp, name).groups
        assert default_labels(out) == default_labels(sp) == 8
