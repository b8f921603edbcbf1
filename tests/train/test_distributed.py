"""DistributedDataParallel on two gloo processes (torchrun), against one process with the same global batch.

With BatchNorm frozen (eval mode) and SGD, the gradient of the mean loss over the global batch does not
depend on how the batch is split: 2 ranks x 32 images must give the weights of 1 process x 64 images, up
to float rounding. ``--check-ranks`` asserts after every step that both ranks hold identical weights.
"""

import json
import os
import subprocess
import sys

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
