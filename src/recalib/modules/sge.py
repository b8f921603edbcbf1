"""Spatial group-wise enhance (SGE).

Li, Hu, Yang, "Spatial Group-wise Enhance: Improving Semantic Feature Learning in Convolutional
Networks", 2019, arXiv:1905.09646, Section 3 and the official code; docs/spec.md, section 4.

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
from ._validate import check_input
from .registry import register_recalib

__all__ = ["SpatialGroupEnhance", "sge_groups"]

_EPS = 1e-5
MIN_CHANNELS_PER_GROUP = 4  #: SGE's premise: each group holds several sub-features
MAX_GROUPS = 64  #: the official code's choice on ResNet-50 (4 to 32 channels per group)


def sge_groups(channels: int) -> int:
    """The default number of groups for ``channels`` channels: the largest divisor of ``channels`` that is at
    most 64 and leaves every group at least 4 channels (1 when ``channels`` < 8 has no such divisor but 1)::

        >>> [sge_groups(c) for c in (12, 16, 32, 64, 256, 2048)]
        [3, 4, 8, 16, 64, 64]
    """
    bound = max(1, min(MAX_GROUPS, channels // MIN_CHANNELS_PER_GROUP))
    return max(d for d in range(1, bound + 1) if channels % d == 0)


def _normalise(c: torch.Tensor) -> torch.Tensor:
    """(c - mean) / (std + eps) over the positions (dims 2, 3) of N, G, H, W, in float32 at least."""
    c = c.to(torch.promote_types(c.dtype, torch.float32))
    std, mean = torch.std_mean(c, (2, 3), keepdim=True, correction=1 if c.shape[2] * c.shape[3] > 1 else 0)
    return (c - mean) / (std + _EPS)


torch.fx.wrap("check_input")  # shape-dependent Python stays out of torch.fx graphs
torch.fx.wrap("_normalise")


@register_recalib("sge")
class SpatialGroupEnhance(nn.Module):
    """SGE: a per-group spatial gate from each position's similarity to the group's global descriptor.

    Args:
        channels: C; must be divisible by ``groups``.
        groups: G, the number of channel groups; ``None`` (the default) applies :func:`sge_groups`, which keeps
            at least 4 channels in every group and uses 64 groups where the channels allow (the official code's
            choice on ResNet-50). The same rule holds wherever the operator is built (``build_recalib``, the zoo,
            the timm adapter), and ``self.groups`` is the resolved number.

    Parameters: ``2 * G``. No MACs in conv/linear layers; about ``4 * C * H * W`` elementwise operations.
    """

    def __init__(self, channels: int, groups: int | None = None) -> None:
        super().__init__()
        self.channels = _validate.positive_int("channels", channels, "SpatialGroupEnhance")
        if groups is None:
            groups = sge_groups(self.channels)
        self.groups = _validate.positive_int("groups", groups, "SpatialGroupEnhance")
        if channels % groups:
            divisors = [d for d in range(1, channels + 1) if channels % d == 0]
            raise ValueError(
                f"SpatialGroupEnhance: groups={groups} does not divide channels={channels}; "
                f"valid groups for {channels} channels: {divisors}"
            )
        self.weight = nn.Parameter(torch.zeros(1, groups, 1, 1))  # gamma, per group
        self.bias = nn.Parameter(torch.ones(1, groups, 1, 1))  # beta, per group

    def _group_gate(self, xg: torch.Tensor) -> torch.Tensor:
        """Grouped x (N, G, C/G, H, W) -> the gate N, G, 1, H, W, shared by a group's channels."""
        v = xg.mean((3, 4), keepdim=True)  # N, G, C/G, 1, 1: the group's global descriptor
        c = (xg * v).sum(2)  # N, G, H, W: similarity of every position to it
        a = self.weight * _normalise(c) + self.bias  # N, G, H, W: normalised, scaled and shifted per group
        return torch.sigmoid(a).to(xg.dtype).unsqueeze(2)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate Z in (0, 1), expanded to ``x.shape`` (constant over each group's channels)."""
        check_input(x, self.channels, "SpatialGroupEnhance")
        xg = x.unflatten(1, (self.groups, -1))  # N, G, C/G, H, W (a view in either memory format)
        return self._group_gate(xg).expand_as(xg).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, "SpatialGroupEnhance")
        xg = x.unflatten(1, (self.groups, -1))  # N, G, C/G, H, W
        return (xg * self._group_gate(xg)).flatten(1, 2)  # keeps xg's strides: NCHW or channels_last alike

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"
