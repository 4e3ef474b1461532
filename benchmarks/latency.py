"""Prediction latency of a deployed target on this CPU: eager torch vs the .pt2 program vs ONNX Runtime.

For the synthetic preset's IMU model (raw windows (6, 64)) and video model (uint8 frames
(8, 3, 32, 32)), untrained (latency does not depend on the weights): single-sample and
batch-64 prediction, in ms per sample. Each backend runs the same raw input through the
same graph (the min-max scaling inside it, as ``dcatkit.export`` writes it):

- eager: ``deploy._Inference`` (the model + scaling) under ``torch.no_grad()``;
- pt2: ``torch.export.load(...).module()`` of the exported file;
- ort: ``onnxruntime.InferenceSession`` of the exported .onnx (CPU provider).

Timing: one thread everywhere (``torch.set_num_threads(1)``, ORT intra/inter-op 1), a
warm-up, then ``--rounds`` rounds; in each round every backend runs ``reps`` calls in turn
(interleaved, so a change in machine load hits all backends alike); the figure is the
median over rounds of (round time / (reps * batch)). Outputs are checked to agree first.

    python benchmarks/latency.py                 # table to stdout, JSON to benchmarks/latency.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dcatkit  # noqa: E402
from dcatkit import deploy  # noqa: E402
from dcatkit.model import build_model  # noqa: E402
from dcatkit.presets import get_preset  # noqa: E402

CLASSES = [f"c{i}" for i in range(8)]
SHAPES = {"imu": (6, 64), "video": (8, 3, 32, 32)}


def _inputs(modality: str, batch: int, rng) -> np.ndarray:
    shape = (batch, *SHAPES[modality])
    if modality == "video":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.normal(0, 2, shape).astype(np.float32)               # raw IMU values (g, rad/s)


def backends(modality: str, folder: Path) -> dict:
    """{name: callable(raw np batch) -> logits np} for one untrained model of the synthetic preset."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_model(modality, len(CLASSES), SHAPES[modality], get_preset("synthetic", modality)).eval()
    norm = {"min": [-3.0] * 6, "max": [3.0] * 6} if modality == "imu" else None
    dcatkit.export(model, folder / f"{modality}.pt2", classes=CLASSES, normalization=norm)
    dcatkit.export(model, folder / f"{modality}.onnx", classes=CLASSES, normalization=norm)
    eager = deploy._Inference(model, norm).eval()
    program = torch.export.load(str(folder / f"{modality}.pt2")).module()     # our own file
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(folder / f"{modality}.onnx"), opts, providers=["CPUExecutionProvider"])

    @torch.no_grad()
    def run_eager(x):
        return eager(torch.from_numpy(x))[0].numpy()

    @torch.no_grad()
    def run_pt2(x):
        return program(torch.from_numpy(x))[0].numpy()

    def run_ort(x):
        return sess.run(["logits"], {"x": x})[0]

    return {"eager torch": run_eager, "torch.export (.pt2)": run_pt2, "ONNX Runtime": run_ort}


def measure(fns: dict, x: np.ndarray, rounds: int, reps: int) -> dict:
    """ms per sample, median over interleaved rounds, per backend."""
    ref = next(iter(fns.values()))(x)
    for name, f in fns.items():                                     # same answer first; warm-up
        np.testing.assert_allclose(f(x), ref, rtol=1e-4, atol=1e-4, err_msg=name)
        for _ in range(3):
            f(x)
    per = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                f(x)
            per[name].append((time.perf_counter() - t0) * 1e3 / (reps * len(x)))
    return {name: {"median_ms_per_sample": statistics.median(v), "min": min(v), "max": max(v)}
            for name, v in per.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", default=str(Path(__file__).with_name("latency.json")))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for modality in ("imu", "video"):
            fns = backends(modality, Path(tmp))
            for batch, reps in ((1, 200 if modality == "imu" else 40), (64, 5 if modality == "imu" else 1)):
                res = measure(fns, _inputs(modality, batch, rng), a.rounds, reps)
                for name, r in res.items():
                    rows.append({"model": modality, "batch": batch, "backend": name, **r})
    eager = {(r["model"], r["batch"]): r["median_ms_per_sample"] for r in rows if r["backend"] == "eager torch"}
    print("| model | batch | backend | ms / sample (median) | range over rounds | speed-up vs eager |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        sp = eager[(r["model"], r["batch"])] / r["median_ms_per_sample"]
        print(f"| {r['model']} | {r['batch']} | {r['backend']} | {r['median_ms_per_sample']:.3f} | "
              f"{r['min']:.3f}-{r['max']:.3f} | {sp:.2f}x |")
    meta = {"rounds": a.rounds, "threads": 1, "torch": torch.__version__, "cpu": platform.processor() or
            platform.machine(), "cores": os.cpu_count(),
            "load_avg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None}
    print(f"\n{meta}")
    Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
