"""The operator registry: names, the textual form used on command lines, and `build_recalib`.

The textual form is a call with keyword arguments only, e.g. ``"mssar(scales=(1, 2), strategy='sliding')"``.
It is parsed with :mod:`ast` and :func:`ast.literal_eval`; nothing is ever evaluated as code. This module owns
the form both ways: :func:`parse_recalib_spec` reads it, :func:`format_recalib_spec` writes it (what
``create_model`` records as ``model.recalib_spec``), and :func:`canonical_recalib_spec` writes it with every
constructor argument filled in, so that two spellings of one operator compare equal (pretrained weights are
matched this way).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Mapping
from typing import Any

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


def parse_recalib_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name(k=v, ...)"`` into ``(name, kwargs)`` safely; ``"name"`` gives ``(name, {})``.

    >>> parse_recalib_spec("mssar(scales=(1, 2), strategy='sliding')")
    ('mssar', {'scales': (1, 2), 'strategy': 'sliding'})
    """
    if not isinstance(spec, str):
        raise ValueError(f"operator spec must be a string, got {spec!r}")
    text = spec.strip()
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse operator spec {spec!r}: {exc.msg}; expected e.g. \"mssar(scales=(1, 2))\"") from None
    if isinstance(tree, ast.Name):
        return tree.id, {}
    if isinstance(tree, ast.Constant) and tree.value is None:
        return "none", {}
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
        raise ValueError(f"operator spec {spec!r} must be a name or a call like \"se(reduction=8)\"")
    if tree.args:
        raise ValueError(f"operator spec {spec!r}: only keyword arguments are allowed, e.g. \"mssar(scales=(1, 2))\"")
    kwargs: dict[str, Any] = {}
    for kw in tree.keywords:
        if kw.arg is None:
            raise ValueError(f"operator spec {spec!r}: '**' unpacking is not allowed")
        try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            raise ValueError(
                f"operator spec {spec!r}: the value of {kw.arg!r} must be a literal (number, string, tuple, ...)"
            ) from None
    return tree.func.id, kwargs


def _as_literal(value: Any) -> Any:
    return tuple(_as_literal(v) for v in value) if isinstance(value, (list, tuple)) else value


def format_recalib_spec(name: str, kwargs: Mapping[str, Any]) -> str:
    """The textual form of ``name`` with ``kwargs``: keys sorted, lists written as tuples; no arguments, no call.

    >>> format_recalib_spec("mssar", {"strategy": "sliding", "scales": [1, 2]})
    "mssar(scales=(1, 2), strategy='sliding')"
    """
    if not kwargs:
        return name
    return f"{name}(" + ", ".join(f"{k}={_as_literal(v)!r}" for k, v in sorted(kwargs.items())) + ")"


def canonical_recalib_spec(spec: str | None) -> str:
    """The textual form with every constructor argument (given or default); ``None`` and ``"none"`` -> ``"none"``.

    >>> canonical_recalib_spec("se") == canonical_recalib_spec("se(reduction=16)")
    True
    """
    if spec is None or spec.strip().lower() in ("", "none"):
        return "none"
    name, kwargs = parse_recalib_spec(spec)
    cls = get_recalib_class(name)
    name = _ALIASES.get(name, name)
    if name == "none":
        return "none"
    full: dict[str, Any] = {
        k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
        if k not in ("self", "channels") and p.default is not inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    full.update(kwargs)
    return format_recalib_spec(name, full)


def build_recalib(name: str | None, channels: int, **kwargs: Any) -> nn.Module:
    """Build a recalibration operator for a feature map with ``channels`` channels.

    ``name`` is a registered name (``"se"``, ``"ge"``, ``"sge"``, ``"mssar"``, ``"none"``), ``None``
    (identity), or the textual form ``"mssar(scales=(1, 2), strategy='sliding')"``; keyword arguments
    given here override those in the text. Unknown names, unknown or ill-typed arguments and impossible
    values raise ``ValueError`` naming the bad value and the valid choices.
    """
    if name is None:
        name = "none"
    base, spec_kwargs = parse_recalib_spec(name)
    cls = get_recalib_class(base)
    merged = {**spec_kwargs, **kwargs}
    sig = inspect.signature(cls.__init__)
    accepted = [p for p in sig.parameters if p not in ("self", "channels")]
    unknown = sorted(set(merged) - set(accepted))
    if unknown:
        raise ValueError(
            f"{base}: unknown argument(s) {', '.join(unknown)}; valid arguments: {', '.join(accepted) or '(none)'}"
        )
    return cls(channels, **merged)
