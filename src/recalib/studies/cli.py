"""``recalib study``: run, report and list studies: shipped (``shipped/*.toml``), ``./studies`` or a path.

See :mod:`recalib.studies`.

Examples::

    recalib study list
    recalib study run table2-cifar --dry-run
    recalib study run fashion-mnist --parallel 1                 # on a CPU-only machine: variant cpu-short
    recalib study run fashion-mnist --variant none --parallel 4  # the paper's protocol, 4 runs per GPU set
    recalib study run table3-scales --filter model=resnet56 --filter operator=s124
    recalib study report fashion-mnist --out results/fashion-mnist
    recalib study report fashion-mnist     # in a source checkout: the committed runs of results/studies

``study report`` without ``--results`` reads the first of ``runs/studies``, ``./results/studies`` and the
checkout's ``results/studies`` that holds the study's folder (the shipped studies' committed runs are there).
``--variant auto`` (the default) picks the study's variant marked ``auto = "no-gpu"`` when CUDA is not
available, and the study as written otherwise; ``--variant none`` always means the study as written.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from .catalog import list_studies, load_study
from .launch import run_study
from .plan import DEFAULT_RESULTS
from .report import write_report
from .schema import Study

__all__ = ["configure_parser", "report_results", "run"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``recalib study``'s subcommands (``list``, ``run``, ``report``) and their options to ``parser``."""
    parser.description = "Run and report grids of experiments described in TOML files (shipped ones, ./studies/*.toml or a path)."
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("study", help="study name (shipped, or ./studies/NAME.toml) or path to a .toml file")
        p.add_argument("--variant", default="auto",
                       help="variant of the study: a name, 'none' (as written) or 'auto' (default: the no-GPU "
                            "variant when CUDA is unavailable)")
        p.add_argument("--results", default=None,
                       help=f"folder holding the study folders (default: {DEFAULT_RESULTS}; report: the first of "
                            f"{', '.join(map(str, _REPORT_RESULTS))} that holds the study)")
        p.add_argument("--filter", action="append", default=[], metavar="FIELD=GLOB",
                       help="keep runs whose model/operator/dataset/seed matches (repeatable; or a glob on the "
                            "run id)")

    p_run = sub.add_parser("run", help="train the runs that are not finished (resuming interrupted ones)")
    common(p_run)
    p_run.add_argument("--parallel", type=int, default=1, help="runs at once (default 1)")
    p_run.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: all visible)")
    p_run.add_argument("--dry-run", action="store_true", help="list the runs, their state and estimated cost")
    p_run.add_argument("--threads", type=int, default=None,
                       help="CPU threads per run (default: the study's, else the cores divided among the runs)")
    p_run.add_argument("--data-dir", default=None,
                       help="data folder given to every run (needed for ImageNet: the folder with train/ and val/)")

    p_rep = sub.add_parser("report", help="tables, paired differences, curves and error-vs-MACs of a study")
    common(p_rep)
    p_rep.add_argument("--out", default=None,
                       help="report folder (default: <results>/<study>[-variant]/report)")
    p_rep.add_argument("--allow-incomplete", action="store_true",
                       help="report even when some runs are not finished (they are listed as missing)")

    sub.add_parser("list", help="the studies found in ./studies and the shipped ones")


#: Where ``study report`` looks without ``--results``: the runs of ``study run``, then the committed runs of a
#: checkout (``results/studies`` under the current folder, then in the checkout this package was installed from).
_REPORT_RESULTS = (Path(DEFAULT_RESULTS), Path("results", "studies"),
                   Path(__file__).resolve().parents[3] / "results" / "studies")


def report_results(study: Study) -> Path:
    """The results folder ``study report`` reads when ``--results`` is not given (see :data:`_REPORT_RESULTS`)."""
    for folder in _REPORT_RESULTS:
        if (folder / study.dir_name).is_dir():
            return folder
    raise FileNotFoundError(f"no results of study {study.dir_name} in {', '.join(map(str, _REPORT_RESULTS))}; run "
                            f"`recalib study run {study.name}` first, or pass --results FOLDER")


def _command_line(args: argparse.Namespace) -> str:
    return "recalib study " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 and sys.argv[1] == "study" else ""


def run(args: argparse.Namespace) -> int:
    """``recalib study``: list, run or report a study; return the exit status (2 for a bad study or flag)."""
    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # run_study stops its subprocesses; they resume from their checkpoints

    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.action == "list":
            for name in list_studies():
                study = load_study(name, variant="none")
                variants = f" (variants: {', '.join(study.variants)})" if study.variants else ""
                print(f"{name:22s} {study.description}{variants}")
            return 0
        study = load_study(args.study, variant=args.variant)
        if args.variant == "auto" and study.variant is not None:
            print(f"variant {study.variant} selected automatically (no CUDA device); --variant none runs the "
                  "study as written", file=sys.stderr)
        if args.action == "run":
            failed = run_study(study, args.results or DEFAULT_RESULTS, filters=args.filter, parallel=args.parallel, gpus=args.gpus,
                               dry_run=args.dry_run, data_dir=args.data_dir,
                               threads=args.threads)
            return 1 if failed else 0
        results = args.results or report_results(study)
        out = write_report(study, results, out=args.out, filters=args.filter,
                           allow_incomplete=args.allow_incomplete, command=_command_line(args) or None)
        print(f"report written to {out}")
        return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"recalib study: error: {exc}", file=sys.stderr)
        return 2
