"""DenseNet-BC for CIFAR (DenseNet-BC-100, k = 12; DenseNet-BC-190, k = 40) with a recalibration slot per layer.

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", CVPR 2017,
arXiv:1608.06993, Section 3 and Table 2 ("DenseNet-BC"): a 3x3 convolution with 2k channels, three dense blocks
of (depth - 4) / 6 layers each (BN-ReLU-1x1 conv (4k)-BN-ReLU-3x3 conv (k), the k new features concatenated to
the input), transitions BN-ReLU-1x1 conv (compression 0.5)-2x2 average pooling between blocks, then BN-ReLU,
global average pooling and a fully-connected layer. DenseNet-BC-100 has 769,162 parameters on 10 classes.

Recalibration (MS-SAR paper Section 3.4, Fig. 2 right; docs/spec.md, section 5): on the k new features before they are
concatenated. Single-stage (default): the gate is computed from the new features. Multi-stage
(``multi_stage=True``, MS-SAR only): the gate is computed from the layer's input, the concatenated "main
vector", so the operator is built with ``context_channels`` = the layer's input width and called as
``op(new, context=x)``.

Deviations from the papers: no dropout (the DenseNet paper uses none with data augmentation either).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._common import RecalibSlot, ZooModel, feature_size, init_backbone

__all__ = ["DenseNetConfig", "DenseNet", "DenseLayer", "Transition"]


@dataclass(frozen=True)
class DenseNetConfig:
    """DenseNet-BC: ``depth = 6n + 4``, growth rate ``k``; ``multi_stage`` selects MS-SAR's multi-stage gate."""

    depth: int = 100
    growth_rate: int = 12
    compression: float = 0.5
    bottleneck_width: int = 4
    num_classes: int = 10
    in_chans: int = 3
    multi_stage: bool = False
    img_size: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 10 or (self.depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n + 4 with n >= 1 (100, 190, ...), got {self.depth!r}")
        if not 0 < self.compression <= 1:
            raise ValueError(f"compression must be in (0, 1], got {self.compression!r}")
        if self.growth_rate < 1 or self.bottleneck_width < 1:
            raise ValueError(f"growth_rate and bottleneck_width must be positive, got {self.growth_rate}, {self.bottleneck_width}")

    @property
    def layers_per_block(self) -> int:
        """Bottleneck layers per dense block: (depth - 4) / 6."""
        return (self.depth - 4) // 6


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k)-[recalib], concatenated to the input."""

    def __init__(self, in_channels: int, cfg: DenseNetConfig, slot: RecalibSlot,
                 feat_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        k, inter = cfg.growth_rate, cfg.bottleneck_width * cfg.growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, inter, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(inter)
        self.conv2 = nn.Conv2d(inter, k, 3, padding=1, bias=False)
        self.multi_stage = cfg.multi_stage
        self.recalib = slot.make(k, context_channels=in_channels if cfg.multi_stage else None, feat_size=feat_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(F.relu(self.norm1(x)))  # N, 4k, H, W
        new = self.conv2(F.relu(self.norm2(new)))  # N, k, H, W
        new = self.recalib(new, context=x) if self.multi_stage else self.recalib(new)
        return torch.cat([x, new], 1)  # N, C_in + k, H, W


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1-avgpool2x2 between dense blocks."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True), nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.AvgPool2d(2),
        )


class DenseNet(ZooModel):
    """DenseNet-BC for 32x32 (or 28x28) images; see the module docstring."""

    def __init__(self, cfg: DenseNetConfig, slot: RecalibSlot | None = None) -> None:
        super().__init__()
        slot = slot or RecalibSlot(None)
        if cfg.multi_stage and not slot.is_mssar:
            raise ValueError(
                "multi_stage=True is MS-SAR's multi-stage recalibration and needs recalib='mssar' "
                f"(or an MSSAR class), got {slot.describe()}"
            )
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        k = cfg.growth_rate
        channels = 2 * k
        self.conv1 = nn.Conv2d(cfg.in_chans, channels, 3, padding=1, bias=False)
        self.feature_info = []
        for b in range(3):
            size = feature_size(cfg.img_size, 2**b)
            layers = []
            for _ in range(cfg.layers_per_block):
                layers.append(DenseLayer(channels, cfg, slot, size))
                channels += k
            setattr(self, f"block{b + 1}", nn.Sequential(*layers))
            self.feature_info.append({"num_chs": channels, "reduction": 2**b, "module": f"block{b + 1}"})
            if b < 2:
                out = int(channels * cfg.compression)
                setattr(self, f"trans{b + 1}", Transition(channels, out))
                channels = out
        self.norm_final = nn.BatchNorm2d(channels)
        self.num_features = channels
        self.fc: nn.Module = nn.Linear(channels, cfg.num_classes) if cfg.num_classes else nn.Identity()
        init_backbone(self)

    block1: nn.Sequential
    block2: nn.Sequential
    block3: nn.Sequential
    trans1: Transition
    trans2: Transition

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # N, 2k, H, W
        x = self.trans1(self.block1(x))  # N, C1, H/2, W/2
        x = self.trans2(self.block2(x))  # N, C2, H/4, W/4
        return F.relu(self.norm_final(self.block3(x)))  # N, C3, H/4, W/4
