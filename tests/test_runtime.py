"""dcatkit.runtime: the AMP dtype of a device, device names refused, seeds past 2**32, a rank
outside the world refused, and the evaluation loader giving every sample once."""
import random

import numpy as np
import pytest
import torch

from dcatkit.runtime import ShardBatches, _amp_dtype, make_loader, resolve_device, seed_everything


def test_amp_dtype_is_bf16_where_supported_fp16_on_other_gpus_and_none_off_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert _amp_dtype(torch.device("cuda")) is torch.bfloat16
    assert _amp_dtype(torch.device("cuda:1")) is torch.bfloat16
    assert _amp_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert _amp_dtype(torch.device("cuda")) is torch.float16
    assert _amp_dtype(torch.device("cpu")) is None and _amp_dtype(torch.device("meta")) is None


def test_an_unknown_device_name_is_a_clear_error_and_a_device_object_passes_through():
    for bad in ("gpu", "cpu:x:y"):
        with pytest.raises(ValueError, match=rf"unknown device '{bad}': expected 'auto', 'cpu', 'cuda' or 'cuda:N'"):
            resolve_device(bad)
    d = torch.device("cpu")
    assert resolve_device(d) is d


def test_a_seed_past_2_to_the_32_seeds_numpy_with_its_remainder():
    seed = 2**32 + 5
    seed_everything(seed)
    got = (random.random(), np.random.rand(), torch.rand(1).item())
    assert got == (random.Random(seed).random(), np.random.RandomState(5).rand(),
                   torch.rand(1, generator=torch.Generator().manual_seed(seed)).item())


def test_a_rank_outside_the_world_is_refused():
    for rank in (2, -1):
        with pytest.raises(ValueError, match=r"rank must be in \[0, 2\)"):
            ShardBatches(10, 4, 0, rank, 2)


def test_the_evaluation_loader_gives_every_sample_once_in_order_with_a_short_last_batch():
    ds = [{"x": torch.tensor(float(i))} for i in range(10)]
    batches = [b["x"].tolist() for b in make_loader(ds, 4, shuffle=False)]
    assert batches == [[0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0]]
    shuffled = [x for b in make_loader(ds, 4, shuffle=True, seed=2) for x in b["x"].tolist()]
    assert sorted(shuffled) == [float(i) for i in range(10)] and shuffled != sorted(shuffled)
