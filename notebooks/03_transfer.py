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
# # 03 — D-CAT: transfer from a frozen source
#
# **D-CAT** (Decoupled Cross-Attention Transfer, Daher, Wang & Mielle) improves a classifier of one
# sensor modality (the *target*, e.g. IMU) with what a classifier of another modality (the *source*,
# e.g. video) has learned — while the target still runs **alone** at inference. Both classifiers are
# an encoder followed by self-attention (paper Fig. 1); the source is trained first and frozen; the
# target is trained with cross-entropy plus a *cross-attention loss* that pulls its keys and values
# towards the source's.
#
# This notebook runs the paper's comparison for one source → target pair and one seed:
#
# | run | trained with | at inference |
# |---|---|---|
# | source | cross-entropy, then frozen | source modality |
# | baseline | cross-entropy (Eq. 18) | target only |
# | **D-CAT** | cross-entropy + λ · masked L_CA (Eqs. 17, 19) | target only |
# | No MCMA | cross-entropy + λ · L_CA on every sample (Eqs. 7, 19) | target only |
#
# The frozen source is loaded from the checkpoint notebook 02 wrote (trained here if absent).
# A sweep: `papermill notebooks/03_transfer.ipynb out.ipynb -p lam 0.1` (from the repo root or
# from `notebooks/`: relative paths are resolved against the repository).
#
# Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
# `cache_dir`, `source`, `target`, `lam`, `loss`, `preset`, `epochs`, `source_epochs`, `seed`,
# `device`, `resume`, `redo`, `out_dir`, `figures_dir`.

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

# --- transfer ---------------------------------------------------------------------
source = "video"        # frozen source modality
target = "imu"          # target modality (runs alone at inference)
lam = 1.0               # lambda of Eq. (19), non-negative; the paper uses 1
loss = "dcat"           # transfer loss, by name in dcatkit.losses.LOSSES

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

from dcatkit import diagnostics, paths, plots, report
from dcatkit.data import Splits, load
import torch

from dcatkit.experiment import Run, format_table, load_source, metrics_table, train_transfer, train_unimodal
from dcatkit.losses import LOSSES, cross_attention_loss, cross_attention_loss_dense, get_loss
from dcatkit.model import build_model
from dcatkit.presets import get_preset
from dcatkit.sweep import setup_fingerprint
from dcatkit.train import evaluate

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             lam=lam, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             device=device, resume=resume, redo=redo)
get_loss(loss)                                                     # unknown loss name -> ValueError
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
mcma = True                                                        # the D-CAT run; No MCMA is run as well
out = paths.out_path(out_dir, "03_transfer")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={split!r} {source} -> {target}, lam={lam}, loss={loss!r}, preset={preset!r}, "
      f"epochs={epochs}, source_epochs={source_epochs}, seed={seed}")
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
ck_dcat = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **data_key, epochs=epochs, seed=seed,
                                source_epochs=source_epochs, lam=lam, mcma=mcma, loss=loss)
if ck_source.is_file():
    t0 = time.perf_counter()
    source_model = load_source(ck_source, splits, target)        # checks classes and modality
    src = Run(f"{source} source", source, source_model,
              evaluate(source_model, splits.test, source, device=device), checkpoint=ck_source)
    print(f"loaded the frozen source from {paths.shown(ck_source)} ({time.perf_counter() - t0:.1f}s)")
else:
    t0 = time.perf_counter()
    src = train_unimodal(only(source), source, preset=preset, dataset=dataset, epochs=source_epochs, seed=seed,
                         device=device, checkpoint=ck_source, progress=True, name=f"{source} source",
                         resume=resume)
    print(f"no source checkpoint yet: trained it in {time.perf_counter() - t0:.0f}s, saved to {paths.shown(ck_source)}")
print(f"{src.name}: test accuracy {src.test['accuracy']:.3f}, macro-F1 {src.test['f1']:.3f}")

# %% [markdown]
# ## 2. The cross-attention loss on one batch
#
# Cross-attention (Eq. 3) would let the target's queries attend to the source's keys and values:
#
# $$\text{Cross-Attention}(K, Q, V) = \mathrm{softmax}\!\left(\frac{Q_B K_A^\top}{\sqrt{d_\text{out}}}\right) V_A \qquad (3)$$
#
# but then the target could not run without the source. D-CAT instead only asks, during training,
# that the target's own attention agree with what cross-attention would give:
#
# $$Q_B K_B^\top V_B \approx Q_B K_A^\top V_A \qquad (4)$$
#
# Factoring out $Q_B$ and dropping softmax and scaling, with $\overline{M} = M / \|M\|_F$, the
# cross-attention loss compares two $d \times d$ matrices per sample:
#
# $$L_{CA} = \left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (7)$$
#
# The source's sequence length $T_A$ may differ from the target's $T_B$: both products are
# $d \times d$. `dcatkit.losses.cross_attention_loss` computes Eq. (7) without forming the
# $d\times d$ matrices (a Gram-matrix identity); `cross_attention_loss_dense` is the literal
# formula. On one batch, with an untrained target:

# %%
torch.manual_seed(seed)
target_model = build_model(target, splits.train.num_classes, splits.train.input_shape(target),
                           get_preset(preset, target, dataset)).eval()
batch = next(iter(torch.utils.data.DataLoader(splits.train, batch_size=16)))
with torch.no_grad():
    out_a = src.model.eval()(batch[source])                       # source: K_A, V_A  (B, T_A, d)
    out_b = target_model(batch[target])                           # target: K_B, V_B  (B, T_B, d)
    l_ca = cross_attention_loss(out_b.k, out_b.v, out_a.k, out_a.v)              # Eq. (7)
    l_dense = cross_attention_loss_dense(out_b.k, out_b.v, out_a.k, out_a.v)     # same, literally
print(f"K_A {tuple(out_a.k.shape)}, K_B {tuple(out_b.k.shape)}")
print(f"L_CA = {l_ca.item():.6f} (Gram form)  {l_dense.item():.6f} (dense form); lies in [0, 2]")

# %% [markdown]
# **Masked cross-modal alignment (MCMA).** The source is no oracle: where it misclassifies a
# sample, its keys and values are not worth copying. The indicator of Eq. (16) is 1 when the
# frozen source classifies $x$ correctly, and the loss only counts those samples:
#
# $$L_{CA} = \mathbb{1}(x)\cdot\left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (17)$$
#
# (averaged over the masked-in samples of the batch; our choice, the paper does not say).

# %%
correct = out_a.logits.argmax(1) == batch["label"]                 # the indicator of Eq. (16)
with torch.no_grad():
    l_masked = cross_attention_loss(out_b.k, out_b.v, out_a.k, out_a.v, mask=correct)   # Eq. (17)
print(f"source correct on {int(correct.sum())}/{len(correct)} samples of this batch; "
      f"masked L_CA = {l_masked.item():.6f}")

# %% [markdown]
# ## 3. Baseline and D-CAT
#
# The full objective of the target (Eq. 19): cross-entropy plus λ times the cross-attention loss,
# the source frozen throughout (only the target's encoder, attention and head learn):
#
# $$\text{Loss} = L_{CE} + \lambda\, L_{CA} \qquad (19)$$
#
# The baseline is the same target model, same seed (same initial weights), trained with
# $\lambda = 0$ — i.e. cross-entropy alone (Eq. 18). Its $L_{CA}$ against the frozen source is
# *measured* on every batch (`method="none", monitor="dcat"`) but never optimised: the model is the
# one `train_unimodal` gives, bit for bit, and section 5 can ask whether alignment happens anyway. D-CAT uses the masked loss (Eq. 17), "No MCMA"
# the unmasked one (Eq. 7). The frozen source's keys, values and correctness per training sample
# are constants, so `train_transfer` computes them once and caches them (see `dcatkit.source_cache`).
# In JupyterLab each run shows a progress bar over its epochs (`progress=True`).
#
# Run again with the same parameters (a re-run papermill sweep), the notebook finds the results
# file it wrote for them and reads the three runs back from their checkpoints instead of training
# them again (`dcatkit.report.finished_runs`; each reloaded model must reproduce its stored test
# metrics, and the presets and simulator settings must be today's: `setup_fingerprint`); `redo=True`
# trains them again. `resume=True` continues a run that was killed mid-training.

# %%
ck_nomcma = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **data_key, epochs=epochs, seed=seed,
                                  source_epochs=source_epochs, lam=lam, mcma=False, loss=loss)
run_params = dict(dataset=dataset, split=split, source=source, target=target, lam=lam, loss=loss, preset=preset,
                  epochs=epochs, source_epochs=source_epochs, seed=seed, data_seed=data_seed,
                  setup=setup_fingerprint(dataset, preset, source, target))   # presets + simulator settings
stem = f"transfer-{dataset}-{split}-{source}-{target}-lam{lam:g}-seed{seed}"
done = None if redo else report.finished_runs(out, stem, {**run_params, "data": data_opts},
                                              {f"{target} baseline": ck_baseline, "D-CAT": ck_dcat,
                                               "No MCMA": ck_nomcma}, splits, device=device)
if done:
    base, dcat, nomcma = done.values()
    print(f"these parameters ran before: read the baseline, D-CAT and No MCMA back from {paths.shown(out / stem)}.json "
          "and their checkpoints, trained nothing (redo=True trains them again)")
else:
    t0 = time.perf_counter()
    base = train_transfer(splits, src, target, method="none", monitor="dcat", preset=preset, dataset=dataset,
                          epochs=epochs, seed=seed, device=device, checkpoint=ck_baseline, progress=True,
                          name=f"{target} baseline", resume=resume)
    print(f"baseline ({target}, Eq. 18): test F1 {base.test['f1']:.3f} ({time.perf_counter() - t0:.0f}s)")

    t0 = time.perf_counter()
    dcat = train_transfer(splits, src, target, lam=lam, mcma=True, loss=loss, preset=preset, dataset=dataset,
                          epochs=epochs, seed=seed, device=device, checkpoint=ck_dcat, progress=True, name="D-CAT",
                          resume=resume)
    print(f"D-CAT ({source} -> {target}, Eqs. 17 + 19, lam={lam}): test F1 {dcat.test['f1']:.3f} "
          f"({time.perf_counter() - t0:.0f}s)")

    t0 = time.perf_counter()
    nomcma = train_transfer(splits, src, target, lam=lam, mcma=False, loss=loss, preset=preset, dataset=dataset,
                            epochs=epochs, seed=seed, device=device, checkpoint=ck_nomcma, progress=True,
                            name="No MCMA", resume=resume)
    print(f"No MCMA (Eqs. 7 + 19): test F1 {nomcma.test['f1']:.3f} ({time.perf_counter() - t0:.0f}s)")

# %% [markdown]
# ## 4. Results
#
# Test metrics of the four runs; `delta_*` columns are against the baseline. The lines below
# describe this one run (a difference within 0.005 F1 reads "about the same"). One seed is not
# evidence that a method helps or hurts: that takes the paired intervals over 10 seeds of
# notebooks 04 and 06.

# %%
table = metrics_table([src, base, dcat, nomcma], baseline=base.name)
print(format_table(table))
print()
print(report.describe_change(table, base.name, ["D-CAT", "No MCMA"]))

# %%
if done:                   # the file already holds these runs' results, with the environment they were made in
    print(f"results of these runs: {paths.shown(out / stem)}.csv, .json (read back, not rewritten)")
else:                      # the histories go to the JSON too, so a re-run can read the runs back
    files = report.write_results(report.tidy(table, **run_params), out, stem, params={**run_params, "data": data_opts},
                                 histories={r.name: r.history for r in (base, dcat, nomcma)})
    print("wrote", ", ".join(paths.shown(p) for p in files.values()))

# %%
fig = plots.metrics_bars(table, title=f"{dataset} ({split}): {source} -> {target}, λ = {lam:g}, seed {seed}")
plots.save(fig, fig_dir, "03_metrics")
plt.show()
fig = plots.training_curves({r.name: r.history for r in (base, dcat, nomcma)}, ("train_ce", "train_ca", "val_f1"))
plots.save(fig, fig_dir, "03_training_curves")
plt.show()

# %% [markdown]
# `train_ca` is $L_{CA}$ averaged over each epoch: it falls as the target's keys and values align
# with the source's (for D-CAT, over the samples the source gets right). Whether that alignment
# helps the target's F1 is what the table above measures.

# %% [markdown]
# ## 5. Diagnostics: did alignment happen at all?
#
# A result (gain, no gain, loss) is easier to read once we know whether the target's keys and values
# actually moved towards the source's. Two diagnostics (`dcatkit.diagnostics`):
#
# **$L_{CA}$ over epochs.** The training-set mean of $L_{CA}$ (Eq. 7, over the samples the source gets
# right, Eq. 17) per epoch, for D-CAT (optimised), No MCMA (optimised, every sample) and the baseline
# (measured, never optimised). If D-CAT's curve does not fall below the baseline's, the transfer
# term did not align anything, and any F1 difference has another cause.

# %%
alignment = diagnostics.alignment_curve({"baseline (measured only)": base.history, "D-CAT": dcat.history,
                                         "No MCMA": nomcma.history})
print(alignment.to_string(float_format=lambda v: f"{v:.4f}"))
fig = plots.training_curves({"baseline (measured only)": base.history, "D-CAT": dcat.history,
                             "No MCMA": nomcma.history}, ("train_ca",))
plots.save(fig, fig_dir, "03_alignment")
plt.show()

# %% [markdown]
# **Theorem 4.1 on the trained models.** The paper's argument for dropping softmax and scaling in
# Eq. (7): if $K_t^\top V_t = K_s^\top V_s$ (Eq. 8 with $A = K_s^\top$, $B = V_s$), then the target's
# keys and values are linear maps of the source's,
#
# $$K_t^\top = K_s^\top R, \qquad V_t = S\,V_s \qquad (9),\,(15)$$
#
# i.e. per sample, every target key (value) vector lies in the span of the source's $T_s$ key (value)
# vectors. On held-out (test) samples we fit that per-sample least-squares map and report the
# explained fraction $R^2 = 1 - \lVert K_t^\top - K_s^\top R\rVert_F^2 / \lVert K_t^\top\rVert_F^2$, next to
# the same fit against *another* sample's source vectors (`r2_shuffled`: what any sample's
# vectors explain, since $T_s$ vectors span part of $\mathbb{R}^d$ whatever the models learnt).
# `r2_gain` is the sample-specific part. The theorem predicts a higher gain for D-CAT than for the
# baseline when alignment worked.

# %%
src_out = diagnostics.attention_outputs(src.model, splits.test, source, device=device)
target_outs = {r.name: diagnostics.attention_outputs(r.model, splits.test, target, device=device)
               for r in (base, dcat, nomcma)}
r2 = diagnostics.theorem41(src_out, target_outs)
print(f"{len(splits.test)} held-out samples; K, V of the source {src_out['k'].shape[1:]} "
      f"and of the target {target_outs[base.name]['k'].shape[1:]} (time steps, d)")
print(r2.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
files = report.write_results(r2, out, f"theorem41-{dataset}-{split}-{source}-{target}-lam{lam:g}-seed{seed}",
                             params={**run_params, "data": data_opts})
print("wrote", ", ".join(paths.shown(p) for p in files.values()))
