"""Paired initialisation: for one seed, every operator's network starts from the same backbone weights."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from recalib.models import create_model
from recalib.models._common import paired_init
from recalib.train import distributed
from recalib.train._setup import _build_model
from recalib.train.config import TrainConfig

OPERATORS = ["none", "se", "ge", "sge", "mssar", "mssar(strategy='sliding')"]
INFO = SimpleNamespace(num_classes=10, in_chans=1, image_size=28)


def _backbone(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if "recalib" not in k.split(".")}


def _built(op: str, init: str, seed: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)  # as setup_run does before building the model
    cfg = TrainConfig(model="resnet20", recalib=op, dataset="fashion-mnist", seed=seed, init=init)
    model, _, _ = _build_model(cfg, INFO, torch.device("cpu"), distributed.DistInfo())
    return model


def test_paired_networks_of_one_seed_share_every_backbone_tensor() -> None:
    plain = _backbone(_built("none", "paired"))
    convs = [k for k, v in plain.items() if v.dim() == 4]
    assert len(convs) == 19 and "fc.weight" in plain  # ResNet-20: 1 + 9 x 2 convolutions, and the classifier
    for op in OPERATORS[1:]:
        model = _built(op, "paired")
        backbone = _backbone(model)
        assert backbone.keys() == plain.keys()
        unequal = [k for k in plain if not torch.equal(plain[k], backbone[k])]
        assert unequal == [], f"{op}: {unequal[:3]}"
        assert any("recalib" in k.split(".") for k in model.state_dict()) or op == "ge"  # GE theta- has no weights


def test_independent_initialisation_differs_between_operators_and_paired_differs_between_seeds() -> None:
    plain, se = _backbone(_built("none", "independent")), _backbone(_built("se", "independent"))
    random_keys = [k for k in plain if k.endswith("conv1.weight") or k.endswith("conv2.weight")]
    assert random_keys and all(not torch.equal(plain[k], se[k]) for k in random_keys[1:])
    other_seed = _backbone(_built("none", "paired", seed=4))
    paired = _backbone(_built("none", "paired"))
    assert all(not torch.equal(paired[k], other_seed[k]) for k in random_keys)


def test_paired_init_draws_the_documented_distributions_and_leaves_the_global_stream_alone() -> None:
    model = create_model("resnet56", in_chans=3, recalib="se")
    state = torch.random.get_rng_state()
    paired_init(model, 0)
    assert torch.equal(torch.random.get_rng_state(), state)
    w = model.layer3[0].conv2.weight  # 64 x 64 x 3 x 3: He normal, fan-out = 64 * 9
    assert abs(w.std().item() - (2 / (64 * 9)) ** 0.5) < 0.05 * (2 / (64 * 9)) ** 0.5
    fc = model.fc  # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
    assert fc.weight.abs().max() <= 1 / 64 ** 0.5 and fc.bias.abs().max() <= 1 / 64 ** 0.5
    se_before = {k: v.clone() for k, v in model.state_dict().items() if "recalib" in k.split(".")}
    paired_init(model, 1)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in se_before.items())  # operators untouched


@pytest.mark.parametrize("bad", ["pair", "", "PAIRED"])
def test_unknown_init_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="valid choices: paired, independent"):
        TrainConfig(init=bad)


def test_a_stored_config_without_init_reads_as_independent() -> None:
    values = TrainConfig().to_dict()
    del values["init"]
    assert TrainConfig.from_dict(values).init == "independent"  # what runs before the field existed did
    assert TrainConfig().init == "paired"
