"""The files git tracks under a folder, listed or copied: the report scripts build from what a fresh clone has
(``scripts/make_readme_results.py``, ``scripts/tune_fashion_mnist_budget.py``). Development only: not part of the
installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["copy_git_tracked", "git_tracked_files"]


def git_tracked_files(root: str | os.PathLike[str], folder: str | os.PathLike[str]) -> list[str]:
    """Paths, relative to the checkout ``root``, of the files git tracks under ``folder`` (relative to ``root``).

    Raises ``OSError`` or ``subprocess.CalledProcessError`` when ``root`` is not a git checkout.
    """
    listed = subprocess.run(["git", "ls-files", "-z", "--", str(folder)], cwd=root, check=True,
                            capture_output=True, text=True, timeout=60).stdout
    return [p for p in listed.split("\0") if p]


def copy_git_tracked(root: str | os.PathLike[str], folder: str | os.PathLike[str],
                     dest: str | os.PathLike[str]) -> list[str]:
    """Copy the files git tracks under ``folder`` into ``dest`` at their paths relative to ``root``; list them."""
    files = git_tracked_files(root, folder)
    for rel in files:
        target = Path(dest) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(root) / rel, target)
    return files
