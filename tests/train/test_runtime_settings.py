"""Global torch settings (threads, TF32, determinism) belong to the entry points, not to ``train()``."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch

from recalib.train import resolve_config, train
from recalib.train._device import _cpu_count, cpu_threads

TINY = ["--recipe", "quick", "--subset", "128", "--test-subset", "100", "--epochs", "1", "--batch-size", "64",
        "--device", "cpu", "--no-tensorboard", "--no-progress"]


def _settings() -> tuple:
    return (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)


@pytest.fixture
def restore_settings() -> Iterator[None]:
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_cpu_threads(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads(5) == 5  # --threads wins
    assert cpu_threads(0) == 3  # then OMP_NUM_THREADS
    for unusable in ("", "0", "abc", "-2"):
        monkeypatch.setenv("OMP_NUM_THREADS", unusable)
        assert cpu_threads(0, 2) == max(1, _cpu_count() // 2)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cpu_threads(0) == _cpu_count()


def test_library_train_leaves_global_settings_alone(tmp_path, restore_settings) -> None:
    torch.set_num_threads(2)
    before = _settings()
    cfg = resolve_config("quick", subset=128, test_subset=100, epochs=1, batch_size=64, threads=1, deterministic=True,
                         device="cpu", progress=False, tensorboard=False, out=str(tmp_path))
    summary = train(cfg)
    assert _settings() == before
    assert summary["device"].endswith(", 2 threads)")  # the caller's setting, not config.threads


def test_cli_applies_threads_and_determinism(tmp_path, monkeypatch, restore_settings) -> None:
    from recalib.cli import main

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    torch.set_num_threads(1)
    assert main(["train", *TINY, "--deterministic", "--out", str(tmp_path / "a")]) == 0
    assert torch.are_deterministic_algorithms_enabled()
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["device"].endswith(", 3 threads)")
    assert main(["train", *TINY, "--threads", "2", "--out", str(tmp_path / "b")]) == 0  # --threads over the variable
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["device"].endswith(", 2 threads)")


def test_cli_default_threads_respect_omp_num_threads(tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "recalib", "train", *TINY, "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["device"].endswith(", 1 threads)")
