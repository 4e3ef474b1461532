"""A cache of what the frozen source computes, so transfer training does not run it.

The source is frozen (eval mode, no gradients) and its input for a sample never
changes, so K_s, V_s and "did the source classify this sample correctly" are
constants per sample. ``SourceCache.build`` runs the source once over a dataset
and stores, per sample id, the ``fields`` the transfer objective reads
(``objectives.Objective.needs``; K and V by default)::

    k, v     float16 (N, T_s, d)   -- the source's keys and values (not K^T V:
                                     T_s x d each is smaller than d x d when T_s < d/2)
    logits   float32 (N, C)        -- for logit distillation (kd)
    pooled   float32 (N, d)        -- its pooled attention output (fitnet, contrastive)
    correct  bool    (N,)          -- the MCMA indicator of Eq. (16), always

as ``.npy`` files opened memory-mapped. The folder name is a hash of the source's
weights, the dataset's sample ids, labels (the MCMA bit depends on them) and input
fingerprint, the source modality, the stored fields and a format version, so a different checkpoint, split, labelling or
preprocessing never reuses a stale cache. A cache is built in a temporary folder and
renamed into place when complete: an interrupted build is never mistaken for a
finished one, and a finished one is never removed or replaced (see
``distributed.publish_folder``); the temporary folder of a killed build is removed by
the next build (``data.cache.build_folder``), and a damaged cache file (truncated,
missing, of the wrong shape) is a ValueError naming it, never a silent reuse. Under torchrun one process per node builds it while
the node's other processes wait.

A ``SourceCache`` is called like ``train.LiveSource``:
``cache(batch, device) -> objectives.SourceOutput`` (fields not stored are None).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from . import distributed as dist
from .data.cache import build_folder, open_npy, read_json
from .objectives import SOURCE_FIELDS, SourceOutput

DEFAULT_DIR = Path(os.environ.get("DCATKIT_CACHE", Path.home() / ".cache" / "dcatkit")) / "source"


def _hash_model(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b"")
    return h.hexdigest()


def _hash_data(ds, modality: str, n_probe: int = 32) -> str:
    """Sample ids + labels + input shape + the bytes of up to ``n_probe`` evenly spaced
    inputs (a fingerprint: preprocessing changes every input, so probing catches it
    without reading a whole video dataset)."""
    h = hashlib.sha256()
    h.update(json.dumps([list(map(str, ds.ids)), list(ds.input_shape(modality))]).encode())
    h.update(np.asarray(ds.labels, dtype=np.int64).tobytes())
    for i in np.linspace(0, len(ds) - 1, min(n_probe, len(ds))).astype(int):
        h.update(np.ascontiguousarray(ds.arrays[modality][i]).tobytes())
    return h.hexdigest()


VERSION = "v3"     # v3: the stored fields are part of the key and listed in meta.json
DTYPES = {"k": np.float16, "v": np.float16, "logits": np.float32, "pooled": np.float32}


def _fields(fields) -> tuple[str, ...]:
    """The requested fields in a canonical order; unknown names are an error."""
    fields = tuple(fields)
    bad = [f for f in fields if f not in SOURCE_FIELDS]
    if bad or not fields:
        raise ValueError(f"source cache fields must be a non-empty subset of {SOURCE_FIELDS}, got {fields}")
    return tuple(f for f in SOURCE_FIELDS if f in fields)


def cache_key(model: torch.nn.Module, ds, modality: str, fields=("k", "v")) -> str:
    h = hashlib.sha256()
    for part in (_hash_model(model), _hash_data(ds, modality), modality, VERSION, ",".join(_fields(fields))):
        h.update(part.encode())
    return h.hexdigest()[:24]


class SourceCache:
    batch_modalities = ()     # reads only the batch's sample ids, no inputs (see train.LiveSource)

    def __init__(self, folder: Path, modality: str):
        self.folder, self.modality = Path(folder), modality
        meta = read_json(self.folder / "meta.json")
        if not isinstance(meta, dict) or not {"fields", "ids", "shapes"} <= set(meta):
            raise ValueError(f"{self.folder / 'meta.json'} is not a source cache's meta data (keys fields, ids, "
                             f"shapes); delete {self.folder} and it is rebuilt on the next run")
        self.fields = tuple(meta["fields"])
        self.arrays = {f: open_npy(self.folder / f"{f}.npy", meta["shapes"][f]) for f in self.fields}  # DTYPES
        self.correct = open_npy(self.folder / "correct.npy", (len(meta["ids"]),), mmap=False)  # (N,) bool
        dims = [a.shape[-1] for f, a in self.arrays.items() if f != "logits"]
        self.d_attn = dims[0] if dims else None                            # size of K, V and pooled
        self.index = {sid: i for i, sid in enumerate(meta["ids"])}

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, ids) -> np.ndarray:
        try:
            return np.fromiter((self.index[i] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as e:
            raise KeyError(f"sample id {e.args[0]!r} is not in the source cache {self.folder}; the cache "
                           "covers the dataset it was built for") from None

    def __call__(self, batch: dict, device: torch.device) -> SourceOutput:
        r = self.rows(batch["id"])
        got = {f: torch.from_numpy(a[r]).to(device, non_blocking=True).float() for f, a in self.arrays.items()}
        c = torch.from_numpy(self.correct[r]).to(device, non_blocking=True)
        return SourceOutput(got.get("k"), got.get("v"), c, got.get("logits"), got.get("pooled"))

    @classmethod
    def build(cls, source: torch.nn.Module, ds, modality: str, cache_dir: str | Path | None = None,
              batch_size: int = 64, device="cpu", progress: bool = True, fields=("k", "v")) -> "SourceCache":
        """Run the frozen ``source`` once over ``ds`` (or reuse a finished cache with the same key)
        and store ``fields`` (from ``objectives.SOURCE_FIELDS``) and the MCMA bit.
        Under torchrun local rank 0 builds and the node's other processes wait, then all read it."""
        from tqdm.auto import tqdm

        from .train import LiveSource, make_loader   # local import: train imports this module

        root = Path(cache_dir) if cache_dir is not None else Path(DEFAULT_DIR)
        fields = _fields(fields)
        folder = root / dist.broadcast_object(cache_key(source, ds, modality, fields) if dist.is_main() else None)
        if dist.is_local_main() and not (folder / "meta.json").is_file():
            with build_folder(root, ".building-") as tmp:      # removes killed builds' leftovers first
                live = LiveSource(source, modality).to(device)
                n, out, cs = 0, {}, np.zeros(len(ds), dtype=bool)
                for batch in tqdm(make_loader(ds, batch_size, shuffle=False, device=device),
                                  desc=f"caching {modality} source", disable=not progress, leave=False):
                    got = live(batch, torch.device(device))
                    b = len(got.correct)
                    for f in fields:
                        x = getattr(got, f)
                        if f not in out:   # shapes known after the first batch
                            out[f] = np.lib.format.open_memmap(tmp / f"{f}.npy", "w+", DTYPES[f],
                                                               (len(ds), *x.shape[1:]))
                        out[f][n:n + b] = x.cpu().numpy()
                    cs[n:n + b] = got.correct.cpu().numpy()
                    n += b
                for a in out.values():
                    a.flush()
                np.save(tmp / "correct.npy", cs)
                (tmp / "meta.json").write_text(json.dumps(
                    {"ids": list(map(str, ds.ids)), "modality": modality, "fields": list(fields),
                     "shapes": {f: list(a.shape) for f, a in out.items()},
                     "source_accuracy": float(cs.mean())}))          # written last: marks completion
                del out
                dist.publish_folder(tmp, folder, "meta.json")   # keeps a folder another process finished
        dist.barrier()
        return cls(folder, modality)
