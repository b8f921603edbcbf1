"""Where a result comes from: the git commit of the code and the versions of the libraries that produced it.

The one home of provenance, written into every run's ``summary.json`` (:mod:`recalib.train`) and every
benchmark's JSON (:mod:`recalib.analysis.bench`). It also tells committed result files from local ones, so that
generated reports are built from what a fresh clone has (``scripts/make_readme_results.py``,
``scripts/tune_fashion_mnist_budget.py``).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__

__all__ = ["copy_git_tracked", "git_commit", "git_state", "git_tracked_files", "library_versions"]


def git_state(root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout at ``root`` (default: recalib's own).

    ``dirty``: tracked files differ from the commit (untracked files do not count).
    """
    cwd = Path(root) if root is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(cwd), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(cwd), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status.strip())}


def git_commit(root: str | os.PathLike[str] | None = None) -> str | None:
    """The commit of the checkout at ``root`` (default: recalib's own), ``-dirty`` if tracked files changed."""
    state = git_state(root)
    if state["commit"] is None:
        return None
    return state["commit"] + ("-dirty" if state["dirty"] else "")


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


def library_versions() -> dict[str, str | None]:
    """recalib, Python, torch, torchvision, numpy, CUDA and cuDNN versions (``None``: not installed)."""
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    versions = {
        "recalib": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None,
    }
    return {k: None if v is None else str(v) for k, v in versions.items()}  # plain str (torch's is a subclass)
