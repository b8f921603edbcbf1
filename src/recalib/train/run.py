"""``train(config) -> summary``: one training run, from data to ``summary.json``.

Three phases over one :class:`~._setup.TrainingRun` (what was built) and its :class:`~._setup.RunState` (what changes):
:func:`~._setup.setup_run` builds the data (``recalib.data``), the model
(``recalib.models.create_model``), the optimizer, the learning-rate function (:mod:`.schedule`) and the resume
state; :func:`_train_epochs` loops over epochs with :func:`.engine.train_one_epoch` and :func:`.engine.evaluate`;
:func:`_finish` writes the summary (:mod:`._outputs`). The device is resolved by :mod:`._device`.
Rank 0 writes, into ``config.out``:

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

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._format import progress_bar
from .._optional import install_hint
from .._provenance import library_versions
from . import distributed
from ._device import resolve_amp, resolve_device
from ._outputs import RUN_FILES, OutputError, append_metrics, plot_curves, summary, write_failure, write_json
from ._setup import TrainingRun, setup_run
from .checkpoint import CHECKPOINT_NAME, FORMAT_VERSION, capture_rng_state, save_checkpoint
from .config import TrainConfig, parse_model_args
from .engine import NonFiniteLossError, evaluate, train_one_epoch
from .loggers import resolve_loggers
from .runlock import RunLock, RunLockedError

__all__ = ["RUN_FILES", "OutputError", "TrainingInterrupted", "resolve_amp", "resolve_device", "train"]

_SYNC_EVERY = 100  # steps between non-finite checks (one host sync each)


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
        TrainingInterrupted: a ``KeyboardInterrupt`` (SIGINT, or SIGTERM where the entry point maps it so), with
            where the resumable checkpoint is.
    """
    resolve_loggers(config.logger, config.tensorboard, config.out)  # a tracker that cannot start: an error before any write
    _, _, local_rank, _ = distributed.env_world()
    device = resolve_device(config.device, local_rank)
    dinfo = distributed.setup(device, timeout=config.dist_timeout)
    try:
        lock = _lock_run_folder(Path(config.out), dinfo)
        run: TrainingRun | None = None
        try:
            run = setup_run(config, device, dinfo, resume=resume, overwrite=overwrite)
            try:
                _train_epochs(run)
                result = _finish(run)
            except BaseException:
                run.loggers.finish(run.out, failed=True)  # what was written so far, summary.json of a divergence
                raise
            run.loggers.finish(run.out)  # the run's files as artifacts, then close
            return result
        except KeyboardInterrupt:
            raise TrainingInterrupted(_where_to_resume(Path(config.out), run)) from None
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


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted; the message says where the resumable checkpoint is."""


def _where_to_resume(out: Path, run: TrainingRun | None) -> str:
    ckpt = out / CHECKPOINT_NAME
    if run is None:
        return (f"before training began; {ckpt} is unchanged: continue with --resume" if ckpt.is_file()
                else f"before training began; nothing was trained in {out}")
    if run.state.checkpointed:
        return (f"the resumable checkpoint is {ckpt} (epoch {run.state.checkpointed} of {run.cfg.epochs}): "
                "continue with --resume")
    return f"in the first epoch, before any checkpoint: nothing to resume in {out}, rerun to start over"


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


# ----------------------------------------------------------------------------------------- loop ---
def _train_epochs(run: TrainingRun) -> None:
    """Every epoch still to do: train, evaluate, check, checkpoint, log; a divergence writes the summary."""
    cfg, st = run.cfg, run.state
    if st.start_epoch >= cfg.epochs:
        run.log(f"the run in {run.out} is complete ({st.start_epoch} of {cfg.epochs} epochs): nothing to train")
    try:
        for epoch in range(st.start_epoch, cfg.epochs):
            tr, ev = _train_epoch(run, epoch)
            record = {"epoch": epoch + 1, "step": st.step, "lr": tr["lr"], "train_loss": tr["train_loss"],
                      "train_error": tr["train_error"], "test_loss": ev["test_loss"], "test_error": ev["test_error"],
                      "test_top5_error": ev["test_top5_error"], "seconds": tr["seconds"],
                      "images_per_s": tr["images_per_s"], "eval_seconds": ev["eval_seconds"],
                      "test_images": ev["test_images"]}
            st.history.append(record)
            st.best = min(st.best, ev["test_error"])
            _save_epoch(run, epoch, record)
            run.log(
                f"epoch {epoch + 1}/{cfg.epochs}  step {st.step}  lr {tr['lr']:.4g}  train loss {tr['train_loss']:.4f} "
                f"err {tr['train_error']:.2f}%  |  {run.data.eval_set} loss {ev['test_loss']:.4f} err "
                f"{ev['test_error']:.2f}% top-5 {ev['test_top5_error']:.2f}%  |  {tr['seconds']:.1f} s "
                f"{tr['images_per_s']:.0f} img/s, eval {ev['eval_seconds']:.1f} s"
            )
    except NonFiniteLossError as exc:
        kept = (f"the last good checkpoint (epoch {len(st.history)}) was kept" if st.history
                else "no checkpoint was written: it diverged in its first epoch")
        message = (f"{exc}; training stopped and {kept}. Lower the learning rate (--lr), add warm-up "
                   "(--warmup-epochs) or use --amp off")
        if run.dinfo.is_main:
            try:
                write_json(run.out / "summary.json", summary(run, "diverged", message))
            except OSError:  # the divergence is the news; a full disk must not hide it
                pass
        raise NonFiniteLossError(exc.step, message) from None


def _train_epoch(run: TrainingRun, epoch: int) -> tuple[dict[str, float], dict[str, float]]:
    """Train and evaluate epoch ``epoch`` (0-based); raise if anything became NaN or infinite."""
    cfg, st = run.cfg, run.state
    run.data.set_epoch(epoch)
    bar = (progress_bar(run.steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
           if cfg.progress and run.dinfo.is_main else None)
    try:
        tr = train_one_epoch(
            run.train_model, run.data.train, run.optimizer, lr_at=run.schedule, step=st.step, device=run.device,
            amp_dtype=run.amp_dtype, scaler=run.scaler, label_smoothing=cfg.label_smoothing,
            channels_last=cfg.channels_last, freeze_bn=cfg.freeze_bn, sync_every=_SYNC_EVERY,
            on_step=StepHook(run, bar),
        )
    finally:
        if bar is not None:
            bar.close()
    st.step = int(tr["step"])
    distributed.broadcast_buffers(run.raw)
    ev = evaluate(run.compiled, run.data.test, device=run.device, amp_dtype=run.amp_dtype,
                  channels_last=cfg.channels_last)
    bad = _first_non_finite(run.raw, ev["test_loss"])  # the same answer on every rank (weights, buffers equal)
    if bad is not None:
        raise NonFiniteLossError(st.step, f"{bad} is not finite (NaN or inf) after epoch {epoch + 1} (global "
                                          f"step {st.step})")
    return tr, ev


def _save_epoch(run: TrainingRun, epoch: int, record: dict[str, Any]) -> None:
    """The checkpoint, then the epoch's line of ``metrics.jsonl``, the curves and the loggers (rank 0)."""
    out, ckpt_path = run.out, run.ckpt_path
    state = _checkpoint_state(run, epoch + 1)  # a collective (RNG states): every rank builds it
    failure = None
    if run.dinfo.is_main:
        # The checkpoint first: metrics.jsonl never runs ahead of it (a resume rewrites it from the
        # checkpoint's history, so a line lost after a written checkpoint comes back).
        try:
            save_checkpoint(state, ckpt_path)
        except OSError as exc:
            kept = run.state.checkpointed
            failure = write_failure(ckpt_path, exc, f"{CHECKPOINT_NAME} still holds epoch {kept}" if kept
                                    else "no checkpoint was written yet")
        else:
            run.state.checkpointed = epoch + 1
            written = f"the checkpoint of epoch {epoch + 1} was written"
            try:
                append_metrics(out / "metrics.jsonl", record)
            except OSError as exc:
                failure = write_failure(out / "metrics.jsonl", exc, written)
            else:
                try:
                    plot_curves(run.state.history, out / "curves.png", run.title, run.data.eval_set)
                except OSError as exc:
                    failure = write_failure(out / "curves.png", exc, written)
        if failure is None:
            run.loggers.log_epoch(record)
    del state
    if run.dinfo.enabled:  # every rank stops together rather than waiting for rank 0 in the next collective
        failure = distributed.all_gather_object(failure)[0]
    if failure is not None:
        raise OutputError(failure)


def _recorded_spec(model: nn.Module) -> str | None:
    """The complete operator spec the model recorded, as text (``None``: no operator)."""
    spec = getattr(model, "recalib_spec", None)
    return None if spec is None else str(spec)


def _checkpoint_state(run: TrainingRun, epoch: int) -> dict[str, Any]:
    cfg, st, info = run.cfg, run.state, run.info
    return {
        "format_version": FORMAT_VERSION,
        "epoch": epoch,
        "step": st.step,
        "steps_per_epoch": run.steps_per_epoch,
        "model": run.raw.state_dict(),
        "model_args": {"name": cfg.model, "num_classes": info.num_classes, "in_chans": info.in_chans,
                       "recalib": _recorded_spec(run.raw), "kwargs": parse_model_args(cfg.model_args)},
        "optimizer": run.optimizer.state_dict(),
        "scaler": run.scaler.state_dict(),
        "config": cfg.to_dict(),
        "history": st.history,
        "best_test_error": st.best,
        "wall_seconds": st.wall_seconds(),
        "rng": distributed.all_gather_object(capture_rng_state()),
        "world_size": run.dinfo.world_size,
        "versions": library_versions(),
    }


@dataclass
class StepHook:
    """The run's one per-step hook (:func:`.engine.train_one_epoch`'s ``on_step``): after every optimizer step,
    check that every process holds the same weights (``check_ranks``), send the step's loss and rate to the
    loggers (every ``log_every`` steps) and advance the progress bar (its loss and rate every ``_SYNC_EVERY``
    steps, one host synchronisation each)."""

    run: TrainingRun
    bar: Any = None  # a tqdm-like bar (update, set_postfix) or None

    def __call__(self, step: int, lr: float, loss: torch.Tensor) -> None:
        run = self.run
        if run.cfg.check_ranks:
            if not distributed.tensors_equal_across_ranks(list(run.raw.parameters())):
                raise RuntimeError(f"check_ranks: the processes' weights differ after global step {step}")
            run.state.rank_checks += 1
        run.loggers.on_step(step, lr, loss)
        if self.bar is not None:
            self.bar.update(1)
            if step % _SYNC_EVERY == 0:
                self.bar.set_postfix(loss=f"{float(loss):.4f}", lr=f"{lr:.4g}", refresh=False)


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


# --------------------------------------------------------------------------------------- finish ---
def _read_summary(path: Path) -> dict[str, Any] | None:
    """A complete run's ``summary.json`` (None if it is missing or not a completed summary)."""
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return kept if isinstance(kept, dict) and kept.get("status") == "completed" else None


def _finish(run: TrainingRun) -> dict[str, Any]:
    """Rank 0 writes ``summary.json`` (and ``curves.png`` if no epoch drew it); every rank returns the summary."""
    out, history = run.out, run.state.history
    if not run.state.trains:  # a resumed complete run: its summary stays as it was written
        kept = _read_summary(out / "summary.json")
        if kept is not None:
            distributed.barrier()
            return kept
    if run.dinfo.is_main and history and not (out / "curves.png").exists():
        try:  # before summary.json, which lists the files the folder holds
            if not plot_curves(history, out / "curves.png", run.title, run.data.eval_set):
                run.log(f"no curves.png: drawing it needs matplotlib: {install_hint('plots')}")
        except OSError as exc:  # the run is complete; only the picture is missing
            run.log(f"could not write {out / 'curves.png'}: {exc.strerror or exc}")
    result = summary(run, "completed")
    if not run.state.trains:  # its summary was lost: this checkout's commit and settings did not train it
        result.update(git_commit=None, amp=None, device=None)
    if run.dinfo.is_main:
        try:
            write_json(out / "summary.json", result)
        except OSError as exc:
            raise OutputError(write_failure(out / "summary.json", exc, "the checkpoint of the last epoch was "
                                            "written")) from None
    distributed.barrier()
    return result
