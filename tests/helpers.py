"""Small shared builders for the tests (tiny shapes, few samples)."""
import numpy as np

from dcatkit.data.dataset import PairedDataset, Splits
from dcatkit.data.synthetic import make_synthetic
from dcatkit.presets import get_preset

TINY = {
    "imu": get_preset("synthetic", "imu").with_(epochs=2, batch_size=16, d_attn=16,
                                                encoder={"hidden": 8, "d_model": 16}),
    "video": get_preset("synthetic", "video").with_(epochs=1, batch_size=16, d_attn=16, encoder={"depth": 10}),
    "audio": get_preset("synthetic", "audio").with_(
        epochs=1, batch_size=16, d_attn=16,
        encoder={"arch": "cnn6", "width": 0.125, "sample_rate": 8000, "n_fft": 256, "hop_length": 128,
                 "n_mels": 32, "f_max": 4000.0}),
}


def video_source_setup(n=96):
    """(splits with IMU and video, a tiny video source trained on them, seed 0): the frozen
    source that the transfer tests (methods, unlabeled pairs, controls) share."""
    from dcatkit.experiment import train_unimodal

    sp = tiny_splits(n, modalities=("imu", "video"))
    return sp, train_unimodal(sp, "video", preset=TINY["video"], seed=0, progress=False)


def tiny_splits(n=96, seed=0, modalities=("imu", "video", "audio"), frame_size=16, n_frames=4):
    d = make_synthetic(n, n_subjects=4, seed=seed, modalities=modalities, frame_size=frame_size,
                       n_frames=n_frames, duration=1.0)
    arrays = d["arrays"]
    idx = np.random.default_rng(seed).permutation(n)
    tr, va, te = np.split(idx, [int(0.6 * n), int(0.8 * n)])
    if "imu" in arrays:
        lo = arrays["imu"][tr].min((0, 2), keepdims=True)
        hi = arrays["imu"][tr].max((0, 2), keepdims=True)
        arrays["imu"] = (2 * (arrays["imu"] - lo) / (hi - lo) - 1).astype(np.float32)
    ds = PairedDataset(arrays, d["labels"], d["classes"], d["subjects"], d["ids"], d["sample_rates"])
    return Splits(ds.subset(tr), ds.subset(va), ds.subset(te))


class CountingArray:
    """An array stand-in that counts reads of single samples (a dataset's __getitem__)."""

    def __init__(self, a):
        self.a, self.reads = a, 0

    shape = property(lambda self: self.a.shape)

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        if isinstance(i, (int, np.integer)):
            self.reads += 1
        return self.a[i]


def new_imu_model(sp, seed):
    """A tiny IMU target for ``sp``, its weights drawn after ``seed_everything(seed)``."""
    from dcatkit.model import build_model
    from dcatkit.train import seed_everything

    seed_everything(seed)
    return build_model("imu", len(sp.classes), sp.train.input_shape("imu"), TINY["imu"])


def same_state(a, b):
    """Two models with the same parameter and buffer names and bit-identical values."""
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def rows_of(arrays, ids):
    """The input rows of the samples ``ids`` of ``from_arrays(arrays, ...)`` called without ids
    (their ids are content hashes, ``dcatkit.data.splits.content_ids``)."""
    from dcatkit.data.splits import content_ids

    where = {sid: k for k, sid in enumerate(content_ids(arrays))}
    return [where[i] for i in ids]
