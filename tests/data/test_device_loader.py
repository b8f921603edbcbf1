"""DeviceLoader: normalisation, real crops and flips, determinism, and the distributed sharding contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recalib.data import DatasetInfo, DeviceLoader, SmallDataset

MEAN, STD = (0.3, 0.5, 0.7), (0.2, 0.25, 0.3)


def _toy(n: int = 37, c: int = 3, size: int = 8) -> SmallDataset:
    # One class per image, so a label identifies the source image.
    info = DatasetInfo("toy", num_classes=n, in_chans=c, image_size=size, mean=MEAN[:c], std=STD[:c], kind="small")
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, c, size, size), generator=gen, dtype=torch.uint8)
    return SmallDataset(images, torch.arange(n), info, "train")


def _normalise(u8: torch.Tensor) -> torch.Tensor:
    c = u8.shape[1]
    mean = torch.tensor(MEAN[:c]).view(1, c, 1, 1)
    std = torch.tensor(STD[:c]).view(1, c, 1, 1)
    return (u8.float() / 255 - mean) / std


def _batches(loader: DeviceLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(loader)


def test_test_split_exact_values_and_order() -> None:
    ds = _toy()
    loader = DeviceLoader(ds, 5, train=False, device="cpu")
    xs, ys = zip(*_batches(loader))
    assert len(loader) == 8 and loader.num_samples == 37 and [len(y) for y in ys] == [5] * 7 + [2]
    assert all(x.dtype == torch.float32 and x.shape[1:] == (3, 8, 8) for x in xs)
    assert torch.equal(torch.cat(ys), torch.arange(37))
    torch.testing.assert_close(torch.cat(xs), _normalise(ds.images), rtol=0, atol=1e-5)


def test_channels_last() -> None:
    ds = _toy()
    x_cl, _ = next(iter(DeviceLoader(ds, 6, train=True, device="cpu", channels_last=True)))
    x, _ = next(iter(DeviceLoader(ds, 6, train=True, device="cpu")))
    assert x_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x_cl, x)


def _all_views(image: torch.Tensor, pad: int) -> list[torch.Tensor]:
    """Every pad-crop-flip of one image, by a plain loop (the reference)."""
    _, h, w = image.shape
    padded = F.pad(image, (pad, pad, pad, pad))
    views = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            views += [crop, crop.flip(-1)]
    return views


def test_crops_are_real_crops_of_the_padded_image() -> None:
    ds = _toy(n=20)
    loader = DeviceLoader(ds, 10, train=True, device="cpu", pad=4)
    seen_offsets, flipped = set(), 0
    for x, y in loader:
        for xi, yi in zip(x, y):
            views = _all_views(ds.images[yi], 4)
            matches = [k for k, v in enumerate(views) if torch.allclose(_normalise(v[None])[0], xi, atol=1e-5)]
            assert matches, "output is not a pad-crop(-flip) of its source image"
            seen_offsets.add(matches[0] // 2)
            flipped += matches[0] % 2
    assert len(seen_offsets) > 5 and 0 < flipped < 20  # offsets vary, some flipped, some not


def test_no_augmentation_options() -> None:
    ds = _toy(n=12)
    x, y = next(iter(DeviceLoader(ds, 12, train=True, device="cpu", pad=0, flip=False)))
    torch.testing.assert_close(x, _normalise(ds.images[y]), rtol=0, atol=1e-5)  # shuffled only
    x, y = next(iter(DeviceLoader(ds, 12, train=True, device="cpu", pad=0, flip=True)))
    for xi, yi in zip(x, y):
        ref = _normalise(ds.images[yi][None])[0]
        assert torch.allclose(xi, ref, atol=1e-5) or torch.allclose(xi, ref.flip(-1), atol=1e-5)


def test_determinism_in_seed_and_epoch() -> None:
    ds = _toy()

    def epoch(seed: int, e: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        loader = DeviceLoader(ds, 8, train=True, device="cpu", seed=seed)
        loader.set_epoch(e)
        return _batches(loader)

    def same(a: list, b: list) -> bool:
        return all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))

    e0 = epoch(0, 0)
    assert same(e0, epoch(0, 0))
    assert not same(e0, epoch(0, 1))
    assert not same(e0, epoch(1, 0))
    loader = DeviceLoader(ds, 8, train=True, device="cpu")
    assert same(_batches(loader), _batches(loader))  # same epoch until set_epoch


def test_train_drop_last_default_and_off() -> None:
    ds = _toy()
    loader = DeviceLoader(ds, 8, train=True, device="cpu")
    assert len(loader) == 4 and loader.num_samples == 32
    assert [len(y) for _, y in loader] == [8] * 4
    assert len(set(torch.cat([y for _, y in loader]).tolist())) == 32  # a permutation, no repeats
    loader = DeviceLoader(ds, 8, train=True, device="cpu", drop_last=False)
    assert len(loader) == 5 and loader.num_samples == 37
    assert sorted(torch.cat([y for _, y in loader]).tolist()) == list(range(37))


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("drop_last", [True, False])
def test_ranks_interleave_to_the_single_process_batch(world_size: int, drop_last: bool) -> None:
    ds, b, n = _toy(n=37), 4, 37
    assert n % world_size and n % (b * world_size)
    single = DeviceLoader(ds, b * world_size, train=True, device="cpu", seed=5, drop_last=drop_last)
    ranks = [DeviceLoader(ds, b, train=True, device="cpu", seed=5, rank=r, world_size=world_size,
                          drop_last=drop_last) for r in range(world_size)]
    for loader in (single, *ranks):
        loader.set_epoch(3)
    per_rank = [_batches(loader) for loader in ranks]
    assert len({len(p) for p in per_rank}) == 1 and all(len(rk) == len(per_rank[0]) for rk in ranks)
    assert {rk.num_samples for rk in ranks} == {len(per_rank[0]) * b if drop_last else -(-n // world_size)}
    reference = _batches(single)
    if drop_last:
        assert len(reference) == len(per_rank[0]) == n // (b * world_size)
    for k, (x_ref, y_ref) in enumerate(reference):
        # Rank r's j-th image is global position j * W + r of the batch.
        x = torch.stack([p[k][0] for p in per_rank], 1).flatten(0, 1)
        y = torch.stack([p[k][1] for p in per_rank], 1).flatten(0, 1)
        m = len(y_ref)
        assert torch.equal(y[:m], y_ref) and torch.equal(x[:m], x_ref)
        assert k == len(reference) - 1 or len(y) == m
    if not drop_last:  # every image seen; the padding wraps to the start of the epoch
        seen = torch.cat([y for p in per_rank for _, y in p])
        assert set(seen.tolist()) == set(range(n)) and len(seen) == -(-n // world_size) * world_size


@pytest.mark.parametrize("world_size", [2, 3])
def test_test_split_every_image_exactly_once(world_size: int) -> None:
    ds = _toy(n=37)
    seen = []
    for r in range(world_size):
        loader = DeviceLoader(ds, 4, train=False, device="cpu", rank=r, world_size=world_size)
        ys = [y for _, y in loader]
        assert loader.num_samples == len(range(r, 37, world_size)) == sum(len(y) for y in ys)
        assert torch.equal(torch.cat(ys), torch.arange(r, 37, world_size))
        seen += torch.cat(ys).tolist()
    assert sorted(seen) == list(range(37))


def test_grey_images_and_bad_arguments() -> None:
    ds = _toy(n=9, c=1, size=5)
    x, y = next(iter(DeviceLoader(ds, 9, train=True, device="cpu", pad=2)))
    assert x.shape == (9, 1, 5, 5) and y.dtype == torch.int64
    for kwargs in ({"rank": 2, "world_size": 2}, {"world_size": 0}, {"pad": -1}):
        with pytest.raises(ValueError):
            DeviceLoader(ds, 4, train=True, device="cpu", **kwargs)
    with pytest.raises(ValueError):
        DeviceLoader(ds, 0, train=True, device="cpu")
