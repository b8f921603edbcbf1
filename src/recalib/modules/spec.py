"""The operator as one value: :class:`RecalibSpec` (a registered name and its keyword arguments).

Every door speaks it: ``build_recalib``, ``create_model`` (which records the complete value as
``model.recalib_spec``), the timm adapter, torch.hub, pretrained matching, ``recalib train --recalib`` and a
study's ``spec``. Text is parsed once, where it enters (:meth:`RecalibSpec.parse`); ``str(spec)`` writes it back,
and ``RecalibSpec.parse(str(spec)) == spec``.

The text form is a call with keyword arguments only, e.g. ``"mssar(scales=(1, 2), strategy='sliding')"``, parsed
with :mod:`ast` and :func:`ast.literal_eval` (nothing is ever evaluated as code); keys are written sorted, lists
as tuples. No operator is one value, :data:`NO_OPERATOR`, spelled ``None``, ``"none"`` (any case), ``"identity"``
or ``""`` (the empty text: an option left empty names no operator, as an option left out does).

Defaults that depend on where an operator sits are resolved by :meth:`RecalibSpec.complete`, before anything is
recorded, and the result names every constructor argument, so ``build_recalib(model.recalib_spec, C)`` builds the
operator the model put in a C-channel block:

* the channel count: the constructor's own rule, e.g. SGE's ``groups=None`` is :func:`recalib.modules.sge_groups`;
* the parameter budget, a named rule (:data:`BUDGETS`) chosen by the model family:
  ``"paper"`` keeps each operator's published default (MS-SAR's D' = D/L, ``reduction=1``: paper Section 3.5,
  used on CIFAR in Section 4.1); ``"se"`` gives every operator with a ``reduction`` argument SE's budget,
  ``reduction = 1 / rd_ratio`` (16 by default; MS-SAR's Table 5 budget on ImageNet). The ImageNet zoo and the
  timm adapter use ``"se"`` (the adapter with the ``rd_ratio`` timm passes, e.g. EfficientNet's), the CIFAR zoo
  ``"paper"``. An argument the user gives always wins.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from .registry import get_recalib_class

__all__ = [
    "BUDGETS",
    "NO_OPERATOR",
    "RecalibSpec",
    "SE_RD_RATIO",
    "build_recalib",
    "canonical_recalib_spec",
    "format_recalib_spec",
    "is_no_operator",
    "parse_keywords",
    "parse_recalib_spec",
]

#: The named budget rules of :meth:`RecalibSpec.complete` (see the module docstring).
BUDGETS = ("paper", "se")
#: SE's hidden-width ratio (Hu et al., r = 16), the ``"se"`` budget when no ``rd_ratio`` is given.
SE_RD_RATIO = 1 / 16
_NO_OPERATOR_NAMES = ("none", "identity")


def is_no_operator(value: object) -> bool:
    """True for the spellings of "no operator": ``None``, ``""``, ``"none"`` (any case, spaces), ``"identity"``."""
    if value is None:
        return True
    if isinstance(value, RecalibSpec):
        return value.is_none
    return isinstance(value, str) and value.strip().lower() in ("", *_NO_OPERATOR_NAMES)


def parse_keywords(text: str, what: str = "operator spec") -> tuple[str, dict[str, Any]]:
    """Split ``"name(k=v, ...)"`` into ``(name, kwargs)`` with literal values only; ``"name"`` gives ``(name, {})``."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse {what} {text!r}: {exc.msg}; expected e.g. \"mssar(scales=(1, 2))\"") from None
    if isinstance(tree, ast.Name):
        return tree.id, {}
    if isinstance(tree, ast.Constant) and tree.value is None:
        return "none", {}
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
        raise ValueError(f"{what} {text!r} must be a name or a call like \"se(reduction=8)\"")
    if tree.args:
        raise ValueError(f"{what} {text!r}: only keyword arguments are allowed, e.g. \"mssar(scales=(1, 2))\"")
    kwargs: dict[str, Any] = {}
    for kw in tree.keywords:
        if kw.arg is None:
            raise ValueError(f"{what} {text!r}: '**' unpacking is not allowed")
        try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            raise ValueError(
                f"{what} {text!r}: the value of {kw.arg!r} must be a literal (number, string, tuple, ...)"
            ) from None
    return tree.func.id, kwargs


def _as_literal(value: Any) -> Any:
    return tuple(_as_literal(v) for v in value) if isinstance(value, (list, tuple)) else value


def _constructor_args(cls: type[nn.Module]) -> dict[str, inspect.Parameter]:
    """The constructor's keyword arguments after ``channels``."""
    return {k: p for k, p in inspect.signature(cls.__init__).parameters.items()
            if k not in ("self", "channels")
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}


@dataclass(frozen=True)
class RecalibSpec:
    """A registered operator ``name`` with keyword ``args`` (sorted ``(key, value)`` pairs; lists become tuples).

    Build one with :meth:`parse` (text, ``None``, or a spec), or ``RecalibSpec("se", (("reduction", 8),))``. The
    constructor checks the name (aliases such as ``"identity"`` become ``"none"``) and the argument names.
    """

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        key = self.name.strip().lower() if isinstance(self.name, str) else self.name
        name = "none" if key in ("", *_NO_OPERATOR_NAMES) else self.name
        cls = get_recalib_class(name)  # ValueError listing the valid names
        args = tuple(sorted((k, _as_literal(v)) for k, v in dict(self.args).items()))
        if name == "none" and args:
            raise ValueError(f"operator 'none' takes no arguments, got {[k for k, _ in args]}")
        accepted = _constructor_args(cls)
        unknown = sorted(k for k, _ in args if k not in accepted)
        if unknown:
            raise ValueError(f"{name}: unknown argument(s) {', '.join(unknown)}; valid arguments: "
                             f"{', '.join(accepted) or '(none)'}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "args", args)

    @classmethod
    def parse(cls, value: str | RecalibSpec | None, args: Mapping[str, Any] | None = None) -> RecalibSpec:
        """The spec of ``value`` (text, ``None`` or a spec), with ``args`` added to (and overriding) its own.

        >>> str(RecalibSpec.parse("mssar(strategy='sliding', scales=[1, 2])"))
        "mssar(scales=(1, 2), strategy='sliding')"
        """
        if args is not None and not isinstance(args, Mapping):
            raise TypeError(f"operator arguments must be a dict of keyword arguments, got {type(args).__name__}")
        if isinstance(value, RecalibSpec):
            return value.with_args(args or {})
        if is_no_operator(value):
            name, kwargs = "none", dict[str, Any]()
        elif isinstance(value, str):
            name, kwargs = parse_keywords(value)
        else:
            raise TypeError(f"an operator spec is a string such as \"mssar(scales=(1, 2))\", None or a RecalibSpec; "
                            f"got {type(value).__name__}")
        return cls(name, tuple({**kwargs, **(args or {})}.items()))

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments as a new dict."""
        return dict(self.args)

    @property
    def is_none(self) -> bool:
        """True for "no operator" (the plain backbone)."""
        return self.name == "none"

    @property
    def operator_class(self) -> type[nn.Module]:
        """The registered class."""
        return get_recalib_class(self.name)

    def with_args(self, args: Mapping[str, Any]) -> RecalibSpec:
        """This spec with ``args`` added (overriding its own)."""
        return self if not args else RecalibSpec(self.name, tuple({**self.kwargs, **args}.items()))

    def complete(self, budget: str = "paper", *, rd_ratio: float | None = None) -> RecalibSpec:
        """Every constructor argument filled in: given ones, then the ``budget`` rule, then the defaults.

        ``budget`` is one of :data:`BUDGETS`; ``rd_ratio`` (the ``"se"`` budget's hidden-width ratio, default
        :data:`SE_RD_RATIO`) is what timm passes to its SE layers.

        >>> str(RecalibSpec.parse("mssar").complete("se"))
        "mssar(context_channels=None, reduction=16, scales=(1, 2, 4), strategy='regional')"
        """
        if budget not in BUDGETS:
            raise ValueError(f"unknown budget rule {budget!r}; valid rules: {', '.join(BUDGETS)}")
        params = _constructor_args(self.operator_class)
        full = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
        if budget == "se" and "reduction" in params:
            ratio = SE_RD_RATIO if rd_ratio is None else rd_ratio
            if not 0 < ratio <= 1:
                raise ValueError(f"rd_ratio must be in (0, 1], got {ratio!r}")
            full["reduction"] = max(1, round(1 / ratio))
        return RecalibSpec(self.name, tuple({**full, **self.kwargs}.items()))

    def build(self, channels: int, **placement: Any) -> nn.Module:
        """The operator for a ``channels``-channel feature map; ``placement`` (e.g. ``context_channels``) is added."""
        return self.operator_class(channels, **{**self.kwargs, **placement})

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v!r}" for k, v in self.args) + ")"


#: "No operator": the plain backbone.
NO_OPERATOR = RecalibSpec("none")


def parse_recalib_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name(k=v, ...)"`` into ``(name, kwargs)`` safely, without checking the name.

    >>> parse_recalib_spec("mssar(scales=(1, 2), strategy='sliding')")
    ('mssar', {'scales': (1, 2), 'strategy': 'sliding'})
    """
    return parse_keywords(spec)


def format_recalib_spec(name: str, kwargs: Mapping[str, Any]) -> str:
    """The textual form of ``name`` with ``kwargs``: keys sorted, lists written as tuples; no arguments, no call.

    >>> format_recalib_spec("mssar", {"strategy": "sliding", "scales": [1, 2]})
    "mssar(scales=(1, 2), strategy='sliding')"
    """
    return str(RecalibSpec(name, tuple(kwargs.items())))


def canonical_recalib_spec(spec: str | RecalibSpec | None, budget: str = "paper") -> str:
    """The text of the complete spec (:meth:`RecalibSpec.complete` under ``budget``); no operator -> ``"none"``.

    >>> canonical_recalib_spec("se") == canonical_recalib_spec("se(reduction=16)")
    True
    """
    return str(RecalibSpec.parse(spec).complete(budget))


def build_recalib(name: str | RecalibSpec | None, channels: int, **kwargs: Any) -> nn.Module:
    """Build a recalibration operator for a feature map with ``channels`` channels.

    ``name`` is a :class:`RecalibSpec`, a registered name (``"se"``, ``"ge"``, ``"sge"``, ``"mssar"``,
    ``"none"``), its textual form ``"mssar(scales=(1, 2), strategy='sliding')"``, or ``None`` (identity);
    keyword arguments given here override those of the spec. Unknown names, unknown or ill-typed arguments and
    impossible values raise ``ValueError`` naming the bad value and the valid choices.
    """
    return RecalibSpec.parse(name, kwargs).build(channels)
