"""Transfer objectives: what the target learns from the frozen source, chosen by name.

Training minimises ``L_CE + lam * L_transfer`` (Eq. 19, with the paper's L_CA
generalised to any objective below). An objective sees, for one batch, the
target's output (``model.ClassifierOutput``: logits, q, k, v, pooled) and the
frozen source's (``SourceOutput``: k, v, correct, logits, pooled) and returns a
scalar. Objectives with parameters (a projection, a temperature) are
``nn.Module`` parameters trained with the target and thrown away afterwards:
the target model itself stays single-sensor.

=============  ===========================================================  ===========  ===================
name           per-sample term l_i                                          source reads parameters
=============  ===========================================================  ===========  ===================
``none``       0: the baseline (cross-entropy only)                         nothing      --
``dcat``       || M_t/||M_t|| - M_s/||M_s|| ||_F,  M = K^T V (Eq. 7)         k, v         --
``kd``         T^2 KL(softmax(z_s/T) || softmax(z_t/T))  (Hinton et al.)    logits       --
``fitnet``     mean_j ((W p_t + b) - p_s)_j^2,  p = pooled attention out    pooled       W (d_s x d_t), b
``contrastive``symmetric InfoNCE of g_t(p_t) vs g_s(p_s), CLIP-style         pooled       g_t, g_s, temperature
``dcat+kd``    l_dcat + l_kd (any ``a+b`` of the above works the same way)  k, v, logits --
=============  ===========================================================  ===========  ===================

MCMA (masked cross-modal alignment, Eqs. 16-17) applies to every objective and is
switched by ``mcma``: with it, only samples the frozen source classified
correctly count, and the batch value is the *masked mean*
``sum_i w_i l_i`` with ``w = losses.mean_weights(mask)`` (``m_i / max(sum m, 1)``:
0, with a gradient graph, when the source got every sample wrong). Without it,
every sample has weight ``1/B``. For ``contrastive`` the mask selects the
*anchors*: a masked-in sample i contributes its two InfoNCE terms (target i
against all sources, source i against all targets); masked-out samples still
serve as negatives for the others, because "this is a different sample" stays
true when the source misclassified it (what MCMA distrusts is the source's
representation as a *target* to move towards). Negatives are the samples of the
local batch (under torchrun: of each process's batch; nothing is gathered).

Pick by name: ``make_objective("kd", kd_temperature=4.0)``; combine with ``+``:
``make_objective("dcat+kd")``. A new objective is a subclass of ``Objective``
with ``needs`` (the source outputs it reads), a ``stat`` name and ``loss``,
registered with ``@register_objective("name")``.
"""
from __future__ import annotations

import inspect
import math
import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .losses import cross_attention_loss, mean_weights
from .model import ClassifierOutput

SOURCE_FIELDS = ("k", "v", "logits", "pooled")


class SourceOutput(NamedTuple):
    """What the frozen source provides for one batch of B samples. Fields an objective
    does not read may be None (e.g. a source cache that stored only K and V)."""

    k: torch.Tensor | None                # (B, T_s, d)
    v: torch.Tensor | None                # (B, T_s, d)
    correct: torch.Tensor                 # (B,) bool: the MCMA indicator of Eq. (16)
    logits: torch.Tensor | None = None    # (B, C)
    pooled: torch.Tensor | None = None    # (B, d_s): attention output averaged over time

    @classmethod
    def from_output(cls, out: ClassifierOutput, labels: torch.Tensor) -> "SourceOutput":
        """From the source model's forward pass and the batch's labels (B,)."""
        return cls(out.k, out.v, out.logits.argmax(1) == labels, out.logits, out.pooled)


def _float(x: torch.Tensor) -> torch.Tensor:
    """float32 for half/bfloat16 inputs (e.g. from a float16 cache or AMP); float64 stays."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


class Objective(nn.Module):
    """Base class. ``forward(target, source, weight=None) -> (value, stats)``:
    ``value`` a scalar tensor, ``stats`` a dict for the training history, one entry per
    objective named ``stat``: a detached scalar, or a pair (detached scalar, number of samples
    it counts), which the history averages by that count (contrastive's skipped batch counts 0).

    ``weight`` (B,) float overrides the per-sample weights of the reduction (what a
    caller averaging over several processes needs); by default they are
    ``self.weights(source)``: the MCMA masked mean, or the plain mean without MCMA.
    """

    name: str = ""                  # its registered name (set by register_objective)
    needs: tuple[str, ...] = ()     # source fields read, from SOURCE_FIELDS
    stat: str = ""                  # its column in the training history: train_<stat> ("" = none)

    def __init__(self, mcma: bool = True):
        super().__init__()
        self.mcma = bool(mcma)

    def weights(self, source: SourceOutput) -> torch.Tensor:
        """(B,) float64 weights of the masked mean (see the module docstring)."""
        return mean_weights(source.correct if self.mcma else None, source.correct.shape[0],
                            source.correct.device)

    def loss(self, target: ClassifierOutput, source: SourceOutput, weight: torch.Tensor) -> torch.Tensor:
        """sum_i weight_i * l_i for this objective's per-sample term l_i."""
        raise NotImplementedError

    def forward(self, target: ClassifierOutput, source: SourceOutput,
                weight: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        b = target.logits.shape[0]
        if source.correct.shape != (b,) or source.correct.dtype != torch.bool:
            raise ValueError(f"source.correct must be a bool tensor of shape ({b},) (the target's batch), "
                             f"got {source.correct.dtype} {tuple(source.correct.shape)}")
        for f in self.needs:
            if getattr(source, f) is None:
                raise ValueError(f"objective {self.name!r} reads the source's {f!r}, but the source gave "
                                 f"none; a source cache must be built with {f!r} stored (SourceCache.build)")
        if weight is None:
            weight = self.weights(source)
        elif weight.shape != (b,) or not weight.is_floating_point():
            raise ValueError(f"weight must be a float tensor of shape ({b},), got {weight.dtype} "
                             f"{tuple(weight.shape)}")
        value = self.loss(target, source, weight)
        return value, ({self.stat: value.detach()} if self.stat else {})


OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str):
    """Class decorator: make an ``Objective`` subclass selectable by ``name``."""

    def deco(cls: type[Objective]) -> type[Objective]:
        if name in OBJECTIVES:
            raise ValueError(f"objective {name!r} is already registered")
        if "+" in name:
            raise ValueError(f"objective names may not contain '+' (it combines objectives): {name!r}")
        cls.name = name
        OBJECTIVES[name] = cls
        return cls

    return deco


@register_objective("none")
class NoTransfer(Objective):
    """The baseline: no transfer term (a constant 0 without a graph, so
    ``ce + lam * 0`` is exactly the unimodal loss). It reads nothing from the source."""

    def loss(self, target, source, weight):
        return torch.zeros((), device=target.logits.device)


@register_objective("dcat")
class DCAT(Objective):
    """The paper's cross-attention loss, Eq. (7), masked as in Eq. (17):
    ``losses.cross_attention_loss`` on the target's and the source's K and V
    (B, T, d) (target and source need the same d; T may differ)."""

    needs = ("k", "v")
    stat = "ca"

    def loss(self, target, source, weight):
        return cross_attention_loss(_float(target.k), _float(target.v), source.k, source.v, weight=weight)


@register_objective("kd")
class KD(Objective):
    """Logit distillation (Hinton, Vinyals & Dean 2015) from the frozen source:
    per sample ``T^2 * KL(softmax(z_s / T) || softmax(z_t / T))`` with z (B, C)
    logits. The T^2 factor keeps the gradient's size independent of T:
    d l / d z_t = T (softmax(z_t/T) - softmax(z_s/T)). Target and source need the
    same classes (C)."""

    needs = ("logits",)
    stat = "kd"

    def __init__(self, kd_temperature: float = 4.0, mcma: bool = True):
        super().__init__(mcma)
        if isinstance(kd_temperature, bool) or not isinstance(kd_temperature, (int, float)) \
                or not math.isfinite(kd_temperature) or kd_temperature <= 0:
            raise ValueError(f"kd_temperature must be a finite number > 0, got {kd_temperature!r}")
        self.temperature = float(kd_temperature)

    def loss(self, target, source, weight):
        z_t, z_s = _float(target.logits), _float(source.logits)
        if z_t.shape != z_s.shape:
            raise ValueError(f"kd needs target and source logits of the same shape (B, C), got "
                             f"{tuple(z_t.shape)} and {tuple(z_s.shape)}")
        t = self.temperature
        log_p_t = F.log_softmax(z_t / t, dim=1)                                     # (B, C)
        log_p_s = F.log_softmax(z_s.to(z_t.dtype) / t, dim=1)
        per = F.kl_div(log_p_t, log_p_s, log_target=True, reduction="none").sum(1) * t * t   # (B,)
        return (weight.to(per.dtype) * per).sum()


def _check_dims(name: str, d_target, d_source) -> tuple[int, int]:
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in (d_target, d_source)):
        raise ValueError(f"{name} needs d_target and d_source, the sizes of the target's and the source's "
                         "pooled outputs (model.config['d_attn']; for a source callable, its d_attn attribute), "
                         f"as positive ints; got {d_target!r}, {d_source!r}")
    return d_target, d_source


def _check_pooled(name: str, p: torch.Tensor, d: int, who: str) -> None:
    if p.ndim != 2 or p.shape[1] != d:
        raise ValueError(f"{name} was built for a {who} pooled size of {d}: expected (B, {d}), "
                         f"got {tuple(p.shape)}")


@register_objective("fitnet")
class FitNet(Objective):
    """FitNet-style hint (Romero et al. 2015), trained jointly: a learned linear map
    (W, b) from the target's pooled attention output p_t (B, d_t) to the source's
    p_s (B, d_s); per sample ``mean_j ((W p_t + b) - p_s)_j^2`` (MSE over d_s)."""

    needs = ("pooled",)
    stat = "fitnet"

    def __init__(self, d_target: int | None = None, d_source: int | None = None, mcma: bool = True):
        super().__init__(mcma)
        self.d_target, self.d_source = _check_dims("fitnet", d_target, d_source)
        self.regressor = nn.Linear(self.d_target, self.d_source)

    def loss(self, target, source, weight):
        _check_pooled("fitnet", target.pooled, self.d_target, "target")
        _check_pooled("fitnet", source.pooled, self.d_source, "source")
        p_t = _float(target.pooled)
        pred = self.regressor(p_t.to(self.regressor.weight.dtype))                # (B, d_s)
        per = (pred - _float(source.pooled).to(pred.dtype)).square().mean(1)      # (B,)
        return (weight.to(per.dtype) * per).sum()


@register_objective("contrastive")
class Contrastive(Objective):
    """InfoNCE between target and source embeddings, CLIP-style (Radford et al. 2021).

    z_t = normalise(g_t p_t), z_s = normalise(g_s p_s) with learned linear maps
    g_t: d_t -> proj_dim, g_s: d_s -> proj_dim (no bias; proj_dim defaults to min(d_t, d_s)), and similarities
    S = (z_t z_s^T) / tau, (B, B). Per anchor i::

        l_i = (CE(S[i, :], i) + CE(S[:, i], i)) / 2

    (target i picks its own source among all B, and source i its own target).
    The temperature tau starts at ``nce_temperature`` and is learned as
    log(1/tau) when ``learn_temperature`` (clamped to tau >= 0.01 as in CLIP),
    else fixed. Unlike CLIP, the learned log(1/tau) gets the optimiser's weight decay with
    every other parameter (Adam's L2 term, the preset's ``weight_decay`` times log(1/tau):
    2.7e-4 added to its gradient at weight_decay 1e-4 and tau = 0.07). Masked-out samples are negatives, not anchors (module docstring).

    Small batches: each anchor needs at least ``min_negatives`` negatives (default 1,
    so B >= 2). A batch with fewer samples (a last partial batch of 1 gives none, and its
    InfoNCE would be exactly 0, log 1) has no contrastive signal: it contributes 0 with a
    gradient graph, and is counted in ``skipped_batches`` (in its ``state_dict()``, so a
    resumed run keeps counting), with one warning per objective. Batches with at least
    ``min_negatives`` negatives are used as they are (their loss is lower by about
    log(B_full / B) for a smaller B: expected of InfoNCE).
    """

    needs = ("pooled",)
    stat = "nce"

    def __init__(self, d_target: int | None = None, d_source: int | None = None, proj_dim: int | None = None,
                 nce_temperature: float = 0.07, learn_temperature: bool = True, mcma: bool = True,
                 min_negatives: int = 1):
        super().__init__(mcma)
        if isinstance(min_negatives, bool) or not isinstance(min_negatives, int) or min_negatives < 1:
            raise ValueError(f"min_negatives must be an int >= 1 (a batch of one has no negative), got {min_negatives!r}")
        self.min_negatives, self.skipped_batches = min_negatives, 0
        self.d_target, self.d_source = _check_dims("contrastive", d_target, d_source)
        proj_dim = min(self.d_target, self.d_source) if proj_dim is None else proj_dim
        if isinstance(proj_dim, bool) or not isinstance(proj_dim, int) or proj_dim < 1:
            raise ValueError(f"proj_dim must be a positive int, got {proj_dim!r}")
        if isinstance(nce_temperature, bool) or not isinstance(nce_temperature, (int, float)) \
                or not 0.01 <= nce_temperature < math.inf:
            raise ValueError(f"nce_temperature must be a finite number >= 0.01, got {nce_temperature!r}")
        self.proj_target = nn.Linear(self.d_target, proj_dim, bias=False)
        self.proj_source = nn.Linear(self.d_source, proj_dim, bias=False)
        scale = torch.tensor(math.log(1.0 / nce_temperature))
        if learn_temperature:
            self.log_scale = nn.Parameter(scale)
        else:
            self.register_buffer("log_scale", scale)

    @property
    def temperature(self) -> float:
        return float(torch.exp(-self.log_scale.detach().clamp(max=math.log(100.0))))

    def similarities(self, p_t: torch.Tensor, p_s: torch.Tensor) -> torch.Tensor:
        """(B, d_t), (B, d_s) -> S (B, B): S[i, j] = <z_t_i, z_s_j> / tau."""
        dt = self.proj_target.weight.dtype
        z_t = F.normalize(self.proj_target(p_t.to(dt)), dim=1)                    # (B, proj_dim)
        z_s = F.normalize(self.proj_source(p_s.to(dt)), dim=1)
        return self.log_scale.clamp(max=math.log(100.0)).exp() * z_t @ z_s.T

    def loss(self, target, source, weight):
        _check_pooled("contrastive", target.pooled, self.d_target, "target")
        _check_pooled("contrastive", source.pooled, self.d_source, "source")
        s = self.similarities(_float(target.pooled), _float(source.pooled))        # (B, B)
        if s.shape[0] < self.min_negatives + 1:                                    # too few negatives
            self.skipped_batches += 1
            if self.skipped_batches == 1:
                warnings.warn(f"contrastive: a batch of {s.shape[0]} sample(s) has fewer than min_negatives="
                              f"{self.min_negatives} negatives per anchor: it contributes 0 (counted in "
                              "skipped_batches; a last partial batch usually)", stacklevel=3)
            return s.sum() * 0.0
        idx = torch.arange(s.shape[0], device=s.device)
        per = 0.5 * (F.cross_entropy(s, idx, reduction="none") + F.cross_entropy(s.T, idx, reduction="none"))
        return (weight.to(per.dtype) * per).sum()

    def get_extra_state(self) -> dict:
        """Its state beside parameters and buffers (``state_dict()["_extra_state"]``): the
        count of skipped batches, which a resumed run carries on from (``dcatkit.train``)."""
        return {"skipped_batches": self.skipped_batches}

    def set_extra_state(self, state: dict) -> None:
        self.skipped_batches = int(state["skipped_batches"])

    def forward(self, target, source, weight=None):
        skipped = self.skipped_batches
        value, stats = super().forward(target, source, weight)
        if self.skipped_batches > skipped:      # no InfoNCE in this batch: its stat counts no sample,
            stats = {k: (v, torch.zeros((), device=v.device)) for k, v in stats.items()}   # not a 0
        return value, stats


class KVLoss(Objective):
    """A K/V loss of ``losses.LOSSES`` (``loss(k_t, v_t, k_s, v_s, mask) -> scalar``, the
    older registry) used as an objective: ``fit_transfer(loss=name)``. It reduces with
    its own mask handling, so explicit ``weight`` is not supported."""

    needs = ("k", "v")
    stat = "ca"

    def __init__(self, fn, mcma: bool = True, name: str = "kv-loss"):
        super().__init__(mcma)
        self.fn, self.name = fn, name

    def forward(self, target, source, weight=None):
        if weight is not None:
            raise ValueError(f"the K/V loss {self.name!r} reduces by its mask; explicit weights need an Objective")
        for f in self.needs:
            if getattr(source, f) is None:
                raise ValueError(f"objective {self.name!r} reads the source's {f!r}, but the source gave none")
        value = self.fn(_float(target.k), _float(target.v), source.k, source.v,
                        source.correct if self.mcma else None)
        return value, {self.stat: value.detach()}


class Combined(Objective):
    """The sum of several objectives (``"dcat+kd"``): value = sum of the parts' values
    (each with its own per-sample term, all with the same MCMA weights); stats =
    every part's stat."""

    def __init__(self, parts: list[Objective]):
        super().__init__(all(p.mcma for p in parts))
        if len(parts) < 2:
            raise ValueError("Combined needs at least two objectives")
        self.parts = nn.ModuleList(parts)
        self.needs = tuple(dict.fromkeys(f for p in parts for f in p.needs))
        self.name = "+".join(p.name for p in parts)

    def forward(self, target, source, weight=None):
        if weight is None:
            weight = self.weights(source)
        total, stats = None, {}
        for p in self.parts:
            v, s = p(target, source, weight)
            total = v if total is None else total + v
            stats.update(s)
        return total, stats


METHODS = ("none", "dcat", "kd", "fitnet", "contrastive", "dcat+kd")   # the ones the kit compares


def make_objective(method: str, *, mcma: bool = True, d_target: int | None = None,
                   d_source: int | None = None, **options) -> Objective:
    """The objective called ``method`` (a registered name or ``"a+b"``).

    ``d_target`` / ``d_source``: sizes of the pooled outputs (``model.config["d_attn"]``),
    needed by objectives with learned maps (fitnet, contrastive). ``options`` go to
    the parts whose constructors take them: ``kd_temperature`` (kd), ``proj_dim``,
    ``nce_temperature``, ``learn_temperature``, ``min_negatives`` (contrastive). An option no part
    takes is an error.
    """
    if not isinstance(method, str) or not method:
        raise ValueError(f"method must be an objective name, one of {available()}, got {method!r}")
    names = method.split("+")
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown transfer method {method!r} ({', '.join(map(repr, unknown))}): expected one of "
                         f"{available()} or a '+' combination such as 'dcat+kd'")
    if len(names) > 1 and ("none" in names or len(set(names)) < len(names)):
        raise ValueError(f"{method!r}: a combination needs distinct objectives other than 'none'")
    given = {"mcma": mcma, "d_target": d_target, "d_source": d_source, **options}
    used, parts = set(), []
    for n in names:
        cls = OBJECTIVES[n]
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        kw = {k: v for k, v in given.items() if k in accepted}
        used |= set(kw)
        parts.append(cls(**kw))
    extra = sorted(set(options) - used)
    if extra:
        takes = sorted(a for n in names for a in _options(OBJECTIVES[n]))
        raise ValueError(f"option(s) {extra} are not taken by {method!r}; it takes {takes or 'no options'}")
    return parts[0] if len(parts) == 1 else Combined(parts)


def accepted_options(method: str) -> set[str]:
    """The options ``make_objective(method, ...)`` takes (e.g. {"kd_temperature"} for "kd")."""
    names = method.split("+")
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown transfer method {method!r}: expected one of {available()}")
    return {a for n in names for a in _options(OBJECTIVES[n])}


def _options(cls: type[Objective]) -> list[str]:
    """The options of an objective's constructor (beyond mcma and the sizes)."""
    return [a for a in inspect.signature(cls.__init__).parameters
            if a not in ("self", "mcma", "d_target", "d_source")]


def available() -> list[str]:
    """Registered objective names (combine them with '+')."""
    return sorted(OBJECTIVES)
