"""Long commands show progress on a terminal and stay quiet in logs; ``eval --threads``; ``study run --dry-run``
counts each network once (issue 19 item 4)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import torch

from recalib.analysis import profile
from recalib.cli import main
from recalib.models import create_model
from recalib.models.complexity import params_and_macs
from recalib.studies import cost
from recalib.train import save_checkpoint

STUDY = """
[study]
name = "two-sets"
recipe = "paper-cifar-resnet"
datasets = ["cifar10", "cifar100", "fashion-mnist"]
seeds = [0, 1]

[grid]
models = ["resnet20"]

[[operators]]
key = "none"
label = "none"
spec = "none"

[[operators]]
key = "mssar"
label = "MS-SAR"
spec = "mssar(scales=(1, 2))"
"""


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _terminal(monkeypatch: pytest.MonkeyPatch) -> _Terminal:
    """stderr is a terminal from here on (set in the test itself: pytest's capture resets it after the fixtures)."""
    pytest.importorskip("tqdm")
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    return term


@pytest.fixture
def counted_models(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The models the cost model builds, in a fresh cache."""
    built: list[str] = []

    def spy(name: str, **kwargs: object) -> torch.nn.Module:
        built.append(name)
        return create_model(name, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cost, "_MACS_CACHE", {})
    monkeypatch.setattr(cost, "create_model", spy)
    return built


def _dry_run(tmp_path: Path) -> int:
    (tmp_path / "two-sets.toml").write_text(STUDY)
    return main(["study", "run", str(tmp_path / "two-sets.toml"), "--variant", "none", "--results",
                 str(tmp_path / "results"), "--dry-run"])


def test_dry_run_counts_each_network_once(tmp_path: Path, counted_models: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert _dry_run(tmp_path) == 0
    out, err = capsys.readouterr()
    assert "12 runs:" in out
    # 12 runs, 3 data sets (two share 3x32x32 inputs), 2 operators: 4 networks, not 12 (nor 6)
    assert len(counted_models) == 4
    assert "counting MACs" not in err  # not a terminal: no progress bar in the log


def test_dry_run_macs_equal_a_direct_count(tmp_path: Path, counted_models: list[str]) -> None:
    from recalib import studies as st

    (tmp_path / "two-sets.toml").write_text(STUDY)
    runs = st.plan_runs(st.load_study(tmp_path / "two-sets.toml", variant="none"), tmp_path / "results")
    for run in runs[:6]:  # seed 0: every data set x operator
        info = {"cifar10": (10, 3, 32), "cifar100": (100, 3, 32), "fashion-mnist": (10, 1, 28)}[run.dataset]
        model = create_model(run.model, num_classes=info[0], in_chans=info[1],
                             recalib=None if run.operator.spec == "none" else run.operator.spec)
        assert cost.forward_macs(run) == params_and_macs(model, (1, info[1], info[2], info[2]))[1], run.run_id


def test_dry_run_progress_on_a_terminal(tmp_path: Path, counted_models: list[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _terminal(monkeypatch)
    assert _dry_run(tmp_path) == 0
    assert "counting MACs" in terminal.getvalue() and "4/4" in terminal.getvalue()


def test_profile_counts_the_plain_model_once_and_shows_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = _terminal(monkeypatch)
    counted: list[int] = []
    real = profile.complexity

    def spy(model: torch.nn.Module, *args: object, **kwargs: object) -> dict[str, int]:
        counted.append(1)
        return real(model, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(profile, "complexity", spy)
    rows = profile.profile_table(["resnet20"], ["none", "se"], progress=True)
    assert len(counted) == 2  # the plain model (baseline and the "none" row) and SE
    plain = params_and_macs(create_model("resnet20"), (1, 3, 32, 32))
    assert (rows[0]["params"], rows[0]["macs"]) == plain
    assert "profile" in terminal.getvalue() and "2/2" in terminal.getvalue()


def _checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("resnet20", recalib="se", in_chans=1, num_classes=10)
    state = {"format_version": 1, "epoch": 1, "step": 1, "model": model.state_dict(),
             "model_args": {"name": "resnet20", "num_classes": 10, "in_chans": 1, "recalib": "se"},
             "config": {"model": "resnet20", "recalib": "se", "dataset": "fashion-mnist"}}
    return save_checkpoint(state, tmp_path / "checkpoint.pt")


@pytest.mark.parametrize("on_terminal", [False, True])
def test_eval_threads_and_progress(tmp_path: Path, on_terminal: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    err = _terminal(monkeypatch) if on_terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    threads = torch.get_num_threads()
    try:
        assert main(["eval", "--checkpoint", str(_checkpoint(tmp_path)), "--subset", "100", "--batch-size", "50",
                     "--device", "cpu", "--threads", "1", "--json", str(tmp_path / "m.json")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert json.loads((tmp_path / "m.json").read_text())["threads"] == 1
    if on_terminal:
        assert "eval fashion-mnist" in err.getvalue() and "2/2" in err.getvalue()
    else:
        assert err.getvalue() == ""


def test_export_says_what_it_does_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("safetensors")
    _checkpoint(tmp_path)
    terminal = _terminal(monkeypatch)
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "hf"), "--allow-dirty"]) == 0
    assert f"exporting {tmp_path} to {tmp_path / 'hf'}" in terminal.getvalue()
