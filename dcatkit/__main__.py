r"""Command line: ``python -m dcatkit {demo,train,transfer,sweep} ...`` (all call dcatkit.experiment
or dcatkit.sweep).

    python -m dcatkit demo --seeds 0 1 2          # video -> IMU on the synthetic data
    python -m dcatkit train --modality video --out runs/video.pt
    python -m dcatkit transfer --source-ckpt runs/video.pt --target imu --lam 1.0 --method kd --out runs/imu.pt
    python -m dcatkit transfer --source-ckpt runs/video.pt --source-ckpt runs/audio.pt --target imu \
        --lam video=1.0 --lam audio=0.5 --out runs/imu2.pt      # several frozen sources
    python -m dcatkit sweep --methods none dcat kd --sizes 300 700 2000 --seeds 0-9 --out runs/sweep
    python -m dcatkit sweep --seeds 0-9 --data-seeds 0-2 --split group_kfold:5 --out runs/cv   # draws x folds
    python -m dcatkit sweep --seeds 0-9 --shard 2/4 --out runs/big     # shard 2 of 4 (or --shard auto
    python -m dcatkit sweep --seeds 0-9 --gather --out runs/big        #  in a SLURM array), then gather

Runs under ``torchrun --nproc_per_node=N -m dcatkit ...`` unchanged
(rank 0 prints and writes). Bad input stops a command with exit status 2 and
``dcatkit: error: <what was expected, what was found>``, before anything trains where
it can be checked then: a source checkpoint that does not fit the run (it saw this
run's validation or test samples, other classes, ...: ``dcatkit.provenance.SourceMismatch``),
a negative lambda, a grid without its baseline, an output path that is a folder, ...
``DCATKIT_TRACEBACK=1`` shows where such an error was raised.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import distributed as dist
from .data import LOAD_ARGS, load
from .data.synthetic import DEFAULT_N_SAMPLES
from .experiment import (check_compare_outputs, compare, format_table, summarise_seeds, train_transfer,
                         train_unimodal)
from .presets import PRESET_NAMES
from .provenance import SourceMismatch
from .runner import RunsFailed


DATASET_HELP = "synthetic | uestc | cough | vggsound | arrays (your own sensors, saved by dcatkit.data.save_arrays)"
ROOT_HELP = "dataset folder (not for synthetic; for arrays: the .npz file)"


PRESET_HELP = " | ".join(PRESET_NAMES) + " (uestc-target: Table I's UESTC IMU row for the target)"


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="synthetic", help=DATASET_HELP)
    p.add_argument("--root", default=None, help=ROOT_HELP)
    p.add_argument("--split", default="id", type=_split, metavar="SPLIT", help=SPLIT_HELP)
    p.add_argument("--fold", type=int, default=None, help="the fold of a cross-validation split (from 0)")
    p.add_argument("--n-samples", type=_positive, default=None,
                   help=f"synthetic data only (default: the simulator's, {DEFAULT_N_SAMPLES})")
    p.add_argument("--preset", default="synthetic", help=PRESET_HELP)
    p.add_argument("--device", default="auto", type=_device, help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--data-seed", type=_nonneg, default=0, help="seed of the data split (and synthetic data)")
    p.add_argument("--data-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the data loader, e.g. on_error=skip, subject_map=map.csv or frame_size=112 "
                        "(repeatable)")


SPLIT_HELP = ("id (stratified), ood (subject-disjoint), loso (leave one subject out), group_kfold:K "
              "(K folds over subjects) or lists (UESTC's published train/val/test lists)")


def _split(text: str) -> str | list:
    """--split: "id", "ood", "loso", "lists" or "group_kfold:K" -> what ``data.load(split=)`` takes."""
    from .data.splits import parse_split

    kind, sep, k = text.partition(":")
    try:
        if kind == "group_kfold" and sep:
            if not k.isdigit() or int(k) < 2:
                raise ValueError(f"group_kfold:K needs an integer K >= 2 (the number of folds), got {k!r}")
            return list(parse_split(("group_kfold", int(k))))
        if not sep and text != "group_kfold":
            return parse_split(text)[0]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e}".replace("('group_kfold', k) (k folds", "group_kfold:K (K folds")
                                         ) from None
    raise argparse.ArgumentTypeError(f"expected {SPLIT_HELP}; got {text!r}")


def _option(text: str) -> tuple[str, object]:
    """--option KEY=VALUE: VALUE read as JSON (numbers, true/false), else kept as a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. kd_temperature=2), got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _lams(items: list[str]) -> float | dict:
    """--lam values: none -> 1.0; one number -> that number for every source;
    NAME=VALUE entries -> {NAME: VALUE} (one per source modality)."""
    if not items:
        return 1.0
    named = ["=" in it for it in items]
    try:
        if not any(named) and len(items) == 1:
            return float(items[0])
        if all(named):
            pairs = [it.split("=", 1) for it in items]
            if len({k for k, _ in pairs}) != len(pairs):
                raise SystemExit(f"dcatkit: error: --lam names a modality twice: {items}")
            return {k: float(v) for k, v in pairs}
    except ValueError:
        raise SystemExit(f"dcatkit: error: --lam takes a number or NAME=NUMBER, got {items}") from None
    raise SystemExit(f"dcatkit: error: --lam takes one number for all sources or NAME=NUMBER per source, "
                     f"not a mix or several numbers: got {items}")


def _seeds(items: list[str], flag: str = "--seeds") -> list[int]:
    """Seeds (or folds: ``flag`` names the option in messages) as numbers and ranges: ["0-3", "7"]
    -> [0, 1, 2, 3, 7] (numbers >= 0, ranges upwards)."""
    out = []
    for it in items:
        lo, dash, hi = it.partition("-")
        try:
            first, last = int(lo), (int(hi) if dash else int(lo))
        except ValueError:
            raise SystemExit(f"dcatkit: error: {flag} takes numbers >= 0 or ranges like 0-9, got {it!r}") from None
        if last < first:
            raise SystemExit(f"dcatkit: error: the {flag} range {it!r} runs downwards: write it low-high, e.g. "
                             f"{last}-{first}")
        out += list(range(first, last + 1))
    return out


def _nonneg(text: str) -> int:
    """An integer >= 0 (seeds)."""
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return v


def _positive(text: str) -> int:
    """An integer >= 1 (a count of labelled recordings)."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def _device(text: str) -> str:
    """--device: 'auto', or a device torch knows and this machine has."""
    if text != "auto":
        from .runtime import resolve_device
        try:
            resolve_device(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _sweep(a) -> int:
    from .report import write_results
    from .sweep import (STUDY_METRIC, check_data_options, control_studies, parse_shard, run_studies,
                        run_transfer_sweep, summarise_studies, summarise_study)

    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise SystemExit("dcatkit: error: sweep runs its own worker processes: start it with python -m dcatkit, "
                         "not under torchrun (every rank would run the whole grid); --shard splits it across "
                         "machines")
    if a.quick:                       # a smoke run's sizes and epochs, where not given
        a.sizes = [160] if a.sizes == [None] and a.dataset == "synthetic" else a.sizes
        a.epochs_source = 1 if a.epochs_source is None else a.epochs_source
        a.epochs_target = 1 if a.epochs_target is None else a.epochs_target
    seeds = _seeds(a.seeds)
    if a.gather and a.shard is not None:
        raise SystemExit("dcatkit: error: --gather reads the runs of every shard: give it without --shard")
    try:
        shard = parse_shard(a.shard)
    except ValueError as e:
        raise SystemExit(f"dcatkit: error: --shard: {e}") from None
    folds = _seeds(a.folds, "--folds") if a.folds else None
    check_data_options(a.dataset, dict(a.data_option))   # before the fold count below loads with them
    if isinstance(a.split, list) or a.split == "loso":      # count the folds on the first draw
        n_folds = len(load(a.dataset, root=a.root, split=a.split, seed=seeds[0],
                           **({"n_samples": a.sizes[0]} if a.sizes[0] and a.dataset == "synthetic" else {}),
                           **dict(a.data_option)))
        if folds is None:
            folds = list(range(n_folds))
        elif max(folds) >= n_folds:
            raise SystemExit(f"dcatkit: error: --folds {a.folds}: split {a.split!r} has {n_folds} folds "
                             f"(0 .. {n_folds - 1})")
    elif folds is not None:
        raise SystemExit(f"dcatkit: error: --folds needs a cross-validation --split (loso, group_kfold:K), "
                         f"got {a.split!r}")
    if a.control_labels is not None and not a.controls:
        raise SystemExit("dcatkit: error: --control-labels sets the positive control's labels: give it with "
                         "--controls")
    common = dict(seeds=seeds, data_seeds=_seeds(a.data_seeds, "--data-seeds") if a.data_seeds else None, workers=a.workers,
                  redo=a.redo, device=a.device, shard=shard, gather=a.gather, dataset=a.dataset,
                  root=a.root, split=a.split, regime=a.regime if a.dataset == "synthetic" else None,
                  source=a.source, target=a.target, preset=a.preset, mcma=not a.no_mcma,
                  epochs_source=a.epochs_source, epochs_target=a.epochs_target, options=dict(a.option) or None,
                  data_options=dict(a.data_option) or None,
                  **({"n_labeled": a.n_labeled} if a.n_labeled is not None else {}))
    if a.controls:
        df = run_studies(a.out, control_studies(a.methods, sizes=a.sizes, target=a.target,
                                                control_labels=a.control_labels, folds=folds),
                         lams=a.lams, **common)
    else:
        df = run_transfer_sweep(a.out, methods=a.methods, lams=a.lams, sizes=a.sizes, folds=folds, **common)
    if shard is not None:
        print(f"shard {shard[0]} of {shard[1]}: {len(df)} runs finished in {a.out}. When every shard is done, "
              "summarise with the same command, --gather instead of --shard.")
        return 0
    params = {k: v for k, v in vars(a).items() if k not in ("cmd", "shard", "gather")}
    write_results(df, a.out, "results", params)
    summary, per_draw = summarise_studies(df) if a.controls else summarise_study(df)
    for study in (dict.fromkeys(df["study"]) if a.controls else [None]):
        def part(t):
            return t if study is None or t is None else t[t["study"] == study]
        _print_study(a, study, part(df), STUDY_METRIC[study or "main"], part(summary), part(per_draw))
    if not a.controls:
        print("\nNo controls ran beside this grid: --controls adds a negative control (the target's inputs "
              "shuffled: no method can move its recall above chance, in expectation) and a positive control (a "
              "teacher of the target's own sensor, few labels: transfer should help) on the same data, seeds and "
              "methods.")
    write_results(summary, a.out, "summary", params)
    if per_draw is not None:
        write_results(per_draw, a.out, "summary_per_draw", params)
    return 0


STUDY_TEXT = {
    "negative control": "the target's inputs shuffled within each part (data.controls.break_pairing): every "
                        "run's expected recall is its chance, so recall above chance has expectation 0 for every "
                        "method and a call here is a false one",
    "positive control": "the source is a copy of the target's own sensor trained on every label, the target "
                        "keeps few labels plus unlabeled pairs (data.controls.with_teacher): transfer should help",
}


def _chance_line(df) -> str:
    """The negative control's chance, from each run's ``chance_recall``: 1 / classes only
    when every class has test samples (macro recall averages over those present), and then
    the same for every method; otherwise said to vary, with its range."""
    lo, hi = df["chance_recall"].min(), df["chance_recall"].max()
    if hi - lo < 1e-9:
        return f"chance: {lo:.3f} (every method's expected recall)"
    return (f"chance: {lo:.3f} to {hi:.3f} by run (column chance_recall: a run's expected recall is the mean, "
            "over the classes with test samples, of the share of its predictions naming each; with classes "
            "absent from a test part it is not 1 / classes and can differ between methods)")


def _labels_line(df) -> str:
    """The positive control's few labels and the room it leaves, per size (and fold) when the
    grid has several: the labels kept differ with the training recordings. With several data
    draws whose training parts differ (a subject-disjoint split keeps other recordings in each),
    each draw's own counts and their range, not the first draw's for all."""
    keys = [c for c in ("n_samples", "fold") if c in df and df[c].nunique(dropna=False) > 1]
    parts = []
    for key, part in (df.groupby(keys, dropna=False, sort=True) if keys else [((), df)]):
        base = part[part.method == "none"]
        rows = base if len(base) else part                  # every method of a draw keeps the same labels
        by = "data_seed" if "data_seed" in rows else None
        counts = {d: sorted({(int(r.n_recordings), int(r.n_train), int(r.n_train + r.n_unlabeled))
                             for r in g.itertuples()})
                  for d, g in (rows.groupby(by, sort=True) if by else [(None, rows)])}
        distinct = sorted({c for cs in counts.values() for c in cs})
        where = ", ".join(f"{k} = {v}" for k, v in zip(keys, key if isinstance(key, tuple) else (key,)))
        if len(distinct) == 1:
            kept, n, total = distinct[0]
            said = f"{kept} training recordings ({n} of {total} samples, the rest unlabeled pairs)"
        else:
            lo, hi = min(c[0] for c in distinct), max(c[0] for c in distinct)
            span = f"{lo}" if lo == hi else f"{lo} to {hi}"
            each = "; ".join(f"{'' if d is None else f'draw {d}: '}{k} recordings, {n} of {t} samples"
                             for d, cs in counts.items() for k, n, t in cs)
            said = f"{span} training recordings by {'data draw' if by else 'run'} ({each}; the rest unlabeled pairs)"
        parts.append(f"{where + ': ' if where else ''}labels kept: {said}; the teacher's test F1 "
                     f"{part['source_f1'].mean():.3f} against the baseline's {base['f1'].mean():.3f}: the room a "
                     "transfer has here")
    return "\n".join(parts)


def _print_study(a, study: str | None, df, metric: str, summary, per_draw) -> None:
    """Print one study's table (``sweep.summarise_study``'s ``summary``), per-draw rows and
    verdicts (Holm within the study). The differences and bounds are printed as the verdicts
    write them (``stats.interval_table``: digits widen until no bound that is not 0 reads as 0),
    so a table never shows "-0.000" above a "hurts" read off a bound of -0.0003."""
    from .stats import interval_table, verdict

    pooled = "pooled over the data draws" if per_draw is not None else None
    cols = [c for c in ["n_samples", "method", "lam", "n", "mean", "std", "n_pairs", "n_draws", "draw_sd",
                        "diff_mean", "ci_low", "ci_high", "p_value"] if c in summary]
    draws = sorted(int(d) for d in df["data_seed"].unique()) if "data_seed" in df else None
    source = df["source"].iloc[0] if "source" in df else a.source
    name = {"f1": "macro-F1", "recall": "macro recall",
            "recall_above_chance": "macro recall above the run's chance (recall - chance_recall)"}.get(metric, metric)
    title = f"{study}: " if study else ""
    print(f"\n== {title}{source} -> {a.target}, {a.dataset}/{a.split}"
          f"{f', data draws {draws}' if draws is not None else ''}: test {name} and the paired difference to "
          f"the baseline (method none, same seed and data{'; ' + pooled if pooled else ''}), intervals adjusted "
          "for the cells printed together (95% family-wise) ==")
    if study in STUDY_TEXT:
        print(f"({STUDY_TEXT[study]})")
    if study == "negative control" and "chance_recall" in df:
        print(_chance_line(df))
    if study == "positive control":
        print(_labels_line(df))
    print(interval_table(summary, cols).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if per_draw is not None:
        dcols = [c for c in ["data_seed", *cols] if c in per_draw]
        print(f"\n== {title}per data draw (each alone; descriptive, not claims) ==\n"
              f"{interval_table(per_draw, dcols).to_string(index=False, float_format=lambda v: f'{v:.3f}')}")
    print(f"\n== {title}verdicts ==")
    for (m, lam), _ in summary[summary.method != "none"].groupby(["method", "lam"], sort=False):
        print(f"{m} (lambda = {lam:g}): {verdict(summary, method=m, lam=lam)}")


def _load(a):
    from .data import NAMES

    if a.dataset not in NAMES:                # a typo is not a real dataset (the --n-samples check below says so)
        raise SystemExit(f"dcatkit: error: unknown dataset {a.dataset!r}: expected one of {NAMES}")
    if a.n_samples is not None and a.dataset != "synthetic":
        raise SystemExit(f"dcatkit: error: --n-samples sizes the synthetic data only: --dataset {a.dataset} "
                         f"has the recordings under --root (got --n-samples {a.n_samples})")
    opts = {"n_samples": a.n_samples} if a.n_samples is not None else {}
    own = sorted((LOAD_ARGS | set(opts)) & set(dict(a.data_option)))
    if own:
        raise ValueError(f"--data-option {own[0]}=...: {own} are set by the command's own flags (--root, --split, "
                         "--data-seed, --modality / --target, --n-samples), not by --data-option")
    got = load(a.dataset, root=a.root, split=a.split, seed=a.data_seed, **{**opts, **dict(a.data_option)})
    if isinstance(got, list):
        if a.fold is None or not 0 <= a.fold < len(got):
            raise SystemExit(f"dcatkit: error: --split {a.split if isinstance(a.split, str) else 'group_kfold:%d' % a.split[1]}"
                             f" has {len(got)} folds: give --fold 0 .. {len(got) - 1}, got {a.fold}")
        return got[a.fold]
    if a.fold is not None:
        raise SystemExit(f"dcatkit: error: --fold {a.fold} given, but --split {a.split} has no folds "
                         "(loso or group_kfold:K have)")
    return got


def _check_log_dir(path) -> None:
    """``--log-dir``: a folder that can be made, and tensorboard installed -- checked before the data
    loads and anything trains (both failed with a traceback after the source cache was built)."""
    p = Path(path)
    up = p
    while not up.exists() and up != up.parent:
        up = up.parent
    if up.exists() and not up.is_dir():
        raise SystemExit(f"dcatkit: error: --log-dir {p}: {up} is a file, not a folder: give a folder for the "
                         "TensorBoard event files")
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"dcatkit: error: --log-dir needs the tensorboard package ({e}): pip install tensorboard, "
                         "or leave --log-dir out") from None


def main(argv=None) -> int:
    """Exit status 0, or 2 with ``dcatkit: error: <what was expected and found>`` for bad input
    (a ValueError (UnreadableFile among them) / FileNotFoundError / SourceMismatch raised by the kit's checks) and no
    traceback; ``DCATKIT_TRACEBACK=1`` re-raises it, to see where it came from. Any other
    exception is a bug and keeps its traceback."""
    import os

    try:
        return _main(argv)
    except SystemExit as e:            # the CLI's own "dcatkit: error: ..." checks: the status of argparse's
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            return 2
        raise
    except (SourceMismatch, ValueError, FileNotFoundError) as e:     # UnreadableFile, NotFinished: ValueErrors
        if os.environ.get("DCATKIT_TRACEBACK") == "1":
            raise
        print(f"dcatkit: error: {e}\n(DCATKIT_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
        return 2
    except RunsFailed as e:            # the workers' tracebacks are in the message; finished runs are stored
        if os.environ.get("DCATKIT_TRACEBACK") == "1":
            raise
        print(f"dcatkit: {e}", file=sys.stderr)
        return 1


def _check_demo_outputs(a: argparse.Namespace) -> None:
    """Every file demo writes -- each seed's checkpoints (``experiment.compare_checkpoints``, the
    names ``compare`` saves under) and their resumable states, results and summary (.csv, .json) --
    checked before the first seed trains: a folder at seed 1's checkpoint stopped the command
    after seed 0 had trained, with no results written."""
    from .checkpoint import check_writable

    try:
        check_compare_outputs(a.out, source=a.source, target=a.target, seeds=a.seeds)
        for stem in ("summary", "results"):
            for ext in ("csv", "json"):
                check_writable(Path(a.out) / f"{stem}.{ext}", f"the demo's {stem} file")
    except ValueError as e:
        raise ValueError(f"{e} (demo writes these into --out {a.out}; nothing has trained: move it away or "
                         "give another --out)") from e


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dcatkit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="source + baseline + D-CAT + No-MCMA over seeds, printed as a table")
    _data_args(d)
    d.add_argument("--source", default="video")
    d.add_argument("--target", default="imu")
    d.add_argument("--lam", type=float, default=1.0)
    d.add_argument("--seeds", type=_nonneg, nargs="+", default=[0, 1, 2])
    d.add_argument("--out", default="runs/demo", help="folder for checkpoints and results.csv")
    d.add_argument("--epochs-source", type=_positive, default=None, help="default: the preset's")
    d.add_argument("--epochs-target", type=_positive, default=None, help="default: the preset's")
    d.add_argument("--quick", action="store_true", help="160 samples, 1 epoch each: a smoke run")
    t = sub.add_parser("train", help="train one unimodal model")
    _data_args(t)
    t.add_argument("--modality", required=True)
    t.add_argument("--epochs", type=_positive, default=None)
    t.add_argument("--seed", type=_nonneg, default=None)
    t.add_argument("--out", required=True, help="checkpoint path")
    t.add_argument("--resume", action="store_true", help="continue a killed run from <out>.state")
    t.add_argument("--log-dir", default=None, help="TensorBoard scalars per epoch (needs tensorboard)")
    x = sub.add_parser("transfer", help="train a target from a frozen source checkpoint (D-CAT or another method)")
    _data_args(x)
    x.add_argument("--source-ckpt", required=True, action="append",
                   help="a frozen source checkpoint; repeat it for several sources (one per modality)")
    x.add_argument("--target", required=True)
    x.add_argument("--method", default="dcat", help="transfer objective: none, dcat, kd, fitnet, contrastive, "
                                                     "dcat+kd (see dcatkit.objectives)")
    x.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the method, e.g. kd_temperature=2 (repeatable)")
    x.add_argument("--lam", action="append", default=[], metavar="LAM | NAME=LAM",
                   help="weight of the transfer term (default 1.0): one number for all sources, or "
                        "NAME=LAM per source modality (repeatable, e.g. --lam video=1 --lam audio=0.5)")
    x.add_argument("--no-mcma", action="store_true")
    x.add_argument("--trust-source", action="store_true",
                   help="use a source checkpoint without (complete) provenance, whose overlap with this run's "
                        "validation and test samples cannot be checked (recorded in the output and checkpoint)")
    x.add_argument("--epochs", type=_positive, default=None)
    x.add_argument("--seed", type=_nonneg, default=None)
    x.add_argument("--out", required=True, help="checkpoint path")
    x.add_argument("--resume", action="store_true", help="continue a killed run from <out>.state")
    x.add_argument("--log-dir", default=None, help="TensorBoard scalars per epoch (needs tensorboard)")
    w = sub.add_parser("sweep", help="methods x lambdas x sizes x seeds in parallel workers; paired CIs and verdicts")
    w.add_argument("--methods", nargs="+", default=["none", "dcat"], help="objectives; 'none' is the baseline")
    w.add_argument("--lams", type=float, nargs="+", default=[1.0])
    w.add_argument("--sizes", type=_positive, nargs="+", default=[None],
                   help="synthetic n_samples (default: the simulator's)")
    w.add_argument("--seeds", nargs="+", default=["0-9"],
                   help="numbers or ranges (0-9); the data seed is the training seed unless --data-seeds")
    w.add_argument("--data-seeds", nargs="+", default=None,
                   help="data draws as an axis (numbers or ranges, e.g. 0-2): each draw its own sources and "
                        "targets; verdicts pool the draws")
    w.add_argument("--dataset", default="synthetic", help=DATASET_HELP)
    w.add_argument("--root", default=None, help=ROOT_HELP)
    w.add_argument("--split", default="id", type=_split, metavar="SPLIT", help=SPLIT_HELP)
    w.add_argument("--folds", nargs="+", default=None,
                   help="folds of a cross-validation split (numbers or ranges; default: every fold)")
    w.add_argument("--regime", default="headroom", help="synthetic data: headroom | ambiguous (the older simulator, not a control)")
    w.add_argument("--data-option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the data loader, e.g. frame_size=16 or on_error=skip (any dataset; repeatable)")
    w.add_argument("--source", default="video")
    w.add_argument("--target", default="imu")
    w.add_argument("--preset", default="synthetic", help=PRESET_HELP)
    w.add_argument("--no-mcma", action="store_true")
    w.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE")
    w.add_argument("--epochs-source", type=_positive, default=None, help="default: the preset's")
    w.add_argument("--epochs-target", type=_positive, default=None, help="default: the preset's")
    w.add_argument("--workers", type=int, default=None,
                   help="default: one per CPU core; with CUDA, per GPU as many as fit its free memory "
                        "(at most its share of the cores)")
    w.add_argument("--redo", action="store_true", help="train finished runs and sources again instead of reading "
                                                       "them back")
    w.add_argument("--shard", default=None, metavar="K/N | auto/N | auto",
                   help="run only shard K of N of the grid (K from 1) into --out; 'auto/N': shard "
                        "SLURM_ARRAY_TASK_ID+1 of N, for a SLURM job array --array=0-(N-1) (a resubmission of "
                        "some of its tasks keeps its shards); 'auto': from SLURM_ARRAY_TASK_ID, _MIN, _COUNT")
    w.add_argument("--gather", action="store_true",
                   help="train nothing: read every shard's runs back from --out and summarise (a missing run is "
                        "an error naming it)")
    w.add_argument("--device", default="auto", type=_device, help="auto (CUDA when present), cpu, cuda or cuda:N")
    w.add_argument("--out", default="runs/sweep")
    w.add_argument("--quick", action="store_true", help="160 samples, 1 epoch each: a smoke run")
    w.add_argument("--controls", action="store_true",
                   help="run a negative control (the target's inputs shuffled) and a positive control (a teacher "
                        "of the target's own sensor, few labels) beside the grid: same methods, lambdas, seeds "
                        "and draws; each study its own Holm family")
    w.add_argument("--n-labeled", type=_positive, default=None, metavar="K",
                   help="the target keeps the labels of K training recordings, the rest are unlabeled pairs "
                        "(the frozen source trains on every label); default: every label. With --controls, the "
                        "main and negative studies; the positive control has --control-labels")
    w.add_argument("--control-labels", type=_positive, default=None, metavar="K",
                   help="the positive control's labelled training recordings (default: a tenth of them, at "
                        "least one per class)")
    a = ap.parse_args(argv)

    if a.cmd == "sweep":
        return _sweep(a)
    if getattr(a, "log_dir", None) is not None:
        _check_log_dir(a.log_dir)
    dist.init()
    if getattr(a, "quick", False):    # a smoke run's size and epochs where not given, as sweep --quick
        a.n_samples = 160 if a.n_samples is None and a.dataset == "synthetic" else a.n_samples
        a.epochs_source = 1 if a.epochs_source is None else a.epochs_source
        a.epochs_target = 1 if a.epochs_target is None else a.epochs_target
    if a.dataset == "synthetic" and a.n_samples is None:      # recorded with the results as used
        a.n_samples = DEFAULT_N_SAMPLES
    if a.cmd == "demo":
        twice = sorted({s for s in a.seeds if a.seeds.count(s) > 1})
        if twice:                      # the same run twice: its std "over seeds" would be 0, from one seed
            raise SystemExit(f"dcatkit: error: --seeds {' '.join(map(str, a.seeds))} names seed(s) {twice} more than "
                             "once: give each seed once (the mean and std over seeds count each seed's run once)")
        _check_demo_outputs(a)
    splits = _load(a)
    say = print if dist.is_main() else (lambda *_, **__: None)
    if a.cmd == "demo":
        out = Path(a.out)
        tables = []
        for seed in a.seeds:
            table, _ = compare(splits, source=a.source, target=a.target, lam=a.lam, preset=a.preset,
                               dataset=a.dataset, seed=seed, device=a.device, out_dir=out,
                               epochs={"source": a.epochs_source, "target": a.epochs_target},
                               progress=dist.is_main())
            say(f"\n== seed {seed} ==\n{format_table(table)}")
            tables.append(table)
        summary = summarise_seeds(tables)
        cols = ["accuracy", "precision", "recall", "f1", "delta_accuracy", "delta_precision", "delta_recall",
                "delta_f1"]
        say(f"\n== mean over seeds {a.seeds} ({a.source} -> {a.target}, lambda={a.lam}, "
            f"{a.dataset}/{a.split}) ==\n{format_table(summary[cols])}")
        say(f"\n== std over seeds ==\n{format_table(summary[[c + '_std' for c in cols]])}")
        if dist.is_main():               # results.csv / summary.csv (+ .json), with the environment
            import pandas as pd

            from .report import write_results
            params = {k: v for k, v in vars(a).items() if k != "cmd"}
            write_results(summary, out, "summary", params)
            write_results(pd.concat([t.assign(seed=s) for s, t in zip(a.seeds, tables)]), out, "results", params)
    elif a.cmd == "train":
        run = train_unimodal(splits, a.modality, preset=a.preset, dataset=a.dataset, epochs=a.epochs,
                             seed=a.seed, device=a.device, checkpoint=a.out, progress=dist.is_main(),
                             resume=a.resume, log_dir=a.log_dir)
        say(json.dumps({k: v for k, v in run.test.items() if k != "confusion"}, indent=1))
    else:
        one = len(a.source_ckpt) == 1
        run = train_transfer(splits, a.source_ckpt[0] if one else None, a.target,
                             sources=None if one else a.source_ckpt, lam=_lams(a.lam), mcma=not a.no_mcma,
                             method=a.method,
                             options=dict(a.option) or None, preset=a.preset, dataset=a.dataset, epochs=a.epochs,
                             seed=a.seed, device=a.device, checkpoint=a.out, progress=dist.is_main(),
                             resume=a.resume, log_dir=a.log_dir, trust_source=a.trust_source)
        say(json.dumps({**{k: v for k, v in run.test.items() if k != "confusion"},
                        "trust_source": a.trust_source, "source_checks": run.meta["source_checks"]}, indent=1))
    dist.barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
