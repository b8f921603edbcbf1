"""``train(config) -> summary``: one training run, from data to ``summary.json``.

Orchestrates the pieces of this package: resolves the device and the process group
(:mod:`.distributed`), builds the data (``recalib.data``), the model (``recalib.models.create_model``),
SGD with Nesterov momentum and weight decay on every parameter (the papers' choice, SPEC section 6), the
learning-rate function (:mod:`.schedule`), then loops over epochs with :func:`.engine.train_one_epoch` and
:func:`.engine.evaluate`. Rank 0 writes, into ``config.out``:

* ``config.json``: the resolved :class:`TrainConfig`;
* ``metrics.jsonl``: one JSON object per epoch (epoch, step, lr, train loss/error, test loss, top-1/top-5
  error in %, seconds, images/s, eval seconds);
* ``checkpoint.pt``: at the end of every epoch, atomically (:mod:`.checkpoint`);
* ``summary.json``: final and best test error, params, MACs, wall time, device, versions, git commit;
* ``curves.png``: loss and error against epochs; ``tb/``: TensorBoard event files (if installed).

Resuming (``resume=True``) reloads model, optimizer, scaler, step, history and every RNG state from the
checkpoint; since the learning rate is a function of the step and the data order a function of
``(seed, epoch)``, the resumed run is bit-identical on the CPU to one that was never interrupted.
With ``val_split > 0`` the "test" metrics are measured on images held out of the training set (the same
images for every seed), which is how recipes are tuned without looking at the test set.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed
from .checkpoint import (
    CHECKPOINT_NAME,
    FORMAT_VERSION,
    capture_rng_state,
    load_checkpoint,
    remove_stale_temporaries,
    restore_rng_state,
    save_checkpoint,
)
from .config import TrainConfig, config_diff, parse_model_args
from .engine import NonFiniteLossError, evaluate, train_one_epoch
from .schedule import LRSchedule

__all__ = ["RUN_FILES", "resolve_amp", "resolve_device", "train"]

#: What a run writes into its output folder (``tb`` is a folder).
RUN_FILES = ("config.json", "metrics.jsonl", CHECKPOINT_NAME, "summary.json", "curves.png", "tb")
_VAL_SPLIT_SEED = 0  # the held-out validation images do not depend on --seed
_SYNC_EVERY = 100  # steps between non-finite checks (one host sync each)


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


# ------------------------------------------------------------------------------------ provenance ---
def _versions() -> dict[str, str | None]:
    from importlib import metadata

    import recalib

    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    versions = {
        "recalib": recalib.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None,
    }
    return {k: None if v is None else str(v) for k, v in versions.items()}  # plain str (torch's is a subclass)


def _git_commit() -> str | None:
    """The commit of the checkout recalib is imported from (``-dirty`` if tracked files changed), or None."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


# ------------------------------------------------------------------------------------------ data ---
class _Data:
    """The loaders of one run and what the logs say about them."""

    def __init__(self, train: Any, test: Any, set_epoch: Callable[[int], None], eval_set: str,
                 train_images: int, eval_images: int) -> None:
        self.train, self.test, self.set_epoch = train, test, set_epoch
        self.eval_set, self.train_images, self.eval_images = eval_set, train_images, eval_images


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
                     len(folder_val.dataset))  # type: ignore[arg-type]

    train_set = load_small(info.name, "train", data_dir=cfg.data_dir)
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
    return _Data(train, test, train.set_epoch, eval_name, len(train_set), len(eval_set))


# ------------------------------------------------------------------------------------- outputs ---
def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _write_metrics(path: Path, history: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(rec) + "\n" for rec in history))
    os.replace(tmp, path)


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
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _tensorboard_writer(folder: Path, purge_step: int | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed
        return None
    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)


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
    try:
        from ..analysis.complexity import complexity
    except ImportError:
        return sum(p.numel() for p in probe.parameters()), None
    stats = complexity(probe, input_size)
    return int(stats["params"]), int(stats["macs"])


def _recalib_arg(name: str) -> str | None:
    return None if name.strip().lower() in ("", "none") else name


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
            ``sync_bn`` off CUDA, resume with a different config, ...).
        NonFiniteLossError: the loss diverged; the last good checkpoint is left in place.
    """
    _, _, local_rank, _ = distributed.env_world()
    device = resolve_device(config.device, local_rank)
    dinfo = distributed.setup(device)
    try:
        return _train(config, device, dinfo, resume=resume, overwrite=overwrite)
    finally:
        distributed.cleanup(dinfo)


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

    # ---- output folder and resume decision ----
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT_NAME
    ckpt: dict[str, Any] | None = None
    if ckpt_path.exists() and resume:
        ckpt = load_checkpoint(ckpt_path)
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
        if ckpt is None and overwrite:
            _remove_run_files(out)
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out)
    distributed.barrier()
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
                         recalib=_recalib_arg(cfg.recalib), **parse_model_args(cfg.model_args))
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
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, step, history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
        best, wall_before = ckpt["best_test_error"], ckpt["wall_seconds"]
        rngs = ckpt["rng"]
        restore_rng_state(rngs[dinfo.rank] if len(rngs) == dinfo.world_size else rngs[0])
        log(f"resumed {ckpt_path} at epoch {start_epoch}, step {step}")

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
    writer = None
    if main:
        _write_json(out / "config.json", cfg.to_dict())
        _write_metrics(out / "metrics.jsonl", history)
        if cfg.tensorboard:
            writer = _tensorboard_writer(out / "tb", purge_step=start_epoch + 1 if ckpt is not None else None)
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
                           "recalib": _recalib_arg(cfg.recalib), "kwargs": parse_model_args(cfg.model_args)},
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "config": cfg.to_dict(),
            "history": history,
            "best_test_error": best,
            "wall_seconds": wall_before + time.perf_counter() - session_start,
            "rng": distributed.all_gather_object(capture_rng_state()),
            "world_size": dinfo.world_size,
            "versions": _versions(),
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
            "versions": _versions(),
            "git_commit": _git_commit() if main else None,
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
                )
            finally:
                if bar is not None:
                    bar.close()
            step = int(tr["step"])
            distributed.broadcast_buffers(raw)
            ev = evaluate(compiled, data.test, device=device, amp_dtype=amp_dtype, channels_last=cfg.channels_last)
            record = {"epoch": epoch + 1, "step": step, "lr": tr["lr"], "train_loss": tr["train_loss"],
                      "train_error": tr["train_error"], "test_loss": ev["test_loss"], "test_error": ev["test_error"],
                      "test_top5_error": ev["test_top5_error"], "seconds": tr["seconds"],
                      "images_per_s": tr["images_per_s"], "eval_seconds": ev["eval_seconds"],
                      "test_images": ev["test_images"]}
            history.append(record)
            best = min(best, ev["test_error"])
            state = checkpoint_state(epoch + 1)  # a collective (RNG states): every rank builds it
            if main:
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                save_checkpoint(state, ckpt_path)
                _plot_curves(history, out / "curves.png", title, data.eval_set)
                if writer is not None:
                    for key in ("train_loss", "train_error", "test_loss", "test_error", "test_top5_error", "lr",
                                "images_per_s"):
                        writer.add_scalar(key.replace("_", "/", 1), record[key], epoch + 1)
                    writer.flush()
            del state
            log(
                f"epoch {epoch + 1}/{cfg.epochs}  step {step}  lr {tr['lr']:.4g}  train loss {tr['train_loss']:.4f} "
                f"err {tr['train_error']:.2f}%  |  {data.eval_set} loss {ev['test_loss']:.4f} err "
                f"{ev['test_error']:.2f}% top-5 {ev['test_top5_error']:.2f}%  |  {tr['seconds']:.1f} s "
                f"{tr['images_per_s']:.0f} img/s, eval {ev['eval_seconds']:.1f} s"
            )
    except NonFiniteLossError as exc:
        if main:
            _write_json(out / "summary.json", summary("diverged", str(exc)))
        raise
    finally:
        if writer is not None:
            writer.close()

    result = summary("completed")
    if main:
        _write_json(out / "summary.json", result)
        if history and not (out / "curves.png").exists():
            _plot_curves(history, out / "curves.png", title, data.eval_set)
    distributed.barrier()
    return result
