"""Data sets and loaders: Fashion-MNIST, CIFAR-10/100 (whole, on the device) and ImageNet (from folders).

| name          | classes | image     | loader |
|---------------|---------|-----------|--------|
| fashion-mnist | 10      | 1 × 28²   | :func:`load_small` + :class:`DeviceLoader` |
| cifar10       | 10      | 3 × 32²   | :func:`load_small` + :class:`DeviceLoader` |
| cifar100      | 100     | 3 × 32²   | :func:`load_small` + :class:`DeviceLoader` |
| imagenet      | 1000    | 3 × 224²  | :func:`build_imagenet_loaders` |

Every file is verified against its published SHA-256 before it is parsed. File formats are read here and
nowhere else.
"""

from ._base import DataError, DataNotFoundError, DatasetInfo, SmallDataset
from ._download import sha256_file
from .cifar import RestrictedUnpickler, UnsafePickleError, load_cifar
from .device_loader import DeviceLoader
from .fashion_mnist import load_fashion_mnist, parse_idx, read_idx
from .imagenet import Lighting, build_imagenet_loaders, imagenet_train_transform, imagenet_val_transform
from .registry import DATASETS, get_dataset_info, list_datasets, load_small

__all__ = [
    "DATASETS",
    "DataError",
    "DataNotFoundError",
    "DatasetInfo",
    "DeviceLoader",
    "Lighting",
    "RestrictedUnpickler",
    "SmallDataset",
    "UnsafePickleError",
    "build_imagenet_loaders",
    "get_dataset_info",
    "imagenet_train_transform",
    "imagenet_val_transform",
    "list_datasets",
    "load_cifar",
    "load_fashion_mnist",
    "load_small",
    "parse_idx",
    "read_idx",
    "sha256_file",
]
