"""Multi-process training with torchrun, detected from the environment (as nanoGPT).

``torchrun --nproc_per_node=N -m dcatkit ...`` sets RANK / WORLD_SIZE /
LOCAL_RANK; ``init()`` then starts a process group (NCCL on GPUs, gloo on CPU).
Without those variables everything here is a no-op, so one code path serves
CPU, one GPU and many GPUs.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import torch
import torch.distributed as td


def init() -> bool:
    """Start the process group if launched by torchrun with WORLD_SIZE > 1."""
    if td.is_available() and not td.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        td.init_process_group(backend=backend)
    return is_dist()


def is_dist() -> bool:
    return td.is_available() and td.is_initialized() and td.get_world_size() > 1


def rank() -> int:
    return td.get_rank() if is_dist() else 0


def world_size() -> int:
    return td.get_world_size() if is_dist() else 1


def is_main() -> bool:
    """True on rank 0 (or when not distributed): the only rank that logs and writes."""
    return rank() == 0


def local_rank() -> int:
    """This process's rank on its node (torchrun's LOCAL_RANK; 0 when not distributed)."""
    return int(os.environ.get("LOCAL_RANK", "0")) if is_dist() else 0


def is_local_main() -> bool:
    """True on one process per node (local rank 0): the one that builds on-disk caches
    there while the others wait (see ``build_once``)."""
    return local_rank() == 0


def local_device() -> torch.device:
    """This rank's device: cuda:LOCAL_RANK under torchrun with GPUs, else as usual."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def barrier() -> None:
    if is_dist():
        td.barrier()


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    if is_dist():
        x = x.clone()
        td.all_reduce(x, op=td.ReduceOp.SUM)
    return x


def all_gather_objects(obj) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not is_dist():
        return [obj]
    out = [None] * world_size()
    td.all_gather_object(out, obj)
    return out


def broadcast_object(obj, src: int = 0):
    if not is_dist():
        return obj
    box = [obj]
    td.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, so all
    ranks evaluate, select and save the very same model."""
    if is_dist():
        for b in module.buffers():
            td.broadcast(b, src=src)


@contextlib.contextmanager
def file_lock(path: str | Path):
    """An exclusive advisory lock (``fcntl.flock``) on ``path`` for the duration of the
    block: serialises the moment a finished cache folder is moved into place, so one
    process never removes or replaces a folder that another has just completed (and
    may be reading). No-op where ``fcntl`` is missing (Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_once(build, load):
    """``load()`` the result of ``build()`` with one builder per node: under torchrun
    local rank 0 runs ``build()`` while the node's other processes wait at a barrier,
    then these ``load()`` what it wrote. Every process must call this (a collective).
    Single process: ``build()``. ``build`` must leave a result ``load`` can read (and
    may return it)."""
    if not is_dist():
        return build()
    out = build() if is_local_main() else None
    barrier()
    return out if is_local_main() else load()


def publish_folder(tmp: str | Path, final: str | Path, marker: str) -> bool:
    """Move the complete cache build ``tmp`` to ``final`` (one ``os.replace``), under a
    lock file next to it. A ``final`` that is already complete (``final/marker`` exists:
    another process finished first, and may be reading it) is kept, and ``tmp`` is left
    for the caller to remove (returns False); a ``final`` without its marker (an
    interrupted copy, which nobody reads) is replaced. Returns True when ``tmp`` moved."""
    tmp, final = Path(tmp), Path(final)
    with file_lock(final.parent / f".{final.name}.lock"):
        if (final / marker).exists():
            return False
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return True
