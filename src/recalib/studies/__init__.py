"""Studies: grids of training runs described as data (TOML), planned, run, resumed and reported.

The shipped studies are package data, ``recalib/studies/shipped/*.toml`` (:func:`shipped_studies_dir`).

One concept per module, in the order a study goes through them:

* :mod:`.schema` — the TOML schema: :class:`Study`, :class:`Operator`, :class:`Variant`, validation;
* :mod:`.catalog` — finding and loading study files, choosing a variant;
* :mod:`.plan` — the grid expanded into :class:`Run` records, filters, where each run stands;
* :mod:`.cost` — the ``--dry-run`` cost model (throughputs and split sizes live there);
* :mod:`.launch` — the subprocess/GPU scheduler of ``recalib study run``;
* :mod:`.results`, :mod:`.stats`, :mod:`.tables`, :mod:`.plots`, :mod:`.report` — ``recalib study report``;
* :mod:`.cli` — the ``recalib study`` command.

The package sits above :mod:`recalib.train` (every run is one ``recalib train`` subprocess) and nothing
below it imports it.
"""

from .catalog import (
    auto_variant,
    find_study_file,
    list_studies,
    load_study,
    shipped_studies_dir,
    studies_dirs,
)
from .cost import THROUGHPUT_MACS_PER_S, estimate_seconds, run_images
from .launch import launch_command, prepare_run_folder, run_study, uses_torchrun
from .plan import (
    DEFAULT_RESULTS,
    LOG_FILE,
    PLANNED_CONFIG,
    STUDY_FILE,
    Run,
    make_run_id,
    plan_runs,
    run_status,
    select_runs,
    stale_details,
)
from .report import write_report
from .results import RunResult, collect_results
from .schema import Operator, Study, Variant, parse_study, study_dir_name
from .stats import PairedDifference, mean_std, paired_difference, t_quantile

__all__ = [
    "DEFAULT_RESULTS",
    "LOG_FILE",
    "PLANNED_CONFIG",
    "STUDY_FILE",
    "THROUGHPUT_MACS_PER_S",
    "Operator",
    "PairedDifference",
    "Run",
    "RunResult",
    "Study",
    "Variant",
    "auto_variant",
    "collect_results",
    "estimate_seconds",
    "find_study_file",
    "launch_command",
    "list_studies",
    "load_study",
    "make_run_id",
    "mean_std",
    "paired_difference",
    "parse_study",
    "plan_runs",
    "prepare_run_folder",
    "run_images",
    "run_status",
    "run_study",
    "select_runs",
    "shipped_studies_dir",
    "stale_details",
    "studies_dirs",
    "study_dir_name",
    "t_quantile",
    "uses_torchrun",
    "write_report",
]
