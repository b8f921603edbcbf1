"""The figures of a study report: training/test curves (paper Figures 3/4) and error against MACs (Figure 5).

* ``curves.png``: one row per (data set, network), titled; four titled panels (train error, test error, test
  loss, and the test error of the final epochs on a zoomed axis), the mean over seeds as a line and ±1 sample
  std as a band; one legend for the whole figure.
* ``error_vs_macs.png``: per data set, a dot plot with one row per (network, operator): every seed's
  last-epoch test error as a dot, the mean ± 1 std as a labelled bar, and beside it the cost (MACs per image
  over the baseline's, in %, or MACs when the study has no baseline). The operators of one network usually
  share a MAC count to within 1 %, which a scatter against MACs draws on top of each other; a dot plot keeps
  every operator readable and the cost stays on a shared axis.

An operator far off the others (:func:`off_scale`, e.g. a diverging variant) would squash the range that
matters; it is drawn at the edge of the axis with its value written out instead. The figures are built on
``matplotlib.figure.Figure`` (no pyplot state, no backend switch) and written through an atomic write.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write
from .._optional import require
from .results import RunResult, by_cell
from .schema import Study
from .stats import mean_std

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["curves_figure", "error_vs_macs_figure", "off_scale", "plot_curves", "plot_error_vs_macs"]

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")  # matplotlib's tab10, fixed so an operator keeps its colour in every figure


def _figure(width: float, height: float) -> Figure:
    figure = require("matplotlib.figure", "plots", "recalib study report's figures")
    return figure.Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG through an atomic write."""
    with atomic_write(path, "wb") as f:
        fig.savefig(f, dpi=110, format="png")


def _title(study: Study, what: str, width: float) -> str:
    """Two lines or more: the study and what the figure shows, then its schedule wrapped to the figure."""
    head = f"{study.name}{' / ' + study.variant if study.variant else ''}: {what}"
    return head + "\n" + textwrap.fill(study.schedule, int(width * 14))


def off_scale(means: Sequence[float], noise: float = 0.0) -> list[bool]:
    """Which of ``means`` lie far out from the others: beyond Tukey's far-out fences (3 IQR past the
    quartiles), with the IQR taken at least ``noise`` (the seeds' typical std) so that differences within the
    seed noise never count. Fewer than four values: none (there is no "the others" to speak of)."""
    if len(means) < 4:
        return [False] * len(means)
    q1, _, q3 = statistics.quantiles(means, n=4, method="inclusive")
    iqr = max(q3 - q1, noise)
    return [not q1 - 3 * iqr <= m <= q3 + 3 * iqr for m in means]


# --------------------------------------------------------------------------------------- curves ---
_PANELS = (("train_error", "train error (%)", "train error"), ("test_error", "test error (%)", "test error"),
           ("test_loss", "test loss (cross-entropy)", "test loss"))


def _curve_stats(runs: dict[int, RunResult], key: str) -> tuple[list[int], list[float], list[float]]:
    """(epochs, mean, std) of ``key`` over the seeds of one cell, over the epochs every seed finished."""
    n_epochs = min(len(r.history) for r in runs.values())
    first = next(iter(runs.values()))
    epochs = [int(first.history[e]["epoch"]) for e in range(n_epochs)]
    stats = [mean_std([float(r.history[e][key]) for r in runs.values()]) for e in range(n_epochs)]
    return epochs, [m for m, _ in stats], [s or 0.0 for _, s in stats]


def _draw_curve(ax: Axes, epochs: list[int], mean: list[float], std: list[float], color: str, label: str) -> None:
    ax.plot(epochs, mean, "-", marker="o" if len(epochs) < 25 else None, ms=3, color=color, label=label)
    if any(std):
        ax.fill_between(epochs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color=color, alpha=0.15, linewidth=0)


def _zoom(ax: Axes, series: list[tuple[str, list[int], list[float], list[float]]], study_epochs: int) -> None:
    """The test error of the final epochs: x from the last third of training, y fitted to the operators that
    are on scale; an off-scale operator is named in the panel with its final value."""
    from matplotlib.ticker import MaxNLocator

    last = max(e[-1] for _, e, _, _ in series)
    start = max(1, last - max(2, math.ceil(study_epochs / 3)) + 1)
    finals = [m[-1] for _, _, m, _ in series]
    noise = statistics.median(s[-1] for _, _, _, s in series)
    far = off_scale(finals, noise)
    lows, highs = [], []
    for (_, epochs, mean, std), out in zip(series, far):
        if not out:  # the means of the zoomed epochs and the final spread
            lows += [m for e, m in zip(epochs, mean) if e >= start] + [mean[-1] - std[-1]]
            highs += [m for e, m in zip(epochs, mean) if e >= start] + [mean[-1] + std[-1]]
    if lows:
        pad = 0.08 * (max(highs) - min(lows) or 1.0)
        ax.set_ylim(min(lows) - pad, max(highs) + pad)
    ax.set_xlim(start - 0.2, last + 0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    notes = [f"{label}: {m[-1]:.2f} %" for (label, _, m, _), out in zip(series, far) if out]
    if notes:
        ax.text(0.98, 0.97, "off scale: " + ", ".join(notes), transform=ax.transAxes, ha="right", va="top",
                fontsize=7, bbox={"facecolor": "white", "edgecolor": "0.7", "alpha": 0.9})


def curves_figure(study: Study, results: Sequence[RunResult]) -> Figure:
    """Figures 3/4 as a matplotlib figure (see the module docstring)."""
    from matplotlib.ticker import MaxNLocator

    cells = by_cell(results)
    groups = [(d, m) for d in study.datasets for m in study.models
              if any((d, m, op.key) in cells for op in study.operators)] or [(study.datasets[0], study.models[0])]
    fig = _figure(15.0, 3.3 * len(groups) + 1.1)
    rows = fig.subfigures(len(groups), 1, squeeze=False)[:, 0]
    handles: dict[str, Any] = {}
    for row, (dataset, model) in zip(rows, groups):
        row.suptitle(f"{model} on {dataset}", fontsize=11, fontweight="bold")
        axes = row.subplots(1, len(_PANELS) + 1)
        zoom_series = []
        for oi, op in enumerate(study.operators):
            runs = cells.get((dataset, model, op.key))
            if not runs:
                continue
            color, label = _COLORS[oi % len(_COLORS)], f"{op.label} (n={len(runs)})"
            for ax, (key, _, _) in zip(axes, _PANELS):
                epochs, mean, std = _curve_stats(runs, key)
                _draw_curve(ax, epochs, mean, std, color, label)
                if key == "test_error":
                    _draw_curve(axes[-1], epochs, mean, std, color, label)
                    zoom_series.append((op.label, epochs, mean, std))
            handles.setdefault(label, axes[0].lines[-1])
        for ax, (_, ylabel, title) in zip(axes, _PANELS):
            ax.set(xlabel="epoch", ylabel=ylabel, title=title)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[-1].set(xlabel="epoch", ylabel="test error (%)", title="test error, final epochs (zoomed)")
        if zoom_series:
            _zoom(axes[-1], zoom_series, max(len(e) for _, e, _, _ in zoom_series))
        for ax in axes:
            ax.grid(alpha=0.3)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(len(handles), 6),
                   title="mean over seeds, band: ±1 std", fontsize=9, title_fontsize=9, frameon=False)
    fig.suptitle(_title(study, "training and test curves", 15.0), fontsize=10)
    return fig


def plot_curves(study: Study, results: Sequence[RunResult], path: Path) -> None:
    """Write :func:`curves_figure` to ``path`` (PNG)."""
    _save(curves_figure(study, results), path)


# ------------------------------------------------------------------------------- error vs MACs ---
def _rows_of(study: Study, numbers: dict[str, Any], dataset: str) -> list[tuple[int, dict[str, Any]]]:
    """(operator index, report row) of ``dataset``, grouped by network in the study's order."""
    rows = [r for r in numbers["rows"] if r["dataset"] == dataset]
    order = {op.key: i for i, op in enumerate(study.operators)}
    models = list(study.models) + sorted({r["model"] for r in rows} - set(study.models))
    return [(order.get(r["operator"], 0), r) for m in models
            for r in sorted((r for r in rows if r["model"] == m), key=lambda r: order.get(r["operator"], 0))]


def _dot_panel(ax: Axes, rows: list[tuple[int, dict[str, Any]]], many_models: bool) -> None:
    """Seeds as dots, mean ± 1 std as a bar with its value; off-scale rows at the right edge."""
    means = [r["mean"] for _, r in rows]
    noise = statistics.median([r["std"] or 0.0 for _, r in rows]) if rows else 0.0
    far = off_scale(means, noise)
    shown = [v for (_, r), out in zip(rows, far) if not out
             for v in (*r["test_error"].values(), r["mean"] - (r["std"] or 0), r["mean"] + (r["std"] or 0))]
    lo, hi = (min(shown), max(shown)) if shown else (0.0, 1.0)
    span = hi - lo or max(abs(hi), 1.0) * 0.05
    left, right = lo - 0.08 * span, hi + 0.45 * span  # room on the right for the value labels
    for y, ((oi, r), out) in enumerate(zip(rows, far)):
        color = _COLORS[oi % len(_COLORS)]
        sd = r["std"] or 0.0
        text = f"{r['mean']:.2f} ± {sd:.2f}" if r["n"] > 1 else f"{r['mean']:.2f}"
        if out:
            edge = right if r["mean"] > hi else left
            ax.plot([edge], [y], ">" if r["mean"] > hi else "<", color=color, ms=9, clip_on=False)
            ax.annotate(f"{text} (off scale)", (edge, y), xytext=(-12 if r["mean"] > hi else 12, 0),
                        textcoords="offset points", ha="right" if r["mean"] > hi else "left", va="center",
                        fontsize=8, color=color)
            continue
        errs = list(r["test_error"].values())
        jitter = [0.18 * (i - (len(errs) - 1) / 2) / max(1, len(errs) - 1) for i in range(len(errs))]
        ax.plot(errs, [y + j for j in jitter], "o", ms=4, color=color, alpha=0.55, markeredgewidth=0)
        ax.errorbar([r["mean"]], [y], xerr=[[sd], [sd]], fmt="D", ms=6, color=color, capsize=3, elinewidth=1.5)
        ax.annotate(text, (max(errs + [r["mean"] + sd]), y), xytext=(8, 0), textcoords="offset points",
                    va="center", fontsize=8)
    for y in range(1, len(rows)):  # a line between the networks
        if rows[y][1]["model"] != rows[y - 1][1]["model"]:
            ax.axhline(y - 0.5, color="0.6", linewidth=0.8)
    ax.set_xlim(left, right)
    ax.set_yticks(range(len(rows)),
                  [f"{r['label']} · {r['model']}" if many_models else r["label"] for _, r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the study's order from the top
    ax.set_xlabel("test error (%), last epoch")
    ax.grid(alpha=0.3, axis="x")


def _percent(value: float) -> str:
    """``+11.2 %``, ``+0.71 %``, ``< +0.01 %``: an extra cost with the digits that matter."""
    if 0 < abs(value) < 0.01:
        return "< +0.01 %" if value > 0 else "> -0.01 %"
    return f"{value:+.{1 if abs(value) >= 1 else 2}f} %"


def _cost_panel(ax: Axes, rows: list[tuple[int, dict[str, Any]]], baseline: str | None) -> None:
    """MACs over the baseline's (%) as bars; the MACs per image when the study has no baseline."""
    from matplotlib.ticker import MaxNLocator

    relative = baseline is not None and all(r.get("extra_macs_pct") is not None or r["operator"] == baseline
                                            for _, r in rows)
    for y, (oi, r) in enumerate(rows):
        if r["macs"] is None:
            continue
        value = (r.get("extra_macs_pct") or 0.0) if relative else r["macs"] / 1e6
        ax.barh(y, value, color=_COLORS[oi % len(_COLORS)], alpha=0.7, height=0.6)
        if not relative:
            label = f"{value:.1f} M"
        elif r["operator"] == baseline:
            label = f"baseline ({r['macs'] / 1e6:.1f} M)"
        else:
            label = f"{_percent(value)}  ({r['macs'] / 1e6:.1f} M)"
        ax.annotate(label, (max(value, 0.0), y), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=8)
    ax.set_xlabel(f"extra MACs per image over {baseline} (%)" if relative else "MACs per image (millions)")
    # Room for the labels; at least 0-1 % so that a negligible extra cost looks negligible.
    ax.set_xlim(0, max(ax.get_xlim()[1], 1.0) * 1.6)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.tick_params(axis="y", labelleft=False)
    ax.grid(alpha=0.3, axis="x")


def error_vs_macs_figure(study: Study, numbers: dict[str, Any]) -> Figure:
    """Figure 5 as a matplotlib figure (see the module docstring)."""
    from matplotlib.lines import Line2D

    datasets = [d for d in study.datasets if any(r["dataset"] == d for r in numbers["rows"])] or [study.datasets[0]]
    per_dataset = [_rows_of(study, numbers, d) for d in datasets]
    heights = [max(2, len(rows)) * 0.42 + 1.1 for rows in per_dataset]
    fig = _figure(11.0, sum(heights) + 1.4)
    panels = fig.subfigures(len(datasets), 1, squeeze=False, height_ratios=heights)[:, 0]
    for sub, dataset, rows in zip(panels, datasets, per_dataset):
        ax_err, ax_cost = sub.subplots(1, 2, width_ratios=(3, 1), sharey=True)
        _dot_panel(ax_err, rows, len({r["model"] for _, r in rows}) > 1)
        _cost_panel(ax_cost, rows, study.baseline)
        ax_err.set_title(f"{dataset}: last-epoch test error", fontsize=10)
        ax_cost.set_title("cost", fontsize=10)
    grey = "0.35"
    handles = [Line2D([], [], ls="", marker="o", ms=4, color=grey, alpha=0.55, label="one seed"),
               Line2D([], [], ls="-", marker="D", ms=6, color=grey, label="mean ± 1 std over seeds")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    fig.suptitle(_title(study, "test error and cost per operator", 11.0), fontsize=10)
    return fig


def plot_error_vs_macs(study: Study, numbers: dict[str, Any], path: Path) -> None:
    """Write :func:`error_vs_macs_figure` to ``path`` (PNG)."""
    _save(error_vs_macs_figure(study, numbers), path)
