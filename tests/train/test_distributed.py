"""DistributedDataParallel on gloo processes under torchrun: two ranks against one process with the same global
batch; a frozen rank ends the job within --dist-timeout; two torchrun agents (the multi-node command) train one
run; torchrun's restart of a killed worker resumes it to the weights of an uninterrupted run.

With BatchNorm frozen (eval mode) and SGD, the gradient of the mean loss over the global batch does not
depend on how the batch is split: 2 ranks x 32 images must give the weights of 1 process x 64 images, up
to float rounding. ``--check-ranks`` asserts after every step that both ranks hold identical weights.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from recalib.train import load_checkpoint

pytestmark = pytest.mark.slow

ARGS = ["--recipe", "quick", "--subset", "256", "--test-subset", "201", "--epochs", "2", "--batch-size", "64",
        "--lr", "0.02", "--momentum", "0", "--no-nesterov", "--warmup-epochs", "0", "--freeze-bn", "--check-ranks", "--threads", "1", "--device", "cpu",
        "--no-tensorboard", "--no-progress"]


def test_two_gloo_ranks_match_one_process(tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "recalib", "train", *ARGS, "--out", str(tmp_path / "ddp")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    single = subprocess.run([sys.executable, "-m", "recalib", "train", *ARGS, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, env=env, timeout=300)
    out, err = ddp.communicate(timeout=300)
    assert ddp.returncode == 0, err[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]
    assert out.count("recalib train:") == 1  # logging from rank 0 only

    s_ddp = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    s_one = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert s_ddp["world_size"] == 2 and s_one["world_size"] == 1
    assert s_ddp["rank_checks"] == s_ddp["steps"] == 8  # identical weights after every one of the 8 steps
    assert s_ddp["test_images"] == s_one["test_images"] == 201  # every test image once (ranks get 101 + 100)
    assert s_ddp["train_images"] == 256

    a, b = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt"), load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    assert len(a["rng"]) == 2 and a["world_size"] == 2
    # A different split of the data would move weights by ~lr * grad ~ 1e-3; float rounding moves them ~1e-7.
    for k, v in b["model"].items():
        torch.testing.assert_close(a["model"][k], v, rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
    m_ddp = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    m_one = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    for r, q in zip(m_ddp, m_one):
        assert r["train_loss"] == pytest.approx(q["train_loss"], rel=1e-4)
        assert r["test_loss"] == pytest.approx(q["test_loss"], rel=1e-3)
        assert r["lr"] == q["lr"] and r["step"] == q["step"]


# ------------------------------------------------------------------- torchrun: time-outs, nodes, restarts ---
TINY = ["--recipe", "quick", "--subset", "256", "--test-subset", "100", "--batch-size", "64", "--threads", "1",
        "--device", "cpu", "--no-tensorboard", "--no-progress"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECALIB_", "TORCHELASTIC_"))}
    return {**env, "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--monitor-interval=0.2", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120.0) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"torchrun ended (rc {proc.returncode}) too early"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


_NEEDS_PROC = pytest.mark.skipif(not Path(f"/proc/self/task/{os.getpid()}/children").exists(),
                                 reason="finds torchrun's worker processes through /proc/PID/task/PID/children")


def _workers(agent: int) -> dict[int, int]:
    """``{rank: pid}`` of a torchrun agent's worker processes (from /proc)."""
    found = {}
    for pid in Path(f"/proc/{agent}/task/{agent}/children").read_text().split():
        for var in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if var.startswith(b"RANK="):
                found[int(var[5:])] = int(pid)
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"  # exited, not yet reaped
    except OSError:
        return True


@_NEEDS_PROC
def test_a_rank_that_stops_responding_ends_the_job(tmp_path) -> None:
    """Rank 1 is frozen (SIGSTOP) in the middle of training: rank 0 stops within --dist-timeout instead of hanging."""
    out = tmp_path / "run"
    agent = subprocess.Popen(_torchrun("--standalone", "--nproc_per_node=2", "-m", "recalib", "train", *TINY,
                                       "--epochs", "20", "--dist-timeout", "3", "--out", str(out)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    workers: dict[int, int] = {}
    try:
        _wait_for(lambda: (out / "checkpoint.pt").exists(), agent)
        workers = _workers(agent.pid)
        os.kill(workers[1], signal.SIGSTOP)
        frozen = time.monotonic()
        while not _gone(workers[0]):
            assert time.monotonic() - frozen < 60, "rank 0 still waits for the frozen rank"
            time.sleep(0.1)
        waited = time.monotonic() - frozen
    finally:
        for pid in workers.values():  # let torchrun's SIGTERM reach the frozen rank
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        _, err = agent.communicate(timeout=120)
    assert 3 <= waited < 45  # the time-out, plus the time to reach the collective and to exit
    assert agent.returncode != 0
    assert "another process did not respond within --dist-timeout 3 s" in err


def test_two_torchrun_agents_train_one_run(tmp_path) -> None:
    """The documented multi-node command, both "nodes" on this machine: a c10d rendezvous on 127.0.0.1."""
    endpoint = f"127.0.0.1:{_free_port()}"
    out = tmp_path / "run"
    node = _torchrun("--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint={endpoint}",
                     "--rdzv_id=recalib-test", "-m", "recalib", "train", *TINY, "--epochs", "1", "--check-ranks",
                     "--dist-timeout", "60", "--out", str(out), "--resume")
    agents = [subprocess.Popen(node, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
              for _ in range(2)]
    results = [a.communicate(timeout=240) for a in agents]
    for agent, (_, err) in zip(agents, results):
        assert agent.returncode == 0, err[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["rank_checks"] == summary["steps"] == 4
    assert load_checkpoint(out / "checkpoint.pt")["world_size"] == 2


@_NEEDS_PROC
def test_elastic_restart_resumes_to_the_same_weights(tmp_path) -> None:
    """--max-restarts=1: the worker is killed while it writes its second checkpoint; torchrun restarts it, it
    resumes from the first checkpoint and ends bit-identical to an uninterrupted run."""
    args = ["-m", "recalib", "train", *TINY, "--epochs", "3", "--resume"]
    ref = subprocess.Popen([sys.executable, *args, "--out", str(tmp_path / "ref")], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=_env())
    out = tmp_path / "run"
    held = [str(Path(__file__).resolve().parent / "_paused_train.py"), "2:3", *args[2:]]  # epoch 2's write held
    agent = subprocess.Popen(_torchrun("--standalone", "--nproc_per_node=1", "--max-restarts=1", *held,
                                       "--out", str(out)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    # The worker holds still in the write of epoch 2's checkpoint (epoch 1's is in place).
    _wait_for(lambda: any(out.glob(".checkpoint.pt.tmp-*")) and (out / "checkpoint.pt").exists(), agent)
    (pid,) = _workers(agent.pid).values()
    os.kill(pid, signal.SIGKILL)
    stdout, err = agent.communicate(timeout=240)
    assert agent.returncode == 0, err[-3000:]
    assert "resumed" in stdout and "at epoch 1" in stdout  # the restarted worker continued the run
    assert ref.wait(timeout=240) == 0
    a, b = load_checkpoint(tmp_path / "ref" / "checkpoint.pt"), load_checkpoint(out / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in metrics] == [1, 2, 3]
