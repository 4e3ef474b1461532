"""Training: unimodal ``fit``, transfer ``fit_transfer`` (Eq. 19), ``evaluate``.

One loop serves both: ``fit_transfer`` is ``fit`` plus a term computed from
the frozen source by a transfer objective chosen by name (``dcatkit.objectives``:
``dcat``, ``kd``, ``fitnet``, ``contrastive``, ...). Everything the source
contributes (its K, V, logits, pooled output and whether it classified the
sample correctly, as an ``objectives.SourceOutput``) comes from one object, a
*source* — ``LiveSource`` runs the frozen model; anything with the same
``__call__`` (e.g. ``SourceCache``, a cache of the source's outputs) slots in
without touching the loop. The sources live in ``dcatkit.frozen_source``.

Runs survive interruption: with a checkpoint path, the loop saves a resumable state
after every epoch (``<checkpoint>.state``; removed when the run finishes) and
``resume=True`` continues a killed run from it, to the uninterrupted run's result
(checkpoints and that state: ``dcatkit.checkpoint``).
``log_dir=`` writes TensorBoard scalars per epoch.

Modules: ``dcatkit.runtime`` (device, seeds, loaders) <- ``dcatkit.checkpoint``,
``dcatkit.frozen_source`` <- this one; the names they define that were always
imported from here (``LiveSource``, ``make_loader``, ``load_checkpoint``, ...) still are.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from . import distributed as dist
from . import provenance
from .checkpoint import (STATE_VERSION, _load_state, _rng_state, _save_state, _set_rng_state,  # noqa: F401
                         _warn_other_code,
                         check_source_fits, check_writable, load_checkpoint, save_checkpoint, state_path_for)
from .data.dataset import UNLABELED
from .files import left_temp_files
from .frozen_source import (LiveSource, SourceCache, _frozen_source, _source_id, _source_lams,  # noqa: F401
                            _source_names, _source_settings, as_source_output)
from .losses import LOSSES, get_loss
from .metrics import classification_metrics
from .model import Classifier
from .objectives import KVLoss, Objective, SourceOutput, make_objective  # noqa: F401
from .presets import Preset
from .runtime import _amp_dtype, _to, make_loader, only_modalities, resolve_device, seed_everything  # noqa: F401

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
    if isinstance(model, Classifier):
        n = model.num_classes                    # its outputs, the classes it can predict
    else:                                        # another model: its config's count, else the labels' and predictions'
        n = model.config.get("num_classes", int(max(y.max(), p.max())) + 1)
    return classification_metrics(y, p, n)



# ------------------------------------------------------------------ the training loop


def global_masked_mean(loss: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """This process's ``loss`` (a mean over its masked-in samples, Eq. 17) rescaled so that,
    once DDP averages gradients over the W processes, the result is the gradient of the
    mean over the masked-in samples of *all* processes:

        loss * n_local * W / n_global,   n = number of masked-in samples (all-reduced)

    A plain mean over the batch is the case of an all-ones mask: the processes' batches of a
    step differ in size by one when W does not divide the training set (``runtime.ShardBatches``),
    so the training loop passes one for cross-entropy and for objectives without MCMA.
    Identity in a single process; ``mask=None`` is identity too (right only when every process
    holds as many samples). The value is this process's share of the global mean times W: what
    the gradient needs, not what the history logs (each process's own mean with its count,
    ``_train_epoch``)."""
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
                run_key: dict | None = None, objectives: tuple[torch.nn.Module, ...] = ()) -> FitResult:
    """The one training loop: CPU, one GPU (AMP), or several processes under torchrun
    (DistributedDataParallel; rank 0 alone logs and writes the checkpoint).
    Training batches carry ``modality`` plus ``batch_modalities`` (None: all of them).
    ``extra_params`` (a transfer objective's own parameters) are trained with the model
    by the same optimiser; under torchrun their gradients are averaged like DDP's.
    The trained model carries its provenance (``dcatkit.provenance.record`` of ``train``
    and ``report``) as ``model.provenance`` and in the checkpoint's meta.

    Resumable: after every epoch the state (model, ``extra_params``, the rest of the
    ``objectives``' state -- buffers, counters such as contrastive's ``skipped_batches`` --,
    optimiser, GradScaler, the random streams of every process, epoch, best-so-far, history) is written
    atomically to ``state_path_for(checkpoint, state_path)``, and removed when the run
    finishes. ``resume=True`` continues from that state's epoch (a run with other
    settings -- ``run_key``, seed, epochs, preset, meta, data, world size -- is an error);
    without a state it trains from epoch 1. On the same device the result is the
    uninterrupted run's, bit for bit on CPU. ``log_dir``: TensorBoard scalars per epoch.

    In parts: ``_check_run`` (the data), ``_run_key`` (the settings a resumed run must
    share), ``_restore`` (a saved state), ``_train_epoch`` (one pass over ``train``),
    ``_epoch_record`` (validation, history row, best epoch, TensorBoard), ``_save_epoch_state``
    and ``_finish`` (best weights, checkpoint)."""
    device = resolve_device(device)
    epochs = preset.epochs if epochs is None else epochs
    seed = preset.seed if seed is None else seed
    unlabeled = _check_run(train, val, modality, epochs)
    state_file = state_path_for(checkpoint, state_path)
    for path, what in ((checkpoint, "checkpoint"), (state_file, "resumable state")):
        if path is not None:                      # fail now, not after the last epoch
            check_writable(path, what)
    if resume and state_file is None:
        raise ValueError("resume=True needs to know where the run's state is: pass checkpoint= or state_path=")
    prov = provenance.record(train, modality, report, meta.get("dataset"), device, val=val)
    key = _run_key(model, train, val, prov, report, modality=modality, seed=seed, epochs=epochs, preset=preset,
                   meta=meta, run_key=run_key)
    for target in (state_file, checkpoint):        # temp files of saves a killed run never finished (a
        if target is not None and dist.is_main():   # checkpoint's is as large as the model); not one a live
            for left in left_temp_files(target):     # run of this checkpoint is writing
                left.unlink(missing_ok=True)
    saved = _load_state(state_file, key) if resume and state_file.is_file() else None
    if resume and saved is None and dist.is_main():
        print(f"dcatkit: no saved state at {state_file}: {desc} trains from epoch 1")
    if saved is not None and dist.is_main():
        _warn_other_code(saved, state_file)
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
        rows, best, best_state, start = _restore(saved, state_file, model, extra_params, opt, scaler, loader,
                                                 desc=desc, epochs=epochs, objectives=objectives)
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
            if hasattr(loader.batch_sampler, "set_epoch"):     # under torchrun: runtime.ShardBatches
                loader.batch_sampler.set_epoch(epoch)
            model.train()
            t0 = time.perf_counter()
            tot = _train_epoch(net, loader, opt, scaler, modality=modality, device=device, amp=amp,
                               unlabeled=unlabeled, extra_loss=extra_loss, extra_params=extra_params,
                               epoch=epoch, desc=desc)
            dist.broadcast_buffers(model)          # ranks saw different batches: BN stats from rank 0
            train_time = time.perf_counter() - t0
            best, best_state = _epoch_record(model, val, modality, device, epoch, tot, t0, train_time, rows, bar,
                                             writer, best, best_state)
            if state_file is not None:
                _save_epoch_state(state_file, key, epoch, model, extra_params, opt, scaler, loader, best,
                                  best_state, rows, objectives=objectives)
    return _finish(model, best_state, prov, checkpoint, state_file, rows, best, meta=meta, modality=modality,
                   preset=preset, seed=seed, epochs=epochs)


def _check_run(train: Dataset, val: Dataset, modality: str, epochs: int) -> bool:
    """The run's data and epochs make sense (else a ValueError saying why); returns
    whether ``train`` holds unlabeled samples (cross-entropy then counts the labelled only)."""
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
    return unlabeled


def _run_key(model: Classifier, train: Dataset, val: Dataset, prov: dict, report: dict | None, *, modality: str,
             seed: int, epochs: int, preset: Preset, meta: dict, run_key: dict | None) -> str:
    """The run's settings as JSON: a saved state resumes only a run with the same key. The data
    part names the training and validation samples, each sample's label (``hide_labels`` keeps
    the ids and hides labels) and the loader's ``preprocessing`` (``Splits.report``: its window
    settings such as the cough set's microphone, which change the inputs, not the ids), and the
    validation samples with their labels (the best epoch, kept so far, was chosen on them)."""
    return json.dumps(provenance._plain({
        "labels_sha256": _labels_hash(train), "preprocessing": (report or {}).get("preprocessing"),
        "modality": modality, "seed": seed, "epochs": epochs, "preset": preset.to_dict(), "model": model.config,
        "meta": meta, "run": run_key or {}, "world_size": dist.world_size(),
        "data": {k: prov[k] for k in ("dataset", "split", "input_shape", "classes", "train_ids_sha256",
                                      "data_fingerprint", "normalization", "sample_rates")},   # what it holds
        "val_ids_sha256": provenance.ids_hash([str(i) for i in getattr(val, "ids", range(len(val)))]),
        "val_labels_sha256": _labels_hash(val)}),      # the best epoch is chosen on these labels
        sort_keys=True)


def _labels_hash(ds: Dataset) -> str:
    """sha256 of the (id, label) pairs of ``ds``, in id order (unlabeled samples count as -1)."""
    ids = [str(i) for i in getattr(ds, "ids", range(len(ds)))]
    labels = np.asarray(getattr(ds, "labels", ()), dtype=np.int64).tolist()
    return hashlib.sha256(json.dumps(sorted(zip(ids, labels))).encode()).hexdigest()


def _objective_states(objectives: tuple) -> list[dict]:
    """Each objective's state beside its parameters (saved as ``extra_params``): buffers and
    extra state, e.g. contrastive's ``skipped_batches``."""
    out = []
    for o in objectives:
        params = {n for n, _ in o.named_parameters()}
        out.append({k: v for k, v in o.state_dict().items() if k not in params})
    return out


def _restore(saved: dict, state_file: Path, model: Classifier, extra_params: tuple, opt, scaler, loader, *,
             desc: str, epochs: int, objectives: tuple = ()) -> tuple[list, dict, dict, int]:
    """Load a saved state into the model, the objective's parameters and the rest of its state,
    the optimiser, the GradScaler and this process's random streams; returns (history rows, best,
    best state, first epoch to train). A state saved before objectives' state was kept has none:
    their counters then start from 0."""
    model.load_state_dict(saved["model"])
    if len(saved["extra_params"]) != len(extra_params):
        raise ValueError(f"{state_file} holds {len(saved['extra_params'])} objective parameters, the "
                         f"objective has {len(extra_params)}; pass resume=False to start over")
    with torch.no_grad():
        for p, t in zip(extra_params, saved["extra_params"]):
            p.copy_(t)
    kept = saved.get("objectives")
    if kept is not None:
        if len(kept) != len(objectives):
            raise ValueError(f"{state_file} holds the state of {len(kept)} objective(s), this run has "
                             f"{len(objectives)}; pass resume=False to start over")
        for o, st in zip(objectives, kept):
            got = o.load_state_dict(st, strict=False)
            missing = [k for k in got.missing_keys if k not in {n for n, _ in o.named_parameters()}]
            if got.unexpected_keys or missing:
                raise ValueError(f"{state_file} holds another state of objective {o.name!r} (unexpected "
                                 f"{got.unexpected_keys}, missing {missing}); pass resume=False to start over")
    opt.load_state_dict(saved["optimizer"])
    if saved["scaler"]:
        scaler.load_state_dict(saved["scaler"])
    _set_rng_state(saved["rng"][dist.rank()], loader.generator)
    rows, best, best_state, start = saved["history"], saved["best"], saved["best_state"], saved["epoch"] + 1
    if dist.is_main():
        print(f"dcatkit: {desc} resumes after epoch {saved['epoch']} of {epochs} from {state_file}")
    return rows, best, best_state, start


def _forward(net, x: torch.Tensor, *, step: int, epoch: int, desc: str, loader):
    """``net(x)`` in training; a batch of one sample that a batch norm cannot take (one value per
    channel: e.g. Cnn14's last block on log-mels of under 64 frames or mel bins, a one-frame video
    of small frames) is refused saying why and what to change, instead of torch's bare message."""
    try:
        return net(x)
    except ValueError as e:
        if len(x) != 1 or "Expected more than 1 value per channel" not in str(e):
            raise
        n = len(loader.dataset) if hasattr(loader, "dataset") else "the"
        raise ValueError(f"{desc}: epoch {epoch}, step {step} is a training batch of one sample (the last batch "
                         f"of {n} training samples, or this process's share of it), and a batch norm of the "
                         f"encoder sees one value per channel there ({e}). Change the preset's batch_size or the "
                         "number of training samples by one so that no batch holds a single sample, or give the "
                         "encoder larger inputs") from e


FINITE_CHECK_EVERY = 50     # steps between two looks at _FirstNonFinite (each waits for the device)


def _scalar(x: float, device: torch.device) -> torch.Tensor:
    """A float32 scalar made on ``device`` (a fill, not a copy from the CPU: ``torch.tensor(x,
    device="cuda")`` copies from pageable memory, which makes the CPU wait for the GPU's queue)."""
    return torch.full((), float(x), dtype=torch.float32, device=device)


class _FirstNonFinite:
    """The first step of an epoch whose loss is not finite (inf or NaN), with its loss and stats,
    kept on the device (``torch.where``: looking at a GPU value makes the CPU wait for the GPU,
    so the loop looks only now and then, ``raise_if_any``). The steps after it still run: they
    train on non-finite values, and the run stops at the next look, before the epoch's model is
    validated, kept or saved."""

    def __init__(self):
        self.step = self.loss = self.sums = None

    def note(self, step: int, loss: torch.Tensor, step_sums: torch.Tensor) -> None:
        loss = loss.detach().float()
        if self.step is None:
            self.step, self.loss, self.sums = torch.full_like(loss, -1.0), loss, step_sums
        first = ~torch.isfinite(loss) & (self.step < 0)
        self.step = torch.where(first, float(step), self.step)
        self.loss = torch.where(first, loss, self.loss)
        self.sums = torch.where(first, step_sums, self.sums)

    def raise_if_any(self, names: list, epoch: int, desc: str) -> None:
        if self.step is None or self.step.item() < 0:
            return
        k, sums = len(names), self.sums.tolist()
        stats = {n: v / w if w > 0 else float("nan") for n, v, w in zip(names, sums[:k], sums[k:2 * k])}
        raise FloatingPointError(f"non-finite loss ({self.loss.item()}) at epoch {epoch}, step {int(self.step.item())} "
                                 f"({desc}): {stats}; lower the lr or lambda")


def _train_epoch(net, loader, opt, scaler, *, modality: str, device: torch.device, amp, unlabeled: bool,
                 extra_loss: ExtraLoss | None, extra_params: tuple, epoch: int, desc: str) -> dict:
    """One pass over ``loader``: L_CE (Eq. 18) plus the ``extra_loss`` term (Eq. 19) per
    step. Returns every stat's epoch mean over all processes, and ``n`` (the number of
    samples). A stat is a batch mean over the batch's samples, or a pair (this process's
    mean over some of them, how many): e.g. L_CA over the masked-in samples (Eq. 17), so
    its epoch value is the mean over every counted sample of the epoch, whatever batch it
    was in (a batch with none counted adds nothing); NaN when no sample was counted.

    A step of a labelled run in bf16 or fp32 does not wait for the device (on a GPU the CPU
    queues the next steps while it computes): the stats stay on the device until the epoch's end,
    their weights are made there (``torch.full``, not a copy from the CPU), and a non-finite loss
    is noted there (``_FirstNonFinite``) and raised every ``FINITE_CHECK_EVERY`` steps and at the
    epoch's end, naming the first such step and its stats. Two paths still wait once or twice a
    step: fp16's GradScaler (it reads whether the gradients overflowed) and a run with unlabelled
    samples (``bool(lab.any())`` and the boolean-mask indexing of its cross-entropy)."""
    sums, names, bad = None, None, _FirstNonFinite()
    for step, batch in enumerate(loader):
        x, y = _to(batch[modality], device), _to(batch["label"], device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = _forward(net, x, step=step, epoch=epoch, desc=desc, loader=loader)
            if not unlabeled:
                ce = F.cross_entropy(out.logits.float(), y)                # Eq. (18)
            else:                   # Eq. (18) over the batch's labelled samples (0 if it has none)
                lab = y != UNLABELED
                ce = F.cross_entropy(out.logits.float()[lab], y[lab]) if bool(lab.any()) \
                    else out.logits.float().sum() * 0.0
        loss, stats = ce, {"ce": (ce.detach(), lab.sum()) if unlabeled else ce.detach()}
        if dist.is_dist():          # one mean over the step's (labelled) samples of all processes
            loss = global_masked_mean(ce, lab if unlabeled else torch.ones_like(y, dtype=torch.bool))
        if unlabeled:
            stats["labeled_frac"] = (y != UNLABELED).float().mean()
        if extra_loss is not None:
            term, extra_stats = extra_loss(batch, out, device)
            loss = loss + term                                             # Eq. (19)
            stats.update(extra_stats)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if extra_params and dist.is_dist():        # outside DDP: average their gradients by hand
            for p in extra_params:
                if p.grad is not None:
                    p.grad.copy_(dist.all_reduce_sum(p.grad) / dist.world_size())
        scaler.step(opt)
        scaler.update()
        if dist.is_dist():          # ``loss`` is this process's share times W: log the step's loss over all
            n_all = dist.all_reduce_sum(_scalar(len(y), device))                        # its samples
            stats["loss"] = (loss.detach() * n_all / (dist.world_size() * len(y)), len(y))
        else:
            stats["loss"] = loss.detach()
        pairs = [v if isinstance(v, tuple) else (v, len(y)) for v in stats.values()]
        weights = [w.float() if isinstance(w, torch.Tensor) else _scalar(w, device) for _, w in pairs]
        step_sums = torch.stack([v.float() * w for (v, _), w in zip(pairs, weights)] + weights
                                + [_scalar(len(y), device)])
        sums, names = (step_sums, list(stats)) if sums is None else (sums + step_sums, names)
        bad.note(step, loss, step_sums)
        if (step + 1) % FINITE_CHECK_EVERY == 0:
            bad.raise_if_any(names, epoch, desc)
    bad.raise_if_any(names, epoch, desc)
    tot = dist.all_reduce_sum(sums).tolist()                          # every step has the same stats
    k = len(names)
    return {**{n: (v / w if w > 0 else float("nan")) for n, v, w in zip(names, tot[:k], tot[k:2 * k])},
            "n": tot[-1]}


def _epoch_record(model: Classifier, val: Dataset, modality: str, device: torch.device, epoch: int, tot: dict,
                  t0: float, train_time: float, rows: list, bar, writer, best: dict | None,
                  best_state: dict | None) -> tuple[dict, dict]:
    """Validate the epoch's model, append its history row (and show it on ``bar``, write
    it to TensorBoard), and keep it as the best if its validation macro-F1 is higher.
    Returns (best, best_state)."""
    val_m = evaluate(model, val, modality, device=device)
    row = {"epoch": epoch, **{f"train_{k}": v for k, v in tot.items() if k != "n"},
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
    return best, best_state


def _save_epoch_state(state_file: Path, key: str, epoch: int, model: Classifier, extra_params: tuple, opt,
                      scaler, loader, best: dict, best_state: dict, rows: list, objectives: tuple = ()) -> None:
    """Write the run's resumable state after ``epoch`` (rank 0, with every process's random streams)."""
    rng = dist.all_gather_objects(_rng_state(loader.generator))    # every process's streams
    if dist.is_main():
        _save_state(state_file, {
            "version": STATE_VERSION, "key": key, "epoch": epoch, "model": model.state_dict(),
            "extra_params": [p.detach() for p in extra_params], "objectives": _objective_states(objectives),
            "optimizer": opt.state_dict(),
            "scaler": scaler.state_dict(), "rng": rng, "best": provenance._plain(best),
            "best_state": best_state, "history": provenance._plain(rows), "code": provenance.code_version()})


def _finish(model: Classifier, best_state: dict, prov: dict, checkpoint: str | Path | None,
            state_file: Path | None, rows: list, best: dict, *, meta: dict, modality: str, preset: Preset,
            seed: int, epochs: int) -> FitResult:
    """Keep the best epoch's weights, write the checkpoint (rank 0), remove the finished
    run's state; the run's ``FitResult``. The meta's ``epochs`` and ``preset["epochs"]`` are the
    epochs the run trained (``epochs=`` / ``--epochs`` over the preset's), ``preset_epochs`` the
    preset's own (older checkpoints have neither key, and the preset's epochs in ``preset``)."""
    model.load_state_dict(best_state)                                  # keep the best-on-validation epoch
    model.provenance = prov
    ckpt = None
    if checkpoint is not None:
        ckpt = Path(checkpoint)
        if dist.is_main():
            save_checkpoint(ckpt, model, {**meta, "modality": modality, "val": best,
                                          "preset": preset.with_(epochs=epochs).to_dict(), "epochs": epochs,
                                          "preset_epochs": preset.epochs, "seed": seed,
                                          "input_shape": model.config.get("input_shape"), "provenance": prov})
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
    _check_shape(model, modality, train, "model")
    meta = {"classes": list(getattr(train, "classes", [])), **(meta or {})}
    return _train_loop(model, train, val, modality=modality, preset=preset, epochs=epochs, seed=seed,
                       device=device, extra_loss=None, checkpoint=checkpoint, meta=meta,
                       progress=progress, desc=f"{modality}", compile=compile, channels_last=channels_last,
                       report=report, resume=resume, state_path=state_path, log_dir=log_dir)


def _check_shape(model, modality: str, ds, role: str) -> None:
    """Refuse a model whose recorded input shape is not that of ``ds``'s ``modality``
    (e.g. ``source_modality`` naming the sources in the wrong order), before anything runs
    (``provenance.check_input_shape``); models or datasets that do not say their shapes pass."""
    if isinstance(model, Classifier) and hasattr(ds, "input_shape") and modality in getattr(ds, "modalities", ()):
        provenance.check_input_shape(model.config.get("input_shape"), ds.input_shape(modality), modality=modality,
                                     who=f"the {role} ({model.config.get('modality')!r} model)",
                                     advice="give each model the modality it was built for (source_modality=[...] "
                                            "in the order of the sources)")


def _check_classes(model, ds, role: str) -> None:
    """Refuse a source ``Classifier`` whose classes are not ``ds``'s (``provenance.check_classes``):
    its number of outputs, and the class names (in order) it records in its provenance; a
    dataset or model that does not say passes."""
    classes = getattr(ds, "classes", None)
    if isinstance(model, Classifier) and classes is not None:
        provenance.check_classes(classes, n=model.num_classes,
                                 names=(getattr(model, "provenance", None) or {}).get("classes"),
                                 who=f"the {role} ({model.config.get('modality')!r} model)")


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
    correctness) from a memory-mapped cache (``dcatkit.frozen_source.SourceCache``) instead of
    running it every step. "auto" uses the cache unless the training set augments
    inputs per epoch (``train.augment`` true), where a cache would be wrong; then
    the live source runs, with a message.

    The frozen source runs in eval mode with no gradient, on the training device; a source
    model you pass is given back as you had it (its mode, requires_grad and device).

    Under torchrun every sample is trained once per epoch (``runtime.ShardBatches``, no
    padding) and each mean -- the masked mean, the objective's plain mean without MCMA,
    cross-entropy, and what the history logs -- runs over the step's samples of all processes
    (``global_masked_mean``), as in one process whose batch is all of theirs. ``report``, ``resume``,
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
    batch without any; under torchrun over the labelled samples of the step's batches of
    all processes). MCMA needs a label, so on an unlabeled pair the mask is
    ``unlabeled_mask``: ``"confidence"`` (default) -- the pair counts when the source's
    softmax probability of its own prediction is >= ``confidence`` (0.9) -- or ``"all"``
    -- every unlabeled pair counts (D-CAT without MCMA there); labelled pairs keep the
    Eq. (16) mask. With ``mcma=False`` every pair counts. The history then has
    ``train_labeled_frac`` and ``train_mask_frac_unlabeled`` (the share of unlabeled pairs
    masked in, over the epoch's unlabeled pairs) besides ``train_mask_frac`` (the share of
    samples the MCMA mask keeps; with ``mcma=False``, where every pair counts, the share it
    would keep). The objective's terms (``train_ca``...) are means over the samples they
    count (the masked-in ones), ``train_ce`` over the labelled ones. Without unlabeled
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
    multi, srcs, names = _source_names(source, source_modality)
    _check_shape(model, modality, train, "target model")
    for i, (s, name) in enumerate(zip(srcs, names)):
        _check_shape(s, name, train, f"source {i}" if multi else "source")
        _check_classes(s, train, f"source {i}" if multi else "source")
    lams = _source_lams(lam, names)
    d_target = model.attention.d_out                         # size of K, V and the pooled output
    objectives, monitors = [None] * len(srcs), [None] * len(srcs)
    for i, s in enumerate(srcs):
        # each source's objective is initialised from the run's seed alone, as if it were the only source:
        # the other sources (their order, their number, one with lam 0) change no map's start; and the
        # objectives' own init leaves the run's random stream alone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(preset.seed if seed is None else seed)
            d_source = s.attention.d_out if isinstance(s, Classifier) else getattr(s, "d_attn", None)
            if method is None and loss != "dcat":
                get_loss(loss)                                          # unknown name -> clear error
                objectives[i] = KVLoss(LOSSES[loss], mcma=mcma, name=loss)
            else:
                objectives[i] = make_objective(method or "dcat", mcma=mcma, d_target=d_target,
                                               d_source=d_source, **(options or {}))
            monitors[i] = None if monitor is None else \
                make_objective(monitor, mcma=mcma, d_target=d_target, d_source=d_source)
    for i, (s, name) in enumerate(zip(srcs, names)):     # K / V aligned as they are: one attention size d
        d_source = s.attention.d_out if isinstance(s, Classifier) else getattr(s, "d_attn", None)
        reads_kv = any("k" in o.needs for o in (objectives[i], monitors[i]) if o is not None)
        if reads_kv and d_source is not None and d_source != d_target:
            raise ValueError(f"{'source ' + repr(name) if name else 'the source'} has attention size d = {d_source} "
                             f"and the target d = {d_target}: {method or loss!r}"
                             f"{'' if monitor is None else f' (or monitor {monitor!r})'} aligns their K and V "
                             "as they are, so both need the same d (the preset's d_attn); build the target with "
                             "the source's d_attn, or use an objective that learns a map (fitnet, contrastive) or "
                             "reads logits (kd)")
    if monitors[0] is not None and list(monitors[0].parameters()):
        raise ValueError(f"monitor={monitor!r} has parameters of its own to learn; monitor an objective "
                         "without parameters (e.g. 'dcat' or 'kd')")
    needs = tuple(dict.fromkeys((*objectives[0].needs, *(monitors[0].needs if monitors[0] else ()))))
    confident = unlabeled and mcma and unlabeled_mask == "confidence"
    if unlabeled and unlabeled_mask == "confidence" and needs:   # the confidence mask reads the source's
        needs = tuple(dict.fromkeys((*needs, "logits")))          # logits (logged only, with mcma=False)
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
        ids, settings = [_source_id(s) for s in srcs], [_source_settings(s) for s in srcs]
        resumable["run_key"] = {"source": ids if multi else ids[0],       # weights; and config, shapes, dtypes
                                "source_settings": settings if multi else settings[0]}
    # the caller's source models are given back as they were when the run ends (or fails: a cache
    # that cannot be built, a bad modality, Ctrl-C)
    with _given_back([s for s in srcs if isinstance(s, Classifier)]):
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
                value = global_masked_mean(value, torch.ones_like(src.correct) if mask is None else mask)
                #                                       one mean over the (masked-in) samples of all processes
                if mon is not None:
                    with torch.no_grad():
                        st.update({k: v for k, v in mon(out, src)[1].items() if k not in st})
                counted = mask.sum() if mask is not None else len(src.correct)  # the samples each mean is over
                st = {k: v if isinstance(v, tuple) else (v.detach(), counted)  # logged per counted sample
                      for k, v in st.items()}                                   # (or as the objective counts)
                st["mask_frac"] = src.correct.float().mean()
                if unlabeled:
                    st.update(st_unl)
                stats.update({k + sfx: v for k, v in st.items()})
                term = lam_s * value                                            # lam_s * L_s of Eq. (19)
                total = term if total is None else total + term
            return total, stats

        if "run_key" in resumable:     # the cache stores K and V in float16: a run resumes the way it started
            cached = [isinstance(s, SourceCache) for s in srcs]
            resumable["run_key"]["source_cache"] = cached if multi else cached[0]
        bm = [getattr(s, "batch_modalities", None) for s in srcs]
        batch_modalities = None if None in bm else tuple(dict.fromkeys(m for b in bm for m in b))
        res = _train_loop(model, train, val, modality=modality, preset=preset, epochs=epochs, seed=seed,
                          device=device, extra_loss=transfer_term, checkpoint=checkpoint,
                          meta={**meta, "source_modality": names if multi else names[0]}, progress=progress,
                          desc=f"{'+'.join(map(str, names))}->{modality} ({method_name})", compile=compile,
                          channels_last=channels_last, batch_modalities=batch_modalities, report=report,
                          extra_params=tuple(p for obj in objectives for p in obj.parameters()),
                          objectives=tuple(o for o in (*objectives, *monitors) if o is not None), **resumable)
    res.objective = dict(zip(names, objectives)) if multi else objectives[0]
    return res


@contextlib.contextmanager
def _given_back(modules):
    """Put each of ``modules`` back as the caller had it on leaving: training flag, each
    parameter's requires_grad and its device (a frozen source is put in eval mode, frozen
    and moved to the training device for a run; the caller's model is theirs)."""
    saved = [(m, m.training, [p.requires_grad for p in m.parameters()], next((p.device for p in m.parameters()), None))
             for m in modules]
    try:
        yield
    finally:
        for m, training, grads, where in saved:
            if where is not None:
                m.to(where)
            m.train(training)
            for p, g in zip(m.parameters(), grads):
                p.requires_grad_(g)


UNLABELED_MASKS = ("confidence", "all")


def _unlabeled_mask(src: SourceOutput, labels: torch.Tensor, mcma: bool, how: str, confidence: float
                    ) -> tuple[SourceOutput, dict]:
    """The source's output with the MCMA indicator of the batch's unlabeled pairs
    (label ``UNLABELED``) replaced: ``how="confidence"``: the source's softmax probability
    of its own prediction >= ``confidence``; ``"all"``: every unlabeled pair (and with
    ``mcma=False`` the mask it would be: every pair counts anyway, since the objectives and
    the masked mean then ignore it, and the logged shares say what MCMA would keep; without
    the source's logits there, every unlabeled pair). Labelled pairs keep Eq. (16).
    Returns it and {"mask_frac_unlabeled": share of the unlabeled pairs masked in (0 when
    the batch has none)}."""
    unl = labels == UNLABELED
    if how == "all" or (not mcma and src.logits is None):
        keep = torch.ones_like(unl)
    else:
        if src.logits is None:
            raise ValueError("the confidence mask on unlabeled pairs reads the source's logits, but the source "
                             "gave none; pass unlabeled_mask='all' or a source that returns logits")
        keep = torch.softmax(src.logits.float(), dim=1).amax(1) >= confidence
    correct = torch.where(unl, keep, src.correct)
    frac = (keep & unl).float().sum() / unl.float().sum().clamp(min=1.0)
    return src._replace(correct=correct), {"mask_frac_unlabeled": (frac, unl.sum())}   # over the unlabeled
