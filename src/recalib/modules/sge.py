"""Spatial group-wise enhance (SGE).

Li, Hu, Yang, "Spatial Group-wise Enhance: Improving Semantic Feature Learning in Convolutional
Networks", 2019, arXiv:1905.09646, Section 3 (Eq. 1-5) and the official code.

Per sample and group g (C/G channels, m = H*W positions): v = spatial mean of the group,
c_i = <v, x_i>, c_hat = (c - mean(c)) / (std(c) + 1e-5) with the unbiased std of the official code,
a = gamma_g * c_hat + beta_g, x_i <- x_i * sigmoid(a_i). gamma, beta start at 0 and 1.
Deviation: for H*W = 1 the unbiased std is undefined; we use the population std there (output finite).
The grouping is a view of the channel dimension, so channels_last input stays channels_last and is
computed correctly (the official ``view(b * g, -1, h, w)`` is not valid on such input).
"""

from __future__ import annotations

import torch
from torch import nn

from . import _validate
from .registry import register_recalib

__all__ = ["SpatialGroupEnhance"]


@register_recalib("sge")
class SpatialGroupEnhance(nn.Module):
    """SGE: a per-group spatial gate from each position's similarity to the group's global descriptor.

    Args:
        channels: C; must be divisible by ``groups``.
        groups: G, the number of channel groups.

    Parameters: ``2 * G``. No MACs in conv/linear layers; about ``4 * C * H * W`` elementwise operations.
    """

    eps: float = 1e-5

    def __init__(self, channels: int, groups: int = 64) -> None:
        super().__init__()
        self.channels = _validate.positive_int("channels", channels, "SpatialGroupEnhance")
        self.groups = _validate.positive_int("groups", groups, "SpatialGroupEnhance")
        if channels % groups:
            divisors = [d for d in range(1, channels + 1) if channels % d == 0]
            raise ValueError(
                f"SpatialGroupEnhance: groups={groups} does not divide channels={channels}; "
                f"valid groups for {channels} channels: {divisors}"
            )
        self.weight = nn.Parameter(torch.zeros(1, groups, 1, 1))  # gamma, per group
        self.bias = nn.Parameter(torch.ones(1, groups, 1, 1))  # beta, per group

    def _group_gate(self, x: torch.Tensor) -> torch.Tensor:
        _validate.check_input(x, self.channels, "SpatialGroupEnhance")
        n, c, h, w = x.shape
        xg = x.view(n, self.groups, c // self.groups, h, w)  # N, G, C/G, H, W (a view in either memory format)
        v = xg.mean((3, 4), keepdim=True)  # N, G, C/G, 1, 1
        sim = (xg * v).sum(2).float()  # N, G, H, W
        mu = sim.mean((2, 3), keepdim=True)
        std = sim.std((2, 3), keepdim=True, correction=1 if int(h) * int(w) > 1 else 0)
        a = (sim - mu) / (std + self.eps) * self.weight + self.bias  # N, G, H, W
        return torch.sigmoid(a).to(x.dtype).unsqueeze(2)  # N, G, 1, H, W

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate Z in (0, 1), expanded to ``x.shape`` (constant over each group's channels)."""
        _validate.check_input(x, self.channels, "SpatialGroupEnhance")
        n, c, h, w = x.shape
        g = self._group_gate(x).expand(n, self.groups, c // self.groups, h, w)
        return g.reshape(n, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _validate.check_input(x, self.channels, "SpatialGroupEnhance")
        n, c, h, w = x.shape
        xg = x.view(n, self.groups, c // self.groups, h, w)
        # The product keeps xg's strides, so this view back is valid for NCHW and channels_last alike.
        return (xg * self._group_gate(x)).view(n, c, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"
