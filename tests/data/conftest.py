"""Fixtures for the data tests: an isolated search path (no $RECALIB_DATA, no system data, a temporary cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recalib.data import _download


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing outside ``tmp_path`` is searched: no $RECALIB_DATA, no /usr/share/datasets, cache under tmp."""
    monkeypatch.delenv("RECALIB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_download, "SYSTEM_DATA_DIRS", ())
    return tmp_path
