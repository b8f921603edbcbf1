"""CIFAR-10/100 from generated archives in the official layout, written as Python 2 pickles.

Covers reading, checksum and layout errors, and that a crafted pickle cannot run code.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from recalib.data import DataError, UnsafePickleError, load_small, sha256_file
from recalib.data import cifar as cifar_mod
from recalib.data.cifar import load_restricted_pickle


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes str and bytes as Python 2 ``str`` (BINSTRING), as cPickle did for the real batches."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _save_py2_str(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def _py2_pickle(obj: object) -> bytes:
    out = io.BytesIO()
    _Py2Pickler(out, protocol=2).dump(obj)
    # The real files name numpy 1's module.
    return out.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def _row(image: np.ndarray) -> np.ndarray:
    # Independent statement of the format: the 1024 red values, then green, then blue, each row-major.
    return np.concatenate([image[0].ravel(), image[1].ravel(), image[2].ravel()])


def _make_archive(path: Path, name: str, n: int, seed: int = 0,
                  replace: dict[str, bytes] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write a tar.gz in the real layout; returns the expected (images, labels) per split."""
    spec = cifar_mod.ARCHIVES[name]
    classes = 10 if name == "cifar10" else 100
    rng = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    expected: dict[str, list] = {"train": [], "test": []}
    for split in ("train", "test"):
        for member in getattr(spec, split):
            images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
            labels = rng.integers(0, classes, n).tolist()
            batch = {"batch_label": f"{member} of 1", "data": np.stack([_row(im) for im in images]),
                     "filenames": [f"img_{i}.png" for i in range(n)]}
            if name == "cifar10":
                batch["labels"] = labels
            else:
                batch["fine_labels"] = labels
                batch["coarse_labels"] = [lab // 5 for lab in labels]
            files[member] = _py2_pickle(batch)
            expected[split].append((images, np.array(labels)))
    meta = {"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": n, "num_vis": 3072}
    if name == "cifar100":
        meta = {"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": [f"c{i}" for i in range(20)]}
    files[spec.meta] = _py2_pickle(meta)
    files.update(replace or {})
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        folder = tarfile.TarInfo(spec.folder)
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for member, data in files.items():
            info = tarfile.TarInfo(f"{spec.folder}/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return {s: (np.concatenate([i for i, _ in v]), np.concatenate([lab for _, lab in v])) for s, v in expected.items()}


def _use(monkeypatch: pytest.MonkeyPatch, name: str, archive: Path, url: str | None = None) -> None:
    spec = dataclasses.replace(cifar_mod.ARCHIVES[name], sha256=sha256_file(archive), url=url or "file:///nowhere")
    monkeypatch.setitem(cifar_mod.ARCHIVES, name, spec)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_reads_generated_archive(isolated: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    data = isolated / "data"
    data.mkdir()
    archive = data / cifar_mod.ARCHIVES[name].filename
    expected = _make_archive(archive, name, n=7)
    _use(monkeypatch, name, archive)
    for split, n in (("train", 35 if name == "cifar10" else 7), ("test", 7)):
        ds = load_small(name, split, data_dir=data, download=False)
        images, labels = expected[split]
        assert ds.images.shape == (n, 3, 32, 32) and ds.images.dtype == torch.uint8
        assert torch.equal(ds.images, torch.from_numpy(images))
        assert torch.equal(ds.labels, torch.from_numpy(labels).long())
        assert ds.info.num_classes == (10 if name == "cifar10" else 100)
    # Extracted once, under a folder keyed by the archive's hash; the archive is untouched.
    extracted = list((data / "recalib-extracted").iterdir())
    assert len(extracted) == 1 and (extracted[0] / cifar_mod.ARCHIVES[name].folder).is_dir()


def test_download_then_read(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = isolated / "mirror.tar.gz"
    expected = _make_archive(mirror, "cifar10", n=3)
    _use(monkeypatch, "cifar10", mirror, url=mirror.as_uri())
    (isolated / "data").mkdir()  # downloads go to $RECALIB_DATA/cifar10 (never into an explicit --data-dir)
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "data"))
    ds = load_small("cifar10", "test")
    assert torch.equal(ds.images, torch.from_numpy(expected["test"][0]))
    assert (isolated / "data" / "cifar10" / "cifar-10-python.tar.gz").is_file()


def test_checksum_mismatch(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = isolated / "data"
    data.mkdir()
    _make_archive(data / "cifar-10-python.tar.gz", "cifar10", n=2)
    # The real table's hash: the generated archive does not match it.
    with pytest.raises(DataError, match="SHA-256"):
        load_small("cifar10", "train", data_dir=data, download=False)
    mirror = isolated / "mirror.tar.gz"
    _make_archive(mirror, "cifar10", n=2, seed=1)
    monkeypatch.setitem(cifar_mod.ARCHIVES, "cifar10",
                        dataclasses.replace(cifar_mod.ARCHIVES["cifar10"], url=mirror.as_uri()))
    (isolated / "other").mkdir()
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "other"))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_small("cifar10", "train")
    assert list((isolated / "other").iterdir()) == []


def test_malicious_pickle_does_not_run(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = isolated / "pwned"
    evil = pickle.dumps({b"data": _Evil(marker), b"labels": [0]}, protocol=2)
    pickle.loads(evil)  # control: the plain unpickler does run it (a harmless `touch` in tmp_path)
    assert marker.exists()
    marker.unlink()
    pickle_file = isolated / "evil.pkl"
    pickle_file.write_bytes(evil)
    with pytest.raises(UnsafePickleError, match="system"):
        load_restricted_pickle(pickle_file)
    assert isinstance(UnsafePickleError("x"), pickle.UnpicklingError)

    data = isolated / "data"
    data.mkdir()
    archive = data / "cifar-10-python.tar.gz"
    _make_archive(archive, "cifar10", n=2, replace={"data_batch_1": evil})
    _use(monkeypatch, "cifar10", archive)
    with pytest.raises(UnsafePickleError):
        load_small("cifar10", "train", data_dir=data, download=False)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    pickle.dumps(eval, protocol=2),  # builtins.eval
    b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.",  # encode, non-latin1 codec
])
def test_restricted_unpickler_refuses(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "p.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError):
        load_restricted_pickle(path)


def test_restricted_unpickler_reads_arrays(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for payload in (_py2_pickle({"data": array}), pickle.dumps({b"data": array}, protocol=2),
                    pickle.dumps({b"data": array}, protocol=4)):
        path = tmp_path / "ok.pkl"
        path.write_bytes(payload)
        assert np.array_equal(load_restricted_pickle(path)[b"data"], array)
    path.write_bytes(_py2_pickle({"data": array})[:-10])
    with pytest.raises(DataError, match="not a readable"):
        load_restricted_pickle(path)


def test_bad_labels_and_shapes(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = isolated / "data"
    data.mkdir()
    archive = data / "cifar-10-python.tar.gz"
    out_of_range = _py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [3, 10]})
    _make_archive(archive, "cifar10", n=2, replace={"test_batch": out_of_range})
    _use(monkeypatch, "cifar10", archive)
    with pytest.raises(DataError, match=r"labels must lie in \[0, 10\)"):
        load_small("cifar10", "test", data_dir=data, download=False)

    archive.unlink()
    bad = _py2_pickle({"data": np.zeros((2, 1024), np.uint8), "labels": [0, 1]})
    _make_archive(archive, "cifar10", n=2, replace={"test_batch": bad})
    _use(monkeypatch, "cifar10", archive)
    with pytest.raises(DataError, match=r"uint8 \[n, 3072\]"):
        load_small("cifar10", "test", data_dir=data, download=False)


def test_bad_archives(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = isolated / "data"
    data.mkdir()
    archive = data / "cifar-10-python.tar.gz"
    # A link where a batch file should be: refused, nothing read through it.
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    _use(monkeypatch, "cifar10", archive)
    with pytest.raises(DataError, match="missing or not regular files"):
        load_small("cifar10", "train", data_dir=data, download=False)
    # A truncated archive whose (wrong) checksum someone recorded.
    full = isolated / "full.tar.gz"
    _make_archive(full, "cifar10", n=2)
    archive.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _use(monkeypatch, "cifar10", archive)
    with pytest.raises(DataError, match="corrupt archive"):
        load_small("cifar10", "train", data_dir=data, download=False)
    assert not (data / "recalib-extracted").exists() or not any((data / "recalib-extracted").rglob("*_batch*"))


def test_edited_extracted_batch_is_refused_on_reuse(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13, item 16: only the archive was hashed, so an edited extracted test_batch was used silently."""
    data = isolated / "data"
    data.mkdir()
    archive = data / cifar_mod.ARCHIVES["cifar10"].filename
    _make_archive(archive, "cifar10", n=4)
    _use(monkeypatch, "cifar10", archive)
    first = load_small("cifar10", "test", data_dir=data, download=False)
    (root,) = (data / "recalib-extracted").iterdir()
    batch = root / "cifar-10-batches-py" / "test_batch"
    forged = _py2_pickle({"data": np.zeros((4, 3072), np.uint8), "labels": [0, 0, 0, 0]})
    batch.write_bytes(forged)
    with pytest.raises(DataError, match="differs from the verified archive") as info:
        load_small("cifar10", "test", data_dir=data, download=False)
    assert str(batch) in str(info.value) and str(root) in str(info.value)
    # Issue 22, item 7: the expected hashes came from recalib-sha256.json in the same folder, so editing a batch
    # and its hash there made altered data load. They now come from the verified archive, every time.
    import hashlib
    import json

    (root / "recalib-sha256.json").write_text(json.dumps({f"cifar-10-batches-py/{m}": hashlib.sha256(
        forged if m == "test_batch" else (root / "cifar-10-batches-py" / m).read_bytes()).hexdigest()
        for m in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]}))
    with pytest.raises(DataError, match="differs from the verified archive"):
        load_small("cifar10", "test", data_dir=data, download=False)
    import shutil

    shutil.rmtree(root)  # the fix the message gives
    again = load_small("cifar10", "test", data_dir=data, download=False)
    assert torch.equal(again.images, first.images) and str(archive) in str(again.source)
