"""Transfer losses. The paper's cross-attention loss (Eqs. 7 and 17) and a registry.

Every transfer loss has the signature
``loss(k_target, v_target, k_source, v_source, mask=None) -> scalar tensor``
and is registered by name in ``LOSSES`` so a notebook parameter can pick it.
``dcatkit.objectives`` generalises this to objectives that also read logits and
pooled outputs (kd, fitnet, contrastive); its ``dcat`` calls the loss below.
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
    check_mask(mask, k_t.shape[0])


def check_mask(mask: torch.Tensor | None, b: int) -> None:
    """``mask`` is None or a (b,) bool tensor (the MCMA indicator of Eq. 16)."""
    if mask is not None and (not isinstance(mask, torch.Tensor) or mask.shape != (b,) or mask.dtype != torch.bool):
        found = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor of shape ({b},), got {found}")


def mean_weights(mask: torch.Tensor | None, b: int, device=None) -> torch.Tensor:
    """Per-sample weights (float64, shape (b,)) of the mean over masked-in samples
    (Eq. 17): m_i / max(sum(m), 1), or 1/b without a mask. All zero when no sample is
    in, so a loss sum_i w_i L_i is 0 and still has a gradient graph. Every transfer
    objective reduces its per-sample values with these weights (``dcatkit.objectives``)."""
    check_mask(mask, b)
    if mask is None:
        return torch.full((b,), 1.0 / b, dtype=torch.float64, device=device)
    m = mask.double()
    return m / m.sum().clamp(min=1.0)



def _resolve_weight(mask, weight, b: int, device) -> torch.Tensor:
    """The (b,) weights of the reduction: ``weight`` as given, else ``mean_weights(mask)``."""
    if weight is None:
        return mean_weights(mask, b, device)
    if mask is not None:
        raise ValueError("pass mask or weight, not both (weight already encodes the mask: see mean_weights)")
    if not isinstance(weight, torch.Tensor) or weight.shape != (b,) or not weight.is_floating_point():
        found = f"{weight.dtype} {tuple(weight.shape)}" if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a float tensor of shape ({b},) (see mean_weights), got {found}")
    return weight.to(device=device, dtype=torch.float64)


def cross_attention_loss_dense(k_target, v_target, k_source, v_source, mask=None, weight=None):
    """Eq. (7) computed literally: per sample M = K^T V (d x d), M / ||M||_F,
    loss = ||M_t/||M_t|| - M_s/||M_s|| ||_F. Costs O(B T d^2) time and B d^2
    memory. Kept as the readable reference and for very long sequences (T > d).
    Reduction as in ``cross_attention_loss``.
    """
    _check(k_target, v_target, k_source, v_source, mask)
    kt, vt, ks, vs = (x.double() for x in (k_target, v_target, k_source, v_source))
    m_t = kt.transpose(1, 2) @ vt                                   # (B, d, d)
    m_s = ks.transpose(1, 2) @ vs                                   # (B, d, d)
    n_t = (m_t.square().sum((1, 2)) + EPS**2).sqrt()[:, None, None]
    n_s = (m_s.square().sum((1, 2)) + EPS**2).sqrt()[:, None, None]
    d2 = (m_t / n_t - m_s / n_s).square().sum((1, 2))               # (B,)
    per_sample = (d2 + EPS**2).sqrt()
    weight = _resolve_weight(mask, weight, per_sample.shape[0], per_sample.device)
    return (weight * per_sample).sum().to(torch.promote_types(k_target.dtype, torch.float32))


NEAR_ZERO_D2 = 0.01   # squared loss below which a sample is recomputed in float64 (L < 0.1)


def _gram_terms(k_t, v_t, k_s, v_s, dtype):
    """The Gram-form pieces of Eq. (7) for a batch, computed in ``dtype`` (see
    ``_GramLoss``): (per-sample L, d2, what the backward needs)."""
    e2 = EPS**2
    kt, vt, ks, vs = k_t.to(dtype), v_t.to(dtype), k_s.to(dtype), v_s.to(dtype)
    gk_tt, gv_tt = kt @ kt.mT, vt @ vt.mT                      # K_t K_t^T, V_t V_t^T (B, T_t, T_t)
    gk_ts, gv_ts = kt @ ks.mT, vt @ vs.mT                      # K_t K_s^T, V_t V_s^T (B, T_t, T_s)
    gk_ss, gv_ss = ks @ ks.mT, vs @ vs.mT                      # K_s K_s^T, V_s V_s^T (B, T_s, T_s)
    tt, ts, ss = (gk_tt * gv_tt).sum((1, 2)), (gk_ts * gv_ts).sum((1, 2)), (gk_ss * gv_ss).sum((1, 2))
    a_t, a_s = tt + e2, ss + e2                                # n_t^2, n_s^2
    r = a_t.rsqrt() * a_s.rsqrt()                              # 1 / (n_t n_s); a_t * a_s would overflow float32
    cos = ts * r                                               # <M_t, M_s> / (n_t n_s)
    d2 = tt / a_t + ss / a_s - 2 * cos
    per_sample = (d2.clamp(min=0) + e2).sqrt()                 # L
    saved = (kt, vt, ks, vs, gk_tt, gv_tt, gk_ts, gv_ts, gk_ss, gv_ss, a_t, a_s, r, cos, d2, per_sample)
    return per_sample, d2, saved


def _gram_grads(saved, coef, need):
    """Gradients of sum_i coef_i L_i w.r.t. (K_t, V_t, K_s, V_s) from ``_gram_terms``' ``saved``."""
    kt, vt, ks, vs, gk_tt, gv_tt, gk_ts, gv_ts, gk_ss, gv_ss, a_t, a_s, r, cos, d2, per_sample = saved
    e2 = EPS**2
    g = coef * (d2 >= 0) * 0.5 / per_sample                           # coef * dL/d(d2)
    dtt = (2 * g * (e2 / a_t**2 + cos / a_t))[:, None, None]          # 2 d/d tt (tt is quadratic in K_t)
    dts = (-2 * g * r)[:, None, None]                                 # d/d ts
    out = [None] * 4
    if need[0]:        # d tt/d K_t = 2 (V_t V_t^T) K_t,  d ts/d K_t = (V_t V_s^T) K_s
        out[0] = torch.baddbmm((gv_ts * dts) @ ks, gv_tt * dtt, kt)
    if need[1]:
        out[1] = torch.baddbmm((gk_ts * dts) @ vs, gk_tt * dtt, vt)
    if need[2] or need[3]:                # only when the source is not frozen
        dss = (2 * g * (e2 / a_s**2 + cos / a_s))[:, None, None]
        if need[2]:
            out[2] = torch.baddbmm((gv_ts * dts).mT @ kt, gv_ss * dss, ks)
        if need[3]:
            out[3] = torch.baddbmm((gk_ts * dts).mT @ vt, gk_ss * dss, vs)
    return out


class _GramLoss(torch.autograd.Function):
    """sum_i w_i L_i with L_i of Eq. (7), via T x T Grams.

    Forward, per sample, with <M_a, M_b>_F = sum((K_a K_b^T) * (V_a V_b^T))::

        tt = ||M_t||^2,  ts = <M_t, M_s>,  ss = ||M_s||^2,  n = sqrt(. + eps^2)
        d2 = tt/n_t^2 + ss/n_s^2 - 2 ts/(n_t n_s),  L = sqrt(max(d2, 0) + eps^2)

    Precision: d2 is 2 - 2 cos(M_t, M_s), which cancels as the loss approaches 0: in
    float32 the relative error of L and of its gradient is about 2e-7 / L^2 (measured
    at d = 128 and 512): 2e-5 at L = 0.1, 1e-3 at L = 0.014, useless at L -> 0. So the
    batch runs in float32 and the counted samples with d2 < 0.01 (L < 0.1) are
    recomputed, value and gradient, in float64. Float32 is several times faster (on a
    CPU, and on GPUs with slow float64). In D-CAT training on the synthetic data (seed 0,
    lam = 1) no sample went below L = 0.18 in 20 epochs, so the recompute is for rare near-perfect
    matches (an earlier threshold, L < 0.5, fired on 3 of 4 batches and cost ~1/3 of
    the loss's time). On CUDA the whole batch runs in float64 instead: the test
    ``d2.min() < 0.01`` reads a value back from the GPU, which stalls a launch-bound
    training step (and makes it impossible to capture in a CUDA graph); float64 needs no
    test, is at least as precise, and these Grams are small (B T^2 d).

    Backward by hand (autograd would differentiate both operands of every product
    and keep a dozen small intermediates): d tt/d K_t = 2 (V_t V_t^T) K_t and
    d ts/d K_t = (V_t V_s^T) K_s (same for V with K and V swapped).
    ``tests/test_losses.py`` checks it with ``torch.autograd.gradcheck`` and
    against a per-sample loop.
    """

    @staticmethod
    def forward(ctx, k_t, v_t, k_s, v_s, weight):
        dtype = torch.promote_types(torch.promote_types(k_t.dtype, k_s.dtype), torch.float32)
        if k_t.is_cuda:      # float64 throughout: no near-zero test, so no GPU -> CPU sync (see below)
            dtype = torch.float64
        per_sample, d2, saved = _gram_terms(k_t, v_t, k_s, v_s, dtype)
        w_main, idx, sub = weight.to(dtype), None, ()
        near = None
        if dtype != torch.float64 and not d2.min() >= NEAR_ZERO_D2:   # one cheap test: rarely true in training
            # near L = 0 (counted samples), or a Gram past float32's range (any sample: 0 * inf is nan)
            near = ((d2 < NEAR_ZERO_D2) & (weight > 0)) | ~torch.isfinite(d2)
        if near is not None and near.any():           # float64 for the few counted samples near L = 0
            idx = near.nonzero()[:, 0]
            w_main = w_main.masked_fill(near, 0)
            per_sample = per_sample.masked_fill(near, 0)      # an overflowed float32 value is nan: 0 * nan = nan
            sub_per_sample, _, sub = _gram_terms(k_t[idx], v_t[idx], k_s[idx], v_s[idx], torch.float64)
        loss = (w_main * per_sample).sum()
        if idx is not None:
            loss = (loss.double() + (weight[idx].double() * sub_per_sample).sum()).to(dtype)
        ctx.save_for_backward(*saved, *sub, w_main, weight, idx)
        ctx.n_saved, ctx.dtypes = len(saved), (k_t.dtype, v_t.dtype, k_s.dtype, v_s.dtype)
        return loss.to(torch.promote_types(k_t.dtype, torch.float32))

    @staticmethod
    def backward(ctx, grad):
        all_saved, n = ctx.saved_tensors, ctx.n_saved
        saved, sub, (w_main, weight, idx) = all_saved[:n], all_saved[n:-3], all_saved[-3:]
        need = ctx.needs_input_grad[:4]
        out = _gram_grads(saved, grad.to(w_main.dtype) * w_main, need)
        if sub:
            for o, o_sub in zip(out, _gram_grads(sub, grad.double() * weight[idx].double(), need)):
                if o is not None:
                    o.index_copy_(0, idx, o_sub.to(o.dtype))
        return (*(o if o is None else o.to(dt) for o, dt in zip(out, ctx.dtypes)), None)


@register_loss("dcat")
def cross_attention_loss(k_target, v_target, k_source, v_source, mask=None, method="auto", weight=None):
    """D-CAT cross-attention loss, Eq. (7), masked as in Eq. (17).

    Shapes: k_target, v_target (B, T_t, d); k_source, v_source (B, T_s, d);
    mask (B,) bool, True where the frozen source classified the sample
    correctly (masked cross-modal alignment, MCMA). T_t and T_s may differ.

    Per sample, with M_t = K_t^T V_t and M_s = K_s^T V_s (both d x d)::

        L = || M_t / ||M_t||_F  -  M_s / ||M_s||_F ||_F                 (Eq. 7)

    reduced by the mean over masked-in samples (0, with a graph, if none).
    ``weight`` (B,) float, instead of ``mask``: the reduction sum_i w_i L_i with
    given weights (``mean_weights(mask)`` is what ``mask`` means; a caller that
    averages over several processes passes its own).
    Choices the paper leaves open: "normalized" is read as M / ||M||_F, so the
    loss (the Frobenius norm of Eqs. 6-7, not squared) lies in [0, 2]; a batch is
    reduced by the mean over its masked-in samples; norms get an epsilon
    (||M|| -> sqrt(||M||^2 + eps^2), eps = 1e-8) so all-zero inputs give a finite loss.

    ``method="gram"`` never forms a d x d matrix: expanding the square,
    ||a - b||^2 = <M_t,M_t>/n_t^2 + <M_s,M_s>/n_s^2 - 2<M_t,M_s>/(n_t n_s),
    with <K_a^T V_a, K_b^T V_b>_F = sum((K_a K_b^T) * (V_a V_b^T)), which costs
    O(B T^2 d) instead of O(B T d^2). The expansion cancels catastrophically
    near zero loss: on the CPU it runs in float32 (float64 inputs in float64) and
    recomputes the counted samples with L < 0.1 in float64, as it does samples whose Grams
    overflow float32 (||K^T V||_F beyond about 1e19); on CUDA the whole batch runs in float64
    (no near-zero test, so no GPU -> CPU sync; see ``_GramLoss``); its backward is written out.
    ``"auto"`` picks "gram" when T_t * T_s <= d * (T_t + T_s) / 2, else "dense".
    """
    _check(k_target, v_target, k_source, v_source, mask)
    t_t, t_s, d = k_target.shape[1], k_source.shape[1], k_target.shape[2]
    if method == "auto":
        method = "gram" if t_t * t_s <= d * (t_t + t_s) / 2 else "dense"
    if method == "dense":
        return cross_attention_loss_dense(k_target, v_target, k_source, v_source, mask, weight)
    if method != "gram":
        raise ValueError(f"method must be 'auto', 'gram' or 'dense', got {method!r}")
    weight = _resolve_weight(mask, weight, k_target.shape[0], k_target.device)
    return _GramLoss.apply(k_target, v_target, k_source, v_source, weight)
