"""Generate docs/figures/gates.png: the gate Z of each operator on a real image's feature map.

A Fashion-MNIST test image goes through ResNet-20 (in_chans=1) with each operator; the input of the first
recalibration operator at 14 x 14 (stage 2) is captured and the operator's gate is drawn, averaged over
channels (MS-SAR also per scale). Trained weights (`pretrained="fashion-mnist"`) are used when they are
shipped; otherwise the operators are randomly initialised and the figure's title says so.

Usage: python3 scripts/make_gate_figure.py [--out docs/figures/gates.png] [--index 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from recalib import create_model  # noqa: E402
from recalib.analysis.gates import capture_operator_inputs, per_scale_gates  # noqa: E402
from recalib.data import DATASETS, load_small  # noqa: E402
from recalib.modules import MSSAR  # noqa: E402

OPERATORS = [("SE", "se"), ("GE θ⁻ global", "ge"), ("SGE", "sge"), ("MS-SAR regional", "mssar"),
             ("MS-SAR sliding", "mssar(strategy='sliding')")]


def _model(spec: str) -> tuple[torch.nn.Module, bool]:
    try:
        return create_model("resnet20", recalib=spec, in_chans=1, num_classes=10, pretrained="fashion-mnist"), True
    except (ValueError, FileNotFoundError, ImportError):
        return create_model("resnet20", recalib=spec, in_chans=1, num_classes=10), False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/gates.png")
    parser.add_argument("--index", type=int, default=0, help="test image index")
    args = parser.parse_args()
    torch.manual_seed(0)
    info = DATASETS["fashion-mnist"]
    ds = load_small("fashion-mnist", "test")
    img = ds.images[args.index : args.index + 1].float() / 255.0
    x = (img - torch.tensor(info.mean).view(1, -1, 1, 1)) / torch.tensor(info.std).view(1, -1, 1, 1)

    panels: list[tuple[str, torch.Tensor]] = [("input", img[0, 0])]
    trained_all = True
    for label, spec in OPERATORS:
        model, trained = _model(spec)
        trained_all &= trained
        model.eval()
        with torch.no_grad(), capture_operator_inputs(model) as records:
            model(x)
        name, op, inputs = next(r for r in records if r[2][0].shape[-1] == 14)
        with torch.no_grad():
            gate = op.gate(*inputs)
            panels.append((f"{label}\n{name}", gate[0].mean(0)))
            if isinstance(op, MSSAR) and op.strategy == "regional":
                for k, g in zip(op.scales, per_scale_gates(op, *inputs)):
                    panels.append((f"MS-SAR scale K={k}", g[0].mean(0)))

    fig, axes = plt.subplots(1, len(panels), figsize=(2.1 * len(panels), 2.6))
    for ax, (title, img2d) in zip(axes, panels):
        im = ax.imshow(img2d.numpy(), cmap="gray" if title == "input" else "viridis")
        ax.set_title(title, fontsize=7)
        ax.axis("off")
        if title != "input":
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)
    weights = "trained on Fashion-MNIST" if trained_all else "randomly initialised operators (no shipped weights)"
    fig.suptitle(f"Gate Z (mean over channels) at the first 14x14 block of ResNet-20, {weights}", fontsize=8)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
