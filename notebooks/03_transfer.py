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
# **Learning goals.** After this notebook you can
# 1. write down D-CAT's objective (paper Sec. IV, Eqs. 7, 16, 17, 19) and compute its loss on one batch;
# 2. read a value of the cross-attention loss $L_{CA}$ as a cosine between two matrices;
# 3. say what the MCMA mask drops, and how much of the training set it drops;
# 4. train a baseline, D-CAT and "No MCMA" for one seed and read the result without over-reading it;
# 5. say what the paper's Theorem 4.1 guarantees, under which conditions, and what the test here
#    can and cannot show.
#
# Terms (D-CAT, source, target, MCMA, $d_\text{out}$, macro-F1 ...) are defined in
# [GLOSSARY.md](GLOSSARY.md). Notebook [02](02_unimodal.ipynb) trains the frozen source this
# notebook loads when both use the same `out_dir`; absent, it is trained here (section 1's output
# says which). The four runs:
#
# | run | trained with | at inference |
# |---|---|---|
# | source | cross-entropy, then frozen | source modality |
# | baseline | cross-entropy (Eq. 18) | target only |
# | **D-CAT** | cross-entropy + λ · masked L_CA (Eqs. 17, 19) | target only |
# | No MCMA | cross-entropy + λ · L_CA on every sample (Eqs. 7, 19) | target only |
#
# The parameters you are most likely to change are `lam` (λ), `source` / `target` and `split`;
# the `training` and `outputs` groups are the same in every notebook (see
# [README](README.md)). A sweep: `papermill notebooks/03_transfer.ipynb out.ipynb -p lam 0.1`;
# its figures go to `<out_dir>/figures`, never over the committed `figures/`.

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
figures_dir = None      # PNG figures; None: <out_dir>/figures (only `make notebooks` writes figures/)

# %%
# NBVAL_CHECK_OUTPUT
import time

import matplotlib.pyplot as plt
import seaborn as sns
import torch
from IPython.display import Markdown, display

from dcatkit import diagnostics, explore, paths, plots, report, runs, stats
from dcatkit.experiment import format_table, metrics_table, train_transfer
from dcatkit.losses import cross_attention_loss, cross_attention_loss_dense, get_loss
from dcatkit.model import build_model
from dcatkit.presets import get_preset
from dcatkit.train import predict

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, fold=fold, source=source, target=target,
                             lam=lam, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             device=device, resume=resume, redo=redo)
get_loss(loss)                                                     # unknown loss name -> ValueError
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
mcma = True                                                        # the D-CAT run; No MCMA is run as well
out = paths.out_path(out_dir, "03_transfer")
fig_dir = paths.figures_path(figures_dir, out_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={checked['split_name']!r} {source} -> {target}, lam={lam}, loss={loss!r}, "
      f"preset={preset!r}, epochs={epochs}, source_epochs={source_epochs}, seed={seed}")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. Data and the frozen source
#
# `runs.load_splits` loads the data (for a cross-validation split, fold `fold`); `runs.source_run`
# reads the source notebook 02 saved, or trains it with cross-entropy if there is none.

# %%
splits = runs.load_splits(dataset, checked, data_seed, data_opts)    # one fold of a cross-validation split
data_key = runs.data_key(dataset, checked["split_name"], data_seed, data_opts, preset, source, target,
                         splits=splits)
ck_source = paths.checkpoint_path(out_dir, f"source-{source}", **data_key, epochs=source_epochs, seed=seed)
ck_baseline = paths.checkpoint_path(out_dir, f"baseline-{target}", **data_key, epochs=epochs, seed=seed)
ck_dcat = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **data_key, epochs=epochs, seed=seed,
                                source_epochs=source_epochs, lam=lam, mcma=mcma, loss=loss)
src = runs.source_run(splits, source, target, ck_source, preset=preset, dataset=dataset, epochs=source_epochs,
                      seed=seed, device=device, resume=resume, progress=True)

# %% [markdown]
# ## 2. The cross-attention loss on one batch
#
# Cross-attention (Eq. 3) would let the target's queries attend to the source's keys and values:
#
# $$\text{Cross-Attention}(K, Q, V) = \mathrm{softmax}\!\left(\frac{Q_B K_A^\top}{\sqrt{d_\text{out}}}\right) V_A \qquad (3)$$
#
# but then the target could not run without the source. D-CAT instead only asks, during training,
# that the target's own attention agree with what cross-attention would give (paper Sec. IV-B):
#
# $$Q_B K_B^\top V_B \approx Q_B K_A^\top V_A \qquad (4)$$
#
# *Factoring out $Q_B$* (asking $K_B^\top V_B \approx K_A^\top V_A$: that makes Eq. 4 hold
# whatever the queries; the target's own $T_B$ queries span at most $T_B$ of the $d$ directions, so
# for them it asks more than Eq. 4 needs) and dropping softmax and scaling, with $\overline{M} = M /
# \|M\|_F$, the loss compares two $d \times d$ matrices per sample:
#
# $$L_{CA} = \left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (7)$$
#
# Both products are $d\times d$ whatever the sequence lengths $T_A$, $T_B$. **Reading a value:**
# both matrices have norm 1, so $L_{CA}^2 = 2 - 2\cos\theta$, with $\theta$ the angle between them
# (as vectors of $d^2$ numbers): $L_{CA} = 0$ is the same direction, $\sqrt2 \approx 1.414$ is
# orthogonal (what two unrelated random matrices give), 2 is opposite; a value $v$ is a cosine of
# $1 - v^2/2$. That is exact for one sample; the loss of a batch is a mean over samples, and the
# cosine of a mean $\bar v$, $1 - \bar v^2/2$, is at least the samples' mean cosine (the more the
# samples' $L_{CA}$ spread, the more it overstates it). `cross_attention_loss` can compute Eq. (7) without forming the $d\times d$ matrices
# (a Gram-matrix identity, `method="gram"`; its default `method="auto"` uses it when the sequences
# are short, and the dense formula for long ones); `cross_attention_loss_dense` is the literal
# formula. On one batch, with an untrained target, the Gram form beside the dense one:

# %%
torch.manual_seed(seed)
target_model = build_model(target, splits.train.num_classes, splits.train.input_shape(target),
                           get_preset(preset, target, dataset, kind=splits.kinds[target]),
                           kind=splits.kinds[target]).eval()
batch, n_wrong = explore.demo_batch(splits.val, src.model, source, size=16, wrong=4)   # holds the source's mistakes, if any
with torch.no_grad():
    out_a = src.model.eval()(batch[source])                       # source: K_A, V_A  (B, T_A, d)
    out_b = target_model(batch[target])                           # target: K_B, V_B  (B, T_B, d)
    l_ca = cross_attention_loss(out_b.k, out_b.v, out_a.k, out_a.v, method="gram")   # Eq. (7), Gram form
    l_dense = cross_attention_loss_dense(out_b.k, out_b.v, out_a.k, out_a.v)     # same, literally
print(f"K_A {tuple(out_a.k.shape)}, K_B {tuple(out_b.k.shape)}  (batch, time steps, d)")
print(f"L_CA = {l_ca.item():.6f} (Gram form)  {l_dense.item():.6f} (dense form); lies in [0, 2]")
cos_untrained = float(explore.cosine_of(l_ca.item()))
display(Markdown(f"Untrained, $L_{{CA}}$ = {l_ca.item():.3f}: a cosine of {stats.signed(cos_untrained)}, "
                 + ("i.e. the target's and the source's matrices are (close to) orthogonal, as unrelated matrices are."
                    if abs(cos_untrained) < 0.1 else "not orthogonal before any training (|cosine| ≥ 0.1).")))

# %% [markdown]
# **Masked cross-modal alignment (MCMA, Sec. IV-C).** The source is no oracle: where it misclassifies
# a sample, its keys and values are not worth copying. The indicator of Eq. (16) is 1 when the
# frozen source classifies $x$ correctly, and the loss only counts those samples:
#
# $$L_{CA} = \mathbb{1}(x)\cdot\left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (17)$$
#
# (averaged over the masked-in samples of the batch; our choice, the paper does not say). The
# batch above was built, not drawn at random: it holds the source's mistakes on the validation split
# (up to `wrong=4` of them, as the cell above asks `explore.demo_batch`), filled up with samples the
# source gets right. So the count below is set by that construction; it is not the source's
# accuracy (section 1 prints that):

# %%
correct = out_a.logits.argmax(1) == batch["label"]                 # the indicator of Eq. (16)
with torch.no_grad():
    l_masked = cross_attention_loss(out_b.k, out_b.v, out_a.k, out_a.v, mask=correct)   # Eq. (17)
print(f"source correct on {int(correct.sum())}/{len(correct)} samples of this batch "
      f"(dropped: samples {(~correct).nonzero().flatten().tolist()}); masked L_CA = {l_masked.item():.6f}")

# %% [markdown]
# ### Explore: λ, MCMA and a few training steps
#
# The explorer below (`dcatkit.explore`) shows, for the batch above, the two normalised matrices of
# one sample (their top-left corner), $L_{CA}$ of every sample (grey and hatched: dropped by MCMA),
# and, when you press *train steps*, a few Adam steps of $L_{CE} + \lambda L_{CA}$ on a copy of the
# untrained target, with $L_{CA}$ on this batch and macro-F1 on the validation split (the figure's
# "eval batch") after each step. Try λ = 0.01 and λ = 100: which curve moves? It needs a live widget front end (JupyterLab);
# the static figure below it shows the default values: its first three panels for the untrained
# target (the explorer redraws them from the trained copy after *train steps*), its last the
# quick steps it prints.

# %%
step_batches = explore.train_batches(splits.train, 20, size=32, seed=seed)
val_batch = explore.stack(splits.val, range(len(splits.val)))
lr = get_preset(preset, target, dataset, kind=splits.kinds[target]).lr
explorer = explore.alignment_explorer(src.model, target_model, batch, step_batches, val_batch, source, target,
                                      lr=lr, classes=splits.classes, lam=lam, mcma=mcma)
if explorer is not None:
    display(explorer)
state = explore.alignment_state(src.model, target_model, batch, source, target, mcma=mcma, lam=lam)
_, state.steps = explore.quick_steps(src.model, target_model, step_batches, val_batch, source, target, lam=lam,
                                     mcma=mcma, lr=lr, seed=seed, watch=batch)
fig = explore.alignment_figure(state, sample=int((~state.mask).nonzero()[0][0]) if (~state.mask).any() else 0,
                               classes=splits.classes)
plots.save(fig, fig_dir, "03_alignment_explorer")
plt.show()
first, last = state.steps[0], state.steps[-1]
cos0, cos1 = explore.cosine_of(first["l_ca"]), explore.cosine_of(last["l_ca"])
display(Markdown(f"In {len(state.steps) - 1} steps at λ = {lam:g}, $L_{{CA}}$ on the batch went "
                 f"{first['l_ca']:.3f} → {last['l_ca']:.3f} (cosine {stats.signed(cos0, 2)} → {stats.signed(cos1, 2)}) and validation macro-F1 "
                 f"{first['f1']:.3f} → {last['f1']:.3f}: "
                 + ("these steps barely move the alignment (the cosine changes by less than 0.05)"
                    if abs(cos1 - cos0) < 0.05 else "these steps already move the alignment")
                 + "; what the full training does is below."))

# %% [markdown]
# ## 3. Baseline and D-CAT
#
# The full objective of the target (Eq. 19): cross-entropy plus λ times the cross-attention loss,
# the source frozen throughout (only the target's encoder, attention and head learn):
#
# $$\text{Loss} = L_{CE} + \lambda\, L_{CA} \qquad (19)$$
#
# The baseline is the same target model, same seed (same initial weights), trained with
# $\lambda = 0$, i.e. cross-entropy alone (Eq. 18). Its $L_{CA}$ against the frozen source is
# *measured* on every batch but never optimised, so section 5 can ask whether alignment happens
# anyway. D-CAT uses the masked loss (Eq. 17), "No MCMA" the unmasked one (Eq. 7). Re-run with the
# same parameters, the notebook reads the three runs back from their checkpoints (each must
# reproduce its stored test metrics); `redo=True` trains them again, `resume=True` continues a
# killed run. In JupyterLab a progress bar shows each training; it is cleared when they finish.

# %%
ck_nomcma = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **data_key, epochs=epochs, seed=seed,
                                  source_epochs=source_epochs, lam=lam, mcma=False, loss=loss)
run_params = dict(dataset=dataset, split=checked["split_name"], fold=checked["fold"], source=source, target=target,
                  lam=lam, loss=loss, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                  data_seed=data_seed, setup=data_key["setup"])   # presets + simulator settings (+ the data's content)
params = {**run_params, "data": data_opts}          # what the results file records; its name hashes all of it
stem = runs.results_stem(f"transfer-{dataset}-{checked['split_name']}-{source}-{target}", params,
                         f"lam{lam:g}-seed{seed}")
done = None if redo else report.finished_runs(out, stem, params,
                                              {f"{target} baseline": ck_baseline, "D-CAT": ck_dcat,
                                               "No MCMA": ck_nomcma}, splits, device=device,
                                              source=src)      # runs of another frozen source are trained again
if done:
    base, dcat, nomcma = done.values()
    print(f"these parameters ran before: read the baseline, D-CAT and No MCMA back from {paths.shown(out / stem)}.json "
          "and their checkpoints, trained nothing (redo=True trains them again)")
else:
    common = dict(preset=preset, dataset=dataset, epochs=epochs, seed=seed, device=device, progress=True,
                  resume=resume)
    times = {}
    t0 = time.perf_counter()
    base = train_transfer(splits, src, target, method="none", monitor="dcat", checkpoint=ck_baseline,
                          name=f"{target} baseline", **common)
    times["base"], t0 = time.perf_counter() - t0, time.perf_counter()
    dcat = train_transfer(splits, src, target, lam=lam, mcma=True, loss=loss, checkpoint=ck_dcat, name="D-CAT",
                          **common)
    times["dcat"], t0 = time.perf_counter() - t0, time.perf_counter()
    nomcma = train_transfer(splits, src, target, lam=lam, mcma=False, loss=loss, checkpoint=ck_nomcma,
                            name="No MCMA", **common)
    times["nomcma"] = time.perf_counter() - t0
    runs.clear_progress()                  # the bars did their job; the saved notebook keeps the summary
    print(f"baseline ({target}, Eq. 18): test F1 {base.test['f1']:.3f} ({times['base']:.0f}s)")
    print(f"D-CAT ({source} -> {target}, Eqs. 17 + 19, lam={lam}): test F1 {dcat.test['f1']:.3f} ({times['dcat']:.0f}s)")
    print(f"No MCMA (Eqs. 7 + 19): test F1 {nomcma.test['f1']:.3f} ({times['nomcma']:.0f}s)")

# %% [markdown]
# ## 4. Results
#
# Test metrics of the four runs; `delta_*` columns are against the baseline. The figure gives each
# run's macro-F1 with a 95% bootstrap interval over the test samples: how much the score of *this*
# model would move with another test set of the same size. To compare D-CAT with the baseline, the
# sentence under the figures gives the interval of their *difference* (`plots.bootstrap_f1_diff`):
# both models are scored on the same test samples, and each resample scores both on the same
# resampled samples, so what they get right or wrong together cancels. Whether the two runs' own
# intervals overlap is a much weaker comparison: it ignores that pairing. Neither interval says
# anything about another training seed, so no line below reads a direction into a difference: whether
# a method helps takes paired runs pooled over seeds *and* data draws, which notebook 06 does
# (notebook 04's intervals cover the seeds of one draw).
#
# The second figure is the three runs' curves per epoch: training cross-entropy, $L_{CA}$ (optimised
# by D-CAT and No MCMA, only measured for the baseline) and validation macro-F1. Compare the middle
# panel, where the runs differ by construction, with the right one: where the validation curves
# cross and re-cross from epoch to epoch, a gap between them at the kept epoch is within that noise.

# %%
table = metrics_table([src, base, dcat, nomcma], baseline=base.name)
print(format_table(table))
print()
print(report.describe_change(table, base.name, ["D-CAT", "No MCMA"]))

# %%
if done:                   # the file already holds these runs' results, with the environment they were made in
    print(f"results of these runs: {paths.shown(out / stem)}.csv, .json (read back, not rewritten)")
else:                      # the histories go to the JSON too, so a re-run can read the runs back
    files = report.write_results(report.tidy(table, **run_params, **data_opts), out, stem, params=params,
                                 histories={r.name: r.history for r in (base, dcat, nomcma)}, device=device)
    print("wrote", ", ".join(paths.shown(p) for p in files.values()))

# %%
preds = {r.name: predict(r.model, splits.test, r.modality, device=device) for r in (src, base, dcat, nomcma)}
y_test = next(iter(preds.values()))[0]
scores = plots.bootstrap_f1(y_test, {k: p for k, (_, p) in preds.items()}, len(splits.classes), seed=seed)
fig = plots.f1_intervals(scores, title=f"{source} → {target}, λ = {lam:g}, one training seed ({seed})")
plots.save(fig, fig_dir, "03_metrics")
plt.show()
fig = plots.training_curves({r.name: r.history for r in (base, dcat, nomcma)}, ("train_ce", "train_ca", "val_f1"))
plots.save(fig, fig_dir, "03_training_curves")
plt.show()
paired = plots.bootstrap_f1_diff(y_test, preds["D-CAT"][1], preds[base.name][1], len(splits.classes), seed=seed)
shown = round(scores.loc["D-CAT", "f1"], 3) - round(scores.loc[base.name, "f1"], 3)    # of the F1s the table shows
interval = stats.format_bounds(paired["ci_low"], paired["ci_high"], digits=3)
holds = paired["ci_low"] <= 0 <= paired["ci_high"]
display(Markdown(
    f"D-CAT − baseline macro-F1 on the same {paired['n']} test samples: {scores.loc['D-CAT', 'f1']:.3f} − "
    f"{scores.loc[base.name, 'f1']:.3f} = {stats.signed(shown)}, {paired['level']:.0%} paired bootstrap interval "
    f"{interval} ({paired['n_boot']} resamples of the test samples, each scoring both models on the same samples; "
    f"one test sample moves accuracy by {1 / paired['n']:.3f}, and its class's recall in macro-F1 by 1 / that "
    f"class's count of test samples). It is the test-set noise of this one pair of trained "
    "models, not the spread over training seeds or data draws"
    + (": it holds 0, so on these test samples the difference is within that noise. " if holds else
       ": it excludes 0, so on these test samples this pair's F1 differ by more than that noise; that is about these "
       "two trained models, not about the method. ")
    + "A claim about D-CAT takes paired runs pooled over seeds and data draws (notebook 06's verdicts; notebook 04 "
    "pairs the seeds of one draw)."))

# %% [markdown]
# ## 5. Diagnostics: did alignment happen at all?
#
# A result (gain, no gain, loss) is easier to read once we know whether the target's keys and values
# actually moved towards the source's (`dcatkit.diagnostics`).
#
# **$L_{CA}$ over epochs.** The mean of $L_{CA}$ over each epoch's training batches (logged during the
# epoch, while the weights move: epoch 1's value is the average over the first epoch, not the value
# after it), for D-CAT (optimised, over the samples the source gets right), No MCMA (optimised, every sample) and the baseline (measured,
# never optimised), next to the share of training samples D-CAT's MCMA mask keeps (`train_mask_frac`;
# only D-CAT masks, so only its curve is drawn). A cosine printed beside such a mean is the cosine
# of the mean (section 3: at least the mean of the samples' cosines).

# %%
alignment = diagnostics.alignment_curve({"baseline (measured only)": base.history, "D-CAT": dcat.history,
                                         "No MCMA": nomcma.history})
print(alignment.to_string(float_format=lambda v: f"{v:.4f}"))
curves = ("train_ca", "train_mask_frac") if "train_mask_frac" in dcat.history else ("train_ca",)
# only D-CAT masks: the other runs' train_mask_frac is the source's training accuracy, logged but unused
unmasked = lambda h: h.drop(columns="train_mask_frac", errors="ignore")      # noqa: E731
fig = plots.training_curves({"baseline (measured only)": unmasked(base.history), "D-CAT": dcat.history,
                             "No MCMA": unmasked(nomcma.history)}, curves)
plots.save(fig, fig_dir, "03_alignment")
plt.show()
ca, ca_base = alignment["D-CAT"], alignment.iloc[:, 0]
kept = dcat.history["train_mask_frac"] if "train_mask_frac" in dcat.history else None
aligned = ca.iloc[-1] < ca_base.iloc[-1] - 0.05
text = (f"D-CAT's $L_{{CA}}$ went {ca.iloc[0]:.3f} (cosine {stats.signed(explore.cosine_of(ca.iloc[0]), 2)}) in epoch 1 to "
        f"{ca.iloc[-1]:.3f} (cosine {stats.signed(explore.cosine_of(ca.iloc[-1]), 2)}) in epoch {len(ca)}, "
        f"{'still falling' if len(ca) > 1 and ca.iloc[-1] < ca.iloc[-2] - 1e-3 else 'not falling'} at the end; "
        f"the baseline's ended at {ca_base.iloc[-1]:.3f} (cosine {stats.signed(explore.cosine_of(ca_base.iloc[-1]), 2)}). ")
cos_end = explore.cosine_of(ca.iloc[-1])
text += ((f"The loss aligned the target with the source, partially: the cosine reaches {cos_end:.2f}." if cos_end < 0.9
          else f"The loss aligned the target with the source closely: the cosine reaches {cos_end:.2f}.")
         if aligned else "D-CAT's alignment is not clearly below the baseline's, so an F1 difference here cannot be "
         "put down to alignment (the transfer term still changes every training step, and two runs that differ in "
         "anything also differ by chance).")
if kept is not None:
    text += (f" MCMA kept {kept.min():.1%} of the training samples in every epoch (the source is frozen, so its "
             "right and wrong samples never change)" if kept.max() - kept.min() < 1e-9 else
             f" MCMA kept {kept.min():.1%} to {kept.max():.1%} of the training samples per epoch")
    text += (": the source is right on almost all of them, so here D-CAT and No MCMA optimise nearly the same loss."
             if kept.min() > 0.95 else ": the mask drops a real share of the samples, so D-CAT and No MCMA "
             "optimise different losses.")
    if kept.min() > 0.95:
        gap = round(dcat.test["f1"], 3) - round(nomcma.test["f1"], 3)    # of the numbers section 4 shows
        text += (f" Yet their test F1 differ by {abs(gap):.3f} (section 4): one pair of runs cannot say how much of "
                 "that is the mask and how much is run-to-run chance (notebook 04 pairs them over seeds), which is why "
                 "one seed gives no direction."
                 if round(abs(gap), 3) > 0 else " Their test F1 agree to three decimals (section 4).")
display(Markdown(text))

# %% [markdown]
# **Theorem 4.1 on the trained models (Sec. IV-B).** The paper's argument for dropping softmax and
# scaling: if $K_t^\top V_t = K_s^\top V_s$ (Eq. 8 with $A = K_s^\top$, $B = V_s$) and the matrices
# have **full rank** with **equal sequence lengths** ($T_t = T_s$, square $R$, $S$), then the
# target's keys and values are linear maps of the source's,
#
# $$K_t^\top = K_s^\top R, \qquad V_t = S\,V_s \qquad (9),\,(15)$$
#
# Here training does not ask for the theorem's premise, whatever the settings: the loss matches
# *normalised* matrices, so at best $K_t^\top V_t = c\,K_s^\top V_s$ (equality up to a scale
# $c > 0$), and even that needs $L_{CA} = 0$ (where this run's $L_{CA}$ ended, from section 5, and
# whether its sequence lengths are equal are printed below). So the theorem is a motivation, not a prediction we can check exactly. What we can measure is its *direction*: per sample, how much of
# the target's key (value) vectors lies in the span of the source's $T_s$ vectors. On held-out
# samples we fit that least-squares map and report $R^2 = 1 - \lVert K_t^\top - K_s^\top
# R\rVert_F^2 / \lVert K_t^\top\rVert_F^2$, next to the same fit against *another* sample's source
# vectors (`r2_shuffled`: $T_s$ vectors span part of $\mathbb{R}^d$ whatever the models learnt).
# `r2_gain` = `r2` − `r2_shuffled` is the sample-specific part.

# %%
src_out = diagnostics.attention_outputs(src.model, splits.test, source, device=device)
target_outs = {r.name: diagnostics.attention_outputs(r.model, splits.test, target, device=device)
               for r in (base, dcat, nomcma)}
r2 = diagnostics.theorem41(src_out, target_outs)
t_s, t_t = src_out["k"].shape[1], target_outs[base.name]["k"].shape[1]
print(f"{len(splits.test)} held-out samples; K, V of the source {src_out['k'].shape[1:]} "
      f"and of the target {target_outs[base.name]['k'].shape[1:]} (time steps, d)")
print(format_table(r2, diffs={"r2_gain": ("r2", "r2_shuffled")}, index=False))
files = report.write_results(r2, out, runs.results_stem(f"theorem41-{dataset}-{checked['split_name']}-{source}-"
                                                         f"{target}", params, f"lam{lam:g}-seed{seed}"), params=params,
                             device=device)
print("wrote", ", ".join(paths.shown(p) for p in files.values()))
g = r2.set_index(["run", "tensor"])
dk, bk, dv = g.loc[("D-CAT", "K")], g.loc[(base.name, "K")], g.loc[("D-CAT", "V")]
gain = lambda r: f"{round(r['r2'], 3) - round(r['r2_shuffled'], 3):.3f}"   # of the numbers shown, as in the table
ca_end = ca.iloc[-1]                                             # section 5: D-CAT's last epoch
text = (f"D-CAT's $L_{{CA}}$ ended at {ca_end:.3f} (cosine {stats.signed(explore.cosine_of(ca_end), 2)}; section 5, "
        "the mean over its last epoch's training batches)"
        + (", not 0, so the premise of equality does not hold in this run. " if round(ca_end, 3) > 0 else
           ", 0 to three decimals: the premise of equality holds here only up to the scale $c$. ")
        + f"Here $T_s$ = {t_s}, $T_t$ = {t_t}" + (" (unequal, so $R$ and $S$ cannot be square). " if t_s != t_t else
        " (equal; the normalisation still leaves a scale). ") + f"Keys: D-CAT's $R^2$ is {dk['r2']:.3f}, "
        f"{dk['r2_shuffled']:.3f} against another sample's source vectors (gain {gain(dk)}); the baseline's is "
        f"{bk['r2']:.3f}. ")
if dk["r2"] > bk["r2"] + 0.1:
    text += "In this run D-CAT's keys lie more in the span of the source's keys than the baseline's"
    text += (f"; another sample's source vectors explain {dk['r2_shuffled'] / dk['r2']:.0%} as much, so the part "
             f"specific to each sample is the gain, {gain(dk)}. " if dk["r2"] > 0 else
             f"; the part specific to each sample is the gain, {gain(dk)}. ")
else:
    text += "In this run D-CAT's keys are not clearly closer to the source's span than the baseline's. "
text += (f"Values: {dv['r2']:.3f} vs {dv['r2_shuffled']:.3f} (gain {gain(dv)}). What this shows: whether "
         "the target's keys and values moved toward the form Theorem 4.1 describes (Eq. 7 itself is tracked by "
         "$L_{CA}$ in section 5). What it does not show: that the theorem's linear maps exist ("
         + ("its conditions fail here" if t_s != t_t or round(ca_end, 3) > 0 else
            "the loss gives equality only up to a scale, and full rank is not checked")
         + "), or what alignment does to F1 (section 4).")
display(Markdown(text))

# %% [markdown]
# ## Summary
#
# - $L_{CA}$ (Eq. 7) compares two normalised $d\times d$ matrices; its value is a cosine
#   ($1 - L_{CA}^2/2$): √2 means unrelated, 0 the same up to a positive scale.
# - Section 5 shows whether D-CAT lowered $L_{CA}$ below the baseline's (which is measured, never
#   optimised); the MCMA mask drops the samples the source gets wrong and averages $L_{CA}$ over the
#   rest, so it changes the loss only in batches that hold such a sample, and section 5 prints how
#   often the source is right on this training set.
# - One seed and one small test split cannot say whether D-CAT helps: the interval figure shows the
#   test-set uncertainty of each run, and the paired interval under it that of D-CAT − baseline for
#   this one pair of trained models; notebook 06 gives the verdict pooled over seeds and data draws
#   (notebook 04's intervals cover the seeds of one draw).
# - Theorem 4.1 needs full rank, equal lengths and exact equality; the $R^2$ test measures the
#   direction of alignment, not the theorem.
#
# ## Try this
#
# 1. **λ = 0.** `-p lam 0.0`: D-CAT's $L_{CA}$ curve should stay at √2 like the baseline's, and
#    its F1 equal the baseline's (same seed, same loss). *Why:* with λ = 0 Eq. (19) is Eq. (18).
# 2. **λ = 100.** `-p lam 100`: does $L_{CA}$ fall further, and what happens to F1? (Notebook 04
#    compares the λ of its `lams` grid over the seeds of one data draw.) *Why:* at a large λ the
#    alignment term can outweigh cross-entropy (notebook 06 measures its gradient against
#    cross-entropy's), and matching the source's attention is not the same as classifying.
# 3. **A worse source.** `-p source_epochs 1`: *expect* the source to err more (section 1 prints its
#    F1), so MCMA drops more samples (`train_mask_frac` falls) and D-CAT and No MCMA optimise more
#    different losses. Their test F1 may or may not differ more: section 5 compares one pair of
#    runs, and one pair cannot tell the mask's effect from seed-to-seed chance (notebook 04 pairs them over seeds).
# 4. **Subject-disjoint.** `-p split ood` (or `-p split loso -p fold 3`): every model is scored
#    on subjects it never saw. The paper reports this setting in Table III and its λ ablation in
#    Table IV; its IMU gains are in-distribution (Table II), and on UESTC's OOD split its Table III
#    shows the IMU losing F1 with transfer (single runs). *Expect* every model's F1 to be
#    lower than on `id`.
#
# Next: [04 — λ ablation](04_lambda_ablation.ipynb) repeats this over λ and the seeds of its `seeds`
# parameter.
