"""`recalib demo`: build every operator, apply it to a real image batch, print parameters and statistics.

The batch is the first test images of Fashion-MNIST (the data set installed on every machine here),
lifted to a feature map by a fixed random 3x3 convolution, so each operator sees realistic spatial structure.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F

from .modules import build_recalib, list_recalibs

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
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--data-dir", default=None, help="folder holding the Fashion-MNIST .gz files")


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(0)
    x = feature_batch(args.images, args.channels, args.data_dir)
    print(f"input: {tuple(x.shape)} features of {args.images} Fashion-MNIST test images; registered: {list_recalibs()}")
    header = f"{'operator':38s} {'params':>8s} {'gate mean':>10s} {'gate std':>9s} {'gate min':>9s} {'gate max':>9s} {'|y|/|x|':>8s}"
    print(header)
    print("-" * len(header))
    for spec in [s.strip() for s in args.ops.split(";") if s.strip()]:
        op = build_recalib(spec, args.channels).train()
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
