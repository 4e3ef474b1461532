"""Atomic writes: a temp file next to the target, then ``os.replace``.

``write_atomically(path, write)`` calls ``write(f)`` on a temp file in ``path``'s folder and
moves it into place: a reader (or a process killed mid-write) sees the old file or the new
one, never half of one. The temp file (``temp_beside``) gets the permissions a plain
``open(path, "w")`` would give (``0o666`` less the umask; ``tempfile.mkstemp`` alone makes it
``0o600``, which ``os.replace`` keeps), so a results table, run record or checkpoint stays
readable by the group a shared results folder is for.

A temp file's name says who writes it: ``<prefix>w<host>-<pid>-<random><suffix>`` (``host``: 8 hex
digits of the machine's name, ``pid``: the writing process). ``writer_gone(temp)`` reads it back, so
a run that clears the leftovers of killed saves (``left_temp_files``; ``write_atomically``: those of its
target named with a writer, ``train``: also the checkpoint's and ``<checkpoint>.state``'s of an older
dcatkit, ``deploy.export``: the exported file's) removes only those whose writer is dead, never a temp
file another live process is still writing (its ``os.replace`` would then fail after all its epochs).
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import socket
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


def _host() -> str:
    """8 hex digits naming this machine (its host name hashed: a name may hold dots)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def writer_tag(pid: int | None = None) -> str:
    """What a temp file's name says about its writer: ``w<host>-<pid>-`` (no dot; ``pid``: this process's
    unless given)."""
    return f"w{_host()}-{os.getpid() if pid is None else pid}-"


# the part mkstemp adds after the prefix: [a-z0-9_] (tempfile's alphabet), no dot and no '-'
_TAGGED = re.compile(r"w([0-9a-f]{8})-([0-9]+)-[a-z0-9_]+")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (POSIX: signal 0). Elsewhere (Windows,
    where ``os.kill`` would end the process) it is taken as running: nothing is removed."""
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):       # another user's process: it runs
        return True
    return True


def writer_gone(middle: str) -> bool:
    """Whether the writer of a temp file is gone, from the part of its name between the
    target's name and the suffix (``w<host>-<pid>-<random>``, :func:`writer_tag`):

    - written on this machine: True when its process no longer runs;
    - written on another machine sharing the folder: False (its processes cannot be seen
      from here: the file is kept);
    - a name without the tag (``<random>``, written before names said who wrote them):
      True, as leftovers were always treated."""
    if _TAGGED.fullmatch(middle) is None:
        return True
    pid = local_writer(middle)
    return pid is not None and not _alive(pid)


def local_writer(middle: str) -> int | None:
    """The pid of the writer a name's ``w<host>-<pid>-<random>`` part (:func:`writer_tag`) names, when
    that writer ran on this machine; None for another machine's or a name without the tag."""
    m = _TAGGED.fullmatch(middle)
    return int(m.group(2)) if m is not None and m.group(1) == _host() else None


def left_temp_files(path: Path, suffix: str = ".tmp", untagged: bool = True) -> list[Path]:
    """The temp files of saves of ``path`` (``temp_beside``: ``<name>.<writer and random part without
    dots><suffix>``) that a kill cut short: their writer is gone (``writer_gone``), so a run that
    saves ``path`` again may remove them; one a live process is still writing is not listed. The
    name is matched literally (``[ ]``, ``*``, ``?`` in it are no glob pattern) and the part after it
    has no dot, so neither ``lam[1].pt.state`` nor ``a.pt.state`` ever takes a temp file of another
    target (``lam1.pt.state.*.tmp``, ``a.pt.state.b.*.tmp``). ``untagged``: whether a part without
    the writer's tag (a save of a dcatkit before names said who wrote them) counts as left; False
    where such a name could be a file of the user's (``model.onnx.v2.onnx``)."""
    path = Path(path)
    stem = f"{path.name}."
    out = []
    for p in path.parent.glob(f"{glob.escape(stem)}*{glob.escape(suffix)}"):
        middle = p.name[len(stem):len(p.name) - len(suffix)]
        if middle and "." not in middle and (untagged or _TAGGED.fullmatch(middle)) and writer_gone(middle):
            out.append(p)
    return out


def left_temp_files_in(folder: Path, target_suffix: str, suffix: str = ".tmp") -> list[Path]:
    """``left_temp_files(..., untagged=False)`` of every file in ``folder`` whose name ends with
    ``target_suffix``, in one listing of the folder: a sweep clears its ``runs/`` once this way
    instead of listing it at each record's write (thousands of records, maybe on a network folder)."""
    out = []
    for p in Path(folder).glob(f"*{glob.escape(target_suffix)}.*{glob.escape(suffix)}"):
        target, _, middle = p.name[:len(p.name) - len(suffix)].rpartition(".")
        if target.endswith(target_suffix) and _TAGGED.fullmatch(middle) and writer_gone(middle):
            out.append(p)
    return out


def temp_beside(path: Path, prefix: str | None = None, suffix: str = ".tmp") -> tuple[int, str]:
    """``(fd, name)`` of a new temp file in ``path``'s folder, with a plain file's permissions;
    its name is ``<prefix><writer_tag()><random><suffix>`` (``prefix``: ``<path's name>.``)."""
    prefix = (path.name + "." if prefix is None else prefix) + writer_tag()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


def write_atomically(path: Path, write: Callable[[IO[Any]], Any], *, binary: bool = False,
                     fsync: bool = False, prefix: str | None = None, suffix: str = ".tmp",
                     clear_left: bool = True) -> Path:
    """``write(f)`` to a temp file next to ``path`` (its folder made if missing), then
    ``os.replace`` onto ``path``; ``fsync``: on disk before it takes the name. Returns ``path``.
    First (``clear_left``) removes the temp files of earlier saves of ``path`` that a kill cut short
    (a results table or figure written again by a rerun): those named with a writer that is gone
    (``left_temp_files(..., untagged=False)``: never a file of the user's named like one). That lists
    the folder; a caller writing many files into one folder passes ``clear_left=False`` and clears
    them all at once (``left_temp_files_in``: a sweep's run records)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if clear_left and prefix is None:   # a prefix of the caller's own: its names are no temp_beside's
        for left in left_temp_files(path, suffix, untagged=False):
            left.unlink(missing_ok=True)
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
