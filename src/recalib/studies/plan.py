"""A study's runs: the grid expanded into :class:`Run` records, filtered, and where each one stands.

Every run is one :func:`recalib.train.train` call; its folder is ``<results>/<study>[-<variant>]/<run-id>/``.
Where a run stands is read from that folder: ``summary.json`` with status ``completed`` -> finished;
``diverged`` -> failed (kept, reported); ``checkpoint.pt`` -> resumable; nothing -> pending; a folder whose
lock (:mod:`recalib.train.runlock`) another process holds -> running (elsewhere: skipped, never trained
twice); a ``summary.json`` that is not a JSON object, or a lock that is not a plain file (a planted link or
FIFO) -> broken (reported with :func:`broken_details`, never launched, the other runs go on). A folder whose ``config.json`` differs from the plan (outside the run-time fields) is *stale* and
stops the study with a message, so a changed study file never mixes two protocols in one table.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._names import unknown_name
from ..data import get_dataset_info
from ..models import list_models
from ..modules import get_recalib_class, parse_recalib_spec
from ..train import resolve_config
from ..train.config import TrainConfig, config_diff
from ..train.runlock import lock_holder
from .schema import Operator, Study

__all__ = ["DEFAULT_RESULTS", "LOG_FILE", "PLANNED_CONFIG", "STUDY_FILE", "Run", "broken_details", "make_run_id",
           "plan_runs", "read_summary", "run_status", "select_runs", "stale_details"]

STUDY_FILE = "study.json"  # written into every run folder: what the run is within its study
PLANNED_CONFIG = "planned_config.json"  # the TrainConfig the study launches the run with
LOG_FILE = "train.log"
DEFAULT_RESULTS = "runs/studies"  # the folder holding the study folders, unless --results says otherwise


@dataclass(frozen=True)
class Run:
    """One cell of the grid: a model, an operator, a data set and a seed, with the config it trains under."""

    study: str
    variant: str | None
    run_id: str
    model: str
    operator: Operator
    dataset: str
    seed: int
    config: TrainConfig

    @property
    def out(self) -> Path:
        """The run's output folder."""
        return Path(self.config.out)

    def metadata(self) -> dict[str, Any]:
        """What ``study.json`` in the run folder records."""
        return {"study": self.study, "variant": self.variant, "run_id": self.run_id, "model": self.model,
                "operator": self.operator.key, "operator_label": self.operator.label, "spec": self.operator.spec,
                "model_args": dict(self.operator.model_args), "dataset": self.dataset, "seed": self.seed}


def make_run_id(model: str, operator_key: str, dataset: str, seed: int) -> str:
    """The run's folder name, ``<model>__<operator key>__<dataset>__s<seed>``."""
    return f"{model}__{operator_key}__{dataset}__s{seed}"


def plan_runs(study: Study, results: str | os.PathLike[str]) -> list[Run]:
    """Every run of ``study`` in execution order: seed-major, so that an interrupted study has whole seeds.

    Raises ``ValueError`` when a run cannot be configured (unknown model, data set or override). An operator's
    ``model_args`` reach ``create_model`` through ``TrainConfig.model_args``.
    """
    known = list_models()
    for m in study.models:
        if m not in known:
            raise ValueError(f"study {study.name}: {unknown_name('model', m, known)}")
    for d in study.datasets:
        get_dataset_info(d)  # ValueError listing the valid names
    for op in study.operators:  # an unknown operator name: an error now, not a failed run later
        get_recalib_class(parse_recalib_spec(op.spec)[0])
    base = Path(results) / study.dir_name
    runs = []
    for seed in study.seeds:
        for dataset in study.datasets:
            for model in study.models:
                for op in study.operators:
                    run_id = make_run_id(model, op.key, dataset, seed)
                    extra: dict[str, Any] = {}
                    if op.model_args:
                        extra["model_args"] = ", ".join(f"{k}={v!r}" for k, v in op.model_args.items())
                    try:
                        cfg = resolve_config(study.recipe_of(model), **{**study.overrides, **extra}, model=model,
                                             recalib=op.spec, dataset=dataset, seed=seed, out=str(base / run_id))
                    except ValueError as exc:
                        raise ValueError(f"study {study.name}, run {run_id}: {exc}") from None
                    runs.append(Run(study.name, study.variant, run_id, model, op, dataset, seed, cfg))
    return runs


_FILTER_FIELDS = ("model", "operator", "dataset", "seed")


def select_runs(runs: Sequence[Run], filters: Sequence[str]) -> list[Run]:
    """Runs matching every filter: ``field=glob[,glob...]`` (fields: model, operator, dataset, seed) or a glob
    on the run id (``resnet20__*``). Operators match by key or label."""
    selected = list(runs)
    for f in filters:
        if "=" in f:
            name, _, pattern = f.partition("=")
            name = name.strip()
            if name not in _FILTER_FIELDS:
                raise ValueError(f"filter {f!r}: unknown field {name!r}; use one of {', '.join(_FILTER_FIELDS)}")
            globs = [p.strip() for p in pattern.split(",") if p.strip()]

            def values(r: Run, name: str = name) -> list[str]:
                if name == "operator":
                    return [r.operator.key, r.operator.label]
                return [str(getattr(r, name))]

            selected = [r for r in selected if any(fnmatch.fnmatchcase(v, g) for v in values(r) for g in globs)]
        else:
            selected = [r for r in selected if fnmatch.fnmatchcase(r.run_id, f)]
    return selected


def read_summary(out: Path) -> dict[str, Any] | None:
    """The run folder's ``summary.json`` as a dict: ``{}`` without one or when it is not JSON (as before: the
    run's state then comes from its checkpoint), None when it holds something else (``[]``, ``null``: broken)."""
    try:
        s = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return s if isinstance(s, dict) else None


def run_status(run: Run, *, locked_here: bool = False) -> str:
    """``finished``, ``diverged``, ``running``, ``stale``, ``broken``, ``resumable`` or ``pending`` (module
    docstring). ``locked_here``: this process holds the run's lock (the launcher's check before it starts one)."""
    out = run.out
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        try:
            existing = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
        except (ValueError, TypeError, json.JSONDecodeError):
            return "stale"
        if config_diff(existing, run.config):
            return "stale"
    if not locked_here:
        try:
            if lock_holder(out) is not None:
                return "running"
        except ValueError:  # the lock is a link, a FIFO, ...
            return "broken"
    s = read_summary(out)
    if s is None:
        return "broken"
    if s.get("status") == "completed" and s.get("epochs_completed") == run.config.epochs:
        return "finished"
    if s.get("status") == "diverged":
        return "diverged"
    if (out / "checkpoint.pt").is_file():
        return "resumable"
    return "pending"


def broken_details(run: Run) -> str:
    """Why a run is broken (:func:`run_status`), and what to do."""
    try:
        lock_holder(run.out)
    except ValueError as exc:
        return str(exc)
    return (f"{run.out / 'summary.json'} is not a JSON object; move it away (the run resumes from its checkpoint) "
            "or delete the run folder")


def stale_details(run: Run) -> str:
    """Why a run is stale: the fields where its folder's config differs from the plan."""
    try:
        existing = TrainConfig.from_dict(json.loads((run.out / "config.json").read_text()))
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as exc:
        return f"unreadable config.json ({exc})"
    diff = config_diff(existing, run.config)
    return "; ".join(f"{k}: folder {a!r}, plan {b!r}" for k, (a, b) in diff.items())


def epochs_done(run: Run) -> int:
    """Epochs the run's ``metrics.jsonl`` records (0 without one)."""
    path = run.out / "metrics.jsonl"
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def summary_message(run: Run) -> str:
    """The ``message`` of a run's ``summary.json`` (why it diverged), or a pointer to its log."""
    message = (read_summary(run.out) or {}).get("message")
    return str(message) if message else f"see {run.out / LOG_FILE}"


def final_error_text(run: Run) -> str:
    """``final test error 7.12%`` from a finished run's ``summary.json`` (``finished`` if it has none)."""
    try:
        return f"final test error {(read_summary(run.out) or {})['final_test_error']:.2f}%"
    except (KeyError, TypeError, ValueError):
        return "finished"
