"""MS-SAR's coordinate sets as pure-Python integers (cached, bounded): which cell or window each position uses.

* Regional (docs/spec.md, section 1): along an axis of length n, position i is in band ``i * K // n`` of scale
  K. When K > n some bands are empty; they are never used, so the non-empty bands are renumbered 0, 1, ...
  and a scale has ``min(K, n)`` bands per axis. A cell is one row band times one column band.
* Sliding: the window of position i is ``[i - t, i + t]`` clipped to the axis, ``t = floor(sqrt(H * W) / K)``,
  computed exactly as ``isqrt(H * W) // K``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

__all__ = ["region_bands", "window_sizes"]

T = TypeVar("T")


def _cached(fn: Callable[..., T]) -> Callable[..., T]:
    """Memoise on the (int) arguments, at most 1024 entries. A plain dict rather than ``functools.lru_cache``:
    torch.compile traces through it without warning that it ignores the cache."""
    cache: dict[tuple[int, ...], T] = {}

    @functools.wraps(fn)
    def wrapper(*args: int) -> T:
        if args not in cache:
            if len(cache) >= 1024:
                cache.clear()
            cache[args] = fn(*args)
        return cache[args]

    return wrapper


@_cached
def region_bands(n: int, k: int) -> tuple[int, ...]:
    """The band of every position of an axis of length ``n`` at scale ``k``, empty bands skipped."""
    if n <= 0:
        raise ValueError(f"MSSAR: feature maps must have positive size, got an axis of length {n}")
    raw = [i * k // n for i in range(n)]  # non-decreasing
    renumber = {b: j for j, b in enumerate(sorted(set(raw)))}
    return tuple(renumber[b] for b in raw)


@_cached
def window_sizes(n: int, t: int) -> tuple[int, ...]:
    """Positions in the clipped window [i - t, i + t] of every i along an axis of length n."""
    return tuple(min(n, i + t + 1) - max(0, i - t) for i in range(n))
