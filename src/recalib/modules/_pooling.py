"""Pooling over MS-SAR's coordinate sets, and Eq. 2 (x times each position's gate), in plain autograd ops whose
sizes follow the input's, so that exported graphs run at any size.

Regional, two formulations of the one partition of docs/spec.md, section 1:
* blocks, when H and W are known numbers and the finest cells of all scales tile the map evenly (R = lcm of the
  scales' band counts divides the side: 32x32 or 56x56 with scales 1, 2, 4): x is summed once into its R x R
  finest cells and multiplied once by the R x W rows of the combined gate, O(1) work per element like SE's
  squeeze and excite, in reductions and broadcasts that ``torch.compile`` fuses;
* membership, otherwise (sides not divisible, or symbolic sizes under export with dynamic shapes): every cell is
  a column of one 0/1 matrix M (H*W x B, the cells of all scales), the cell means are one product with
  M / cell sizes and the gate one product with M^T / L.
The product keeps x's memory format. Sliding: one integral image serves every scale; a window sum is two look-ups
per axis whatever the window size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._geometry import region_bands, window_bounds

__all__ = ["region_means", "regions_times", "window_means"]


def _side_sizes(x: torch.Tensor) -> tuple[int, int]:
    """H, W: ints, or SymInts under torch.export; constants under torch.jit.trace (traced graphs keep one size)."""
    h, w = x.shape[2], x.shape[3]
    return (int(h), int(w)) if torch.jit.is_tracing() else (h, w)


def _tiles(h: int, w: int, scales: tuple[int, ...]) -> tuple[int, int] | None:
    """(R_h, R_w), the finest common bands, when they cut both sides evenly; None otherwise or when symbolic."""
    if not (isinstance(h, int) and isinstance(w, int)):
        return None  # export with dynamic shapes: the membership form, which holds for every size
    rh, rw = math.lcm(*(min(k, h) for k in scales)), math.lcm(*(min(k, w) for k in scales))
    # Blocks narrower than 4 columns (8x8 maps at K = 4) make slow strided loops; one matrix product is faster there.
    return (rh, rw) if h % rh == 0 and w % rw == 0 and w // rw >= 4 else None


def _membership(h: int, w: int, scales: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """H*W x B, 1 where position (row-major) lies in the cell; columns: scale by scale, cells row-major."""
    cells = [region_bands(h, k, like)[:, None, :, None] * region_bands(w, k, like)[None, :, None, :] for k in scales]
    return torch.cat([m.flatten(0, 1).flatten(1) for m in cells], 1)  # H, W, bh, bw -> H*W, bh*bw per scale


def region_means(x: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """Per scale K, the mean of x (N, C, H, W) over each of its cells: N, C, bh, bw (bh = min(K, H))."""
    h, w = _side_sizes(x)
    sides = [(torch.sym_min(k, h), torch.sym_min(k, w)) for k in scales]  # bands per axis (_geometry)
    tiles = _tiles(h, w, scales)
    if tiles is not None:
        rh, rw = tiles
        fine = x.unflatten(2, (rh, h // rh)).sum(3).unflatten(3, (rw, w // rw)).sum(4)  # N, C, R_h, R_w: sums
        return [fine.unflatten(2, (bh, rh // bh)).unflatten(4, (bw, rw // bw)).sum((3, 5)) / (h // bh * (w // bw))
                for bh, bw in sides]
    member = _membership(h, w, scales, x)
    y = torch.matmul(x.flatten(2), member / member.sum(0))  # N, C, B: x read once for every cell of every scale
    return [t.unflatten(2, s) for t, s in zip(y.split([a * b for a, b in sides], 2), sides)]


def regions_times(x: torch.Tensor, zs: list[torch.Tensor], scales: tuple[int, ...]) -> torch.Tensor:
    """x times Eq. 2's gate: each position's cell gates zs (per scale N, C, bh, bw) averaged over the scales.
    N, C, H, W in x's memory format and dtype."""
    h, w = _side_sizes(x)
    tiles = _tiles(h, w, scales)
    if tiles is not None:
        rh, rw = tiles
        fine = torch.stack([z.repeat_interleave(rh // z.shape[2], 2).repeat_interleave(rw // z.shape[3], 3) for z in zs])
        rows = fine.sum(0).to(x.dtype).repeat_interleave(w // rw, 3) / len(scales)  # N, C, R_h, W
        return (x.unflatten(2, (rh, h // rh)) * rows.unsqueeze(3)).flatten(2, 3)  # each row band times its gates
    z = torch.cat([t.flatten(2) for t in zs], 2).to(x.dtype)  # N, C, B
    gate = torch.matmul(z, _membership(h, w, scales, x).t() / len(scales))  # N, C, H*W
    return x * gate.unflatten(2, (h, w))  # x first: the product keeps x's memory format


def _box_sums(cum: torch.Tensor, dim: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Sums over the windows [lo, hi) along ``dim`` (2 or 3) from inclusive cumulative sums: c[hi] - c[lo]
    after a leading 0 is put in front of c."""
    c = F.pad(cum, (0, 0, 1, 0) if dim == 2 else (1, 0))
    return c.index_select(dim, hi) - c.index_select(dim, lo)


def window_means(x: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """Per scale K, the mean of x (N, C, H, W) over every position's sliding window: N, C, H, W."""
    h, w = _side_sizes(x)
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32  # never sum in half precision
    sat = x.to(acc).cumsum(2).cumsum(3)  # N, C, H, W: the integral image (inclusive)
    out = []
    for k in scales:
        (r0, r1), (c0, c1) = window_bounds(h, h * w, k, x.device), window_bounds(w, h * w, k, x.device)
        box = _box_sums(_box_sums(sat, 2, r0, r1), 3, c0, c1)  # N, C, H, W: window sums (the two axes commute)
        out.append((box / ((r1 - r0)[:, None] * (c1 - c0)).to(acc)).to(x.dtype))
    return out
