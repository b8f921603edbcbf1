"""Multi-scale spatially-asymmetric recalibration (MS-SAR).

Wang, Xie, Qiao, Zhang, Yuille, "Multi-Scale Spatially-Asymmetric Recalibration for Image
Classification", ECCV 2018, arXiv:1804.00787, Sections 3.2-3.5, Eq. (1) and (2).

For each scale K in ``scales``: pool X over the coordinate set of every position (regional cells or
sliding windows), z = sigmoid(W2 ReLU(BN(W1 y))) with bias-free W1 (D' x C_in) and W2 (C x D'),
D' = max(1, C // (L * reduction)); the gate is the mean of the L per-scale gates and the output X * Z.
With ``context_channels`` the gate is computed from a second tensor (multi-stage recalibration, Sec. 3.4).

Implementation (same function, cheaper; ``docs/performance.md`` has the measurements):
* regional: pool once, at the common refinement of all scales' partitions (``_regions.cell_means``: a
  strided average in channels_last when the cells are equal, thin matrix products otherwise), derive every
  scale's cell means from it exactly (views when a scale's bands are unions of equally many refinement
  bands, which the SPEC partition guarantees for scales dividing the largest one, even at 7x7 or 14x14;
  small einsums otherwise), run each scale's FCs on its K^2 cell vectors (one GEMM per layer and scale:
  a block-diagonal batched FC would multiply the FC work by L, see the docs), combine the gates at cell
  resolution and broadcast them into the multiply (``_regions.recalibrate``); no full-resolution gate is
  ever formed. On the eager autograd path, pooling and multiply are a fused autograd pair whose backward
  does SE's full-resolution work and no more.
* sliding: one integral image (summed-area table, paper footnote 3) serves every scale; the window sums
  cost four look-ups per position whatever the window size.
Deviations from the paper: the sliding window is the square |dh| <= T, |dw| <= T (footnote 1's intent;
the text writes an L1 ball); regional bands follow the exact rule ``band = i * K // n`` (SPEC section 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import _validate
from ._regions import (
    CellGrid,
    axis_partition,
    cell_grid,
    cell_means,
    gather_full,
    recalibrate,
    scale_blocks,
    scale_matrices,
    sliding_bounds,
    sliding_half_width,
)
from .registry import register_recalib

__all__ = ["MSSAR"]

_STRATEGIES = ("regional", "sliding")


def _const(values: object, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.tensor(values, device=like.device, dtype=dtype)


def _box_sums(cum: torch.Tensor, dim: int, t: int) -> torch.Tensor:
    """Sums over the clipped windows [i - t, i + t] along ``dim`` (2 or 3), from cumulative sums ``cum``.

    With c the inclusive cumulative sum, the window sum at i is c[min(n-1, i+t)] - c[i-t-1] (0 when
    i - t - 1 < 0): the first term is c shifted by t with its last value repeated, the second c shifted the
    other way behind t + 1 zeros. Both are a slice and a pad, whatever t is.
    """
    n = int(cum.shape[dim])
    t = min(t, n - 1)
    hi = cum.narrow(dim, t, n - t)
    if t > 0:  # the last value repeated (concatenation: its backward is a slice, cheap and compile-friendly)
        last = cum.narrow(dim, n - 1, 1)
        hi = torch.cat([hi, last.expand(*(t if d == dim else -1 for d in range(cum.dim())))], dim)
    before = (0, 0, t + 1, 0) if dim == 2 else (t + 1, 0)
    lo = F.pad(cum.narrow(dim, 0, n - t - 1), before)
    return hi - lo


@register_recalib("mssar")
class MSSAR(nn.Module):
    """MS-SAR operator.

    Args:
        channels: C, channels of the recalibrated tensor x.
        scales: distinct positive ints K (the paper's L = {1, 2, 4} by default).
        strategy: ``"regional"`` (K x K cells) or ``"sliding"`` (a window of half-width sqrt(HW)/K).
        reduction: extra channel reduction; D' = max(1, C // (L * reduction)); 1 is the paper's D' = D/L.
        context_channels: if given, the gate is computed from ``forward(x, context)``'s context tensor
            with this many channels (multi-stage recalibration).

    Parameters: ``L * (C_in * D' + C * D' + 2 * D')``. MACs per sample: ``(C_in + C) * D' * sum(K^2)``
    (regional) or ``(C_in + C) * D' * L * H * W`` (sliding).
    """

    # Tests switch this off to check the fast paths against the general (matrix / gather) path.
    _fast_paths: bool = True

    def __init__(
        self,
        channels: int,
        scales: tuple[int, ...] = (1, 2, 4),
        strategy: str = "regional",
        reduction: int = 1,
        context_channels: int | None = None,
    ) -> None:
        super().__init__()
        owner = "MSSAR"
        self.channels = _validate.positive_int("channels", channels, owner)
        self.scales = _validate.scales(scales, owner)
        self.strategy = _validate.choice("strategy", strategy, _STRATEGIES, owner)
        self.reduction = _validate.positive_int("reduction", reduction, owner)
        if context_channels is not None:
            _validate.positive_int("context_channels", context_channels, owner)
        self.context_channels = context_channels
        self.in_channels = context_channels if context_channels is not None else channels
        self.hidden = max(1, channels // (len(self.scales) * reduction))
        n = len(self.scales)
        # One independent recalibration function per scale (Eq. 1), as 1x1 convolutions without bias.
        self.fc1 = nn.ModuleList(nn.Conv2d(self.in_channels, self.hidden, 1, bias=False) for _ in range(n))
        self.bn = nn.ModuleList(nn.BatchNorm2d(self.hidden) for _ in range(n))
        self.fc2 = nn.ModuleList(nn.Conv2d(self.hidden, channels, 1, bias=False) for _ in range(n))

    # ----------------------------------------------------------------------------------------------
    @staticmethod
    def _weight(layers: nn.ModuleList, i: int) -> torch.Tensor:
        """Scale i's 1x1 convolution weight (typed: ModuleList items are plain Modules to a type checker)."""
        conv = layers[i]
        if not isinstance(conv, nn.Conv2d):  # pragma: no cover - built in __init__
            raise TypeError(f"MSSAR: expected a Conv2d, got {type(conv).__name__}")
        return conv.weight

    def _logits(self, i: int, y: torch.Tensor) -> torch.Tensor:
        """Scale i's recalibration function before the sigmoid, on M pooled vectors y (M, C_in) -> M, C."""
        h = F.linear(y, self._weight(self.fc1, i).flatten(1))  # M, D'
        h = self.bn[i](h[:, :, None, None]).flatten(1)  # BN over the M vectors, as BatchNorm2d on the pooled map
        return F.linear(F.relu(h), self._weight(self.fc2, i).flatten(1))  # M, C

    def _fc(self, i: int, y: torch.Tensor) -> torch.Tensor:
        """Scale i's recalibration function (Eq. 1) on M pooled vectors y (M, C_in) -> gate (M, C)."""
        return torch.sigmoid(self._logits(i, y))

    def _check(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        _validate.check_input(x, self.channels, "MSSAR")
        if self.context_channels is None:
            if context is not None:
                raise ValueError("MSSAR: a context tensor was given but the operator was built without context_channels")
            return x
        if context is None:
            raise ValueError(f"MSSAR: built with context_channels={self.context_channels}; call forward(x, context)")
        _validate.check_input(context, self.context_channels, "MSSAR (context)")
        if context.shape[0] != x.shape[0] or context.shape[2:] != x.shape[2:]:
            raise ValueError(
                f"MSSAR: context must have x's batch and spatial size, got x {tuple(x.shape)} and context {tuple(context.shape)}"
            )
        return context

    # ---------------------------------------------------------------------------------- regional ---
    def _cell_gate(self, means: torch.Tensor, grid: CellGrid) -> torch.Tensor:
        """Refinement-cell means N, rh, rw, C_in -> the combined gate (Eq. 1, 2) at refinement cells N, rh, rw, C.

        Cells first (rows = cell, then sample), so that deriving every scale's cell means from the
        refinement and averaging the scales' gates back onto it are one small matrix product each (exact
        for unequal cells and for scales that do not nest), and each scale's block of rows is a view.
        """
        n, rh, rw, c_in = means.shape
        derive, combine = scale_matrices(grid, means)  # sum_l B_l x rh*rw, rh*rw x sum_l B_l
        ref = means.permute(1, 2, 0, 3).reshape(rh * rw, n * c_in)  # rh*rw, N*C_in
        y_all = ref if len(self.scales) == 1 and derive.shape[0] == rh * rw else derive @ ref  # sum B, N*C_in
        rows = [(b - a) * n for a, b in scale_blocks(grid)]  # vectors per scale
        ys = y_all.reshape(sum(rows), c_in).split(rows)  # per scale: B_l*N, C_in (views; split, not slicing, so
        # that the backward concatenates instead of scattering into zeros)
        logits = [self._logits(i, y) for i, y in enumerate(ys)]  # B_l*N, C each
        z_all = torch.sigmoid(logits[0] if len(logits) == 1 else torch.cat(logits))  # sum B * N, C: one sigmoid
        total = combine @ z_all.view(-1, n * self.channels)  # rh*rw, N*C: the mean over scales
        return total.view(rh, rw, n, self.channels).permute(2, 0, 1, 3)  # N, rh, rw, C

    def _cells_general(self, src: torch.Tensor) -> torch.Tensor:
        """The general path (no views, no fused autograd): the combined gate at refinement cells N, rh, rw, C."""
        n, h, w = src.shape[0], int(src.shape[2]), int(src.shape[3])  # geometry is static: plain ints
        ph, pw = axis_partition(h, self.scales), axis_partition(w, self.scales)
        ah = _const(ph.ref_mean_weights(), src, src.dtype)  # rh, H
        aw = _const(pw.ref_mean_weights(), src, src.dtype)  # rw, W
        ref = torch.matmul(torch.matmul(ah, src), aw.t()).permute(0, 2, 3, 1)  # N, rh, rw, C
        total = None
        for i in range(len(self.scales)):
            mh, mw = _const(ph.mean_weights(i), src, ref.dtype), _const(pw.mean_weights(i), src, ref.dtype)
            y = torch.einsum("ar,nrsc,bs->nabc", mh, ref, mw)  # N, bh, bw, C_in
            kh, kw = y.shape[1], y.shape[2]
            z = self._fc(i, y.reshape(n * kh * kw, -1)).view(n, kh, kw, self.channels)  # N, bh, bw, C
            z = z.index_select(1, _const(ph.scale_of_ref[i], src)).index_select(2, _const(pw.scale_of_ref[i], src))
            total = z if total is None else total + z
        assert total is not None
        return total / len(self.scales)  # N, rh, rw, C

    # ----------------------------------------------------------------------------------- sliding ---
    def _sliding_gate(self, src: torch.Tensor) -> torch.Tensor:
        """Full-resolution gate N, C, H, W from window means computed with one integral image.

        Window sums come from the integral image by two shifted slices per axis (at the border the upper
        bound repeats the last value and the lower one is zero), so the cost does not depend on the window
        size and no gather is needed.
        """
        h, w = int(src.shape[2]), int(src.shape[3])
        acc = torch.float64 if src.dtype == torch.float64 else torch.float32  # never sum in half precision
        sat = src.to(acc).cumsum(2).cumsum(3)  # N, C_in, H, W: the integral image (inclusive)
        total = None
        for i, k in enumerate(self.scales):
            t = sliding_half_width(h, w, k)
            box = _box_sums(_box_sums(sat, 2, t), 3, t)  # N, C_in, H, W: window sums (the two axes commute)
            lo_h, hi_h = sliding_bounds(h, h, w, k)
            lo_w, hi_w = sliding_bounds(w, h, w, k)
            rows = _const([b - a for a, b in zip(lo_h, hi_h)], src, box.dtype)  # H: window height per row
            cols = _const([b - a for a, b in zip(lo_w, hi_w)], src, box.dtype)  # W: window width per column
            y = (box / (rows[:, None] * cols)).to(src.dtype)  # N, C_in, H, W: window means
            hid = F.relu(self.bn[i](F.conv2d(y, self._weight(self.fc1, i))))  # N, D', H, W
            z = torch.sigmoid(F.conv2d(hid, self._weight(self.fc2, i)))  # N, C, H, W
            total = z if total is None else total + z
        assert total is not None
        return total / len(self.scales)

    # -------------------------------------------------------------------------------- public API ---
    def gate(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """The gate Z in (0, 1), expanded to ``x.shape``."""
        src = self._check(x, context)
        if self.strategy == "sliding":
            return self._sliding_gate(src).to(x.dtype)
        grid = cell_grid(int(x.shape[2]), int(x.shape[3]), self.scales)
        if self._fast_paths and not torch.jit.is_tracing():
            cells = self._cell_gate(cell_means(src, grid), grid)
        else:
            cells = self._cells_general(src)
        return gather_full(cells, grid).to(x.dtype)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        src = self._check(x, context)
        if self.strategy == "sliding":
            return x * self._sliding_gate(src).to(x.dtype)
        grid = cell_grid(int(x.shape[2]), int(x.shape[3]), self.scales)
        # jit.trace records one call's operations; the general path has no cached constants or custom autograd.
        if not self._fast_paths or torch.jit.is_tracing():
            return x * gather_full(self._cells_general(src).to(x.dtype), grid)
        return recalibrate(x, lambda means: self._cell_gate(means, grid), grid, src=context)

    def extra_repr(self) -> str:
        ctx = f", context_channels={self.context_channels}" if self.context_channels is not None else ""
        return (
            f"channels={self.channels}, scales={self.scales}, strategy={self.strategy!r}, "
            f"reduction={self.reduction}, hidden={self.hidden}{ctx}"
        )
