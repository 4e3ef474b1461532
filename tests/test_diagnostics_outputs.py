"""attention_outputs on datasets without ids and with modalities it does not read; linear_map_r2's
d check and a source whose vectors are linearly dependent; theorem41's seed reaching its control."""
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from dcatkit.data.dataset import PairedDataset
from dcatkit.diagnostics import attention_outputs, check_theorem41, linear_map_r2, theorem41
from dcatkit.model import build_model
from helpers import TINY, CountingArray, tiny_splits


class NoIds(Dataset):
    """Items with an input and a label only (no "id"), no ``select``."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"imu": self.x[i], "label": self.y[i]}


def test_a_dataset_without_ids_gives_rows_in_its_order_and_no_id_column():
    sp = tiny_splits(48, modalities=("imu",))
    torch.manual_seed(0)
    model = build_model("imu", 8, sp.test.input_shape("imu"), TINY["imu"])
    x = torch.stack([sp.test[i]["imu"] for i in range(len(sp.test))])
    y = torch.arange(len(x)) % 8                                     # labels that tell the rows apart
    out = attention_outputs(model, NoIds(x, y), "imu", batch_size=3)
    assert "id" not in out and out["label"].tolist() == y.tolist()
    with torch.no_grad():
        ref = model.eval()(x)
    assert np.allclose(out["pooled"], ref.pooled.numpy(), atol=1e-5)
    assert np.allclose(out["v"], ref.v.numpy(), atol=1e-5) and out["k"].dtype == np.float32


def test_attention_outputs_reads_only_the_modality_it_runs():
    sp = tiny_splits(48, modalities=("imu", "video"))
    ds = sp.test
    video = CountingArray(ds.arrays["video"])
    counted = PairedDataset({"imu": ds.arrays["imu"], "video": video}, ds.labels, ds.classes, ds.subjects,
                            ds.ids, ds.sample_rates)
    torch.manual_seed(0)
    model = build_model("imu", 8, ds.input_shape("imu"), TINY["imu"])
    out = attention_outputs(model, counted, "imu", batch_size=4)
    assert video.reads == 0 and out["id"].tolist() == list(ds.ids)


def test_linear_map_r2_refuses_another_d_and_fits_a_rank_deficient_source():
    with pytest.raises(ValueError, match="same N samples and d"):
        linear_map_r2(np.zeros((2, 3, 8)), np.zeros((2, 3, 9)))
    # a source with a repeated vector (rank 2 of 3): targets in the span of its vectors still give R^2 = 1,
    # a target orthogonal to them R^2 = 0 (known by construction, per sample)
    rng = np.random.default_rng(4)
    base = rng.standard_normal((4, 2, 10))
    src = np.concatenate([base, base[:, :1]], axis=1)                 # (4, 3, 10), vector 0 twice
    inside = np.einsum("nsd,nst->ntd", base, rng.standard_normal((4, 2, 5)))
    assert linear_map_r2(src, inside) == pytest.approx(np.ones(4), abs=1e-9)
    q, _ = np.linalg.qr(np.concatenate([base.transpose(0, 2, 1), rng.standard_normal((4, 10, 1))], axis=2))
    outside = q[:, :, 2:3].transpose(0, 2, 1)                          # orthogonal to both source vectors
    assert linear_map_r2(src, outside) == pytest.approx(np.zeros(4), abs=1e-9)


def test_the_seed_chooses_the_shuffled_pairing_in_theorem41_and_check_theorem41():
    """Another seed, another random cycle: the shuffled control's R^2 changes and the real fit does
    not; check_theorem41 hands its seed on (it equals theorem41 on the collected outputs with it)."""
    rng = np.random.default_rng(6)
    n, lab = 12, np.arange(12) % 3
    src = {"k": rng.standard_normal((n, 3, 16)), "v": rng.standard_normal((n, 3, 16)), "label": lab}
    tgt = {**{f: rng.standard_normal((n, 4, 16)) for f in ("k", "v")}, "label": lab}
    a, b = theorem41(src, {"t": tgt}, seed=0), theorem41(src, {"t": tgt}, seed=1)
    assert a["r2"].tolist() == b["r2"].tolist() and (a["r2_shuffled"] != b["r2_shuffled"]).all()
    sp = tiny_splits(48, modalities=("imu", "video"))
    torch.manual_seed(0)
    video = build_model("video", 8, sp.test.input_shape("video"), TINY["video"])
    imu = build_model("imu", 8, sp.test.input_shape("imu"), TINY["imu"])
    outs = (attention_outputs(video, sp.test, "video"), {"imu": attention_outputs(imu, sp.test, "imu")})
    got = check_theorem41(video, {"imu": imu}, sp.test, source_modality="video", target_modality="imu", seed=1)
    assert got.equals(theorem41(*outs, seed=1)) and not got.equals(theorem41(*outs, seed=0))
