"""dcatkit benchmarks: prints a table and writes JSON (``make bench``; not part of ``make test``).

Sections (each case runs in a fresh child process so its peak memory is its own;
cases that are compared run interleaved in the same invocation, so their ratios
hold on a noisy machine):

  loss    cross-attention loss forward+backward, Gram vs dense (B=16, T=30, d=512)
  epochs  unimodal IMU epoch vs D-CAT video->IMU epoch with the live frozen source
          vs with the cached source (synthetic preset); the cached/unimodal ratio from
          adjacent epochs in one process (this VM's speed drifts over minutes)
  steps   one IMU training step, cross-entropy only vs + D-CAT loss on cached source
          K, V, alternating step by step in one process: at the paper's target shapes
          (UESTC preset, d=512, random inputs), and inside synthetic-preset training
          with the time of each part of the step (forward, cache lookup, loss, backward,
          optimizer)
  loader  samples/s reading the preprocessing cache vs decoding mp4/wav each time
          (a VGGSound-layout fixture written here; needs PyAV + soundfile)
  paper   GPU, the paper's scale: ResNet-101, 224x224, 30 frames, batch 8; fp32 vs
          AMP, frozen-source forward frames/s, IMU target step with live vs cached
          source, GPU memory. Needs only torch/torchvision/torchaudio + dcatkit.

    python benchmarks/bench.py                  # loss, epochs, steps, loader (CPU)
    python benchmarks/bench.py --only paper     # on a GPU machine
    python benchmarks/bench.py --quick          # tiny sizes, seconds (used by the tests)
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- helpers

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(conn, fn_name, kwargs):
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    base = _peak_rss_mb()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    out = globals()[fn_name](**kwargs)
    out["peak_rss_mb"] = _peak_rss_mb()
    out["rss_increase_mb"] = out["peak_rss_mb"] - base
    if torch.cuda.is_available():
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    conn.send(out)


def isolated(fn_name: str, **kwargs) -> dict:
    """Run benchmark case ``fn_name(**kwargs)`` in a fresh process; return its dict."""
    ctx = mp.get_context("spawn")
    a, b = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(b, fn_name, kwargs))
    p.start()
    while not a.poll(1.0):            # a child that dies (an exception, out of memory) ends the wait
        if not p.is_alive() and not a.poll(0):
            raise RuntimeError(f"benchmark case {fn_name} died (exit code {p.exitcode}); its traceback is above")
    out = a.recv()
    p.join()
    return out


def _landed(res: dict, json_path: str, into: dict, key: str, out: dict) -> dict:
    """Store one case's result as ``into[key]``, print it raw and rewrite the JSON with everything
    so far (atomically)."""
    into[key] = out
    print(f"landed {key}: {json.dumps(out, default=str)}", flush=True)
    path = Path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(res, indent=1, default=str))
    os.replace(tmp, path)
    return out


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


# ----------------------------------------------------------------------------- loss

def _dense_fp32(k_t, v_t, k_s, v_s):
    """Eq. (7) as one would first write it: float32, d x d matrices."""
    m_t, m_s = k_t.transpose(1, 2) @ v_t, k_s.transpose(1, 2) @ v_s              # (B, d, d)
    m_t = m_t / torch.linalg.matrix_norm(m_t)[:, None, None]
    m_s = m_s / torch.linalg.matrix_norm(m_s)[:, None, None]
    return torch.linalg.matrix_norm(m_t - m_s).mean()


LOSS_METHODS = ("gram", "dense", "dense_fp32")


def _loss_step(method: str, B: int, T: int, d: int):
    from dcatkit.losses import cross_attention_loss
    g = torch.Generator().manual_seed(0)
    k_t, v_t = (torch.randn(B, T, d, generator=g, requires_grad=True) for _ in range(2))
    k_s, v_s = (torch.randn(B, T, d, generator=g) for _ in range(2))

    def step():
        if method == "dense_fp32":
            loss = _dense_fp32(k_t, v_t, k_s, v_s)
        else:
            loss = cross_attention_loss(k_t, v_t, k_s, v_s, method=method)
        loss.backward()

    for _ in range(5):  # warm-up: a fresh process still grows its allocator in the first calls
        step()
    return step


def case_loss(method: str, B: int, T: int, d: int, reps: int) -> dict:
    """One method in its own process: its time and its peak memory."""
    return {"seconds": _median_time(_loss_step(method, B, T, d), reps)}


def case_loss_rounds(B: int, T: int, d: int, reps: int, rounds: int) -> dict:
    """All methods in one process, timed in turn, ``rounds`` times: per-round ratios compare
    methods measured seconds apart (this VM's speed drifts by 2x over minutes)."""
    steps = {m: _loss_step(m, B, T, d) for m in LOSS_METHODS}
    out = {m: [] for m in LOSS_METHODS}
    for _ in range(rounds):
        for m, step in steps.items():      # the float64 d x d reference is slow: fewer repetitions
            out[m].append(_median_time(step, reps if m != "dense" else max(3, reps // 5)))
    return out


# ----------------------------------------------------------------------------- epochs

def _epoch_setup(n_samples: int):
    from dcatkit.data import load
    from dcatkit.presets import get_preset
    return load("synthetic", n_samples=n_samples, seed=0), get_preset("synthetic", "imu"), \
        get_preset("synthetic", "video")


def _run_epochs(kind: str, sp, p_imu, p_vid, epochs: int, cache_dir: str) -> dict:
    from dcatkit.model import build_model
    from dcatkit.train import fit, fit_transfer, seed_everything
    seed_everything(0)
    target = build_model("imu", 8, sp.train.input_shape("imu"), p_imu)
    # timing does not depend on the source's weights: a random-init frozen source will do
    source = build_model("video", 8, sp.train.input_shape("video"), p_vid)
    t0 = time.perf_counter()
    if kind == "unimodal":
        res = fit(target, sp.train, sp.val, preset=p_imu, epochs=epochs, progress=False)
    else:
        res = fit_transfer(target, source, sp.train, sp.val, lam=1.0, preset=p_imu, epochs=epochs,
                           progress=False, source_cache=(kind == "cached"), cache_dir=cache_dir)
    total = time.perf_counter() - t0
    h = res.history
    steady = h.iloc[1:] if len(h) > 1 else h                       # drop the warm-up epoch
    return {"epoch_s": float(steady["time_s"].median()), "train_s": float(steady["train_time_s"].median()),
            "total_s": total, "n_train": len(sp.train)}


def case_epoch(kind: str, n_samples: int, epochs: int, cache_dir: str) -> dict:
    """One kind of training in its own process: its epoch time and its peak memory."""
    return _run_epochs(kind, *_epoch_setup(n_samples), epochs, cache_dir)


def _alternating(epoch, warmup: int, pairs: int) -> tuple[list, list]:
    """``(unimodal, cached)`` times of ``epoch(kind)`` run in adjacent pairs, the order alternating
    (this VM's speed drifts by 2x over minutes: two epochs back to back see the same machine);
    the first ``warmup`` pairs are not kept."""
    times = {"unimodal": [], "cached": []}
    for i in range(warmup + pairs):
        for kind in (("unimodal", "cached") if i % 2 == 0 else ("cached", "unimodal")):
            t = epoch(kind)
            if i >= warmup:
                times[kind].append(t)
    return times["unimodal"], times["cached"]


def case_epoch_pairs(n_samples: int, pairs: int, cache_dir: str, warmup: int = 2) -> dict:
    """The cached/unimodal ratio from adjacent epochs in one process: one unimodal epoch and
    one cached D-CAT epoch back to back (order alternating), ``pairs`` times, each model
    continuing its own training. This VM's speed drifts by 2x over minutes; two epochs
    half a second apart see the same machine. The first ``warmup`` pairs are not kept."""
    from dcatkit.model import build_model
    from dcatkit.train import fit, fit_transfer, seed_everything
    sp, p_imu, p_vid = _epoch_setup(n_samples)
    seed_everything(0)
    targets = {kind: build_model("imu", 8, sp.train.input_shape("imu"), p_imu) for kind in ("unimodal", "cached")}
    targets["cached"].load_state_dict(targets["unimodal"].state_dict())       # same start
    source = build_model("video", 8, sp.train.input_shape("video"), p_vid)   # random init: timing only

    def epoch(kind: str) -> float:
        if kind == "unimodal":
            res = fit(targets[kind], sp.train, sp.val, preset=p_imu, epochs=1, progress=False)
        else:            # the cache is built by the first call, outside the epoch's time
            res = fit_transfer(targets[kind], source, sp.train, sp.val, lam=1.0, preset=p_imu, epochs=1,
                               progress=False, source_cache=True, cache_dir=cache_dir)
        return float(res.history["time_s"].iloc[0])

    uni, cached = _alternating(epoch, warmup, pairs)
    return {"unimodal_s": uni, "cached_s": cached, "ratios": [c / u for c, u in zip(cached, uni)],
            "summary": _ratio_summary(uni, cached), "n_train": len(sp.train)}


def case_target_steps(dataset: str, batch: int, t_source: int, steps: int) -> dict:
    """One IMU training step, cross-entropy only vs with the D-CAT loss against cached
    source K, V (float16, T_s = one per video frame), alternating step by step in one
    process so both see the same machine. ``dataset`` picks the IMU preset: "uestc" (the
    paper's target: batch 16, 70 rows, attention 512) or "synthetic"."""
    import torch.nn.functional as F
    from dcatkit.losses import cross_attention_loss
    from dcatkit.model import build_model
    from dcatkit.presets import get_preset
    p = get_preset(dataset, "imu")
    torch.manual_seed(0)
    model = build_model("imu", 8, (6, p.window), p)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    x, y = torch.randn(batch, 6, p.window), torch.randint(0, 8, (batch,))
    k_s, v_s = (torch.randn(batch, t_source, p.d_attn).half() for _ in range(2))
    correct = torch.arange(batch) % 8 != 0

    def step(transfer: bool) -> float:
        t = time.perf_counter()
        out = model(x)
        loss = F.cross_entropy(out.logits, y)
        if transfer:
            loss = loss + cross_attention_loss(out.k, out.v, k_s.float(), v_s.float(), correct)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    times = {False: [], True: []}
    for i in range(10 + steps):
        for transfer in ((False, True) if i % 2 == 0 else (True, False)):
            dt = step(transfer)
            if i >= 10:                                                # 10 warm-up pairs
                times[transfer].append(dt)
    uni, cached = times[False], times[True]
    t_t = model(x).k.shape[1]
    return {"unimodal_s": statistics.median(uni), "cached_s": statistics.median(cached),
            "ratios": _ratio_summary(uni, cached), "shapes": {"B": batch, "T_t": t_t, "T_s": t_source, "d": p.d_attn}}


def _ratio_summary(uni: list, cached: list) -> dict:
    """cached / unimodal over paired timings: median and quartiles of the per-pair ratios,
    and the ratio of the summed times."""
    r = [c / u for c, u in zip(cached, uni)]
    q25, _, q75 = statistics.quantiles(r, n=4)
    return {"median_of_pairs": statistics.median(r), "of_sums": sum(cached) / sum(uni),
            "q25": q25, "q75": q75, "pairs": len(r)}


def case_step_parts(n_samples: int, epochs: int) -> dict:
    """Where the D-CAT step's extra time goes, inside real training: the synthetic preset's
    IMU target, two copies (unimodal, D-CAT on the frozen-source cache) stepping in
    alternation on the same shuffled batches, each step timed in parts: forward + CE,
    source-cache lookup, D-CAT loss (+ its stats), backward, optimizer. Step-by-step
    alternation is immune to this VM's drift; the first epoch is warm-up."""
    import copy
    import torch.nn.functional as F
    from dcatkit.losses import cross_attention_loss
    from dcatkit.model import build_model
    from dcatkit.source_cache import SourceCache
    from dcatkit.train import make_loader, only_modalities, seed_everything
    sp, p_imu, p_vid = _epoch_setup(n_samples)
    seed_everything(0)
    models = {"unimodal": build_model("imu", 8, sp.train.input_shape("imu"), p_imu)}
    models["cached"] = copy.deepcopy(models["unimodal"])
    opts = {k: torch.optim.Adam(m.parameters(), lr=p_imu.lr, weight_decay=p_imu.weight_decay)
            for k, m in models.items()}
    source = build_model("video", 8, sp.train.input_shape("video"), p_vid)     # random init: timing only
    with tempfile.TemporaryDirectory() as tmp:
        cache = SourceCache.build(source, sp.train, "video", tmp, progress=False)
        parts = ("forward", "source", "loss", "backward", "optimizer", "total")
        times = {k: {p: [] for p in parts} for k in models}
        cpu = torch.device("cpu")

        def step(kind, batch, keep):
            model, opt = models[kind], opts[kind]
            t = [time.perf_counter()]
            out = model(batch["imu"])
            loss = F.cross_entropy(out.logits, batch["label"])
            t.append(time.perf_counter())
            if kind == "cached":
                k_s, v_s, correct = cache(batch, cpu)[:3]
                t.append(time.perf_counter())
                l_ca = cross_attention_loss(out.k, out.v, k_s, v_s, correct)
                loss = loss + l_ca
                _ = (l_ca.detach(), correct.float().mean())                  # the loop's two extra stats
                t.append(time.perf_counter())
            else:
                t += [t[-1], t[-1]]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t.append(time.perf_counter())
            opt.step()
            t.append(time.perf_counter())
            if keep:
                for p, a, b in zip(parts, t[:-1], t[1:]):
                    times[kind][p].append(b - a)
                times[kind]["total"].append(t[-1] - t[0])

        ds = only_modalities(sp.train, ("imu",))
        for epoch in range(epochs):
            for model in models.values():
                model.train()
            for i, batch in enumerate(make_loader(ds, p_imu.batch_size, shuffle=True, seed=epoch)):
                for kind in (("unimodal", "cached") if i % 2 == 0 else ("cached", "unimodal")):
                    step(kind, batch, keep=epoch > 0)
    res = {k: {p: statistics.median(v) for p, v in t.items()} for k, t in times.items()}
    res["ratios"] = _ratio_summary(times["unimodal"]["total"], times["cached"]["total"])
    return res


# ----------------------------------------------------------------------------- loader

def case_loader(mode: str, root: str, cache_dir: str, frame_size: int) -> dict:
    from torch.utils.data import DataLoader

    import dcatkit.data.vggsound  # noqa: F401  (imports are not part of either path's cost)
    import sklearn.model_selection  # noqa: F401
    from dcatkit.data import load
    t0 = time.perf_counter()
    sp = load("vggsound", root=root, classes=None, num_classes=3, class_seed=0, frames=8,
              frame_size=frame_size, sample_rate=16000, cache_dir=(cache_dir if mode == "cached" else False),
              progress=False, split_file=None)
    n = 0
    for ds in (sp.train, sp.val, sp.test):          # one pass over every item, as an epoch would
        for batch in DataLoader(ds, batch_size=8):
            n += len(batch["label"])
    dt = time.perf_counter() - t0
    return {"seconds": dt, "samples": len(sp.train) + len(sp.val) + len(sp.test), "samples_per_s": n / dt}


def _make_loader_fixture(root: Path, per_class: int, seconds: float, size: int = 320) -> None:
    """A VGGSound-layout folder: vggsound.csv + mp4 clips (noisy moving frames, aac audio),
    sized like real clips (10 s, 25 fps, 320x320) so decoding costs what it costs."""
    import csv

    import av
    import numpy as np
    rng = np.random.default_rng(0)
    (root / "video").mkdir(parents=True, exist_ok=True)
    rows = []
    for li, label in enumerate(["dog barking", "playing piano, keys", "rain"]):
        for i in range(per_class):
            yid, start = f"clip{li}x{i:05d}"[:11], 10 * (i + 1)
            rows.append((yid, start, label, "train"))
            with av.open(str(root / "video" / f"{yid}_{start:06d}.mp4"), "w") as c:
                v = c.add_stream("mpeg4", rate=25)
                v.width = v.height = size
                v.pix_fmt = "yuv420p"
                a = c.add_stream("aac", rate=16000)
                a.layout = "mono"
                base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
                for k in range(int(seconds * 25)):
                    img = np.roll(base, 3 * k, axis=1)
                    for pkt in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                        c.mux(pkt)
                for pkt in v.encode():
                    c.mux(pkt)
                x = (0.1 * rng.normal(size=int(16000 * seconds))).astype(np.float32)[None]
                fr = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
                fr.sample_rate = 16000
                for pkt in list(a.encode(fr)) + list(a.encode()):
                    c.mux(pkt)
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


# ----------------------------------------------------------------------------- paper scale (GPU)

CALIBRATION_FRAMES = 4        # frames of the one train-mode pass that sets the bench source's BatchNorm statistics


def paper_source(frames: int, size: int, depth: int, device, calibration_frames: int = CALIBRATION_FRAMES):
    """The benchmarks' frozen video source: the UESTC preset's D-CAT video model (ResNet-``depth``
    per frame, built for ``frames`` x 3 x ``size``^2; seed 0), on ``device`` (channels_last on CUDA),
    frozen, in eval mode, with its BatchNorms' running statistics set by one train-mode pass over
    ``calibration_frames`` random uint8 frames of that size (the inputs every case feeds it).

    Timing does not depend on the weights, but a random-init network's BatchNorms keep mean 0 /
    variance 1, so in eval mode they normalise nothing and the activations grow block by block:
    ResNet-101's K reached 9.97e4 on one clip of random 224^2 frames, beyond float16's 65504, and
    ``run_source`` refuses to cache that (the first paper case then died). A trained network's
    statistics are those of its data; so are these (|K|, |V| about 2)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    from dcatkit.model import build_model
    from dcatkit.presets import get_preset

    dev = torch.device(device)
    torch.manual_seed(0)
    src = build_model("video", 8, (frames, 3, size, size), get_preset("uestc", "video"), depth=depth,
                      channels_last=dev.type == "cuda").to(dev).eval().requires_grad_(False)
    if dev.type == "cuda":
        src.to(memory_format=torch.channels_last)
    bns = [m for m in src.modules() if isinstance(m, _BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:              # momentum None: a cumulative mean, so one pass sets exactly that batch's statistics
        m.reset_running_stats()
        m.momentum = None
        m.train()
    x = torch.randint(0, 256, (1, calibration_frames, 3, size, size), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        src(x.to(dev))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    return src.eval()


def case_paper(amp: bool, frames: int, size: int, batch: int, steps: int, depth: int) -> dict:
    """ResNet-101 frozen source forward, and one IMU target training step with the
    source live vs read from a cache, at the paper's scale. Uses only torch + dcatkit.model."""
    from dcatkit.losses import cross_attention_loss
    from dcatkit.model import build_model
    from dcatkit.presets import get_preset

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = (torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16) \
        if amp and dev.type == "cuda" else None
    src = paper_source(frames, size, depth, dev)        # seeds torch with 0; BatchNorm statistics set
    tgt = build_model("imu", 8, (6, 70), get_preset("uestc", "imu")).to(dev)
    opt = torch.optim.Adam(tgt.parameters(), lr=5e-4)
    video = torch.randint(0, 256, (batch, frames, 3, size, size), dtype=torch.uint8, device=dev)
    imu = torch.randn(batch, 6, 70, device=dev)
    y = torch.randint(0, 8, (batch,), device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def source_out():
        with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            o = src(video)
        return o.k.float(), o.v.float(), o.logits.argmax(1) == y

    k_c, v_c, c_c = source_out()
    k_c, v_c = k_c.half(), v_c.half()                               # what the cache stores

    def step(live: bool | None):
        """live=True: source runs; False: cached K, V; None: unimodal (cross-entropy only)."""
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            o = tgt(imu)
            ce = torch.nn.functional.cross_entropy(o.logits.float(), y)
        loss = ce
        if live is not None:
            k, v, c = source_out() if live else (k_c.float(), v_c.float(), c_c)
            loss = ce + cross_attention_loss(o.k.float(), o.v.float(), k, v, c)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def timed(fn):
        fn(); sync()
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        return (time.perf_counter() - t) / steps

    fwd = timed(source_out)
    live = timed(lambda: step(True))
    cached = timed(lambda: step(False))
    unimodal = timed(lambda: step(None))
    return {"source_fwd_s": fwd, "source_frames_per_s": batch * frames / fwd, "step_live_s": live,
            "step_cached_s": cached, "step_unimodal_s": unimodal, "live_over_cached": live / cached,
            "cached_over_unimodal": cached / unimodal,
            "device": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or "cpu",
            "amp": str(dtype) if dtype else "fp32"}


# NVIDIA's dense (no sparsity) bf16 tensor-core figures, FLOP/s, by what torch.cuda.get_device_name()
# says, read word by word: the product ("H200", "H100"; "GH200" is another product), the words its
# variant must name, and no word beyond those and PLAIN_WORDS. An SXM card names no form factor
# ("NVIDIA H200", "NVIDIA H100 80GB HBM3"): the H200 and the H100 SXM share one figure; the H100 PCIe
# has fewer SMs and a lower clock. An NVL card ("H100 NVL", "H200 NVL": other clocks and power) or any
# other word is not listed: no fraction of peak rather than the SXM's (matching by substring gave it).
BF16_DENSE_PEAK = (("H200", frozenset(), 989e12, "H200"), ("H100", frozenset({"PCIe"}), 756e12, "H100 PCIe"),
                   ("H100", frozenset(), 989e12, "H100 SXM"))
PLAIN_WORDS = frozenset({"SXM", "SXM5", "80GB", "94GB", "141GB", "HBM3", "HBM3e"})


def bf16_dense_peak(device_name: str) -> tuple[float, str] | None:
    """(peak FLOP/s, card) of the listed card ``device_name`` names (see ``BF16_DENSE_PEAK``);
    None for a card not listed (the fraction of peak is then not printed rather than taken from
    another card's figure)."""
    words = device_name.split()
    words = words[1:] if words[:1] == ["NVIDIA"] else words
    if not words:
        return None
    product, rest = words[0], set(words[1:])
    for key, variant, peak, card in BF16_DENSE_PEAK:
        if product == key and variant <= rest and not rest - variant - PLAIN_WORDS:
            return peak, card
    return None


RESNET101_GFLOP_QUOTED = 7.8           # per 224^2 frame, as usually quoted (multiply-accumulates)


def _frame_flops(depth: int, size: int) -> float:
    """FLOPs (2 per multiply-accumulate) of one frame through the frame ResNet, counted by
    torch.utils.flop_counter on the CPU."""
    from torch.utils.flop_counter import FlopCounterMode

    from dcatkit.encoders import FrameEncoder
    enc = FrameEncoder(depth=depth).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        enc(torch.zeros(1, 1, 3, size, size, dtype=torch.uint8))
    return float(fc.get_total_flops())


def _timer(dev):
    """time(fn, n) -> seconds per call: CUDA events around n calls after a synchronize (GPU), else
    perf_counter."""
    def run(fn, n):
        if dev.type == "cuda":
            torch.cuda.synchronize()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(n):
                fn()
            b.record()
            b.synchronize()
            return a.elapsed_time(b) / 1e3 / n
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n
    return run


def case_source_paths(frames: int, size: int, depth: int, old_batch: int, reps: int, n_clips: int,
                      compile: bool, e2e_batch: int | None = None) -> dict:
    """Frozen-source throughput at the paper's input, OLD vs NEW path.
    OLD: the source as LiveSource runs it (AMP, channels_last, the training batch of ``old_batch``
    clips, uint8 clips already on the GPU). NEW compute: ``source_cache.prepare_source`` (BN folded,
    cuDNN fused kernels when the probe passes) at its own inference batch, cudnn.benchmark, clips on
    the GPU. NEW end to end: ``source_cache.run_source`` over an in-memory dataset of ``n_clips``
    uint8 clips (threaded pinned loading, uploads, outputs written), timed on a second run, with
    its set-up, first batch and steady state apart (a real cache is thousands of clips: the
    steady rate is what it approaches)."""
    from dcatkit.data.dataset import PairedDataset
    from dcatkit.source_cache import FoldedResNet, inference_batch, prepare_source, run_source
    from dcatkit.train import LiveSource

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    timer = _timer(dev)
    src = paper_source(frames, size, depth, dev)        # seeds torch with 0; BatchNorm statistics set
    res = {"frames": frames, "size": size, "depth": depth, "device": torch.cuda.get_device_name()
           if dev.type == "cuda" else platform.processor() or "cpu"}
    live = LiveSource(src, "video")
    clips = torch.randint(0, 256, (old_batch, frames, 3, size, size), dtype=torch.uint8, device=dev)
    batch = {"video": clips, "label": torch.zeros(old_batch, dtype=torch.long, device=dev)}
    live(batch, dev)
    res["old_s_per_batch"] = timer(lambda: live(batch, dev), reps)
    res["old_frames_per_s"] = old_batch * frames / res["old_s_per_batch"]
    res["old_batch_clips"] = old_batch

    ds = PairedDataset({"video": np.random.default_rng(0).integers(0, 256, (n_clips, frames, 3, size, size),
                                                                      dtype=np.uint8)},
                       np.arange(n_clips) % 8, [str(i) for i in range(8)])
    nb = inference_batch(ds, "video", dev)
    res["new_batch_clips"] = nb
    ready = prepare_source(src, dev, log=lambda m: res.setdefault("notes", []).append(m))
    bb = ready.encoder.backbone
    res["folded"] = isinstance(bb, FoldedResNet)
    res["cudnn_fused"] = bool(getattr(bb, "fused", False))
    fast = LiveSource(ready, "video")
    big = {"video": torch.randint(0, 256, (nb, frames, 3, size, size), dtype=torch.uint8, device=dev),
           "label": torch.zeros(nb, dtype=torch.long, device=dev)}
    with torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False):
        fast(big, dev)
        res["new_s_per_batch"] = timer(lambda: fast(big, dev), max(2, reps // 2))
    res["new_frames_per_s"] = nb * frames / res["new_s_per_batch"]
    if compile:
        try:
            t = time.perf_counter()
            fast.model = torch.compile(ready)
            with torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False):
                fast(big, dev)
                res["compile_s"] = time.perf_counter() - t
                res["compiled_s_per_batch"] = timer(lambda: fast(big, dev), max(2, reps // 2))
            res["compiled_frames_per_s"] = nb * frames / res["compiled_s_per_batch"]
        except Exception as e:          # reported, not fatal
            res["compiled_error"] = f"{type(e).__name__}: {e}"[:500]
    del big, clips, batch
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2):                               # the first run warms cuDNN's algorithm choice
            sub = ds if i else ds.subset(range(min(len(ds), 2 * nb)))
            r = run_source(src, sub, "video", Path(tmp) / f"r{i}", ("k", "v"), device=dev, progress=False,
                           batch_size=e2e_batch)
        res["end_to_end_frames_per_s"] = r["frames_per_s"]
        res["end_to_end_s"] = r["seconds"]
        for k in ("setup_s", "first_batch_s", "steady_frames_per_s"):      # where the time went
            res[f"end_to_end_{k}"] = r[k]
        res["end_to_end_clips"] = len(ds)
    return res


def case_loop_ratio(n_train: int, pairs: int, warmup: int, frame_size: int, depth: int = 18) -> dict:
    """Goal 3 as ``fit`` runs it: the paper's IMU target (UESTC preset: batch 16, 70 rows, d 512) on
    ``n_train`` random samples, trained one epoch at a time by ``fit`` (cross-entropy only) and by
    ``fit_transfer`` (D-CAT, lambda 1) with ``source_cache=True``, alternating (order alternating
    too), each model continuing its own training. Every transfer step reads its batch's K, V (30
    frames x 512, float16) and MCMA bits from the ``SourceCache`` (memory-mapped rows gathered and
    copied to the device) and runs the loop's objective, checks and stats, as training does. The
    source is the UESTC video preset's model on 30 frames of ``frame_size``^2 (ResNet-``depth``,
    BatchNorm set as in ``paper_source``): it runs once, to build the cache, outside the timed
    part; K and V have the paper's shape whatever the frame size. Per step: each epoch's training
    pass (``train_time_s``: loader, steps, cache reads; not validation) over its steps; the ratio
    per pair of adjacent epochs (this VM's speed drifts). AMP as ``fit`` chooses (bf16 on CUDA).
    The first ``warmup`` pairs are not kept."""
    import math

    from dcatkit.data.dataset import PairedDataset
    from dcatkit.model import build_model
    from dcatkit.presets import get_preset
    from dcatkit.runtime import _amp_dtype
    from dcatkit.train import fit, fit_transfer

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    p = get_preset("uestc", "imu")
    source = paper_source(30, frame_size, depth, dev)
    n = n_train + p.batch_size                                          # + one batch of validation samples
    rng = np.random.default_rng(0)
    ds = PairedDataset({"imu": rng.standard_normal((n, 6, p.window)).astype(np.float32),
                        "video": rng.integers(0, 256, (n, 30, 3, frame_size, frame_size), dtype=np.uint8)},
                       np.arange(n) % 8, [str(i) for i in range(8)])
    train, val = ds.subset(range(n_train)), ds.subset(range(n_train, n))
    torch.manual_seed(0)
    targets = {"unimodal": build_model("imu", 8, (6, p.window), p)}
    targets["cached"] = build_model("imu", 8, (6, p.window), p)
    targets["cached"].load_state_dict(targets["unimodal"].state_dict())       # same start
    steps = math.ceil(n_train / p.batch_size)
    with tempfile.TemporaryDirectory() as cache_dir:
        def epoch(kind: str) -> float:
            if kind == "unimodal":
                res = fit(targets[kind], train, val, preset=p, epochs=1, device=dev, progress=False)
            else:                # the cache is built by the first call, before the timed pass
                res = fit_transfer(targets[kind], source, train, val, lam=1.0, preset=p, epochs=1, device=dev,
                                   progress=False, source_cache=True, cache_dir=cache_dir)
            return float(res.history["train_time_s"].iloc[0]) / steps

        uni, cached = _alternating(epoch, warmup, pairs)
        n_cached = sum((d / "meta.json").is_file() for d in Path(cache_dir).iterdir())   # built once: 1
    amp = _amp_dtype(dev)
    return {"unimodal_step_s": statistics.median(uni), "cached_step_s": statistics.median(cached),
            "unimodal_s": uni, "cached_s": cached, "ratios": _ratio_summary(uni, cached),
            "steps_per_epoch": steps, "n_train": n_train, "cache_folders": n_cached,
            "shapes": {"B": p.batch_size, "T_s": 30, "d": int(source.attention.d_out)},
            "amp": str(amp) if amp else "fp32",
            "device": torch.cuda.get_device_name() if dev.type == "cuda" else platform.processor() or "cpu"}


def case_step_ratio(amp: bool, steps: int, graphs: bool, compile_loss: bool = False) -> dict:
    """One IMU training step at the paper's target shapes (UESTC preset: batch 16, d 512; cached
    source K, V of 30 frames in float16 on the device), unimodal vs + D-CAT loss, in eager mode and
    (CUDA) captured as CUDA graphs (forward, loss, backward and Adam in one replay).
    Not the step ``fit`` runs (that is ``case_loop_ratio``): K, V stay resident on the device (no
    ``SourceCache`` read: memory-mapped rows gathered and copied to the device every step, 0.5 ms
    on the CPU at these shapes), no loader, no per-step checks or stats; and ``fit`` never captures
    CUDA graphs. It shows what the step's kernels cost and what capture would save. Timed with
    CUDA events per block of 10 steps, alternating unimodal / cached blocks, median over blocks.
    ``compile_loss`` (CUDA): also the graphs with the loss under ``torch.compile``, which fuses its
    elementwise kernels (casts, products, sums) around the matrix products: the captured step is
    bound by the number of kernels, and the loss adds ~40 of them (2026-12-04: 1.25x with graphs)."""
    import torch.nn.functional as F

    from dcatkit.losses import cross_attention_loss
    from dcatkit.model import build_model
    from dcatkit.presets import get_preset
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if amp and dev.type == "cuda" \
        else None
    p = get_preset("uestc", "imu")
    timer = _timer(dev)
    out = {"amp": str(dtype) if dtype else "fp32", "device": torch.cuda.get_device_name() if dev.type == "cuda"
           else "cpu"}
    torch.manual_seed(0)
    base = build_model("imu", 8, (6, p.window), p)
    B = p.batch_size
    x, y = torch.randn(B, 6, p.window, device=dev), torch.randint(0, 8, (B,), device=dev)
    k_s, v_s = (torch.randn(B, 30, p.d_attn, device=dev).half() for _ in range(2))
    correct = torch.arange(B, device=dev) % 8 != 0

    def make(transfer: bool, capturable: bool, loss_fn=cross_attention_loss):
        import copy
        model = copy.deepcopy(base).to(dev).train()
        opt = torch.optim.Adam(model.parameters(), lr=p.lr, capturable=capturable)

        def step():           # no autocast weight cache: a captured graph must not depend on it
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None, cache_enabled=False):
                o = model(x)
                loss = F.cross_entropy(o.logits.float(), y)
            if transfer:
                loss = loss + loss_fn(o.k.float(), o.v.float(), k_s.float(), v_s.float(), correct)
            opt.zero_grad(set_to_none=not capturable)
            loss.backward()
            opt.step()
        return step

    def blocks(fns: dict, n_blocks: int, per: int = 10) -> dict:
        t = {k: [] for k in fns}
        for i in range(n_blocks):
            for k in (list(fns) if i % 2 == 0 else list(fns)[::-1]):
                t[k].append(timer(fns[k], per))
        return {k: statistics.median(v) for k, v in t.items()}

    n_blocks = max(2, steps // 10)
    eager = {"unimodal": make(False, False), "cached": make(True, False)}
    for f in eager.values():
        for _ in range(10):
            f()
    r = blocks(eager, n_blocks)
    out["eager"] = {**r, "ratio": r["cached"] / r["unimodal"]}
    if graphs and dev.type == "cuda":
        variants = [("graphs", cross_attention_loss)]
        if compile_loss:
            variants.append(("graphs_compiled_loss", torch.compile(cross_attention_loss, dynamic=False)))
        for name, loss_fn in variants:
            try:
                out[name] = _graph_ratio(make, blocks, n_blocks, loss_fn)
            except Exception as e:
                out[f"{name}_error"] = f"{type(e).__name__}: {e}"[:500]
    return out


def _graph_ratio(make, blocks, n_blocks: int, loss_fn) -> dict:
    """The unimodal and the cached step each captured as one CUDA graph, timed by ``blocks``."""
    replays = {}
    for k, transfer in (("unimodal", False), ("cached", True)):
        step = make(transfer, True, loss_fn)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):                       # warm-up on a side stream, as capture needs (and compiles)
                step()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step()
        replays[k] = g.replay
    for f in replays.values():
        for _ in range(10):
            f()
    r = blocks(replays, n_blocks)
    return {**r, "ratio": r["cached"] / r["unimodal"]}


# ----------------------------------------------------------------------------- paper summaries

def _source_lines(x: dict) -> list[str]:
    """The frozen source's frames/s and fraction of peak (adds ``flops_per_frame`` to ``x``)."""
    flops = x["flops_per_frame"] = _frame_flops(x["depth"], x["size"])
    known = bf16_dense_peak(x["device"])

    def frac(fps):
        rate = f"{fps:,.0f} frames/s = {fps * flops / 1e12:.0f} TFLOP/s"
        if known is None:
            return f"{rate} (no bf16 peak listed for {x['device']!r}: fraction of peak not computed)"
        peak, card = known
        return (f"{rate}, {fps * flops / peak:.1%} of the {card} bf16 dense peak "
                f"({fps * RESNET101_GFLOP_QUOTED * 1e9 / peak:.1%} counting {RESNET101_GFLOP_QUOTED} GFLOP/frame)")
    out = [f"frozen source, ResNet-{x['depth']} {x['size']}^2 x {x['frames']} frames [{x['device']}], "
           f"{flops / 1e9:.1f} GFLOP/frame counted (2 per multiply-add):",
           f"  OLD (LiveSource, batch {x['old_batch_clips']} clips): {frac(x['old_frames_per_s'])}",
           f"  NEW compute (folded BN, cuDNN fused {x['cudnn_fused']}, batch {x['new_batch_clips']} clips): "
           f"{frac(x['new_frames_per_s'])}",
           f"  NEW end to end (run_source, {x['end_to_end_clips']} clips from host memory): "
           f"{frac(x['end_to_end_frames_per_s'])}"]
    if x.get("end_to_end_steady_frames_per_s"):
        out.append(f"    of which set-up {x['end_to_end_setup_s']:.2f} s (source folded, probed, on the GPU), first "
                   f"batch {x['end_to_end_first_batch_s']:.2f} s (buffers pinned, kernels chosen); after them: "
                   f"{frac(x['end_to_end_steady_frames_per_s'])}")
    if "compiled_frames_per_s" in x:
        out.append(f"  NEW + torch.compile: {frac(x['compiled_frames_per_s'])} (compile {x['compile_s']:.0f} s)")
    elif "compiled_error" in x:
        out.append(f"  NEW + torch.compile failed: {x['compiled_error']}")
    out += [f"  note: {note}" for note in x.get("notes", [])]
    return out


def _loop_lines(x: dict) -> list[str]:
    """Goal 3 as fit runs it (``case_loop_ratio``)."""
    sh, rr = x["shapes"], x["ratios"]
    return [f"IMU step as fit runs it [{x['device']}, {x['amp']}] (UESTC target B={sh['B']}; fit vs fit_transfer "
            f"reading a SourceCache of K, V {sh['T_s']} x {sh['d']} float16 every step; {x['steps_per_epoch']} steps "
            f"per epoch, {rr['pairs']} adjacent pairs of epochs): unimodal {x['unimodal_step_s'] * 1e3:.2f} ms, "
            f"cached D-CAT {x['cached_step_s'] * 1e3:.2f} ms -> {rr['median_of_pairs']:.3f}x (median of pairs; "
            f"quartiles {rr['q25']:.2f}-{rr['q75']:.2f}; ratio of sums {rr['of_sums']:.3f}; goal <= 1.15)"]


STEP_MODES = {"eager": "isolated step: K, V resident on the device, no SourceCache read, no loader",
              "graphs": "isolated step as a CUDA graph: fit does not capture graphs",
              "graphs_compiled_loss": "isolated step as a CUDA graph, loss under torch.compile: fit does neither"}


def _step_lines(st: dict) -> list[str]:
    """The isolated step's kernels (``case_step_ratio``): not what fit runs, said on every line."""
    out = []
    for mode, what in STEP_MODES.items():
        if mode in st:
            m = st[mode]
            out.append(f"IMU step, paper shapes [{st['amp']}, {mode}; {what}]: unimodal {m['unimodal'] * 1e3:.2f} ms, "
                       f"cached D-CAT {m['cached'] * 1e3:.2f} ms -> {m['ratio']:.3f}x")
        if f"{mode}_error" in st:
            out.append(f"IMU step [{st['amp']}] {mode} failed: {st[f'{mode}_error']}")
    return out


def _overview_line(x: dict) -> str:
    return (f"paper scale [{x['device']}, {x['amp']}]: source fwd {x['source_frames_per_s']:.0f} "
            f"frames/s; IMU step live {x['step_live_s'] * 1e3:.0f} ms vs cached "
            f"{x['step_cached_s'] * 1e3:.1f} ms ({x['live_over_cached']:.0f}x), unimodal "
            f"{x['step_unimodal_s'] * 1e3:.1f} ms (cached {x['cached_over_unimodal']:.2f}x); "
            f"GPU peak {x.get('gpu_peak_mb', float('nan')):.0f} MB")


# ----------------------------------------------------------------------------- main

def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=["loss", "epochs", "steps", "loader", "paper"],
                    default=None, help="sections to run (default: loss epochs steps loader; paper when CUDA)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved repetitions of compared cases")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--compile", action="store_true", help="paper: also time the source under torch.compile")
    a = ap.parse_args(argv)
    sections = a.only or (["loss", "epochs", "steps", "loader"] + (["paper"] if torch.cuda.is_available() else []))
    q = a.quick
    res: dict = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                             "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                             "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
                 "quick": q}

    def emit(*new: str) -> None:           # each section's (each paper case's) summary as it lands
        print("\n".join(new), flush=True)

    if "loss" in sections:
        B, T, d = (4, 8, 32) if q else (16, 30, 512)
        reps = 3 if q else 50
        mem = {m: isolated("case_loss", method=m, B=B, T=T, d=d, reps=reps) for m in LOSS_METHODS}
        rounds = isolated("case_loss_rounds", B=B, T=T, d=d, reps=reps, rounds=max(a.rounds, 1))
        r = {m: {"seconds": statistics.median(rounds[m]), "rounds_s": rounds[m],
                 "isolated_s": mem[m]["seconds"], "rss_increase_mb": mem[m]["rss_increase_mb"]}
             for m in LOSS_METHODS}
        r["speedup"] = r["dense"]["seconds"] / r["gram"]["seconds"]
        r["speedup_vs_fp32"] = r["dense_fp32"]["seconds"] / r["gram"]["seconds"]
        r["speedup_vs_fp32_per_round"] = [f / g for f, g in zip(rounds["dense_fp32"], rounds["gram"])]
        r["shape"] = {"B": B, "T": T, "d": d}
        res["loss"] = r
        emit(f"loss fwd+bwd B={B} T={T} d={d}: gram {r['gram']['seconds'] * 1e3:.2f} ms; "
             f"d x d float64 {r['dense']['seconds'] * 1e3:.2f} ms ({r['speedup']:.1f}x slower); "
             f"d x d float32 {r['dense_fp32']['seconds'] * 1e3:.2f} ms ({r['speedup_vs_fp32']:.1f}x slower; "
             f"per round {', '.join(f'{x:.1f}' for x in r['speedup_vs_fp32_per_round'])})",
             f"  peak RSS increase: gram {r['gram']['rss_increase_mb']:.0f} MB, d x d float64 "
             f"{r['dense']['rss_increase_mb']:.0f} MB, d x d float32 {r['dense_fp32']['rss_increase_mb']:.0f} MB")

    if "epochs" in sections:
        n, ep, pairs = (160, 2, 2) if q else (2000, 4, max(2, 6 * a.rounds))
        with tempfile.TemporaryDirectory() as cache:
            runs = {kind: isolated("case_epoch", kind=kind, n_samples=n, epochs=ep, cache_dir=cache)
                    for kind in ("unimodal", "live", "cached")}
            paired = isolated("case_epoch_pairs", n_samples=n, pairs=pairs, cache_dir=cache, warmup=1 if q else 2)
        r = {k: {"epoch_s": v["epoch_s"], "train_s": v["train_s"], "peak_rss_mb": v["peak_rss_mb"]}
             for k, v in runs.items()}
        r["live_over_unimodal"] = r["live"]["epoch_s"] / r["unimodal"]["epoch_s"]
        r["paired"] = paired
        r["cached_over_unimodal"] = paired["summary"]["median_of_pairs"]
        r["n_train"] = runs["unimodal"]["n_train"]
        res["epochs"] = r
        emit(f"epoch (synthetic preset, video->IMU, {r['n_train']} train samples, incl. validation), "
             "one process per kind:",
             *(f"  {k:9s} {r[k]['epoch_s']:7.2f} s/epoch (train part {r[k]['train_s']:6.2f} s), "
               f"peak RSS {r[k]['peak_rss_mb']:6.0f} MB" for k in ("unimodal", "live", "cached")),
             f"  live / unimodal: {r['live_over_unimodal']:.2f}x",
             f"  cached / unimodal, {pairs} adjacent pairs of epochs in one process: median "
             f"{r['cached_over_unimodal']:.3f}x (quartiles {paired['summary']['q25']:.2f}-"
             f"{paired['summary']['q75']:.2f}; ratio of sums {paired['summary']['of_sums']:.3f}; per pair: "
             f"{', '.join(f'{x:.2f}' for x in paired['ratios'])})")

    if "steps" in sections:
        r = isolated("case_target_steps", dataset="uestc", batch=16, t_source=30, steps=10 if q else 200)
        parts = isolated("case_step_parts", n_samples=160 if q else 2000, epochs=2 if q else 4)
        res["steps"] = {"paper": r, "synthetic": parts}
        sh, rr = r["shapes"], r["ratios"]
        emit(f"IMU step, paper shapes (B={sh['B']}, T_t={sh['T_t']}, T_s={sh['T_s']}, d={sh['d']}), "
             f"{rr['pairs']} alternating pairs: unimodal {r['unimodal_s'] * 1e3:.1f} ms, + D-CAT loss on "
             f"cached source {r['cached_s'] * 1e3:.1f} ms -> {rr['median_of_pairs']:.3f}x (median of pairs; "
             f"quartiles {rr['q25']:.2f}-{rr['q75']:.2f}; ratio of sums {rr['of_sums']:.3f})")
        rr = parts["ratios"]
        emit(f"IMU step inside synthetic-preset training, {rr['pairs']} alternating pairs: cached D-CAT / unimodal "
             f"{rr['median_of_pairs']:.3f}x (median of pairs; quartiles {rr['q25']:.2f}-{rr['q75']:.2f}; ratio of "
             f"sums {rr['of_sums']:.3f}); median ms per part:",
             *(f"  {k:9s} " + "  ".join(f"{p} {v * 1e3:5.2f}" for p, v in parts[k].items())
               for k in ("unimodal", "cached")))

    if "loader" in sections:
        try:
            import av  # noqa: F401
            import soundfile  # noqa: F401
        except ImportError:
            emit("loader: skipped (needs PyAV and soundfile)")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                root, cache = Path(tmp) / "vgg", Path(tmp) / "cache"
                _make_loader_fixture(root, per_class=2 if q else 6, seconds=2.0 if q else 10.0,
                                     size=64 if q else 320)
                fs = 32 if q else 224
                build = isolated("case_loader", mode="cached", root=str(root), cache_dir=str(cache), frame_size=fs)
                runs = {"decode": [], "cached": []}
                for _ in range(a.rounds):
                    for m in runs:
                        runs[m].append(isolated("case_loader", mode=m, root=str(root), cache_dir=str(cache),
                                                frame_size=fs))
            r = {m: {"samples_per_s": statistics.median(x["samples_per_s"] for x in v),
                     "peak_rss_mb": max(x["peak_rss_mb"] for x in v)} for m, v in runs.items()}
            r["cache_build_s"] = build["seconds"]
            r["speedup"] = r["cached"]["samples_per_s"] / r["decode"]["samples_per_s"]
            r["samples"] = build["samples"]
            res["loader"] = r
            emit(f"loader (VGGSound layout, {r['samples']} windows, {fs}x{fs} frames): decode "
                 f"{r['decode']['samples_per_s']:.1f} samples/s, cache {r['cached']['samples_per_s']:.1f} "
                 f"samples/s -> {r['speedup']:.1f}x (one-off cache build {r['cache_build_s']:.1f} s)")

    if "paper" in sections:
        kw = dict(frames=2, size=64, batch=2, steps=1, depth=18) if q else \
            dict(frames=30, size=224, batch=8, steps=5, depth=101)
        src_kw = dict(frames=2, size=64, depth=18, old_batch=2, reps=2, n_clips=6, compile=False,
                      e2e_batch=2) if q else \
            dict(frames=30, size=224, depth=101, old_batch=8, reps=6, n_clips=34 * 12, compile=a.compile)
        loop_kw = dict(n_train=32, pairs=2, warmup=0, frame_size=16) if q else \
            dict(n_train=50 * 16, pairs=8, warmup=2, frame_size=16)
        # A lent GPU gives one call under a time limit: the cases run in the order of the goals
        # (source frames/s; the step ratio as fit runs it, then the isolated step's kernels and CUDA
        # graphs; then the fp32 / AMP overview measured before). Each result is written to the JSON
        # and its summary printed as it lands, so a call cut short keeps them; a case that fails is
        # stored as "<case>_error" and the next one runs.
        r = res["paper"] = {"settings": kw, "steps": {}}
        failed = res.setdefault("failed_cases", [])

        def case(into: dict, key: str, fn_name: str, summary, **kwargs) -> None:
            try:
                out = isolated(fn_name, **kwargs)
            except Exception as e:        # the child died or raised: recorded, and the bench goes on
                into[f"{key}_error"] = f"{type(e).__name__}: {e}"[:2000]
                failed.append(f"{fn_name} ({key})")
                _landed(res, a.json, into, f"{key}_error", into[f"{key}_error"])
                emit(f"paper case {fn_name} ({key}) failed: {into[f'{key}_error']}")
                return
            try:
                new = summary(out)        # may add derived figures (the source's FLOPs) to ``out``
            except Exception as e:
                new = [f"paper case {fn_name} ({key}): its summary failed ({type(e).__name__}: {e}); raw result in "
                       f"{a.json}"]
            _landed(res, a.json, into, key, out)
            emit(*new)

        case(r, "source", "case_source_paths", _source_lines, **src_kw)
        case(r, "loop", "case_loop_ratio", _loop_lines, **loop_kw)
        for k, amp in (("fp32", False), ("amp", True)):
            case(r["steps"], k, "case_step_ratio", _step_lines, amp=amp, steps=20 if q else 300, graphs=True,
                 compile_loss=not q)
        for k, amp in (("fp32", False), ("amp", True)):
            case(r, k, "case_paper", lambda x: [_overview_line(x)], amp=amp, **kw)
        if failed:
            emit(f"paper: {len(failed)} case(s) failed: {', '.join(failed)} (each stored as <case>_error in {a.json})")

    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {a.json}")
    return res


if __name__ == "__main__":
    sys.exit(1 if main().get("failed_cases") else 0)     # every case ran; the exit status says one failed
