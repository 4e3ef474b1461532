"""The same training code under torchrun: 2 CPU processes with the gloo backend."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dcatkit.data.cache import MARKER, collect
from ddp_worker import ODD_RUNS, history_of, mcma_run, toy_decoder

HERE = Path(__file__).parent
# _SAME_DEVICE: the one-process reference runs on the CPU, like the gloo workers. The tolerances
# below (1e-5) cover only the order of the float32 sums (2 processes of 24 samples vs 1 of 48);
# a reference on CUDA differs by ~5e-5 (cuBLAS/cuDNN kernels, TF32, bf16 autocast), which says
# nothing about whether the masked mean is global.


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    """One torchrun launch (slow to start) runs every distributed scenario of ddp_worker.py."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           str(HERE / "ddp_worker.py"), str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, [json.loads((out / f"rank{i}.json").read_text()) for i in (0, 1)]


def test_torchrun_two_cpu_processes(ddp):
    tmp_path, ranks = ddp
    assert ranks[0]["target"] == ranks[1]["target"]                  # metrics agree across ranks
    assert ranks[0]["source_f1"] == ranks[1]["source_f1"]
    assert ranks[0]["history"] == ranks[1]["history"]                # reduced train loss, same val
    assert ranks[0]["n_test"] == 20                                   # all test samples, each once
    assert ranks[0]["param_sum"] == ranks[1]["param_sum"]            # DDP kept the replicas identical
    n = ranks[0]["n_train"]
    assert n % 2 == 1                                                 # 57: one rank holds a sample more
    assert [r["items_per_epoch"] for r in ranks] == [n // 2 + 1, n // 2]   # each rank its shard, none padded
    assert len(ranks[0]["history"]) == 2 and all(h[0] > 0 for h in ranks[0]["history"])
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pt" and "mcma" not in p.name
                   or ".tmp" in p.name)
    assert files == ["imu.pt", "video.pt"]                            # one checkpoint each, no temp files
    caches = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert len(caches) == 1 and (caches[0] / "meta.json").is_file()   # the source cache, built once
    assert ranks[0]["source_calls"] > 0 and ranks[1]["source_calls"] == 0   # by local rank 0 alone


def test_mcma_mean_is_global_across_processes(ddp):
    """Eq. (17)'s mean over masked-in samples, under torchrun, runs over the masked-in
    samples of all processes: 2 processes train exactly what 1 process trains, though
    the processes hold different numbers of masked-in samples."""
    tmp_path, ranks = ddp
    counts = list(zip(ranks[0]["mcma_counts"], ranks[1]["mcma_counts"]))
    assert all(a + b == 12 for a, b in counts) and any(a != b for a, b in counts)   # unequal shares
    single, _ = mcma_run(device="cpu")        # the workers' device (gloo, CPU): see _SAME_DEVICE
    want = history_of(single)
    for r in ranks:
        np.testing.assert_allclose(r["mcma_history"], want, rtol=1e-5, atol=1e-7)
    state = torch.load(tmp_path / "mcma_state.pt", weights_only=True)
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", list(ODD_RUNS))
def test_odd_training_set_trains_each_sample_once_as_one_process(ddp, name):
    """47 samples on 2 processes: 24 and 23, every sample once per epoch (no padding sample
    counted twice), and cross-entropy, the masked mean (MCMA), the plain mean (no MCMA), the
    labelled-only cross-entropy (unlabeled samples) and every logged mean run over the 47 as
    in one process: history and weights are the single process's."""
    tmp_path, ranks = ddp
    single, source = mcma_run(device="cpu", **ODD_RUNS[name])
    (ids,) = {tuple(sorted(step)) for step in source.seen}            # one process: all 47 in each step
    assert len(ids) == 47
    for epoch in range(2):
        steps = [r["odd"][name]["seen"][epoch] for r in ranks]
        assert [len(s) for s in steps] == [24, 23] and sorted(steps[0] + steps[1]) == list(ids)
    want = history_of(single)
    for r in ranks:
        np.testing.assert_allclose(r["odd"][name]["history"], want, rtol=1e-5, atol=1e-7)
    state = torch.load(tmp_path / f"mcma_{name}_state.pt", weights_only=True)
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=1e-4, atol=1e-6)


def test_shard_batches_train_each_sample_once_in_equal_steps():
    """runtime.ShardBatches for every rank of W processes: each epoch every sample once, the
    same number of steps on every rank, no empty batch (a last step of fewer than W samples
    is folded into the one before), a new order per epoch; DistributedSampler's batches when
    W divides the set; fewer samples than processes is refused."""
    from torch.utils.data import DistributedSampler

    from dcatkit.runtime import ShardBatches

    for n, b, w in [(47, 48, 2), (33, 16, 2), (34, 16, 2), (35, 4, 3), (10, 1, 4), (3, 8, 3), (1, 1, 1)]:
        orders = []
        for epoch in (1, 2):
            per_rank = []
            for r in range(w):
                s = ShardBatches(n, b, seed=7, rank=r, world=w)
                s.set_epoch(epoch)
                per_rank.append(list(s))
                assert len(s) == len(per_rank[-1])
            assert len({len(p) for p in per_rank}) == 1, (n, b, w)              # same number of steps
            assert all(batch for p in per_rank for batch in p), (n, b, w)        # none empty
            flat = [i for p in per_rank for batch in p for i in batch]
            assert sorted(flat) == list(range(n)), (n, b, w)                      # each sample once
            for step in zip(*per_rank):
                assert max(map(len, step)) - min(map(len, step)) <= 1
            orders.append(flat)
        assert n < 3 or orders[0] != orders[1]
    assert [len(list(ShardBatches(33, 16, 0, r, 2))) for r in (0, 1)] == [1, 1]   # 17 + 16, not 2 steps + 1 empty
    for r in (0, 1):                                                 # W divides N: DistributedSampler's order
        s, d = ShardBatches(48, 8, seed=3, rank=r, world=2), DistributedSampler(range(48), 2, r, shuffle=True, seed=3)
        s.set_epoch(5)
        d.set_epoch(5)
        assert [i for batch in s for i in batch] == list(d)
    with pytest.raises(ValueError, match=r"1 sample\(s\) for 2 processes"):
        ShardBatches(1, 4, 0, 0, 2)


def test_objective_parameters_train_as_in_one_process(ddp):
    """fitnet's learned map lives outside DDP: its gradients are averaged by hand, so both
    processes hold the same map, equal to the one a single process trains (and the masked
    mean is global for this objective too)."""
    tmp_path, ranks = ddp
    single, _ = mcma_run(method="fitnet", device="cpu")
    for r in ranks:
        np.testing.assert_allclose(r["fitnet_history"], history_of(single, "fitnet"), rtol=1e-5, atol=1e-7)
    maps = [torch.load(tmp_path / f"mcma_fitnet_objective_rank{i}.pt", weights_only=True) for i in (0, 1)]
    for k, v in single.objective.state_dict().items():
        assert torch.equal(maps[0][k], maps[1][k])
        torch.testing.assert_close(maps[0][k], v, rtol=1e-4, atol=1e-6)


def test_preprocessing_cache_built_by_one_process(ddp):
    tmp_path, ranks = ddp
    assert sorted((tmp_path / "decoded_rank0.txt").read_text().split()) == ["0", "1", "2"]
    assert not (tmp_path / "decoded_rank1.txt").exists()              # rank 1 waited and read it
    assert ranks[0]["windows"] == ranks[1]["windows"] and len(ranks[1]["windows"]["ids"]) == 6


def test_finished_preprocessing_cache_is_never_replaced(tmp_path):
    """Two builds of the same cache race: while one decodes, the other completes and a
    reader starts on its folder. The slower build keeps that folder (no delete, no
    replace) and returns the same windows."""
    kw = dict(classes=["a", "b"], settings={}, cache_dir=tmp_path / "c", progress=False)
    plain = toy_decoder(tmp_path / "log.txt")
    state = {}

    def racing(rec):
        if not state:
            state["inner"] = collect("toy", [0, 1, 2], plain, **kw)      # completes first
            folder = Path(state["inner"].report["cache"])
            (folder / "reader-was-here").write_text("")
            state["folder"] = folder
        return plain(rec)

    outer = collect("toy", [0, 1, 2], racing, **kw)
    folder = state["folder"]
    assert Path(outer.report["cache"]) == folder and (folder / "reader-was-here").is_file()
    assert (folder / MARKER).is_file() and outer.ids == state["inner"].ids
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp-")]   # its temp folder removed
