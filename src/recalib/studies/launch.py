"""Launching a study's runs: one ``python -m recalib train --config ... --resume`` subprocess per run.

:func:`run_study` trains every unfinished run of a study (resuming interrupted ones), ``parallel`` at a
time, each with its log in ``train.log`` and the run's lock (:mod:`recalib.train.runlock`) handed to the
training process, so that no run is ever trained twice at once. With CUDA devices the runs are assigned
round-robin through ``CUDA_VISIBLE_DEVICES``; torchrun runs (ImageNet) take every GPU, one at a time.
``dry_run`` lists the runs, their state and the estimated cost (:mod:`recalib.studies.cost`).
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from .._format import format_seconds
from .._io import open_own_file, write_json_atomic
from ..data import get_dataset_info
from ..train.runlock import RunLock, RunLockedError, lock_holder
from . import cost
from .plan import (
    LOG_FILE,
    PLANNED_CONFIG,
    STUDY_FILE,
    Run,
    broken_details,
    epochs_done,
    final_error_text,
    plan_runs,
    run_status,
    select_runs,
    stale_details,
    summary_message,
)
from .schema import Study

__all__ = ["launch_command", "prepare_run_folder", "run_study", "uses_torchrun"]

_STATES = ("finished", "resumable", "pending", "running", "diverged", "stale", "broken")


def uses_torchrun(study: Study, run: Run) -> bool:
    """Whether a run goes through torchrun: launcher ``torchrun``, or ``auto`` and a folder data set (ImageNet)."""
    if study.launcher == "auto":
        return get_dataset_info(run.dataset).kind == "folder"
    return study.launcher == "torchrun"


def launch_command(run: Run, *, torchrun: bool = False, gpus: int = 1, python: str | None = None) -> list[str]:
    """The command that trains (or resumes) ``run`` from its planned config file."""
    cfg_file = str(run.out / PLANNED_CONFIG)
    tail = ["-m", "recalib", "train", "--config", cfg_file, "--resume"]
    if torchrun:
        return ["torchrun", "--standalone", f"--nproc_per_node={max(1, gpus)}", *tail]
    return [python or sys.executable, *tail]


def prepare_run_folder(run: Run, runtime: Mapping[str, Any] | None = None) -> None:
    """Write ``study.json`` and ``planned_config.json`` (the config plus run-time fields such as threads)."""
    run.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run.out / STUDY_FILE, run.metadata())
    cfg = dataclasses.replace(run.config, **dict(runtime or {}))
    write_json_atomic(run.out / PLANNED_CONFIG, cfg.to_dict())


def _cuda_count() -> int:
    try:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover - broken CUDA installs
        return 0


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass
class _Slot:
    run: Run
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    started: float
    gpu: str | None


@dataclass
class _Launcher:
    """The runs to train and how, and the scheduler's state: what is running, where the next GPU is."""

    study: Study
    todo: list[Run]
    states: dict[str, str]
    parallel: int
    n_gpus: int
    echo: Callable[[str], None]
    python: str | None = None
    extra_env: Mapping[str, str] | None = None
    data_dir: str | None = None
    threads: int | None = None
    cores: int = field(default_factory=_cpu_count)
    active: list[_Slot] = field(default_factory=list)
    gpu_cursor: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0

    def start(self, run: Run) -> _Slot | None:
        """Lock the run's folder, check that it still needs training, write its planned config and start its
        training process (None: locked elsewhere, finished meanwhile by another runner, or broken)."""
        try:  # held from here on by the training process: never two trainings of one run
            lock = RunLock(run.out).acquire()
        except RunLockedError:
            self.skipped += 1
            self.echo(f"running elsewhere, skipped: {run.run_id} ({lock_holder(run.out)})")
            return None
        except (ValueError, OSError) as exc:  # a planted link or FIFO as .lock, an unwritable folder
            self.failed += 1
            self.echo(f"BROKEN {run.run_id}: {exc}")
            return None
        try:
            return self._launch(run, lock)
        finally:
            lock.detach()  # the child holds the lock now (if one started), for as long as it lives

    def _launch(self, run: Run, lock: RunLock) -> _Slot | None:
        state = run_status(run, locked_here=True)  # another runner may have trained it since the plan was made
        if state not in ("pending", "resumable"):
            if state != "finished":
                self.failed += 1
            self.echo(f"{state} meanwhile (another runner?), not started: {run.run_id}")
            return None
        try:
            log = os.fdopen(open_own_file(run.out / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "the log"),
                            "ab")
        except (ValueError, OSError) as exc:
            self.failed += 1
            self.echo(f"BROKEN {run.run_id}: {exc}")
            return None
        tr = uses_torchrun(self.study, run)
        env = dict(os.environ)
        env.update(self.extra_env or {})
        runtime: dict[str, Any] = {"progress": False}
        if self.data_dir:
            runtime["data_dir"] = self.data_dir
        gpu = None
        if tr:
            runtime["threads"] = 0
        else:
            runtime["threads"] = (self.threads or run.config.threads
                                  or max(1, self.cores // min(self.parallel, len(self.todo))))
            if self.n_gpus:
                gpu = str(self.gpu_cursor % self.n_gpus)
                self.gpu_cursor += 1
                env["CUDA_VISIBLE_DEVICES"] = gpu
        cmd = launch_command(run, torchrun=tr, gpus=self.n_gpus or 1, python=self.python)
        try:
            prepare_run_folder(run, runtime)
            log.write(f"\n$ {shlex.join(cmd)}\n".encode())
            log.flush()
            lock_env, lock_fds = lock.child_env()
            env.update(lock_env)
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=lock_fds)
        except BaseException:
            log.close()
            raise
        lock.describe(proc.pid)
        where = f" on GPU {gpu}" if gpu is not None else (" via torchrun" if tr else "")
        self.echo(f"[{self.done + len(self.active) + 1}/{len(self.todo)}] start {run.run_id}{where} "
                  f"({self.states[run.run_id]})")
        return _Slot(run, proc, log, time.perf_counter(), gpu)

    def fill(self, queue: list[Run]) -> None:
        """Start queued runs while slots are free; a torchrun run waits for, then takes, every GPU."""
        while queue and len(self.active) < self.parallel:
            nxt = queue[0]
            if uses_torchrun(self.study, nxt) and self.active:
                break  # a torchrun run waits for the GPUs to be free
            queue.pop(0)
            slot = self.start(nxt)
            if slot is None:
                self.done += 1
                continue
            self.active.append(slot)
            if uses_torchrun(self.study, nxt):
                break

    def reap(self) -> None:
        """Report and remove the runs whose process has ended."""
        n = len(self.todo)
        for slot in list(self.active):
            rc = slot.proc.poll()
            if rc is None:
                continue
            slot.log.close()
            self.active.remove(slot)
            self.done += 1
            status = run_status(slot.run)
            took = format_seconds(time.perf_counter() - slot.started)
            if status == "diverged":
                self.failed += 1
                self.echo(f"[{self.done}/{n}] DIVERGED {slot.run.run_id} after {took}: {summary_message(slot.run)}")
            elif rc != 0 or status != "finished":
                self.failed += 1
                self.echo(f"[{self.done}/{n}] FAILED {slot.run.run_id} (exit {rc}, {status}) after {took}; "
                          f"see {slot.run.out / LOG_FILE}")
            else:
                self.echo(f"[{self.done}/{n}] done {slot.run.run_id} in {took}: {final_error_text(slot.run)}")

    def run_all(self) -> None:
        """Train every run of ``todo``; on an interrupt, stop the running ones (they resume next time)."""
        queue = list(self.todo)
        try:
            while queue or self.active:
                self.fill(queue)
                time.sleep(0.5)
                self.reap()
        except KeyboardInterrupt:
            for slot in self.active:
                slot.proc.terminate()
            for slot in self.active:
                slot.proc.wait()
                slot.log.close()
            self.echo("interrupted: the running runs were stopped; run the same command again to resume them")
            raise


def _print_dry_run(study: Study, runs: Sequence[Run], states: Mapping[str, str], todo: Sequence[Run], *,
                   n_gpus: int, parallel: int, python: str | None, echo: Callable[[str], None]) -> None:
    """The table of ``--dry-run``: every run, its state, MACs, estimated cost and command; then the total."""
    kind = "cuda" if n_gpus else "cpu"
    total = 0.0
    cost.count_macs(runs)  # one count per distinct network, before the table (a progress bar on a terminal)
    echo(f"{'run id':58s} {'state':10s} {'epochs':>7s} {'MACs':>9s} {'est. cost':>10s}  command")
    for r in runs:
        tr = uses_torchrun(study, r)
        est = cost.estimate_seconds(r, kind, n_gpus if tr else 1, epochs_done(r)) if states[r.run_id] in (
            "pending", "resumable") else 0.0
        total += est
        cmd = shlex.join(launch_command(r, torchrun=tr, gpus=n_gpus or 1, python=python))
        echo(f"{r.run_id:58s} {states[r.run_id]:10s} {r.config.epochs:7d} {cost.forward_macs(r) / 1e6:8.1f}M "
             f"{format_seconds(est):>10s}  {cmd}")
    slots = max(1, min(parallel, len(todo)))
    echo(f"estimated cost of the {len(todo)} unfinished runs: {format_seconds(total)} of {kind} time"
         + (f" (~{format_seconds(total / slots)} wall with --parallel {slots})" if slots > 1 else "")
         + f"; assumes {cost.THROUGHPUT_MACS_PER_S['cpu' if kind == 'cpu' else 'cuda-small']:.0e} MAC/s per "
         "device (recalib.studies.cost.THROUGHPUT_MACS_PER_S), 3x MACs per training image")
    for r in runs:
        if states[r.run_id] in ("stale", "broken"):
            echo(f"{states[r.run_id]}: {r.run_id}: {(stale_details if states[r.run_id] == 'stale' else broken_details)(r)}")


def _check_launchable(runs: Sequence[Run], states: Mapping[str, str], todo: Sequence[Run], data_dir: str | None,
                      echo: Callable[[str], None]) -> None:
    """``ValueError`` when a run cannot start (ImageNet without a data folder, stale folders); echo the others."""
    for r in todo:
        if get_dataset_info(r.dataset).kind == "folder" and not (data_dir or r.config.data_dir):
            raise ValueError(f"run {r.run_id} trains on {r.dataset}: pass --data-dir (the folder with train/ and val/)")
    stale = [r for r in runs if states[r.run_id] == "stale"]
    if stale:
        for r in stale:
            echo(f"stale: {r.run_id}: {stale_details(r)}")
        raise ValueError(
            f"{len(stale)} run folder(s) hold runs of a different configuration (the study file changed?); "
            "move them away or delete them, or report them under their old study file"
        )
    for r in runs:
        if states[r.run_id] == "running":
            echo(f"running elsewhere, skipped: {r.run_id} ({lock_holder(r.out)})")
        elif states[r.run_id] == "diverged":
            echo(f"diverged: {r.run_id}: {summary_message(r)}")
        elif states[r.run_id] == "broken":
            echo(f"broken: {r.run_id}: {broken_details(r)}")


def run_study(
    study: Study,
    results: str | os.PathLike[str],
    *,
    filters: Sequence[str] = (),
    parallel: int = 1,
    gpus: int | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    python: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    data_dir: str | None = None,
    threads: int | None = None,
) -> int:
    """Run every unfinished run of ``study`` (resuming interrupted ones); return the number that failed.

    ``parallel`` runs at once as subprocesses (``python -m recalib train --config ... --resume``), each with
    its log in ``train.log``; with CUDA devices they are assigned round-robin through ``CUDA_VISIBLE_DEVICES``
    (one GPU each when ``parallel <= gpus``, several runs sharing a GPU otherwise); on the CPU the cores are
    divided among them (``threads`` per run if given, else the study's ``threads`` override, else cores /
    ``parallel``; on a machine shared with other jobs, 1 thread per run avoids OpenMP's collapse under
    oversubscription, measured at 7x on a loaded 2-core machine). Torchrun runs (ImageNet) take every GPU and
    run one at a time. ``data_dir`` is given to every run (a run-time field: it does not make finished runs
    stale). ``dry_run`` lists the runs, their state and an estimated cost, and launches nothing.
    """
    if not 1 <= parallel <= 1024:
        raise ValueError(f"--parallel must be in [1, 1024], got {parallel}")
    if threads is not None and not 1 <= threads <= 1024:
        raise ValueError(f"--threads must be in [1, 1024], got {threads}")
    if gpus is not None and not 0 <= gpus <= 1024:
        raise ValueError(f"--gpus must be in [0, 1024], got {gpus}")
    runs = select_runs(plan_runs(study, results), filters)
    if not runs:
        echo(f"study {study.dir_name}: no run matches the filters {list(filters)}")
        return 0
    n_gpus = _cuda_count() if gpus is None else gpus
    states = {r.run_id: run_status(r) for r in runs}
    todo = [r for r in runs if states[r.run_id] in ("pending", "resumable")]
    echo(f"study {study.dir_name}: {study.description}".rstrip(": "))
    echo(f"schedule: {study.schedule}; recipe {study.recipe}; results in {Path(results) / study.dir_name}")
    counts = {s: sum(v == s for v in states.values()) for s in _STATES}
    echo(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if dry_run:
        _print_dry_run(study, runs, states, todo, n_gpus=n_gpus, parallel=parallel, python=python, echo=echo)
        return 0
    _check_launchable(runs, states, todo, data_dir, echo)
    if not todo:
        left = {s: n for s, n in counts.items() if n and s != "finished"}
        echo("nothing to do: " + ("every selected run is finished" if not left else
                                  ", ".join(f"{n} {s}" for s, n in left.items()) + f", {counts['finished']} finished"))
        return counts["diverged"] + counts["broken"]
    launcher = _Launcher(study, todo, states, parallel, n_gpus, echo, python=python, extra_env=extra_env,
                         data_dir=data_dir, threads=threads)
    t0 = time.perf_counter()
    launcher.run_all()
    echo(f"study {study.dir_name}: {len(todo) - launcher.failed - launcher.skipped} run(s) finished, "
         f"{launcher.failed} failed" + (f", {launcher.skipped} running elsewhere (skipped)" if launcher.skipped else "")
         + (f", {counts['broken']} broken (listed above)" if counts["broken"] else "")
         + f", {format_seconds(time.perf_counter() - t0)} wall")
    return launcher.failed + counts["broken"]
