"""Choose the learning rate and weight decay of the Fashion-MNIST ``cpu-budget`` study on a validation split.

The study's schedule (ResNet-20, 5 epochs, batch 128, warm-up 0.5 epoch then linear decay to zero, pad-4 crops
and flips) is fixed by the compute budget, and so is the peak learning rate: the paper's 0.1 (a 2 x 2 grid with
0.2 was planned, and cut to the paper's rate before any candidate finished, because the shared machine ran at
about half speed). This script trains the plain network with each candidate weight decay on 50,000 training
images and evaluates it on the other 10,000 (``--val-split 10000``), never on the test set. The rule, fixed
before any run: the lowest last-epoch validation error wins.

After the choice, and not used for it, the script also runs two checks on the same split (``CHECKS``): the
chosen candidate for twice the epochs, which measures how much the 5-epoch budget costs (the study's README needs
it to explain an error target the budget misses), and SGE with several channels per group, which tells whether
the study's SGE row (one channel per group on ResNet-20) is the operator or its group size.

    python3 scripts/tune_fashion_mnist_budget.py              # train what is missing (2 at a time), then report
    python3 scripts/tune_fashion_mnist_budget.py --checks     # the two checks run after the choice
    python3 scripts/tune_fashion_mnist_budget.py --report     # only write the README from the finished runs
    python3 scripts/tune_fashion_mnist_budget.py --check      # is the committed README what the committed runs give?

Run folders and the generated README: ``results/fashion-mnist/validation/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # _git_tracked, also when loaded by path (tests)
OUT = ROOT / "results" / "fashion-mnist" / "validation"
EPOCHS = 5  # the study's budget


class Run(NamedTuple):
    """One validation run: what differs between runs; everything else is ``FIXED``."""

    lr: float
    wd: float
    epochs: int = EPOCHS
    recalib: str = "none"


CANDIDATES = [Run(0.1, 1e-4), Run(0.1, 5e-4)]  # the paper's weight decay and the usual short-schedule one
CHOSEN = Run(0.1, 5e-4)  # what the rule picked (the README checks this against the runs)
BUDGET_CHECK = CHOSEN._replace(epochs=2 * EPOCHS)  # after the choice: twice the epochs
SGE_CHECK = CHOSEN._replace(recalib="sge(groups=4)")  # after the choice: 4, 8, 16 channels per group
CHECKS = [BUDGET_CHECK, SGE_CHECK]
FIXED = ["--batch-size", "128", "--schedule", "linear", "--milestones",
         "--warmup-epochs", "0.5", "--val-split", "10000", "--seed", "0", "--device", "cpu", "--threads", "1",
         "--no-tensorboard", "--no-progress"]


def run_name(run: Run) -> str:
    operator = "" if run.recalib == "none" else "_" + "".join(c for c in run.recalib if c.isalnum())
    return f"lr{run.lr:g}_wd{run.wd:g}" + ("" if run.epochs == EPOCHS else f"_e{run.epochs}") + operator


def command(run: Run) -> list[str]:
    return [sys.executable, "-m", "recalib", "train", "--model", "resnet20", "--recalib", run.recalib,
            "--dataset", "fashion-mnist", "--recipe", "paper-cifar-resnet", "--epochs", str(run.epochs), *FIXED,
            "--lr", str(run.lr), "--wd", str(run.wd), "--out", str(OUT / run_name(run))]


def finished(folder: Path) -> bool:
    try:
        return json.loads((folder / "summary.json").read_text()).get("status") == "completed"
    except (OSError, ValueError):
        return False


def val_errors(folder: Path) -> list[float]:
    """Validation error (%) of each finished epoch of one run, in order."""
    if not (folder / "metrics.jsonl").is_file():
        return []
    return [json.loads(x)["test_error"] for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]


def train_missing(parallel: int, runs: list[Run]) -> None:
    todo = [run for run in runs if not finished(OUT / run_name(run))]
    running: list[subprocess.Popen[bytes]] = []
    while todo or running:
        while todo and len(running) < parallel:
            run = todo.pop(0)
            folder = OUT / run_name(run)
            folder.mkdir(parents=True, exist_ok=True)
            resume = ["--resume"] if (folder / "checkpoint.pt").is_file() else []
            log = open(folder / "train.log", "ab")  # noqa: SIM115 - closed with the process
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            running.append(subprocess.Popen(command(run) + resume, stdout=log, stderr=log, env=env))
            print(f"started {run_name(run)}", flush=True)
        time.sleep(5)
        for p in [p for p in running if p.poll() is not None]:
            running.remove(p)
            print(f"exit {p.returncode}: {' '.join(p.args[-2:])}", flush=True)  # type: ignore[index]


def report(runs: Path = OUT) -> str:
    lines = [
        "# Fashion-MNIST budgeted CPU schedule: choosing lr and weight decay on a validation split",
        "",
        "Generated by `python3 scripts/tune_fashion_mnist_budget.py --report` from the run folders here.",
        "",
        "ResNet-20 without recalibration, seed 0, trained on 50,000 of the 60,000 training images and evaluated on",
        "the other 10,000 (`--val-split 10000`; the test set is never touched). Fixed by the budget: 5 epochs,",
        "batch 128, SGD with Nesterov momentum 0.9, a linear warm-up over 0.5 epoch and a linear decay to zero,",
        "pad-4 random crops and horizontal flips, and the paper's peak learning rate 0.1 (a second rate, 0.2, was",
        "planned and cut before any candidate finished: the shared 2-core machine ran at about half speed).",
        "Candidates: the paper's weight decay 1e-4 and 5e-4, the usual value for short schedules. Rule fixed",
        "before the runs: the lowest last-epoch validation error wins.",
        "",
        "| lr | wd | " + " | ".join(f"val. error ep. {e} (%)" for e in range(1, EPOCHS + 1)) + " |",
        "|---|---|" + "---|" * EPOCHS,
    ]
    best = None
    for run in CANDIDATES:
        errors = val_errors(runs / run_name(run))
        lines.append(f"| {run.lr:g} | {run.wd:g} | " + " | ".join(cells(errors, run.epochs)) + " |")
        if finished(runs / run_name(run)) and (best is None or errors[-1] < best[1]):
            best = (run, errors[-1])
    lines.append("")
    if best is None or not all(finished(runs / run_name(run)) for run in CANDIDATES):
        lines.append("Not every candidate has finished; no choice is made yet.")
    else:
        if best[0] != CHOSEN:
            raise SystemExit(f"the rule picks {best[0]}, but CHOSEN (the study's setting) is {CHOSEN}")
        lines.append(f"Chosen: lr {best[0].lr:g}, wd {best[0].wd:g} ({best[1]:.2f} % last-epoch validation error).")
    lines += budget_check_section(runs) + sge_check_section(runs)
    lines += ["", "Command of each run:", "", "```bash"]
    lines += ["python3 " + shlex.join(command(run)[1:]).replace(str(ROOT) + "/", "") for run in [*CANDIDATES, *CHECKS]]
    lines += ["```", ""]
    return "\n".join(lines)


def cells(errors: list[float], epochs: int, width: int = 0) -> list[str]:
    """Table cells: one error per finished epoch, a dash per missing one, blanks up to ``width`` columns."""
    return [f"{e:.2f}" for e in errors] + ["—"] * (epochs - len(errors)) + [""] * (width - epochs)


def comparison(runs: Path, check: Run, label: str) -> str:
    """The last-epoch sentence comparing a check with the chosen candidate, once both have finished."""
    if not (finished(runs / run_name(check)) and finished(runs / run_name(CHOSEN))):
        return "This run has not finished; nothing is measured yet."
    base, other = val_errors(runs / run_name(CHOSEN))[-1], val_errors(runs / run_name(check))[-1]
    return (f"Last-epoch validation error: {base:.2f} % for the chosen candidate, {other:.2f} % {label} "
            f"({other - base:+.2f} points). Curves: [chosen]({run_name(CHOSEN)}/curves.png), "
            f"[this check]({run_name(check)}/curves.png).")


def budget_check_section(runs: Path) -> list[str]:
    """The longer run on the same split: is the number of epochs what limits the error?"""
    run = BUDGET_CHECK
    lines = [
        "",
        f"## Does the {EPOCHS}-epoch budget limit the error?",
        "",
        f"Run after the choice and not used for it: the chosen lr {run.lr:g} and wd {run.wd:g} trained for "
        f"{run.epochs} epochs",
        f"instead of {EPOCHS}, on the same split with the same seed, warm-up (0.5 epoch) and linear decay to zero, "
        "so only",
        "the length of the schedule differs. One seed on one split: it measures the size of the effect, not its",
        "spread.",
        "",
        "| epochs | " + " | ".join(f"ep. {e}" for e in range(1, run.epochs + 1)) + " |",
        "|---|" + "---|" * run.epochs,
    ]
    for r in (CHOSEN, run):
        lines.append(f"| {r.epochs} | " + " | ".join(cells(val_errors(runs / run_name(r)), r.epochs, run.epochs)) + " |")
    return [*lines, "", comparison(runs, run, f"after {run.epochs} epochs")]


def sge_check_section(runs: Path) -> list[str]:
    """SGE with several channels per group on the same split: is the study's SGE row its group size?"""
    run = SGE_CHECK
    lines = [
        "",
        "## Is the study's SGE row the operator or its group size?",
        "",
        "The study gives SGE the largest number of groups up to 64 that divides the channels, which on ResNet-20's",
        "16-, 32- and 64-channel stages is one channel per group; the SGE paper groups many channels on ResNet-50.",
        f"Run after the choice and not used for it: `{run.recalib}` (4, 8 and 16 channels per group) with the chosen",
        "candidate's schedule on the same split and seed, next to the plain network. One seed: a gap of several",
        "points is a finding, a gap of tenths is not.",
        "",
        "| operator | " + " | ".join(f"ep. {e}" for e in range(1, EPOCHS + 1)) + " |",
        "|---|" + "---|" * EPOCHS,
    ]
    for r in (CHOSEN, run):
        lines.append(f"| `{r.recalib}` | " + " | ".join(cells(val_errors(runs / run_name(r)), r.epochs)) + " |")
    return [*lines, "", comparison(runs, run, f"for `{run.recalib}`")]


def committed_copy(dest: Path) -> Path:
    """Copy the validation files git tracks under ``dest`` (runs in flight here stay out); return their folder."""
    from _git_tracked import copy_git_tracked

    folder = OUT.relative_to(ROOT)
    try:
        copy_git_tracked(ROOT, folder, dest)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"tune_fashion_mnist_budget: --check needs a git checkout ({exc})") from None
    return dest / folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", action="store_true", help="only write the README from finished runs")
    parser.add_argument("--check", action="store_true",
                        help="only compare the committed README with what the committed runs give (exit 1 if not)")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once, one thread each (default 2)")
    parser.add_argument("--checks", action="store_true",
                        help="train the checks run after the choice (a longer schedule, SGE's group size)")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory(prefix="recalib-validation-") as tmp:
            expected = report(committed_copy(Path(tmp)))
        if (OUT / "README.md").read_text() != expected:
            print(f"{OUT / 'README.md'} is not what the committed runs give; run {Path(__file__).name} --report")
            return 1
        return 0
    if not args.report:
        train_missing(args.parallel, CHECKS if args.checks else CANDIDATES)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "README.md").write_text(report())
    print((OUT / "README.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
