"""A run killed with SIGKILL at any moment and resumed ends bit-identical to an uninterrupted run (CPU).

Real subprocesses of ``python -m recalib train`` on 256 Fashion-MNIST images, 3 epochs of 4 steps: one
uninterrupted reference; one killed at some point after its first checkpoint; one killed in the middle of
writing its second checkpoint (``tests/train/_paused_train.py`` holds the process between writing the
temporary file and ``os.replace``). Both are resumed with ``--resume``.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from recalib.train import load_checkpoint

pytestmark = pytest.mark.slow

PAUSED = str(Path(__file__).resolve().parent / "_paused_train.py")  # recalib with the checkpoint write held
ARGS = ["--recipe", "quick", "--subset", "256", "--test-subset", "100", "--epochs", "3", "--batch-size", "64",
        "--threads", "1", "--device", "cpu", "--no-tensorboard", "--no-progress"]


def _cmd(out: Path, *extra: str, hold: str | None = None) -> list[str]:
    """``python -m recalib train ...``; ``hold="EPOCH:SECONDS"`` holds that epoch's checkpoint write."""
    launcher = ["-m", "recalib"] if hold is None else [PAUSED, hold]
    return [sys.executable, *launcher, "train", *ARGS, "--out", str(out), *extra]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before the kill: {proc.stderr.read()}"
        assert time.monotonic() < end, "timed out waiting for the run"
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def _resume(outs: list[Path]) -> None:
    procs = [subprocess.Popen(_cmd(out, "--resume"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env()) for out in outs]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert "resumed" in stdout


def _assert_identical(ref: Path, other: Path) -> None:
    a, b = load_checkpoint(ref / "checkpoint.pt"), load_checkpoint(other / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"] == 12
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), f"{k} differs"
    for i, s in a["optimizer"]["state"].items():
        assert torch.equal(s["momentum_buffer"], b["optimizer"]["state"][i]["momentum_buffer"])
    lines = [[json.loads(x) for x in (p / "metrics.jsonl").read_text().splitlines()] for p in (ref, other)]
    assert [r["epoch"] for r in lines[1]] == [1, 2, 3]
    for key in ("train_loss", "train_error", "test_loss", "test_error", "lr", "step"):
        assert [r[key] for r in lines[0]] == [r[key] for r in lines[1]], key
    assert not list(other.glob(".checkpoint.pt.tmp-*"))


def test_sigkill_and_resume_is_bit_identical(tmp_path) -> None:
    ref, killed, torn = tmp_path / "ref", tmp_path / "killed", tmp_path / "torn"
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    reference = subprocess.Popen(_cmd(ref), env=_env(), **pipes)

    proc_killed = subprocess.Popen(_cmd(killed), env=_env(), **pipes)
    proc_torn = subprocess.Popen(_cmd(torn, hold="2:120"), env=_env(), **pipes)

    # 1. Killed a moment after the first checkpoint appeared (somewhere in epoch 2).
    _wait_for(lambda: (killed / "checkpoint.pt").exists(), proc_killed)
    time.sleep(0.3)
    _kill(proc_killed)
    assert load_checkpoint(killed / "checkpoint.pt")["epoch"] in (1, 2)

    # 2. Killed while writing the checkpoint of epoch 2: the temporary file exists, os.replace has not run.
    _wait_for(lambda: any(torn.glob(".checkpoint.pt.tmp-*")) and (torn / "checkpoint.pt").exists(), proc_torn)
    _kill(proc_torn)
    assert load_checkpoint(torn / "checkpoint.pt")["epoch"] == 1  # the old checkpoint is intact

    _resume([killed, torn])
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    _assert_identical(ref, killed)
    _assert_identical(ref, torn)


def test_a_write_error_stops_a_real_process_with_one_line(tmp_path) -> None:
    """Files may not grow past 200 kB (RLIMIT_FSIZE; Python ignores SIGXFSZ, so the write fails with EFBIG as it
    would with ENOSPC on a full disk): the first checkpoint cannot be written."""
    resource = pytest.importorskip("resource")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    out = tmp_path / "run"
    proc = subprocess.run(_cmd(out), env=_env(), capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr  # issue 22, item 3: exit 2 (was 1), one line
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"cannot write {out / 'checkpoint.pt'}: File too large" in proc.stderr
    assert "no checkpoint was written yet" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [".lock", "config.json", "metrics.jsonl"]
