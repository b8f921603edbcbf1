"""The run-folder lock: one process trains in a run folder at a time; a second one is refused before it
touches anything (today's failure: both "succeed", interleave ``metrics.jsonl`` and one deletes the other's
in-flight temporary checkpoint). Real subprocesses of ``python -m recalib train``."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recalib.train import resolve_config, train
from recalib.train.runlock import LOCK_NAME, RunLock, RunLockedError, lock_holder

ARGS = ["--recipe", "quick", "--subset", "128", "--test-subset", "100", "--epochs", "1", "--batch-size", "64",
        "--threads", "1", "--device", "cpu", "--no-tensorboard", "--no-progress"]


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "recalib", "train", *ARGS, "--out", str(out), *extra]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECALIB_")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def test_lock_is_exclusive_and_dies_with_its_holder(tmp_path) -> None:
    assert lock_holder(tmp_path / "nothing") is None and not (tmp_path / "nothing").exists()  # probing creates nothing
    with RunLock(tmp_path / "run"):
        assert f"pid {os.getpid()}" in (lock_holder(tmp_path / "run") or "")
        with pytest.raises(RunLockedError, match=f"is in use: pid {os.getpid()} on .* is training in it"):
            RunLock(tmp_path / "run").acquire()
        with pytest.raises(RunLockedError, match="is in use"):  # train() refuses before touching the folder
            train(resolve_config("quick", out=str(tmp_path / "run"), device="cpu"))
        assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_NAME]
    assert lock_holder(tmp_path / "run") is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        RunLock(tmp_path / "file").acquire()


@pytest.mark.slow
def test_second_training_in_a_live_run_folder_is_refused(tmp_path) -> None:
    out = tmp_path / "run"
    # The first process holds still between writing its temporary checkpoint and renaming it.
    first = subprocess.Popen(_cmd(out), env=_env(RECALIB_TEST_CHECKPOINT_PAUSE="1:120"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        while not list(out.glob(".checkpoint.pt.tmp-*")):
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < end, "the first run never wrote its checkpoint"
            time.sleep(0.05)
        for extra in (("--overwrite",), ("--resume",), ()):
            second = subprocess.run(_cmd(out, *extra), env=_env(), capture_output=True, text=True, timeout=120)
            assert second.returncode == 2, second.stderr
            assert second.stderr.count("\n") == 1 and f"is in use: pid {first.pid} on" in second.stderr
        assert list(out.glob(".checkpoint.pt.tmp-*")), "the second process deleted the first one's checkpoint"
        assert not (out / "metrics.jsonl").read_text()  # nothing interleaved: only the first writes
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert lock_holder(out) is None  # SIGKILL drops the lock: no stale lock to clean up
    done = subprocess.run(_cmd(out, "--resume"), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list(out.glob(".checkpoint.pt.tmp-*"))
