"""CIFAR ResNets (ResNet-20/32/44/56/110) with a recalibration slot in every residual block.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, arXiv:1512.03385,
Section 4.2: a 3x3 convolution with 16 filters, then 3 stages of n basic blocks (widths 16, 32, 64; the first
block of stages 2 and 3 has stride 2), global average pooling and a fully-connected layer; depth 6n + 2.

* Shortcuts: option A by default (identity; where the shape changes, stride-2 subsampling ``x[:, :, ::2, ::2]``
  and zero channels appended, no parameters: the paper's CIFAR models), option B (``shortcut="B"``: a 1x1
  projection + BN where the shape changes) as an option. Option A's ResNet-20 has 269,722 parameters on
  10 classes and 40.55M MACs at 32x32; option B has 272,474 and 40.81M (the MS-SAR paper's 40.8M).
* The operator sits on the residual branch after the second BN, before the addition (MS-SAR paper Fig. 2,
  docs/spec.md, section 5); the shortcut is never recalibrated.
* Works on any input size (32x32 CIFAR, 28x28 Fashion-MNIST: 28 -> 14 -> 7) and ``in_chans`` channels.
Deviations from the paper: none. ``zero_init_residual`` (off by default) zeroes the last BN's weight of
every block (Goyal et al. 2017), which is not in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._common import RecalibSlot, ZooModel, feature_size, init_backbone

__all__ = ["CifarResNetConfig", "CifarResNet", "CifarBasicBlock"]

_SHORTCUTS = ("A", "B")


@dataclass(frozen=True)
class CifarResNetConfig:
    """A CIFAR ResNet: ``depth = 6n + 2``; ``img_size`` only serves operators that need the feature size."""

    depth: int = 20
    num_classes: int = 10
    in_chans: int = 3
    shortcut: str = "A"
    widths: tuple[int, int, int] = (16, 32, 64)
    zero_init_residual: bool = False
    img_size: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 8 or (self.depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110, ...), got {self.depth!r}")
        if self.shortcut not in _SHORTCUTS:
            raise ValueError(f"shortcut must be 'A' (parameter-free, the default) or 'B' (1x1 projection), got {self.shortcut!r}")
        if len(self.widths) != 3:
            raise ValueError(f"widths must give the 3 stages' widths, got {self.widths!r}")

    @property
    def blocks_per_stage(self) -> int:
        """Residual blocks per stage: (depth - 2) / 6."""
        return (self.depth - 2) // 6


class _ShortcutA(nn.Module):
    """Option A: subsample by the stride and append zero channels (no parameters)."""

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # N, C, ceil(H/s), ceil(W/s)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # N, C + extra, ., .

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


class CifarBasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN-[recalib] + shortcut, then ReLU."""

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int,
        shortcut: str,
        slot: RecalibSlot,
        feat_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.recalib = slot.make(planes, feat_size=feat_size)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = _ShortcutA(stride, planes - in_planes)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.recalib(self.bn2(self.conv2(out)))  # the residual branch, recalibrated
        return F.relu(out + self.shortcut(x))


class CifarResNet(ZooModel):
    """ResNet-(6n+2) for 32x32 (or 28x28) images; see the module docstring."""

    def __init__(self, cfg: CifarResNetConfig, slot: RecalibSlot | None = None) -> None:
        super().__init__()
        slot = slot or RecalibSlot(None)
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        w = cfg.widths
        self.conv1 = nn.Conv2d(cfg.in_chans, w[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        in_planes = w[0]
        self.feature_info = []
        stages = []
        for i, planes in enumerate(w):
            reduction = 2**i
            blocks = []
            for j in range(cfg.blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                size = feature_size(cfg.img_size, reduction)
                blocks.append(CifarBasicBlock(in_planes, planes, stride, cfg.shortcut, slot, size))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append({"num_chs": planes, "reduction": reduction, "module": f"layer{i + 1}"})
        self.layer1, self.layer2, self.layer3 = stages
        self.num_features = in_planes
        self.fc: nn.Module = nn.Linear(in_planes, cfg.num_classes) if cfg.num_classes else nn.Identity()
        init_backbone(self)
        if cfg.zero_init_residual:
            for m in self.modules():
                if isinstance(m, CifarBasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # N, 16, H, W
        return self.layer3(self.layer2(self.layer1(x)))  # N, 64, H/4, W/4
