"""Studies: grids of training runs described as data (``studies/*.toml``), planned, run and resumed.

A study reproduces one experiment of Wang et al., "Multi-Scale Spatially-Asymmetric Recalibration for Image
Classification" (ECCV 2018, arXiv:1804.00787): Table 2 (CIFAR, none vs MS-SAR), Table 3 (the 7 scale sets),
Table 5 (ImageNet, none / SE / MS-SAR), the sliding-vs-regional and multi-stage ablations of Section 4.2,
or the project's own Fashion-MNIST comparison. The grid is model x operator x data set x seed, every run is
one :func:`recalib.train.train` call, and the run folders are ``<results>/<study>[-<variant>]/<run-id>/``.

The TOML schema (unknown keys are errors everywhere)::

    [study]
    name = "fashion-mnist"            # must equal the file name
    description = "..."
    recipe = "paper-cifar-resnet"     # a recalib.train recipe
    datasets = ["fashion-mnist"]
    seeds = [0, 1, 2]
    baseline = "none"                 # operator key the others are compared with (optional)
    reference = "se"                  # a second comparison, e.g. SE (optional)
    schedule = "paper protocol ..."   # label printed in every table
    launcher = "auto"                 # auto | python | torchrun (auto: torchrun for folder data sets)
    overrides = { epochs = 160 }      # TrainConfig fields for every run (optional)

    [grid]
    models = ["resnet20", "resnet56"]
    recipes = { resnet56 = "paper-cifar-resnet" }   # optional per-model recipe (e.g. DenseNets)

    [[operators]]
    key = "mssar"                     # used in run ids; [a-z0-9_.]+
    label = "MS-SAR"                  # shown in tables
    spec = "mssar(scales=(1, 2, 4))"  # what recalib.build_recalib accepts; "none" for the plain backbone
    model_args = { multi_stage = true }   # optional create_model keyword arguments

    [variants.cpu-short]              # optional named variants
    schedule = "shortened schedule (CPU)"
    description = "..."
    overrides = { subset = 2000, epochs = 4, milestones = [2, 3] }
    models = ["resnet20"]             # optional restrictions of the grid
    operators = ["none", "mssar"]
    seeds = [0, 1]
    auto = "no-gpu"                   # picked by ``--variant auto`` (the default) when CUDA is unavailable

Where a run stands is read from its folder: ``summary.json`` with status ``completed`` -> finished;
``diverged`` -> failed (kept, reported); ``checkpoint.pt`` -> resumable; nothing -> pending; a folder whose
lock (:mod:`recalib.train.runlock`) another process holds -> running (elsewhere: skipped, never trained
twice). A folder whose ``config.json`` differs from the plan (outside the run-time fields) is *stale* and
stops the study with a message, so a changed study file never mixes two protocols in one table. A run whose
operator needs ``model_args`` that this version of :mod:`recalib.train` cannot carry is *blocked*:
``--dry-run`` lists it with the reason, ``run`` refuses to start.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = [
    "THROUGHPUT_MACS_PER_S",
    "Operator",
    "Run",
    "Study",
    "Variant",
    "estimate_seconds",
    "find_study_file",
    "launch_command",
    "list_studies",
    "load_study",
    "plan_runs",
    "run_status",
    "run_study",
    "select_runs",
    "study_dir_name",
]

#: Images per split of each data set, for cost estimates (``subset``/``test_subset``/``val_split`` adjust them).
SPLIT_SIZES: dict[str, tuple[int, int]] = {
    "fashion-mnist": (60_000, 10_000),
    "cifar10": (50_000, 10_000),
    "cifar100": (50_000, 10_000),
    "imagenet": (1_281_167, 50_000),
}

#: Effective multiply-accumulates per second per device, for ``--dry-run`` estimates only (order of magnitude).
#: A training image costs 3x its forward MACs (forward + backward), a test image 1x. ``cpu``: measured on the
#: project's 2-core shared machine (ResNet-20 on Fashion-MNIST trains at ~100 img/s = 3 x 30.8 M x 100 ~ 1e10;
#: MS-SAR "sliding" is ~5x slower there than its MAC count says). ``cuda``: one A100/H100-class GPU with bf16
#: and channels_last (ResNet-20 on CIFAR at ~25k img/s ~ 3e12; ImageNet ResNet-50 ~3k img/s ~ 4e13; small
#: CIFAR models are latency-bound, so the small value is used for them and the large one for ImageNet).
THROUGHPUT_MACS_PER_S: dict[str, float] = {"cpu": 1.0e10, "cuda-small": 3.0e12, "cuda-large": 4.0e13}

_KEY_RE = re.compile(r"^[a-z0-9_.]+$")
_STUDY_KEYS = {"name", "description", "recipe", "datasets", "seeds", "baseline", "reference", "schedule",
               "launcher", "overrides"}
_GRID_KEYS = {"models", "recipes"}
_OPERATOR_KEYS = {"key", "label", "spec", "model_args"}
_VARIANT_KEYS = {"schedule", "description", "overrides", "models", "operators", "seeds", "datasets", "auto"}
_LAUNCHERS = ("auto", "python", "torchrun")
_AUTO_CONDITIONS = ("no-gpu",)
STUDY_FILE = "study.json"  # written into every run folder: what the run is within its study
PLANNED_CONFIG = "planned_config.json"  # the TrainConfig the study launches the run with
LOG_FILE = "train.log"


# ------------------------------------------------------------------------------------------ schema ---
@dataclass(frozen=True)
class Operator:
    """One operator column of the grid: ``spec`` goes to ``TrainConfig.recalib``; ``model_args`` to the model."""

    key: str
    label: str
    spec: str
    model_args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """A named change of a study (e.g. a shortened schedule); empty restrictions keep the study's grid."""

    name: str
    schedule: str | None = None
    description: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    datasets: tuple[str, ...] = ()
    auto: str | None = None


@dataclass(frozen=True)
class Study:
    """A study file, with at most one variant applied (``variant`` names it; ``None`` is the study as written)."""

    name: str
    description: str
    recipe: str
    datasets: tuple[str, ...]
    models: tuple[str, ...]
    operators: tuple[Operator, ...]
    seeds: tuple[int, ...]
    schedule: str
    baseline: str | None = None
    reference: str | None = None
    launcher: str = "auto"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    model_recipes: Mapping[str, str] = field(default_factory=dict)
    variants: Mapping[str, Variant] = field(default_factory=dict)
    variant: str | None = None
    path: Path | None = None

    def recipe_of(self, model: str) -> str:
        """The recipe ``model`` trains under ([grid] recipes, else [study] recipe)."""
        return self.model_recipes.get(model, self.recipe)

    def operator(self, key: str) -> Operator:
        for op in self.operators:
            if op.key == key:
                return op
        raise ValueError(f"study {self.name}: no operator {key!r}; operators: {', '.join(o.key for o in self.operators)}")

    @property
    def dir_name(self) -> str:
        return study_dir_name(self.name, self.variant)

    def with_variant(self, name: str | None) -> Study:
        """This study with variant ``name`` applied (``None``: as written)."""
        if self.variant is not None:
            raise ValueError(f"study {self.name} already has variant {self.variant!r} applied")
        if name is None:
            return self
        if name not in self.variants:
            valid = ", ".join(self.variants) or "none defined"
            raise ValueError(f"study {self.name}: unknown variant {name!r}; variants: {valid}")
        v = self.variants[name]

        def restrict(kind: str, chosen: tuple[Any, ...], available: tuple[Any, ...]) -> tuple[Any, ...]:
            if not chosen:
                return available
            missing = [c for c in chosen if c not in available]
            if missing:
                raise ValueError(f"study {self.name}, variant {name}: {kind} {missing} are not in the study's grid")
            return tuple(c for c in available if c in chosen)

        keys = restrict("operators", v.operators, tuple(o.key for o in self.operators))
        return dataclasses.replace(
            self,
            description=v.description or self.description,
            schedule=v.schedule or self.schedule,
            overrides={**self.overrides, **v.overrides},
            models=restrict("models", v.models, self.models),
            datasets=restrict("datasets", v.datasets, self.datasets),
            seeds=v.seeds or self.seeds,
            operators=tuple(o for o in self.operators if o.key in keys),
            variant=name,
        )


def study_dir_name(name: str, variant: str | None) -> str:
    """Folder of a study's runs inside the results folder: ``name`` or ``name-variant``."""
    return name if variant is None else f"{name}-{variant}"


def _err(where: str, msg: str) -> ValueError:
    return ValueError(f"{where}: {msg}")


def _check_table(table: Any, allowed: set[str], where: str, required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _err(where, f"expected a table, got {type(table).__name__}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _err(where, f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(allowed))}")
    missing = [k for k in required if k not in table]
    if missing:
        raise _err(where, f"missing key(s) {', '.join(missing)}")
    return table


def _str_list(value: Any, where: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _err(where, f"{name} must be a list of non-empty strings, got {value!r}")
    if len(set(value)) != len(value):
        raise _err(where, f"{name} has duplicates: {value!r}")
    return tuple(value)


def _int_list(value: Any, where: str, name: str, most: int = 2**32 - 1) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= most for v in value
    ):
        raise _err(where, f"{name} must be a non-empty list of integers in [0, {most}], got {value!r}")
    if len(set(value)) != len(value):
        raise _err(where, f"{name} has duplicates: {value!r}")
    return tuple(value)


def _overrides(value: Any, where: str) -> dict[str, Any]:
    from ..train.config import FIELD_NAMES

    if not isinstance(value, dict):
        raise _err(where, f"overrides must be a table of TrainConfig fields, got {value!r}")
    forbidden = sorted({"model", "recalib", "dataset", "seed", "out", "recipe"} & set(value))
    if forbidden:
        raise _err(where, f"overrides may not set {', '.join(forbidden)}: the grid and the study set them")
    unknown = sorted(set(value) - set(FIELD_NAMES))
    if unknown:
        raise _err(where, f"unknown TrainConfig field(s) {', '.join(unknown)}; valid fields: {', '.join(FIELD_NAMES)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}


def _parse_operator(raw: Any, where: str) -> Operator:
    from ..modules import parse_recalib_spec

    t = _check_table(raw, _OPERATOR_KEYS, where, required=("key", "label", "spec"))
    key, label, spec = t["key"], t["label"], t["spec"]
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise _err(where, f"key must match {_KEY_RE.pattern} (it is part of run folder names), got {key!r}")
    if not isinstance(label, str) or not label:
        raise _err(where, f"label must be a non-empty string, got {label!r}")
    if not isinstance(spec, str) or not spec:
        raise _err(where, f"spec must be an operator name or spec string, got {spec!r}")
    try:
        parse_recalib_spec(spec)
    except ValueError as exc:
        raise _err(where, f"spec {spec!r}: {exc}") from None
    model_args = t.get("model_args", {})
    if not isinstance(model_args, dict):
        raise _err(where, f"model_args must be a table, got {model_args!r}")
    return Operator(key, label, spec, dict(model_args))


def _parse_variant(name: str, raw: Any, where: str) -> Variant:
    t = _check_table(raw, _VARIANT_KEYS, where)
    if not _KEY_RE.match(name.replace("-", "_")):
        raise _err(where, f"variant names may use a-z, 0-9, '-', '_' and '.', got {name!r}")
    auto = t.get("auto")
    if auto is not None and auto not in _AUTO_CONDITIONS:
        raise _err(where, f"auto must be one of {', '.join(_AUTO_CONDITIONS)}, got {auto!r}")
    for key in ("schedule", "description"):
        if key in t and not isinstance(t[key], str):
            raise _err(where, f"{key} must be a string, got {t[key]!r}")
    return Variant(
        name=name,
        schedule=t.get("schedule"),
        description=t.get("description"),
        overrides=_overrides(t.get("overrides", {}), where),
        models=_str_list(t["models"], where, "models") if "models" in t else (),
        operators=_str_list(t["operators"], where, "operators") if "operators" in t else (),
        seeds=_int_list(t["seeds"], where, "seeds") if "seeds" in t else (),
        datasets=_str_list(t["datasets"], where, "datasets") if "datasets" in t else (),
        auto=auto,
    )


def parse_study(data: Mapping[str, Any], where: str = "study", path: Path | None = None) -> Study:
    """Validate a parsed study file (see the module docstring) and return the :class:`Study`."""
    from ..train.config import RECIPES

    top = _check_table(dict(data), {"study", "grid", "operators", "variants"}, where,
                       required=("study", "grid", "operators"))
    s = _check_table(top["study"], _STUDY_KEYS, f"{where} [study]", required=("name", "recipe", "datasets", "seeds"))
    g = _check_table(top["grid"], _GRID_KEYS, f"{where} [grid]", required=("models",))
    name = s["name"]
    if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9_.-]*$", name):
        raise _err(where, f"[study] name must be lower-case letters, digits, '-', '_', '.', got {name!r}")
    if path is not None and path.stem != name:
        raise _err(where, f"[study] name {name!r} must equal the file name {path.stem!r}")
    if s["recipe"] not in RECIPES:
        raise _err(where, f"unknown recipe {s['recipe']!r}; valid recipes: {', '.join(RECIPES)}")
    launcher = s.get("launcher", "auto")
    if launcher not in _LAUNCHERS:
        raise _err(where, f"launcher must be one of {', '.join(_LAUNCHERS)}, got {launcher!r}")
    raw_ops = top["operators"]
    if not isinstance(raw_ops, list) or not raw_ops:
        raise _err(where, "[[operators]] must list at least one operator")
    ops = tuple(_parse_operator(o, f"{where} [[operators]] #{i + 1}") for i, o in enumerate(raw_ops))
    keys = [o.key for o in ops]
    if len(set(keys)) != len(keys):
        raise _err(where, f"operator keys must be unique, got {keys}")
    for role in ("baseline", "reference"):
        if s.get(role) is not None and s[role] not in keys:
            raise _err(where, f"[study] {role} {s[role]!r} is not an operator key; keys: {', '.join(keys)}")
    model_recipes = g.get("recipes", {})
    if not isinstance(model_recipes, dict):
        raise _err(where, "[grid] recipes must be a table model -> recipe")
    for m, r in model_recipes.items():
        if m not in g["models"]:
            raise _err(where, f"[grid] recipes names model {m!r}, which is not in [grid] models")
        if r not in RECIPES:
            raise _err(where, f"[grid] recipes: unknown recipe {r!r} for {m}; valid recipes: {', '.join(RECIPES)}")
    raw_variants = top.get("variants", {})
    if not isinstance(raw_variants, dict):
        raise _err(where, "[variants] must be a table of tables")
    variants = {n: _parse_variant(n, v, f"{where} [variants.{n}]") for n, v in raw_variants.items()}
    if sum(v.auto == "no-gpu" for v in variants.values()) > 1:
        raise _err(where, "at most one variant may say auto = \"no-gpu\"")
    for key in ("description", "schedule"):
        if key in s and not isinstance(s[key], str):
            raise _err(where, f"[study] {key} must be a string")
    study = Study(
        name=name,
        description=s.get("description", ""),
        recipe=s["recipe"],
        datasets=_str_list(s["datasets"], where, "datasets"),
        models=_str_list(g["models"], where, "[grid] models"),
        operators=ops,
        seeds=_int_list(s["seeds"], where, "seeds"),
        schedule=s.get("schedule", f"recipe {s['recipe']}"),
        baseline=s.get("baseline"),
        reference=s.get("reference"),
        launcher=launcher,
        overrides=_overrides(s.get("overrides", {}), where),
        model_recipes=dict(model_recipes),
        variants=variants,
        path=path,
    )
    for v in variants.values():  # a variant's restrictions must name things of the grid
        study.with_variant(v.name)
    return study


def studies_dirs() -> list[Path]:
    """Where study names are looked up: ``./studies``, then the repository's ``studies/`` (source checkouts)."""
    dirs = [Path.cwd() / "studies", Path(__file__).resolve().parents[3] / "studies"]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def list_studies() -> list[str]:
    """Names of the studies found in :func:`studies_dirs`."""
    return sorted({p.stem for d in studies_dirs() for p in d.glob("*.toml")})


def find_study_file(name_or_path: str | os.PathLike[str]) -> Path:
    """A study's TOML file from its name (``fashion-mnist``) or a path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise FileNotFoundError(f"study file {p} does not exist")
        return p
    for d in studies_dirs():
        cand = d / f"{name_or_path}.toml"
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"no study named {str(name_or_path)!r}; known studies: {', '.join(list_studies()) or 'none'} "
        f"(looked in {', '.join(str(d) for d in studies_dirs()) or './studies'}); or pass a path to a .toml file"
    )


def load_study(name_or_path: str | os.PathLike[str], variant: str | None = None) -> Study:
    """Read, validate and (optionally) apply ``variant`` to a study; ``variant="auto"`` see :func:`auto_variant`."""
    path = find_study_file(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    study = parse_study(data, str(path), path)
    if variant == "auto":
        variant = auto_variant(study)
    elif variant == "none":
        variant = None
    return study.with_variant(variant)


def auto_variant(study: Study, cuda_available: bool | None = None) -> str | None:
    """The variant marked ``auto = "no-gpu"`` when CUDA is unavailable, else ``None`` (the study as written)."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if cuda_available:
        return None
    for v in study.variants.values():
        if v.auto == "no-gpu":
            return v.name
    return None


# ------------------------------------------------------------------------------------------- runs ---
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
    config: Any  # recalib.train.TrainConfig
    blocker: str | None = None  # why this recalib.train cannot launch the run (None: it can)

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    def metadata(self) -> dict[str, Any]:
        """What ``study.json`` in the run folder records."""
        return {"study": self.study, "variant": self.variant, "run_id": self.run_id, "model": self.model,
                "operator": self.operator.key, "operator_label": self.operator.label, "spec": self.operator.spec,
                "model_args": dict(self.operator.model_args), "dataset": self.dataset, "seed": self.seed}


def make_run_id(model: str, operator_key: str, dataset: str, seed: int) -> str:
    return f"{model}__{operator_key}__{dataset}__s{seed}"


def _model_args_field() -> str | None:
    """The TrainConfig field carrying create_model keyword arguments, if this recalib.train has one."""
    from ..train.config import FIELD_NAMES

    for name in ("model_kwargs", "model_args"):
        if name in FIELD_NAMES:
            return name
    return None


def plan_runs(study: Study, results: str | os.PathLike[str]) -> list[Run]:
    """Every run of ``study`` in execution order: seed-major, so that an interrupted study has whole seeds.

    Raises ``ValueError`` when a run cannot be configured (unknown model, data set or override). A run whose
    ``model_args`` this version of :mod:`recalib.train` cannot pass on gets a ``blocker`` message instead.
    """
    from ..data import get_dataset_info
    from ..models import list_models
    from ..train import resolve_config

    known = list_models()
    for m in study.models:
        if m not in known:
            raise ValueError(f"study {study.name}: unknown model {m!r}; valid names: {', '.join(known)}")
    for d in study.datasets:
        get_dataset_info(d)  # ValueError listing the valid names
    base = Path(results) / study.dir_name
    args_field = _model_args_field()
    runs = []
    for seed in study.seeds:
        for dataset in study.datasets:
            for model in study.models:
                for op in study.operators:
                    run_id = make_run_id(model, op.key, dataset, seed)
                    extra: dict[str, Any] = {}
                    blocker = None
                    if op.model_args and args_field is None:
                        blocker = (f"operator {op.key} needs create_model arguments {dict(op.model_args)}, which "
                                   "recalib.train's TrainConfig cannot carry yet (no model_kwargs field)")
                    elif op.model_args and args_field is not None:
                        extra[args_field] = ", ".join(f"{k}={v!r}" for k, v in op.model_args.items())
                    try:
                        cfg = resolve_config(study.recipe_of(model), **{**study.overrides, **extra}, model=model,
                                             recalib=op.spec, dataset=dataset, seed=seed, out=str(base / run_id))
                    except ValueError as exc:
                        raise ValueError(f"study {study.name}, run {run_id}: {exc}") from None
                    runs.append(Run(study.name, study.variant, run_id, model, op, dataset, seed, cfg, blocker))
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


def run_status(run: Run) -> str:
    """``finished``, ``diverged``, ``running``, ``stale``, ``resumable``, ``pending`` or ``blocked`` (module
    docstring)."""
    from ..train.config import TrainConfig, config_diff
    from ..train.runlock import lock_holder

    if run.blocker is not None:
        return "blocked"
    out = run.out
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        try:
            existing = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
        except (ValueError, TypeError, json.JSONDecodeError):
            return "stale"
        if config_diff(existing, run.config):
            return "stale"
    if lock_holder(out) is not None:
        return "running"
    summary = out / "summary.json"
    if summary.is_file():
        try:
            s = json.loads(summary.read_text())
        except json.JSONDecodeError:
            s = {}
        if s.get("status") == "completed" and s.get("epochs_completed") == run.config.epochs:
            return "finished"
        if s.get("status") == "diverged":
            return "diverged"
    if (out / "checkpoint.pt").is_file():
        return "resumable"
    return "pending"


def stale_details(run: Run) -> str:
    """Why a run is stale: the fields where its folder's config differs from the plan."""
    from ..train.config import TrainConfig, config_diff

    try:
        existing = TrainConfig.from_dict(json.loads((run.out / "config.json").read_text()))
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as exc:
        return f"unreadable config.json ({exc})"
    diff = config_diff(existing, run.config)
    return "; ".join(f"{k}: folder {a!r}, plan {b!r}" for k, (a, b) in diff.items())


# ------------------------------------------------------------------------------------------- cost ---
_MACS_CACHE: dict[tuple[str, str, str, str], int] = {}  # (model, spec, model_args, input) -> MACs


def _macs(run: Run) -> int:
    """Forward MACs of one image of the run's model (recalib.complexity on a CPU instance; cached)."""
    from ..data import get_dataset_info
    from ..models import create_model
    from .complexity import complexity

    info = get_dataset_info(run.dataset)
    key = (run.model, run.operator.spec, json.dumps(dict(run.operator.model_args), sort_keys=True),
           f"{info.in_chans}x{info.image_size}x{info.num_classes}")
    if key not in _MACS_CACHE:
        spec = None if run.operator.spec.strip().lower() == "none" else run.operator.spec
        model = create_model(run.model, num_classes=info.num_classes, in_chans=info.in_chans, recalib=spec,
                             **dict(run.operator.model_args)).eval()
        size = (1, info.in_chans, info.image_size, info.image_size)
        _MACS_CACHE[key] = int(complexity(model, size)["macs"])
    return _MACS_CACHE[key]


def run_images(run: Run) -> tuple[int, int]:
    """(training images per epoch, evaluation images per epoch) of a run."""
    from ..data import get_dataset_info

    n_train, n_test = SPLIT_SIZES.get(get_dataset_info(run.dataset).name, (50_000, 10_000))
    cfg = run.config
    if cfg.val_split:
        n_train, n_test = n_train - cfg.val_split, cfg.val_split
    if cfg.subset:
        n_train = min(n_train, cfg.subset)
    if cfg.test_subset:
        n_test = min(n_test, cfg.test_subset)
    return n_train, n_test


def estimate_seconds(run: Run, device_kind: str, gpus: int = 1, epochs_done: int = 0) -> float:
    """Rough wall time of the epochs still to do: (3 x train + 1 x test images) x MACs / throughput.

    ``device_kind``: ``cpu`` or ``cuda`` (see :data:`THROUGHPUT_MACS_PER_S`); ``gpus`` divides torchrun runs.
    """
    macs = _macs(run)
    n_train, n_test = run_images(run)
    work = (3 * n_train + n_test) * macs * max(0, run.config.epochs - epochs_done)
    if device_kind == "cpu":
        rate = THROUGHPUT_MACS_PER_S["cpu"]
    else:
        rate = THROUGHPUT_MACS_PER_S["cuda-large" if macs > 1e9 else "cuda-small"] * max(1, gpus)
    return work / rate


def _epochs_done(run: Run) -> int:
    path = run.out / "metrics.jsonl"
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def format_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


# ----------------------------------------------------------------------------------------- launch ---
def uses_torchrun(study: Study, run: Run) -> bool:
    """Whether a run goes through torchrun: launcher ``torchrun``, or ``auto`` and a folder data set (ImageNet)."""
    from ..data import get_dataset_info

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


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def prepare_run_folder(run: Run, runtime: Mapping[str, Any] | None = None) -> None:
    """Write ``study.json`` and ``planned_config.json`` (the config plus run-time fields such as threads)."""
    run.out.mkdir(parents=True, exist_ok=True)
    _write_json(run.out / STUDY_FILE, run.metadata())
    cfg = dataclasses.replace(run.config, **dict(runtime or {}))
    _write_json(run.out / PLANNED_CONFIG, cfg.to_dict())


def _cuda_count() -> int:
    try:
        import torch

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
    log: Any
    started: float
    gpu: str | None


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
    oversubscription, measured at 7x on a loaded 2-core machine). Torchrun runs (ImageNet) take every GPU and run one at a time. ``data_dir`` is given
    to every run (a run-time field: it does not make finished runs stale). ``dry_run`` lists the runs, their
    state and an estimated cost, and launches nothing.
    """
    if not 1 <= parallel <= 1024:
        raise ValueError(f"--parallel must be in [1, 1024], got {parallel}")
    if threads is not None and not 1 <= threads <= 1024:
        raise ValueError(f"--threads must be in [1, 1024], got {threads}")
    if gpus is not None and not 0 <= gpus <= 1024:
        raise ValueError(f"--gpus must be in [0, 1024], got {gpus}")
    from ..train.runlock import RunLock, RunLockedError, lock_holder

    runs = select_runs(plan_runs(study, results), filters)
    if not runs:
        echo(f"study {study.dir_name}: no run matches the filters {list(filters)}")
        return 0
    n_gpus = _cuda_count() if gpus is None else gpus
    kind = "cuda" if n_gpus else "cpu"
    states = {r.run_id: run_status(r) for r in runs}
    stale = [r for r in runs if states[r.run_id] == "stale"]
    todo = [r for r in runs if states[r.run_id] in ("pending", "resumable")]

    echo(f"study {study.dir_name}: {study.description}".rstrip(": "))
    echo(f"schedule: {study.schedule}; recipe {study.recipe}; results in {Path(results) / study.dir_name}")
    counts = {s: sum(v == s for v in states.values())
              for s in ("finished", "resumable", "pending", "running", "diverged", "stale", "blocked")}
    echo(f"{len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if dry_run:
        total = 0.0
        echo(f"{'run id':58s} {'state':10s} {'epochs':>7s} {'MACs':>9s} {'est. cost':>10s}  command")
        for r in runs:
            tr = uses_torchrun(study, r)
            est = estimate_seconds(r, kind, n_gpus if tr else 1, _epochs_done(r)) if states[r.run_id] in (
                "pending", "resumable") else 0.0
            total += est
            cmd = shlex.join(launch_command(r, torchrun=tr, gpus=n_gpus or 1, python=python))
            echo(f"{r.run_id:58s} {states[r.run_id]:10s} {r.config.epochs:7d} {_macs(r) / 1e6:8.1f}M "
                 f"{format_seconds(est):>10s}  {cmd}")
        slots = max(1, min(parallel, len(todo)))
        echo(f"estimated cost of the {len(todo)} unfinished runs: {format_seconds(total)} of {kind} time"
             + (f" (~{format_seconds(total / slots)} wall with --parallel {slots})" if slots > 1 else "")
             + f"; assumes {THROUGHPUT_MACS_PER_S['cpu' if kind == 'cpu' else 'cuda-small']:.0e} MAC/s per "
             "device (recalib.analysis.study.THROUGHPUT_MACS_PER_S), 3x MACs per training image")
        for r in stale:
            echo(f"stale: {r.run_id}: {stale_details(r)}")
        for reason in sorted({r.blocker for r in runs if r.blocker}):
            echo(f"blocked: {reason}")
        return 0
    blocked = [r for r in runs if r.blocker]
    if blocked:
        raise ValueError(f"{len(blocked)} run(s) cannot be launched: {blocked[0].blocker}")
    from ..data import get_dataset_info

    for r in todo:
        if get_dataset_info(r.dataset).kind == "folder" and not (data_dir or r.config.data_dir):
            raise ValueError(f"run {r.run_id} trains on {r.dataset}: pass --data-dir (the folder with train/ and val/)")
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
            echo(f"diverged: {r.run_id}: {_summary_message(r)}")
    if not todo:
        left = {s: n for s, n in counts.items() if n and s != "finished"}
        echo("nothing to do: " + ("every selected run is finished" if not left else
                                  ", ".join(f"{n} {s}" for s, n in left.items()) + f", {counts['finished']} finished"))
        return counts["diverged"]

    cores = _cpu_count()
    failed = 0
    queue = list(todo)
    active: list[_Slot] = []
    gpu_cursor = 0
    t0 = time.perf_counter()
    done = 0
    skipped = 0

    def start(run: Run) -> _Slot | None:
        nonlocal gpu_cursor, skipped
        try:  # held from here on by the training process: never two trainings of one run
            lock = RunLock(run.out).acquire()
        except RunLockedError:
            skipped += 1
            echo(f"running elsewhere, skipped: {run.run_id} ({lock_holder(run.out)})")
            return None
        tr = uses_torchrun(study, run)
        env = dict(os.environ)
        env.update(extra_env or {})
        runtime: dict[str, Any] = {"progress": False}
        if data_dir:
            runtime["data_dir"] = data_dir
        gpu = None
        if tr:
            runtime["threads"] = 0
        else:
            runtime["threads"] = threads or run.config.threads or max(1, cores // min(parallel, len(todo)))
            if n_gpus:
                gpu = str(gpu_cursor % n_gpus)
                gpu_cursor += 1
                env["CUDA_VISIBLE_DEVICES"] = gpu
        prepare_run_folder(run, runtime)
        cmd = launch_command(run, torchrun=tr, gpus=n_gpus or 1, python=python)
        log = open(run.out / LOG_FILE, "ab")
        log.write(f"\n$ {shlex.join(cmd)}\n".encode())
        log.flush()
        lock_env, lock_fds = lock.child_env()
        env.update(lock_env)
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=lock_fds)
            lock.describe(proc.pid)
        finally:
            lock.detach()  # the child holds the lock now, for as long as it lives
        where = f" on GPU {gpu}" if gpu is not None else (" via torchrun" if tr else "")
        echo(f"[{done + len(active) + 1}/{len(todo)}] start {run.run_id}{where} ({states[run.run_id]})")
        return _Slot(run, proc, log, time.perf_counter(), gpu)

    try:
        while queue or active:
            while queue and len(active) < parallel:
                nxt = queue[0]
                if uses_torchrun(study, nxt) and active:
                    break  # a torchrun run waits for the GPUs to be free
                queue.pop(0)
                slot = start(nxt)
                if slot is None:
                    done += 1
                    continue
                active.append(slot)
                if uses_torchrun(study, nxt):
                    break
            time.sleep(0.5)
            for slot in list(active):
                rc = slot.proc.poll()
                if rc is None:
                    continue
                slot.log.close()
                active.remove(slot)
                done += 1
                status = run_status(slot.run)
                took = format_seconds(time.perf_counter() - slot.started)
                if status == "diverged":
                    failed += 1
                    echo(f"[{done}/{len(todo)}] DIVERGED {slot.run.run_id} after {took}: "
                         f"{_summary_message(slot.run)}")
                elif rc != 0 or status != "finished":
                    failed += 1
                    echo(f"[{done}/{len(todo)}] FAILED {slot.run.run_id} (exit {rc}, {status}) after {took}; "
                         f"see {slot.run.out / LOG_FILE}")
                else:
                    echo(f"[{done}/{len(todo)}] done {slot.run.run_id} in {took}: {_final_error_text(slot.run)}")
    except KeyboardInterrupt:
        for slot in active:
            slot.proc.terminate()
        for slot in active:
            slot.proc.wait()
            slot.log.close()
        echo("interrupted: the running runs were stopped; run the same command again to resume them")
        raise
    echo(f"study {study.dir_name}: {len(todo) - failed - skipped} run(s) finished, {failed} failed"
         + (f", {skipped} running elsewhere (skipped)" if skipped else "")
         + f", {format_seconds(time.perf_counter() - t0)} wall")
    return failed


def _summary_message(run: Run) -> str:
    """The ``message`` of a run's ``summary.json`` (why it diverged), or a pointer to its log."""
    try:
        message = json.loads((run.out / "summary.json").read_text()).get("message")
    except (OSError, ValueError, AttributeError):
        message = None
    return str(message) if message else f"see {run.out / LOG_FILE}"


def _final_error_text(run: Run) -> str:
    try:
        s = json.loads((run.out / "summary.json").read_text())
        return f"final test error {s['final_test_error']:.2f}%"
    except (OSError, KeyError, TypeError, ValueError):
        return "finished"
