"""Registry-wide properties: every registered operator (with one test config each) is checked here, so a
newly registered operator is tested without new test code. Extra configurations cover non-default paths."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from recalib.modules import (
    build_recalib,
    canonical_recalib_spec,
    format_recalib_spec,
    list_recalibs,
    parse_recalib_spec,
)

C = 64  # every operator's defaults apply at 64 channels (SGE's default 64 groups divides it)

# Every registered name with default arguments, plus the non-default paths worth covering everywhere.
CONFIGS = [*list_recalibs()] + [
    "mssar(strategy='sliding')",
    "mssar(scales=(3, 2))",
    "ge(extent=2)",
    "ge(extent=4, variant='theta')",
    "ge(extent=2, variant='theta+')",
    "ge(variant='theta', feat_size=6)",
    "sge(groups=8)",
]


def _build(spec: str, channels: int = C) -> torch.nn.Module:
    op = build_recalib(spec, channels)
    for m in op.modules():  # non-trivial BN statistics so eval mode is not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return op


@pytest.mark.parametrize("spec", CONFIGS)
def test_gradcheck_double(spec: str) -> None:
    op = _build(spec).double().train()
    with torch.no_grad():
        for p in op.parameters():  # move SGE's gamma off its zero init so the gate depends on x
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(2, C, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,), eps=1e-6, atol=1e-5, check_batched_grad=False, fast_mode=True)


@pytest.mark.parametrize("spec", CONFIGS)
def test_forward_is_x_times_gate(spec: str) -> None:
    op = _build(spec).eval()
    x = torch.randn(2, C, 6, 6)
    z = op.gate(x)
    assert z.shape == x.shape and z.dtype == x.dtype
    if spec not in ("none", "identity"):
        assert (z > 0).all() and (z < 1).all()
    torch.testing.assert_close(op(x), x * z, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_dtype_preserved(spec: str, dtype: torch.dtype) -> None:
    op = _build(spec).to(dtype).eval()
    x = torch.randn(2, C, 6, 6).to(dtype)
    out = op(x)
    assert out.dtype == dtype and op.gate(x).dtype == dtype
    ref = _build(spec).eval()
    ref.load_state_dict(op.state_dict())
    torch.testing.assert_close(out.float(), ref(x.float()), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("spec", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_dtype_preserved_under_autocast(spec: str, dtype: torch.dtype) -> None:
    op = _build(spec).train()
    x = torch.randn(4, C, 6, 6).to(dtype).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16 if dtype == torch.float32 else dtype):
        out = op(x)
    assert out.dtype == dtype
    out.float().sum().backward()


@pytest.mark.parametrize("spec", CONFIGS)
@pytest.mark.parametrize("hw", [(8, 8), (7, 7), (6, 5)])
def test_channels_last_preserved(spec: str, hw: tuple[int, int]) -> None:
    if "feat_size" in spec and hw != (6, 6):
        spec = spec.replace("feat_size=6", f"feat_size={hw}")
    op = _build(spec).train()
    x = torch.randn(3, C, *hw)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    out = op(xc)
    assert out.is_contiguous(memory_format=torch.channels_last), "channels_last in, channels_last out"
    torch.testing.assert_close(out, op(x), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert xc.grad is not None and torch.isfinite(xc.grad).all()


@pytest.mark.parametrize("spec", CONFIGS)
def test_every_parameter_gets_a_gradient(spec: str) -> None:
    op = _build(spec).train()
    x = torch.randn(3, C, 6, 6, requires_grad=True)
    (op(x) * torch.randn_like(x)).sum().backward()
    for name, p in op.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{spec}: {name} got no gradient"
    assert x.grad is not None


@pytest.mark.parametrize("spec", CONFIGS)
def test_jit_trace(spec: str) -> None:
    op = _build(spec).eval()
    x = torch.randn(2, C, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(op, (x,))
    torch.testing.assert_close(traced(x), op(x))


@pytest.mark.parametrize("spec", CONFIGS)
def test_onnx_export(spec: str) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    op = _build(spec).eval()
    x = torch.randn(2, C, 6, 6)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(op, (x,), buf, opset_version=17, dynamo=False, input_names=["x"])
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), op(x), rtol=1e-4, atol=1e-5)


COMPILE_CONFIGS = ["se", "ge", "sge", "mssar", "mssar(strategy='sliding')", "mssar(scales=(4,))", "ge(extent=2, variant='theta+')"]


@pytest.mark.slow
@pytest.mark.parametrize("spec", COMPILE_CONFIGS)
def test_torch_compile_matches_eager(spec: str) -> None:
    torch._dynamo.reset()
    op = _build(spec, 16 if "sge" not in spec else 64).train()
    x = torch.randn(4, op.channels, 8, 7, requires_grad=True)
    compiled = torch.compile(op, fullgraph=True)
    out_c = compiled(x)
    op_state = {k: v.clone() for k, v in op.state_dict().items()}
    out_e = op(x)
    torch.testing.assert_close(out_c, out_e, rtol=1e-4, atol=1e-5)
    (g_c,) = torch.autograd.grad(out_c.square().sum(), x)
    (g_e,) = torch.autograd.grad(out_e.square().sum(), x)
    torch.testing.assert_close(g_c, g_e, rtol=1e-4, atol=1e-5)
    assert op_state.keys() == op.state_dict().keys()


# ---------------------------------------------------------------------------------------- errors ---
BAD = [
    ("nope", "valid names"),
    ("mssar(scales=())", "empty"),
    ("mssar(scales=(0, 2))", "positive"),
    ("mssar(scales=(2, 2))", "distinct"),
    ("mssar(scales=4)", "tuple"),
    ("mssar(scales=(1.5,))", "positive int"),
    ("mssar(strategy='diagonal')", "regional"),
    ("mssar(reduction=0)", "reduction"),
    ("mssar(context_channels=-1)", "context_channels"),
    ("se(reduction=0)", "reduction"),
    ("se(reduction=2.5)", "reduction"),
    ("se(ratio=4)", "valid arguments: reduction"),
    ("sge(groups=7)", "valid groups"),
    ("sge(groups=0)", "groups"),
    ("ge(extent=3)", "power of two"),
    ("ge(extent=1)", "power of two"),
    ("ge(extent=-2)", "power of two"),
    ("ge(variant='theta++')", "theta-"),
    ("ge(variant='theta')", "feat_size"),
    ("ge(variant='theta', feat_size=0)", "feat_size"),
    ("mssar(1, 2)", "keyword"),
    ("mssar(scales=__import__('os'))", "literal"),
    ("mssar(**{'a': 1})", "unpacking"),
    ("mssar(", "parse"),
    ("os.system('x')", "name or a call"),
]


@pytest.mark.parametrize("spec, message", BAD)
def test_invalid_configurations_raise_value_error(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_recalib(spec, 64)


@pytest.mark.parametrize("name", list_recalibs())
@pytest.mark.parametrize("channels", [0, -3, 2.0, True, "8"])
def test_bad_channels(name: str, channels: object) -> None:
    with pytest.raises(ValueError, match="channels"):
        build_recalib(name, channels)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list_recalibs())
def test_wrong_input_rank_or_channels(name: str) -> None:
    op = build_recalib(name, 64)
    with pytest.raises(ValueError, match="4-D"):
        op(torch.randn(64, 5, 5))
    with pytest.raises(ValueError, match="64 channels"):
        op(torch.randn(2, 32, 5, 5))


def test_textual_form() -> None:
    assert parse_recalib_spec("mssar(scales=(1, 2), strategy='sliding')") == (
        "mssar",
        {"scales": (1, 2), "strategy": "sliding"},
    )
    assert parse_recalib_spec("se") == ("se", {})
    assert parse_recalib_spec(" none ") == ("none", {})
    assert type(build_recalib(None, 4)).__name__ == "Identity"
    assert build_recalib("se(reduction=4)", 16, reduction=8).hidden == 2  # explicit kwargs win
    assert set(list_recalibs()) >= {"se", "ge", "sge", "mssar", "none"}


@pytest.mark.parametrize("spec", ["none", "se", "ge(extent=2, variant='theta')", "sge(groups=4)",
                                  "mssar(strategy='sliding', scales=(1, 3))", "mssar(scales=[2, 4])"])
def test_format_writes_what_parse_reads(spec: str) -> None:
    name, kwargs = parse_recalib_spec(spec)
    text = format_recalib_spec(name, kwargs)
    assert parse_recalib_spec(text) == (name, {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})
    assert format_recalib_spec(*parse_recalib_spec(text)) == text  # a fixed point: one text per operator call


def test_canonical_form_is_one_text_per_operator() -> None:
    # Written by hand from the constructors' signatures: SE's reduction defaults to 16; SGE's groups to None, the
    # channel-dependent rule of recalib.modules.sge_groups (a different network from the old fixed 64).
    assert canonical_recalib_spec("se") == canonical_recalib_spec("se(reduction=16)") == "se(reduction=16)"
    assert canonical_recalib_spec("sge") == "sge(groups=None)" != canonical_recalib_spec("sge(groups=64)")
    assert canonical_recalib_spec("identity") == canonical_recalib_spec(None) == "none"
    assert canonical_recalib_spec("mssar(scales=[1, 2, 4])") == canonical_recalib_spec("mssar(strategy='regional')")
    assert canonical_recalib_spec("mssar") != canonical_recalib_spec("mssar(strategy='sliding')")
    with pytest.raises(ValueError, match="unknown recalibration operator"):
        canonical_recalib_spec("sse")


def test_no_assert_for_user_errors() -> None:
    """User errors must survive `python -O`: they are ValueErrors, never assertions."""
    import ast
    import pathlib

    import recalib.modules as pkg

    for path in pathlib.Path(pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                # the only asserts allowed are internal invariants on `total` accumulators
                assert "total" in ast.unparse(node.test), f"{path.name}:{node.lineno} uses assert for validation"
