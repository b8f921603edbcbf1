"""``recalib visualize``: gate columns, block selection and the PNG grid from a saved checkpoint."""

from __future__ import annotations

import argparse

import pytest
import torch

from recalib.analysis import visualize as vis
from recalib.models import create_model
from recalib.train import save_checkpoint


def _checkpoint(tmp_path, recalib: str = "mssar"):
    torch.manual_seed(0)
    model = create_model("resnet20", recalib=recalib, in_chans=1, num_classes=10)
    state = {"format_version": 1, "epoch": 1, "step": 1, "model": model.state_dict(),
             "model_args": {"name": "resnet20", "num_classes": 10, "in_chans": 1, "recalib": recalib},
             "config": {"model": "resnet20", "recalib": recalib, "dataset": "fashion-mnist"}}
    return save_checkpoint(state, tmp_path / "checkpoint.pt")


def _args(**kw):
    parser = argparse.ArgumentParser()
    vis.configure_parser(parser)
    argv = []
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return parser.parse_args(argv)


def test_png_grid_from_checkpoint(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg

    from recalib.data import load_small

    try:
        load_small("fashion-mnist", "test", download=False)
    except Exception as exc:
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    ckpt = _checkpoint(tmp_path)
    out = tmp_path / "gates.png"
    assert vis.run(_args(checkpoint=ckpt, images=3, cell=64, out=out)) == 0
    # auto = last operator of each of the 3 stages; MS-SAR: 3 scales + combined per block; plus the input.
    n_cols = 1 + 3 * 4
    png = mpimg.imread(out)
    assert png.shape[:2] == (3 * 64 + vis.HEADER_PX + vis.FOOTER_PX, n_cols * 64)
    assert vis.grid_pixel_size(3, n_cols, 64) == (n_cols * 64, 3 * 64 + vis.HEADER_PX + vis.FOOTER_PX)


def test_gate_columns_mssar_combined_is_mean_of_scales():
    torch.manual_seed(0)
    model = create_model("resnet20", recalib="mssar", in_chans=1, num_classes=10).eval()
    for m in model.modules():  # non-trivial BN statistics so the gates differ between scales
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 1, 28, 28)
    cols = vis.gate_columns(model, x, ["layer2.1.recalib"])
    assert [c[1] for c in cols] == ["K=1", "K=2", "K=4", "combined"]
    assert all(c[0] == "layer2.1" and c[2].shape == (2, 14, 14) for c in cols)
    mean = (cols[0][2] + cols[1][2] + cols[2][2]) / 3
    torch.testing.assert_close(cols[3][2], mean)
    # K = 1 is constant over space; K = 2 is constant on each 7x7 quadrant.
    assert torch.allclose(cols[0][2], cols[0][2][:, :1, :1].expand(2, 14, 14))
    q = cols[1][2][:, :7, :7]
    assert torch.allclose(q, q[:, :1, :1].expand_as(q))
    assert all(((c[2] > 0) & (c[2] < 1)).all() for c in cols)


def test_gate_columns_other_operators_and_selection():
    model = create_model("resnet20", recalib="sge", in_chans=1, num_classes=10).eval()
    cols = vis.gate_columns(model, torch.randn(1, 1, 28, 28), "all")
    assert len(cols) == 9 and cols[0][1] == "SpatialGroupEnhance"
    names = [f"layer{s}.{b}.recalib" for s in (1, 2, 3) for b in range(3)]
    assert vis.select_blocks(names, model, "auto") == ["layer1.2.recalib", "layer2.2.recalib", "layer3.2.recalib"]
    assert vis.select_blocks(names, model, "0,layer3.1,-1") == ["layer1.0.recalib", "layer3.1.recalib",
                                                                 "layer3.2.recalib"]
    with pytest.raises(ValueError, match="unknown block"):
        vis.select_blocks(names, model, "layer9.0")
    with pytest.raises(ValueError, match="out of range"):
        vis.select_blocks(names, model, "9")
    plain = create_model("resnet20", recalib=None, in_chans=1, num_classes=10).eval()
    with pytest.raises(ValueError, match="no recalibration operator"):
        vis.gate_columns(plain, torch.randn(1, 1, 28, 28))
