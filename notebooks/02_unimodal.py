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
# # 02 — Unimodal models: the sources and the baselines
#
# **D-CAT** (Decoupled Cross-Attention Transfer, Daher, Wang & Mielle) improves a classifier of one
# sensor modality (the *target*, e.g. IMU) with what a classifier of another modality (the *source*,
# e.g. video) has learned — while the target still runs **alone** at inference. Both classifiers are
# an encoder followed by self-attention (paper Fig. 1); the source is trained first and frozen; the
# target is trained with cross-entropy plus a *cross-attention loss* that pulls its keys and values
# towards the source's.
#
# Before any transfer, each modality gets its own classifier trained with cross-entropy alone:
# - the **source** (default: video) will be frozen and transfer its knowledge in notebook 03;
# - the **baseline** (default: IMU) is what D-CAT has to beat: the same target architecture,
#   same data, same seed, no transfer.
#
# Checkpoints go to `out_dir/checkpoints/`, named after their settings, so notebooks 03–05 find
# the source trained here instead of training it again.
#
# Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
# `cache_dir`, `source`, `target`, `preset`, `epochs`, `source_epochs`, `seed`, `device`, `resume`, `redo`, `out_dir`,
# `figures_dir`.

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

# --- modalities -----------------------------------------------------------------
source = "video"        # the modality whose model is frozen and transfers (03)
target = "imu"          # the modality that runs alone at inference

# --- training -----------------------------------------------------------------
preset = "synthetic"    # "synthetic" (CPU minutes) or "paper" (Table I for the dataset)
epochs = None           # target / baseline epochs; None: the preset's
source_epochs = None    # frozen-source epochs; None: the preset's
seed = 0                # training seed
device = "auto"         # "auto" (CUDA if present), "cpu", "cuda:0"
resume = False          # continue a killed training run from its checkpoint's .state (02, 03, 05)
redo = False            # train finished runs again instead of reading them back (03, 04, 06)
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
from dcatkit.experiment import format_table, metrics_table, train_unimodal
from dcatkit.model import build_model
from dcatkit.presets import get_preset

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed, device=device,
                             resume=resume, redo=redo)
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
out = paths.out_path(out_dir, "02_unimodal")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={split!r} source={source!r} target={target!r} preset={preset!r} "
      f"epochs={epochs} source_epochs={source_epochs} seed={seed}")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. Data

# %%
t0 = time.perf_counter()
splits = load(dataset, root=checked["data_root"], split=split, modalities=checked["modalities"], seed=data_seed,
              **data_opts)
print(f"loaded {dataset!r} ({split}) in {time.perf_counter() - t0:.1f}s: "
      f"train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)} samples, "
      f"{len(splits.classes)} classes, modalities {splits.train.modalities}")
only = lambda m: Splits(splits.train.select([m]), splits.val.select([m]), splits.test.select([m]), splits.report)
data_key = dict(dataset=dataset, split=split, data_seed=data_seed, data=data_opts, preset=preset)
ck_source = paths.checkpoint_path(out_dir, f"source-{source}", **data_key, epochs=source_epochs, seed=seed)
ck_baseline = paths.checkpoint_path(out_dir, f"baseline-{target}", **data_key, epochs=epochs, seed=seed)

# %% [markdown]
# ## 2. What one classifier computes
#
# Each modality's classifier is its encoder (a 1D CNN for IMU, a ResNet per frame for video, a
# PANNs CNN on log-mels for audio) producing a sequence of embeddings $E \in \mathbb{R}^{T\times
# d_\text{model}}$, then one self-attention layer. Eq. (1) projects $E$ to queries, keys and values,
# $Q = EW_Q$, $K = EW_K$, $V = EW_V$, and Eq. (2) mixes the sequence:
#
# $$\text{Self-Attention}(K, Q, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_\text{out}}}\right)V \qquad (2)$$
#
# The output is averaged over time and classified by a linear head. The model also returns
# $Q, K, V$: D-CAT's loss needs them. One untrained model on one batch:

# %%
import torch

for m in (source, target):
    p = get_preset(preset, m, dataset)
    model = build_model(m, splits.train.num_classes, splits.train.input_shape(m), p)
    x = torch.stack([splits.train[i][m] for i in range(4)])
    o = model.eval()(x)                                             # Eq. (1) and (2) inside
    print(f"{m:>5}: input {tuple(x.shape)} -> logits {tuple(o.logits.shape)}, "
          f"Q/K/V {tuple(o.k.shape)} (B, T, d_out); {sum(q.numel() for q in model.parameters()):,} parameters")

# %% [markdown]
# ## 3. Train with cross-entropy
#
# Both models minimise the cross-entropy of Eq. (18) with Adam (the preset's learning rate and
# weight decay); the epoch with the best validation macro-F1 is kept and tested:
#
# $$L_{CE} = -\frac{1}{N}\sum_{n=1}^{N}\log\frac{\exp(x_{n,y_n})}{\sum_{c=1}^{C}\exp(x_{n,c})} \qquad (18)$$

# %%
runs = {}
for role, m, ep, ck in (("source", source, source_epochs, ck_source), ("baseline", target, epochs, ck_baseline)):
    t0 = time.perf_counter()
    runs[role] = train_unimodal(only(m), m, preset=preset, dataset=dataset, epochs=ep, seed=seed, device=device,
                                checkpoint=ck, progress=False, name=f"{m} {role}", resume=resume)
    r = runs[role]
    print(f"{r.name}: {len(r.history)} epochs in {time.perf_counter() - t0:.0f}s, best val F1 "
          f"{r.meta['best_val']['f1']:.3f} (epoch {r.meta['best_val']['epoch']}), "
          f"test F1 {r.test['f1']:.3f} -> {paths.shown(ck)}")

# %% [markdown]
# ## 4. Test metrics
#
# Accuracy and macro precision / recall / F1 on the held-out test split (paper Sec. V-D). In the
# paper the stronger modality (video, audio) is the natural source for the weaker one (IMU).

# %%
table = metrics_table(list(runs.values()))
print(format_table(table))
files = report.write_results(report.tidy(table, dataset=dataset, split=split, preset=preset, seed=seed,
                                         data_seed=data_seed, epochs=epochs, source_epochs=source_epochs),
                             out, f"unimodal-{dataset}-{split}-{source}-{target}-seed{seed}",
                             params=dict(dataset=dataset, split=split, source=source, target=target, preset=preset,
                                         epochs=epochs, source_epochs=source_epochs, seed=seed, data_seed=data_seed,
                                         data=data_opts))
print("wrote", ", ".join(paths.shown(p) for p in files.values()))

# %%
fig = plots.training_curves({r.name: r.history for r in runs.values()}, ("train_ce", "val_f1"))
plots.save(fig, fig_dir, "02_training_curves")
plt.show()
