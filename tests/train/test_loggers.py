"""--logger: TensorBoard, W&B (offline) and MLflow (local file store) get per-step and per-epoch scalars; a
named logger that is not installed is a clear error; run folders written before --logger existed still resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from recalib.train import loggers as loggers_mod
from recalib.train.config import TrainConfig, config_diff, resolve_config
from recalib.train.loggers import parse_loggers, resolve_loggers

OLD_CONFIG = Path(__file__).with_name("data") / "config_65da483.json"  # written by TrainConfig at commit 65da483


def test_config_json_written_before_loggers_still_loads_and_matches() -> None:
    old = json.loads(OLD_CONFIG.read_text())
    assert "logger" not in old and old["tensorboard"] is False
    cfg = TrainConfig.from_dict(old)
    fresh = resolve_config("quick", **{k: v for k, v in old.items() if k != "recipe"})
    assert config_diff(cfg, fresh) == {}
    assert config_diff(cfg, resolve_config("quick", subset=256, test_subset=200, epochs=1, batch_size=64)) == {}
    assert resolve_loggers(cfg.logger, cfg.tensorboard) == ([], None)  # --no-tensorboard keeps meaning "no logging"


def test_resume_a_run_whose_checkpoint_and_config_predate_loggers(tmp_path: Path) -> None:
    from recalib.train import train

    old = json.loads(OLD_CONFIG.read_text())
    out = tmp_path / "run"
    cfg = TrainConfig.from_dict({**old, "out": str(out), "progress": False})
    train(cfg)
    ckpt_path = out / "checkpoint.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["config"] = {**old, "out": str(out)}  # exactly the keys the old code wrote
    torch.save(ckpt, ckpt_path)
    (out / "config.json").write_text(json.dumps(ckpt["config"]))
    from recalib.cli import main

    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0


def test_parse_and_validate() -> None:
    assert parse_loggers("tensorboard, wandb") == ["tensorboard", "wandb"]
    assert parse_loggers("none") == [] and parse_loggers("auto") == ["auto"]
    for bad in ("tensorbord", "none,wandb", ""):
        with pytest.raises(ValueError, match="logger"):
            parse_loggers(bad)
    with pytest.raises(ValueError, match="tensorbord"):
        resolve_config("quick", logger="tensorbord")


def test_missing_package_is_an_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loggers_mod, "_installed", lambda name: name != "wandb")
    with pytest.raises(ValueError, match=r"pip install 'recalib\[wandb\]'"):
        resolve_loggers("tensorboard,wandb")
    monkeypatch.setattr(loggers_mod, "_installed", lambda name: False)
    names, notice = resolve_loggers("auto")  # on by default: never silently nothing
    assert names == [] and notice is not None and "recalib[tensorboard]" in notice


def test_cli_error_for_a_missing_logger_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from recalib.cli import main

    monkeypatch.setattr(loggers_mod, "_installed", lambda name: False)
    assert main(["train", "--recipe", "quick", "--logger", "mlflow", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "recalib[mlflow]" in err
    assert not (tmp_path / "r").exists()  # checked before anything is written


@pytest.mark.slow
def test_every_logger_gets_step_and_epoch_scalars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from recalib.train import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{tmp_path / 'mlruns'}")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    out = tmp_path / "run"
    cfg = resolve_config("quick", subset=256, test_subset=200, epochs=2, batch_size=64, threads=1, out=str(out),
                         progress=False, logger="tensorboard,wandb,mlflow", log_every=1)
    train(cfg)
    steps = 2 * 256 // 64  # 8 optimizer steps

    acc = EventAccumulator(str(out / "tb"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("step/train_loss")] == list(range(1, steps + 1))
    assert [e.step for e in acc.Scalars("train/loss")] == [steps // 2, steps]
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e.value for e in acc.Scalars("test/error")] == pytest.approx([r["test_error"] for r in history])

    from mlflow.tracking import MlflowClient

    ids = json.loads((out / "loggers.json").read_text())
    client = MlflowClient()
    assert sorted(m.step for m in client.get_metric_history(ids["mlflow"], "step/train_loss")) == list(range(1, steps + 1))
    assert [m.value for m in client.get_metric_history(ids["mlflow"], "train/error")] == pytest.approx(
        [r["train_error"] for r in history])
    assert client.get_run(ids["mlflow"]).data.params["recalib"] == '"mssar"'

    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and ids["wandb"] in runs[0].name
    assert any(p.suffix == ".wandb" and p.stat().st_size > 0 for p in runs[0].iterdir())
