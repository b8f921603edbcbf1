"""ILSVRC-2012 (ImageNet-1k) from an ImageFolder tree: ``root/train/<wnid>/*.JPEG``, ``root/val/<wnid>/*.JPEG``.

Training augmentation follows the SENet protocol the MS-SAR paper uses (Wang et al., ECCV 2018,
arXiv:1804.00787, section 4; Hu et al., arXiv:1709.01507, section 6.1; docs/spec.md, section 6): a random crop of
8-100 % of the area with aspect ratio 3/4-4/3 resized to 224, horizontal flip, a slight rotation (±10°),
colour ("pixel") jitter of brightness, contrast and saturation by 0.4, and AlexNet-style PCA lighting
noise (std 0.1) with the eigen-decomposition used by fb.resnet.torch. Test: resize the short side to 256,
one 224 centre crop. Deviation: the rotation is applied to the 224 crop (cheaper than to the full image),
so its corners are filled with black.

Needs torchvision and Pillow (``pip install recalib[vision]``); they are imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ._base import DataError, DataNotFoundError, DatasetInfo, mix_seed

__all__ = ["IMAGENET", "Lighting", "build_imagenet_loaders", "imagenet_train_transform", "imagenet_val_transform"]

IMAGENET = DatasetInfo(
    name="imagenet",
    num_classes=1000,
    in_chans=3,
    image_size=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    kind="folder",
    train_images=1_281_167,
    test_images=50_000,
)
# PCA of ImageNet RGB pixels (fb.resnet.torch, datasets/imagenet.lua); columns are eigenvectors.
_EIGVAL = (0.2175, 0.0188, 0.0045)
_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _torchvision() -> Any:
    try:
        import torchvision
    except ImportError as err:
        raise ImportError(
            "the ImageNet loaders need torchvision and Pillow: pip install 'recalib[vision]' "
            "(or pip install torchvision pillow)"
        ) from err
    return torchvision


class Lighting:
    """AlexNet-style PCA lighting noise on a ``[3, H, W]`` RGB tensor in [0, 1] (fb.resnet.torch ``Lighting``).

    Adds ``eigvec @ (alpha * eigval)`` to every pixel, ``alpha ~ N(0, alphastd²)`` per image.
    """

    def __init__(self, alphastd: float = 0.1) -> None:
        self.alphastd = alphastd
        self.eigval = torch.tensor(_EIGVAL)  # 3
        self.eigvec = torch.tensor(_EIGVEC)  # 3 (RGB), 3 (components)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if self.alphastd == 0:
            return img
        alpha = torch.randn(3) * self.alphastd  # 3
        rgb = self.eigvec @ (alpha * self.eigval)  # 3
        return img + rgb.view(3, 1, 1).to(img.dtype)  # 3, H, W

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alphastd={self.alphastd})"


def imagenet_train_transform(image_size: int = 224) -> Callable[[Any], torch.Tensor]:
    """SENet-style training augmentation: PIL image -> normalised float32 ``[3, image_size, image_size]``."""
    T = _torchvision().transforms
    return T.Compose([
        T.RandomResizedCrop(image_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
        T.RandomHorizontalFlip(),
        T.RandomRotation(10, interpolation=T.InterpolationMode.BILINEAR),
        T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4),
        T.ToTensor(),  # 3, H, W in [0, 1]
        Lighting(0.1),
        T.Normalize(IMAGENET.mean, IMAGENET.std),
    ])


def imagenet_val_transform(image_size: int = 224, resize: int = 256) -> Callable[[Any], torch.Tensor]:
    """Test transform: short side to ``resize``, one centre crop of ``image_size``, normalised."""
    T = _torchvision().transforms
    return T.Compose([
        T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR),
        T.CenterCrop(image_size),
        T.ToTensor(),
        T.Normalize(IMAGENET.mean, IMAGENET.std),
    ])


class _StridedSampler(Sampler[int]):
    """Indices ``rank, rank + W, ...`` in order: every image exactly once across the ranks, no padding."""

    def __init__(self, size: int, rank: int, world_size: int) -> None:
        self.indices = range(rank, size, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


_FIX = (
    "expected ImageFolder layout ROOT/train/<wnid>/*.JPEG and ROOT/val/<wnid>/*.JPEG (sort the flat ILSVRC2012 "
    "validation images into wnid folders, e.g. with soumith's valprep.sh); pass --data-dir ROOT"
)


def _image_folder(root: Path, split: str, transform: Callable[[Any], torch.Tensor]) -> Any:
    folder = root / split
    if not folder.is_dir():
        raise DataNotFoundError(f"imagenet: no {split} folder at {folder}; {_FIX}")
    if not any(p.is_dir() for p in folder.iterdir()):
        flat = any(p.suffix.lower() in _IMAGE_EXTENSIONS for p in folder.iterdir())
        raise DataError(
            f"imagenet: {folder} has no class folders" + (" (its images are not sorted by class)" if flat else "")
            + f"; {_FIX}"
        )
    try:
        return _torchvision().datasets.ImageFolder(str(folder), transform=transform)
    except FileNotFoundError as err:  # a class folder without images
        raise DataNotFoundError(f"imagenet: {err}; {_FIX}") from err


def build_imagenet_loaders(
    root: str | os.PathLike[str],
    batch_size: int,
    *,
    workers: int,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """Training and validation loaders for an ImageFolder ImageNet tree; ``batch_size`` is per rank.

    The training loader's sampler is a ``DistributedSampler`` (also for one process): call
    ``loader.sampler.set_epoch(epoch)`` every epoch. It drops the last incomplete batch. The validation
    loader gives rank ``r`` the images ``r::world_size`` in order, each image exactly once over all ranks.
    """
    if batch_size < 1 or workers < 0:
        raise ValueError(f"need batch_size >= 1 and workers >= 0, got batch_size={batch_size}, workers={workers}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    root = Path(root).expanduser()
    train_set = _image_folder(root, "train", imagenet_train_transform())
    val_set = _image_folder(root, "val", imagenet_val_transform())
    if train_set.classes != val_set.classes:
        only_train = sorted(set(train_set.classes) - set(val_set.classes))[:5]
        only_val = sorted(set(val_set.classes) - set(train_set.classes))[:5]
        raise DataError(
            f"imagenet: train and val class folders differ under {root} ({len(train_set.classes)} vs "
            f"{len(val_set.classes)}; only in train: {only_train}, only in val: {only_val}); {_FIX}"
        )
    common: dict[str, Any] = {
        "batch_size": batch_size,
        "num_workers": workers,
        "pin_memory": torch.cuda.is_available(),
        "persistent_workers": workers > 0,
    }
    train_sampler: DistributedSampler[Any] = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    train_loader = DataLoader(
        train_set,
        sampler=train_sampler,
        drop_last=True,
        # Seeds the workers' augmentation: different on each rank, reproducible for a given seed.
        generator=torch.Generator().manual_seed(mix_seed(seed, rank)),
        **common,
    )
    val_loader = DataLoader(val_set, sampler=_StridedSampler(len(val_set), rank, world_size), **common)
    return train_loader, val_loader
