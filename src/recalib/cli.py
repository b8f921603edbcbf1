"""The `recalib` command line: a thin dispatcher.

Each sub-command lives next to the library code it drives and exposes two functions,
``configure_parser(parser)`` and ``run(args) -> int``; this file only maps names to modules and imports
the one module of the command being run, so `recalib profile` never pays for importing the trainer.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from ._argparse import Parser
from ._names import suggestion
from ._optional import MissingExtraError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("recalib.train.quickstart", "train ResNet-20 + MS-SAR on Fashion-MNIST (the main job)"),
    "train": ("recalib.train.cli", "train a zoo model under a recipe (torchrun-aware)"),
    "eval": ("recalib.train.cli_eval", "re-evaluate a checkpoint on a data set"),
    "profile": ("recalib.analysis.profile", "params / MACs table for models x operators"),
    "study": ("recalib.studies.cli", "run and report grids of experiments"),
    "visualize": ("recalib.analysis.visualize", "plot the gates of a trained model"),
    "export": ("recalib.pretrained.cli_export", "write a run's weights as a Hugging Face folder with a model card"),
    "demo": ("recalib.demo", "apply every operator to a real image batch and print statistics"),
}


def _top_parser() -> argparse.ArgumentParser:
    epilog = "commands:\n" + "\n".join(f"  {name:12s} {text}" for name, (_, text) in COMMANDS.items())
    parser = Parser(
        prog="recalib",
        description="Feature recalibration for CNNs (MS-SAR, SE, GE, SGE). Run `recalib COMMAND --help` for details.",
        epilog=epilog,
    )
    parser.add_argument("--version", action="version", version=f"recalib {__version__}")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="one of: " + ", ".join(COMMANDS))
    return parser


def build_parser(command: str) -> argparse.ArgumentParser:
    """The argument parser of one sub-command (imports only that command's module)."""
    module_name, help_text = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = Parser(prog=f"recalib {command}", description=help_text)
    module.configure_parser(parser)
    parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    if argv[0].startswith("-"):
        top.parse_args(argv[:1])  # --version; one line for any other option
    if argv[0] not in COMMANDS:
        print(f"recalib: error: invalid choice {argv[0]!r}; commands: {', '.join(COMMANDS)}"
              f"{suggestion(argv[0], COMMANDS)} (see `recalib --help`)", file=sys.stderr)
        return 2
    parser = build_parser(argv[0])
    args = parser.parse_args(argv[1:])
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, MissingExtraError) as exc:  # a user error let through: still one line
        print(f"recalib {argv[0]}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
