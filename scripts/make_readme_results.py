#!/usr/bin/env python3
"""Write the Fashion-MNIST study report and the README's results block from the committed runs (never by hand).

    python3 scripts/make_readme_results.py            # rewrite results/fashion-mnist/ and the README block
    python3 scripts/make_readme_results.py --check    # exit 1 if either differs from what the committed runs give

Step 1, the report: the run files git tracks under ``results/studies/fashion-mnist-cpu-budget/`` (never
checkpoints) are copied into a temporary folder, and ``recalib study report`` (:func:`recalib.studies.report.
write_report`) runs there, so the report is what a fresh clone gives and does not depend on runs in flight on
this machine. Unfinished runs are listed as such (``--allow-incomplete``). ``report.md``, ``runs.csv``,
``report.json`` and the two figures go to ``results/fashion-mnist/``.

Step 2, the README: the block between ``<!-- results:fashion-mnist:start -->`` and
``<!-- results:fashion-mnist:end -->`` is rendered from ``report.json``: one row per operator (last-epoch test
error, mean ± std over seeds, paired differences with 95 % confidence intervals against the plain network and
against SE), then which differences exceed the seed noise and which do not, worded from the report's own
verdicts.

``--check`` compares ``report.md`` (except the line's generation time and Python version), ``runs.csv``,
``report.json`` and the README block; the figures are not compared (matplotlib's bytes vary by version).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STUDY, VARIANT = "fashion-mnist", "cpu-budget"
RUNS = Path("results") / "studies"  # relative to the checkout: the report records it in its commands
OUT = ROOT / "results" / "fashion-mnist"
REPORT = OUT / "report.json"
README = ROOT / "README.md"
START, END = "<!-- results:fashion-mnist:start -->", "<!-- results:fashion-mnist:end -->"
COMMAND = "python3 scripts/make_readme_results.py"
COMPARED = ("report.md", "runs.csv", "report.json")
FIGURES = ("curves.png", "error_vs_macs.png")
#: The study's targets, set before it ran: these operators at most this mean test error (%) and seed std (points).
TARGET_OPERATORS, TARGET_MEAN, TARGET_STD = ("none", "se", "mssar"), 7.0, 0.3
_GENERATED = re.compile(r"report generated [^;\n]*? with Python [0-9.]+")


# ------------------------------------------------------------------------------------------- report ---
def committed_run_files(root: Path = ROOT) -> list[str]:
    """The study's run files that git tracks (paths relative to ``root``)."""
    from recalib._provenance import git_tracked_files

    try:
        return git_tracked_files(root, RUNS / f"{STUDY}-{VARIANT}")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise _needs_git(exc) from None


def _needs_git(exc: Exception) -> SystemExit:
    return SystemExit(f"make_readme_results: needs a git checkout to tell committed runs from local ones ({exc})")


def build_report(dest: Path, root: Path = ROOT) -> Path:
    """Write the report of the committed runs into ``dest``; return it."""
    from recalib._provenance import copy_git_tracked
    from recalib.studies.catalog import load_study, shipped_studies_dir
    from recalib.studies.report import write_report

    study = load_study(shipped_studies_dir() / f"{STUDY}.toml", variant=VARIANT)
    with tempfile.TemporaryDirectory(prefix="recalib-report-") as tmp:
        try:
            copy_git_tracked(root, RUNS / f"{STUDY}-{VARIANT}", tmp)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise _needs_git(exc) from None
        (Path(tmp) / RUNS).mkdir(parents=True, exist_ok=True)
        here = Path.cwd()
        try:
            os.chdir(tmp)  # run folders are planned relative to the working directory, as in a checkout
            write_report(study, RUNS, out=dest.resolve(), allow_incomplete=True, command=COMMAND)
        finally:
            os.chdir(here)
    return dest


def comparable(name: str, text: str) -> str:
    """``text`` without what legitimately changes between two generations (time and Python of report.md)."""
    return _GENERATED.sub("report generated <time> with Python <version>", text) if name == "report.md" else text


# ------------------------------------------------------------------------------------------- README ---
def _diff(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    if d.get("low") is None:
        return f"{d['mean']:+.2f} (n={d.get('n', 1)}, no interval)"
    return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] ({d['verdict']})"


def _err(row: dict[str, Any]) -> str:
    if row["std"] is None:
        return f"{row['mean']:.2f} (n={row['n']})"
    return f"{row['mean']:.2f} ± {row['std']:.2f} (n={row['n']})"


def _outside(rows: list[dict[str, Any]], key: str) -> tuple[list[str], list[str]]:
    """Operators whose difference (``key``: vs_baseline / vs_reference) excludes 0, and those within noise."""
    out, within = [], []
    for r in rows:
        d = r.get(key)
        if not d or d.get("low") is None:
            continue
        (within if d["verdict"] == "within seed noise" else out).append(
            f"{r['label']} ({d['verdict']}: {d['mean']:+.2f} pp)" if d["verdict"] != "within seed noise" else r["label"])
    return out, within


def _reading(rows: list[dict[str, Any]], key: str, name: str) -> str:
    out, within = _outside(rows, key)
    if not out and not within:
        return f"Against {name}: no confidence interval yet (an interval needs at least two seeds of both networks)."
    return f"Against {name}: " + (
        ("outside the seed noise: " + "; ".join(out) + ". " if out else "no difference exceeds the seed noise. ")
        + ("Within the noise (the interval contains 0): " + ", ".join(within) + "." if within else "")).strip()


def _targets(rows: list[dict[str, Any]]) -> str:
    """Whether the targets set before the study are met, per operator, from the report's numbers."""
    parts = []
    for r in rows:
        if r["operator"] not in TARGET_OPERATORS:
            continue
        mean = "met" if r["mean"] <= TARGET_MEAN else "missed"
        std = ("n/a, one seed" if r["std"] is None else "met" if r["std"] <= TARGET_STD else "missed")
        parts.append(f"{r['label']}: mean {mean}, std {std}")
    return (f"Targets set before the study (mean ≤ {TARGET_MEAN:.1f} %, seed std ≤ {TARGET_STD:.1f} points): "
            + ("; ".join(parts) or "no target operator finished yet") + ".")


def render(report: dict[str, Any]) -> str:
    rows = report["rows"]
    runs = sum(r["n"] for r in rows)
    planned = report.get("runs_planned", runs)
    base = next((r["label"] for r in rows if r["operator"] == report["baseline"]), report["baseline"])
    ref = next((r["label"] for r in rows if r["operator"] == report["reference"]), report["reference"])
    state = f"{runs} finished runs" if runs == planned else f"{runs} of {planned} runs finished: **in progress**"
    lines = [
        START,
        f"*Generated by `{COMMAND}` from [results/fashion-mnist/report.json]"
        f"(results/fashion-mnist/report.md) (variant `{report['variant']}`, {state}).*",
        "",
        f"**{report['schedule']}.** Test error (%) at the last epoch on all 10,000 test images, mean ± std over "
        "seeds; Δ = paired difference in percentage points with its 95 % confidence interval (t distribution, "
        "n − 1 degrees of freedom); negative means fewer errors.",
        "",
        f"| operator | test error (%) | Δ vs {base} [95 % CI] | Δ vs {ref} [95 % CI] |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['label']} | {_err(r)} | {_diff(r.get('vs_baseline'))} | {_diff(r.get('vs_reference'))} |"
              for r in rows]
    for key, name in (("vs_baseline", base), ("vs_reference", ref)):
        lines += ["", _reading(rows, key, name)]
    lines += ["", _targets(rows)]
    if runs < planned:
        lines += ["", f"Not finished yet ({planned - runs}): "
                  + ", ".join(f"`{u['run']}`" for u in report.get("unfinished", [])) + "."]
    lines.append(END)
    return "\n".join(lines)


def readme_with_block(text: str, report: dict[str, Any]) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"make_readme_results: README.md lacks the markers {START} ... {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + render(report) + tail


# --------------------------------------------------------------------------------------------- main ---
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when the report or README.md is out of date")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory(prefix="recalib-report-check-") as tmp:
            fresh = build_report(Path(tmp) / "report")
            stale = [n for n in COMPARED if not (OUT / n).is_file() or comparable(
                n, (OUT / n).read_text()) != comparable(n, (fresh / n).read_text())]
            report = json.loads((fresh / "report.json").read_text())
        text = README.read_text()
        if readme_with_block(text, report) != text:
            stale.append("README.md")
        if stale:
            print(f"make_readme_results: out of date: {', '.join(stale)}; run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="recalib-report-") as tmp:
        fresh = build_report(Path(tmp) / "report")
        for name in COMPARED + FIGURES:
            shutil.copyfile(fresh / name, OUT / name)
    README.write_text(readme_with_block(README.read_text(), json.loads(REPORT.read_text())))
    print(f"wrote {OUT.relative_to(ROOT)}/ ({', '.join(COMPARED + FIGURES)}) and the results block of README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
