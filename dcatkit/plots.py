"""Figures for the notebooks (matplotlib + seaborn). Every function returns a
``matplotlib.figure.Figure`` and draws nothing it computes itself beyond what
it shows; ``save(fig, folder, name)`` writes it as a PNG (for the README).

Data views: ``class_counts``, ``imu_traces``, ``imu_pairs`` (units g, gravity removed), ``frame_strips``, ``spectrograms``,
``sample_figure`` and ``sample_browser`` (ipywidgets; ``None`` without them).
Results: ``training_curves``, ``metrics_bars``, ``bootstrap_f1`` + ``f1_intervals``, ``bootstrap_f1_diff`` (the
paired interval of two runs' F1 difference on the same test samples; a number, no figure), ``confusion_pair``,
``f1_change``, ``subject_change``, ``lambda_curve``; seed sweeps: ``transfer_curves``, ``paired_intervals``,
``pooled_intervals``.

**One colour per run or method, in every results figure** (``colours``): a name the kit
gives is recognised by its role and always drawn in the colour of ``RUN_COLOURS``,
whatever else the figure shows and in whatever order:

- the baseline (``none``, ``baseline``, ``imu baseline``, ``baseline (measured only)``, ...): black;
- a source model (``video source``, ...): brown;
- D-CAT (``dcat``, ``D-CAT``, ``dcat (MCMA)``): blue; without MCMA (``No MCMA``,
  ``dcat (no MCMA)``): orange; ``dcat (tuned)``: cyan (any method's "``(MCMA)``" variant,
  notebook 04's name, is the method's colour);
- ``kd`` red, ``kd (tuned)`` pink; ``contrastive`` green, ``contrastive (tuned)`` olive;
  ``fitnet`` purple, ``fitnet (tuned)`` plum; ``dcat+kd`` indigo, ``dcat+kd (tuned)`` moss.

Names are matched case-insensitively, ``D-CAT`` as ``dcat``. Any other name (and a second
name of a role already drawn in the same figure, e.g. two sources) takes the next colour
of ``FALLBACK_COLOURS`` in sorted name order, then colours generated without end (golden-ratio
hues): never one of the fixed colours, never the same as another run's in the figure. The
lines of one method at several λ share the method's colour; every line of a ``transfer_curves``
figure has its own marker and line style besides (D-CAT's blue and its tuned cyan looked alike).
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

IMU6 = ("acc x", "acc y", "acc z", "gyro x", "gyro y", "gyro z")

# --------------------------------------------------------------------------- one colour per run / method

# The kit's run and method names by role (the key ``_role`` gives a name) -> colour (module docstring).
RUN_COLOURS = {
    "baseline": "#000000",
    "source": "#8c564b",
    "dcat": "#1f77b4",
    "no mcma": "#ff7f0e",
    "dcat (tuned)": "#17becf",
    "kd": "#d62728",
    "kd (tuned)": "#e377c2",
    "contrastive": "#2ca02c",
    "contrastive (tuned)": "#bcbd22",
    "fitnet": "#9467bd",
    "fitnet (tuned)": "#a55194",
    "dcat+kd": "#393b79",
    "dcat+kd (tuned)": "#637939",
}
# Other names, in sorted order (then generated hues): none of them is a fixed colour or grey (the ceiling).
FALLBACK_COLOURS = ("#e6ab02", "#1b9e77", "#843c39", "#6b6ecf", "#8c6d31", "#d95f02", "#7570b3", "#66a61e",
                    "#e7298a", "#ad494a", "#5254a3", "#a6761d")


def _role(name) -> str | None:
    """The ``RUN_COLOURS`` key of a run / method name the kit gives, None for any other name."""
    n = " ".join(str(name).lower().replace("d-cat", "dcat").replace("_", " ").split())
    if n in ("none", "none (baseline)") or re.search(r"\bbaseline\b", n):
        return "baseline"
    if n == "source" or n.endswith(" source"):
        return "source"
    if n in ("no mcma", "dcat (no mcma)", "dcat, no mcma"):
        return "no mcma"
    n = n.removesuffix(" (mcma)")                       # notebook 04's variants: "dcat (MCMA)", "kd (MCMA)"
    return n if n in RUN_COLOURS else None


def _generated(i: int) -> str:
    """The i-th generated colour after FALLBACK_COLOURS: golden-ratio hues, alternating darkness."""
    import colorsys

    h = (0.11 + i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.55 if i % 2 else 0.8)
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))


def colours(names) -> dict:
    """{name: colour} for the runs / methods of one figure, by the kit's one rule (module
    docstring): a recognised name gets its fixed ``RUN_COLOURS`` colour in every figure;
    other names (and a second name of a role already taken here) get ``FALLBACK_COLOURS``
    in sorted order, then generated colours, so no two names of the figure share one and
    the colours never run out."""
    names = list(dict.fromkeys(names))
    out, taken, rest = {}, set(), []
    for name in sorted(names, key=str):
        role = _role(name)
        if role is not None and RUN_COLOURS[role] not in taken:
            out[name] = RUN_COLOURS[role]
            taken.add(out[name])
        else:
            rest.append(name)
    extra = (FALLBACK_COLOURS[i] if i < len(FALLBACK_COLOURS) else _generated(i - len(FALLBACK_COLOURS))
             for i in itertools.count())
    fixed = set(RUN_COLOURS.values())
    for name in rest:
        c = next(extra)
        while c in taken or c in fixed:
            c = next(extra)
        out[name] = c
        taken.add(c)
    return {name: out[name] for name in names}


def save(fig, folder: str | Path, name: str, dpi: int = 110) -> Path:
    """Write ``fig`` to ``<folder>/<name>.png`` (folder created) and return the path. Written
    atomically (``files.write_atomically``): a run killed mid-save keeps the figure that was
    there, never half a PNG under its name."""
    from .files import write_atomically

    return write_atomically(Path(folder) / f"{name}.png",
                            lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"), binary=True)


def examples(ds, per_class: int = 1) -> list[list[int]]:
    """The first ``per_class`` sample indices of each class (in dataset order)."""
    return [np.flatnonzero(ds.labels == c)[:per_class].tolist() for c in range(len(ds.classes))]


# --------------------------------------------------------------------------- the data


def class_counts(counts: pd.DataFrame, title: str = "samples per class and split"):
    """Stacked bars from ``report.class_counts`` (columns train / val / test)."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    counts[["train", "val", "test"]].plot.bar(stacked=True, ax=ax, width=0.75,
                                              color=sns.color_palette("deep", 3))
    ax.set_xlabel("")
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.tick_params(axis="x", rotation=30)
    for lab in ax.get_xticklabels():
        lab.set_ha("right")
    fig.tight_layout()
    return fig


def imu_traces(ds, channels: Sequence[str] | None = None):
    """One IMU window per class (the dataset's first), all channels, one panel per class."""
    idx = [i[0] for i in examples(ds) if i]
    x = np.stack([np.asarray(ds.arrays["imu"][i], dtype=float) for i in idx])     # (K, C, L)
    names = channels or (IMU6 if x.shape[1] == 6 else [f"ch {c}" for c in range(x.shape[1])])
    cols = 4
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), sharex=True, sharey=True,
                             squeeze=False)
    pal = sns.color_palette("tab10", x.shape[1])
    for ax, xi, i in zip(axes.flat, x, idx):
        for c in range(x.shape[1]):
            ax.plot(xi[c], lw=1, color=pal[c], label=names[c])
        ax.set_title(ds.classes[ds.labels[i]], fontsize=9)
    for ax in axes.flat[len(idx):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("time step", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle("IMU: one window per class (min-max scaled with training statistics)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    return fig


def imu_in_g(ds, index: int) -> np.ndarray:
    """One IMU window back in sensor units (acc in g, gyro in rad/s): undoes the min-max
    scaling to [-1, 1] with the training statistics (``ds.imu_minmax``)."""
    x = np.asarray(ds.arrays["imu"][index], dtype=float)
    mm = getattr(ds, "imu_minmax", None)
    if not mm:
        raise ValueError("this dataset has no IMU scaling statistics (imu_minmax): cannot show sensor units")
    lo, hi = np.asarray(mm["min"], float)[:, None], np.asarray(mm["max"], float)[:, None]
    return (x + 1) / 2 * (hi - lo) + lo


def imu_pairs(ds, pairs: Sequence[tuple[str, str]], subject: int | None = None, channels: Sequence[int] = (0, 1, 2)):
    """The IMU cue that separates each pair of classes: one recording of each class of a
    pair, from **one subject** (so nearly one sensor orientation: the synthetic data adds a small
    rotation per recording, ``HEADROOM_KNOBS["sample_angle"]``), in g, with gravity removed
    (each channel's window mean subtracted: the orientation is fixed within a recording),
    one column per accelerometer axis, time in seconds at the data's IMU rate.

    ``subject``: None picks the first subject with a sample of every class named (else,
    per pair, the first with a sample of both)."""
    names = [c for p in pairs for c in p]
    missing = [c for c in names if c not in ds.classes]
    if missing:
        raise ValueError(f"classes {missing} are not in this dataset: it has {list(ds.classes)}")
    subjects = np.asarray(ds.subjects)

    def has_all(s, cls) -> bool:
        return all(((subjects == s) & (ds.labels == list(ds.classes).index(c))).any() for c in cls)

    if subject is None:                    # one subject for every pair if one has them all, else one per pair
        every = [s for s in np.unique(subjects) if has_all(s, names)]
        chosen = []
        for pair in pairs:
            ok = every or [s for s in np.unique(subjects) if has_all(s, pair)]
            if not ok:
                raise ValueError(f"no subject has a sample of both {pair[0]!r} and {pair[1]!r}: pass subject=")
            chosen.append(int(ok[0]))
    else:
        chosen = [int(subject)] * len(pairs)
    rate = float(ds.sample_rates.get("imu", 0)) or None
    fig, axes = plt.subplots(len(pairs), len(channels), figsize=(3.6 * len(channels), 1.9 * len(pairs) + 0.8),
                             sharex=True, sharey=True, squeeze=False)
    pal = sns.color_palette("deep", 2)
    for r, (pair, subject) in enumerate(zip(pairs, chosen)):
        for j, cname in enumerate(pair):
            c = list(ds.classes).index(cname)
            hit = np.flatnonzero((subjects == subject) & (ds.labels == c))
            if not len(hit):
                raise ValueError(f"subject {subject} has no sample of class {cname!r}")
            x = imu_in_g(ds, int(hit[0]))
            x = x - x.mean(axis=1, keepdims=True)                     # gravity (and any offset) removed
            t = np.arange(x.shape[1]) / rate if rate else np.arange(x.shape[1])
            for col, ch in enumerate(channels):
                axes[r, col].plot(t, x[ch], color=pal[j], lw=1.2, label=cname)
        axes[r, 0].set_ylabel(f"subject {subject}\nacc (g)" if len(set(chosen)) > 1 else "acc (g)")
        axes[r, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for col, ch in enumerate(channels):
        axes[0, col].set_title(f"{IMU6[ch] if ch < len(IMU6) else f'ch {ch}'} (sensor axis)", fontsize=10)
        axes[-1, col].set_xlabel("time (s)" if rate else "sample")
    who = f"subject {chosen[0]}" if len(set(chosen)) == 1 else "one subject per pair"
    fig.suptitle(f"IMU accelerometer, {who}, gravity removed"
                 + (f", {rate:g} Hz" if rate else ""), fontsize=11)
    fig.tight_layout()
    return fig


def frame_strips(ds, max_frames: int = 6):
    """A strip of video frames per class (the class's first sample)."""
    idx = [i[0] for i in examples(ds) if i]
    t = ds.arrays["video"].shape[1]
    show = np.unique(np.linspace(0, t - 1, min(max_frames, t)).round().astype(int))
    fig, axes = plt.subplots(len(idx), len(show), figsize=(0.8 * len(show) + 1.4, 0.8 * len(idx)),
                             squeeze=False)
    for r, i in enumerate(idx):
        clip = np.asarray(ds.arrays["video"][i])                                   # (T, 3, H, W) uint8
        for c, f in enumerate(show):
            ax = axes[r, c]
            ax.imshow(clip[f].transpose(1, 2, 0))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(ds.classes[ds.labels[i]], rotation=0, ha="right", va="center", fontsize=8)
            if r == 0:
                ax.set_title(f"frame {f}", fontsize=8)
    fig.suptitle("video: frames of one sample per class")
    fig.tight_layout()
    return fig


def _logmel_module(ds, audio_encoder: Mapping | None):
    from .encoders import LogMel

    from .presets import audio_encoder_at_rate

    enc = dict(audio_encoder or {})
    sr = int(ds.sample_rates.get("audio", enc.get("sample_rate", 32000)))   # the data's rate, not the preset's
    enc = audio_encoder_at_rate(enc, sr) if enc else enc   # as build_model adapts the front end to that rate
    keys = ("n_fft", "hop_length", "n_mels", "f_min", "f_max", "frontend")   # as the encoder sees it
    kw = {k: enc[k] for k in keys if k in enc}
    return LogMel(sample_rate=sr, **kw), sr


def logmel(ds, index: int, audio_encoder: Mapping | None = None) -> np.ndarray:
    """The log-mel spectrogram (n_mels, frames) in dB the audio encoder sees for one sample."""
    x = np.asarray(ds.arrays["audio"][index], dtype=np.float32)
    if x.ndim == 2:                                    # already a log-mel
        return x
    mod, _ = _logmel_module(ds, audio_encoder)
    with torch.no_grad():
        return mod(torch.from_numpy(x)[None])[0].numpy()


def _logmel_unit(ds) -> str:
    """What :func:`logmel`'s values are, for a colour bar: dB (the front end's ``AmplitudeToDB``,
    10·log10 of the mel power, ref 1) from a waveform; a precomputed log-mel's stored values,
    whose unit the data knows, not the kit."""
    if len(ds.arrays["audio"].shape) == 3:                       # (N, n_mels, frames): already a log-mel
        return "as stored (precomputed log-mel)"
    return "mel power (dB)"


def spectrograms(ds, audio_encoder: Mapping | None = None):
    """Log-mel spectrogram of one sample per class (the audio encoder's front end), on one
    colour scale with one colour bar that gives the unit: mel power in dB, or a precomputed
    log-mel's values as stored."""
    idx = [i[0] for i in examples(ds) if i]
    _, sr = _logmel_module(ds, audio_encoder)
    specs = [logmel(ds, i, audio_encoder) for i in idx]
    lo, hi = min(float(s.min()) for s in specs), max(float(s.max()) for s in specs)
    cols = 4
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols + 0.8, 2.0 * rows), squeeze=False)
    for ax, i, s in zip(axes.flat, idx, specs):
        im = ax.imshow(s, origin="lower", aspect="auto", cmap="magma", vmin=lo, vmax=hi)
        ax.grid(False)
        ax.set_title(ds.classes[ds.labels[i]], fontsize=9)
        ax.set_xlabel("frame", fontsize=8)
        ax.set_ylabel("mel bin", fontsize=8)
    for ax in axes.flat[len(idx):]:
        ax.axis("off")
    fig.suptitle(f"audio: log-mel spectrograms, {sr} Hz, one sample per class")
    fig.tight_layout()
    fig.colorbar(im, ax=axes.ravel().tolist(), label=_logmel_unit(ds), fraction=0.03, pad=0.02)
    return fig


def sample_figure(ds, index: int, audio_encoder: Mapping | None = None, max_frames: int = 8):
    """Every modality of one sample, side by side (the static view of the browser), each drawn
    by its kind: a timeseries as lines, video as frames, audio as the log-mel the encoder sees,
    features as an image (time x feature). Your own names are drawn by their kinds too."""
    order = {"imu": 0, "video": 1, "audio": 2}
    mods = sorted(ds.arrays, key=lambda m: order.get(m, 3))
    fig, axes = plt.subplots(1, len(mods), figsize=(4.2 * len(mods), 2.8), squeeze=False)
    for ax, m in zip(axes[0], mods):
        kind = ds.kind(m)
        if kind == "timeseries":
            x = np.asarray(ds.arrays[m][index], dtype=float)
            names = IMU6 if m == "imu" and x.shape[0] == 6 else [f"ch {c}" for c in range(x.shape[0])]
            for c in range(x.shape[0]):
                ax.plot(x[c], lw=1, label=names[c])
            ax.legend(fontsize=6, ncol=2, loc="upper right")   # not "best": it moved with the dpi
            ax.set_title(f"{'IMU' if m == 'imu' else m} (min-max scaled with training statistics)", fontsize=9)
            ax.set_xlabel("time step", fontsize=8)
            ax.set_ylabel("scaled value", fontsize=8)
        elif kind == "video":
            clip = np.asarray(ds.arrays[m][index])
            show = np.unique(np.linspace(0, clip.shape[0] - 1, min(max_frames, clip.shape[0])).round().astype(int))
            ax.imshow(np.concatenate([clip[f].transpose(1, 2, 0) for f in show], axis=1))
            ax.set_title(f"{m} (frames {show[0]}..{show[-1]})")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        elif kind == "audio" and m == "audio":
            im = ax.imshow(logmel(ds, index, audio_encoder), origin="lower", aspect="auto", cmap="magma")
            ax.grid(False)
            fig.colorbar(im, ax=ax, label=_logmel_unit(ds), pad=0.02)
            ax.set_title("audio (log-mel)")
            ax.set_xlabel("frame", fontsize=8)
            ax.set_ylabel("mel bin", fontsize=8)
        else:                        # features (T, F), or audio under another name: its samples as they are
            x = np.asarray(ds.arrays[m][index], dtype=float)
            if x.ndim == 1:
                ax.plot(x, lw=0.6)
                ax.set_xlabel("sample", fontsize=8)
            else:
                ax.imshow(x.T, origin="lower", aspect="auto", cmap="viridis")
                ax.grid(False)
                ax.set_xlabel("time step", fontsize=8)
                ax.set_ylabel("feature", fontsize=8)
            ax.set_title(f"{m} ({kind})", fontsize=9)
    fig.suptitle(f"sample {ds.ids[index]}: class {ds.classes[ds.labels[index]]}, "
                 f"subject {ds.subjects[index]}", fontsize=10)
    fig.tight_layout()
    return fig


def sample_browser(ds, audio_encoder: Mapping | None = None):
    """An ipywidgets browser: pick a class, a subject ("any") and a sample; it redraws
    :func:`sample_figure`. Returns the widget, or ``None`` when ipywidgets is missing.
    Without a widget front end (papermill, a code host) the widget shows nothing:
    draw a static ``sample_figure`` as well."""
    try:
        import ipywidgets as W
        from IPython.display import display
    except ImportError:
        return None
    cls = W.Dropdown(options=[(c, i) for i, c in enumerate(ds.classes)], description="class")
    subj = W.Dropdown(options=[("any", -2)] + [(str(s), int(s)) for s in np.unique(ds.subjects)],
                      description="subject")
    pick = W.IntSlider(min=0, max=0, description="sample")
    info, out = W.HTML(), W.Output()

    def matches() -> np.ndarray:
        keep = ds.labels == cls.value
        if subj.value != -2:
            keep &= ds.subjects == subj.value
        return np.flatnonzero(keep)

    def redraw(*_):
        idx = matches()
        pick.max = max(len(idx) - 1, 0)
        with out:
            out.clear_output(wait=True)
            if len(idx) == 0:
                info.value = "no sample of this class from this subject"
                return
            i = int(idx[min(pick.value, len(idx) - 1)])
            info.value = f"{len(idx)} matching samples; showing #{min(pick.value, len(idx) - 1)} ({ds.ids[i]})"
            fig = sample_figure(ds, i, audio_encoder)
            plt.close(fig)                       # shown once, by display(), not again at the cell's end
            display(fig)

    for w in (cls, subj, pick):
        w.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([cls, subj, pick]), info, out])


# --------------------------------------------------------------------------- results


# What each history column is, in words: (panel title, y-label).
CURVE_LABELS = {
    "train_ce": ("training cross-entropy (mean over the epoch's batches)", "L_CE (Eq. 18)"),
    "train_ca": ("training alignment loss (mean over the epoch's batches)", "L_CA (Eq. 7); √2 = orthogonal"),
    "train_loss": ("training objective (mean over the epoch's batches)", "L_CE + λ L_CA (Eq. 19)"),
    "train_mask_frac": ("samples MCMA keeps (source right)", "share of training samples"),
    "val_f1": ("macro-F1 on the validation set", "macro-F1"),
    "val_accuracy": ("accuracy on the validation set", "accuracy"),
}


# History columns that are shares or scores in [0, 1]: their axes get no tick above 1.
BOUNDED = ("train_mask_frac", "val_f1", "val_accuracy")


def no_ticks_above_one(ax, axis: str = "y") -> None:
    """Drop the ticks above 1 of an axis whose values cannot exceed 1 (F1, a share), where the
    limits leave room above it for labels or markers: a tick at 1.05 reads as a possible value."""
    get, put = (ax.get_yticks, ax.set_yticks) if axis == "y" else (ax.get_xticks, ax.set_xticks)
    lims = ax.get_ylim() if axis == "y" else ax.get_xlim()
    put([t for t in get() if min(lims) - 1e-12 <= t <= 1 + 1e-9])
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lims)


def curve_label(metric: str) -> tuple[str, str]:
    """(title, y-label) of a history column; unknown columns keep their name."""
    return CURVE_LABELS.get(metric, (metric.replace("_", " "), metric))


def training_curves(histories: Mapping[str, pd.DataFrame], metrics: Sequence[str] = ("train_ce", "val_f1")):
    """Per-epoch curves of several runs (``Run.history``), one panel per metric, titled
    and labelled in words (``CURVE_LABELS``), integer epoch ticks. A run has one colour in
    every panel (the legend is drawn once), also in a panel where another run has no curve,
    and the colour ``colours`` gives its name in every figure."""
    from matplotlib.ticker import MaxNLocator

    colour = colours(histories)                     # the kit's one colour per run (module docstring)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for name, h in histories.items():
            if m in h:
                ax.plot(h["epoch"], h[m], marker="o", ms=3, label=name, color=colour[name])
        title, ylabel = curve_label(m)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if m in BOUNDED:
            no_ticks_above_one(ax, "y")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def metrics_bars(table: pd.DataFrame, metrics: Sequence[str] = ("accuracy", "precision", "recall", "f1"),
                 title: str = "test metrics"):
    """Grouped bars: one group per metric, one bar per run (rows of ``metrics_table``),
    labelled with 3 decimals; each run in its colour of ``colours``."""
    long = table[list(metrics)].reset_index().melt(id_vars=table.index.name or "index",
                                                    var_name="metric", value_name="score")
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    sns.barplot(data=long, x="metric", y="score", hue=table.index.name or "index", ax=ax,
                palette=colours(table.index))
    for c in ax.containers:
        ax.bar_label(c, fmt="%.3f", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """The bootstrap's resampled test indices, (n_boot, n): the same for every run scored with
    the same ``seed`` (``bootstrap_f1``, ``bootstrap_f1_diff``)."""
    return np.random.default_rng(seed).integers(0, n, (n_boot, n))


def bootstrap_f1(y: np.ndarray, preds: Mapping[str, np.ndarray], num_classes: int, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Macro-F1 of each run's test predictions with a percentile bootstrap interval over
    the test samples (the same resampled indices for every run). This is the uncertainty
    of *one model's* score from a finite test set, not the spread over training seeds.
    To compare two runs scored on the same test samples, read :func:`bootstrap_f1_diff`
    (the interval of their difference), not whether two of these intervals overlap.
    Returns one row per run: ``f1``, ``ci_low``, ``ci_high``, ``n``."""
    import warnings

    from .metrics import classification_metrics

    y = np.asarray(y)
    idx = _resamples(len(y), n_boot, seed)
    rows = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # a resample may miss a class: macro over the present ones
        for name, p in preds.items():
            p = np.asarray(p)
            boots = np.array([classification_metrics(y[i], p[i], num_classes)["f1"] for i in idx])
            lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
            rows[name] = {"f1": classification_metrics(y, p, num_classes)["f1"], "ci_low": lo, "ci_high": hi,
                          "n": len(y)}
    return pd.DataFrame.from_dict(rows, orient="index")


def bootstrap_f1_diff(y: np.ndarray, pred_other: np.ndarray, pred_base: np.ndarray, num_classes: int,
                      n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Macro-F1 of ``pred_other`` minus that of ``pred_base``, two models' predictions for the
    same test samples ``y``, with a *paired* percentile bootstrap interval: each resample of the
    test samples scores both models on the same samples (the resampled indices of
    :func:`bootstrap_f1` with the same ``seed`` and ``n_boot``), and the interval is the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the per-resample differences.

    What the two models get right or wrong on the same samples cancels, so this interval is
    much narrower than the overlap of the two runs' own intervals suggests. It is the test-set
    noise of this *one pair of trained models*: it says nothing about another training seed or
    data draw (those take paired runs pooled over seeds and draws, ``dcatkit.studies``).
    Returns ``{"diff", "ci_low", "ci_high", "n", "n_boot", "level"}`` (``diff`` unrounded)."""
    import warnings

    from .metrics import classification_metrics

    y, a, b = (np.asarray(x) for x in (y, pred_other, pred_base))
    if not (y.ndim == 1 and y.shape == a.shape == b.shape) or not len(y):
        raise ValueError(f"y {y.shape}, pred_other {a.shape} and pred_base {b.shape} must be 1-D, one entry per "
                         "test sample, for the same samples")
    idx = _resamples(len(y), n_boot, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # a resample may miss a class: macro over the present ones
        boots = np.array([classification_metrics(y[i], a[i], num_classes)["f1"]
                          - classification_metrics(y[i], b[i], num_classes)["f1"] for i in idx])
        diff = classification_metrics(y, a, num_classes)["f1"] - classification_metrics(y, b, num_classes)["f1"]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return {"diff": float(diff), "ci_low": float(lo), "ci_high": float(hi), "n": int(len(y)), "n_boot": int(n_boot),
            "level": float(level)}


def f1_intervals(scores: pd.DataFrame, title: str = "test macro-F1", level: float = 0.95):
    """Macro-F1 of each run (rows of :func:`bootstrap_f1`) as a point with its interval,
    the value written with 3 decimals: readable on a slide where bars of 0.815 and 0.816
    look alike. Each run in its colour of ``colours``."""
    fig, ax = plt.subplots(figsize=(7.0, 0.55 * len(scores) + 1.3))
    pal = colours(scores.index)
    for i, (name, r) in enumerate(scores.iterrows()):
        ax.plot([r["ci_low"], r["ci_high"]], [i, i], color=pal[name], lw=2.5)
        ax.plot([r["f1"]], [i], "o", color=pal[name], ms=7)
        ax.annotate(f"{r['f1']:.3f}  [{r['ci_low']:.3f}, {r['ci_high']:.3f}]", (r["ci_high"], i),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_yticks(range(len(scores)))
    ax.set_yticklabels(scores.index)
    ax.set_ylim(len(scores) - 0.5, -0.5)
    lo, hi = scores["ci_low"].min(), scores["ci_high"].max()
    ax.set_xlim(lo - 0.02, hi + 0.35 * (hi - lo) + 0.06)
    no_ticks_above_one(ax, "x")                      # the room right of 1 is for the labels
    n = int(scores["n"].iloc[0]) if "n" in scores else None
    ax.set_xlabel(f"test macro-F1, {level:.0%} bootstrap interval over the {n} test samples" if n else "test macro-F1")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_pair(conf_a: np.ndarray, conf_b: np.ndarray, classes: Sequence[str],
                   titles: tuple[str, str] = ("baseline", "D-CAT")):
    """Two confusion matrices side by side (seaborn): colour = share of the true class
    (row-normalised, i.e. recall on the diagonal), numbers = sample counts."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.4))
    for ax, c, t in zip(axes, (conf_a, conf_b), titles):
        c = np.asarray(c)
        share = c / np.maximum(c.sum(1, keepdims=True), 1)
        sns.heatmap(share, annot=c, fmt="d", cmap="Blues", vmin=0, vmax=1, cbar=ax is axes[-1], ax=ax,
                    cbar_kws={"label": "share of the true class"},
                    xticklabels=classes, yticklabels=classes, square=True, annot_kws={"fontsize": 8})
        ax.set_title(f"{t} (accuracy {np.trace(c) / max(c.sum(), 1):.3f})")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


# Behind a bar's value label: the theme's grid line would otherwise run through it (and its minus sign).
LABEL_BOX = {"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"}


def f1_change(change: pd.DataFrame, col: str = "delta_f1", title: str = "per-class F1 change (D-CAT - baseline)",
              conf_base: np.ndarray | None = None, conf_other: np.ndarray | None = None,
              classes: Sequence[str] | None = None, of: tuple[str, str] | None = None):
    """Horizontal bars of ``report.per_class_change`` in one neutral colour (a change of
    one or two test samples is not a gain or a loss to colour red or green), each labelled
    with its value and, given both confusion matrices and their ``classes`` (row order),
    the counts behind it: test samples of the class classified right, baseline -> other,
    of its support.

    The label's value is the difference of the two F1s as a table shows them (3 decimals),
    as ``experiment.format_table(..., diffs=...)`` prints it beside the figure: F1s of
    0.8125 and 0.8649 print as 0.812 and 0.865, so the label says +0.053, not the unrounded
    +0.052. ``of`` names those two columns (other, baseline); by default the two ``f1_*``
    columns of ``report.per_class_change`` (its second minus its first)."""
    from .stats import signed

    if of is None:
        f1s = [c for c in change.columns if str(c).startswith("f1_")]
        if len(f1s) != 2:
            raise ValueError(f"f1_change: pass of=(other, baseline) F1 columns; the table's f1_* columns are {f1s}, "
                             "not the two of report.per_class_change")
        of = (f1s[1], f1s[0])
    missing = [c for c in (col, *of) if c not in change.columns]
    if missing:
        raise ValueError(f"f1_change: the table has no columns {missing}; it has {list(change.columns)}")
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(change) + 1.3))
    v = change[col]
    ax.barh(change.index.astype(str), v, color="slategray")
    ax.axvline(0, color="k", lw=0.8)
    ax.invert_yaxis()
    span = max(float(np.abs(v).max()), 1e-3)
    ax.set_xlim(-2.6 * span, 2.6 * span)
    counts = conf_base is not None and conf_other is not None and classes is not None
    shown = change[of[0]].round(3) - change[of[1]].round(3)    # of the F1s the table prints, as its ΔF1
    for i, ((c, x), d) in enumerate(zip(v.items(), shown)):
        text = signed(d)
        if counts:
            j = list(classes).index(c)
            a, b = np.asarray(conf_base), np.asarray(conf_other)
            text += f" (right {int(a[j, j])} → {int(b[j, j])} of {int(a[j].sum())})"
        ax.annotate(text, (x, i), xytext=(4 if x >= 0 else -4, 0), textcoords="offset points",
                    ha="left" if x >= 0 else "right", va="center", fontsize=8, bbox=LABEL_BOX)
    ax.grid(axis="y", visible=False)    # a grid line through a label's row hid its minus sign
    ax.set_xlabel("ΔF1 of the class (test split, one training seed)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def subject_change(table: pd.DataFrame, title: str = "D-CAT - baseline per test subject"):
    """ΔF1 per test subject (rows of ``runs.per_subject``) as neutral bars, each labelled
    with the counts behind it: samples fixed and broken, of the subject's test samples. The
    label's ΔF1 is the difference of the two F1s as a table shows them (3 decimals), as
    ``experiment.format_table(..., diffs=...)`` prints it."""
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(table) + 1.4))
    labels = [f"subject {s}" + (f" (fold {f})" if "fold" in table else "")
              for s, f in zip(table["subject"], table["fold"] if "fold" in table else [None] * len(table))]
    v = table["delta_f1"].to_numpy(dtype=float)
    ax.barh(labels, v, color="slategray")
    ax.axvline(0, color="k", lw=0.8)
    ax.invert_yaxis()
    span = max(float(np.abs(v).max()), 1e-3)
    ax.set_xlim(-3.4 * span, 3.4 * span)              # room for the longest label beside the longest bar
    from .stats import signed

    for i, r in enumerate(table.itertuples()):
        shown = round(r.f1_other, 3) - round(r.f1_baseline, 3)    # of the F1s the table prints, as its ΔF1
        ax.annotate(f"{signed(shown)} (fixed {r.fixed}, broke {r.broke} of {r.n})", (r.delta_f1, i),
                    xytext=(4 if r.delta_f1 >= 0 else -4, 0), textcoords="offset points",
                    ha="left" if r.delta_f1 >= 0 else "right", va="center", fontsize=8, bbox=LABEL_BOX)
    ax.grid(axis="y", visible=False)    # a grid line through a label's row hid its minus sign
    ax.set_xlabel("ΔF1 of the subject's test samples (macro over its classes, one seed)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def lambda_curve(rows: pd.DataFrame, metric: str = "f1", x: str = "lam", hue: str = "variant",
                 baseline: str = "baseline"):
    """``metric`` against λ (log axis), one line per ``hue`` with ± 1 std over seeds
    (seaborn ``errorbar="sd"``); the baseline (rows whose ``hue`` is ``baseline``) as
    a horizontal line with its ± 1 std band. Each variant in its colour of ``colours``
    (notebook 04's "dcat (MCMA)" is D-CAT's blue, "dcat (no MCMA)" No MCMA's orange)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    tr = rows[rows[hue] != baseline]
    pal = colours(tr[hue])
    sns.lineplot(data=tr, x=x, y=metric, hue=hue, style=hue, markers=True, dashes=False, errorbar="sd",
                 err_style="band", palette=pal, ax=ax)
    sns.stripplot(data=tr, x=x, y=metric, hue=hue, native_scale=True, dodge=False, jitter=False, alpha=0.35,
                  size=4, legend=False, palette=pal, ax=ax)
    base = rows.loc[rows[hue] == baseline, metric]
    if len(base):
        m, s = base.mean(), base.std(ddof=1) if len(base) > 1 else 0.0
        ax.axhline(m, color="k", ls="--", lw=1, label=f"{baseline} (mean)")
        if s > 0:
            ax.axhspan(m - s, m + s, color="k", alpha=0.08)
    ax.set_xscale("log")
    ax.set_xlabel("λ (weight of L_CA, Eq. 19)")
    what = "macro-F1" if metric == "f1" else metric
    ax.set_ylabel(f"test {what}")
    n = rows["seed"].nunique() if "seed" in rows else 1
    ax.set_title(f"test {what} against λ (mean ± std over {n} seed{'s' if n != 1 else ''})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _panels(df: pd.DataFrame, col: str | None):
    """(title, rows) per value of ``col`` (one panel when None), in first-seen order."""
    if col is None:
        return [("", df)]
    return [(str(v), df[df[col] == v]) for v in dict.fromkeys(df[col])]


MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINESTYLES = ("-", "--", ":", "-.")


def _pct(level: float) -> str:
    return f"{round(100 * float(level), 4):g}%"


def _treatments(df: pd.DataFrame, method: str, lam: str | None, x: str, col: str | None,
                fn: str) -> pd.DataFrame:
    """``df`` with ``_label`` (the method; with its λ when the table has that method at more
    than one λ), refused with a clear message when two rows share panel, method, λ and ``x``: a
    ``stats.summarise`` table's treatment is (method, lam), and which of two rows is the
    cell's?"""
    keys = [c for c in (col, method) if c is not None] + ([lam] if lam in df.columns else []) + [x]
    missing = [c for c in keys if c not in df.columns]
    if missing:
        raise ValueError(f"{fn}: the table has no column(s) {missing}; it has {list(df.columns)}")
    df = df.reset_index(drop=True)       # labels are set by row below: an index with repeats (pd.concat) would clash
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        key, rows = next(iter(df[dup].groupby(keys, sort=False, dropna=False)))
        differ = [c for c in rows.columns if c not in keys and rows[c].astype(str).nunique() > 1]
        raise ValueError(f"{fn}: {len(rows)} rows share {dict(zip(keys, key))}: one row per "
                         f"({', '.join(keys)}) expected" + (f"; they differ in {differ}: summarise with those in "
                                                           "the treatment, or keep one value of each"
                                                           if differ else "; they are copies: drop them"))
    label = df[method].astype(str)
    if lam in df.columns:
        for m, g in df.groupby(method, sort=False):
            lams = sorted(set(g[lam].dropna().astype(float))) + ([np.nan] if g[lam].isna().any() else [])
            if len(lams) < 2:
                continue
            for v in lams:
                at = g.index[g[lam].isna()] if v != v else g.index[g[lam].astype(float) == v]
                label[at] = f"{m} (λ = {v:g})" if v == v else f"{m} (λ not set)"
    return df.assign(_label=label)


def transfer_curves(summary: pd.DataFrame, x: str = "n_samples", col: str | None = "regime",
                    ceilings: Mapping[str, tuple[float, float]] | None = None, method: str = "method",
                    baseline: str = "none", ylabel: str = "test macro-F1", lam: str = "lam",
                    spread: str | None = None):
    """Mean ± std of every treatment against ``x`` (rows of ``stats.summarise`` /
    ``summarise_draws``: columns ``mean``, ``std``, ``n``), one panel per value of ``col``.
    A treatment is the method and, with a ``lam`` column, its λ: a method at several λ gets
    a line per λ (its colour), never one line through them; every line has its own marker
    and line style, the same in every panel, and is drawn a few points sideways of the next
    (its x values as they are), so that close colours (D-CAT's blue, its tuned cyan) and
    equal values stay apart; two rows of one (panel, method, λ, x) are refused. Colours: ``colours`` (the baseline
    black). ``ceilings`` {panel value: (mean, std)} draws a dashed line with a ± std band
    (e.g. the IMU ceiling of ``dcatkit.headroom``). The legend's title says what the bars
    are: ± 1 std over draws × seeds (rows with ``n_draws``) or over seeds, and the number of
    runs a point when it is one number; ``spread`` replaces "draws × seeds" / "seeds"."""
    from matplotlib.transforms import offset_copy

    summary = _treatments(summary, method, lam, x, col, "transfer_curves")
    panels = _panels(summary, col)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False, sharey=True)
    lines = dict.fromkeys(zip(summary["_label"], summary[method].astype(str)))
    pal = colours(summary[method].astype(str))
    step = min(3.0, 20.0 / max(len(lines) - 1, 1))      # points sideways between lines: bars side by side
    for ax, (title, rows) in zip(axes[0], panels):
        for i, (label, m) in enumerate(lines):             # each line its marker and line style, in every panel
            r = rows[rows["_label"] == label].sort_values(x)
            if r.empty:
                continue
            shift = offset_copy(ax.transData, fig=fig, x=(i - (len(lines) - 1) / 2) * step, units="points")
            drawn = ax.errorbar(r[x], r["mean"], yerr=r["std"].fillna(0), marker=MARKERS[i % len(MARKERS)], ms=5,
                                capsize=3, ls=LINESTYLES[i % len(LINESTYLES)], color=pal[m],
                                lw=2 if m == baseline else 1.2, label=f"{label} (baseline)" if m == baseline else label)
            for a in (drawn.lines[0], *drawn.lines[1], *drawn.lines[2]):     # after the axes took the limits
                a.set_transform(shift)
        if ceilings and title in ceilings:
            c, s = ceilings[title]
            ax.axhline(c, color="grey", ls="--", lw=1.2, label="ceiling")
            if s and np.isfinite(s):
                ax.axhspan(c - s, c + s, color="grey", alpha=0.12)
        ax.set_xlabel("simulated recordings (70% train)" if x == "n_samples" else x.replace("_", " "))
        ax.set_title(title)
    axes[0, 0].set_ylabel(ylabel)
    seen: dict = {}                                  # every panel's entries, once (panels may differ)
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if spread is None:
        draws = "n_draws" in summary and pd.to_numeric(summary["n_draws"], errors="coerce").notna().any()
        spread = "draws × seeds" if draws else "seeds"
    n = set(pd.to_numeric(summary["n"], errors="coerce").dropna().astype(int)) if "n" in summary else set()
    runs = f"\n({n.pop()} runs a point)" if len(n) == 1 else ""
    axes[0, -1].legend(seen.values(), seen.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                       frameon=False, title=f"bars: mean ± 1 std\nover {spread}{runs}", title_fontsize=8)
    fig.tight_layout()
    return fig


def _interval_words(rows: pd.DataFrame) -> str:
    """What the intervals of ``stats.summarise`` rows are, from their own columns."""
    adjusted = ("family_size" in rows and "correction" in rows and (rows["correction"] != "none").any()
                and (rows["family_size"].astype(float) > 1).any())                   # Holm / Bonferroni
    conf = sorted(set(pd.to_numeric(rows["confidence"], errors="coerce").dropna())) if "confidence" in rows else []
    if adjusted:
        how = ", ".join(sorted(set(rows.loc[rows["correction"] != "none", "correction"].astype(str))))
        family = f", family-wise {_pct(conf[0])}" if len(conf) == 1 else ""
        return f"intervals adjusted for the cells tested together: {how}{family}"
    col = "level" if "level" in rows else "confidence" if "confidence" in rows else None
    if col is None:
        return "intervals of unstated level: no level or confidence column"
    levels = sorted(set(pd.to_numeric(rows[col], errors="coerce").dropna().round(6)))
    if not levels:
        return "no interval: no cell was tested"
    if len(levels) == 1:
        return f"{_pct(levels[0])} interval"
    return "intervals at " + ", ".join(_pct(v) for v in levels) + " (each row's own level)"


def paired_intervals(summary: pd.DataFrame, x: str = "n_samples", col: str | None = "regime",
                     method: str = "method", baseline: str = "none", lam: str = "lam"):
    """The paired difference to the baseline (``diff_mean``) with its confidence interval
    (``ci_low``, ``ci_high``) for every treatment (method, and its λ when a method has
    several) and value of ``x`` (rows of ``stats.summarise``), one panel per value of
    ``col``: a forest plot, zero marked. An interval that does not cross zero is drawn
    solid, one that does hollow. The x-label names the intervals from the rows' own
    columns: their ``level`` (or ``confidence``), or the correction that adjusted them.
    Two rows of one (panel, method, λ, x) are refused. Colours: ``colours``."""
    rows = _treatments(summary[summary[method] != baseline], method, lam, x, col, "paired_intervals")
    panels = _panels(rows, col)
    treatments = dict.fromkeys(zip(rows["_label"], rows[method].astype(str)))
    xs = sorted(dict.fromkeys(rows[x]))
    n_rows = len(treatments) * len(xs)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 0.32 * n_rows + 1.4), squeeze=False,
                             sharey=True)
    pal = colours(rows[method].astype(str))
    what = _interval_words(rows)
    labels = [f"{t}, {x.split('_')[0]} = {v:g}" if isinstance(v, (int, float, np.number)) else f"{t}, {v}"
              for v in xs for t, _ in treatments]
    for ax, (title, r) in zip(axes[0], panels):
        for i, (v, (t, m)) in enumerate((v, t) for v in xs for t in treatments):
            c = r[(r[x] == v) & (r["_label"] == t)]
            if c.empty:
                continue
            c = c.iloc[0]                                   # the only one: _treatments refuses two
            lo, hi = c["ci_low"], c["ci_high"]
            clear = np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0)
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [i, i], color=pal[m], lw=2)
            ax.plot([c["diff_mean"]], [i], "o", color=pal[m], mfc=pal[m] if clear else "white", ms=6)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(n_rows))
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_ylim(n_rows - 0.5, -0.5)
        ax.locator_params(axis="x", nbins=5)
        ax.set_xlabel(f"ΔF1 to the same-seed baseline ({what})")
        ax.set_title(title)
    fig.tight_layout()
    return fig


def pooled_intervals(pooled: pd.DataFrame, per_draw: pd.DataFrame | None = None, study: str = "study",
                     baseline: str = "none", xlabel: str = "Δ to the same-seed baseline"):
    """Forest plot of pooled verdicts (rows of ``studies.pooled_verdicts``): one panel per
    study, stacked, each on its own x-scale (one study's wide intervals would otherwise squeeze
    another's narrow ones under their markers); a row per (method, lambda, size) that the study
    has (no empty rows), labelled with its λ wherever the study has the method at a λ other
    than the default 1 (then its λ = 1 rows say so too); a tuned cell by its name. The point
    is the mean over draws of the paired difference, the bar its family-adjusted interval
    (``ci_low`` / ``ci_high``: Holm within the study, t on the draw means); filled when that
    interval excludes 0, open when it holds 0. Grey crosses: each data draw's own mean
    difference (``per_draw``). Colours: ``colours``."""
    from matplotlib.lines import Line2D

    from .studies import size_label

    rows = pooled[pooled["method"] != baseline]
    studies = list(dict.fromkeys(rows[study]))
    counts = [len(rows[rows[study] == s]) for s in studies]
    fig, axes = plt.subplots(len(studies), 1, figsize=(7.5, 0.34 * sum(counts) + 1.0 * len(studies) + 0.8),
                             squeeze=False, gridspec_kw={"height_ratios": [max(c, 1) + 1 for c in counts]})
    pal = colours(rows["method"])                 # the kit's one colour per method (module docstring)
    for ax, s in zip(axes[:, 0], studies):
        r = rows[rows[study] == s].sort_values("size", kind="stable").reset_index(drop=True)   # methods as run
        plain = r[~r["method"].astype(str).str.endswith("(tuned)")]       # a tuned cell's lam (0) is no λ
        said = {m for m, g in plain.groupby("method") if set(g["lam"].astype(float)) != {1.0}}
        labels = []
        for i, c in r.iterrows():
            lo, hi = c["ci_low"], c["ci_high"]
            clear = np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0)
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([lo, hi], [i, i], color=pal[c["method"]], lw=2)
            ax.plot([c["diff_mean"]], [i], "o", color=pal[c["method"]], mfc=pal[c["method"]] if clear else "white",
                    ms=7, zorder=3)
            if per_draw is not None:
                d = per_draw[(per_draw[study] == s) & (per_draw["method"] == c["method"])
                             & (per_draw["lam"] == c["lam"]) & (per_draw["size"] == c["size"])]
                ax.plot(d["diff_mean"], [i] * len(d), "x", color="0.45", ms=5, zorder=2)
            size = size_label(c["size"], c["unit"] if "unit" in r.columns else "recordings")
            lam = f", λ = {c['lam']:g}" if c["method"] in said else ""
            labels.append(f"{c['method']}{lam}, {size}")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(range(len(r)))
        ax.set_yticklabels(labels, fontsize=9)
        ax.set_ylim(len(r) - 0.5, -0.5)
        metric = r["metric"].iloc[0] if "metric" in r.columns and len(r) else "f1"
        ax.set_title(f"{s} (read on {'macro recall' if metric == 'recall' else 'macro-F1'})", fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
    handles = [Line2D([], [], marker="o", color="0.2", mfc="0.2", ls="-", label="interval excludes 0 (a call)"),
               Line2D([], [], marker="o", color="0.2", mfc="white", ls="-", label="interval holds 0 (no evidence)"),
               Line2D([], [], marker="x", color="0.45", ls="", label="one data draw's mean")]
    axes[0, 0].legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.12), ncol=3,
                      frameon=False)
    fig.tight_layout()
    return fig
