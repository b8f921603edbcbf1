"""Issue 18: one operator, one identity. For one spec every door builds the same operator; the recorded spec is
complete (it rebuilds the block's operator and the network); canonical forms differ where the networks differ;
the budgets keep SE's parameters where the rule says so."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from recalib.models import create_model, list_models, model_info
from recalib.modules import RecalibSpec, build_recalib

REPO = Path(__file__).resolve().parents[1]
OPERATORS = ["se", "ge", "sge", "mssar", "mssar(strategy='sliding', scales=(1, 2))"]


def _ops(model: nn.Module) -> list[nn.Module]:
    return [m for n, m in model.named_modules() if n.split(".")[-1] in ("recalib", "se")]


def _same(a: nn.Module, b: nn.Module) -> None:
    """Same class, same repr (every constructor argument), same parameter and buffer shapes."""
    assert type(a) is type(b) and repr(a) == repr(b)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def _hubconf():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", REPO / "hubconf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ the round trip ---
@pytest.mark.parametrize("name", list_models())
def test_recorded_spec_rebuilds_every_operator_and_the_network(name: str) -> None:
    """build_recalib(model.recalib_spec, C) is the zoo's operator of every C-channel block, and
    create_model(name, recalib=model.recalib_spec) takes the first model's state dict (strict)."""
    for op in OPERATORS:
        model = create_model(name, recalib=op, num_classes=2)
        spec = model.recalib_spec
        assert isinstance(spec, RecalibSpec) and spec.complete(model_info(name).budget) == spec  # complete
        assert model.pretrained_cfg["recalib"] == str(spec) and RecalibSpec.parse(str(spec)) == spec
        firsts: dict[int, nn.Module] = {}
        for block_op in _ops(model):
            firsts.setdefault(block_op.channels, block_op)
        for channels, block_op in firsts.items():
            _same(build_recalib(spec, channels), block_op)
        again = create_model(name, recalib=spec, num_classes=2)
        assert again.recalib_spec == spec
        again.load_state_dict(model.state_dict(), strict=True)
        again = create_model(name, recalib=str(spec), num_classes=2)  # the stored text: the same value
        assert again.recalib_spec == spec


def test_canonical_forms_differ_where_networks_differ() -> None:
    """Networks with different parameters have different recorded specs, and equal specs give equal networks."""
    seen: dict[str, tuple[str, tuple]] = {}
    for name in ("resnet20", "resnet50"):
        for op in ["mssar", "mssar(reduction=16)", "mssar(reduction=1)", "se", "se(reduction=8)", "sge",
                   "sge(groups=2)"]:
            model = create_model(name, recalib=op)
            shapes = tuple(sorted((k, tuple(v.shape)) for k, v in model.state_dict().items() if "recalib" in k))
            key = str(model.recalib_spec)
            if key in seen and seen[key][0] == name:
                assert seen[key][1] == shapes  # same spec on one architecture: same network
            seen[key] = (name, shapes)
    by_shapes: dict[tuple[str, tuple], set[str]] = {}
    for key, (name, shapes) in seen.items():
        by_shapes.setdefault((name, shapes), set()).add(key)
    assert all(len(keys) == 1 for keys in by_shapes.values()), by_shapes
    r50 = create_model("resnet50", recalib="mssar").recalib_spec
    assert r50 is not None and r50.kwargs["reduction"] == 16  # the ImageNet zoo's budget is recorded
    assert r50 != create_model("resnet50", recalib="mssar(reduction=1)").recalib_spec


# ------------------------------------------------------------------------------------ the doors ---
@pytest.mark.parametrize("text", ["mssar(scales=(1, 2))", "sge", "se(reduction=8)", "none", "NONE", "identity"])
def test_every_door_builds_the_same_operator(text: str, tmp_path: Path) -> None:
    """build_recalib, create_model, torch.hub, the CLI's config and a study's TOML agree on resnet20."""
    from recalib.studies.plan import plan_runs
    from recalib.studies.schema import parse_study
    from recalib.train.cli import config_from_args
    from recalib.train.config import TrainConfig

    reference = create_model("resnet20", recalib=text, in_chans=1)
    doors = {
        "spec": create_model("resnet20", recalib=RecalibSpec.parse(text), in_chans=1),
        "hub": _hubconf().resnet20(recalib=text, in_chans=1),
    }
    args = argparse.Namespace(recipe="quick", config=None, resume=False, recalib=text)
    cli_cfg = config_from_args(args)
    doors["cli"] = create_model(cli_cfg.model, recalib=cli_cfg.recalib, in_chans=1)
    stored = TrainConfig.from_dict(cli_cfg.to_dict())  # config.json read back
    assert stored == cli_cfg
    doors["config.json"] = create_model(stored.model, recalib=stored.recalib, in_chans=1)
    study = parse_study({
        "study": {"name": "s", "recipe": "quick", "datasets": ["fashion-mnist"], "seeds": [0]},
        "grid": {"models": ["resnet20"]},
        "operators": [{"key": "op", "label": "op", "spec": text}],
    })
    run = plan_runs(study, tmp_path)[0]
    doors["study"] = create_model(run.config.model, recalib=run.config.recalib, in_chans=1)
    ref_ops = _ops(reference)
    for door, model in doors.items():
        assert model.recalib_spec == reference.recalib_spec, door
        assert len(_ops(model)) == len(ref_ops)
        for a, b in zip(_ops(model), ref_ops):
            _same(a, b)
    if reference.recalib_spec is not None:
        for op in ref_ops:
            _same(build_recalib(reference.recalib_spec, op.channels), op)
    else:
        assert all(isinstance(op, nn.Identity) for op in ref_ops)


@pytest.mark.parametrize("text", ["mssar", "mssar(scales=(1, 2), strategy='sliding')", "se", "ge", "sge"])
def test_timm_adapter_builds_the_imagenet_zoos_operator(text: str) -> None:
    timm = pytest.importorskip("timm")
    from recalib.integrations.timm import attn_layer

    ours = create_model("resnet18", recalib=text, num_classes=2)
    theirs = timm.create_model("resnet18", block_args=dict(attn_layer=attn_layer(text)), num_classes=2)
    blocks = [b for stage in (theirs.layer1, theirs.layer2, theirs.layer3, theirs.layer4) for b in stage]
    assert len(blocks) == len(_ops(ours))
    for block, op in zip(blocks, _ops(ours)):
        _same(block.se, op)
    assert attn_layer(text).spec_for() == ours.recalib_spec


def test_pretrained_weights_match_the_recorded_spec() -> None:
    """The packaged weights load through the stored texts of their manifest and record the same complete spec."""
    from recalib.pretrained import list_pretrained

    for entry in list_pretrained():
        plain = create_model(entry.architecture, recalib=entry.recalib, in_chans=entry.in_chans,
                             num_classes=entry.num_classes)
        loaded = create_model(entry.architecture, recalib=plain.recalib_spec, in_chans=entry.in_chans,
                              num_classes=entry.num_classes, pretrained=entry.tag)
        assert loaded.recalib_spec == plain.recalib_spec
        for a, b in zip(_ops(loaded), _ops(plain)):
            _same(a, b)


# ------------------------------------------------------------------------------------- budgets ---
def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_timm_budgets_keep_ses_parameters() -> None:
    """ResNet-50 + MS-SAR within 2 % of seresnet50; EfficientNet-B0 + MS-SAR within 5 % of the plain network."""
    timm = pytest.importorskip("timm")
    from recalib.integrations.timm import attn_layer

    with torch.device("meta"):
        r50 = _count(timm.create_model("resnet50", block_args=dict(attn_layer=attn_layer("mssar"))))
        se50 = _count(timm.create_model("seresnet50"))
        b0 = _count(timm.create_model("efficientnet_b0", se_layer=attn_layer("mssar")))
        plain_b0 = _count(timm.create_model("efficientnet_b0"))
    assert abs(r50 - se50) <= 0.02 * se50, (r50, se50)
    assert abs(b0 - plain_b0) <= 0.05 * plain_b0, (b0, plain_b0)
    assert r50 == _count(create_model("resnet50", recalib="mssar"))  # the same operators as the ImageNet zoo's
