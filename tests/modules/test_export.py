"""Exported once, MS-SAR runs at any input size: ``torch.export`` with dynamic ``Dim``s and ONNX export with dynamic
height and width (run by onnxruntime) match eager at sizes the export never saw, including sides the scales do
not divide (20 x 30 with K = 4) and sides smaller than a scale (3 x 2 with K = 4). Eager at 32 x 32 takes the
block formulation and the exported graph the membership one, so these tests also hold the two to each other."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from recalib.models import create_model
from recalib.modules import MSSAR

TRACE = (28, 28)
SIZES = [(28, 28), (32, 32), (20, 30), (3, 2)]
VARIANTS = [("regional", False), ("sliding", False), ("regional", True), ("sliding", True)]
C, CTX = 8, 12


def _case(strategy: str, multi_stage: bool) -> tuple[MSSAR, list[str]]:
    op = MSSAR(C, strategy=strategy, context_channels=CTX if multi_stage else None).eval()
    with torch.no_grad():
        for bn in op.bn:  # non-trivial running statistics
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 1.5)
    return op, ["x", "context"] if multi_stage else ["x"]


def _inputs(names: list[str], hw: tuple[int, int], n: int = 2) -> tuple[torch.Tensor, ...]:
    return tuple(torch.randn(n, C if name == "x" else CTX, *hw) for name in names)


@pytest.mark.parametrize("strategy, multi_stage", VARIANTS, ids=lambda v: str(v))
def test_torch_export_with_dynamic_dims_runs_at_any_size(strategy: str, multi_stage: bool) -> None:
    op, names = _case(strategy, multi_stage)
    n, h, w = torch.export.Dim("n", min=1, max=64), torch.export.Dim("h", min=1, max=512), torch.export.Dim("w", min=1, max=512)
    shapes = tuple({0: n, 2: h, 3: w} for _ in names)
    ep = torch.export.export(op, _inputs(names, TRACE), dynamic_shapes=shapes)
    for hw in SIZES:
        args = _inputs(names, hw, n=3)
        torch.testing.assert_close(ep.module()(*args), op(*args), rtol=1e-4, atol=1e-4, msg=f"at {hw}")


@pytest.mark.slow
@pytest.mark.parametrize("strategy, multi_stage", VARIANTS, ids=lambda v: str(v))
def test_onnx_export_with_dynamic_axes_runs_at_any_size(strategy: str, multi_stage: bool) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    op, names = _case(strategy, multi_stage)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(op, _inputs(names, TRACE), buf, input_names=names, dynamo=True, verbose=False,
                          dynamic_axes={name: {0: "n", 2: "h", 3: "w"} for name in names})
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for hw in SIZES:
        args = _inputs(names, hw, n=3)
        (got,) = sess.run(None, {name: a.numpy() for name, a in zip(names, args)})
        torch.testing.assert_close(torch.from_numpy(got), op(*args), rtol=1e-4, atol=1e-4, msg=f"at {hw}")


@pytest.mark.slow
def test_resnet20_with_mssar_exports_once_for_every_size() -> None:
    """The case of the report: a ResNet-20 + MS-SAR exported at 28 x 28 (one channel) runs at 32 x 32 and 20 x 30."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = create_model("resnet20", recalib="mssar", in_chans=1).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 1, 28, 28),), buf, input_names=["x"], dynamo=True, verbose=False,
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for hw in [(28, 28), (32, 32), (20, 30)]:
        x = torch.randn(3, 1, *hw)
        (got,) = sess.run(None, {"x": x.numpy()})
        torch.testing.assert_close(torch.from_numpy(got), model(x), rtol=1e-4, atol=1e-4, msg=f"at {hw}")
