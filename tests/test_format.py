"""recalib._format: counts, durations and Markdown tables, against hand-written expectations."""

from __future__ import annotations

import io
import sys

import pytest

from recalib._format import format_count, format_seconds, format_significant, markdown_table, progress_bar


def test_format_count():
    assert format_count(40_551_040) == "40.55M"
    assert format_count(1_814_073_344, 3) == "1.814G"
    assert format_count(2_500_000_000_000) == "2.50T"
    assert format_count(999) == "999"
    assert format_count(12_345) == "12.35k"
    assert format_count(12_345, kilo="K") == "12.35K"
    assert format_count(-2_000_000) == "-2.00M"
    assert format_count(None) == "n/a"
    assert format_count(None, none="–") == "–"
    assert format_count(1_200_000, unit="B", sep=" ") == "1.20 MB"
    assert format_count(12, unit="img", sep=" ") == "12 img"
    assert format_count(12, sep=" ") == "12"


def test_format_significant():
    assert format_significant(269_722) == "0.2697M"
    assert format_significant(1_814_073_344) == "1.814G"
    assert format_significant(40_551_040) == "40.55M"
    assert format_significant(None) == "n/a"


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (89, "89 s"), (90, "1.5 min"), (5399, "90.0 min"),
                                           (5400, "1.5 h"), (3 * 86400 - 1, "72.0 h"), (3 * 86400, "3.0 days")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_markdown_table():
    assert markdown_table(["a", "b"], [["1", None], [2, "x"]]) == "| a | b |\n|---|---|\n| 1 |  |\n| 2 | x |"
    assert markdown_table(["a", "b", "c", "d"], [], align="-lrc") == "| a | b | c | d |\n|---|:---|---:|:---:|"
    with pytest.raises(ValueError, match="per column"):
        markdown_table(["a", "b"], [], align="l")
    with pytest.raises(ValueError, match="per column"):
        markdown_table(["a"], [], align="x")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_with_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_bar(10, "x") is None  # a log file or a pipe gets no bar
    pytest.importorskip("tqdm")
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = progress_bar(10, "download", unit="B")
    bar.update(4)
    bar.close()
    assert bar.total == 10 and bar.n == 4 and "download" in term.getvalue()
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed: no bar, no error
    assert progress_bar(10, "x") is None
