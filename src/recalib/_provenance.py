"""Where a result comes from: the git commit of the code and the versions of the libraries that produced it.

The one home of provenance, written into every run's ``summary.json`` (:mod:`recalib.train`) and every
benchmark's JSON (``benchmarks/harness.py``). Which result files git tracks is a development question, answered
by ``scripts/_git_tracked.py``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__

__all__ = ["git_commit", "git_state", "library_versions"]


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
