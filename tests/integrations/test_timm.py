"""recalib operators inside timm's ResNet family via block_args=dict(attn_layer=attn_layer(...))."""

from __future__ import annotations

import pytest
import torch

from recalib.integrations.timm import attn_layer
from recalib.modules import MSSAR, GatherExcite, SpatialGroupEnhance, SqueezeExcite

timm = pytest.importorskip("timm")

OPS = {"mssar": MSSAR, "se": SqueezeExcite, "ge": GatherExcite, "sge": SpatialGroupEnhance}


def _forward_backward(model: torch.nn.Module, size: int = 32) -> None:
    out = model.train()(torch.randn(2, 3, size, size))
    assert out.shape == (2, model.num_classes) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_resnet50_with_mssar() -> None:
    model = timm.create_model("resnet50", block_args=dict(attn_layer=attn_layer("mssar")), num_classes=10)
    blocks = [b for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for b in stage]
    assert all(isinstance(b.se, MSSAR) and b.se.channels == b.conv3.out_channels for b in blocks)
    _forward_backward(model)


@pytest.mark.parametrize("name", sorted(OPS))
def test_resnet18_basic_blocks_with_every_operator(name: str) -> None:
    model = timm.create_model("resnet18", block_args=dict(attn_layer=attn_layer(name)), num_classes=10)
    assert all(isinstance(b.se, OPS[name]) for b in model.layer1)
    _forward_backward(model)


def test_se_matches_timms_own_seresnet50_parameter_count() -> None:
    ours = timm.create_model("resnet50", block_args=dict(attn_layer=attn_layer("se")))
    theirs = timm.create_model("seresnet50")
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in theirs.parameters()) == 28_088_024


def test_arguments_textual_form_and_dtype() -> None:
    factory = attn_layer("mssar(scales=(1, 2))", strategy="sliding")
    op = factory(64, dtype=torch.float64)  # timm passes device= and dtype=
    assert isinstance(op, MSSAR) and op.scales == (1, 2) and op.strategy == "sliding"
    assert op.fc1[0].weight.dtype == torch.float64
    assert attn_layer("sge")(16).groups == 4  # the operator's own default: 4 channels per group
    assert "mssar" in repr(factory)


def test_unknown_names_and_arguments() -> None:
    with pytest.raises(ValueError, match="valid names"):
        attn_layer("eca")
    with pytest.raises(ValueError, match="valid arguments"):
        attn_layer("se", ratio=4)


def test_factory_accepts_and_ignores_timms_se_arguments() -> None:
    """timm's EfficientNet builder probes se_layer(8, rd_ratio=1.0) and calls se_layer(c, act_layer=...)."""
    factory = attn_layer("mssar(scales=(1, 2))")
    op = factory(32, act_layer=torch.nn.SiLU, rd_ratio=0.25, gate_layer="hard_sigmoid", force_act_layer=torch.nn.ReLU,
                 rd_round_fn=round, rd_divisor=8)
    assert isinstance(op, MSSAR) and op.scales == (1, 2) and op.channels == 32
    with pytest.raises((TypeError, ValueError), match="bogus"):
        factory(32, bogus=1)  # anything else is still the operator's argument and checked


@pytest.mark.parametrize("name, expected", [("efficientnet_b0", 16), ("mixnet_s", 13)])
def test_efficientnet_builder_families_take_it_as_se_layer(name: str, expected: int) -> None:
    model = timm.create_model(name, se_layer=attn_layer("mssar"), num_classes=10)
    ops = [m for m in model.modules() if isinstance(m, MSSAR)]
    assert len(ops) == expected  # one per block that has SE in the architecture
    assert not any(type(m).__name__ == "SqueezeExcite" for m in model.modules())
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_mobilenetv3_class_and_byobnet_attn_layer() -> None:
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.mobilenetv3 import MobileNetV3

    blocks = decode_arch_def([["ds_r1_k3_s2_e1_c16_se0.25_nre"], ["ir_r1_k5_s2_e4_c40_se0.25"]])
    model = MobileNetV3(blocks, se_layer=attn_layer("se"), num_classes=10)
    assert sum(isinstance(m, SqueezeExcite) for m in model.modules()) == 2
    _forward_backward(model, size=64)
    model = timm.create_model("regnetz_b16", attn_layer=attn_layer("sge"), num_classes=10)
    assert sum(isinstance(m, SpatialGroupEnhance) for m in model.modules()) > 0


def test_integrations_reachable_from_a_plain_import_recalib() -> None:
    """The issue's command: `recalib` had no attribute `integrations`."""
    import subprocess
    import sys

    code = "import recalib; print(recalib.integrations.timm.attn_layer('mssar'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "mssar" in out.stdout, out.stderr
