"""Training: recipes, the engine, checkpoints, distributed data parallel, and the ``train`` command.

The paper protocols are those of Wang et al., "Multi-Scale Spatially-Asymmetric Recalibration for Image
Classification" (ECCV 2018, arXiv:1804.00787), section 4 (docs/spec.md, section 6). Where things live:

* :mod:`.config`: :class:`TrainConfig`, :data:`RECIPES`, :func:`resolve_config`;
* :mod:`.schedule`: the learning rate as a pure function of the global step;
* :mod:`.engine`: :func:`train_one_epoch`, :func:`evaluate` (plain functions returning metric dicts);
* :mod:`.checkpoint`: atomic :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`model_from_checkpoint`;
* :mod:`.distributed`: DDP set-up from torchrun's environment, reductions;
* :mod:`.runlock`: the run-folder lock (one training process per ``--out``);
* :mod:`.run`: :func:`train` (config -> summary, writing the run folder): setup (:mod:`._setup`), the epoch loop,
  finalisation; :mod:`._outputs` writes the run folder's files, :mod:`._device` resolves the device;
* :mod:`.cli`, :mod:`.cli_eval`, :mod:`.quickstart`: the ``train``, ``eval`` and ``quickstart`` commands.
"""

from __future__ import annotations

from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .config import RECIPES, TrainConfig, resolve_config
from .engine import NonFiniteLossError, evaluate, train_one_epoch
from .run import train
from .schedule import LRSchedule

__all__ = [
    "RECIPES",
    "LRSchedule",
    "NonFiniteLossError",
    "TrainConfig",
    "evaluate",
    "load_checkpoint",
    "model_from_checkpoint",
    "resolve_config",
    "save_checkpoint",
    "train",
    "train_one_epoch",
]
