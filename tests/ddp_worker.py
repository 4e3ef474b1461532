"""Run by test_distributed.py under torchrun (2 CPU processes, gloo); its builders also
give test_distributed.py the single-process reference runs."""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dcatkit import distributed as dist
from dcatkit.model import Classifier
from dcatkit.train import fit_transfer, seed_everything
from helpers import TINY, tiny_splits

# ------------------------------------------------------------------ MCMA under DDP


class LinearEncoder(nn.Module):
    """(B, C, L) -> (B, L, d): per-time-step linear map. No BatchNorm and no dropout, so a
    sample's output does not depend on the other samples in its batch (two processes with
    half batches compute exactly what one process computes on the whole batch)."""

    def __init__(self, c: int, d: int):
        super().__init__()
        self.d_model = d
        self.proj = nn.Linear(c, d)

    def forward(self, x):
        return self.proj(x.transpose(1, 2))


class FixedSource:
    """A frozen source stand-in: fixed random K, V per sample id, and "correct" on an
    unequal share of the samples (so the two processes hold different masked-in counts).
    Records how many masked-in samples each call saw, and which samples (``seen``)."""

    batch_modalities = ()

    def __init__(self, ids, t: int = 3, d: int = 8, n_correct: int = 12, pooled: bool = False):
        g = torch.Generator().manual_seed(5)
        self.kv = {i: (torch.randn(t, d, generator=g), torch.randn(t, d, generator=g)) for i in ids}
        self.pooled = {i: torch.randn(d, generator=g) for i in ids} if pooled else None
        self.correct = {i: j < n_correct for j, i in enumerate(ids)}
        self.counts, self.seen, self.d_attn = [], [], d

    def __call__(self, batch, device):
        self.seen.append(list(batch["id"]))
        k = torch.stack([self.kv[i][0] for i in batch["id"]]).to(device)
        v = torch.stack([self.kv[i][1] for i in batch["id"]]).to(device)
        c = torch.tensor([self.correct[i] for i in batch["id"]], device=device)
        self.counts.append(int(c.sum()))
        if self.pooled is None:
            return k, v, c                          # the plain (k, v, correct) form sources may return
        from dcatkit.objectives import SourceOutput
        return SourceOutput(k, v, c, None, torch.stack([self.pooled[i] for i in batch["id"]]).to(device))


def mcma_run(mcma: bool = True, method: str | None = None, device="auto", n: int = 48, unlabeled: int = 0):
    """fit_transfer with MCMA, one step per epoch (batch = all ``n`` training samples in one
    process, 24 per process under torchrun with 2; 24 and 23 for ``n=47``). Returns (result,
    source). ``method="fitnet"``: an objective with parameters of its own (its learned map).
    ``unlabeled``: the last that many training samples lose their labels (``UNLABELED``;
    cross-entropy counts the others, the transfer term all, ``unlabeled_mask="all"``)."""
    from dcatkit.data.dataset import UNLABELED, PairedDataset

    sp = tiny_splits(96, modalities=("imu",))
    train = sp.train.subset(range(n))
    if unlabeled:
        labels = train.labels.copy()
        labels[n - unlabeled:] = UNLABELED
        train = PairedDataset(train.arrays, labels, train.classes, train.subjects, train.ids, train.sample_rates)
    source = FixedSource(train.ids, pooled=method is not None)
    seed_everything(0)
    model = Classifier(LinearEncoder(train.input_shape("imu")[0], 8), len(sp.classes), d_attn=8, dropout=0.0)
    model.config = {"modality": "imu", "num_classes": len(sp.classes)}
    res = fit_transfer(model, source, train, sp.val, lam=1.0, mcma=mcma, method=method, modality="imu",
                       source_modality="video", preset=TINY["imu"].with_(batch_size=48, lr=1e-2), epochs=2,
                       seed=0, progress=False, device=device, unlabeled_mask="all")
    return res, source


def history_of(res, stat: str = "ca"):
    return res.history[["train_ce", f"train_{stat}", "train_mask_frac", "train_loss", "val_f1"]].values.tolist()


# odd-sized training sets: 2 processes get 24 and 23 samples of the 47 (no sample twice); the
# runs with MCMA, without it, and with unlabeled samples (cross-entropy over the labelled ones)
ODD_RUNS = {"odd_mcma": dict(n=47), "odd_no_mcma": dict(n=47, mcma=False),
            "odd_unlabeled": dict(n=47, unlabeled=20)}


# ------------------------------------------------------------------ one cache builder per node


def toy_decoder(log: Path, seconds: float = 0.0):
    """Decodes toy recordings, logging each one; ``seconds`` per recording make a build slow
    enough that a second builder would start before the first one finishes."""
    def decode(rec):
        time.sleep(seconds)
        with open(log, "a") as f:
            f.write(f"{rec}\n")
        return {"arrays": {"imu": np.full((2, 2, 4), rec, np.float32)}, "labels": [rec % 2] * 2,
                "subjects": [rec] * 2, "ids": [f"{rec}#{j}" for j in range(2)], "groups": [str(rec)] * 2}
    return decode


def main(out: Path) -> None:
    from dcatkit.data.cache import collect
    from dcatkit.experiment import train_transfer, train_unimodal
    from dcatkit.train import LiveSource
    from helpers import CountingArray

    assert dist.init() and dist.world_size() == 2
    rank = dist.rank()

    # the same training code under DDP
    sp = tiny_splits(96, modalities=("imu", "video"))
    plain = sp.train.arrays["video"]
    sp.train.arrays["video"] = counter = CountingArray(plain)   # counts the training items this rank loads
    src = train_unimodal(sp, "video", preset=TINY["video"], seed=0, checkpoint=out / "video.pt", progress=False)
    sp.train.arrays["video"] = plain
    items_per_epoch = counter.reads // TINY["video"].epochs
    source_calls = []
    live_call = LiveSource.__call__
    LiveSource.__call__ = lambda self, *a: source_calls.append(1) or live_call(self, *a)
    run = train_transfer(sp, src, "imu", lam=1.0, preset=TINY["imu"], seed=0, checkpoint=out / "imu.pt",
                         cache_dir=out / "cache", progress=False)
    LiveSource.__call__ = live_call

    # MCMA: one mean over the masked-in samples of both processes
    mcma, source = mcma_run()
    if rank == 0:
        torch.save(mcma.model.state_dict(), out / "mcma_state.pt")
    # an objective with its own parameters (fitnet's map): trained alike on both ranks
    fitnet, _ = mcma_run(method="fitnet")
    torch.save(fitnet.objective.state_dict(), out / f"mcma_fitnet_objective_rank{rank}.pt")
    odd = {}
    for name, kw in ODD_RUNS.items():
        r, s = mcma_run(**kw)
        odd[name] = {"history": history_of(r), "seen": s.seen}          # the ids of each step on this rank
        if rank == 0:
            torch.save(r.model.state_dict(), out / f"mcma_{name}_state.pt")

    # the preprocessing cache: local rank 0 decodes, the other process waits and reads it
    windows = collect("toy", [0, 1, 2], toy_decoder(out / f"decoded_rank{rank}.txt", 0.3), classes=["a", "b"],
                      settings={}, cache_dir=out / "prep", progress=False)

    res = {"rank": rank, "source_f1": src.test["f1"], "target": {k: v for k, v in run.test.items()
           if k not in ("confusion", "absent_classes")}, "history": run.history[["train_loss", "val_f1"]].values.tolist(),
           "n_test": int(run.test["confusion"].sum()), "n_train": len(sp.train),
           "items_per_epoch": items_per_epoch, "source_calls": len(source_calls),
           "param_sum": float(sum(p.double().sum() for p in run.model.state_dict().values())),
           "mcma_history": history_of(mcma), "mcma_counts": source.counts,
           "fitnet_history": history_of(fitnet, "fitnet"), "odd": odd,
           "windows": {"ids": windows.ids, "imu": np.asarray(windows.arrays["imu"], np.float64).tolist()}}
    (out / f"rank{rank}.json").write_text(json.dumps(res))
    dist.barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
