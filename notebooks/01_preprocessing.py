# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-papermill,-execution
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 — Preprocessing: what the data looks like
#
# **D-CAT** (Decoupled Cross-Attention Transfer, Daher, Wang & Mielle) improves a classifier of one
# sensor modality (the *target*, e.g. IMU) with what a classifier of another modality (the *source*,
# e.g. video) has learned — while the target still runs **alone** at inference. Both classifiers are
# an encoder followed by self-attention (paper Fig. 1); the source is trained first and frozen; the
# target is trained with cross-entropy plus a *cross-attention loss* that pulls its keys and values
# towards the source's.
#
# This notebook looks at the data before any training: how many samples each class and subject
# has, what an IMU window, a video clip and an audio clip look like once preprocessed (exactly what
# the encoders receive), and a sample browser. For a real dataset, loading it here also **builds
# the preprocessing cache** (decoded, windowed arrays on disk) that the other notebooks then reuse.
#
# Parameters (papermill `-p name value`): `dataset`, `data_root`, `split`, `data_seed`, `n_samples`,
# `frame_size`, `n_frames`, `cache_dir`, `preset`, `out_dir`, `figures_dir`.

# %% tags=["parameters"]
# --- data ---------------------------------------------------------------------
dataset = "synthetic"   # "synthetic" (no files needed), "uestc", "cough" or "vggsound"
data_root = None        # folder of a real dataset as distributed; None for synthetic
split = "id"            # "id" (stratified random) or "ood" (subject-disjoint)
data_seed = 0           # seed of the split (and of the simulated data)
n_samples = 1000        # synthetic only: number of simulated recordings
frame_size = None       # video frame side in pixels; None: the dataset's default (synthetic 32, paper 224)
n_frames = None         # video frames per sample; None: the dataset's default (synthetic 8, paper 30)
cache_dir = None        # real datasets: preprocessing cache folder; None: <data_root>/.dcatkit_cache

# --- display --------------------------------------------------------------------
preset = "synthetic"    # whose audio front end (log-mel settings) to show
# --- outputs (relative paths are relative to the repository root) --------------
out_dir = "outputs"     # results (CSV / JSON) and checkpoints
figures_dir = "figures" # PNG figures

# %%
# NBVAL_CHECK_OUTPUT
import time

import matplotlib.pyplot as plt
import seaborn as sns

from dcatkit import paths, plots, report
from dcatkit.data import Splits, load
from dcatkit.presets import get_preset

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, preset=preset)
checked["modalities"] = paths.DATASET_MODALITIES[dataset]        # look at every modality the dataset has
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
out = paths.out_path(out_dir, "01_preprocessing")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={split!r} data_seed={data_seed} modalities={checked['modalities']}")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. Load and split
#
# `dcatkit.data.load(name, root, split, modalities, seed, **options)` returns train / validation /
# test datasets. Splits are made over *recordings*, never windows, so two windows of one recording
# never land on both sides: `split="id"` is a stratified random split (subjects may appear in train
# and test, the paper's in-distribution setting); `split="ood"` keeps subjects disjoint
# (out-of-distribution). For a real dataset the first call decodes every file once into a
# memory-mapped cache (`cache_dir`); later calls — and the other notebooks — read the cache.

# %%
print(f'results go to {paths.shown(out)}, figures to {paths.shown(fig_dir)}')
t0 = time.perf_counter()
splits = load(dataset, root=checked["data_root"], split=split, modalities=checked["modalities"], seed=data_seed,
              **data_opts)
print(f"loaded {dataset!r} ({split}) in {time.perf_counter() - t0:.1f}s: "
      f"train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)} samples, "
      f"{len(splits.classes)} classes, modalities {splits.train.modalities}")
print('report:', {k: v for k, v in splits.report.items() if k not in ('imu_minmax',)})

# %% [markdown]
# ## 2. Classes and subjects
#
# Class balance matters for the metrics: the paper reports *macro* precision, recall and F1
# (every class weighs the same), so a rare class counts as much as a frequent one.

# %%
# NBVAL_CHECK_OUTPUT
counts = report.class_counts(splits)
print(counts.to_string())

# %%
fig = plots.class_counts(counts, f"{dataset}: samples per class and split ({split})")
plots.save(fig, fig_dir, "01_class_counts")
plt.show()

# %% [markdown]
# Samples per subject. With `split="ood"` each subject sits in exactly one split — the test
# subjects were never seen in training.

# %%
# NBVAL_CHECK_OUTPUT
subjects = report.subject_counts(splits)
print(subjects.to_string())

# %% [markdown]
# ## 3. IMU windows
#
# IMU windows are min-max scaled per channel to $[-1, 1]$ with the **training** split's statistics
# (paper Sec. V-B.1), and validation / test reuse them (so their values may leave $[-1, 1]$):
#
# $$x' = 2\,\frac{x - \min_\text{train}}{\max_\text{train} - \min_\text{train}} - 1$$
#
# In the synthetic data the eight classes form four pairs that *move* alike (e.g. typing on a laptop
# vs. on a phone) and differ in IMU only by a small amplitude change — IMU is the weak modality,
# as in the paper.

# %%
if "imu" in splits.train.modalities:
    fig = plots.imu_traces(splits.train)
    plots.save(fig, fig_dir, "01_imu_traces")
    plt.show()
else:
    print(f"{dataset} has no IMU")

# %% [markdown]
# ## 4. Video frames
#
# Each sample holds `n_frames` RGB frames spread uniformly over the window, resized to
# `frame_size` (the paper: 30 frames at 224x224 for a ResNet-101). In the synthetic data each
# class has its own object colour and shape — video carries the class clearly (a strong source).

# %%
if "video" in splits.train.modalities:
    fig = plots.frame_strips(splits.train)
    plots.save(fig, fig_dir, "01_frames")
    plt.show()
else:
    print(f"{dataset} has no video")

# %% [markdown]
# ## 5. Audio as log-mel spectrograms
#
# The audio encoder (PANNs-style CNN, paper Fig. 4) first turns the waveform into a log-mel
# spectrogram: short-time Fourier transform, mel filter bank $M$, then decibels,
#
# $$S_\text{dB} = 10 \log_{10}\!\left(M\,|\mathrm{STFT}(x)|^2\right).$$
#
# The plots use the encoder's own front end (`dcatkit.encoders.LogMel`) with the preset's
# settings, at the data's sample rate.

# %%
if "audio" in splits.train.modalities:
    audio_encoder = get_preset(preset, "audio", dataset).encoder
    fig = plots.spectrograms(splits.train, audio_encoder)
    plots.save(fig, fig_dir, "01_spectrograms")
    plt.show()
else:
    audio_encoder = None
    print(f"{dataset} has no audio")

# %% [markdown]
# ## 6. Sample browser
#
# Pick a class, a subject and a sample. The browser needs a live widget front end (JupyterLab,
# Notebook, VS Code); where there is none (papermill, a code host's viewer) it shows nothing, so
# a static view of one sample is always drawn below it.

# %%
from IPython.display import display

browser = plots.sample_browser(splits.train, audio_encoder)
if browser is not None:
    display(browser)
else:
    print("ipywidgets is not installed: static view only (pip install ipywidgets)")
fig = plots.sample_figure(splits.train, 0, audio_encoder)       # the static fallback
plots.save(fig, fig_dir, "01_sample")
plt.show()

# %% [markdown]
# ## 7. Save the summary
#
# Counts and sizes as machine-readable files, so sweeps over `dataset` / `split` can be compared.

# %%
files = report.write_results(counts, out, f"class_counts-{dataset}-{split}",
                             params=dict(dataset=dataset, split=split, data_seed=data_seed, **data_opts))
report.write_results(subjects, out, f"subject_counts-{dataset}-{split}",
                     params=dict(dataset=dataset, split=split, data_seed=data_seed, **data_opts))
print("wrote", ", ".join(paths.shown(p) for p in files.values()))
