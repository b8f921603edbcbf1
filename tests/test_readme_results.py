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


def _diff(mean: float, low: float, high: float, verdict: str, higher_on: int = 0, lower_on: int = 0) -> dict:
    return {"mean": mean, "low": low, "high": high, "verdict": verdict, "n": 3, "higher_on": higher_on,
            "lower_on": lower_on}


def test_render_reads_the_verdicts_of_the_report() -> None:
    rows = [
        {"operator": "none", "label": "none", "mean": 7.0, "std": 0.2, "n": 3, "seeds": [0, 1, 2],
         "test_error": {"0": 7.2, "1": 7.0, "2": 6.8}, "git_commits": ["abcdef0123"], "wall_seconds": 3 * 3600.0},
        {"operator": "se", "label": "SE", "mean": 6.5, "std": 0.1, "n": 3,
         "vs_baseline": _diff(-0.5, -0.9, -0.1, "lower", 0, 3)},
        {"operator": "sge", "label": "SGE", "mean": 7.1, "std": 0.3, "n": 3,
         "vs_baseline": _diff(0.1, -0.4, 0.6, "not distinguishable at n = 3", 2, 1),
         "vs_reference": _diff(0.6, 0.2, 1.0, "higher", 3, 0)},
    ]
    report = {"rows": rows, "baseline": "none", "reference": "se", "variant": "v", "schedule": "budget",
              "provenance": {"init": ["paired"], "wall_seconds_total": 9 * 3600.0, "runs_finished": 9}}
    text = mrr.render({"v": report})
    assert text.startswith(mrr.START) and text.endswith(mrr.END)
    assert "| none | 7.00 ± 0.20 (n=3) | – | – | 7.20, 7.00, 6.80 | `abcdef0` |" in text
    assert "| SE | 6.50 ± 0.10 (n=3) | -0.50 [-0.90, -0.10] (lower) | – |" in text
    assert ("| SGE | 7.10 ± 0.30 (n=3) | +0.10 [-0.40, +0.60] (not distinguishable at n = 3) "
            "| +0.60 [+0.20, +1.00] (higher) |") in text
    assert ("SE: fewer errors than none on all 3 seeds, -0.50 [-0.90, -0.10]: fewer errors, shown (the interval "
            "excludes 0)") in text
    assert ("SGE: more errors than none on 2 of 3 seeds, fewer on 1, +0.10 [-0.40, +0.60]: not distinguishable at "
            "n = 3") in text
    assert "SGE: more errors than SE on all 3 seeds, +0.60 [+0.20, +1.00]: more errors, shown" in text
    assert "No operator is shown to make fewer errors than SE at this budget; SGE made more errors than SE" in text
    assert "No operator is shown to make fewer errors than none" not in text  # SE is
    assert "Ranked by mean test error (%): SE 6.50, none 7.00, SGE 7.10. Nominally best: SE; nominally worst: SGE." in text
    assert "9 finished runs" in text and "initialisation: paired" in text
    assert "none: mean met, std met; SE: mean met, std met." in text  # "at most": 7.0 meets 7.0; SGE has no target
    assert "9.0 single-thread run-hours of training for the 9 finished runs" in text and "none 1.00" in text


def test_an_unfinished_study_says_so_and_reads_nothing_without_an_interval() -> None:
    rows = [
        {"operator": "none", "label": "none", "mean": 7.69, "std": None, "n": 1},
        {"operator": "se", "label": "SE", "mean": 7.62, "std": None, "n": 1,
         "vs_baseline": {"mean": -0.07, "low": None, "high": None, "verdict": "n/a (one seed)", "n": 1}},
    ]
    report = {"rows": rows, "baseline": "none", "reference": "se", "variant": "v", "schedule": "budget",
              "runs_planned": 5, "unfinished": [{"run": "a__s1", "status": "pending"}, {"run": "b__s1", "status": "pending"},
                                                {"run": "c__s1", "status": "pending"}]}
    text = mrr.render({"v": report})
    assert "2 of 5 runs finished: **in progress**" in text
    assert "| SE | 7.62 (n=1) | -0.07 (n=1, no interval) | – |" in text
    assert "Against none: no confidence interval yet" in text and "shown" not in text
    assert "none: mean missed, std n/a, one seed; SE: mean missed, std n/a, one seed." in text
    assert "Not finished yet (3): `a__s1`, `b__s1`, `c__s1`;" in text
    assert "study run fashion-mnist --variant v --results results/studies" in text  # the command that resumes them


def test_a_variant_with_no_finished_run_lists_its_plan() -> None:
    plan = {"rows": [], "baseline": "none", "reference": "se", "variant": "w", "schedule": "ten", "runs_planned": 2,
            "unfinished": [{"run": "x__s0", "status": "pending"}, {"run": "y__s0", "status": "resumable"}]}
    text = mrr.render({"w": plan})
    assert "0 of 2 runs finished" in text and "Not finished yet (2): `x__s0`, `y__s0`" in text and "| operator" not in text


def test_reasons_are_read_from_the_committed_measurements(tmp_path: Path) -> None:
    val = tmp_path / "results" / "fashion-mnist" / "validation"
    for name, err, epochs in (("lr0.1_wd0.0005", 8.5, 5), ("lr0.1_wd0.0005_e10", 6.25, 10)):
        (val / name).mkdir(parents=True)
        (val / name / "summary.json").write_text(json.dumps({"final_test_error": err, "epochs_completed": epochs}))
    (tmp_path / "results" / "quickstart").mkdir(parents=True)
    (tmp_path / "results" / "quickstart" / "summary.json").write_text(json.dumps(
        {"final_test_error": 7.5, "epochs_completed": 3,
         "config": {"lr": 0.4, "batch_size": 256, "label_smoothing": 0.1}}))
    five = {"rows": [{"operator": "none", "mean": 7.75}]}
    text = "\n".join(mrr.render_reasons(tmp_path, five_epoch=five))
    assert "8.50 % after 5 epochs and 6.25 % after 10" in text
    assert "(lr 0.4, batch 256, label smoothing 0.1, flips only) reached 7.50 % test error with MS-SAR in 3 epochs" in text
    assert "gives the plain network 7.75 % after 5 epochs" in text


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
    keep, local = finished[0], finished[1]
    for rel in tracked:
        if Path(rel).parent in (keep, local):
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / rel, repo / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", str(keep)], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one run"], cwd=repo, check=True)
    numbers = json.loads((mrr.build_report(tmp_path / "out", root=repo) / "report.json").read_text())
    assert numbers["runs_planned"] - len(numbers["unfinished"]) == sum(r["n"] for r in numbers["rows"]) == 1
    assert local.name in {u["run"] for u in numbers["unfinished"]}


# ------------------------------------------------ the validation split of the budgeted schedule ---
_tune_spec = importlib.util.spec_from_file_location("tune_fashion_mnist_budget",
                                                    ROOT / "scripts" / "tune_fashion_mnist_budget.py")
assert _tune_spec is not None and _tune_spec.loader is not None
tune = importlib.util.module_from_spec(_tune_spec)
sys.modules["tune_fashion_mnist_budget"] = tune
_tune_spec.loader.exec_module(tune)


def _validation_run(runs: Path, run, errors: list[float]) -> None:  # noqa: ANN001 - the script's Run tuple
    folder = runs / tune.run_name(run)
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"epoch": i + 1, "test_error": e}) + "\n"
                                                  for i, e in enumerate(errors)))
    if len(errors) == run.epochs:
        (folder / "summary.json").write_text(json.dumps({"status": "completed"}))


def test_committed_validation_readme_is_what_the_committed_validation_runs_give() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: committed runs cannot be told from local ones")
    assert tune.main(["--check"]) == 0, "run python3 scripts/tune_fashion_mnist_budget.py --report and commit it"


def test_validation_rule_picks_the_lowest_last_epoch_error_and_checks_compare_with_it(tmp_path: Path) -> None:
    paper_wd, short_wd = tune.CANDIDATES
    _validation_run(tmp_path, paper_wd, [20.0, 15.0, 12.0, 10.0, 8.5])
    _validation_run(tmp_path, short_wd, [21.0, 16.0, 13.0, 11.0, 8.25])
    _validation_run(tmp_path, tune.BUDGET_CHECK, [19.0] * 9 + [7.0])
    _validation_run(tmp_path, tune.SGE_CHECK, [20.0, 18.0])  # in flight: two epochs of five
    text = tune.report(tmp_path)
    assert "Chosen: lr 0.1, wd 0.0005 (8.25 % last-epoch validation error)." in text
    assert "| 0.1 | 0.0001 | 20.00 | 15.00 | 12.00 | 10.00 | 8.50 |" in text
    assert "8.25 % for the chosen candidate, 7.00 % after 10 epochs (-1.25 points)" in text
    assert "| `sge(groups=4)` | 20.00 | 18.00 | — | — | — |" in text
    assert "This run has not finished; nothing is measured yet." in text
    assert "--recalib 'sge(groups=4)'" in text  # the command is quoted for the shell


def test_validation_report_refuses_a_choice_the_study_did_not_make(tmp_path: Path) -> None:
    paper_wd, short_wd = tune.CANDIDATES
    _validation_run(tmp_path, paper_wd, [20.0, 15.0, 12.0, 10.0, 7.5])
    _validation_run(tmp_path, short_wd, [21.0, 16.0, 13.0, 11.0, 8.25])
    with pytest.raises(SystemExit, match="the rule picks"):
        tune.report(tmp_path)
