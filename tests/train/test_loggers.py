"""--logger: TensorBoard, W&B and MLflow work with no settings (W&B offline, MLflow's store in the run folder)
and honour the user's; what they recorded is read back (event files, the MLflow store, the W&B run file); a
named logger that is not installed or cannot work with the settings is a one-line error before the run folder
exists; run folders written before --logger existed still resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    assert cfg.init == "independent"  # what the run used: the key is younger than the file (LEGACY_DEFAULTS)
    fresh = resolve_config("quick", **{k: v for k, v in old.items() if k != "recipe"}, init="independent")
    assert config_diff(cfg, fresh) == {}
    assert config_diff(cfg, resolve_config("quick", subset=256, test_subset=200, epochs=1, batch_size=64,
                                           init="independent")) == {}
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
    assert client.get_run(ids["mlflow"]).data.params["recalib"] == "mssar"  # plain, not JSON-quoted (issue 19)

    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and ids["wandb"] in runs[0].name
    assert any(p.suffix == ".wandb" and p.stat().st_size > 0 for p in runs[0].iterdir())


# ------------------------------------------------------------------------------- no settings ---
_TRACKER_VARIABLES = ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_PROJECT", "WANDB_DIR",
                      "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE")


def _no_tracker_settings(mp: pytest.MonkeyPatch, home: Path) -> None:
    for name in _TRACKER_VARIABLES:
        mp.delenv(name, raising=False)
    mp.setenv("NETRC", str(home / "no-netrc"))  # no W&B key in a netrc either
    mp.setenv("WANDB_SILENT", "true")


def _wandb_records(path: Path) -> list[Any]:
    """The records of a W&B run file (W&B's on-disk format: a 7-byte header, then LevelDB-log records of
    checksum, length and type in 32 KiB blocks, each record a ``wandb_internal_pb2.Record``)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, records, parts, block = 7, [], b"", 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a record header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        parts += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            records.append(record)
            parts = b""
    return records


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One tiny run with all three trackers and no tracker settings, from a fresh working directory."""
    for package in ("tensorboard", "wandb", "mlflow", "sqlalchemy"):
        pytest.importorskip(package)
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from recalib.cli import main

    home = tmp_path_factory.mktemp("cwd")
    used: list[float] = []  # the rate of every optimizer step
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: used.append(opt.param_groups[0]["lr"]))
    try:
        with pytest.MonkeyPatch.context() as mp:
            _no_tracker_settings(mp, home)
            mp.chdir(home)
            import contextlib
            import io

            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                status = main(["train", "--recipe", "quick", "--subset", "256", "--test-subset", "200", "--epochs",
                               "2", "--batch-size", "64", "--threads", "1", "--out", "runs/a", "--no-progress",
                               "--logger", "tensorboard,wandb,mlflow", "--log-every", "1"])
    finally:
        handle.remove()
    assert status == 0
    out = home / "runs" / "a"
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"home": home, "out": out, "printed": printed.getvalue(), "used": used, "history": history,
            "config": json.loads((out / "config.json").read_text())}


def _expected_files(out: Path) -> set[str]:
    return {name for name in ("config.json", "metrics.jsonl", "summary.json", "curves.png") if (out / name).is_file()}


def test_trackers_write_nothing_outside_the_run_folder_and_say_where_they_log(tracked: dict[str, Any]) -> None:
    assert {p.name for p in tracked["home"].iterdir()} == {"runs"}  # no ./mlruns, ./wandb, ./mlflow.db
    lines = tracked["printed"].splitlines()
    assert any(line.startswith("recalib train: W&B: no API key") and "offline" in line for line in lines)
    assert any(line.startswith("recalib train: MLflow:") and "runs/a/mlflow" in line for line in lines)
    assert {"summary.json", "curves.png", "config.json"} <= _expected_files(tracked["out"])


def test_tensorboard_records_scalars_and_hparams(tracked: dict[str, Any]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from recalib._provenance import git_state

    acc = EventAccumulator(str(tracked["out"] / "tb"))
    acc.Reload()
    steps, history = len(tracked["used"]), tracked["history"]
    assert [e.step for e in acc.Scalars("step/train_loss")] == list(range(1, steps + 1))
    assert [e.value for e in acc.Scalars("step/lr")] == pytest.approx(tracked["used"])  # what the optimizer used
    assert [e.value for e in acc.Scalars("test/error")] == pytest.approx([r["test_error"] for r in history])
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["model"].string_value == "resnet20" and hparams["recalib"].string_value == "mssar"
    assert hparams["lr"].number_value == pytest.approx(tracked["config"]["lr"])
    assert hparams["epochs"].number_value == 2
    commit = git_state()["commit"]
    if commit is not None:
        assert hparams["git_commit"].string_value == commit


def test_mlflow_local_store_holds_params_tags_metrics_and_artifacts(tracked: dict[str, Any]) -> None:
    from mlflow.tracking import MlflowClient

    from recalib._provenance import git_state

    out, history = tracked["out"], tracked["history"]
    run_id = json.loads((out / "loggers.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow' / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.run_name == "runs/a" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "resnet20" and params["recalib"] == "mssar" and params["dataset"] == "fashion-mnist"
    assert float(params["lr"]) == tracked["config"]["lr"] and params["epochs"] == "2"
    state = git_state()
    if state["commit"] is not None:
        assert run.data.tags["mlflow.source.git.commit"] == state["commit"]
        assert run.data.tags["git_dirty"] == str(state["dirty"]).lower()
    steps = len(tracked["used"])
    lrs = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "step/lr"))
    assert [s for s, _ in lrs] == list(range(1, steps + 1))
    assert [v for _, v in lrs] == pytest.approx(tracked["used"])
    assert [m.value for m in client.get_metric_history(run_id, "test/error")] == pytest.approx(
        [r["test_error"] for r in history])
    assert {a.path for a in client.list_artifacts(run_id)} == _expected_files(out)
    local = Path(client.download_artifacts(run_id, "summary.json", str(out.parent)))
    assert local.read_bytes() == (out / "summary.json").read_bytes()


def test_wandb_offline_run_holds_config_tags_history_and_files(tracked: dict[str, Any]) -> None:
    from recalib._provenance import git_state

    out = tracked["out"]
    run_id = json.loads((out / "loggers.json").read_text())["wandb"]
    (folder,) = (out / "wandb").glob(f"offline-run-*-{run_id}")
    records = _wandb_records(folder / f"run-{run_id}.wandb")
    kinds = [r.WhichOneof("record_type") for r in records]
    run = records[kinds.index("run")].run
    assert run.display_name == "runs/a"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["model"] == "resnet20" and config["lr"] == tracked["config"]["lr"]
    state = git_state()
    if state["commit"] is not None:
        assert set(run.tags) == {f"git_commit={state['commit']}", f"git_dirty={str(state['dirty']).lower()}"}
    rows = [{"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]
    step_rows = [row for row in rows if "step/lr" in row]
    assert [row["_step"] for row in step_rows] == list(range(1, len(tracked["used"]) + 1))
    assert [row["step/lr"] for row in step_rows] == pytest.approx(tracked["used"])
    epoch_rows = [row for row in rows if "test/error" in row]
    assert [row["test/error"] for row in epoch_rows] == pytest.approx([r["test_error"] for r in tracked["history"]])
    saved = {f.path for r in records if r.WhichOneof("record_type") == "files" for f in r.files.files}
    assert _expected_files(out) <= saved
    assert (folder / "files" / "summary.json").read_bytes() == (out / "summary.json").read_bytes()
    assert records[kinds.index("exit")].exit.exit_code == 0


def test_run_name_is_the_folder_path_and_params_are_plain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recalib.train.loggers import plain_params, run_name

    monkeypatch.chdir(tmp_path)
    assert run_name("runs/fmnist/s0") == str(Path("runs") / "fmnist" / "s0")
    assert run_name(tmp_path / "x" / "y") == str(Path("x") / "y")
    assert run_name("/elsewhere/run") == str(Path("/elsewhere/run"))
    assert plain_params({"model": "resnet20", "lr": 0.1, "nesterov": True, "milestones": [100, 150],
                         "data_dir": None}) == {"model": "resnet20", "lr": 0.1, "nesterov": True,
                                                "milestones": "[100, 150]", "data_dir": "None"}


def _cli_error(tmp_path: Path, logger: str, capsys: pytest.CaptureFixture[str]) -> str:
    from recalib.cli import main

    out = tmp_path / "r"
    assert main(["train", "--recipe", "quick", "--logger", logger, "--out", str(out), "--no-progress"]) == 2
    assert not out.exists()  # refused before the run folder is created
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_wandb_online_without_a_key_is_one_line_naming_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("wandb")
    _no_tracker_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_MODE", "online")
    err = _cli_error(tmp_path, "wandb", capsys)
    assert "WANDB_API_KEY" in err and "WANDB_MODE" in err


def test_mlflow_settings_that_cannot_work_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mlflow")
    from mlflow import environment_variables as mlflow_env

    _no_tracker_settings(monkeypatch, tmp_path)
    real = loggers_mod._installed
    monkeypatch.setattr(loggers_mod, "_installed", lambda name: name != "sqlalchemy" and real(name))
    err = _cli_error(tmp_path, "mlflow", capsys)  # mlflow-skinny alone: no SQLite store
    assert "recalib[mlflow]" in err and "MLFLOW_TRACKING_URI" in err
    monkeypatch.setattr(loggers_mod, "_installed", real)
    if hasattr(mlflow_env, "MLFLOW_ALLOW_FILE_STORE"):  # MLflow 3 refuses a file store unless told
        monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
        err = _cli_error(tmp_path, "mlflow", capsys)
        assert "MLFLOW_ALLOW_FILE_STORE=true" in err
