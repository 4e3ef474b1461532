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
# # 05 — Confusion analysis: what transfer fixed and what it broke
#
# **D-CAT** (Decoupled Cross-Attention Transfer, Daher, Wang & Mielle) improves a classifier of one
# sensor modality (the *target*, e.g. IMU) with what a classifier of another modality (the *source*,
# e.g. video) has learned — while the target still runs **alone** at inference. Both classifiers are
# an encoder followed by self-attention (paper Fig. 1); the source is trained first and frozen; the
# target is trained with cross-entropy plus a *cross-attention loss* that pulls its keys and values
# towards the source's.
#
# Averages hide where a change comes from. This notebook puts the baseline and the D-CAT target
# side by side on the test split: their confusion matrices, the F1 of each class, and the class
# pairs that transfer separated better ("fixed") or worse ("broke").
#
# The models are the checkpoints notebook 03 wrote for the same parameters (trained here if
# absent).
#
# Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
# `cache_dir`, `source`, `target`, `lam`, `mcma`, `loss`, `preset`, `epochs`, `source_epochs`,
# `seed`, `device`, `resume`, `redo`, `out_dir`, `figures_dir`.

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

# --- which D-CAT model ----------------------------------------------------------------
source = "video"
target = "imu"
lam = 1.0               # lambda of Eq. (19)
mcma = True             # True: D-CAT with masked alignment (Eq. 17); False: No MCMA (Eq. 7)
loss = "dcat"

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
from dcatkit.experiment import Run, load_source, train_transfer, train_unimodal
from dcatkit.losses import get_loss
from dcatkit.metrics import classification_metrics
from dcatkit.train import evaluate, load_checkpoint, predict

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             lam=lam, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             device=device, resume=resume, redo=redo)
get_loss(loss)
if not isinstance(mcma, bool):
    raise ValueError(f"mcma must be True or False, got {mcma!r}")
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
out = paths.out_path(out_dir, "05_confusion_analysis")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
dcat_name = "D-CAT" if mcma else "D-CAT (no MCMA)"
print(f"dataset={dataset!r} split={split!r} {source} -> {target}, lam={lam}, mcma={mcma}, loss={loss!r}, "
      f"preset={preset!r}, epochs={epochs}, seed={seed}")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. Data and the two models

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
ck_dcat = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **data_key, epochs=epochs, seed=seed,
                                source_epochs=source_epochs, lam=lam, mcma=mcma, loss=loss)
if ck_baseline.is_file():
    base_model, _ = load_checkpoint(ck_baseline)
    print(f"baseline: loaded {paths.shown(ck_baseline)}")
else:
    base_model = train_unimodal(only(target), target, preset=preset, dataset=dataset, epochs=epochs, seed=seed,
                                device=device, checkpoint=ck_baseline, progress=False, resume=resume).model
    print(f"baseline: trained, saved to {paths.shown(ck_baseline)}")
if ck_dcat.is_file():
    dcat_model, _ = load_checkpoint(ck_dcat)
    print(f"{dcat_name}: loaded {paths.shown(ck_dcat)}")
else:
    if ck_source.is_file():
        t0 = time.perf_counter()
        source_model = load_source(ck_source, splits, target)        # checks classes and modality
        src = Run(f"{source} source", source, source_model,
                  evaluate(source_model, splits.test, source, device=device), checkpoint=ck_source)
        print(f"loaded the frozen source from {paths.shown(ck_source)} ({time.perf_counter() - t0:.1f}s)")
    else:
        t0 = time.perf_counter()
        src = train_unimodal(only(source), source, preset=preset, dataset=dataset, epochs=source_epochs, seed=seed,
                             device=device, checkpoint=ck_source, progress=False, name=f"{source} source",
                             resume=resume)
        print(f"no source checkpoint yet: trained it in {time.perf_counter() - t0:.0f}s, saved to {paths.shown(ck_source)}")
    print(f"{src.name}: test accuracy {src.test['accuracy']:.3f}, macro-F1 {src.test['f1']:.3f}")
    dcat_model = train_transfer(splits, src, target, lam=lam, mcma=mcma, loss=loss, preset=preset, dataset=dataset,
                                epochs=epochs, seed=seed, device=device, checkpoint=ck_dcat, progress=False,
                                resume=resume).model
    print(f"{dcat_name}: trained, saved to {paths.shown(ck_dcat)}")

# %% [markdown]
# ## 2. Predictions and confusion matrices
#
# Both models see only the target modality of the test split. Rows of a confusion matrix are the
# true classes, columns the predicted ones; colour is the share of the true class (recall on the
# diagonal), numbers are counts.

# %%
test = splits.test
y, p_base = predict(base_model, test, target, device=device)
_, p_dcat = predict(dcat_model, test, target, device=device)
k = len(splits.classes)
m_base, m_dcat = classification_metrics(y, p_base, k), classification_metrics(y, p_dcat, k)
for name, m in (("baseline", m_base), (dcat_name, m_dcat)):
    print(f"{name:>16}: accuracy {m['accuracy']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
          f"F1 {m['f1']:.3f}")
fig = plots.confusion_pair(m_base["confusion"], m_dcat["confusion"], splits.classes,
                           (f"{target} baseline", f"{dcat_name} ({source} -> {target}, λ = {lam:g})"))
plots.save(fig, fig_dir, "05_confusion")
plt.show()

# %% [markdown]
# ## 3. Per-class F1 change
#
# $F1_c = 2\,TP_c / (2\,TP_c + FP_c + FN_c)$ from each confusion matrix, and its change
# D-CAT − baseline. The macro-F1 of the other notebooks is the mean of these.

# %%
change = report.per_class_change(m_base["confusion"], m_dcat["confusion"], splits.classes)
print(change.to_string(float_format=lambda v: f"{v:.3f}"))
fig = plots.f1_change(change, title=f"per-class F1 change ({dcat_name} − baseline)")
plots.save(fig, fig_dir, "05_f1_change")
plt.show()

# %% [markdown]
# ## 4. Class pairs fixed or broken
#
# For every pair of classes, how many test samples of one were predicted as the other (both
# directions), under each model. "fixed": transfer confuses the pair less; "broke": more. In the
# synthetic data the IMU-confusable pairs are drinking/reading, sweep_floor/open_close_door,
# cut_fruits/wash_hand and type_pc/type_phone — the pairs video tells apart easily.

# %%
pairs = report.pair_changes(m_base["confusion"], m_dcat["confusion"], splits.classes)
print(pairs.to_string(index=False))
f = report.flips(y, p_base, p_dcat)
print(f"\nsample by sample: {f['fixed']} fixed (baseline wrong, {dcat_name} right), {f['broke']} broke "
      f"(baseline right, {dcat_name} wrong), {f['both_right']} both right, {f['both_wrong']} both wrong, of {f['n']}")

# %%
run_params = dict(dataset=dataset, split=split, source=source, target=target, lam=lam, mcma=mcma, loss=loss,
                  preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed, data_seed=data_seed)
stem = f"{dataset}-{split}-{source}-{target}-lam{lam:g}-{'mcma' if mcma else 'nomcma'}-seed{seed}"
written = [*report.write_results(change, out, f"per_class-{stem}", params=run_params).values(),
           *report.write_results(pairs, out, f"pairs-{stem}", params={**run_params, "flips": f}).values()]
print("wrote", ", ".join(paths.shown(p) for p in written))
