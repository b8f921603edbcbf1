"""A loader that keeps a whole small data set on the device and augments it batch-wise, without workers.

After airbench (Keller Jordan, github.com/KellerJordan/cifar10-airbench): the uint8 images live on the
device; each batch is gathered, padded with zeros, randomly cropped back to its size and flipped with one
vectorised indexing operation, then normalised. Augmentation is the paper protocol of Wang et al.
(ECCV 2018, arXiv:1804.00787, section 4; docs/spec.md, section 6): pad 4 + random crop + horizontal flip at
training time, none at test time. Unlike airbench, ``device`` is an argument (tests run on the CPU), the
padding is zeros (torchvision's ``RandomCrop(padding=4)``) rather than reflection, and every image gets
its own crop and flip.

Distributed training: the epoch's permutation, crop offsets and flips are drawn on the CPU from a
generator seeded by ``(seed, epoch)``, for the whole epoch, on every rank. The epoch's position list is
padded by wrapping to a multiple of ``world_size`` (as ``DistributedSampler`` does) and rank ``r`` takes
positions ``r, r + W, r + 2W, ...``. Its ``k``-th batch of ``b`` is therefore the positions of the global
``k``-th batch of ``b * W`` that are ``≡ r (mod W)``: interleaving the ranks' batches gives exactly the
single-process batch, augmentation included.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ._base import SmallDataset, mix_seed

__all__ = ["DeviceLoader"]


class DeviceLoader:
    """Batches of a :class:`SmallDataset` held on ``device``: ``(x float32 [B, C, H, W] normalised, y int64 [B])``.

    Args:
        dataset: the split to serve (uint8 images, moved to ``device`` once).
        batch_size: images per batch on this rank (the global batch is ``batch_size * world_size``).
        train: shuffle and augment (pad-and-crop, flip) if True; fixed order, no augmentation if False.
        device: where the data and the batches live.
        seed: with the epoch (:meth:`set_epoch`), determines order and augmentation.
        pad: zero padding on each side before the random crop (train only); 0 disables cropping.
        flip: random horizontal flips with probability 1/2 (train only).
        drop_last: train: keep only whole global batches (default True); test: drop a short last batch
            on this rank (default False, so every image is seen).
        rank, world_size: this process's shard. Test: rank ``r`` gets images ``r::world_size`` in order,
            so ranks may get different numbers of batches: reduce metrics once, after the loop.
        channels_last: return batches in ``torch.channels_last`` memory format.
    """

    def __init__(
        self,
        dataset: SmallDataset,
        batch_size: int,
        *,
        train: bool,
        device: torch.device | str,
        seed: int = 0,
        pad: int = 4,
        flip: bool = True,
        drop_last: bool | None = None,
        rank: int = 0,
        world_size: int = 1,
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if pad < 0 or seed < 0:
            raise ValueError(f"pad and seed must be non-negative, got pad={pad}, seed={seed}")
        if len(dataset) == 0:
            raise ValueError(f"{dataset.info.name} {dataset.split} is empty")
        self.dataset = dataset
        self.batch_size = batch_size
        self.train = train
        self.device = torch.device(device)
        self.seed = seed
        self.pad = pad
        self.flip = flip
        self.drop_last = train if drop_last is None else drop_last
        self.rank = rank
        self.world_size = world_size
        self.channels_last = channels_last
        self.epoch = 0

        self.images = dataset.images.to(self.device)  # N, C, H, W uint8
        self.labels = dataset.labels.to(self.device)  # N int64
        mean = torch.tensor(dataset.info.mean, dtype=torch.float64)
        std = torch.tensor(dataset.info.std, dtype=torch.float64)
        # (x / 255 - mean) / std as one multiply-add.
        self._scale = (1.0 / (255.0 * std)).float().view(1, -1, 1, 1).to(self.device)  # 1, C, 1, 1
        self._shift = (-mean / std).float().view(1, -1, 1, 1).to(self.device)  # 1, C, 1, 1

        n = len(dataset)
        if train:
            per_rank = math.ceil(n / world_size)  # as DistributedSampler: pad the epoch by wrapping
            if self.drop_last:
                self._batches = n // (batch_size * world_size)  # whole global batches only
                per_rank = self._batches * batch_size
            else:
                self._batches = math.ceil(per_rank / batch_size)
        else:
            per_rank = len(range(rank, n, world_size))
            self._batches = per_rank // batch_size if self.drop_last else math.ceil(per_rank / batch_size)
            per_rank = min(per_rank, self._batches * batch_size)
        self.num_samples = per_rank

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration uses."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self.epoch = epoch

    def __len__(self) -> int:
        return self._batches

    def _epoch_plan(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """This rank's image indices (and crop offsets, flips) for the epoch, on the device."""
        n = len(self.dataset)
        positions = torch.arange(self.rank, self.num_samples * self.world_size, self.world_size)  # S
        if not self.train:
            return positions.to(self.device), None, None
        # Drawn for the whole epoch, identically on every rank, on the CPU: the stream does not depend on
        # device or world size.
        gen = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        perm = torch.randperm(n, generator=gen)  # N
        offsets = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=gen)  # N, 2 (dy, dx)
        flips = torch.randint(0, 2, (n,), generator=gen, dtype=torch.bool)  # N
        positions = positions % n  # S: padding wraps to the start of the epoch
        index = perm[positions].to(self.device, non_blocking=True)  # S
        shifts = offsets[positions].to(self.device, non_blocking=True) if self.pad else None  # S, 2
        mirror = flips[positions].to(self.device, non_blocking=True) if self.flip else None  # S
        return index, shifts, mirror

    def _crop_flip(self, x: torch.Tensor, offsets: torch.Tensor | None, flips: torch.Tensor | None) -> torch.Tensor:
        """Pad with zeros, crop at ``offsets`` and mirror where ``flips``, for the whole batch at once."""
        b, c, h, w = x.shape
        rows = torch.arange(h, device=x.device).expand(b, h)  # B, H
        cols = torch.arange(w, device=x.device).expand(b, w)  # B, W
        if flips is not None:
            cols = torch.where(flips[:, None], w - 1 - cols, cols)  # B, W: mirrored columns
        if offsets is not None:
            p = self.pad
            x = F.pad(x, (p, p, p, p))  # B, C, H + 2p, W + 2p
            rows = rows + offsets[:, 0:1]  # B, H
            cols = cols + offsets[:, 1:2]  # B, W
        batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
        channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
        return x[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]  # B, C, H, W

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        index, offsets, flips = self._epoch_plan()
        b = self.batch_size
        for k in range(self._batches):
            sl = slice(k * b, (k + 1) * b)
            x = self.images[index[sl]]  # B, C, H, W uint8
            if offsets is not None or flips is not None:
                x = self._crop_flip(x, offsets[sl] if offsets is not None else None,
                                    flips[sl] if flips is not None else None)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = x.float().mul_(self._scale).add_(self._shift)  # B, C, H, W float32
            yield x, self.labels[index[sl]]
