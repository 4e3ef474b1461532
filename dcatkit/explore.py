"""The alignment explorer of notebook 03: D-CAT's loss on one batch, made visible.

For one batch, :func:`alignment_state` computes what Eq. (7) / (17) compares: per sample
the normalised d x d matrices ``K_B^T V_B / ||.||_F`` (target) and ``K_A^T V_A / ||.||_F``
(frozen source), their distance L_CA (in [0, 2]; read as a cosine, ``cos = 1 - L_CA^2 / 2``:
sqrt(2) = orthogonal, 0 = same direction) and the MCMA mask (Eq. 16: the source classifies
the sample correctly). :func:`quick_steps` trains a *copy* of the target for a few steps of
``L_CE + lam * L_CA`` (Eq. 19) and records L_CA on the batch and macro-F1 on an evaluation
set, so a learner sees both move. :func:`alignment_figure` draws a state (the static view
under papermill); :func:`alignment_explorer` is the ipywidgets control around it (lambda,
MCMA, sample, steps), ``None`` without ipywidgets.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .losses import cross_attention_loss, mean_weights
from .metrics import classification_metrics


def normalised_kv(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``K^T V / ||K^T V||_F`` per sample: (B, T, d) keys and values -> (B, d, d)."""
    if k.ndim != 3 or k.shape != v.shape:
        raise ValueError(f"k and v must both be (B, T, d), got {tuple(k.shape)} and {tuple(v.shape)}")
    m = k.transpose(1, 2).double() @ v.double()
    return m / m.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]


def cosine_of(l_ca: float | np.ndarray) -> float | np.ndarray:
    """The cosine between the two normalised matrices whose distance is ``l_ca``:
    ||a - b||^2 = 2 - 2 cos for unit vectors, so cos = 1 - l_ca^2 / 2."""
    return 1.0 - np.asarray(l_ca, dtype=float) ** 2 / 2.0


@dataclass
class AlignmentState:
    """What the explorer shows for one batch."""

    target_kv: np.ndarray          # (B, d, d) normalised K_B^T V_B
    source_kv: np.ndarray          # (B, d, d) normalised K_A^T V_A
    per_sample: np.ndarray         # (B,) L_CA of each sample (Eq. 7)
    mask: np.ndarray               # (B,) bool, source correct (Eq. 16)
    labels: np.ndarray             # (B,)
    source_pred: np.ndarray        # (B,)
    l_ca: float                    # the batch's loss: mean over masked-in samples (mcma) or all
    mcma: bool
    lam: float
    steps: list = field(default_factory=list)      # quick_steps' records


def alignment_state(source_model, target_model, batch: dict, source: str, target: str, *, mcma: bool = True,
                    lam: float = 1.0) -> AlignmentState:
    """Both models (eval mode, no gradient) on ``batch``; the loss as D-CAT computes it
    (``losses.cross_attention_loss``, masked when ``mcma``)."""
    with torch.no_grad():
        a = source_model.eval()(batch[source])
        b = target_model.eval()(batch[target])
        ma, mb = normalised_kv(a.k, a.v), normalised_kv(b.k, b.v)
        per = (mb - ma).flatten(1).norm(dim=1)
        mask = a.logits.argmax(1) == batch["label"]
        loss = cross_attention_loss(b.k, b.v, a.k, a.v, mask=mask if mcma else None)
    return AlignmentState(mb.numpy(), ma.numpy(), per.numpy(), mask.numpy(), batch["label"].numpy(),
                          a.logits.argmax(1).numpy(), float(loss), bool(mcma), float(lam))


def _f1(model, x: torch.Tensor, y: torch.Tensor, k: int) -> float:
    with torch.no_grad():
        p = model.eval()(x).logits.argmax(1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return classification_metrics(y.numpy(), p.numpy(), k)["f1"]


def quick_steps(source_model, target_model, batches: Sequence[dict], eval_batch: dict, source: str, target: str,
                *, lam: float = 1.0, mcma: bool = True, lr: float = 1e-3, seed: int = 0,
                watch: dict | None = None) -> tuple[torch.nn.Module, list[dict]]:
    """A few training steps of ``L_CE + lam * L_CA`` on a **copy** of the target (the
    source stays frozen), one step per batch of ``batches``. Returns (the trained copy,
    records): before the first step and after each, ``step``, ``l_ca`` on ``watch`` (default
    the first batch, as the loss sees it: masked when ``mcma``), ``ce`` and ``f1`` (macro)
    on ``eval_batch``."""
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    torch.manual_seed(seed)
    model = copy.deepcopy(target_model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    watch = watch if watch is not None else batches[0]
    k = int(source_model.eval()(eval_batch[source][:1]).logits.shape[1])
    with torch.no_grad():
        a_watch = source_model.eval()(watch[source])
    mask_watch = (a_watch.logits.argmax(1) == watch["label"]) if mcma else None

    def record(step: int) -> dict:
        with torch.no_grad():
            b = model.eval()(watch[target])
            l_ca = float(cross_attention_loss(b.k, b.v, a_watch.k, a_watch.v, mask=mask_watch))
            ce = float(torch.nn.functional.cross_entropy(model(eval_batch[target]).logits, eval_batch["label"]))
        return {"step": step, "l_ca": l_ca, "ce": ce, "f1": _f1(model, eval_batch[target], eval_batch["label"], k)}

    records = [record(0)]
    for i, batch in enumerate(batches, 1):
        with torch.no_grad():
            a = source_model.eval()(batch[source])
        mask = (a.logits.argmax(1) == batch["label"]) if mcma else None
        model.train()
        out = model(batch[target])
        loss = torch.nn.functional.cross_entropy(out.logits, batch["label"])
        if lam > 0:
            w = mean_weights(mask, len(batch["label"]))
            if float(w.sum()) > 0:              # no sample masked in: the term is absent (as in training)
                loss = loss + lam * cross_attention_loss(out.k, out.v, a.k, a.v, mask=mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        records.append(record(i))
    return model, records


def stack(ds, idx: Sequence[int]) -> dict:
    """The samples ``idx`` of a dataset as one batch dict (tensors stacked, labels int64)."""
    items = [ds[int(i)] for i in idx]
    return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]
            if not isinstance(items[0][k], str)}      # ids and such stay out


def demo_batch(ds, source_model, source: str, size: int = 16, wrong: int = 4) -> tuple[dict, int]:
    """A batch of ``size`` samples of ``ds`` holding up to ``wrong`` the frozen source
    misclassifies (so the MCMA mask has something to drop: the source is right on most
    samples), then the first ones it gets right. Returns (batch, how many are wrong)."""
    from .train import predict

    y, p = predict(source_model, ds, source, device="cpu")
    bad, good = np.flatnonzero(p != y)[:wrong], np.flatnonzero(p == y)
    idx = np.sort(np.concatenate([bad, good[:size - len(bad)]]))
    return stack(ds, idx), len(bad)


def train_batches(ds, n: int, size: int = 32, seed: int = 0) -> list[dict]:
    """``n`` shuffled training batches (with replacement across batches) for :func:`quick_steps`."""
    rng = np.random.default_rng(seed)
    return [stack(ds, rng.choice(len(ds), size=min(size, len(ds)), replace=False)) for _ in range(n)]


def alignment_figure(state: AlignmentState, sample: int = 0, show: int = 32, classes: Sequence[str] | None = None):
    """Four panels: the two normalised matrices of ``sample`` (top-left ``show`` x ``show``
    corner of d x d, same colour scale), L_CA of every sample in the batch (masked-out
    ones hatched and grey), and, when ``state.steps`` holds records, L_CA and F1 over the
    quick training steps."""
    b = len(state.per_sample)
    if not 0 <= sample < b:
        raise ValueError(f"sample must be in 0 .. {b - 1} (the batch has {b}), got {sample}")
    n_cols = 4 if state.steps else 3
    fig, axes = plt.subplots(1, n_cols, figsize=(4.3 * n_cols, 4.0), layout="constrained")
    s = min(show, state.target_kv.shape[1])
    lim = float(max(np.abs(state.target_kv[sample, :s, :s]).max(), np.abs(state.source_kv[sample, :s, :s]).max()))
    for ax, m, t in ((axes[0], state.target_kv[sample], "target  K_B^T V_B / ||.||"),
                     (axes[1], state.source_kv[sample], "source  K_A^T V_A / ||.||")):
        im = ax.imshow(m[:s, :s], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{t}\n(first {s} of {m.shape[0]} rows / columns)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    per, mask = state.per_sample, state.mask
    ax = axes[2]
    colours = ["tab:blue" if m or not state.mcma else "lightgrey" for m in mask]
    bars = ax.bar(np.arange(b), per, color=colours)
    for bar, m in zip(bars, mask):
        if state.mcma and not m:
            bar.set_hatch("//")
    bars[sample].set_edgecolor("k")
    bars[sample].set_linewidth(1.5)
    ax.axhline(np.sqrt(2), color="k", ls=":", lw=1)
    ax.text(b - 0.5, np.sqrt(2), "√2: orthogonal", ha="right", va="bottom", fontsize=8)
    ax.set_ylim(0, 2)
    ax.set_xlabel("sample of the batch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("L_CA of the sample")
    dropped = int((~mask).sum()) if state.mcma else 0
    ax.set_title(f"batch L_CA = {state.l_ca:.3f} (cos {cosine_of(state.l_ca):.3f})\n"
                 f"MCMA {'on' if state.mcma else 'off'}: {dropped} of {b} dropped (grey, source wrong)", fontsize=9)
    if state.steps:
        ax = axes[3]
        st = np.array([[r["step"], r["l_ca"], r["f1"]] for r in state.steps])
        ax.plot(st[:, 0], st[:, 1], "o-", ms=3, color="tab:blue", label="L_CA (this batch)")
        ax.set_xlabel("training step")
        ax.set_ylabel("L_CA", color="tab:blue")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax2 = ax.twinx()
        ax2.plot(st[:, 0], st[:, 2], "s-", ms=3, color="tab:orange", label="macro-F1 (eval set)")
        ax2.set_ylabel("macro-F1 (eval set)", color="tab:orange")
        ax2.grid(False)
        ax.set_title(f"{len(st) - 1} quick steps, λ = {state.lam:g}", fontsize=9)
    name = classes[state.labels[sample]] if classes is not None else str(state.labels[sample])
    fig.suptitle(f"sample {sample} (class {name}): L_CA = {per[sample]:.3f}, cosine {cosine_of(per[sample]):.3f}; "
                 f"source {'right' if mask[sample] else 'wrong'}", fontsize=10)
    return fig


def alignment_explorer(source_model, target_model, batch: dict, batches: Sequence[dict], eval_batch: dict,
                       source: str, target: str, *, lr: float = 1e-3, classes: Sequence[str] | None = None,
                       lam: float = 1.0, mcma: bool = True):
    """ipywidgets: λ (log slider), MCMA (checkbox), sample (slider), steps (slider) and a
    "train" button; every change redraws :func:`alignment_figure`, the button runs
    :func:`quick_steps` from the untrained target. ``None`` when ipywidgets is missing."""
    try:
        import ipywidgets as W
        from IPython.display import display
    except ImportError:
        return None
    w_lam = W.FloatLogSlider(value=lam, base=10, min=-2, max=2, step=0.25, description="λ")
    w_mcma = W.Checkbox(value=mcma, description="MCMA (mask)")
    w_sample = W.IntSlider(value=0, min=0, max=len(batch["label"]) - 1, description="sample")
    w_steps = W.IntSlider(value=min(10, len(batches)), min=1, max=len(batches), description="steps")
    w_train = W.Button(description="train steps", button_style="primary")
    info, out = W.HTML(), W.Output()
    current = {"model": target_model, "steps": []}

    def redraw(*_):
        st = alignment_state(source_model, current["model"], batch, source, target, mcma=w_mcma.value,
                             lam=w_lam.value)
        st.steps = current["steps"]
        info.value = (f"L_CA = {st.l_ca:.4f} (cosine {cosine_of(st.l_ca):.3f}); "
                      f"MCMA drops {int((~st.mask).sum()) if st.mcma else 0} of {len(st.mask)}")
        with out:
            out.clear_output(wait=True)
            fig = alignment_figure(st, w_sample.value, classes=classes)
            plt.close(fig)
            display(fig)

    def reset(*_):                            # λ or MCMA changed: back to the untrained target
        current.update(model=target_model, steps=[])
        redraw()

    def train(*_):
        model, recs = quick_steps(source_model, target_model, batches[:w_steps.value], eval_batch, source, target,
                                  lam=w_lam.value, mcma=w_mcma.value, lr=lr, watch=batch)
        current.update(model=model, steps=recs)
        redraw()

    w_lam.observe(reset, names="value")
    w_mcma.observe(reset, names="value")
    w_sample.observe(redraw, names="value")
    w_train.on_click(train)
    redraw()
    return W.VBox([W.HBox([w_lam, w_mcma, w_sample]), W.HBox([w_steps, w_train]), info, out])


__all__ = ["normalised_kv", "cosine_of", "stack", "demo_batch", "train_batches", "AlignmentState", "alignment_state", "quick_steps", "alignment_figure",
           "alignment_explorer"]
