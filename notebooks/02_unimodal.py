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
# **Learning goals.** After this notebook you can
# 1. describe one classifier of the paper (Fig. 1): an encoder, one self-attention layer (Eqs. 1–2),
#    a linear head, and the queries, keys and values D-CAT will use;
# 2. train it with cross-entropy (Eq. 18) and read its learning curves;
# 3. say why video is the natural *source* and IMU the *target* on this data.
#
# Terms (source, target, baseline, macro-F1, $d_\text{out}$ ...): [GLOSSARY.md](GLOSSARY.md).
# Before any transfer, each modality gets its own classifier trained with cross-entropy alone:
# - the **source** (default: video) will be frozen and transfer its knowledge in notebook 03;
# - the **baseline** (default: IMU) is what D-CAT has to beat: the same target architecture,
#   same data, same seed, no transfer.
#
# Checkpoints go to `out_dir/checkpoints/`, named after their settings, so notebook 03, run after
# this one with the same `out_dir`, loads the source trained here instead of training it again (its
# output says which happened; its baseline it trains itself). The parameters a learner changes are
# `source`, `target`, `split` and `epochs` (Try this); the `training` and `outputs` groups are
# shared by every notebook ([README](README.md)).

# %% tags=["parameters"]
# --- data ---------------------------------------------------------------------
dataset = "synthetic"   # "synthetic" (no files needed), "uestc", "cough", "vggsound" or "arrays" (your own)
data_root = None        # folder of a real dataset as distributed (arrays: the .npz of data.save_arrays)
split = "id"            # "id" (stratified), "ood" (subject-disjoint), "loso" or ["group_kfold", k] (-y)
data_seed = 0           # seed of the split (and of the simulated data)
n_samples = 1000        # synthetic only: number of simulated recordings
frame_size = None       # video frame side in pixels; None: the dataset's default (synthetic 32, paper 224)
n_frames = None         # video frames per sample; None: the dataset's default (synthetic 8, paper 30)
cache_dir = None        # real datasets: preprocessing cache folder; None: <data_root>/.dcatkit_cache
# --- cross-validation -----------------------------------------------------------
fold = 0                # split "loso" / ["group_kfold", k]: the fold (held-out subjects) this run uses

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
figures_dir = None      # PNG figures; None: <out_dir>/figures (only `make notebooks` writes figures/)

# %%
# NBVAL_CHECK_OUTPUT
import time

import matplotlib.pyplot as plt
import seaborn as sns

from dcatkit import paths, plots, report, runs, stats
from dcatkit.experiment import format_table, metrics_table, train_unimodal
from dcatkit.model import build_model
from dcatkit.presets import get_preset
from IPython.display import Markdown, display

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, fold=fold, source=source, target=target,
                             preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed, device=device,
                             resume=resume, redo=redo)
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
out = paths.out_path(out_dir, "02_unimodal")
fig_dir = paths.figures_path(figures_dir, out_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={split!r} source={source!r} target={target!r} preset={preset!r} "
      f"epochs={epochs} source_epochs={source_epochs} seed={seed}")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. Data

# %%
splits = runs.load_splits(dataset, checked, data_seed, data_opts)    # one fold of a cross-validation split
data_key = runs.data_key(dataset, checked["split_name"], data_seed, data_opts, preset, source, target,
                         splits=splits)
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
    p = get_preset(preset, m, dataset, kind=splits.kinds[m])
    model = build_model(m, splits.train.num_classes, splits.train.input_shape(m), p, kind=splits.kinds[m])
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
trained = {}
for role, m, ep, ck in (("source", source, source_epochs, ck_source), ("baseline", target, epochs, ck_baseline)):
    t0 = time.perf_counter()
    trained[role] = train_unimodal(runs.only(splits, m), m, preset=preset, dataset=dataset, epochs=ep, seed=seed,
                                   device=device, checkpoint=ck, progress=False, name=f"{m} {role}", resume=resume)
    r = trained[role]
    print(f"{r.name}: {len(r.history)} epochs in {time.perf_counter() - t0:.0f}s, best val F1 "
          f"{r.meta['best_val']['f1']:.3f} (epoch {r.meta['best_val']['epoch']}), "
          f"test F1 {r.test['f1']:.3f} -> {paths.shown(ck)}")

# %% [markdown]
# ## 4. Test metrics
#
# Accuracy and macro precision / recall / F1 on the held-out test split (paper Sec. V-D). In the
# paper the stronger modality (video, audio) is the natural source for the weaker one (IMU).
#
# The figure after the table is the learning curves: training cross-entropy (left) and validation
# macro-F1 (right) per epoch, one line per model. Look at whether each validation curve has levelled
# off by its last epoch (if it is still rising, the model had not finished learning: Try this 3) and
# at how much it moves between neighbouring epochs (the noise of a small validation split, which is
# also how much the choice of the kept epoch can depend on luck). The kept epochs are printed under
# the figure.

# %%
table = metrics_table(list(trained.values()))
print(format_table(table))
run_params = dict(dataset=dataset, split=checked["split_name"], fold=checked["fold"], source=source, target=target,
                  preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed, data_seed=data_seed,
                  setup=data_key["setup"])   # presets + simulator settings (+ the data's content)
params = {**run_params, "data": data_opts}          # what the results file records; its name hashes all of it
files = report.write_results(report.tidy(table, **run_params, **data_opts), out,
                             runs.results_stem(f"unimodal-{dataset}-{checked['split_name']}-{source}-{target}", params,
                                               f"seed{seed}"), params=params, device=device)
print("wrote", ", ".join(paths.shown(p) for p in files.values()))

# %%
fig = plots.training_curves({r.name: r.history for r in trained.values()}, ("train_ce", "val_f1"))
plots.save(fig, fig_dir, "02_training_curves")
plt.show()
src_run, base_run = trained["source"], trained["baseline"]
val_minus_test = {r.modality: round(r.meta["best_val"]["f1"], 3) - round(r.test["f1"], 3) for r in (src_run, base_run)}
higher_val = [m for m, g in val_minus_test.items() if g > 0]
display(Markdown(
    f"The {source} source reaches test macro-F1 {src_run.test['f1']:.3f}, the {target} baseline "
    f"{base_run.test['f1']:.3f}: the source minus the baseline is "
    f"{stats.signed(round(src_run.test['f1'], 3) - round(base_run.test['f1'], 3))}. Each kept the epoch with "
    f"the best validation F1 ({source}: epoch {src_run.meta['best_val']['epoch']}, val F1 "
    f"{src_run.meta['best_val']['f1']:.3f}; {target}: epoch {base_run.meta['best_val']['epoch']}, val F1 "
    f"{base_run.meta['best_val']['f1']:.3f}). Validation minus test F1: "
    + ", ".join(f"{m} {stats.signed(g)}" for m, g in val_minus_test.items())
    + f". Likely readings, not measured here: one validation sample moves accuracy by {1 / len(splits.val):.3f} and "
    f"one test sample by {1 / len(splits.test):.3f} (macro-F1 at least as much: a sample moves its class's recall by "
    f"1 / that class's count), so the two scores can differ by chance"
    + (f"; where validation is the higher ({', '.join(higher_val)}), the epoch chosen for its validation F1 may "
       "also flatter that split's score" if higher_val else "")
    + ". Notebooks 04 and 06 train their own copy of the source through the sweep runner (same recipe, a separate "
    "training; 06 also on other data draws and sizes), so their source's score can differ from this one."))

# %% [markdown]
# ## Summary
#
# - Every classifier is encoder → self-attention → mean over time → linear head; it also returns
#   $Q, K, V$ ($T$ time steps × $d_\text{out}$), which D-CAT's loss compares.
# - Trained alone, the two modalities score differently (section 4 prints both). What transfer may
#   close is the gap between the target and what it could reach with far more labels (its
#   *ceiling*): notebook 06 draws it against the data size, `benchmarks/SIMULATOR.md` measures it.
# - The kept model is the epoch with the best validation macro-F1, then scored once on test.
#
# ## Try this
#
# 1. **Swap the roles.** `-p source imu -p target video`: *expect* the IMU source to be the weaker
#    model. The paper tried this direction too (IMU to the more expressive modalities): its Table II
#    shows a loss on every metric of both such rows in-distribution (its text, Sec. VI-A.1: "a slight
#    decrease"), from single runs; to test it here, run it over data draws and seeds with
#    `python -m dcatkit sweep --source imu --target video --data-seeds 0-2` (README, "Rival methods,
#    sweeps and statistics").
# 2. **Audio as the source.** `-p source audio`: *expect* audio to learn the class about as easily
#    as video (each class has its own tone band), so it is a second strong source.
# 3. **Fewer epochs.** `-p epochs 5`: *expect* the IMU baseline's validation F1 still rising at the
#    end: the curves tell you whether a model has finished learning.
#
# Next: [03 — D-CAT](03_transfer.ipynb) trains the IMU target with the frozen video source.
