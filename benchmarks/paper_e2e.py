"""The paper's scale end to end on a GPU (issue 18 item 5), without a real dataset.

    python benchmarks/paper_e2e.py OUT [--recordings-per-class 6] [--rows 210] [--size 224]
                                       [--frames 30] [--source-epochs 1] [--epochs 2] [--skip-notebook]

1. writes a UESTC-MMEA-CL-layout fixture under OUT/uestc (sensor csv + pre-extracted JPEG
   frames at ``size`` px; JPEG needs only Pillow, no PyAV): 9 class folders (the paper's 8 + one
   more), ``rows`` IMU rows and as many frames per recording;
2. runs the computation of notebook 03 with ``preset="paper"`` directly through dcatkit:
   a ResNet-101 video source (``source_epochs``) and the IMU baseline + D-CAT target (``epochs``,
   source cache built by the fast path), recording epoch times and peak GPU memory
   (``torch.cuda.max_memory_allocated``) of source and target -> OUT/paper_e2e.json;
3. executes notebooks/03_transfer.py (its jupytext percent script) with the same parameters
   injected after its parameters cell (IPython.display stubbed where IPython is absent; papermill
   is not needed; benchmarks/notebook_script.py) -> OUT/03_transfer.log, and its wall time in the JSON.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
FOLDERS = ("1_upstairs", "3_drinking", "5_reading", "6_sweep_floor", "7_cut_fruits", "11_wash_hand",
           "14_type_pc", "25_type_phone", "27_open_close_door")


def make_fixture(root: Path, per_class: int, rows: int, size: int) -> int:
    """UESTC layout: sensor/<folder>/<stem>.csv (6 int columns) + video/<folder>/<stem>/000001.jpg...
    Frames are noisy class-coloured images (so the source can learn something). Returns #recordings."""
    from PIL import Image
    rng = np.random.default_rng(0)
    lines = {"train.txt": [], "val.txt": [], "test.txt": []}
    jobs, n = [], 0
    for folder in FOLDERS:
        label = int(folder.split("_")[0]) - 1
        for i in range(per_class):
            stem = f"{folder}_2020_12_{10 + i % 3:02d}_15_58_{i:02d}"
            csv = root / "sensor" / folder / f"{stem}.csv"
            csv.parent.mkdir(parents=True, exist_ok=True)
            r = np.arange(rows)
            imu = np.stack([r * 16 + 800 * np.sin(r / (3 + label)), r * 0 + 100 * label, r * 0 + i,
                            rng.integers(-50, 50, rows), -r, r * 0 + 3], axis=1)
            np.savetxt(csv, imu.astype(int), fmt="%d", delimiter=",")
            jobs.append((root / "video" / folder / stem, label))
            lines[("train.txt", "val.txt", "test.txt")[n % 3]].append(
                f"yourdataset_path/data/{folder}/{stem} {rows} {rows} {label}")
            n += 1

    def frames(job):
        folder, label = job
        folder.mkdir(parents=True, exist_ok=True)
        g = np.random.default_rng(label)
        base = np.zeros((size, size, 3), np.uint8)
        base[..., label % 3] = 60 + 6 * label
        for k in range(rows):
            img = np.clip(base.astype(int) + g.integers(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"{k + 1:06d}.jpg", quality=90)

    with concurrent.futures.ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(frames, jobs))
    for name, ls in lines.items():
        (root / name).write_text("\n".join(ls) + "\n")
    return n


def peak_mb(torch) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def direct(root: Path, out: Path, a) -> dict:
    import torch

    from dcatkit.data import load
    from dcatkit.experiment import train_transfer, train_unimodal
    res: dict = {}
    t = time.perf_counter()
    sp = load("uestc", root, split="id", frame_size=a.size, frames=a.frames, cache_dir=out / "prep",
              progress=False)
    res["load_s"] = time.perf_counter() - t
    res["n"] = {"train": len(sp.train), "val": len(sp.val), "test": len(sp.test)}
    res["input_shape"] = {m: list(sp.train.input_shape(m)) for m in sp.train.modalities}
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    src = train_unimodal(sp, "video", preset="paper", dataset="uestc", epochs=a.source_epochs, seed=0,
                         checkpoint=out / "ckpt" / "video.pt", progress=False)
    res["source"] = {"wall_s": time.perf_counter() - t, "epoch_s": src.history["time_s"].tolist(),
                     "train_s": src.history["train_time_s"].tolist(), "peak_gpu_mb": peak_mb(torch),
                     "test_f1": src.test["f1"]}
    for name, kw in (("baseline", dict(lam=0.0)), ("dcat", dict(lam=1.0))):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        run = train_transfer(sp, src, "imu", preset="paper", dataset="uestc", epochs=a.epochs, seed=0,
                             progress=False, cache_dir=out / "source_cache", **kw)
        res[name] = {"wall_s": time.perf_counter() - t, "epoch_s": run.history["time_s"].tolist(),
                     "train_s": run.history["train_time_s"].tolist(), "peak_gpu_mb": peak_mb(torch),
                     "test_f1": run.test["f1"]}
    res["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return res


def notebook(root: Path, out: Path, a) -> dict:
    """notebooks/03_transfer.py with parameters injected after its parameters cell, run as a
    script (benchmarks/notebook_script.py) -> OUT/03_transfer.log."""
    from notebook_script import run_notebook_script

    params = {"dataset": "uestc", "data_root": str(root), "preset": "paper", "frame_size": a.size,
              "n_frames": a.frames, "epochs": a.epochs, "source_epochs": a.source_epochs,
              "out_dir": str(out / "nb03"), "figures_dir": str(out / "nb03" / "figures"),
              "cache_dir": str(out / "prep")}
    return run_notebook_script("03_transfer", params, out, a.notebook_timeout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--recordings-per-class", type=int, default=6)
    ap.add_argument("--rows", type=int, default=210)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--source-epochs", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--skip-notebook", action="store_true")
    ap.add_argument("--notebook-timeout", type=int, default=240)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    res: dict = {"settings": vars(a) | {"out": str(a.out)}}
    t = time.perf_counter()
    root = a.out / "uestc"
    res["recordings"] = make_fixture(root, a.recordings_per_class, a.rows, a.size)
    res["fixture_s"] = time.perf_counter() - t
    print(f"fixture: {res['recordings']} recordings in {res['fixture_s']:.1f} s", flush=True)
    try:
        res["direct"] = direct(root, a.out, a)
    except Exception as e:
        import traceback
        traceback.print_exc()
        res["direct_error"] = f"{type(e).__name__}: {e}"[:2000]
    (a.out / "paper_e2e.json").write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps(res.get("direct", res.get("direct_error")), indent=1, default=str), flush=True)
    if not a.skip_notebook:
        try:
            res["notebook03"] = notebook(root, a.out, a)
        except Exception as e:
            res["notebook03_error"] = f"{type(e).__name__}: {e}"[:2000]
        print("notebook 03:", res.get("notebook03", res.get("notebook03_error")), flush=True)
    (a.out / "paper_e2e.json").write_text(json.dumps(res, indent=1, default=str))
    failed = [k for k in ("direct_error", "notebook03_error") if k in res]
    failed += ["notebook03 rc"] if res.get("notebook03", {}).get("rc", 0) != 0 else []
    if failed:                          # the part's exit status in gpu_check.sh's summary says so
        sys.exit(f"paper_e2e: failed: {', '.join(failed)} (see {a.out})")


if __name__ == "__main__":
    main()
