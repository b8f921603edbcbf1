"""torch.hub entry points for recalib's model zoo.

    model = torch.hub.load("/path/to/recalib", "resnet56", recalib="mssar", source="local")
    torch.hub.list("/path/to/recalib", source="local")

Every entry point forwards its keyword arguments to :func:`recalib.create_model` (``num_classes``,
``in_chans``, ``recalib``, ``recalib_args``, ``pretrained`` and the model's own arguments). The checkout's
``src/`` is used when ``recalib`` is not importable (a plain clone, not installed).
"""

from __future__ import annotations

import os as _os
import sys as _sys
from typing import TYPE_CHECKING

# Only the entry points below are public callables here: torch.hub lists every public callable.
if TYPE_CHECKING:
    from typing import Any

    from recalib.models import ZooModel

dependencies = ["torch"]

try:
    import recalib as _recalib  # noqa: F401
except ImportError:  # a plain checkout: use its sources
    _sys.path.insert(0, _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "src"))

from recalib.models import create_model as _create_model  # noqa: E402


def _create(name: str, kwargs: dict[str, Any]) -> ZooModel:
    return _create_model(name, **kwargs)


def resnet20(**kwargs: Any) -> ZooModel:
    """CIFAR ResNet-20 (He et al. 2016), option-A shortcuts; kwargs go to recalib.create_model."""
    return _create("resnet20", kwargs)


def resnet32(**kwargs: Any) -> ZooModel:
    """CIFAR ResNet-32 (He et al. 2016), option-A shortcuts; kwargs go to recalib.create_model."""
    return _create("resnet32", kwargs)


def resnet44(**kwargs: Any) -> ZooModel:
    """CIFAR ResNet-44 (He et al. 2016), option-A shortcuts; kwargs go to recalib.create_model."""
    return _create("resnet44", kwargs)


def resnet56(**kwargs: Any) -> ZooModel:
    """CIFAR ResNet-56 (He et al. 2016), option-A shortcuts; kwargs go to recalib.create_model."""
    return _create("resnet56", kwargs)


def resnet110(**kwargs: Any) -> ZooModel:
    """CIFAR ResNet-110 (He et al. 2016), option-A shortcuts; kwargs go to recalib.create_model."""
    return _create("resnet110", kwargs)


def densenet_bc_100(**kwargs: Any) -> ZooModel:
    """DenseNet-BC-100, k = 12 (Huang et al. 2017); kwargs go to recalib.create_model (multi_stage=True)."""
    return _create("densenet_bc_100", kwargs)


def densenet_bc_190(**kwargs: Any) -> ZooModel:
    """DenseNet-BC-190, k = 40 (Huang et al. 2017); kwargs go to recalib.create_model (multi_stage=True)."""
    return _create("densenet_bc_190", kwargs)


def resnet18(**kwargs: Any) -> ZooModel:
    """ImageNet ResNet-18, torchvision layout; kwargs go to recalib.create_model."""
    return _create("resnet18", kwargs)


def resnet34(**kwargs: Any) -> ZooModel:
    """ImageNet ResNet-34, torchvision layout; kwargs go to recalib.create_model."""
    return _create("resnet34", kwargs)


def resnet50(**kwargs: Any) -> ZooModel:
    """ImageNet ResNet-50, torchvision layout (v1.5); kwargs go to recalib.create_model."""
    return _create("resnet50", kwargs)


def resnet101(**kwargs: Any) -> ZooModel:
    """ImageNet ResNet-101, torchvision layout (v1.5); kwargs go to recalib.create_model."""
    return _create("resnet101", kwargs)


def resnext50_32x4d(**kwargs: Any) -> ZooModel:
    """ImageNet ResNeXt-50 (32x4d, Xie et al. 2017), torchvision layout; kwargs go to recalib.create_model."""
    return _create("resnext50_32x4d", kwargs)
