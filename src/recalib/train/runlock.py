"""The run-folder lock: at most one process trains in a run folder at a time.

``<out>/.lock`` is held with an exclusive advisory lock (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on
Windows) while a run trains. The kernel drops the lock when the process ends, however it ends (SIGKILL
included), so a lock is never stale and there is nothing to clean up. The file holds who holds it (host, pid,
start time) for the message another process gets; it stays in the folder, empty, when the run ends.

A launcher (the study runner) takes the lock itself and hands it to the training process it starts: the
child inherits the locked file (``subprocess.Popen(..., pass_fds=...)``) and the variable
``RECALIB_RUN_LOCK_HELD`` names the lock file, so the child (and torchrun's workers below it, which see the
variable) know the lock is theirs. The lock then lives as long as the child, even if the launcher dies: a
restarted launcher finds the run "running elsewhere" instead of training it a second time.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "lock_holder"]

LOCK_NAME = ".lock"
HELD_ENV = "RECALIB_RUN_LOCK_HELD"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunLockedError(ValueError):
    """Another process holds the lock of a run folder."""


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # BlockingIOError (POSIX) or PermissionError (Windows): held elsewhere
        return False
    return True


def _read_holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


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
        """Take the lock without waiting; :class:`RunLockedError` (a ``ValueError``) if another process holds it."""
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"--out {self.folder} is a file, not a folder; choose a folder for the run")
        if self.inherited():
            self._inherited = True
            self._describe()
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise RunLockedError(
                f"{self.folder} is in use: {_read_holder(self.path)} is training in it (lock {self.path}); wait "
                "for it to finish, stop it, or choose another --out"
            )
        self._fd = fd
        self._describe()
        return self

    def describe(self, pid: int | None = None) -> None:
        """Record process ``pid`` (default: this one) as the holder, for the message others get."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self._describe(f"pid {os.getpid() if pid is None else pid} on {socket.gethostname()} since {stamp}\n")

    def _describe(self, text: str | None = None) -> None:
        """Write who holds the lock (``text=""``: nobody) into the lock file; the lock holds even if this fails."""
        if text is None:
            self.describe()
            return
        try:
            with open(self.path, "r+") as f:
                f.truncate(0)
                f.write(text)
        except OSError:  # e.g. a full disk: the message another process gets is just less precise
            pass

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
    """Who holds the lock of ``folder`` (its description), or None if nobody does. Creates nothing."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # no lock file (or no folder): nobody has ever trained there with a lock
        return None
    try:
        if _try_lock(fd):
            return None  # closing fd below releases the probe's lock
        return _read_holder(path)
    finally:
        os.close(fd)
