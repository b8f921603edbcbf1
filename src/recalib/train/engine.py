"""One epoch of training and one pass of evaluation, as plain functions (after ConvNeXt's ``engine.py``).

Both take their dependencies as arguments and return a dict of metrics reduced over all processes.
Per-step work stays on the device: losses and counts accumulate in device tensors that are read once per
epoch (plus, when asked, every ``sync_every`` steps to stop early on a non-finite loss or to refresh the
progress bar), so a GPU is never made to wait for the host on every step.

Unlike ConvNeXt there is one AMP path: ``amp_dtype`` (``torch.bfloat16``/``torch.float16``) or ``None``
for float32; a ``GradScaler`` is only used (and only needed) for float16.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed

__all__ = ["NonFiniteLossError", "evaluate", "train_one_epoch"]

_NO_BAD_STEP = torch.iinfo(torch.int64).max


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; ``step`` is the first global step where it did."""

    def __init__(self, step: int, message: str) -> None:
        super().__init__(message)
        self.step = step


def _set_bn_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.to(device, non_blocking=True)
    y = y.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _check_finite(first_bad: torch.Tensor) -> None:
    """Raise :class:`NonFiniteLossError` if any process saw a non-finite loss (a collective: call on all ranks)."""
    bad = distributed.all_reduce(first_bad.clone(), "min")
    step = int(bad.item())
    if step != _NO_BAD_STEP:
        raise NonFiniteLossError(
            step,
            f"the training loss is not finite (NaN or inf) at global step {step}",
        )


def _backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                       scaler: torch.amp.GradScaler | None) -> None:
    """Zero the gradients, back-propagate ``loss`` (scaled for float16) and take one optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    lr_at: Callable[[int], float],
    step: int,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    label_smoothing: float = 0.0,
    channels_last: bool = False,
    freeze_bn: bool = False,
    sync_every: int = 0,
    on_step: Callable[[int, float, torch.Tensor], None] | None = None,
) -> dict[str, float]:
    """Train ``model`` on one pass over ``loader``; return the epoch's metrics.

    Args:
        model: the model to call (possibly wrapped in DDP and/or compiled).
        loader: yields ``(x [B, C, H, W], y [B])``; moved to ``device`` if they are elsewhere.
        lr_at: learning rate of a global step (the run's schedule): the one source of the rate, set on every
            parameter group before each step; the optimizer's own ``lr`` is overwritten.
        step: global step of the first batch.
        freeze_bn: keep BatchNorm layers in eval mode (running statistics neither used from the batch nor
            updated).
        sync_every: if > 0, read the non-finite flag every that many steps.
        on_step: the per-step hook, called after every optimizer step with the new global step, the rate that
            step used and its detached loss (a device tensor: reading it is a host synchronisation, so a hook
            reads it only every so many steps). The run's hook checks the ranks, feeds the loggers and the
            progress bar (:mod:`.run`).

    Returns:
        ``train_loss`` (mean), ``train_error`` (%), ``lr`` (of the last step), ``step`` (global step after
        the epoch), ``train_images``, ``seconds``, ``images_per_s``, summed over every process.

    Raises:
        NonFiniteLossError: the loss was NaN or infinite at some step (checked every ``sync_every`` steps
        and at the end).
    """
    model.train()
    if freeze_bn:
        _set_bn_eval(model)
    start = time.perf_counter()
    loss_sum = torch.zeros((), device=device, dtype=torch.float32 if device.type == "mps" else torch.float64)
    wrong = torch.zeros((), device=device, dtype=torch.int64)
    first_bad = torch.full((), _NO_BAD_STEP, device=device, dtype=torch.int64)
    images = 0
    lr = lr_at(step)
    use_amp = amp_dtype is not None
    for i, (x, y) in enumerate(loader):
        x, y = _to_device(x, y, device, channels_last)
        lr = lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            logits = model(x)  # B, K
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        _backward_and_step(loss, optimizer, scaler)
        n = y.shape[0]
        images += n
        with torch.no_grad():
            detached = loss.detach()
            loss_sum += detached.to(loss_sum.dtype) * n
            wrong += (logits.argmax(1) != y).sum()
            is_bad = ~torch.isfinite(detached)
            first_bad = torch.where(is_bad & (first_bad == _NO_BAD_STEP), torch.full_like(first_bad, step), first_bad)
        step += 1
        if on_step is not None:
            on_step(step, lr, detached)
        if sync_every and (i + 1) % sync_every == 0:
            _check_finite(first_bad)
    totals = torch.stack([loss_sum.double(), wrong.double(), torch.tensor(float(images), device=device, dtype=torch.float64)])
    if device.type == "mps":  # no float64 on MPS
        totals = totals.float()
    distributed.all_reduce(totals)
    _check_finite(first_bad)
    loss_total, wrong_total, count = (float(v) for v in totals.tolist())  # the epoch's one host sync
    seconds = time.perf_counter() - start
    count = max(count, 1.0)
    return {
        "train_loss": loss_total / count,
        "train_error": 100.0 * wrong_total / count,
        "lr": lr,
        "step": step,
        "train_images": int(count),
        "seconds": seconds,
        "images_per_s": count / seconds if seconds > 0 else float("nan"),
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Loss, top-1 and top-5 error (%) of ``model`` over every image of ``loader``, summed over the processes.

    Each process must hold a shard of the evaluation set such that the shards partition it (as
    ``DeviceLoader(train=False)`` and the ImageNet validation loader do): every image then counts exactly
    once. Pass the unwrapped model, not the DDP wrapper (ranks may run different numbers of batches).
    """
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    acc_dtype = torch.float32 if device.type == "mps" else torch.float64
    loss_sum = torch.zeros((), device=device, dtype=acc_dtype)
    wrong1 = torch.zeros((), device=device, dtype=torch.int64)
    wrong5 = torch.zeros((), device=device, dtype=torch.int64)
    images = 0
    for x, y in loader:
        x, y = _to_device(x, y, device, channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x)  # B, K
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").to(acc_dtype)
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices  # B, 5
        wrong1 += (top[:, 0] != y).sum()
        wrong5 += (top != y[:, None]).all(dim=1).sum()
        images += y.shape[0]
    totals = torch.stack([
        loss_sum.to(acc_dtype), wrong1.to(acc_dtype), wrong5.to(acc_dtype),
        torch.tensor(float(images), device=device, dtype=acc_dtype),
    ])
    distributed.all_reduce(totals)
    loss_total, w1, w5, count = (float(v) for v in totals.tolist())
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no images")
    return {
        "test_loss": loss_total / count,
        "test_error": 100.0 * w1 / count,
        "test_top5_error": 100.0 * w5 / count,
        "test_images": int(count),
        "eval_seconds": time.perf_counter() - start,
    }
