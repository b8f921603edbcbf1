"""Spatial group-wise enhance (SGE).

Li, Hu, Yang, "Spatial Group-wise Enhance: Improving Semantic Feature Learning in Convolutional
Networks", 2019, arXiv:1905.09646, Section 3 (Eq. 1-5) and the official code.

Per sample and group g (C/G channels, m = H*W positions): v = spatial mean of the group,
c_i = <v, x_i>, c_hat = (c - mean(c)) / (std(c) + 1e-5) with the unbiased std of the official code,
a = gamma_g * c_hat + beta_g, x_i <- x_i * sigmoid(a_i). gamma, beta start at 0 and 1.
Deviation: for H*W = 1 the unbiased std is undefined; we use the population std there (output finite).
The grouping is a view of the channel dimension, so channels_last input stays channels_last and is
computed correctly (the official ``view(b * g, -1, h, w)`` is not valid on such input).

Implementation: on the eager autograd path (see ``_regions.recalibrate``), the full-resolution work is a
fused autograd pair around the small per-group statistics: the similarities are one batched matrix product
(no N x C x H x W temporary), and the backward pass writes
``dx = g * z + v (x) ds + (x . ds) / m`` into the one buffer it allocates (for ``g * x``, reduced to ``dz``)
with one more batched product, instead of the seven full-size tensors autograd would allocate.
Under compile, tracing or export the same function is written with ordinary ops.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from . import _validate
from ._regions import FusedLink, eager_autograd, is_channels_last
from .registry import register_recalib

__all__ = ["SpatialGroupEnhance"]


def _group_onehot(c: int, groups: int, like: torch.Tensor) -> torch.Tensor:
    """C x G, 1 where channel c is in group g."""
    return torch.eye(groups, device=like.device, dtype=like.dtype).repeat_interleave(c // groups, 0)


def _view_groups(x: torch.Tensor, groups: int, cl: bool | None = None) -> torch.Tensor:
    """x (N, C, H, W) as N, G, C/G, H*W (NCHW order) or as N, H*W, G, C/G (channels_last order, ``cl``; default:
    x's own memory format); a view when x is stored in that order, a copy otherwise."""
    n, c, h, w = x.shape
    if is_channels_last(x) if cl is None else cl:
        return x.permute(0, 2, 3, 1).reshape(n, h * w, groups, c // groups)
    return x.reshape(n, groups, c // groups, h * w)


_BMM_MIN_CHANNELS = 8  # channels per group from which the similarities are batched matrix products


class _SGEPool(torch.autograd.Function):
    """x -> similarities s (N, G, m) of every position to its group's mean vector v (saved, N, G, C/G)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, groups: int, link: FusedLink) -> torch.Tensor:
        if torch.is_autocast_enabled(x.device.type):  # similarities in x's precision
            with torch.autocast(x.device.type, enabled=False):
                return _SGEPool.forward(ctx, x, groups, link)
        n, c, h, w = x.shape
        m, cg, cl = h * w, c // groups, is_channels_last(x)
        xv = _view_groups(x, groups)  # NCHW: N, G, C/G, m; channels_last: N, m, G, C/G
        v = xv.mean(1 if cl else 3)  # N, G, C/G
        if cg < _BMM_MIN_CHANNELS:  # few channels per group: a product and a short reduction
            s = (xv * v[:, None]).sum(3).transpose(1, 2) if cl else (xv * v[..., None]).sum(2)  # N, G, m
        elif cl:  # one GEMM per sample with the block-diagonal matrix of the group means (C x G)
            vb = v.reshape(n, c, 1) * _group_onehot(c, groups, x)  # N, C, G
            s = torch.bmm(x.permute(0, 2, 3, 1).reshape(n, m, c), vb).transpose(1, 2)  # N, G, m
        else:
            s = torch.bmm(v.reshape(n * groups, 1, cg), xv.reshape(n * groups, cg, m)).view(n, groups, m)  # N, G, m
        ctx.save_for_backward(x, v)
        ctx.groups, ctx.link = groups, link
        return s

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, ds: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        x, v = ctx.saved_tensors
        link, groups = ctx.link, ctx.groups
        n, c, h, w = x.shape
        m, cg, cl = h * w, c // groups, is_channels_last(x)
        ds = ds.to(x.dtype)  # N, G, m
        if link.g is not None:  # dx = g * z (the multiply's share), then the similarities' share is added
            g, buf, z = link.g, link.buf, link.z
            link.g = link.buf = link.z = None
            torch.mul(_view_groups(g, groups, cl), _zview(z, x), out=_view_groups(buf, groups))
        else:
            buf = torch.zeros_like(x)
        xv, bv = _view_groups(x, groups), _view_groups(buf, groups)
        if cg < _BMM_MIN_CHANNELS:
            ds4 = ds.transpose(1, 2)[..., None] if cl else ds[:, :, None, :]  # broadcast over C/G
            v4 = v[:, None] if cl else v[..., None]  # broadcast over m
            u = (xv * ds4).sum(1 if cl else 3)  # N, G, C/G: sum over positions of x * ds
            bv.addcmul_(v4, ds4)
            bv.add_(u[:, None] / m if cl else u[..., None] / m)
        elif cl:
            onehot = _group_onehot(c, groups, x)  # C, G
            xt = x.permute(0, 2, 3, 1).reshape(n, m, c)
            u = (torch.bmm(xt.transpose(1, 2), ds.transpose(1, 2)) * onehot).sum(2)  # N, C
            ones = torch.ones(n, m, 1, device=x.device, dtype=x.dtype)
            a = torch.cat([ds.transpose(1, 2), ones], 2)  # N, m, G+1
            b = torch.cat([v.reshape(n, 1, c) * onehot.t(), (u / m)[:, None, :]], 1)  # N, G+1, C
            buf.permute(0, 2, 3, 1).view(n, m, c).baddbmm_(a, b)  # += v (x) ds + u / m
        else:
            xg = xv.reshape(n * groups, cg, m)
            u = torch.bmm(xg, ds.reshape(n * groups, m, 1))  # N*G, C/G, 1
            a = torch.cat([v.reshape(n * groups, cg, 1), u / m], 2)  # N*G, C/G, 2
            ones = torch.ones(n * groups, 1, m, device=x.device, dtype=x.dtype)
            b = torch.cat([ds.reshape(n * groups, 1, m), ones], 1)  # N*G, 2, m
            buf.view(n * groups, cg, m).baddbmm_(a, b)
        return buf, None, None


def _zview(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The group gate z (N, G, m) broadcastable against ``_view_groups(like)``."""
    if is_channels_last(like):
        return z.transpose(1, 2).contiguous()[:, :, :, None]  # N, m, G, 1
    return z[:, :, None, :]  # N, G, 1, m


class _SGEMul(torch.autograd.Function):
    """(x, group gate z (N, G, m)) -> x * z broadcast over each group's channels."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, z: torch.Tensor, groups: int, link: FusedLink) -> torch.Tensor:
        ctx.save_for_backward(x, z)
        ctx.groups, ctx.link = groups, link
        out = torch.empty_like(x)
        torch.mul(_view_groups(x, groups), _zview(z, x), out=_view_groups(out, groups))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        x, z = ctx.saved_tensors
        groups, link = ctx.groups, ctx.link
        n, c, h, w = x.shape
        buf = torch.mul(x, g)  # N, C, H, W in x's memory format
        if not buf.is_contiguous(memory_format=torch.channels_last if is_channels_last(x) else torch.contiguous_format):
            buf = buf.contiguous(memory_format=torch.channels_last if is_channels_last(x) else torch.contiguous_format)
        bg = _view_groups(buf, groups)
        dz = bg.sum(3).transpose(1, 2) if is_channels_last(x) else bg.sum(2)  # N, G, m
        grad_x = None
        if ctx.needs_input_grad[0]:
            if link.fuse:
                link.g, link.buf, link.z = g, buf, z
            else:
                grad_x = buf
                torch.mul(_view_groups(g, groups, is_channels_last(x)), _zview(z, x), out=_view_groups(buf, groups))
        return grad_x, dz.to(z.dtype), None, None


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

    def _excite(self, sim: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Similarities N, G, m -> the group gate N, G, m (normalised over the m positions, scaled, sigmoid)."""
        sim = sim.to(torch.promote_types(sim.dtype, torch.float32))  # statistics in float32 at least
        std, mu = torch.std_mean(sim, 2, keepdim=True, correction=1 if sim.shape[2] > 1 else 0)  # N, G, 1
        scale = self.weight.view(1, -1, 1) / (std + self.eps)  # N, G, 1
        shift = self.bias.view(1, -1, 1) - mu * scale
        return torch.sigmoid(torch.addcmul(shift, sim, scale)).to(dtype)  # N, G, m: one full-size pass

    def _group_gate(self, x: torch.Tensor) -> torch.Tensor:
        _validate.check_input(x, self.channels, "SpatialGroupEnhance")
        n, c, h, w = x.shape
        xg = x.view(n, self.groups, c // self.groups, h, w)  # N, G, C/G, H, W (a view in either memory format)
        v = xg.mean((3, 4), keepdim=True)  # N, G, C/G, 1, 1
        sim = (xg * v).sum(2)  # N, G, H, W
        return self._excite(sim.reshape(n, self.groups, h * w), x.dtype).view(n, self.groups, 1, h, w)  # N, G, 1, H, W

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate Z in (0, 1), expanded to ``x.shape`` (constant over each group's channels)."""
        _validate.check_input(x, self.channels, "SpatialGroupEnhance")
        n, c, h, w = x.shape
        g = self._group_gate(x).expand(n, self.groups, c // self.groups, h, w)
        return g.reshape(n, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _validate.check_input(x, self.channels, "SpatialGroupEnhance")
        n, c, h, w = x.shape
        if eager_autograd() and (x.is_contiguous() or is_channels_last(x)):
            link = FusedLink(fuse=x.requires_grad)
            sim = _SGEPool.apply(x, self.groups, link)  # N, G, m
            return _SGEMul.apply(x, self._excite(sim, x.dtype), self.groups, link)
        xg = x.view(n, self.groups, c // self.groups, h, w)
        # The product keeps xg's strides, so this view back is valid for NCHW and channels_last alike.
        return (xg * self._group_gate(x)).view(n, c, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}"
