"""Command line: ``python -m dcatkit {demo,train,transfer} ...`` (all call dcatkit.experiment).

    python -m dcatkit demo --seeds 0 1 2          # video -> IMU on the synthetic data
    python -m dcatkit train --modality video --out runs/video.pt
    python -m dcatkit transfer --source-ckpt runs/video.pt --target imu --lam 1.0

Runs under ``torchrun --nproc_per_node=N python -m dcatkit ...`` unchanged
(rank 0 prints and writes). A source checkpoint that does not fit the run (it saw
this run's validation or test samples, other classes, ...) stops it with exit
status 2 and the reason (``dcatkit.provenance.SourceMismatch``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import distributed as dist
from .data import load
from .experiment import compare, format_table, summarise_seeds, train_transfer, train_unimodal
from .provenance import SourceMismatch


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="synthetic", help="synthetic | uestc | cough | vggsound")
    p.add_argument("--root", default=None, help="dataset folder (not for synthetic)")
    p.add_argument("--split", default="id", choices=["id", "ood"])
    p.add_argument("--n-samples", type=int, default=2000, help="synthetic data only")
    p.add_argument("--preset", default="synthetic", help="synthetic | paper | uestc | cough | vggsound")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the data split (and synthetic data)")


def _load(a):
    opts = {"n_samples": a.n_samples} if a.dataset == "synthetic" else {}
    return load(a.dataset, root=a.root, split=a.split, seed=a.data_seed, **opts)


def main(argv=None) -> int:
    try:
        return _main(argv)
    except SourceMismatch as e:
        print(f"dcatkit: error: {e}", file=sys.stderr)
        return 2


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="dcatkit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="source + baseline + D-CAT + No-MCMA over seeds, printed as a table")
    _data_args(d)
    d.add_argument("--source", default="video")
    d.add_argument("--target", default="imu")
    d.add_argument("--lam", type=float, default=1.0)
    d.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    d.add_argument("--out", default="runs/demo", help="folder for checkpoints and results.csv")
    d.add_argument("--epochs-source", type=int, default=None, help="default: the preset's")
    d.add_argument("--epochs-target", type=int, default=None, help="default: the preset's")
    d.add_argument("--quick", action="store_true", help="160 samples, 1 epoch each: a smoke run")
    t = sub.add_parser("train", help="train one unimodal model")
    _data_args(t)
    t.add_argument("--modality", required=True)
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--out", required=True, help="checkpoint path")
    x = sub.add_parser("transfer", help="train a D-CAT target from a frozen source checkpoint")
    _data_args(x)
    x.add_argument("--source-ckpt", required=True)
    x.add_argument("--target", required=True)
    x.add_argument("--lam", type=float, default=1.0)
    x.add_argument("--no-mcma", action="store_true")
    x.add_argument("--epochs", type=int, default=None)
    x.add_argument("--seed", type=int, default=None)
    x.add_argument("--out", required=True, help="checkpoint path")
    a = ap.parse_args(argv)

    dist.init()
    if getattr(a, "quick", False):
        a.n_samples, a.epochs_source, a.epochs_target = 160, 1, 1
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
                             seed=a.seed, device=a.device, checkpoint=a.out, progress=dist.is_main())
        say(json.dumps({k: v for k, v in run.test.items() if k != "confusion"}, indent=1))
    else:
        run = train_transfer(splits, a.source_ckpt, a.target, lam=a.lam, mcma=not a.no_mcma, preset=a.preset,
                             dataset=a.dataset, epochs=a.epochs, seed=a.seed, device=a.device,
                             checkpoint=a.out, progress=dist.is_main())
        say(json.dumps({k: v for k, v in run.test.items() if k != "confusion"}, indent=1))
    dist.barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
