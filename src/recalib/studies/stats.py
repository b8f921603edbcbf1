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

# Two-sided 95% quantiles t_{0.975, dof} for dof 1..30 (standard tables; checked against scipy in the tests).
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)
_Z975 = 1.959963984540054


def t_quantile(dof: int, p: float = 0.975) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (scipy when installed).

    Without scipy only ``p = 0.975`` is available: a table for dof <= 30 and, beyond, the Cornish-Fisher
    expansion around the normal quantile (error < 1e-5 for dof > 30).
    """
    if dof < 1:
        raise ValueError(f"t_quantile needs at least 1 degree of freedom, got {dof}")
    try:
        from scipy import stats
    except ImportError:
        if p != 0.975:
            raise ValueError("without scipy only the 0.975 quantile is available") from None
        if dof <= len(_T975):
            return _T975[dof - 1]
        z, v = _Z975, float(dof)
        return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
                + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))
    return float(stats.t.ppf(p, dof))


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
