"""Squeeze-and-excitation (SE).

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018, arXiv:1709.01507, Section 3 (Eq. 2-4).

Z = sigmoid(W2 ReLU(W1 GAP(X) + b1) + b2), hidden width exactly ``channels // reduction`` (at least 1),
both layers with bias as in the released models. Deviations: none. GAP is ``mean`` (SPEC section 2); on the
eager autograd path squeeze and scale are one fused autograd pair (``_regions.recalibrate`` on the 1 x 1
grid) whose backward allocates one full-size tensor instead of four (``docs/performance.md``). Unlike timm's ``SEModule`` default we
never round the hidden width to a multiple of 8; ``SEModule(channels, rd_channels=channels // r)`` computes
the same function and its state dict (``fc1.*``, ``fc2.*``) loads into this module unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import _validate
from ._regions import cell_grid, recalibrate
from .registry import register_recalib

__all__ = ["SqueezeExcite"]


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

    def _excite(self, s: torch.Tensor) -> torch.Tensor:
        """Squeezed vectors N, 1, 1, C (the spatial means) -> the gate N, 1, 1, C."""
        n = s.shape[0]
        h = F.relu(F.linear(s.reshape(n, self.channels), self.fc1.weight.flatten(1), self.fc1.bias))  # N, C/r
        z = torch.sigmoid(F.linear(h, self.fc2.weight.flatten(1), self.fc2.bias))  # N, C
        return z.view(n, 1, 1, self.channels)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate Z in (0, 1), expanded to ``x.shape``."""
        _validate.check_input(x, self.channels, "SqueezeExcite")
        s = x.mean((2, 3))[:, None, None, :]  # N, 1, 1, C  (mean, not adaptive pooling: see SPEC section 2)
        return self._excite(s).to(x.dtype).permute(0, 3, 1, 2).expand_as(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _validate.check_input(x, self.channels, "SqueezeExcite")
        return recalibrate(x, self._excite, cell_grid(int(x.shape[2]), int(x.shape[3])))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}, hidden={self.hidden}"
