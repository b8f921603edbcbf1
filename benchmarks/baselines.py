"""Benchmark baselines: the straightforward formulations our operators are measured against.

Each baseline wraps one of our operators and *shares its parameters* (the same ``nn.Parameter`` objects),
so that it computes the same function and a timing comparison is fair;
``tests/test_benchmarks_baselines.py`` checks that they agree.

* :class:`ObviousMSSAR`: MS-SAR written the obvious way (the issue's "obvious formulation"): per scale,
  adaptive average pooling to K x K, two 1x1 convolutions with BN and ReLU between them, a sigmoid, nearest
  up-sampling of the gate to full resolution; then the sum over scales, a division and the multiply. Where
  K does not divide the map (7 x 7 or 14 x 14 with K = 4) adaptive pooling's windows overlap and are not
  the partition of docs/spec.md (section 1), so there the scale is pooled with that partition's averaging
  matrices instead (two matrix products, as obvious and as exact); nearest up-sampling's source index
  ``floor(h * K / H)`` is the band rule of docs/spec.md at every size.
* :class:`SeparableMSSAR`: the per-axis formulation: per scale, the cell means are two products with the
  averaging matrices of the row and column bands (``B_h^T x B_w``), and the gate is spread back with two more
  (``B_h z B_w^T``), 2K multiply-adds per element each way; then the sum over scales and the multiply.
* :class:`MembershipMSSAR`: every cell of every scale a column of one dense 0/1 matrix M (H*W x B, B = sum of
  K^2): cell means ``x M / |cell|`` and gate ``z M^T / L``, B multiply-adds per element each way (21 for
  K = 1, 2, 4), in x's logical (N, C, H*W) orientation at every size and layout: the formulation MS-SAR used
  before issue 21, which ours keeps only where the cells do not tile the map (and in x's memory order).
* :class:`ReferenceSGE`: SGE as its official code writes it (``x.view(b * g, -1, h, w)``, adaptive average
  pooling, a ``std`` over the flattened positions). Its ``view`` raises on channels_last input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recalib.modules import MSSAR, SpatialGroupEnhance

__all__ = ["MembershipMSSAR", "ObviousMSSAR", "ReferenceSGE", "SeparableMSSAR"]


def _band_matrix(n: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """K x n averaging matrix of docs/spec.md's partition (section 1; band of position i: i * K // n), empty
    bands dropped."""
    bands = sorted({i * k // n for i in range(n)})
    rows = torch.zeros(len(bands), n, dtype=like.dtype, device=like.device)
    for i in range(n):
        rows[bands.index(i * k // n), i] = 1.0
    return rows / rows.sum(1, keepdim=True)


class ObviousMSSAR(nn.Module):
    """The obvious regional MS-SAR (see the module docstring), with ``op``'s parameters."""

    def __init__(self, op: MSSAR) -> None:
        super().__init__()
        if op.strategy != "regional" or op.context_channels is not None:
            raise ValueError("ObviousMSSAR: only the regional strategy without context is written out")
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = self.op
        h, w = x.shape[-2:]
        total = None
        for i, k in enumerate(op.scales):
            if h % k == 0 and w % k == 0:
                y = F.adaptive_avg_pool2d(x, k)  # N, C, K, K
            else:
                y = _band_matrix(h, k, x) @ x @ _band_matrix(w, k, x).t()  # N, C, K, K (the cells of docs/spec.md)
            z = torch.sigmoid(op.fc2[i](F.relu(op.bn[i](op.fc1[i](y)))))  # N, C, K, K
            up = F.interpolate(z, size=(h, w), mode="nearest")  # N, C, H, W
            total = up if total is None else total + up
        assert total is not None
        return x * (total / len(op.scales))


class _RegionalBaseline(nn.Module):
    """A regional MS-SAR formulation with ``op``'s parameters: ``means`` and ``spread`` are the formulation."""

    def __init__(self, op: MSSAR) -> None:
        super().__init__()
        if op.strategy != "regional" or op.context_channels is not None:
            raise ValueError(f"{type(self).__name__}: only the regional strategy without context is written out")
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = self.op
        zs = [torch.sigmoid(op.fc2[i](F.relu(op.bn[i](op.fc1[i](y))))) for i, y in enumerate(self.means(x))]
        return x * self.spread(zs, x)


class SeparableMSSAR(_RegionalBaseline):
    """Per-axis band products (see the module docstring), with ``op``'s parameters."""

    def means(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        return [_band_matrix(h, k, x) @ x @ _band_matrix(w, k, x).t() for k in self.op.scales]

    def spread(self, zs: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ones = [(_band_matrix(h, k, x) > 0).to(x.dtype) for k in self.op.scales]  # K x n membership per axis
        cols = [(_band_matrix(w, k, x) > 0).to(x.dtype) for k in self.op.scales]
        return sum(r.t() @ z @ c for r, z, c in zip(ones, zs, cols)) / len(zs)  # type: ignore[return-value]


class MembershipMSSAR(_RegionalBaseline):
    """One dense membership matrix for all cells (see the module docstring), with ``op``'s parameters."""

    def _member(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        cells = [(_band_matrix(h, k, x) > 0).to(x.dtype).t()[:, None, :, None] * (_band_matrix(w, k, x) > 0).to(x.dtype).t()[None, :, None, :]
                 for k in self.op.scales]  # H, W, bh, bw
        return torch.cat([m.flatten(0, 1).flatten(1) for m in cells], 1)  # H*W, B

    def means(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        member = self._member(x)
        y = x.flatten(2) @ (member / member.sum(0))  # N, C, B
        sides = [(min(k, h), min(k, w)) for k in self.op.scales]
        return [t.unflatten(2, s) for t, s in zip(y.split([a * b for a, b in sides], 2), sides)]

    def spread(self, zs: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        z = torch.cat([t.flatten(2) for t in zs], 2)  # N, C, B
        return (z @ self._member(x).t() / len(zs)).unflatten(2, x.shape[-2:])


class ReferenceSGE(nn.Module):
    """SGE as in the official code (github.com/implus/PytorchInsight), with ``op``'s gamma and beta."""

    def __init__(self, op: SpatialGroupEnhance) -> None:
        super().__init__()
        self.op = op
        self.groups = op.groups
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.sig = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.size()
        x = x.view(b * self.groups, -1, h, w)
        xn = x * self.avg_pool(x)
        xn = xn.sum(dim=1, keepdim=True)
        t = xn.view(b * self.groups, -1)
        t = t - t.mean(dim=1, keepdim=True)
        std = t.std(dim=1, keepdim=True) + 1e-5
        t = t / std
        t = t.view(b, self.groups, h, w)
        t = t * self.op.weight + self.op.bias
        t = t.view(b * self.groups, 1, h, w)
        x = x * self.sig(t)
        return x.view(b, c, h, w)
