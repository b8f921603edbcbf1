"""Everything :func:`recalib.train.train` builds before its first step, gathered in one :class:`TrainingRun`.

The device and AMP settings, the data (:class:`Data`), the checkpoint to resume from and the checks that it
fits, the model, SGD with Nesterov momentum and weight decay on every parameter (the papers' choice,
docs/spec.md, section 6), the learning-rate function (:mod:`.schedule`), the compiled / DDP-wrapped model and
the loggers. What changes while the run trains (step, history, best error, ...) is its :class:`RunState`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models.complexity import params_and_macs
from . import distributed
from ._device import describe_device, resolve_amp
from ._outputs import (
    OutputError,
    amp_text,
    remove_run_files,
    run_files_to_remove,
    write_failure,
    write_json,
    write_metrics,
)
from .checkpoint import (
    CHECKPOINT_NAME,
    check_resume_fields,
    load_checkpoint,
    load_model_weights,
    remove_stale_temporaries,
    require_keys,
    restore_rng_state,
)
from .config import TrainConfig, config_diff, parse_model_args
from .loggers import RunLoggers, open_loggers, resolve_loggers
from .schedule import LRSchedule

__all__ = ["Data", "TrainingRun", "RunState", "setup_run"]

_VAL_SPLIT_SEED = 0  # the held-out validation images do not depend on --seed
_RESUME_KEYS = ("config", "epoch", "step", "model", "steps_per_epoch", "optimizer", "scaler", "history",
                "best_test_error", "wall_seconds", "rng")


# ------------------------------------------------------------------------------------------ data ---
class Data:
    """The loaders of one run and what the logs say about them."""

    def __init__(self, train: Any, test: Any, set_epoch: Callable[[int], None], eval_set: str,
                 train_images: int, eval_images: int, source: dict[str, str | None] | None = None) -> None:
        self.train, self.test, self.set_epoch = train, test, set_epoch
        self.eval_set, self.train_images, self.eval_images = eval_set, train_images, eval_images
        self.source = source or {}  # split -> the verified files it was read from (summary.json)


def _build_folder_data(cfg: TrainConfig, info: Any, dinfo: distributed.DistInfo) -> Data:
    from ..data import build_imagenet_loaders

    for name in ("subset", "test_subset", "val_split"):
        if getattr(cfg, name):
            raise ValueError(f"--{name.replace('_', '-')} is only supported for small data sets, not {info.name}")
    if cfg.data_dir is None:
        raise ValueError(f"{info.name} needs --data-dir: the folder holding train/ and val/")
    folder_train, folder_val = build_imagenet_loaders(cfg.data_dir, cfg.batch_size // dinfo.world_size,
                                                      workers=cfg.workers, rank=dinfo.rank,
                                                      world_size=dinfo.world_size, seed=cfg.seed)
    sampler: Any = folder_train.sampler  # a DistributedSampler (has set_epoch)
    return Data(folder_train, folder_val, sampler.set_epoch, "test", len(folder_train.dataset),  # type: ignore[arg-type]
                len(folder_val.dataset), {"train": str(Path(cfg.data_dir).resolve())})  # type: ignore[arg-type]


def build_data(cfg: TrainConfig, info: Any, device: torch.device, dinfo: distributed.DistInfo) -> Data:
    from ..data import DeviceLoader, SmallDataset, load_small

    if info.kind == "folder":
        return _build_folder_data(cfg, info, dinfo)
    if cfg.pad > info.image_size:  # the crops would be mostly zeros, and each batch grows with (side + 2 pad)^2
        raise ValueError(f"--pad {cfg.pad} exceeds the {info.image_size}-pixel side of {info.name}'s images; "
                         "use at most that (the papers use 4 on 32x32 CIFAR)")
    train_set = load_small(info.name, "train", data_dir=cfg.data_dir)
    source = {"train": train_set.source}
    eval_set, eval_name = None, "test"
    if cfg.val_split:
        n = len(train_set)
        if not 0 < cfg.val_split < n:
            raise ValueError(f"val_split must be in [1, {n - 1}] for {info.name}, got {cfg.val_split}")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(_VAL_SPLIT_SEED))  # N
        held, kept = perm[: cfg.val_split].sort().values, perm[cfg.val_split:].sort().values
        eval_set = SmallDataset(train_set.images[held], train_set.labels[held], info, "validation")
        train_set = SmallDataset(train_set.images[kept], train_set.labels[kept], info, "train")
        eval_name = "validation"
    else:
        eval_set = load_small(info.name, "test", data_dir=cfg.data_dir)
        source["test"] = eval_set.source
    if cfg.subset:
        train_set = train_set.subset(cfg.subset, seed=cfg.seed)
    if cfg.test_subset:
        eval_set = eval_set.subset(cfg.test_subset, seed=0)
    per_rank, rank, world, cl = cfg.batch_size // dinfo.world_size, dinfo.rank, dinfo.world_size, cfg.channels_last
    train = DeviceLoader(train_set, per_rank, train=True, device=device, seed=cfg.seed, pad=cfg.pad, flip=cfg.flip,
                         rank=rank, world_size=world, channels_last=cl)
    test = DeviceLoader(eval_set, cfg.eval_batch_size, train=False, device=device, rank=rank, world_size=world,
                        channels_last=cl)
    if len(train) == 0:
        raise ValueError(
            f"{len(train_set)} training images give no whole batch of {cfg.batch_size}; lower --batch-size"
        )
    return Data(train, test, train.set_epoch, eval_name, len(train_set), len(eval_set), source)


# ------------------------------------------------------------------------------------ run state ---
@dataclass
class RunState:
    """What changes while a run trains; a resumed run starts from its checkpoint's values."""

    session_start: float  # time.perf_counter() when this process started the run
    start_epoch: int = 0
    step: int = 0  # global optimizer steps done
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per finished epoch
    best: float = float("inf")  # best test error so far
    wall_before: float = 0.0  # seconds spent by earlier sessions of a resumed run
    rank_checks: int = 0  # rank-consistency checks passed (``check_ranks``)
    checkpointed: int = 0  # epochs the checkpoint on disk holds (what an interrupted run resumes from)
    resumed_complete: bool = False  # resumed a run with nothing left to train: no file is rewritten

    @property
    def trains(self) -> bool:
        """Whether this session trains (a resumed complete run does not, and rewrites nothing)."""
        return not self.resumed_complete

    def wall_seconds(self) -> float:
        return self.wall_before + time.perf_counter() - self.session_start


@dataclass
class TrainingRun:
    """One training run as :func:`setup_run` built it: configuration, data, model, optimizer, outputs."""

    cfg: TrainConfig
    info: Any  # recalib.data.DatasetInfo
    device: torch.device
    dinfo: distributed.DistInfo
    log: Callable[[str], None]  # prints on rank 0, nothing elsewhere
    data: Data
    raw: nn.Module  # unwrapped, uncompiled: what checkpoints hold
    compiled: nn.Module  # what evaluation runs
    train_model: nn.Module  # compiled, and wrapped in DDP when distributed
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    schedule: LRSchedule
    amp_dtype: torch.dtype | None
    params: int
    macs: int | None
    state: RunState
    loggers: RunLoggers
    device_text: str = ""

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)

    @property
    def ckpt_path(self) -> Path:
        return self.out / CHECKPOINT_NAME

    @property
    def title(self) -> str:
        return f"{self.cfg.model} + {self.cfg.recalib} on {self.info.name} ({self.cfg.recipe})"

    @property
    def steps_per_epoch(self) -> int:
        return len(self.data.train)


# ---------------------------------------------------------------------------------------- setup ---
def _check_config(cfg: TrainConfig, device: torch.device, dinfo: distributed.DistInfo) -> None:
    if cfg.batch_size % dinfo.world_size:
        raise ValueError(
            f"batch_size {cfg.batch_size} (global) is not divisible by the {dinfo.world_size} processes; "
            f"use a multiple of {dinfo.world_size}"
        )
    if cfg.sync_bn and device.type != "cuda":
        raise ValueError(f"--sync-bn needs CUDA devices (SyncBatchNorm has no CPU kernels), got device {device}")


def _open_checkpoint(cfg: TrainConfig, *, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from (None: a new run), after checking that the folder may be used."""
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT_NAME
    if ckpt_path.exists() and resume:
        ckpt = load_checkpoint(ckpt_path)
        require_keys(ckpt, _RESUME_KEYS, ckpt_path)
        check_resume_fields(ckpt, ckpt_path)
        diff = config_diff(TrainConfig.from_dict(ckpt["config"]), cfg)
        if diff:
            details = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(
                f"cannot resume {ckpt_path}: the configuration differs ({details}). Resume with the run's own "
                f"settings (they are in {out / 'config.json'}) or start a new run in another --out"
            )
        return ckpt
    if ckpt_path.exists() and not overwrite:
        raise ValueError(
            f"{out} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, --overwrite to "
            "start it over, or choose another --out"
        )
    return None


def _build_model(cfg: TrainConfig, info: Any, device: torch.device,
                 dinfo: distributed.DistInfo) -> tuple[nn.Module, int, int | None]:
    """The model on ``device`` and its (params, MACs per image), counted before it moves."""
    from ..models import create_model
    from ..models._common import paired_init

    model = create_model(cfg.model, num_classes=info.num_classes, in_chans=info.in_chans,
                         recalib=cfg.recalib, **parse_model_args(cfg.model_args))
    if cfg.init == "paired":  # the backbone's weights depend on the seed only (TrainConfig.init)
        paired_init(model, cfg.seed)
    params, macs = params_and_macs(model, (1, info.in_chans, info.image_size, info.image_size))
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and dinfo.enabled:  # same Parameters and state-dict keys, synchronised statistics
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, params, macs


def _restore(ckpt: dict[str, Any], ckpt_path: Path, state: RunState, model: nn.Module,
             optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, steps_per_epoch: int,
             dinfo: distributed.DistInfo) -> None:
    """Load the checkpoint's weights, optimizer, scaler, progress and this rank's RNG states."""
    if ckpt["steps_per_epoch"] != steps_per_epoch:
        raise ValueError(
            f"cannot resume {ckpt_path}: it has {ckpt['steps_per_epoch']} steps per epoch, this run "
            f"{steps_per_epoch} (different data or batch size)"
        )
    load_model_weights(model, ckpt["model"], ckpt_path)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"cannot resume {ckpt_path}: its optimizer state does not fit the model "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    state.start_epoch, state.step, state.history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
    state.best, state.wall_before = ckpt["best_test_error"], ckpt["wall_seconds"]
    state.checkpointed = state.start_epoch
    rngs = ckpt["rng"]
    try:
        restore_rng_state(rngs[dinfo.rank] if len(rngs) == dinfo.world_size else rngs[0])
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RuntimeError) as exc:
        raise ValueError(f"cannot resume {ckpt_path}: its generator states (rng) are malformed "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def _wrap(cfg: TrainConfig, model: nn.Module, device: torch.device, dinfo: distributed.DistInfo,
          log: Callable[[str], None]) -> tuple[nn.Module, nn.Module]:
    """(compiled, train_model): ``model`` under ``torch.compile`` if asked, then in DDP when distributed."""
    if cfg.compile and device.type == "cpu":
        log("warning: --compile on CPU: torch.compile's training step can be slower than eager there, much slower "
            "with channels_last (docs/performance.md); measure before relying on it")
    compiled: nn.Module = torch.compile(model) if cfg.compile else model  # type: ignore[assignment]
    train_model: nn.Module = compiled
    if dinfo.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(compiled, device_ids=[device.index] if device.type == "cuda" else None)
    return compiled, train_model


def _start_outputs(run: TrainingRun, logger_names: list[str], logger_notice: str | None, resumed: bool) -> None:
    """Rank 0 writes ``config.json`` and ``metrics.jsonl`` and opens the loggers (unless a complete run was resumed:
    then nothing is rewritten); every rank logs the start."""
    cfg, out = run.cfg, run.out
    if run.dinfo.is_main and run.state.trains:
        try:
            write_json(out / "config.json", cfg.to_dict())
            write_metrics(out / "metrics.jsonl", run.state.history)
        except OSError as exc:
            raise OutputError(write_failure(Path(exc.filename or out), exc, "nothing was trained yet")) from None
        for line in (logger_notice or "").splitlines():
            run.log(f"recalib train: {line}")
        run.loggers = open_loggers(logger_names, out, cfg.to_dict(),
                                   resumed_step=run.state.step + 1 if resumed else None,
                                   log_every=cfg.log_every, eval_set=run.data.eval_set)
    run.device_text = describe_device(run.device)
    macs = run.macs
    run.log(
        f"recalib train: {run.title}; {cfg.epochs} epochs x {run.steps_per_epoch} steps, batch {cfg.batch_size} "
        f"over {run.dinfo.world_size} process(es), {run.data.train_images} training / {run.data.eval_images} "
        f"{run.data.eval_set} images; {run.params / 1e6:.3f}M params, "
        + (f"{macs / 1e6:.1f}M MACs" if macs is not None else "MACs n/a")
        + f"; {run.device_text}; amp {amp_text(run.amp_dtype)}; out {out}"
    )


def setup_run(cfg: TrainConfig, device: torch.device, dinfo: distributed.DistInfo, *, resume: bool,
              overwrite: bool) -> TrainingRun:
    """Check ``cfg``, decide new run or resume, build data, model and optimizer; delete an overwritten run's files
    only once all of that succeeded; write ``config.json`` and open the loggers."""
    from ..data import get_dataset_info

    state = RunState(session_start=time.perf_counter())
    main = dinfo.is_main
    log: Callable[[str], None] = (lambda msg: print(msg, flush=True)) if main else (lambda msg: None)
    info = get_dataset_info(cfg.dataset)
    _check_config(cfg, device, dinfo)
    out = Path(cfg.out)
    logger_names, logger_notice = resolve_loggers(cfg.logger, cfg.tensorboard, out)  # before anything is written
    ckpt = _open_checkpoint(cfg, resume=resume, overwrite=overwrite)
    if main and ckpt is None and overwrite:
        run_files_to_remove(out)  # what --overwrite will delete can be deleted: checked before anything is built
    if main:
        remove_stale_temporaries(out)  # left by a killed process: this one holds the folder's lock
    if resume and ckpt is None:
        log(f"no checkpoint in {out}: starting a new run")

    amp_dtype = resolve_amp(cfg.amp, device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)

    data = build_data(cfg, info, device, dinfo)
    model, params, macs = _build_model(cfg, info, device, dinfo)
    steps_per_epoch = len(data.train)
    schedule = LRSchedule.from_config(cfg, steps_per_epoch)  # the one source of the learning rate
    # The engine sets every group's rate to schedule(step) before each step; this is the first step's.
    optimizer = torch.optim.SGD(model.parameters(), lr=schedule(0), momentum=cfg.momentum, nesterov=cfg.nesterov,
                                weight_decay=cfg.wd)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if ckpt is not None:
        _restore(ckpt, out / CHECKPOINT_NAME, state, model, optimizer, scaler, steps_per_epoch, dinfo)
        state.resumed_complete = state.start_epoch >= cfg.epochs
        log(f"resumed {out / CHECKPOINT_NAME} at epoch {state.start_epoch}, step {state.step}")

    if main and ckpt is None and overwrite:  # the new configuration, data and model are valid: now delete
        remove_run_files(out)
    distributed.barrier()

    compiled, train_model = _wrap(cfg, model, device, dinfo, log)
    run = TrainingRun(cfg=cfg, info=info, device=device, dinfo=dinfo, log=log, data=data, raw=model, compiled=compiled,
              train_model=train_model, optimizer=optimizer, scaler=scaler, schedule=schedule, amp_dtype=amp_dtype,
              params=params, macs=macs, state=state, loggers=RunLoggers([], 0))
    _start_outputs(run, logger_names, logger_notice, resumed=ckpt is not None)
    return run
