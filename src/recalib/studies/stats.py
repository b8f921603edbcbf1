"""The statistics of a study report: mean ± sample std over seeds and paired differences with 95% intervals.

A comparison is *paired*: for each seed (same data order, subset and initialisation stream), the operator's
error minus the baseline's; then the mean difference and a 95% confidence interval from Student's t
distribution with n - 1 degrees of freedom (n = 1 gives no interval). An interval that excludes 0 is a
difference shown at this n ("higher" / "lower"); one that contains 0 is "not distinguishable at n = N", whatever
the signs of the per-seed differences (which the report also counts: consistent signs over three seeds are
suggestive, not shown).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["PairedDifference", "mean_std", "paired_difference", "t_quantile"]

def _central_probability(theta: float, dof: int) -> float:
    """P(|T| < sqrt(dof) tan(theta)) for Student's t with ``dof`` degrees of freedom, in closed form.

    Abramowitz & Stegun 26.7.3 (odd ``dof``) and 26.7.4 (even ``dof``): a finite sum of powers of cos(theta).
    """
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if dof % 2 == 1:  # 2/pi (theta + sin cos (1 + 2/3 cos^2 + (2 4)/(3 5) cos^4 + ... + cos^(dof-3) term))
        term, total = 1.0, (1.0 if dof > 1 else 0.0)
        for k in range(1, (dof - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + s * math.cos(theta) * total)
    term, total = 1.0, 1.0  # sin (1 + 1/2 cos^2 + (1 3)/(2 4) cos^4 + ... + cos^(dof-2) term)
    for k in range(1, dof // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return s * total


def t_quantile(dof: int, p: float = 0.975) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (one implementation, no scipy).

    The closed-form distribution function of integer degrees of freedom (:func:`_central_probability`) is
    inverted by bisection on theta = atan(t / sqrt(dof)) down to adjacent floating-point numbers: agrees with
    ``scipy.stats.t.ppf`` to about 1e-14 (relative), and gives the same bits on every machine, with or without
    scipy installed, so a report regenerates identically. Cost grows linearly with ``dof``.
    """
    if isinstance(dof, bool) or not isinstance(dof, int):
        raise TypeError(f"t_quantile needs an integer number of degrees of freedom, got {dof!r}")
    if dof < 1:
        raise ValueError(f"t_quantile needs at least 1 degree of freedom, got {dof}")
    if not 0 < p < 1:
        raise ValueError(f"t_quantile needs a probability 0 < p < 1, got {p}")
    if p < 0.5:
        return -t_quantile(dof, 1 - p)
    target = 2 * p - 1  # P(|T| < t)
    low, high = 0.0, math.pi / 2
    while True:
        mid = (low + high) / 2
        if mid in (low, high):
            break
        if _central_probability(mid, dof) < target:
            low = mid
        else:
            high = mid
    return math.sqrt(dof) * math.tan(low)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; ``None`` for a single value)."""
    if not values:
        raise ValueError("mean_std of no values")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-seed differences a - b and its 95% CI (``None`` with fewer than two pairs); ``diffs`` are the
    per-seed differences in the order of ``seeds``."""

    mean: float
    n: int
    low: float | None
    high: float | None
    seeds: tuple[int, ...]
    diffs: tuple[float, ...] = ()

    @property
    def verdict(self) -> str:
        """``lower`` / ``higher`` when the 95% interval excludes 0; otherwise the difference is not shown."""
        if self.low is None or self.high is None:
            return "n/a (one seed)"
        if self.high < 0:
            return "lower"
        if self.low > 0:
            return "higher"
        return f"not distinguishable at n = {self.n}"

    @property
    def higher_on(self) -> int:
        """On how many seeds a had more errors than b."""
        return sum(d > 0 for d in self.diffs)

    @property
    def lower_on(self) -> int:
        """On how many seeds a had fewer errors than b."""
        return sum(d < 0 for d in self.diffs)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> PairedDifference | None:
    """Paired difference a[seed] - b[seed] over the seeds both have; ``None`` when they share none."""
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    mean, sd = mean_std(diffs)
    if sd is None:
        return PairedDifference(mean, 1, None, None, seeds, tuple(diffs))
    half = t_quantile(len(diffs) - 1) * sd / math.sqrt(len(diffs))
    return PairedDifference(mean, len(diffs), mean - half, mean + half, seeds, tuple(diffs))
