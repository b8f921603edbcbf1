"""recalib._format: counts, durations and Markdown tables, against hand-written expectations."""

from __future__ import annotations

import pytest

from recalib._format import format_count, format_seconds, format_significant, markdown_table


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
