"""The package is complete: every data file under ``src/recalib`` is declared package data, the shipped studies
are found with :mod:`importlib.resources`, and the CLI finds them from any folder (the installed wheel is checked
end to end by ``scripts/check_wheel.sh``)."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from recalib import cli
from recalib.studies import list_studies, shipped_studies_dir

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "recalib"
SHIPPED_NAMES = {"fashion-mnist", "multi-stage", "sliding-vs-regional", "table2-cifar", "table3-scales",
                 "table5-imagenet"}


def _tracked_files(folder: Path) -> list[str]:
    """Files git tracks under ``folder`` (relative to it); every file on disk outside a git checkout."""
    if (ROOT / ".git").exists():
        out = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=folder, check=True, capture_output=True)
        return [f for f in out.stdout.decode().split("\0") if f]
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def test_every_data_file_of_the_package_is_declared_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["recalib"]
    data = [f for f in _tracked_files(PACKAGE) if not f.endswith(".py")]
    assert any(f.startswith("studies/shipped/") for f in data)
    missing = [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_shipped_studies_are_package_resources():
    folder = resources.files("recalib.studies") / "shipped"
    names = {entry.name.removesuffix(".toml") for entry in folder.iterdir() if entry.name.endswith(".toml")}
    assert names == SHIPPED_NAMES
    assert Path(str(folder)) == shipped_studies_dir() == PACKAGE / "studies" / "shipped"
    assert not (ROOT / "studies").exists(), "the studies live in the package, not beside it"
    assert set(list_studies()) >= SHIPPED_NAMES


def test_study_list_from_a_folder_outside_the_checkout(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    listed = subprocess.run([sys.executable, "-m", "recalib", "study", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines() if line.strip()} >= SHIPPED_NAMES


def test_ci_builds_the_docs_and_checks_the_wheel():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert "bash scripts/check_wheel.sh" in test_sh and "mkdocs build --quiet --strict" in test_sh
    check = (ROOT / "scripts" / "check_wheel.sh").read_text()
    assert "-m build" in check and "--system-site-packages" in check


def test_version_option_prints_the_project_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out.strip() == f"recalib {version}"


def test_the_shipped_weights_format_is_a_core_dependency():
    assert list((PACKAGE / "pretrained").glob("*.safetensors"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert "safetensors" in names
