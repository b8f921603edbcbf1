"""A run's curves.png, checked through matplotlib's objects: titled panels, labelled axes, one legend."""

from __future__ import annotations

import pytest

from recalib.train._outputs import curves_figure, plot_curves

pytest.importorskip("matplotlib")


def _history(epochs: int) -> list[dict[str, float]]:
    return [{"epoch": e, "lr": 0.1 * (1 - e / (epochs + 1)), "train_loss": 2.0 / e, "test_loss": 1.0 / e + 0.2,
             "train_error": 40.0 / e, "test_error": 30.0 / e + 5 + (2.0 if e == epochs else 0.0),
             "test_top5_error": 3.0 / e} for e in range(1, epochs + 1)]


def test_run_curves_have_titled_panels_and_one_legend() -> None:
    history = _history(5)
    fig = curves_figure(history, "resnet20 + mssar on fashion-mnist (quick)", "validation")
    axes = fig.axes
    assert len(axes) == 3 and all(ax.get_xlabel() == "epoch" and ax.get_ylabel() for ax in axes)
    titles = [ax.get_title() for ax in axes]
    assert all(titles) and len(set(titles)) == 3
    assert "13.00 %" in titles[1] and "best 12.50 % (epoch 4)" in titles[1]  # last epoch is not the best
    assert all(ax.get_legend() is None for ax in axes) and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["train", "validation", "validation top-5 error"]
    assert [list(line.get_ydata()) for line in axes[2].lines] == [[r["lr"] for r in history]]
    assert fig._suptitle.get_text() == "resnet20 + mssar on fashion-mnist (quick)"


def test_run_curves_png_is_written(tmp_path) -> None:
    import matplotlib.image as mpimg

    plot_curves(_history(1), tmp_path / "curves.png", "one epoch", "test")
    assert mpimg.imread(tmp_path / "curves.png").shape[:2] == (380, 1200)
