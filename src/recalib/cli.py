"""The `recalib` command line: a thin dispatcher.

Each sub-command lives next to the library code it drives and exposes two functions,
``configure_parser(parser)`` and ``run(args) -> int``; this file only maps names to modules, so
importing the CLI does not import every subsystem.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("recalib.demo", "apply every operator to a real image batch and print statistics"),
    "quickstart": ("recalib.train.quickstart", "train ResNet-20 + MS-SAR on Fashion-MNIST (the main job)"),
    "train": ("recalib.train.cli", "train a zoo model under a recipe"),
    "eval": ("recalib.train.cli_eval", "re-evaluate a checkpoint on a data set"),
    "profile": ("recalib.analysis.profile", "params / MACs table for models x operators"),
    "study": ("recalib.analysis.study_cli", "run and report grids of experiments"),
    "visualize": ("recalib.analysis.visualize", "plot the gates of a trained model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recalib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # an optional extra of this command is missing
            if exc.name and exc.name.startswith("recalib"):
                raise
            sp.set_defaults(_missing=str(exc))
            continue
        module.configure_parser(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    missing = getattr(args, "_missing", None)
    if missing:
        print(f"recalib {args.command}: {missing}; install the extras: pip install 'recalib[all]'", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
