"""One name, one class: no two classes of the package share a name (issue 18: ``Run`` was the training run's
state in ``recalib.train`` and a planned run in ``recalib.studies``)."""

from __future__ import annotations

import ast
from pathlib import Path

import recalib

SRC = Path(recalib.__file__).resolve().parent


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(str(path.relative_to(SRC)))
    assert {name: files for name, files in where.items() if len(files) > 1} == {}
