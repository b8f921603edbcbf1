"""Gather-excite (GE).

Hu, Shen, Albanie, Sun, Vedaldi, "Gather-Excite: Exploiting Feature Context in Convolutional Neural
Networks", NeurIPS 2018, arXiv:1810.12348, Section 3 and the official code.

* gather, ``theta-`` (parameter-free): average pooling, kernel 2e-1, stride e, padding e-1, padding
  excluded from the average; global extent (e = 0): the spatial mean.
* gather, ``theta`` / ``theta+``: log2(e) depthwise 3x3 stride-2 convolutions (no bias), each followed by
  BN, ReLU between them; global: one depthwise convolution whose kernel is the feature size, then BN.
* excite: ``theta-``/``theta``: Z = sigmoid(nearest-upsample(gathered) to H x W); ``theta+``: ReLU after the
  gather, then an SE-style MLP C -> C // reduction -> C with biases, then the sigmoid and the upsampling.

Deviations: none from docs/spec.md, section 3. The sigmoid is applied before the nearest-neighbour upsampling,
which is the same function (upsampling copies values) at a fraction of the cost. timm's GatherExcite is
not used as an oracle: it cannot be built except as theta- without MLP (timm >= 1.0.21).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import _validate
from .registry import register_recalib

__all__ = ["GatherExcite"]

_VARIANTS = ("theta-", "theta", "theta+")


def _pair(value: object, owner: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value)
    ):
        raise ValueError(f"{owner}: feat_size must be a positive int or a pair (H, W) of them, got {value!r}")
    return int(value[0]), int(value[1])


def _check(x: torch.Tensor, channels: int, feat_size: tuple[int, int] | None) -> None:
    """Input checks; ``feat_size``: the map size a global theta/theta+ gather was built for (None: any)."""
    _validate.check_input(x, channels, "GatherExcite")
    if feat_size is not None and tuple(x.shape[2:]) != feat_size:
        raise ValueError(
            f"GatherExcite: built for a global gather over {feat_size[0]}x{feat_size[1]} maps "
            f"(feat_size), got input of spatial size {x.shape[2]}x{x.shape[3]}"
        )


torch.fx.wrap("_check")  # shape-dependent Python stays out of torch.fx graphs


@register_recalib("ge")
class GatherExcite(nn.Module):
    """Gather-excite operator.

    Args:
        channels: C.
        extent: 0 for a global gather, otherwise a power of two >= 2 (the gather's stride).
        variant: ``"theta-"`` (parameter-free), ``"theta"`` (depthwise convs) or ``"theta+"`` (+ MLP).
        feat_size: the feature map's H (or (H, W)); required by the global ``theta``/``theta+`` gather.
        reduction: the ``theta+`` MLP's reduction ratio.

    Parameters: theta-: 0; theta: ``log2(e) * 11 * C`` (global: ``C * H * W + 2 * C``);
    theta+: theta's plus ``2 * C * (C // r) + C // r + C``.
    """

    def __init__(
        self,
        channels: int,
        extent: int = 0,
        variant: str = "theta-",
        feat_size: int | tuple[int, int] | None = None,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        owner = "GatherExcite"
        self.channels = _validate.positive_int("channels", channels, owner)
        self.variant = _validate.choice("variant", variant, _VARIANTS, owner)
        if isinstance(extent, bool) or not isinstance(extent, int) or extent < 0 or (
            extent != 0 and (extent < 2 or extent & (extent - 1))
        ):
            raise ValueError(f"{owner}: extent must be 0 (global) or a power of two >= 2 (2, 4, 8, ...), got {extent!r}")
        self.extent = extent
        self.reduction = _validate.positive_int("reduction", reduction, owner)
        self.feat_size = None if feat_size is None else _pair(feat_size, owner)

        self.gather: nn.Module | None = None
        if variant != "theta-":
            if extent == 0:
                if self.feat_size is None:
                    raise ValueError(
                        f"{owner}: variant={variant!r} with global extent (extent=0) needs feat_size, the H (or (H, W)) "
                        "of the feature map it will see, e.g. GatherExcite(256, variant='theta', feat_size=14)"
                    )
                self.gather = nn.Sequential(
                    nn.Conv2d(channels, channels, self.feat_size, groups=channels, bias=False),
                    nn.BatchNorm2d(channels),
                )
            else:
                layers: list[nn.Module] = []
                for i in range(int(math.log2(extent))):
                    if i:
                        layers.append(nn.ReLU(inplace=True))
                    layers += [
                        nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels, bias=False),
                        nn.BatchNorm2d(channels),
                    ]
                self.gather = nn.Sequential(*layers)
        self.mlp: nn.Module | None = None
        if variant == "theta+":
            hidden = max(1, channels // reduction)
            self.mlp = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, hidden, 1, bias=True),
                nn.ReLU(inplace=True),
                nn.Conv2d(hidden, channels, 1, bias=True),
            )

    def _small_gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate at the gathered resolution: N, C, h, w (h = w = 1 for a global extent)."""
        _check(x, self.channels, self.feat_size if self.gather is not None and self.extent == 0 else None)
        if self.gather is not None:  # theta, theta+
            g = self.gather(x)
        elif self.extent == 0:  # theta-, global
            g = x.mean((2, 3), keepdim=True)  # N, C, 1, 1
        else:  # theta-: average pooling, padding excluded from the average
            e = self.extent
            g = F.avg_pool2d(x, 2 * e - 1, stride=e, padding=e - 1, count_include_pad=False)
        if self.mlp is not None:
            g = self.mlp(g)
        return torch.sigmoid(g).to(x.dtype)

    def _excite(self, x: torch.Tensor) -> torch.Tensor:
        """The gate broadcastable to x: N, C, 1, 1 (global) or nearest-upsampled to N, C, H, W."""
        z = self._small_gate(x)
        return z if self.extent == 0 else F.interpolate(z, size=x.shape[2:], mode="nearest")

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate Z in (0, 1), expanded to ``x.shape``."""
        return self._excite(x).expand_as(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._excite(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, extent={self.extent}, variant={self.variant!r}, feat_size={self.feat_size}"
