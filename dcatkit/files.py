"""Atomic writes: a temp file next to the target, then ``os.replace``.

``temp_beside(path)`` opens that temp file with the permissions a plain ``open(path, "w")``
would give (``0o666`` less the umask; ``tempfile.mkstemp`` alone makes it ``0o600``, and
``os.replace`` keeps that), so a results table, run record or checkpoint written atomically
stays readable by the group a shared results folder is for.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temp_beside(path: Path, prefix: str | None = None, suffix: str = ".tmp") -> tuple[int, str]:
    """``(fd, name)`` of a new temp file in ``path``'s folder, with a plain file's permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + "." if prefix is None else prefix, suffix=suffix)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp
