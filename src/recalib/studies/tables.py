"""The text of a study report (``report.md``): provenance, the test-error table and the paired differences.

The layout of Wang et al., "Multi-Scale Spatially-Asymmetric Recalibration for Image Classification"
(ECCV 2018, arXiv:1804.00787), Tables 2/3/5: rows = network x operator, columns = data sets (ImageNet: top-1
and top-5), then parameters, MACs and the extra cost over the baseline. The numbers come from
:func:`recalib.studies.report.report_numbers`.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from collections.abc import Mapping, Sequence
from typing import Any

from .._format import format_count, markdown_table
from .results import RunResult
from .schema import Study
from .stats import PairedDifference, mean_std

__all__ = ["diverged_text", "jsonable", "markdown"]


def _fmt_err(values: Sequence[float]) -> str:
    if not values:
        return "–"
    mean, sd = mean_std(values)
    return f"{mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "") + f" (n={len(values)})"


def _fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.2f}%"


def _fmt_diff(d: PairedDifference | None) -> str:
    if d is None:
        return "–"
    if d.low is None or d.high is None:
        return f"{d.mean:+.2f} [n/a] (n=1)"
    return f"{d.mean:+.2f} [{d.low:+.2f}, {d.high:+.2f}] (n={d.n})"


def _is_imagenet(dataset: str) -> bool:
    return dataset == "imagenet"


def diverged_text(diverged: Sequence[RunResult]) -> str:
    """``"2 run(s) diverged: a (the training loss is not finite ... at global step 9), b (...)"``."""
    def why(r: RunResult) -> str:
        message = str(r.summary.get("message") or "")
        return message.split(";")[0] or f"{r.summary.get('epochs_completed', 0)} epoch(s) completed"

    return f"{len(diverged)} run(s) diverged: " + ", ".join(f"{r.run.run_id} ({why(r)})" for r in diverged)


def jsonable(obj: Any) -> Any:
    """``obj`` with tuples as lists and mappings as dicts, as JSON writes them."""
    if isinstance(obj, Mapping):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [jsonable(v) for v in obj]
    return obj


def _intro(study: Study, prov: dict[str, Any], commands: Sequence[str], missing: Sequence[RunResult]) -> list[str]:
    """Title, schedule and provenance lines: recipe, commands, device, versions, commit, runs, what is missing."""
    title = study.name + (f" — variant {study.variant}" if study.variant else "")
    sched = study.schedule
    lines = [f"# Study {title}", "", study.description, "",
             f"**Schedule: {sched}.**", ""]
    recipes = sorted({study.recipe_of(m) for m in study.models})
    lines += [f"* recipe: {', '.join(recipes)}"
              + (f"; overrides: `{json.dumps(jsonable(study.overrides), sort_keys=True)}`" if study.overrides else "")]
    lines += ["* commands: " + "; ".join(f"`{c}`" for c in commands)]
    lines += [f"* device: {', '.join(prov['devices']) or 'n/a'}"]
    for v in prov["versions"]:
        lines += ["* versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)]
    lines += [f"* git commit: {', '.join(prov['git_commits']) or 'n/a'} (per operator: the last column of the "
              "test-error table)"]
    lines += [f"* initialisation: {', '.join(prov.get('init', [])) or 'n/a'} (TrainConfig.init: paired = every "
              "operator of one seed starts from the same backbone weights; independent = one random stream)"]
    lines += [f"* runs: {prov['runs_finished']} finished, total training wall time "
              f"{prov['wall_seconds_total'] / 60:.1f} min; report generated "
              f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with Python "
              f"{platform.python_version()}"]
    if missing:
        lines += [f"* **incomplete**: {len(missing)} run(s) missing or unfinished: "
                  + ", ".join(f"{r.run.run_id} ({r.status})" for r in missing)]
    diverged = [r for r in missing if r.status == "diverged"]
    if diverged:
        lines += [f"* **{diverged_text(diverged)}**"]
    lines += ["", "Errors are the test error (%) **at the last epoch** (never the best epoch), mean ± sample std "
              "over seeds, n = number of seeds; every seed is in `runs.csv`. MACs: multiply-accumulates of one "
              "forward pass (the paper's \"FLOPs\" column); +params / +MACs are relative to the baseline.", ""]
    return lines


def _error_table(study: Study, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Table 1, the paper's layout: rows = network x operator, columns = data sets."""
    sched = study.schedule
    multi = len(study.datasets) > 1
    header = ["network", "operator"]
    for d in study.datasets:
        header += [f"{d} top-1", f"{d} top-5"] if _is_imagenet(d) else [f"{d} error"]
    header += ["params", "MACs", "+params", "+MACs", "code commit"]
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
            commits = sorted({c for cell in cells.values() for c in cell.get("git_commits", [])})
            row += [format_count(first["params"]), format_count(first["macs"]),
                    _fmt_pct(first.get("extra_params_pct")), _fmt_pct(first.get("extra_macs_pct")),
                    ", ".join(c[:7] for c in commits) or "–"]
            body.append(row)
    caption = f"Table: test error (%), last epoch — {sched}"
    if multi:
        caption += " (params and MACs of the first data set)"
    return ["## Test error", "", f"*{caption}.*", "", markdown_table(header, body), ""]


def _difference_table(study: Study, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Table 2: the paired differences against the baseline and the reference (none without comparisons)."""
    sched = study.schedule
    comps = [(role, key) for role, key in (("baseline", study.baseline), ("reference", study.reference)) if key]
    if not comps:
        return []
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
            signs = f"; higher on {d['higher_on']} of {d['n']} seeds" if "higher_on" in d else ""
            row += [_fmt_diff(pd), f"{d['relative']:+.1f}%", pd.verdict + signs]
        body.append(row)
    return ["## Paired differences", "",
            f"*Table: per-seed difference of the last-epoch test error, operator minus comparison, in "
            f"percentage points (negative = fewer errors); mean and 95% confidence interval from the t "
            f"distribution with n - 1 degrees of freedom; \"not distinguishable at n = N\" when the interval "
            f"contains 0, however consistent the signs — {sched}.*", "", markdown_table(header, body), ""]


def markdown(study: Study, numbers: dict[str, Any], prov: dict[str, Any], commands: Sequence[str],
             missing: Sequence[RunResult]) -> str:
    """The whole ``report.md``."""
    sched = study.schedule
    lines = _intro(study, prov, commands, missing)
    lines += _error_table(study, numbers["rows"])
    lines += _difference_table(study, numbers["rows"])
    lines += ["## Figures", "", "![training and test curves](curves.png)", "",
              "*Training and test error (and test loss) per epoch, mean over seeds, band = ± 1 std; the last panel "
              f"zooms on the final epochs — {sched}.*", "", "![error against MACs](error_vs_macs.png)", "",
              "*Last-epoch test error per operator: each seed a dot, mean ± 1 std; beside it the extra MACs per image "
              f"over the baseline (the paper's Figure 5 as a dot plot) — {sched}.*",
              ""]
    return "\n".join(lines)
