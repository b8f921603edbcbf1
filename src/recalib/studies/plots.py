"""The figures of a study report: training/test curves (paper Figures 3/4) and error against MACs (Figure 5).

Both average over seeds (mean ± 1 sample std) and are written with matplotlib's Agg backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write
from .._optional import pyplot
from .results import RunResult, by_cell
from .spec import Study
from .stats import mean_std

__all__ = ["plot_curves", "plot_error_vs_macs"]


def _plt() -> Any:
    return pyplot("recalib study report's figures")


def _save(fig: Any, path: Path) -> None:
    """Write ``fig`` as a PNG through an atomic write, and close it."""
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        _plt().close(fig)


def plot_curves(study: Study, results: Sequence[RunResult], path: Path) -> None:
    """Figures 3/4: per (data set, network) row, train error, test error and test loss against epochs."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    cells = by_cell(results)
    groups = [(d, m) for d in study.datasets for m in study.models
              if any((d, m, op.key) in cells for op in study.operators)]
    panels = (("train_error", "train error (%)"), ("test_error", "test error (%)"), ("test_loss", "test loss"))
    fig, axes = plt.subplots(max(1, len(groups)), len(panels), figsize=(4.2 * len(panels), 3.2 * max(1, len(groups))),
                             squeeze=False, constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for gi, (dataset, model) in enumerate(groups):
        for oi, op in enumerate(study.operators):
            runs = cells.get((dataset, model, op.key))
            if not runs:
                continue
            n_epochs = min(len(r.history) for r in runs.values())
            epochs = [runs[next(iter(runs))].history[e]["epoch"] for e in range(n_epochs)]
            for pi, (key, _) in enumerate(panels):
                stats = [mean_std([float(r.history[e][key]) for r in runs.values()]) for e in range(n_epochs)]
                mean = [m for m, _ in stats]
                ax = axes[gi][pi]
                color = colors[oi % len(colors)]
                ax.plot(epochs, mean, "-", marker="o" if n_epochs < 20 else None, ms=3, color=color,
                        label=f"{op.label} (n={len(runs)})")
                if len(runs) > 1:
                    lo = [m - (s or 0.0) for m, s in stats]
                    hi = [m + (s or 0.0) for m, s in stats]
                    ax.fill_between(epochs, lo, hi, color=color, alpha=0.15, linewidth=0)
        for pi, (_, label) in enumerate(panels):
            ax = axes[gi][pi]
            ax.set(xlabel="epoch", ylabel=label, title=f"{model} on {dataset}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        axes[gi][1].legend(fontsize=7)
    fig.suptitle(f"{study.name}{' / ' + study.variant if study.variant else ''}: mean ± 1 std over seeds "
                 f"({study.schedule})", fontsize=9)
    _save(fig, path)


def plot_error_vs_macs(study: Study, numbers: dict[str, Any], path: Path) -> None:
    """Figure 5: last-epoch test error against MACs, one panel per data set, one series per operator."""
    plt = _plt()
    rows = numbers["rows"]
    datasets = [d for d in study.datasets if any(r["dataset"] == d for r in rows)] or list(study.datasets[:1])
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False,
                             constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for di, dataset in enumerate(datasets):
        ax = axes[0][di]
        for oi, op in enumerate(study.operators):
            pts = sorted((r["macs"], r["mean"], r["std"] or 0.0, r["model"]) for r in rows
                         if r["dataset"] == dataset and r["operator"] == op.key and r["macs"])
            if not pts:
                continue
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="o-", ms=4,
                        capsize=3, color=colors[oi % len(colors)], label=op.label)
            if oi == 0:
                for x, y, _, model in pts:
                    ax.annotate(model, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set(xlabel="MACs per image", ylabel="test error (%), last epoch", title=dataset)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"{study.name}{' / ' + study.variant if study.variant else ''}: error vs MACs "
                 f"({study.schedule})", fontsize=9)
    _save(fig, path)
