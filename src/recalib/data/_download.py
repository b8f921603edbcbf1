"""Finding data files on disk, verifying their SHA-256, and downloading them atomically.

Where a data set ``<name>`` is looked for: with a ``data_dir`` argument (``--data-dir``), there only
(``data_dir`` and ``data_dir/<name>``; a ``data_dir`` that does not exist, or lacks the file, is an error naming
it; nothing else is searched and nothing is downloaded, so a run never silently uses another copy). Without it: ``$RECALIB_DATA`` (and
``$RECALIB_DATA/<name>``), then ``/usr/share/datasets/<name>`` (Debian's ``dataset-*`` packages), then the
download cache ``$XDG_CACHE_HOME/recalib/data/<name>`` (``~/.cache/...``). A file that is found but has the
wrong SHA-256 is an error, never skipped. What is hashed is the caller's choice (``digest``): the file's bytes
by default, or its decompressed content where every faithful copy shares that and not the archive's bytes
(Fashion-MNIST's ``.gz`` files). Every error is one line: what was missing, where it was looked for, how to fix
it.

Downloads stream into a temporary file next to the destination, are verified, and only then
``os.replace``-d into place: an interrupted or corrupted download never leaves a file behind.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from .._format import progress_bar
from .._io import atomic_write, sha256_file
from ._base import DataError, DataNotFoundError

__all__ = [
    "SYSTEM_DATA_DIRS",
    "cache_dir",
    "download_file",
    "download_target",
    "locate_file",
    "search_dirs",
    "sha256_file",
]

#: Directories searched after ``data_dir`` and ``$RECALIB_DATA`` (each joined with the data set's name).
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


def cache_dir() -> Path:
    """Where downloads go when neither ``data_dir`` nor ``$RECALIB_DATA`` is given."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recalib" / "data"


def search_dirs(name: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Directories searched for data set ``name``, in order (see the module docstring)."""
    if data_dir is not None:  # an explicit folder is the only place looked at
        root = Path(data_dir).expanduser()
        return [root, root / name]
    dirs: list[Path] = []
    env = os.environ.get("RECALIB_DATA") or None
    if env is not None:
        dirs += [Path(env).expanduser(), Path(env).expanduser() / name]
    dirs += [d / name for d in SYSTEM_DATA_DIRS]
    dirs.append(cache_dir() / name)
    return list(dict.fromkeys(dirs))  # drop repeats, keep order


def download_target(name: str, data_dir: str | os.PathLike[str] | None) -> Path:
    """Where a download of data set ``name`` is written: under ``data_dir``, else ``$RECALIB_DATA``, else the cache."""
    root = data_dir if data_dir is not None else os.environ.get("RECALIB_DATA") or None
    return (Path(root).expanduser() if root is not None else cache_dir()) / name


def _fetch(url: str, out: IO[bytes], desc: str) -> None:
    """Stream ``url`` into ``out``; a tqdm bar on stderr when it is a terminal. Network errors raise ``OSError``."""
    request = urllib.request.Request(url, headers={"User-Agent": "recalib"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        bar = progress_bar(int(length) if length else None, desc, unit="B", unit_scale=True, unit_divisor=1024)
        try:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()


Digest = Callable[[Path], str]


def download_file(url: str, dest: str | os.PathLike[str], sha256: str, digest: Digest = sha256_file) -> Path:
    """Download ``url`` to ``dest`` if ``digest`` of it is ``sha256``; ``DataError`` (and no file) otherwise."""
    dest = Path(dest)
    created = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]  # removed again on failure
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    ok = False
    try:
        with atomic_write(dest, "wb", fsync=True, tmp_name=tmp.name) as f:  # renamed into place if verified
            _fetch(url, f, desc=dest.name)
            f.flush()
            got = digest(tmp)
            if got != sha256:
                raise DataError(
                    f"checksum mismatch downloading {url}: expected SHA-256 {sha256}, got {got} "
                    f"({tmp.stat().st_size} bytes). The download was corrupted or the file on the server changed; "
                    f"nothing was written to {dest}. Retry, or fetch the file by hand and check it with sha256sum."
                )
        ok = True
    finally:
        if not ok:
            for d in created:
                try:
                    d.rmdir()  # only if still empty
                except OSError:
                    break
    return dest


def locate_file(
    name: str,
    filename: str,
    sha256: str,
    url: str,
    *,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    fix: str,
    also_needed: Sequence[str] = (),
    digest: Digest = sha256_file,
    digest_of: str = "SHA-256",
) -> Path:
    """Path of a verified copy of ``filename`` of data set ``name``, downloading it from ``url`` if allowed.

    Raises ``DataError`` if a copy is found whose ``digest`` is not ``sha256``, ``DataNotFoundError`` if there is
    none and it cannot be downloaded (never downloaded when ``data_dir`` is given). ``fix`` is the data set's "how
    to get it" advice for the message; ``also_needed`` lists the sibling files a user should put next to it;
    ``digest`` maps a path to a hex digest (default: the SHA-256 of its bytes) and ``digest_of`` names it in
    messages.
    """
    files = ", ".join(dict.fromkeys([filename, *also_needed]))
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataNotFoundError(
            f"{name}: --data-dir {data_dir} does not exist; give the folder that holds {files} (directly or in "
            f"DIR/{name}), or leave --data-dir out to use $RECALIB_DATA, {', '.join(map(str, SYSTEM_DATA_DIRS))} "
            "or the download cache"
        )
    looked = []
    for d in search_dirs(name, data_dir):
        path = d / filename
        looked.append(path)
        if path.is_file():
            got = digest(path)
            if got != sha256:
                raise DataError(
                    f"{name}: {path} has {digest_of} {got}, expected {sha256}: the file is corrupt, truncated "
                    f"or a different version. Delete it (it will be downloaded again from {url}) or replace it "
                    f"with the official file."
                )
            return path
    dest = download_target(name, data_dir) / filename
    if download and data_dir is None:
        try:
            return download_file(url, dest, sha256, digest)
        except OSError as err:  # network failure, read-only destination, ...
            reason = f"Downloading {url} to {dest} failed: {err}"
    elif data_dir is not None:
        reason = "Not downloaded, because an explicit --data-dir (data_dir=) is the only place used"
    else:
        reason = "Not downloaded, because download=False"
    where = f"--data-dir {data_dir} lacks it" if data_dir is not None else "not found"
    raise DataNotFoundError(
        f"{name}: could not find {filename} ({digest_of} {sha256}): {where} (looked in {', '.join(map(str, looked))}). "
        f"{reason}. To fix: {fix}, or pass --data-dir DIR (data_dir=DIR) with {files} in DIR or DIR/{name}, "
        f"or set RECALIB_DATA=DIR likewise, or allow the download (network access to {url})."
    )
