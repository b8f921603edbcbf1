"""Issue 13, item 8: an explicit --data-dir is the only place looked at (no silent fallback to another copy), a
missing one is a one-line error naming it, and summary.json records the files a run actually read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recalib.data import DataNotFoundError, _download, load_small
from recalib.data import fashion_mnist as fm

SYSTEM = Path("/usr/share/datasets/fashion-mnist")


def test_missing_data_dir_is_an_error_naming_it(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALIB_DATA", str(isolated / "env"))
    with pytest.raises(DataNotFoundError) as info:
        load_small("fashion-mnist", "test", data_dir=isolated / "typo")
    message = str(info.value)
    assert str(isolated / "typo") in message and "does not exist" in message and "\n" not in message
    assert not (isolated / "typo").exists()  # nothing created, nothing downloaded


def test_data_dir_without_the_files_does_not_fall_back(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (SYSTEM / fm.FILES["test-images"][0]).is_file():
        pytest.skip("needs the system copy of Fashion-MNIST (scripts/setup.sh installs it)")
    monkeypatch.setattr(_download, "SYSTEM_DATA_DIRS", (SYSTEM.parent,))  # a good copy the old code fell back to
    empty = isolated / "empty"
    empty.mkdir()
    monkeypatch.setattr(fm, "BASE_URL", (isolated / "offline").as_uri() + "/")
    with pytest.raises(DataNotFoundError) as info:
        load_small("fashion-mnist", "test", data_dir=empty)
    message = str(info.value)
    assert f"--data-dir {empty} lacks it" in message and "\n" not in message
    assert str(SYSTEM) not in message.split("To fix")[0]


def test_cli_exits_2_with_one_line(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from recalib.cli import main

    code = main(["train", "--recipe", "quick", "--data-dir", str(isolated / "nowhere"), "--out", str(isolated / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(isolated / "nowhere") in err


def test_summary_records_where_the_data_came_from(tmp_path: Path) -> None:
    if not (SYSTEM / fm.FILES["train-images"][0]).is_file():
        pytest.skip("needs the system copy of Fashion-MNIST (scripts/setup.sh installs it)")
    from recalib.train import resolve_config, train

    out = tmp_path / "run"
    train(resolve_config("quick", data_dir=str(SYSTEM), subset=128, test_subset=100, epochs=1, batch_size=64,
                         threads=1, out=str(out), progress=False, logger="none"))
    source = json.loads((out / "summary.json").read_text())["data_source"]
    assert source["train"] == f"{SYSTEM / 'train-images-idx3-ubyte.gz'}, {SYSTEM / 'train-labels-idx1-ubyte.gz'}"
    assert source["test"].startswith(str(SYSTEM / "t10k-images-idx3-ubyte.gz"))
