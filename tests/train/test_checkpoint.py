"""Atomic checkpoint writes, weights_only loading and RNG state capture."""

import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from recalib.train import checkpoint as ck


def _state() -> dict:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    return {"format_version": ck.FORMAT_VERSION, "epoch": 1, "step": 3, "model": model.state_dict(),
            "optimizer": opt.state_dict(), "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(),
            "config": {"lr": 0.1, "milestones": [1, 2]}, "history": [{"epoch": 1, "test_error": 50.0}],
            "rng": [ck.capture_rng_state()]}


def test_roundtrip_with_weights_only(tmp_path) -> None:
    state = _state()
    path = ck.save_checkpoint(state, tmp_path / "checkpoint.pt")
    back = ck.load_checkpoint(path)
    assert back["epoch"] == 1 and back["config"] == state["config"] and back["history"] == state["history"]
    for k, v in state["model"].items():
        assert torch.equal(v, back["model"][k])
    mom = back["optimizer"]["state"][0]["momentum_buffer"]
    assert torch.equal(mom, state["optimizer"]["state"][0]["momentum_buffer"])
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left behind


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("echo pwned",))


def test_pickled_code_is_refused(tmp_path) -> None:
    torch.save({"format_version": ck.FORMAT_VERSION, "x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a readable recalib checkpoint"):
        ck.load_checkpoint(tmp_path / "evil.pt")


def test_format_version_and_missing_file(tmp_path) -> None:
    torch.save({"format_version": 999}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format 999"):
        ck.load_checkpoint(tmp_path / "future.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="no format_version"):
        ck.load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError):
        ck.load_checkpoint(tmp_path / "nope.pt")


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "checkpoint.pt"
    ck.save_checkpoint(_state(), path)
    good = path.read_bytes()

    def torn_save(obj, f):  # noqa: ANN001, ANN202 - writes half a file, then the process "dies"
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint({**_state(), "epoch": 2}, path)
    assert path.read_bytes() == good and ck.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_stale_temporaries_are_removed(tmp_path) -> None:
    (tmp_path / ".checkpoint.pt.tmp-123").write_bytes(b"partial")
    (tmp_path / "keep.txt").write_text("x")
    assert [p.name for p in ck.remove_stale_temporaries(tmp_path)] == [".checkpoint.pt.tmp-123"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_rng_capture_restore(tmp_path) -> None:
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    np.random.randn()  # leave a cached Gaussian behind
    ck.save_checkpoint({"format_version": ck.FORMAT_VERSION, "rng": ck.capture_rng_state()}, tmp_path / "r.pt")
    expected = (torch.rand(4), np.random.randn(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ck.restore_rng_state(ck.load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (torch.rand(4), np.random.randn(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]
