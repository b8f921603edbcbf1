"""Pooling over MS-SAR's coordinate sets, and Eq. 2 (x times each position's gate), in plain autograd ops whose
sizes follow the input's, so that exported graphs run at any size.

Every product and sum runs along x's own strides: over x as it is (N, C, H, W), or, when x is channels_last,
over its (N, H, W, C) view ("memory order"), so channels_last stays channels_last without a copy.

Regional, two formulations of the one partition of docs/spec.md, section 1, chosen by benchmark
(docs/performance.md):
* blocks, when H and W are known numbers and the finest cells of all scales tile the map evenly (R = lcm of the
  scales' band counts divides the side: 32x32 or 56x56 with scales 1, 2, 4): x is summed once into its R x R
  finest cells and multiplied once by the combined gate, O(1) work per element like SE's squeeze and excite.
  Eager, x is split into R_h row bands (one view shared by the pooling and the product, so that their
  gradients meet in one sum) and multiplied by R_h x W rows of gates; under ``torch.compile`` x is split into
  R_h x R_w blocks (a 6-D view) and multiplied by the R_h x R_w gates, which the compiler fuses best;
* membership, otherwise (sides not divisible, blocks narrower than 4 columns in eager, or symbolic sizes under
  export with dynamic shapes): every cell is a column of one 0/1 matrix M (H*W x B, the cells of all scales),
  the cell means are one product with M / cell sizes and the gate one product with M^T / L.
Sliding: one integral image serves every scale; a window sum is two look-ups per axis whatever the window size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._geometry import region_bands, window_bounds

__all__ = ["channels_last", "region_means", "regions_times", "row_blocks", "window_means"]


def _side_sizes(x: torch.Tensor) -> tuple[int, int]:
    """H, W: ints, or SymInts under torch.export; constants under torch.jit.trace (traced graphs keep one size)."""
    h, w = x.shape[2], x.shape[3]
    return (int(h), int(w)) if torch.jit.is_tracing() else (h, w)


def channels_last(x: torch.Tensor) -> bool:
    """True when x is laid out channels_last (and not also contiguous, as 1 x 1 maps and single channels are)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _tiles(h: int, w: int, scales: tuple[int, ...]) -> tuple[int, int] | None:
    """(R_h, R_w), the finest common bands, when they cut both sides evenly; None otherwise or when symbolic."""
    if not (isinstance(h, int) and isinstance(w, int)):
        return None  # export with dynamic shapes: the membership form, which holds for every size
    rh, rw = math.lcm(*(min(k, h) for k in scales)), math.lcm(*(min(k, w) for k in scales))
    # Eager, blocks narrower than 4 columns (8x8 maps at K = 4) make slow strided loops: one product is faster.
    wide = w // rw >= 4 or torch.compiler.is_compiling()
    return (rh, rw) if h % rh == 0 and w % rw == 0 and wide else None


def _membership(h: int, w: int, scales: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """H*W x B, 1 where position (row-major) lies in the cell; columns: scale by scale, cells row-major."""
    cells = [region_bands(h, k, like)[:, None, :, None] * region_bands(w, k, like)[None, :, None, :] for k in scales]
    return torch.cat([m.flatten(0, 1).flatten(1) for m in cells], 1)  # H, W, bh, bw -> H*W, bh*bw per scale


def _positions(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """x with its axes in memory order and the index of its H axis (W follows): (N, C, H, W) and 2, or, when x
    is channels_last, (N, H, W, C) and 1. Block sums and products over this view run along x's own strides."""
    return (x.permute(0, 2, 3, 1), 1) if channels_last(x) else (x, 2)


def row_blocks(x: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor | None:
    """Eager, the view of x (memory order) split into its R_h row bands where the block formulation applies;
    None otherwise and under ``torch.compile``. The caller hands it to both ``region_means`` and
    ``regions_times``."""
    h, w = _side_sizes(x)
    tiles = _tiles(h, w, scales)
    if tiles is None or torch.compiler.is_compiling():
        return None
    return _rows(x, tiles[0])[0]


def _rows(x: torch.Tensor, rh: int) -> tuple[torch.Tensor, int]:
    """x (memory order) split into R_h row bands, and the index of the R_h axis: (N, C, R_h, H/R_h, W) and 2, or
    (N, R_h, H/R_h, W, C) and 1."""
    v, d = _positions(x)
    return v.unflatten(d, (rh, v.shape[d] // rh)), d


def _six(x: torch.Tensor, rh: int, rw: int) -> tuple[torch.Tensor, int]:
    """x (memory order) split into R_h x R_w blocks, and the index of the R_h axis: (N, C, R_h, H/R_h, R_w, W/R_w)
    and 2, or (N, R_h, H/R_h, R_w, W/R_w, C) and 1."""
    v, d = _positions(x)
    return v.unflatten(d + 1, (rw, v.shape[d + 1] // rw)).unflatten(d, (rh, v.shape[d] // rh)), d


def region_means(x: torch.Tensor, scales: tuple[int, ...], blocks: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Per scale K, the mean of x (N, C, H, W) over each of its cells: N, C, bh, bw (bh = min(K, H)).
    ``blocks``: ``row_blocks(x, scales)``, when the caller has it."""
    h, w = _side_sizes(x)
    sides = [(torch.sym_min(k, h), torch.sym_min(k, w)) for k in scales]  # bands per axis (_geometry)
    tiles = _tiles(h, w, scales)
    if tiles is not None:
        rh, rw = tiles
        if torch.compiler.is_compiling():
            six, d = _six(x, rh, rw)
            fine = six.sum((d + 1, d + 3))  # R_h x R_w cell sums, memory order
        else:
            own, d = _rows(x, rh)
            blocks = own if blocks is None else blocks  # the caller's view of x, when it has one
            fine = blocks.sum(d + 1).unflatten(d + 1, (rw, w // rw)).sum(d + 2)
        fine = fine.permute(0, 3, 1, 2) if d == 1 else fine  # N, C, R_h, R_w
        return [fine.unflatten(2, (bh, rh // bh)).unflatten(4, (bw, rw // bw)).sum((3, 5)) / (h // bh * (w // bw))
                for bh, bw in sides]
    member = _membership(h, w, scales, x)
    pool = member / member.sum(0)  # H*W, B: x read once for every cell of every scale
    if channels_last(x):  # the product in memory order, N, H*W, C: no copy of x
        y = torch.matmul(pool.t(), x.permute(0, 2, 3, 1).flatten(1, 2)).transpose(1, 2)  # N, C, B
    else:
        y = torch.matmul(x.flatten(2), pool)
    return [t.unflatten(2, s) for t, s in zip(y.split([a * b for a, b in sides], 2), sides)]


def regions_times(x: torch.Tensor, zs: list[torch.Tensor], scales: tuple[int, ...],
                  blocks: torch.Tensor | None = None) -> torch.Tensor:
    """x times Eq. 2's gate: each position's cell gates zs (per scale N, C, bh, bw) averaged over the scales.
    N, C, H, W in x's memory format and dtype. ``blocks``: ``row_blocks(x, scales)``, when the caller has it."""
    h, w = _side_sizes(x)
    tiles = _tiles(h, w, scales)
    if tiles is not None:
        rh, rw = tiles
        fine = torch.stack([z.repeat_interleave(rh // z.shape[2], 2).repeat_interleave(rw // z.shape[3], 3) for z in zs])
        gates = fine.sum(0).to(x.dtype) / len(scales)  # N, C, R_h, R_w: each finest cell's gate
        if torch.compiler.is_compiling():
            six, d = _six(x, rh, rw)
            g = (gates.permute(0, 2, 3, 1) if d == 1 else gates).unsqueeze(d + 1).unsqueeze(d + 3)
            out = (six * g).flatten(d + 2, d + 3).flatten(d, d + 1)  # each block times its gate
        else:
            own, d = _rows(x, rh)
            blocks = own if blocks is None else blocks  # the caller's view of x, when it has one
            rows = gates.repeat_interleave(w // rw, 3)  # N, C, R_h, W: the gates of each row band
            out = (blocks * (rows.permute(0, 2, 3, 1) if d == 1 else rows).unsqueeze(d + 1)).flatten(d, d + 1)
        return out.permute(0, 3, 1, 2) if d == 1 else out
    z = torch.cat([t.flatten(2) for t in zs], 2).to(x.dtype)  # N, C, B
    spread = _membership(h, w, scales, x) / len(scales)  # H*W, B
    if channels_last(x):  # the gate in memory order, so that the product runs over matching strides
        return x * torch.matmul(spread, z.transpose(1, 2)).unflatten(1, (h, w)).permute(0, 3, 1, 2)
    return x * torch.matmul(z, spread.t()).unflatten(2, (h, w))  # x first: the product keeps x's memory format


def _box_sums(cum: torch.Tensor, dim: int, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Sums over the windows [lo, hi) along ``dim`` from inclusive cumulative sums: c[hi] - c[lo] after a
    leading 0 is put in front of c."""
    c = F.pad(cum, [0, 0] * (cum.dim() - 1 - dim) + [1, 0])
    return c.index_select(dim, hi) - c.index_select(dim, lo)


def window_means(x: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """Per scale K, the mean of x (N, C, H, W) over every position's sliding window: N, C, H, W in x's layout."""
    h, w = _side_sizes(x)
    v, d = _positions(x)  # sums along x's own strides
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32  # never sum in half precision
    sat = v.to(acc).cumsum(d).cumsum(d + 1)  # the integral image (inclusive)
    out = []
    for k in scales:
        (r0, r1), (c0, c1) = window_bounds(h, h * w, k, x.device), window_bounds(w, h * w, k, x.device)
        box = _box_sums(_box_sums(sat, d, r0, r1), d + 1, c0, c1)  # window sums (the two axes commute)
        count = ((r1 - r0)[:, None] * (c1 - c0)).to(acc)  # H, W
        mean = (box / (count[..., None] if d == 1 else count)).to(x.dtype)
        out.append(mean.permute(0, 3, 1, 2) if d == 1 else mean)
    return out
