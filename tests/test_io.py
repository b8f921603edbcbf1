"""recalib._io: atomic writes leave the old content or the new, never a part; file SHA-256 against hashlib."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from recalib._io import atomic_write, sha256_file, write_json_atomic, write_text_atomic


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with atomic_write(path) as f:
        f.write("new ")
        assert path.read_text() == "old"  # nothing visible until the block ends
        f.write("content")
    assert path.read_text() == "new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temporary file left


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path, "wb", fsync=True) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_atomic_write_temporary_name_and_bad_mode(tmp_path):
    path = tmp_path / "ck.pt"
    with atomic_write(path, "wb", tmp_name=f".ck.pt.tmp-{os.getpid()}") as f:
        assert os.path.basename(f.name) == f".ck.pt.tmp-{os.getpid()}"
        f.write(b"x")
    assert path.read_bytes() == b"x"
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(path, "a"):
            pass


def test_write_text_and_json(tmp_path):
    write_text_atomic(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_text() == "héllo\n"
    obj = {"b": (1, 2), "a": tmp_path}
    write_json_atomic(tmp_path / "o.json", obj, default=str)
    text = (tmp_path / "o.json").read_text()
    assert text == json.dumps(obj, indent=2, default=str) + "\n"
    assert json.loads(text) == {"b": [1, 2], "a": str(tmp_path)}
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "o.json", obj)  # a Path is not JSON without default=
    assert json.loads((tmp_path / "o.json").read_text())["b"] == [1, 2]  # the old file is intact


def test_sha256_file_matches_hashlib(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read block
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_atomic_write_newline_for_csv(tmp_path):
    import csv

    with atomic_write(tmp_path / "t.csv", newline="") as f:
        csv.writer(f).writerows([["a", "b"], [1, 2]])
    assert (tmp_path / "t.csv").read_bytes() == b"a,b\r\n1,2\r\n"  # the csv module's own line ends, untranslated


def test_atomic_write_never_follows_a_planted_temporary(tmp_path):
    """A link planted where the temporary file goes is removed, not written through."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    path = tmp_path / "out.txt"
    (tmp_path / ".out.txt.tmp").symlink_to(victim)
    with atomic_write(path) as f:
        f.write("new")
    assert victim.read_text() == "keep" and path.read_text() == "new" and not path.is_symlink()
