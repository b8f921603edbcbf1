"""Every registered operator and its variants compose with PyTorch's transforms (docs/spec.md, section 1b):
gradients of any order, torch.func, torch.fx, torch.export, hooks on every learnable layer; and no layout,
stride or grad-mode changes the function."""

from __future__ import annotations

import pytest
import torch
from test_registry import CONFIGS, _build

from recalib.modules import MSSAR, SpatialGroupEnhance

C = 16  # small: float64 double-backward and finite differences
SPECS = [s.replace("sge(groups=8)", "sge(groups=4)") for s in CONFIGS]


def _op(spec: str) -> torch.nn.Module:
    if spec == "sge":
        spec = "sge(groups=16)"  # the default 64 groups do not divide 16 channels
    op = _build(spec, C).double()
    with torch.no_grad():
        for p in op.parameters():  # away from SGE's gamma = 0, where the gate does not depend on x
            p.add_(0.1 * torch.randn_like(p))
    return op


def _x(n: int = 3, hw: tuple[int, int] = (6, 6)) -> torch.Tensor:
    return torch.randn(n, C, *hw, dtype=torch.float64)


@pytest.mark.parametrize("spec", SPECS)
def test_gradgradcheck(spec: str) -> None:
    op = _op(spec).train()
    x = _x(2).requires_grad_()
    params = tuple(op.parameters())
    assert torch.autograd.gradgradcheck(lambda x, *p: op(x), (x, *params), eps=1e-6, atol=1e-4, fast_mode=True)


def _functional_loss(op: torch.nn.Module):
    def loss(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(op, params, (x,)).square().sum()

    return loss


@pytest.mark.parametrize("spec", SPECS)
def test_func_grad_over_functional_call(spec: str) -> None:
    op = _op(spec).eval()
    x = _x()
    params = {k: v.detach() for k, v in op.named_parameters()}
    got = torch.func.grad(_functional_loss(op))(params, x)
    want = torch.autograd.grad(op(x).square().sum(), list(op.parameters())) if params else ()
    for (name, g), w in zip(got.items(), want):
        torch.testing.assert_close(g, w, msg=name)


@pytest.mark.parametrize("spec", SPECS)
def test_func_grad_in_training_mode(spec: str) -> None:
    """Training mode (batch statistics): the BN buffers go in as an argument, as torch.func asks of any BN model."""
    op = _op(spec).train()
    x = _x()
    params = {k: v.detach() for k, v in op.named_parameters()}
    buffers = {k: v.clone() for k, v in op.named_buffers()}

    def loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(op, (p, b), (x,)).square().sum()

    got = torch.func.grad(loss)(params, buffers, x)
    want = torch.autograd.grad(op(x).square().sum(), list(op.parameters())) if params else ()
    for (name, g), w in zip(got.items(), want):
        torch.testing.assert_close(g, w, msg=name)


@pytest.mark.parametrize("spec", SPECS)
def test_func_vmap_over_samples(spec: str) -> None:
    op = _op(spec).eval()
    x = _x(4)
    got = torch.func.vmap(lambda s: op(s[None])[0])(x)
    torch.testing.assert_close(got, op(x))
    params = {k: v.detach() for k, v in op.named_parameters()}
    per_sample = torch.func.vmap(torch.func.grad(_functional_loss(op)), in_dims=(None, 0))(params, x[:, None])
    for name, g in per_sample.items():
        assert g.shape == (4, *params[name].shape)
        want = torch.autograd.grad(op(x[1:2]).square().sum(), dict(op.named_parameters())[name])[0]
        torch.testing.assert_close(g[1], want, msg=name)


@pytest.mark.parametrize("spec", SPECS)
def test_func_jvp_matches_finite_differences(spec: str) -> None:
    op = _op(spec).eval()
    x, v = _x(), _x()
    out, tangent = torch.func.jvp(op, (x,), (v,))
    eps = 1e-6
    fd = (op(x + eps * v) - op(x - eps * v)) / (2 * eps)
    torch.testing.assert_close(out, op(x))
    torch.testing.assert_close(tangent, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", SPECS)
def test_hooks_see_every_learnable_layer(spec: str) -> None:
    """Every conv, linear and BN inside an operator is a called submodule (hooks, pruning, PEFT see it)."""
    op = _op(spec).train()
    layers = {n: m for n, m in op.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.modules.batchnorm._BatchNorm))}
    seen: list[str] = []
    for name, m in layers.items():
        m.register_forward_hook(lambda mod, args, out, name=name: seen.append(name))
    op(_x().requires_grad_()).sum().backward()
    assert sorted(seen) == sorted(layers)
    own = [n for n, _ in op.named_parameters(recurse=False)]
    assert not own or isinstance(op, SpatialGroupEnhance), f"{spec}: parameters outside submodules: {own}"


@pytest.mark.parametrize("spec", SPECS)
def test_fx_symbolic_trace(spec: str) -> None:
    op = _op(spec).eval()
    gm = torch.fx.symbolic_trace(op)
    for x in (_x(), _x(2, (7, 5)) if "feat_size" not in spec else _x(2)):
        torch.testing.assert_close(gm(x), op(x))
    modules = {n.target for n in gm.graph.nodes if n.op == "call_module"}
    assert {n for n, m in op.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d))} <= modules


@pytest.mark.parametrize("spec", SPECS)
def test_torch_export(spec: str) -> None:
    op = _op(spec).eval()
    x = _x(2)
    ep = torch.export.export(op, (x,))
    torch.testing.assert_close(ep.module()(x), op(x))


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS)
def test_torch_compile_fullgraph(spec: str) -> None:
    """fullgraph=True: no graph break anywhere (a break raises), for every variant."""
    torch._dynamo.reset()
    op = _op(spec).float().train()
    x = torch.randn(4, C, *((6, 6) if "feat_size" in spec else (8, 7)), requires_grad=True)
    state = {k: v.clone() for k, v in op.state_dict().items()}
    out_c = torch.compile(op, fullgraph=True)(x)
    op.load_state_dict(state)
    torch.testing.assert_close(out_c, op(x), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------- layouts and grad modes ---
@pytest.mark.parametrize("spec", ["mssar", "mssar(scales=(3, 2))", "se", "sge(groups=4)", "ge(extent=2)"])
def test_layouts_strides_and_expanded_gradients(spec: str) -> None:
    """Channels_last input with an NCHW gradient, a strided view, a transposed view and the stride-0 gradient of
    ``sum()`` give what a plain contiguous input gives (outputs, input and parameter gradients)."""
    op = _op(spec).train()
    base = torch.randn(3, C, 8, 16, dtype=torch.float64)
    cases = [
        (base[..., :8].contiguous(memory_format=torch.channels_last), torch.randn(3, C, 8, 8, dtype=torch.float64)),
        (base[..., ::2], torch.randn(3, C, 8, 8, dtype=torch.float64)),
        (base[..., 8:].transpose(2, 3), torch.ones(3, C, 8, 8, dtype=torch.float64)),
        (base[..., :8], torch.ones((), dtype=torch.float64).expand(3, C, 8, 8)),
    ]
    params = list(op.parameters())
    for x, g in cases:
        results = []
        for inp in (x, x.contiguous()):
            state = {k: v.clone() for k, v in op.state_dict().items()}
            inp = inp.detach().requires_grad_()
            out = op(inp)
            grads = torch.autograd.grad(out, [inp, *params], g)
            results.append((out, *grads, *[b.clone() for b in op.buffers()]))
            op.load_state_dict(state)
        for a, b in zip(*results):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("spec", SPECS)
def test_no_grad_equals_grad_mode(spec: str) -> None:
    op = _op(spec).eval()
    x = _x(2, (7, 6)) if "feat_size" not in spec else _x(2)
    with torch.no_grad():
        got = op(x)
    torch.testing.assert_close(got, op(x.clone().requires_grad_()).detach(), rtol=1e-12, atol=1e-12)


def test_retain_graph_backward_twice_accumulates() -> None:
    op = MSSAR(8).double().train()
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64, requires_grad=True)
    out = op(x).square().sum()
    out.backward(retain_graph=True)
    first = x.grad.clone()
    out.backward()
    torch.testing.assert_close(x.grad, 2 * first)


# ----------------------------------------------------------------------------------- batch of one ---
@pytest.mark.parametrize("strategy, hw", [("regional", (5, 6)), ("sliding", (1, 1))])
def test_batch_of_one_in_training_names_mssar_and_the_fix(strategy: str, hw: tuple[int, int]) -> None:
    op = MSSAR(8, strategy=strategy).train()
    x = torch.randn(1, 8, *hw)
    with pytest.raises(ValueError, match=r"MSSAR.*more than 1 value.*model\.eval\(\).*batch of at least 2"):
        op(x)
    op.eval()
    assert op(x).shape == x.shape  # eval mode: running statistics, any batch
    MSSAR(8, scales=(2, 4), strategy=strategy).train()(torch.randn(1, 8, 5, 6))  # >= 2 vectors per scale: fine
