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
# # 04 — Ablation: the weight λ and masked alignment
#
# **D-CAT** (Decoupled Cross-Attention Transfer, Daher, Wang & Mielle) improves a classifier of one
# sensor modality (the *target*, e.g. IMU) with what a classifier of another modality (the *source*,
# e.g. video) has learned — while the target still runs **alone** at inference. Both classifiers are
# an encoder followed by self-attention (paper Fig. 1); the source is trained first and frozen; the
# target is trained with cross-entropy plus a *cross-attention loss* that pulls its keys and values
# towards the source's.
#
# λ balances the two terms of the objective (Eq. 19); the paper varies it over
# {0.01, 0.1, 1, 10} on its OOD split (Table IV) and finds results best around λ = 1 with
# little change between 0.01 and 1, and worse at 10. Here the grid is λ × MCMA on/off ×
# seeds, against the baseline trained with the same seeds. The frozen source is shared by every
# run (loaded from notebook 02's checkpoint, trained if absent), so the spread over seeds is the
# target's.
#
# Cost: `len(lams) × len(mcma_options) × len(seeds)` transfer runs plus `len(seeds)` baselines
# (24 + 3 with the defaults: about 6–7 minutes on a 2-core CPU with the synthetic preset, ~14 s a
# run, since the frozen source's outputs are computed once and cached).
#
# Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
# `cache_dir`, `source`, `target`, `lams`, `mcma_options`, `seeds`, `loss`, `preset`, `epochs`,
# `source_epochs`, `seed` (the source's), `device`, `out_dir`, `figures_dir`.

# %% tags=["parameters"]
# --- data ---------------------------------------------------------------------
dataset = "synthetic"   # "synthetic" (no files needed), "uestc", "cough" or "vggsound"
data_root = None        # folder of a real dataset as distributed; None for synthetic
split = "id"            # "id" (stratified random) or "ood" (subject-disjoint)
data_seed = 0           # seed of the split (and of the simulated data)
n_samples = 2000        # synthetic only: number of simulated recordings
frame_size = None       # video frame side in pixels; None: the dataset's default (synthetic 32, paper 224)
n_frames = None         # video frames per sample; None: the dataset's default (synthetic 8, paper 30)
cache_dir = None        # real datasets: preprocessing cache folder; None: <data_root>/.dcatkit_cache

# --- the grid -----------------------------------------------------------------------
source = "video"
target = "imu"
lams = [0.01, 0.1, 1.0, 10.0]   # lambdas of Eq. (19), each non-negative (paper Table IV)
mcma_options = [True, False]     # masked alignment (Eq. 17) on / off (Eq. 7)
seeds = [0, 1, 2]                # target seeds (baseline and transfer share each seed's initial weights)
loss = "dcat"

# --- training -----------------------------------------------------------------
preset = "synthetic"    # "synthetic" (CPU minutes) or "paper" (Table I for the dataset)
epochs = None           # target / baseline epochs; None: the preset's
source_epochs = None    # frozen-source epochs; None: the preset's
seed = 0                # training seed
device = "auto"         # "auto" (CUDA if present), "cpu", "cuda:0"
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
import pandas as pd

from dcatkit.experiment import Run, load_source, train_transfer, train_unimodal
from dcatkit.losses import get_loss
from dcatkit.train import evaluate

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             lams=lams, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             seeds=seeds, device=device)
get_loss(loss)
if not mcma_options or any(not isinstance(m, bool) for m in mcma_options):
    raise ValueError(f"mcma_options must be a non-empty list of True/False, got {mcma_options!r}")
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
out = paths.out_path(out_dir, "04_lambda_ablation")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
n_runs = len(lams) * len(mcma_options) * len(seeds)
print(f"dataset={dataset!r} split={split!r} {source} -> {target}, lams={lams}, mcma={mcma_options}, seeds={seeds}, "
      f"preset={preset!r}, epochs={epochs}: {n_runs} transfer runs + {len(seeds)} baselines")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. Data and the frozen source

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
if ck_source.is_file():
    t0 = time.perf_counter()
    source_model = load_source(ck_source, splits, target)        # checks classes and modality
    src = Run(f"{source} source", source, source_model,
              evaluate(source_model, splits.test, source, device=device), checkpoint=ck_source)
    print(f"loaded the frozen source from {paths.shown(ck_source)} ({time.perf_counter() - t0:.1f}s)")
else:
    t0 = time.perf_counter()
    src = train_unimodal(only(source), source, preset=preset, dataset=dataset, epochs=source_epochs, seed=seed,
                         device=device, checkpoint=ck_source, progress=False, name=f"{source} source")
    print(f"no source checkpoint yet: trained it in {time.perf_counter() - t0:.0f}s, saved to {paths.shown(ck_source)}")
print(f"{src.name}: test accuracy {src.test['accuracy']:.3f}, macro-F1 {src.test['f1']:.3f}")

# %% [markdown]
# ## 2. The grid
#
# For every seed: the baseline (Eq. 18), then for every λ and MCMA setting a D-CAT target trained
# with
#
# $$\text{Loss} = L_{CE} + \lambda\, L_{CA}, \qquad L_{CA} = \mathbb{1}(x)\cdot\left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (19),\,(17)$$
#
# ($\mathbb{1}(x) \equiv 1$ without MCMA, i.e. Eq. 7). One row per run is kept.

# %%
rows, t_all = [], time.perf_counter()
common = dict(preset=preset, dataset=dataset, epochs=epochs, device=device, progress=False)
for s in seeds:
    t0 = time.perf_counter()
    base = train_unimodal(only(target), target, seed=s, name="baseline", **common)
    rows.append({"variant": "baseline", "lam": float("nan"), "mcma": None, "seed": s,
                 **{m: base.test[m] for m in report.METRICS}})
    print(f"seed {s}: baseline F1 {base.test['f1']:.3f} ({time.perf_counter() - t0:.0f}s)")
    for lam in lams:
        for mcma in mcma_options:
            t0 = time.perf_counter()
            run = train_transfer(splits, src, target, lam=lam, mcma=mcma, loss=loss, seed=s, **common)
            variant = "D-CAT (MCMA)" if mcma else "No MCMA"
            rows.append({"variant": variant, "lam": lam, "mcma": mcma, "seed": s,
                         **{m: run.test[m] for m in report.METRICS}})
            print(f"seed {s}: {variant:>12}, lam={lam:<5g} F1 {run.test['f1']:.3f} ({time.perf_counter() - t0:.0f}s)")
print(f"grid done in {(time.perf_counter() - t_all) / 60:.1f} min")
grid = pd.DataFrame(rows).assign(dataset=dataset, modality=target, source=source, split=split, preset=preset,
                                 epochs=epochs, data_seed=data_seed, source_seed=seed)
files = report.write_results(grid, out, f"ablation-{dataset}-{split}-{source}-{target}",
                             params=dict(dataset=dataset, split=split, source=source, target=target, lams=lams,
                                         mcma_options=mcma_options, seeds=seeds, loss=loss, preset=preset,
                                         epochs=epochs, source_epochs=source_epochs, source_seed=seed,
                                         data_seed=data_seed, data=data_opts))
print("wrote", ", ".join(paths.shown(p) for p in files.values()))

# %% [markdown]
# ## 3. Table IV layout
#
# Mean ± standard deviation over seeds (columns in the paper's order: accuracy, recall, precision,
# F1). The paper's Table IV has one run per cell; here every cell is repeated over `seeds`.

# %%
table4 = report.ablation_table(grid)
print(table4.to_string())
table4.to_csv(out / f"table4-{dataset}-{split}-{source}-{target}.csv")

# %% [markdown]
# ## 4. F1 against λ
#
# Lines: mean over seeds; bands: ± 1 std; dots: single seeds. The dashed line is the baseline's
# mean F1 (its band ± 1 std).

# %%
fig = plots.lambda_curve(grid, "f1")
plots.save(fig, fig_dir, "04_lambda_f1")
plt.show()

# %% [markdown]
# ## 5. As measured
#
# For each variant: the λ with the best mean F1, its mean ± std over seeds, the baseline's mean,
# the difference, and on how many seeds it beat that seed's baseline. Computed from the grid, not
# written by hand: with few seeds a difference smaller than the spread in the table is noise.

# %%
best = report.best_lambda(grid, "f1")
print(best.to_string(float_format=lambda v: f"{v:.3f}"))
