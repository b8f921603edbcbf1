"""Smoke test of the benchmark scripts: each runs with ``--quick`` in a subprocess and writes JSON of the
documented schema (environment, configuration, raw timings); the performance document is generated from
those files. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _run(script: str, *args: str, timeout: float = 300) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def _check_env(data: dict) -> None:
    env = data["env"]
    assert {"device", "versions", "git", "date"} <= env.keys()
    assert env["device"]["type"] == "cpu" and env["device"]["name"] and env["device"]["torch_threads"] >= 1
    assert {"python", "torch", "timm", "recalib"} <= env["versions"].keys()
    assert {"commit", "dirty"} <= env["git"].keys()


@pytest.mark.slow
def test_benchmark_scripts_quick(tmp_path: Path) -> None:
    ops, train, prof = tmp_path / "ops-cpu.json", tmp_path / "train-cpu.json", tmp_path / "profile-cpu.json"
    _run("bench_ops.py", "--quick", "--threads", "1", "--out", str(ops))
    _run("bench_train.py", "--quick", "--threads", "1", "--models", "resnet20", "--recalibs", "none,se,mssar", "--out", str(train))
    _run("profile_ops.py", "--quick", "--threads", "1", "--out", str(prof))

    data = json.loads(ops.read_text())
    assert data["schema"] == "recalib-bench-ops/1" and data["kind"] == "ops"
    _check_env(data)
    names = set(data["config"]["ops"])
    assert {"identity", "se", "timm_se", "sge", "sge_ref", "mssar", "mssar_obvious", "mssar_sliding"} <= names
    for r in data["results"]:
        assert {"op", "shape", "memory_format", "mode", "dtype", "times_ms", "median_ms", "error"} <= r.keys()
        assert (r["error"] is None) == bool(r["times_ms"]), r
        if r["error"] is None:
            assert all(t > 0 for t in r["times_ms"])
    failed = {(r["op"], r["memory_format"]) for r in data["results"] if r["error"]}
    assert failed == {("sge_ref", "channels_last")}  # the official formulation's view; nothing else may fail
    assert ops.with_suffix(".md").read_text().startswith("# Operator benchmark")

    data = json.loads(train.read_text())
    assert data["schema"] == "recalib-bench-train/1"
    _check_env(data)
    assert {(r["model"], r["recalib"]) for r in data["results"]} == {("resnet20", rc) for rc in ("none", "se", "mssar")}
    assert all(r["images_per_s"] and r["median_images_per_s"] > 0 for r in data["results"])

    data = json.loads(prof.read_text())
    assert data["schema"] == "recalib-profile-ops/1" and all("table" in r and r["fc_macs_forward"] >= 0 for r in data["results"])

    compare = tmp_path / "train-compare-cpu.json"  # this checkout against itself: the side-by-side machinery
    _run("bench_train.py", "--compare-old", "HEAD", "--compare-modes", "eager", "--quick", "--threads", "1", "--out", str(compare))
    data = json.loads(compare.read_text())
    assert data["kind"] == "train-compare" and data["config"]["old_commit"] == "HEAD"
    assert {(r["model"], r["code"], r["recalib"]) for r in data["results"]} >= {("resnet56", c, rc) for c in ("old", "new")
                                                                                for rc in ("se", "mssar")}
    assert {r["model"] for r in data["ratios"]} == {"resnet20", "resnet56", "resnet50"}

    doc = tmp_path / "performance.md"
    _run("make_performance_doc.py", "--results", str(tmp_path), "--out", str(doc), "--include-quick")
    text = doc.read_text()
    assert text.startswith("# Performance") and "## The training step" in text and "train-compare-cpu.json" in text
    assert "ops-cpu.json" in text
