"""scripts/record_quickstart.py: the README table is computed from the run's files, targets checked both ways."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "record_quickstart.py"


def _module():
    spec = importlib.util.spec_from_file_location("record_quickstart", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _summary(err: float) -> dict:
    cfg = {"recipe": "quick", "model": "resnet20", "recalib": "mssar", "epochs": 1, "batch_size": 256, "lr": 0.4,
           "schedule": "linear", "wd": 5e-4}
    return {"config": cfg, "dataset": "fashion-mnist", "final_test_error": err, "final_test_top5_error": 0.5,
            "params": 301474, "macs": 31040992, "train_images": 60000, "test_images": 10000, "eval_set": "test",
            "device": "cpu (x, 2 threads)", "versions": {"torch": "2.x"}, "git_commit": "abc"}


@pytest.mark.parametrize(("wall", "err", "verdicts"), [(400.0, 7.5, ("met", "met")), (500.0, 10.5, ("missed", "missed"))])
def test_render_checks_the_targets(wall, err, verdicts) -> None:
    rec = {"command": "python3 -m recalib quickstart", "wall_seconds": wall, "cpu": "x", "cores": 2,
           "load_before": "0", "load_after": "0", "date": "today"}
    metrics = [{"epoch": 1, "lr": 0.0, "train_loss": 0.5, "train_error": 8.0, "test_error": err, "images_per_s": 500.0,
                "seconds": 120.0, "eval_seconds": 7.0}]
    text = _module().render(rec, _summary(err), metrics)
    time_row = next(line for line in text.splitlines() if line.startswith("| wall time"))
    err_row = next(line for line in text.splitlines() if line.startswith("| test error"))
    assert f"{wall / 60:.1f} min" in time_row and time_row.rstrip(" |").endswith(verdicts[0])
    assert f"{err:.2f} %" in err_row and err_row.rstrip(" |").endswith(verdicts[1])
    assert "| 1 |" in text  # the per-epoch row


def test_render_adds_the_validation_check() -> None:
    rec = {"command": "c", "wall_seconds": 60.0, "cpu": "x", "cores": 2, "load_before": "0", "load_after": "0",
           "date": "today"}
    m = [{"epoch": 1, "lr": 0.0, "train_loss": 0.5, "train_error": 8.0, "test_error": 7.5, "images_per_s": 500.0,
          "seconds": 120.0, "eval_seconds": 7.0}]
    vs = _summary(8.25)
    vs["config"]["val_split"] = 10000
    vs.update(train_images=50000, eval_set="validation")
    text = _module().render(rec, _summary(7.5), m, (vs, [{**m[0], "test_error": 8.25}]))
    assert "--val-split 10000" in text and "50000 training images" in text
    assert "| 1 | 8.25 | 8.00 | 120.0 |" in text
