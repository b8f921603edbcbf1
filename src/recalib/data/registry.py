"""The data set registry: names, :class:`DatasetInfo` records, and :func:`load_small` for the in-memory sets."""

from __future__ import annotations

import os

from .._names import unknown_name
from ._base import DatasetInfo, SmallDataset
from .cifar import CIFAR10, CIFAR100, load_cifar
from .fashion_mnist import FASHION_MNIST, load_fashion_mnist
from .imagenet import IMAGENET

__all__ = ["DATASETS", "get_dataset_info", "list_datasets", "load_small"]

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (FASHION_MNIST, CIFAR10, CIFAR100, IMAGENET)}
_ALIASES = {"fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}


def list_datasets() -> list[str]:
    """Names accepted by :func:`get_dataset_info` (and, for ``kind == "small"``, :func:`load_small`)."""
    return sorted(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; ``ValueError`` listing the valid names otherwise."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise unknown_name("data set", name, list_datasets(), aliases=_ALIASES)
    return DATASETS[key]


def load_small(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> SmallDataset:
    """One split (``"train"`` or ``"test"``) of a small data set, verified, as uint8 tensors on the CPU.

    Looks in ``data_dir``, ``$RECALIB_DATA``, ``/usr/share/datasets/<name>`` and the download cache, then
    downloads (unless ``download=False``). Raises ``DataNotFoundError`` / ``DataError`` saying what was
    expected, where it looked and how to fix it.
    """
    info = get_dataset_info(name)
    if info.kind != "small":
        raise ValueError(f"{info.name} is a folder data set: use build_imagenet_loaders(root, ...) instead of load_small")
    if info.name == "fashion-mnist":
        return load_fashion_mnist(split, data_dir=data_dir, download=download)
    return load_cifar(info.name, split, data_dir=data_dir, download=download)
