"""scripts/make_export_doc.py (the support table of every operator and export/compile path, found by running
each path) answers what the paths do."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_support_cell_rules() -> None:
    """The three answers mean what the page says: a path that raises is "no", a trace that keeps one size is
    "one size" (MS-SAR under jit.trace), a size-independent path is "yes"."""
    spec = importlib.util.spec_from_file_location("make_export_doc_rules", ROOT / "scripts" / "make_export_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.support("se", "jit.trace") == "yes"
    assert module.support("mssar", "jit.trace") == "one size"
    assert module.support("mssar", "export dynamic") == "yes"
    assert module.support("mssar", "jit.script") == "no"
