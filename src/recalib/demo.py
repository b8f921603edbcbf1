"""`recalib demo`: build every operator, apply it to a real image batch, print parameters and statistics.

The batch is the first test images of Fashion-MNIST (the data set installed on every machine here),
lifted to a feature map by a fixed random 3x3 convolution, so each operator sees realistic spatial structure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F

from .modules import build_recalib, list_recalibs

_MAX_CHANNELS = 4096
_MAX_IMAGES = 10_000
DEFAULT_SPECS = ["none", "se", "ge", "ge(extent=2, variant='theta+')", "sge(groups=16)", "mssar", "mssar(strategy='sliding')"]


def feature_batch(images: int = 16, channels: int = 64, data_dir: str | None = None, seed: int = 0) -> torch.Tensor:
    """N x channels x 28 x 28 features of real Fashion-MNIST test images (fixed random conv + ReLU)."""
    from .data import load_small

    ds = load_small("fashion-mnist", "test", data_dir=data_dir)
    x = ds.images[:images].float() / 255.0  # N, 1, 28, 28
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(channels, x.shape[1], 3, 3, generator=g) / 3.0
    return F.relu(F.conv2d(x, w, padding=1))  # N, C, 28, 28


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ops", default=";".join(DEFAULT_SPECS), help="';'-separated operator specs")
    parser.add_argument("--images", type=int, default=16, help="number of test images in the batch")
    parser.add_argument("--channels", type=int, default=64, help="channels of the feature map")
    parser.add_argument("--data-dir", default=None, help="folder holding the Fashion-MNIST .gz files")


def run(args: argparse.Namespace) -> int:
    try:
        if not 1 <= args.channels <= _MAX_CHANNELS:
            raise ValueError(f"--channels must be in [1, {_MAX_CHANNELS}], got {args.channels}")
        if not 1 <= args.images <= _MAX_IMAGES:
            raise ValueError(f"--images must be in [1, {_MAX_IMAGES}] (the Fashion-MNIST test set), got {args.images}")
        specs = [s.strip() for s in args.ops.split(";") if s.strip()]
        if not specs:
            raise ValueError(f"--ops lists no operator spec, got {args.ops!r}; e.g. \"se;mssar\"")
        torch.manual_seed(0)  # feature_batch draws from its own generator: the operators' init is as before
        ops = [(spec, build_recalib(spec, args.channels).train()) for spec in specs]  # every spec checked first
        x = feature_batch(args.images, args.channels, args.data_dir)
    except (ValueError, FileNotFoundError) as exc:
        print(f"recalib demo: error: {exc}", file=sys.stderr)
        return 2
    print(f"input: {tuple(x.shape)} features of {args.images} Fashion-MNIST test images; registered: {list_recalibs()}")
    header = f"{'operator':38s} {'params':>8s} {'gate mean':>10s} {'gate std':>9s} {'gate min':>9s} {'gate max':>9s} {'|y|/|x|':>8s}"
    print(header)
    print("-" * len(header))
    for spec, op in ops:
        with torch.no_grad():
            z = cast("Callable[[torch.Tensor], torch.Tensor]", op.gate)(x)  # every operator has gate(x)
            y = op(x)
        params = sum(p.numel() for p in op.parameters())
        ratio = (y.norm() / x.norm()).item()
        print(
            f"{spec:38s} {params:8d} {z.mean().item():10.4f} {z.std().item():9.4f} "
            f"{z.min().item():9.4f} {z.max().item():9.4f} {ratio:8.4f}"
        )
    return 0
