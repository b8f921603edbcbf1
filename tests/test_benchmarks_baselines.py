"""The benchmark baselines compute the same function as our operators, with the same parameters, so that the
speed comparison in ``benchmarks/bench_ops.py`` is fair."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from recalib.modules import MSSAR, SpatialGroupEnhance

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines.py"
_spec = importlib.util.spec_from_file_location("recalib_bench_baselines", _PATH)
assert _spec is not None and _spec.loader is not None
baselines = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = baselines
_spec.loader.exec_module(baselines)

# the benchmark's spatial sizes (CIFAR 32/16/8, ImageNet 56/28/14/7) at small N and C
SIZES = [32, 16, 8, 56, 28, 14, 7]


@pytest.mark.parametrize("baseline", ["ObviousMSSAR", "SeparableMSSAR", "MembershipMSSAR"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("h", SIZES)
def test_obvious_mssar_is_our_mssar(h: int, training: bool, baseline: str) -> None:
    ours = MSSAR(6).double().train(training)
    with torch.no_grad():
        for bn in ours.bn:
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    obvious = getattr(baselines, baseline)(ours)
    assert {id(p) for p in obvious.parameters()} == {id(p) for p in ours.parameters()}
    x = torch.randn(3, 6, h, h, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 6, h, h, dtype=torch.float64)
    state = {k: v.clone() for k, v in ours.state_dict().items()}
    out_ours = ours(x)
    (gx_ours,) = torch.autograd.grad(out_ours, x, g)
    ours.load_state_dict(state)
    out_obv = obvious(x)
    (gx_obv,) = torch.autograd.grad(out_obv, x, g)
    torch.testing.assert_close(out_obv, out_ours, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(gx_obv, gx_ours, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("shape", [(2, 64, 8, 8), (3, 32, 7, 5), (2, 16, 14, 14)], ids=lambda s: "x".join(map(str, s)))
def test_reference_sge_is_our_sge(shape: tuple[int, ...]) -> None:
    ours = SpatialGroupEnhance(shape[1], groups=8).double()
    with torch.no_grad():
        ours.weight.normal_()
        ours.bias.normal_()
    ref = baselines.ReferenceSGE(ours)
    assert {id(p) for p in ref.parameters()} == {id(p) for p in ours.parameters()}
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    g = torch.randn(shape, dtype=torch.float64)
    out_ours, out_ref = ours(x), ref(x)
    torch.testing.assert_close(out_ref, out_ours)
    torch.testing.assert_close(torch.autograd.grad(out_ref, x, g)[0], torch.autograd.grad(out_ours, x, g)[0], rtol=1e-6, atol=1e-6)


def test_reference_sge_view_fails_on_channels_last_ours_is_correct() -> None:
    ours = SpatialGroupEnhance(32, groups=8)
    with torch.no_grad():
        ours.weight.normal_()
    x = torch.randn(2, 32, 6, 7)
    xc = x.contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="view"):
        baselines.ReferenceSGE(ours)(xc)
    torch.testing.assert_close(ours(xc), baselines.ReferenceSGE(ours)(x))
