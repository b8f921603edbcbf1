"""``compile=True`` on CPU warns: torch.compile's training step was slower than eager there (docs/performance.md)."""

import pytest
import torch
from test_run import tiny

from recalib.train import train


def test_compile_on_cpu_warns(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch, "compile", lambda model, **kw: model)  # the warning, not the compiler, is tested
    train(tiny(tmp_path, compile=True, epochs=1))
    assert "warning: --compile on CPU" in capsys.readouterr().out
