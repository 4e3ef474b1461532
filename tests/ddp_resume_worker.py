"""Run by tests/test_resume.py under torchrun (2 CPU processes, gloo): a run of 3 epochs,
then the same run resumed from the state its epoch 1 saved; each rank writes both results."""
import json
import shutil
import sys
from pathlib import Path

from dcatkit import distributed as dist
from dcatkit import train
from dcatkit.model import build_model
from dcatkit.train import fit, seed_everything
from helpers import TINY, tiny_splits

out = Path(sys.argv[1])
dist.init()
sp = tiny_splits(64, modalities=("imu",))
PRESET = TINY["imu"].with_(epochs=3)


def run(checkpoint, resume):
    seed_everything(0)
    model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), PRESET)
    res = fit(model, sp.train, sp.val, preset=PRESET, seed=0, device="cpu", checkpoint=checkpoint,
              progress=False, resume=resume)
    return res.history.drop(columns=["train_time_s", "time_s", "val_absent_classes"], errors="ignore").to_dict("list")


real_save = train._save_state


def save_and_keep_epoch_1(path, state):
    real_save(path, state)
    if state["epoch"] == 1:
        shutil.copy(path, out / "epoch1.state")


train._save_state = save_and_keep_epoch_1
full = run(out / "full.pt", False)
train._save_state = real_save
if dist.is_main():
    shutil.copy(out / "epoch1.state", out / "resumed.pt.state")     # as if the run had died in epoch 2
dist.barrier()
resumed = run(out / "resumed.pt", True)
(out / f"rank{dist.rank()}.json").write_text(json.dumps({"full": full, "resumed": resumed}))
