"""Transfer losses. The paper's cross-attention loss (Eqs. 7 and 17) and a registry.

Every transfer loss has the signature
``loss(k_target, v_target, k_source, v_source, mask=None) -> scalar tensor``
and is registered by name in ``LOSSES`` so a notebook parameter can pick it.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

EPS = 1e-8

LossFn = Callable[..., torch.Tensor]
LOSSES: dict[str, LossFn] = {}


def register_loss(name: str):
    """Decorator: make a transfer loss selectable by ``name``."""

    def deco(fn: LossFn) -> LossFn:
        if name in LOSSES:
            raise ValueError(f"transfer loss {name!r} is already registered")
        LOSSES[name] = fn
        return fn

    return deco


def get_loss(name: str) -> LossFn:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown transfer loss {name!r}: expected one of {sorted(LOSSES)}") from None


def check_lam(lam, name: str = "lam") -> float:
    """lambda of Eq. (19) must be a finite number >= 0 (bools are rejected)."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (the weight of L_CA in Eq. 19), got {lam!r}")
    return float(lam)


def _check(k_t, v_t, k_s, v_s, mask):
    for name, x in (("k_target", k_t), ("v_target", v_t), ("k_source", k_s), ("v_source", v_s)):
        if x.ndim != 3:
            raise ValueError(f"{name} must be (B, T, d), got shape {tuple(x.shape)}")
    if k_t.shape != v_t.shape:
        raise ValueError(f"k_target {tuple(k_t.shape)} and v_target {tuple(v_t.shape)} must match")
    if k_s.shape != v_s.shape:
        raise ValueError(f"k_source {tuple(k_s.shape)} and v_source {tuple(v_s.shape)} must match")
    if k_t.shape[0] != k_s.shape[0] or k_t.shape[2] != k_s.shape[2]:
        raise ValueError(
            "target and source need the same batch size B and attention size d "
            f"(T may differ): got target {tuple(k_t.shape)}, source {tuple(k_s.shape)}")
    if mask is not None and (mask.shape != (k_t.shape[0],) or mask.dtype != torch.bool):
        raise ValueError(f"mask must be a bool tensor of shape ({k_t.shape[0]},), "
                         f"got {mask.dtype} {tuple(mask.shape)}")


def _masked_mean(per_sample: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over masked-in samples (Eq. 17); 0 with a gradient graph when none are."""
    if mask is None:
        return per_sample.mean()
    m = mask.to(per_sample.dtype)
    return (per_sample * m).sum() / m.sum().clamp(min=1.0)


def cross_attention_loss_dense(k_target, v_target, k_source, v_source, mask=None):
    """Eq. (7) computed literally: per sample M = K^T V (d x d), M / ||M||_F,
    loss = ||M_t/||M_t|| - M_s/||M_s|| ||_F. Costs O(B T d^2) time and B d^2
    memory. Kept as the readable reference and for very long sequences (T > d).
    """
    _check(k_target, v_target, k_source, v_source, mask)
    kt, vt, ks, vs = (x.double() for x in (k_target, v_target, k_source, v_source))
    m_t = kt.transpose(1, 2) @ vt                                   # (B, d, d)
    m_s = ks.transpose(1, 2) @ vs                                   # (B, d, d)
    n_t = (m_t.square().sum((1, 2)) + EPS**2).sqrt()[:, None, None]
    n_s = (m_s.square().sum((1, 2)) + EPS**2).sqrt()[:, None, None]
    d2 = (m_t / n_t - m_s / n_s).square().sum((1, 2))               # (B,)
    per_sample = (d2 + EPS**2).sqrt()
    return _masked_mean(per_sample, mask).to(torch.promote_types(k_target.dtype, torch.float32))


def _frob_inner(k_a, v_a, k_b, v_b):
    """<K_a^T V_a, K_b^T V_b>_F per sample = sum((K_a K_b^T) * (V_a V_b^T)).

    k_a, v_a: (B, T_a, d); k_b, v_b: (B, T_b, d) -> (B,). Costs O(B T_a T_b d).
    """
    return ((k_a @ k_b.transpose(1, 2)) * (v_a @ v_b.transpose(1, 2))).sum((1, 2))


@register_loss("dcat")
def cross_attention_loss(k_target, v_target, k_source, v_source, mask=None, method="auto"):
    """D-CAT cross-attention loss, Eq. (7), masked as in Eq. (17).

    Shapes: k_target, v_target (B, T_t, d); k_source, v_source (B, T_s, d);
    mask (B,) bool, True where the frozen source classified the sample
    correctly (masked cross-modal alignment, MCMA). T_t and T_s may differ.

    Per sample, with M_t = K_t^T V_t and M_s = K_s^T V_s (both d x d)::

        L = || M_t / ||M_t||_F  -  M_s / ||M_s||_F ||_F                 (Eq. 7)

    reduced by the mean over masked-in samples (0, with a graph, if none).
    Choices the paper leaves open: the loss is the Frobenius norm itself (not
    squared), so it lies in [0, 2]; norms get an epsilon (||M|| ->
    sqrt(||M||^2 + eps^2), eps = 1e-8) so all-zero inputs give a finite loss.

    ``method="gram"`` never forms a d x d matrix: expanding the square,
    ||a - b||^2 = <M_t,M_t>/n_t^2 + <M_s,M_s>/n_s^2 - 2<M_t,M_s>/(n_t n_s),
    with <K_a^T V_a, K_b^T V_b>_F = sum((K_a K_b^T) * (V_a V_b^T)), which costs
    O(B T^2 d) instead of O(B T d^2). The expansion cancels catastrophically
    near zero loss, so it runs in float64 (the T x T Grams are small).
    ``"auto"`` picks "gram" when T_t * T_s <= d * (T_t + T_s) / 2, else "dense".
    """
    _check(k_target, v_target, k_source, v_source, mask)
    t_t, t_s, d = k_target.shape[1], k_source.shape[1], k_target.shape[2]
    if method == "auto":
        method = "gram" if t_t * t_s <= d * (t_t + t_s) / 2 else "dense"
    if method == "dense":
        return cross_attention_loss_dense(k_target, v_target, k_source, v_source, mask)
    if method != "gram":
        raise ValueError(f"method must be 'auto', 'gram' or 'dense', got {method!r}")
    kt, vt, ks, vs = (x.double() for x in (k_target, v_target, k_source, v_source))
    # <M_t,M_t> and <M_t,M_s> from one Gram each for K and V: K_t [K_t; K_s]^T, (B, T_t, T_t + T_s)
    prod = (kt @ torch.cat([kt, ks], 1).transpose(1, 2)) * (vt @ torch.cat([vt, vs], 1).transpose(1, 2))
    tt = prod[:, :, :t_t].sum((1, 2))                               # ||M_t||^2, (B,)
    ts = prod[:, :, t_t:].sum((1, 2))                               # <M_t, M_s>
    ss = _frob_inner(ks, vs, ks, vs)                                # ||M_s||^2
    n_t, n_s = (tt + EPS**2).sqrt(), (ss + EPS**2).sqrt()
    d2 = tt / n_t**2 + ss / n_s**2 - 2 * ts / (n_t * n_s)
    per_sample = (d2.clamp(min=0) + EPS**2).sqrt()                  # (B,)
    return _masked_mean(per_sample, mask).to(torch.promote_types(k_target.dtype, torch.float32))
