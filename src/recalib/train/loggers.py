"""Experiment tracking: TensorBoard, Weights & Biases and MLflow behind one small interface.

``--logger`` takes a comma-separated list (``tensorboard,wandb``), ``none``, or ``auto`` (the default):

* ``auto``: TensorBoard when it is installed (it is in the ``all`` extra); when it is not, the run says so in
  one line at the start (it never silently logs nothing). The deprecated ``--no-tensorboard`` turns ``auto``
  off, as it did before ``--logger`` existed.
* a logger asked for by name that is not installed, or whose settings cannot work, is a ``ValueError`` (one
  line naming the extra to install or the variable to set), raised before the run folder is created.

Every tracker works with no settings once its extra is installed:

* TensorBoard: event files in ``<out>/tb`` (``tensorboard --logdir runs``).
* W&B: under ``<out>/wandb``, project ``$WANDB_PROJECT`` (default ``recalib``). With an API key
  (``$WANDB_API_KEY`` or ``wandb login``'s netrc entry) it logs online; without one it logs offline and says
  so in one line (``wandb sync`` uploads the run later). ``WANDB_MODE=online`` without a key is an error.
* MLflow: the store ``$MLFLOW_TRACKING_URI`` when it is set; otherwise a local SQLite store in
  ``<out>/mlflow`` (``mlflow.db`` and ``artifacts/``; MLflow's own default, a file store, is refused by
  MLflow 3 and its SQLite store needs ``sqlalchemy``, which the ``mlflow`` extra installs). Experiment
  ``$MLFLOW_EXPERIMENT_NAME`` (default ``recalib``).

What is recorded, on rank 0 only, against the global optimizer step (as Lightning and timm do):

* at the start: the configuration as hyper-parameters, plain values (``model=resnet20``; TensorBoard's
  HPARAMS view too), the git commit and dirty flag as tags (MLflow: ``mlflow.source.git.commit`` and
  ``git_dirty``; W&B: ``git_commit=...``, ``git_dirty=...``; TensorBoard: two more hyper-parameters), and the
  run folder's path (relative to the working directory when inside it) as the run's name;
* every ``log_every`` steps: ``step/train_loss`` (the loss of that step) and ``step/lr`` (the rate that step
  used, as the schedule gave it to the optimizer);
* after every epoch: ``train/loss``, ``train/error``, ``<eval set>/loss``, ``<eval set>/error``,
  ``<eval set>/top5_error`` (errors in %), ``lr``, ``images_per_s`` and ``epoch``;
* at the end (also of a failed run): the run's files :data:`ARTIFACTS` that exist, as MLflow artifacts and
  W&B run files (TensorBoard has no such notion).

The W&B and MLflow run ids are kept in ``<out>/loggers.json``, so ``--resume`` continues the same tracked run;
the per-step reading of the loss costs one host synchronisation per ``log_every`` steps.
"""

from __future__ import annotations

import importlib.util
import json
import netrc
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

import torch

from .._io import write_json_atomic
from .._names import suggestion
from .._provenance import git_state

__all__ = ["ARTIFACTS", "LOGGERS", "LOGGER_IDS", "RunLoggers", "open_loggers", "parse_loggers", "plain_params",
           "resolve_loggers", "run_name"]

LOGGERS = ("tensorboard", "wandb", "mlflow")
#: Where the W&B / MLflow run ids of a run folder are kept (for --resume).
LOGGER_IDS = "loggers.json"
#: The run's files sent to the trackers at the end (those that exist).
ARTIFACTS = ("config.json", "metrics.jsonl", "summary.json", "curves.png")
#: The local MLflow store used when ``$MLFLOW_TRACKING_URI`` is not set, inside the run folder.
MLFLOW_DIR = "mlflow"
_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
_SQL_PACKAGES = ("sqlalchemy", "alembic")  # what MLflow's SQLite store needs beyond mlflow-skinny


class _Backend(Protocol):
    def log(self, scalars: Mapping[str, float], step: int) -> None: ...

    def finish(self, files: list[Path], failed: bool) -> None: ...


def parse_loggers(text: str) -> list[str]:
    """``"tensorboard,wandb"`` -> ``["tensorboard", "wandb"]``; ``"none"`` -> ``[]``; ``"auto"`` -> ``["auto"]``."""
    names = [n.strip().lower() for n in text.replace(";", ",").split(",") if n.strip()]
    valid = ("auto", "none", *LOGGERS)
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        hint = suggestion(unknown[0], valid) if unknown else ""
        raise ValueError(f"logger must be a comma-separated list of {', '.join(valid)}; got {text!r}{hint}")
    if len(names) > 1 and ({"auto", "none"} & set(names)):
        raise ValueError(f"logger: 'auto' and 'none' stand alone, got {text!r}")
    return [] if names == ["none"] else list(dict.fromkeys(names))


def _installed(name: str) -> bool:
    return importlib.util.find_spec(_PACKAGES.get(name, name)) is not None


def resolve_loggers(logger: str, tensorboard: bool = True,
                    out: str | os.PathLike[str] = "<out>") -> tuple[list[str], str | None]:
    """The loggers a run in ``out`` will use and the notice to print at its start (one line per tracker that
    falls back to a local default: TensorBoard missing under ``auto``, W&B offline, MLflow's local store).

    Raises ``ValueError`` for an unknown name, a named logger whose package is not installed, or settings
    that cannot work (``WANDB_MODE=online`` without a key, an MLflow store MLflow refuses); call it before
    anything is written.
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
    notices = []
    if "wandb" in names:
        notices.append(_wandb_mode(Path(out))[1])
    if "mlflow" in names:
        notices.append(_mlflow_store(Path(out))[2])
    return names, "\n".join(n for n in notices if n) or None


def run_name(out: str | os.PathLike[str]) -> str:
    """The run folder's path as a tracked run's name: relative to the working directory when inside it (so
    ``runs/fmnist/resnet20_s0``, not ``resnet20_s0``), absolute otherwise."""
    path = Path(os.path.abspath(out))
    try:
        rel = path.relative_to(Path.cwd())
    except ValueError:
        return str(path)
    return str(rel) if rel.parts else path.name


def plain_params(config: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """``config`` with every value a plain scalar: numbers, booleans and text as they are, anything else
    (None, lists) as its ``str`` (what TensorBoard's HPARAMS view and MLflow's parameters accept)."""
    return {k: v if isinstance(v, str | int | float | bool) else str(v) for k, v in config.items()}


def _git_tags() -> dict[str, str]:
    state = git_state()
    if state["commit"] is None:
        return {}
    return {"git_commit": state["commit"], "git_dirty": str(state["dirty"]).lower()}


# ------------------------------------------------------------------------------------ settings ---
def _wandb_key() -> bool:
    """Whether a W&B API key is configured: ``$WANDB_API_KEY`` or a netrc entry for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _wandb_mode(out: Path) -> tuple[Literal["offline"] | None, str | None]:
    """(the mode to pass to ``wandb.init``, None: W&B's own setting; the notice when offline by default)."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode:
        if mode == "online" and not _wandb_key():
            raise ValueError("--logger wandb: WANDB_MODE=online needs an API key; set WANDB_API_KEY (or run "
                             "`wandb login`), or unset WANDB_MODE to log offline into the run folder")
        return None, None
    if _wandb_key():
        return None, None
    return "offline", (f"W&B: no API key (WANDB_API_KEY or `wandb login`), so this run logs offline to "
                       f"{out / 'wandb'}; upload it later with `wandb sync {out / 'wandb'}/offline-run-*`")


def _mlflow_store(out: Path) -> tuple[str, bool, str | None]:
    """(tracking URI, whether it is recalib's local store in ``out``, the notice when it is)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        if not all(_installed(p) for p in _SQL_PACKAGES):
            raise ValueError("--logger mlflow without MLFLOW_TRACKING_URI keeps a local SQLite store in the run "
                             "folder, which needs sqlalchemy and alembic: pip install 'recalib[mlflow]' (or set "
                             "MLFLOW_TRACKING_URI to your tracking server)")
        db = Path(os.path.abspath(out)) / MLFLOW_DIR / "mlflow.db"
        uri = f"sqlite:///{db}"
        return uri, True, (f"MLflow: MLFLOW_TRACKING_URI is not set, so this run logs to a local store in "
                           f"{out / MLFLOW_DIR} (view it with: mlflow ui --backend-store-uri {uri})")
    scheme = urlparse(uri).scheme
    if scheme in ("", "file"):
        from mlflow import environment_variables as mlflow_env

        allow = getattr(mlflow_env, "MLFLOW_ALLOW_FILE_STORE", None)
        if allow is not None and not allow.get():
            raise ValueError(f"--logger mlflow: MLFLOW_TRACKING_URI={uri} is a file store, which this MLflow "
                             "refuses unless MLFLOW_ALLOW_FILE_STORE=true; set that, or unset "
                             "MLFLOW_TRACKING_URI to log to a local SQLite store in the run folder")
    elif scheme.split("+")[0] in ("sqlite", "postgresql", "mysql", "mssql") and not all(
            _installed(p) for p in _SQL_PACKAGES):
        raise ValueError(f"--logger mlflow: MLFLOW_TRACKING_URI={uri} is a database store, which needs "
                         "sqlalchemy and alembic: pip install 'recalib[mlflow]'")
    return uri, False, None


# ------------------------------------------------------------------------------------ backends ---
class _TensorBoard:
    def __init__(self, folder: Path, purge_step: int | None, hparams: Mapping[str, Any],
                 metrics: list[str]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)
        if purge_step is None:  # a new run: the HPARAMS view's row, its metrics read from the scalars
            file_writer = self.writer._get_file_writer()
            for summary in hparams_summary(dict(hparams), dict.fromkeys(metrics, 0.0)):
                file_writer.add_summary(summary)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self, files: list[Path], failed: bool) -> None:
        self.writer.close()


class _Wandb:
    def __init__(self, out: Path, config: Mapping[str, Any], tags: Mapping[str, str], run_id: str | None) -> None:
        import wandb

        mode, _ = _wandb_mode(out)
        self.out = Path(os.path.abspath(out))  # W&B's service process may run in another working directory
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "recalib"), name=run_name(out),
                              dir=str(self.out), config=dict(config), tags=[f"{k}={v}" for k, v in tags.items()],
                              id=run_id, resume="allow" if run_id else None, mode=mode)
        self.id = self.run.id

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self.run.log(dict(scalars), step=step)

    def finish(self, files: list[Path], failed: bool) -> None:
        for path in files:
            self.run.save(str(path), base_path=str(self.out), policy="now")
        self.run.finish(exit_code=1 if failed else 0)


class _MLflow:
    def __init__(self, out: Path, params: Mapping[str, Any], tags: Mapping[str, str], run_id: str | None) -> None:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        uri, local, _ = _mlflow_store(out)
        if local:
            (out / MLFLOW_DIR).mkdir(exist_ok=True)
        self.metric = Metric
        self.client = MlflowClient(tracking_uri=uri)
        if run_id is None:
            artifacts = (Path(os.path.abspath(out)) / MLFLOW_DIR / "artifacts").as_uri() if local else None
            experiment_id = self._experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "recalib"), artifacts)
            tag_list = [RunTag("mlflow.source.git.commit", tags["git_commit"])] if "git_commit" in tags else []
            tag_list += [RunTag(k, v) for k, v in tags.items() if k != "git_commit"]
            run_id = self.client.create_run(experiment_id, run_name=run_name(out)).info.run_id
            items = [Param(k, str(v)) for k, v in sorted(params.items())]
            for i in range(0, len(items), 100):  # MLflow takes at most 100 parameters per batch
                self.client.log_batch(run_id, params=items[i:i + 100], tags=tag_list if i == 0 else [])
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.id = run_id

    def _experiment(self, name: str, artifacts: str | None) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(self.client.create_experiment(name, artifact_location=artifacts))

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.id, metrics=[self.metric(k, float(v), now, step)
                                                for k, v in scalars.items()])

    def finish(self, files: list[Path], failed: bool) -> None:
        for path in files:
            self.client.log_artifact(self.id, str(path))
        self.client.set_terminated(self.id, status="FAILED" if failed else "FINISHED")


class RunLoggers:
    """The loggers of one run: ``on_step`` per step, ``log_epoch`` per epoch, ``finish`` at the end."""

    def __init__(self, backends: list[_Backend], log_every: int, eval_set: str = "test") -> None:
        self.backends, self.log_every, self.eval_set = backends, log_every, eval_set

    def __bool__(self) -> bool:
        return bool(self.backends)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        for backend in self.backends:
            backend.log(scalars, step)

    def on_step(self, step: int, lr: float, loss: torch.Tensor) -> None:
        """After every optimizer step: the new global step, the rate that step used and its (device) loss."""
        if self.backends and self.log_every and step % self.log_every == 0:
            self.log({"step/train_loss": float(loss), "step/lr": lr}, step)

    def log_epoch(self, record: Mapping[str, Any]) -> None:
        """An epoch's line of ``metrics.jsonl``, at its global step."""
        ev = self.eval_set
        scalars = {"train/loss": record["train_loss"], "train/error": record["train_error"],
                   f"{ev}/loss": record["test_loss"], f"{ev}/error": record["test_error"],
                   f"{ev}/top5_error": record["test_top5_error"], "lr": record["lr"],
                   "images_per_s": record["images_per_s"], "epoch": record["epoch"]}
        self.log(scalars, int(record["step"]))

    def finish(self, out: str | os.PathLike[str], failed: bool = False) -> None:
        """Send the run's files (:data:`ARTIFACTS` in ``out`` that exist) and close every tracker.

        With ``failed`` (the run raised), a tracker's own error is swallowed so that it does not hide the run's.
        """
        files = [Path(out) / name for name in ARTIFACTS if (Path(out) / name).is_file()]
        backends, self.backends = self.backends, []
        for backend in backends:
            try:
                backend.finish(files, failed)
            except Exception:
                if not failed:
                    raise


def open_loggers(names: list[str], out: Path, config: Mapping[str, Any], *, resumed_step: int | None,
                 log_every: int, eval_set: str = "test") -> RunLoggers:
    """Start the ``names`` loggers for the run in ``out`` (rank 0 only); ``resumed_step`` is the checkpoint's step."""
    ids_path = out / LOGGER_IDS
    ids: dict[str, str] = json.loads(ids_path.read_text()) if resumed_step is not None and ids_path.is_file() else {}
    params = plain_params(config)
    tags = _git_tags() if names else {}
    backends: list[_Backend] = []
    for name in names:
        if name == "tensorboard":
            hparams = {**params, **tags}
            metrics = ["train/loss", "train/error", f"{eval_set}/loss", f"{eval_set}/error"]
            backends.append(_TensorBoard(out / "tb", resumed_step, hparams, metrics))
        elif name == "wandb":
            wb = _Wandb(out, config, tags, ids.get("wandb"))
            ids["wandb"] = wb.id
            backends.append(wb)
        elif name == "mlflow":
            ml = _MLflow(out, params, tags, ids.get("mlflow"))
            ids["mlflow"] = ml.id
            backends.append(ml)
    if set(ids) & {"wandb", "mlflow"}:
        write_json_atomic(ids_path, ids)
    return RunLoggers(backends, log_every, eval_set)
