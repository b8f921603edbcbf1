"""Distributed data parallel set-up, switched on by torchrun's environment (as nanoGPT does).

One code path: a plain ``python -m recalib train ...`` is a world of one process; under
``torchrun --nproc_per_node=N -m recalib train ...`` the variables ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` are set and :func:`setup` joins the process group: NCCL with one GPU per process when the
device is CUDA, gloo on the CPU.

Multi-node (and elastic) training uses torchrun's rendezvous; run the same command on every node::

    torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29400 \\
        --rdzv-id=JOB_ID --max-restarts=3 -m recalib train --recipe paper-imagenet ... \\
        --out /shared/runs/x --resume

``--dist-timeout`` (seconds) bounds how long a process waits for the others in a collective, so a process
that stops responding ends the job (:class:`PeerTimeoutError`) instead of hanging it.
``--out`` must be on a file system every node sees (rank 0 writes, every rank reads on resume). With
``--resume``, a run that torchrun restarts after a failure (or with a different number of nodes,
``--nnodes=MIN:MAX``) continues from the last checkpoint; the global batch stays the same, so it must be
divisible by the new world size.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "PeerTimeoutError",
    "all_gather_object",
    "all_reduce",
    "as_peer_timeout",
    "barrier",
    "broadcast_buffers",
    "cleanup",
    "env_world",
    "is_distributed",
    "setup",
    "tensors_equal_across_ranks",
]


class PeerTimeoutError(RuntimeError):
    """A collective waited longer than the process group's timeout: another process stopped responding."""


def as_peer_timeout(exc: RuntimeError, timeout: float) -> PeerTimeoutError | None:
    """``exc`` as a :class:`PeerTimeoutError` if it is a collective's time-out (gloo, NCCL), else None."""
    text = str(exc)
    if "timed out" not in text.lower() and "timeout" not in text.lower():
        return None
    detail = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return PeerTimeoutError(
        f"another process did not respond within --dist-timeout {timeout:g} s ({detail}); the job stops here. "
        "Rerun it with --resume: the last checkpoint is intact"
    )


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None
    owns_group: bool = False  # True if :func:`setup` created the process group (and cleanup destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def env_world() -> tuple[int, int, int, int]:
    """``(rank, world_size, local_rank, local_world_size)`` from torchrun's variables (a world of one without)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return rank, world, local_rank, local_world


def setup(device: torch.device, timeout: float | None = None) -> DistInfo:
    """Join the process group described by the environment (if any) on ``device``'s backend.

    ``device`` must already be this process's device (``cuda:LOCAL_RANK`` under torchrun on GPUs).
    ``timeout``: seconds a collective waits for the other processes before it fails (torch's default if
    None), so that a process that stops responding ends the job instead of hanging it.
    If the group already exists (the caller set it up), it is used as is.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=_env_int("LOCAL_RANK", 0),
            local_world_size=_env_int("LOCAL_WORLD_SIZE", dist.get_world_size()),
            backend=str(dist.get_backend()), owns_group=False,
        )
    rank, world, local_rank, local_world = env_world()
    if world == 1:
        return DistInfo(local_world_size=1)
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this build of PyTorch")
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"backend": backend}
    if timeout is not None:
        kwargs["timeout"] = datetime.timedelta(seconds=timeout)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        kwargs["device_id"] = device
    dist.init_process_group(**kwargs)
    return DistInfo(rank, world, local_rank, local_world, backend, owns_group=True)


def cleanup(info: DistInfo) -> None:
    """Leave the process group if :func:`setup` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In-place all-reduce (``sum``, ``min`` or ``max``) over the processes; a no-op in a world of one."""
    if is_distributed():
        ops = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}
        dist.all_reduce(tensor, op=ops[op])
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` in a world of one)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Give every process rank ``src``'s buffers (BatchNorm running statistics) before evaluating.

    DDP broadcasts them at the start of each training forward, but each rank then updates its copy with
    its own batch; without this the ranks would evaluate slightly different models.
    """
    if not is_distributed():
        return
    for buf in module.buffers():
        dist.broadcast(buf, src)


def tensors_equal_across_ranks(tensors: Sequence[torch.Tensor]) -> bool:
    """True if every process holds bit-identical ``tensors`` (one collective; used by ``check_ranks``)."""
    flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])  # P
    bits = flat.view(torch.int32).to(torch.int64)  # P
    weights = torch.arange(1, bits.numel() + 1, device=bits.device, dtype=torch.int64) % 1_000_003 + 1  # P
    digest = torch.stack([(bits * weights).sum(), bits.sum(), (bits % 65_521).sum()])  # 3
    if not is_distributed():
        return True
    high = digest.clone()
    all_reduce(high, "max")
    all_reduce(digest, "min")
    return bool(torch.equal(high, digest))
