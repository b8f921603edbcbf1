"""``recalib train``: the command line mapped onto :class:`~recalib.train.config.TrainConfig`.

Every field of the dataclass is an option (``batch_size`` -> ``--batch-size``; booleans also take
``--no-...``); the value comes from, in increasing priority: the field's default, the ``--recipe``, a
``--config config.json``, the options given. With ``--resume`` the run's own ``config.json`` takes the
place of the recipe, so ``recalib train --out runs/x --resume`` is enough to continue a run.

Examples::

    recalib train --model resnet20 --recalib mssar --dataset fashion-mnist --recipe paper-cifar-resnet --out runs/x
    recalib train --out runs/x --resume
    torchrun --standalone --nproc_per_node=4 -m recalib train --recipe paper-cifar-resnet ... --out runs/y

See :mod:`recalib.train.distributed` (or docs/training.md) for multi-node and elastic runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import typing
from pathlib import Path
from typing import Any

from .config import FIELD_NAMES, RECIPES, TrainConfig, load_config_json, resolve_config

__all__ = ["add_config_arguments", "check_names", "config_from_args", "configure_parser", "run"]

_ALIASES = {"wd": ["--weight-decay"], "out": ["-o"]}


def add_config_arguments(parser: argparse.ArgumentParser | Any, skip: tuple[str, ...] = ("recipe",)) -> None:
    """One option per :class:`TrainConfig` field; an option not given leaves no attribute on the namespace."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        hint = hints[f.name]
        flags = [f"--{f.name.replace('_', '-')}", *_ALIASES.get(f.name, [])]
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS,
                                  "help": _help_with_default(f)}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif hint == tuple[int, ...]:
            kwargs.update(nargs="*", type=int, metavar="N")
        elif hint in (int, float):
            kwargs.update(type=hint, metavar="N" if hint is int else "X")
        else:
            kwargs.update(type=str, metavar=f.name.split("_")[-1].upper())
        parser.add_argument(*flags, **kwargs)


def _help_with_default(f: dataclasses.Field[Any]) -> str:
    """The field's help and its default, then the recipes that change it: ``... (default: 160; quick: 3)``."""
    def show(value: Any) -> str:
        return (" ".join(map(str, value)) or "none") if isinstance(value, tuple) else str(value)

    text = f.metadata.get("help", "")
    changes = [f"{recipe}: {show(values[f.name])}" for recipe, values in RECIPES.items()
               if f.name in values and values[f.name] != f.default]
    if f.default in (None, "") or "default" in text:
        return text
    return f"{text} (default: {show(f.default)}" + (f"; {', '.join(changes)})" if changes else ")")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``recalib train``'s options to ``parser``."""
    parser.description = (
        "Train a zoo model under a recipe (paper protocols of docs/spec.md, section 6, or quick). Writes config.json, "
        "metrics.jsonl, checkpoint.pt, summary.json and curves.png into --out."
    )
    parser.add_argument("--recipe", default=None, choices=list(RECIPES),
                        help="base values of every field (default: paper-cifar-resnet)")
    parser.add_argument("--config", default=None, metavar="JSON",
                        help="start from the config.json of an earlier run (options given override it)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint (starts it if there is none yet)")
    parser.add_argument("--overwrite", action="store_true", help="delete a previous run in --out and start over")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    add_config_arguments(parser.add_argument_group("configuration (defaults: paper-cifar-resnet's, and where "
                                                   "another recipe differs, its value)"))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Resolve the :class:`TrainConfig` an argument namespace describes (see the module docstring)."""
    explicit = {name: getattr(args, name) for name in FIELD_NAMES if name != "recipe" and hasattr(args, name)}
    recipe: str | None = getattr(args, "recipe", None)
    base: dict[str, Any] = {}
    if getattr(args, "config", None):
        base = load_config_json(args.config)
    elif getattr(args, "resume", False):
        out = explicit.get("out") or resolve_config(recipe or "paper-cifar-resnet").out
        run_config = Path(out) / "config.json"
        if run_config.is_file():
            base = load_config_json(run_config)
    if base:
        base_recipe = base.pop("recipe", None)
        if recipe is not None and base_recipe is not None and recipe != base_recipe and args.resume:
            raise ValueError(
                f"--recipe {recipe} differs from the recipe of the run being resumed ({base_recipe}); drop --recipe"
            )
        recipe = recipe or base_recipe
    return resolve_config(recipe or "paper-cifar-resnet", **{**base, **explicit})


def check_names(*, model: str | None = None, recalib: str | None = None, dataset: str | None = None) -> None:
    """``ValueError`` (with a did-you-mean) for an unknown model, operator or data set name; builds and reads nothing.

    Commands call it before any data is read or any folder is made, so that ``--recalib msar`` is reported as
    itself ("did you mean 'mssar'?"), not as whatever the first step that needs the name happens to fail on.
    """
    from ..data import get_dataset_info
    from ..models import model_info, resolve_recalib

    if model is not None:
        model_info(model)
    if recalib is not None:
        resolve_recalib(recalib)  # the operator's name and the names of its arguments
    if dataset is not None:
        get_dataset_info(dataset)


def run(args: argparse.Namespace) -> int:
    """``recalib train``: apply the runtime settings, resolve the config and train; return the exit status."""
    from ._device import apply_runtime_settings
    from .distributed import PeerTimeoutError
    from .engine import NonFiniteLossError
    from .run import OutputError, train

    received: list[int] = []

    def _on_sigterm(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt  # train() says where the resumable checkpoint is

    previous = (signal.signal(signal.SIGTERM, _on_sigterm)
                if threading.current_thread() is threading.main_thread() else None)
    try:
        config = config_from_args(args)
        check_names(model=config.model, recalib=config.recalib, dataset=config.dataset)
        if args.print_config:
            print(json.dumps(config.to_dict(), indent=2))
            return 0
        apply_runtime_settings(config)  # threads, TF32, determinism: the entry point's business, not train()'s
        train(config, resume=args.resume, overwrite=args.overwrite)
    except (NonFiniteLossError, PeerTimeoutError) as exc:
        print(f"recalib train: stopped: {exc}", file=sys.stderr)
        return 1
    except OutputError as exc:  # a full disk, permissions: the folder's state is named, fix it and --resume
        print(f"recalib train: stopped: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"recalib train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = received[0] if received else signal.SIGINT
        detail = f": {exc}" if str(exc) else ""
        print(f"recalib train: interrupted by {signal.Signals(signum).name}{detail}", file=sys.stderr)
        return 128 + signum
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
