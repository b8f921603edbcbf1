"""complexity(): MACs against closed-form counts and the papers' published figures, elementwise work of the
operators against hand-derived counts, and the argument handling."""

from __future__ import annotations

from collections.abc import Iterator
from math import ceil

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import recalib
from recalib.models import create_model
from recalib.models.complexity import complexity, format_count, params_and_macs, resolve_input_size


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/conftest.py
    yield
    torch.set_num_threads(n)


# Closed-form MACs: a k x k convolution from a to b channels producing h x w outputs costs k*k*a*b*h*w / groups.
def cifar_resnet_macs(depth: int, size: int = 32, shortcut: str = "A", num_classes: int = 10) -> int:
    n = (depth - 2) // 6
    macs = 9 * 3 * 16 * size * size
    c_in = 16
    for i, c in enumerate((16, 32, 64)):
        s = ceil(size / 2**i)
        for _ in range(n):
            macs += 9 * c_in * c * s * s + 9 * c * c * s * s
            if c_in != c and shortcut == "B":
                macs += c_in * c * s * s
            c_in = c
    return macs + 64 * num_classes


def resnet18_macs(size: int = 224) -> int:
    s = size // 2
    macs = 49 * 3 * 64 * s * s
    s //= 2
    c_in = 64
    for i, c in enumerate((64, 128, 256, 512)):
        if i:
            s //= 2
        macs += 9 * c_in * c * s * s + 9 * c * c * s * s + 2 * 9 * c * c * s * s  # two blocks
        if c_in != c:
            macs += c_in * c * s * s  # projection shortcut
        c_in = c
    return macs + 512 * 1000


def densenet_bc_macs(depth: int, k: int, size: int = 32, transitions: bool = True) -> int:
    n = (depth - 4) // 6
    c = 2 * k
    macs = 9 * 3 * c * size * size
    for b in range(3):
        s = size // 2**b
        for _ in range(n):
            macs += (c * 4 * k + 9 * 4 * k * k) * s * s
            c += k
        if b < 2:
            if transitions:
                macs += c * (c // 2) * s * s
            c //= 2
    return macs + c * 10


# ----------------------------------------------------------------------------- known values ---
def test_resnet20_option_a() -> None:
    c = recalib.complexity(create_model("resnet20"), (1, 3, 32, 32))
    assert c["macs"] == cifar_resnet_macs(20) == 40_551_040
    assert format_count(c["macs"]) == "40.55M"
    assert c["params"] == 269_722


def test_resnet20_option_b_is_the_papers_408m() -> None:
    c = complexity(create_model("resnet20", shortcut="B"), 32)
    assert c["macs"] == cifar_resnet_macs(20, shortcut="B")
    assert round(c["macs"] / 1e6, 1) == 40.8  # MS-SAR paper, Tables 1 and 2


def test_resnet18_at_224() -> None:
    c = complexity(create_model("resnet18"), (1, 3, 224, 224))
    assert c["macs"] == resnet18_macs()
    assert round(c["macs"] / 1e9, 3) == 1.814
    assert c["params"] == 11_689_512


@pytest.mark.parametrize("depth", [56, 110])
def test_deeper_cifar_resnets_and_fashion_mnist_size(depth: int) -> None:
    assert complexity(create_model(f"resnet{depth}"), 32)["macs"] == cifar_resnet_macs(depth)
    assert complexity(create_model(f"resnet{depth}", in_chans=1), (1, 1, 28, 28))["macs"] == (
        cifar_resnet_macs(depth, 28) - 9 * 2 * 16 * 28 * 28  # one input channel instead of three
    )


def test_densenet_bc_100_and_the_papers_figure_without_transitions() -> None:
    c = complexity(create_model("densenet_bc_100"), 32)
    assert c["macs"] == densenet_bc_macs(100, 12)
    # The MS-SAR paper's 252.5M is this count without the two transition convolutions.
    assert round(densenet_bc_macs(100, 12, transitions=False) / 1e6, 1) == 252.5
    assert round(densenet_bc_macs(190, 40, transitions=False) / 1e9, 2) == 7.95


def test_resnet50_v1_layout_gives_the_papers_386g() -> None:
    v15 = complexity(create_model("resnet50"), 224)["macs"]
    v1 = complexity(create_model("resnet50", stride_in_1x1=True), 224)["macs"]
    assert round(v15 / 1e9, 2) == 4.09 and round(v1 / 1e9, 2) == 3.86


def test_baseline_macs_equal_torch_flop_counter() -> None:
    model = create_model("resnet32").eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert complexity(model, 32)["macs"] * 2 == fc.get_total_flops()


# ----------------------------------------------------------------------------- the operators ---
def _stages(size: int = 32) -> list[tuple[int, int]]:
    """(channels, positions) of ResNet-20's 9 blocks."""
    return [(c, (size // 2**i) ** 2) for i, c in enumerate((16, 32, 64)) for _ in range(3)]


def test_operator_macs_and_params_over_the_baseline() -> None:
    base = complexity(create_model("resnet20"), 32)
    se = complexity(create_model("resnet20", recalib="se"), 32)
    mssar = complexity(create_model("resnet20", recalib="mssar"), 32)
    ge = complexity(create_model("resnet20", recalib="ge"), 32)
    sge = complexity(create_model("resnet20", recalib="sge"), 32)
    # SE: two FCs C -> C//16 -> C on one pooled vector per image
    assert se["macs"] - base["macs"] == sum(2 * c * max(1, c // 16) for c, _ in _stages())
    # MS-SAR, regional: 2 C D' sum(K^2) (Section 3.5), D' = C // 3, scales 1, 2, 4
    assert mssar["macs"] - base["macs"] == sum(2 * c * (c // 3) * 21 for c, _ in _stages()) == 219_744
    assert ge["macs"] == sge["macs"] == base["macs"]  # no learned layers
    assert ge["params"] == base["params"]


def test_elementwise_work_of_se_and_ge() -> None:
    """SE adds per block: the mean reads C*HW, ReLU C//16, sigmoid C, the multiply C*HW (the FCs are MACs).
    Global GE theta- is the same without the FCs and ReLU."""
    base = complexity(create_model("resnet20"), 32)["elementwise"]
    se = complexity(create_model("resnet20", recalib="se"), 32)["elementwise"]
    ge = complexity(create_model("resnet20", recalib="ge"), 32)["elementwise"]
    assert se - base == sum(2 * c * hw + max(1, c // 16) + c for c, hw in _stages())
    assert ge - base == sum(2 * c * hw + c for c, hw in _stages())


def test_mssar_mac_increment_on_uneven_cells() -> None:
    """At 28x28 the 7x7 stage splits unevenly into 4 bands; the FCs still run on K^2 cells per scale."""
    base = complexity(create_model("resnet20"), 28)
    assert complexity(create_model("resnet20", recalib="mssar"), 28)["macs"] - base["macs"] == 219_744


class _PoolByProduct(nn.Module):
    """Cell means written as a product with a constant averaging matrix, then a learned linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("avg", torch.full((16, 1), 1 / 16))
        self.fc = nn.Linear(3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = (x.flatten(2) @ self.avg).squeeze(2)  # N, 3: a pooling, not a layer
        return self.fc(pooled)


def test_products_without_a_learned_operand_count_as_pooling() -> None:
    c = complexity(_PoolByProduct(), (2, 3, 4, 4), breakdown=True)
    assert c["macs"] == 2 * 3 * 5  # the linear layer only
    assert c["elementwise"] == 2 * 3 * 16  # every input element read once, as average pooling would
    assert c["params"] == 20


# ------------------------------------------------------------------------------------ arguments ---
def test_input_size_forms_and_batch() -> None:
    model = create_model("resnet20", in_chans=1)
    ref = complexity(model, (1, 1, 28, 28))
    assert complexity(model, 28) == ref
    assert complexity(model, (28, 28)) == ref
    assert complexity(model, (1, 28, 28)) == ref
    two = complexity(model, (2, 1, 28, 28))
    assert two["macs"] == 2 * ref["macs"] and two["params"] == ref["params"]
    assert complexity(model)["macs"] == complexity(model, 28)["macs"]  # pretrained_cfg: 1 channel = Fashion-MNIST, 28x28


def test_training_flags_restored_and_shared_parameters_counted_once() -> None:
    conv = nn.Conv2d(3, 3, 3, padding=1)
    model = nn.Sequential(conv, nn.BatchNorm2d(3), conv).train()
    model[1].eval()
    c = complexity(model, (1, 3, 8, 8))
    assert c["params"] == 84 + 6
    assert c["macs"] == 2 * 81 * 64
    assert model.training and model[0].training and not model[1].training


def test_plain_module_needs_an_input_size() -> None:
    with pytest.raises(ValueError, match="input_size is required"):
        complexity(nn.Sequential(nn.Conv2d(3, 4, 1)))
    with pytest.raises(ValueError, match="input_size must be"):
        resolve_input_size(create_model("resnet20"), (1, 2, 3, 4, 5))
    assert resolve_input_size(nn.Sequential(nn.Conv2d(5, 4, 1)), 7) == (1, 5, 7, 7)


def test_format_count() -> None:
    assert format_count(40_551_040) == "40.55M"
    assert format_count(1_814_073_344, 3) == "1.814G"
    assert format_count(999) == "999"


def test_params_and_macs_counts_a_copy() -> None:
    """What runs record and studies estimate with: complexity()'s params and MACs, the model left untouched."""
    model = create_model("resnet20", recalib="se", in_chans=1)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert params_and_macs(model, (1, 1, 28, 28)) == (sum(p.numel() for p in model.parameters()),
                                                      complexity(create_model("resnet20", recalib="se", in_chans=1),
                                                                 (1, 1, 28, 28))["macs"])
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
