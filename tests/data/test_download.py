"""Finding, verifying and downloading files: search order, checksum errors, atomic downloads (no network)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

import pytest

from recalib.data import DataError, DataNotFoundError, _download
from recalib.data._download import download_file, locate_file, sha256_file

PAYLOAD = b"recalib test payload\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _locate(data_dir: Path | None, url: str, download: bool = True) -> Path:
    return locate_file("toy", "toy.bin", PAYLOAD_SHA, url, data_dir=data_dir, download=download,
                       fix="apt-get install dataset-toy")


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD * 100)  # several 1 MiB chunks
    assert sha256_file(path) == hashlib.sha256(PAYLOAD * 100).hexdigest()


def test_search_order(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, env = isolated / "first", isolated / "env"
    for d in (first / "toy", env):
        d.mkdir(parents=True)
        (d / "toy.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("RECALIB_DATA", str(env))
    assert _locate(first, "file:///nonexistent") == first / "toy" / "toy.bin"
    assert _locate(None, "file:///nonexistent") == env / "toy.bin"
    system = isolated / "system"
    (system / "toy").mkdir(parents=True)
    (system / "toy" / "toy.bin").write_bytes(PAYLOAD)
    monkeypatch.delenv("RECALIB_DATA")
    monkeypatch.setattr(_download, "SYSTEM_DATA_DIRS", (system,))
    assert _locate(None, "file:///nonexistent") == system / "toy" / "toy.bin"


def test_download_via_file_url(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = isolated / "mirror.bin"
    mirror.write_bytes(PAYLOAD)
    (isolated / "data").mkdir()
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "data"))
    path = _locate(None, mirror.as_uri())
    assert path == isolated / "data" / "toy" / "toy.bin"
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == ["toy.bin"]  # no temporary files left
    mirror.unlink()
    assert _locate(None, mirror.as_uri()) == path  # found now, not downloaded again
    assert _locate(isolated / "data", mirror.as_uri()) == path  # and found in an explicit --data-dir


def test_explicit_data_dir_lacking_the_file_is_an_error_and_downloads_nothing(isolated: Path) -> None:
    mirror = isolated / "mirror.bin"
    mirror.write_bytes(PAYLOAD)  # the download would succeed
    (isolated / "data").mkdir()
    with pytest.raises(DataNotFoundError, match="--data-dir .* lacks it") as info:
        _locate(isolated / "data", mirror.as_uri())
    assert "\n" not in str(info.value) and "only place used" in str(info.value)
    assert list((isolated / "data").iterdir()) == []


def test_digest_of_the_content_is_what_is_compared(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller's digest (here: of the reversed bytes) decides; a file whose raw SHA-256 differs is accepted."""
    (isolated / "env").mkdir()
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "env"))
    (isolated / "env" / "toy.bin").write_bytes(PAYLOAD[::-1])

    def reversed_sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()[::-1]).hexdigest()

    got = locate_file("toy", "toy.bin", PAYLOAD_SHA, "file:///nonexistent", data_dir=None, download=False, fix="-",
                      digest=reversed_sha, digest_of="reversed SHA-256")
    assert got == isolated / "env" / "toy.bin"
    (isolated / "env" / "toy.bin").write_bytes(PAYLOAD)
    with pytest.raises(DataError, match="has reversed SHA-256"):
        locate_file("toy", "toy.bin", PAYLOAD_SHA, "file:///nonexistent", data_dir=None, download=False, fix="-",
                    digest=reversed_sha, digest_of="reversed SHA-256")


def test_download_without_data_dir_goes_to_cache(isolated: Path) -> None:
    mirror = isolated / "mirror.bin"
    mirror.write_bytes(PAYLOAD)
    assert _locate(None, mirror.as_uri()) == isolated / "cache" / "recalib" / "data" / "toy" / "toy.bin"


def test_corrupted_download_leaves_nothing(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = isolated / "mirror.bin"
    mirror.write_bytes(PAYLOAD[:-1] + b"?")
    (isolated / "data").mkdir()
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "data"))
    with pytest.raises(DataError, match="checksum mismatch") as info:
        _locate(None, mirror.as_uri())
    assert PAYLOAD_SHA in str(info.value)
    assert list((isolated / "data").iterdir()) == []  # no file, and no directory it created


def test_interrupted_download_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fetch(url: str, out: BinaryIO, desc: str) -> None:
        out.write(PAYLOAD[:100])
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(_download, "_fetch", broken_fetch)
    with pytest.raises(ConnectionResetError):
        download_file("http://example.invalid/toy.bin", tmp_path / "toy.bin", PAYLOAD_SHA)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "other").write_bytes(b"")
    with pytest.raises(ConnectionResetError):
        download_file("http://example.invalid/toy.bin", tmp_path / "keep" / "new" / "toy.bin", PAYLOAD_SHA)
    assert list(tmp_path.rglob("*")) == [tmp_path / "keep", tmp_path / "keep" / "other"]


def test_local_checksum_mismatch_raises(isolated: Path) -> None:
    (isolated / "data").mkdir()
    (isolated / "data" / "toy.bin").write_bytes(PAYLOAD + b"extra")
    with pytest.raises(DataError, match="SHA-256") as info:
        _locate(isolated / "data", "file:///nonexistent")
    assert str(isolated / "data" / "toy.bin") in str(info.value) and "Delete it" in str(info.value)


@pytest.mark.parametrize("download", [True, False])
def test_not_found_message(isolated: Path, monkeypatch: pytest.MonkeyPatch, download: bool) -> None:
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "env"))
    with pytest.raises(DataNotFoundError) as info:
        _locate(None, (isolated / "missing.bin").as_uri(), download=download)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    message = str(info.value)
    assert "\n" not in message  # the CLI prints it as one line
    for place in (isolated / "env", isolated / "env" / "toy", isolated / "cache" / "recalib" / "data" / "toy"):
        assert str(place / "toy.bin") in message
    assert "apt-get install dataset-toy" in message and "RECALIB_DATA" in message and "--data-dir" in message
    assert ("download=False" in message) != download
