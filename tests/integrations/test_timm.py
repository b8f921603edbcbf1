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
    assert attn_layer("sge")(16).groups == 16  # the zoo's small-channel default
    assert "mssar" in repr(factory)


def test_unknown_names_and_arguments() -> None:
    with pytest.raises(ValueError, match="valid names"):
        attn_layer("eca")
    with pytest.raises(ValueError, match="valid arguments"):
        attn_layer("se", ratio=4)
