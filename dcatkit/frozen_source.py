"""The frozen source: run live (``LiveSource``) or read from a cache (``SourceCache``).

Everything a transfer run takes from its frozen source model(s) lives here:
``LiveSource`` runs the frozen model on every batch (the paper's set-up);
``SourceCache`` reads the same outputs from a cache built once; ``_frozen_source``
picks one of them for a source ``Classifier`` (``fit_transfer``'s ``source_cache``),
``as_source_output`` accepts what any other callable source returns, and with several
sources ``_source_names`` / ``_source_lams`` give each source its modality and lambda.
(``dcatkit.source_cache`` is this module under its older name.)

The cache: transfer training then does not run the source.
The source is frozen (eval mode, no gradients) and its input for a sample never
changes, so K_s, V_s and "did the source classify this sample correctly" are
constants per sample. ``SourceCache.build`` runs the source once over a dataset
and stores, per sample id, the ``fields`` the transfer objective reads
(``objectives.Objective.needs``; K and V by default)::

    k, v     float16 (N, T_s, d)   -- the source's keys and values (not K^T V: K and V
                                     together, 2 T_s d values, are fewer than its d^2 when T_s < d/2)
    logits   float32 (N, C)        -- for logit distillation (kd)
    pooled   float32 (N, d)        -- its pooled attention output (fitnet, contrastive)
    correct  bool    (N,)          -- the MCMA indicator of Eq. (16), always

as ``.npy`` files opened memory-mapped. The folder name is a hash of the source's
weights and settings (its config, e.g. an audio front end's hop length, and its tensors'
shapes and dtypes), the dataset's sample ids, labels (the MCMA bit depends on them) and inputs
(every byte), the source modality, the stored fields and a format version, so a different checkpoint, split, labelling or
preprocessing never reuses a stale cache. A cache is built in a temporary folder and
renamed into place when complete: an interrupted build is never mistaken for a
finished one, and a finished one is never removed or replaced (see
``distributed.publish_folder``); the temporary folder of a killed build is removed by
the next build (``data.cache.build_folder``), and a damaged cache file (truncated,
missing, of the wrong shape) is a ValueError naming it, never a silent reuse. Under torchrun one process per node builds it while
the node's other processes wait.

A ``SourceCache`` is called like ``LiveSource``:
``cache(batch, device) -> objectives.SourceOutput`` (fields not stored are None).

Building runs the source as inference, with a batch of its own (``batch_size=None``,
``inference_batch``: on CUDA 1024 frames' worth of clips for video and 256 samples otherwise;
64 samples on the CPU), not the training batch. On CUDA
(``fast``, the default there): rows are copied by a few threads straight from the
(memory-mapped) arrays into pinned buffers, uploaded as uint8 on a copy stream while the
previous batch computes, and normalised on the GPU; every batch has one shape (the last
one is padded, its padding dropped), cuDNN picks its algorithms once (``benchmark``);
a frame ResNet runs with its BatchNorms folded into the convolutions (``FoldedResNet``:
eval-mode BN is an affine map, so the folded network is the same function up to
rounding) in channels_last and AMP (bf16), where cuDNN's fused convolution + bias
(+ residual) + ReLU kernels are used when they agree with the unfused network on a probe
batch. ``compile=True`` also runs it through ``torch.compile`` (an error falls back to
eager). On the CPU the source runs the same computation as ``LiveSource``, in batches of
its own: float32 outputs may differ from a live batch's in the last bit (BLAS rounding
depends on the batch size), and the MCMA bits agree except on an exact tie of two logits.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import distributed as dist
from . import provenance
from .data.cache import build_folder, open_npy, read_json
from .losses import check_lam
from .model import Classifier
from .objectives import SOURCE_FIELDS, SourceOutput
from .runtime import _amp_dtype, _to, resolve_device


# ------------------------------------------------------------------ the live source


class LiveSource:
    """The frozen source model, run on every batch (the paper's set-up).

    Called with a batch, returns an ``objectives.SourceOutput``: k, v (B, T_s, d),
    correct (B,) bool (the MCMA indicator, Eq. 16), logits (B, C) and pooled
    (B, d), all float32 — everything a transfer objective and the mask need.
    The model is put in eval mode with gradients off; it never changes.
    ``batch_modalities``: the inputs it reads from a batch (a source without this
    attribute gets batches with every modality).
    """

    def __init__(self, model: Classifier, modality: str):
        self.model, self.modality = model, modality
        self.batch_modalities = (modality,)
        self.d_attn = model.attention.d_out               # size of its K, V and pooled output
        model.eval()
        model.requires_grad_(False)

    def to(self, device):
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, batch: dict, device: torch.device):
        self.model.eval()
        amp = _amp_dtype(device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = self.model(_to(batch[self.modality], device))
        correct = out.logits.argmax(1) == _to(batch["label"], device)
        return SourceOutput(out.k.float(), out.v.float(), correct, out.logits.float(), out.pooled.float())


def as_source_output(x) -> SourceOutput:
    """A source's answer as a ``SourceOutput``; a plain (k, v, correct) tuple (what
    sources returned before objectives read logits and pooled outputs) is accepted."""
    if isinstance(x, SourceOutput):
        return x
    if isinstance(x, tuple) and len(x) == 3:
        return SourceOutput(*x)
    raise TypeError(f"a source must return an objectives.SourceOutput (or a (k, v, correct) tuple), "
                    f"got {type(x).__name__}")


# ------------------------------------------------------------------ the cached source

DEFAULT_DIR = Path(os.environ.get("DCATKIT_CACHE", Path.home() / ".cache" / "dcatkit")) / "source"


def _hash_weights(model: torch.nn.Module) -> str:
    """sha256 of the state dict's names and tensor bytes (not their shapes or dtypes, nor the
    model's config: ``_hash_settings``). What a resumed run's ``run.source`` was always."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b"")
    return h.hexdigest()


def _hash_settings(model: torch.nn.Module) -> str:
    """sha256 of what, beside its weight bytes, makes a model's outputs: its ``config`` (JSON with
    sorted keys; e.g. an audio front end's hop length, which sets T_s and has no weight) and every
    tensor's name, shape and dtype (equal bytes in another shape are another model)."""
    config = getattr(model, "config", None)
    tensors = [(name, list(t.shape), str(t.dtype)) for name, t in sorted(model.state_dict().items())]
    return hashlib.sha256(json.dumps([config, tensors], sort_keys=True, default=str).encode()).hexdigest()


def _hash_model(model: torch.nn.Module) -> str:
    """The source's part of the cache key: its weights and its settings (``_hash_weights``,
    ``_hash_settings``): two sources with equal weights and another config never share a cache."""
    return hashlib.sha256(f"{_hash_weights(model)}:{_hash_settings(model)}".encode()).hexdigest()


def _hash_data(ds, modality: str, batch_size: int = 64) -> str:
    """Sample ids + labels + input shape + the bytes of every input, read ``batch_size`` at a
    time (one input changed, e.g. one clip re-extracted, is another cache). Hashing reads
    the inputs once, as building the cache does, and costs a fraction of running the source
    over them. The same key as the older 32-input probe for datasets of <= 32 samples (the
    same bytes); a larger one gets a new key: its old cache folder is never read."""
    h = hashlib.sha256()
    h.update(json.dumps([list(map(str, ds.ids)), list(ds.input_shape(modality))]).encode())
    h.update(np.asarray(ds.labels, dtype=np.int64).tobytes())
    arr = ds.arrays[modality]
    for a in range(0, len(ds), batch_size):
        h.update(np.ascontiguousarray(np.asarray(arr[a:a + batch_size])))   # an array's rows: hashed in place
    return h.hexdigest()


VERSION = "v4"     # v3: the stored fields are part of the key and listed in meta.json; v4: and the source's
                   # config and tensor shapes / dtypes (_hash_model), not only its weight bytes
DTYPES = {"k": np.float16, "v": np.float16, "logits": np.float32, "pooled": np.float32}


def _fields(fields) -> tuple[str, ...]:
    """The requested fields in a canonical order; unknown names are an error."""
    fields = tuple(fields)
    bad = [f for f in fields if f not in SOURCE_FIELDS]
    if bad or not fields:
        raise ValueError(f"source cache fields must be a non-empty subset of {SOURCE_FIELDS}, got {fields}")
    return tuple(f for f in SOURCE_FIELDS if f in fields)


def cache_key(model: torch.nn.Module, ds, modality: str, fields=("k", "v")) -> str:
    h = hashlib.sha256()
    for part in (_hash_model(model), _hash_data(ds, modality), modality, VERSION, ",".join(_fields(fields))):
        h.update(part.encode())
    return h.hexdigest()[:24]


def built_with(device, fast: bool, compile: bool = False) -> dict:
    """How a cache's values were computed, as its meta.json records them (``built``): the device
    type and name, the fast path (folded BatchNorm; on CUDA also AMP in ``dtype``, channels_last)
    and torch's version. Not part of the key: a finished cache is read wherever its folder is,
    so the runs of one sweep share one source; a run on another device type is told (``SourceCache.build``)."""
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else provenance.cpu_name()
    amp = _amp_dtype(device) if fast else None
    return {"device": device.type, "device_name": name, "fast": bool(fast), "compile": bool(compile),
            "dtype": str(amp or torch.float32).replace("torch.", ""), "torch": torch.__version__}


class SourceCache:
    batch_modalities = ()     # reads only the batch's sample ids, no inputs (see LiveSource)

    def __init__(self, folder: Path, modality: str):
        self.folder, self.modality = Path(folder), modality
        meta = read_json(self.folder / "meta.json")
        try:               # valid JSON of another shape (shapes a list, ids a number, a field without its shape)
            ok = (isinstance(meta, dict) and {"fields", "ids", "shapes"} <= set(meta)
                  and isinstance(meta["fields"], list) and all(meta["shapes"][f][0] == len(meta["ids"])
                                                               for f in meta["fields"]))
        except (TypeError, KeyError, IndexError):
            ok = False
        if not ok:
            raise ValueError(f"{self.folder / 'meta.json'} is not a source cache's meta data (keys fields, ids, "
                             f"shapes: a list of fields, each with a shape of one row per id); delete {self.folder} and it is rebuilt on the next run")
        self.fields = tuple(meta["fields"])
        self.built = meta.get("built")          # how its values were computed (built_with); None: an older cache
        self.arrays = {f: open_npy(self.folder / f"{f}.npy", meta["shapes"][f]) for f in self.fields}  # DTYPES
        self.correct = open_npy(self.folder / "correct.npy", (len(meta["ids"]),), mmap=False)  # (N,) bool
        dims = [a.shape[-1] for f, a in self.arrays.items() if f != "logits"]
        self.d_attn = dims[0] if dims else None                            # size of K, V and pooled
        self.index = {sid: i for i, sid in enumerate(meta["ids"])}
        if len(self.index) != len(meta["ids"]):      # a row found by id: repeated ids read the last one's
            raise ValueError(f"the source cache {self.folder} holds {len(meta['ids'])} samples under "
                             f"{len(self.index)} ids: sample ids must be unique (delete the folder; build it "
                             "from a dataset whose ids are unique)")

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, ids) -> np.ndarray:
        try:
            return np.fromiter((self.index[i] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as e:
            raise KeyError(f"sample id {e.args[0]!r} is not in the source cache {self.folder}; the cache "
                           "covers the dataset it was built for") from None

    def __call__(self, batch: dict, device: torch.device) -> SourceOutput:
        r = self.rows(batch["id"])

        def put(a: np.ndarray) -> torch.Tensor:       # to a GPU from pinned memory: a copy from pageable
            t = torch.from_numpy(a)                  # memory makes the CPU wait for the GPU's queue
            return (t.pin_memory() if device.type == "cuda" else t).to(device, non_blocking=True)

        got = {f: put(a[r]).float() for f, a in self.arrays.items()}
        c = put(self.correct[r])
        return SourceOutput(got.get("k"), got.get("v"), c, got.get("logits"), got.get("pooled"))

    @classmethod
    def build(cls, source: torch.nn.Module, ds, modality: str, cache_dir: str | Path | None = None,
              batch_size: int | None = None, device="cpu", progress: bool = True, fields=("k", "v"),
              fast: bool | None = None, compile: bool = False) -> "SourceCache":
        """Run the frozen ``source`` once over ``ds`` (or reuse a finished cache with the same key)
        and store ``fields`` (from ``objectives.SOURCE_FIELDS``) and the MCMA bit.
        Under torchrun local rank 0 builds and the node's other processes wait, then all read it.
        ``batch_size``: samples per inference batch (None: see ``inference_batch``); ``fast``
        (None: on CUDA) and ``compile``: see the module docstring."""
        root = Path(cache_dir) if cache_dir is not None else Path(DEFAULT_DIR)
        fields = _fields(fields)
        why = _uncacheable(ds)
        if why:
            raise ValueError(f"SourceCache.build: {why}")
        folder = root / dist.broadcast_object(cache_key(source, ds, modality, fields) if dist.is_main() else None)
        reused = (folder / "meta.json").is_file()
        if dist.is_local_main() and not reused:
            with build_folder(root, ".building-") as tmp:      # removes killed builds' leftovers first
                run_source(source, ds, modality, tmp, fields, batch_size=batch_size, device=device,
                           progress=progress, fast=fast, compile=compile)
                dist.publish_folder(tmp, folder, "meta.json")   # keeps a folder another process finished
        dist.barrier()
        cache = cls(folder, modality)
        built = cache.built
        if reused and built is not None and built.get("device") != torch.device(device).type and dist.is_main():
            print(f"dcatkit: the source cache {folder} was built on {built['device']} ({built.get('device_name')}, "
                  f"{built.get('dtype')}{', fast path' if built.get('fast') else ''}) and is read on "
                  f"{torch.device(device).type}: this run trains against those stored source outputs, which "
                  "differ by rounding from what the source computes here (delete the folder to build it here)")
        return cache


# ------------------------------------------------------------------ running the source fast


def inference_batch(ds, modality: str, device) -> int:
    """Samples per inference batch: on CUDA 1024 frames' worth of clips for video
    (34 clips of 30 frames), 256 samples otherwise; 64 on the CPU."""
    if torch.device(device).type != "cuda":
        return 64
    shape = ds.input_shape(modality)
    return max(1, 1024 // shape[0]) if len(shape) == 4 else 256


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """``conv`` followed by eval-mode ``bn`` as one convolution with a bias."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    return fuse_conv_bn_eval(conv.eval(), bn.eval())


class FoldedResNet(nn.Module):
    """A torchvision ResNet (BasicBlock or Bottleneck; ``fc`` replaced by Identity) in eval
    mode with every BatchNorm folded into the convolution before it: the same function as
    the ResNet (up to rounding), without the BatchNorm passes over the activations.
    ``fused=True`` (CUDA, set by ``prepare_source`` after a probe) runs each convolution with
    its bias, residual and ReLU as one cuDNN kernel (``torch.cudnn_convolution_relu`` /
    ``cudnn_convolution_add_relu``) in ``dtype``."""

    def __init__(self, resnet: nn.Module):
        super().__init__()
        if not isinstance(resnet.fc, nn.Identity):
            raise ValueError("FoldedResNet folds a frame encoder's backbone, whose fc is Identity")
        self.stem = _fold(resnet.conv1, resnet.bn1)
        self.maxpool = resnet.maxpool
        self.blocks = nn.ModuleList()
        for layer in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
            for blk in layer:
                n = 3 if hasattr(blk, "conv3") else 2                     # Bottleneck / BasicBlock
                b = nn.Module()
                b.convs = nn.ModuleList(_fold(getattr(blk, f"conv{i}"), getattr(blk, f"bn{i}"))
                                        for i in range(1, n + 1))
                b.down = None if blk.downsample is None else _fold(blk.downsample[0], blk.downsample[1])
                self.blocks.append(b)
        self.fused, self.dtype = False, None

    def _conv(self, x, c: nn.Conv2d, relu: bool, z=None):
        if self.fused and relu:
            w, bias = c.weight, c.bias                                    # in self.dtype already
            if z is None:
                return torch.cudnn_convolution_relu(x, w, bias, c.stride, c.padding, c.dilation, c.groups)
            return torch.cudnn_convolution_add_relu(x, w, z, 1.0, bias, c.stride, c.padding, c.dilation,
                                                    c.groups)
        y = F.conv2d(x, c.weight, c.bias, c.stride, c.padding, c.dilation, c.groups)
        if z is not None:
            y = y + z
        return F.relu(y) if relu else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            x = x.to(self.dtype)
        x = self.maxpool(self._conv(x, self.stem, True))
        for b in self.blocks:
            identity = x if b.down is None else self._conv(x, b.down, False)
            for c in b.convs[:-1]:
                x = self._conv(x, c, True)
            x = self._conv(x, b.convs[-1], True, z=identity.to(x.dtype))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def prepare_source(source: torch.nn.Module, device, fuse: bool = True, log=print) -> torch.nn.Module:
    """The frozen ``source`` as it runs to build a cache on ``device`` (a copy; the source is
    not touched): a frame encoder's ResNet folded (``FoldedResNet``), channels_last on CUDA, and
    there cuDNN's fused kernels when ``fuse`` and they agree with the unfused copy on a probe
    batch. Other sources: a copy on ``device``."""
    device = torch.device(device)
    model = copy.deepcopy(source).eval().requires_grad_(False)
    enc = model.encoder
    backbone = getattr(enc, "backbone", None)
    if backbone is not None and hasattr(backbone, "layer4") and isinstance(getattr(backbone, "fc", None), nn.Identity):
        enc.backbone = FoldedResNet(backbone).eval()
        if device.type == "cuda":
            enc.channels_last = True
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        if fuse and isinstance(getattr(enc, "backbone", None), FoldedResNet):
            _try_fused(enc.backbone, device, log)
    return model


def _try_fused(net: FoldedResNet, device: torch.device, log) -> bool:
    """Switch ``net`` to cuDNN's fused kernels if they run and agree with the unfused network
    (AMP) on a probe batch of 2 random 64x64 frames; else keep it unfused and say why."""
    dtype = _amp_dtype(device)
    x = torch.rand(2, 3, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
            ref = net(x).float()
            fused = copy.deepcopy(net).to(dtype)
            fused.fused, fused.dtype = True, dtype
            got = fused(x).float()
            del fused
        err = ((got - ref).norm() / ref.norm().clamp(min=1e-12)).item()
        if not err < 2e-2:
            raise ValueError(f"relative difference {err:.2e} to the unfused network")
        net.to(dtype)                        # weights cast once, not at every call
        net.fused, net.dtype = True, dtype
        return True
    except Exception as e:                       # not available for this dtype / GPU / build
        log(f"dcatkit: source cache: cuDNN fused convolutions not used ({type(e).__name__}: {e}); "
            "folded, unfused kernels instead")
        return False


def _rows_into(arr, start: int, stop: int, out: np.ndarray, threads) -> None:
    """``arr[start:stop]`` copied into ``out[:stop - start]`` (a pinned buffer's view), by chunks
    in ``threads`` (numpy releases the GIL while it copies)."""
    base, index = (arr.base, arr.index) if hasattr(arr, "index") and hasattr(arr, "base") \
        and isinstance(getattr(arr, "base", None), np.ndarray) else (arr, None)

    def chunk(a: int, b: int) -> None:
        if index is not None:
            np.take(base, index[a:b], axis=0, out=out[a - start:b - start])
        elif isinstance(base, np.ndarray):
            out[a - start:b - start] = base[a:b]
        else:
            out[a - start:b - start] = np.asarray(base[np.arange(a, b)])

    n = stop - start
    parts = max(1, min(8, n // 2)) if threads is not None else 1
    cuts = np.linspace(start, stop, parts + 1).astype(int)
    if parts == 1:
        chunk(start, stop)
    else:
        list(threads.map(lambda ab: chunk(*ab), zip(cuts[:-1], cuts[1:])))


def _cpu_batches(ds, modality, batch_size):
    """(inputs, labels, n) per batch on the CPU, as the DataLoader's collate makes them
    (uint8 stays uint8, other dtypes become float32)."""
    arr, labels = ds.arrays[modality], np.asarray(ds.labels)
    for a in range(0, len(ds), batch_size):
        b = min(a + batch_size, len(ds))
        x = torch.from_numpy(np.ascontiguousarray(np.asarray(arr[np.arange(a, b)])))
        yield (x if x.dtype == torch.uint8 else x.float()), torch.from_numpy(labels[a:b]).long(), b - a


def _cuda_batches(ds, modality, batch_size, device, n_buffers: int = 3):
    """(inputs on ``device``, labels on ``device``, n valid) per batch, every batch ``batch_size``
    rows (the last one padded with zeros). A thread pool fills pinned buffers ``n_buffers``
    batches ahead; each is uploaded on a copy stream the compute stream waits for."""
    arr, labels = ds.arrays[modality], np.asarray(ds.labels)
    shape, dtype = tuple(ds.input_shape(modality)), np.dtype(getattr(arr, "dtype", np.float32))
    n = len(ds)
    starts = list(range(0, n, batch_size))
    pinned = [torch.empty((batch_size, *shape), dtype=torch.from_numpy(np.zeros(0, dtype)).dtype).pin_memory()
              for _ in range(min(n_buffers, len(starts)))]
    copied = [None] * len(pinned)            # event: the upload out of that pinned buffer finished
    copy_stream = torch.cuda.Stream(device)
    compute = torch.cuda.current_stream(device)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as threads, \
            concurrent.futures.ThreadPoolExecutor(max_workers=len(pinned)) as fillers:
        def fill(j: int, slot: int):
            if copied[slot] is not None:
                copied[slot].synchronize()
            a, b = starts[j], min(starts[j] + batch_size, n)
            buf = pinned[slot].numpy()
            _rows_into(arr, a, b, buf, threads)
            if b - a < batch_size:
                buf[b - a:] = 0
            return b - a

        pending = {j: fillers.submit(fill, j, j % len(pinned)) for j in range(len(pinned))}
        for j, a in enumerate(starts):
            slot = j % len(pinned)
            m = pending.pop(j).result()
            with torch.cuda.stream(copy_stream):
                x = pinned[slot].to(device, non_blocking=True)
                ev = torch.cuda.Event()
                ev.record(copy_stream)
            copied[slot] = ev
            compute.wait_event(ev)
            x.record_stream(compute)
            y = torch.zeros(batch_size, dtype=torch.long)
            y[:m] = torch.from_numpy(labels[a:a + m])
            if j + len(pinned) < len(starts):
                pending[j + len(pinned)] = fillers.submit(fill, j + len(pinned), slot)
            yield (x if x.dtype == torch.uint8 else x.float()), y.to(device, non_blocking=True), m


def run_source(source: torch.nn.Module, ds, modality: str, out_dir: Path, fields, *, batch_size=None,
               device="cpu", progress: bool = True, fast: bool | None = None, compile: bool = False) -> dict:
    """Run the frozen ``source`` over every sample of ``ds`` in order and write ``fields``,
    ``correct.npy`` and ``meta.json`` (last) into ``out_dir``. Returns the meta data plus
    ``seconds`` and ``frames_per_s`` of the whole run (set-up, inputs read, source run, outputs
    written), and its parts: ``setup_s`` (the source prepared and on the device),
    ``first_batch_s`` (until the first batch is stored: buffers pinned, kernels chosen; the
    second batch has run by then) and ``steady_frames_per_s``: the ``steady_frames`` (those of the
    third batch on) over the time after that, the rate a long run approaches (None with fewer
    than three batches)."""
    import time

    from tqdm.auto import tqdm

    device = torch.device(device)
    fields = _fields(fields)
    fast = device.type == "cuda" if fast is None else bool(fast)
    batch_size = inference_batch(ds, modality, device) if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = prepare_source(source, device) if fast else source
    live = LiveSource(model, modality).to(device)
    if compile:
        live.model = torch.compile(model)
    t_ready, t_first, n_first = time.perf_counter(), None, 0
    batches = _cuda_batches(ds, modality, batch_size, device) if fast and device.type == "cuda" \
        else _cpu_batches(ds, modality, batch_size)
    bench = torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False,
                                       allow_tf32=torch.backends.cudnn.allow_tf32) \
        if device.type == "cuda" else contextlib.nullcontext()
    n, out, cs = 0, {}, np.zeros(len(ds), dtype=bool)

    def store(got, m):                   # copies to the CPU: waits for that batch's GPU work
        nonlocal n
        for f in fields:
            x = getattr(got, f)[:m]
            if f not in out:   # shapes known after the first batch
                out[f] = np.lib.format.open_memmap(out_dir / f"{f}.npy", "w+", DTYPES[f],
                                                   (len(ds), *x.shape[1:]))
            arr = x.cpu().numpy()
            if DTYPES[f] == np.float16 and arr.size:          # K and V: stored at half precision
                top = float(np.abs(arr).max())
                if not top <= np.finfo(np.float16).max:
                    raise ValueError(f"the source's {f.upper()} reaches {top:.3g} (or is not finite), beyond "
                                     f"float16's {float(np.finfo(np.float16).max):.0f}: the cache would hold inf where "
                                     "the live source does not; train with source_cache=False (the live source)")
            out[f][n:n + m] = arr
        cs[n:n + m] = got.correct[:m].cpu().numpy()
        n += m

    with bench:
        previous = None
        bar = tqdm(total=len(ds), desc=f"caching {modality} source", disable=not progress, leave=False)
        for x, y, m in batches:
            batch = {modality: x, "label": y}
            try:
                got = live(batch, device)
            except Exception as e:
                if not (compile and live.model is not model):
                    raise
                print(f"dcatkit: source cache: torch.compile failed ({type(e).__name__}: {e}); eager")
                live.model = model
                got = live(batch, device)
            if previous is not None:     # the GPU runs this batch while the last one is stored
                store(*previous)
                bar.update(previous[1])
                if t_first is None:      # batches 1 and 2 have run, 1 is stored: the steady state
                    t_first, n_first = time.perf_counter(), n + m   # counts batches 3, 4, ...
            previous = (got, m)
        if previous is not None:
            store(*previous)
            bar.update(previous[1])
        bar.close()
    for a in out.values():
        a.flush()
    t_done = time.perf_counter()
    np.save(out_dir / "correct.npy", cs)
    meta = {"ids": list(map(str, ds.ids)), "modality": modality, "fields": list(fields),
            "shapes": {f: list(a.shape) for f, a in out.items()}, "source_accuracy": float(cs.mean()),
            "built": built_with(device, fast, compile)}
    (out_dir / "meta.json").write_text(json.dumps(meta))          # written last: marks completion
    out.clear()                        # the memmaps closed before the folder is published
    seconds = time.perf_counter() - t0
    shape = ds.input_shape(modality)
    per = shape[0] if len(shape) == 4 else 1               # frames per sample (a clip's frames)
    steady = (len(ds) - n_first) * per if t_first is not None and n_first < len(ds) else 0
    return {**meta, "seconds": seconds, "frames_per_s": len(ds) * per / seconds, "batch_size": batch_size,
            "setup_s": t_ready - t0, "first_batch_s": (t_first if t_first is not None else t_done) - t_ready,
            "steady_frames": steady, "steady_frames_per_s": steady / (t_done - t_first) if steady else None}


# ------------------------------------------------------------------ one source or several, as training reads them


def _source_names(source, source_modality) -> tuple[bool, list, list]:
    """``fit_transfer``'s ``source`` (one or a list) and ``source_modality`` (one name, a
    list, or None: each source's own) as (several?, sources, one modality name each);
    several sources need one distinct modality each."""
    multi = isinstance(source, (list, tuple))
    srcs = list(source) if multi else [source]
    if not srcs:
        raise ValueError("fit_transfer needs at least one source; got an empty list")
    names = source_modality if isinstance(source_modality, (list, tuple)) else [source_modality] * len(srcs)
    if len(names) != len(srcs):
        raise ValueError(f"source_modality names {len(names)} modalities for {len(srcs)} sources: give one per source")
    owns = [s.config.get("modality") if isinstance(s, Classifier) else None for s in srcs]
    for i, (n, own) in enumerate(zip(names, owns)):   # a model reads the modality it was trained on, never another
        fix = [o or m for o, m in zip(owns, names)] if multi else repr(own)
        provenance.check_modality(own, n, who=f"source {i}" if multi else "the source",
                                  advice=f"source_modality names {n!r} for it (and it would mask by them): give each "
                                         f"source its own modality (source_modality={fix}, or leave it out: each "
                                         "model's own)")
    names = [n or (s.config["modality"] if isinstance(s, Classifier) else getattr(s, "modality", None))
             for n, s in zip(names, srcs)]
    if multi and (None in names or len(set(names)) != len(names)):
        raise ValueError(f"several sources need one distinct modality each (at most one source per modality), got "
                         f"{names}; pass source_modality=[...] for sources that do not say theirs")
    return multi, srcs, names


def _source_id(source) -> str:
    """What identifies a source in a resumable run's settings: a ``Classifier``'s weights
    (hashed), a cache's folder, else the source's type name. Its settings beyond the weights
    are ``_source_settings`` (a key field of their own, so states saved before it resume)."""
    return _hash_weights(source) if isinstance(source, Classifier) else str(getattr(source, "folder", type(source).__name__))


def _source_settings(source) -> str | None:
    """A ``Classifier`` source's config and tensor shapes / dtypes (hashed, ``_hash_settings``):
    with equal weights, another hop length gives other K / V. None for other sources."""
    return _hash_settings(source) if isinstance(source, Classifier) else None


def _source_lams(lam, names: list) -> list[float]:
    """One lambda per source: ``lam`` a number (the same for all) or a dict by source
    modality that names every source and nothing else."""
    if not isinstance(lam, dict):
        return [check_lam(lam)] * len(names)
    extra, missing = sorted(set(lam) - set(names), key=str), [n for n in names if n not in lam]
    if extra or missing:
        raise ValueError(f"lam by modality must name exactly the sources {names}: "
                         + (f"{extra} are not sources" if extra else "")
                         + ("; " if extra and missing else "")
                         + (f"{missing} have no lambda" if missing else "")
                         + "; or pass one number for all sources")
    return [check_lam(lam[n], f"lam[{n!r}]") for n in names]

def _uncacheable(train) -> str | None:
    """Why the source cache cannot serve ``train``, or None: it reads the inputs of a
    ``PairedDataset`` (``ids``, ``arrays``) and finds each batch's rows by sample id, so
    two samples with one id would both read the last one's outputs."""
    if not (hasattr(train, "ids") and hasattr(train, "arrays")):
        return (f"the source cache reads a PairedDataset's ids and arrays; the training set is a "
                f"{type(train).__name__} (e.g. dataset.subset(indices) gives a PairedDataset)")
    seen, dup = set(), {}
    for i in map(str, train.ids):
        if i in seen:
            dup[i] = dup.get(i, 1) + 1
        seen.add(i)
    if dup:
        shown = ", ".join(f"{i!r} x{c}" for i, c in list(dup.items())[:3])
        return (f"the training set's sample ids must be unique for the source cache, which finds a sample's "
                f"outputs by id: {len(dup)} repeat ({shown})")
    return None


def _frozen_source(source, source_modality, train, needs, source_cache, cache_dir, device, progress):
    """A frozen source ``Classifier`` as what the loop calls: a ``SourceCache`` of the
    ``needs`` fields (``source_cache``, see ``fit_transfer``) or a ``LiveSource``; any
    other callable source is returned as it is."""
    if not isinstance(source, Classifier):
        return source
    source.eval().requires_grad_(False)       # frozen, whether it runs live or a finished cache is read
    source_modality = source_modality or source.config["modality"]
    augmented = bool(getattr(train, "augment", False))
    if source_cache is True and augmented:
        raise ValueError("source_cache=True but the training set augments its inputs per epoch: "
                         "cached source outputs would be wrong; use source_cache='auto' or False")
    if source_cache == "auto" and augmented:
        print(f"dcatkit: training inputs are augmented per epoch, so the frozen {source_modality} "
              "source runs live at every step (no cache)")
    if source_cache and not augmented:
        why = _uncacheable(train)
        if why and source_cache is True:
            raise ValueError(f"source_cache=True: {why}; pass source_cache=False (the source runs live)")
        if why:
            print(f"dcatkit: {why}, so the frozen {source_modality} source runs live at every step (no cache)")
            return LiveSource(source, source_modality)
        return SourceCache.build(source, train, source_modality, cache_dir, device=resolve_device(device),
                                 progress=progress, fields=needs)
    return LiveSource(source, source_modality)
