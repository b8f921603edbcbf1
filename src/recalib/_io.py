"""Files written so that a reader sees the old content or the new, never a part: atomic writes and file hashes.

:func:`atomic_write` writes to a temporary file in the destination's folder and ``os.replace``-s it over the
destination when the ``with`` block ends without an error (atomic on POSIX and Windows); on an error the
temporary file is removed and the destination is untouched. ``fsync=True`` also flushes the data and the
folder entry to the disk (checkpoints: a power cut keeps the old or the new file). Used by the checkpoint
writer, the run folder's JSON files, study folders and reports.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "fsync_dir", "open_own_file", "sha256_file", "write_json_atomic", "write_text_atomic"]


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to the disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened; os.replace is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", *, fsync: bool = False,
                 tmp_name: str | None = None, newline: str | None = None) -> Iterator[IO[Any]]:
    """``with atomic_write(path) as f: f.write(...)``: ``path`` gets the whole new content or keeps the old.

    ``mode``: ``"w"`` (text) or ``"wb"`` (bytes). ``tmp_name``: the temporary file's name in ``path``'s folder
    (default ``.<name>.tmp``). ``newline``: as :func:`open`'s, for text (``""`` for :mod:`csv` writers).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = path.with_name(tmp_name or f".{path.name}.tmp")
    try:
        tmp.unlink(missing_ok=True)  # a leftover, or a planted link: removed, never written through
        with open(tmp, mode.replace("w", "x"), newline=newline) as f:  # "x": creates, follows no link
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def open_own_file(path: str | os.PathLike[str], flags: int, what: str) -> int:
    """``os.open(path, flags)`` for a file that a user or a cloned repository may have planted (``what`` names it
    in the message): a symbolic link is never followed and a FIFO never waited on; anything but a regular file
    with no other hard link is a ``ValueError`` saying to delete it. The descriptor is in blocking mode."""
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    problem = "a symbolic link" if os.path.islink(path) else None
    if problem is None:
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise
            problem = "a symbolic link" if os.path.islink(path) else "not a regular file"
        else:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                problem = "not a regular file (a FIFO, a device or a socket)"
            elif info.st_nlink != 1:
                problem = f"a file with {info.st_nlink - 1} other hard link(s)"
            if problem is not None:
                os.close(fd)
            else:
                os.set_blocking(fd, True)
                return fd
    raise ValueError(f"{what} {path} is {problem}: recalib never writes through a link nor waits on a FIFO it did "
                     "not make; delete it and retry")


def write_text_atomic(path: str | os.PathLike[str], text: str, *, fsync: bool = False) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path, "w", fsync=fsync) as f:
        f.write(text)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, default: Callable[[Any], Any] | None = None,
                      fsync: bool = False) -> None:
    """Write ``obj`` as indented JSON and a final newline to ``path`` through :func:`atomic_write`."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=default) + "\n", fsync=fsync)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
