"""The identity operator (``"none"``): the plain backbone, behind the same interface as the others."""

from __future__ import annotations

import torch
from torch import nn

from . import _validate
from ._validate import check_input
from .registry import register_recalib

__all__ = ["Identity"]

torch.fx.wrap("check_input")  # shape-dependent Python stays out of torch.fx graphs


@register_recalib("none")
class Identity(nn.Module):
    """No recalibration: ``forward(x) = x``, ``gate(x) = 1``. Has no parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = _validate.positive_int("channels", channels, "Identity")

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """A gate of ones with ``x``'s shape, dtype and memory format."""
        check_input(x, self.channels, "Identity")
        return torch.ones_like(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, "Identity")
        return x

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
