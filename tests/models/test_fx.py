"""Zoo models with every operator trace with torch.fx (shape-dependent Python sits behind torch.fx.wrap), so
recalib backbones serve code that extracts features this way (torchvision's create_feature_extractor)."""

from __future__ import annotations

import pytest
import torch
from _arch_formulas import OPS

from recalib.models import create_model

VARIANTS = [*OPS, "mssar(strategy='sliding')", "ge(extent=2, variant='theta+')", "ge(extent=4, variant='theta')"]


@pytest.mark.parametrize("op", VARIANTS)
@pytest.mark.parametrize("name", ["resnet20", "densenet_bc_100", "resnet18"])
def test_symbolic_trace_of_zoo_models(name: str, op: str) -> None:
    kwargs = {"multi_stage": True} if name.startswith("densenet") and op == "mssar" else {}
    model = create_model(name, recalib=op, num_classes=5, **kwargs).eval()
    gm = torch.fx.symbolic_trace(model)
    for size in (32, 28):  # the geometry is computed when the graph runs, not frozen at trace time
        x = torch.randn(2, 3, size, size)
        torch.testing.assert_close(gm(x), model(x), rtol=0, atol=0)
    called = {n.target for n in gm.graph.nodes if n.op == "call_module"}
    layers = {n for n, m in model.named_modules() if ".recalib." in f".{n}" and isinstance(m, torch.nn.Conv2d)}
    assert layers <= called  # the operators' layers are graph nodes: quantization/PEFT passes see them


def test_torchvision_create_feature_extractor() -> None:
    fe = pytest.importorskip("torchvision.models.feature_extraction")
    model = create_model("resnet50", recalib="mssar").eval()
    extractor = fe.create_feature_extractor(model, {"layer2": "c3", "layer3": "c4", "layer4": "c5"})
    x = torch.randn(1, 3, 64, 64)
    out = extractor(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"c3": (1, 512, 8, 8), "c4": (1, 1024, 4, 4), "c5": (1, 2048, 2, 2)}
    torch.testing.assert_close(out["c5"], model.forward_features(x))
