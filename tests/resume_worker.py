"""One small transfer run (fitnet: the objective has a learned map) that tests/test_resume.py
runs uninterrupted, kills mid-run and resumes.

``python tests/resume_worker.py FOLDER EPOCH`` trains into FOLDER and, when the loop is
about to save the resumable state of EPOCH (that epoch trained, its state not yet
written), writes ``FOLDER/ready`` and waits to be killed: the killed run's last state
is then that of EPOCH - 1 and the work of EPOCH is lost, as when a real run dies."""
import os
import sys
import time
from pathlib import Path

from dcatkit import train
from dcatkit.model import build_model
from dcatkit.train import fit_transfer, seed_everything
from helpers import TINY, tiny_splits

PRESET = TINY["imu"].with_(epochs=4)        # the IMU encoder has dropout 0.1: the torch RNG matters


def run(folder, *, resume=False, seed=0, epochs=None, method="fitnet", source_seed=123, **kw):
    folder = Path(folder)
    sp = tiny_splits(64, modalities=("imu", "video"))
    seed_everything(source_seed)
    source = build_model("video", sp.train.num_classes, sp.train.input_shape("video"), TINY["video"])
    seed_everything(seed)
    model = build_model("imu", sp.train.num_classes, sp.train.input_shape("imu"), PRESET)
    return fit_transfer(model, source, sp.train, sp.val, lam=1.0, method=method, preset=PRESET, epochs=epochs,
                        seed=seed, device="cpu", checkpoint=folder / "target.pt", cache_dir=folder / "cache",
                        progress=False, resume=resume, **kw)


if __name__ == "__main__":
    out, block_at = Path(sys.argv[1]), int(sys.argv[2])
    real_save = train._save_state

    def save_or_block(path, state):
        if state["epoch"] == block_at:
            (out / "ready").write_text(str(os.getpid()))
            time.sleep(600)                       # killed here by the test
        real_save(path, state)

    train._save_state = save_or_block
    run(out)
    (out / "finished").write_text("yes")
