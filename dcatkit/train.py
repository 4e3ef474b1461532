"""Training: unimodal ``fit``, transfer ``fit_transfer`` (Eq. 19), ``evaluate``, checkpoints.

One loop serves both: ``fit_transfer`` is ``fit`` plus a term computed from
the frozen source by a transfer objective chosen by name (``dcatkit.objectives``:
``dcat``, ``kd``, ``fitnet``, ``contrastive``, ...). Everything the source
contributes (its K, V, logits, pooled output and whether it classified the
sample correctly, as an ``objectives.SourceOutput``) comes from one object, a
*source* — ``LiveSource`` runs the frozen model; anything with the same
``__call__`` (e.g. ``SourceCache``, a cache of the source's outputs) slots in
without touching the loop.

Runs survive interruption: with a checkpoint path, the loop saves a resumable state
after every epoch (``<checkpoint>.state``; removed when the run finishes) and
``resume=True`` continues a killed run from it, to the uninterrupted run's result.
``log_dir=`` writes TensorBoard scalars per epoch.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset
from tqdm.auto import tqdm

from . import distributed as dist
from . import provenance
from .losses import LOSSES, check_lam, get_loss
from .data.dataset import UNLABELED
from .metrics import classification_metrics
from .model import Classifier, model_from_config
from .objectives import KVLoss, Objective, SourceOutput, make_objective
from .presets import Preset
from .source_cache import SourceCache, _hash_model

# ------------------------------------------------------------------ device & seeds


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when present, else CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return dist.local_device() if dist.is_dist() else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available; use 'auto' or 'cpu'")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """AMP on CUDA only: bf16 where supported, else fp16 (with a GradScaler)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def make_loader(ds: Dataset, batch_size: int, shuffle: bool, seed: int = 0, device=None,
                num_workers: int = 0, shard: bool = False) -> DataLoader:
    """A seeded DataLoader; pinned memory on CUDA. ``shard=True`` under torchrun gives
    each rank its part: a DistributedSampler when shuffling (call ``set_epoch``),
    a plain rank::world_size slice for evaluation (no padding, no duplicates)."""
    gen = torch.Generator().manual_seed(seed)
    pin = device is not None and torch.device(device).type == "cuda"
    sampler = None
    if shard and dist.is_dist():
        if shuffle:
            sampler = DistributedSampler(ds, shuffle=True, seed=seed)
        else:
            ds = Subset(ds, range(dist.rank(), len(ds), dist.world_size()))
        shuffle = False
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, sampler=sampler, generator=gen,
                      num_workers=num_workers, pin_memory=pin, drop_last=False)


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device, non_blocking=True)


def only_modalities(ds: Dataset, modalities) -> Dataset:
    """``ds`` restricted to the modalities a run reads (datasets with ``select``, e.g.
    ``PairedDataset``): an IMU epoch then neither reads nor collates video frames it never
    uses. ``modalities=None`` or a dataset without ``select`` -> ``ds`` unchanged."""
    if modalities is None or not hasattr(ds, "select") or set(ds.modalities) <= set(modalities):
        return ds
    return ds.select([m for m in ds.modalities if m in modalities])


# ------------------------------------------------------------------ checkpoints


def _atomic_save(payload: Any, path: Path) -> Path:
    """``torch.save`` to a temp file next to ``path``, then ``os.replace``: a reader (or a
    run killed mid-save) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | Path, model: Classifier, meta: dict) -> Path:
    """Write {"state_dict", "config", "meta"} atomically (temp file + os.replace),
    so an interrupted save never leaves a half-written checkpoint behind."""
    return _atomic_save({"state_dict": model.state_dict(), "config": model.config, "meta": meta}, Path(path))


def load_checkpoint(path: str | Path, map_location="cpu") -> tuple[Classifier, dict]:
    """Rebuild the model a checkpoint was saved from. Returns (model, meta); the model
    carries ``meta["provenance"]`` (None for older checkpoints) as ``model.provenance``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} is not a readable dcatkit checkpoint ({type(e).__name__}: {e}); the file "
                         "is truncated or corrupted (an interrupted copy?): copy it again or retrain") from e
    if not isinstance(payload, dict) or not {"state_dict", "config", "meta"} <= set(payload):
        raise ValueError(f"{path} is not a dcatkit checkpoint: expected keys state_dict, config, meta")
    try:
        model = model_from_config(payload["config"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: its config and weights do not make a model ({type(e).__name__}: {e})") from e
    model.provenance = payload["meta"].get("provenance")
    return model, payload["meta"]


def check_source_fits(source_meta: dict, *, classes: list[str], target_modality: str,
                      available_modalities: tuple[str, ...]) -> None:
    """A source checkpoint must share the target run's classes (same order) and be
    of a modality that the data has and that is not the target's. Raises
    ``provenance.SourceMismatch`` (a ValueError)."""
    src_mod = source_meta.get("modality")
    if src_mod == target_modality:
        raise provenance.SourceMismatch(f"source and target are both {src_mod!r}: D-CAT transfers between "
                                        "two modalities")
    if src_mod not in available_modalities:
        raise provenance.SourceMismatch(f"source checkpoint is a {src_mod!r} model but the data has only "
                                        f"{available_modalities}")
    if list(source_meta.get("classes", [])) != list(classes):
        raise provenance.SourceMismatch(f"source checkpoint classes {source_meta.get('classes')} do not match the "
                         f"target run's classes {list(classes)} (same names, same order needed)")


# ------------------------------------------------------------------ resumable training state

STATE_VERSION = 1


def state_path_for(checkpoint: str | Path | None, state_path: str | Path | None = None) -> Path | None:
    """Where a run keeps its resumable state: ``state_path``, else ``<checkpoint>.state``
    (None when neither is given: such a run cannot be resumed)."""
    if state_path is not None:
        return Path(state_path)
    return None if checkpoint is None else Path(f"{checkpoint}.state")


def _rng_state(loader_generator: torch.Generator) -> dict:
    """This process's random streams: Python, NumPy, torch (CPU and every CUDA device)
    and the DataLoader's own generator (the shuffle order and worker seeds)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": (name, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "loader": loader_generator.get_state()}


def _set_rng_state(rng: dict, loader_generator: torch.Generator) -> None:
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    loader_generator.set_state(rng["loader"])


def _save_state(path: Path, state: dict) -> None:
    """Write a run's resumable state (see ``_train_loop``) atomically."""
    _atomic_save(state, path)


def _flat(d: Any, prefix: str = "") -> dict:
    if not isinstance(d, dict):
        return {prefix: d}
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _load_state(path: Path, key: str) -> dict:
    """The state saved at ``path`` by a run with the settings ``key`` (JSON); a truncated
    or foreign file, or one of a run with other settings, is a ValueError naming it."""
    again = "delete it, or pass resume=False to start the run over (the state is then replaced)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} is not a readable dcatkit training state ({type(e).__name__}: {e}): "
                         f"it is truncated or corrupted; {again}") from e
    need = {"version", "key", "epoch", "model", "extra_params", "optimizer", "scaler", "rng", "best",
            "best_state", "history"}
    if not isinstance(state, dict) or not need <= set(state) or state["version"] != STATE_VERSION:
        raise ValueError(f"{path} is not a dcatkit training state of version {STATE_VERSION} "
                         f"(expected the keys {sorted(need)}); {again}")
    if state["key"] != key:
        saved, now = _flat(json.loads(state["key"])), _flat(json.loads(key))
        diff = [f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(saved) | set(now))
                if saved.get(k) != now.get(k)]
        raise ValueError(f"{path} holds the state of a run with other settings ({'; '.join(diff)}): resume "
                         f"it with the settings it was started with, or {again}")
    return state


# ------------------------------------------------------------------ evaluation


@torch.no_grad()
def predict(model: Classifier, ds: Dataset, modality: str, batch_size: int = 64,
            device="auto") -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) over a dataset, model in eval mode. Under torchrun each rank
    predicts its shard and the results are gathered, so every rank returns all of them."""
    device = resolve_device(device)
    model.eval().to(device)
    ds = only_modalities(ds, (modality,))
    ys, ps = [], []
    amp = _amp_dtype(device)
    for batch in make_loader(ds, batch_size, shuffle=False, device=device, shard=True):
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = model(_to(batch[modality], device)).logits
        ys.append(batch["label"].numpy())
        ps.append(logits.argmax(1).cpu().numpy())
    y = np.concatenate(ys) if ys else np.zeros(0, dtype=np.int64)
    p = np.concatenate(ps) if ps else np.zeros(0, dtype=np.int64)
    parts = dist.all_gather_objects((y, p))
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def evaluate(model: Classifier, ds: Dataset, modality: str, batch_size: int = 64, device="auto") -> dict:
    """Accuracy, macro precision / recall / F1 and the confusion matrix (see metrics.py)."""
    y, p = predict(model, ds, modality, batch_size, device)
    return classification_metrics(y, p, model.config.get("num_classes", int(max(y.max(), p.max())) + 1))


# ------------------------------------------------------------------ the frozen source


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


# ------------------------------------------------------------------ the training loop


def global_masked_mean(loss: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """This process's ``loss`` (a mean over its masked-in samples, Eq. 17) rescaled so that,
    once DDP averages gradients over the W processes, the result is the gradient of the
    mean over the masked-in samples of *all* processes:

        loss * n_local * W / n_global,   n = number of masked-in samples (all-reduced)

    Identity in a single process and without a mask (equal batch sizes per process, as
    DistributedSampler gives, make the plain mean already global). The value is this
    process's share of the global mean times W, so the epoch's sample-weighted average
    of the logged values is the global mean too."""
    if mask is None or not dist.is_dist():
        return loss
    n_local = mask.sum().to(loss.dtype)
    n_global = dist.all_reduce_sum(n_local.detach())
    return loss * (n_local * dist.world_size() / n_global.clamp(min=1.0))


@dataclass
class FitResult:
    model: Classifier
    history: pd.DataFrame   # one row per epoch
    best: dict              # validation metrics of the kept (best macro-F1) epoch
    checkpoint: Path | None
    objective: Any = None   # fit_transfer's transfer objective (its learned maps, if any; not saved);
                            # with several sources a dict {source modality: objective}


ExtraLoss = Callable[[dict, Any, torch.device], tuple[torch.Tensor, dict]]


def _train_loop(model: Classifier, train: Dataset, val: Dataset, *, modality: str, preset: Preset,
                epochs: int | None, seed: int | None, device, extra_loss: ExtraLoss | None,
                checkpoint: str | Path | None, meta: dict, progress: bool, desc: str,
                compile: bool = False, channels_last: bool | str = "auto",
                batch_modalities: tuple[str, ...] | None = (), report: dict | None = None,
                extra_params: tuple[torch.nn.Parameter, ...] = (), resume: bool = False,
                state_path: str | Path | None = None, log_dir: str | Path | None = None,
                run_key: dict | None = None) -> FitResult:
    """The one training loop: CPU, one GPU (AMP), or several processes under torchrun
    (DistributedDataParallel; rank 0 alone logs and writes the checkpoint).
    Training batches carry ``modality`` plus ``batch_modalities`` (None: all of them).
    ``extra_params`` (a transfer objective's own parameters) are trained with the model
    by the same optimiser; under torchrun their gradients are averaged like DDP's.
    The trained model carries its provenance (``dcatkit.provenance.record`` of ``train``
    and ``report``) as ``model.provenance`` and in the checkpoint's meta.

    Resumable: after every epoch the state (model, ``extra_params``, optimiser, GradScaler,
    the random streams of every process, epoch, best-so-far, history) is written
    atomically to ``state_path_for(checkpoint, state_path)``, and removed when the run
    finishes. ``resume=True`` continues from that state's epoch (a run with other
    settings -- ``run_key``, seed, epochs, preset, meta, data, world size -- is an error);
    without a state it trains from epoch 1. On the same device the result is the
    uninterrupted run's, bit for bit on CPU. ``log_dir``: TensorBoard scalars per epoch."""
    device = resolve_device(device)
    epochs = preset.epochs if epochs is None else epochs
    seed = preset.seed if seed is None else seed
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"empty split: train has {len(train)} samples, val has {len(val)}")
    if (np.asarray(getattr(val, "labels", ())) == UNLABELED).any():
        raise ValueError(f"the validation part holds {int((np.asarray(val.labels) == UNLABELED).sum())} unlabeled "
                         "samples: the best epoch is chosen on labelled validation samples only")
    unlabeled = bool((np.asarray(getattr(train, "labels", ())) == UNLABELED).any())   # CE on the labelled only
    if unlabeled and not (np.asarray(train.labels) != UNLABELED).any():
        raise ValueError("the training set has no labelled sample: cross-entropy needs at least one")
    if modality not in getattr(train, "modalities", (modality,)):
        raise ValueError(f"the data has modalities {train.modalities}, the model needs {modality!r}")
    state_file = state_path_for(checkpoint, state_path)
    if resume and state_file is None:
        raise ValueError("resume=True needs to know where the run's state is: pass checkpoint= or state_path=")
    prov = provenance.record(train, modality, report, meta.get("dataset"), device, val=val)
    key = json.dumps(provenance._plain({
        "modality": modality, "seed": seed, "epochs": epochs, "preset": preset.to_dict(), "model": model.config,
        "meta": meta, "run": run_key or {}, "world_size": dist.world_size(),
        "data": {k: prov[k] for k in ("dataset", "split", "input_shape", "classes", "train_ids_sha256")},
        "val_ids_sha256": provenance.ids_hash([str(i) for i in getattr(val, "ids", range(len(val)))])}),
        sort_keys=True)
    if state_file is not None and dist.is_main():     # temp files of saves a killed run never finished
        for left in state_file.parent.glob(f"{state_file.name}.*.tmp"):
            left.unlink(missing_ok=True)
    saved = _load_state(state_file, key) if resume and state_file.is_file() else None
    if resume and saved is None and dist.is_main():
        print(f"dcatkit: no saved state at {state_file}: {desc} trains from epoch 1")
    train = only_modalities(train, None if batch_modalities is None else (modality, *batch_modalities))
    seed_everything(seed)
    model.to(device)
    if channels_last == "auto":
        channels_last = device.type == "cuda"
    if hasattr(model.encoder, "channels_last"):             # only the frame encoder has 2D convs on frames
        model.encoder.channels_last = bool(channels_last)
        if channels_last:
            model.to(memory_format=torch.channels_last)
    extra_params = tuple(extra_params)
    opt = torch.optim.Adam([*model.parameters(), *extra_params], lr=preset.lr, weight_decay=preset.weight_decay)
    amp = _amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)   # only fp16 needs scaling
    loader = make_loader(train, preset.batch_size, shuffle=True, seed=seed, device=device, shard=True)
    rows, best, best_state, start = [], None, None, 1
    if saved is not None:                          # before DDP, which copies rank 0's weights to all ranks
        model.load_state_dict(saved["model"])
        if len(saved["extra_params"]) != len(extra_params):
            raise ValueError(f"{state_file} holds {len(saved['extra_params'])} objective parameters, the "
                             f"objective has {len(extra_params)}; pass resume=False to start over")
        with torch.no_grad():
            for p, t in zip(extra_params, saved["extra_params"]):
                p.copy_(t)
        opt.load_state_dict(saved["optimizer"])
        if saved["scaler"]:
            scaler.load_state_dict(saved["scaler"])
        _set_rng_state(saved["rng"][dist.rank()], loader.generator)
        rows, best, best_state, start = saved["history"], saved["best"], saved["best_state"], saved["epoch"] + 1
        if dist.is_main():
            print(f"dcatkit: {desc} resumes after epoch {saved['epoch']} of {epochs} from {state_file}")
        del saved
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if dist.is_dist() else model
    if compile:
        net = torch.compile(net)
    progress = progress and dist.is_main()
    with contextlib.ExitStack() as closing:
        writer = None
        if log_dir is not None and dist.is_main():
            writer = closing.enter_context(tensorboard_writer(log_dir, purge_step=start))
        bar = tqdm(range(start, epochs + 1), desc=desc, disable=not progress, leave=False)
        for epoch in bar:
            if isinstance(loader.sampler, DistributedSampler):
                loader.sampler.set_epoch(epoch)
            model.train()
            t0, sums = time.perf_counter(), None
            for step, batch in enumerate(loader):
                x, y = _to(batch[modality], device), _to(batch["label"], device)
                with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                    out = net(x)
                    if not unlabeled:
                        ce = F.cross_entropy(out.logits.float(), y)                # Eq. (18)
                    else:                   # Eq. (18) over the batch's labelled samples (0 if it has none)
                        lab = y != UNLABELED
                        ce = F.cross_entropy(out.logits.float()[lab], y[lab]) if bool(lab.any()) \
                            else out.logits.float().sum() * 0.0
                loss, stats = ce, {"ce": ce.detach()}
                if unlabeled:
                    stats["labeled_frac"] = (y != UNLABELED).float().mean()
                if extra_loss is not None:
                    term, extra_stats = extra_loss(batch, out, device)
                    loss = loss + term                                             # Eq. (19)
                    stats.update(extra_stats)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step} ({desc}): "
                        f"{ {k: float(v) for k, v in stats.items()} }; lower the lr or lambda")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if extra_params and dist.is_dist():        # outside DDP: average their gradients by hand
                    for p in extra_params:
                        if p.grad is not None:
                            p.grad.copy_(dist.all_reduce_sum(p.grad) / dist.world_size())
                scaler.step(opt)
                scaler.update()
                stats["loss"], stats["n"] = loss.detach(), torch.ones((), device=device)
                vals = torch.stack([v.float() for v in stats.values()]) * len(y)  # sample-weighted sums
                sums = vals if sums is None else sums + vals
            tot = dict(zip(stats, dist.all_reduce_sum(sums).tolist()))     # every step has the same stats
            dist.broadcast_buffers(model)          # ranks saw different batches: BN stats from rank 0
            train_time = time.perf_counter() - t0
            val_m = evaluate(model, val, modality, device=device)
            row = {"epoch": epoch, **{f"train_{k}": v / tot["n"] for k, v in tot.items() if k != "n"},
                   **{f"val_{k}": v for k, v in val_m.items() if k != "confusion"},
                   "train_time_s": train_time, "time_s": time.perf_counter() - t0}
            rows.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_f1=f"{val_m['f1']:.3f}")
            if best is None or val_m["f1"] > best["f1"]:
                best = {**{k: v for k, v in val_m.items() if k != "confusion"}, "epoch": epoch}
                best_state = copy.deepcopy(model.state_dict())
            if writer is not None:
                for k, v in row.items():          # the numbers (not e.g. val_absent_classes, a list)
                    if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool):
                        writer.add_scalar(k.replace("_", "/", 1), v, epoch)     # train/loss, train/ca, val/f1
                writer.flush()
            if state_file is not None:
                rng = dist.all_gather_objects(_rng_state(loader.generator))    # every process's streams
                if dist.is_main():
                    _save_state(state_file, {
                        "version": STATE_VERSION, "key": key, "epoch": epoch, "model": model.state_dict(),
                        "extra_params": [p.detach() for p in extra_params], "optimizer": opt.state_dict(),
                        "scaler": scaler.state_dict(), "rng": rng, "best": provenance._plain(best),
                        "best_state": best_state, "history": provenance._plain(rows)})
    model.load_state_dict(best_state)                                  # keep the best-on-validation epoch
    model.provenance = prov
    ckpt = None
    if checkpoint is not None:
        ckpt = Path(checkpoint)
        if dist.is_main():
            save_checkpoint(ckpt, model, {**meta, "modality": modality, "val": best, "preset": preset.to_dict(),
                                          "seed": seed, "input_shape": model.config.get("input_shape"),
                                          "provenance": prov})
    if state_file is not None and dist.is_main():
        state_file.unlink(missing_ok=True)                             # finished: nothing to resume
    dist.barrier()
    return FitResult(model, pd.DataFrame(rows), best, ckpt)


def tensorboard_writer(log_dir: str | Path, purge_step: int | None = None):
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``log_dir`` (``purge_step``: a resumed
    run drops the events a killed run wrote from that epoch on). Needs the ``tensorboard``
    package; without it, an ImportError saying so."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError(f"log_dir={str(log_dir)!r} writes TensorBoard logs, which needs the tensorboard "
                          "package: pip install tensorboard (it is in dcatkit's dev extra), or leave "
                          "log_dir=None") from e
    return SummaryWriter(str(log_dir), purge_step=purge_step)


def fit(model: Classifier, train: Dataset, val: Dataset, *, modality: str | None = None,
        preset: Preset, epochs: int | None = None, seed: int | None = None, device="auto",
        checkpoint: str | Path | None = None, meta: dict | None = None, progress: bool = True,
        compile: bool = False, channels_last: bool | str = "auto", report: dict | None = None,
        resume: bool = False, state_path: str | Path | None = None,
        log_dir: str | Path | None = None) -> FitResult:
    """Unimodal training with cross-entropy (Eq. 18): Adam with the preset's lr and
    weight decay; the epoch with the best validation macro-F1 is kept.
    Resumable: with a ``checkpoint`` (or ``state_path``) the run's state is saved after
    every epoch to ``<checkpoint>.state`` (removed when it finishes) and ``resume=True``
    continues a killed run from its last finished epoch, to the result the uninterrupted
    run would have given (bit for bit on CPU); resuming with other settings is an error.
    ``log_dir``: TensorBoard scalars per epoch (train/loss, train/ce, val/f1, ...; needs
    the ``tensorboard`` package).
    On CUDA: AMP (bf16, or fp16 with a GradScaler), channels_last frames, optional
    ``compile=True`` (torch.compile). Under torchrun: DDP (see ``distributed``).
    ``report``: the ``Splits.report`` the data came from (split kind and seed, dataset),
    recorded in the model's provenance (see ``dcatkit.provenance``)."""
    modality = modality or model.config["modality"]
    meta = {"classes": list(getattr(train, "classes", [])), **(meta or {})}
    return _train_loop(model, train, val, modality=modality, preset=preset, epochs=epochs, seed=seed,
                       device=device, extra_loss=None, checkpoint=checkpoint, meta=meta,
                       progress=progress, desc=f"{modality}", compile=compile, channels_last=channels_last,
                       report=report, resume=resume, state_path=state_path, log_dir=log_dir)


def fit_transfer(model: Classifier, source, train: Dataset, val: Dataset, *, lam: float | dict,
                 mcma: bool = True, loss: str = "dcat", method: str | None = None,
                 options: dict | None = None, monitor: str | None = None, modality: str | None = None,
                 source_modality: str | list | None = None, preset: Preset, epochs: int | None = None,
                 seed: int | None = None, device="auto", checkpoint: str | Path | None = None,
                 meta: dict | None = None, progress: bool = True, source_cache: bool | str = "auto",
                 cache_dir: str | Path | None = None, compile: bool = False,
                 channels_last: bool | str = "auto", report: dict | None = None, resume: bool = False,
                 state_path: str | Path | None = None, log_dir: str | Path | None = None,
                 unlabeled_mask: str = "confidence", confidence: float = 0.9) -> FitResult:
    """Train the target with L = L_CE + lam * L_transfer (Eq. 19; D-CAT's L_CA by default).

    ``method`` names the transfer objective (``dcatkit.objectives``): ``"dcat"``
    (Eq. 7 / 17, the default), ``"kd"``, ``"fitnet"``, ``"contrastive"``,
    ``"dcat+kd"``, or ``"none"`` (no transfer term: exactly ``fit``). ``options``
    go to the objective (e.g. ``{"kd_temperature": 2.0}``). Objectives with
    parameters (fitnet's map, contrastive's projections) are trained with the
    target and not kept: the checkpoint holds the single-sensor target only.
    ``loss`` (older API) names a K/V loss of ``losses.LOSSES``; ``loss="dcat"``
    is ``method="dcat"``.

    ``monitor`` (e.g. ``"dcat"``): an objective computed on every batch without
    gradient and logged (``train_ca``), never optimised — L_CA of a baseline
    (``method="none", monitor="dcat"``: the same model as ``fit``, bit for bit).

    ``source`` is a frozen source ``Classifier`` (wrapped in ``LiveSource`` or
    cached) or any callable ``source(batch, device) -> objectives.SourceOutput``
    (or a (k_s, v_s, correct) tuple; a ``d_attn`` attribute gives the size of its
    pooled output to objectives that learn a map from it). With ``mcma=True`` (default) the objective
    only counts samples the source classifies correctly (Eq. 17; its masked mean,
    see ``dcatkit.objectives``); with ``mcma=False`` all samples count ("No MCMA"
    in the paper's tables). The source is never updated.

    ``source_cache`` ("auto", True, False): run the frozen source once over the
    training set and read what the objective needs (K, V, logits, pooled output,
    correctness) from a memory-mapped cache (``dcatkit.source_cache``) instead of
    running it every step. "auto" uses the cache unless the training set augments
    inputs per epoch (``train.augment`` true), where a cache would be wrong; then
    the live source runs, with a message.

    Under torchrun the masked mean runs over the masked-in samples of all processes
    (``global_masked_mean``), as in a single process. ``report``, ``resume``,
    ``state_path`` and ``log_dir`` as in ``fit`` (TensorBoard also gets the objective's
    terms, e.g. train/ca = L_CA, and train/mask_frac); the saved state includes the
    objective's own parameters, and resuming with another source is an error.

    Several frozen sources: ``source`` a list (one per modality, ``source_modality``
    then a list too, or None to read each source's own) and ``lam`` a number for all or
    a dict ``{modality: lam_s}`` naming every source: L = L_CE + sum_s lam_s * L_s
    (Eq. 19 with one term per source), each L_s with its own objective and its own
    MCMA mask (source s's correctness), each source cached separately. With two or more,
    the history has one column per source and term (``train_ca_video``,
    ``train_mask_frac_audio``) and ``FitResult.objective`` is a dict by modality; a list
    of one source is the single-source run, bit for bit.

    Unlabeled pairs: samples of ``train`` labelled ``data.dataset.UNLABELED`` (-1; what
    ``data.dataset.training_set`` makes of ``Splits.unlabeled``) count in the transfer
    term but not in L_CE, which averages over each batch's labelled samples (0 for a
    batch without any; under torchrun each process averages its own batch's labelled
    samples before DDP averages the processes). MCMA needs a label, so on an unlabeled pair the mask is
    ``unlabeled_mask``: ``"confidence"`` (default) -- the pair counts when the source's
    softmax probability of its own prediction is >= ``confidence`` (0.9) -- or ``"all"``
    -- every unlabeled pair counts (D-CAT without MCMA there); labelled pairs keep the
    Eq. (16) mask. With ``mcma=False`` every pair counts. The history then has
    ``train_labeled_frac`` and ``train_mask_frac_unlabeled`` (the share of unlabeled pairs
    masked in) besides ``train_mask_frac`` (the mask actually used). Without unlabeled
    samples none of this applies and the run is the one it always was, bit for bit.
    Validation (the best epoch) uses labelled samples only.
    """
    modality = modality or model.config["modality"]
    if unlabeled_mask not in UNLABELED_MASKS:
        raise ValueError(f"unlabeled_mask must be one of {UNLABELED_MASKS}, got {unlabeled_mask!r}")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be a probability in [0, 1], got {confidence!r}")
    unlabeled = bool((np.asarray(getattr(train, "labels", ())) == UNLABELED).any())
    if source_cache not in ("auto", True, False):
        raise ValueError(f"source_cache must be 'auto', True or False, got {source_cache!r}")
    if method is not None and loss != "dcat":
        raise ValueError(f"pass method= (an objective) or loss= (a K/V loss of losses.LOSSES), not both: "
                         f"got method={method!r}, loss={loss!r}")
    multi = isinstance(source, (list, tuple))
    srcs = list(source) if multi else [source]
    if not srcs:
        raise ValueError("fit_transfer needs at least one source; got an empty list")
    names = source_modality if isinstance(source_modality, (list, tuple)) else [source_modality] * len(srcs)
    if len(names) != len(srcs):
        raise ValueError(f"source_modality names {len(names)} modalities for {len(srcs)} sources: give one per source")
    names = [n or (s.config["modality"] if isinstance(s, Classifier) else getattr(s, "modality", None))
             for n, s in zip(names, srcs)]
    if multi and (None in names or len(set(names)) != len(names)):
        raise ValueError(f"several sources need one distinct modality each (at most one source per modality), got "
                         f"{names}; pass source_modality=[...] for sources that do not say theirs")
    lams = _source_lams(lam, names)
    d_target = model.attention.d_out                         # size of K, V and the pooled output
    objectives, monitors = [], []
    with torch.random.fork_rng(devices=[]):     # the objectives' own init leaves the run's random stream alone
        torch.manual_seed(preset.seed if seed is None else seed)
        for s in srcs:
            d_source = s.attention.d_out if isinstance(s, Classifier) else getattr(s, "d_attn", None)
            if method is None and loss != "dcat":
                get_loss(loss)                                          # unknown name -> clear error
                objectives.append(KVLoss(LOSSES[loss], mcma=mcma, name=loss))
            else:
                objectives.append(make_objective(method or "dcat", mcma=mcma, d_target=d_target,
                                                 d_source=d_source, **(options or {})))
            monitors.append(None if monitor is None else
                            make_objective(monitor, mcma=mcma, d_target=d_target, d_source=d_source))
    if monitors[0] is not None and list(monitors[0].parameters()):
        raise ValueError(f"monitor={monitor!r} has parameters of its own to learn; monitor an objective "
                         "without parameters (e.g. 'dcat' or 'kd')")
    needs = tuple(dict.fromkeys((*objectives[0].needs, *(monitors[0].needs if monitors[0] else ()))))
    confident = unlabeled and mcma and unlabeled_mask == "confidence"
    if confident and needs:                                # the confidence mask reads the source's logits
        needs = tuple(dict.fromkeys((*needs, "logits")))
    resumable = dict(resume=resume, state_path=state_path, log_dir=log_dir)
    method_name = method or ("dcat" if loss == "dcat" else loss)
    lam_meta = dict(zip(names, lams)) if multi else lams[0]
    meta = {"classes": list(getattr(train, "classes", [])), "lam": lam_meta, "mcma": mcma, "loss": loss,
            "method": method_name, "objective_options": dict(options or {}), "monitor": monitor, **(meta or {})}
    if unlabeled:                   # recorded only then: a run without unlabeled pairs keeps its old identity
        meta["unlabeled_mask"] = (unlabeled_mask if mcma else "all (mcma=False)")
        if confident:
            meta["confidence"] = float(confidence)
    if not needs:       # "none" without a monitor: nothing from the source, exactly fit()
        return _train_loop(model, train, val, modality=modality, preset=preset, epochs=epochs, seed=seed,
                           device=device, extra_loss=None, checkpoint=checkpoint,
                           meta={**meta, "source_modality": names if multi else names[0]}, progress=progress,
                           desc=f"{modality} ({method_name})", compile=compile, channels_last=channels_last,
                           report=report, **resumable)
    if state_path_for(checkpoint, state_path) is not None:     # a resumed run must have the same source(s)
        ids = [_hash_model(s) if isinstance(s, Classifier) else str(getattr(s, "folder", type(s).__name__))
               for s in srcs]
        resumable["run_key"] = {"source": ids if multi else ids[0]}
    srcs = [_frozen_source(s, n, train, needs, source_cache, cache_dir, device, progress)
            for s, n in zip(srcs, names)]
    names = [n or getattr(s, "modality", None) for s, n in zip(srcs, names)]
    if modality in names:
        raise ValueError(f"source and target modality are both {modality!r}")
    for s, obj in zip(srcs, objectives):
        if hasattr(s, "to"):
            s.to(resolve_device(device))
        obj.to(resolve_device(device))
    suffix = [f"_{n}" if multi and len(srcs) > 1 else "" for n in names]   # one source: the plain columns

    def transfer_term(batch, out, device):
        total, stats = None, {}
        for s, obj, mon, lam_s, sfx in zip(srcs, objectives, monitors, lams, suffix):
            src = as_source_output(s(batch, device))
            if unlabeled:
                src, st_unl = _unlabeled_mask(src, _to(batch["label"], device), mcma, unlabeled_mask, confidence)
            mask = src.correct if mcma else None                            # this source's MCMA mask
            value, st = obj(out, src)                                       # e.g. Eq. (7) / (17)
            value = global_masked_mean(value, mask)                         # one mean over all processes
            st = {k: global_masked_mean(v, mask) for k, v in st.items()}
            if mon is not None:
                with torch.no_grad():
                    st.update({k: global_masked_mean(v, mask) for k, v in mon(out, src)[1].items() if k not in st})
            st["mask_frac"] = src.correct.float().mean()
            if unlabeled:
                st.update(st_unl)
            stats.update({k + sfx: v for k, v in st.items()})
            term = lam_s * value                                            # lam_s * L_s of Eq. (19)
            total = term if total is None else total + term
        return total, stats

    bm = [getattr(s, "batch_modalities", None) for s in srcs]
    batch_modalities = None if None in bm else tuple(dict.fromkeys(m for b in bm for m in b))
    res = _train_loop(model, train, val, modality=modality, preset=preset, epochs=epochs, seed=seed,
                      device=device, extra_loss=transfer_term, checkpoint=checkpoint,
                      meta={**meta, "source_modality": names if multi else names[0]}, progress=progress,
                      desc=f"{'+'.join(map(str, names))}->{modality} ({method_name})", compile=compile,
                      channels_last=channels_last, batch_modalities=batch_modalities, report=report,
                      extra_params=tuple(p for obj in objectives for p in obj.parameters()), **resumable)
    res.objective = dict(zip(names, objectives)) if multi else objectives[0]
    return res


UNLABELED_MASKS = ("confidence", "all")


def _unlabeled_mask(src: SourceOutput, labels: torch.Tensor, mcma: bool, how: str, confidence: float
                    ) -> tuple[SourceOutput, dict]:
    """The source's output with the MCMA indicator of the batch's unlabeled pairs
    (label ``UNLABELED``) replaced: ``how="confidence"``: the source's softmax probability
    of its own prediction >= ``confidence``; ``"all"``: every unlabeled pair (and with
    ``mcma=False`` nothing changes: every pair counts anyway). Labelled pairs keep
    Eq. (16). Returns it and {"mask_frac_unlabeled": share of the unlabeled pairs masked
    in (0 when the batch has none)}."""
    unl = labels == UNLABELED
    if not mcma:
        keep = torch.ones_like(unl)
    elif how == "all":
        keep = torch.ones_like(unl)
    else:
        if src.logits is None:
            raise ValueError("the confidence mask on unlabeled pairs reads the source's logits, but the source "
                             "gave none; pass unlabeled_mask='all' or a source that returns logits")
        keep = torch.softmax(src.logits.float(), dim=1).amax(1) >= confidence
    correct = torch.where(unl, keep, src.correct) if mcma else src.correct
    frac = (keep & unl).float().sum() / unl.float().sum().clamp(min=1.0)
    return src._replace(correct=correct), {"mask_frac_unlabeled": frac}


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
        return SourceCache.build(source, train, source_modality, cache_dir, device=resolve_device(device),
                                 progress=progress, fields=needs)
    return LiveSource(source, source_modality)
