"""Pooling over MS-SAR's coordinate sets and broadcasting cell gates back to positions, in plain autograd ops.

Regional: a cell is a row band times a column band, so pooling is separable: one product of x with the
one-hot band matrices of all scales along one axis (x is read once, sum_K min(K, n) multiply-adds per element:
7 for scales 1, 2, 4), then a small product per scale along the other axis. Eq. 2 (each position takes the
mean over the scales of its cells' gates) is the same in reverse: the last product, back to full resolution,
sums over the scales in its inner dimension. The products follow x's memory format, so channels_last stays
channels_last without a copy. Sliding: one integral image serves every
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


def _bands(n: int, scales: tuple[int, ...], like: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """n x B one-hot band membership along an axis, the scales' bands side by side, and each scale's count."""
    counts = [region_bands(n, k)[-1] + 1 for k in scales]
    onehot = [F.one_hot(torch.tensor(region_bands(n, k), device=like.device), b) for k, b in zip(scales, counts)]
    return torch.cat(onehot, 1).to(like.dtype), counts


def region_means(x: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """Per scale K, the mean of x (N, C, H, W) over each of its cells: N, C, bh, bw (bh = min(K, H))."""
    n, c = x.shape[:2]
    h, w = int(x.shape[2]), int(x.shape[3])  # geometry is static: plain ints, also when traced
    (mh, bh), (mw, bw) = _bands(h, scales, x), _bands(w, scales, x)
    ah, aw = (mh / mh.sum(0)).split(bh, 1), (mw / mw.sum(0)).split(bw, 1)  # per scale: H x bh, W x bw averaging
    if is_channels_last(x):  # row bands first (one product over x viewed N, H, W*C), then column bands
        rows = torch.matmul(torch.cat(ah, 1).t(), x.permute(0, 2, 3, 1).reshape(n, h, w * c))  # N, sum bh, W*C
        parts = rows.view(n, -1, w, c).split(bh, 1)  # per scale: N, bh, W, C
        return [torch.matmul(a.t(), r).permute(0, 3, 1, 2) for a, r in zip(aw, parts)]  # N, C, bh, bw
    cols = torch.matmul(x, torch.cat(aw, 1))  # N, C, H, sum bw: column bands first, then row bands
    return [torch.matmul(a.t(), r) for a, r in zip(ah, cols.split(bw, 3))]  # N, C, bh, bw


def regions_to_pixels(zs: list[torch.Tensor], x: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor:
    """Eq. 2 on cell gates zs (per scale N, C, bh, bw): each position's mean over the scales of its cells' gates,
    N, C, H, W in x's memory format and dtype. Spread along one axis per scale, then along the other for all
    scales at once (the sum over scales is that product's inner dimension)."""
    n, c = x.shape[:2]
    h, w = int(x.shape[2]), int(x.shape[3])
    (eh, bh), (ew, bw) = _bands(h, scales, x), _bands(w, scales, x)
    eh = eh / len(scales)
    zs = [z.to(x.dtype) for z in zs]
    if is_channels_last(x):
        rows = [torch.matmul(e, z.permute(0, 2, 3, 1)) for e, z in zip(ew.split(bw, 1), zs)]  # N, bh, W, C each
        full = torch.matmul(eh, torch.cat(rows, 1).view(n, -1, w * c))  # N, H, W*C
        return full.view(n, h, w, c).permute(0, 3, 1, 2)  # N, C, H, W (channels_last)
    cols = [torch.matmul(e, z) for e, z in zip(eh.split(bh, 1), zs)]  # N, C, H, bw each
    return torch.matmul(torch.cat(cols, 3), ew.t())  # N, C, H, W


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
