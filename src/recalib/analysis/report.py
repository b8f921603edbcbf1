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
  interval that excludes 0 is a difference larger than the seed noise; one that contains 0 is not.

Outputs (``write_report``): ``report.md``, ``runs.csv``, ``report.json`` (the tables' numbers),
``curves.png`` and ``error_vs_macs.png``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .study import Run, Study, plan_runs, run_status, select_runs

__all__ = [
    "RunResult",
    "collect_results",
    "mean_std",
    "paired_difference",
    "t_quantile",
    "write_report",
]

# Two-sided 95% quantiles t_{0.975, dof} for dof 1..30 (standard tables; checked against scipy in the tests).
_T975 = (
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)
_Z975 = 1.959963984540054


def t_quantile(dof: int, p: float = 0.975) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (scipy when installed).

    Without scipy only ``p = 0.975`` is available: a table for dof <= 30 and, beyond, the Cornish-Fisher
    expansion around the normal quantile (error < 1e-5 for dof > 30).
    """
    if dof < 1:
        raise ValueError(f"t_quantile needs at least 1 degree of freedom, got {dof}")
    try:
        from scipy import stats
    except ImportError:
        if p != 0.975:
            raise ValueError("without scipy only the 0.975 quantile is available") from None
        if dof <= len(_T975):
            return _T975[dof - 1]
        z, v = _Z975, float(dof)
        return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
                + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))
    return float(stats.t.ppf(p, dof))


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1; ``None`` for a single value)."""
    if not values:
        raise ValueError("mean_std of no values")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-seed differences a - b and its 95% CI (``None`` with fewer than two pairs)."""

    mean: float
    n: int
    low: float | None
    high: float | None
    seeds: tuple[int, ...]

    @property
    def verdict(self) -> str:
        if self.low is None or self.high is None:
            return "n/a (one seed)"
        if self.high < 0:
            return "lower"
        if self.low > 0:
            return "higher"
        return "within seed noise"


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> PairedDifference | None:
    """Paired difference a[seed] - b[seed] over the seeds both have; ``None`` when they share none."""
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    mean, sd = mean_std(diffs)
    if sd is None:
        return PairedDifference(mean, 1, None, None, seeds)
    half = t_quantile(len(diffs) - 1) * sd / math.sqrt(len(diffs))
    return PairedDifference(mean, len(diffs), mean - half, mean + half, seeds)


# ------------------------------------------------------------------------------------- collection ---
@dataclass
class RunResult:
    """A planned run and what its folder holds (``history`` empty until it has finished an epoch)."""

    run: Run
    status: str
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def last(self, key: str) -> float | None:
        return float(self.history[-1][key]) if self.history and self.history[-1].get(key) is not None else None

    @property
    def test_error(self) -> float | None:
        return self.last("test_error")

    @property
    def test_top5_error(self) -> float | None:
        return self.last("test_top5_error")

    @property
    def params(self) -> int | None:
        return self.summary.get("params")

    @property
    def macs(self) -> int | None:
        return self.summary.get("macs")


def _diverged_text(diverged: Sequence[RunResult]) -> str:
    """``"2 run(s) diverged: a (the training loss is not finite ... at global step 9), b (...)"``."""
    def why(r: RunResult) -> str:
        message = str(r.summary.get("message") or "")
        return message.split(";")[0] or f"{r.summary.get('epochs_completed', 0)} epoch(s) completed"

    return f"{len(diverged)} run(s) diverged: " + ", ".join(f"{r.run.run_id} ({why(r)})" for r in diverged)


def _read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def collect_results(study: Study, results: str | os.PathLike[str], filters: Sequence[str] = ()) -> list[RunResult]:
    """Every planned run of ``study`` with its state, its ``metrics.jsonl`` records and its ``summary.json``."""
    out = []
    for run in select_runs(plan_runs(study, results), filters):
        summary_path = run.out / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
        res = RunResult(run, run_status(run), _read_history(run.out / "metrics.jsonl"), summary)
        if res.finished and summary.get("macs") is None:  # runs made before recalib.complexity existed
            from .study import _macs

            res.summary["macs"] = _macs(run)
        out.append(res)
    return out


# ------------------------------------------------------------------------------------- formatting ---
def _fmt_err(values: Sequence[float]) -> str:
    if not values:
        return "–"
    mean, sd = mean_std(values)
    return f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "") + f" (n={len(values)})"


def _fmt_count(n: float | None, unit: str = "") -> str:
    if n is None:
        return "n/a"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


def _fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.2f}%"


def _fmt_diff(d: PairedDifference | None) -> str:
    if d is None:
        return "–"
    if d.low is None or d.high is None:
        return f"{d.mean:+.2f} [n/a] (n=1)"
    return f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}] (n={d.n})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _is_imagenet(dataset: str) -> bool:
    return dataset == "imagenet"


# ----------------------------------------------------------------------------------------- report ---
def _error(r: RunResult) -> float:
    """The last-epoch test error of a run that ``_by_cell`` kept (it has one)."""
    err = r.test_error
    if err is None:  # pragma: no cover - _by_cell keeps only runs with an error
        raise ValueError(f"run {r.run.run_id} has no test error")
    return err


def _by_cell(results: Sequence[RunResult]) -> dict[tuple[str, str, str], dict[int, RunResult]]:
    cells: dict[tuple[str, str, str], dict[int, RunResult]] = {}
    for r in results:
        if r.finished and r.test_error is not None:
            cells.setdefault((r.run.dataset, r.run.model, r.run.operator.key), {})[r.run.seed] = r
    return cells


def _numbers(study: Study, results: Sequence[RunResult]) -> dict[str, Any]:
    """Every number of the report's tables, as plain data (also written to report.json)."""
    cells = _by_cell(results)
    rows = []
    for dataset in study.datasets:
        for model in study.models:
            base = cells.get((dataset, model, study.baseline)) if study.baseline else None
            ref = cells.get((dataset, model, study.reference)) if study.reference else None
            for op in study.operators:
                runs = cells.get((dataset, model, op.key), {})
                if not runs:
                    continue
                errs = {s: _error(r) for s, r in sorted(runs.items())}
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
                }
                for role, other in (("baseline", base), ("reference", ref)):
                    key = study.baseline if role == "baseline" else study.reference
                    if other is None or op.key == key or (role == "reference" and op.key == study.baseline):
                        continue
                    d = paired_difference(errs, {s: _error(r) for s, r in other.items()})
                    o = next(iter(other.values()))
                    row[f"vs_{role}"] = None if d is None else {
                        "operator": key, "mean": d.mean, "low": d.low, "high": d.high, "n": d.n,
                        "seeds": list(d.seeds), "verdict": d.verdict,
                        "relative": 100 * d.mean / mean_std([_error(r) for r in other.values()])[0],
                    }
                    if role == "baseline" and o.params and params is not None:
                        row["extra_params_pct"] = 100 * (params - o.params) / o.params
                    if role == "baseline" and o.macs and macs is not None:
                        row["extra_macs_pct"] = 100 * (macs - o.macs) / o.macs
                rows.append(row)
    return {"study": study.name, "variant": study.variant, "schedule": study.schedule,
            "baseline": study.baseline, "reference": study.reference, "rows": rows}


def _provenance(results: Sequence[RunResult]) -> dict[str, Any]:
    done = [r for r in results if r.finished]

    def distinct(key: str) -> list[str]:
        return sorted({str(r.summary.get(key)) for r in done if r.summary.get(key) is not None})

    versions = sorted({json.dumps(r.summary.get("versions", {}), sort_keys=True) for r in done})
    return {
        "devices": distinct("device"),
        "git_commits": distinct("git_commit"),
        "versions": [json.loads(v) for v in versions],
        "wall_seconds_total": sum(float(r.summary.get("wall_seconds") or 0) for r in done),
        "runs_finished": len(done),
    }


def _markdown(study: Study, numbers: dict[str, Any], prov: dict[str, Any], results: Sequence[RunResult],
              commands: Sequence[str], missing: Sequence[RunResult]) -> str:
    title = study.name + (f" — variant {study.variant}" if study.variant else "")
    sched = study.schedule
    lines = [f"# Study {title}", "", study.description, "",
             f"**Schedule: {sched}.**", ""]
    recipes = sorted({study.recipe_of(m) for m in study.models})
    lines += [f"* recipe: {', '.join(recipes)}"
              + (f"; overrides: `{json.dumps(_jsonable(study.overrides), sort_keys=True)}`" if study.overrides else "")]
    lines += ["* commands: " + "; ".join(f"`{c}`" for c in commands)]
    lines += [f"* device: {', '.join(prov['devices']) or 'n/a'}"]
    for v in prov["versions"]:
        lines += ["* versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)]
    lines += [f"* git commit: {', '.join(prov['git_commits']) or 'n/a'}"]
    lines += [f"* runs: {prov['runs_finished']} finished, total training wall time "
              f"{prov['wall_seconds_total'] / 60:.1f} min; report generated "
              f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with Python "
              f"{platform.python_version()}"]
    if missing:
        lines += [f"* **incomplete**: {len(missing)} run(s) missing or unfinished: "
                  + ", ".join(f"{r.run.run_id} ({r.status})" for r in missing)]
    diverged = [r for r in missing if r.status == "diverged"]
    if diverged:
        lines += [f"* **{_diverged_text(diverged)}**"]
    lines += ["", "Errors are the test error (%) **at the last epoch** (never the best epoch), mean ± sample std "
              "over seeds, n = number of seeds; every seed is in `runs.csv`. MACs: multiply-accumulates of one "
              "forward pass (the paper's \"FLOPs\" column); +params / +MACs are relative to the baseline.", ""]

    rows = numbers["rows"]
    # ---- table 1: the paper's layout, rows = network x operator, columns = data sets ----
    multi = len(study.datasets) > 1
    header = ["network", "operator"]
    for d in study.datasets:
        header += [f"{d} top-1", f"{d} top-5"] if _is_imagenet(d) else [f"{d} error"]
    header += ["params", "MACs", "+params", "+MACs"]
    body = []
    for model in study.models:
        for op in study.operators:
            cells = {r["dataset"]: r for r in rows if r["model"] == model and r["operator"] == op.key}
            if not cells:
                continue
            row = [model, op.label]
            for d in study.datasets:
                c = cells.get(d)
                if c is None:
                    row += ["–", "–"] if _is_imagenet(d) else ["–"]
                    continue
                row.append(_fmt_err([c["test_error"][s] for s in c["seeds"]]))
                if _is_imagenet(d):
                    row.append("–" if c["top5_mean"] is None else f"{c['top5_mean']:.2f}")
            first = next(iter(cells.values()))
            row += [_fmt_count(first["params"]), _fmt_count(first["macs"]),
                    _fmt_pct(first.get("extra_params_pct")), _fmt_pct(first.get("extra_macs_pct"))]
            body.append(row)
    caption = f"Table: test error (%), last epoch — {sched}"
    if multi:
        caption += " (params and MACs of the first data set)"
    lines += ["## Test error", "", f"*{caption}.*", "", _table(header, body), ""]

    # ---- table 2: paired differences ----
    comps = [(role, key) for role, key in (("baseline", study.baseline), ("reference", study.reference)) if key]
    if comps:
        names = {op.key: op.label for op in study.operators}
        header = ["data set", "network", "operator"]
        for _, key in comps:
            header += [f"Δ vs {names[key]} [95% CI] (pp)", f"rel. Δ vs {names[key]}", "reading"]
        body = []
        for r in rows:
            if not any(f"vs_{role}" in r for role, _ in comps):
                continue
            row = [r["dataset"], r["model"], r["label"]]
            for role, _ in comps:
                d = r.get(f"vs_{role}")
                if d is None:
                    row += ["–", "–", "–"]
                    continue
                pd = PairedDifference(d["mean"], d["n"], d["low"], d["high"], tuple(d["seeds"]))
                row += [_fmt_diff(pd), f"{d['relative']:+.1f}%", pd.verdict]
            body.append(row)
        lines += ["## Paired differences", "",
                  f"*Table: per-seed difference of the last-epoch test error, operator minus comparison, in "
                  f"percentage points (negative = fewer errors); mean and 95% confidence interval from the t "
                  f"distribution with n - 1 degrees of freedom; \"within seed noise\" when the interval contains "
                  f"0 — {sched}.*", "", _table(header, body), ""]
    lines += ["## Figures", "", "![training and test curves](curves.png)", "",
              "*Training and test error (and test loss) per epoch, mean over seeds, band = ± 1 std — "
              f"{sched}.*", "", "![error against MACs](error_vs_macs.png)", "",
              f"*Last-epoch test error against MACs per image (paper Figure 5), mean ± std over seeds — {sched}.*",
              ""]
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_jsonable(v) for v in obj]
    return obj


CSV_FIELDS = ("study", "variant", "run_id", "dataset", "model", "operator", "operator_label", "spec", "seed",
              "status", "epochs", "epochs_completed", "train_images", "test_images", "final_test_error", "final_test_top5_error", "final_train_error",
              "final_test_loss", "params", "macs", "wall_seconds", "device", "git_commit")


def _csv(results: Sequence[RunResult]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in results:
        w.writerow({
            "study": r.run.study, "variant": r.run.variant or "", "run_id": r.run.run_id, "dataset": r.run.dataset,
            "model": r.run.model, "operator": r.run.operator.key, "operator_label": r.run.operator.label,
            "spec": r.run.operator.spec, "seed": r.run.seed, "status": r.status, "epochs": r.run.config.epochs, "epochs_completed": len(r.history),
            "train_images": r.summary.get("train_images"), "test_images": r.summary.get("test_images"),
            "final_test_error": r.test_error, "final_test_top5_error": r.test_top5_error,
            "final_train_error": r.last("train_error"), "final_test_loss": r.last("test_loss"),
            "params": r.params, "macs": r.macs, "wall_seconds": r.summary.get("wall_seconds"),
            "device": r.summary.get("device"), "git_commit": r.summary.get("git_commit"),
        })
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ plots ---
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(study: Study, results: Sequence[RunResult], path: Path) -> None:
    """Figures 3/4: per (data set, network) row, train error, test error and test loss against epochs."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    cells = _by_cell(results)
    groups = [(d, m) for d in study.datasets for m in study.models
              if any((d, m, op.key) in cells for op in study.operators)]
    panels = (("train_error", "train error (%)"), ("test_error", "test error (%)"), ("test_loss", "test loss"))
    fig, axes = plt.subplots(max(1, len(groups)), len(panels), figsize=(4.2 * len(panels), 3.2 * max(1, len(groups))),
                             squeeze=False, constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for gi, (dataset, model) in enumerate(groups):
        for oi, op in enumerate(study.operators):
            runs = cells.get((dataset, model, op.key))
            if not runs:
                continue
            n_epochs = min(len(r.history) for r in runs.values())
            epochs = [runs[next(iter(runs))].history[e]["epoch"] for e in range(n_epochs)]
            for pi, (key, _) in enumerate(panels):
                stats = [mean_std([float(r.history[e][key]) for r in runs.values()]) for e in range(n_epochs)]
                mean = [m for m, _ in stats]
                ax = axes[gi][pi]
                color = colors[oi % len(colors)]
                ax.plot(epochs, mean, "-", marker="o" if n_epochs < 20 else None, ms=3, color=color,
                        label=f"{op.label} (n={len(runs)})")
                if len(runs) > 1:
                    lo = [m - (s or 0.0) for m, s in stats]
                    hi = [m + (s or 0.0) for m, s in stats]
                    ax.fill_between(epochs, lo, hi, color=color, alpha=0.15, linewidth=0)
        for pi, (_, label) in enumerate(panels):
            ax = axes[gi][pi]
            ax.set(xlabel="epoch", ylabel=label, title=f"{model} on {dataset}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        axes[gi][1].legend(fontsize=7)
    fig.suptitle(f"{study.name}{' / ' + study.variant if study.variant else ''}: mean ± 1 std over seeds "
                 f"({study.schedule})", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_error_vs_macs(study: Study, numbers: dict[str, Any], path: Path) -> None:
    """Figure 5: last-epoch test error against MACs, one panel per data set, one series per operator."""
    plt = _plt()
    rows = numbers["rows"]
    datasets = [d for d in study.datasets if any(r["dataset"] == d for r in rows)] or list(study.datasets[:1])
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False,
                             constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for di, dataset in enumerate(datasets):
        ax = axes[0][di]
        for oi, op in enumerate(study.operators):
            pts = sorted((r["macs"], r["mean"], r["std"] or 0.0, r["model"]) for r in rows
                         if r["dataset"] == dataset and r["operator"] == op.key and r["macs"])
            if not pts:
                continue
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="o-", ms=4,
                        capsize=3, color=colors[oi % len(colors)], label=op.label)
            if oi == 0:
                for x, y, _, model in pts:
                    ax.annotate(model, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set(xlabel="MACs per image", ylabel="test error (%), last epoch", title=dataset)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"{study.name}{' / ' + study.variant if study.variant else ''}: error vs MACs "
                 f"({study.schedule})", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ entry ---
def default_commands(study: Study, results: str | os.PathLike[str], out: Path) -> list[str]:
    variant = f" --variant {study.variant}" if study.variant else " --variant none"
    res = "" if str(results) == "runs/studies" else f" --results {results}"
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
    """
    results_list = collect_results(study, results, filters)
    missing = [r for r in results_list if not r.finished]
    if not results_list:
        raise ValueError(f"study {study.dir_name}: no runs match {list(filters)}")
    diverged = [r for r in results_list if r.status == "diverged"]
    said = "; " + _diverged_text(diverged) if diverged else ""
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
    numbers = _numbers(study, results_list)
    prov = _provenance(results_list)
    commands = default_commands(study, results, folder)
    if command:
        commands = [commands[0], command]
    numbers["provenance"] = prov
    numbers["commands"] = commands
    (folder / "report.md").write_text(_markdown(study, numbers, prov, results_list, commands, missing))
    (folder / "runs.csv").write_text(_csv(results_list))
    (folder / "report.json").write_text(json.dumps(_jsonable(numbers), indent=2, default=str) + "\n")
    plot_curves(study, results_list, folder / "curves.png")
    plot_error_vs_macs(study, numbers, folder / "error_vs_macs.png")
    return folder
