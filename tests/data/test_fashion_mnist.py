"""Fashion-MNIST from the real local files, and the IDX parser on generated files."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from recalib.data import DataError, DataNotFoundError, load_small, parse_idx, read_idx, sha256_file
from recalib.data import fashion_mnist as fm

SYSTEM = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_ARCHIVE_SHA256 = {  # Debian's dataset-fashion-mnist .gz files; independent of the table in fashion_mnist.py
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
}
needs_real = pytest.mark.skipif(not SYSTEM.is_dir(), reason="apt-get install dataset-fashion-mnist")


def _idx(array: np.ndarray, code: int) -> bytes:
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture(scope="module")
def real() -> dict[str, object]:
    return {split: load_small("fashion-mnist", split, download=False) for split in ("train", "test")}


@needs_real
def test_real_files_and_table_match_official_hashes() -> None:
    for name, sha in DEBIAN_ARCHIVE_SHA256.items():
        assert sha256_file(SYSTEM / name) == sha
    assert {f: a["debian-sha256"] for f, a in fm.KNOWN_ARCHIVES.items()} == DEBIAN_ARCHIVE_SHA256
    for name, content_sha in fm.FILES.values():  # the table pins the decompressed bytes (hashlib as reference)
        assert hashlib.sha256(gzip.decompress((SYSTEM / name).read_bytes())).hexdigest() == content_sha
        assert fm.idx_content_sha256(SYSTEM / name) == content_sha


def _recompressed(folder: Path, level: int, edit: dict[str, int] | None = None) -> Path:
    """The real test files, decompressed, optionally with byte ``edit[name]`` changed, re-compressed at ``level``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        raw = bytearray(gzip.decompress((SYSTEM / name).read_bytes()))
        if edit and name in edit:
            raw[edit[name]] = (raw[edit[name]] + 1) % 10
        (folder / name).write_bytes(gzip.compress(bytes(raw), compresslevel=level, mtime=0))
    return folder


@needs_real
def test_same_content_recompressed_at_another_level_is_accepted(isolated: Path, real: dict) -> None:
    data = _recompressed(isolated / "data", level=1)
    assert sha256_file(data / "t10k-images-idx3-ubyte.gz") != DEBIAN_ARCHIVE_SHA256["t10k-images-idx3-ubyte.gz"]
    ds = load_small("fashion-mnist", "test", data_dir=data, download=False)
    assert torch.equal(ds.images, real["test"].images) and torch.equal(ds.labels, real["test"].labels)


@needs_real
def test_one_changed_label_byte_is_refused_in_one_line_naming_the_file(isolated: Path) -> None:
    data = _recompressed(isolated / "data", level=9, edit={"t10k-labels-idx1-ubyte.gz": 8 + 1234})
    with pytest.raises(DataError) as info:
        load_small("fashion-mnist", "test", data_dir=data, download=False)
    message = str(info.value)
    assert "\n" not in message and str(data / "t10k-labels-idx1-ubyte.gz") in message
    assert "content SHA-256" in message


@needs_real
def test_download_from_a_local_http_server_serving_recompressed_files(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, real: dict
) -> None:
    """The download path end to end: an HTTP server on 127.0.0.1 serves re-compressed files; one is accepted,
    a served file with one changed label byte is refused and leaves nothing behind."""
    import functools
    import http.server
    import threading

    _recompressed(isolated / "mirror", level=3)
    _recompressed(isolated / "bad", level=3, edit={"t10k-labels-idx1-ubyte.gz": 8})
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(isolated))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv("RECALIB_DATA", str(isolated / "store"))
        monkeypatch.setattr(fm, "BASE_URL", f"{base}/bad/")
        with pytest.raises(DataError, match="checksum mismatch"):
            load_small("fashion-mnist", "test")
        assert not (isolated / "store" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()
        monkeypatch.setattr(fm, "BASE_URL", f"{base}/mirror/")
        ds = load_small("fashion-mnist", "test")
    finally:
        server.shutdown()
        server.server_close()
    assert torch.equal(ds.labels, real["test"].labels)
    got = sorted(p.name for p in (isolated / "store" / "fashion-mnist").iterdir())
    assert got == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


@needs_real
def test_real_shapes_labels_balance(real: dict) -> None:
    for split, n in (("train", 60000), ("test", 10000)):
        ds = real[split]
        assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
        assert ds.labels.shape == (n,) and ds.labels.dtype == torch.int64
        assert torch.bincount(ds.labels, minlength=10).tolist() == [n // 10] * 10
        assert ds.info.num_classes == 10 and ds.split == split


@needs_real
def test_real_matches_independent_decode(real: dict) -> None:
    # Independent reference: skip the 16-byte header by hand.
    with gzip.open(SYSTEM / "t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(10000, 1, 28, 28)
    with gzip.open(SYSTEM / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    assert torch.equal(real["test"].images, torch.from_numpy(raw.copy()))
    assert torch.equal(real["test"].labels, torch.from_numpy(labels.astype(np.int64)))


@needs_real
def test_real_mean_std_match_info(real: dict) -> None:
    x = real["train"].images.double() / 255
    assert x.mean().item() == pytest.approx(fm.FASHION_MNIST.mean[0], abs=5e-4)
    assert x.std().item() == pytest.approx(fm.FASHION_MNIST.std[0], abs=5e-4)


@needs_real
def test_download_path_with_file_mirror(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fm, "BASE_URL", SYSTEM.as_uri() + "/")
    (isolated / "data").mkdir()  # downloads go to $RECALIB_DATA/fashion-mnist (never into an explicit --data-dir)
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "data"))
    ds = load_small("fashion-mnist", "test")
    assert len(ds) == 10000
    got = sorted(p.name for p in (isolated / "data" / "fashion-mnist").iterdir())
    assert got == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_corrupt_mirror_raises(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = isolated / "mirror"
    mirror.mkdir()
    for name in DEBIAN_ARCHIVE_SHA256:
        (mirror / name).write_bytes(gzip.compress(b"not the data set"))
    monkeypatch.setattr(fm, "BASE_URL", mirror.as_uri() + "/")
    (isolated / "data").mkdir()
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "data"))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_small("fashion-mnist", "test")
    assert list((isolated / "data").iterdir()) == []


def test_offline_not_found_message(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fm, "BASE_URL", (isolated / "offline").as_uri() + "/")
    (isolated / "data").mkdir()
    with pytest.raises(DataNotFoundError) as info:
        load_small("fashion-mnist", "train", data_dir=isolated / "data")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message and "RECALIB_DATA" in message
    assert "train-images-idx3-ubyte.gz" in message and str(isolated / "data") in message


def test_parse_idx_roundtrip_dtypes() -> None:
    rng = np.random.default_rng(0)
    cases = [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32),
             (0x0E, np.float64)]
    for code, dtype in cases:
        array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
        out = parse_idx(_idx(array, code))
        assert out.dtype == np.dtype(dtype) and np.array_equal(out, array)
    assert parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])).tolist() == [7, 8, 9]  # by hand


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x00\x00", "shorter than"),
        (bytes([0, 1, 8, 1, 0, 0, 0, 1, 5]), "magic number"),
        (bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 5]), "magic number"),  # 0x0A is not a type code
        (bytes([0, 0, 8, 0]), "0 dimensions"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2]), "truncated IDX header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3]), "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), "trailing bytes"),
        (bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 2, 3]), "size mismatch"),  # 2 int16 need 4 bytes
    ],
)
def test_parse_idx_rejects(data: bytes, match: str) -> None:
    with pytest.raises(DataError, match=match):
        parse_idx(data)


def test_read_idx_gz_and_truncated_gz(tmp_path: Path) -> None:
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    good = tmp_path / "x-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(_idx(array, 0x08)))
    assert np.array_equal(read_idx(good), array)
    raw = tmp_path / "x-idx3-ubyte"
    raw.write_bytes(_idx(array, 0x08))
    assert np.array_equal(read_idx(raw), array)
    bad = tmp_path / "bad-idx3-ubyte.gz"
    bad.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(DataError, match="truncated"):
        read_idx(bad)


def test_wrong_shape_files_rejected(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Well-formed IDX files of the wrong shape (e.g. 32x32 images), with matching checksums.
    data = isolated / "data"
    data.mkdir()
    table = {}
    for key, (name, _) in fm.FILES.items():
        n = 60000 if key.startswith("train") else 10000
        array = np.zeros((n, 32, 32) if key.endswith("images") else (n,), dtype=np.uint8)
        (data / name).write_bytes(gzip.compress(_idx(array, 0x08), compresslevel=1))
        table[key] = (name, hashlib.sha256(_idx(array, 0x08)).hexdigest())  # the content, as the table pins it
    monkeypatch.setattr(fm, "FILES", table)
    with pytest.raises(DataError, match=r"expected uint8 images \[10000, 28, 28\]"):
        load_small("fashion-mnist", "test", data_dir=data)


def test_file_copied_from_system_still_verified(isolated: Path) -> None:
    if not SYSTEM.is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist")
    data = isolated / "data"
    data.mkdir()
    shutil.copy(SYSTEM / "t10k-labels-idx1-ubyte.gz", data)
    with open(data / "t10k-labels-idx1-ubyte.gz", "r+b") as f:
        f.seek(100)
        f.write(b"\xff")
    with pytest.raises(DataError, match="SHA-256"):
        load_small("fashion-mnist", "test", data_dir=data, download=False)
