"""recalib profile: the table rows, the extra-over-baseline percentages, the writers and the CLI."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from recalib.analysis.profile import profile_table, split_list, to_markdown
from recalib.cli import main
from recalib.models import create_model
from recalib.models.complexity import complexity


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/models/conftest.py
    yield
    torch.set_num_threads(n)


def test_split_list_respects_parentheses() -> None:
    assert split_list("none, se,mssar(scales=(1, 2), strategy='sliding')") == [
        "none", "se", "mssar(scales=(1, 2), strategy='sliding')"
    ]
    assert split_list("resnet20(shortcut='B'),resnet56") == ["resnet20(shortcut='B')", "resnet56"]


def test_rows_and_percentages() -> None:
    rows = profile_table(["resnet20", "resnet20(shortcut='B')"], ["none", "se", "mssar"])
    assert [(r["model"], r["recalib"]) for r in rows] == [
        (m, o) for m in ("resnet20", "resnet20(shortcut='B')") for o in ("none", "se", "mssar")
    ]
    base, se, mssar = rows[:3]
    assert base["params"] == 269_722 and base["macs"] == 40_551_040 and base["input_size"] == "3x32x32"
    assert base["extra_params_pct"] == base["extra_macs_pct"] == 0.0
    ref = complexity(create_model("resnet20", recalib="mssar"), 32)
    assert {k: mssar[k] for k in ref} == ref
    assert mssar["extra_macs_pct"] == pytest.approx(100 * 219_744 / 40_551_040)
    assert se["extra_params_pct"] == pytest.approx(100 * (se["params"] - 269_722) / 269_722)
    assert rows[3]["macs"] == 40_813_184  # option B: the paper's 40.8M


def test_multi_stage_rows_and_baseline() -> None:
    rows = profile_table(["densenet_bc_100(multi_stage=True)"], ["mssar", "se"], input_size=16)
    ok, na = rows
    base = complexity(create_model("densenet_bc_100"), 16)  # the baseline drops multi_stage
    assert ok["extra_params_pct"] == pytest.approx(100 * (ok["params"] - base["params"]) / base["params"])
    assert ok["input_size"] == "3x16x16"
    assert na["params"] is None and "multi_stage" in na["note"]
    assert "n/a" in to_markdown(rows)


def test_unknown_names_raise_before_any_work() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet9'.*valid names"):
        profile_table(["resnet9"], ["none"])
    with pytest.raises(ValueError, match="unknown recalibration operator 'cbam'.*valid names"):
        profile_table(["resnet20"], ["none", "cbam"])


def test_cli_prints_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    md, out_csv = tmp_path / "t.md", tmp_path / "t.csv"
    rc = main(["profile", "--models", "resnet20", "--recalib", "none,ge,sge", "--input-size", "28",
               "--in-chans", "1", "--num-classes", "10", "--out-md", str(md), "--out-csv", str(out_csv)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed == md.read_text()
    assert printed.splitlines()[0].startswith("| model | operator |")
    with open(out_csv) as f:
        rows = list(csv.DictReader(f))
    assert [r["recalib"] for r in rows] == ["none", "ge", "sge"]
    base = complexity(create_model("resnet20", in_chans=1), 28)
    assert int(rows[0]["macs"]) == base["macs"] and int(rows[0]["params"]) == base["params"]
    assert int(rows[2]["params"]) - base["params"] == 2 * (3 * 4 + 3 * 8 + 3 * 16)  # SGE: 2 G per block, G = C / 4


def test_cli_reports_bad_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--models", "resnet20", "--recalib", "xyz"]) == 2
    assert "valid names" in capsys.readouterr().err
