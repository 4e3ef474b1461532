"""Atomic writes: a temp file next to the target, then ``os.replace``.

``write_atomically(path, write)`` calls ``write(f)`` on a temp file in ``path``'s folder and
moves it into place: a reader (or a process killed mid-write) sees the old file or the new
one, never half of one. The temp file (``temp_beside``) gets the permissions a plain
``open(path, "w")`` would give (``0o666`` less the umask; ``tempfile.mkstemp`` alone makes it
``0o600``, which ``os.replace`` keeps), so a results table, run record or checkpoint stays
readable by the group a shared results folder is for.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it (``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)              # elsewhere: set and restore (a moment another thread could see)
    os.umask(mask)
    return mask


def temp_beside(path: Path, prefix: str | None = None, suffix: str = ".tmp") -> tuple[int, str]:
    """``(fd, name)`` of a new temp file in ``path``'s folder, with a plain file's permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + "." if prefix is None else prefix, suffix=suffix)
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


def write_atomically(path: Path, write: Callable[[IO[Any]], Any], *, binary: bool = False,
                     fsync: bool = False, prefix: str | None = None, suffix: str = ".tmp") -> Path:
    """``write(f)`` to a temp file next to ``path`` (its folder made if missing), then
    ``os.replace`` onto ``path``; ``fsync``: on disk before it takes the name. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path, prefix, suffix)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": ""})) as f:
            write(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
