"""Training configuration: one frozen dataclass, the paper's recipes, and the function that resolves them.

The recipes follow docs/spec.md, section 6, i.e. the protocols of Wang et al., "Multi-Scale Spatially-Asymmetric
Recalibration for Image Classification" (ECCV 2018, arXiv:1804.00787), section 4, which are those of
He et al. (ResNet, arXiv:1512.03385) and Huang et al. (DenseNet, arXiv:1608.06993):

| recipe                 | batch | epochs | lr  | schedule            | wd   |
|------------------------|-------|--------|-----|---------------------|------|
| `paper-cifar-resnet`   | 128   | 160    | 0.1 | ÷10 at 80, 120      | 1e-4 |
| `paper-cifar-densenet` | 64    | 300    | 0.1 | ÷10 at 150, 225     | 1e-4 |
| `paper-imagenet`       | 1024  | 100    | 0.6 | ÷10 at 30, 60, 90   | 1e-4 |
| `quick`                | 256   | 3      | 0.4 | warm-up + linear→0  | 5e-4 |

All use SGD with Nesterov momentum 0.9 and weight decay on every parameter (BN and biases included), as
the papers' Caffe/Torch code did. ``batch_size`` is the *global* batch: with ``W`` processes each takes
``batch_size / W``, so a recipe means the same mathematics on one CPU or eight GPUs.

``quick`` is not a paper protocol: it is the quick-start (ResNet-20 + MS-SAR on Fashion-MNIST in about six
minutes on a 2-core CPU); it adds label smoothing 0.1 and uses horizontal flips only (no pad-and-crop),
which learn faster in three epochs. It was tuned on a validation split held out of the *training* set
(``--val-split 10000``: train on 50,000, evaluate on the other 10,000), never on the test set; see
docs/training.md.

Unknown recipes and unknown fields are ``ValueError``s that list the valid names.
"""

from __future__ import annotations

import dataclasses
import json
import math
import reprlib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._names import unknown_name
from ..modules import RecalibSpec
from ..modules.spec import parse_keywords

__all__ = [
    "AMP_MODES",
    "INIT_MODES",
    "LEGACY_DEFAULTS",
    "RECIPES",
    "RUNTIME_FIELDS",
    "SCHEDULES",
    "TrainConfig",
    "config_diff",
    "load_config_json",
    "resolve_config",
]

SCHEDULES = ("multistep", "cosine", "linear", "onecycle", "constant")
INIT_MODES = ("paired", "independent")
#: Values of fields a stored config.json may lack because it was written before the field existed: what those runs did.
LEGACY_DEFAULTS = {"init": "independent"}
AMP_MODES = ("auto", "off", "bf16", "fp16")

#: Fields that say how or where a run executes, not what it computes: they may differ when a run is resumed.
RUNTIME_FIELDS = frozenset(
    {"out", "data_dir", "device", "threads", "workers", "progress", "tensorboard", "check_ranks",
     "eval_batch_size", "compile", "amp", "channels_last", "deterministic", "dist_timeout", "logger", "log_every"}
)


_INT_MAX = 2**31 - 1  # any count, size or epoch beyond this is a typo (and overflows C integers)
#: Tighter limits where a larger value is a mistake: seeds are 32-bit (numpy), ``pad`` is per side in pixels
#: (more than the largest image side only adds zeros, and memory grows with its square), thread and worker counts.
_INT_LIMITS = {"seed": 2**32 - 1, "pad": 512, "threads": 1024, "workers": 1024}


def _f(default: Any, help_text: str) -> Any:
    """A field with its command-line help text."""
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on, as plain values (it is written to ``config.json``)."""

    # What to train.
    recipe: str = _f("paper-cifar-resnet", "the recipe these values were resolved from (informational)")
    model: str = _f("resnet20", "model name from recalib.models.list_models()")
    recalib: str = _f("none", "recalibration operator or spec, e.g. mssar, se, \"mssar(scales=(1, 2))\", none "
                              "(stored in its one text form: none, NONE, identity and the empty text are \"none\")")
    model_args: str = _f("", "extra create_model keyword arguments in keyword syntax, e.g. \"multi_stage=True\" "
                            "or \"shortcut='B'\" (literals only)")
    dataset: str = _f("cifar10", "fashion-mnist, cifar10, cifar100 or imagenet (aliases such as fmnist are stored "
                                 "under the canonical name)")
    data_dir: str | None = _f(None, "folder holding the data set (default: the standard locations)")
    out: str = _f("runs/train", "output folder of the run")
    # Optimisation.
    epochs: int = _f(160, "number of epochs")
    batch_size: int = _f(128, "global batch size (divided among the processes)")
    lr: float = _f(0.1, "peak learning rate")
    momentum: float = _f(0.9, "SGD momentum")
    nesterov: bool = _f(True, "Nesterov momentum")
    wd: float = _f(1e-4, "weight decay (on every parameter, as the papers)")
    schedule: str = _f("multistep", f"learning-rate schedule: {', '.join(SCHEDULES)}")
    milestones: tuple[int, ...] = _f((80, 120), "multistep: epochs at which the rate is multiplied by gamma")
    gamma: float = _f(0.1, "multistep: factor at each milestone")
    warmup_epochs: float = _f(0.0, "linear warm-up length in epochs (fractions allowed); onecycle: the rising phase")
    label_smoothing: float = _f(0.0, "label smoothing of the training loss")
    freeze_bn: bool = _f(False, "keep BatchNorm layers in eval mode while training (running statistics frozen)")
    # Data.
    subset: int = _f(0, "train on a class-balanced subset of N training images (0: all)")
    test_subset: int = _f(0, "evaluate on a class-balanced subset of N test images (0: all)")
    val_split: int = _f(0, "hold N images out of the training set and evaluate on them instead of the test set")
    pad: int = _f(4, "zero padding before the random crop (0: no crop)")
    flip: bool = _f(True, "random horizontal flips")
    eval_batch_size: int = _f(500, "evaluation batch size per process")
    workers: int = _f(8, "data-loading worker processes per process (folder data sets)")
    # Runtime.
    seed: int = _f(0, "random seed (data order, augmentation, initialisation)")
    init: str = _f("paired", "initialisation: paired (the backbone's weights depend on the seed only, so every "
                             "operator of one seed starts from the same backbone) or independent (one random "
                             "stream for backbone and operator, as before this field existed)")
    device: str = _f("auto", "auto, cpu, cuda, cuda:N or mps")
    amp: str = _f("auto", "mixed precision: auto (bf16 on CUDA, off elsewhere), off, bf16, fp16")
    channels_last: bool = _f(False, "channels_last memory format")
    compile: bool = _f(False, "torch.compile the model")
    sync_bn: bool = _f(False, "SyncBatchNorm across processes (CUDA only)")
    threads: int = _f(0, "CPU threads per process (0: OMP_NUM_THREADS if set, else the cores divided among the "
                         "local processes)")
    deterministic: bool = _f(False, "deterministic algorithms only (slower on CUDA)")
    progress: bool = _f(True, "progress bar on rank 0 when attached to a terminal")
    tensorboard: bool = _f(True, "deprecated, use --logger: false turns the default --logger auto off")
    logger: str = _f("auto", "experiment trackers, comma-separated: tensorboard, wandb, mlflow; none; auto "
                             "(TensorBoard if installed, else a notice)")
    log_every: int = _f(50, "steps between per-step scalars (loss, lr) sent to the loggers (0: per epoch only)")
    check_ranks: bool = _f(False, "debug: assert after every step that all processes hold identical weights")
    dist_timeout: float = _f(1800.0, "seconds a process waits for the others in a collective (torchrun): a "
                                     "process that stops responding ends the job after this long instead of hanging it")

    def __post_init__(self) -> None:
        if self.recalib is None or isinstance(self.recalib, (str, RecalibSpec)):  # parsed once, where it enters
            try:
                object.__setattr__(self, "recalib", str(RecalibSpec.parse(self.recalib)))
            except ValueError as exc:
                raise ValueError(f"TrainConfig: recalib: {exc}") from None
        hints = typing.get_type_hints(TrainConfig)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            hint = hints[f.name]
            if hint is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
            elif hint == tuple[int, ...] and isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
            _check_type(f.name, getattr(self, f.name), hint)
        from ..data import get_dataset_info

        # Data sets are stored by their canonical name ("fmnist" -> "fashion-mnist"); unknown ones are an error.
        object.__setattr__(self, "dataset", get_dataset_info(self.dataset).name)
        self._check_values()

    def _check_values(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"TrainConfig: {name} must be {expected}, got {getattr(self, name)!r}")

        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise bad(name, "a positive integer")
        for name in ("subset", "test_subset", "val_split", "pad", "workers", "threads", "seed", "log_every"):
            if getattr(self, name) < 0:
                raise bad(name, "a non-negative integer")
        for name, most in _INT_LIMITS.items():
            if getattr(self, name) > most:
                raise bad(name, f"at most {most}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and not isinstance(value, bool) and value > _INT_MAX:
                raise bad(f.name, f"at most {_INT_MAX}")
            if isinstance(value, float) and not math.isfinite(value):
                raise bad(f.name, "a finite number")
            if isinstance(value, tuple) and any(v > _INT_MAX for v in value):
                raise bad(f.name, f"a list of integers of at most {_INT_MAX}")
        if not self.lr > 0:
            raise bad("lr", "positive")
        if not self.dist_timeout > 0:
            raise bad("dist_timeout", "a positive number of seconds")
        for name in ("wd", "warmup_epochs", "momentum"):
            if not getattr(self, name) >= 0:
                raise bad(name, "non-negative")
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", "in [0, 1)")
        if not self.gamma > 0:
            raise bad("gamma", "positive")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"TrainConfig: {unknown_name('schedule', self.schedule, SCHEDULES, 'valid choices')}")
        if self.init not in INIT_MODES:
            raise ValueError(f"TrainConfig: {unknown_name('init', self.init, INIT_MODES, 'valid choices')}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"TrainConfig: {unknown_name('amp', self.amp, AMP_MODES, 'valid choices')}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            raise bad("milestones", "strictly increasing positive epochs")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"TrainConfig: warmup_epochs={self.warmup_epochs} exceeds epochs={self.epochs}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("TrainConfig: Nesterov momentum needs momentum > 0; pass --no-nesterov for plain SGD")
        if not self.out:
            raise bad("out", "a folder path")
        parse_model_args(self.model_args)  # ValueError naming the bad text
        from .loggers import parse_loggers

        parse_loggers(self.logger)  # ValueError listing the valid names

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a ``ValueError``. A field missing from ``values`` takes its
        :data:`LEGACY_DEFAULTS` value (what runs written before the field existed did), else its default."""
        _check_keys(values, "TrainConfig.from_dict")
        return cls(**{**LEGACY_DEFAULTS, **values})


def parse_model_args(text: str) -> dict[str, Any]:
    """``"multi_stage=True, shortcut='B'"`` -> ``{"multi_stage": True, "shortcut": "B"}`` (``ast``, never ``eval``)."""
    if not text.strip():
        return {}
    try:
        _, kwargs = parse_keywords(f"model({text})", "model_args")
    except ValueError:
        raise ValueError(
            f"TrainConfig: model_args must be keyword arguments with literal values, e.g. \"multi_stage=True\", "
            f"got {text!r}"
        ) from None
    from ..models import architecture_kwargs

    return architecture_kwargs(kwargs, "TrainConfig: model_args")  # an architecture: no weights named in a run


def _check_type(name: str, value: Any, hint: Any) -> None:
    if hint == tuple[int, ...]:
        ok = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        expected = "a tuple of ints"
    elif hint == str | None:
        ok, expected = value is None or isinstance(value, str), "a string or None"
    elif hint is bool:
        ok, expected = isinstance(value, bool), "true or false"
    elif hint is int:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif hint is float:
        ok, expected = isinstance(value, float), "a number"
    else:
        ok, expected = isinstance(value, hint), hint.__name__
    if not ok:
        raise ValueError(f"TrainConfig: {name} must be {expected}, got {reprlib.repr(value)} ({type(value).__name__})")


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainConfig))

_PAPER_CIFAR_RESNET: dict[str, Any] = {}  # the dataclass defaults are this recipe
RECIPES: dict[str, dict[str, Any]] = {
    "paper-cifar-resnet": _PAPER_CIFAR_RESNET,
    "paper-cifar-densenet": {
        "model": "densenet_bc_100", "batch_size": 64, "epochs": 300, "milestones": (150, 225),
    },
    "paper-imagenet": {
        "model": "resnet50", "dataset": "imagenet", "batch_size": 1024, "epochs": 100, "lr": 0.6,
        "milestones": (30, 60, 90), "eval_batch_size": 250, "channels_last": True,
    },
    # The quick-start: ResNet-20 + MS-SAR, Fashion-MNIST, a few minutes on a 2-core CPU (docs/training.md).
    "quick": {
        "model": "resnet20", "recalib": "mssar", "dataset": "fashion-mnist", "out": "runs/quickstart",
        "epochs": 3, "batch_size": 256, "lr": 0.4, "wd": 5e-4, "schedule": "linear", "milestones": (),
        "warmup_epochs": 0.3, "label_smoothing": 0.1, "pad": 0, "eval_batch_size": 1000, "channels_last": True,
    },
}


def _check_keys(values: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(FIELD_NAMES)}")


def resolve_config(recipe: str = "paper-cifar-resnet", **overrides: Any) -> TrainConfig:
    """The recipe's values, then ``overrides`` (field names of :class:`TrainConfig`) on top.

    >>> resolve_config("quick", epochs=1).epochs
    1
    """
    if recipe not in RECIPES:
        raise unknown_name("recipe", recipe, RECIPES, "valid recipes")
    _check_keys(overrides, "resolve_config")
    values = {**RECIPES[recipe], "recipe": recipe, **overrides}
    return TrainConfig(**values)


def config_diff(a: TrainConfig, b: TrainConfig, ignore: frozenset[str] = RUNTIME_FIELDS) -> dict[str, tuple[Any, Any]]:
    """``{field: (a's value, b's value)}`` for the fields outside ``ignore`` where they differ."""
    return {
        name: (getattr(a, name), getattr(b, name))
        for name in FIELD_NAMES
        if name not in ignore and getattr(a, name) != getattr(b, name)
    }


def load_config_json(path: str | Path) -> dict[str, Any]:
    """The fields stored in a ``config.json`` written by a run (unknown keys are a ``ValueError``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); it should hold the TrainConfig fields of a run, as "
                         "config.json does") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a config (a JSON object of TrainConfig fields)") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of TrainConfig fields, got {type(values).__name__}")
    _check_keys(values, str(path))
    return {**LEGACY_DEFAULTS, **values}
