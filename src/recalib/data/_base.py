"""The types every data set family shares: :class:`DatasetInfo`, :class:`SmallDataset` and the errors.

A *small* data set (Fashion-MNIST, CIFAR) is held whole in memory as one uint8 tensor and fed by
:class:`~recalib.data.DeviceLoader`; a *folder* data set (ImageNet) is decoded from image files by a
``torch.utils.data.DataLoader``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

__all__ = ["DataError", "DataNotFoundError", "DatasetInfo", "SmallDataset", "mix_seed"]


class DataError(ValueError):
    """Data that is present but wrong: checksum mismatch, truncated or malformed file, bad shape or label."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data set that could not be found locally (and could not be downloaded)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and a loader need to know about a data set.

    ``mean`` and ``std`` are per channel, for pixels scaled to [0, 1], measured on the training split.
    ``train_images`` and ``test_images`` are the official split sizes (the test split is ImageNet's validation
    set), ``None`` when unknown; loaders check what they read against them and study plans count with them.
    """

    name: str
    num_classes: int
    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    kind: Literal["small", "folder"]
    train_images: int | None = None
    test_images: int | None = None


@dataclass(frozen=True)
class SmallDataset:
    """One split of a small data set, whole, on the CPU.

    Attributes:
        images: uint8 ``[N, C, H, W]``.
        labels: int64 ``[N]``, in ``[0, info.num_classes)``.
        info: the data set's :class:`DatasetInfo`.
        split: ``"train"`` or ``"test"`` (free text for hand-made data sets).
        source: the verified file(s) the split was read from (recorded in a run's ``summary.json``), or None.
    """

    images: torch.Tensor
    labels: torch.Tensor
    info: DatasetInfo
    split: str = "train"
    source: str | None = None

    def __post_init__(self) -> None:
        images, labels, info = self.images, self.labels, self.info
        expected = (info.in_chans, info.image_size, info.image_size)
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise DataError(
                f"{info.name} {self.split}: expected images uint8 [N, {', '.join(map(str, expected))}], "
                f"got {images.dtype} {list(images.shape)}"
            )
        if labels.dtype != torch.int64 or labels.dim() != 1 or labels.numel() != images.shape[0]:
            raise DataError(
                f"{info.name} {self.split}: expected labels int64 [{images.shape[0]}], "
                f"got {labels.dtype} {list(labels.shape)}"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= info.num_classes):
            raise DataError(
                f"{info.name} {self.split}: labels must lie in [0, {info.num_classes}), "
                f"got [{int(labels.min())}, {int(labels.max())}]; the files are corrupt or of another data set"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, n: int, seed: int = 0) -> SmallDataset:
        """A deterministic, class-balanced subset of ``n`` images, kept in their original order.

        Classes are visited round-robin over a permutation seeded by ``seed``: every class gets
        ``n // K`` or ``n // K + 1`` images, and a class that runs out is made up from the others.
        """
        total = len(self)
        if not 0 < n <= total:
            raise ValueError(f"subset size must be in [1, {total}] for {self.info.name} {self.split}, got {n}")
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(total, generator=gen)  # N
        labels = self.labels[order]  # N, in permuted order
        # Rank of each image among its own class in the permuted order: 0, 1, 2, ... per class.
        by_class = torch.sort(labels, stable=True).indices  # N
        counts = torch.bincount(labels, minlength=self.info.num_classes)  # K
        starts = torch.cumsum(counts, 0) - counts  # K
        rank = torch.empty_like(labels)
        rank[by_class] = torch.arange(total) - starts[labels[by_class]]
        # Round-robin: all ranks 0 (class order), then all ranks 1, ...
        key = rank * self.info.num_classes + labels  # N, unique
        chosen = order[torch.argsort(key)[:n]].sort().values  # n
        return SmallDataset(self.images[chosen], self.labels[chosen], self.info, self.split, self.source)


def mix_seed(*values: int) -> int:
    """A 63-bit ``torch.Generator`` seed that depends on every (non-negative) value, e.g. ``(seed, epoch)``.

    Uses numpy's ``SeedSequence`` hash, so nearby inputs give unrelated streams.
    """
    if any(v < 0 for v in values):
        raise ValueError(f"seeds and epochs must be non-negative integers, got {values}")
    state = np.random.SeedSequence([int(v) for v in values]).generate_state(1, dtype=np.uint64)
    return int(state[0]) & ((1 << 63) - 1)
