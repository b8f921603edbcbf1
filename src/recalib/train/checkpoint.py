"""Checkpoints: written atomically, read with ``weights_only=True``, holding everything a resume needs.

A checkpoint is a dict of plain values and tensors (no pickled classes), so ``torch.load(...,
weights_only=True)`` reads it:

* ``format_version`` (:data:`FORMAT_VERSION`), ``epoch`` (epochs completed), ``step`` (global steps done);
* ``model``: the state dict of the unwrapped, uncompiled model; ``model_args``: what rebuilds it
  (``name``, ``num_classes``, ``in_chans``, ``recalib``);
* ``optimizer``, ``scaler``: their state dicts;
* ``config``: :meth:`TrainConfig.to_dict`; ``history``: the per-epoch metric records so far;
  ``best_test_error``, ``wall_seconds``;
* ``rng``: one entry per process (rank order) with the torch, CUDA, numpy and Python generator states.

Writing: the bytes go to a temporary file in the same folder, are flushed and ``fsync``-ed, and the file is
renamed over the old checkpoint with ``os.replace`` (atomic on POSIX and Windows), then the folder is
``fsync``-ed. A process killed at any moment leaves either the old or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT_VERSION",
    "capture_rng_state",
    "load_checkpoint",
    "model_from_checkpoint",
    "remove_stale_temporaries",
    "restore_rng_state",
    "save_checkpoint",
]

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
_TMP_MARK = ".tmp-"
# Test hook (tests/train/test_resume.py): "EPOCH:SECONDS" sleeps between the fsync of the temporary file
# and os.replace when the checkpoint of that epoch is written, so that a test can kill the process there.
_PAUSE_ENV = "RECALIB_TEST_CHECKPOINT_PAUSE"


# ---------------------------------------------------------------------------------------- RNG ---
def capture_rng_state() -> dict[str, Any]:
    """Every generator's state in this process, as tensors and plain values."""
    np_state = np.random.get_state()
    assert isinstance(np_state, tuple)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _python_state_to_plain(random.getstate()),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    npst = state["numpy"]
    keys = npst["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _python_state_to_plain(st: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = st
    return [version, list(internal), gauss]


# ---------------------------------------------------------------------------------- save / load ---
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened; os.replace is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        _test_pause(state)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _test_pause(state: dict[str, Any]) -> None:
    spec = os.environ.get(_PAUSE_ENV)
    if spec:
        epoch, seconds = spec.split(":")
        if int(epoch) == state.get("epoch"):
            time.sleep(float(seconds))


def remove_stale_temporaries(folder: str | os.PathLike[str], name: str = CHECKPOINT_NAME) -> list[Path]:
    """Delete temporary files a killed :func:`save_checkpoint` left in ``folder``; return them."""
    stale = sorted(Path(folder).glob(f".{name}{_TMP_MARK}*"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code is executed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable recalib checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise ValueError(f"{path} is not a recalib training checkpoint (no format_version)")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {ckpt['format_version']}, this recalib reads format {FORMAT_VERSION}"
        )
    return ckpt


def model_from_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model (in eval mode, on ``map_location``) and the run's config as a dict."""
    from ..models import create_model

    ckpt = load_checkpoint(path, map_location=map_location)
    args = ckpt["model_args"]
    recalib = args.get("recalib")
    model = create_model(args["name"], num_classes=args["num_classes"], in_chans=args["in_chans"], recalib=recalib,
                         **args.get("kwargs", {}))
    model.load_state_dict(ckpt["model"])
    model.to(map_location).eval()
    return model, dict(ckpt["config"])
