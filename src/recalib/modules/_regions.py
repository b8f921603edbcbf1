"""Geometry of MS-SAR's coordinate sets: the regional partition and the sliding windows.

Everything here is computed once per (H, W, scales) in plain Python (cached) and handed to the operator
as small index/weight tensors; no operator loops over positions or cells at run time.

Regional rule (SPEC section 1): along an axis of length n, position i is in band ``i * K // n`` of scale K.
Bands are contiguous; when K > n some are empty and never used, so only the ``min(K, n)`` non-empty bands
exist as cells. The *refinement* of several scales is the partition of an axis into the distinct tuples
``(band_K1(i), band_K2(i), ...)``: every band of every scale is a union of refinement bands, so the
operator pools once at the refinement and derives every scale exactly from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["AxisPartition", "axis_partition", "sliding_bounds"]


@dataclass(frozen=True)
class AxisPartition:
    """The regional partition of one axis (length ``n``) for a set of scales.

    Attributes:
        n: axis length.
        ref_of_pos: refinement band of each position, length n.
        ref_sizes: number of positions in each refinement band.
        uniform: all refinement bands have the same size (then pooling is a plain strided average).
        scale_of_ref: per scale, the compact (non-empty) band index of each refinement band.
        scale_sizes: per scale, the number of positions in each of its non-empty bands.
    """

    n: int
    ref_of_pos: tuple[int, ...]
    ref_sizes: tuple[int, ...]
    uniform: bool
    scale_of_ref: tuple[tuple[int, ...], ...]
    scale_sizes: tuple[tuple[int, ...], ...]

    @property
    def num_ref(self) -> int:
        return len(self.ref_sizes)

    def mean_weights(self, scale_index: int) -> list[list[float]]:
        """Matrix (bands of the scale x refinement bands) turning refinement means into the scale's means."""
        sizes = self.scale_sizes[scale_index]
        rows = [[0.0] * self.num_ref for _ in sizes]
        for r, b in enumerate(self.scale_of_ref[scale_index]):
            rows[b][r] = self.ref_sizes[r] / sizes[b]
        return rows

    def ref_mean_weights(self) -> list[list[float]]:
        """Matrix (refinement bands x positions) averaging positions into refinement bands."""
        rows = [[0.0] * self.n for _ in self.ref_sizes]
        for i, r in enumerate(self.ref_of_pos):
            rows[r][i] = 1.0 / self.ref_sizes[r]
        return rows


_PARTITIONS: dict[tuple[int, tuple[int, ...]], AxisPartition] = {}


def axis_partition(n: int, scales: tuple[int, ...]) -> AxisPartition:
    """The regional partition of an axis of length ``n`` for ``scales`` (see the module docstring)."""
    key = (n, scales)
    if key not in _PARTITIONS:  # a plain dict, not lru_cache: torch.compile traces through it silently
        _PARTITIONS[key] = _axis_partition(n, scales)
    return _PARTITIONS[key]


def _axis_partition(n: int, scales: tuple[int, ...]) -> AxisPartition:
    if n <= 0:
        raise ValueError(f"MSSAR: feature maps must have positive size, got an axis of length {n}")
    bands = [tuple(i * k // n for i in range(n)) for k in scales]  # per scale, band id of each position
    keys = list(zip(*bands))  # per position, its tuple of band ids (non-decreasing along the axis)
    ref_ids: dict[tuple[int, ...], int] = {}
    ref_of_pos = tuple(ref_ids.setdefault(key, len(ref_ids)) for key in keys)
    ref_sizes = [0] * len(ref_ids)
    for r in ref_of_pos:
        ref_sizes[r] += 1
    scale_of_ref, scale_sizes = [], []
    for s in range(len(scales)):
        compact = {b: j for j, b in enumerate(sorted(set(bands[s])))}  # drop empty bands
        first_pos = {r: i for i, r in reversed(list(enumerate(ref_of_pos)))}
        scale_of_ref.append(tuple(compact[bands[s][first_pos[r]]] for r in range(len(ref_sizes))))
        sizes = [0] * len(compact)
        for i in range(n):
            sizes[compact[bands[s][i]]] += 1
        scale_sizes.append(tuple(sizes))
    return AxisPartition(
        n=n,
        ref_of_pos=ref_of_pos,
        ref_sizes=tuple(ref_sizes),
        uniform=len(set(ref_sizes)) == 1,
        scale_of_ref=tuple(scale_of_ref),
        scale_sizes=tuple(scale_sizes),
    )


def sliding_bounds(n: int, h: int, w: int, k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window bounds along an axis of length ``n`` for the sliding strategy on an h x w map at scale k.

    T = sqrt(h*w) / k and position i's window is {i' : |i - i'| <= T} clipped to the axis, i.e. the
    half-open range [lo_i, hi_i) with lo_i = max(0, i - t), hi_i = min(n, i + t + 1), t = floor(T).
    floor(sqrt(hw) / k) equals isqrt(hw) // k exactly, with no floating-point rounding.
    """
    t = math.isqrt(h * w) // k
    lo = tuple(max(0, i - t) for i in range(n))
    hi = tuple(min(n, i + t + 1) for i in range(n))
    return lo, hi
