"""Student's t quantile of the report: one implementation, the same bits with or without scipy, checked against
closed forms, the normal limit and (where installed) scipy."""

from __future__ import annotations

import builtins
import math
import statistics
import sys

import pytest

from recalib.studies import t_quantile

PROBABILITIES = (0.975, 0.95, 0.9, 0.995, 0.6, 0.999, 0.025, 0.5)
DOFS = (*range(1, 41), 60, 120)


def _all_quantiles() -> dict[tuple[int, float], float]:
    return {(dof, p): t_quantile(dof, p) for dof in DOFS for p in PROBABILITIES}


def test_the_same_bits_with_and_without_scipy(monkeypatch):
    with_scipy = _all_quantiles()
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError("no scipy")
        return real_import(name, *args, **kwargs)

    for name in [m for m in sys.modules if m == "scipy" or m.startswith("scipy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_scipy)
    assert _all_quantiles() == with_scipy
    monkeypatch.undo()
    pytest.importorskip("scipy")  # without scipy installed, both sides above ran without it
    from scipy import stats

    for (dof, p), value in with_scipy.items():
        assert value == pytest.approx(float(stats.t.ppf(p, dof)), rel=1e-12, abs=1e-15), (dof, p)


@pytest.mark.parametrize("p", PROBABILITIES)
def test_closed_forms_of_one_two_and_four_degrees_of_freedom(p):
    # dof 1 is the Cauchy distribution; dof 2 and 4 have closed-form quantiles (Hill 1970; Shaw 2006).
    assert t_quantile(1, p) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-13, abs=1e-15)
    assert t_quantile(2, p) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-13, abs=1e-15)
    alpha = 4 * p * (1 - p)
    q = math.cos(math.acos(math.sqrt(alpha)) / 3) / math.sqrt(alpha)
    assert t_quantile(4, p) == pytest.approx(math.copysign(2 * math.sqrt(q - 1), p - 0.5), rel=1e-12, abs=1e-15)


def test_symmetry_monotonicity_and_the_normal_limit():
    for dof in (1, 2, 7, 30):
        assert t_quantile(dof, 0.2) == -t_quantile(dof, 0.8)
        assert t_quantile(dof, 0.5) == 0.0
    values = [t_quantile(dof) for dof in range(1, 200)]
    assert all(a > b for a, b in zip(values, values[1:]))
    z = statistics.NormalDist().inv_cdf(0.975)
    assert t_quantile(20000) == pytest.approx(z, abs=2e-4)  # t_{0.975, v} = z + (z^3 + z) / (4 v) + O(v^-2)
    assert t_quantile(20000) - z == pytest.approx((z**3 + z) / (4 * 20000), rel=1e-3)


@pytest.mark.parametrize(("dof", "p", "error"), [(0, 0.975, ValueError), (3, 1.0, ValueError),
                                                 (3, 0.0, ValueError), (2.5, 0.975, TypeError)])
def test_bad_arguments(dof, p, error):
    with pytest.raises(error):
        t_quantile(dof, p)
