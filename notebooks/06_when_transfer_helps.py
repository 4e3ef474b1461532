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
# **D-CAT** (Decoupled Cross-Attention Transfer, Daher, Wang & Mielle) improves a classifier of one
# sensor modality (the *target*, e.g. IMU) with what a classifier of another modality (the *source*,
# e.g. video) has learned — while the target still runs **alone** at inference. Notebooks 03 and 04
# run it on one setting; this notebook asks the question a reader of any transfer paper should ask:
# **does it help, by how much, where — and would any other way of using the source help as much?**
#
# A transfer method can only lift the target up to what the target's own signal carries. So the
# notebook puts every method next to two reference points:
#
# - the **baseline**: the same target model, same seed and data, trained with cross-entropy alone
#   (Eq. 18);
# - the **ceiling**: the target model trained alone on 20× more data (20,000 simulated recordings),
#   an estimate of what the target modality can learn at all (`dcatkit.headroom`).
#
# `ceiling − baseline` is the **headroom**. The simulator (`dcatkit.data.synthetic`) has two regimes:
# `"headroom"` (the default: the IMU *can* tell all eight classes apart but learns it slowly, so there
# is room for transfer) and `"ambiguous"`, the **negative control**, where the IMU cannot tell four
# class pairs apart at all (ceiling ≈ 0.74, baseline already ≈ 0.69 at 2000 recordings): no
# transfer method should help there, and one that "helps" is suspicious.
#
# The methods, all trained with $L = L_{CE} + \lambda\,L_{transfer}$ (Eq. 19) and MCMA (only the
# samples the frozen source classifies correctly count, Eqs. 16–17), from `dcatkit.objectives`:
#
# | method | $L_{transfer}$ per sample | reads from the source |
# |---|---|---|
# | `none` | 0 — the baseline | nothing |
# | `dcat` | $\lVert \overline{K_t^\top V_t} - \overline{K_s^\top V_s} \rVert_F$ (Eq. 7) | keys, values |
# | `kd` | $T^2\,\mathrm{KL}(\mathrm{softmax}(z_s/T)\,\Vert\,\mathrm{softmax}(z_t/T))$ (Hinton et al.) | logits |
# | `fitnet` | $\lVert W p_t + b - p_s \rVert^2$, a learned linear map of pooled attention outputs | pooled output |
# | `contrastive` | InfoNCE between learned projections of $p_t$ and $p_s$ (CLIP-style) | pooled output |
# | `dcat+kd` | the sum of both | keys, values, logits |
#
# **Statistics.** Every claim comes from the *paired difference*: a method's test macro-F1 minus the
# F1 of the baseline trained with the same seed on the same data, over `seeds` (at least 10 for a
# claim), with a 95% bootstrap confidence interval (BCa) and a Wilcoxon signed-rank p-value
# (`dcatkit.stats.summarise`). The verdict is read off the interval (`dcatkit.stats.verdict`):
# **helps** (interval above 0), **hurts** (below 0), **no evidence** (it holds 0), or **too few
# seeds** (fewer than 10 paired seeds: nothing is claimed).
#
# **What the default run covers, and why this much.** The budget is a default run of at most 20
# minutes on a 2-core CPU, so the grid was chosen from measured run costs (one thread per run, 2
# workers, an idle 2-core CPU; a run's first use of a dataset in a worker includes simulating it):
# an IMU target ~2.5 s at 300 recordings and ~9 s at 1000 (any method), a frozen video source
# ~25 s at 300 and ~80 s at 1000 recordings, a video target ~21 s at 300. The default spends its
# time where runs are cheap and the question is sharpest:
#
# 1. **Learning curves**, video → IMU on `split` (ID), at `sizes` = 300 and 1000 recordings, **every
#    method**, in the headroom regime and (fewer methods: `control_methods`) in the negative control;
# 2. **the subject-disjoint split** (OOD), video → IMU at `n_samples` recordings (`other_split_methods`);
# 3. **the other direction**, IMU → video on the OOD split (the paper's OOD claim: even a weaker
#    source helps), at `reverse_size` recordings, D-CAT only (`reverse_methods`): a video target costs
#    2–8× an IMU target.
#
# **Measured: this default took 17 minutes** (230 target runs and 6 sources; the runs' own time was
# 27 core-minutes) with 2 workers on an idle 2-core CPU, inside the 20-minute budget. On the
# project's shared VM with other jobs running it took 43 minutes: the cores, not the grid, set the
# time. Finished runs are read back, so a re-run takes a minute. A shorter run:
# `-y "control_methods: [none, dcat]"`, `-y "reverse_methods: []"` (the IMU → video study is about
# a quarter of the time), or fewer `methods`.
#
# **Data and source are fixed; the target's seed varies.** Every run of a cell uses the same
# simulated dataset and split (`data_seed`) and the same frozen source (trained once with `seed`);
# the 10 `seeds` change the target's initial weights and batch order. One frozen video source per
# seed would cost ~10× more than all the IMU targets together. The intervals therefore say whether a
# method helps *on this dataset with this source*, not across data draws; the OOD split, where
# which subjects are held out matters a lot, is the place where this matters most (see
# `benchmarks/SIMULATOR.md`: OOD baselines vary by ±0.2 F1 across data seeds). Re-run with another
# `data_seed` to check a conclusion.
#
# All runs go through `dcatkit.sweep.run_studies` (parallel workers, one torch thread each;
# resumable: a re-run reads finished runs back and only trains what is missing).
#
# Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
# `cache_dir`, `source`, `target`, `methods`, `sizes`, `regimes`, `control_methods`,
# `other_split_methods`, `reverse_methods`, `reverse_size`, `lam`, `seeds`, `ceiling_file`,
# `workers`, `preset`, `epochs`, `source_epochs`, `seed` (the sources'), `device`, `resume`, `redo`, `out_dir`,
# `figures_dir`.

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

# --- the study ----------------------------------------------------------------
source = "video"        # learning curves: source -> target ...
target = "imu"
methods = ["none", "dcat", "kd", "fitnet", "contrastive", "dcat+kd"]   # ... with every method
sizes = [300, 1000]     # ... at these numbers of simulated recordings (70% of them train)
regimes = ["headroom", "ambiguous"]        # the default simulator, then the negative control
control_methods = ["none", "dcat", "kd"]   # methods run in the regimes after the first
other_split_methods = ["none", "dcat", "kd"]   # source -> target on the other split, n_samples ([] skips)
reverse_methods = ["none", "dcat"]         # target -> source on the OOD split ([] skips)
reverse_size = 300      # recordings for the reverse direction
lam = 1.0               # lambda of Eq. (19), non-negative; the paper uses 1
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]    # target seeds (baseline and methods share each seed's init)
ceiling_file = "benchmarks/headroom_runs.csv"   # stored measure_headroom runs; None: measure here
workers = None          # parallel runs; None: one per CPU core (one per GPU under CUDA); 0: in this process

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
import pandas as pd
import seaborn as sns

from dcatkit import headroom, paths, plots, report, stats
from dcatkit.sweep import run_studies

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             lam=lam, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             seeds=seeds, device=device, n_samples=n_samples, sizes=sizes, methods=methods,
                             regimes=regimes, resume=resume, redo=redo)
for name, ms in {"control_methods": control_methods, "other_split_methods": other_split_methods,
                 "reverse_methods": reverse_methods}.items():
    if ms:
        paths.check_params(dataset=dataset, methods=ms, n_samples=reverse_size)
    if ms and "none" not in ms:
        raise ValueError(f"{name} must include 'none' (the baseline every difference is paired with), got {ms}")
if "none" not in methods:
    raise ValueError(f"methods must include 'none' (the baseline every difference is paired with), got {methods}")
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
sim_opts = {k: v for k, v in data_opts.items() if k != "n_samples"} or None   # sizes come from the grid
other = "ood" if split == "id" else "id"
studies = [dict(study=f"{source}→{target}, {split}, {r}", source=source, target=target, split=split, regime=r,
                sizes=sizes, methods=methods if i == 0 else control_methods) for i, r in enumerate(regimes)]
studies += [dict(study=f"{source}→{target}, {other}, {regimes[0]}", source=source, target=target, split=other,
                 regime=regimes[0], sizes=[n_samples], methods=other_split_methods)] if other_split_methods else []
studies += [dict(study=f"{target}→{source}, ood, {regimes[0]}", source=target, target=source, split="ood",
                 regime=regimes[0], sizes=[reverse_size], methods=reverse_methods)] if reverse_methods else []
out = paths.out_path(out_dir, "06_when_transfer_helps")
fig_dir = paths.figures_path(figures_dir, out_dir)
sns.set_theme(style="whitegrid")
n_runs = sum(len(s["sizes"]) * len(s["methods"]) for s in studies) * len(seeds)
print(f"dataset={dataset!r}, data_seed={data_seed}, source seed={seed}, lam={lam}, preset={preset!r}, "
      f"epochs={epochs}, source_epochs={source_epochs}, {len(seeds)} target seeds")
for s in studies:
    print(f"  {s['study']}: n = {s['sizes']}, methods {s['methods']}")
print(f"{n_runs} target runs; simulator options {sim_opts}")

# %% [markdown]
# ## 1. The ceiling: how much room is there?
#
# The IMU ceiling of each regime, read from stored runs of `dcatkit.headroom.measure_headroom`
# (`benchmarks/headroom_runs.csv`, 3 seeds, IMU trained on 20,000 simulated recordings; only rows
# measured with today's simulator knobs are kept, `headroom.read_headroom`). With
# `ceiling_file=None` the notebook measures it here instead (about 2 minutes per seed and regime on
# one core). No ceiling was measured for the OOD split or for video: those panels have no line.

# %%
if ceiling_file is not None:
    ceiling_runs = headroom.read_headroom(paths.resolve(ceiling_file))
    print(f"ceiling runs read from {ceiling_file}")
else:
    t0 = time.perf_counter()
    ceiling_runs = pd.concat([headroom.measure_headroom(r, target, sizes=(), n_ceiling=20000, seeds=(0, 1, 2),
                                                        split=split, preset=preset, device=device)
                              for r in regimes], ignore_index=True)
    print(f"ceiling measured in {(time.perf_counter() - t0) / 60:.1f} min")
ceiling_table = headroom.ceilings(ceiling_runs)
ceiling_table = ceiling_table[(ceiling_table.modality == target) & (ceiling_table.split == split)
                              & ceiling_table.regime.isin(regimes)]
ceiling_of = {r.regime: (r.f1_mean, r.f1_std) for r in ceiling_table.itertuples()}
print(ceiling_table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

# %% [markdown]
# ## 2. The runs
#
# All studies run as one sweep (`dcatkit.sweep.run_studies`): the frozen sources first (one per
# regime, split and size), then every (study, method, size, seed) target, sharing the workers. Each finished run is stored under `out_dir/06_when_transfer_helps/sweep`
# as a small JSON file; running the notebook again reads them back and trains nothing twice.

# %%
t_all = time.perf_counter()
runs = run_studies(out / "sweep", studies, lams=[lam], seeds=seeds, workers=workers, device=device, redo=redo,
                   data_options=sim_opts, data_seed=data_seed, source_seed=seed, preset=preset,
                   epochs_source=source_epochs, epochs_target=epochs)
for name, df in runs.groupby("study", sort=False):
    print(f"{name}: {len(df)} runs, {df.wall_s.sum() / 60:.1f} core-min "
          f"(source test F1 {', '.join(f'{v:.3f}' for v in df.groupby('n_samples').source_f1.first())})")
print(f"{len(runs)} runs; this execution took {(time.perf_counter() - t_all) / 60:.1f} min (runs finished "
      f"earlier are read back, not retrained); the runs' own training time: {runs.wall_s.sum() / 60:.1f} min")
params = dict(dataset=dataset, data_seed=data_seed, source_seed=seed, lam=lam, seeds=seeds, preset=preset,
              epochs=epochs, source_epochs=source_epochs, data=sim_opts, studies=studies, ceiling_file=ceiling_file)
files = report.write_results(runs.drop(columns=["data_options", "options"], errors="ignore"), out, "runs",
                             params=params)
print("wrote", ", ".join(paths.shown(p) for p in files.values()))

# %% [markdown]
# ## 3. F1 against training-set size
#
# Mean ± std over the target seeds of each method's test macro-F1, by regime; the dashed line is the
# IMU ceiling (± its std over 3 seeds). Where the baseline sits far below the ceiling there is room
# for transfer; in the negative control there is almost none.

# %%
summary = stats.summarise(runs, context=("study", "n_samples"), treatment=("method", "lam"))
summary = summary.merge(runs.groupby(["study", "n_samples"]).source_f1.first().reset_index(),
                        on=["study", "n_samples"])
curves = summary[summary.study.isin([s["study"] for s in studies[:len(regimes)]])].copy()
curves["regime"] = curves.study.map({s["study"]: s["regime"] for s in studies})
fig = plots.transfer_curves(curves, x="n_samples", col="regime", ceilings=ceiling_of)
fig.suptitle(f"{source} → {target}, {split} split: test macro-F1 (mean ± std over {len(seeds)} seeds)", y=1.03)
plots.save(fig, fig_dir, "06_f1_vs_size")
plt.show()
wide = summary.pivot_table(index=["study", "n_samples"], columns="method", values="mean", sort=False)
print(wide[[m for m in dict.fromkeys(runs.method) if m in wide.columns]].to_string(float_format=lambda v: f"{v:.3f}"))

# %% [markdown]
# ## 4. Paired differences to the baseline
#
# Each point is the mean over seeds of (method F1 − same-seed baseline F1); the bar is its 95%
# bootstrap interval. A filled point: the interval excludes 0. `n_better` / `n_worse`: seeds on
# which the method beat / lost to its own baseline; `p`: the paired Wilcoxon signed-rank test.

# %%
diffs = summary[summary.method != "none"]
cols = ["study", "n_samples", "method", "mean", "baseline_mean", "diff_mean", "ci_low", "ci_high", "p_value",
        "n_better", "n_worse", "n_pairs", "source_f1"]
print(diffs[cols].round(3).to_string(index=False))
report.write_results(summary, out, "summary", params=params)
fig = plots.paired_intervals(curves, x="n_samples", col="regime")
fig.suptitle(f"{source} → {target}, {split} split: ΔF1 to the baseline (95% CI)", y=1.03)
plots.save(fig, fig_dir, "06_delta_f1")
plt.show()
rest = summary[~summary.study.isin(curves.study)]
if len(rest):
    fig = plots.paired_intervals(rest, x="n_samples", col="study")
    fig.suptitle("the other split and the other direction: ΔF1 to the baseline (95% CI)", y=1.05)
    plots.save(fig, fig_dir, "06_delta_f1_ood_reverse")
    plt.show()

# %% [markdown]
# ## 5. Verdict
#
# Computed from the intervals above, per study and method (`dcatkit.stats.verdict`), never written
# by hand. "too few seeds" means fewer than 10 paired seeds: nothing is claimed. Read an interval
# that only just excludes 0 as weak evidence (10 seeds, one dataset, one source).

# %%
verdicts = []
for s in studies:
    for m in s["methods"]:
        if m != "none":
            text = stats.verdict(summary[summary.study == s["study"]], over="n_samples", method=m, lam=lam)
            verdicts.append({"study": s["study"], "method": m, "verdict": text})
            print(f"{s['study']:<28} {m:<12} {text}")
report.write_results(pd.DataFrame(verdicts), out, "verdicts", params=params)
calls = diffs.assign(call=[stats.call(r.diff_mean, r.ci_low, r.ci_high, r.n_pairs) for r in diffs.itertuples()])
print()
if (calls.call == "too few seeds").all():
    print(f"too few seeds ({len(seeds)}) for any claim: run with at least {stats.MIN_SEEDS} seeds")
else:
    for word in ("helps", "hurts"):
        cells = [f"{r.method} ({r.study}, n = {r.n_samples})" for r in calls[calls.call == word].itertuples()]
        print(f"{word}: " + ("; ".join(cells) if cells else "no method, in no cell"))

# %% [markdown]
# ## 6. Reading the verdict
#
# - **Headroom vs the negative control.** A method that helps where the IMU has headroom and not in
#   the ambiguous regime uses room that exists; one that "helps" in the control too deserves
#   suspicion (a regularisation effect, or luck). A method that hurts in both costs accuracy
#   whatever the data.
# - **"no evidence" is not "no effect":** the interval says how large a gain or loss this run can
#   rule out. A wide interval asks for more seeds, not for a conclusion.
# - **The source matters.** Each study prints its frozen source's test F1: a transfer method cannot
#   pass on what the source does not know (the OOD sources here are weak), and MCMA only masks the
#   samples the source gets wrong.
# - **One λ for every method.** All methods run at `lam` (the paper's λ = 1 for D-CAT); the rivals'
#   weights and temperatures are not tuned here, and notebook 04 varies λ for D-CAT alone. A method
#   that hurts at λ = 1 may help at another weight.
# - **One dataset, one source.** The seeds vary the target only (see the top of the notebook): check
#   a conclusion with another `data_seed` before trusting it.
