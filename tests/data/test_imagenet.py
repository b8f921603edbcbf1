"""ImageNet loaders on a tiny ImageFolder tree of generated JPEGs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recalib.data import DataError, DataNotFoundError, Lighting, build_imagenet_loaders
from recalib.data.imagenet import IMAGENET

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("torchvision")

WNIDS = ["n01440764", "n01443537", "n01484850"]
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def _tree(root: Path, train: int = 3, val: int = 2) -> Path:
    for split, count in (("train", train), ("val", val)):
        for wnid, colour in zip(WNIDS, COLOURS):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (48 + 8 * i, 36), colour).save(folder / f"{wnid}_{i}.JPEG", quality=95)
    return root


def test_loaders_shapes_labels_values(tmp_path: Path) -> None:
    train, val = build_imagenet_loaders(_tree(tmp_path), 2, workers=0, seed=1)
    train.sampler.set_epoch(1)
    batches = list(train)
    assert len(batches) == len(train) == 4  # 9 images, drop_last
    x, y = batches[0]
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32 and y.dtype == torch.int64
    xs, ys = zip(*val)
    assert torch.equal(torch.cat(ys), torch.tensor([0, 0, 1, 1, 2, 2]))
    x = torch.cat(xs)
    assert x.shape == (6, 3, 224, 224)
    # A solid-colour image stays that colour through resize and centre crop (JPEG: a few levels off).
    mean, std = torch.tensor(IMAGENET.mean).view(3, 1, 1), torch.tensor(IMAGENET.std).view(3, 1, 1)
    for xi, yi in zip(x, torch.cat(ys)):
        expected = (torch.tensor(COLOURS[yi], dtype=torch.float32).view(3, 1, 1) / 255 - mean) / std
        assert (xi - expected).abs().mean() < 0.05


def test_distributed_sharding(tmp_path: Path) -> None:
    root = _tree(tmp_path, train=4, val=3)
    seen_val, seen_train = [], []
    for r in range(2):
        train, val = build_imagenet_loaders(root, 1, workers=0, rank=r, world_size=2, seed=0)
        assert hasattr(train.sampler, "set_epoch") and train.sampler.num_replicas == 2
        seen_train += list(train.sampler)
        seen_val += list(val.sampler)
    assert sorted(seen_val) == list(range(9))  # every validation image exactly once, no padding
    assert sorted(seen_train) == list(range(12))


def test_lighting_matches_formula() -> None:
    img = torch.full((3, 4, 4), 0.5)
    torch.manual_seed(7)
    out = Lighting(0.1)(img)
    torch.manual_seed(7)
    alpha = torch.randn(3) * 0.1
    eigval = [0.2175, 0.0188, 0.0045]
    eigvec = [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
    for c in range(3):
        shift = sum(eigvec[c][j] * alpha[j].item() * eigval[j] for j in range(3))
        torch.testing.assert_close(out[c], torch.full((4, 4), 0.5 + shift))


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no train folder"):
        build_imagenet_loaders(tmp_path, 2, workers=0)
    root = _tree(tmp_path / "flat")
    for p in (root / "val").rglob("*.JPEG"):
        p.rename(root / "val" / p.name)
    for d in (root / "val").iterdir():
        if d.is_dir():
            d.rmdir()
    with pytest.raises(DataError, match="not sorted by class"):
        build_imagenet_loaders(root, 2, workers=0)
    root = _tree(tmp_path / "mismatch")
    (root / "val" / WNIDS[0]).rename(root / "val" / "n99999999")
    with pytest.raises(DataError, match="class folders differ"):
        build_imagenet_loaders(root, 2, workers=0)
