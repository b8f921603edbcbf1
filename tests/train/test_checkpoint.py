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


# -------------------------------------------------------------------------------------------- issue 22 ---
@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    from recalib.train import resolve_config, train

    out = tmp_path_factory.mktemp("run")
    cfg = resolve_config("quick", subset=128, test_subset=100, epochs=1, batch_size=64, threads=1, device="cpu",
                         progress=False, tensorboard=False, out=str(out))
    train(cfg)
    os.replace(out / ck.CHECKPOINT_NAME, out / "good.pt")
    return cfg, out


@pytest.mark.parametrize(("field", "value", "match"), [
    ("rng", [], r"rng is \[\], expected a list of each process's generator states"),
    ("rng", [{"torch": 5, "numpy": {}, "python": []}], r"generator states \(rng\) are malformed"),
    ("history", 5, "history is 5, expected a list of per-epoch records"),
    ("history", [{"epoch": 1}], "expected a list of per-epoch records"),
    ("epoch", "1", "epoch is '1', expected an integer"),
    ("wall_seconds", None, "wall_seconds is None, expected a number"),
])
def test_absurd_resume_fields_are_one_line_errors(one_epoch, tmp_path, field, value, match) -> None:
    """Issue 22, item 11: rng=[] or history=5 in a checkpoint gave an IndexError / TypeError traceback."""
    import dataclasses

    from recalib.train import train

    cfg, out = one_epoch
    run = tmp_path / "run"
    run.mkdir()
    ck.save_checkpoint({**ck.load_checkpoint(out / "good.pt"), field: value}, run / ck.CHECKPOINT_NAME)
    with pytest.raises(ValueError, match=match) as info:
        train(dataclasses.replace(cfg, out=str(run)), resume=True)
    assert "\n" not in str(info.value) and str(run / ck.CHECKPOINT_NAME) in str(info.value)


@pytest.mark.parametrize(("args", "match"), [
    ({"num_classes": 10**11}, r"model_args.num_classes is 100000000000, not an integer in \[1, 1000000\]"),
    ({"num_classes": 10.0}, "model_args.num_classes is 10.0"),
    ({"in_chans": -1}, "model_args.in_chans is -1"),
    ({"recalib": 5}, "model_args.recalib is 5"),
    ({"kwargs": [1]}, r"model_args.kwargs is \[1\]"),
])
def test_absurd_model_args_are_one_line_errors(one_epoch, tmp_path, args, match) -> None:
    """Issue 22, item 11: num_classes 1e11 in a checkpoint tried to allocate the layer (a traceback, or the
    machine's memory) in eval and export."""
    from recalib.pretrained import export_pretrained
    from recalib.train.cli_eval import evaluate_checkpoint

    _, out = one_epoch
    state = ck.load_checkpoint(out / "good.pt")
    path = tmp_path / ck.CHECKPOINT_NAME
    ck.save_checkpoint({**state, "model_args": {**state["model_args"], **args}}, path)
    for action in (lambda: ck.model_from_checkpoint(path), lambda: evaluate_checkpoint(path, device="cpu"),
                   lambda: export_pretrained(path, tmp_path / "export", allow_dirty=True)):
        with pytest.raises(ValueError, match=match) as info:
            action()
        assert "\n" not in str(info.value) and str(path) in str(info.value)
