"""The device of a run and the process-wide torch settings that go with it.

:func:`resolve_device` and :func:`resolve_amp` turn the ``device`` / ``amp`` settings into torch objects;
:func:`apply_runtime_settings` sets threads, cuDNN autotuning, TF32 and deterministic algorithms; the command-line
entry points call it, library functions never do.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from .._names import suggestion
from . import distributed
from .config import TrainConfig

__all__ = ["apply_runtime_settings", "cpu_threads", "describe_device", "resolve_amp", "resolve_device"]


# ------------------------------------------------------------------------------------- device ---
def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` if CUDA is available, else ``mps``, else ``cpu``; checks availability."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps"
                         + suggestion(name, ("auto", "cpu", "cuda", "mps"))) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting on ``device`` (None: float32)."""
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        model = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return f"cpu ({model}, {torch.get_num_threads()} threads)"
    return str(device)


def cpu_threads(requested: int, local_world_size: int = 1) -> int:
    """Intra-op threads of a CPU run: ``requested`` if > 0, else ``OMP_NUM_THREADS`` if it is set to a positive
    number, else this machine's cores divided among the ``local_world_size`` processes on it."""
    if requested > 0:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, _cpu_count() // local_world_size)


def apply_runtime_settings(cfg: TrainConfig) -> None:
    """Set the process-wide torch settings ``cfg`` asks for: CPU threads (:func:`cpu_threads`), cuDNN
    autotuning and TF32 on CUDA, deterministic algorithms.

    For entry points only (``recalib train``, ``recalib quickstart``): :func:`recalib.train.train` leaves
    global state alone, so a program that calls it keeps its own settings.
    """
    _, _, local_rank, local_world_size = distributed.env_world()
    device = resolve_device(cfg.device, local_rank)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(cfg.threads, local_world_size))
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
