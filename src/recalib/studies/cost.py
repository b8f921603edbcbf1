"""The cost model of ``recalib study run --dry-run``: how long the unfinished runs of a study will take.

A run costs (3 x training images + 1 x evaluation images) x forward MACs per image x epochs still to do,
divided by a device's throughput. Every constant of the model is in this file (:data:`THROUGHPUT_MACS_PER_S`,
per device); the images per split are the data registry's (:class:`recalib.data.DatasetInfo`). The estimate is
an order of magnitude, for planning.

The MACs are counted once per (model, operator, input) in this process, on the model without its classifier;
the classifier (one ``num_features x num_classes`` linear layer in every zoo model) is added in closed form, so
CIFAR-10 and CIFAR-100 runs of one network share one count. ``--dry-run`` of a 60-run study counts 10 networks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._format import progress_bar
from ..data import get_dataset_info
from ..models import create_model
from ..models.complexity import complexity
from .plan import Run

__all__ = ["THROUGHPUT_MACS_PER_S", "count_macs", "estimate_seconds", "forward_macs", "run_images"]

#: Effective multiply-accumulates per second per device, for ``--dry-run`` estimates only (order of magnitude).
#: A training image costs 3x its forward MACs (forward + backward), a test image 1x. ``cpu``: measured on the
#: project's 2-core shared machine (ResNet-20 on Fashion-MNIST trains at ~100 img/s = 3 x 30.8 M x 100 ~ 1e10;
#: MS-SAR "sliding" is ~5x slower there than its MAC count says). ``cuda``: one A100/H100-class GPU with bf16
#: and channels_last (ResNet-20 on CIFAR at ~25k img/s ~ 3e12; ImageNet ResNet-50 ~3k img/s ~ 4e13; small
#: CIFAR models are latency-bound, so the small value is used for them and the large one for ImageNet).
THROUGHPUT_MACS_PER_S: dict[str, float] = {"cpu": 1.0e10, "cuda-small": 3.0e12, "cuda-large": 4.0e13}

_DEFAULT_SPLIT = (50_000, 10_000)  # a data set registered without its split sizes: a CIFAR-sized guess

# (model, spec, model_args, in_chans, image size) -> (MACs without the classifier, classifier input features)
_MACS_CACHE: dict[tuple[str, str, str, int, int], tuple[int, int]] = {}


def _macs_key(run: Run) -> tuple[str, str, str, int, int]:
    info = get_dataset_info(run.dataset)
    return (run.model, run.operator.spec, json.dumps(dict(run.operator.model_args), sort_keys=True), info.in_chans,
            info.image_size)


def forward_macs(run: Run) -> int:
    """Forward MACs of one image of the run's model, as :func:`recalib.models.complexity.params_and_macs` counts them.

    Counted once per (model, operator, input) without the classifier, whose ``num_features x num_classes``
    MACs are added here (see the module docstring).
    """
    key = _macs_key(run)
    if key not in _MACS_CACHE:
        name, spec, _, in_chans, size = key
        model = create_model(name, num_classes=0, in_chans=in_chans, recalib=spec,
                             **dict(run.operator.model_args))
        _MACS_CACHE[key] = (complexity(model, (1, in_chans, size, size))["macs"], model.num_features)
    backbone, features = _MACS_CACHE[key]
    return backbone + features * get_dataset_info(run.dataset).num_classes


def count_macs(runs: Sequence[Run], progress: bool = True) -> None:
    """Count (and cache) the MACs of every distinct network of ``runs``; a bar on stderr when it is a terminal."""
    todo = {_macs_key(r): r for r in runs if _macs_key(r) not in _MACS_CACHE}
    bar = progress_bar(len(todo), "counting MACs", unit="model") if progress and todo else None
    try:
        for run in todo.values():
            if bar is not None:
                bar.set_postfix_str(f"{run.model} + {run.operator.key}", refresh=False)
            forward_macs(run)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def run_images(run: Run) -> tuple[int, int]:
    """(training images per epoch, evaluation images per epoch) of a run."""
    info = get_dataset_info(run.dataset)
    n_train = info.train_images if info.train_images is not None else _DEFAULT_SPLIT[0]
    n_test = info.test_images if info.test_images is not None else _DEFAULT_SPLIT[1]
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
    macs = forward_macs(run)
    n_train, n_test = run_images(run)
    work = (3 * n_train + n_test) * macs * max(0, run.config.epochs - epochs_done)
    return work / throughput(device_kind, macs, gpus)


def throughput(device_kind: str, macs: int, gpus: int = 1) -> float:
    """MACs per second that :func:`estimate_seconds` assumes for a model of ``macs`` per image."""
    if device_kind == "cpu":
        return THROUGHPUT_MACS_PER_S["cpu"]
    return THROUGHPUT_MACS_PER_S["cuda-large" if macs > 1e9 else "cuda-small"] * max(1, gpus)
