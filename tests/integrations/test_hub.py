"""hubconf.py: torch.hub.load from a local checkout builds every zoo model with an operator."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from recalib.models import list_models
from recalib.modules import MSSAR

REPO = str(Path(__file__).resolve().parents[2])


def test_hubconf_entry_points_are_the_zoo() -> None:
    """torch.hub.list (GitHub only) lists the public callables of hubconf.py: exactly the zoo."""
    spec = importlib.util.spec_from_file_location("recalib_hubconf", Path(REPO) / "hubconf.py")
    assert spec is not None and spec.loader is not None
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    entries = [f for f in dir(hub) if callable(getattr(hub, f)) and not f.startswith("_")]
    assert sorted(entries) == sorted(list_models())
    assert hub.dependencies == ["torch"]


def test_hub_load_resnet56_with_mssar() -> None:
    model = torch.hub.load(REPO, "resnet56", recalib="mssar", source="local")
    ops = [m for m in model.modules() if isinstance(m, MSSAR)]
    assert len(ops) == 27 and model.model_name == "resnet56" and model.recalib_spec == "mssar"
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_hub_forwards_model_arguments() -> None:
    model = torch.hub.load(REPO, "densenet_bc_100", recalib="mssar", multi_stage=True, num_classes=100,
                           in_chans=1, source="local")
    assert model.cfg.multi_stage and model.num_classes == 100 and model.conv1.in_channels == 1
