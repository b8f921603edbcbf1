"""Parameters, multiply-accumulates and elementwise work of a model, counted on a real forward pass.

``complexity(model, input_size) -> {"params", "macs", "elementwise"}`` (ints, for the whole input batch;
``input_size=(1, C, H, W)`` gives per-image figures, the convention of the papers' tables).

* ``params``: the number of distinct parameters (buffers such as BN running statistics excluded).
* ``macs``: multiply-accumulates of every convolution and matrix product that has a learned weight as an
  operand: the backbone's convolutions and classifier *and the operators' own 1x1 / fully-connected layers*
  (they are convolutions; the MS-SAR paper counts them in its FLOPs, Section 3.5). The per-op formulas are
  ``torch.utils.flop_counter``'s (``flop_registry``; FLOPs / 2 = MACs), nothing is kept in a table here. This
  is what the papers call "FLOPs" (ResNet-50: "3.8 GFLOPs" = 3.8 G multiply-adds).
* ``elementwise``: the work MAC counters ignore, which dominates a recalibration operator's cost: one unit per
  element written by a pointwise op (``torch.Tag.pointwise``: sigmoid, multiply, add, ReLU, ...), by
  BatchNorm, by up-sampling and by index/gather look-ups (MS-SAR's integral-image reads), and one unit per
  element read by a reduction (``torch.Tag.reduction``: mean, sum, std, ...), a pooling op or a scan (the
  cumulative sums of an integral image). A matrix product without a learned operand is a pooling written as
  a product with a constant averaging matrix (MS-SAR's cell means): it counts one unit per element of its
  largest operand, like the pooling it implements, whatever the implementation (average pooling or GEMM).
  Pure data movement (concatenation, padding, copies, views) is not counted. The backbone's BN, ReLU,
  residual additions and pooling are included, so compare operators by the difference to the plain model.
  The units are a model of the work, not a timing: an operator's wall-clock cost is for the benchmarks.

The count is taken on a second forward pass (the first fills the operators' caches of constant tensors,
which are not per-image work), in eval mode under ``torch.no_grad()`` on ``device`` (default: where the
model is) in the model's dtype; the training flags are restored afterwards. Pass the eager model, not a
compiled one.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

from .. import _format

__all__ = ["complexity", "format_count", "params_and_macs", "resolve_input_size"]

_BATCH_NORM = ("batch_norm", "_native_batch_norm_legit", "native_batch_norm")
_READ_INPUT = ("pool", "cumsum", "cumprod", "logcumsumexp")  # pooling and scans: one unit per element read
_WRITE_OUTPUT = ("upsample", "index_select", "gather", "index", "_unsafe_index", "softmax", "log_softmax")
# Data movement and tensor creation that carry the pointwise tag: not arithmetic, not counted.
_MOVEMENT = frozenset({"clone", "copy", "_to_copy", "lift_fresh_copy", "fill", "zero", "zeros_like", "ones_like",
                       "full_like", "empty_like", "alias", "detach"})


def _numel(tensors: Any) -> int:
    return sum(t.numel() for t in tree_flatten(tensors)[0] if isinstance(t, torch.Tensor))


def _first_tensor(args: Sequence[Any]) -> torch.Tensor | None:
    for a in tree_flatten(list(args))[0]:
        if isinstance(a, torch.Tensor):
            return a
    return None


class _CountingMode(TorchDispatchMode):
    """Classifies every aten op of a forward into MACs (learned operand), elementwise work or data movement."""

    def __init__(self, weight_storages: set[int]) -> None:
        super().__init__()
        self.weight_storages = weight_storages
        self.macs = 0
        self.elementwise = 0
        self.by_op: Counter[str] = Counter()

    def _has_weight_operand(self, args: Sequence[Any]) -> bool:
        for a in tree_flatten(list(args))[0]:
            if isinstance(a, torch.Tensor) and a.dim() >= 2 and a.untyped_storage().data_ptr() in self.weight_storages:
                return True
        return False

    def __torch_dispatch__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        name = packet.__name__.rstrip("_")  # in-place variants count as their functional op
        if packet in flop_registry:
            macs = flop_registry[packet](*args, **kwargs, out_val=out) // 2
            if self._has_weight_operand(args):
                self.macs += macs
                self.by_op[f"macs:{name}"] += macs
            else:  # a product with constants (averaging matrices): pooling, one unit per element read
                read = max(t.numel() for t in tree_flatten(list(args))[0] if isinstance(t, torch.Tensor))
                self.elementwise += read
                self.by_op[f"elementwise:{name}"] += read
            return out
        count = 0
        if name in _MOVEMENT:
            pass
        elif any(name.startswith(b) or name.endswith(b) for b in _BATCH_NORM):
            count = _numel(out[0] if isinstance(out, (tuple, list)) else out)
        elif torch.Tag.pointwise in func.tags:
            count = _numel(out)
        elif torch.Tag.reduction in func.tags or any(k in name for k in _READ_INPUT):
            first = _first_tensor(args)
            count = first.numel() if first is not None else 0
        elif any(name.startswith(k) for k in _WRITE_OUTPUT):
            count = _numel(out)
        if count:
            self.elementwise += count
            self.by_op[f"elementwise:{name}"] += count
        return out


def resolve_input_size(model: nn.Module, input_size: int | Sequence[int] | None) -> tuple[int, int, int, int]:
    """``(N, C, H, W)`` from an int (square side), ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)``.

    Missing parts come from the model: ``default_cfg["input_size"]`` (zoo models) or the first convolution's
    input channels; N defaults to 1.
    """
    cfg = getattr(model, "default_cfg", None) or {}
    default = cfg.get("input_size")
    in_chans = default[0] if default else next(
        (m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), None
    )
    if input_size is None:
        if default is None:
            raise ValueError("input_size is required for a model without default_cfg['input_size'], e.g. (1, 3, 224, 224)")
        input_size = default
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
    if len(size) == 2:
        if in_chans is None:
            raise ValueError(f"cannot infer the input channels of the model; give input_size as (N, C, H, W), got {input_size!r}")
        size = (1, in_chans, *size)
    elif len(size) == 3:
        size = (1, *size)
    if len(size) != 4 or any(s < 1 for s in size):
        raise ValueError(f"input_size must be H, (H, W), (C, H, W) or (N, C, H, W) with positive sizes, got {input_size!r}")
    return size


def complexity(
    model: nn.Module,
    input_size: int | Sequence[int] | None = None,
    *,
    device: torch.device | str | None = None,
    breakdown: bool = False,
) -> dict[str, Any]:
    """``{"params", "macs", "elementwise"}`` of ``model`` on an input of ``input_size`` (see the module docstring).

    ``input_size``: ``(1, C, H, W)``; an int, ``(H, W)`` or ``(C, H, W)`` are completed from the model (zoo
    models default to their ``default_cfg["input_size"]``: 32x32 CIFAR, 224x224 ImageNet). With
    ``breakdown=True`` the result also has ``"by_op"``: ``{"macs:convolution": ..., "elementwise:sigmoid": ...}``.
    """
    size = resolve_input_size(model, input_size)
    params = list({id(p): p for p in model.parameters()}.values())
    first = params[0] if params else None
    dev = torch.device(device) if device is not None else (first.device if first is not None else torch.device("cpu"))
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    weight_storages = {p.untyped_storage().data_ptr() for p in params}
    x = torch.randn(size, device=dev, dtype=dtype)
    modes = {m: m.training for m in model.modules()}
    counter = _CountingMode(weight_storages)
    try:
        model.eval()
        with torch.no_grad():
            model(x)  # warm-up: operators build and cache their constant tensors
            with counter:
                model(x)
    finally:
        for m, training in modes.items():
            m.training = training
    result: dict[str, Any] = {
        "params": sum(p.numel() for p in params),
        "macs": int(counter.macs),
        "elementwise": int(counter.elementwise),
    }
    if breakdown:
        result["by_op"] = dict(counter.by_op)
    return result


def params_and_macs(model: nn.Module, input_size: int | Sequence[int] | None = None) -> tuple[int, int]:
    """``(params, MACs)`` of ``model`` on ``input_size`` (as :func:`complexity`; ``(1, C, H, W)``: per image).

    Counted on a CPU copy in eval mode, so the model itself (its device, its training flags, its BatchNorm
    statistics) is left as it was: what a training run records and what a study's cost model estimates with.
    """
    stats = complexity(copy.deepcopy(model).cpu().eval(), input_size)
    return int(stats["params"]), int(stats["macs"])


def format_count(n: float, digits: int = 2) -> str:
    """``40550000 -> '40.55M'``, ``1814073344 -> '1.81G'`` (decimal prefixes, as the papers' tables)."""
    return _format.format_count(n, digits, kilo="K")
