"""The operator registry: a name for every operator class.

An operator *with its arguments* is a :class:`recalib.modules.spec.RecalibSpec`; :func:`recalib.build_recalib`
builds one (``modules/spec.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from .._names import unknown_name

_REGISTRY: dict[str, type[nn.Module]] = {}
_ALIASES = {"identity": "none"}


def register_recalib(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator adding an operator to the registry under ``name``.

    The class's first constructor argument must be ``channels``; it must provide ``gate(x)`` and
    ``forward(x)``. Registered operators are picked up by the registry-wide tests automatically.
    """

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        params = list(inspect.signature(cls.__init__).parameters)
        if len(params) < 2 or params[1] != "channels":
            raise TypeError(f"{cls.__name__}: the first constructor argument must be 'channels', got {params[1:2]}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"recalib operator {name!r} is already registered to {_REGISTRY[name].__name__}")
        _REGISTRY[name] = cls
        return cls

    return deco


def list_recalibs() -> list[str]:
    """Names accepted by :func:`build_recalib` (``"none"`` is the identity)."""
    return sorted(_REGISTRY)


def get_recalib_class(name: str) -> type[nn.Module]:
    """The class registered under ``name``; ``ValueError`` listing the valid names otherwise."""
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise unknown_name("recalibration operator", name, list_recalibs())
    return _REGISTRY[key]
