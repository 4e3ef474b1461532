"""The notebooks' plumbing in ``dcatkit.runs`` that prints numbers a reader checks."""
import numpy as np
import pytest
import torch

from dcatkit import runs
from dcatkit.experiment import train_transfer
from dcatkit.metrics import classification_metrics
from helpers import TINY, video_source_setup


@pytest.mark.filterwarnings("ignore:1 of 8 classes have no sample")
def test_source_reach_kept_is_the_share_mcma_aligns_on():
    """``kept`` is the mask D-CAT trains with: the share of training samples the frozen source
    classifies correctly equals the ``train_mask_frac`` the D-CAT run logs in every epoch
    (the source is frozen, so every epoch masks the same samples); the F1s are the source's
    macro-F1 on the validation and test splits, by hand from its predictions."""
    sp, video = video_source_setup()
    dcat = train_transfer(sp, video, "imu", lam=1.0, preset=TINY["imu"], seed=0, progress=False, device="cpu")
    reach = runs.source_reach(video, sp, device="cpu")
    logged = dcat.history["train_mask_frac"].to_numpy()
    assert len(logged) == TINY["imu"].epochs and 0 < reach["kept"] < 1      # a mask that keeps some, drops some
    np.testing.assert_allclose(logged, reach["kept"], rtol=0, atol=1e-6)
    model = video.model.eval()
    for part in ("train", "val", "test"):
        ds = getattr(sp, part)
        x = np.stack([ds[i]["video"].numpy() for i in range(len(ds))])
        with torch.no_grad():
            pred = model(torch.from_numpy(x)).logits.argmax(1).numpy()
        y = np.array([int(ds[i]["label"]) for i in range(len(ds))])
        if part == "train":
            assert reach["kept"] == pytest.approx((pred == y).mean(), abs=1e-12)
        else:
            assert reach[f"{part}_f1"] == pytest.approx(classification_metrics(y, pred, len(sp.classes))["f1"],
                                                        abs=1e-12)
    assert reach["test_f1"] == pytest.approx(video.test["f1"], abs=1e-12)
