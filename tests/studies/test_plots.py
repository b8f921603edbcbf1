"""The study figures, checked through matplotlib's objects: labelled axes, one legend, titled panels, tick labels
that do not run into each other, a title inside the figure, and an off-scale operator that does not squash the
range of the others (issue 19, item 6)."""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest

from recalib.studies import load_study, plan_runs
from recalib.studies.plots import curves_figure, error_vs_macs_figure, off_scale
from recalib.studies.report import report_numbers
from recalib.studies.results import collect_results

pytest.importorskip("matplotlib")

STUDY = """
[study]
name = "figures"
description = "synthetic runs for the figure tests"
recipe = "paper-cifar-resnet"
datasets = ["fashion-mnist"]
seeds = [0, 1, 2]
baseline = "none"
schedule = "a synthetic schedule whose description is long enough to need wrapping: all training images, six epochs, batch 128, warm-up then linear decay"
overrides = { epochs = 6, milestones = [3] }

[grid]
models = ["resnet20"]
""" + "".join(f'\n[[operators]]\nkey = "{key}"\nlabel = "{label}"\nspec = "{key}"\n'
              for key, label in (("none", "none"), ("se", "SE"), ("ge", "GE"), ("sge", "SGE"), ("mssar", "MS-SAR")))

# Last-epoch test errors (%) per operator and seed 0, 1, 2; SGE is far off the others.
FINAL = {"none": [7.6, 7.7, 7.75], "se": [7.55, 7.7, 7.8], "ge": [7.7, 7.8, 7.85], "sge": [11.0, 13.5, 16.3],
         "mssar": [7.5, 7.6, 7.7]}
MACS = {"none": 30_800_000, "se": 30_810_000, "ge": 30_805_000, "sge": 30_802_000, "mssar": 31_000_000}


@pytest.fixture(scope="module")
def study_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Any]]:
    tmp = tmp_path_factory.mktemp("figures")
    path = tmp / "figures.toml"
    path.write_text(STUDY)
    study = load_study(path)
    for run in plan_runs(study, tmp / "results"):
        run.out.mkdir(parents=True)
        final = FINAL[run.operator.key][run.seed]
        hist = [{"epoch": e, "step": 10 * e, "lr": 0.1, "train_loss": 2.0 / e, "train_error": 40.0 / e,
                 "test_loss": 0.2 + 1.0 / e, "test_error": final + 30.0 / e - 5.0, "test_top5_error": 1.0,
                 "seconds": 1.0, "images_per_s": 100.0} for e in range(1, 7)]
        (run.out / "config.json").write_text(json.dumps(run.config.to_dict()))
        (run.out / "metrics.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hist))
        summary = {"status": "completed", "epochs_completed": 6, "final_test_error": hist[-1]["test_error"],
                   "params": 1000, "macs": MACS[run.operator.key], "wall_seconds": 1.0}
        (run.out / "summary.json").write_text(json.dumps(summary))
    return study, collect_results(study, tmp / "results")


def _axes(fig: Any) -> list[Any]:
    """Every axes of ``fig`` and its subfigures, once each."""
    return list(dict.fromkeys([*fig.axes, *(ax for sub in fig.subfigs for ax in _axes(sub))]))


def _legends(fig: Any) -> list[Any]:
    """Every legend of ``fig``: its own, its subfigures' and its axes'."""
    subs = [lg for sub in fig.subfigs for lg in _legends(sub)]
    return list(dict.fromkeys([*fig.legends, *subs, *(ax.get_legend() for ax in _axes(fig) if ax.get_legend())]))


def _drawn(fig: Any) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _no_overlap(extents: list[Any]) -> bool:
    return all(not a.overlaps(b) for i, a in enumerate(extents) for b in extents[i + 1:])


def _inside(fig: Any, artist: Any, renderer: Any) -> bool:
    box, page = artist.get_window_extent(renderer), fig.bbox
    return box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1


def test_off_scale_uses_far_out_fences_and_the_seed_noise() -> None:
    means = [statistics.mean(v) for v in FINAL.values()]
    assert off_scale(means, noise=0.1) == [False, False, False, True, False]
    assert off_scale(means, noise=5.0) == [False] * 5  # within the seed noise: nothing is off scale
    assert off_scale(means[:3]) == [False] * 3  # too few to call one an outlier


def test_error_vs_macs_is_a_readable_dot_plot(study_runs: tuple[Any, list[Any]]) -> None:
    study, results = study_runs
    numbers = report_numbers(study, results)
    fig = error_vs_macs_figure(study, numbers)
    renderer = _drawn(fig)
    ax_err, ax_cost = _axes(fig)
    assert ax_err.get_xlabel() == "test error (%), last epoch"
    assert "MACs" in ax_cost.get_xlabel() and "none" in ax_cost.get_xlabel()
    assert [t.get_text() for t in ax_err.get_yticklabels()] == [op.label for op in study.operators]
    assert len(_legends(fig)) == 1
    lo, hi = ax_err.get_xlim()
    in_scale = [v for key, vals in FINAL.items() if key != "sge" for v in vals]
    assert lo <= min(in_scale) and max(in_scale) <= hi
    assert hi - lo < 2.0  # the off-scale SGE does not squash the range that matters
    sge = statistics.mean(FINAL["sge"])
    assert sge > hi and any(f"{sge:.2f}" in t.get_text() and "off scale" in t.get_text() for t in ax_err.texts)
    for key, vals in FINAL.items():  # every other operator's mean is written beside it
        if key != "sge":
            assert any(t.get_text().startswith(f"{statistics.mean(vals):.2f} ±") for t in ax_err.texts), key
    for ax in (ax_err, ax_cost):
        ticks = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        assert len(ticks) >= 3 and _no_overlap(ticks)
    assert _inside(fig, fig._suptitle, renderer)
    tiny = {**numbers, "rows": [{**r, "extra_macs_pct": (r.get("extra_macs_pct") or 0) * 1e-3}
                                for r in numbers["rows"]]}  # a negligible extra cost: still readable ticks
    fig = error_vs_macs_figure(study, tiny)
    renderer = _drawn(fig)
    ticks = [t.get_window_extent(renderer) for t in _axes(fig)[1].get_xticklabels() if t.get_text()]
    assert len(ticks) >= 2 and _no_overlap(ticks)


def test_curves_have_titled_panels_one_legend_and_a_zoomed_final_axis(study_runs: tuple[Any, list[Any]]) -> None:
    study, results = study_runs
    fig = curves_figure(study, results)
    renderer = _drawn(fig)
    axes = _axes(fig)
    assert len(axes) == 4
    titles = [ax.get_title() for ax in axes]
    assert all(titles) and len(set(titles)) == 4
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() for ax in axes)
    assert [sub._suptitle.get_text() for sub in fig.subfigs] == ["resnet20 on fashion-mnist"]
    (legend,) = _legends(fig)
    assert [t.get_text() for t in legend.get_texts()] == [f"{op.label} (n=3)" for op in study.operators]
    zoom = axes[-1]
    assert zoom.get_xlim()[0] > 3  # the final epochs of six
    bottom, top = zoom.get_ylim()
    for key, vals in FINAL.items():
        final = statistics.mean(vals)
        assert (bottom <= final <= top) == (key != "sge"), key
    assert any("off scale" in t.get_text() and "SGE" in t.get_text() for t in zoom.texts)
    assert _inside(fig, fig._suptitle, renderer)
