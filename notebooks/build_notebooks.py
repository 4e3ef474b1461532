"""Write the five notebooks from this file: the reviewable source of truth.

    python notebooks/build_notebooks.py          # rewrite notebooks/*.ipynb (no outputs)
    python notebooks/build_notebooks.py 03_transfer   # only some of them
    make notebooks                               # rewrite, then execute them in place (papermill)

Each notebook: a markdown title, a code cell tagged ``parameters`` (flat literals
only; papermill injects overrides after it), a cell that validates the
parameters and derives everything else, then steps that each say what and why
in markdown, with the paper's equation next to the ``dcatkit`` call computing it.
No library code lives here: the notebooks call ``dcatkit``.

Cells whose first line is ``# NBVAL_CHECK_OUTPUT`` print only deterministic
things; ``make test`` re-runs every notebook with nbval and compares them.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
CHECK = "# NBVAL_CHECK_OUTPUT\n"


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, tags: list[str] | None = None):
    c = new_code_cell(text.strip("\n"))
    if tags:
        c.metadata["tags"] = tags
    return c


def params(text: str):
    return code(text, ["parameters"])


def notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


# ----------------------------------------------------------------------------- shared text

DATA_PARAMS = '''
# --- data ---------------------------------------------------------------------
dataset = "synthetic"   # "synthetic" (no files needed), "uestc", "cough" or "vggsound"
data_root = None        # folder of a real dataset as distributed; None for synthetic
split = "id"            # "id" (stratified random) or "ood" (subject-disjoint)
data_seed = 0           # seed of the split (and of the simulated data)
n_samples = 2000        # synthetic only: number of simulated recordings
frame_size = None       # video frame side in pixels; None: the dataset's default (synthetic 32, paper 224)
n_frames = None         # video frames per sample; None: the dataset's default (synthetic 8, paper 30)
cache_dir = None        # real datasets: preprocessing cache folder; None: <data_root>/.dcatkit_cache
'''

RUN_PARAMS = '''
# --- training -----------------------------------------------------------------
preset = "synthetic"    # "synthetic" (CPU minutes) or "paper" (Table I for the dataset)
epochs = None           # target / baseline epochs; None: the preset's
source_epochs = None    # frozen-source epochs; None: the preset's
seed = 0                # training seed
device = "auto"         # "auto" (CUDA if present), "cpu", "cuda:0"
# --- outputs (relative paths are relative to the repository root) --------------
out_dir = "outputs"     # results (CSV / JSON) and checkpoints
figures_dir = "figures" # PNG figures
'''

DATA_OPTS = '''data_opts = paths.data_options(dataset, n_samples=n_samples, frame_size=frame_size, n_frames=n_frames,
                               cache_dir=cache_dir)'''

# One place defines the checkpoint names, so notebooks find each other's models.
CKPT = '''data_key = dict(dataset=dataset, split=split, data_seed=data_seed, data=data_opts, preset=preset)
ck_source = paths.checkpoint_path(out_dir, f"source-{source}", **data_key, epochs=source_epochs, seed=seed)
ck_baseline = paths.checkpoint_path(out_dir, f"baseline-{target}", **data_key, epochs=epochs, seed=seed)'''
CKPT_DCAT = '''ck_dcat = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **data_key, epochs=epochs, seed=seed,
                                source_epochs=source_epochs, lam=lam, mcma=mcma, loss=loss)'''

LOAD = '''t0 = time.perf_counter()
splits = load(dataset, root=checked["data_root"], split=split, modalities=checked["modalities"], seed=data_seed,
              **data_opts)
print(f"loaded {dataset!r} ({split}) in {time.perf_counter() - t0:.1f}s: "
      f"train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)} samples, "
      f"{len(splits.classes)} classes, modalities {splits.train.modalities}")'''

# Training one modality reads only that modality's arrays (much less data to batch).
ONLY = '''only = lambda m: Splits(splits.train.select([m]), splits.val.select([m]), splits.test.select([m]), splits.report)'''

SOURCE = '''if ck_source.is_file():
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
print(f"{src.name}: test accuracy {src.test['accuracy']:.3f}, macro-F1 {src.test['f1']:.3f}")'''

SETUP_IMPORTS = '''import time

import matplotlib.pyplot as plt
import seaborn as sns

from dcatkit import paths, plots, report
from dcatkit.data import Splits, load
'''

DCAT_INTRO = """
**D-CAT** (Decoupled Cross-Attention Transfer, Daher, Wang & Mielle) improves a classifier of one
sensor modality (the *target*, e.g. IMU) with what a classifier of another modality (the *source*,
e.g. video) has learned — while the target still runs **alone** at inference. Both classifiers are
an encoder followed by self-attention (paper Fig. 1); the source is trained first and frozen; the
target is trained with cross-entropy plus a *cross-attention loss* that pulls its keys and values
towards the source's.
"""


# ----------------------------------------------------------------------------- 01

def nb01():
    return notebook([
        md(f"""
# 01 — Preprocessing: what the data looks like
{DCAT_INTRO}
This notebook looks at the data before any training: how many samples each class and subject
has, what an IMU window, a video clip and an audio clip look like once preprocessed (exactly what
the encoders receive), and a sample browser. For a real dataset, loading it here also **builds
the preprocessing cache** (decoded, windowed arrays on disk) that the other notebooks then reuse.

Parameters (papermill `-p name value`): `dataset`, `data_root`, `split`, `data_seed`, `n_samples`,
`frame_size`, `n_frames`, `cache_dir`, `preset`, `out_dir`, `figures_dir`.
"""),
        params(DATA_PARAMS + '''
# --- outputs (relative paths are relative to the repository root) --------------
preset = "synthetic"    # whose audio front end (log-mel settings) to show
out_dir = "outputs"
figures_dir = "figures"
'''),
        code(CHECK + SETUP_IMPORTS + '''from dcatkit.presets import get_preset

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, preset=preset)
checked["modalities"] = paths.DATASET_MODALITIES[dataset]        # look at every modality the dataset has
''' + DATA_OPTS + '''
out = paths.out_path(out_dir, "01_preprocessing")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={split!r} data_seed={data_seed} modalities={checked['modalities']}")
print(f"loader options: {data_opts}")'''),
        md("""
## 1. Load and split

`dcatkit.data.load(name, root, split, modalities, seed, **options)` returns train / validation /
test datasets. Splits are made over *recordings*, never windows, so two windows of one recording
never land on both sides: `split="id"` is a stratified random split (subjects may appear in train
and test, the paper's in-distribution setting); `split="ood"` keeps subjects disjoint
(out-of-distribution). For a real dataset the first call decodes every file once into a
memory-mapped cache (`cache_dir`); later calls — and the other notebooks — read the cache.
"""),
        code(f"print(f'results go to {{paths.shown(out)}}, figures to {{paths.shown(fig_dir)}}')\n{LOAD}\n"
             "print('report:', {k: v for k, v in splits.report.items() if k not in ('imu_minmax',)})"),
        md("""
## 2. Classes and subjects

Class balance matters for the metrics: the paper reports *macro* precision, recall and F1
(every class weighs the same), so a rare class counts as much as a frequent one.
"""),
        code(CHECK + '''counts = report.class_counts(splits)
print(counts.to_string())'''),
        code('''fig = plots.class_counts(counts, f"{dataset}: samples per class and split ({split})")
plots.save(fig, fig_dir, "01_class_counts")
plt.show()'''),
        md("""
Samples per subject. With `split="ood"` each subject sits in exactly one split — the test
subjects were never seen in training.
"""),
        code(CHECK + '''subjects = report.subject_counts(splits)
print(subjects.to_string())'''),
        md(r"""
## 3. IMU windows

IMU windows are min-max scaled per channel to $[-1, 1]$ with the **training** split's statistics
(paper Sec. V-B.1), and validation / test reuse them (so their values may leave $[-1, 1]$):

$$x' = 2\,\frac{x - \min_\text{train}}{\max_\text{train} - \min_\text{train}} - 1$$

In the synthetic data the eight classes form four pairs that *move* alike (e.g. typing on a laptop
vs. on a phone) and differ in IMU only by a small amplitude change — IMU is the weak modality,
as in the paper.
"""),
        code('''if "imu" in splits.train.modalities:
    fig = plots.imu_traces(splits.train)
    plots.save(fig, fig_dir, "01_imu_traces")
    plt.show()
else:
    print(f"{dataset} has no IMU")'''),
        md("""
## 4. Video frames

Each sample holds `n_frames` RGB frames spread uniformly over the window, resized to
`frame_size` (the paper: 30 frames at 224x224 for a ResNet-101). In the synthetic data each
class has its own object colour and shape — video carries the class clearly (a strong source).
"""),
        code('''if "video" in splits.train.modalities:
    fig = plots.frame_strips(splits.train)
    plots.save(fig, fig_dir, "01_frames")
    plt.show()
else:
    print(f"{dataset} has no video")'''),
        md(r"""
## 5. Audio as log-mel spectrograms

The audio encoder (PANNs-style CNN, paper Fig. 4) first turns the waveform into a log-mel
spectrogram: short-time Fourier transform, mel filter bank $M$, then decibels,

$$S_\text{dB} = 10 \log_{10}\!\left(M\,|\mathrm{STFT}(x)|^2\right).$$

The plots use the encoder's own front end (`dcatkit.encoders.LogMel`) with the preset's
settings, at the data's sample rate.
"""),
        code('''if "audio" in splits.train.modalities:
    audio_encoder = get_preset(preset, "audio", dataset).encoder
    fig = plots.spectrograms(splits.train, audio_encoder)
    plots.save(fig, fig_dir, "01_spectrograms")
    plt.show()
else:
    audio_encoder = None
    print(f"{dataset} has no audio")'''),
        md("""
## 6. Sample browser

Pick a class, a subject and a sample. The browser needs a live widget front end (JupyterLab,
Notebook, VS Code); where there is none (papermill, a code host's viewer) it shows nothing, so
a static view of one sample is always drawn below it.
"""),
        code('''from IPython.display import display

browser = plots.sample_browser(splits.train, audio_encoder)
if browser is not None:
    display(browser)
else:
    print("ipywidgets is not installed: static view only (pip install ipywidgets)")
fig = plots.sample_figure(splits.train, 0, audio_encoder)       # the static fallback
plots.save(fig, fig_dir, "01_sample")
plt.show()'''),
        md("""
## 7. Save the summary

Counts and sizes as machine-readable files, so sweeps over `dataset` / `split` can be compared.
"""),
        code('''files = report.write_results(counts, out, f"class_counts-{dataset}-{split}",
                             params=dict(dataset=dataset, split=split, data_seed=data_seed, **data_opts))
report.write_results(subjects, out, f"subject_counts-{dataset}-{split}",
                     params=dict(dataset=dataset, split=split, data_seed=data_seed, **data_opts))
print("wrote", ", ".join(paths.shown(p) for p in files.values()))'''),
    ])


# ----------------------------------------------------------------------------- 02

def nb02():
    return notebook([
        md(f"""
# 02 — Unimodal models: the sources and the baselines
{DCAT_INTRO}
Before any transfer, each modality gets its own classifier trained with cross-entropy alone:
- the **source** (default: video) will be frozen and transfer its knowledge in notebook 03;
- the **baseline** (default: IMU) is what D-CAT has to beat: the same target architecture,
  same data, same seed, no transfer.

Checkpoints go to `out_dir/checkpoints/`, named after their settings, so notebooks 03–05 find
the source trained here instead of training it again.

Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
`cache_dir`, `source`, `target`, `preset`, `epochs`, `source_epochs`, `seed`, `device`, `out_dir`,
`figures_dir`.
"""),
        params(DATA_PARAMS + '''
# --- modalities -----------------------------------------------------------------
source = "video"        # the modality whose model is frozen and transfers (03)
target = "imu"          # the modality that runs alone at inference
''' + RUN_PARAMS),
        code(CHECK + SETUP_IMPORTS + '''from dcatkit.experiment import format_table, metrics_table, train_unimodal
from dcatkit.model import build_model
from dcatkit.presets import get_preset

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed, device=device)
''' + DATA_OPTS + '''
out = paths.out_path(out_dir, "02_unimodal")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={split!r} source={source!r} target={target!r} preset={preset!r} "
      f"epochs={epochs} source_epochs={source_epochs} seed={seed}")
print(f"loader options: {data_opts}")'''),
        md("## 1. Data"),
        code(f"{LOAD}\n{ONLY}\n{CKPT}"),
        md(r"""
## 2. What one classifier computes

Each modality's classifier is its encoder (a 1D CNN for IMU, a ResNet per frame for video, a
PANNs CNN on log-mels for audio) producing a sequence of embeddings $E \in \mathbb{R}^{T\times
d_\text{model}}$, then one self-attention layer. Eq. (1) projects $E$ to queries, keys and values,
$Q = EW_Q$, $K = EW_K$, $V = EW_V$, and Eq. (2) mixes the sequence:

$$\text{Self-Attention}(K, Q, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_\text{out}}}\right)V \qquad (2)$$

The output is averaged over time and classified by a linear head. The model also returns
$Q, K, V$: D-CAT's loss needs them. One untrained model on one batch:
"""),
        code('''import torch

for m in (source, target):
    p = get_preset(preset, m, dataset)
    model = build_model(m, splits.train.num_classes, splits.train.input_shape(m), p)
    x = torch.stack([splits.train[i][m] for i in range(4)])
    o = model.eval()(x)                                             # Eq. (1) and (2) inside
    print(f"{m:>5}: input {tuple(x.shape)} -> logits {tuple(o.logits.shape)}, "
          f"Q/K/V {tuple(o.k.shape)} (B, T, d_out); {sum(q.numel() for q in model.parameters()):,} parameters")'''),
        md(r"""
## 3. Train with cross-entropy

Both models minimise the cross-entropy of Eq. (18) with Adam (the preset's learning rate and
weight decay); the epoch with the best validation macro-F1 is kept and tested:

$$L_{CE} = -\frac{1}{N}\sum_{n=1}^{N}\log\frac{\exp(x_{n,y_n})}{\sum_{c=1}^{C}\exp(x_{n,c})} \qquad (18)$$
"""),
        code('''runs = {}
for role, m, ep, ck in (("source", source, source_epochs, ck_source), ("baseline", target, epochs, ck_baseline)):
    t0 = time.perf_counter()
    runs[role] = train_unimodal(only(m), m, preset=preset, dataset=dataset, epochs=ep, seed=seed, device=device,
                                checkpoint=ck, progress=False, name=f"{m} {role}")
    r = runs[role]
    print(f"{r.name}: {len(r.history)} epochs in {time.perf_counter() - t0:.0f}s, best val F1 "
          f"{r.meta['best_val']['f1']:.3f} (epoch {r.meta['best_val']['epoch']}), "
          f"test F1 {r.test['f1']:.3f} -> {paths.shown(ck)}")'''),
        md("""
## 4. Test metrics

Accuracy and macro precision / recall / F1 on the held-out test split (paper Sec. V-D). In the
paper the stronger modality (video, audio) is the natural source for the weaker one (IMU).
"""),
        code('''table = metrics_table(list(runs.values()))
print(format_table(table))
files = report.write_results(report.tidy(table, dataset=dataset, split=split, preset=preset, seed=seed,
                                         data_seed=data_seed, epochs=epochs, source_epochs=source_epochs),
                             out, f"unimodal-{dataset}-{split}-{source}-{target}-seed{seed}",
                             params=dict(dataset=dataset, split=split, source=source, target=target, preset=preset,
                                         epochs=epochs, source_epochs=source_epochs, seed=seed, data_seed=data_seed,
                                         data=data_opts))
print("wrote", ", ".join(paths.shown(p) for p in files.values()))'''),
        code('''fig = plots.training_curves({r.name: r.history for r in runs.values()}, ("train_ce", "val_f1"))
plots.save(fig, fig_dir, "02_training_curves")
plt.show()'''),
    ])


# ----------------------------------------------------------------------------- 03

def nb03():
    return notebook([
        md(f"""
# 03 — D-CAT: transfer from a frozen source
{DCAT_INTRO}
This notebook runs the paper's comparison for one source → target pair and one seed:

| run | trained with | at inference |
|---|---|---|
| source | cross-entropy, then frozen | source modality |
| baseline | cross-entropy (Eq. 18) | target only |
| **D-CAT** | cross-entropy + λ · masked L_CA (Eqs. 17, 19) | target only |
| No MCMA | cross-entropy + λ · L_CA on every sample (Eqs. 7, 19) | target only |

The frozen source is loaded from the checkpoint notebook 02 wrote (trained here if absent).
A sweep: `papermill notebooks/03_transfer.ipynb out.ipynb -p lam 0.1` (from the repo root or
from `notebooks/`: relative paths are resolved against the repository).

Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
`cache_dir`, `source`, `target`, `lam`, `loss`, `preset`, `epochs`, `source_epochs`, `seed`,
`device`, `out_dir`, `figures_dir`.
"""),
        params(DATA_PARAMS + '''
# --- transfer ---------------------------------------------------------------------
source = "video"        # frozen source modality
target = "imu"          # target modality (runs alone at inference)
lam = 1.0               # lambda of Eq. (19), non-negative; the paper uses 1
loss = "dcat"           # transfer loss, by name in dcatkit.losses.LOSSES
''' + RUN_PARAMS),
        code(CHECK + SETUP_IMPORTS + '''import torch

from dcatkit.experiment import Run, format_table, load_source, metrics_table, train_transfer, train_unimodal
from dcatkit.losses import LOSSES, cross_attention_loss, cross_attention_loss_dense, get_loss
from dcatkit.model import build_model
from dcatkit.presets import get_preset
from dcatkit.train import evaluate

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             lam=lam, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             device=device)
get_loss(loss)                                                     # unknown loss name -> ValueError
''' + DATA_OPTS + '''
mcma = True                                                        # the D-CAT run; No MCMA is run as well
out = paths.out_path(out_dir, "03_transfer")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
print(f"dataset={dataset!r} split={split!r} {source} -> {target}, lam={lam}, loss={loss!r}, preset={preset!r}, "
      f"epochs={epochs}, source_epochs={source_epochs}, seed={seed}")
print(f"loader options: {data_opts}")'''),
        md("## 1. Data and the frozen source"),
        code(f"{LOAD}\n{ONLY}\n{CKPT}\n{CKPT_DCAT}\n{SOURCE}"),
        md(r"""
## 2. The cross-attention loss on one batch

Cross-attention (Eq. 3) would let the target's queries attend to the source's keys and values:

$$\text{Cross-Attention}(K, Q, V) = \mathrm{softmax}\!\left(\frac{Q_B K_A^\top}{\sqrt{d_\text{out}}}\right) V_A \qquad (3)$$

but then the target could not run without the source. D-CAT instead only asks, during training,
that the target's own attention agree with what cross-attention would give:

$$Q_B K_B^\top V_B \approx Q_B K_A^\top V_A \qquad (4)$$

Factoring out $Q_B$ and dropping softmax and scaling, with $\overline{M} = M / \|M\|_F$, the
cross-attention loss compares two $d \times d$ matrices per sample:

$$L_{CA} = \left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (7)$$

The source's sequence length $T_A$ may differ from the target's $T_B$: both products are
$d \times d$. `dcatkit.losses.cross_attention_loss` computes Eq. (7) without forming the
$d\times d$ matrices (a Gram-matrix identity); `cross_attention_loss_dense` is the literal
formula. On one batch, with an untrained target:
"""),
        code('''torch.manual_seed(seed)
target_model = build_model(target, splits.train.num_classes, splits.train.input_shape(target),
                           get_preset(preset, target, dataset)).eval()
batch = next(iter(torch.utils.data.DataLoader(splits.train, batch_size=16)))
with torch.no_grad():
    out_a = src.model.eval()(batch[source])                       # source: K_A, V_A  (B, T_A, d)
    out_b = target_model(batch[target])                           # target: K_B, V_B  (B, T_B, d)
    l_ca = cross_attention_loss(out_b.k, out_b.v, out_a.k, out_a.v)              # Eq. (7)
    l_dense = cross_attention_loss_dense(out_b.k, out_b.v, out_a.k, out_a.v)     # same, literally
print(f"K_A {tuple(out_a.k.shape)}, K_B {tuple(out_b.k.shape)}")
print(f"L_CA = {l_ca.item():.6f} (Gram form)  {l_dense.item():.6f} (dense form); lies in [0, 2]")'''),
        md(r"""
**Masked cross-modal alignment (MCMA).** The source is no oracle: where it misclassifies a
sample, its keys and values are not worth copying. The indicator of Eq. (16) is 1 when the
frozen source classifies $x$ correctly, and the loss only counts those samples:

$$L_{CA} = \mathbb{1}(x)\cdot\left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (17)$$

(averaged over the masked-in samples of the batch; our choice, the paper does not say).
"""),
        code('''correct = out_a.logits.argmax(1) == batch["label"]                 # the indicator of Eq. (16)
with torch.no_grad():
    l_masked = cross_attention_loss(out_b.k, out_b.v, out_a.k, out_a.v, mask=correct)   # Eq. (17)
print(f"source correct on {int(correct.sum())}/{len(correct)} samples of this batch; "
      f"masked L_CA = {l_masked.item():.6f}")'''),
        md(r"""
## 3. Baseline and D-CAT

The full objective of the target (Eq. 19): cross-entropy plus λ times the cross-attention loss,
the source frozen throughout (only the target's encoder, attention and head learn):

$$\text{Loss} = L_{CE} + \lambda\, L_{CA} \qquad (19)$$

The baseline is the same target model, same seed (same initial weights), trained with
$\lambda = 0$ — i.e. cross-entropy alone (Eq. 18). D-CAT uses the masked loss (Eq. 17), "No MCMA"
the unmasked one (Eq. 7). The frozen source's keys, values and correctness per training sample
are constants, so `train_transfer` computes them once and caches them (see `dcatkit.source_cache`).
"""),
        code('''t0 = time.perf_counter()
base = train_unimodal(only(target), target, preset=preset, dataset=dataset, epochs=epochs, seed=seed, device=device,
                      checkpoint=ck_baseline, progress=False, name=f"{target} baseline")
print(f"baseline ({target}, Eq. 18): test F1 {base.test['f1']:.3f} ({time.perf_counter() - t0:.0f}s)")

t0 = time.perf_counter()
dcat = train_transfer(splits, src, target, lam=lam, mcma=True, loss=loss, preset=preset, dataset=dataset,
                      epochs=epochs, seed=seed, device=device, checkpoint=ck_dcat, progress=False, name="D-CAT")
print(f"D-CAT ({source} -> {target}, Eqs. 17 + 19, lam={lam}): test F1 {dcat.test['f1']:.3f} "
      f"({time.perf_counter() - t0:.0f}s)")

t0 = time.perf_counter()
ck_nomcma = paths.checkpoint_path(out_dir, f"dcat-{source}-{target}", **data_key, epochs=epochs, seed=seed,
                                  source_epochs=source_epochs, lam=lam, mcma=False, loss=loss)
nomcma = train_transfer(splits, src, target, lam=lam, mcma=False, loss=loss, preset=preset, dataset=dataset,
                        epochs=epochs, seed=seed, device=device, checkpoint=ck_nomcma, progress=False, name="No MCMA")
print(f"No MCMA (Eqs. 7 + 19): test F1 {nomcma.test['f1']:.3f} ({time.perf_counter() - t0:.0f}s)")'''),
        md("""
## 4. Results

Test metrics of the four runs; `delta_*` columns are against the baseline. The verdict below
is computed from these numbers (a gain or loss within 0.005 F1 counts as "about the same"); one
seed on small data is noisy — notebook 04 repeats over seeds.
"""),
        code('''table = metrics_table([src, base, dcat, nomcma], baseline=base.name)
print(format_table(table))
print()
print(report.describe_change(table, base.name, ["D-CAT", "No MCMA"]))'''),
        code('''run_params = dict(dataset=dataset, split=split, source=source, target=target, lam=lam, loss=loss, preset=preset,
                  epochs=epochs, source_epochs=source_epochs, seed=seed, data_seed=data_seed)
files = report.write_results(report.tidy(table, **run_params), out,
                             f"transfer-{dataset}-{split}-{source}-{target}-lam{lam:g}-seed{seed}",
                             params={**run_params, "data": data_opts})
print("wrote", ", ".join(paths.shown(p) for p in files.values()))'''),
        code('''fig = plots.metrics_bars(table, title=f"{dataset} ({split}): {source} -> {target}, λ = {lam:g}, seed {seed}")
plots.save(fig, fig_dir, "03_metrics")
plt.show()
fig = plots.training_curves({r.name: r.history for r in (base, dcat, nomcma)}, ("train_ce", "train_ca", "val_f1"))
plots.save(fig, fig_dir, "03_training_curves")
plt.show()'''),
        md("""
`train_ca` is $L_{CA}$ averaged over each epoch: it falls as the target's keys and values align
with the source's (for D-CAT, over the samples the source gets right). Whether that alignment
helps the target's F1 is what the table above measures.
"""),
    ])


# ----------------------------------------------------------------------------- 04

def nb04():
    return notebook([
        md(f"""
# 04 — Ablation: the weight λ and masked alignment
{DCAT_INTRO}
λ balances the two terms of the objective (Eq. 19); the paper varies it over
{{0.01, 0.1, 1, 10}} on its OOD split (Table IV) and finds results best around λ = 1 with
little change between 0.01 and 1, and worse at 10. Here the grid is λ × MCMA on/off ×
seeds, against the baseline trained with the same seeds. The frozen source is shared by every
run (loaded from notebook 02's checkpoint, trained if absent), so the spread over seeds is the
target's.

Cost: `len(lams) × len(mcma_options) × len(seeds)` transfer runs plus `len(seeds)` baselines
(24 + 3 with the defaults: about 6–7 minutes on a 2-core CPU with the synthetic preset, ~14 s a
run, since the frozen source's outputs are computed once and cached).

Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
`cache_dir`, `source`, `target`, `lams`, `mcma_options`, `seeds`, `loss`, `preset`, `epochs`,
`source_epochs`, `seed` (the source's), `device`, `out_dir`, `figures_dir`.
"""),
        params(DATA_PARAMS + '''
# --- the grid -----------------------------------------------------------------------
source = "video"
target = "imu"
lams = [0.01, 0.1, 1.0, 10.0]   # lambdas of Eq. (19), each non-negative (paper Table IV)
mcma_options = [True, False]     # masked alignment (Eq. 17) on / off (Eq. 7)
seeds = [0, 1, 2]                # target seeds (baseline and transfer share each seed's initial weights)
loss = "dcat"
''' + RUN_PARAMS),
        code(CHECK + SETUP_IMPORTS + '''import pandas as pd

from dcatkit.experiment import Run, load_source, train_transfer, train_unimodal
from dcatkit.losses import get_loss
from dcatkit.train import evaluate

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             lams=lams, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             seeds=seeds, device=device)
get_loss(loss)
if not mcma_options or any(not isinstance(m, bool) for m in mcma_options):
    raise ValueError(f"mcma_options must be a non-empty list of True/False, got {mcma_options!r}")
''' + DATA_OPTS + '''
out = paths.out_path(out_dir, "04_lambda_ablation")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
n_runs = len(lams) * len(mcma_options) * len(seeds)
print(f"dataset={dataset!r} split={split!r} {source} -> {target}, lams={lams}, mcma={mcma_options}, seeds={seeds}, "
      f"preset={preset!r}, epochs={epochs}: {n_runs} transfer runs + {len(seeds)} baselines")
print(f"loader options: {data_opts}")'''),
        md("## 1. Data and the frozen source"),
        code(f"{LOAD}\n{ONLY}\n{CKPT}\n{SOURCE}"),
        md(r"""
## 2. The grid

For every seed: the baseline (Eq. 18), then for every λ and MCMA setting a D-CAT target trained
with

$$\text{Loss} = L_{CE} + \lambda\, L_{CA}, \qquad L_{CA} = \mathbb{1}(x)\cdot\left\|\overline{K_B^\top V_B} - \overline{K_A^\top V_A}\right\|_F \qquad (19),\,(17)$$

($\mathbb{1}(x) \equiv 1$ without MCMA, i.e. Eq. 7). One row per run is kept.
"""),
        code('''rows, t_all = [], time.perf_counter()
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
print("wrote", ", ".join(paths.shown(p) for p in files.values()))'''),
        md("""
## 3. Table IV layout

Mean ± standard deviation over seeds (columns in the paper's order: accuracy, recall, precision,
F1). The paper's Table IV has one run per cell; here every cell is repeated over `seeds`.
"""),
        code('''table4 = report.ablation_table(grid)
print(table4.to_string())
table4.to_csv(out / f"table4-{dataset}-{split}-{source}-{target}.csv")'''),
        md("""
## 4. F1 against λ

Lines: mean over seeds; bands: ± 1 std; dots: single seeds. The dashed line is the baseline's
mean F1 (its band ± 1 std).
"""),
        code('''fig = plots.lambda_curve(grid, "f1")
plots.save(fig, fig_dir, "04_lambda_f1")
plt.show()'''),
        md("""
## 5. As measured

For each variant: the λ with the best mean F1, its mean ± std over seeds, the baseline's mean,
the difference, and on how many seeds it beat that seed's baseline. Computed from the grid, not
written by hand: with few seeds a difference smaller than the spread in the table is noise.
"""),
        code('''best = report.best_lambda(grid, "f1")
print(best.to_string(float_format=lambda v: f"{v:.3f}"))'''),
    ])


# ----------------------------------------------------------------------------- 05

def nb05():
    return notebook([
        md(f"""
# 05 — Confusion analysis: what transfer fixed and what it broke
{DCAT_INTRO}
Averages hide where a change comes from. This notebook puts the baseline and the D-CAT target
side by side on the test split: their confusion matrices, the F1 of each class, and the class
pairs that transfer separated better ("fixed") or worse ("broke").

The models are the checkpoints notebook 03 wrote for the same parameters (trained here if
absent).

Parameters: `dataset`, `data_root`, `split`, `data_seed`, `n_samples`, `frame_size`, `n_frames`,
`cache_dir`, `source`, `target`, `lam`, `mcma`, `loss`, `preset`, `epochs`, `source_epochs`,
`seed`, `device`, `out_dir`, `figures_dir`.
"""),
        params(DATA_PARAMS + '''
# --- which D-CAT model ----------------------------------------------------------------
source = "video"
target = "imu"
lam = 1.0               # lambda of Eq. (19)
mcma = True             # True: D-CAT with masked alignment (Eq. 17); False: No MCMA (Eq. 7)
loss = "dcat"
''' + RUN_PARAMS),
        code(CHECK + SETUP_IMPORTS + '''from dcatkit.experiment import Run, load_source, train_transfer, train_unimodal
from dcatkit.losses import get_loss
from dcatkit.metrics import classification_metrics
from dcatkit.train import evaluate, load_checkpoint, predict

checked = paths.check_params(dataset=dataset, data_root=data_root, split=split, source=source, target=target,
                             lam=lam, preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed,
                             device=device)
get_loss(loss)
if not isinstance(mcma, bool):
    raise ValueError(f"mcma must be True or False, got {mcma!r}")
''' + DATA_OPTS + '''
out = paths.out_path(out_dir, "05_confusion_analysis")
fig_dir = paths.resolve(figures_dir)
sns.set_theme(style="whitegrid")
dcat_name = "D-CAT" if mcma else "D-CAT (no MCMA)"
print(f"dataset={dataset!r} split={split!r} {source} -> {target}, lam={lam}, mcma={mcma}, loss={loss!r}, "
      f"preset={preset!r}, epochs={epochs}, seed={seed}")
print(f"loader options: {data_opts}")'''),
        md("## 1. Data and the two models"),
        code(f"{LOAD}\n{ONLY}\n{CKPT}\n{CKPT_DCAT}" + '''
if ck_baseline.is_file():
    base_model, _ = load_checkpoint(ck_baseline)
    print(f"baseline: loaded {paths.shown(ck_baseline)}")
else:
    base_model = train_unimodal(only(target), target, preset=preset, dataset=dataset, epochs=epochs, seed=seed,
                                device=device, checkpoint=ck_baseline, progress=False).model
    print(f"baseline: trained, saved to {paths.shown(ck_baseline)}")
if ck_dcat.is_file():
    dcat_model, _ = load_checkpoint(ck_dcat)
    print(f"{dcat_name}: loaded {paths.shown(ck_dcat)}")
else:
''' + "\n".join("    " + line for line in SOURCE.splitlines()) + '''
    dcat_model = train_transfer(splits, src, target, lam=lam, mcma=mcma, loss=loss, preset=preset, dataset=dataset,
                                epochs=epochs, seed=seed, device=device, checkpoint=ck_dcat, progress=False).model
    print(f"{dcat_name}: trained, saved to {paths.shown(ck_dcat)}")'''),
        md("""
## 2. Predictions and confusion matrices

Both models see only the target modality of the test split. Rows of a confusion matrix are the
true classes, columns the predicted ones; colour is the share of the true class (recall on the
diagonal), numbers are counts.
"""),
        code('''test = splits.test
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
plt.show()'''),
        md(r"""
## 3. Per-class F1 change

$F1_c = 2\,TP_c / (2\,TP_c + FP_c + FN_c)$ from each confusion matrix, and its change
D-CAT − baseline. The macro-F1 of the other notebooks is the mean of these.
"""),
        code('''change = report.per_class_change(m_base["confusion"], m_dcat["confusion"], splits.classes)
print(change.to_string(float_format=lambda v: f"{v:.3f}"))
fig = plots.f1_change(change, title=f"per-class F1 change ({dcat_name} − baseline)")
plots.save(fig, fig_dir, "05_f1_change")
plt.show()'''),
        md("""
## 4. Class pairs fixed or broken

For every pair of classes, how many test samples of one were predicted as the other (both
directions), under each model. "fixed": transfer confuses the pair less; "broke": more. In the
synthetic data the IMU-confusable pairs are drinking/reading, sweep_floor/open_close_door,
cut_fruits/wash_hand and type_pc/type_phone — the pairs video tells apart easily.
"""),
        code('''pairs = report.pair_changes(m_base["confusion"], m_dcat["confusion"], splits.classes)
print(pairs.to_string(index=False))
f = report.flips(y, p_base, p_dcat)
print(f"\\nsample by sample: {f['fixed']} fixed (baseline wrong, {dcat_name} right), {f['broke']} broke "
      f"(baseline right, {dcat_name} wrong), {f['both_right']} both right, {f['both_wrong']} both wrong, of {f['n']}")'''),
        code('''run_params = dict(dataset=dataset, split=split, source=source, target=target, lam=lam, mcma=mcma, loss=loss,
                  preset=preset, epochs=epochs, source_epochs=source_epochs, seed=seed, data_seed=data_seed)
stem = f"{dataset}-{split}-{source}-{target}-lam{lam:g}-{'mcma' if mcma else 'nomcma'}-seed{seed}"
written = [*report.write_results(change, out, f"per_class-{stem}", params=run_params).values(),
           *report.write_results(pairs, out, f"pairs-{stem}", params={**run_params, "flips": f}).values()]
print("wrote", ", ".join(paths.shown(p) for p in written))'''),
    ])


BUILDERS = {"01_preprocessing": nb01, "02_unimodal": nb02, "03_transfer": nb03,
            "04_lambda_ablation": nb04, "05_confusion_analysis": nb05}


def main(names: list[str] | None = None) -> None:
    """Write the notebooks named (all by default), e.g. ``build_notebooks.py 03_transfer``."""
    unknown = set(names or ()) - set(BUILDERS)
    if unknown:
        raise SystemExit(f"unknown notebooks {sorted(unknown)}: expected some of {list(BUILDERS)}")
    for name, build in BUILDERS.items():
        if names and name not in names:
            continue
        nb = build()
        nbformat.validate(nb)
        nbformat.write(nb, HERE / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb ({len(nb.cells)} cells)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
