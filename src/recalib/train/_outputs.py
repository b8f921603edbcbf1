"""What a run writes into its folder besides the checkpoint: ``config.json``, ``metrics.jsonl``,
``summary.json``, ``curves.png``, and the one-line message when a write fails (:class:`OutputError`).

The checkpoint itself is written by :mod:`.checkpoint`; the order of the writes (checkpoint first, then the
epoch's line of ``metrics.jsonl``) is :mod:`.run`'s.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write, write_json_atomic, write_text_atomic
from .._optional import MissingExtraError, require
from .._provenance import git_commit, library_versions
from .checkpoint import CHECKPOINT_NAME, remove_stale_temporaries

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._setup import TrainingRun

__all__ = ["RUN_FILES", "OutputError"]

#: What a run writes into its output folder (``tb`` is a folder).
RUN_FILES = ("config.json", "metrics.jsonl", CHECKPOINT_NAME, "summary.json", "curves.png", "tb")


class OutputError(RuntimeError):
    """Writing into the run folder failed (a full disk, a lost mount, permissions); what it held is intact."""


def write_failure(path: Path, exc: OSError, state: str) -> str:
    """One line: what could not be written, why, what the run folder still holds and what to do."""
    return (f"cannot write {path}: {exc.strerror or exc}; training stopped and {state}. Free space (or fix the "
            "folder) and rerun with --resume")


def write_json(path: Path, obj: Any) -> None:
    write_json_atomic(path, obj, default=str)


def write_metrics(path: Path, history: Iterable[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(rec) + "\n" for rec in history))


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def curves_figure(history: list[dict[str, Any]], title: str, eval_name: str) -> Figure:
    """Loss, top-1/top-5 error and learning rate against epochs: three titled panels, one legend.

    Raises :class:`~recalib._optional.MissingExtraError` without matplotlib (the ``plots`` extra).
    """
    figure = require("matplotlib.figure", "plots", "curves.png")
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    fig = figure.Figure(figsize=(12, 3.8), layout="constrained")
    ax_loss, ax_err, ax_lr = fig.subplots(1, 3, width_ratios=(1, 1, 0.7))
    marker = "o" if len(epochs) < 40 else None
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "-", marker=marker, ms=3, color="C0", label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in history], "-", marker=marker, ms=3, color="C1", label=eval_name)
    ax_err.plot(epochs, [r["train_error"] for r in history], "-", marker=marker, ms=3, color="C0")
    ax_err.plot(epochs, [r["test_error"] for r in history], "-", marker=marker, ms=3, color="C1")
    ax_err.plot(epochs, [r["test_top5_error"] for r in history], "--", marker=marker, ms=3, color="C1",
                alpha=0.6, label=f"{eval_name} top-5 error")
    ax_lr.plot(epochs, [r["lr"] for r in history], "-", marker=marker, ms=3, color="0.3")
    last = history[-1]
    best = min(history, key=lambda r: r["test_error"])
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_err.set(xlabel="epoch", ylabel="error (%)",
               title=f"top-1 error: {eval_name} {last['test_error']:.2f} % at the end, best {best['test_error']:.2f} "
                     f"% (epoch {best['epoch']})")
    ax_err.title.set_fontsize(9)
    ax_lr.set(xlabel="epoch", ylabel="learning rate", title="learning rate (last step of each epoch)")
    ax_lr.title.set_fontsize(9)
    for ax in (ax_loss, ax_err, ax_lr):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.legend(loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle(title)
    return fig


def plot_curves(history: list[dict[str, Any]], path: Path, title: str, eval_name: str) -> bool:
    """:func:`curves_figure` as a PNG, written atomically; ``False`` (nothing written) without matplotlib (the
    ``plots`` extra): a run does not need its picture."""
    try:
        fig = curves_figure(history, title, eval_name)
    except MissingExtraError:
        return False
    with atomic_write(path, "wb") as f:
        fig.savefig(f, dpi=100, format="png")
    return True


def run_files_to_remove(out: Path) -> list[Path]:
    """The previous run's files in ``out`` that ``--overwrite`` deletes, after checking that every one can be:
    ``ValueError`` (before anything is deleted) for a folder where a file belongs or a folder that cannot be
    written. A symbolic link (``tb`` included) is removed itself, never its target."""
    present = [out / name for name in RUN_FILES if os.path.lexists(out / name)]
    folders = [out]
    for p in present:
        if p.is_dir() and not p.is_symlink():
            if p.name != "tb":
                raise ValueError(f"cannot start over in {out}: {p} is a folder, not the run's {p.name}; move it "
                                 "away and retry")
            folders += [Path(root) for root, _, _ in os.walk(p)]  # links inside are not followed
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"cannot start over in {out}: {folder} is not writable, so the previous run's files "
                             "cannot be deleted; fix its permissions or choose another --out")
    return present


def remove_run_files(out: Path) -> None:
    """Delete the previous run's files (:func:`run_files_to_remove` checks them all first)."""
    for p in run_files_to_remove(out):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    remove_stale_temporaries(out)


def amp_text(amp_dtype: Any) -> str:
    return str(amp_dtype).replace("torch.", "") if amp_dtype else "off"


def summary(run: TrainingRun, status: str, message: str | None = None) -> dict[str, Any]:
    """The content of ``summary.json`` for ``run`` as it stands."""
    cfg, st, data = run.cfg, run.state, run.data
    last = st.history[-1] if st.history else {}
    best_rec = min(st.history, key=lambda r: r["test_error"]) if st.history else {}
    return {
        "status": status,
        "message": message,
        "model": cfg.model,
        "recalib": cfg.recalib,
        "dataset": run.info.name,
        "data_source": data.source,
        "recipe": cfg.recipe,
        "final_test_error": last.get("test_error"),
        "final_test_top5_error": last.get("test_top5_error"),
        "final_test_loss": last.get("test_loss"),
        "best_test_error": best_rec.get("test_error"),
        "best_epoch": best_rec.get("epoch"),
        "eval_set": data.eval_set,
        "test_images": last.get("test_images", data.eval_images),
        "train_images": data.train_images,
        "params": run.params,
        "macs": run.macs,
        "wall_seconds": st.wall_before + time.perf_counter() - st.session_start,
        "device": run.device_text,
        "world_size": run.dinfo.world_size,
        "amp": amp_text(run.amp_dtype),
        "versions": library_versions(),
        "git_commit": git_commit() if run.dinfo.is_main else None,
        "epochs_completed": len(st.history),
        "steps": st.step,
        "rank_checks": st.rank_checks if cfg.check_ranks else None,
        # The files the folder holds (curves.png only where matplotlib drew it); summary.json is being written.
        "files": {name: str(run.out / name) for name in RUN_FILES
                  if name != "tb" and (name == "summary.json" or (run.out / name).exists())},
        "config": cfg.to_dict(),
    }
