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
# **Learning goals.** After this notebook you can
# 1. read an ablation over λ (the weight of $L_{CA}$ in Eq. 19) and over MCMA on / off;
# 2. say why a difference must be *paired* with the same-seed baseline and come with an interval;
# 3. compare this kit's result with the paper's Table IV (Sec. VI) without comparing unlike things.
#
# Terms (paired difference, sign-flip test, family and Holm, seed): [GLOSSARY.md](GLOSSARY.md).
#
# **What the paper reports.** Table IV varies λ over {0.01, 0.1, 1, 10} on its **OOD**
# (subject-disjoint) split, one run per cell. Its text reads the table as "best at around λ = 1
# —with little variation between 0.01 and 1—apart from UESTC-IMU" and worse at λ = 10. Read by F1, row by row, the best λ
# changes (1 in some rows, 0.01 or 0.1 in others), some rows move a lot below λ = 1 (UESTC image),
# and λ = 10 is below λ = 1 in every row. With one run per cell none of these readings has an
# interval behind it: one run cannot tell a λ's effect from seed-to-seed chance. **What runs here.** The grid λ ∈ `lams` × MCMA on/off × `seeds`,
# on `split` (default `"id"`, in-distribution: *not* the paper's OOD setting; `-p split ood` for
# that), against the baseline trained with the same seeds. The data (`data_seed`) and the frozen
# source (trained once with `seed`) are shared by every run, so the spread over seeds is the
# target's (initial weights, batch order).
#
# Every reading here comes from the *paired difference* to the same-seed baseline: an exact sign-flip
# test per cell, Holm's correction over all the λ × MCMA cells printed together (the family), and each
# interval taken at the level Holm tested its cell at (`dcatkit.stats.summarise`). On one data draw
# with one frozen source the verdict says where each interval lies ("interval above 0", "below 0",
# "holds 0"; "too few seeds" below `dcatkit.stats.MIN_SEEDS` seeds: `dcatkit.stats.verdict(..., one_draw=True)`): it
# describes this draw. The words "helps" / "hurts" are kept for notebook 06, which pools draws.
#
# Cost: `len(lams) × len(mcma_options) × len(seeds)` transfer runs plus `len(seeds)` baselines and
# one frozen source, through `dcatkit.sweep.run_studies` (resumable: a re-run reads finished runs
# back); below, the time this execution took (near 0 when every run was read back) and the runs'
# own training time. The parameters a learner changes are
# `lams`, `seeds` and `split`.
#
# Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
# `cache_dir`, `source`, `target`, `lams`, `mcma_options`, `seeds`, `method`, `workers`, `preset`,
# `epochs`, `source_epochs`, `seed` (the source's), `device`, `resume`, `redo`, `out_dir`, `figures_dir`,
# `fold` (the fold of a cross-validation `split`).

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

# --- the grid -----------------------------------------------------------------------
source = "video"
target = "imu"
lams = [0.01, 0.1, 1.0, 10.0, 100.0]   # lambdas of Eq. (19), each non-negative (paper Table IV, and 100)
mcma_options = [True, False]     # masked alignment (Eq. 17) on / off (Eq. 7)
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]    # target seeds (baseline and methods share each seed's init)
method = "dcat"         # the transfer method whose lambda is varied (dcatkit.objectives)
workers = None          # parallel runs; None: one per CPU core (CUDA: as many as its memory and cores fit); 0: here

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
from IPython.display import Markdown, display

from dcatkit import paths, plots, report, stats
from dcatkit.explore import and_join, n_of
from dcatkit.runs import clear_progress, results_stem
from dcatkit.sweep import run_studies

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, fold=fold, source=source, target=target,
                             lams=lams, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             seeds=seeds, device=device, methods=[method], resume=resume, redo=redo)
if not isinstance(mcma_options, (list, tuple)) or not mcma_options or any(not isinstance(m, bool) for m in mcma_options):
    raise ValueError(f"mcma_options must be a non-empty list of True/False, e.g. [True, False] (papermill: "
                     f"-y 'mcma_options: [true]'), got {mcma_options!r} ({type(mcma_options).__name__})")
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
out = paths.out_path(out_dir, "04_lambda_ablation")
fig_dir = paths.figures_path(figures_dir, out_dir)
sns.set_theme(style="whitegrid")
n_runs = len(lams) * len(mcma_options) * len(seeds)
print(f"dataset={dataset!r} split={checked['split_name']!r} {source} -> {target}, method={method!r}, lams={lams}, "
      f"mcma={mcma_options}, seeds={seeds}, preset={preset!r}, epochs={epochs}: {n_runs} transfer runs + "
      f"{len(seeds)} baselines")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. The grid
#
# For every seed: the baseline (Eq. 18), then for every λ and MCMA setting a target trained with
#
# $$\text{Loss} = L_{CE} + \lambda\, L_{CA}, \qquad L_{CA} = \mathbb{1}(x)\cdot\left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (19),\,(17)$$
#
# (A the frozen source, B the target; with MCMA $\mathbb{1}(x) = 1$ where the source classifies $x$ correctly,
# else 0; $\mathbb{1}(x) \equiv 1$ without MCMA, i.e. Eq. 7). The sweep trains the frozen source first
# (data seed `data_seed`, training seed `seed`), then the targets in parallel; one row per run is kept.

# %%
t_all = time.perf_counter()
sim_opts = {k: v for k, v in data_opts.items() if k != "n_samples"} or None   # the size comes from the grid
where = dict(dataset=dataset, root=None if checked["data_root"] is None else str(checked["data_root"]),
             split=checked["split"], source=source, target=target, data_options=sim_opts, data_seed=data_seed,
             source_seed=seed, preset=preset, epochs_source=source_epochs, epochs_target=epochs)
size = [n_samples] if dataset == "synthetic" else [None]
studies = [dict(study=f"mcma={m}", methods=(["none", method] if i == 0 else [method]), sizes=size, mcma=m,
                **({"folds": [fold]} if checked["cv"] else {}))   # a cross-validation split: fold `fold`
           for i, m in enumerate(mcma_options)]      # the baseline once: it has no MCMA setting
runs = run_studies(out / "sweep", studies, lams=lams, seeds=seeds, workers=workers, device=device, redo=redo,
                   **where).drop(columns="study")
clear_progress()                    # the sweep's progress bars did their job: the saved notebook keeps the summary
print(f"{len(runs)} runs; this execution took {(time.perf_counter() - t_all) / 60:.1f} min (runs finished earlier are "
      f"read back); the runs' own training time: {runs.wall_s.sum() / 60:.1f} min")
print(f"frozen {source} source: test F1 {runs.source_f1.iloc[0]:.3f} (the sweep's own training of the source; "
      "notebooks 02/03 train theirs in their own processes, so their numbers need not be the same)")
names = {"none": "baseline"}
grid = runs.assign(variant=[names.get(r.method, f"{r.method} ({'MCMA' if r.mcma else 'no MCMA'})")
                            for r in runs.itertuples()], modality=target, dataset=dataset,
                   mcma=runs.mcma.astype(object).where(runs.method != "none", None))   # the baseline has none
params = dict(dataset=dataset, split=checked["split_name"], source=source, target=target, lams=lams,
              mcma_options=mcma_options, seeds=seeds, method=method, preset=preset, epochs=epochs,
              source_epochs=source_epochs, source_seed=seed, data_seed=data_seed, data=data_opts)
name = f"{dataset}-{checked['split_name']}-{source}-{target}"     # + the hash of params: one file per setting
files = report.write_results(grid.drop(columns=["data_options", "options"], errors="ignore"), out,
                             results_stem(f"ablation-{name}", params), params=params, device=device)
print("wrote", ", ".join(paths.shown(p) for p in files.values()))

# %% [markdown]
# ## 2. Table IV layout
#
# Mean ± standard deviation over seeds (columns in the paper's order: accuracy, recall, precision,
# F1). The paper's Table IV has one run per cell; here every cell is repeated over `seeds`.

# %%
table4 = report.ablation_table(grid)
print(table4.to_string())
table4.to_csv(out / f"{results_stem(f'table4-{name}', params)}.csv")

# %% [markdown]
# ## 3. F1 against λ
#
# Lines: mean over seeds; bands: ± 1 std; dots: single seeds. The dashed line is the baseline's
# mean F1 (its band ± 1 std). Look at where a line leaves the baseline's band, and at how widely the
# dots of one λ spread. The bands are unpaired: they hold the seed-to-seed spread that a seed's
# baseline and its transfer run share, so overlapping or separate bands settle nothing, whichever
# you see; section 4's paired differences do.

# %%
fig = plots.lambda_curve(grid, "f1")
plots.save(fig, fig_dir, "04_lambda_f1")
plt.show()

# %% [markdown]
# ## 4. Paired differences to the baseline, and the verdict
#
# For each λ and MCMA setting (`dcatkit.stats.summarise`): `mean` and `baseline_mean`, the
# transfer runs' and the baselines' mean F1 over seeds; `diff_mean`, the mean over seeds of
# (F1 − the same seed's baseline F1); its Holm-adjusted sign-flip interval (`ci_low`, `ci_high`);
# the sign-flip p-value (`p_value`: per cell, not corrected; the reading uses the Holm-adjusted
# interval, so a small `p_value` can sit beside "interval holds 0"); `n_better` / `n_worse`, on how
# many seeds it beat / lost to its baseline (a tie counts in neither); `n_pairs`, the seeds paired. The verdict along λ is
# computed from those intervals (`dcatkit.stats.verdict`, which names the family and the method):
# "too few seeds" below `stats.MIN_SEEDS` seeds, where nothing is claimed.

# %%
summary = stats.summarise(grid, treatment=("method", "lam", "mcma"), context=("n_samples",))
cols = ["mcma", "lam", "mean", "baseline_mean", "diff_mean", "ci_low", "ci_high", "p_value", "n_better", "n_worse",
        "n_pairs"]
print(stats.interval_table(summary[summary.method != "none"], cols).to_string(index=False))  # bounds as the call reads them
report.write_results(summary, out, results_stem(f"paired-{name}", params), params=params, device=device)
print(f"One data draw (data seed {data_seed}) and one frozen source: these intervals describe this draw; "
      "notebook 06 pools draws before it claims anything.")
for m in mcma_options:
    print(f"{method} ({'MCMA' if m else 'no MCMA'}) against the baseline, on this draw: "
          + stats.verdict(summary, over="lam", method=method, mcma=m, one_draw=True))

# %% [markdown]
# For each variant, the λ with the best mean F1 (descriptive only: picking the best of the `lams` on the
# test set flatters it; the intervals above are the evidence).

# %%
best = report.best_lambda(grid, "f1")
print(best.to_string(float_format=lambda v: f"{v:.3f}"))

# %% [markdown]
# What this draw shows, in one sentence written from the table of section 4 (the cell reads it; nothing in
# it is typed).

# %%
cells = summary[summary.method != "none"]
tested = cells[cells.family_size.notna()]                 # too few seeds: no interval
clear = tested[(tested.ci_low > 0) | (tested.ci_high < 0)]
n_untested = len(cells) - len(tested)
shown = and_join(f"{'MCMA' if r.mcma else 'no MCMA'} at λ = {r.lam:g}: "
                 f"{stats.format_interval(r.diff_mean, r.ci_low, r.ci_high, 3)}" for r in clear.itertuples())
if len(tested):
    found = (f"{len(clear) or 'none'} of the {n_of(len(tested), 'tested interval')} "
             f"{'excludes' if len(clear) <= 1 else 'exclude'} 0 on this data draw"
             + (f" ({shown}). " if len(clear) else ". "))
else:
    found = "no setting was tested, so there is no interval to read. "
display(Markdown(
    f"On `{checked['split_name']}`, over {n_of(len(seeds), 'seed')}, " + found
    + (f"{n_of(n_untested, 'setting')} had too few seeds to be tested (no interval). " if n_untested else "")
    + "One draw describes; a claim pools draws (notebook 06). The best-λ table is descriptive only. "
    + ("This is the in-distribution split; the paper's Table IV is OOD, so agreement or disagreement with it is "
       "not a replication either way." if checked["split_name"] == "id" else "")))

# %% [markdown]
# ## Summary
#
# - The verdict per λ comes from the paired, Holm-adjusted interval over seeds (at the family-wise
#   level the verdict line prints, so at least that level per cell), not from the best mean; on one
#   data draw it describes that draw, and notebook 06 pools draws before claiming.
# - Read section 4's row at the largest λ of `lams`: whether its interval lies below 0, i.e. whether
#   a large pull costs F1 on this draw, with and without MCMA. Rows of two λ are not compared with
#   each other: no interval is computed for the difference between two λ. Notebook 06 measures how large D-CAT's gradient is against cross-entropy's in its
#   few-label studies (its positive control and its curve), not in this every-label setting.
# - The paper's Table IV is one run per cell on OOD data; this grid is many seeds on `split`.
#
# ## Try this
#
# 1. **The paper's setting.** `-p split ood`: the same grid on held-out subjects. *Expect* lower F1
#    everywhere and wider intervals (fewer, harder test subjects).
# 2. **Fewer seeds.** `-y "seeds: [0, 1, 2]"`: *expect* the verdict "too few seeds": three paired
#    differences cannot give an interval worth reading.
# 3. **Finer λ.** Section 2's table shows between which two λ of the default grid the mean F1 drops
#    most on this draw (a description: whether the drop is more than seed-to-seed chance is section
#    4's question); put a few λ between those two (e.g. `-y "lams: [10, 20, 50, 100]"` if the drop is
#    between 10 and 100). *Expect* a rough location of the drop on this draw, not an exact one: neighbouring λ
#    may differ by less than the seed-to-seed spread, and a finer grid is a larger Holm family.
# 4. **The grid with its controls, over draws.** In a terminal: `python -m dcatkit sweep --controls
#    --lams 0.01 0.1 1 10 100 --sizes 1000 --seeds 0-9 --data-seeds 0-2` (long on a CPU: plan for a
#    GPU or shards). That is this grid with MCMA on (`--no-mcma` runs the other half), with a frozen
#    source per draw and seed instead of this notebook's one. Beside the
#    grid it runs a negative control (the target's inputs shuffled: no λ can move its recall above
#    chance, in expectation) and a positive control (a teacher of the target's own sensor, few labels: transfer
#    should help), and its verdicts pool three draws. *Why:* this notebook describes one draw
#    without controls; a claim about λ needs both.
#
# Next: [05 — confusion analysis](05_confusion_analysis.ipynb) looks inside one D-CAT model.
