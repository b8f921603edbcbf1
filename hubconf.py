"""torch.hub entry points for recalib's model zoo.

From the root of a checkout (or with its path instead of ``"."``)::

    import torch

    model = torch.hub.load(".", "resnet56", recalib="mssar", source="local")
    model = torch.hub.load(".", "resnet20", recalib="se", pretrained=True, source="local")  # Fashion-MNIST weights

Every entry point forwards its keyword arguments to :func:`recalib.create_model` (``num_classes``,
``in_chans``, ``recalib``, ``recalib_args``, ``pretrained``, ``features_only`` and the model's own arguments);
with ``pretrained``, ``in_chans`` and ``num_classes`` default to the weights'. The entry points
are the names of ``recalib.list_models()``; ``torch.hub.list`` and ``torch.hub.help`` read GitHub repositories
only.

The checkout's own ``src/`` is always the code that runs: a ``recalib`` installed elsewhere, or already
imported from elsewhere, is set aside (removed from ``sys.modules``, with a warning when it was imported),
so ``source="local"`` never mixes the checkout's hub file with another copy's models.
"""

from __future__ import annotations

import os as _os
import sys as _sys
import warnings as _warnings
from typing import TYPE_CHECKING

# Only the entry points below are public callables here: torch.hub lists every public callable.
if TYPE_CHECKING:
    from typing import Any

    from recalib.models import ZooModel

dependencies = ["torch"]

_SRC = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "src")


def _import_checkout() -> None:
    """Import ``recalib`` from this checkout's ``src/``, setting aside any other copy."""
    mine = _os.path.join(_SRC, "recalib")
    loaded = _sys.modules.get("recalib")
    if loaded is not None:
        where = _os.path.dirname(_os.path.abspath(getattr(loaded, "__file__", None) or ""))
        if where == mine:
            return
        _warnings.warn(f"torch.hub: using recalib from {mine}, not the copy already imported from {where}",
                       stacklevel=3)
        for name in [m for m in _sys.modules if m == "recalib" or m.startswith("recalib.")]:
            del _sys.modules[name]
    _sys.path.insert(0, _SRC)
    try:
        import recalib  # noqa: F401  (submodules are found through the package's own __path__ from here on)
    finally:
        _sys.path.remove(_SRC)


_import_checkout()
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
