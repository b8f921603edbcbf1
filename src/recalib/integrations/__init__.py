"""Adapters that put recalib's operators into other libraries' models.

* :mod:`recalib.integrations.timm`: ``attn_layer(name, **kwargs)``, a factory timm's models accept wherever they
  take an attention layer: ``block_args=dict(attn_layer=...)`` (ResNet family) or ``se_layer=...``
  (EfficientNet, MobileNet, MixNet, ... families); see docs/integrations.md. Building timm models needs the
  optional extra ``recalib[timm]``; importing this package does not import timm.

The submodules load on first access, so ``recalib.integrations.timm.attn_layer("mssar")`` works after a plain
``import recalib``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["timm"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
