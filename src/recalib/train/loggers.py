"""Experiment tracking: TensorBoard, Weights & Biases and MLflow behind one small interface.

``--logger`` takes a comma-separated list (``tensorboard,wandb``), ``none``, or ``auto`` (the default):

* ``auto``: TensorBoard when it is installed (it is in the ``all`` extra); when it is not, the run says so in
  one line at the start (it never silently logs nothing). The deprecated ``--no-tensorboard`` turns ``auto``
  off, as it did before ``--logger`` existed.
* a logger asked for by name that is not installed is a ``ValueError`` naming the extra to install
  (``pip install 'recalib[wandb]'``), raised before anything is written.

What is logged, on rank 0 only, against the global optimizer step (as Lightning and timm do):

* every ``log_every`` steps: ``step/train_loss`` (the loss of that step) and ``step/lr``;
* after every epoch: ``train/loss``, ``train/error``, ``<eval set>/loss``, ``<eval set>/error``,
  ``<eval set>/top5_error`` (errors in %), ``lr``, ``images_per_s`` and ``epoch``.

Where: TensorBoard event files in ``<out>/tb`` (``tensorboard --logdir runs``); W&B under ``<out>/wandb``, in the
project ``$WANDB_PROJECT`` (default ``recalib``), online or offline as ``$WANDB_MODE`` says; MLflow in the tracking
store ``$MLFLOW_TRACKING_URI`` (MLflow's default otherwise), experiment ``$MLFLOW_EXPERIMENT_NAME`` (default
``recalib``), with the configuration as parameters. The W&B and MLflow run ids are kept in
``<out>/loggers.json``, so ``--resume`` continues the same tracked run; the per-step reading of the loss costs
one host synchronisation per ``log_every`` steps.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

__all__ = ["LOGGERS", "LOGGER_IDS", "RunLoggers", "open_loggers", "parse_loggers", "resolve_loggers"]

LOGGERS = ("tensorboard", "wandb", "mlflow")
#: Where the W&B / MLflow run ids of a run folder are kept (for --resume).
LOGGER_IDS = "loggers.json"
_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


class _Backend(Protocol):
    def log(self, scalars: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def parse_loggers(text: str) -> list[str]:
    """``"tensorboard,wandb"`` -> ``["tensorboard", "wandb"]``; ``"none"`` -> ``[]``; ``"auto"`` -> ``["auto"]``."""
    names = [n.strip().lower() for n in text.replace(";", ",").split(",") if n.strip()]
    valid = ("auto", "none", *LOGGERS)
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise ValueError(f"logger must be a comma-separated list of {', '.join(valid)}; got {text!r}")
    if len(names) > 1 and ({"auto", "none"} & set(names)):
        raise ValueError(f"logger: 'auto' and 'none' stand alone, got {text!r}")
    return [] if names == ["none"] else list(dict.fromkeys(names))


def _installed(name: str) -> bool:
    return importlib.util.find_spec(_PACKAGES[name]) is not None


def resolve_loggers(logger: str, tensorboard: bool = True) -> tuple[list[str], str | None]:
    """The loggers a run will use and, for ``auto`` without TensorBoard, the notice to print.

    Raises ``ValueError`` for an unknown name or a named logger whose package is not installed.
    """
    names = parse_loggers(logger)
    if names == ["auto"]:
        if not tensorboard:
            return [], None
        if _installed("tensorboard"):
            return ["tensorboard"], None
        return [], ("TensorBoard is not installed, so this run writes no event files: pip install "
                    "'recalib[tensorboard]' (or pass --logger none to silence this)")
    missing = [n for n in names if not _installed(n)]
    if missing:
        raise ValueError(f"--logger {','.join(missing)} needs the {', '.join(_PACKAGES[n] for n in missing)} "
                         f"package: pip install " + " ".join(f"'recalib[{n}]'" for n in missing))
    return names, None


class _TensorBoard:
    def __init__(self, folder: Path, purge_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _Wandb:
    def __init__(self, out: Path, config: Mapping[str, Any], run_id: str | None) -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "recalib"), name=out.name, dir=str(out),
                              config=dict(config), id=run_id, resume="allow" if run_id else None)
        self.id = self.run.id

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self.run.log(dict(scalars), step=step)

    def close(self) -> None:
        self.run.finish()


class _MLflow:
    def __init__(self, out: Path, config: Mapping[str, Any], run_id: str | None) -> None:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient

        self.metric = Metric
        self.client = MlflowClient()  # $MLFLOW_TRACKING_URI, or MLflow's default store
        if run_id is None:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "recalib")
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            run_id = self.client.create_run(experiment_id, run_name=out.name).info.run_id
            self.client.log_batch(run_id, params=[Param(k, json.dumps(v)[:500]) for k, v in sorted(config.items())])
        self.id = run_id

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.id, metrics=[self.metric(k, float(v), now, step)
                                                for k, v in scalars.items()])

    def close(self) -> None:
        self.client.set_terminated(self.id)


class RunLoggers:
    """The loggers of one run: ``on_loss`` per step, ``log_epoch`` per epoch, ``close`` at the end."""

    def __init__(self, backends: list[_Backend], log_every: int, lr_at: Callable[[int], float]) -> None:
        self.backends, self.log_every, self.lr_at = backends, log_every, lr_at

    def __bool__(self) -> bool:
        return bool(self.backends)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        for backend in self.backends:
            backend.log(scalars, step)

    def on_loss(self, step: int, loss: torch.Tensor) -> None:
        """Called after every optimizer step with the new global step and that step's (device) loss."""
        if self.backends and self.log_every and step % self.log_every == 0:
            self.log({"step/train_loss": float(loss), "step/lr": self.lr_at(step - 1)}, step)

    def log_epoch(self, record: Mapping[str, Any], eval_set: str) -> None:
        scalars = {"train/loss": record["train_loss"], "train/error": record["train_error"],
                   f"{eval_set}/loss": record["test_loss"], f"{eval_set}/error": record["test_error"],
                   f"{eval_set}/top5_error": record["test_top5_error"], "lr": record["lr"],
                   "images_per_s": record["images_per_s"], "epoch": record["epoch"]}
        self.log(scalars, int(record["step"]))

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
        self.backends = []


def open_loggers(names: list[str], out: Path, config: Mapping[str, Any], *, resumed_step: int | None,
                 log_every: int, lr_at: Callable[[int], float]) -> RunLoggers:
    """Start the ``names`` loggers for the run in ``out`` (rank 0 only); ``resumed_step`` is the checkpoint's step."""
    ids_path = out / LOGGER_IDS
    ids: dict[str, str] = json.loads(ids_path.read_text()) if resumed_step is not None and ids_path.is_file() else {}
    backends: list[_Backend] = []
    for name in names:
        if name == "tensorboard":
            backends.append(_TensorBoard(out / "tb", purge_step=resumed_step))
        elif name == "wandb":
            wb = _Wandb(out, config, ids.get("wandb"))
            ids["wandb"] = wb.id
            backends.append(wb)
        elif name == "mlflow":
            ml = _MLflow(out, config, ids.get("mlflow"))
            ids["mlflow"] = ml.id
            backends.append(ml)
    if set(ids) & {"wandb", "mlflow"}:
        tmp = ids_path.with_name(f".{ids_path.name}.tmp")
        tmp.write_text(json.dumps(ids, indent=2) + "\n")
        os.replace(tmp, ids_path)
    return RunLoggers(backends, log_every, lr_at)
