"""Run by test_distributed.py under torchrun (2 CPU processes, gloo)."""
import json
import sys
from pathlib import Path

from dcatkit import distributed as dist
from dcatkit.experiment import train_transfer, train_unimodal
from helpers import TINY, CountingArray, tiny_splits

out = Path(sys.argv[1])
assert dist.init() and dist.world_size() == 2
sp = tiny_splits(96, modalities=("imu", "video"))
plain = sp.train.arrays["video"]
sp.train.arrays["video"] = counter = CountingArray(plain)   # counts the training items this rank loads
src = train_unimodal(sp, "video", preset=TINY["video"], seed=0, checkpoint=out / "video.pt", progress=False)
sp.train.arrays["video"] = plain
items_per_epoch = counter.reads // TINY["video"].epochs
run = train_transfer(sp, src, "imu", lam=1.0, preset=TINY["imu"], seed=0, checkpoint=out / "imu.pt",
                     cache_dir=out / "cache", progress=False)
res = {"rank": dist.rank(), "source_f1": src.test["f1"], "target": {k: v for k, v in run.test.items()
       if k != "confusion"}, "history": run.history[["train_loss", "val_f1"]].values.tolist(),
       "n_test": int(run.test["confusion"].sum()), "n_train": len(sp.train),
       "items_per_epoch": items_per_epoch,
       "param_sum": float(sum(p.double().sum() for p in run.model.state_dict().values()))}
(out / f"rank{dist.rank()}.json").write_text(json.dumps(res))
dist.barrier()
