"""SE, GE and SGE against formulas and loop references (and SE against timm's SEModule)."""

from __future__ import annotations

import pytest
import torch
from _op_reference import (
    depthwise3x3_s2_loops,
    ge_theta_minus_loops,
    nearest_src,
    se_gate_formula,
    sge_gate_loops,
)

from recalib.modules import GatherExcite, SpatialGroupEnhance, SqueezeExcite

SHAPES = [(2, 32, 8, 8), (3, 32, 7, 5), (1, 32, 1, 1), (2, 32, 13, 2)]
ids = lambda s: "x".join(map(str, s))  # noqa: E731


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
@pytest.mark.parametrize("reduction", [16, 4, 64])
def test_se_formula(shape: tuple[int, ...], reduction: int) -> None:
    op = SqueezeExcite(shape[1], reduction=reduction).double()
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(op.gate(x), se_gate_formula(op, x))
    torch.testing.assert_close(op(x), x * se_gate_formula(op, x))
    c, r = shape[1], max(1, shape[1] // reduction)
    assert sum(p.numel() for p in op.parameters()) == 2 * c * r + r + c


def test_se_equals_timm_semodule() -> None:
    timm_se = pytest.importorskip("timm.layers.squeeze_excite")
    for c, r in [(64, 16), (48, 16), (20, 4)]:
        ours = SqueezeExcite(c, reduction=r)
        theirs = timm_se.SEModule(c, rd_channels=c // r)
        theirs.load_state_dict(ours.state_dict())  # same names and shapes: the same function
        x = torch.randn(3, c, 9, 7)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_ge_theta_minus_global_is_x_sigmoid_gap(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    op = GatherExcite(shape[1])
    torch.testing.assert_close(op(x), x * torch.sigmoid(x.mean((2, 3), keepdim=True)))
    assert sum(p.numel() for p in op.parameters()) == 0


@pytest.mark.parametrize("extent", [2, 4, 8])
@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (2, 4, 7, 11), (1, 4, 3, 3), (2, 4, 1, 1)], ids=ids)
def test_ge_theta_minus_extent_loops(extent: int, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, dtype=torch.float64)
    op = GatherExcite(shape[1], extent=extent)
    want = ge_theta_minus_loops(x, extent)
    torch.testing.assert_close(op.gate(x), want)
    torch.testing.assert_close(op(x), x * want)


def _bn_eval(y: torch.Tensor, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    s = lambda t: t.double()[None, :, None, None]  # noqa: E731
    return (y - s(bn.running_mean)) / torch.sqrt(s(bn.running_var) + bn.eps) * s(bn.weight) + s(bn.bias)


def _random_bn(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)


def _mlp_formula(op: GatherExcite, g: torch.Tensor) -> torch.Tensor:
    fc1, fc2 = op.mlp[1], op.mlp[3]
    v = g.clamp_min(0).permute(0, 2, 3, 1)  # ReLU after the gather; N, h, w, C
    v = (v @ fc1.weight.flatten(1).double().t() + fc1.bias.double()).clamp_min(0)
    v = v @ fc2.weight.flatten(1).double().t() + fc2.bias.double()
    return v.permute(0, 3, 1, 2)


@pytest.mark.parametrize("variant", ["theta", "theta+"])
@pytest.mark.parametrize("extent", [2, 4])
@pytest.mark.parametrize("shape", [(2, 8, 8, 8), (2, 8, 7, 5), (1, 8, 2, 3)], ids=ids)
def test_ge_theta_with_extent_loops(variant: str, extent: int, shape: tuple[int, ...]) -> None:
    op = GatherExcite(shape[1], extent=extent, variant=variant, reduction=4).double().eval()
    _random_bn(op)
    x = torch.randn(shape, dtype=torch.float64)
    convs = [m for m in op.gather if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in op.gather if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == {2: 1, 4: 2}[extent]
    g = x
    for i, (conv, bn) in enumerate(zip(convs, bns)):
        if i:
            g = g.clamp_min(0)
        g = _bn_eval(depthwise3x3_s2_loops(g, conv.weight), bn)
    if variant == "theta+":
        g = _mlp_formula(op, g)
    small = torch.sigmoid(g)
    n, c, h, w = shape
    want = torch.empty(n, c, h, w, dtype=torch.float64)
    for r in range(h):
        for q in range(w):
            want[:, :, r, q] = small[:, :, nearest_src(r, small.shape[2], h), nearest_src(q, small.shape[3], w)]
    torch.testing.assert_close(op.gate(x), want)
    c = shape[1]
    expected_params = len(convs) * 11 * c + (2 * c * (c // 4) + c // 4 + c if variant == "theta+" else 0)
    assert sum(p.numel() for p in op.parameters()) == expected_params


@pytest.mark.parametrize("variant", ["theta", "theta+"])
def test_ge_theta_global(variant: str) -> None:
    c, h, w = 8, 6, 5
    op = GatherExcite(c, variant=variant, feat_size=(h, w), reduction=2).double().eval()
    _random_bn(op)
    x = torch.randn(3, c, h, w, dtype=torch.float64)
    conv, bn = op.gather[0], op.gather[1]
    g = torch.einsum("nchw,chw->nc", x, conv.weight[:, 0].double())[:, :, None, None]  # kernel = feature size
    g = _bn_eval(g, bn)
    if variant == "theta+":
        g = _mlp_formula(op, g)
    torch.testing.assert_close(op(x), x * torch.sigmoid(g))
    with pytest.raises(ValueError, match="feat_size"):
        op(torch.randn(3, c, h + 1, w, dtype=torch.float64))


@pytest.mark.parametrize("groups", [1, 4, 32])
@pytest.mark.parametrize("shape", SHAPES, ids=ids)
def test_sge_formula(groups: int, shape: tuple[int, ...]) -> None:
    op = SpatialGroupEnhance(shape[1], groups=groups).double()
    with torch.no_grad():
        op.weight.normal_()
        op.bias.normal_()
    x = torch.randn(shape, dtype=torch.float64)
    want = sge_gate_loops(op, x)
    torch.testing.assert_close(op.gate(x), want)
    torch.testing.assert_close(op(x), x * want)
    assert torch.isfinite(op(x)).all()
    assert sum(p.numel() for p in op.parameters()) == 2 * groups


def test_sge_initial_gate_is_sigmoid_one() -> None:
    op = SpatialGroupEnhance(16, groups=4)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(op.gate(x), torch.full_like(x, torch.sigmoid(torch.tensor(1.0)).item()))


def test_sge_channels_last_correct() -> None:
    op = SpatialGroupEnhance(32, groups=8)
    with torch.no_grad():
        op.weight.normal_()
    x = torch.randn(2, 32, 6, 7)
    xc = x.contiguous(memory_format=torch.channels_last)
    out = op(xc)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, op(x))
    torch.testing.assert_close(out, x * sge_gate_loops(op, x).float(), rtol=1e-5, atol=1e-6)
