"""SmallDataset validation, subset() and the registry."""

from __future__ import annotations

import pytest
import torch

from recalib.data import (
    DATASETS,
    DataError,
    DatasetInfo,
    SmallDataset,
    get_dataset_info,
    list_datasets,
    load_small,
)

INFO = DatasetInfo("toy", num_classes=4, in_chans=1, image_size=2, mean=(0.5,), std=(0.5,), kind="small")


def _ds(labels: list[int]) -> SmallDataset:
    n = len(labels)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return SmallDataset(images, torch.tensor(labels), INFO)


def test_validation() -> None:
    with pytest.raises(DataError, match=r"labels must lie in \[0, 4\)"):
        _ds([0, 1, 4])
    with pytest.raises(DataError, match="labels must lie"):
        _ds([0, -1])
    with pytest.raises(DataError, match="expected images uint8"):
        SmallDataset(torch.zeros(2, 1, 3, 3, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), INFO)
    with pytest.raises(DataError, match="expected labels int64"):
        SmallDataset(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), INFO)


def test_subset_balanced_deterministic_ordered() -> None:
    ds = _ds([i % 4 for i in range(40)])
    sub = ds.subset(10, seed=0)
    assert sorted(torch.bincount(sub.labels, minlength=4).tolist()) == [2, 2, 3, 3]
    picked = sub.images[:, 0, 0, 0].long()  # the image's original index
    assert torch.equal(sub.labels, ds.labels[picked]) and torch.all(picked[1:] > picked[:-1])
    assert torch.equal(ds.subset(10, seed=0).images, sub.images)
    assert not torch.equal(ds.subset(10, seed=1).images, sub.images)
    assert torch.equal(ds.subset(40).images, ds.images)


def test_subset_unbalanced_fills_from_other_classes() -> None:
    ds = _ds([0] * 2 + [1] * 20 + [2] * 20 + [3] * 20)
    counts = torch.bincount(ds.subset(20, seed=3).labels, minlength=4).tolist()
    assert counts[0] == 2 and sum(counts) == 20 and max(counts[1:]) - min(counts[1:]) <= 1
    with pytest.raises(ValueError, match="subset size"):
        ds.subset(63)


def test_registry() -> None:
    assert list_datasets() == ["cifar10", "cifar100", "fashion-mnist", "imagenet"]
    assert set(DATASETS) == set(list_datasets())
    fm = get_dataset_info("fashion-mnist")
    assert (fm.num_classes, fm.in_chans, fm.image_size, fm.kind) == (10, 1, 28, "small")
    assert (get_dataset_info("cifar100").num_classes, get_dataset_info("imagenet").kind) == (100, "folder")
    for info in DATASETS.values():
        assert len(info.mean) == len(info.std) == info.in_chans
    with pytest.raises(ValueError, match="valid names"):
        get_dataset_info("mnist")
    with pytest.raises(ValueError, match="build_imagenet_loaders"):
        load_small("imagenet", "train")
    with pytest.raises(ValueError, match="split"):
        load_small("fashion-mnist", "val")
