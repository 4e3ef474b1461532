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
# # 06 — When does transfer help?
#
# **Learning goals.** After this notebook you can
# 1. say why one data draw and one frozen source cannot support a claim, and read a verdict pooled
#    over several draws (a *t* on the draw means) with family-wise (Holm) control;
# 2. use a **negative control** (no method can help by construction) and a **positive control**
#    (transfer must help by construction) to tell "the method does not help" from "the set-up
#    cannot show help";
# 3. read the target's F1 against the number of labels when many *unlabeled paired recordings*
#    exist, the case cross-modal transfer is made for;
# 4. explain from a measurement (the gradient of the transfer term against cross-entropy's) why
#    D-CAT at the paper's λ = 1 barely moves the target here, while distillation does;
# 5. explore every result without re-running anything (the results explorer, section 7).
#
# Terms (source, target, baseline, λ, MCMA, $L_{CA}$, macro-F1, KD, contrastive ...) are defined in
# [GLOSSARY.md](GLOSSARY.md); the statistical terms new here are defined below. Notebooks
# [03](03_transfer.ipynb) and [04](04_lambda_ablation.ipynb) ran D-CAT on one data draw; this one
# asks the question any transfer paper must answer: **does it help, where, by how much, and would
# another way of using the source help as much?**
#
# **The methods** (`dcatkit.objectives`), all trained with $L = L_{CE} + \lambda L_{transfer}$
# (paper Eq. 19), with MCMA (Eqs. 16–17) on the labelled samples:
#
# | method | $L_{transfer}$ per sample | reads from the source |
# |---|---|---|
# | `none` | 0: the baseline | nothing |
# | `dcat` | $L_{CA}$ (Eq. 7) | keys, values |
# | `kd` | $T^2\,\mathrm{KL}(\mathrm{softmax}(z_s/T)\,\Vert\,\mathrm{softmax}(z_t/T))$ | logits |
# | `contrastive` | InfoNCE between learned projections of the pooled outputs | pooled output |
# | `fitnet`, `dcat+kd` | a linear map of pooled outputs; D-CAT plus KD | (full grid only) |
#
# **The studies.** (a) **main**: video → IMU on the ID split, every label given, at `sizes`
# simulated recordings; (b) **negative control**: the IMU of an *independent* simulated draw as
# the target (`make_synthetic(control="negative")`): its signal carries nothing about the labels,
# so every method's expected macro **recall** is exactly 1/8 and a call either way is a false one;
# (c) **positive control**: the *noise-free* IMU of the same recordings (`imu_clean`, trained on
# every label: a near-perfect teacher) as the source of the noisy IMU, with few labels and the
# other training recordings as **unlabeled pairs** (both sensors recorded, no label): transfer
# must help here by construction; (d) **the unlabeled-pairs curve**: video → IMU, target F1
# against the number of labels at a fixed number of recordings (the rest unlabeled pairs);
# (e) the paper's Table I recipe beside the kit's (one parameter away, see the parameters).
# (b)–(d) run through `dcatkit.headroom` (`run_controls`, `study_task`), (a) and (e) through
# `dcatkit.sweep.run_studies`; every run uses the kit's own training loop.
#
# **Statistics: terms and what a call promises** (`dcatkit.stats`).
# - A **data draw** is one simulated dataset (and its split) from one data seed; each draw gets
#   its own frozen source. The 10 **seeds** vary the target's initial weights and batch order.
# - Per draw, the **paired difference** (method − same-seed baseline) is tested with the exact
#   **sign-flip test**: if a method does nothing, each difference is as likely positive as
#   negative; the p-value counts the $2^{10}$ sign patterns at least as extreme. Shown per draw,
#   uncorrected: description, not claims.
# - **Pooled over draws**, a cell's effect is the mean of its draw means, tested with a *t* on those
#   draw means ($D - 1$ degrees of freedom): a claim must hold for draws in general, not for the one
#   drawn. With 3 draws the *t* has 2 degrees of freedom: wide intervals are the honest price.
# - **Family-wise control (Holm).** The cells of one study form a *family*; Holm's step-down
#   procedure keeps the chance that *any* call of the family is false below 5%, and each printed
#   interval is the one at the level Holm tested it at. **A call is read off that adjusted
#   interval**: *helps* (above 0), *hurts* (below 0), *no evidence* (holds 0). Families are kept
#   small: at one draw and 10 seeds the smallest sign-flip p-value is 2/1024, so a family of more
#   than 25 cells could never call anything.
#
# **The budget.** The default run must take at most 20 minutes on an idle 2-core CPU (2 workers,
# one thread each). Measured run costs there: an IMU target ~2.5 s at 300 recordings and ~9 s at
# 1000, a video source ~25 s at 300 and ~80 s at 1000, and every draw needs its own sources. So the
# default runs D-CAT only in the main study, the controls and the curve at 300 recordings with few
# methods, and no paper recipe. `grid="full"` runs the full grid instead (all six methods in the
# main study at three sizes, every control with `none`/`dcat`/`kd`/`contrastive`, four label counts,
# the paper's recipe): hours on a CPU, minutes on a GPU. The setup cell prints what the chosen grid
# leaves out; the measured time of the run is printed after it.

# %% tags=["parameters"]
# --- data ---------------------------------------------------------------------
dataset = "synthetic"   # "synthetic" (no files needed), "uestc", "cough" or "vggsound"
data_root = None        # folder of a real dataset as distributed; None for synthetic
split = "id"            # "id" (stratified), "ood" (subject-disjoint), "loso" or ["group_kfold", k] (-y)
data_seed = 0           # seed of the split (and of the simulated data)
n_samples = 1000        # synthetic only: number of simulated recordings
frame_size = None       # video frame side in pixels; None: the dataset's default (synthetic 32, paper 224)
n_frames = None         # video frames per sample; None: the dataset's default (synthetic 8, paper 30)
cache_dir = None        # real datasets: preprocessing cache folder; None: <data_root>/.dcatkit_cache

# --- the studies ----------------------------------------------------------------
grid = "default"        # "default" (fits the 20-minute CPU budget) or "full" (overrides the lists below)
draws = 3               # data draws: data seeds data_seed, data_seed + 1, ... (each its own data and sources)
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]    # target seeds (baseline and methods share each seed's init)
source = "video"        # (a) main study: source -> target on `split`, every label given ...
target = "imu"
sizes = [300, 1000]     # ... at these numbers of simulated recordings (70% train) ...
methods = ["none", "dcat"]   # ... with these methods ("none" is the baseline)
control_size = 300      # (b)-(d): simulated recordings of the control studies and the curve
negative_methods = ["none", "dcat"]                    # (b) negative control, read on macro recall
positive_labels = [20]                                 # (c) positive control: labels (the rest unlabeled pairs)
positive_methods = ["none", "dcat", "kd", ["dcat", 30]]   # [name, lambda]: a method at another lambda
curve_labels = [20, 60]                                # (d) unlabeled-pairs curve: numbers of labels
curve_methods = ["none", "dcat"]
curve_source_labels = "all"    # (d) the video source trained on "all" training labels, or the "same" few
paper_recipe = False    # (e) True: also video -> IMU at n_samples with the paper's Table I (UESTC) recipe
lam = 1.0               # lambda of Eq. (19), non-negative; the paper uses 1
workers = None          # parallel runs; None: one per CPU core (one per GPU under CUDA); 0: in this process
run = True              # False: train nothing, read the committed results (notebooks/results/06_runs.csv)

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
import os
import time

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from dcatkit import explore, headroom, paths, plots, report, stats
from dcatkit.sweep import run_studies

if dataset != "synthetic":
    raise ValueError(f"notebook 06 needs the simulator (its controls are built into it), got dataset={dataset!r}")
if grid not in ("default", "full"):
    raise ValueError(f"grid must be 'default' or 'full', got {grid!r}")
if grid == "full":   # everything the default leaves out
    methods = ["none", "dcat", "kd", "fitnet", "contrastive", "dcat+kd"]
    sizes, paper_recipe = [300, 1000, 2000], True
    negative_methods = curve_methods = ["none", "dcat", "kd", "contrastive"]
    positive_methods = ["none", "dcat", "kd", "contrastive", ["dcat", 30]]
    positive_labels, curve_labels = [20, 60], [20, 40, 80, 160]
checked = paths.check_params(dataset=dataset, split=split, source=source, target=target, lam=lam, preset=preset,
                             epochs=epochs, source_epochs=source_epochs, seed=seed, seeds=seeds, device=device,
                             n_samples=n_samples, sizes=sizes, methods=methods, resume=resume, redo=redo)
if not isinstance(draws, int) or draws < 1:
    raise ValueError(f"draws must be a positive integer (data draws), got {draws!r}")
data_seeds = list(range(data_seed, data_seed + draws))
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
sim_opts = {k: v for k, v in data_opts.items() if k != "n_samples"} or None   # sizes come from the grid
main = [dict(study=f"(a) {source}→{target}, {split}", source=source, target=target, split=split, sizes=sizes,
             methods=methods)]
if paper_recipe:
    main.append(dict(study=f"(e) {source}→{target}, {split}, Table I recipe", source=source, target=target,
                     split=split, sizes=[n_samples], methods=methods, preset="uestc"))
    main.append(dict(study=f"(e) {source}→{target}, {split}, kit recipe", source=source, target=target,
                     split=split, sizes=[n_samples], methods=methods))
controls = [dict(study="(b) negative control", kind="negative", methods=negative_methods),
            dict(study="(c) positive control", kind="positive", methods=positive_methods, labels=positive_labels),
            dict(study="(d) unlabeled-pairs curve", kind="curve", methods=curve_methods, labels=curve_labels,
                 source_labels=curve_source_labels)]
controls = [c for c in controls if len(c["methods"]) > 1]
if "none" not in methods:
    raise ValueError(f"methods must include 'none' (the baseline every difference is paired with), got {methods}")
plan_sources, plan_targets = headroom.control_plan(controls, seeds=seeds, draws=data_seeds, n_samples=control_size,
                                                   lam=lam, epochs_source=source_epochs, epochs_target=epochs)
out = paths.out_path(out_dir, "06_when_transfer_helps")
fig_dir = paths.figures_path(figures_dir, out_dir)
committed_csv = paths.resolve("notebooks/results/06_runs.csv")
sns.set_theme(style="whitegrid")
n_main = sum(len(s["sizes"]) * len(s["methods"]) for s in main) * len(seeds) * len(data_seeds)
print(f"grid={grid!r}: data seeds {data_seeds} x target seeds {seeds}; lam={lam}, preset={preset!r}, "
      f"epochs={epochs}, source_epochs={source_epochs}")
for s in main:
    print(f"  {s['study']}: n = {s['sizes']}, methods {s['methods']}")
for c in controls:
    print(f"  {c['study']} at {control_size} recordings: labels {c.get('labels', 'all')}, methods {c['methods']}")
print(f"{n_main} + {len(plan_targets)} target runs, {len(plan_sources)} control sources; simulator options {sim_opts}")
if grid == "default":
    print("left out (grid='full'): kd, fitnet, contrastive and dcat+kd in the main study, n = 2000, more methods "
          "in the controls and the curve, more label counts, the Table I recipe (e)")

# %% [markdown]
# ## 1. The runs
#
# The main study runs as one sweep (`dcatkit.sweep.run_studies`, `data_seeds` as an axis: the
# frozen sources of every draw first, then every target); the controls and the curve through
# `dcatkit.headroom.run_controls` (`sweep.run_grid` with `headroom.study_source_task` /
# `study_task`). Finished runs are stored under `out_dir/06_when_transfer_helps/` and read back
# on a re-run. `headroom.tidy_studies` puts every run in one table (`size`: recordings in the main
# study, labels in the controls; `value`: the metric the study is read on). With `run=False`
# nothing is trained: the table is read from `notebooks/results/06_runs.csv`, written by the last
# `make notebooks`.

# %%
t_all = time.perf_counter()
if run:
    main_runs = run_studies(out / "sweep", main, lams=[lam], seeds=seeds, data_seeds=data_seeds, workers=workers,
                            device=device, redo=redo, progress=False, data_options=sim_opts, source_seed=seed,
                            preset=preset, epochs_source=source_epochs, epochs_target=epochs)
    control_runs = headroom.run_controls(out / "controls", controls, seeds=seeds, draws=data_seeds,
                                         n_samples=control_size, lam=lam, epochs_source=source_epochs,
                                         epochs_target=epochs, workers=workers, device=device, redo=redo)
    runs = headroom.tidy_studies(main_runs, control_runs, kinds={c["study"]: c["kind"] for c in controls})
    minutes = (time.perf_counter() - t_all) / 60
    runs.to_csv(out / "06_runs.csv", index=False)
    if os.environ.get("DCATKIT_FIGURES_DIR"):    # `make notebooks` only: refresh the committed results
        committed_csv.parent.mkdir(parents=True, exist_ok=True)
        runs.to_csv(committed_csv, index=False)
    print(f"{len(runs)} target runs; this execution took {minutes:.1f} min with {workers or 'one per core'} "
          f"workers (runs finished earlier are read back, not retrained); the runs' own time "
          f"{runs.wall_s.sum() / 60:.1f} core-min")
    print("wrote", paths.shown(out / "06_runs.csv"), *([paths.shown(committed_csv)] if os.environ.get(
        "DCATKIT_FIGURES_DIR") else []))
else:
    runs = pd.read_csv(committed_csv)
    print(f"run=False: {len(runs)} runs read from {paths.shown(committed_csv)}; nothing trained")
for name, g in runs.groupby("study", sort=False):
    print(f"  {name}: {len(g)} runs, source {g.source_f1.mean():.3f} test F1 (mean over draws)")

# %% [markdown]
# ## 2. Pooled verdicts and their draws
#
# `headroom.pooled_verdicts` pairs every run with its same-draw, same-seed baseline and pools the
# draws (`stats.summarise_draws`, Holm within each study); `headroom.verdict_table` prints each
# pooled verdict beside its per-draw results: the mean difference on each draw with the number of
# seeds on which the method won / lost against its baseline, and the spread (sd) of the draw
# means. A call needs the *adjusted* interval to exclude 0; a draw that looks clear alone is not a
# claim.

# %%
pooled, per_draw = headroom.pooled_verdicts(runs)
table = headroom.verdict_table(pooled, per_draw)
report.write_results(pooled, out, "pooled", params=dict(grid=grid, data_seeds=data_seeds, seeds=seeds, lam=lam))
with pd.option_context("display.width", 250, "display.max_colwidth", 60):
    print(table.drop(columns=["metric"]).to_string(index=False))
print(f"\n{stats.family_note(pooled[pooled.method != 'none'])}; families: one per study")
fig = plots.pooled_intervals(pooled, per_draw, xlabel="Δ to the same-seed baseline (macro-F1; negative "
                             "control: macro recall)")
fig.suptitle(f"Pooled over {len(data_seeds)} data draws x {len(seeds)} seeds: Holm-adjusted intervals "
             "(t on the draw means)", y=1.0, fontsize=10)
plots.save(fig, fig_dir, "06_verdicts")
plt.show()

# %% [markdown]
# ## 3. (a) The main study: video → IMU with every label
#
# Mean ± std over draws × seeds of the target's test macro-F1 against the training-set size; the
# dashed line is the IMU ceiling (an IMU model trained on 20,000 recordings, read from
# `benchmarks/headroom_runs.csv` by `headroom.read_headroom`): the room a transfer method could
# use.

# %%
ceiling = headroom.ceilings(headroom.read_headroom(paths.resolve("benchmarks/headroom_runs.csv")))
ceiling = ceiling[(ceiling.modality == target) & (ceiling.split == split) & (ceiling.regime == "headroom")]
main_rows = pooled[pooled.kind == "main"].assign(panel=lambda d: d.study, n_samples=lambda d: d["size"])
ceil_of = {s: (ceiling.f1_mean.iloc[0], ceiling.f1_std.iloc[0]) for s in main_rows.study.unique()} \
    if len(ceiling) else None
fig = plots.transfer_curves(main_rows, x="n_samples", col="panel", ceilings=ceil_of)
fig.suptitle(f"test macro-F1, mean ± std over {len(data_seeds)} draws x {len(seeds)} seeds", y=1.03)
plots.save(fig, fig_dir, "06_f1_vs_size")
plt.show()
m = main_rows[main_rows.method != "none"]
lines = [f"- **{r.method}** at {r.size} recordings: baseline {r.baseline_mean:.3f}, {r.method} {r.mean:.3f}; "
         f"ΔF1 {stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, 3)} → **{r.call}** (draw means "
         f"{r.draw_means})" for r in m.itertuples()]
room = (f" The ceiling is {ceiling.f1_mean.iloc[0]:.3f}: the baseline leaves "
        f"{ceiling.f1_mean.iloc[0] - main_rows[main_rows.method == 'none'].sort_values('size')['mean'].iloc[-1]:.3f} "
        f"of room at the largest size." if len(ceiling) else "")
display(Markdown("\n".join(lines) + "\n\n" + room))

# %% [markdown]
# ## 4. (b) The negative control: read on macro recall
#
# The target's IMU comes from an independent draw: it knows nothing about the labels, whatever the
# source knows. Every method's expected macro recall is 1/8, so the paired difference is 0 by
# construction: a "helps" or "hurts" here would be a false call (the family-wise rate promises
# at most 5% of families with one).

# %%
neg = pooled[(pooled.kind == "negative") & (pooled.method != "none")]
base_neg = pooled[(pooled.kind == "negative") & (pooled.method == "none")]
if len(neg):
    false_calls = int(neg.call.isin(["helps", "hurts"]).sum())
    display(Markdown(f"Baseline macro recall {base_neg['mean'].iloc[0]:.3f} (chance is {1 / 8:.3f}); "
                     + "; ".join(f"{r.method}: Δrecall {stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, 3)} "
                                 f"→ {r.call}" for r in neg.itertuples())
                     + f". **{false_calls} false call(s)** in {len(neg)} cell(s)."))
else:
    print("negative control not run (negative_methods holds only the baseline)")

# %% [markdown]
# ## 5. (c) The positive control and the gradient scale
#
# A near-perfect teacher of the *same* sensor (noise-free IMU), few labels, and every other
# training recording as an unlabeled pair: the transfer term sees the teacher on all pairs, while
# cross-entropy sees only the labels. If a method cannot help here, nothing about its set-up lets it
# help anywhere. MCMA on the unlabeled pairs keeps the pairs the teacher is confident about
# (`unlabeled_mask="confidence"`).
#
# **How hard does each term pull?** `headroom.gradient_scale` (stored with every run as
# `grad_ratio_init`) measures, at the start of training, the norm of the gradient of
# $\lambda L_{transfer}$ against that of $L_{CE}$ with respect to the target's weights. A ratio of
# a few percent means cross-entropy decides nearly every step: the transfer term can only nudge.

# %%
pos = runs[runs.kind == "positive"]
if len(pos):
    diag = pos[pos.method != "none"].groupby(["method", "lam"]).agg(
        grad_ratio=("grad_ratio_init", "mean"), objective_first=("objective_first", "mean"),
        objective_last=("objective_last", "mean"), kept=("mask_frac_unlabeled", "mean")).reset_index()
    print(diag.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    prow = pooled[(pooled.kind == "positive") & (pooled.method != "none")]
    text = [f"Teacher (noise-free IMU) test F1 {pos.source_f1.mean():.3f}; the noisy IMU's baseline with "
            + ", ".join(f"{headroom.size_label(s, 'labels')} {v:.3f}" for s, v in
                        pooled[(pooled.kind == "positive") & (pooled.method == "none")][["size", "mean"]]
                        .itertuples(index=False)) + "."]
    for r in prow.itertuples():
        g = diag[(diag.method == r.method) & (diag.lam == r.lam)].iloc[0]
        text.append(f"- **{r.method}, λ = {r.lam:g}**, {headroom.size_label(r.size, 'labels')}: ΔF1 "
                    f"{stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, 3)} → **{r.call}**; its gradient is "
                    f"{g.grad_ratio:.1%} of cross-entropy's at the start; its objective went {g.objective_first:.3f} "
                    f"→ {g.objective_last:.3f}.")
    display(Markdown("\n".join(text)))
else:
    print("positive control not run")

# %% [markdown]
# ## 6. (d) The unlabeled-pairs curve and (e) the paper's recipe
#
# Video → IMU with `curve_labels` labels among the training recordings of each draw, the rest
# unlabeled pairs; the video source is trained on every training label (`curve_source_labels =
# "all"`: a source model that was trained elsewhere, as in the paper) or on the same few
# (`"same"`: the user's situation when no sensor has more labels). Mean ± std over draws × seeds.

# %%
cur = pooled[pooled.kind == "curve"].assign(**{"training labels": lambda d: d["size"]})
if len(cur):
    fig = plots.transfer_curves(cur, x="training labels", col="study")
    fig.suptitle(f"{control_size} recordings per draw; the unlabeled pairs are the rest of the training split",
                 y=1.03, fontsize=10)
    plots.save(fig, fig_dir, "06_f1_vs_labels")
    plt.show()
    display(Markdown("; ".join(f"{r.method} with {r.size} labels: ΔF1 "
                               f"{stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, 3)} → {r.call}"
                               for r in cur[cur.method != "none"].itertuples())
                     + f" (video source test F1 {runs[runs.kind == 'curve'].source_f1.mean():.3f})."))
rec = pooled[pooled.study.str.startswith("(e)")]
if len(rec):
    print(headroom.verdict_table(rec, per_draw).to_string(index=False))
else:
    display(Markdown("(e) is not in this run: `-p paper_recipe True` (or `grid='full'`) adds video → IMU at "
                     f"{n_samples} recordings with the paper's Table I UESTC recipe (`preset='uestc'`: lr, dropout, "
                     "batch, weight decay, epochs and attention width of Table I, for source and target) beside the "
                     "kit's recipe, as two studies of the same draws and seeds."))

# %% [markdown]
# ## 7. Explore the results
#
# Pick a study, a method and a size: the explorer (`dcatkit.explore.results_explorer`) shows every
# run of the method and of its baseline per draw, each draw's paired difference with its own 95%
# sign-flip interval, and the pooled difference with its Holm-adjusted interval. It reads the
# table only, so it works on a fresh clone with `-p run False` (the committed
# `notebooks/results/06_runs.csv`), in JupyterLab; the static figure below it is the first choice.

# %%
explorer = explore.results_explorer(runs, pooled, per_draw)
if explorer is not None:
    display(explorer)
first = pooled[pooled.method != "none"].iloc[0]
cell = explore.results_cell(runs, pooled, per_draw, first.study, first.method, first.lam, first["size"])
print(cell["text"])
fig = explore.results_figure(cell)
plots.save(fig, fig_dir, "06_explorer")
plt.show()

# %% [markdown]
# ## 8. What the kit found
#
# Written by the cell below from the pooled verdicts of this run.

# %%
WORDS = ("helps", "hurts", "no evidence", "too few seeds")


def calls_of(kind):
    r = pooled[(pooled.kind == kind) & (pooled.method != "none")]
    return {c: [f"{x.method}{'' if x.lam == lam else f' (λ = {x.lam:g})'} at "
                f"{headroom.size_label(x.size, x.unit)} ({stats.format_interval(x.diff_mean, x.ci_low, x.ci_high, 3)})"
                for x in r[r.call == c].itertuples()] for c in WORDS}


def said(kind, what):
    c = calls_of(kind)
    parts = [f"{word}: {'; '.join(c[word])}" for word in WORDS if c[word]]
    return f"- **{what}** — " + (". ".join(parts) if parts else "not run") + "."


def called(kind, method, word, lam_=lam):
    r = pooled[(pooled.kind == kind) & (pooled.method == method) & (pooled.lam == lam_)]
    return bool(len(r)) and bool((r.call == word).any())


text = [f"Pooled over {len(data_seeds)} data draws x {len(seeds)} seeds, Holm within each study:", "",
        said("main", f"(a) {source} → {target}, every label"), said("negative", "(b) negative control (recall)"),
        said("positive", "(c) positive control"), said("curve", "(d) unlabeled-pairs curve")]
neg_calls = pooled[(pooled.kind == "negative") & pooled.call.isin(["helps", "hurts"])]
if (pooled.kind == "negative").any():
    text += ["", f"The negative control made {len(neg_calls)} false call(s): "
             + ("the statistics did not produce a call where none can exist." if not len(neg_calls) else
                "a call where none can exist; read the other calls with that in mind.")]
pos_helps = [m for m in pooled[pooled.kind == "positive"].method.unique() if m != "none"
             and called("positive", m, "helps", lam)]
if (pooled.kind == "positive").any():
    text += ["", "In the positive control, at λ = " + f"{lam:g}, "
             + (f"{', '.join(pos_helps)} help(s): the training loop does let a transfer term help when the source "
                "knows what the target cannot learn from its few labels." if pos_helps else
                "no method's help is established: either the set-up or the pooled test over "
                f"{len(data_seeds)} draws is too weak to show it.")]
pos_diag = runs[(runs.kind == "positive") & (runs.method == "dcat") & (runs.lam == lam)]
kd_diag = runs[(runs.kind == "positive") & (runs.method == "kd")]
if len(pos_diag):
    ratio = pos_diag.grad_ratio_init.mean()
    text += ["", f"**The gradient scale.** At the start of training D-CAT's gradient (λ = {lam:g}) is {ratio:.1%} of "
             "cross-entropy's" + (f", KD's {kd_diag.grad_ratio_init.mean():.0%}" if len(kd_diag) else "")
             + f"; D-CAT's $L_{{CA}}$ went {pos_diag.objective_first.mean():.3f} → {pos_diag.objective_last.mean():.3f} "
             f"(cosine {explore.cosine_of(pos_diag.objective_first.mean()):.2f} → "
             f"{explore.cosine_of(pos_diag.objective_last.mean()):.2f})."
             + (" With a pull that small, cross-entropy decides almost every step and D-CAT can only nudge the target."
                if ratio < 0.1 else " Its pull is not negligible against cross-entropy's.")]
    other = pooled[(pooled.kind == "positive") & (pooled.method == "dcat") & (pooled.lam != lam)]
    for r in other.itertuples():
        text.append(f"At λ = {r.lam:g} (its pull scaled up), D-CAT's ΔF1 is "
                    f"{stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, 3)}: {r.call}.")
dcat_main = "helps" if called("main", "dcat", "helps") else "does not show a pooled gain"
text += ["", f"**What it would take to see the paper's effect here.** With every label (a), D-CAT {dcat_main} at "
         f"λ = {lam:g}. A gain needs a setting where the target has little to learn from its own labels and the "
         "source knows more (few labels, many unlabeled pairs: (c), (d)); a transfer term whose pull is comparable "
         "to cross-entropy's (λ scaled to the gradient ratio, or chosen on validation F1 with "
         "`experiment.tune_transfer`); and several data draws, since one draw can show a gain the next does not. "
         "The paper's gains are on real data with its models, which this simulator does not stand in for."]
display(Markdown("\n".join(text)))

# %% [markdown]
# ## Summary
#
# - A verdict here pools data draws (a *t* on the draw means) and controls the family-wise error
#   with Holm within each study; per-draw results are shown beside it as description. One draw's
#   clear interval is not a claim.
# - The negative control says whether the statistics and the set-up produce false calls; the
#   positive control says whether the training loop lets a transfer term help at all.
# - Unlabeled paired recordings are where cross-modal transfer has something to give: the target's
#   labels are few, the source's knowledge reaches every pair.
# - The gradient ratio explains why a method does or does not move the target at a given λ; compare
#   it before comparing methods at one shared λ.
#
# ## Try this
#
# 1. **Scale D-CAT's λ to its gradient.** `-y "positive_methods: [none, dcat, [dcat, 10], [dcat, 100]]"`:
#    expect the gain in the positive control to grow with λ, then fall when the alignment term
#    outweighs cross-entropy. *Why:* at λ = 1 its gradient is a few percent of cross-entropy's.
# 2. **One draw only.** `-p draws 1`: expect every pooled cell to read "too few seeds", while the
#    per-draw rows still show each draw's sign-flip interval. *Why:* the pooled test is a *t* on the
#    draw means, and one mean has no spread to test against: a claim must hold across draws.
# 3. **A source that knows as little as the target.** `-p curve_source_labels same`: the video
#    source is trained on the same few labels; expect its F1 and any gain to fall. *Why:* a transfer
#    method passes on only what the source knows.
# 4. **The full grid.** `-p grid full` on a GPU (`device="cuda"`): every method, the paper's
#    recipe (e), and n = 2000. Compare the families: more cells means stricter Holm levels.
#
# Back to the start: [01 — preprocessing](01_preprocessing.ipynb); the statistics in depth:
# the README's "Statistics: what a verdict promises".
