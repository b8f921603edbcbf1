"""The README's Fashion-MNIST results block is generated from the committed report, never typed by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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

