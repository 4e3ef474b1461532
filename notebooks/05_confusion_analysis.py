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
# # 05 — Confusion analysis: what one D-CAT run fixed and what it broke
#
# **Learning goals.** After this notebook you can
# 1. read two confusion matrices side by side and the per-class F1 behind a macro-F1;
# 2. tell a change of a few test samples from a change worth reporting;
# 3. look at a run per **subject**: which held-out people gained and which lost in this run, and why
#    one run cannot say for whom transfer helps (sensor data often varies strongly from person to
#    person);
# 4. tell what a frozen source feeds the masked alignment (the training samples it gets right) from
#    how well it does on people it never saw.
#
# Averages hide where a change comes from. This notebook puts the baseline and the D-CAT target side
# by side on the test split: their confusion matrices, the F1 of each class, the class pairs the
# D-CAT run confused fewer or more times than the baseline, the F1 of each test
# subject on a subject-disjoint split, and what the frozen source behind each run gave its alignment.
# The models are the checkpoints notebook
# [03](03_transfer.ipynb) wrote for the same parameters (trained here if absent). Terms:
# [GLOSSARY.md](GLOSSARY.md).

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

# --- which D-CAT model ----------------------------------------------------------------
source = "video"
target = "imu"
lam = 1.0               # lambda of Eq. (19)
mcma = True             # True: D-CAT with masked alignment (Eq. 17); False: No MCMA (Eq. 7)
loss = "dcat"
subject_split = "ood"   # the subject-disjoint split of section 5: "ood", "loso" or ["group_kfold", k] (every fold)

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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from dcatkit import paths, plots, report, runs
from dcatkit.explore import n_of
from dcatkit.experiment import format_table, train_transfer, train_unimodal
from dcatkit.losses import get_loss
from dcatkit.metrics import classification_metrics
from dcatkit.train import predict
from IPython.display import Markdown, display

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, fold=fold, source=source, target=target,
                             lam=lam, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             device=device, resume=resume, redo=redo)
get_loss(loss)
if not isinstance(mcma, bool):
    raise ValueError(f"mcma must be True or False, got {mcma!r}")
if paths.check_split(subject_split)["split"] == "id":      # section 5 scores subjects training never saw
    raise ValueError("subject_split must hold subjects out of training: 'ood', 'loso' or ['group_kfold', k], got "
                     "'id' (stratified over recordings: the test subjects are training subjects too)")
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
out = paths.out_path(out_dir, "05_confusion_analysis")
fig_dir = paths.figures_path(figures_dir, out_dir)
sns.set_theme(style="whitegrid")
dcat_name = "D-CAT" if mcma else "D-CAT (no MCMA)"
print(f"dataset={dataset!r} split={split!r} {source} -> {target}, lam={lam}, mcma={mcma}, loss={loss!r}, "
      f"preset={preset!r}, epochs={epochs}, seed={seed}")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. Data and the two models

# %%
splits = runs.load_splits(dataset, checked, data_seed, data_opts)    # one fold of a cross-validation split
data_key = runs.data_key(dataset, checked["split_name"], data_seed, data_opts, preset, source, target,
                         splits=splits)
ck_source = paths.checkpoint_path(out_dir, f"source-{source}", **data_key, epochs=source_epochs, seed=seed)
ck_baseline = paths.checkpoint_path(out_dir, f"baseline-{target}", **data_key, epochs=epochs, seed=seed)
ck_dcat = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **data_key, epochs=epochs, seed=seed,
                                source_epochs=source_epochs, lam=lam, mcma=mcma, loss=loss)
train_opts = dict(preset=preset, dataset=dataset, seed=seed, device=device, progress=False, resume=resume)
base_model = runs.load_or_train(ck_baseline, lambda: train_unimodal(runs.only(splits, target), target, epochs=epochs,
                                                                    checkpoint=ck_baseline, **train_opts), "baseline")
src_id = runs.source_run(splits, source, target, ck_source, epochs=source_epochs, **train_opts)  # section 6 too
dcat_model = runs.load_or_train(ck_dcat, lambda: train_transfer(
    splits, src_id, target, lam=lam, mcma=mcma, loss=loss, epochs=epochs, checkpoint=ck_dcat, **train_opts),
    dcat_name, source=ck_source)

# %% [markdown]
# ## 2. Predictions and confusion matrices
#
# Both models see only the target modality of the test split. Rows of a confusion matrix are the
# true classes, columns the predicted ones; colour is the share of the true class (recall on the
# diagonal), numbers are counts. Look off the diagonal: which classes each model mistakes for which,
# and whether the two matrices differ by more than a sample here and there (sections 3 and 4 count it).

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
# D-CAT − baseline. The macro-F1 of the other notebooks is the mean of these over the classes with
# test samples (`support` > 0; a class with none scores 0 in this table and is left out of the
# macro-F1, which `dcatkit.metrics` says in a warning). `support` is the number
# of test samples of the class: one sample more or less right moves its recall by 1 / `support`
# (the figure prints each class's counts beside its F1 change).

# %%
change = report.per_class_change(m_base["confusion"], m_dcat["confusion"], splits.classes)
print(format_table(change, diffs={"delta_f1": ("f1_dcat", "f1_baseline")}))   # a difference of the numbers shown
right = pd.Series(np.diag(m_dcat["confusion"]) - np.diag(m_base["confusion"]), index=splits.classes)  # TP change
moved = right[right.abs() > 2].sort_values()
display(Markdown(
    f"Correctly classified test samples per class, {dcat_name} − baseline: {len(right) - len(moved)} of {len(right)} "
    "classes changed by at most two" + (". " if moved.empty else "; the others: " + ", ".join(
        f"{c} {d:+d}" for c, d in moved.items()) + ". ")
    + (f"Net change in correctly classified test samples: {right.sum():+d} of {len(y)}." if right.sum() else
       f"No net change in correctly classified test samples (of {len(y)}): the classes' changes add up to 0.")))
fig = plots.f1_change(change, title=f"per-class F1 change ({dcat_name} − baseline)", conf_base=m_base["confusion"],
                      conf_other=m_dcat["confusion"], classes=splits.classes)
plots.save(fig, fig_dir, "05_f1_change")
plt.show()

# %% [markdown]
# ## 4. Class pairs confused fewer or more times
#
# For every pair of classes, how many test samples of one were predicted as the other (both
# directions), under each model. `change` is D-CAT's count minus the baseline's, and `direction`
# its sign in words: "fewer" (the D-CAT run confused the pair fewer times), "more" or "same". It is
# a count of test samples in one run (the sentence under the table gives the largest), not a verdict (the kit keeps that
# word for the pooled, Holm-corrected calls of notebooks 04 and 06). The pairs the simulator built to differ in IMU only by one cue (notebook 01:
# drinking/reading, sweep_floor/open_close_door, cut_fruits/wash_hand, type_pc/type_phone) need not
# be the pairs the models confuse most: the sentence under the table says which pairs are confused
# most, computed.

# %%
pairs = report.pair_changes(m_base["confusion"], m_dcat["confusion"], splits.classes)
print(pairs.to_string(index=False))
f = report.flips(y, p_base, p_dcat)
top = pairs.assign(total=pairs["confused_baseline"] + pairs["confused_dcat"]).nlargest(3, "total")
display(Markdown(("Most confused (baseline, D-CAT): " if len(top) else "No pair is confused by either model") + "; ".join(
    f"{r.class_a} / {r.class_b} ({r.confused_baseline}, {r.confused_dcat})" for r in top.itertuples()) +
    f". The largest change of a pair here is {pairs['change'].abs().max() if len(pairs) else 0} of {len(y)} test samples; before reading "
    "such a count as the method's, compare it with how much another training seed moves the results (notebook 04)."))
print(f"\nsample by sample: {f['fixed']} fixed (baseline wrong, {dcat_name} right), {f['broke']} broke "
      f"(baseline right, {dcat_name} wrong), {f['both_right']} both right, {f['both_wrong']} both wrong, of {f['n']}")

# %%
run_params = dict(dataset=dataset, split=checked["split_name"], fold=checked["fold"], source=source, target=target,
                  lam=lam, mcma=mcma, loss=loss, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                  data_seed=data_seed, setup=data_key["setup"])   # presets + simulator settings (+ the data's content)
params = {**run_params, "data": data_opts}          # what the results files record; their names hash all of it
head = f"{dataset}-{checked['split_name']}-{source}-{target}"
tail = f"lam{lam:g}-{'mcma' if mcma else 'nomcma'}-seed{seed}"
written = [*report.write_results(change.assign(**run_params, **data_opts), out,
                                 runs.results_stem(f"per_class-{head}", params, tail), params=params,
                                 device=device).values(),
           *report.write_results(pairs.assign(**run_params, **data_opts), out,
                                 runs.results_stem(f"pairs-{head}", params, tail), params={**params, "flips": f},
                                 device=device).values()]
print("wrote", ", ".join(paths.shown(p) for p in written))

# %% [markdown]
# ## 5. Per subject, on a subject-disjoint split
#
# Sensor data often varies strongly between people (how they move, wear the sensor, their room; the
# simulator builds this in; section 6 shows, for one run of the source, how far its F1 falls on
# people it never saw). So: train (or read back)
# the baseline and D-CAT on `subject_split`, whose test subjects were never seen in training, and score each test subject
# alone. `"ood"` holds out a few subjects (one training); `"loso"` holds out each subject once
# (one training per subject: every subject gets a score, at the cost of training all folds);
# `["group_kfold", k]` puts the subjects in k groups and holds out each group once (k trainings). The checkpoints are named as notebook 03's with
# `-p split ...`, so they are shared. "fixed" / "broke" count test samples the baseline got wrong
# and D-CAT right, and the reverse; `net` = fixed − broke; `f1_other` is the D-CAT run's F1 on that
# subject (`f1_baseline` the baseline's).

# %%
sub_checked = paths.check_params(dataset=dataset, data_root=data_root, split=subject_split, source=source,
                                 target=target)
sub_name = sub_checked["split_name"].removesuffix(f"-fold{sub_checked['fold']}")   # every fold: "loso", not "loso-fold0"
rows, fold_setups, reach = [], [], []
for k in range(runs.n_folds(dataset, sub_checked, data_seed, data_opts)):
    sub_info = {**sub_checked, **paths.check_split(sub_checked["split"], k)}
    sub = runs.load_splits(dataset, sub_info, data_seed, data_opts)
    key = runs.data_key(dataset, sub_info["split_name"], data_seed, data_opts, preset, source, target,
                        splits=sub)      # on a real dataset its content: notebook 03's -p split names
    fold_setups.append(key["setup"])
    ck_s = paths.checkpoint_path(out_dir, f"source-{source}", **key, epochs=source_epochs, seed=seed)
    ck_b = paths.checkpoint_path(out_dir, f"baseline-{target}", **key, epochs=epochs, seed=seed)
    ck_d = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **key, epochs=epochs, seed=seed,
                                 source_epochs=source_epochs, lam=lam, mcma=mcma, loss=loss)
    mb = runs.load_or_train(ck_b, lambda: train_unimodal(runs.only(sub, target), target, epochs=epochs,
                                                         checkpoint=ck_b, **train_opts),
                            f"baseline ({sub_info['split_name']})")
    src_k = runs.source_run(sub, source, target, ck_s, epochs=source_epochs, **train_opts)   # section 6 too
    md = runs.load_or_train(ck_d, lambda: train_transfer(
        sub, src_k, target, lam=lam, mcma=mcma, loss=loss, epochs=epochs, checkpoint=ck_d, **train_opts),
        f"{dcat_name} ({sub_info['split_name']})", source=ck_s)
    ys, pb = predict(mb, sub.test, target, device=device)
    _, pd_ = predict(md, sub.test, target, device=device)
    rows.append(runs.per_subject(ys, pb, pd_, sub.test.subjects, len(sub.classes), fold=[k] * len(ys)))
    reach.append({"split": sub_info["split_name"], **runs.source_reach(src_k, sub, device=device)})
subjects_table = pd.concat(rows, ignore_index=True).sort_values("delta_f1", kind="stable")
print(format_table(subjects_table, diffs={"delta_f1": ("f1_other", "f1_baseline")}, index=False))
fig = plots.subject_change(subjects_table, title=f"{dcat_name} − baseline per test subject ({sub_name})")
plots.save(fig, fig_dir, "05_subjects")
plt.show()
c = runs.subject_summary(subjects_table)
display(Markdown(
    f"On {n_of(c['subjects'], 'test subject')} of `{sub_name}`: transfer fixed more samples than it broke for "
    f"{c['helped']}, fewer for {c['hurt']}, as many for {c['same']} ({c['fixed']} fixed, {c['broke']} broke in all). "
    + ("Every subject moved the same way in this run, so it cannot show whether the effect differs between people. "
       if sum(c[k] > 0 for k in ("helped", "hurt", "same")) == 1 and c["subjects"] > 1 and not c["same"] else
       "No subject's net count (fixed − broke) moved in this run. " if c["subjects"] > 1 and not (c["helped"] or c["hurt"]) else
       "The subjects moved in different directions in this run. " if c["helped"] and c["hurt"] else
       "The subjects did not all move the same way in this run. " if c["subjects"] > 1 else "")
    + f"One training seed and {n_of(c['subjects'], 'test subject')} describe this run, not people in general; the same sign "
    "over many subjects (`loso`), folds and seeds would be evidence."))
sub_params = dict(dataset=dataset, split=sub_name, source=source, target=target, lam=lam, mcma=mcma,
                  loss=loss, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed, data_seed=data_seed)
sub_record = {**sub_params, "setup": fold_setups, "data": data_opts}   # setup: one per fold (a real dataset's differ)
files = report.write_results(subjects_table.assign(**sub_params, setup=[fold_setups[k] for k in subjects_table["fold"]],
                                                   **data_opts), out,
                             runs.results_stem(f"subjects-{dataset}-{sub_name}-{source}-{target}",
                                               sub_record, tail), params=sub_record, device=device)
print("wrote", ", ".join(paths.shown(p) for p in files.values()))

# %% [markdown]
# ## 6. What the frozen source gave the alignment
#
# D-CAT's masked alignment (Eq. 17) pulls the target toward the source only on the training samples
# the source classifies correctly. `kept` is their share (notebook 03 logs it as `train_mask_frac`).
# On a subject-disjoint split those samples come from the training subjects, whom the source was
# trained on too; how the source fares on people it never saw is its macro-F1 on the validation and
# test subjects (`val_f1`, `test_f1`). The first row is the source behind sections 1-4, the others
# the source of each fold of section 5.

# %%
reach_table = pd.DataFrame([{"split": checked["split_name"], **runs.source_reach(src_id, splits, device=device)},
                            *reach])
print(format_table(reach_table, index=False))
r0, rs = reach_table.iloc[0], reach_table.iloc[1:]
over = f" (means over its {len(rs)} folds)" if len(rs) > 1 else ""
display(Markdown(
    f"On `{sub_name}` the {source} source is right on {rs['kept'].mean():.0%} of the training samples, "
    + ("the ones the alignment uses" if mcma else "the ones MCMA would keep (this run, without MCMA, aligns on all)")
    + f", and reaches macro-F1 {rs['test_f1'].mean():.3f} on the held-out subjects{over}. On "
    f"`{checked['split_name']}` it is right on {r0['kept']:.0%} of the training samples and reaches "
    f"{r0['test_f1']:.3f} on the test split. The share kept says how much of the training set the alignment is fed; "
    "the test F1 says how well what the source knows carries to new samples (on a subject-disjoint split, new "
    "people). Whether the source's reach is what moved D-CAT in section 5 one run cannot say: notebook 06 pools "
    "D-CAT on the subject-disjoint split (`-p split ood`) over data draws and seeds."))

# %% [markdown]
# ## Summary
#
# - The confusion matrices and per-class F1 show *where* a macro-F1 change comes from; section 3
#   counts how many classes gained or lost more than two correctly classified test samples in this run.
# - Per subject, the table of section 5 shows how each held-out person fared in this run; with one
#   seed and a few subjects it describes the run, it does not say how transfer treats people in
#   general. Count subjects, folds and seeds before believing an average (Try this 1).
# - The source's own numbers (section 6) say how much the alignment is fed (`kept`, the training
#   samples the source gets right) and how well the source does on samples it never trained on
#   (`test_f1`): on a subject-disjoint split the two answer different questions.
#
# ## Try this
#
# 1. **Every subject once.** `-p subject_split loso`: one baseline and one D-CAT per subject (one
#    fold per subject, so the training time of section 5 once per subject). *Expect* a row for every
#    subject; with one seed each row is still one run.
# 2. **No MCMA.** `-p mcma False`: the analysis of the unmasked run. The two losses differ only in
#    batches that hold a sample the source gets wrong: MCMA drops it and averages over the rest (section 6 prints the share the source gets right, `kept`; notebook 03 logs it as
#    `train_mask_frac`), yet two training
#    runs also differ by chance: compare the "fixed" and "broke" samples of both analyses.
# 3. **A large λ.** `-p lam 100` (train it in 03 first, or let this notebook train it): compare the
#    "broke" and "fixed" counts with this run's. Notebook 04 compares λ = 100 with its baseline over
#    the seeds of one data draw, notebook 06 pooled over draws.
#
# Next: [06 — when does transfer help?](06_when_transfer_helps.ipynb) asks the question over data
# sizes, controls, label counts, methods, data draws and seeds.
