"""Argument checks shared by the operators: every user error is a ValueError naming the bad value."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._names import suggestion


def positive_int(name: str, value: Any, owner: str) -> int:
    """Return ``value`` if it is a positive ``int`` (not a bool), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value}")
    return value


def choice(name: str, value: Any, choices: Sequence[str], owner: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        hint = suggestion(value, choices) if isinstance(value, str) else ""
        raise ValueError(f"{owner}: unknown {name} {value!r}; valid choices: {', '.join(map(repr, choices))}{hint}")
    return value


def scales(value: Any, owner: str) -> tuple[int, ...]:
    """Validate MS-SAR scales: a non-empty sequence of distinct positive ints."""
    if isinstance(value, (int, str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{owner}: scales must be a non-empty tuple of positive ints, got {value!r}")
    out = tuple(value)
    if not out:
        raise ValueError(f"{owner}: scales must not be empty; e.g. scales=(1, 2, 4)")
    for k in out:
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise ValueError(f"{owner}: every scale must be a positive int, got {k!r} in scales={out!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{owner}: scales must be distinct, got {out!r}")
    return out


def check_input(x: Any, channels: int, owner: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a 4-D tensor with ``channels`` channels."""
    if x.dim() != 4:
        raise ValueError(f"{owner}: expected a 4-D input N x C x H x W, got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{owner}: expected {channels} channels, got input of shape {tuple(x.shape)}")
