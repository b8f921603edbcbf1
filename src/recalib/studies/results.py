"""What a study's run folders hold: :class:`RunResult` (a planned run, its state, its epochs and its summary).

Read by the report (:mod:`recalib.studies.report`) and the plots (:mod:`recalib.studies.plots`); a finished
run whose ``summary.json`` predates MAC counting gets its MACs from :func:`recalib.studies.cost.forward_macs`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cost import forward_macs
from .plan import Run, plan_runs, read_summary, run_status, select_runs
from .schema import Study

__all__ = ["RunResult", "by_cell", "collect_results", "last_error"]


@dataclass
class RunResult:
    """A planned run and what its folder holds (``history`` empty until it has finished an epoch)."""

    run: Run
    status: str
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Whether the run completed (its ``summary.json`` says so)."""
        return self.status == "finished"

    def last(self, key: str) -> float | None:
        """``key`` of the last ``metrics.jsonl`` record (``None`` when absent)."""
        return float(self.history[-1][key]) if self.history and self.history[-1].get(key) is not None else None

    @property
    def test_error(self) -> float | None:
        """The last epoch's top-1 test error (%)."""
        return self.last("test_error")

    @property
    def test_top5_error(self) -> float | None:
        """The last epoch's top-5 test error (%)."""
        return self.last("test_top5_error")

    @property
    def params(self) -> int | None:
        """Parameter count from ``summary.json``."""
        return self.summary.get("params")

    @property
    def macs(self) -> int | None:
        """Multiply-accumulates per image from ``summary.json``."""
        return self.summary.get("macs")


def _read_history(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; a line that is not a JSON object is a ``ValueError`` naming the file."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}, line {number}: not JSON ({exc}); restore the file or rerun the run") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {number}: expected a JSON object per epoch, got {line.strip()[:40]!r}")
        records.append(record)
    return records


def collect_results(study: Study, results: str | os.PathLike[str], filters: Sequence[str] = ()) -> list[RunResult]:
    """Every planned run of ``study`` with its state, its ``metrics.jsonl`` records and its ``summary.json``."""
    out = []
    for run in select_runs(plan_runs(study, results), filters):
        summary = read_summary(run.out) or {}  # None: broken, reported as such by its status
        res = RunResult(run, run_status(run), _read_history(run.out / "metrics.jsonl"), summary)
        if res.finished and summary.get("macs") is None:  # runs made before recalib.complexity existed
            res.summary["macs"] = forward_macs(run)
        out.append(res)
    return out


def last_error(r: RunResult) -> float:
    """The last-epoch test error of a run that ``by_cell`` kept (it has one)."""
    err = r.test_error
    if err is None:  # pragma: no cover - by_cell keeps only runs with an error
        raise ValueError(f"run {r.run.run_id} has no test error")
    return err


def by_cell(results: Sequence[RunResult]) -> dict[tuple[str, str, str], dict[int, RunResult]]:
    """The finished runs with a test error, by (data set, model, operator key) and then by seed."""
    cells: dict[tuple[str, str, str], dict[int, RunResult]] = {}
    for r in results:
        if r.finished and r.test_error is not None:
            cells.setdefault((r.run.dataset, r.run.model, r.run.operator.key), {})[r.run.seed] = r
    return cells
