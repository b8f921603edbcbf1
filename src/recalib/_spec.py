"""The text form of "no operator": ``"none"`` (any case, surrounding spaces) or ``""`` mean ``None``.

The one place that turns an operator spec string into ``None`` for the plain backbone, so that
``recalib train --recalib none``, a study's ``spec = "none"`` and ``create_model(recalib=None)`` agree.
"""

from __future__ import annotations

__all__ = ["spec_or_none"]


def spec_or_none(spec: str | None) -> str | None:
    """``None`` when ``spec`` names no operator (``None``, ``""``, ``"none"``, ``" None "``), else ``spec``."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    return spec
