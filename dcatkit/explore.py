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
import math
from dataclasses import dataclass, field
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .losses import cross_attention_loss, mean_weights
from .metrics import classification_metrics
from .stats import signed


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
    ax.set_title(f"batch L_CA = {state.l_ca:.3f} (cos {signed(cosine_of(state.l_ca), 3)})\n"
                 f"MCMA {'on' if state.mcma else 'off'}: {dropped} of {b} dropped (grey, source wrong)", fontsize=9)
    if state.steps:
        ax = axes[3]
        st = np.array([[r["step"], r["l_ca"], r["f1"]] for r in state.steps])
        ax.plot(st[:, 0], st[:, 1], "o-", ms=3, color="tab:blue", label="L_CA (this batch)")
        ax.set_ylim(0, 2)                   # L_CA's whole range, as the batch panel: a change of 0.006 looks it
        ax.set_xlabel("training step")
        ax.set_ylabel("L_CA", color="tab:blue")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax2 = ax.twinx()
        ax2.plot(st[:, 0], st[:, 2], "s-", ms=3, color="tab:orange", label="macro-F1 (eval batch)")
        ax2.set_ylabel("macro-F1 (eval batch)", color="tab:orange")
        ax2.set_ylim(0, 1)
        ax2.grid(False)
        ax.set_title(f"{len(st) - 1} quick steps, λ = {state.lam:g}", fontsize=9)
    name = classes[state.labels[sample]] if classes is not None else str(state.labels[sample])
    fig.suptitle(f"sample {sample} (class {name}): L_CA = {per[sample]:.3f}, cosine {signed(cosine_of(per[sample]), 3)}; "
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
    if lam > 0:                  # a log scale over 0.01 .. 100, widened to hold the notebook's lam
        e = math.log10(lam)
        w_lam = W.FloatLogSlider(value=lam, base=10, min=min(-2, math.floor(e)), max=max(2, math.ceil(e)),
                                 step=0.25, description="λ")
    else:                        # lam = 0 (no transfer) has no place on a log scale
        w_lam = W.FloatSlider(value=0.0, min=0.0, max=100.0, step=0.01, description="λ")
    w_mcma = W.Checkbox(value=mcma, description="MCMA (mask)")
    w_sample = W.IntSlider(value=0, min=0, max=len(batch["label"]) - 1, description="sample")
    w_steps = W.IntSlider(value=len(batches), min=1, max=len(batches), description="steps")   # as quick_steps
    w_train = W.Button(description="train steps", button_style="primary")
    info, out = W.HTML(), W.Output()
    current = {"model": target_model, "steps": []}

    def redraw(*_):
        st = alignment_state(source_model, current["model"], batch, source, target, mcma=w_mcma.value,
                             lam=w_lam.value)
        st.steps = current["steps"]
        info.value = (f"L_CA = {st.l_ca:.4f} (cosine {signed(cosine_of(st.l_ca), 3)}); "
                      f"MCMA drops {int((~st.mask).sum()) if st.mcma else 0} of {len(st.mask)}; λ = {w_lam.value:g}"
                      f"{f', after {len(st.steps) - 1} steps' if st.steps else ', untrained target'}")
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


# ------------------------------------------------------------------ notebook 06: the results explorer

def results_choices(tidy) -> dict:
    """{study: {"methods": {label: (method, lam)}, "sizes": [size, ...], "unit": unit}} of a
    ``studies.tidy_studies`` table (the baseline is not a choice: every cell is paired with it)."""
    from .studies import method_label

    out = {}
    for s, g in tidy.groupby("study", sort=False):
        ms = g[g["method"] != "none"][["method", "lam"]].drop_duplicates()
        out[s] = {"methods": {method_label(m, l): (m, float(l)) for m, l in ms.itertuples(index=False)},
                  "sizes": sorted(g["size"].unique().tolist()), "unit": g["unit"].iloc[0]}
    return out


def interval_text(row, digits: int = 3) -> str:
    """A pooled cell's difference as printed: "+0.012 [-0.004, +0.028]" (its family-adjusted
    interval, ``stats.format_interval``) when the cell was tested (a finite ``family_size``),
    else "+0.012 (untested)": an untested cell (one draw, too few seeds) has no interval to
    read a call off, and its ``ci_low`` / ``ci_high`` are NaN. A cell without pairs:
    "no pairs (untested)". ``row``: a row of ``studies.pooled_verdicts`` (a Series or an
    itertuples row)."""
    from .stats import format_interval, signed

    if np.isfinite(row.family_size):
        return format_interval(row.diff_mean, row.ci_low, row.ci_high, digits)
    return f"{signed(row.diff_mean, digits) if np.isfinite(row.diff_mean) else 'no pairs'} (untested)"


def results_cell(tidy, pooled, per_draw, study: str, method: str, lam: float, size: int) -> dict:
    """One cell of notebook 06's results: the method's and the baseline's metric per draw
    and seed, the per-draw paired rows and the pooled row (``studies.pooled_verdicts``),
    and a one-line description (mean metric of both, the pooled difference with its
    family-adjusted interval, its family as ``stats.family_note`` names it, the call, each
    draw's difference)."""
    import pandas as pd

    from .stats import family_note, signed
    from .studies import method_label, size_label

    runs = tidy[(tidy["study"] == study) & (tidy["size"] == size)]
    arm = runs[(runs["method"] == method) & (runs["lam"] == lam)]
    base = runs[runs["method"] == "none"]
    if arm.empty or base.empty:
        raise ValueError(f"no runs of {method} (lambda {lam}) and its baseline in {study!r} at size {size}")
    sel = lambda t: t[(t["study"] == study) & (t["size"] == size) & (t["method"] == method)  # noqa: E731
                      & (t["lam"] == lam)]
    row, draws = sel(pooled).iloc[0], sel(per_draw).sort_values("data_seed")
    metric = arm["metric"].iloc[0]
    name = "F1" if metric == "f1" else metric
    each = ", ".join(signed(d.diff_mean) if d.n_pairs > 0 else "no pairs" for d in draws.itertuples())
    shown = interval_text(row)
    # the means of the paired runs, weighted as the difference is: method - baseline = the printed Δ
    text = (f"{study}, {method_label(method, lam)}, {size_label(size, arm['unit'].iloc[0])}: {name} "
            f"{row['paired_mean']:.3f} vs baseline {row['baseline_mean']:.3f}; Δ{name} "
            f"{shown} over {int(row['n_draws'])} draws "
            f"({family_note(pd.DataFrame([row])) or 'untested'}): {row['call']}; per draw {each}")
    return {"runs": runs, "arm": arm, "base": base, "pooled": row, "per_draw": draws, "text": text, "metric": name}


def results_figure(cell: dict):
    """Left: the metric of every run of the baseline and the method, per data draw (one dot
    per seed, the bar the draw's mean). Right: each draw's paired difference with its own
    uncorrected interval (its test and confidence, e.g. "exact sign-flip 95%", read from the
    per-draw rows: ``studies.pooled_verdicts(confidence=...)``) and the pooled difference with its
    family-adjusted interval (t on the draw means), filled when it excludes 0."""
    import seaborn as sns

    arm, base, draws, row = cell["arm"], cell["base"], cell["per_draw"], cell["pooled"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.2, 1]})
    ds = sorted(arm["data_seed"].unique())
    from .plots import colours

    pal = colours(["baseline", arm["method"].iloc[0]])          # the kit's one colour per method
    for j, (t, name) in enumerate([(base, "baseline"), (arm, arm["method"].iloc[0])]):
        col = pal[name]
        for i, d in enumerate(ds):
            v = t[t["data_seed"] == d]["value"].to_numpy()
            x = i + (j - 0.5) * 0.3
            a.plot(np.full(len(v), x) + np.linspace(-0.05, 0.05, len(v)), v, "o", color=col, ms=4, alpha=0.7,
                   label=name if i == 0 else None)
            a.plot([x - 0.1, x + 0.1], [v.mean()] * 2, color=col, lw=2.5)
    a.set_xticks(range(len(ds)))
    a.set_xticklabels([f"draw {d}" for d in ds])
    a.set_ylabel(f"test {cell['metric']}")
    a.legend(fontsize=8, frameon=False)
    a.set_title("every run (dot: one seed; bar: the draw's mean)", fontsize=9)
    ys = list(range(len(draws))) + [len(draws) + 0.5]
    for y, d in zip(ys, draws.itertuples()):
        b.plot([d.ci_low, d.ci_high], [y, y], color="0.5", lw=2)
        b.plot([d.diff_mean], [y], "o", color="0.5", ms=6)
    clear = row["call"] in ("helps", "hurts")
    col = pal[arm["method"].iloc[0]]                                                  # the method's colour
    b.plot([row["ci_low"], row["ci_high"]], [ys[-1]] * 2, color=col, lw=3)
    b.plot([row["diff_mean"]], [ys[-1]], "o", color=col, mfc=col if clear else "white", ms=8)
    b.axvline(0, color="k", lw=0.8)
    b.set_yticks(ys)
    b.set_yticklabels([f"draw {d.data_seed} ({d.test} {100 * d.confidence:g}%)" for d in draws.itertuples()]
                      + [f"pooled ({row['correction']}, t on draw means)"], fontsize=8)
    b.set_ylim(ys[-1] + 0.7, -0.7)
    b.set_xlabel(f"Δ{cell['metric']} to the same-seed baseline")
    b.set_title(f"pooled: {row['call']}", fontsize=9)
    sns.despine(fig)
    fig.tight_layout()
    return fig


def results_explorer(tidy, pooled=None, per_draw=None):
    """ipywidgets over notebook 06's results (a ``studies.tidy_studies`` table, e.g. read
    from ``notebooks/results/06_runs.csv``): study, method and size dropdowns; each choice
    shows ``results_cell``'s line and ``results_figure``. Nothing is trained. ``None``
    without ipywidgets."""
    try:
        import ipywidgets as W
        from IPython.display import display
    except ImportError:
        return None
    from .studies import pooled_verdicts, size_label

    if pooled is None or per_draw is None:
        pooled, per_draw = pooled_verdicts(tidy)
    choices = results_choices(tidy)
    first = next(iter(choices))
    w_study = W.Dropdown(options=list(choices), value=first, description="study")
    w_method = W.Dropdown(description="method")
    w_size = W.Dropdown(description="size")
    info, out = W.HTML(), W.Output()
    filling = []

    def fill(*_):
        c = choices[w_study.value]
        filling.append(True)                  # options change one at a time: draw once both fit the study
        try:
            w_method.options = list(c["methods"])
            w_method.value = next(iter(c["methods"]))
            w_size.options = [(size_label(v, c["unit"]), v) for v in c["sizes"]]
            w_size.value = c["sizes"][0]
        finally:
            filling.pop()

    def redraw(*_):
        c = choices[w_study.value]
        if filling or w_method.value not in c["methods"] or w_size.value not in c["sizes"]:
            return
        m, lam = choices[w_study.value]["methods"][w_method.value]
        cell = results_cell(tidy, pooled, per_draw, w_study.value, m, lam, w_size.value)
        info.value = cell["text"]
        with out:
            out.clear_output(wait=True)
            fig = results_figure(cell)
            plt.close(fig)
            display(fig)

    fill()
    w_study.observe(lambda *_: (fill(), redraw()), names="value")
    w_method.observe(redraw, names="value")
    w_size.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([w_study, w_method, w_size]), info, out])


__all__ = ["normalised_kv", "cosine_of", "stack", "demo_batch", "train_batches", "AlignmentState", "alignment_state", "quick_steps", "alignment_figure",
           "alignment_explorer", "results_choices", "results_cell", "results_figure",
           "results_explorer"]


# ------------------------------------------------------------------ notebook 06: what the run shows

def cell_name(row, pooled, lam: float | None = 1.0) -> str:
    """A study cell's name in notebook 06's closing sentences (section 8): its method label
    (``studies.method_label``: "dcat", "dcat (λ = 10)", "kd (tuned)"), followed by its size
    ("dcat (tuned) at 20 labels") where the cell's study has cells of more than one size in
    ``pooled`` (a ``studies.pooled_verdicts`` table), so that two cells of one method are never
    named alike. ``row``: a row of ``pooled`` (a Series or an itertuples row); ``lam``: the λ a
    label leaves unsaid (the notebook's ``lam``; None: every λ is said, "dcat (λ = 1)")."""
    from .studies import method_label, size_label

    sizes = pooled.loc[pooled["study"] == row.study, "size"]
    if not len(sizes):
        raise ValueError(f"cell_name: the row's study {row.study!r} is not in `pooled` (its studies: "
                         f"{sorted(pooled['study'].unique())}); pass the table the row came from")
    label = method_label(row.method, row.lam, lam)
    return f"{label} at {size_label(row.size, row.unit)}" if sizes.nunique() > 1 else label


def and_join(items) -> str:
    """A list as a sentence says it: "a", "a and b", "a, b and c"."""
    items = [str(x) for x in items]
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def n_of(n: int, word: str, plural: str | None = None) -> str:
    """A count with its noun: "no cell", "1 cell", "3 cells" (``plural`` where an added s is wrong)."""
    return f"no {word}" if n == 0 else f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def labels_and_pairs(runs, kind: str) -> str:
    """The training data of one of notebook 06's studies as its closing sentence says it (section 8):
    "20 labels with 190 unlabeled pairs and 60 labels with 150 unlabeled pairs", one clause per
    label count, from the runs' own ``n_train_labeled`` / ``n_unlabeled`` columns (a range "150
    to 190" where draws of one label count differ). ``runs``: a runs table (``studies.run_study``);
    ``kind``: the study's kind ("positive", "curve")."""
    missing = [c for c in ("kind", "n_train_labeled", "n_unlabeled") if c not in runs.columns]
    if missing:
        raise ValueError(f"labels_and_pairs: the runs table has no column {missing} (it has {list(runs.columns)})")
    few = runs[runs["kind"] == kind].groupby("n_train_labeled")["n_unlabeled"].agg(["min", "max"])
    if not len(few):
        raise ValueError(f"labels_and_pairs: no run of kind {kind!r} (the table has {sorted(runs['kind'].unique())})")
    return and_join(f"{n:.0f} labels with " + (f"{lo:.0f}" if lo == hi else f"{lo:.0f} to {hi:.0f}")
                    + " unlabeled pairs" for n, (lo, hi) in few.iterrows())


def helped_clause(helped: Sequence[str], lost: Sequence[str] = ()) -> str:
    """What helped in one study, as notebook 06's closing sentence says it (section 8, "What
    this run shows about when transfer helps").

    ``helped``: the names (``cell_name``) of the study's cells called *helps* in the study's
    own Holm family; ``lost``: those of them whose call does not stand when every study cell
    is read as one family (Holm over all of them, the sentence above it in the notebook). The
    cells that keep their call under both readings are said to have helped; only the ones in
    ``lost`` get the qualifier "in the study's own family (not when every study cell is read as
    one family, above)". One group only gives one clause: "kd (tuned) helped", or "dcat (tuned)
    and kd (tuned) helped in the study's own family (not ...)"; both give "kd (tuned) helped, and
    dcat (tuned) helped in the study's own family (not ...)". Each name is said once, in the
    order of ``helped``."""
    if isinstance(helped, str) or isinstance(lost, str):
        raise TypeError(f"helped_clause takes sequences of cell names, got helped={helped!r}, lost={lost!r}")
    helped = list(dict.fromkeys(helped))
    if not helped:
        raise ValueError("helped_clause needs at least one cell called helps (got none): where nothing helped, "
                         "say that instead")
    stray = [x for x in dict.fromkeys(lost) if x not in helped]
    if stray:
        raise ValueError(f"helped_clause: every lost call must be one that helped in its own family; {stray} "
                         f"not among helped={helped}")
    kept = [x for x in helped if x not in lost]
    gone = [x for x in helped if x in lost]
    return ", and ".join(([f"{and_join(kept)} helped"] if kept else [])
                         + ([f"{and_join(gone)} helped in the study's own family (not when every study cell "
                             "is read as one family, above)"] if gone else []))
