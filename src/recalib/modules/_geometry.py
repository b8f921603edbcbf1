"""MS-SAR's coordinate sets, computed from a map's size with tensor operations.

* Regional (docs/spec.md, section 1): along an axis of length n, position i is in band ``i * K // n`` of scale
  K. When K > n the empty bands are never used, and renumbering the others 0, 1, ... is the same as using
  ``m = min(K, n)`` bands: position i is in band ``i * m // n``. A cell is one row band times one column band.
* Sliding: the window of position i is ``[i - t, i + t]`` clipped to the axis, ``t = floor(sqrt(H * W) / K)``.

Sizes may be ``torch.SymInt`` (export with dynamic height and width): nothing here turns them into Python numbers,
so an exported graph computes the geometry of whatever size it is given.
"""

from __future__ import annotations

import torch

__all__ = ["region_bands", "window_bounds"]


def region_bands(n: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """n x min(k, n), 1 where the position (row) lies in the band (column); ``like``'s dtype and device."""
    m = torch.sym_min(k, n)
    index = torch.arange(n, device=like.device).mul(m) // n  # n: the band of every position
    return (index[:, None] == torch.arange(m, device=like.device)).to(like.dtype)


def window_bounds(n: int, area: int, k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last position (int64, n) of the windows along an axis of length n; area = H * W."""
    a = torch.full((), area, dtype=torch.int64, device=device)
    t = a.float().sqrt().long()  # within 1 of the integer square root: two exact corrections
    t = t - (t * t > a).long()
    t = (t + ((t + 1) * (t + 1) <= a).long()) // k
    i = torch.arange(n, device=device)
    return (i - t).clamp(min=0), (i + t + 1).clamp(max=n)
