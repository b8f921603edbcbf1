"""``pretrained_cfg``: how a model's inputs must be prepared, in timm's vocabulary.

Every zoo model carries ``model.pretrained_cfg`` (``model.default_cfg`` is the same dict, timm's older name), so
``timm.data.resolve_data_config(model=model)`` and :func:`recalib.complexity` see the right input. The keys are
timm's: ``input_size`` (C, H, W), ``mean`` and ``std`` (per channel, for pixels scaled to [0, 1]: feed
``(x / 255 - mean) / std``), ``interpolation``, ``crop_pct``, ``crop_mode``, ``num_classes``, ``first_conv``,
``classifier``, ``fixed_input_size``; plus recalib's ``architecture``, ``recalib``, ``model_kwargs`` and
``dataset`` (the data set the values describe).

Without weights, the values describe the data set the architecture is built for: the CIFAR-family models with
one input channel are Fashion-MNIST models (1 × 28 × 28), with 100 classes CIFAR-100, otherwise CIFAR-10
(3 × 32 × 32); the ImageNet models ImageNet (3 × 224 × 224, a 224 centre crop of the image resized to 256, so
``crop_pct`` = 0.875). With weights, the values are those the weights were trained with: the data set of the
training run, normalised by :class:`recalib.data.DeviceLoader` with the data set's ``mean`` and ``std``, exactly
as :func:`dataset_cfg` states them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["dataset_cfg", "default_pretrained_cfg"]

#: Short side before the centre crop of the ImageNet evaluation transform (recalib.data.imagenet_val_transform).
_IMAGENET_RESIZE = 256


def dataset_cfg(dataset: str, in_chans: int | None = None) -> dict[str, Any]:
    """The preprocessing keys (input size, mean, std, interpolation, crop) of recalib's data set ``dataset``."""
    from ..data.registry import get_dataset_info

    info = get_dataset_info(dataset)
    chans = info.in_chans if in_chans is None else in_chans
    mean, std = tuple(info.mean), tuple(info.std)
    if chans != info.in_chans:  # e.g. a 1-channel model on ImageNet statistics: the channel average
        mean, std = (sum(mean) / len(mean),) * chans, (sum(std) / len(std),) * chans
    folder = info.kind == "folder"
    return {
        "dataset": info.name,
        "input_size": (chans, info.image_size, info.image_size),
        "mean": mean,
        "std": std,
        "interpolation": "bilinear",
        "crop_pct": info.image_size / _IMAGENET_RESIZE if folder else 1.0,
        "crop_mode": "center",
    }


def _default_dataset(family: str, in_chans: int, num_classes: int) -> str:
    if family == "imagenet":
        return "imagenet"
    if in_chans == 1:
        return "fashion-mnist"
    return "cifar100" if num_classes == 100 else "cifar10"


def default_pretrained_cfg(
    architecture: str,
    *,
    family: str,
    num_classes: int,
    in_chans: int,
    recalib: str | None,
    model_kwargs: Mapping[str, Any],
    dataset: str | None = None,
) -> dict[str, Any]:
    """The ``pretrained_cfg`` of a freshly built zoo model (see the module docstring)."""
    data = dataset_cfg(dataset or _default_dataset(family, in_chans, num_classes), in_chans)
    img_size = model_kwargs.get("img_size")
    if isinstance(img_size, int) and not isinstance(img_size, bool) and img_size > 0:  # built for another size
        data["input_size"] = (in_chans, img_size, img_size)
    elif isinstance(img_size, (tuple, list)) and len(img_size) == 2:
        data["input_size"] = (in_chans, int(img_size[0]), int(img_size[1]))
    return {
        "architecture": architecture,
        "num_classes": num_classes,
        "in_chans": in_chans,
        **data,
        "fixed_input_size": False,
        "first_conv": "conv1",
        "classifier": "fc",
        "recalib": recalib,
        "model_kwargs": dict(model_kwargs),
        "tag": None,
        "license": "mit",
    }
