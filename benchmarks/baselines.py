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
* :class:`ReferenceSGE`: SGE as its official code writes it (``x.view(b * g, -1, h, w)``, adaptive average
  pooling, a ``std`` over the flattened positions). Its ``view`` raises on channels_last input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recalib.modules import MSSAR, SpatialGroupEnhance

__all__ = ["ObviousMSSAR", "ReferenceSGE"]


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
