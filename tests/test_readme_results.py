"""The README's Fashion-MNIST results block is generated from the committed report, never typed by hand."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_readme_results", ROOT / "scripts" / "make_readme_results.py")
assert _spec is not None and _spec.loader is not None
mrr = importlib.util.module_from_spec(_spec)
sys.modules["make_readme_results"] = mrr
_spec.loader.exec_module(mrr)


def _diff(mean: float, low: float, high: float, verdict: str) -> dict:
    return {"mean": mean, "low": low, "high": high, "verdict": verdict}


def test_render_reads_the_verdicts_of_the_report() -> None:
    rows = [
        {"operator": "none", "label": "none", "mean": 7.0, "std": 0.2, "n": 3},
        {"operator": "se", "label": "SE", "mean": 6.5, "std": 0.1, "n": 3,
         "vs_baseline": _diff(-0.5, -0.9, -0.1, "lower")},
        {"operator": "sge", "label": "SGE", "mean": 7.1, "std": 0.3, "n": 3,
         "vs_baseline": _diff(0.1, -0.4, 0.6, "within seed noise"), "vs_reference": _diff(0.6, 0.2, 1.0, "higher")},
    ]
    report = {"rows": rows, "baseline": "none", "reference": "se", "variant": "v", "schedule": "budget"}
    text = mrr.render(report)
    assert text.startswith(mrr.START) and text.endswith(mrr.END)
    assert "| SE | 6.50 ± 0.10 (n=3) | -0.50 [-0.90, -0.10] (lower) | – |" in text
    assert "| SGE | 7.10 ± 0.30 (n=3) | +0.10 [-0.40, +0.60] (within seed noise) | +0.60 [+0.20, +1.00] (higher) |" in text
    assert "Against none: outside the seed noise: SE (lower: -0.50 pp). Within the noise (the interval contains 0): SGE." in text
    assert "Against SE: outside the seed noise: SGE (higher: +0.60 pp)." in text
    assert "9 finished runs" in text
    assert "none: mean met, std met; SE: mean met, std met." in text  # "at most": 7.0 meets 7.0; SGE has no target



def test_an_unfinished_study_says_so_and_reads_nothing_without_an_interval() -> None:
    rows = [
        {"operator": "none", "label": "none", "mean": 7.69, "std": None, "n": 1},
        {"operator": "se", "label": "SE", "mean": 7.62, "std": None, "n": 1,
         "vs_baseline": {"mean": -0.07, "low": None, "high": None, "verdict": "n/a (one seed)", "n": 1}},
    ]
    report = {"rows": rows, "baseline": "none", "reference": "se", "variant": "v", "schedule": "budget",
              "runs_planned": 5, "unfinished": [{"run": "a__s1", "status": "pending"}, {"run": "b__s1", "status": "pending"},
                                                {"run": "c__s1", "status": "pending"}]}
    text = mrr.render(report)
    assert "2 of 5 runs finished: **in progress**" in text
    assert "| SE | 7.62 (n=1) | -0.07 (n=1, no interval) | – |" in text
    assert "Against none: no confidence interval yet" in text and "exceeds" not in text
    assert "none: mean missed, std n/a, one seed; SE: mean missed, std n/a, one seed." in text
    assert "Not finished yet (3): `a__s1`, `b__s1`, `c__s1`." in text


def test_committed_report_and_readme_block_are_what_the_committed_runs_give() -> None:
    """results/fashion-mnist/ and the README block are regenerated from the committed run files and compared."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: committed runs cannot be told from local ones")
    assert mrr.main(["--check"]) == 0, "run python3 scripts/make_readme_results.py and commit what it writes"


def test_the_report_ignores_run_files_git_does_not_track(tmp_path: Path) -> None:
    """A run finished on this machine but not committed must not change the committed report."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = mrr.committed_run_files()
    finished = sorted({Path(p).parent for p in tracked if p.endswith("summary.json")})
    if len(finished) < 2:
        pytest.skip("needs two committed finished runs")
    repo = tmp_path / "repo"
    (repo / "studies").mkdir(parents=True)
    shutil.copyfile(ROOT / "studies" / "fashion-mnist.toml", repo / "studies" / "fashion-mnist.toml")
    keep, local = finished[0], finished[1]
    for rel in tracked:
        if Path(rel).parent in (keep, local):
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, repo / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "studies", str(keep)], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one run"], cwd=repo, check=True)
    numbers = json.loads((mrr.build_report(tmp_path / "out", root=repo) / "report.json").read_text())
    assert numbers["runs_planned"] - len(numbers["unfinished"]) == sum(r["n"] for r in numbers["rows"]) == 1
    assert local.name in {u["run"] for u in numbers["unfinished"]}
