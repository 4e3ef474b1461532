"""Diagnostics that explain a transfer result: did alignment happen at all?

- ``alignment_curve``: L_CA (Eq. 7, MCMA-masked as in training) per epoch from
  training histories: the D-CAT target's (optimised) and the baseline's (measured
  with ``fit_transfer(method="none", monitor="dcat")``, never optimised).
- ``attention_outputs``: K, V, pooled output, logits, labels and sample ids of a model over a dataset.
- ``linear_map_r2`` / ``theorem41`` / ``check_theorem41``: Theorem 4.1 on trained models. The theorem
  says that when K_t^T V_t = K_s^T V_s, the target's keys are linear maps of the
  source's (K_t^T = K_s^T R) and so are its values (V_t = S V_s): per sample,
  every target key (value) vector lies in the span of the source's T_s key
  (value) vectors. We fit that per-sample least-squares map on held-out samples
  and report the explained fraction R^2, next to the same fit against another
  sample's source vectors (a shuffled pairing: what any sample's vectors explain).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import torch


def alignment_curve(histories: Mapping[str, pd.DataFrame], column: str = "train_ca") -> pd.DataFrame:
    """One row per epoch, one column per run: the training histories' L_CA (``column``).
    A history without the column (a run that neither optimised nor monitored L_CA)
    is an error that says how to record it."""
    cols = {}
    for name, h in histories.items():
        if column not in h.columns:
            raise ValueError(f"the history of {name!r} has no {column!r} column; train the baseline with "
                             "fit_transfer(..., method='none', monitor='dcat') (or experiment.train_transfer) "
                             "to measure L_CA without optimising it")
        cols[name] = h.set_index("epoch")[column]
    return pd.DataFrame(cols)


@torch.no_grad()
def attention_outputs(model, ds, modality: str, batch_size: int = 64, device="cpu") -> dict[str, np.ndarray]:
    """The model's outputs over ``ds`` in eval mode: ``k``, ``v`` (N, T, d), ``pooled``
    (N, d), ``logits`` (N, C) and ``label`` (N,), as float32 / int64 numpy arrays, and ``id``
    (N,) the samples' ids (strings) when the dataset's items carry one (a ``PairedDataset``'s
    do): ``theorem41`` checks by them that two runs saw the same samples in the same order."""
    from .runtime import make_loader, only_modalities, resolve_device

    device = resolve_device(device)
    model.eval().to(device)
    parts: dict[str, list] = {"k": [], "v": [], "pooled": [], "logits": [], "label": [], "id": []}
    for batch in make_loader(only_modalities(ds, (modality,)), batch_size, shuffle=False, device=device):
        out = model(batch[modality].to(device))
        for f in ("k", "v", "pooled", "logits"):
            parts[f].append(getattr(out, f).float().cpu().numpy())
        parts["label"].append(batch["label"].numpy())
        if "id" in batch:
            parts["id"].append(np.asarray([str(i) for i in batch["id"]]))
    if len(parts["id"]) != len(parts["label"]):               # items without ids: no id column
        del parts["id"]
    return {f: np.concatenate(v) for f, v in parts.items()}


def linear_map_r2(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per sample, how much of the target's vectors the source's vectors span linearly.

    source (N, T_s, d), target (N, T_t, d): K (or V) of the same N samples. For each
    sample n the least-squares map R_n (T_s x T_t) of Theorem 4.1, K_t^T ~ K_s^T R_n,
    is fitted (``torch.linalg.lstsq``, float64) and

        R^2_n = 1 - ||K_t^T - K_s^T R_n||_F^2 / ||K_t^T||_F^2

    is returned, (N,). The denominator is not centred: the theorem's map has no
    intercept, and "all of the target lies in the source's span" is R^2 = 1. Needs
    T_s < d (T_s vectors that span all of R^d explain anything).
    """
    if source.ndim != 3 or target.ndim != 3 or len(source) != len(target) or source.shape[2] != target.shape[2]:
        raise ValueError(f"source (N, T_s, d) and target (N, T_t, d) of the same N samples and d expected, "
                         f"got {source.shape} and {target.shape}")
    n, t_s, d = source.shape
    if t_s >= d:
        raise ValueError(f"the source has T_s = {t_s} vectors of size d = {d}: they span R^d and fit any target "
                         "(R^2 = 1 whatever the models learnt); the check needs T_s < d")
    x = torch.from_numpy(np.ascontiguousarray(source, dtype=np.float64)).transpose(1, 2)    # (N, d, T_s)
    y = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float64)).transpose(1, 2)    # (N, d, T_t)
    r = torch.linalg.lstsq(x, y, driver="gelsd").solution                                  # (N, T_s, T_t)
    resid = (y - x @ r).square().sum((1, 2))
    energy = y.square().sum((1, 2)).clamp(min=1e-300)
    return (1 - resid / energy).numpy()


def theorem41(source_out: Mapping[str, np.ndarray], target_outs: Mapping[str, Mapping[str, np.ndarray]],
              seed: int = 0) -> pd.DataFrame:
    """Theorem 4.1 for several target models against one source, on the same held-out samples.

    ``source_out`` / ``target_outs[name]``: ``attention_outputs`` of the frozen source and of
    each target (e.g. {"baseline": ..., "D-CAT": ...}) over the same dataset. Rows: run x
    tensor (K, V); columns ``r2`` (mean per-sample R^2, ``linear_map_r2``), ``r2_shuffled``
    (the same fit against a random other sample's source vectors: the level that needs no
    sample-specific alignment) and ``r2_gain`` (their difference).

    Needs at least 2 samples (the shuffled control pairs each with *another* one). "The same
    samples" is checked on the sample ids (``id``, which ``attention_outputs`` returns for a
    dataset whose items carry one) where both sides have them, else on the labels alone (a
    reordering within a class then passes unseen).
    """
    n = len(source_out["k"])
    if n < 2:
        raise ValueError(f"theorem41 needs at least 2 held-out samples (the shuffled control pairs each sample with "
                         f"another one), got {n}")
    order = np.random.default_rng(seed).permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, -1)                    # one random cycle: no sample is paired with itself
    rows = []
    for name, out in target_outs.items():
        if len(out["k"]) != n:
            raise ValueError(f"{name!r} was run on {len(out['k'])} samples, the source on {n}: the same samples, "
                             "in the same order, needed")
        by_id = "id" in out and "id" in source_out
        same = (np.array_equal(np.asarray(out["id"]), np.asarray(source_out["id"])) if by_id
                else np.array_equal(out["label"], source_out["label"]))
        if not same:
            raise ValueError(f"{name!r} was not run on the same samples as the source (same order needed): its "
                             + ("sample ids differ" if by_id else "labels differ (no sample ids to compare: "
                                "attention_outputs gives them for datasets whose items carry an id)"))
        for f in ("k", "v"):
            r2 = linear_map_r2(source_out[f], out[f]).mean()
            shuffled = linear_map_r2(source_out[f][perm], out[f]).mean()
            rows.append({"run": name, "tensor": f.upper(), "r2": r2, "r2_shuffled": shuffled,
                         "r2_gain": r2 - shuffled})
    return pd.DataFrame(rows)


def check_theorem41(source, targets: Mapping[str, object], ds, *, source_modality: str, target_modality: str,
                    batch_size: int = 64, device="cpu", seed: int = 0) -> pd.DataFrame:
    """``theorem41`` from models: the frozen ``source`` and each target (a ``Classifier`` or an
    ``experiment.Run``; e.g. {"baseline": base, "D-CAT": dcat}) run over the held-out ``ds``
    (e.g. ``splits.test``). Needs the source's T_s below the attention size d."""
    model = lambda m: getattr(m, "model", m)                   # noqa: E731  (a Run or a model)
    src = attention_outputs(model(source), ds, source_modality, batch_size, device)
    outs = {n: attention_outputs(model(t), ds, target_modality, batch_size, device) for n, t in targets.items()}
    return theorem41(src, outs, seed)
