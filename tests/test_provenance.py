"""recalib._provenance: git commit and library versions, checked against git and the libraries themselves."""

from __future__ import annotations

import platform
import shutil
import subprocess

import pytest
import torch

import recalib
from recalib._provenance import git_commit, git_state, library_versions


def test_library_versions():
    v = library_versions()
    assert v["recalib"] == recalib.__version__
    assert v["python"] == platform.python_version()
    assert v["torch"] == torch.__version__
    assert all(x is None or type(x) is str for x in v.values())


def test_git_state_outside_a_checkout(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}
    assert git_commit(tmp_path) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_state_of_a_repository(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    git("add", "f.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = git("rev-parse", "HEAD")
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    assert git_commit(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("u")
    assert git_commit(tmp_path) == head  # untracked files do not count
    (tmp_path / "f.txt").write_text("b")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}
    assert git_commit(tmp_path) == head + "-dirty"
