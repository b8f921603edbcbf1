"""``scripts/export_pretrained.py`` on a tiny real study: seed 0 of every operator is exported (declared, not
picked), the card's statistics are the finished seeds', and a later call without checkpoints keeps the weights
and renews the statistics."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

STUDY = """
[study]
name = "tiny-export"
description = "two operators, two seeds, one short epoch"
recipe = "paper-cifar-resnet"
datasets = ["fashion-mnist"]
seeds = [0, 1]
baseline = "none"
schedule = "tiny"
overrides = { subset = 128, test_subset = 200, epochs = 1, batch_size = 64, milestones = [], device = "cpu", threads = 1, tensorboard = false }

[grid]
models = ["resnet20"]

[[operators]]
key = "none"
label = "none"
spec = "none"

[[operators]]
key = "se"
label = "SE"
spec = "se"
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_seed_zero_is_exported_and_statistics_follow_the_runs(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from recalib.data import load_small

    try:
        load_small("fashion-mnist", "test", download=False)
    except Exception as exc:  # the data set is on every machine of the project; elsewhere skip
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    toml, results, out = tmp_path / "tiny-export.toml", tmp_path / "results", tmp_path / "weights"
    toml.write_text(STUDY)
    p = _run("-m", "recalib", "study", "run", str(toml), "--results", str(results), "--variant", "none")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    export = ["scripts/export_pretrained.py", "--study", str(toml), "--variant", "none", "--results", str(results),
              "--tag", "tiny", "--out", str(out), "--allow-dirty"]
    p = _run(*export)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]

    folder = results / "tiny-export"
    errors = {(op, s): json.loads((folder / f"resnet20__{op}__fashion-mnist__s{s}" / "summary.json").read_text())
              ["final_test_error"] for op in ("none", "se") for s in (0, 1)}
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["recalib"] for e in manifest["weights"]] == ["none", "se"]
    for e in manifest["weights"]:
        op, m = e["recalib"], e["metrics"]
        assert m["seed"] == 0 and m["final_test_error"] == errors[(op, 0)]
        assert m["n"] == 2 and m["mean"] == pytest.approx(statistics.mean([errors[(op, 0)], errors[(op, 1)]]))
        assert m["std"] == pytest.approx(statistics.stdev([errors[(op, 0)], errors[(op, 1)]]))
        assert "declared before training" in m["selection"] and "seed 0" in e["card"]
        run_id = f"resnet20__{op}__fashion-mnist__s0"
        assert m["command"] == f"python3 -m recalib study run tiny-export --variant none --results {results} --filter {run_id}"
        assert f"`{m['command']}`" in e["card"]
        ckpt = torch.load(folder / f"resnet20__{op}__fashion-mnist__s0" / "checkpoint.pt", weights_only=True)
        weights = load_file(str(out / e["file"]))
        assert weights.keys() == ckpt["model"].keys()
        assert all(torch.equal(weights[k], ckpt["model"][k]) for k in weights)

    # Checkpoints are never committed: a later export (say, another session) keeps the weights and renews the
    # statistics from the run files; here seed 1 of SE is rewritten as if it had ended with another error.
    for ckpt_path in folder.glob("*/checkpoint.pt"):
        ckpt_path.unlink()
    se1 = folder / "resnet20__se__fashion-mnist__s1" / "metrics.jsonl"
    rows = [json.loads(x) for x in se1.read_text().splitlines()]
    rows[-1]["test_error"] = 50.0
    se1.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = {e["recalib"]: e["sha256"] for e in manifest["weights"]}
    p = _run(*export)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    again = {e["recalib"]: e for e in json.loads((out / "manifest.json").read_text())["weights"]}
    assert {k: e["sha256"] for k, e in again.items()} == before
    assert again["se"]["metrics"]["mean"] == pytest.approx(statistics.mean([errors[("se", 0)], 50.0]))
    assert again["none"]["metrics"]["mean"] == pytest.approx(statistics.mean([errors[("none", 0)], errors[("none", 1)]]))
