"""The whole zoo x every operator: parameter counts against closed-form formulas, forward shapes, gradients
reaching every parameter, Fashion-MNIST-shaped inputs, the backbone interface and torch.compile."""

from __future__ import annotations

import pytest
import torch
from _arch_formulas import OPS, zoo_params

import recalib
from recalib.models import create_model, list_models

ZOO = [
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "densenet_bc_100", "densenet_bc_190",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d",
]
CIFAR = ZOO[:7]
# Small but non-trivial inputs: every stage keeps >= 2x2 positions except where noted.
TRAIN_SIZE = {n: 32 for n in CIFAR} | {"densenet_bc_190": 16} | {n: 64 for n in ZOO[7:]} | {"resnet101": 32}
SLOW = {"densenet_bc_190"}
#: The complete spec of "mssar" on the CIFAR zoo, written out by hand from MSSAR's signature.
MSSAR_CIFAR = "mssar(context_channels=None, reduction=1, scales=(1, 2, 4), strategy='regional')"
MSSAR_IMAGENET = MSSAR_CIFAR.replace("reduction=1,", "reduction=16,")  # the paper's Table 5 budget


def _zoo_params(slow_models: set[str]) -> list[object]:
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow_models else n for n in ZOO]


def test_list_models_is_the_zoo() -> None:
    assert list_models() == ZOO
    assert recalib.list_models() == ZOO


# ----------------------------------------------------------------------------- published numbers ---
def test_formulas_reproduce_published_counts() -> None:
    """The closed-form counts agree with the numbers the papers / reference implementations publish."""
    assert zoo_params("resnet20") == 269_722
    assert zoo_params("densenet_bc_100") == 769_162
    assert zoo_params("resnet18") == 11_689_512  # torchvision
    assert zoo_params("resnet34") == 21_797_672
    assert zoo_params("resnet50") == 25_557_032
    assert zoo_params("resnet101") == 44_549_160
    assert zoo_params("resnext50_32x4d") == 25_028_904
    assert zoo_params("resnet50", "se") == 28_088_024  # SE-ResNet-50, r = 16 (SENet's released model)
    assert round(zoo_params("densenet_bc_190") / 1e6, 1) == 25.6  # DenseNet paper, Table 2
    assert round(zoo_params("resnet110") / 1e6, 2) == 1.73  # He et al. 2016, Table 6


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", ZOO)
def test_parameter_count_matches_formula(name: str, op: str) -> None:
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        model = create_model(name, recalib=op)
    assert sum(p.numel() for p in model.parameters()) == zoo_params(name, op)


@pytest.mark.parametrize(
    "name, kwargs, formula_kwargs",
    [
        ("resnet20", dict(shortcut="B"), dict(shortcut="B")),
        ("resnet56", dict(num_classes=100, in_chans=1), dict(num_classes=100, in_chans=1)),
        ("densenet_bc_100", dict(multi_stage=True), dict(multi_stage=True)),
        ("resnet18", dict(num_classes=10, in_chans=1), dict(num_classes=10, in_chans=1)),
    ],
)
def test_parameter_count_variants(name: str, kwargs: dict, formula_kwargs: dict) -> None:
    op = "mssar"
    with torch.device("meta"):
        model = create_model(name, recalib=op, **kwargs)
    assert sum(p.numel() for p in model.parameters()) == zoo_params(name, op, **formula_kwargs)


# ------------------------------------------------------------------------- forward and backward ---
def _check_forward_backward(model: torch.nn.Module, x: torch.Tensor, num_classes: int) -> None:
    model.train()
    out = model(x)
    assert out.shape == (x.shape[0], num_classes)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a (finite) gradient: {missing[:5]}"
    # every operator really is in the graph: its parameters got non-zero gradients somewhere
    op_grads = [p.grad.abs().sum() for n, p in model.named_parameters() if ".recalib." in n]
    if op_grads:
        assert sum(op_grads) > 0


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", _zoo_params(SLOW))
def test_forward_shape_and_every_parameter_gets_a_gradient(name: str, op: str) -> None:
    model = create_model(name, recalib=op, num_classes=7)
    s = TRAIN_SIZE[name]
    _check_forward_backward(model, torch.randn(2, 3, s, s), 7)


@pytest.mark.parametrize("name", ["densenet_bc_100", pytest.param("densenet_bc_190", marks=pytest.mark.slow)])
def test_densenet_multi_stage_forward_backward(name: str) -> None:
    model = create_model(name, recalib="mssar", multi_stage=True)
    _check_forward_backward(model, torch.randn(2, 3, 16, 16), 10)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("name", _zoo_params(SLOW))
def test_fashion_mnist_input(name: str, op: str) -> None:
    """in_chans=1 at 28x28 (28 -> 14 -> 7 on the CIFAR zoo; down to 1x1 on the ImageNet models)."""
    model = create_model(name, recalib=op, in_chans=1).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 28, 28))
    assert out.shape == (1, model.num_classes)
    assert torch.isfinite(out).all()


def test_sliding_mssar_and_other_arguments_run() -> None:
    for spec in ["mssar(strategy='sliding')", "mssar(scales=(1, 2))", "ge(extent=2)", "se(reduction=4)", "sge(groups=4)"]:
        _check_forward_backward(create_model("resnet20", recalib=spec), torch.randn(2, 3, 28, 28), 10)
    model = create_model("resnet20", recalib="ge(variant='theta')", img_size=28)  # global theta needs feat_size
    _check_forward_backward(model, torch.randn(2, 3, 28, 28), 10)


# -------------------------------------------------------------------------------- the interface ---
@pytest.mark.parametrize("name, size", [("resnet20", 32), ("densenet_bc_100", 32), ("resnet50", 64), ("resnet18", 64)])
def test_backbone_interface(name: str, size: int) -> None:
    model = create_model(name, recalib="mssar").eval()
    x = torch.randn(2, 3, size, size)
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        model.get_submodule(info["module"]).register_forward_hook(
            lambda m, i, o, key=info["module"]: seen.__setitem__(key, o)
        )
        for info in model.feature_info
    ]
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.forward_head(feats)
        pooled = model.forward_head(feats, pre_logits=True)
    for h in hooks:
        h.remove()
    for info in model.feature_info:
        out = seen[info["module"]]
        assert out.shape[1] == info["num_chs"]
        assert out.shape[2] == -(-size // info["reduction"])
    assert feats.shape[1] == model.feature_info[-1]["num_chs"] == model.num_features
    assert pooled.shape == (2, model.num_features)
    torch.testing.assert_close(logits, model(x))
    assert model.model_name == name and str(model.recalib_spec) == (MSSAR_CIFAR if name in CIFAR else MSSAR_IMAGENET)  # complete (was "mssar")
    assert model.default_cfg["input_size"][1] == (224 if name in ("resnet50", "resnet18") else 32)


@pytest.mark.parametrize("name", ["resnet20", "densenet_bc_100", "resnext50_32x4d"])
def test_reset_classifier(name: str) -> None:
    model = create_model(name, recalib="se")
    x = torch.randn(2, 3, 32, 32)
    model.reset_classifier(5)
    assert model.num_classes == 5 and model(x).shape == (2, 5)
    assert model.get_classifier().weight.shape == (5, model.num_features)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)
    with pytest.raises(ValueError, match="num_classes"):
        model.reset_classifier(-1)


def test_num_classes_defaults() -> None:
    assert create_model("resnet20").num_classes == 10
    assert create_model("densenet_bc_100").num_classes == 10
    assert create_model("resnet18").num_classes == 1000
    assert create_model("resnet20", num_classes=100).fc.out_features == 100


def _randomise_bn_stats(model: torch.nn.Module) -> None:
    for m in model.modules():  # non-trivial BN statistics so eval mode is not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)


# torch.compile with the "aot_eager" backend: the whole model is captured as one graph (fullgraph=True) and
# run through AOT autograd's functionalised forward and backward. Inductor code generation is checked on the
# operators in tests/modules; on a whole ResNet-20 it costs 1-2 minutes of C++ compilation on a 2-core machine.
def test_torch_compile_matches_eager() -> None:
    torch._dynamo.reset()
    model = create_model("resnet20", recalib="mssar").eval()
    _randomise_bn_stats(model)
    x = torch.randn(2, 3, 16, 16)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def test_torch_compile_multi_stage_densenet_forward_backward() -> None:
    """The context path (op(new, context=x)) under compile, in training mode, gradients included."""
    from recalib.models import DenseNet, DenseNetConfig, resolve_recalib

    torch._dynamo.reset()
    model = DenseNet(DenseNetConfig(depth=10, multi_stage=True), resolve_recalib("mssar")).train()
    x = torch.randn(2, 3, 16, 16)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    out_c = compiled(x)
    grads_c = torch.autograd.grad(out_c.square().mean(), list(model.parameters()))
    out_e = model(x)
    grads_e = torch.autograd.grad(out_e.square().mean(), list(model.parameters()))
    torch.testing.assert_close(out_c, out_e, rtol=1e-4, atol=1e-5)
    for gc, ge in zip(grads_c, grads_e):
        torch.testing.assert_close(gc, ge, rtol=1e-3, atol=1e-5)


# ------------------------------------------------------------------------ MS-SAR's width per family ---
@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d"])
def test_imagenet_mssar_has_the_parameters_of_se(name: str) -> None:
    """The paper's Table 5 gives MS-SAR the parameters of SE on ImageNet: the zoo's reduction 16, within 1 %."""
    with torch.device("meta"):
        counts = {op: sum(p.numel() for p in create_model(name, recalib=op).parameters()) for op in ("se", "mssar")}
        wide = create_model(name, recalib="mssar", recalib_args={"reduction": 1})
        text = create_model(name, recalib="mssar(reduction=2)")
    assert abs(counts["mssar"] / counts["se"] - 1) < 0.01
    assert all(m.reduction == 1 for m in wide.modules() if type(m).__name__ == "MSSAR")  # recalib_args override
    assert all(m.reduction == 2 for m in text.modules() if type(m).__name__ == "MSSAR")  # so does the text


def test_cifar_mssar_keeps_d_over_l() -> None:
    with torch.device("meta"):
        plain, mssar = (sum(p.numel() for p in create_model("resnet56", recalib=op).parameters()) for op in ("none", "mssar"))
    assert mssar - plain == 96_120  # Section 4.1's D' = D/L, unchanged
