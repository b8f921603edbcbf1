"""train(config): the run folder, resume rules and user errors, on tiny slices of real Fashion-MNIST."""

import json
import math
import os
from pathlib import Path

import pytest
import torch

from recalib import create_model
from recalib.train import NonFiniteLossError, load_checkpoint, model_from_checkpoint, resolve_config, train
from recalib.train.cli_eval import evaluate_checkpoint
from recalib.train.config import TrainConfig

METRIC_KEYS = {"epoch", "step", "lr", "train_loss", "train_error", "test_loss", "test_error", "test_top5_error",
               "seconds", "images_per_s"}
SUMMARY_KEYS = {"final_test_error", "best_test_error", "final_test_top5_error", "params", "macs", "wall_seconds",
                "device", "versions", "git_commit", "epochs_completed", "config"}


def tiny(out, **kw) -> TrainConfig:
    values = {"subset": 256, "test_subset": 200, "epochs": 2, "batch_size": 64, "threads": 1, "device": "cpu",
              "progress": False, "out": str(out), **kw}
    return resolve_config("quick", **values)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = tiny(out)
    return cfg, train(cfg), out


def test_run_folder(finished) -> None:
    cfg, summary, out = finished
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.jsonl", "checkpoint.pt", "summary.json",
                                                "curves.png", "tb"}
    assert TrainConfig.from_dict(json.loads((out / "config.json").read_text())) == cfg
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and [r["step"] for r in records] == [4, 8]
    assert all(METRIC_KEYS <= set(r) for r in records)
    assert all(0 <= r["test_error"] <= 100 and r["test_top5_error"] <= r["test_error"] for r in records)
    on_disk = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(on_disk) and on_disk["status"] == "completed"
    assert on_disk["final_test_error"] == records[-1]["test_error"]
    assert on_disk["best_test_error"] == min(r["test_error"] for r in records)
    assert on_disk["epochs_completed"] == 2 and on_disk["test_images"] == 200 and on_disk["train_images"] == 256
    assert on_disk["params"] > 0 and on_disk["macs"] > 0 and on_disk["versions"]["torch"] == torch.__version__
    assert summary["final_test_error"] == on_disk["final_test_error"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())


def test_checkpoint_contents_and_eval(finished) -> None:
    cfg, summary, out = finished
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["epoch"] == 2 and ck["step"] == 8 and ck["config"] == cfg.to_dict()
    assert set(ck) >= {"model", "optimizer", "scaler", "rng", "format_version", "history"}
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ck["model"])  # unwrapped, uncompiled
    # Re-evaluating the checkpoint on the same 200 test images reproduces the last epoch's numbers.
    m = evaluate_checkpoint(out / "checkpoint.pt", device="cpu", subset=200)
    assert m["test_images"] == 200
    assert m["test_error"] == pytest.approx(summary["final_test_error"])
    assert m["test_loss"] == pytest.approx(summary["final_test_loss"], rel=1e-5)


def test_existing_run_needs_resume_or_overwrite(finished) -> None:
    cfg, summary, out = finished
    with pytest.raises(ValueError, match="already holds a run.*--resume.*--overwrite"):
        train(cfg)
    with pytest.raises(ValueError, match=r"configuration differs \(lr: checkpoint 0.4, now 0.1\)"):
        train(tiny(out, lr=0.1), resume=True)
    again = train(tiny(out, device="cpu", threads=2), resume=True)  # run-time fields may change; nothing left to do
    assert again["epochs_completed"] == 2 and again["final_test_error"] == summary["final_test_error"]


def test_val_split_evaluates_on_held_out_training_images(tmp_path) -> None:
    s = train(tiny(tmp_path, epochs=1, val_split=300, test_subset=0, tensorboard=False))
    assert s["eval_set"] == "validation" and s["test_images"] == 300 and s["train_images"] == 256


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    # lr 0.01 for epoch 1, then x1e30 from epoch 2: the loss becomes NaN/inf.
    cfg = tiny(tmp_path, epochs=3, schedule="multistep", milestones=(1,), gamma=1e30, lr=0.01, warmup_epochs=0.0,
               tensorboard=False)
    with pytest.raises(NonFiniteLossError, match="not finite.*last good checkpoint"):
        train(cfg)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "diverged" and s["epochs_completed"] == 1 and math.isfinite(s["final_test_error"])


def test_model_args_reach_the_model_and_the_checkpoint(tmp_path) -> None:
    # Option-B shortcuts add 1x1 projection convs: the rebuilt model has their weights, a default one does not.
    cfg = tiny(tmp_path, epochs=1, subset=128, test_subset=100, model_args="shortcut='B'")
    train(cfg)
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["model_args"]["kwargs"] == {"shortcut": "B"}
    model, config = model_from_checkpoint(tmp_path / "checkpoint.pt")
    assert config["model_args"] == "shortcut='B'"
    plain = create_model("resnet20", recalib="mssar", in_chans=1, num_classes=10)
    extra = set(model.state_dict()) - set(plain.state_dict())
    assert extra and all("shortcut" in k or "downsample" in k for k in extra)
    m = evaluate_checkpoint(tmp_path / "checkpoint.pt", device="cpu", subset=100)
    assert m["test_images"] == 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model_args": "shortcut='C'"}, "shortcut"),
        ({"sync_bn": True}, "sync-bn needs CUDA"),
        ({"model": "resnet7"}, "resnet7"),
        ({"dataset": "mnist"}, "unknown data set 'mnist'"),
        ({"device": "quantum"}, "unknown device 'quantum'"),
        ({"batch_size": 512}, "no whole batch"),
    ],
)
def test_user_errors(tmp_path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train(tiny(tmp_path, **kwargs))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_requested_without_cuda(tmp_path) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        train(tiny(tmp_path, device="cuda"))


def test_folder_dataset_path(tmp_path) -> None:
    """The ImageNet (ImageFolder) path end to end on 6 generated JPEGs: CPU batches moved to the device."""
    image = pytest.importorskip("PIL.Image")
    for split in ("train", "val"):
        for c, wnid in enumerate(("n01440764", "n01443537")):
            (tmp_path / "in" / split / wnid).mkdir(parents=True)
            for i in range(3):
                image.new("RGB", (40, 32), (200 * c, 50, 30 * i)).save(tmp_path / "in" / split / wnid / f"{i}.JPEG")
    cfg = resolve_config("paper-imagenet", model="resnet18", data_dir=str(tmp_path / "in"), out=str(tmp_path / "o"),
                         epochs=1, batch_size=2, eval_batch_size=2, workers=0, threads=1, device="cpu",
                         tensorboard=False, progress=False)
    s = train(cfg)
    assert s["test_images"] == 6 and s["train_images"] == 6 and s["epochs_completed"] == 1
    with pytest.raises(ValueError, match="only supported for small data sets"):
        train(resolve_config("paper-imagenet", data_dir=str(tmp_path / "in"), out=str(tmp_path / "p"), subset=4))
    with pytest.raises(ValueError, match="needs --data-dir"):
        train(resolve_config("paper-imagenet", out=str(tmp_path / "q"), device="cpu"))


def _blow_up_after_epoch(monkeypatch, epoch: int) -> None:
    """Make the weights NaN on the last step of epoch ``epoch`` (1-based), after the loss was last checked."""
    import recalib.train.run as run_module

    real = run_module.train_one_epoch
    calls = {"n": 0}

    def train_one_epoch(model, *args, **kwargs):  # noqa: ANN001, ANN202
        metrics = real(model, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == epoch:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return metrics

    monkeypatch.setattr(run_module, "train_one_epoch", train_one_epoch)


def test_non_finite_weights_are_never_checkpointed(tmp_path, monkeypatch) -> None:
    _blow_up_after_epoch(monkeypatch, 2)
    with pytest.raises(NonFiniteLossError, match=r"parameter conv1.weight is not finite.*after epoch 2.*last good "
                                                 r"checkpoint \(epoch 1\) was kept"):
        train(tiny(tmp_path, epochs=3, tensorboard=False))
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "diverged"


def test_divergence_before_any_checkpoint_says_so(tmp_path, monkeypatch) -> None:
    _blow_up_after_epoch(monkeypatch, 1)
    with pytest.raises(NonFiniteLossError) as info:
        train(tiny(tmp_path, epochs=2, tensorboard=False))
    assert "no checkpoint was written" in str(info.value) and "last good checkpoint" not in str(info.value)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_overwrite_validates_before_deleting(finished) -> None:
    cfg, summary, out = finished
    def files() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != ".lock"}

    before = files()
    for bad, match in (({"batch_size": 512}, "no whole batch"), ({"model": "resnet7"}, "resnet7"),
                       ({"model_args": "shortcut='C'"}, "shortcut")):
        with pytest.raises((ValueError, FileNotFoundError), match=match):
            train(tiny(out, **bad), overwrite=True)
        assert files() == before  # nothing removed or rewritten
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2


def _full_disk_at_epoch(monkeypatch, epoch: int) -> None:
    """``torch.save`` of the checkpoint of ``epoch`` writes a little, then fails as a full disk does."""
    import errno

    real = torch.save

    def save(obj, f, *args, **kwargs):  # noqa: ANN001, ANN202
        if isinstance(obj, dict) and obj.get("epoch") == epoch:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_full_disk_stops_cleanly_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    from recalib.train.run import OutputError

    cfg = tiny(tmp_path, epochs=2, tensorboard=False)
    _full_disk_at_epoch(monkeypatch, 2)
    with pytest.raises(OutputError, match=r"cannot write .*checkpoint.pt: No space left on device; training "
                                          r"stopped and checkpoint.pt still holds epoch 1\..*--resume"):
        train(cfg)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1  # the previous checkpoint survives
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1  # never ahead of the checkpoint
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    monkeypatch.undo()
    s = train(cfg, resume=True)
    assert s["epochs_completed"] == 2
    assert [json.loads(x)["epoch"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_full_disk_is_one_line_from_the_cli(tmp_path, monkeypatch, capsys) -> None:
    from recalib.cli import main

    _full_disk_at_epoch(monkeypatch, 1)
    argv = ["train", "--recipe", "quick", "--subset", "128", "--test-subset", "100", "--epochs", "1",
            "--batch-size", "64", "--threads", "1", "--device", "cpu", "--no-tensorboard", "--no-progress",
            "--out", str(tmp_path)]
    assert main(argv) == 2  # issue 22, item 3: exit 2 (it was 1), like every error the user can fix
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "no checkpoint was written yet" in err
    assert not (tmp_path / "checkpoint.pt").exists()


def test_the_schedule_is_the_one_source_of_the_rate(tmp_path) -> None:
    """--lr reaches the optimizer only through the schedule: its constructed rate is the first step's, and every
    step uses the schedule's rate (a linear decay after a one-epoch warm-up, written out by hand here)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen: list[tuple[float, float]] = []  # (the optimizer's constructed lr, the lr it steps with)
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append((opt.defaults["lr"], opt.param_groups[0]["lr"])))
    try:
        train(tiny(tmp_path / "run", warmup_epochs=1.0, logger="none"))  # lr 0.4, 4 steps per epoch, 8 steps
    finally:
        handle.remove()
    peak, warm, total = 0.4, 4, 8
    expected = [peak * (s + 1) / warm if s < warm else peak * (1 - (s - warm) / (total - warm)) for s in range(total)]
    assert [lr for _, lr in seen] == pytest.approx(expected)
    assert [first for first, _ in seen] == pytest.approx([expected[0]] * total)  # not a dead --lr value
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == pytest.approx([expected[3], expected[7]])


# -------------------------------------------------------------------------------------------- issue 22 ---
class _SmallDisk:
    """A file whose writes fail as on a full disk once ``room`` bytes are written (torch's zip writer turns
    that into ``RuntimeError: [enforce fail at inline_container.cc] unexpected pos``)."""

    def __init__(self, f, room: int) -> None:  # noqa: ANN001
        self._f, self._room = f, room

    def write(self, data) -> int:  # noqa: ANN001
        import errno

        n = memoryview(data).nbytes
        if n > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= n
        return self._f.write(data)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._f, name)

    def __enter__(self) -> "_SmallDisk":
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self._f.close()


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A run folder on a disk with room for one checkpoint of ``tiny`` but not two: a tmpfs when the test runs as
    root and can mount one, else the write of the second checkpoint's temporary file fails after 1000 bytes."""
    import subprocess

    import recalib._io

    probe = tmp_path / "probe"
    train(tiny(probe, epochs=1, subset=128, test_subset=100, tensorboard=False))
    size = (probe / "checkpoint.pt").stat().st_size
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size * 3 // 2 + (256 << 10)}", "tmpfs", str(disk)],
        capture_output=True).returncode == 0
    if not mounted:
        real_open, opened = open, []

        def small_open(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            f = real_open(path, mode, *args, **kwargs)
            if ".checkpoint.pt.tmp-" in str(path):
                opened.append(path)
                return _SmallDisk(f, 10**12 if len(opened) == 1 else 1000)
            return f

        monkeypatch.setattr(recalib._io, "open", small_open, raising=False)
    yield disk / "run"
    if mounted:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_inside_torch_save_is_one_line_and_keeps_the_last_checkpoint(small_disk, capsys) -> None:
    """Issue 22, item 3: torch's zip writer raised RuntimeError on a full disk (only OSError was caught): a
    30-line traceback. Now one line, exit 2, the last good checkpoint kept and named."""
    from recalib.cli import main

    argv = ["train", "--recipe", "quick", "--subset", "128", "--test-subset", "100", "--epochs", "2",
            "--batch-size", "64", "--threads", "1", "--device", "cpu", "--no-tensorboard", "--no-progress",
            "--out", str(small_disk)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"cannot write {small_disk / 'checkpoint.pt'}: No space left on device" in err
    assert "checkpoint.pt still holds epoch 1" in err and "--resume" in err
    assert load_checkpoint(small_disk / "checkpoint.pt")["epoch"] == 1
    assert not [p for p in small_disk.iterdir() if ".tmp" in p.name]


def _files(folder) -> dict[str, tuple[int, bytes]]:  # noqa: ANN001
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_resuming_a_finished_run_rewrites_nothing(finished, tmp_path, monkeypatch) -> None:
    """Issue 22, item 5: --resume on a complete run rewrote summary.json with this checkout's commit (a run
    trained from a dirty tree became exportable) and --amp bf16 was recorded for an fp32 run."""
    import shutil

    import recalib.train._outputs as outputs

    cfg, summary, out = finished
    run = tmp_path / "run"
    shutil.copytree(out, run)
    before = _files(run)
    monkeypatch.setattr(outputs, "git_commit", lambda: "0123456789abcdef")  # a clean commit that did not train it
    again = train(tiny(run, amp="bf16", threads=2), resume=True)
    assert _files(run) == before  # not one byte, not one timestamp: config, metrics, summary, curves, tb
    assert again == json.loads((run / "summary.json").read_text())
    assert again["amp"] == "off" and again["git_commit"] == summary["git_commit"]


def test_overwrite_removes_a_tb_link_never_its_target(finished, tmp_path) -> None:
    """Issue 22, item 8: --overwrite with tb/ a symlink deleted five files, then failed on rmtree(link)."""
    import shutil

    cfg, _, out = finished
    run = tmp_path / "run"
    shutil.copytree(out, run)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run / "tb", elsewhere)
    (run / "tb").symlink_to(elsewhere, target_is_directory=True)
    kept = sorted(p.name for p in elsewhere.iterdir())
    # Something that cannot be deleted as a run file is found before anything is deleted.
    (run / "summary.json").unlink()
    (run / "summary.json").mkdir()
    before = _files(run)
    with pytest.raises(ValueError, match=r"summary.json is a folder, not the run's summary.json; move it away"):
        train(tiny(run, epochs=1, tensorboard=False), overwrite=True)
    assert _files(run) == before and (run / "tb").is_symlink()
    (run / "summary.json").rmdir()
    s = train(tiny(run, epochs=1, tensorboard=False), overwrite=True)
    assert s["epochs_completed"] == 1 and not (run / "tb").exists()  # the link went, and only the link
    assert sorted(p.name for p in elsewhere.iterdir()) == kept


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupt_says_where_the_resumable_checkpoint_is(tmp_path, sig: str) -> None:
    """Issue 22, item 11: SIGINT printed a traceback and SIGTERM ended training without a word."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    paused = str(Path(__file__).resolve().parent / "_paused_train.py")  # holds epoch 2's checkpoint write
    cmd = [sys.executable, paused, "2:120", "train", "--recipe", "quick", "--subset", "128", "--test-subset", "100",
           "--epochs", "3", "--batch-size", "64", "--threads", "1", "--device", "cpu", "--no-tensorboard",
           "--no-progress", "--out", str(out)]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RECALIB_")}, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 240
        while not ((out / "checkpoint.pt").exists() and list(out.glob(".checkpoint.pt.tmp-*"))):  # epoch 2's
            assert proc.poll() is None and time.monotonic() < end, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + getattr(signal, sig), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"recalib train: interrupted by {sig}: the resumable checkpoint is "
                          f"{out / 'checkpoint.pt'} (epoch 1 of 3): continue with --resume"), err
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1 and not list(out.glob(".checkpoint.pt.tmp-*"))


def test_a_failed_curves_write_names_curves_png(tmp_path, monkeypatch) -> None:
    """Issue 22, item 11: a failed curves.png write was reported as metrics.jsonl."""
    import errno

    import recalib.train.run as run_mod
    from recalib.train.run import OutputError

    def no_room(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_mod, "plot_curves", no_room)
    with pytest.raises(OutputError, match=r"cannot write \S*curves.png: No space left on device; training stopped "
                                          r"and the checkpoint of epoch 1 was written") as info:
        train(tiny(tmp_path, epochs=1, subset=128, test_subset=100, tensorboard=False))
    assert "metrics.jsonl" not in str(info.value)
