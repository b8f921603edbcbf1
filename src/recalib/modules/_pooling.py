"""Pooling over MS-SAR's coordinate sets and broadcasting cell gates back to positions, in plain autograd ops.

Regional: every scale's cells are columns of one 0/1 membership matrix M (H*W x B, B = the cells of all scales),
so the cell means of every scale are one matrix product with M / cell sizes (x is read once), and Eq. 2 (each
position takes the mean over scales of its cells' gates) is one product with M^T / L. Both products follow x's
memory format, so channels_last stays channels_last without a copy. Sliding: one integral image serves every
scale; a window sum is four look-ups whatever the window size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._geometry import region_bands, window_sizes

__all__ = ["is_channels_last", "region_means", "regions_to_pixels", "window_means"]


def is_channels_last(x: torch.Tensor) -> bool:
    """True when x is laid out channels_last (and not also plain contiguous, as 1x1 maps are)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _membership(h: int, w: int, scales: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """H*W x B, 1 where position (row-major) lies in the cell; columns: scale by scale, cells row-major."""
    blocks = []
    for k, (bh, bw) in zip(scales, _cell_shapes(h, w, scales)):
        rows = F.one_hot(torch.tensor(region_bands(h, k), device=like.device), bh)  # H, bh
        cols = F.one_hot(torch.tensor(region_bands(w, k), device=like.device), bw)  # W, bw
        blocks.append((rows[:, None, :, None] * cols[None, :, None, :]).reshape(h * w, -1))  # H*W, bh*bw
    return torch.cat(blocks, 1).to(like.dtype)


def _cell_shapes(h: int, w: int, scales: tuple[int, ...]) -> list[tuple[int, int]]:
    return [(region_bands(h, k)[-1] + 1, region_bands(w, k)[-1] + 1) for k in scales]


def region_means(x: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """Per scale K, the mean of x (N, C, H, W) over each of its cells: N, C, bh, bw (bh = min(K, H))."""
    n, c = x.shape[:2]
    h, w = int(x.shape[2]), int(x.shape[3])  # geometry is static: plain ints, also when traced
    member = _membership(h, w, scales, x)
    pool = member / member.sum(0)  # H*W, B: averaging weights of each cell
    if is_channels_last(x):
        y = torch.matmul(pool.t(), x.permute(0, 2, 3, 1).reshape(n, h * w, c)).transpose(1, 2)  # N, C, B
    else:
        y = torch.matmul(x.reshape(n, c, h * w), pool)  # N, C, B
    shapes = _cell_shapes(h, w, scales)
    return [t.unflatten(2, s) for t, s in zip(y.split([a * b for a, b in shapes], 2), shapes)]


def regions_to_pixels(zs: list[torch.Tensor], x: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor:
    """Eq. 2 on cell gates zs (per scale N, C, bh, bw): each position's mean over the scales of its cells' gates,
    N, C, H, W in x's memory format and dtype."""
    n, c = x.shape[:2]
    h, w = int(x.shape[2]), int(x.shape[3])
    spread = _membership(h, w, scales, x) / len(scales)  # H*W, B
    z = torch.cat([t.flatten(2) for t in zs], 2).to(x.dtype)  # N, C, B
    if is_channels_last(x):
        return torch.matmul(spread, z.transpose(1, 2)).view(n, h, w, c).permute(0, 3, 1, 2)  # N, C, H, W
    return torch.matmul(z, spread.t()).view(n, c, h, w)


def _box_sums(cum: torch.Tensor, dim: int, t: int) -> torch.Tensor:
    """Sums over the clipped windows [i - t, i + t] along ``dim`` (2 or 3), from inclusive cumulative sums c:
    c[min(n - 1, i + t)] - c[i - t - 1] (0 when i - t - 1 < 0), a slice and a pad whatever t is."""
    n = int(cum.shape[dim])
    t = min(t, n - 1)
    hi = cum.narrow(dim, t, n - t)
    if t > 0:  # the last value repeated
        last = cum.narrow(dim, n - 1, 1)
        hi = torch.cat([hi, last.expand(*(t if d == dim else -1 for d in range(cum.dim())))], dim)
    lo = F.pad(cum.narrow(dim, 0, n - t - 1), (0, 0, t + 1, 0) if dim == 2 else (t + 1, 0))
    return hi - lo


def window_means(x: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """Per scale K, the mean of x (N, C, H, W) over every position's sliding window: N, C, H, W."""
    h, w = int(x.shape[2]), int(x.shape[3])
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32  # never sum in half precision
    sat = x.to(acc).cumsum(2).cumsum(3)  # N, C, H, W: the integral image (inclusive)
    out = []
    for k in scales:
        t = math.isqrt(h * w) // k  # floor(sqrt(HW) / K), exactly
        box = _box_sums(_box_sums(sat, 2, t), 3, t)  # N, C, H, W: window sums (the two axes commute)
        rows = torch.tensor(window_sizes(h, t), device=x.device, dtype=acc)  # H: window heights
        cols = torch.tensor(window_sizes(w, t), device=x.device, dtype=acc)  # W: window widths
        out.append((box / (rows[:, None] * cols)).to(x.dtype))
    return out
