"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017, arXiv:1708.07747) and the IDX file format it ships in.

70,000 grey 28×28 images of clothes in 10 balanced classes: 60,000 for training, 10,000 for test.
The four ``.gz`` files are verified by content before they are parsed: the SHA-256 of their *decompressed* IDX
bytes (:data:`FILES`), which every faithful copy shares, whatever compressor or level made the archive. The
archives' own hashes differ between sources (the official mirror's files and Debian's re-compressed
``dataset-fashion-mnist`` package hold the same bytes once decompressed); :data:`KNOWN_ARCHIVES` lists them, as
information only.

IDX (http://yann.lecun.com/exdb/mnist/): two zero bytes, a dtype code, the number of dimensions ``n``,
``n`` big-endian uint32 sizes, then the big-endian data in C order. The parser checks every one of
these and that the byte count is exact.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from ._base import DataError, DatasetInfo, SmallDataset
from ._download import locate_file

__all__ = ["FASHION_MNIST", "FILES", "KNOWN_ARCHIVES", "idx_content_sha256", "load_fashion_mnist", "parse_idx",
           "read_idx"]

FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    num_classes=10,
    in_chans=1,
    image_size=28,
    mean=(0.2860,),
    std=(0.3530,),
    kind="small",
    train_images=60_000,
    test_images=10_000,
)
#: The official mirror (Zalando's S3 bucket); the file name is appended.
BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FILES: dict[str, tuple[str, str]] = {  # (split, part) -> file name, SHA-256 of the decompressed IDX bytes
    "train-images": ("train-images-idx3-ubyte.gz", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels": ("train-labels-idx1-ubyte.gz", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "test-images": ("t10k-images-idx3-ubyte.gz", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "test-labels": ("t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
#: Hashes of the archives (the ``.gz`` bytes) of known sources; not checked, since any faithful re-compression is
#: accepted. "zalando-md5": the MD5 published with the data set for the official mirror's files; "debian-sha256":
#: Debian's ``dataset-fashion-mnist`` package (re-compressed, so other bytes).
KNOWN_ARCHIVES: dict[str, dict[str, str]] = {
    "train-images-idx3-ubyte.gz": {
        "zalando-md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "debian-sha256": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    },
    "train-labels-idx1-ubyte.gz": {
        "zalando-md5": "25c81989df183df01b3e8a0aad5dffbe",
        "debian-sha256": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    },
    "t10k-images-idx3-ubyte.gz": {
        "zalando-md5": "bef4ecab320f06d8554ea6380940ec79",
        "debian-sha256": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    },
    "t10k-labels-idx1-ubyte.gz": {
        "zalando-md5": "bb300cfdad3c16e7a12a480ee83cd310",
        "debian-sha256": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
}
_SIZES = {"train": FASHION_MNIST.train_images, "test": FASHION_MNIST.test_images}
_FIX = "apt-get install dataset-fashion-mnist"

# IDX dtype codes -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode one IDX file held in memory into an array of its shape (native byte order)."""
    if len(data) < 4:
        raise DataError(f"{source}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    zero, code, ndim = int.from_bytes(data[0:2], "big"), data[2], data[3]
    if zero != 0 or code not in _IDX_DTYPES:
        raise DataError(
            f"{source}: not an IDX file: magic number 0x{data[:4].hex()} should be 0x0000TTNN with type code "
            f"TT in {{{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}}}"
        )
    if ndim == 0:
        raise DataError(f"{source}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: truncated IDX header: {ndim} dimensions need {header} bytes, file has {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise DataError(
            f"{source}: IDX size mismatch: header says {dtype.str} {list(shape)} = {expected} bytes in all, "
            f"file has {len(data)} ({'truncated' if len(data) < expected else 'trailing bytes'})"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def idx_content_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the decompressed bytes of a gzip file (streamed); ``DataError`` naming it if it is not gzip."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{path}: cannot compute its content SHA-256: not a complete gzip file ({err})") from None
    return digest.hexdigest()


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed if its name ends in ``.gz``."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip stream ({err})") from err
    return parse_idx(data, source=str(path))


def load_fashion_mnist(
    split: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> SmallDataset:
    """The ``"train"`` (60,000) or ``"test"`` (10,000) split of Fashion-MNIST, verified and shape-checked."""
    if split not in _SIZES:
        raise ValueError(f"fashion-mnist split must be 'train' or 'test', got {split!r}")
    all_files = [f for f, _ in FILES.values()]
    arrays, paths = [], []
    for part in ("images", "labels"):
        filename, sha256 = FILES[f"{split}-{part}"]
        path = locate_file(
            FASHION_MNIST.name, filename, sha256, BASE_URL + filename,
            data_dir=data_dir, download=download, fix=_FIX, also_needed=all_files,
            digest=idx_content_sha256, digest_of="content SHA-256 (decompressed)",
        )
        arrays.append(read_idx(path))
        paths.append(str(path))
    images, labels = arrays
    n = _SIZES[split]
    if images.shape != (n, 28, 28) or images.dtype != np.uint8 or labels.shape != (n,) or labels.dtype != np.uint8:
        raise DataError(
            f"fashion-mnist {split}: expected uint8 images [{n}, 28, 28] and uint8 labels [{n}], "
            f"got {images.dtype} {list(images.shape)} and {labels.dtype} {list(labels.shape)}"
        )
    return SmallDataset(
        images=torch.from_numpy(images).unsqueeze(1),  # N, 1, 28, 28
        labels=torch.from_numpy(labels).long(),  # N
        info=FASHION_MNIST,
        split=split,
        source=", ".join(paths),
    )
