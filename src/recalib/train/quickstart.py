"""``recalib quickstart``: ResNet-20 with MS-SAR on Fashion-MNIST, in a few minutes on a laptop CPU.

Trains under the ``quick`` recipe (:data:`recalib.train.config.RECIPES`) on the full 60,000 training
images and evaluates on the full 10,000-image test set, then prints a short table (test error, params,
MACs, time) and the paths of the run's files. On a 2-core CPU it takes about six minutes and reaches
about 8% test error (docs/training.md has the measurements and how the recipe was tuned).

    recalib quickstart [--out runs/quickstart] [--device auto]
    recalib quickstart --subset 512 --test-subset 500 --epochs 1   # a smoke test of the set-up: seconds, not minutes
    python -m recalib.train.quickstart
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._argparse import Parser
from .._format import format_count

__all__ = ["configure_parser", "format_report", "main", "run"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``recalib quickstart``'s options to ``parser``."""
    parser.add_argument("--out", default="runs/quickstart", help="output folder (a previous quick-start there is replaced)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--data-dir", default=None, help="folder holding Fashion-MNIST (default: standard locations)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's, 3)")
    parser.add_argument("--subset", type=int, default=0, metavar="N",
                        help="train on a class-balanced subset of N training images (0: all 60,000; else at "
                             "least one batch, 256); with --test-subset and --epochs 1, a smoke run of the set-up")
    parser.add_argument("--test-subset", type=int, default=0, metavar="N",
                        help="evaluate on a class-balanced subset of N test images (0: all 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: OMP_NUM_THREADS if set, else all cores)")


def _human(n: float | None, unit: str = "") -> str:
    return format_count(n, unit=unit, sep=" ")


def format_report(summary: dict[str, Any]) -> str:
    """The quick-start's table and file list, from a run summary."""
    minutes, seconds = divmod(round(summary["wall_seconds"]), 60)
    cfg = summary["config"]
    head = ("test error", "top-5 error", "params", "MACs", "time")
    row = (
        f"{summary['final_test_error']:.2f} %",
        f"{summary['final_test_top5_error']:.2f} %",
        _human(summary["params"]),
        _human(summary["macs"]),
        f"{minutes} min {seconds:02d} s",
    )
    widths = [max(len(h), len(r)) for h, r in zip(head, row)]
    lines = [
        f"{cfg['model']} + {cfg['recalib']} on {summary['dataset']} (recipe {cfg['recipe']}: {cfg['epochs']} epochs, "
        f"batch {cfg['batch_size']}, {summary['train_images']} training images) on {summary['device']}",
        "",
        "  ".join(h.ljust(w) for h, w in zip(head, widths)),
        "  ".join(r.ljust(w) for r, w in zip(row, widths)),
        "",
        f"{summary['eval_set']} set: {summary['test_images']} images; best epoch {summary['best_epoch']} "
        f"({summary['best_test_error']:.2f} %)",
        "files:",
    ]
    lines += [f"  {path}" for path in summary["files"].values()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``recalib quickstart``: train the Fashion-MNIST quick-start and print its table; return the exit status."""
    from ._device import apply_runtime_settings
    from .config import resolve_config
    from .engine import NonFiniteLossError
    from .run import OutputError, train

    overrides: dict[str, Any] = {"out": args.out, "device": args.device, "data_dir": args.data_dir,
                                 "seed": args.seed, "threads": args.threads}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    for name in ("subset", "test_subset"):  # a value given replaces the recipe's (0: every image)
        if getattr(args, name):
            overrides[name] = getattr(args, name)
    try:
        config = resolve_config("quick", **overrides)
        if 0 < config.subset < config.batch_size:
            raise ValueError(f"--subset {config.subset} is less than one batch of the quick recipe "
                             f"({config.batch_size} images); give at least {config.batch_size}")
        apply_runtime_settings(config)
        summary = train(config, overwrite=True)
    except (NonFiniteLossError, OutputError) as exc:
        print(f"recalib quickstart: stopped: {exc}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(f"recalib quickstart: error: {exc}", file=sys.stderr)
        return 2
    print()
    print(format_report(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m recalib.train.quickstart``: the quick-start without the ``recalib`` dispatcher."""
    parser = Parser(prog="python -m recalib.train.quickstart", description=__doc__.splitlines()[0])
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
