"""Recalibration operators with one interface: ``op(channels, ...)``, ``op.gate(x)``, ``op(x) = x * gate``.

| name    | class                 | paper |
|---------|-----------------------|-------|
| mssar   | :class:`MSSAR`        | Wang et al., ECCV 2018 (arXiv:1804.00787) |
| se      | :class:`SqueezeExcite` | Hu et al., CVPR 2018 (arXiv:1709.01507) |
| ge      | :class:`GatherExcite` | Hu et al., NeurIPS 2018 (arXiv:1810.12348) |
| sge     | :class:`SpatialGroupEnhance` | Li et al., 2019 (arXiv:1905.09646) |
| none    | :class:`Identity`     | the plain backbone |

An operator with its arguments is one value, :class:`RecalibSpec` (``modules/spec.py``); :func:`build_recalib`
builds it for a channel count.
"""

from .ge import GatherExcite
from .identity import Identity
from .mssar import MSSAR
from .registry import get_recalib_class, list_recalibs, register_recalib
from .se import SqueezeExcite
from .sge import SpatialGroupEnhance, sge_groups
from .spec import (
    BUDGETS,
    NO_OPERATOR,
    RecalibSpec,
    build_recalib,
    canonical_recalib_spec,
    format_recalib_spec,
    is_no_operator,
    parse_recalib_spec,
)

__all__ = [
    "BUDGETS",
    "MSSAR",
    "NO_OPERATOR",
    "RecalibSpec",
    "is_no_operator",
    "GatherExcite",
    "Identity",
    "SpatialGroupEnhance",
    "sge_groups",
    "SqueezeExcite",
    "build_recalib",
    "canonical_recalib_spec",
    "format_recalib_spec",
    "get_recalib_class",
    "list_recalibs",
    "parse_recalib_spec",
    "register_recalib",
]
