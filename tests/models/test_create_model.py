"""create_model's argument handling, where the operator sits (docs/spec.md, section 5), the option-A shortcut, the
per-operator small-channel defaults, errors, the pretrained hook and torchvision compatibility."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from recalib.models import create_model, list_models, resolve_recalib
from recalib.models.cifar_resnet import CifarBasicBlock, _ShortcutA
from recalib.models.densenet import DenseLayer
from recalib.modules import MSSAR, GatherExcite, SpatialGroupEnhance, SqueezeExcite, list_recalibs


class Half(nn.Module):
    """A stand-in operator: multiplies by 0.5 and records its inputs."""

    def __init__(self, channels: int, scale: float = 0.5) -> None:
        super().__init__()
        self.channels, self.scale = channels, scale
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x)
        return x * self.scale


class RecordingMSSAR(MSSAR):
    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        self.seen = (x, context)
        return super().forward(x, context)


def _ops(model: nn.Module) -> list[nn.Module]:
    return [m for n, m in model.named_modules() if n.endswith("recalib")]


# -------------------------------------------------------------------------------- recalib forms ---
def test_recalib_forms_build_the_same_operators() -> None:
    by_name = create_model("resnet20", recalib="mssar", recalib_args={"scales": (1, 2)})
    by_text = create_model("resnet20", recalib="mssar(scales=(1, 2))")
    by_class = create_model("resnet20", recalib=MSSAR, recalib_args={"scales": (1, 2)})
    by_partial = create_model("resnet20", recalib=functools.partial(MSSAR, scales=(1, 2)))
    for model in (by_name, by_text, by_class, by_partial):
        ops = _ops(model)
        assert len(ops) == 9 and all(isinstance(op, MSSAR) and op.scales == (1, 2) for op in ops)
        assert [op.channels for op in ops] == [16] * 3 + [32] * 3 + [64] * 3
    # The recorded spec is complete (issue 18: it used to be the given text, "mssar(scales=(1, 2))").
    complete = "mssar(context_channels=None, reduction=1, scales=(1, 2), strategy='regional')"
    assert str(by_name.recalib_spec) == str(by_text.recalib_spec) == str(by_class.recalib_spec) == complete
    assert by_partial.recalib_spec is None  # an unregistered factory has no textual form


def test_recalib_args_override_the_textual_form() -> None:
    model = create_model("resnet20", recalib="se(reduction=4)", recalib_args={"reduction": 8})
    assert all(op.reduction == 8 for op in _ops(model))


@pytest.mark.parametrize("none", [None, "none", "identity"])
def test_no_operator_is_the_plain_backbone(none: str | None) -> None:
    model = create_model("resnet20", recalib=none)
    assert all(isinstance(op, nn.Identity) for op in _ops(model))
    assert model.recalib_spec is None
    assert set(model.state_dict()) == set(create_model("resnet20").state_dict())


def test_small_channel_defaults() -> None:
    """SGE keeps at least 4 channels per group (64 groups where the channels allow); an explicit value wins; SE
    keeps max(1, C // 16)."""
    groups = [op.groups for op in _ops(create_model("resnet20", recalib="sge"))]
    assert groups == [4] * 3 + [8] * 3 + [16] * 3  # 16, 32, 64 channels: 4 channels per group
    assert {op.groups for op in _ops(create_model("densenet_bc_100", recalib="sge"))} == {3}  # 12 new features
    assert {op.groups for op in _ops(create_model("densenet_bc_190", recalib="sge"))} == {10}  # 40 new features
    assert {op.groups for op in _ops(create_model("resnet50", recalib="sge"))} == {64}  # 256..2048 channels
    assert {op.groups for op in _ops(create_model("resnet20", recalib="sge(groups=4)"))} == {4}
    assert [op.hidden for op in _ops(create_model("resnet20", recalib="se"))][::3] == [1, 2, 4]


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "resnet50"])
def test_every_sge_keeps_semantic_groups_and_equals_build_recalib(name: str) -> None:
    """Every SGE of the zoo has >= 4 channels per group, and build_recalib("sge", C) builds the same operator."""
    from recalib import build_recalib

    ops = [op for op in _ops(create_model(name, recalib="sge")) if isinstance(op, SpatialGroupEnhance)]
    assert ops
    for op in ops:
        assert op.channels // op.groups >= 4 and op.channels % op.groups == 0
        assert op.groups == 64 or op.channels // op.groups == 4  # as many groups as allowed, at most 64
        twin = build_recalib("sge", op.channels)
        assert repr(twin) == repr(op)
        assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in op.state_dict().items()}
    assert build_recalib("sge", 16).groups == 4


def test_img_size_gives_global_theta_gather_its_feature_size() -> None:
    model = create_model("resnet20", recalib="ge(variant='theta')", img_size=28)
    assert [op.feat_size for op in _ops(model)][::3] == [(28, 28), (14, 14), (7, 7)]
    model = create_model("resnet18", recalib="ge(variant='theta')", img_size=224)
    assert [op.feat_size for op in _ops(model)][::2] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    with pytest.raises(ValueError, match="img_size"):
        create_model("resnet20", recalib="ge(variant='theta')")


# ------------------------------------------------------------------------------------ placement ---
def test_cifar_block_recalibrates_the_residual_branch_only() -> None:
    model = create_model("resnet20", recalib=Half).eval()
    block = model.layer2[0]  # stride 2, 16 -> 32 channels: option-A shortcut
    assert isinstance(block, CifarBasicBlock)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        expected = torch.relu(0.5 * branch + block.shortcut(x))
        out = block(x)
    torch.testing.assert_close(block.recalib.inputs[-1], branch)  # the op sees the last BN's output
    torch.testing.assert_close(out, expected)


def test_bottleneck_recalibrates_after_bn3() -> None:
    model = create_model("resnext50_32x4d", recalib=Half).eval()
    block = model.layer2[0]
    x = torch.randn(1, 256, 8, 8)
    with torch.no_grad():
        out = block.relu(block.bn1(block.conv1(x)))
        out = block.relu(block.bn2(block.conv2(out)))
        branch = block.bn3(block.conv3(out))
        expected = block.relu(0.5 * branch + block.downsample(x))
        got = block(x)
    assert block.recalib.channels == 512
    torch.testing.assert_close(block.recalib.inputs[-1], branch)
    torch.testing.assert_close(got, expected)


def test_densenet_single_stage_recalibrates_the_new_features() -> None:
    model = create_model("densenet_bc_100", recalib=Half).eval()
    layer = model.block2[3]
    assert isinstance(layer, DenseLayer) and layer.recalib.channels == 12
    x = torch.randn(2, 108 + 3 * 12, 8, 8)
    with torch.no_grad():
        new = layer.conv2(torch.relu(layer.norm2(layer.conv1(torch.relu(layer.norm1(x))))))
        out = layer(x)
    torch.testing.assert_close(out, torch.cat([x, 0.5 * new], 1))


def test_densenet_multi_stage_gate_comes_from_the_layer_input() -> None:
    model = create_model("densenet_bc_100", recalib=RecordingMSSAR, multi_stage=True).eval()
    widths = [op.context_channels for op in _ops(model)]
    assert widths[:3] == [24, 36, 48] and widths[16] == 108 and widths[32] == 150
    layer = model.block1[2]
    x = torch.randn(2, 48, 8, 8)
    with torch.no_grad():
        out = layer(x)
    new, context = layer.recalib.seen
    assert context is x and new.shape == (2, 12, 8, 8)
    torch.testing.assert_close(out[:, 48:], MSSAR.forward(layer.recalib, new, x))
    assert all(op.channels == 12 for op in _ops(model))


def test_option_a_shortcut_subsamples_and_pads_zeros() -> None:
    sc = _ShortcutA(2, 16)
    x = torch.randn(2, 16, 7, 7)
    y = sc(x)
    assert y.shape == (2, 32, 4, 4)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0
    assert not list(sc.parameters())


def test_init_leaves_operators_alone() -> None:
    model = create_model("resnet20", recalib="sge")
    for op in _ops(model):  # SGE's gamma = 0, beta = 1 (docs/spec.md, section 4)
        assert torch.all(op.weight == 0) and torch.all(op.bias == 1)
    conv = model.layer3[0].conv2.weight
    assert abs(conv.std().item() - (2 / (64 * 9)) ** 0.5) < 0.01  # He-normal, fan-out


def test_v1_layout_and_zero_init_options() -> None:
    v1 = create_model("resnet50", stride_in_1x1=True)
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    v15 = create_model("resnet50")
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    z = create_model("resnet20", zero_init_residual=True)
    assert torch.all(z.layer1[0].bn2.weight == 0)
    assert torch.all(create_model("resnet20").layer1[0].bn2.weight == 1)  # nothing zeroed by default


# --------------------------------------------------------------------------------------- errors ---
def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet21'") as exc:
        create_model("resnet21")
    assert all(name in str(exc.value) for name in list_models())


def test_unknown_operator_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown recalibration operator 'cbam'") as exc:
        create_model("resnet20", recalib="cbam")
    assert all(name in str(exc.value) for name in list_recalibs())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(recalib="mssar", recalib_args={"scale": (1,)}), "unknown argument.*scale.*valid arguments"),
        (dict(recalib="se(reduction=0)"), "reduction"),
        (dict(shortcut="C"), "shortcut"),
        (dict(depth=32), "fixes depth"),
        (dict(widht=3), "unknown model argument.*widht.*valid arguments"),
        (dict(in_chans=0), "in_chans"),
        (dict(num_classes=-2), "num_classes"),
        (dict(recalib="none", recalib_args={"x": 1}), "takes no arguments"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        create_model("resnet20", **kwargs)


@pytest.mark.parametrize("recalib", [None, "se", "sge", "ge", Half])
def test_multi_stage_needs_mssar(recalib: object) -> None:
    with pytest.raises(ValueError, match="multi_stage=True.*mssar"):
        create_model("densenet_bc_100", recalib=recalib, multi_stage=True)


def test_recalib_of_wrong_type() -> None:
    with pytest.raises(TypeError, match="recalib must be"):
        create_model("resnet20", recalib=3)
    with pytest.raises(TypeError, match="nn.Module subclass"):
        resolve_recalib(int)


# ----------------------------------------------------------------------------------- pretrained ---
def test_pretrained_needs_an_operator_by_name() -> None:
    """The weights are catalogued by operator spec: a class without one cannot be matched (loading itself:
    tests/models/test_pretrained_idioms.py)."""
    with pytest.raises(ValueError, match="pretrained"):
        create_model("resnet20", recalib=Half, pretrained="x")


# ---------------------------------------------------------------------------------- torchvision ---
@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_torchvision_state_dicts_load(name: str) -> None:
    tv = pytest.importorskip("torchvision").models
    ref = getattr(tv, name)().eval()
    model = create_model(name).eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))


def test_registered_operator_classes_keep_their_type() -> None:
    for spec, cls in [("se", SqueezeExcite), ("ge", GatherExcite), ("sge", SpatialGroupEnhance), ("mssar", MSSAR)]:
        assert all(type(op) is cls for op in _ops(create_model("resnet20", recalib=spec)))
