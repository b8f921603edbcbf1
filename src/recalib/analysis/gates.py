"""Inspecting gates: per-scale MS-SAR gates and capturing every operator's input inside a network."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..modules import MSSAR, get_recalib_class, list_recalibs

__all__ = ["per_scale_gates", "is_recalib", "capture_operator_inputs"]


def is_recalib(module: nn.Module) -> bool:
    """True for instances of registered operators (not the identity)."""
    classes = tuple(get_recalib_class(n) for n in list_recalibs() if n != "none")
    return isinstance(module, classes)


@torch.no_grad()
def per_scale_gates(op: MSSAR, x: torch.Tensor, context: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The gate z^(K) of each scale of ``op`` (each N x C x H x W); their mean is ``op.gate(x, context)``.

    Each scale's gate is computed by a single-scale MSSAR holding that scale's weights, so this uses the
    operator's own code path and BN mode.
    """
    gates = []
    reduction = op.reduction * len(op.scales)  # one scale with reduction L*r keeps D' = C // (L * r)
    for i, k in enumerate(op.scales):
        single = MSSAR(op.channels, scales=(k,), strategy=op.strategy, reduction=reduction,
                       context_channels=op.context_channels)
        single.fc1[0].load_state_dict(op.fc1[i].state_dict())
        single.bn[0].load_state_dict(op.bn[i].state_dict())
        single.fc2[0].load_state_dict(op.fc2[i].state_dict())
        single.to(device=x.device, dtype=next(op.parameters()).dtype).train(op.training)
        gates.append(single.gate(x, context))
    return gates


@contextmanager
def capture_operator_inputs(model: nn.Module) -> Iterator[list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]]]:
    """Record ``(name, operator, inputs)`` for every recalibration operator called during a forward pass."""
    records: list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]] = []
    handles = []
    for name, module in model.named_modules():
        if is_recalib(module):
            def hook(mod: nn.Module, args: tuple, kwargs: dict, _name: str = name) -> None:
                inputs = tuple(a for a in args if isinstance(a, torch.Tensor))
                if kwargs.get("context") is not None:
                    inputs = inputs + (kwargs["context"],)
                records.append((_name, mod, tuple(t.detach() for t in inputs)))

            handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield records
    finally:
        for h in handles:
            h.remove()
