"""The GPU readiness check (``benchmarks/gpu_check.py``) runs end to end with ``--quick`` on the CPU: every
section exits 0, and the derived numbers are recomputed here from the files the sections wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_quick_writes_every_section(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["schema"] == "recalib-gpu-check/1" and data["quick"] is True
    assert set(data["sections"]) == {"probe", "ops_eager", "train_resnet20", "protocol", "torchrun"}
    for name, section in data["sections"].items():
        assert section["returncode"] == 0 and not section["timed_out"], name
        assert section["command"][0] == sys.executable

    probe = data["derived"]["probe"]  # the questions a first GPU answers: ratios, dynamic export, determinism
    steps = {(r["model"], r["mode"], r["recalib"]): r["step_s"] for r in probe["train"]}
    assert set(steps) == {("resnet20", "eager", rc) for rc in ("none", "se", "mssar")}
    (ratio,) = probe["ratios"]
    assert ratio["mssar_over_se"] == pytest.approx(steps[("resnet20", "eager", "mssar")] / steps[("resnet20", "eager", "se")])
    assert ratio["se_over_none"] == pytest.approx(steps[("resnet20", "eager", "se")] / steps[("resnet20", "eager", "none")])
    assert probe["export"]["ok"] and set(probe["export"]["max_abs_diff"]) == {"28x28", "32x32", "20x30"}
    assert probe["determinism"]["loss_equal"] and probe["determinism"]["grads_equal"]

    ops = {(tuple(r["shape"]), r["op"]): r for r in data["derived"]["ops"]["eager"]}
    assert {op for _, op in ops} == {"se", "ge", "sge", "mssar", "mssar_sliding"}
    for (shape, _op), r in ops.items():
        assert r["ratio_to_se"] == pytest.approx(r["median_ms"] / ops[(shape, "se")]["median_ms"])

    train = {r["recalib"]: r for r in data["derived"]["train"]["resnet20"]}
    assert set(train) == {"none", "se", "mssar"}
    assert train["se"]["step_time_ratio_to_se"] == 1.0
    assert train["mssar"]["step_time_ratio_to_se"] == pytest.approx(
        train["se"]["images_per_s"] / train["mssar"]["images_per_s"])

    rows = [json.loads(x) for x in (tmp_path / "protocol" / "metrics.jsonl").read_text().splitlines()]
    proto = data["derived"]["protocol"]
    assert len(rows) == 2 == len(proto["epoch_seconds"])
    assert proto["implied_minutes"] == pytest.approx((rows[-1]["seconds"] + rows[-1]["eval_seconds"]) * 160 / 60)

    run = data["derived"]["torchrun"]
    assert run["status"] == "completed" and run["world_size"] == 1
