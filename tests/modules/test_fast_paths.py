"""The eager fast paths (``_regions.recalibrate``'s fused autograd pair, view-based broadcasting, GEMM pooling)
against the same operators computed with ordinary autograd ops: outputs, input and parameter gradients and
BatchNorm statistics must agree to float tolerance for every layout and geometry, so that no speed-up can
trade correctness."""

from __future__ import annotations

import pytest
import torch

from recalib.modules import MSSAR, GatherExcite, SpatialGroupEnhance, SqueezeExcite, _regions

ids = lambda s: "x".join(map(str, s))  # noqa: E731

SHAPES = [
    (3, 8, 8, 8),  # equal cells: strided pooling, one run of bands
    (2, 8, 7, 7),  # unequal cells (2, 2, 2, 1): thin GEMMs, two runs
    (2, 8, 14, 9),  # unequal, non-square
    (2, 8, 12, 16),  # equal, non-square
    (2, 8, 3, 2),  # K > H, K > W: empty bands
    (4, 8, 1, 1),
]
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
BUILDERS = {
    "mssar": lambda: MSSAR(8),
    "mssar_2_3": lambda: MSSAR(8, scales=(2, 3)),  # does not nest by views: einsum / index path
    "mssar_4": lambda: MSSAR(8, scales=(4,)),
    "mssar_8": lambda: MSSAR(8, scales=(1, 8)),  # 64 cells: the many-cell pooling fallback
    "se": lambda: SqueezeExcite(8, reduction=2),
    "ge": lambda: GatherExcite(8),
    "sge": lambda: _sge(8, 4),
    "sge_c1": lambda: _sge(8, 8),  # one channel per group
}


def _sge(c: int, groups: int) -> SpatialGroupEnhance:
    op = SpatialGroupEnhance(c, groups=groups)
    with torch.no_grad():  # away from the initial gamma = 0, where the gate does not depend on x
        op.weight.normal_()
        op.bias.normal_()
    return op


def _randomise(op: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in op.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def _run(op: torch.nn.Module, x: torch.Tensor, g: torch.Tensor, *ctx: torch.Tensor) -> tuple[torch.Tensor, ...]:
    inputs = [x, *ctx]
    for t in inputs:
        t.grad = None
    op.zero_grad(set_to_none=True)
    out = op(*inputs)
    out.backward(g)
    grads = [t.grad for t in inputs] + [p.grad if p.grad is not None else torch.zeros_like(p) for p in op.parameters()]
    buffers = [b.clone() for b in op.buffers()]
    return (out.detach(), *grads, *buffers)


def _plain(monkeypatch: pytest.MonkeyPatch) -> None:
    from recalib.modules import sge

    monkeypatch.setattr(_regions, "eager_autograd", lambda: False)
    monkeypatch.setattr(sge, "eager_autograd", lambda: False)


def _compare(op: torch.nn.Module, x: torch.Tensor, g: torch.Tensor, monkeypatch: pytest.MonkeyPatch, *ctx: torch.Tensor,
             rtol: float = 1e-9, atol: float = 1e-10) -> None:
    state = {k: v.clone() for k, v in op.state_dict().items()}
    fast = _run(op, x, g, *ctx)
    op.load_state_dict(state)  # same BN statistics before the second call
    with monkeypatch.context() as m:
        _plain(m)
        slow = _run(op, x, g, *ctx)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("shape", SHAPES, ids=ids)
@pytest.mark.parametrize("name", list(BUILDERS))
def test_fused_equals_plain_autograd(name: str, shape: tuple[int, ...], fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    op = BUILDERS[name]().double().train()
    _randomise(op)
    x = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=FORMATS[fmt]).requires_grad_()
    g = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=FORMATS[fmt])
    _compare(op, x, g, monkeypatch)


@pytest.mark.parametrize("shape", [(2, 8, 8, 8), (2, 8, 7, 5)], ids=ids)
def test_fast_and_general_mssar_paths_agree_with_gradients(shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    """MSSAR's whole fast path (refinement pooling, derive/combine matrices, fused pair) against its general
    path (``_fast_paths = False``: averaging matrices, einsums, a gathered full-resolution gate)."""
    op = MSSAR(8).double().train()
    _randomise(op)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    g = torch.randn(shape, dtype=torch.float64)
    state = {k: v.clone() for k, v in op.state_dict().items()}
    fast = _run(op, x, g)
    op.load_state_dict(state)
    monkeypatch.setattr(MSSAR, "_fast_paths", False)
    general = _run(op, x, g)
    for a, b in zip(fast, general):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("shape", [(2, 6, 8, 8), (2, 6, 7, 5)], ids=ids)
def test_fused_with_context(shape: tuple[int, ...], fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    n, c, h, w = shape
    op = MSSAR(c, context_channels=10).double().train()
    x = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=FORMATS[fmt]).requires_grad_()
    ctx = torch.randn(n, 10, h, w, dtype=torch.float64).contiguous(memory_format=FORMATS[fmt]).requires_grad_()
    g = torch.randn(shape, dtype=torch.float64)
    _compare(op, x, g, monkeypatch, ctx)


@pytest.mark.parametrize("name", ["mssar", "se", "sge"])
def test_layouts_strides_and_expanded_gradients(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Channels_last input with an NCHW gradient, a non-contiguous input, and the stride-0 gradient of ``sum()``."""
    op = BUILDERS[name]().double().train()
    base = torch.randn(3, 8, 8, 16, dtype=torch.float64)
    cases = [
        (base[..., :8].contiguous(memory_format=torch.channels_last), torch.randn(3, 8, 8, 8, dtype=torch.float64)),
        (base[..., ::2], torch.randn(3, 8, 8, 8, dtype=torch.float64)),  # strided view
        (base[..., 8:].transpose(2, 3), torch.ones(3, 8, 8, 8, dtype=torch.float64).expand(3, 8, 8, 8)),
        (base[..., :8], torch.ones((), dtype=torch.float64).expand(3, 8, 8, 8)),  # out.sum()'s gradient
    ]
    for x, g in cases:
        _compare(op, x.detach().requires_grad_(), g, monkeypatch)


def test_gradient_of_parameters_only_and_of_input_only() -> None:
    op = MSSAR(8).double().train()
    x = torch.randn(2, 8, 8, 8, dtype=torch.float64, requires_grad=True)
    params = list(op.parameters())
    out = op(x)
    want = torch.autograd.grad(out.square().sum(), [x, *params])
    got_p = torch.autograd.grad(op(x).square().sum(), params)  # x's fused gradient is never computed
    got_x = torch.autograd.grad(op(x).square().sum(), [x])
    for a, b in zip([*got_x, *got_p], want):
        torch.testing.assert_close(a, b)
    frozen = x.detach()  # input without grad: only the parameters'
    (op(frozen).square().sum()).backward()
    assert all(p.grad is not None for p in params)


def test_retain_graph_backward_twice_accumulates() -> None:
    op = MSSAR(8).double().train()
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64, requires_grad=True)
    out = op(x).square().sum()
    out.backward(retain_graph=True)
    first = x.grad.clone()
    out.backward()
    torch.testing.assert_close(x.grad, 2 * first)


def test_second_order_gradients_fail_loudly_on_the_fast_path() -> None:
    op = SqueezeExcite(8, reduction=2).double()
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(op(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        gx.sum().backward()


@pytest.mark.parametrize("name", ["mssar", "se", "ge", "sge"])
@pytest.mark.parametrize("shape", [(4, 8, 8, 8), (4, 8, 7, 7)], ids=ids)
def test_fused_under_bf16_autocast_matches_plain(name: str, shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    op = BUILDERS[name]().train()
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn(shape)
    results = []
    for plain in (False, True):
        with monkeypatch.context() as m:
            if plain:
                _plain(m)
            x.grad = None
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = op(x)
            out.backward(g)
            results.append((out.detach().float(), x.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=5e-2, atol=5e-2)


def test_fused_path_allocates_fewer_full_size_tensors() -> None:
    """The point of the fused pairs: forward+backward of SE, MS-SAR (equal cells) and SGE each allocate two
    full-size tensors (the output and the input gradient), not five (SE) or seven (SGE) as autograd would."""
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(8, 64, 16, 16).contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn_like(x)
    full = x.numel() * x.element_size()
    for op in (SqueezeExcite(64), MSSAR(64), _sge(64, 8)):
        op(x).backward(g)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            op(x).backward(g)
        big = [e for e in prof.events() if e.self_cpu_memory_usage >= full]  # allocations of >= x's size
        assert len(big) == 2, [e.name for e in big]


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("shape", SHAPES, ids=ids)
@pytest.mark.parametrize("name", ["mssar", "mssar_2_3", "se", "sge"])
def test_inference_path_equals_training_path(name: str, shape: tuple[int, ...], fmt: str) -> None:
    """Under ``torch.no_grad`` the operators take the allocation-lean inference path (in-place spread, per-run
    products); it must compute what the autograd path computes."""
    op = BUILDERS[name]().double().eval()
    _randomise(op)
    x = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=FORMATS[fmt])
    with torch.no_grad():
        got = op(x)
    want = op(x.clone().requires_grad_()).detach()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert got.is_contiguous(memory_format=FORMATS[fmt])
