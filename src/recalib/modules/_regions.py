"""Geometry of MS-SAR's coordinate sets, and the full-resolution kernels that pool over and gate cells.

Geometry (plain Python, cached per (H, W, scales); no operator loops over positions or cells at run time):

* Regional rule (SPEC section 1): along an axis of length n, position i is in band ``i * K // n`` of scale
  K. Bands are contiguous; when K > n some are empty and never used, so only the ``min(K, n)`` non-empty
  bands exist as cells. The *refinement* of several scales is the partition of an axis into the distinct
  tuples ``(band_K1(i), band_K2(i), ...)``: every band of every scale is a union of refinement bands, so an
  operator pools once at the refinement and derives every scale exactly from it. A :class:`CellGrid` is
  the product of the two axes' refinements; SE's global pooling is the 1 x 1 grid.
* Sliding windows: :func:`sliding_bounds`.

Kernels (the only code that touches every position; everything else runs on one vector per cell):

* :func:`cell_means` pools x at the grid (a strided average or two thin matrix products in channels_last,
  one matrix product in NCHW), :func:`cell_mul` multiplies x by a per-cell gate broadcast through views
  (a gate expanded along W only, one strided product per run of equal-height bands), never a gate
  materialised at full resolution.
* :func:`recalibrate` is ``x * expand(gate_fn(cell_means(src)))`` with ``gate_fn`` any differentiable
  function (the operator's FCs). On the eager autograd path it pairs two autograd functions, so that the
  backward pass does the full-resolution work of an SE block and no more: one product ``g * x`` reduced per
  cell, and one fused ``g * gate + d(mean)/dx`` written into that product's buffer (two full-size
  allocations per forward+backward, against five for the same ops left to autograd). Under
  ``torch.compile``, tracing or ONNX export it is the same function written with ordinary differentiable
  ops, which the compiler fuses itself. Second-order gradients through the eager fast path are not
  supported (``once_differentiable``: a loud error, never a wrong result); set the operator class's
  ``_fast_paths = False`` for them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = [
    "AxisPartition",
    "CellGrid",
    "FusedLink",
    "axis_partition",
    "cell_grid",
    "cell_means",
    "cell_mul",
    "eager_autograd",
    "gather_full",
    "grid_counts",
    "is_channels_last",
    "scale_blocks",
    "scale_matrices",
    "recalibrate",
    "sliding_bounds",
    "sliding_half_width",
]


@dataclass(frozen=True)
class AxisPartition:
    """The regional partition of one axis (length ``n``) for a set of scales.

    Attributes:
        n: axis length.
        ref_of_pos: refinement band of each position, length n.
        ref_sizes: number of positions in each refinement band.
        uniform: all refinement bands have the same size (then pooling is a plain strided average).
        scale_of_ref: per scale, the compact (non-empty) band index of each refinement band.
        scale_sizes: per scale, the number of positions in each of its non-empty bands.
        runs: maximal runs of consecutive refinement bands of equal size, as
            ``(first position, first band, number of bands, band size)``; one run when ``uniform``.
    """

    n: int
    ref_of_pos: tuple[int, ...]
    ref_sizes: tuple[int, ...]
    uniform: bool
    scale_of_ref: tuple[tuple[int, ...], ...]
    scale_sizes: tuple[tuple[int, ...], ...]
    runs: tuple[tuple[int, int, int, int], ...]

    @property
    def num_ref(self) -> int:
        return len(self.ref_sizes)

    def nest_factor(self, scale_index: int) -> int:
        """f > 0 if every band of the scale is exactly f consecutive refinement bands (a view), else 0."""
        bands = len(self.scale_sizes[scale_index])
        if self.num_ref % bands:
            return 0
        f = self.num_ref // bands
        return f if self.scale_of_ref[scale_index] == tuple(r // f for r in range(self.num_ref)) else 0

    def mean_weights(self, scale_index: int) -> list[list[float]]:
        """Matrix (bands of the scale x refinement bands) turning refinement means into the scale's means."""
        sizes = self.scale_sizes[scale_index]
        rows = [[0.0] * self.num_ref for _ in sizes]
        for r, b in enumerate(self.scale_of_ref[scale_index]):
            rows[b][r] = self.ref_sizes[r] / sizes[b]
        return rows

    def ref_mean_weights(self) -> list[list[float]]:
        """Matrix (refinement bands x positions) averaging positions into refinement bands."""
        rows = [[0.0] * self.n for _ in self.ref_sizes]
        for i, r in enumerate(self.ref_of_pos):
            rows[r][i] = 1.0 / self.ref_sizes[r]
        return rows


_PARTITIONS: dict[tuple[int, tuple[int, ...]], AxisPartition] = {}


def axis_partition(n: int, scales: tuple[int, ...]) -> AxisPartition:
    """The regional partition of an axis of length ``n`` for ``scales`` (see the module docstring)."""
    key = (n, scales)
    if key not in _PARTITIONS:  # a plain dict, not lru_cache: torch.compile traces through it silently
        _PARTITIONS[key] = _axis_partition(n, scales)
    return _PARTITIONS[key]


def _axis_partition(n: int, scales: tuple[int, ...]) -> AxisPartition:
    if n <= 0:
        raise ValueError(f"MSSAR: feature maps must have positive size, got an axis of length {n}")
    bands = [tuple(i * k // n for i in range(n)) for k in scales]  # per scale, band id of each position
    keys = list(zip(*bands))  # per position, its tuple of band ids (non-decreasing along the axis)
    ref_ids: dict[tuple[int, ...], int] = {}
    ref_of_pos = tuple(ref_ids.setdefault(key, len(ref_ids)) for key in keys)
    ref_sizes = [0] * len(ref_ids)
    for r in ref_of_pos:
        ref_sizes[r] += 1
    scale_of_ref, scale_sizes = [], []
    for s in range(len(scales)):
        compact = {b: j for j, b in enumerate(sorted(set(bands[s])))}  # drop empty bands
        first_pos = {r: i for i, r in reversed(list(enumerate(ref_of_pos)))}
        scale_of_ref.append(tuple(compact[bands[s][first_pos[r]]] for r in range(len(ref_sizes))))
        sizes = [0] * len(compact)
        for i in range(n):
            sizes[compact[bands[s][i]]] += 1
        scale_sizes.append(tuple(sizes))
    runs: list[list[int]] = []  # [first position, first band, number of bands, band size]
    pos = 0
    for r, size in enumerate(ref_sizes):
        if runs and runs[-1][3] == size:
            runs[-1][2] += 1
        else:
            runs.append([pos, r, 1, size])
        pos += size
    return AxisPartition(
        n=n,
        ref_of_pos=ref_of_pos,
        ref_sizes=tuple(ref_sizes),
        uniform=len(set(ref_sizes)) == 1,
        scale_of_ref=tuple(scale_of_ref),
        scale_sizes=tuple(scale_sizes),
        runs=tuple((a, b, c, d) for a, b, c, d in runs),
    )


@dataclass(frozen=True)
class CellGrid:
    """The refinement cells of an H x W map: rows ``ph`` times columns ``pw`` (1 x 1 for a global pool)."""

    ph: AxisPartition
    pw: AxisPartition

    @property
    def shape(self) -> tuple[int, int]:
        return self.ph.num_ref, self.pw.num_ref

    @property
    def uniform(self) -> bool:
        return self.ph.uniform and self.pw.uniform


_GRIDS: dict[tuple[int, int, tuple[int, ...]], CellGrid] = {}


def cell_grid(h: int, w: int, scales: tuple[int, ...] = (1,)) -> CellGrid:
    """The refinement grid of an h x w map for ``scales`` (``(1,)``: one global cell, as SE pools)."""
    key = (h, w, scales)
    if key not in _GRIDS:
        _GRIDS[key] = CellGrid(axis_partition(h, scales), axis_partition(w, scales))
    return _GRIDS[key]


def sliding_half_width(h: int, w: int, k: int) -> int:
    """t = floor(sqrt(h*w) / k), the sliding window's half-width at scale k (exact: isqrt(hw) // k)."""
    return math.isqrt(h * w) // k


def sliding_bounds(n: int, h: int, w: int, k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window bounds along an axis of length ``n`` for the sliding strategy on an h x w map at scale k.

    T = sqrt(h*w) / k and position i's window is {i' : |i - i'| <= T} clipped to the axis, i.e. the
    half-open range [lo_i, hi_i) with lo_i = max(0, i - t), hi_i = min(n, i + t + 1), t = floor(T).
    floor(sqrt(hw) / k) equals isqrt(hw) // k exactly, with no floating-point rounding.
    """
    t = sliding_half_width(h, w, k)
    lo = tuple(max(0, i - t) for i in range(n))
    hi = tuple(min(n, i + t + 1) for i in range(n))
    return lo, hi


# ------------------------------------------------------------------------------ constant tensors ---
_CONSTS: dict[tuple[Any, ...], torch.Tensor] = {}


def _const(grid: CellGrid, name: str, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A small constant tensor of the grid on ``like``'s device (cached in eager mode, rebuilt when traced)."""
    dtype = like.dtype if dtype is None else dtype
    key = (id(grid), name, like.device, dtype)
    if not torch.compiler.is_compiling() and not torch.jit.is_tracing() and key in _CONSTS:
        return _CONSTS[key]
    ph, pw = grid.ph, grid.pw
    if name == "idx_h":
        value = torch.tensor(ph.ref_of_pos, device=like.device)
    elif name == "idx_w":
        value = torch.tensor(pw.ref_of_pos, device=like.device)
    elif name == "spread":  # rh*rw x H*W, 1 where the position is in the cell
        value = (_const(grid, "sum_t", like, torch.float64).t() > 0).to(dtype).contiguous()
    elif name == "expand_w":  # rw x W, 1 where position w is in band r
        value = torch.nn.functional.one_hot(torch.tensor(pw.ref_of_pos), pw.num_ref).t().to(device=like.device, dtype=dtype)
    elif name in ("ah", "aw"):  # refinement bands x positions, averaging weights
        part = ph if name == "ah" else pw
        value = torch.tensor(part.ref_mean_weights(), device=like.device, dtype=dtype)
    elif name in ("pool_t", "sum_t"):  # (H*W) x (rh*rw): cell means / cell sums of a flattened map
        ah = torch.tensor(ph.ref_mean_weights(), dtype=torch.float64)
        aw = torch.tensor(pw.ref_mean_weights(), dtype=torch.float64)
        p = torch.einsum("ah,bw->hwab", ah, aw).reshape(ph.n * pw.n, -1)
        if name == "sum_t":
            p = (p > 0).to(torch.float64)
        value = p.to(device=like.device, dtype=dtype)
    elif name == "counts":  # rh x rw x 1: positions per cell
        sizes = torch.tensor(ph.ref_sizes, dtype=torch.float64)[:, None] * torch.tensor(pw.ref_sizes, dtype=torch.float64)
        value = sizes[:, :, None].to(device=like.device, dtype=dtype)
    elif name.startswith("counts:"):  # bh x bw x 1: positions per cell of scale i
        i = int(name.split(":")[1])
        sizes = torch.tensor(ph.scale_sizes[i], dtype=torch.float64)[:, None] * torch.tensor(pw.scale_sizes[i], dtype=torch.float64)
        value = sizes[:, :, None].to(device=like.device, dtype=dtype)
    elif name in ("derive", "combine"):
        value = _scale_matrix(grid, name == "derive").to(device=like.device, dtype=dtype)
    else:  # pragma: no cover - internal
        raise KeyError(name)
    if not torch.compiler.is_compiling() and not torch.jit.is_tracing():
        _CONSTS[key] = value
    return value


def _scale_matrix(grid: CellGrid, derive: bool) -> torch.Tensor:
    """derive: (sum_l B_l) x (rh*rw), every scale's cell means from the refinement means (rows: scale, cell);
    combine: (rh*rw) x (sum_l B_l), the mean over scales of the per-scale cell gates at each refinement cell."""
    ph, pw = grid.ph, grid.pw
    blocks = []
    for i in range(len(ph.scale_sizes)):
        if derive:
            blocks.append(torch.kron(torch.tensor(ph.mean_weights(i), dtype=torch.float64),
                                     torch.tensor(pw.mean_weights(i), dtype=torch.float64)))
        else:
            oh = torch.nn.functional.one_hot(torch.tensor(ph.scale_of_ref[i]), len(ph.scale_sizes[i]))  # rh, bh
            ow = torch.nn.functional.one_hot(torch.tensor(pw.scale_of_ref[i]), len(pw.scale_sizes[i]))  # rw, bw
            blocks.append(torch.kron(oh.double(), ow.double()) / len(ph.scale_sizes))
    return torch.cat(blocks, 0 if derive else 1)


def scale_blocks(grid: CellGrid) -> tuple[tuple[int, int], ...]:
    """Row ranges of each scale's cells in the ``derive`` matrix (cell-major within a scale)."""
    out, start = [], 0
    for sh, sw in zip(grid.ph.scale_sizes, grid.pw.scale_sizes):
        out.append((start, start + len(sh) * len(sw)))
        start += len(sh) * len(sw)
    return tuple(out)


def scale_matrices(grid: CellGrid, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid's (derive, combine) matrices (see :func:`_scale_matrix`) on like's device and dtype."""
    return _const(grid, "derive", like), _const(grid, "combine", like)


def grid_counts(grid: CellGrid, like: torch.Tensor, scale_index: int | None = None) -> torch.Tensor:
    """Positions per refinement cell (rh, rw, 1), or per cell of scale ``scale_index`` (bh, bw, 1)."""
    return _const(grid, "counts" if scale_index is None else f"counts:{scale_index}", like)


def is_channels_last(x: torch.Tensor) -> bool:
    """True when x is laid out channels_last (and not also plain contiguous, as 1x1 maps are)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------ full-resolution kernels ---
def cell_means(x: torch.Tensor, grid: CellGrid, sums: bool = False) -> torch.Tensor:
    """Means (or sums) of x (N, C, H, W) over the grid's cells: N, rh, rw, C (possibly a strided view).

    The method follows x's memory format: NCHW reads x once through one matrix product with the
    (H*W) x (rh*rw) averaging matrix (few cells: a thin GEMM is cheaper than NCHW average pooling);
    channels_last uses a strided average pool (equal cells) or two thin matrix products over H, then W.
    """
    n, c, h, w = x.shape
    rh, rw = grid.shape
    if rh == 1 and rw == 1:  # global: SE's squeeze
        s = x.sum((2, 3)) if sums else x.mean((2, 3))  # N, C
        return s.view(n, 1, 1, c)
    if torch.is_autocast_enabled(x.device.type):  # pool in x's precision, as average pooling would
        with torch.autocast(x.device.type, enabled=False):
            return cell_means(x, grid, sums)
    if is_channels_last(x):
        if grid.uniform:
            kh, kw = h // rh, w // rw
            m = F.avg_pool2d(x, (kh, kw)).permute(0, 2, 3, 1)  # N, rh, rw, C
            return m * float(kh * kw) if sums else m
        xt = x.permute(0, 2, 3, 1).reshape(n, h, w * c)  # a view: N, H, W*C
        rows = torch.matmul(_const(grid, "ah", x), xt).view(n * rh, w, c)  # N*rh, W, C: row-band means
        m = torch.matmul(_const(grid, "aw", x), rows).view(n, rh, rw, c)  # N, rh, rw, C
        return m * _const(grid, "counts", x) if sums else m
    if rh * rw <= 16:  # <= 16 MACs per element: a thin GEMM, cheaper than NCHW average pooling
        p = _const(grid, "sum_t" if sums else "pool_t", x)  # H*W, rh*rw
        return torch.matmul(x.reshape(n * c, h * w), p).view(n, c, rh, rw).permute(0, 2, 3, 1)
    if grid.uniform:  # many cells: a GEMM would do rh*rw MACs per element
        kh, kw = h // rh, w // rw
        m = F.avg_pool2d(x, (kh, kw)).permute(0, 2, 3, 1)
        return m * float(kh * kw) if sums else m
    m = torch.matmul(torch.matmul(_const(grid, "ah", x), x), _const(grid, "aw", x).t()).permute(0, 2, 3, 1)
    return m * _const(grid, "counts", x) if sums else m


def _rows(z: torch.Tensor, grid: CellGrid, like: torch.Tensor) -> torch.Tensor:
    """A cell tensor (N, rh, rw, C) expanded along W only: N, C, rh, W with like's memory order (W, C)."""
    n, rh, rw, c = z.shape
    if rw == 1:
        return z.permute(0, 3, 1, 2).expand(n, c, rh, grid.pw.n)  # a view
    if is_channels_last(like):
        if grid.pw.uniform:  # a broadcast copy (cheaper than a gather)
            zr = z[:, :, :, None, :].expand(n, rh, rw, grid.pw.n // rw, c).reshape(n, rh, grid.pw.n, c)
        else:
            zr = z.index_select(2, _const(grid, "idx_w", z))
        return zr.permute(0, 3, 1, 2)  # memory N, rh, W, C
    # NCHW: a matrix product with the 0/1 band matrix (rw x W) beats a gather along the last dimension
    return torch.matmul(z.permute(0, 3, 1, 2).contiguous(), _const(grid, "expand_w", z))  # N, C, rh, W


def cell_mul(
    x: torch.Tensor, z: torch.Tensor, grid: CellGrid, out: torch.Tensor | None = None, add: torch.Tensor | None = None
) -> torch.Tensor:
    """``x * expand(z)`` (plus ``expand(add)`` if given) for cell tensors z, add: N, rh, rw, C -> N, C, H, W.

    Broadcast through views: z is expanded along W only (rh rows of the full width, 1/band-height of x's
    size) and multiplied into x viewed as N, C, bands, band height, W, one strided product per run of
    equal-height bands. ``out`` may be given (a buffer of x's shape, it may be x's own operand ``g*x``).
    Differentiable (no ``out``) when the row bands are equal; otherwise ``out`` is allocated here.
    """
    n, c, h, w = x.shape
    rh, rw = grid.shape
    if torch.is_autocast_enabled(x.device.type) and rh * rw > 1:  # spread the gate exactly, in its own dtype
        with torch.autocast(x.device.type, enabled=False):
            return cell_mul(x, z, grid, out, add)
    if rh == 1 and rw == 1:  # SE: a per-channel scalar
        zc = z.reshape(n, c)[:, :, None, None]
        if add is None:
            return torch.mul(x, zc) if out is None else torch.mul(x, zc, out=out)
        ac = add.reshape(n, c)[:, :, None, None]
        return torch.addcmul(ac, x, zc) if out is None else torch.addcmul(ac, x, zc, out=out)
    if not is_channels_last(x) and rh * rw <= 16 and (x if out is None else out).is_contiguous():
        # NCHW: rows are too short for a strided broadcast (W is 7..56), so the gate is spread over the
        # planes by one thin GEMM (cells x H*W 0/1 matrix) written straight into the output buffer.
        spread = _const(grid, "spread", z)  # rh*rw, H*W
        zc = z.permute(0, 3, 1, 2).reshape(n * c, rh * rw)  # N*C, rh*rw
        acs = None if add is None else add.permute(0, 3, 1, 2).reshape(n * c, rh * rw)
        if out is None and torch.is_grad_enabled():  # differentiable form (compile fuses it)
            res = x * torch.matmul(zc, spread).view(n, c, h, w)
            return res if acs is None else res + torch.matmul(acs, spread).view(n, c, h, w)
        if out is None:
            out = torch.empty_like(x)
        o2 = out.view(n * c, h * w)
        torch.matmul(zc, spread, out=o2)  # the gate at full resolution, in the output's memory
        out.mul_(x)
        if acs is not None:
            o2.addmm_(acs, spread)
        return out
    zr = _rows(z, grid, x)  # N, C, rh, W
    ar = _rows(add, grid, x) if add is not None else None
    runs = grid.ph.runs
    if len(runs) == 1 and out is None:
        s = h // rh
        xv = x.view(n, c, rh, s, w)
        if ar is None:
            return (xv * zr[:, :, :, None, :]).view(n, c, h, w)
        return torch.addcmul(ar[:, :, :, None, :], xv, zr[:, :, :, None, :]).view(n, c, h, w)
    if out is None:
        out = torch.empty_like(x)
    for p0, b0, nb, s in runs:
        sl = slice(p0, p0 + nb * s)
        xv = x[:, :, sl].view(n, c, nb, s, w)  # N, C, bands, band height, W
        ov = out[:, :, sl].view(n, c, nb, s, w)
        zv = zr[:, :, b0 : b0 + nb, None, :]  # N, C, bands, 1, W
        if ar is None:
            torch.mul(xv, zv, out=ov)
        else:
            torch.addcmul(ar[:, :, b0 : b0 + nb, None, :], xv, zv, out=ov)
    return out


def gather_full(z: torch.Tensor, grid: CellGrid) -> torch.Tensor:
    """The general path: a cell tensor N, rh, rw, C gathered to full resolution, N, C, H, W (a view)."""
    full = z.index_select(1, _const(grid, "idx_h", z)).index_select(2, _const(grid, "idx_w", z))
    return full.permute(0, 3, 1, 2)


# ------------------------------------------------------------------------ the fused autograd pair ---
class FusedLink:
    """What a multiply's backward hands to the pooling's backward of the same call (MS-SAR, SE, GE, SGE)."""

    __slots__ = ("fuse", "g", "buf", "z")

    def __init__(self, fuse: bool) -> None:
        self.fuse = fuse
        self.g: torch.Tensor | None = None
        self.buf: torch.Tensor | None = None
        self.z: torch.Tensor | None = None


class _CellPool(torch.autograd.Function):
    """src -> cell means. Backward: d(mean)/d(src), fused with the multiply's d(x*z)/dx when src is x."""

    @staticmethod
    def forward(ctx: Any, src: torch.Tensor, grid: CellGrid, link: FusedLink) -> torch.Tensor:
        ctx.grid, ctx.link = grid, link
        ctx.src_shape, ctx.cl = src.shape, is_channels_last(src)
        return cell_means(src, grid)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_means: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        grid, link = ctx.grid, ctx.link
        q = grad_means / _const(grid, "counts", grad_means)  # N, rh, rw, C: d(loss)/d(src) inside each cell
        if link.g is not None:  # src is x: one pass, g * z + q, into the buffer of g * x
            g, buf, z = link.g, link.buf, link.z
            link.g = link.buf = link.z = None
            return cell_mul(g, z, grid, out=buf, add=q.to(g.dtype)), None, None
        n, c, h, w = ctx.src_shape
        full = gather_full(q, grid) if not grid.shape == (1, 1) else q.reshape(n, c, 1, 1).expand(n, c, h, w)
        fmt = torch.channels_last if ctx.cl else torch.contiguous_format
        return full.contiguous(memory_format=fmt), None, None


class _CellMul(torch.autograd.Function):
    """(x, cell gate z) -> x * expand(z). Backward: dz = cell sums of g * x; dx = g * z, or left to _CellPool."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, z: torch.Tensor, grid: CellGrid, link: FusedLink) -> torch.Tensor:
        ctx.grid, ctx.link = grid, link
        ctx.save_for_backward(x, z)
        return cell_mul(x, z, grid)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        x, z = ctx.saved_tensors
        grid, link = ctx.grid, ctx.link
        need_x, need_z = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        buf = torch.mul(x, g) if need_z else None  # N, C, H, W in x's memory format
        grad_z = cell_means(buf, grid, sums=True).to(z.dtype) if buf is not None else None  # N, rh, rw, C
        grad_x = None
        if need_x:
            if link.fuse:  # _CellPool's backward runs next (after the FCs') and writes dx into buf
                link.g, link.buf, link.z = g, buf, z
            else:
                grad_x = cell_mul(g, z, grid, out=buf)
        return grad_x, grad_z, None, None


def eager_autograd() -> bool:
    """True when the fused autograd functions may run: grad mode, and not compiled, traced or exported."""
    return (
        torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.onnx.is_in_onnx_export()
    )


def recalibrate(
    x: torch.Tensor,
    gate_fn: Callable[[torch.Tensor], torch.Tensor],
    grid: CellGrid,
    src: torch.Tensor | None = None,
    fused: bool = True,
) -> torch.Tensor:
    """``x * expand(gate_fn(cell_means(src)))``; src defaults to x; gate_fn maps N, rh, rw, C_in -> N, rh, rw, C.

    ``fused=False`` (or compile/trace/export) uses ordinary differentiable ops; else the fused pair above.
    """
    src = x if src is None else src
    if fused and eager_autograd():
        link = FusedLink(fuse=src is x and x.requires_grad)
        means = _CellPool.apply(src, grid, link)  # N, rh, rw, C_in
        return _CellMul.apply(x, gate_fn(means).to(x.dtype), grid, link)
    z = gate_fn(cell_means(src, grid)).to(x.dtype)  # N, rh, rw, C
    if grid.ph.uniform or grid.shape == (1, 1) or not torch.is_grad_enabled():
        return cell_mul(x, z, grid)  # differentiable here, except for unequal row bands (then: no grad needed)
    return x * gather_full(z, grid)  # the differentiable general form (compile / trace / export)
