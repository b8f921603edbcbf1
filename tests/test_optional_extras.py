"""Optional extras: a missing one fails with one line naming it (``pip install 'recalib[plots]'``), and a run
trained without matplotlib lists in ``summary.json`` only the files it wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from recalib import cli
from recalib._optional import MissingExtraError, require
from recalib.train import resolve_config, train

PLOTS_HINT = "pip install 'recalib[plots]'"


@pytest.fixture
def no_matplotlib(monkeypatch):
    """``import matplotlib`` (and of any of its modules) fails as it does where the ``plots`` extra is missing."""
    for name in [m for m in sys.modules if m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_require_names_the_extra_and_leaves_broken_installs_alone(tmp_path, monkeypatch):
    with pytest.raises(MissingExtraError) as info:
        require("recalib_test_absent_module", "plots", "drawing X")
    assert str(info.value) == f"drawing X needs recalib_test_absent_module, which is not installed: {PLOTS_HINT}"
    assert isinstance(info.value, ImportError)
    # An installed package that fails to import one of its own dependencies is a broken installation: its own
    # ImportError is kept, not replaced by advice to install the extra.
    (tmp_path / "recalib_test_broken").mkdir()
    (tmp_path / "recalib_test_broken" / "__init__.py").write_text("import recalib_test_its_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="recalib_test_its_missing_dependency") as broken:
        require("recalib_test_broken", "plots", "drawing X")
    assert not isinstance(broken.value, MissingExtraError)


@pytest.mark.slow
def test_train_without_matplotlib_lists_only_the_files_it_wrote(tmp_path, no_matplotlib, capsys):
    out = tmp_path / "run"
    cfg = resolve_config("quick", subset=128, test_subset=100, epochs=1, batch_size=64, threads=1, device="cpu",
                         progress=False, tensorboard=False, out=str(out))
    summary = train(cfg)
    assert not (out / "curves.png").exists()
    listed = json.loads((out / "summary.json").read_text())["files"]
    assert listed == summary["files"]
    assert set(listed) == {"config.json", "metrics.jsonl", "checkpoint.pt", "summary.json"}
    assert all(Path(path).is_file() for path in listed.values())
    said = [line for line in capsys.readouterr().out.splitlines() if "curves.png" in line]
    assert len(said) == 1 and PLOTS_HINT in said[0]


def _one_line_error(capsys, command: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"recalib {command}: error: ") and PLOTS_HINT in lines[0]
    return lines[0]


def test_visualize_without_matplotlib_is_one_line(tmp_path, no_matplotlib, capsys):
    out = tmp_path / "gates.png"
    assert cli.main(["visualize", "--pretrained", "fashion-mnist", "--images", "1", "--out", str(out)]) == 2
    _one_line_error(capsys, "visualize")
    assert not out.exists()


def test_study_report_without_matplotlib_is_one_line_and_writes_nothing(tmp_path, no_matplotlib, capsys):
    results = tmp_path / "results"
    assert cli.main(["study", "report", "fashion-mnist", "--variant", "none", "--results", str(results)]) == 2
    _one_line_error(capsys, "study")
    assert not results.exists()
