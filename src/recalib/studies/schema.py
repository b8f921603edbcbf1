"""A study file's schema: :class:`Study`, :class:`Operator`, :class:`Variant`, parsed and validated from TOML.

A study reproduces one experiment of Wang et al., "Multi-Scale Spatially-Asymmetric Recalibration for Image
Classification" (ECCV 2018, arXiv:1804.00787): Table 2 (CIFAR, none vs MS-SAR), Table 3 (the 7 scale sets),
Table 5 (ImageNet, none / SE / MS-SAR), the sliding-vs-regional and multi-stage ablations of Section 4.2,
or the project's own Fashion-MNIST comparison. The grid is model x operator x data set x seed.

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
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._names import unknown_name
from ..modules import RecalibSpec
from ..train.config import FIELD_NAMES, RECIPES

__all__ = ["Operator", "Study", "Variant", "parse_study", "study_dir_name"]

_KEY_RE = re.compile(r"^[a-z0-9_.]+$")
_STUDY_KEYS = {"name", "description", "recipe", "datasets", "seeds", "baseline", "reference", "schedule",
               "launcher", "overrides"}
_GRID_KEYS = {"models", "recipes"}
_OPERATOR_KEYS = {"key", "label", "spec", "model_args"}
_VARIANT_KEYS = {"schedule", "description", "overrides", "models", "operators", "seeds", "datasets", "auto"}
_LAUNCHERS = ("auto", "python", "torchrun")
_AUTO_CONDITIONS = ("no-gpu",)


# ------------------------------------------------------------------------------------------ schema ---
@dataclass(frozen=True)
class Operator:
    """One operator column of the grid: ``spec`` (the text of a checked :class:`recalib.modules.RecalibSpec`)
    goes to ``TrainConfig.recalib``; ``model_args`` to the model."""

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
        """The operator with key ``key`` (``ValueError`` naming the keys if none)."""
        for op in self.operators:
            if op.key == key:
                return op
        raise ValueError(f"study {self.name}: no operator {key!r}; operators: {', '.join(o.key for o in self.operators)}")

    @property
    def dir_name(self) -> str:
        """The study's results folder name (its name, plus the variant if any)."""
        return study_dir_name(self.name, self.variant)

    def with_variant(self, name: str | None) -> Study:
        """This study with variant ``name`` applied (``None``: as written)."""
        if self.variant is not None:
            raise ValueError(f"study {self.name} already has variant {self.variant!r} applied")
        if name is None:
            return self
        if name not in self.variants:
            raise ValueError(f"study {self.name}: {unknown_name('variant', name, self.variants, 'variants')}")
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
    t = _check_table(raw, _OPERATOR_KEYS, where, required=("key", "label", "spec"))
    key, label, spec = t["key"], t["label"], t["spec"]
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise _err(where, f"key must match {_KEY_RE.pattern} (it is part of run folder names), got {key!r}")
    if not isinstance(label, str) or not label:
        raise _err(where, f"label must be a non-empty string, got {label!r}")
    if not isinstance(spec, str) or not spec:
        raise _err(where, f"spec must be an operator name or spec string, got {spec!r}")
    try:
        spec = str(RecalibSpec.parse(spec))  # parsed once, here; stored in its one text form
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
        raise _err(where, str(unknown_name("recipe", s["recipe"], RECIPES, "valid recipes")))
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
            raise _err(where, f"[grid] recipes: {m}: {unknown_name('recipe', r, RECIPES, 'valid recipes')}")
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

