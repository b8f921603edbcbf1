"""ImageNet ResNets and ResNeXt (torchvision layout) with a recalibration slot in every residual block.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, arXiv:1512.03385, Table 1;
Xie, Girshick, Dollar, Tu, He, "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017,
arXiv:1611.05431, Table 1 (ResNeXt-50 32x4d).

Layout: torchvision's (module names included, so its state dicts load): 7x7/2 stem, 3x3/2 max-pool, four stages
(basic blocks for 18/34, bottlenecks for 50/101 and ResNeXt), projection shortcuts (1x1 + BN) where the shape
changes, global average pooling, fully-connected layer. The operator sits on the residual branch after the
last BN (bn2 of a basic block, bn3 of a bottleneck), before the addition: SE-ResNet-50 with r = 16 has
28,088,024 parameters, as the released SENet models.

MS-SAR's hidden width follows the paper's Table 5, which gives MS-SAR the parameters of SE on every ImageNet
model: ``create_model`` resolves the ``"se"`` budget rule (:meth:`recalib.modules.RecalibSpec.complete`) for
these models, ``reduction=16`` (D' = C // (3 * 16) with the default scales; ResNet-50 28.03 M against SE's
28.09 M) unless the spec sets ``reduction`` (docs/spec.md, section 1), and records it in ``model.recalib_spec``.
The CIFAR models keep the text's D' = D/L (``reduction=1``, Section 4.1).

Deviations from the papers: the bottleneck's stride is in the 3x3 convolution ("ResNet v1.5", torchvision),
not in the first 1x1 (v1, the papers); ``stride_in_1x1=True`` builds v1. Parameters are identical, MACs
differ: ResNet-50 4.09G (v1.5) against 3.86G (v1), the figure the MS-SAR paper quotes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._common import RecalibSlot, ZooModel, feature_size, init_backbone

__all__ = ["ImageNetResNetConfig", "ImageNetResNet", "BasicBlock", "Bottleneck"]

@dataclass(frozen=True)
class ImageNetResNetConfig:
    """``block`` is ``"basic"`` or ``"bottleneck"``; ``groups``/``width_per_group`` give ResNeXt."""

    layers: tuple[int, int, int, int] = (2, 2, 2, 2)
    block: str = "basic"
    groups: int = 1
    width_per_group: int = 64
    num_classes: int = 1000
    in_chans: int = 3
    stride_in_1x1: bool = False
    zero_init_residual: bool = False
    img_size: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {self.block!r}")
        if len(self.layers) != 4 or any(n < 1 for n in self.layers):
            raise ValueError(f"layers must give 4 positive block counts, got {self.layers!r}")
        if self.block == "basic" and (self.groups != 1 or self.width_per_group != 64):
            raise ValueError("basic blocks support only groups=1 and width_per_group=64 (as torchvision)")


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN-[recalib] + shortcut, then ReLU."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, slot: RecalibSlot,
                 cfg: ImageNetResNetConfig, feat_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.recalib = slot.make(planes, feat_size=feat_size)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.recalib(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU-conv3x3(groups)-BN-ReLU-conv1x1-BN-[recalib] + shortcut, then ReLU."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, slot: RecalibSlot,
                 cfg: ImageNetResNetConfig, feat_size: tuple[int, int] | None = None) -> None:
        super().__init__()
        width = int(planes * (cfg.width_per_group / 64.0)) * cfg.groups
        s1, s3 = (stride, 1) if cfg.stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, width, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=s3, padding=1, groups=cfg.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.recalib = slot.make(planes * self.expansion, feat_size=feat_size)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.recalib(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


class ImageNetResNet(ZooModel):
    """ResNet-18/34/50/101 and ResNeXt-50 (32x4d) for 224x224 images; see the module docstring."""

    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, cfg: ImageNetResNetConfig, slot: RecalibSlot | None = None) -> None:
        super().__init__()
        slot = slot or RecalibSlot(None)
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        block: type[BasicBlock] | type[Bottleneck] = BasicBlock if cfg.block == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(cfg.in_chans, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        self.feature_info = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), cfg.layers)):
            stride = 1 if i == 0 else 2
            reduction = 4 * 2**i
            size = feature_size(cfg.img_size, reduction)
            blocks = []
            for j in range(n):
                downsample = None
                if j == 0 and (stride != 1 or inplanes != planes * block.expansion):
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                blocks.append(block(inplanes, planes, stride if j == 0 else 1, downsample, slot, cfg, size))
                inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append({"num_chs": inplanes, "reduction": reduction, "module": f"layer{i + 1}"})
        self.num_features = inplanes
        self.fc: nn.Module = nn.Linear(inplanes, cfg.num_classes) if cfg.num_classes else nn.Identity()
        init_backbone(self)
        if cfg.zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # N, 64, H/4, W/4
        x = self.layer2(self.layer1(x))
        return self.layer4(self.layer3(x))  # N, C, H/32, W/32
