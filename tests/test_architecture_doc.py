"""docs/architecture.md is what scripts/make_architecture_doc.py writes from the code as it is now."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("make_architecture_doc", ROOT / "scripts" / "make_architecture_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_architecture_doc_is_up_to_date():
    doc = _script()
    assert (ROOT / "docs" / "architecture.md").read_text() == doc.render(), (
        "docs/architecture.md is out of date: run python3 scripts/make_architecture_doc.py")


def test_no_package_cycle_and_no_floor_reaches_up():
    doc = _script()
    graph = doc.import_graph()
    assert doc.cycles(graph) == []
    assert doc.floor_violations(graph) == []


def test_import_graph_reads_relative_and_function_imports(tmp_path, monkeypatch):
    doc = _script()
    pkg = tmp_path / "src" / "recalib"
    for name in ("low", "high"):
        (pkg / name).mkdir(parents=True)
        (pkg / name / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "_helper.py").write_text("X = 1\n")
    (pkg / "low" / "a.py").write_text("from .. import _helper\n\ndef f():\n    from ..high import b\n")
    (pkg / "high" / "b.py").write_text("from ..low.a import f\nimport recalib.low\n")
    monkeypatch.setattr(doc, "SRC", pkg)
    graph = doc.import_graph()
    assert graph["low"] == {"_helper": True, "high": False}
    assert graph["high"] == {"low": True}
    assert doc.cycles(graph) == [["high", "low"]]
    monkeypatch.setattr(doc, "FLOORS", ("low", "high"))
    assert doc.floor_violations(graph) == [("low", "high")]


def test_where_entries_must_exist(monkeypatch):
    doc = _script()
    monkeypatch.setattr(doc, "WHERE", (("nothing", "cli.py", "no_such_symbol", ""),))
    with pytest.raises(SystemExit, match="no_such_symbol"):
        doc.render()
