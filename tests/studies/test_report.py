"""Study reports from synthetic run folders: every number checked against an independent computation."""

from __future__ import annotations

import builtins
import csv
import json
import math
import statistics
import sys
from pathlib import Path

import pytest

from recalib import studies as rep
from recalib.studies import load_study, plan_runs

STUDY = """
[study]
name = "synthetic"
description = "synthetic runs for the report tests"
recipe = "paper-cifar-resnet"
datasets = ["fashion-mnist"]
seeds = [0, 1, 2]
baseline = "none"
reference = "se"
schedule = "test schedule (synthetic)"
overrides = { epochs = 3, milestones = [2] }

[grid]
models = ["resnet20", "resnet32"]

[[operators]]
key = "none"
label = "none"
spec = "none"

[[operators]]
key = "se"
label = "SE"
spec = "se"

[[operators]]
key = "mssar"
label = "MS-SAR"
spec = "mssar"
"""

# Last-epoch test errors (%) per (model, operator) and seed 0, 1, 2.
FINAL = {
    ("resnet20", "none"): [10.0, 10.6, 10.2],
    ("resnet20", "se"): [9.7, 10.1, 10.3],
    ("resnet20", "mssar"): [9.1, 9.5, 9.4],
    ("resnet32", "none"): [9.0, 9.2, 9.3],
    ("resnet32", "se"): [8.9, 9.4, 9.0],
    ("resnet32", "mssar"): [8.8, 9.1, 9.35],
}
PARAMS = {"none": 1000, "se": 1100, "mssar": 1200}
MACS = {"resnet20": 30_000_000, "resnet32": 50_000_000}


def _write_run(run, final: float, epochs: int = 3, complete: bool = True) -> None:
    out = run.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(run.config.to_dict()))
    hist = []
    for e in range(1, epochs + 1):
        # The best epoch is deliberately not the last one: the report must use the last.
        err = final if e == epochs else final - 1.5 + 0.1 * e
        hist.append({"epoch": e, "step": 10 * e, "lr": 0.1, "train_loss": 1.0 / e, "train_error": 30.0 / e,
                     "test_loss": 0.5 + 0.01 * e, "test_error": err, "test_top5_error": err / 10,
                     "seconds": 1.0, "images_per_s": 100.0})
    (out / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hist))
    if complete:
        summary = {"status": "completed", "epochs_completed": epochs, "final_test_error": final,
                   "best_test_error": min(h["test_error"] for h in hist), "params": PARAMS[run.operator.key],
                   "macs": MACS[run.model] + PARAMS[run.operator.key], "wall_seconds": 12.0,
                   "device": "cpu (test)", "versions": {"torch": "x"}, "git_commit": "abc",
                   "train_images": 1234, "test_images": 567}
        (out / "summary.json").write_text(json.dumps(summary))


@pytest.fixture()
def synthetic(tmp_path: Path):
    path = tmp_path / "synthetic.toml"
    path.write_text(STUDY)
    study = load_study(path)
    results = tmp_path / "results"
    for run in plan_runs(study, results):
        _write_run(run, FINAL[(run.model, run.operator.key)][run.seed])
    return study, results


def test_t_quantile_known_values():
    # Student's t 0.975 quantiles from published tables (Abramowitz & Stegun Table 26.10).
    known = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 10: 2.228, 20: 2.086, 30: 2.042, 60: 2.000,
             120: 1.980}
    for dof, value in known.items():
        assert rep.t_quantile(dof) == pytest.approx(value, abs=6e-4), dof
    with pytest.raises(ValueError):
        rep.t_quantile(0)


def test_t_quantile_table_without_scipy(monkeypatch):
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError("no scipy")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "scipy", raising=False)
    monkeypatch.delitem(sys.modules, "scipy.stats", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_scipy)
    known = {1: 12.7062, 2: 4.3027, 9: 2.2622, 30: 2.0423, 31: 2.0395, 40: 2.0211, 60: 2.0003, 120: 1.9799,
             1000: 1.9623}
    for dof, value in known.items():
        assert rep.t_quantile(dof) == pytest.approx(value, abs=2e-4), dof
    assert rep.t_quantile(5, p=0.95) == pytest.approx(2.015, abs=6e-4)  # any p, not only 0.975 (issue 19)


def test_paired_difference_by_hand():
    a = {0: 9.1, 1: 9.5, 2: 9.4, 7: 1.0}
    b = {0: 10.0, 1: 10.6, 2: 10.2}
    d = rep.paired_difference(a, b)
    diffs = [-0.9, -1.1, -0.8]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 2)
    half = 4.302653 * sd / math.sqrt(3)
    assert d.seeds == (0, 1, 2) and d.n == 3
    assert d.mean == pytest.approx(mean) and d.low == pytest.approx(mean - half, abs=1e-6)
    assert d.high == pytest.approx(mean + half, abs=1e-6)
    assert d.verdict == "lower"
    one = rep.paired_difference({0: 1.0}, {0: 2.0, 1: 3.0})
    assert one.n == 1 and one.low is None and one.verdict.startswith("n/a")
    assert rep.paired_difference({0: 1.0}, {1: 2.0}) is None


def test_report_numbers_match_the_runs(synthetic, tmp_path):
    study, results = synthetic
    out = rep.write_report(study, results, out=tmp_path / "report")
    for name in ("report.md", "runs.csv", "report.json", "curves.png", "error_vs_macs.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    numbers = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    assert "test schedule (synthetic)" in md
    assert len(numbers["rows"]) == 6
    for row in numbers["rows"]:
        vals = FINAL[(row["model"], row["operator"])]
        assert row["mean"] == pytest.approx(statistics.mean(vals))
        assert row["std"] == pytest.approx(statistics.stdev(vals))
        assert row["n"] == 3
        assert f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f} (n=3)" in md
        base = FINAL[(row["model"], "none")]
        se = FINAL[(row["model"], "se")]
        if row["operator"] != "none":
            diffs = [v - b for v, b in zip(vals, base)]
            half = 4.302653 * statistics.stdev(diffs) / math.sqrt(3)
            assert row["vs_baseline"]["mean"] == pytest.approx(statistics.mean(diffs))
            assert row["vs_baseline"]["low"] == pytest.approx(statistics.mean(diffs) - half, abs=1e-5)
            assert row["extra_params_pct"] == pytest.approx(100 * (PARAMS[row["operator"]] - 1000) / 1000)
            assert row["vs_baseline"]["relative"] == pytest.approx(100 * statistics.mean(diffs) / statistics.mean(base))
        if row["operator"] not in ("se", "none"):
            diffs = [v - s for v, s in zip(vals, se)]
            assert row["vs_reference"]["mean"] == pytest.approx(statistics.mean(diffs))
    # Every seed in the CSV, with the last epoch's error (not the best epoch's).
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    plan = {run.run_id: run for run in plan_runs(study, results)}
    assert len(rows) == 18
    for r in rows:
        assert float(r["final_test_error"]) == pytest.approx(FINAL[(r["model"], r["operator"])][int(r["seed"])])
        assert r["status"] == "finished" and r["epochs_completed"] == "3"
        assert r["epochs"] == str(plan[r["run_id"]].config.epochs)
        assert (r["train_images"], r["test_images"]) == ("1234", "567")


def test_incomplete_study_is_an_error_unless_allowed(synthetic, tmp_path):
    study, results = synthetic
    run = next(r for r in plan_runs(study, results) if r.operator.key == "mssar" and r.seed == 2)
    (run.out / "summary.json").unlink()
    with pytest.raises(ValueError, match="not finished"):
        rep.write_report(study, results, out=tmp_path / "r1")
    out = rep.write_report(study, results, out=tmp_path / "r2", allow_incomplete=True)
    md = (out / "report.md").read_text()
    assert "incomplete" in md and run.run_id in md
    numbers = json.loads((out / "report.json").read_text())
    row = next(r for r in numbers["rows"] if r["model"] == run.model and r["operator"] == "mssar")
    assert row["n"] == 2 and row["vs_baseline"]["n"] == 2
    assert numbers["runs_planned"] == 18 and [u["run"] for u in numbers["unfinished"]] == [run.run_id]


def test_single_seed_reports_na(tmp_path):
    path = tmp_path / "one.toml"
    path.write_text(STUDY.replace("seeds = [0, 1, 2]", "seeds = [0]").replace('"synthetic"', '"one"'))
    study = load_study(path)
    results = tmp_path / "results"
    for run in plan_runs(study, results):
        _write_run(run, FINAL[(run.model, run.operator.key)][0])
    out = rep.write_report(study, results)
    md = (out / "report.md").read_text()
    assert "[n/a] (n=1)" in md and "n/a (one seed)" in md
    assert out == results / "one" / "report"


def test_a_bad_metrics_line_names_its_file(synthetic, tmp_path):
    """Issue 22, item 11: a bad line of metrics.jsonl was reported without the file's name."""
    study, results = synthetic
    run = plan_runs(study, results)[4]
    path = run.out / "metrics.jsonl"
    path.write_text(path.read_text() + "{truncated\n")
    with pytest.raises(ValueError, match=rf"^{path}, line 4: not JSON") as info:
        rep.write_report(study, results, out=tmp_path / "r")
    assert "\n" not in str(info.value)
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=rf"^{path}, line 1: expected a JSON object per epoch"):
        rep.write_report(study, results, out=tmp_path / "r")


def test_a_bad_summary_is_reported_as_broken(synthetic, tmp_path):
    """Issue 22, item 9: a summary.json holding [] crashed the report as it crashed `study run`."""
    study, results = synthetic
    run = plan_runs(study, results)[4]
    (run.out / "summary.json").write_text("[]")
    with pytest.raises(ValueError, match="not finished"):
        rep.write_report(study, results, out=tmp_path / "r1")
    out = rep.write_report(study, results, out=tmp_path / "r2", allow_incomplete=True)
    assert [u["run"] for u in json.loads((out / "report.json").read_text())["unfinished"]] == [run.run_id]
