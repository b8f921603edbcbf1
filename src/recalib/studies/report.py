"""Study reports: the paper's tables with mean ± std over seeds, paired differences with 95% intervals, curves.

Reproduces the presentation of Wang et al., "Multi-Scale Spatially-Asymmetric Recalibration for Image
Classification" (ECCV 2018, arXiv:1804.00787): Tables 2/3/5 (error per data set, FLOPs and parameters, the
extra cost over the baseline), Figures 3/4 (training/test curves averaged over runs) and Figure 5 (error
against computation). Deviations, all deliberate:

* every number is the **last-epoch** test error (``metrics.jsonl``'s last record), never the best epoch;
* the table shows mean ± sample standard deviation (n - 1) over seeds and n, and every seed is in
  ``runs.csv``; the paper reports means (Table 3: ± std);
* MACs (multiply-accumulates of one forward pass) stand where the paper writes FLOPs;
* comparisons are *paired*: for each seed (same data order, subset and initialisation stream), the
  operator's error minus the baseline's (and minus the reference's, e.g. SE), then the mean difference and a
  95% confidence interval from the t distribution with n - 1 degrees of freedom; n = 1 gives "n/a". An
  interval that excludes 0 is a difference shown at this number of seeds; one that contains 0 is not
  distinguishable at that n.

Outputs (``write_report``): ``report.md``, ``runs.csv``, ``report.json`` (the tables' numbers),
``curves.png`` and ``error_vs_macs.png``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import write_text_atomic
from .._optional import require
from .plan import DEFAULT_RESULTS
from .plots import plot_curves, plot_error_vs_macs
from .results import RunResult, by_cell, collect_results, last_error
from .schema import Study
from .stats import mean_std, paired_difference
from .tables import diverged_text, jsonable, markdown

__all__ = ["CSV_FIELDS", "default_commands", "report_numbers", "write_report"]


def report_numbers(study: Study, results: Sequence[RunResult]) -> dict[str, Any]:
    """Every number of the report's tables, as plain data (also written to report.json)."""
    cells = by_cell(results)
    rows = []
    for dataset in study.datasets:
        for model in study.models:
            base = cells.get((dataset, model, study.baseline)) if study.baseline else None
            ref = cells.get((dataset, model, study.reference)) if study.reference else None
            for op in study.operators:
                runs = cells.get((dataset, model, op.key), {})
                if not runs:
                    continue
                errs = {s: last_error(r) for s, r in sorted(runs.items())}
                top5 = {s: r.test_top5_error for s, r in sorted(runs.items())}
                mean, sd = mean_std(list(errs.values()))
                any_run = next(iter(runs.values()))
                params, macs = any_run.params, any_run.macs
                row: dict[str, Any] = {
                    "dataset": dataset, "model": model, "operator": op.key, "label": op.label,
                    "seeds": list(errs), "test_error": errs, "mean": mean, "std": sd, "n": len(errs),
                    "top5_mean": mean_std([v for v in top5.values() if v is not None])[0]
                    if all(v is not None for v in top5.values()) else None,
                    "params": params, "macs": macs,
                    "git_commits": sorted({str(r.summary.get("git_commit")) for r in runs.values()}),
                    "init": sorted({r.run.config.init for r in runs.values()}),
                    "wall_seconds": sum(float(r.summary.get("wall_seconds") or 0) for r in runs.values()),
                }
                for role, other in (("baseline", base), ("reference", ref)):
                    key = study.baseline if role == "baseline" else study.reference
                    if other is None or op.key == key or (role == "reference" and op.key == study.baseline):
                        continue
                    d = paired_difference(errs, {s: last_error(r) for s, r in other.items()})
                    o = next(iter(other.values()))
                    row[f"vs_{role}"] = None if d is None else {
                        "operator": key, "mean": d.mean, "low": d.low, "high": d.high, "n": d.n,
                        "seeds": list(d.seeds), "verdict": d.verdict,
                        "higher_on": d.higher_on, "lower_on": d.lower_on,
                        "relative": 100 * d.mean / mean_std([last_error(r) for r in other.values()])[0],
                    }
                    if role == "baseline" and o.params and params is not None:
                        row["extra_params_pct"] = 100 * (params - o.params) / o.params
                    if role == "baseline" and o.macs and macs is not None:
                        row["extra_macs_pct"] = 100 * (macs - o.macs) / o.macs
                rows.append(row)
    return {"study": study.name, "variant": study.variant, "schedule": study.schedule,
            "baseline": study.baseline, "reference": study.reference, "rows": rows}


def run_provenance(results: Sequence[RunResult]) -> dict[str, Any]:
    """Where the finished runs come from: devices, commits, library versions, total wall time."""
    done = [r for r in results if r.finished]

    def distinct(key: str) -> list[str]:
        return sorted({str(r.summary.get(key)) for r in done if r.summary.get(key) is not None})

    versions = sorted({json.dumps(r.summary.get("versions", {}), sort_keys=True) for r in done})
    return {
        "devices": distinct("device"),
        "git_commits": distinct("git_commit"),
        "init": sorted({r.run.config.init for r in done}),
        "versions": [json.loads(v) for v in versions],
        "wall_seconds_total": sum(float(r.summary.get("wall_seconds") or 0) for r in done),
        "runs_finished": len(done),
    }



CSV_FIELDS = ("study", "variant", "run_id", "dataset", "model", "operator", "operator_label", "spec", "seed",
              "status", "epochs", "epochs_completed", "train_images", "test_images", "final_test_error",
              "final_test_top5_error", "final_train_error", "final_test_loss", "params", "macs", "wall_seconds",
              "device", "git_commit")


def runs_csv(results: Sequence[RunResult]) -> str:
    """``runs.csv``: one row per planned run, finished or not."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in results:
        w.writerow({
            "study": r.run.study, "variant": r.run.variant or "", "run_id": r.run.run_id, "dataset": r.run.dataset,
            "model": r.run.model, "operator": r.run.operator.key, "operator_label": r.run.operator.label,
            "spec": r.run.operator.spec, "seed": r.run.seed, "status": r.status, "epochs": r.run.config.epochs,
            "epochs_completed": len(r.history),
            "train_images": r.summary.get("train_images"), "test_images": r.summary.get("test_images"),
            "final_test_error": r.test_error, "final_test_top5_error": r.test_top5_error,
            "final_train_error": r.last("train_error"), "final_test_loss": r.last("test_loss"),
            "params": r.params, "macs": r.macs, "wall_seconds": r.summary.get("wall_seconds"),
            "device": r.summary.get("device"), "git_commit": r.summary.get("git_commit"),
        })
    return buf.getvalue()


def default_commands(study: Study, results: str | os.PathLike[str], out: Path) -> list[str]:
    """The commands that ran and reported the study, as the report lists them."""
    variant = f" --variant {study.variant}" if study.variant else " --variant none"
    res = "" if str(results) == DEFAULT_RESULTS else f" --results {results}"
    return [f"recalib study run {study.name}{variant}{res}",
            f"recalib study report {study.name}{variant}{res} --out {out}"]


def write_report(
    study: Study,
    results: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    filters: Sequence[str] = (),
    allow_incomplete: bool = False,
    command: str | None = None,
) -> Path:
    """Write ``report.md``, ``runs.csv``, ``report.json``, ``curves.png`` and ``error_vs_macs.png``; return the folder.

    Raises ``ValueError`` when runs are missing or unfinished, unless ``allow_incomplete``; then they are
    listed in the report and left out of the numbers. Diverged runs are always listed and left out.
    Without matplotlib (the ``plots`` extra) nothing is written: :class:`recalib._optional.MissingExtraError`.
    """
    require("matplotlib.figure", "plots", "recalib study report's figures")  # before anything is written
    results_list = collect_results(study, results, filters)
    missing = [r for r in results_list if not r.finished]
    if not results_list:
        raise ValueError(f"study {study.dir_name}: no runs match {list(filters)}")
    diverged = [r for r in results_list if r.status == "diverged"]
    said = "; " + diverged_text(diverged) if diverged else ""
    if not any(r.finished for r in results_list):
        raise ValueError(f"study {study.dir_name}: no finished runs in {Path(results) / study.dir_name}{said}; "
                         f"run `recalib study run {study.name}` first")
    if missing and not allow_incomplete:
        listing = ", ".join(f"{r.run.run_id} ({r.status})" for r in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise ValueError(f"study {study.dir_name}: {len(missing)} run(s) not finished: {listing}{more}{said}; run "
                         "`recalib study run` again, or pass --allow-incomplete")
    folder = Path(out) if out is not None else Path(results) / study.dir_name / "report"
    folder.mkdir(parents=True, exist_ok=True)
    numbers = report_numbers(study, results_list)
    prov = run_provenance(results_list)
    commands = default_commands(study, results, folder)
    if command:
        commands = [commands[0], command]
    numbers["provenance"] = prov
    numbers["commands"] = commands
    numbers["runs_planned"] = len(results_list)
    numbers["unfinished"] = [{"run": r.run.run_id, "status": r.status} for r in missing]
    write_text_atomic(folder / "report.md", markdown(study, numbers, prov, commands, missing))
    write_text_atomic(folder / "runs.csv", runs_csv(results_list))
    write_text_atomic(folder / "report.json", json.dumps(jsonable(numbers), indent=2, default=str) + "\n")
    plot_curves(study, results_list, folder / "curves.png")
    plot_error_vs_macs(study, numbers, folder / "error_vs_macs.png")
    return folder
