"""``recalib visualize``: what the gate Z looks at — input images next to the gates of chosen blocks.

The picture SGE (Li et al., "Spatial Group-wise Enhance", arXiv:1905.09646, Fig. 1/4) and the MS-SAR paper
(Wang et al., ECCV 2018, arXiv:1804.00787, Fig. 1: one gate per scale K, averaged by Eq. 2) use to show what a
module highlights. For each test image (a row) and each chosen block, the grid shows the gate averaged over
channels, as a heat map at the block's resolution, upsampled (nearest) to the input size:

* MS-SAR: one column per scale K (``z^(K)``, :func:`recalib.analysis.gates.per_scale_gates`) and the combined
  gate (their mean, Eq. 2);
* every other operator (SE, GE, SGE): its gate ``op.gate(x)``; SE's is constant over space by construction.

One colour scale (the range of every gate shown) is shared by all images, scales and blocks and drawn as a
labelled colour bar, so brightness compares across the whole grid. The model runs in eval mode (BatchNorm
running statistics). The PNG goes to ``--out``, or to ``gates.png`` in the checkpoint's run folder.

    recalib visualize --checkpoint runs/x/checkpoint.pt --images 8 [--blocks auto|all|layer2.2,layer3.2]
    recalib visualize --pretrained fashion-mnist --model resnet20 --recalib mssar --images 8 --out gates.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from .._optional import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["configure_parser", "gate_columns", "gates_figure", "grid_pixel_size", "output_path", "plot_gates", "run",
           "select_blocks"]

HEADER_PX = 36  # strip above the grid holding the column titles
_MAX_CELL = 1024  # pixels per cell
_MAX_SIDE = 2**16  # matplotlib's limit on each side of a figure, in pixels
FOOTER_PX = 14  # strip below the grid naming the model and the images
COLORBAR_PX = 90  # strip right of the grid holding the shared colour bar and its labels
GATES_PNG = "gates.png"  # the default file name, in the checkpoint's run folder


def grid_pixel_size(n_images: int, n_columns: int, cell: int = 96) -> tuple[int, int]:
    """(width, height) in pixels of the PNG: ``n_columns`` x ``n_images`` cells, the title and footer strips and
    the colour bar's strip."""
    return n_columns * cell + COLORBAR_PX, n_images * cell + HEADER_PX + FOOTER_PX


def select_blocks(names: Sequence[str], model: nn.Module, spec: str = "auto") -> list[str]:
    """Operator names to plot: ``auto`` (the last operator of each stage), ``all``, or a comma-separated list of
    names (with or without the ``.recalib`` suffix) or indices into ``names``."""
    if not names:
        raise ValueError("the model has no recalibration operator to visualise (recalib='none'?)")
    if spec == "all":
        return list(names)
    if spec == "auto":
        stages = [f["module"] for f in getattr(model, "feature_info", [])]
        chosen = [[n for n in names if n == s or n.startswith(s + ".")][-1] for s in stages
                  if any(n == s or n.startswith(s + ".") for n in names)]
        return chosen or [names[-1]]
    out = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item.lstrip("-").isdigit():
            i = int(item)
            if not -len(names) <= i < len(names):
                raise ValueError(f"block index {i} out of range: the model has {len(names)} operators")
            out.append(names[i])
        elif item in names or f"{item}.recalib" in names:
            out.append(item if item in names else f"{item}.recalib")
        else:
            raise ValueError(f"unknown block {item!r}; operators: {', '.join(names)}")
    return out


@torch.no_grad()
def gate_columns(model: nn.Module, x: torch.Tensor, blocks: Sequence[str] | str = "auto"
                 ) -> list[tuple[str, str, torch.Tensor]]:
    """``(block, column title, map N x h x w)`` for every column of the grid: channel-mean gates of ``blocks``."""
    from ..modules import MSSAR
    from .gates import capture_operator_inputs, per_scale_gates

    model.eval()
    with capture_operator_inputs(model) as records:
        model(x)
    names = [n for n, _, _ in records]
    chosen = select_blocks(names, model, blocks) if isinstance(blocks, str) else list(blocks)
    by_name = {n: (op, inputs) for n, op, inputs in records}
    columns = []
    for name in chosen:
        op, inputs = by_name[name]
        feat, context = inputs[0], (inputs[1] if len(inputs) > 1 else None)
        short = name.removesuffix(".recalib")
        if isinstance(op, MSSAR):
            for k, z in zip(op.scales, per_scale_gates(op, feat, context)):
                columns.append((short, f"K={k}", z.float().mean(1)))  # N, h, w
            columns.append((short, "combined", op.gate(feat, context).float().mean(1)))
        else:
            gate = cast("Callable[[torch.Tensor], torch.Tensor]", op.gate)  # every operator has gate(x)
            columns.append((short, type(op).__name__, gate(feat).float().mean(1)))
    return columns


def gates_figure(images: torch.Tensor, columns: Sequence[tuple[str, str, torch.Tensor]], cell: int = 96,
                 title: str = "") -> Figure:
    """The grid as a matplotlib figure: rows = images; columns = the input, then ``columns``; one colour scale
    shared by every gate (the range of all of them), shown by a labelled colour bar on the right.

    ``images``: N x C x H x W uint8 (C = 1 or 3), shown as they are.
    """
    Figure = require("matplotlib.figure", "plots", "recalib visualize").Figure

    n = images.shape[0]
    n_cols = 1 + len(columns)
    width, height = grid_pixel_size(n, n_cols, cell)
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    size = images.shape[-2:]
    lo = min(float(m.min()) for _, _, m in columns)
    hi = max(float(m.max()) for _, _, m in columns)
    hi = hi if hi > lo else lo + 1e-6
    font = max(6.0, min(10.0, cell / 12))

    def axes(row: int, col: int) -> Any:
        x0 = (col * cell + 2) / width
        y0 = (height - HEADER_PX - (row + 1) * cell + 2) / height
        ax = fig.add_axes((x0, y0, (cell - 4) / width, (cell - 4) / height))
        ax.set_axis_off()
        return ax

    titles = [("input", "")] + [(b, t) for b, t, _ in columns]
    for col, (block, sub) in enumerate(titles):
        fig.text((col + 0.5) * cell / width, 1 - 3 / height, block if not sub else f"{block}\n{sub}",
                 ha="center", va="top", fontsize=font)
    if title:
        fig.text(3 / width, 3 / height, title, fontsize=font, va="bottom")
    shown = None
    for row in range(n):
        img = images[row]
        ax = axes(row, 0)
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
        for col, (_, _, m) in enumerate(columns, start=1):
            up = torch.nn.functional.interpolate(m[row][None, None], size=tuple(size), mode="nearest")[0, 0]
            shown = axes(row, col).imshow(up.numpy(), cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
    assert shown is not None, "gates_figure needs at least one image and one gate column"
    grid_px = n * cell
    bar = fig.add_axes(((n_cols * cell + 12) / width, (FOOTER_PX + 0.1 * grid_px) / height, 14 / width,
                        0.8 * grid_px / height))
    colorbar = fig.colorbar(shown, cax=bar)
    colorbar.set_label("gate Z (mean over channels)", fontsize=font)
    colorbar.ax.tick_params(labelsize=font)
    return fig


def plot_gates(images: torch.Tensor, columns: Sequence[tuple[str, str, torch.Tensor]], path: str | Path,
               cell: int = 96, title: str = "") -> tuple[int, int]:
    """Write :func:`gates_figure` to ``path`` as a PNG; return its pixel size."""
    fig = gates_figure(images, columns, cell, title)
    fig.savefig(path, dpi=fig.dpi)
    width, height = fig.canvas.get_width_height()
    return width, height


# ------------------------------------------------------------------------------------------- CLI ---
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``recalib visualize``'s options to ``parser``."""
    parser.description = ("Plot test images next to the gate Z of chosen blocks (per scale and combined for "
                          "MS-SAR) as a PNG grid.")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint.pt of a training run")
    src.add_argument("--pretrained", metavar="TAG", help="published weights (with --model and --recalib)")
    parser.add_argument("--model", default="resnet20", help="with --pretrained: the architecture")
    parser.add_argument("--recalib", default="mssar", help="with --pretrained: the operator")
    parser.add_argument("--dataset", default=None, help="data set of the images (default: the run's)")
    parser.add_argument("--data-dir", default=None, help="folder holding the data set")
    parser.add_argument("--images", type=int, default=8, help="number of test images (rows)")
    parser.add_argument("--start", type=int, default=0, help="index of the first test image")
    parser.add_argument("--blocks", default="auto",
                        help="auto (last operator of each stage), all, or names/indices, comma-separated")
    parser.add_argument("--cell", type=int, default=96, help="pixels per grid cell")
    parser.add_argument("--out", default=None, help=f"output PNG (default: {GATES_PNG} in the checkpoint's run folder; "
                        "required with --pretrained)")


def output_path(args: argparse.Namespace) -> Path:
    """Where the PNG goes: ``--out``, else ``gates.png`` beside the checkpoint (never the working directory)."""
    if args.out is not None:
        p = Path(args.out)
        if p.is_dir() or not p.parent.is_dir():
            raise ValueError(f"--out {p}: " + ("is a folder; give a file name such as gates.png" if p.is_dir()
                                               else f"the folder {p.parent} does not exist; create it first"))
        return p
    if args.checkpoint:
        return Path(args.checkpoint).parent / GATES_PNG
    raise ValueError("--pretrained has no run folder to write into: give --out FILE.png")


def _load(args: argparse.Namespace) -> tuple[nn.Module, str, str]:
    if args.checkpoint:
        from ..train import model_from_checkpoint

        model, cfg = model_from_checkpoint(args.checkpoint)
        return model, args.dataset or cfg["dataset"], f"{cfg['model']} + {cfg['recalib']}, {args.checkpoint}"
    from ..data import get_dataset_info
    from ..models import create_model

    dataset = args.dataset or args.pretrained
    info = get_dataset_info(dataset)
    model = create_model(args.model, recalib=args.recalib, in_chans=info.in_chans, num_classes=info.num_classes,
                         pretrained=args.pretrained)
    return model, dataset, f"{args.model} + {args.recalib}, pretrained {args.pretrained}"


def run(args: argparse.Namespace) -> int:
    """``recalib visualize``: draw the gates of a trained model's blocks; return the exit status."""
    from ..data import DeviceLoader, load_small
    from ..train.cli import check_names

    try:
        if args.images < 1 or args.start < 0 or not 16 <= args.cell <= _MAX_CELL:
            raise ValueError(f"--images must be >= 1, --start >= 0 and --cell in [16, {_MAX_CELL}], got --images "
                             f"{args.images}, --start {args.start}, --cell {args.cell}")
        names = {"model": args.model, "recalib": args.recalib} if args.pretrained else {}
        check_names(dataset=args.dataset, **names)  # before any weights or data are read
        out = output_path(args)
        model, dataset, what = _load(args)
        test = load_small(dataset, "test", data_dir=args.data_dir)
        if args.start + args.images > len(test):
            raise ValueError(f"--start {args.start} + --images {args.images} exceeds the {len(test)} test images")
        idx = torch.arange(args.start, args.start + args.images)
        subset = type(test)(test.images[idx], test.labels[idx], test.info, "test")
        x, _ = next(iter(DeviceLoader(subset, args.images, train=False, device=torch.device("cpu"))))
        columns = gate_columns(model, x, args.blocks)
        w, h = grid_pixel_size(args.images, 1 + len(columns), args.cell)
        if max(w, h) >= _MAX_SIDE:
            raise ValueError(f"the grid would be {w} x {h} pixels (at most {_MAX_SIDE - 1} per side); lower --cell, "
                             "--images or the number of --blocks")
        w, h = plot_gates(subset.images, columns, out, cell=args.cell,
                          title=f"{what}; {dataset} test images {args.start}..{args.start + args.images - 1}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"recalib visualize: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({w} x {h} px, {len(columns)} gate columns)")
    return 0
