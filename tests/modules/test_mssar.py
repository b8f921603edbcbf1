"""MS-SAR against loop references, locality, special cases and the parameter formula."""

from __future__ import annotations

import math

import pytest
import torch
from _op_reference import mssar_gate_loops

from recalib.modules import MSSAR, build_recalib

SHAPES = [
    (2, 8, 16, 20),  # the finest cells tile the map in blocks >= 4 wide: the block formulation
    (2, 8, 8, 8),  # divisible, but blocks 2 wide: the membership product
    (3, 8, 7, 7),  # 7 x 7 with K = 4: unequal cells
    (2, 8, 14, 9),  # non-square, not divisible
    (2, 8, 3, 2),  # K > H and K > W: empty bands
    (4, 8, 1, 1),  # 1 x 1 maps
    (1, 8, 5, 6),  # batch 1
]


def _randomise_bn(op: MSSAR) -> None:
    for bn in op.bn:
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("strategy", ["regional", "sliding"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("training", [False, True])
def test_gate_matches_loop_reference(strategy: str, shape: tuple[int, ...], training: bool) -> None:
    n, c, h, w = shape
    op = MSSAR(c, scales=(1, 2, 4), strategy=strategy).double()
    _randomise_bn(op)
    op.train(training)
    x = torch.randn(shape, dtype=torch.float64)
    if training and n == 1 and strategy == "regional":  # scale 1 gives one vector per sample: batch statistics of 1 vector are undefined
        with pytest.raises(ValueError, match="more than 1 value"):
            op.gate(x)
        return
    got = op.gate(x)
    want = mssar_gate_loops(op, x)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(op(x), x * want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("scales", [(3,), (2, 3), (4, 3, 1), (5, 2)])
@pytest.mark.parametrize("shape", [(2, 6, 7, 10), (2, 6, 12, 12)], ids=lambda s: "x".join(map(str, s)))
def test_non_nested_scales_match_reference(scales: tuple[int, ...], shape: tuple[int, ...]) -> None:
    op = MSSAR(shape[1], scales=scales).double().eval()
    _randomise_bn(op)
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(op.gate(x), mssar_gate_loops(op, x), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("strategy", ["regional", "sliding"])
@pytest.mark.parametrize("shape", [(2, 8, 8, 8), (2, 8, 16, 12), (2, 8, 7, 5), (2, 8, 12, 16)], ids=lambda s: "x".join(map(str, s)))
def test_channels_last_input_matches_loop_reference(shape: tuple[int, ...], strategy: str) -> None:
    op = MSSAR(shape[1], strategy=strategy).double().train()
    x = torch.randn(shape, dtype=torch.float64)
    want = mssar_gate_loops(op, x)
    xc = x.contiguous(memory_format=torch.channels_last)
    out = op(xc)
    torch.testing.assert_close(op.gate(xc), want, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(out, x * want, rtol=1e-9, atol=1e-10)
    assert out.is_contiguous(memory_format=torch.channels_last)


def _affected(op: MSSAR, x: torch.Tensor, pos: tuple[int, int]) -> torch.Tensor:
    """Positions whose gate changes when the input at ``pos`` is perturbed (eval mode: no batch coupling)."""
    x2 = x.clone()
    x2[:, :, pos[0], pos[1]] += 5.0
    diff = (op.gate(x2) - op.gate(x)).abs().amax((0, 1))
    return diff > 1e-12


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("hw", [(8, 8), (7, 7), (9, 5)])
def test_regional_locality(k: int, hw: tuple[int, int]) -> None:
    h, w = hw
    op = MSSAR(6, scales=(k,)).double().eval()
    _randomise_bn(op)
    x = torch.randn(2, 6, h, w, dtype=torch.float64)
    for pos in [(0, 0), (h // 2, w - 1), (h - 1, w // 3)]:
        want = torch.zeros(h, w, dtype=torch.bool)
        for r in range(h):
            for q in range(w):
                want[r, q] = (r * k // h == pos[0] * k // h) and (q * k // w == pos[1] * k // w)
        assert torch.equal(_affected(op, x, pos), want)


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("hw", [(8, 8), (7, 5)])
def test_sliding_locality(k: int, hw: tuple[int, int]) -> None:
    h, w = hw
    op = MSSAR(6, scales=(k,), strategy="sliding").double().eval()
    _randomise_bn(op)
    x = torch.randn(2, 6, h, w, dtype=torch.float64)
    t = math.sqrt(h * w) / k
    for pos in [(0, 0), (h // 2, w // 2), (h - 1, 1)]:
        want = torch.zeros(h, w, dtype=torch.bool)
        for r in range(h):
            for q in range(w):
                want[r, q] = abs(r - pos[0]) <= t and abs(q - pos[1]) <= t
        assert torch.equal(_affected(op, x, pos), want)


def test_multi_scale_locality_is_the_union() -> None:
    op = MSSAR(4, scales=(2, 4)).double().eval()
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    got = _affected(op, x, (1, 6))
    want = torch.zeros(8, 8, dtype=torch.bool)
    want[0:4, 4:8] = True  # the scale-2 cell; the scale-4 cell (0:2, 6:8) lies inside it
    assert torch.equal(got, want)


def test_single_scale_one_is_se_with_bn() -> None:
    op = MSSAR(12, scales=(1,)).double().train()
    x = torch.randn(5, 12, 6, 7, dtype=torch.float64)
    z = op.gate(x)
    assert torch.equal(z, z[:, :, :1, :1].expand_as(z)), "scale 1 must give a spatially constant gate"
    y = x.mean((2, 3))  # N, C: the squeeze
    hid = y @ op.fc1[0].weight.flatten(1).double().t()
    hid = (hid - hid.mean(0)) / torch.sqrt(hid.var(0, unbiased=False) + 1e-5)  # BN, weight 1, bias 0 at init
    want = torch.sigmoid(hid.clamp_min(0) @ op.fc2[0].weight.flatten(1).double().t())
    torch.testing.assert_close(z[:, :, 0, 0], want)
    assert op.hidden == 12 and all(p.dim() != 1 or p.numel() == 12 for p in op.parameters())


@pytest.mark.parametrize("strategy", ["regional", "sliding"])
def test_multi_scale_gate_is_mean_of_single_scale_gates(strategy: str) -> None:
    scales = (1, 2, 4)
    multi = MSSAR(9, scales=scales, strategy=strategy).train()
    x = torch.randn(3, 9, 12, 10)
    singles = []
    for i, k in enumerate(scales):
        single = MSSAR(9, scales=(k,), strategy=strategy, reduction=3).train()  # same D' = 9 // 3
        single.fc1[0].load_state_dict(multi.fc1[i].state_dict())
        single.bn[0].load_state_dict(multi.bn[i].state_dict())
        single.fc2[0].load_state_dict(multi.fc2[i].state_dict())
        singles.append(single.gate(x))
    torch.testing.assert_close(multi.gate(x), torch.stack(singles).mean(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "channels, scales, reduction, context",
    [(16, (1, 2, 4), 1, None), (64, (1,), 1, None), (10, (1, 2, 4, 8), 1, None), (256, (1, 2, 4), 16, None),
     (12, (1, 2, 4), 1, 120), (2, (1, 2, 4), 1, None)],
)
def test_parameter_count_formula(channels: int, scales: tuple[int, ...], reduction: int, context: int | None) -> None:
    op = MSSAR(channels, scales=scales, reduction=reduction, context_channels=context)
    n_scales = len(scales)
    d = max(1, channels // (n_scales * reduction))  # D' = D / L (Sec. 3.5)
    c_in = context or channels
    assert sum(p.numel() for p in op.parameters()) == n_scales * (c_in * d + channels * d + 2 * d)


@pytest.mark.parametrize("strategy", ["regional", "sliding"])
def test_multi_stage_context(strategy: str) -> None:
    op = MSSAR(6, context_channels=20, strategy=strategy).double().eval()
    _randomise_bn(op)
    x = torch.randn(2, 6, 8, 5, dtype=torch.float64)
    ctx = torch.randn(2, 20, 8, 5, dtype=torch.float64)
    want = mssar_gate_loops(op, x, ctx)
    torch.testing.assert_close(op.gate(x, ctx), want, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(op(x, ctx), x * want, rtol=1e-9, atol=1e-10)
    with pytest.raises(ValueError, match="context"):
        op(x)
    with pytest.raises(ValueError, match="spatial"):
        op(x, ctx[:, :, :4])
    with pytest.raises(ValueError, match="context_channels"):
        MSSAR(6)(x, ctx)


def test_sliding_cost_does_not_depend_on_window() -> None:
    """The integral image: the same number of ops for any scale (no per-window work)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(2, 8, 16, 16)
    counts = []
    for k in (1, 2, 8):
        op = MSSAR(8, scales=(k,), strategy="sliding").eval()
        with FlopCounterMode(display=False) as fc:
            op(x)
        counts.append(fc.get_total_flops())
    assert counts[0] == counts[1] == counts[2]


def test_textual_form_builds_mssar() -> None:
    op = build_recalib("mssar(scales=(1, 2), strategy='sliding')", 8)
    assert isinstance(op, MSSAR) and op.scales == (1, 2) and op.strategy == "sliding"


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("scales, hw", [((1, 2, 4), (32, 32)), ((1, 2, 4), (8, 28)), ((2, 3), (12, 24))])
def test_block_formulation_equals_membership_product(monkeypatch: pytest.MonkeyPatch, channels_last: bool,
                                                    scales: tuple[int, ...], hw: tuple[int, int]) -> None:
    """Where the finest cells tile the map, the block views give what the membership product gives: outputs,
    input and parameter gradients, and the BN statistics (training mode)."""
    import recalib.modules._pooling as pooling

    op = MSSAR(6, scales=scales).double().train()
    x = torch.randn(3, 6, *hw, dtype=torch.float64)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    g = torch.randn(3, 6, *hw, dtype=torch.float64)
    assert pooling._tiles(*hw, scales) is not None, "the case must take the block formulation"
    results = []
    for blocks in (True, False):
        if not blocks:
            monkeypatch.setattr(pooling, "_tiles", lambda h, w, s: None)
        state = {k: v.clone() for k, v in op.state_dict().items()}
        inp = x.detach().requires_grad_()
        out = op(inp)
        grads = torch.autograd.grad(out, [inp, *op.parameters()], g)
        results.append((out, *grads, *[b.clone() for b in op.buffers()]))
        op.load_state_dict(state)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert results[0][0].is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.slow
@pytest.mark.parametrize("channels_last, scales, hw", [(False, (1, 2, 4), (8, 8)), (True, (2, 3), (12, 24))])
def test_compiled_block_formulation_matches_eager(channels_last: bool, scales: tuple[int, ...],
                                                 hw: tuple[int, int]) -> None:
    """Under torch.compile the blocks are a 6-D view (also 2 columns wide); outputs and gradients are eager's."""
    import recalib.modules._pooling as pooling

    torch.manual_seed(0)
    op = MSSAR(6, scales=scales).train()
    x = torch.randn(3, 6, *hw)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    assert pooling._tiles(*hw, scales) is not None or hw == (8, 8), "eager takes the blocks (8x8: membership)"
    g = torch.randn(3, 6, *hw)
    torch._dynamo.reset()
    results = []
    for fn in (op, torch.compile(op, fullgraph=True)):
        inp = x.detach().requires_grad_()
        out = fn(inp)
        results.append((out, *torch.autograd.grad(out, [inp, *op.parameters()], g)))
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert results[1][0].is_contiguous(memory_format=torch.channels_last) == channels_last
