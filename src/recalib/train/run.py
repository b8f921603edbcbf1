"""``train(config) -> summary``: one training run, from data to ``summary.json``.

Orchestrates the pieces of this package: resolves the device and the process group
(:mod:`.distributed`), builds the data (``recalib.data``), the model (``recalib.models.create_model``),
SGD with Nesterov momentum and weight decay on every parameter (the papers' choice, docs/spec.md, section 6), the
learning-rate function (:mod:`.schedule`), then loops over epochs with :func:`.engine.train_one_epoch` and
:func:`.engine.evaluate`. Rank 0 writes, into ``config.out``:

* ``config.json``: the resolved :class:`TrainConfig`;
* ``metrics.jsonl``: one JSON object per epoch (epoch, step, lr, train loss/error, test loss, top-1/top-5
  error in %, seconds, images/s, eval seconds);
* ``checkpoint.pt``: at the end of every epoch, atomically (:mod:`.checkpoint`), before the epoch's line of
  ``metrics.jsonl`` and only if the weights, buffers and evaluation loss are finite;
* ``.lock``: held while the run trains (:mod:`.runlock`), so that no second process trains in the folder;
* ``summary.json``: final and best test error, params, MACs, wall time, device, versions, git commit;
* ``curves.png``: loss and error against epochs; ``tb/``, ``wandb/``, ``loggers.json``: what the ``--logger``
  trackers write (:mod:`.loggers`).

Resuming (``resume=True``) reloads model, optimizer, scaler, step, history and every RNG state from the
checkpoint; since the learning rate is a function of the step and the data order a function of
``(seed, epoch)``, the resumed run is bit-identical on the CPU to one that was never interrupted.
With ``val_split > 0`` the "test" metrics are measured on images held out of the training set (the same
images for every seed), which is how recipes are tuned without looking at the test set.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._io import atomic_write, write_json_atomic, write_text_atomic
from .._provenance import git_commit, library_versions
from .._spec import spec_or_none
from ..analysis.complexity import complexity
from . import distributed
from .checkpoint import (
    CHECKPOINT_NAME,
    FORMAT_VERSION,
    capture_rng_state,
    load_checkpoint,
    load_model_weights,
    remove_stale_temporaries,
    require_keys,
    restore_rng_state,
    save_checkpoint,
)
from .config import TrainConfig, config_diff, parse_model_args
from .engine import NonFiniteLossError, evaluate, train_one_epoch
from .loggers import RunLoggers, open_loggers, resolve_loggers
from .runlock import RunLock, RunLockedError
from .schedule import LRSchedule

__all__ = ["RUN_FILES", "OutputError", "resolve_amp", "resolve_device", "train"]

#: What a run writes into its output folder (``tb`` is a folder).
RUN_FILES = ("config.json", "metrics.jsonl", CHECKPOINT_NAME, "summary.json", "curves.png", "tb")
_VAL_SPLIT_SEED = 0  # the held-out validation images do not depend on --seed
_SYNC_EVERY = 100  # steps between non-finite checks (one host sync each)
_RESUME_KEYS = ("config", "epoch", "step", "model", "steps_per_epoch", "optimizer", "scaler", "history",
                "best_test_error", "wall_seconds", "rng")


# ------------------------------------------------------------------------------------- device ---
def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` if CUDA is available, else ``mps``, else ``cpu``; checks availability."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting on ``device`` (None: float32)."""
    if mode == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[mode]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        model = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return f"cpu ({model}, {torch.get_num_threads()} threads)"
    return str(device)


# ------------------------------------------------------------------------------------------ data ---
class _Data:
    """The loaders of one run and what the logs say about them."""

    def __init__(self, train: Any, test: Any, set_epoch: Callable[[int], None], eval_set: str,
                 train_images: int, eval_images: int, source: dict[str, str | None] | None = None) -> None:
        self.train, self.test, self.set_epoch = train, test, set_epoch
        self.eval_set, self.train_images, self.eval_images = eval_set, train_images, eval_images
        self.source = source or {}  # split -> the verified files it was read from (summary.json)


def _build_data(cfg: TrainConfig, info: Any, device: torch.device, dinfo: distributed.DistInfo) -> _Data:
    from ..data import DeviceLoader, SmallDataset, build_imagenet_loaders, load_small

    per_rank = cfg.batch_size // dinfo.world_size
    if info.kind == "folder":
        for name in ("subset", "test_subset", "val_split"):
            if getattr(cfg, name):
                raise ValueError(f"--{name.replace('_', '-')} is only supported for small data sets, not {info.name}")
        if cfg.data_dir is None:
            raise ValueError(f"{info.name} needs --data-dir: the folder holding train/ and val/")
        folder_train, folder_val = build_imagenet_loaders(cfg.data_dir, per_rank, workers=cfg.workers,
                                                          rank=dinfo.rank, world_size=dinfo.world_size, seed=cfg.seed)
        sampler: Any = folder_train.sampler  # a DistributedSampler (has set_epoch)
        return _Data(folder_train, folder_val, sampler.set_epoch, "test", len(folder_train.dataset),  # type: ignore[arg-type]
                     len(folder_val.dataset), {"train": str(Path(cfg.data_dir).resolve())})  # type: ignore[arg-type]

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
    rank, world, cl = dinfo.rank, dinfo.world_size, cfg.channels_last
    train = DeviceLoader(train_set, per_rank, train=True, device=device, seed=cfg.seed, pad=cfg.pad, flip=cfg.flip,
                         rank=rank, world_size=world, channels_last=cl)
    test = DeviceLoader(eval_set, cfg.eval_batch_size, train=False, device=device, rank=rank, world_size=world,
                        channels_last=cl)
    if len(train) == 0:
        raise ValueError(
            f"{len(train_set)} training images give no whole batch of {cfg.batch_size}; lower --batch-size"
        )
    return _Data(train, test, train.set_epoch, eval_name, len(train_set), len(eval_set), source)


# ------------------------------------------------------------------------------------- outputs ---
class OutputError(RuntimeError):
    """Writing into the run folder failed (a full disk, a lost mount, permissions); what it held is intact."""


def _write_failure(path: Path, exc: OSError, state: str) -> str:
    """One line: what could not be written, why, what the run folder still holds and what to do."""
    return (f"cannot write {path}: {exc.strerror or exc}; training stopped and {state}. Free space (or fix the "
            "folder) and rerun with --resume")


def _write_json(path: Path, obj: Any) -> None:
    write_json_atomic(path, obj, default=str)


def _write_metrics(path: Path, history: Iterable[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(rec) + "\n" for rec in history))


def _plot_curves(history: list[dict[str, Any]], path: Path, title: str, eval_name: str) -> None:
    """Loss and top-1 error against epochs, train and test, as a PNG (matplotlib's Agg backend)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in history], "s-", label=eval_name)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_err.plot(epochs, [r["train_error"] for r in history], "o-", label="train")
    ax_err.plot(epochs, [r["test_error"] for r in history], "s-", label=f"{eval_name} top-1")
    ax_err.plot(epochs, [r["test_top5_error"] for r in history], "^--", label=f"{eval_name} top-5")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error")
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, dpi=100, format="png")
    finally:
        plt.close(fig)


def _progress_bar(enabled: bool, total: int, desc: str) -> Any:
    if not (enabled and sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)


def _remove_run_files(out: Path) -> None:
    for name in RUN_FILES:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    remove_stale_temporaries(out)


# ---------------------------------------------------------------------------------------- model ---
def _complexity(model: nn.Module, input_size: tuple[int, int, int, int]) -> tuple[int, int | None]:
    """(params, MACs per image) of a CPU copy of ``model`` in eval mode (its BN statistics stay untouched)."""
    probe = copy.deepcopy(model).cpu().eval()
    stats = complexity(probe, input_size)
    return int(stats["params"]), int(stats["macs"])


def _first_non_finite(model: nn.Module, eval_loss: float) -> str | None:
    """What is NaN or infinite among ``model``'s parameters, buffers and the evaluation loss (None: nothing).

    Checked before every checkpoint, so that a blow-up on an epoch's last step (after the loss was last
    checked) never replaces the last good checkpoint with NaN weights.
    """
    tensors: list[tuple[str, torch.Tensor]] = [(f"the parameter {n}", t) for n, t in model.named_parameters()]
    tensors += [(f"the buffer {n}", t) for n, t in model.named_buffers() if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t.detach()).all() for _, t in tensors])  # T, on the device
    if not bool(finite.all()):  # one host synchronisation per epoch
        return tensors[int((~finite).nonzero()[0])][0]
    if not math.isfinite(eval_loss):
        return "the evaluation loss"
    return None


# ---------------------------------------------------------------------------------------- train ---
def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Run ``config``; return the summary (also written to ``config.out/summary.json`` by rank 0).

    Args:
        config: the resolved configuration (:func:`recalib.train.resolve_config`).
        resume: continue from ``config.out/checkpoint.pt`` if it exists (a new run otherwise). The checkpoint's
            config must match ``config`` except for the run-time fields
            (:data:`~recalib.train.config.RUNTIME_FIELDS`: device, threads, out, ...).
        overwrite: delete a previous run's files in ``config.out`` and start afresh. Without ``resume`` or
            ``overwrite``, a folder that already holds a checkpoint is a ``ValueError``.

    Raises:
        ValueError: bad configuration (unknown model/data set, batch not divisible by the world size,
            ``sync_bn`` off CUDA, resume with a different config, ...); ``RunLockedError`` (a ``ValueError``)
            when another process trains in ``config.out`` (:mod:`.runlock`).
        NonFiniteLossError: the loss, the weights or the evaluation loss became NaN or infinite; the last good
            checkpoint is left in place (a checkpoint is only written when all are finite).
        OutputError: writing into ``config.out`` failed (e.g. a full disk); the previous checkpoint is intact.
        PeerTimeoutError: another process did not answer within ``config.dist_timeout`` seconds.
    """
    resolve_loggers(config.logger, config.tensorboard)  # a tracker that is not installed: an error before any write
    _, _, local_rank, _ = distributed.env_world()
    device = resolve_device(config.device, local_rank)
    dinfo = distributed.setup(device, timeout=config.dist_timeout)
    try:
        lock = _lock_run_folder(Path(config.out), dinfo)
        try:
            return _train(config, device, dinfo, resume=resume, overwrite=overwrite)
        except RuntimeError as exc:
            timed_out = distributed.as_peer_timeout(exc, config.dist_timeout) if dinfo.enabled else None
            if timed_out is None:
                raise
            raise timed_out from exc
        finally:
            if lock is not None:
                lock.release()
    finally:
        distributed.cleanup(dinfo)


def _lock_run_folder(out: Path, dinfo: distributed.DistInfo) -> RunLock | None:
    """Rank 0 takes the run folder's lock (:mod:`.runlock`); every rank learns whether it could."""
    lock, error = None, None
    if dinfo.is_main:
        try:
            lock = RunLock(out).acquire()
        except ValueError as exc:  # RunLockedError included
            error = exc
        except OSError as exc:  # e.g. no permission to create the folder
            error = ValueError(f"cannot use --out {out}: {exc.strerror or exc}")
    messages = distributed.all_gather_object(None if error is None else str(error))
    if error is not None:
        raise error
    if messages[0] is not None:
        raise RunLockedError(messages[0])
    return lock


def _train(cfg: TrainConfig, device: torch.device, dinfo: distributed.DistInfo, *, resume: bool,
           overwrite: bool) -> dict[str, Any]:
    from ..data import get_dataset_info
    from ..models import create_model

    session_start = time.perf_counter()
    main = dinfo.is_main
    log: Callable[[str], None] = (lambda msg: print(msg, flush=True)) if main else (lambda msg: None)
    info = get_dataset_info(cfg.dataset)
    if cfg.batch_size % dinfo.world_size:
        raise ValueError(
            f"batch_size {cfg.batch_size} (global) is not divisible by the {dinfo.world_size} processes; "
            f"use a multiple of {dinfo.world_size}"
        )
    if cfg.sync_bn and device.type != "cuda":
        raise ValueError(f"--sync-bn needs CUDA devices (SyncBatchNorm has no CPU kernels), got device {device}")
    logger_names, logger_notice = resolve_loggers(cfg.logger, cfg.tensorboard)  # before anything is written

    # ---- output folder and resume decision ----
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt: dict[str, Any] | None = None
    if ckpt_path.exists() and resume:
        ckpt = load_checkpoint(ckpt_path)
        require_keys(ckpt, _RESUME_KEYS, ckpt_path)
        diff = config_diff(TrainConfig.from_dict(ckpt["config"]), cfg)
        if diff:
            details = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(
                f"cannot resume {ckpt_path}: the configuration differs ({details}). Resume with the run's own "
                f"settings (they are in {out / 'config.json'}) or start a new run in another --out"
            )
    elif ckpt_path.exists() and not overwrite:
        raise ValueError(
            f"{out} already holds a run ({CHECKPOINT_NAME}); pass --resume to continue it, --overwrite to "
            "start it over, or choose another --out"
        )
    if main:
        remove_stale_temporaries(out)  # left by a killed process: this one holds the folder's lock
    if resume and ckpt is None:
        log(f"no checkpoint in {out}: starting a new run")

    # ---- runtime settings ----
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or max(1, _cpu_count() // dinfo.local_world_size))
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    amp_dtype = resolve_amp(cfg.amp, device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)

    # ---- data and model ----
    data = _build_data(cfg, info, device, dinfo)
    model = create_model(cfg.model, num_classes=info.num_classes, in_chans=info.in_chans,
                         recalib=spec_or_none(cfg.recalib), **parse_model_args(cfg.model_args))
    params, macs = _complexity(model, (1, info.in_chans, info.image_size, info.image_size))
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.sync_bn and dinfo.enabled:  # same Parameters and state-dict keys, synchronised statistics
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                weight_decay=cfg.wd)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    steps_per_epoch = len(data.train)
    schedule = LRSchedule.from_config(cfg, steps_per_epoch)

    start_epoch, step, history, best, wall_before = 0, 0, [], float("inf"), 0.0
    if ckpt is not None:
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
        start_epoch, step, history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
        best, wall_before = ckpt["best_test_error"], ckpt["wall_seconds"]
        rngs = ckpt["rng"]
        restore_rng_state(rngs[dinfo.rank] if len(rngs) == dinfo.world_size else rngs[0])
        log(f"resumed {ckpt_path} at epoch {start_epoch}, step {step}")

    if main and ckpt is None and overwrite:  # the new configuration, data and model are valid: now delete
        _remove_run_files(out)
    distributed.barrier()

    if cfg.compile and device.type == "cpu":
        log("warning: --compile on CPU: torch.compile's training step can be slower than eager there, much slower "
            "with channels_last (docs/performance.md); measure before relying on it")
    raw = model  # unwrapped, uncompiled: what checkpoints hold and what evaluation runs
    compiled: nn.Module = torch.compile(raw) if cfg.compile else raw  # type: ignore[assignment]
    train_model: nn.Module = compiled
    if dinfo.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(compiled, device_ids=[device.index] if device.type == "cuda" else None)

    # ---- logging ----
    title = f"{cfg.model} + {cfg.recalib} on {info.name} ({cfg.recipe})"
    loggers = RunLoggers([], 0, schedule)
    if main:
        try:
            _write_json(out / "config.json", cfg.to_dict())
            _write_metrics(out / "metrics.jsonl", history)
        except OSError as exc:
            raise OutputError(_write_failure(Path(exc.filename or out), exc, "nothing was trained yet")) from None
        if logger_notice:
            log(f"recalib train: {logger_notice}")
        loggers = open_loggers(logger_names, out, cfg.to_dict(), resumed_step=step + 1 if ckpt is not None else None,
                               log_every=cfg.log_every, lr_at=schedule)
    device_text = _describe_device(device)
    log(
        f"recalib train: {title}; {cfg.epochs} epochs x {steps_per_epoch} steps, batch {cfg.batch_size} over "
        f"{dinfo.world_size} process(es), {data.train_images} training / {data.eval_images} {data.eval_set} "
        f"images; {params / 1e6:.3f}M params, "
        + (f"{macs / 1e6:.1f}M MACs" if macs is not None else "MACs n/a")
        + f"; {device_text}; amp {str(amp_dtype).replace('torch.', '') if amp_dtype else 'off'}; out {out}"
    )

    rank_checks = 0

    def check_ranks(s: int) -> None:
        nonlocal rank_checks
        if not distributed.tensors_equal_across_ranks(list(raw.parameters())):
            raise RuntimeError(f"check_ranks: the processes' weights differ after global step {s}")
        rank_checks += 1

    def checkpoint_state(epoch: int) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "epoch": epoch,
            "step": step,
            "steps_per_epoch": steps_per_epoch,
            "model": raw.state_dict(),
            "model_args": {"name": cfg.model, "num_classes": info.num_classes, "in_chans": info.in_chans,
                           "recalib": spec_or_none(cfg.recalib), "kwargs": parse_model_args(cfg.model_args)},
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "config": cfg.to_dict(),
            "history": history,
            "best_test_error": best,
            "wall_seconds": wall_before + time.perf_counter() - session_start,
            "rng": distributed.all_gather_object(capture_rng_state()),
            "world_size": dinfo.world_size,
            "versions": library_versions(),
        }

    def summary(status: str, message: str | None = None) -> dict[str, Any]:
        last = history[-1] if history else {}
        best_rec = min(history, key=lambda r: r["test_error"]) if history else {}
        return {
            "status": status,
            "message": message,
            "model": cfg.model,
            "recalib": cfg.recalib,
            "dataset": info.name,
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
            "params": params,
            "macs": macs,
            "wall_seconds": wall_before + time.perf_counter() - session_start,
            "device": device_text,
            "world_size": dinfo.world_size,
            "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
            "versions": library_versions(),
            "git_commit": git_commit() if main else None,
            "epochs_completed": len(history),
            "steps": step,
            "rank_checks": rank_checks if cfg.check_ranks else None,
            "files": {name: str(out / name) for name in RUN_FILES if name != "tb"},
            "config": cfg.to_dict(),
        }

    # ---- the loop ----
    if start_epoch >= cfg.epochs:
        log(f"the run in {out} is complete ({start_epoch} of {cfg.epochs} epochs): nothing to train")
    try:
        for epoch in range(start_epoch, cfg.epochs):
            data.set_epoch(epoch)
            bar = _progress_bar(cfg.progress and main, steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}")
            try:
                tr = train_one_epoch(
                    train_model, data.train, optimizer, lr_at=schedule, step=step, device=device,
                    amp_dtype=amp_dtype, scaler=scaler, label_smoothing=cfg.label_smoothing,
                    channels_last=cfg.channels_last, freeze_bn=cfg.freeze_bn, sync_every=_SYNC_EVERY,
                    on_step=check_ranks if cfg.check_ranks else None, progress=bar,
                    on_loss=loggers.on_loss if loggers else None,
                )
            finally:
                if bar is not None:
                    bar.close()
            step = int(tr["step"])
            distributed.broadcast_buffers(raw)
            ev = evaluate(compiled, data.test, device=device, amp_dtype=amp_dtype, channels_last=cfg.channels_last)
            bad = _first_non_finite(raw, ev["test_loss"])  # the same answer on every rank (weights, buffers equal)
            if bad is not None:
                raise NonFiniteLossError(step, f"{bad} is not finite (NaN or inf) after epoch {epoch + 1} (global "
                                               f"step {step})")
            record = {"epoch": epoch + 1, "step": step, "lr": tr["lr"], "train_loss": tr["train_loss"],
                      "train_error": tr["train_error"], "test_loss": ev["test_loss"], "test_error": ev["test_error"],
                      "test_top5_error": ev["test_top5_error"], "seconds": tr["seconds"],
                      "images_per_s": tr["images_per_s"], "eval_seconds": ev["eval_seconds"],
                      "test_images": ev["test_images"]}
            history.append(record)
            best = min(best, ev["test_error"])
            state = checkpoint_state(epoch + 1)  # a collective (RNG states): every rank builds it
            failure = None
            if main:
                # The checkpoint first: metrics.jsonl never runs ahead of it (a resume rewrites it from the
                # checkpoint's history, so a line lost after a written checkpoint comes back).
                try:
                    save_checkpoint(state, ckpt_path)
                except OSError as exc:
                    failure = _write_failure(ckpt_path, exc, f"checkpoint.pt still holds epoch {epoch}" if epoch
                                             else "no checkpoint was written yet")
                else:
                    try:
                        with open(out / "metrics.jsonl", "a") as f:
                            f.write(json.dumps(record) + "\n")
                        _plot_curves(history, out / "curves.png", title, data.eval_set)
                    except OSError as exc:
                        failure = _write_failure(Path(exc.filename or out / "metrics.jsonl"), exc,
                                                 f"the checkpoint of epoch {epoch + 1} was written")
                if failure is None:
                    loggers.log_epoch(record, data.eval_set)
            del state
            if dinfo.enabled:  # every rank stops together rather than waiting for rank 0 in the next collective
                failure = distributed.all_gather_object(failure)[0]
            if failure is not None:
                raise OutputError(failure)
            log(
                f"epoch {epoch + 1}/{cfg.epochs}  step {step}  lr {tr['lr']:.4g}  train loss {tr['train_loss']:.4f} "
                f"err {tr['train_error']:.2f}%  |  {data.eval_set} loss {ev['test_loss']:.4f} err "
                f"{ev['test_error']:.2f}% top-5 {ev['test_top5_error']:.2f}%  |  {tr['seconds']:.1f} s "
                f"{tr['images_per_s']:.0f} img/s, eval {ev['eval_seconds']:.1f} s"
            )
    except NonFiniteLossError as exc:
        kept = (f"the last good checkpoint (epoch {len(history)}) was kept" if history
                else "no checkpoint was written: it diverged in its first epoch")
        message = (f"{exc}; training stopped and {kept}. Lower the learning rate (--lr), add warm-up "
                   "(--warmup-epochs) or use --amp off")
        if main:
            try:
                _write_json(out / "summary.json", summary("diverged", message))
            except OSError:  # the divergence is the news; a full disk must not hide it
                pass
        raise NonFiniteLossError(exc.step, message) from None
    finally:
        loggers.close()

    result = summary("completed")
    if main:
        try:
            _write_json(out / "summary.json", result)
        except OSError as exc:
            raise OutputError(_write_failure(out / "summary.json", exc, "the checkpoint of the last epoch was "
                                             "written")) from None
        if history and not (out / "curves.png").exists():
            try:
                _plot_curves(history, out / "curves.png", title, data.eval_set)
            except OSError as exc:  # the run is complete; only the picture is missing
                log(f"could not write {out / 'curves.png'}: {exc.strerror or exc}")
    distributed.barrier()
    return result
