"""Multi-scale spatially-asymmetric recalibration (MS-SAR).

Wang, Xie, Qiao, Zhang, Yuille, "Multi-Scale Spatially-Asymmetric Recalibration for Image
Classification", ECCV 2018, arXiv:1804.00787, Sections 3.2-3.5, Eq. (1) and (2); docs/spec.md, section 1.

For each scale K in ``scales`` (Eq. 1): pool X over the coordinate set of every position (K x K regional cells,
or a sliding window of half-width sqrt(HW)/K), then z = sigmoid(W2 ReLU(BN(W1 y))) with bias-free 1x1 layers
W1 (D' x C_in) and W2 (C x D'), D' = max(1, C // (L * reduction)). The gate is the mean of the L per-scale gates
(Eq. 2) and the output X * Z. With ``context_channels`` the gate is computed from a second tensor (multi-stage
recalibration, Section 3.4). The regional FCs run on the K^2 cell vectors and each position takes its cell's
gate; the sliding FCs run at every position.

Hidden width: ``reduction=1`` is the text's D' = D/L (Section 3.5), used by the CIFAR models (Section 4.1). The
ImageNet models of the zoo use ``reduction=16``, the parameter budget of the paper's Table 5 (within 1 % of SE).

Deviations from the paper: the sliding window is the square |dh| <= T, |dw| <= T (footnote 1's intent; the text
writes an L1 ball); regional bands follow the exact rule ``band = i * K // n`` (docs/spec.md, section 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import _validate
from ._pooling import region_means, regions_times, row_blocks, window_means
from ._validate import check_input
from .registry import register_recalib

__all__ = ["MSSAR"]

_STRATEGIES = ("regional", "sliding")


def _source(x: torch.Tensor, context: torch.Tensor | None, channels: int, context_channels: int | None) -> torch.Tensor:
    """The tensor the gate is computed from (x, or the context of multi-stage recalibration), checked."""
    check_input(x, channels, "MSSAR")
    if context_channels is None:
        if context is not None:
            raise ValueError("MSSAR: a context tensor was given but the operator was built without context_channels")
        return x
    if context is None:
        raise ValueError(f"MSSAR: built with context_channels={context_channels}; call forward(x, context)")
    check_input(context, context_channels, "MSSAR (context)")
    if context.shape[0] != x.shape[0] or context.shape[2:] != x.shape[2:]:
        raise ValueError(
            f"MSSAR: context must have x's batch and spatial size, got x {tuple(x.shape)} and context {tuple(context.shape)}"
        )
    return context


def _check_batch(ys: list[torch.Tensor], scales: tuple[int, ...], training: bool) -> None:
    """BatchNorm in training mode needs two pooled vectors per channel; say so in MS-SAR's terms."""
    for y, k in zip(ys, scales):
        if training and y.shape[0] * y.shape[2] * y.shape[3] == 1:
            raise ValueError(
                f"MSSAR: BatchNorm in training mode needs more than 1 value per channel, but scale K={k} pools a "
                f"batch of {y.shape[0]} sample into {y.shape[2]}x{y.shape[3]} vector(s); call model.eval() for "
                "single-sample inference, or train with a batch of at least 2"
            )


# Shape-dependent Python stays out of torch.fx graphs: these run as single nodes (as timm marks its layers).
for _name in ("_source", "_check_batch", "region_means", "regions_times", "row_blocks", "window_means"):
    torch.fx.wrap(_name)


@register_recalib("mssar")
class MSSAR(nn.Module):
    """MS-SAR operator.

    Args:
        channels: C, channels of the recalibrated tensor x.
        scales: distinct positive ints K (the paper's L = {1, 2, 4} by default).
        strategy: ``"regional"`` (K x K cells) or ``"sliding"`` (a window of half-width sqrt(HW)/K).
        reduction: extra channel reduction; D' = max(1, C // (L * reduction)); 1 is the paper's D' = D/L (CIFAR),
            16 the Table 5 budget of the zoo's ImageNet models.
        context_channels: if given, the gate is computed from ``forward(x, context)``'s context tensor
            with this many channels (multi-stage recalibration).

    Parameters: ``L * (C_in * D' + C * D' + 2 * D')``. MACs per sample: ``(C_in + C) * D' * sum(K^2)``
    (regional) or ``(C_in + C) * D' * L * H * W`` (sliding).
    """

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
        # One independent recalibration function per scale (Eq. 1): W1, BN, W2 as 1x1 convolutions on pooled maps.
        self.fc1 = nn.ModuleList(nn.Conv2d(self.in_channels, self.hidden, 1, bias=False) for _ in range(n))
        self.bn = nn.ModuleList(nn.BatchNorm2d(self.hidden) for _ in range(n))
        self.fc2 = nn.ModuleList(nn.Conv2d(self.hidden, channels, 1, bias=False) for _ in range(n))

    def _excite(self, i: int, y: torch.Tensor) -> torch.Tensor:
        """Eq. 1 for scale i on pooled vectors y (N, C_in, h, w) -> gate (N, C, h, w); BN over the N*h*w vectors."""
        return torch.sigmoid(self.fc2[i](F.relu(self.bn[i](self.fc1[i](y)))))

    def _cell_gates(self, src: torch.Tensor, blocks: torch.Tensor | None) -> list[torch.Tensor]:
        """Eq. 1 for every scale on src (x or the context): regional N, C, bh, bw (bh = min(K, H)); sliding N, C, H, W."""
        if self.strategy == "regional":
            ys = region_means(src, self.scales, blocks)  # per scale: the mean over every coordinate set
        else:
            ys = window_means(src, self.scales)
        _check_batch(ys, self.scales, self.training)
        return [self._excite(i, ys[i]) for i in range(len(self.scales))]  # ys is one fx node when traced

    def _times_gate(self, x: torch.Tensor, zs: list[torch.Tensor], blocks: torch.Tensor | None) -> torch.Tensor:
        """x * Z, Z the mean over scales of each position's gates (Eq. 2); x's dtype and memory format."""
        if self.strategy == "regional":
            return regions_times(x, zs, self.scales, blocks)  # each position's cells, without an H*W gate per scale
        return x * torch.stack(zs).mean(0).to(x.dtype)

    def gate(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """The gate Z in (0, 1), N, C, H, W in x's dtype and memory format."""
        zs = self._cell_gates(_source(x, context, self.channels, self.context_channels), None)
        return self._times_gate(torch.ones_like(x), zs, None)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        src = _source(x, context, self.channels, self.context_channels)  # N, C_in, H, W
        # Regional, where x's cells tile it: one view of x into row bands for both the pooling and the product.
        blocks = row_blocks(x, self.scales) if self.strategy == "regional" and context is None else None
        return self._times_gate(x, self._cell_gates(src, blocks), blocks)

    def extra_repr(self) -> str:
        ctx = f", context_channels={self.context_channels}" if self.context_channels is not None else ""
        return (
            f"channels={self.channels}, scales={self.scales}, strategy={self.strategy!r}, "
            f"reduction={self.reduction}, hidden={self.hidden}{ctx}"
        )
