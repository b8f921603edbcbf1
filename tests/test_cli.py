"""`recalib train`, `recalib eval` and `recalib quickstart` as a user runs them."""

import json
import runpy
import subprocess
import sys

import pytest
import torch

from recalib.cli import main
from recalib.train.config import RECIPES

TINY = ["--subset", "256", "--test-subset", "200", "--epochs", "1", "--batch-size", "64", "--threads", "1",
        "--device", "cpu", "--no-progress"]


def test_train_print_config(capsys) -> None:
    assert main(["train", "--recipe", "quick", "--epochs", "2", "--lr", "0.3", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["recipe"], cfg["epochs"], cfg["lr"], cfg["model"]) == ("quick", 2, 0.3, "resnet20")


def test_train_user_errors_exit_2(capsys) -> None:
    assert main(["train", "--recipe", "quick", "--schedule", "exp", "--print-config"]) == 2
    assert "unknown schedule 'exp'; valid choices" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--recipe", "nope"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", "does/not/exist.pt"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_then_eval_as_module(tmp_path, capsys) -> None:
    out = tmp_path / "x"
    train = subprocess.run(
        [sys.executable, "-m", "recalib", "train", "--model", "resnet20", "--recalib", "mssar", "--dataset",
         "fashion-mnist", "--recipe", "paper-cifar-resnet", *TINY, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert train.returncode == 0, train.stderr
    assert "epoch 1/1" in train.stdout
    summary = json.loads((out / "summary.json").read_text())
    # (the same dispatcher as `python -m recalib eval`, in this process to save an interpreter start)
    assert main(["eval", "--checkpoint", str(out / "checkpoint.pt"), "--dataset", "fashion-mnist", "--subset", "200",
                 "--device", "cpu", "--json", str(tmp_path / "eval.json")]) == 0
    assert "top-1 error" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["test_images"] == 200
    assert metrics["test_error"] == pytest.approx(summary["final_test_error"])
    _checkpoint_errors_are_one_line(tmp_path, out, capsys)


def _one_line_error(capsys, *needles: str) -> str:  # noqa: ANN001
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "weights_only" not in err and "trust" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _checkpoint_errors_are_one_line(tmp_path, out, capsys) -> None:  # noqa: ANN001
    """Issue 13 item 9: a run folder is a checkpoint; garbage and tampered checkpoints are one-line errors."""
    evaluate = ["eval", "--subset", "100", "--device", "cpu", "--checkpoint"]
    assert main([*evaluate, str(out)]) == 0  # the run folder stands for its checkpoint.pt
    assert "top-1 error" in capsys.readouterr().out
    (tmp_path / "garbage.pt").write_bytes(bytes(range(256)) * 4)
    assert main([*evaluate, str(tmp_path / "garbage.pt")]) == 2
    _one_line_error(capsys, "not a readable recalib checkpoint")

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    torch.save({"format_version": 1, "x": Evil()}, tmp_path / "evil.pt")
    assert main([*evaluate, str(tmp_path / "evil.pt")]) == 2
    _one_line_error(capsys, "Unsupported global: GLOBAL print", "never loads")
    assert main([*evaluate, str(tmp_path)]) == 2
    _one_line_error(capsys, "without a checkpoint.pt")

    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    ckpt["model"]["conv1.weight"] = torch.zeros(3, 3)  # tampered
    torch.save(ckpt, out / "checkpoint.pt")
    assert main([*evaluate, str(out)]) == 2
    _one_line_error(capsys, "do not fit", "conv1.weight has shape (3, 3)")
    assert main(["visualize", "--checkpoint", str(out), "--out", str(tmp_path / "g.png")]) == 2
    _one_line_error(capsys, "do not fit")
    assert main(["train", "--out", str(out), "--resume", "--device", "cpu", "--threads", "1"]) == 2
    _one_line_error(capsys, "do not fit")
    ckpt["model_args"]["name"] = "resnet32"  # a different model than the weights
    torch.save(ckpt, out / "checkpoint.pt")
    assert main([*evaluate, str(out)]) == 2
    _one_line_error(capsys, "do not fit", "missing (e.g. layer1.3.")


def test_train_refuses_to_overwrite_a_run(tmp_path, capsys) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"an earlier run")
    assert main(["train", "--recipe", "quick", *TINY, "--out", str(tmp_path)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_quickstart_prints_table_and_files(tmp_path, monkeypatch, capsys) -> None:
    # The real recipe on a tiny slice (the full quick-start is measured in docs/training.md).
    monkeypatch.setitem(RECIPES, "quick", {**RECIPES["quick"], "subset": 256, "test_subset": 200, "epochs": 1,
                                           "batch_size": 64, "progress": False, "tensorboard": False})
    assert main(["quickstart", "--out", str(tmp_path / "qs"), "--device", "cpu", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "test error" in out and "params" in out and "MACs" in out
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "summary.json", "curves.png"):
        assert str(tmp_path / "qs" / name) in out
    # Running it again replaces the previous quick-start.
    assert main(["quickstart", "--out", str(tmp_path / "qs"), "--device", "cpu", "--threads", "1"]) == 0


def test_quickstart_module_help(monkeypatch, capsys) -> None:
    # `python -m recalib.train.quickstart --help`, run in this interpreter.
    monkeypatch.setattr(sys, "argv", ["quickstart", "--help"])
    monkeypatch.delitem(sys.modules, "recalib.train.quickstart", raising=False)
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("recalib.train.quickstart", run_name="__main__")
    assert exc.value.code == 0 and "--out" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--seed", "4294967296", "--print-config"], "seed must be at most 4294967295"),
    (["train", "--seed", "1e20", "--print-config"], "argument --seed: invalid int value: '1e20'"),
    (["train", "--threads", str(10**20), "--print-config"], "threads must be at most 1024"),
    (["train", "--pad", str(10**20), "--print-config"], "pad must be at most 512"),
    (["train", "--epochs", str(10**20), "--print-config"], "epochs must be at most 2147483647"),
    (["train", "--lr", "inf", "--print-config"], "lr must be a finite number"),
    (["demo", "--channels", "0"], "--channels must be in [1, 4096], got 0"),
    (["demo", "--ops", "se;bogus"], "unknown recalibration operator 'bogus'"),
    (["demo", "--ops", "mssar(scales=(0,))"], "every scale must be a positive int"),
    (["profile", "--models", "resnet20", "--recalib", "se,mssar(scales=(0,))"], "cannot be built"),
    (["profile", "--models", "resnet20", "--num-classes", "0"], "--num-classes must be in [1, 65536], got 0"),
    (["visualize", "--pretrained", "fashion-mnist", "--cell", "100000"], "--cell in [16, 1024]"),
    (["eval", "--checkpoint", "x.pt", "--batch-size", str(10**20)], "--batch-size must be in [1, 1048576]"),
    (["study", "run", "fashion-mnist", "--variant", "none", "--dry-run", "--threads", str(10**20)], "--threads must be in [1, 1024]"),
])
def test_bad_flags_are_one_line_exit_2(argv, message, capsys) -> None:
    """Issue 13 items 10 and 11: bad values are refused with one line on stderr and exit status 2."""
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and message in err, err


def test_bad_paths_are_one_line_exit_2(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("not a folder")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("")
    (tmp_path / "broken.pt").write_bytes(b"x")
    tiny = ["--recipe", "quick", "--device", "cpu", "--threads", "1", "--no-progress"]
    cases = [
        (["train", *tiny, "--out", str(tmp_path / "file")], "is a file, not a folder"),
        (["train", *tiny, "--out", str(tmp_path / "file" / "run")], "cannot use --out"),
        (["train", *tiny, "--pad", "100", "--out", str(tmp_path / "p")], "--pad 100 exceeds the 28-pixel side"),
        (["train", "--config", str(deep), "--print-config"], f"{deep} is nested too deeply"),
        (["train", "--out", str(tmp_path / "run"), "--resume"], f"{tmp_path / 'run' / 'config.json'} is not valid JSON"),
        (["eval", "--checkpoint", str(tmp_path / "broken.pt"), "--json", str(tmp_path / "no" / "m.json")],
         f"the folder {tmp_path / 'no'} does not exist"),
        (["visualize", "--pretrained", "fashion-mnist", "--out", str(tmp_path / "no" / "g.png")], "does not exist"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err and message in err, (argv, err)
    assert not (tmp_path / "p" / "checkpoint.pt").exists()
