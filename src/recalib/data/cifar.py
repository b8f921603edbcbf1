"""CIFAR-10 and CIFAR-100 (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009).

32×32 colour images, 50,000 for training and 10,000 for test, in 10 or 100 classes. The loader reads the
official "python version" archives: it verifies the archive's SHA-256, extracts only the expected batch
files with ``tarfile``'s ``"data"`` filter (no links, no paths outside the target, no special files), and
reads each batch with :class:`RestrictedUnpickler`, which admits numpy's array-rebuilding functions and
nothing else, so a crafted batch file cannot run code.

The batch files are Python 2 pickles: dicts with ``b"data"`` (uint8 ``[n, 3072]``, the 1024 red, 1024
green, then 1024 blue values of each row-major image) and ``b"labels"`` (CIFAR-10) or ``b"fine_labels"``
(CIFAR-100; the 20 coarse labels are not used).
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._base import DataError, DatasetInfo, SmallDataset
from ._download import download_target, locate_file, sha256_file

__all__ = [
    "ARCHIVES",
    "CIFAR10",
    "CIFAR100",
    "CifarArchive",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "load_cifar",
    "load_restricted_pickle",
]

CIFAR10 = DatasetInfo(
    name="cifar10",
    num_classes=10,
    in_chans=3,
    image_size=32,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    kind="small",
    train_images=50_000,
    test_images=10_000,
)
CIFAR100 = DatasetInfo(
    name="cifar100",
    num_classes=100,
    in_chans=3,
    image_size=32,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    kind="small",
    train_images=50_000,
    test_images=10_000,
)


@dataclass(frozen=True)
class CifarArchive:
    """Where one CIFAR archive comes from and what it holds (member paths are inside the archive)."""

    filename: str
    sha256: str
    url: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    label_key: bytes
    names_key: bytes


ARCHIVES: dict[str, CifarArchive] = {
    "cifar10": CifarArchive(
        filename="cifar-10-python.tar.gz",  # 170,498,071 bytes, MD5 c58f30108f718f92721af3b95e74349a
        sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        folder="cifar-10-batches-py",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test=("test_batch",),
        meta="batches.meta",
        label_key=b"labels",
        names_key=b"label_names",
    ),
    "cifar100": CifarArchive(
        filename="cifar-100-python.tar.gz",  # 169,001,437 bytes, MD5 eb9058c3a382ffc7106e4002c42a8d85
        sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        folder="cifar-100-python",
        train=("train",),
        test=("test",),
        meta="meta",
        label_key=b"fine_labels",
        names_key=b"fine_label_names",
    ),
}
_INFOS = {"cifar10": CIFAR10, "cifar100": CIFAR100}


class UnsafePickleError(pickle.UnpicklingError, DataError):
    """A pickle asked for a global that :class:`RestrictedUnpickler` does not admit."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # How protocol-2 pickles written by Python 3 spell bytes: _codecs.encode(str, "latin1").
    if codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(f"pickle calls _codecs.encode with encoding {encoding!r}; only latin1 is admitted")
    return codecs.encode(text, "latin1")


@functools.cache
def _allowed_globals() -> dict[tuple[str, str], Any]:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for numpy arrays inside plain containers; any other global raises :class:`UnsafePickleError`."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _allowed_globals()
        if (module, name) not in allowed:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name} from a data pickle: only numpy array "
                f"reconstruction is admitted ({', '.join('.'.join(k) for k in allowed)})"
            )
        return allowed[(module, name)]


def load_restricted_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle a (Python 2, latin-1) data file with :class:`RestrictedUnpickler`; ``DataError`` if malformed."""
    data = Path(path).read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except UnsafePickleError:
        raise
    except Exception as err:  # truncated or garbled: EOFError, UnpicklingError, ValueError, TypeError, ...
        raise DataError(f"{path}: not a readable CIFAR batch pickle ({type(err).__name__}: {err})") from err


def _extract(archive: Path, spec: CifarArchive, name: str, data_dir: str | os.PathLike[str] | None) -> Path:
    """Directory holding ``spec.folder`` extracted from the verified ``archive`` (extracting it if needed).

    Extractions live in ``recalib-extracted/<first 16 hex of the SHA-256>/`` next to the archive (or under the
    download directory if that is read-only), are written to a temporary directory and renamed into place.
    Every time they are used, every extracted file is hashed and compared with the SHA-256 of the same member
    read from the verified archive itself (never with a record stored next to the files, which whoever can
    edit a batch can edit too), so an edited or truncated batch is an error rather than data.
    """
    key = spec.sha256[:16]
    roots = list(dict.fromkeys([archive.parent / "recalib-extracted" / key,
                                download_target(name, data_dir) / "recalib-extracted" / key]))
    members = [f"{spec.folder}/{m}" for m in (*spec.train, *spec.test, spec.meta)]
    for root in roots:
        if (root / spec.folder).is_dir():
            _verify_extraction(root, archive, members)
            return root
    errors = []
    for root in roots:
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".tmp-"))
        except OSError as err:
            errors.append(f"{root}: {err}")
            continue
        try:
            _extract_members(archive, members, tmp)
            try:
                os.rename(tmp, root)
            except OSError:
                if not (root / spec.folder).is_dir():  # not a concurrent extraction that won the race
                    raise
            _verify_extraction(root, archive, members)
            return root
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    raise DataError(f"{name}: could not extract {archive}: no writable place ({'; '.join(errors)}); pass --data-dir DIR")


def _extract_members(archive: Path, members: list[str], dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            found = {m.name: m for m in tar.getmembers() if m.name in members}
            missing = [m for m in members if m not in found or not found[m].isfile()]
            if missing:
                raise DataError(
                    f"{archive}: missing or not regular files: {', '.join(missing)}; expected the official "
                    f"layout {', '.join(members)}"
                )
            tar.extractall(dest, members=[found[m] for m in members], filter="data")
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise DataError(f"{archive}: corrupt archive or unsafe member ({err})") from err


def _member_hashes(archive: Path, members: list[str]) -> dict[str, str]:
    """SHA-256 of each member's bytes, read from the (already verified) archive; computed once per process for
    an unchanged archive file."""
    info = archive.stat()
    return dict(_member_hashes_cached(str(archive), info.st_ino, info.st_size, info.st_mtime_ns, tuple(members)))


@functools.lru_cache(maxsize=4)
def _member_hashes_cached(archive: str, inode: int, size: int, mtime_ns: int,
                          members: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    hashes = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar.getmembers():
                if info.name in members and info.isfile():
                    f = tar.extractfile(info)
                    assert f is not None  # a regular file
                    hashes.append((info.name, hashlib.sha256(f.read()).hexdigest()))
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise DataError(f"{archive}: corrupt archive ({err})") from err
    return tuple(hashes)


def _verify_extraction(root: Path, archive: Path, members: list[str]) -> None:
    expected = _member_hashes(archive, members)
    for member in members:
        path = root / member
        got = sha256_file(path) if path.is_file() else "missing"
        if got != expected.get(member):
            raise DataError(
                f"{path}: extracted file differs from the verified archive {archive} (SHA-256 {got}, expected "
                f"{expected.get(member)}); it was modified or truncated. Delete {root} to extract it again"
            )


def _read_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = load_restricted_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path}: expected a dict with keys b'data' and {label_key!r}, got {keys}")
    data, labels = batch[b"data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: expected b'data' uint8 [n, 3072] (3 × 32 × 32), got {shape}")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: expected {data.shape[0]} integer labels, got {labels.dtype} {list(labels.shape)}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path}: labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)  # n, 3, 32, 32 ; n


def load_cifar(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> SmallDataset:
    """The ``"train"`` or ``"test"`` split of ``"cifar10"`` or ``"cifar100"``."""
    if name not in ARCHIVES:
        raise ValueError(f"unknown CIFAR data set {name!r}; expected one of {sorted(ARCHIVES)}")
    if split not in ("train", "test"):
        raise ValueError(f"{name} split must be 'train' or 'test', got {split!r}")
    spec, info = ARCHIVES[name], _INFOS[name]
    archive = locate_file(
        name, spec.filename, spec.sha256, spec.url, data_dir=data_dir, download=download,
        fix=f"download {spec.url} by hand (SHA-256 {spec.sha256})",
    )
    folder = _extract(archive, spec, name, data_dir) / spec.folder
    meta = load_restricted_pickle(folder / spec.meta)
    class_names = meta.get(spec.names_key) if isinstance(meta, dict) else None
    if not isinstance(class_names, list) or len(class_names) != info.num_classes:
        raise DataError(f"{folder / spec.meta}: expected {spec.names_key!r} with {info.num_classes} class names")
    parts = [_read_batch(folder / m, spec.label_key, info.num_classes) for m in getattr(spec, split)]
    images = np.concatenate([p[0] for p in parts])  # N, 3, 32, 32
    labels = np.concatenate([p[1] for p in parts])  # N
    return SmallDataset(torch.from_numpy(images), torch.from_numpy(labels), info, split,
                        source=f"{archive} (extracted, verified: {folder})")
