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
# # 01 — Preprocessing: what the data looks like
#
# **Learning goals.** After this notebook you can
# 1. say what one sample is (an IMU window, a video clip, an audio clip of the same moment) and how
#    the data is split (by recording; by subject for the subject-disjoint splits);
# 2. read the preprocessing the encoders receive: IMU scaled with *training* statistics, video frames,
#    audio as a log-mel spectrogram (paper Sec. V-B);
# 3. see why IMU is the *weak* modality of the simulated data and video the *strong* one, the setting
#    in which cross-modal transfer can help.
#
# The project in one line: **D-CAT** trains a classifier of one modality (the *target*, here IMU) with
# help from a frozen classifier of another (the *source*, here video), and the target then runs
# alone. Words used in these notebooks (source, target, MCMA, macro-F1, OOD, ...) are defined in
# [GLOSSARY.md](GLOSSARY.md). Nothing is trained here; for a real dataset, loading it also **builds the
# preprocessing cache** the other notebooks reuse.
#
# The parameters a learner changes are `split` (with `fold`) and `n_samples` (Try this); the
# `outputs` group is the same in every notebook ([README](README.md)).

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

# --- display --------------------------------------------------------------------
preset = "synthetic"    # whose audio front end (log-mel settings) to show
# --- outputs (relative paths are relative to the repository root) --------------
out_dir = "outputs"     # results (CSV / JSON) and checkpoints
figures_dir = None      # PNG figures; None: <out_dir>/figures (only `make notebooks` writes figures/)

# %%
# NBVAL_CHECK_OUTPUT
import matplotlib.pyplot as plt
import seaborn as sns

from dcatkit import paths, plots, report, runs
from dcatkit.presets import get_preset

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, fold=fold, preset=preset)
checked["modalities"] = paths.dataset_modalities(dataset, checked["data_root"])   # every modality the dataset has
data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)
out = paths.out_path(out_dir, "01_preprocessing")
fig_dir = paths.figures_path(figures_dir, out_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={split!r} data_seed={data_seed} modalities={checked['modalities']}")
print(f"loader options: {data_opts}")

# %% [markdown]
# ## 1. Load and split
#
# `dcatkit.data.load(name, root, split, modalities, seed, **options)` returns train / validation /
# test datasets. Splits are made over *recordings*, never windows, so two windows of one recording
# never land on both sides: `split="id"` is a stratified random split (subjects may appear in train
# and test, the paper's in-distribution setting); `split="ood"` keeps subjects disjoint
# (out-of-distribution). For a real dataset the first call decodes every file once into a
# memory-mapped cache (`cache_dir`); later calls — and the other notebooks — read the cache.

# %%
print(f'results go to {paths.shown(out)}, figures to {paths.shown(fig_dir)}')
splits = runs.load_splits(dataset, checked, data_seed, data_opts)    # one fold of a cross-validation split
print('report:', {k: v for k, v in splits.report.items() if k not in ('imu_minmax',)})

# %% [markdown]
# ## 2. Classes and subjects
#
# Class balance matters for the metrics: the paper reports *macro* precision, recall and F1
# (every class weighs the same), so a rare class counts as much as a frequent one.

# %%
# NBVAL_CHECK_OUTPUT
counts = report.class_counts(splits)
print(counts.to_string())

# %%
fig = plots.class_counts(counts, f"{dataset}: samples per class and split ({split})")
plots.save(fig, fig_dir, "01_class_counts")
plt.show()

# %% [markdown]
# Samples per subject in each part of the split in use (`split`, printed in the figure title above).
# The default `"id"` split stratifies by class and ignores subjects, so one subject's recordings can
# land in training, validation and test alike (the table shows where each subject's went). With
# `split="ood"` each subject sits in exactly one part: the test subjects were never seen in
# training (Try this 1).

# %%
# NBVAL_CHECK_OUTPUT
subjects = report.subject_counts(splits)
print(subjects.to_string())

# %% [markdown]
# ## 3. IMU windows
#
# IMU windows are min-max scaled per channel to $[-1, 1]$ with the **training** split's statistics
# (paper Sec. V-B.1), and validation / test reuse them (so their values may leave $[-1, 1]$):
#
# $$x' = 2\,\frac{x - \min_\text{train}}{\max_\text{train} - \min_\text{train}} - 1$$
#
# In the simulated data (the default `"headroom"` regime, `dcatkit.data.synthetic`) every class has
# its own motion: events per second, main axis, timing (single events or doublets) and the shape of
# each event. The pairs of `IMU_PAIRS` (next cell) share their rate and differ only in one cue:
# **drinking / reading** by the axis of the lift, **sweep_floor / open_close_door** by timing (the
# door is a doublet: open, then close), **cut_fruits / wash_hand** by event shape (a sharp impact
# vs a back-and-forth rub), **type_pc / type_phone** by axis. The figure shows each pair for one subject (so nearly one sensor
# orientation: every subject wears the sensor rotated its own way, and each recording adds a small
# rotation of its own, printed under the figure), in g, with gravity removed.
# Each event is brief and of the order of the white sensor noise that covers every sample (both
# measured as the length of the 3-axis acceleration vector), and it lands on axes that each subject's sensor rotates its own way, beside a
# slow background head motion. The lines printed under the figure give the sizes the data hold
# (`dcatkit.data.synthetic.event_sizes`: the largest event of each recording, measured on the same
# recordings without noise or head motion), beside the simulator's settings: a class's nominal
# amplitude is scaled by its subject, its recording and each event, and the IMU's sampling (its rate
# is printed too) smooths the shortest events (taps, impacts) down. Look and see how hard the cues
# are to read by eye. That is what makes IMU
# the weak modality here, as in the paper. (The `"ambiguous"` regime is different: its pairs differ only by a small amplitude
# change. It is not a control: notebook 06's negative control is an IMU from an independent draw.)

# %%
IMU_PAIRS = [("drinking", "reading"), ("sweep_floor", "open_close_door"), ("cut_fruits", "wash_hand"),
             ("type_pc", "type_phone")]                        # the simulator's pairs (see above)
if "imu" in splits.train.modalities and all(c in splits.classes for p in IMU_PAIRS for c in p):
    fig = plots.imu_pairs(splits.train, IMU_PAIRS)
    plots.save(fig, fig_dir, "01_imu_traces")
    plt.show()
    if dataset == "synthetic":
        import math

        import numpy as np

        from dcatkit.data.synthetic import HEADROOM_KNOBS, MOTION_HEADROOM, event_sizes
        amps = [m[-1] for m in MOTION_HEADROOM.values()]
        ev = event_sizes(seed=data_seed, **data_opts)                  # the recordings loaded above, noise-free
        noise, peak = ev["noise"], ev["peak"]
        q = np.percentile(peak, [5, 50, 95])
        noise_len = noise * math.sqrt(3)       # the noise's RMS length as a 3-axis vector: the peak's own measure
        below = int((peak < noise_len).sum())
        print(f"data: the largest event of each recording (gravity removed, as in the figure; the length of the 3-axis "
              f"vector) is {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} g at the 5th / 50th / 95th percentile of the "
              f"{len(peak)} recordings, i.e. {q[0] / noise_len:.2f} / {q[1] / noise_len:.2f} / {q[2] / noise_len:.2f}x "
              f"the RMS length of the sensor noise on every sample ({noise_len:.3f} g: {noise:g} g per axis); in "
              f"{below} of the {len(peak)} recordings ({below / len(peak):.1%}) even the largest event stays below it")
        print("median of that largest event per class: " + ", ".join(
            f"{c} {np.median(peak[ev['labels'] == i]):.2f} g" for i, c in enumerate(ev["classes"]) if (ev["labels"] == i).any()))
        print(f"simulator settings: nominal class amplitudes {min(amps):g}-{max(amps):g} g (before each subject's, "
              f"recording's and event's scaling), head motion {HEADROOM_KNOBS['head_motion']:g} g; IMU at "
              f"{splits.train.sample_rates['imu']:g} Hz; each recording rotated up to "
              f"{math.degrees(HEADROOM_KNOBS['sample_angle']):.1f} degrees off its subject's orientation")
elif "imu" in splits.train.modalities:                          # a real dataset: one window per class
    fig = plots.imu_traces(splits.train)
    plots.save(fig, fig_dir, "01_imu_traces")
    plt.show()
else:
    print(f"{dataset} has no IMU")

# %% [markdown]
# ## 4. Video frames
#
# Each sample holds `n_frames` RGB frames spread uniformly over the window, resized to
# `frame_size` (the paper: 30 frames at 224x224 for a ResNet-101). In the synthetic data each
# class has its own object colour; its size is shared with one other class and its shape (square
# or round) with three more, and the class that shares its size shares its shape too, so only
# colour tells those two apart. Each subject mixes some of its own colour in —
# video still carries the class clearly (a strong source).

# %%
if "video" in splits.train.modalities:
    fig = plots.frame_strips(splits.train)
    plots.save(fig, fig_dir, "01_frames")
    plt.show()
else:
    print(f"{dataset} has no video")

# %% [markdown]
# ## 5. Audio as log-mel spectrograms
#
# The audio encoder (PANNs-style CNN, paper Fig. 4) first turns the waveform into a log-mel
# spectrogram: short-time Fourier transform, mel filter bank $M$, then decibels,
#
# $$S_\text{dB} = 10 \log_{10}\!\left(M\,|\mathrm{STFT}(x)|^2\right).$$
#
# The plots use the encoder's own front end (`dcatkit.encoders.LogMel`) with the preset's
# settings, at the data's sample rate. One sample per class: in the simulator each class sounds a
# tone of its own, pitched above the previous class's (printed under the figure, with how far each
# subject shifts it), with one harmonic at twice its pitch (where that is above the Nyquist limit,
# half the audio's sample rate printed in the figure's title, it folds back below it, so for the
# last class's tone it can show as a second line close to the tone), in bursts at the motion's
# events, over the subject's steady room hum. Look at the short bright dashes (the bursts): their
# height and rhythm change from panel to panel; the unbroken line is the hum, which belongs to the
# subject, not the class. In a panel, though, the highest dashes can be the harmonic, and a tone
# close to its subject's hum hides under the unbroken line, so the highest dash need not rise from
# each panel to the next.

# %%
if "audio" in splits.train.modalities:
    audio_encoder = get_preset(preset, "audio", dataset).encoder
    fig = plots.spectrograms(splits.train, audio_encoder)
    plots.save(fig, fig_dir, "01_spectrograms")
    plt.show()
    if dataset == "synthetic":
        from dcatkit.data.synthetic import CLASS_TONES, HEADROOM_KNOBS
        print("simulator: tone per class " + ", ".join(f"{c} {f:g} Hz" for c, f in CLASS_TONES.items())
              + f"; each subject's tone of a class lies within ±{HEADROOM_KNOBS['tone_spread']:.0%} of it")
else:
    audio_encoder = None
    print(f"{dataset} has no audio")

# %% [markdown]
# ## 6. Sample browser
#
# Pick a class, a subject and a sample. The browser needs a live widget front end (JupyterLab,
# Notebook, VS Code); where there is none (papermill, a code host's viewer) it shows only a one-line
# text placeholder, so a static view of one sample is always drawn below it.

# %%
from IPython.display import display

browser = plots.sample_browser(splits.train, audio_encoder)
if browser is not None:
    display(browser)
else:
    print("ipywidgets is not installed: static view only (pip install ipywidgets)")
fig = plots.sample_figure(splits.train, 0, audio_encoder)       # the static fallback
plots.save(fig, fig_dir, "01_sample")
plt.show()

# %% [markdown]
# ## 7. Save the summary
#
# Class and subject counts as machine-readable files, so sweeps over `dataset` / `split` can be compared.
# Each name ends in a hash of the parameters its JSON records (`runs.results_stem`): runs with another
# `data_seed`, `fold` or data size write files of their own instead of replacing these.

# %%
params = dict(dataset=dataset, data_root=checked["data_root"], split=checked["split_name"], fold=checked["fold"],
              data_seed=data_seed, **data_opts)   # what the files record; their names hash all of it
files = [*report.write_results(counts, out, runs.results_stem(f"class_counts-{dataset}-{checked['split_name']}", params),
                               params=params, device="cpu").values(),      # counted on the CPU: no model ran
         *report.write_results(subjects, out, runs.results_stem(f"subject_counts-{dataset}-{checked['split_name']}",
                                                                params), params=params, device="cpu").values()]
print("wrote", ", ".join(paths.shown(p) for p in files))

# %% [markdown]
# ## Summary
#
# - A sample is one moment seen by every sensor; splits are made over recordings (and over subjects
#   for `ood`, `loso`, `group_kfold`), so no recording leaks between train and test.
# - IMU windows are scaled with the training split's minimum and maximum only.
# - In the simulated data video shows the class plainly while the IMU cues are small and noisy:
#   the gap a frozen video source may help an IMU model close.
#
# ## Try this
#
# 1. **Subject-disjoint split.** `-p split ood`: the subject table shows every subject in exactly one
#    split. *Expect* fewer subjects in test than in train, and class counts per split less even
#    (the subject-disjoint split is not stratified by class, and each subject's class counts vary by
#    chance).
# 2. **Leave one subject out.** `-p split loso -p fold 2`: the test split is one subject. *Expect* a
#    small test set; that is why notebook 05, with `-p subject_split loso`, trains every fold and
#    lists each held-out subject's score in one table.
# 3. **Less data.** `-p n_samples 200`: some classes get only a few test samples. *Expect*, when the
#    later notebooks run with the same `-p n_samples 200`, each class's recall to move in steps of
#    1 / its test samples (notebook 05 prints them as `support`), and macro recall in steps of that
#    over the number of classes: a few samples more or less right from one seed to the next move it
#    visibly.
#
# Next: [02 — unimodal models](02_unimodal.ipynb) trains the source and the baseline.
