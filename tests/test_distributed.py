"""The same training code under torchrun: 2 CPU processes with the gloo backend."""
import json
import os
import subprocess
import sys
from pathlib import Path


HERE = Path(__file__).parent



def test_torchrun_two_cpu_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           str(HERE / "ddp_worker.py"), str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert ranks[0]["target"] == ranks[1]["target"]                  # metrics agree across ranks
    assert ranks[0]["source_f1"] == ranks[1]["source_f1"]
    assert ranks[0]["history"] == ranks[1]["history"]                # reduced train loss, same val
    assert ranks[0]["n_test"] == 20                                   # all test samples, each once
    assert ranks[0]["param_sum"] == ranks[1]["param_sum"]            # DDP kept the replicas identical
    half = -(-ranks[0]["n_train"] // 2)
    assert ranks[0]["items_per_epoch"] == ranks[1]["items_per_epoch"] == half   # each rank trains on its shard
    assert len(ranks[0]["history"]) == 2 and all(h[0] > 0 for h in ranks[0]["history"])
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".pt" or ".tmp" in p.name)
    assert files == ["imu.pt", "video.pt"]                            # one checkpoint each, no temp files
    caches = [p for p in (tmp_path / "cache").iterdir()]
    assert len(caches) == 1 and (caches[0] / "meta.json").is_file()   # rank 0 built the source cache once
