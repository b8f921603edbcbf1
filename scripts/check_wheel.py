"""What a new user of the installed wheel runs first, checked inside the wheel's virtual environment.

Run by ``scripts/check_wheel.sh`` with the environment's Python, from a folder outside the checkout:
``recalib --version``, ``recalib study list``, ``recalib study run fashion-mnist --dry-run``, then every packaged
weight loaded and run on real Fashion-MNIST test images, preprocessed as MODEL_CARD.md documents. The
expectations come from the checkout (its shipped study files) and from the Fashion-MNIST files, read here with
numpy, not with recalib's loader.

Usage: python check_wheel.py CHECKOUT [--data-dir DIR] [--images N]
"""

from __future__ import annotations

import argparse
import gzip
import math
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

# MODEL_CARD.md's preprocessing: (pixels / 255 - 0.2860) / 0.3530, 1 x 28 x 28, no resizing.
MEAN, STD = 0.2860, 0.3530


def _run(*args: str) -> str:
    """Run the installed ``recalib`` console script; its stdout (fails loudly with its output)."""
    exe = shutil.which("recalib")
    if exe is None or Path(exe).parent != Path(sys.executable).parent:
        raise SystemExit(f"check_wheel: the environment's recalib script is missing (found {exe})")
    done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"check_wheel: recalib {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def _idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): big-endian header of ndim sizes after the magic number, then uint8 data."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def check_installed(checkout: Path) -> None:
    import recalib

    where = Path(recalib.__file__).resolve()
    assert Path(sys.prefix).resolve() in where.parents, f"recalib imported from {where}, not the environment"
    assert checkout.resolve() not in where.parents, f"recalib imported from the checkout: {where}"
    assert not Path.cwd().resolve().is_relative_to(checkout.resolve()), "run outside the checkout"


def check_cli(checkout: Path) -> None:
    version = _run("--version").strip()
    assert version == f"recalib {metadata.version('recalib')}", version
    shipped = {p.stem for p in (checkout / "src" / "recalib" / "studies" / "shipped").glob("*.toml")}
    listed = {line.split()[0] for line in _run("study", "list").splitlines() if line.strip()}
    assert shipped and listed == shipped, f"study list: {sorted(listed)}, shipped: {sorted(shipped)}"
    plan = _run("study", "run", "fashion-mnist", "--dry-run")
    assert "resnet20__none__fashion-mnist__s0" in plan, plan
    print(f"check_wheel: {version}; study list: {len(listed)} studies; study run fashion-mnist --dry-run: ok")


def check_weights(data_dir: Path, n_images: int) -> None:
    import recalib
    from recalib.pretrained import list_pretrained

    every = 10_000 // n_images  # spread over the test set (its order is not random)
    images = torch.from_numpy(_idx(data_dir / "t10k-images-idx3-ubyte.gz")[::every][:n_images].copy())
    labels = torch.from_numpy(_idx(data_dir / "t10k-labels-idx1-ubyte.gz")[::every][:n_images].astype(np.int64))
    x = ((images.float() / 255 - MEAN) / STD).unsqueeze(1)  # N, 1, 28, 28
    entries = list_pretrained()
    assert len(entries) == len(list(Path(recalib.__file__).parent.glob("pretrained/*.safetensors"))), entries
    failures = []
    for e in entries:
        try:
            model = recalib.create_model(e.architecture, recalib=e.recalib, in_chans=e.in_chans,
                                         num_classes=e.num_classes, pretrained=e.tag).eval()
        except ValueError as exc:  # every weight is tried, so that one run lists every broken file
            failures.append(f"{e.file}: {' '.join(str(exc).split())[:300]}")
            continue
        cfg = model.pretrained_cfg
        assert (cfg["mean"], cfg["std"], cfg["input_size"]) == ((MEAN,), (STD,), (1, 28, 28)), cfg
        with torch.no_grad():
            error = 100 * (model(x).argmax(1) != labels).float().mean().item()
        expected = float(e.metrics["final_test_error"])  # on all 10,000 test images
        # Four binomial standard errors of a sample of n_images, at least one point.
        tolerance = max(1.0, 4 * 100 * math.sqrt(expected / 100 * (1 - expected / 100) / n_images))
        print(f"check_wheel: {e.architecture} + {e.recalib} ({e.tag}): {error:.2f}% error on {n_images} test "
              f"images (card: {expected:.2f}% on 10,000)")
        if abs(error - expected) > tolerance:
            failures.append(f"{e.file}: {error:.2f}% error, the card says {expected:.2f}% (+- {tolerance:.2f})")
    if failures:
        raise SystemExit("check_wheel: packaged weights that fail:\n  " + "\n  ".join(failures))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--data-dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    check_installed(args.checkout)
    check_cli(args.checkout)
    if not (args.data_dir / "t10k-images-idx3-ubyte.gz").is_file():  # scripts/setup.sh installs it with apt
        print(f"check_wheel: SKIPPED the packaged weights: no Fashion-MNIST test set in {args.data_dir}")
        return 0
    check_weights(args.data_dir, args.images)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
