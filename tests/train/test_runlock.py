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

PAUSED = str(Path(__file__).resolve().parent / "_paused_train.py")  # recalib with the checkpoint write held
ARGS = ["--recipe", "quick", "--subset", "128", "--test-subset", "100", "--epochs", "1", "--batch-size", "64",
        "--threads", "1", "--device", "cpu", "--no-tensorboard", "--no-progress"]


def _cmd(out: Path, *extra: str, hold: str | None = None) -> list[str]:
    """``python -m recalib train ...``; ``hold="EPOCH:SECONDS"`` holds that epoch's checkpoint write."""
    launcher = ["-m", "recalib"] if hold is None else [PAUSED, hold]
    return [sys.executable, *launcher, "train", *ARGS, "--out", str(out), *extra]


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
    first = subprocess.Popen(_cmd(out, hold="1:120"), env=_env(), stdout=subprocess.PIPE,
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


# ----------------------------------------------------------------------- issue 22: planted lock files ---
def _plant(folder: Path, kind: str, victim: Path) -> None:
    folder.mkdir()
    if kind == "symlink":
        (folder / LOCK_NAME).symlink_to(victim)
    elif kind == "hardlink":
        os.link(victim, folder / LOCK_NAME)
    else:
        os.mkfifo(folder / LOCK_NAME)


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
def test_a_planted_lock_file_is_refused_without_touching_anything(tmp_path, kind) -> None:
    """Issue 22, item 1: a symlinked .lock emptied the file it pointed at; a FIFO hung train (and a look at it)."""
    victim = tmp_path / "precious.txt"
    victim.write_text("DATA\n")
    out = tmp_path / "run"
    _plant(out, kind, victim)
    with pytest.raises(ValueError, match=r"run lock .*\.lock is (a symbolic link|a file with 1 other hard link|"
                                         r"not a regular file).*delete it"):
        RunLock(out).acquire()
    with pytest.raises(ValueError, match="delete it"):
        lock_holder(out)
    # The command line: one line, exit 2, promptly (a FIFO used to hang here), nothing written anywhere.
    done = subprocess.run(_cmd(out), env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "delete it" in done.stderr, done.stderr
    assert victim.read_text() == "DATA\n"
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_the_holder_record_is_rewritten_in_place(tmp_path) -> None:
    """The lock file of a folder is reused run after run; its record is never truncated, only overwritten."""
    out = tmp_path / "run"
    with RunLock(out):
        size = (out / LOCK_NAME).stat().st_size
        assert (out / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} on ")
    assert (out / LOCK_NAME).stat().st_size == size and not (out / LOCK_NAME).read_text().strip()
    assert lock_holder(out) is None


# Probes the lock of argv[1] in a tight loop until argv[2] exists; prints how often it saw the lock held.
PROBER = """
import os, sys
from recalib.train.runlock import lock_holder
print("ready", flush=True)
seen = probes = 0
while not os.path.exists(sys.argv[2]):
    probes += 1
    seen += lock_holder(sys.argv[1]) is not None
print(probes, seen, flush=True)
"""


def test_looking_at_a_lock_never_makes_an_acquire_fail(tmp_path) -> None:
    """Issue 22, item 6: lock_holder() took the lock to look, so ~5 % of concurrent acquires were refused."""
    out, stop = tmp_path / "run", tmp_path / "stop"
    RunLock(out).acquire().release()
    probers = [subprocess.Popen([sys.executable, "-c", PROBER, str(out), str(stop)], env=_env(),
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    refused = acquired = 0
    try:
        for p in probers:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                lock = RunLock(out).acquire()
            except RunLockedError:
                refused += 1
                continue
            acquired += 1
            lock.release()
    finally:
        stop.touch()
    counts = [tuple(map(int, p.communicate(timeout=60)[0].split())) for p in probers]
    assert all(probes > 100 for probes, _ in counts), counts  # the probers really raced the acquires
    assert acquired > 100 and refused == 0, (acquired, refused, counts)
