"""Squeeze-and-excitation (SE).

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507, Section 3 (Eq. 2-4);
docs/spec.md, section 2.

Z = sigmoid(W2 ReLU(W1 GAP(X) + b1) + b2), hidden width exactly ``channels // reduction`` (at least 1),
both layers with bias as in the released models. Deviations: none. GAP is ``mean`` (docs/spec.md, section 2).
Unlike timm's ``SEModule`` default we never round the hidden width to a multiple of 8;
``SEModule(channels, rd_channels=channels // r)`` computes the same function and its state dict
(``fc1.*``, ``fc2.*``) loads into this module unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import _validate
from ._validate import check_input
from .registry import register_recalib

__all__ = ["SqueezeExcite"]

torch.fx.wrap("check_input")


@register_recalib("se")
class SqueezeExcite(nn.Module):
    """SE block: channel gate from the global average of the feature map.

    Args:
        channels: C, the number of input (= output) channels.
        reduction: r; the hidden width is ``max(1, channels // reduction)``.

    Parameters: ``2 * C * (C // r) + C // r + C``. MACs per sample: ``2 * C * (C // r)``.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channels = _validate.positive_int("channels", channels, "SqueezeExcite")
        self.reduction = _validate.positive_int("reduction", reduction, "SqueezeExcite")
        self.hidden = max(1, channels // reduction)
        # 1x1 convolutions (not Linear) so the state dict matches timm's SEModule and the released models.
        self.fc1 = nn.Conv2d(channels, self.hidden, 1, bias=True)
        self.fc2 = nn.Conv2d(self.hidden, channels, 1, bias=True)

    def _gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate N, C, 1, 1 (Eq. 2-3)."""
        check_input(x, self.channels, "SqueezeExcite")
        s = x.mean((2, 3), keepdim=True)  # N, C, 1, 1: the squeeze (mean, not adaptive pooling)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(s))))  # N, C, 1, 1: the excitation

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate Z in (0, 1), expanded to ``x.shape``."""
        return self._gate(x).to(x.dtype).expand_as(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._gate(x).to(x.dtype)  # Eq. 4, broadcast over H, W

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}, hidden={self.hidden}"
