"""recalib: feature recalibration operators for convolutional networks.

The reference implementation of multi-scale spatially-asymmetric recalibration (MS-SAR;
Wang et al., "Multi-Scale Spatially-Asymmetric Recalibration for Image Classification",
ECCV 2018, arXiv:1804.00787) and of the operators it is measured against: squeeze-and-excitation,
gather-excite and spatial group-wise enhance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .modules import build_recalib, list_recalibs, register_recalib  # noqa: E402

if TYPE_CHECKING:  # the lazy re-exports of __getattr__, for type checkers and the API reference
    from . import integrations, pretrained
    from .models import create_model, list_models
    from .models.complexity import complexity

__all__ = [
    "__version__",
    "build_recalib",
    "list_recalibs",
    "register_recalib",
    "create_model",
    "list_models",
    "complexity",
    "integrations",
    "pretrained",
]


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import recalib` cheap and free of import cycles.
    if name in ("create_model", "list_models"):
        from . import models

        return getattr(models, name)
    if name == "complexity":
        from .models.complexity import complexity

        return complexity
    if name in ("integrations", "pretrained"):  # subpackages, imported on first access
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'recalib' has no attribute {name!r}")
