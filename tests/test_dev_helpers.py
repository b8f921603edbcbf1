"""Development-only code lives outside the installed package (issue 18): the benchmark harness in
``benchmarks/harness.py``, the git helpers of the report scripts in ``scripts/_git_tracked.py``, and no
test-only switch in the library."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

import recalib
import recalib._provenance

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(recalib.__file__).resolve().parent


def _load(path: Path, name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_development_helpers_are_not_in_the_package() -> None:
    assert importlib.util.find_spec("recalib.analysis.bench") is None
    assert not hasattr(recalib._provenance, "copy_git_tracked")
    assert not hasattr(recalib._provenance, "git_tracked_files")
    for path in SRC.rglob("*.py"):
        assert "RECALIB_TEST" not in path.read_text(), f"{path}: a test-only switch in the library"
    harness = _load(ROOT / "benchmarks" / "harness.py", "recalib_bench_harness")
    assert {"environment", "time_interleaved", "save_results", "markdown_table"} <= set(harness.__all__)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_copy_git_tracked_copies_only_tracked_files(tmp_path: Path) -> None:
    helpers = _load(ROOT / "scripts" / "_git_tracked.py", "recalib_git_tracked")
    repo = tmp_path / "repo"
    (repo / "runs" / "a").mkdir(parents=True)
    (repo / "runs" / "a" / "tracked.json").write_text("{}")
    (repo / "runs" / "a" / "local.json").write_text("{}")
    (repo / "other.txt").write_text("x")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "runs/a/tracked.json", "other.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    assert helpers.git_tracked_files(repo, "runs") == ["runs/a/tracked.json"]
    dest = tmp_path / "copy"
    assert helpers.copy_git_tracked(repo, "runs", dest) == ["runs/a/tracked.json"]
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["runs/a/tracked.json"]
