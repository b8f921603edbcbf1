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

Writing: ``torch.save`` serialises into memory, the bytes go to a temporary file in the same folder, are
flushed and ``fsync``-ed, and the file is renamed over the old checkpoint with ``os.replace`` (atomic on POSIX
and Windows), then the folder is ``fsync``-ed. A process killed at any moment leaves either the old or the new
checkpoint, never a torn one; a full disk is an ``OSError`` (``ENOSPC``), not the opaque ``RuntimeError`` that
torch's zip writer raises when a write into a file fails.
"""

from __future__ import annotations

import io
import os
import pickle
import random
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from .._io import atomic_write

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT_VERSION",
    "capture_rng_state",
    "check_model_args",
    "check_resume_fields",
    "checkpoint_file",
    "load_checkpoint",
    "load_model_weights",
    "model_from_checkpoint",
    "remove_stale_temporaries",
    "require_keys",
    "restore_rng_state",
    "save_checkpoint",
]

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
_TMP_MARK = ".tmp-"


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
def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_write(path, "wb", fsync=True, tmp_name=f".{path.name}{_TMP_MARK}{os.getpid()}") as f:
        _write_temporary(state, f, buffer.getbuffer())
    return path


def _write_temporary(state: dict[str, Any], f: IO[bytes], data: memoryview) -> None:
    """Write the serialised ``state`` into the open temporary file (a full disk: ``OSError(ENOSPC)`` here): the
    step between creating it and renaming it into place. Tests patch it to hold a process there
    (tests/train/_paused_train.py); the library has no switch for that."""
    f.write(data)


def remove_stale_temporaries(folder: str | os.PathLike[str], name: str = CHECKPOINT_NAME) -> list[Path]:
    """Delete temporary files a killed :func:`save_checkpoint` left in ``folder``; return them."""
    stale = sorted(Path(folder).glob(f".{name}{_TMP_MARK}*"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or ``path/checkpoint.pt`` when ``path`` is a run folder; ``FileNotFoundError`` if missing."""
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise FileNotFoundError(f"{path} is a folder without a {CHECKPOINT_NAME} (is it a run folder?)")
        return path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return path


def _why_unreadable(exc: BaseException) -> str:
    """The reason in one of torch.load's errors, without its advice to retry with weights_only=False."""
    if isinstance(exc, EOFError):
        return "the file is empty or truncated"
    if isinstance(exc, KeyError):
        return "not a file written by torch.save"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    noise = ("weights only load failed", "weights_only", "check the documentation", "please file an issue")
    core = [line for line in lines if not any(n in line.lower() for n in noise)]
    reason = (core or lines or [type(exc).__name__])[0].removeprefix("WeightsUnpickler error: ").split(". ")[0]
    if isinstance(exc, pickle.UnpicklingError):  # torch's advice (allowlist it, weights_only=False) left out
        return (f"not a torch.save file, or one holding Python objects, which recalib never loads since loading "
                f"them can run code: {reason.rstrip('.')}")
    return reason.rstrip(".")


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no code is executed).

    ``path`` may be the file or the run folder holding it.
    """
    path = checkpoint_file(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable recalib checkpoint ({_why_unreadable(exc)})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise ValueError(f"{path} is not a recalib training checkpoint (no format_version)")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {ckpt['format_version']}, this recalib reads format {FORMAT_VERSION}"
        )
    return ckpt


def require_keys(ckpt: dict[str, Any], keys: tuple[str, ...], path: str | os.PathLike[str]) -> None:
    """``ValueError`` naming the entries of ``keys`` that the checkpoint ``path`` lacks."""
    lacking = [k for k in keys if k not in ckpt]
    if lacking:
        raise ValueError(f"{path} is not a complete recalib checkpoint: it lacks {', '.join(lacking)}")


_MAX_CLASSES, _MAX_CHANNELS, _MAX_COUNT = 1_000_000, 4096, 2**31 - 1


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_model_args(args: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's ``model_args`` if every field has a plausible type and range; else one ``ValueError`` line
    naming the field (a modified checkpoint must not allocate a 10^11-class layer or fail deep inside a model)."""
    problem = None
    if not isinstance(args, dict):
        problem = f"model_args is {type(args).__name__}, not a mapping"
    elif not isinstance(args.get("name"), str):
        problem = f"model_args.name is {args.get('name')!r}, not a model name"
    elif not _is_int(args.get("num_classes"), 1, _MAX_CLASSES):
        problem = f"model_args.num_classes is {args.get('num_classes')!r}, not an integer in [1, {_MAX_CLASSES}]"
    elif not _is_int(args.get("in_chans"), 1, _MAX_CHANNELS):
        problem = f"model_args.in_chans is {args.get('in_chans')!r}, not an integer in [1, {_MAX_CHANNELS}]"
    elif not isinstance(args.get("recalib"), (str, type(None))):
        problem = f"model_args.recalib is {args.get('recalib')!r}, not an operator spec (a string) or None"
    elif not isinstance(args.get("kwargs", {}), dict) or not all(isinstance(k, str) for k in args.get("kwargs", {})):
        problem = f"model_args.kwargs is {args.get('kwargs')!r}, not a mapping of argument names"
    if problem:
        raise ValueError(f"{path} is not a valid recalib checkpoint: {problem}")
    return args


def check_resume_fields(ckpt: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """One ``ValueError`` line naming the first of a resume's fields whose type or range is absurd."""
    checks = (
        ("epoch", lambda v: _is_int(v, 0, _MAX_COUNT), "an integer >= 0"),
        ("step", lambda v: _is_int(v, 0, 2**62), "an integer >= 0"),
        ("steps_per_epoch", lambda v: _is_int(v, 1, _MAX_COUNT), "an integer >= 1"),
        ("history", lambda v: isinstance(v, list) and all(
            isinstance(r, dict) and _is_int(r.get("epoch"), 1, _MAX_COUNT) and _is_number(r.get("test_error"))
            for r in v), "a list of per-epoch records (with epoch and test_error)"),
        ("rng", lambda v: isinstance(v, list) and len(v) >= 1 and all(
            isinstance(r, dict) and {"torch", "numpy", "python"} <= set(r) for r in v),
         "a list of each process's generator states"),
        ("best_test_error", _is_number, "a number"),
        ("wall_seconds", _is_number, "a number"),
        ("config", lambda v: isinstance(v, dict), "a mapping"),
    )
    for key, ok, expected in checks:
        if key in ckpt and not ok(ckpt[key]):
            shown = repr(ckpt[key])
            raise ValueError(f"{path} is not a valid recalib checkpoint: {key} is "
                             f"{shown if len(shown) <= 60 else shown[:57] + '...'}, expected {expected}")


def load_model_weights(model: nn.Module, state: Any, path: str | os.PathLike[str]) -> None:
    """``model.load_state_dict(state)``, or one ``ValueError`` line saying why the weights in ``path`` do not fit."""
    from ..models._weights import fit_problems

    problems = fit_problems(model, state)
    if not problems:
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            problems = [str(exc).splitlines()[0]]
    if problems:
        raise ValueError(
            f"the weights in {path} do not fit the model {type(model).__name__} it names ({'; '.join(problems)}): "
            "the checkpoint was modified, or its model description does not match its weights"
        )


def model_from_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained model (in eval mode, on ``map_location``) and the run's config as a dict.

    ``path`` may be the checkpoint file or its run folder. Weights that do not fit the model the checkpoint
    names are a ``ValueError``.
    """
    from ..models import architecture_kwargs, create_model

    path = checkpoint_file(path)
    ckpt = load_checkpoint(path, map_location=map_location)
    require_keys(ckpt, ("model", "model_args", "config"), path)
    args = check_model_args(ckpt["model_args"], path)
    try:  # the architecture only: weights named in the record (pretrained=...) are refused, never fetched
        model = create_model(args["name"], num_classes=args["num_classes"], in_chans=args["in_chans"],
                             recalib=args.get("recalib"), **architecture_kwargs(args.get("kwargs", {}), str(path)))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: its model description {args!r} is not valid ({exc!r})") from None
    load_model_weights(model, ckpt["model"], path)
    model.to(map_location).eval()
    config = ckpt["config"]
    if not isinstance(config, dict):
        raise ValueError(f"{path}: its config is not a mapping")
    return model, dict(config)
