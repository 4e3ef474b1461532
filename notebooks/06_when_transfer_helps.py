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
#    (transfer should help by construction) to tell "the method does not help" from "the set-up
#    cannot show help";
# 3. read the target's F1 against the number of labels when many *unlabeled paired recordings*
#    exist, the case cross-modal transfer is made for;
# 4. measure how hard a transfer term pulls against cross-entropy (the gradient of one against the
#    other's) and read that measurement beside the verdicts, instead of comparing methods at one
#    shared λ;
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
# | `kd` | $\tau^2\,\mathrm{KL}(\mathrm{softmax}(z_s/\tau)\,\Vert\,\mathrm{softmax}(z_t/\tau))$ (τ: the temperature) | logits |
# | `contrastive` | InfoNCE between learned projections of the pooled outputs | pooled output |
# | `fitnet`, `dcat+kd` | a linear map of pooled outputs; D-CAT plus KD | (full grid only) |
#
# **Fair rivals.** One shared λ is not a fair comparison: the objectives pull with different
# strengths at the same λ (section 5 prints the pull of each method of the positive control (c)). So a method is also run at every λ of a small
# grid (`tune_lams`) and its **tuned** cell, `method (tuned)`, takes for each draw
# and seed the λ whose *validation* F1, averaged over the draw's **other** seeds, is best
# (`studies.with_tuned`). The test split plays no part in the choice, and neither does the seed's
# own run: choosing each seed's best run on its own validation F1 would hand the tuned cell the
# best of its `len(tune_lams)` runs' luck, a gain a method with no effect also gets (`benchmarks/RESULTS.md`,
# "Tuned cells"). Every method gets the same grid, budget and rule. The runs of the whole grid are shown
# as a study of their own (`…, every λ`), so they do not widen the verdicts' Holm family.
# One budget is generous: in the few-label studies the validation part keeps all its labels, more than
# the few training labels (section 5 prints how many, where the runs record it), and every best epoch
# and tuned λ is chosen on them. A user with few labels would not have them; `-p val_labels 20` keeps
# only 20 (`data.dataset.thin_validation`), and `benchmarks/RESULTS.md` ("scarce validation")
# measured (c) that way over more draws.
#
# **The studies.** (a) **main**: `source` → `target` (video → IMU by default) on the split
# `split` names, every label given, at `sizes` simulated recordings, D-CAT at the paper's λ and
# tuned; (b) **negative control**: the IMU of an *independent* simulated draw as the target
# (`make_synthetic(control="negative")`): its signal carries nothing about the labels, so every
# method's expected macro **recall** is exactly chance, 1 over the number of classes (section 4
# prints it), and a call either way is a false one;
# (c) **positive control**: the *noise-free* IMU of the same recordings (`imu_clean`, trained on
# every label: a teacher stronger than the few-label target, section 5 prints both F1) as the source of
# the noisy IMU, with few labels and the other training recordings as **unlabeled pairs** (both sensors
# recorded, no label): transfer should help here by construction, and a method that does not is a
# finding to explain; (d) **the unlabeled-pairs curve**: video → IMU, target F1
# against the number of labels at a fixed number of recordings (the rest unlabeled pairs);
# (e) the paper's Table I recipe for the target (`preset="uestc-target"`) beside the kit's recipe
# of (a), at the smallest size. The recipe changes more than Table I's numbers, and (e) against (a)
# compares two recipes: the IMU target gets Table I's UESTC IMU row (learning rate, dropout, batch,
# weight decay, epochs) with the paper's attention size 512 (its Sec. V-C, not Table I) **and** a
# larger encoder than the kit's (the IMU encoder sizes of the kit's paper presets, which the paper
# does not give: `dcatkit.presets`), and (e) has its **own frozen video source**, the synthetic one
# at attention size 512, trained apart from (a)'s (sections 1 and 6 print each source's test F1).
# (b)–(d) run through `dcatkit.studies` (`run_controls`, `study_task`), (a) and (e) through
# `dcatkit.sweep.run_studies`; every run uses the kit's own training loop. Only (a) and (e) follow
# `split`: (b)–(d) always run on `study_task`'s own split, whatever `split` says (the setup cell
# prints each study's split). `split` takes "id" or "ood" here: 06 pools data draws, not
# cross-validation folds.
#
# **Statistics: terms and what a call promises** (`dcatkit.stats`).
# - A **data draw** is one simulated dataset (and its split) from one data seed; each draw gets
#   its own frozen source. The **seeds** vary the target's initial weights and batch order (the setup
#   cell's "statistics" line prints how many, and the other numbers of this list for this run).
# - Per draw, the **paired difference** (method − same-seed baseline) is tested with the exact
#   **sign-flip test**: if a method does nothing, each difference is as likely positive as
#   negative; the p-value counts the $2^n$ sign patterns of $n$ seeds (the "statistics" line prints
#   $2^n$) at least as extreme. Computed per draw,
#   uncorrected (the explorer of section 7 shows each draw's interval for the cell you pick):
#   description, not claims.
# - **Pooled over draws**, a cell's effect is the mean of its draw means, tested with a *t* on those
#   draw means ($D - 1$ degrees of freedom): a claim must hold for draws in general, not for the one
#   drawn. With few draws the *t* has few degrees of freedom (the "statistics" line prints them): wide
#   intervals are the honest price.
# - **Family-wise control (Holm).** The cells of one study form a *family*: each study asks its
#   own question (does D-CAT help with every label? do the statistics call where nothing can
#   move? can a transfer term help at all? ...), and its cells are printed together, under the
#   study's name with its family size. Holm's step-down procedure keeps the chance that *any*
#   call of the family is false at or below the family-wise level the "statistics" line prints, and each
#   printed interval is the one at the level Holm tested it at. **A call is read off that adjusted
#   interval**: *helps* (above 0), *hurts* (below 0), *no evidence* (holds 0). Families are kept
#   small: Holm tests a family's strongest cell at that level divided by the family's size, and a *t* on
#   a few draw means (few degrees of freedom) widens its interval steeply as that level tightens, so every
#   extra cell in a family costs every call in it power.
#
# **The budget.** The default grid is sized for an idle 2-core CPU from scratch (2 workers, one
# thread each; the Makefile's `notebooks` target records measured times, and section 1 prints this
# execution's); every draw needs its own frozen sources, and a video source costs more than an
# IMU target (notebook 02 prints the time of each). So the default runs D-CAT as the only method of
# the main study, the controls and the curve at `control_size` recordings with few methods. `grid="full"` runs
# the full grid instead (all five transfer methods tuned against the baseline in the main study at
# three sizes, every control with `none`/`dcat`/`kd`/`contrastive`, more label counts): not timed
# yet, and many times the default's runs, so plan for a GPU or shards (`sweep --shard`, README). The
# setup cell prints the number of runs and what the chosen grid leaves out; the cell after it prints
# the time this execution took (near 0 when every run was read back) and the runs' own training time.

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

# --- the studies ----------------------------------------------------------------
grid = "default"        # "default" (fits a 2-core CPU budget) or "full" (overrides the lists below)
draws = 3               # data draws: data seeds data_seed, data_seed + 1, ... (each its own data and sources)
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]    # target seeds (baseline and methods share each seed's init)
source = "video"        # (a) main study: source -> target on `split`, every label given ...
target = "imu"
sizes = [300, 1000]     # ... at these numbers of simulated recordings (70% train) ...
methods = ["none", "dcat"]   # ... with these methods ("none" is the baseline), each tuned; D-CAT also at lam
tune_lams = [1, 10, 100]     # fair rivals: a tuned method's lambda is chosen on validation F1 from these
control_size = 300      # (b)-(d): simulated recordings of the control studies and the curve
negative_methods = ["none", "dcat"]                    # (b) negative control, read on macro recall
positive_labels = [20]                                 # (c) positive control: labels (the rest unlabeled pairs)
positive_methods = ["none", "dcat", "kd"]             # each tuned over tune_lams; D-CAT also at lam
curve_labels = [20, 60]                                # (d) unlabeled-pairs curve: numbers of labels
curve_methods = ["none", "dcat", "kd", "contrastive"]   # at lam
curve_source_labels = "all"    # (d) the video source trained on "all" training labels, or the "same" few
val_labels = None       # (c), (d): validation recordings kept (None: all); e.g. 20, as scarce as the labels
paper_recipe = True     # (e) video -> IMU at min(sizes) with the paper's Table I target recipe (uestc-target)
lam = 1.0               # lambda of Eq. (19), non-negative; the paper uses 1
workers = None          # parallel runs; None: one per CPU core (under CUDA: as many per GPU as fit); 0: in this process
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
import inspect
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from IPython.display import Markdown, display

from dcatkit import explore, headroom, paths, plots, report, stats, studies
from dcatkit.explore import and_join, n_of
from dcatkit.data.synthetic import CLASSES, DEFAULT_N_SAMPLES
from dcatkit.sweep import run_studies

if dataset != "synthetic":
    raise ValueError(f"notebook 06 needs the simulator (its studies are built into it), got dataset={dataset!r}. "
                     "On a real dataset the same design, a grid pooled over draws beside a negative and a "
                     "positive control built from the data, is `python -m dcatkit sweep --controls --dataset "
                     f"{dataset} --root <data_root> --data-seeds 0-2` (README, 'Controls beside any grid')")

if grid not in ("default", "full"):
    raise ValueError(f"grid must be 'default' or 'full', got {grid!r}")
FULL_GRID = dict(   # grid="full": these parameters set to these values (the default leaves the rest out)
    methods=["none", "dcat", "kd", "fitnet", "contrastive", "dcat+kd"], sizes=[300, 1000, 2000], paper_recipe=True,
    negative_methods=["none", "dcat", "kd", "contrastive"], positive_methods=["none", "dcat", "kd", "contrastive"],
    curve_methods=["none", "dcat", "kd", "fitnet", "contrastive", "dcat+kd"], positive_labels=[20, 60],
    curve_labels=[20, 40, 80, 160])
if grid == "full":
    globals().update(FULL_GRID)
grid_lams = sorted({float(x) for x in tune_lams} | {float(lam)})   # every tuned method runs at each
checked = paths.check_params(dataset=dataset, split=split, source=source, target=target, lam=lam, preset=preset,
                             epochs=epochs, source_epochs=source_epochs, seed=seed, seeds=seeds, device=device,
                             n_samples=n_samples, sizes=sizes, methods=methods, resume=resume, redo=redo)
if checked["cv"]:
    raise ValueError(f"notebook 06 has no cross-validation folds: split must be 'id' or 'ood', got split={split!r}. "
                     "Its claims pool data draws (`draws`) instead of folds; a grid over the folds of a "
                     "cross-validation split is `python -m dcatkit sweep --split loso --folds 0-9 ...` "
                     "(or `--split group_kfold:5`)")
if n_samples != DEFAULT_N_SAMPLES and (set(sizes) != {n_samples} or control_size != n_samples):
    raise ValueError(f"notebook 06 does not read n_samples (got {n_samples}): its studies simulate `sizes` "
                     f"recordings ((a), (e): {sizes}) and `control_size` ((b)-(d): {control_size}). Set those "
                     f"instead and leave n_samples at its default {DEFAULT_N_SAMPLES} (or equal to every size)")
if not isinstance(draws, int) or draws < 1:
    raise ValueError(f"draws must be a positive integer (data draws), got {draws!r}")
data_seeds = list(range(data_seed, data_seed + draws))
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
sim_opts = {k: v for k, v in data_opts.items() if k != "n_samples"} or None   # sizes come from the grid
MAIN = f"(a) {source}→{target}, {split}"
RECIPE = f"(e) {source}→{target}, {split}, Table I recipe"
POSITIVE = "(c) positive control"
main = [dict(study=MAIN, source=source, target=target, split=split, sizes=sizes, methods=methods, lams=grid_lams)]
if paper_recipe:   # the target's Table I recipe; its frozen source at Table I's attention size
    main.append(dict(study=RECIPE, source=source, target=target, split=split, sizes=[min(sizes)],
                     methods=["none", "dcat"], lams=[lam], preset="uestc-target"))
tuned_positive = ["none"] + [[m, x] for m in positive_methods if m != "none" for x in grid_lams]
controls = [dict(study="(b) negative control", kind="negative", methods=negative_methods),
            dict(study=POSITIVE, kind="positive", methods=tuned_positive, labels=positive_labels,
                 val_labels=val_labels),
            dict(study="(d) unlabeled-pairs curve", kind="curve", methods=curve_methods, labels=curve_labels,
                 source_labels=curve_source_labels, val_labels=val_labels)]
controls = [c for c in controls if len(c["methods"]) > 1]
if "none" not in methods:
    raise ValueError(f"methods must include 'none' (the baseline every difference is paired with), got {methods}")
CONTROL_SPLIT = inspect.signature(studies.study_task).parameters["split"].default   # control_plan passes no split
plan_sources, plan_targets = studies.control_plan(controls, seeds=seeds, draws=data_seeds, n_samples=control_size,
                                                   lam=lam, epochs_source=source_epochs, epochs_target=epochs)
out = paths.out_path(out_dir, "06_when_transfer_helps")
fig_dir = paths.figures_path(figures_dir, out_dir)
committed_csv = paths.resolve("notebooks/results/06_runs.csv")
sns.set_theme(style="whitegrid")
n_main = sum(len(s["sizes"]) * (1 + (len(s["methods"]) - 1) * len(s["lams"])) for s in main) * len(seeds) \
    * len(data_seeds)
print(f"grid={grid!r}: data seeds {data_seeds} x target seeds {seeds}; lam={lam}, preset={preset!r}, "
      f"epochs={epochs}, source_epochs={source_epochs}")
for s in main:
    print(f"  {s['study']}: n = {s['sizes']}, methods {s['methods']} at λ in {s['lams']}"
          + (f", preset {s['preset']!r}" if "preset" in s else ""))
for c in controls:
    print(f"  {c['study']} at {control_size} recordings on the {CONTROL_SPLIT} split: labels "
          f"{c.get('labels', 'all')}, methods "
          + (f"{positive_methods} at λ in {grid_lams}" if c["study"] == POSITIVE else f"{c['methods']}"))
print(f"{n_main} + {len(plan_targets)} target runs, {len(plan_sources)} control sources; simulator options {sim_opts}")
# what this run leaves out of FULL_GRID (nothing with grid="full")
missing = {k: [x for x in v if x not in globals()[k]] for k, v in FULL_GRID.items() if isinstance(v, list)}
more_methods_in = (["the controls"] if missing["negative_methods"] or missing["positive_methods"] else []) \
    + (["the curve"] if missing["curve_methods"] else [])
left_out = ([f"{and_join(missing['methods'])} in the main study"] if missing["methods"] else []) \
    + ([f"n = {and_join(missing['sizes'])}"] if missing["sizes"] else []) \
    + (["the Table I recipe (e)"] if FULL_GRID["paper_recipe"] and not paper_recipe else []) \
    + ([f"more methods in {and_join(more_methods_in)}"] if more_methods_in else []) \
    + (["more label counts"] if missing["positive_labels"] or missing["curve_labels"] else [])
if left_out:
    print(f"left out (grid='full'): {', '.join(left_out)}")
CONFIDENCE = inspect.signature(studies.pooled_verdicts).parameters["confidence"].default   # every verdict's
n_seeds, n_draws = len(seeds), len(data_seeds)
print(f"statistics: {n_of(n_seeds, 'target seed')} per draw, "
      + (f"{2 ** n_seeds:,} sign patterns" if n_seeds <= stats.N_EXACT else
         f"a random sample of the {2 ** n_seeds:,} sign patterns")
      + f" for each draw's sign-flip test (a call needs at least {stats.MIN_SEEDS} paired seeds); "
      f"{n_of(n_draws, 'data draw')}, "
      + (f"a pooled t with {n_draws - 1} degrees of freedom" if n_draws > 1 else "too few for the pooled t")
      + f"; Holm keeps each study's family-wise error at or below {stats.alpha_of(CONFIDENCE):.0%}, each draw's own "
      f"interval is at {CONFIDENCE:.0%}")

# %% [markdown]
# ## 1. The runs
#
# The main study runs as one sweep (`dcatkit.sweep.run_studies`, `data_seeds` as an axis: the
# frozen sources of every draw first, then every target); the controls and the curve through
# `dcatkit.studies.run_controls` (`sweep.run_grid` with `studies.study_source_task` /
# `study_task`). Finished runs are stored under `out_dir/06_when_transfer_helps/` and read back
# on a re-run. `studies.tidy_studies` puts every run in one table (`size`: recordings in the main
# study, labels in the controls; `value`: the metric the study is read on). With `run=False`
# nothing is trained: the table is read from `notebooks/results/06_runs.csv`, written by the last
# `make notebooks`.

# %%
t_all = time.perf_counter()
if run:
    main_runs = run_studies(out / "sweep", main, lams=[lam], seeds=seeds, data_seeds=data_seeds, workers=workers,
                            device=device, redo=redo, progress=False, data_options=sim_opts, source_seed=seed,
                            preset=preset, epochs_source=source_epochs, epochs_target=epochs)
    control_runs = studies.run_controls(out / "controls", controls, seeds=seeds, draws=data_seeds,
                                         n_samples=control_size, lam=lam, epochs_source=source_epochs,
                                         epochs_target=epochs, workers=workers, device=device, redo=redo)
    runs = studies.tidy_studies(main_runs, control_runs, kinds={**{c["study"]: c["kind"] for c in controls},
                                                                RECIPE: "recipe"})
    minutes = (time.perf_counter() - t_all) / 60
    runs.to_csv(out / "06_runs.csv", index=False)
    if os.environ.get("DCATKIT_FIGURES_DIR"):    # `make notebooks` only: refresh the committed results
        committed_csv.parent.mkdir(parents=True, exist_ok=True)
        runs.to_csv(committed_csv, index=False)
    print(f"{len(runs)} target runs; this execution took {minutes:.1f} min "       # workers=0: no worker process
          + (("in this process" if workers == 0 else f"with {workers} worker{'s' if workers != 1 else ''}")
             if workers is not None else "with one worker per core" if not torch.cuda.is_available()
             else "with workers per GPU chosen from each grid's run memory estimate (dcatkit.runner.default_workers)")
          + " (runs finished earlier are read back, not retrained); the runs' own time "
          f"{runs.wall_s.sum() / 60:.1f} core-min")
    print("wrote", paths.shown(out / "06_runs.csv"), *([paths.shown(committed_csv)] if os.environ.get(
        "DCATKIT_FIGURES_DIR") else []))
else:
    runs = pd.read_csv(committed_csv)
    print(f"run=False: {len(runs)} runs read from {paths.shown(committed_csv)}; nothing trained")
    asked = (data_seeds, list(seeds))
    data_seeds, seeds = sorted(runs.data_seed.unique().tolist()), sorted(runs.seed.unique().tolist())
    if (data_seeds, seeds) != asked:      # the text below describes the runs read, not the parameters
        print(f"  they cover data draws {data_seeds} x seeds {seeds}, not the parameters' {asked[0]} x {asked[1]}")
for name, g in runs.groupby("study", sort=False):   # a study's sizes can have their own sources: F1 per size
    per_size = g.groupby("size").source_f1.mean()
    src = (f"{per_size.iloc[0]:.3f}" if per_size.round(3).nunique() == 1 else
           ", ".join(f"{v:.3f} at {studies.size_label(n, g.unit.iloc[0])}" for n, v in per_size.items()))
    print(f"  {name}: {len(g)} runs, source test F1 {src} (mean over draws)")
cpus = runs["env_cpu"].dropna() if "env_cpu" in runs else pd.Series(dtype=object)   # the machine of each run
print("machine that trained each run (env_cpu): "
      + ("; ".join(f"{c} ({n_of(k, 'run')})" for c, k in cpus.value_counts().items())
         + (f"; not recorded by {n_of(len(runs) - len(cpus), 'run')}" if len(cpus) < len(runs) else "")
         if len(cpus) else "not recorded by these runs"))
# fair rivals: each gridded method's lambda chosen per draw and seed on validation F1 (the grid becomes a study)
for name in (MAIN, POSITIVE):
    if name in set(runs.study) and (runs[runs.study == name].method != "none").any():
        runs = studies.with_tuned(runs, name, tune_lams, keep=[("dcat", lam)])
chosen = studies.lam_choices(runs)
print("\nλ chosen on validation F1 (runs per λ):")
print(chosen.to_string(index=False))

# %% [markdown]
# ## 2. Pooled verdicts and their draws
#
# `studies.pooled_verdicts` pairs every run with its same-draw, same-seed baseline and pools the
# draws (`stats.summarise_draws`, Holm within each study); `studies.verdict_table` prints each
# pooled verdict beside its per-draw results: the mean difference on each draw with the number of
# seeds on which the method won / lost against its baseline, and the spread (sd) of the draw
# means. One table per family (study), headed by the number of cells in the family; in "(seeds +/-)" a
# seed where the method and its baseline score the same counts in neither. A call needs the *adjusted* interval to
# exclude 0; a draw that looks clear alone is not a claim. The runs of the tuning grids
# (`…, every λ`) are families of their own, shown in sections 3 and 5.

# %%
pooled, per_draw = studies.pooled_verdicts(runs)
report.write_results(pooled, out, "pooled", params=dict(grid=grid, data_seeds=data_seeds, seeds=seeds, lam=lam,
                                                        tune_lams=tune_lams))
on_grid = pooled.kind.str.endswith(studies.GRID_KIND)
verdicts = pooled[~on_grid]


def show_families(rows):
    """Print the verdict table of `rows`, one block per study (= Holm family)."""
    table = studies.verdict_table(rows, per_draw)
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        for name, t in table.groupby("study", sort=False):
            tested = [f for f in t.family if f != "untested"]      # no family: every cell untested
            print(f"{name}: " + (f"Holm family of {tested[0]}" if tested else "untested (no cell has the draws and "
                                 "seeds a test needs; no interval, no call)"))
            print(t.drop(columns=["study", "metric", "family"]).to_string(index=False), end="\n\n")


show_families(verdicts)
note = stats.family_note(verdicts[verdicts.method != "none"])
print(note + "; one family per study" if note else "no cell was tested: nothing is claimed")
fig = plots.pooled_intervals(verdicts, per_draw, xlabel="Δ to the same-seed baseline (macro-F1; negative "
                             "control: macro recall)")
fig.suptitle(f"Pooled over {len(data_seeds)} data draws x {len(seeds)} seeds: Holm-adjusted intervals "
             "(t on the draw means)", y=1.0, fontsize=10)
plots.save(fig, fig_dir, "06_verdicts")
plt.show()

# %% [markdown]
# ## 3. (a) The main study: video → IMU with every label
#
# Mean ± std over draws × seeds of the target's test macro-F1 against the number of simulated
# recordings (70% of them for training), for
# the baseline, D-CAT at the paper's λ and D-CAT with λ chosen on validation F1; the dashed line
# is the IMU ceiling (an IMU model trained on more recordings, read from
# `benchmarks/headroom_runs.csv` by `headroom.read_headroom`; the line under the figure gives how
# many): the room a transfer method could use. Below the figure: every λ of the grid, as a family of
# its own (description of what the tuning chose from).

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
if len(ceiling):
    print(f"{target} ceiling ({split}): macro-F1 {ceiling.f1_mean.iloc[0]:.3f} ± {ceiling.f1_std.iloc[0]:.3f} over "
          f"{ceiling.n_seeds.iloc[0]} seeds, {ceiling.n_samples.iloc[0]:,} recordings simulated")


def chosen_of(r):
    c = chosen[(chosen.study == r.study) & (chosen.method == r.method) & (chosen["size"] == r.size)]
    return f" (λ chosen per draw and seed: {c.chosen.iloc[0]})" if len(c) else ""


m = main_rows[main_rows.method != "none"]
lines = [f"- **{studies.method_label(r.method, r.lam, lam)}** at {r.size} recordings: baseline {r.baseline_mean:.3f}, "
         f"method {r.paired_mean:.3f}; ΔF1 {explore.interval_text(r)} → **{r.call}** "
         f"(draw means {r.draw_means}){chosen_of(r)}" for r in m.itertuples()]
room = (f" The ceiling is {ceiling.f1_mean.iloc[0]:.3f}: the baseline leaves "
        f"{ceiling.f1_mean.iloc[0] - main_rows[main_rows.method == 'none'].sort_values('size')['mean'].iloc[-1]:.3f} "
        f"of room at the largest size." if len(ceiling) else "")
display(Markdown("\n".join(lines) + "\n\n" + room))
show_families(pooled[pooled.kind == "main" + studies.GRID_KIND])

# %% [markdown]
# ## 4. (b) The negative control: read on macro recall
#
# The target's IMU comes from an independent draw: it knows nothing about the labels, whatever the
# source knows. Every method's expected macro recall is chance, 1 over the number of classes
# (printed below), so the expected paired difference is 0 by construction: a "helps" or "hurts" here would be
# a false call (Holm keeps the chance of one in a family at or below the family-wise level the setup
# cell's "statistics" line prints).

# %%
neg = pooled[(pooled.kind == "negative") & (pooled.method != "none")]
base_neg = pooled[(pooled.kind == "negative") & (pooled.method == "none")]
if len(neg):
    false_calls = int(neg.call.isin(["helps", "hurts"]).sum())
    n_tested = int(np.isfinite(neg.family_size).sum())     # an untested cell can make no call, false or not
    display(Markdown(f"Baseline macro recall {base_neg['mean'].iloc[0]:.3f} (chance is 1 / {len(CLASSES)} classes = "
                     f"{1 / len(CLASSES):.3f}); "
                     + "; ".join(f"{r.method}: Δrecall {explore.interval_text(r)} → {r.call}"
                                 for r in neg.itertuples())
                     + (f". **{n_of(false_calls, 'false call').capitalize()}** in {n_of(len(neg), 'cell')}."
                        if n_tested == len(neg) else
                        f". **{n_of(false_calls, 'false call').capitalize()}** in the "
                        f"{n_of(n_tested, 'tested cell')} of {len(neg)}." if n_tested else
                        f". **The negative control was not tested** ({', '.join(sorted(set(neg.call)))}): it "
                        "cannot show whether the statistics make false calls.")))
else:
    print("negative control not run (negative_methods holds only the baseline)")

# %% [markdown]
# ## 5. (c) The positive control and the gradient scale
#
# A teacher of the *same* sensor without its noise (noise-free IMU, trained on every label; its
# test F1 is printed below), few labels, and every other
# training recording as an unlabeled pair: the transfer term sees the teacher on all pairs, while
# cross-entropy sees only the labels. A method should be able to help here; where one shows no
# help, that is a finding to explain (its pull, the teacher, the draws) before reading its result
# anywhere else. MCMA on the unlabeled pairs keeps the pairs the teacher is confident about
# (`unlabeled_mask="confidence"`). Each method runs at every λ of `tune_lams`; its verdict is its
# tuned cell (λ chosen on validation F1), D-CAT's also at the paper's λ.
#
# **How hard does each term pull?** `studies.gradient_scale` (stored as `grad_ratio_init` with
# every method run of (b)–(d); the sweep of (a) and (e) does not measure it) measures, at the
# start of training, the norm of the gradient of $\lambda L_{transfer}$ against that of $L_{CE}$
# with respect to the target's weights. A ratio below 1 means cross-entropy's gradient is the larger
# at the start; whether the transfer term matters is what the calls beside it say.
# It is measured at the start only; as cross-entropy falls during training the balance can shift.
# The table below gives it per method and λ, with the transfer objective at the first and last
# epoch and the fraction of unlabeled pairs MCMA kept. With few draws (the setup cell's "statistics"
# line) a gain on every seed of every draw can still miss a pooled call; `benchmarks/study_draws.py`
# reruns this study with more draws (its measured result: `benchmarks/RESULTS.md`).

# %%
grid_runs = runs[runs.kind == "positive" + studies.GRID_KIND]
if len(grid_runs):
    diag = grid_runs[grid_runs.method != "none"].groupby(["method", "lam"]).agg(
        grad_ratio=("grad_ratio_init", "mean"), objective_first=("objective_first", "mean"),
        objective_last=("objective_last", "mean"), kept=("mask_frac_unlabeled", "mean")).reset_index()
    print(diag.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    pos_all = runs[runs.kind == "positive"]
    prow = pooled[(pooled.kind == "positive") & (pooled.method != "none")]
    text = [f"Teacher (noise-free IMU) test F1 {pos_all.source_f1.mean():.3f}; the noisy IMU's baseline with "
            + ", ".join(f"{studies.size_label(s, 'labels')} {v:.3f}" for s, v in
                        pooled[(pooled.kind == "positive") & (pooled.method == "none")][["size", "mean"]]
                        .itertuples(index=False)) + "."]
    val = sorted(pos_all["n_val_recordings"].dropna().astype(int).unique()) if "n_val_recordings" in pos_all else []
    if val:     # what every best epoch and tuned λ of (c) was chosen on (older runs did not record it)
        text[0] += f" Every best epoch and tuned λ here was chosen on {and_join(val)} labelled validation recordings."
    for r in prow.itertuples():
        g = diag[(diag.method == r.method) & (diag.lam == r.lam)]
        how = (f"; its gradient is {g.grad_ratio.iloc[0]:.1%} of cross-entropy's at the start, its objective went "
               f"{g.objective_first.iloc[0]:.3f} → {g.objective_last.iloc[0]:.3f}" if len(g) else chosen_of(r))
        text.append(f"- **{studies.method_label(r.method, r.lam, lam)}**, {studies.size_label(r.size, 'labels')}: "
                    f"ΔF1 {explore.interval_text(r)} → **{r.call}**{how}.")
    display(Markdown("\n".join(text)))
    show_families(pooled[pooled.kind == "positive" + studies.GRID_KIND])
else:
    print("positive control not run")

# %% [markdown]
# ## 6. (d) The unlabeled-pairs curve and (e) the paper's recipe
#
# Video → IMU with `curve_labels` labels among the training recordings of each draw, the rest
# unlabeled pairs; the video source is trained on every training label (`curve_source_labels =
# "all"`: a source model that was trained elsewhere, as in the paper) or on the same few
# (`"same"`: the user's situation when no sensor has more labels). Mean ± std over draws × seeds.
# The curve runs each method at λ = `lam` only (the CPU budget): untuned, as in (a) before its
# tuned cells. `benchmarks/study_draws.py --study curve` tunes D-CAT, KD and contrastive at 20
# labels over more draws, with the whole and with a scarce validation part (`benchmarks/RESULTS.md`,
# "Cross-modal curve, tuned").
# In the figure, compare each method's line with the baseline's at each label count; the bars are
# the spread over draws × seeds, unpaired, so overlapping or separate bars settle nothing: the
# calls in section 2 (paired, pooled over draws) decide, and the sentence under the figure repeats
# them.
# Then (e): the same question as (a) at its smallest size, with the target trained by the paper's
# Table I recipe instead of the kit's, on the same draws and seeds: a comparison of two recipes,
# since (e)'s target also has the larger encoder and (e) its own frozen source (the frozen source F1
# of each is printed below).

# %%
cur = pooled[pooled.kind == "curve"].assign(**{"training labels": lambda d: d["size"]})
if len(cur):
    fig = plots.transfer_curves(cur, x="training labels", col="study")
    fig.suptitle(f"{control_size} recordings per draw; the unlabeled pairs are the rest of the training split",
                 y=1.03, fontsize=10)
    plots.save(fig, fig_dir, "06_f1_vs_labels")
    plt.show()
    display(Markdown("; ".join(f"{r.method} with {r.size} labels: ΔF1 {explore.interval_text(r)} → {r.call}"
                               for r in cur[cur.method != "none"].itertuples())
                     + f" (video source test F1 {runs[runs.kind == 'curve'].source_f1.mean():.3f})."))
rec = pooled[(pooled.kind == "recipe") & (pooled.method != "none")]
kit = pooled[(pooled.kind == "main") & (pooled.method == "dcat") & (pooled.lam == lam) & (pooled["size"] == min(sizes))]
if len(rec):
    display(Markdown("\n".join(
        f"- **{name}** at {r.size} recordings: baseline F1 {r.baseline_mean:.3f}, D-CAT (λ = {lam:g}) "
        f"{r.paired_mean:.3f}; "
        f"ΔF1 {explore.interval_text(r)} → **{r.call}** ("
        f"{f'Holm family of {int(r.family_size)}; ' if pd.notna(r.family_size) else ''}draw means "
        f"{r.draw_means}); frozen source F1 "
        f"{runs[(runs.study == r.study) & (runs['size'] == r.size)].source_f1.mean():.3f}"
        for name, q in (("Table I recipe (e)", rec), ("kit recipe (a)", kit)) for r in q.itertuples())))
else:
    display(Markdown("(e) is not in this run: `-p paper_recipe True` adds video → IMU at the smallest size with the "
                     "paper's Table I target recipe (`preset='uestc-target'`)."))

# %% [markdown]
# ## 7. Explore the results
#
# Pick a study, a method and a size: the explorer (`dcatkit.explore.results_explorer`) shows every
# run of the method and of its baseline per draw, each draw's paired difference with its own
# sign-flip interval (at the level the setup cell's "statistics" line prints), and the pooled
# difference with its Holm-adjusted interval. It reads the
# table only, so it works on a fresh clone with `-p run False` (the committed
# `notebooks/results/06_runs.csv`), in JupyterLab; the static figure below it shows the explorer's first
# selection (the first study, method and size), for readers without a live kernel.

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
WORDS = ("helps", "hurts", "no evidence", "too few seeds", "too few draws")
SMALL_PULL = 0.1    # a gradient ratio at initialisation below this is what the sentence below calls a small pull
ALPHA = stats.alpha_of(pooled.confidence.iloc[0])     # the family-wise level of every verdict of this run


def calls_of(kind):
    r = pooled[(pooled.kind == kind) & (pooled.method != "none")]
    return {c: [f"{studies.method_label(x.method, x.lam, lam)} {'with' if x.unit == 'labels' else 'at'} "
                f"{studies.size_label(x.size, x.unit)} ({explore.interval_text(x)})"
                for x in r[r.call == c].itertuples()] for c in WORDS}


def said(kind, what):
    c = calls_of(kind)
    parts = [f"{word[:1].upper() + word[1:]}: {'; '.join(c[word])}" for word in WORDS if c[word]]
    return f"- **{what}** — " + (". ".join(parts) if parts else "not run") + "."


def untested(kind):
    """The calls of a study none of whose cells was tested ("too few draws"), else ""."""
    r = pooled[(pooled.kind == kind) & (pooled.method != "none")]
    return "" if np.isfinite(r.family_size).any() else ", ".join(sorted(set(r.call)))


text = [f"Pooled over {len(data_seeds)} data draws x {len(seeds)} seeds, Holm within each study; a method "
        f"marked *(tuned)* has its λ chosen on validation F1 from {list(tune_lams)}:", "",
        said("main", f"(a) {source} → {target}, every label"), said("negative", "(b) negative control (recall)"),
        said("positive", "(c) positive control"), said("curve", "(d) unlabeled-pairs curve"),
        said("recipe", "(e) Table I target recipe")]
# the stricter reading: every study cell of section 2's tables as ONE family (Holm over all of them)
cells = verdicts[(verdicts.method != "none") & np.isfinite(verdicts.family_size)]
lost_in = {}          # study kind -> its helps that do not stand when every study cell is one family
lost_calls = set()    # (study kind, cell name) of every call, helps or hurts, that does not stand so
if len(cells):
    p_all = np.round(stats.holm(cells.p_value.to_numpy(float)), stats.P_DECIMALS)
    called = cells[cells.call.isin(["helps", "hurts"])]
    keep, lost = [], []     # each call of section 2, with its Holm p over all cells: stands / does not
    for r, pa in zip(cells.itertuples(), p_all):
        if r.call in ("helps", "hurts"):
            (keep if pa <= ALPHA else lost).append(f"{explore.cell_name(r, pooled, lam)} in {r.study.split(' ')[0]} "
                                                   f"({r.call}, Holm p {f'{pa:.3f}' if pa >= 0.001 else '< 0.001'})")
        if r.call in ("helps", "hurts") and not pa <= ALPHA:
            lost_calls.add((r.kind, explore.cell_name(r, pooled, lam)))
        if r.call == "helps" and not pa <= ALPHA:          # read where the helps are named, below
            lost_in.setdefault(r.kind, []).append(explore.cell_name(r, pooled, lam))
    one_family = ("section 2 made no call, so none can be lost" if not len(called) else
                  f"of section 2's {n_of(len(called), 'call')}, " + "; ".join(
                      ([f"{and_join(keep)} {'stands' if len(keep) == 1 else 'stand'}"] if keep else [])
                      + ([f"{and_join(lost)} {'loses its call' if len(lost) == 1 else 'lose their calls'}"]
                         if lost else [])))
    text += ["", f"Read as one family instead, with Holm over all {len(cells)} study cells of section 2 at once "
             f"(a call stands where its Holm p over all of them is at most {ALPHA:g}): {one_family}. The studies "
             "ask separate questions, which is why the kit corrects within each; this line is for a reader who "
             "takes the tables together."]
neg_cells = pooled[(pooled.kind == "negative") & (pooled.method != "none")]
neg_calls = neg_cells[neg_cells.call.isin(["helps", "hurts"])]
if len(neg_cells) and untested("negative"):       # no cell of it has a Holm family
    text += ["", f"The negative control was not tested ({untested('negative')}): this run cannot say whether the "
             "statistics produce false calls."]
elif len(neg_cells):
    text += ["", "The negative control made "
             + ("no false call: the statistics did not produce a call where none can exist." if not len(neg_calls)
                else "1 false call: a call where none can exist; read the other calls with that in mind."
                if len(neg_calls) == 1 else
                f"{len(neg_calls)} false calls: calls where none can exist; read the other calls with that in mind.")]
pos = pooled[(pooled.kind == "positive") & (pooled.method != "none")]
if len(pos):
    helped = sorted({explore.cell_name(r, pooled, lam) for r in pos.itertuples() if r.call == "helps"})
    pos_lost = lost_in.get("positive", [])
    stands = [h for h in helped if h not in pos_lost]      # helps that stand with every study cell as one family
    lose = ("it loses its call" if len(helped) == 1 else "each loses its call") if not stands else \
        f"{and_join(pos_lost)} {'loses its call' if len(pos_lost) == 1 else 'lose their calls'}"
    table_wide = (f" in the study's own family (read with every study cell as one family, {lose})"
                  if pos_lost else "")
    text += ["", "In the positive control "
             + (f"{and_join(helped)} {'helps' if len(helped) == 1 else 'help'}{table_wide}"
                + (": the training loop does let a transfer term help when the source knows what the target "
                   "cannot learn from its few labels." if stands else
                   ": within that family only, a transfer term can help when the source knows what the target "
                   "cannot learn from its few labels.") if helped else
                f"no method was tested ({untested('positive')}): this run cannot show whether a transfer term "
                "can help." if untested("positive") else
                "no method's help is established: either the set-up or the pooled test over "
                f"{len(data_seeds)} draws is too weak to show it.")]
    not_helped = sorted({explore.cell_name(r, pooled, lam=None) for r in pos.itertuples()   # "dcat (λ = 1)":
                         if r.call != "helps"})                                                # its λ said
    if helped and not_helped:
        text[-1] += f" {and_join(not_helped)}: no established help in the same setting."
grid_diag = runs[(runs.kind == "positive" + studies.GRID_KIND) & (runs.method != "none")]
at_lam = grid_diag[(grid_diag.method == "dcat") & (grid_diag.lam == lam)]
video_dcat = runs[(runs.kind == "curve") & (runs.method == "dcat") & (runs.lam == lam)]
if len(at_lam):
    ratio = at_lam.grad_ratio_init.mean()
    kd_at = grid_diag[(grid_diag.method == "kd") & (grid_diag.lam == lam)]
    # the curve's ratio per label count, like with like: (c)'s label count(s) beside the same in (d), the others apart
    video_ratio = video_dcat.groupby("size").grad_ratio_init.mean().dropna()
    same = [f"{x:.1%} at the same {n} labels" for n, x in video_ratio.items() if n in set(at_lam["size"])]
    other = [f"{x:.1%} at {n}" for n, x in video_ratio.items() if n not in set(at_lam["size"])]
    video_text = ("; from the video source of the curve (d), D-CAT's is " + ", ".join(same)
                  + (f" ({', '.join(other)} labels)" if same and other else f"{', '.join(other)} labels" if other
                     else "")
                  if len(video_ratio) else "")
    text += ["", f"**The gradient scale.** In the positive control (c) (noise-free IMU teacher), at the start of "
             f"training D-CAT's gradient at λ = {lam:g} is {ratio:.1%} of cross-entropy's"
             + (f", KD's {kd_at.grad_ratio_init.mean():.0%}" if len(kd_at) else "")
             + video_text
             + f". D-CAT's $L_{{CA}}$ in (c) went {at_lam.objective_first.mean():.3f} → "
             f"{at_lam.objective_last.mean():.3f} (cosine {explore.cosine_of(at_lam.objective_first.mean()):.2f} → "
             f"{explore.cosine_of(at_lam.objective_last.mean()):.2f}). At initialisation D-CAT's ratio in (c) is "
             + ("below" if ratio < SMALL_PULL else "not below")
             + f" {SMALL_PULL:.0%}, the threshold this notebook calls a small pull; what the pull does later in "
             "training is not measured here."]
    # the ratio beside the call of every cell of (c)'s grid: a reader sees whether more pull went with a call
    ratios = grid_diag.groupby(["method", "lam"]).grad_ratio_init.mean()
    grid_calls = pooled[(pooled.kind == "positive" + studies.GRID_KIND) & (pooled.method != "none")]
    per_method = {m: [(r.lam, ratios.get((m, r.lam), float("nan")), r.call) for r in g.sort_values("lam").itertuples()]
                  for m, g in grid_calls.groupby("method", sort=False)}
    text += ["", "In (c)'s grid (its own Holm family), pull and call side by side: " + "; ".join(
        f"{m} " + ", ".join(f"λ = {lm:g}: {rt:.{1 if rt < 0.1 else 0}%} → {c}" for lm, rt, c in cells)
        for m, cells in per_method.items())
        + "."]
    helps = [[c == "helps" for _, _, c in cells] for cells in per_method.values()]   # each method's, by λ
    if not any(map(any, helps)):
        text[-1] += " No cell of the grid was called *helps*, at any pull."
    elif all(map(all, helps)):
        text[-1] += " Every cell of the grid was called *helps*, at every pull."
    elif all(h == sorted(h) for h in helps):      # within each method: no helps, then only helps, as λ grows
        text[-1] += " Within each method, a *helps* came only at a larger λ than every cell without one."
    else:
        text[-1] += (" Within a method, a larger λ did not always go with a *helps*: the ratio measures how hard a "
                     "term pulls, not whether the pull helps.")
main_dcat = pooled[(pooled.kind == "main") & (((pooled.method == "dcat") & (pooled.lam == lam))
                                               | (pooled.method == studies.tuned_label("dcat")))]
dcat_calls = {c: main_dcat[main_dcat.call == c] for c in ("helps", "hurts")}
dcat_main = (f"was not tested ({untested('main')})" if len(main_dcat) and untested("main") else
             f"does not show a pooled gain, at the paper's λ = {lam:g} or with λ chosen on validation F1"
             if not any(len(v) for v in dcat_calls.values()) else
             "; ".join(f"{c} " + and_join((f"at the paper's λ = {lam:g}" if r.method == "dcat" else
                                           "with λ chosen on validation F1")
                                          + f" at {studies.size_label(r.size, r.unit)}" for r in v.itertuples())
                       for c, v in dcat_calls.items() if len(v))
             + (" (section 2's intervals; not when every study cell is read as one family, above)"
                if any(("main", explore.cell_name(r, pooled, lam)) in lost_calls
                       for v in dcat_calls.values() for r in v.itertuples()) else " (section 2's intervals)"))


def grid_cells(rows):
    return and_join(f"{studies.method_label(r.method, r.lam, lam)} at {studies.size_label(r.size, r.unit)} "
                    f"({explore.interval_text(r)})" for r in rows.itertuples())


hurt = pooled[(pooled.kind == "main" + studies.GRID_KIND) & (pooled.call == "hurts")]
more, less = hurt[hurt.lam > lam], hurt[hurt.lam <= lam]       # more pull than the paper's λ, or not
hurt_in_grid = ((f"; in (a)'s grid (its own Holm family), at λ above the paper's, {grid_cells(more)} hurt"
                 if len(more) else "")
                + (f"; in (a)'s grid, at λ no larger than the paper's, {grid_cells(less)} hurt" if len(less) else ""))
helped_in = {k: sorted({explore.cell_name(r, pooled, lam) for r in
                        pooled[(pooled.kind == k) & (pooled.call == "helps")].itertuples()})
             for k in ("positive", "curve")}
where = []
if (pooled.kind == "positive").any():
    setting = explore.labels_and_pairs(runs, "positive")
    where.append(f"with a teacher of the same sensor, {setting} (c), "
                 + (explore.helped_clause(helped_in["positive"], lost_in.get("positive", ()))  # only the lost qualified
                    if helped_in["positive"] else
                    f"no method was tested ({untested('positive')})" if untested("positive") else
                    "no method's help was established"))
if (pooled.kind == "curve").any():
    where.append(f"with the video source, {explore.labels_and_pairs(runs, 'curve')} (d), the cross-modal case, "
                 + (f"{and_join(helped_in['curve'])} helped" if helped_in["curve"] else
                    f"no method was tested ({untested('curve')})" if untested("curve") else
                    f"no method's help was established over {len(data_seeds)} draws (see its intervals in section 6)"))
text += ["", "**What this run shows about when transfer helps.** "
         + (f"With every label (a), D-CAT {dcat_main}{hurt_in_grid}." if len(main_dcat) else
            f"D-CAT was not run in (a){hurt_in_grid}.")
         + (" " + (lambda w: w[:1].upper() + w[1:])("; ".join(where)) + "." if where else "")
         + " Every statement here is pooled over draws: one draw can show a gain the next does not. The paper's gains "
         "are on real data with its models, which this simulator does not stand in for."]
display(Markdown("\n".join(text)))

# %% [markdown]
# ## Summary
#
# - A verdict here pools data draws (a *t* on the draw means) and controls the family-wise error
#   with Holm within each study; per-draw results are shown beside it as description. One draw's
#   clear interval is not a claim.
# - On the CPU, a run's numbers depend on the machine: the same code and seeds gave other runs on
#   another kind of CPU, and a call from few draws near its interval's edge can move with them or
#   with a change of code (`benchmarks/RESULTS.md`, "A third VM" and "A fourth VM", compare this
#   notebook's calls across machines and D-CAT's code).
#   More draws (`-p draws 5`) narrow the interval; a 5-draw call has survived a change of machine
#   once (`benchmarks/RESULTS.md`, "Run to run"). The runs table's `env_cpu` names the machine
#   that trained each run where the run recorded it (section 1 prints them).
# - Rivals are compared fairly only when each has its λ chosen the same way: on validation F1,
#   from the same grid, with the same budget; the test split never takes part in the choice.
# - The negative control can catch statistics or a set-up that make false calls: with few cells a
#   clean result is weak evidence on its own (`benchmarks/RESULTS.md`, "Statistics: are the verdicts
#   calibrated?", measures the rate over many simulated studies); the positive control says whether
#   the training loop lets a transfer term help at all.
# - Unlabeled paired recordings are the case a transfer term is made for: the target's labels are
#   few, the source's knowledge reaches every pair. The positive control (c) asks whether a transfer
#   term can help there at all (its teacher is the same sensor without noise); whether a teacher of
#   another sensor does is the curve's question (d). Section 8 says what this run found for each
#   (and `benchmarks/RESULTS.md`, "Cross-modal curve, tuned", for (d) over more draws).
# - The gradient ratio measures how hard a transfer term pulls against cross-entropy at a given λ:
#   measure it before comparing methods at one shared λ. It measures pull, not help: section 8
#   prints it beside each call of (c)'s grid.
#
# ## Try this
#
# 1. **A finer tuning grid.** `-y "tune_lams: [1, 3, 10, 30, 100]"`: each tuned method gets five
#    runs per draw and seed (one per λ) instead of one per λ of `tune_lams` as the parameters cell
#    sets it. *Why:*
#    compare the chosen λs (the table after the runs) and the tuned verdicts with the default grid's:
#    does a finer grid change the call?
# 2. **One draw only.** `-p draws 1`: expect every pooled cell to read "too few draws" (its seeds
#    are enough, as many as the "statistics" line says a call needs; its one draw is not), while the
#    per-draw columns still show the draw's mean and seeds won / lost, and the explorer its sign-flip
#    interval. *Why:* the pooled test is a *t* on the draw means, and one mean has no spread to test
#    against: a claim must hold across draws.
# 3. **A source that knows as little as the target.** `-p curve_source_labels same`: the video
#    source is trained on the same few labels; compare its F1 and the curve's differences with
#    this run's. *Why:* a transfer method passes on only what the source knows.
# 4. **The full grid.** `-p grid full` on a GPU (`device="cuda"`): every method of (a) and (c) tuned
#    over `tune_lams`, n = 2000, more controls. Compare the families: more cells means stricter Holm levels.
# 5. **Validation as scarce as the labels.** `-p val_labels 20`: in (c) and (d) every best epoch
#    and every tuned λ is chosen on 20 validation recordings instead of all of them. *Why:* a user
#    with 20 labels has no larger validation part; compare the baselines and the tuned calls with
#    this run's (`benchmarks/RESULTS.md`, "scarce validation", did it for (c) over more draws).
# 6. **Controls built from any data.** In a terminal: `python -m dcatkit sweep --controls
#    --sizes 300 --seeds 0-9 --data-seeds 0-2` (for real data add `--dataset uestc --root ...` and
#    drop `--sizes`, which sets the simulator's size only).
#    Beside the grid it runs a negative control (the target's inputs shuffled, read on recall above chance)
#    and a positive control (a copy of the target's sensor, trained on every label, teaching a
#    target with a tenth of the labels; `dcatkit.data.controls`). *Why:* (b) and (c) here exist
#    only in the simulator; a study on your data needs controls built from that data. Compare its
#    positive control's D-CAT at λ = 1 with (c)'s: the teachers differ (the same noisy sensor vs a
#    noise-free one), and what D-CAT aligns is the teacher's K^T V.
#
# Back to the start: [01 — preprocessing](01_preprocessing.ipynb); the statistics in depth:
# the README's "Statistics: what a verdict promises".
