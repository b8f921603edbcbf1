"""The run-folder lock: at most one process trains in a run folder at a time.

``<out>/.lock`` is held with an exclusive advisory lock while a run trains: an open-file-description lock
(``fcntl`` ``F_OFD_SETLK``) on Linux, ``fcntl.flock`` on other POSIX systems, ``msvcrt.locking`` on Windows.
The kernel drops the lock when the process ends, however it ends (SIGKILL included), so a lock is never stale
and there is nothing to clean up. The file holds who holds it (host, pid, start time) for the message another
process gets, as a fixed-size record rewritten in place (never truncated); it stays in the folder, blank, when
the run ends.

The lock file is untrusted (a run folder can come from a cloned repository): it is opened with
``O_NOFOLLOW`` and ``O_NONBLOCK`` and used only if it is a regular file with no other hard link, so a planted
symbolic link, hard link or FIFO is a one-line ``ValueError`` instead of a write into another file or a hang.

:func:`lock_holder` looks without taking: on Linux it asks the kernel whether the lock is held
(``F_OFD_GETLK``), so looking never makes a concurrent acquirer fail. (Elsewhere it briefly takes the lock to
look, as ``flock`` has no way to ask.)

A launcher (the study runner) takes the lock itself and hands it to the training process it starts: the
child inherits the locked file (``subprocess.Popen(..., pass_fds=...)``) and the variable
``RECALIB_RUN_LOCK_HELD`` names the lock file, so the child (and torchrun's workers below it, which see the
variable) know the lock is theirs. The lock then lives as long as the child, even if the launcher dies: a
restarted launcher finds the run "running elsewhere" instead of training it a second time.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from .._io import open_own_file

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "lock_holder"]

LOCK_NAME = ".lock"
HELD_ENV = "RECALIB_RUN_LOCK_HELD"
_RECORD_BYTES = 256  # the holder record: this many bytes at the start of the lock file, rewritten in place

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# Open-file-description locks (Linux >= 3.15): owned by the open file (inherited with it, like flock), and
# F_OFD_GETLK tells whether another holds one without taking it. ``struct flock`` as on 64-bit Linux.
_OFD = (fcntl is not None and sys.platform.startswith("linux") and hasattr(fcntl, "F_OFD_SETLK")
        and struct.calcsize("P") == 8)
_FLOCK_STRUCT = "hhqqi4x"  # l_type, l_whence, l_start, l_len (0: the whole file), l_pid (0 for OFD locks)


class RunLockedError(ValueError):
    """Another process holds the lock of a run folder."""


def _ofd_request(kind: int) -> bytes:
    return struct.pack(_FLOCK_STRUCT, kind, os.SEEK_SET, 0, 0, 0)


def _try_lock(fd: int) -> bool:
    try:
        if _OFD:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _ofd_request(fcntl.F_WRLCK))
        elif fcntl is not None:  # pragma: no cover - macOS, BSD
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # EAGAIN / EACCES (POSIX) or PermissionError (Windows): held elsewhere
        return False
    return True


def _held_elsewhere(fd: int) -> bool:
    """Whether another open file holds the lock; on Linux without taking it (``F_OFD_GETLK``)."""
    if _OFD:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _ofd_request(fcntl.F_WRLCK))
        return bool(struct.unpack(_FLOCK_STRUCT, answer)[0] != fcntl.F_UNLCK)
    if not _try_lock(fd):  # pragma: no cover - no way to ask without taking
        return True
    return False  # closing fd releases the probe's lock


def _open_lock_file(path: Path, *, create: bool, write: bool = True) -> int:
    """A descriptor of the lock file ``path`` if it is a plain file of its own (module docstring);
    ``FileNotFoundError`` when it does not exist and ``create`` is false, ``ValueError`` for a link, a FIFO..."""
    flags = (os.O_RDWR if write else os.O_RDONLY) | (os.O_CREAT if create else 0)
    return open_own_file(path, flags, "the run lock")


def _read_record(fd: int) -> str:
    try:
        text = os.pread(fd, _RECORD_BYTES, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"


def _write_record(fd: int, text: str) -> None:
    """``text`` as the fixed-size record at the start of the file (blank: nobody); never truncates."""
    record = text.encode()[: _RECORD_BYTES - 1].ljust(_RECORD_BYTES - 1) + b"\n"
    try:
        os.pwrite(fd, record, 0)
    except OSError:  # e.g. a full disk: the message another process gets is just less precise
        pass


class RunLock:
    """The lock of the run folder ``folder`` (created if missing); a context manager.

    >>> with RunLock("runs/x"):  # doctest: +SKIP
    ...     train_in("runs/x")
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None
        self._inherited = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def inherited(self) -> bool:
        """Whether a launcher above this process holds the lock on its behalf (see the module docstring)."""
        return os.environ.get(HELD_ENV) == str(self.path.resolve())

    def acquire(self) -> RunLock:
        """Take the lock without waiting; :class:`RunLockedError` (a ``ValueError``) if another process holds it,
        ``ValueError`` if the lock file is not a plain file (a link, a FIFO: see the module docstring)."""
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"--out {self.folder} is a file, not a folder; choose a folder for the run")
        if self.inherited():
            self._inherited = True
            self._describe()
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = _open_lock_file(self.path, create=True)
        if not _try_lock(fd):
            holder = _read_record(fd)
            os.close(fd)
            raise RunLockedError(
                f"{self.folder} is in use: {holder} is training in it (lock {self.path}); wait for it to finish, "
                "stop it, or choose another --out"
            )
        self._fd = fd
        self._describe()
        return self

    def describe(self, pid: int | None = None) -> None:
        """Record process ``pid`` (default: this one) as the holder, for the message others get."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self._describe(f"pid {os.getpid() if pid is None else pid} on {socket.gethostname()} since {stamp}")

    def _describe(self, text: str | None = None) -> None:
        """Write who holds the lock (``text=""``: nobody) into the lock file; the lock holds even if this fails."""
        if text is None:
            self.describe()
            return
        if self._fd is not None:
            _write_record(self._fd, text)
            return
        try:  # inherited: the launcher's descriptor is not known here, so open the (checked) file again
            fd = _open_lock_file(self.path, create=False)
        except (OSError, ValueError):
            return
        try:
            _write_record(fd, text)
        finally:
            os.close(fd)  # another descriptor of the file: the launcher's lock is unaffected

    def release(self) -> None:
        """Drop the lock (a lock inherited from a launcher is dropped when the launcher's child ends)."""
        if self._inherited:
            self._describe("")
            self._inherited = False
        if self._fd is None:
            return
        self._describe("")
        os.close(self._fd)  # closing the last descriptor drops the lock
        self._fd = None

    def detach(self) -> None:
        """Close this process's descriptor after handing the lock to a child (:meth:`child_env`): the lock
        then lives exactly as long as the child does."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def child_env(self) -> tuple[Mapping[str, str], tuple[int, ...]]:
        """``(environment additions, pass_fds)`` that hand this (held) lock to a child process."""
        if self._fd is None:
            raise RuntimeError("RunLock.child_env: the lock is not held")
        return {HELD_ENV: str(self.path.resolve())}, (self._fd,)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def lock_holder(folder: str | os.PathLike[str]) -> str | None:
    """Who holds the lock of ``folder`` (its description), or None if nobody does. Creates nothing, and on
    Linux takes nothing (module docstring); ``ValueError`` if the lock file is not a plain file."""
    try:
        fd = _open_lock_file(Path(folder) / LOCK_NAME, create=False, write=False)
    except OSError:  # no lock file (or no folder): nobody has ever trained there with a lock
        return None
    try:
        return _read_record(fd) if _held_elsewhere(fd) else None
    finally:
        os.close(fd)
