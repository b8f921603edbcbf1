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
    # auto = last operator of each of the 3 stages; MS-SAR: 3 scales + combined per block; plus the input;
    # then the strip of the colour bar (issue 19 adds it: the width grows by COLORBAR_PX).
    n_cols = 1 + 3 * 4
    png = mpimg.imread(out)
    assert png.shape[:2] == (3 * 64 + vis.HEADER_PX + vis.FOOTER_PX, n_cols * 64 + vis.COLORBAR_PX)
    assert vis.grid_pixel_size(3, n_cols, 64) == (n_cols * 64 + vis.COLORBAR_PX,
                                                  3 * 64 + vis.HEADER_PX + vis.FOOTER_PX)


def test_default_output_is_the_run_folder_never_the_working_directory(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from recalib.data import load_small

    try:
        load_small("fashion-mnist", "test", download=False)
    except Exception as exc:
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    run_dir, cwd = tmp_path / "run", tmp_path / "cwd"
    run_dir.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    ckpt = _checkpoint(run_dir)
    assert vis.run(_args(checkpoint=ckpt, images=1, cell=32, blocks="-1")) == 0
    assert (run_dir / "gates.png").is_file() and list(cwd.iterdir()) == []
    assert str(run_dir / "gates.png") in capsys.readouterr().out
    assert vis.run(_args(pretrained="fashion-mnist", images=1)) == 2  # no run folder: --out is needed
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and list(cwd.iterdir()) == []


def test_gates_share_one_colour_scale_with_a_labelled_colour_bar():
    pytest.importorskip("matplotlib")
    images = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    low = torch.full((2, 4, 4), 0.40)
    low[0, 0, 0] = 0.30
    high = torch.full((2, 2, 2), 0.60)
    high[1, 1, 1] = 0.90
    columns = [("layer1.2", "K=1", low), ("layer3.2", "SE", high)]
    fig = vis.gates_figure(images, columns, cell=32, title="synthetic")
    gates = [im for ax in fig.axes for im in ax.get_images() if im.get_cmap().name == "viridis"]
    assert len(gates) == 4  # 2 images x 2 columns
    assert [im.get_clim() for im in gates] == [pytest.approx((0.30, 0.90))] * 4  # one range: every gate's
    (bar,) = [im.colorbar for im in gates if im.colorbar is not None]
    assert bar.ax.get_ylabel() == "gate Z (mean over channels)"
    assert bar.vmin == pytest.approx(0.30) and bar.vmax == pytest.approx(0.90)
    headers = [t.get_text() for t in fig.texts]
    assert "layer1.2\nK=1" in headers and "layer3.2\nSE" in headers


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
