"""Text forms shared by the reports, tables and command lines: counts, durations, Markdown tables, progress bars.

One home for each, so that ``recalib profile``, ``recalib quickstart``, study reports and benchmark pages
write a count or a table the same way (see ``docs/architecture.md``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["format_count", "format_seconds", "format_significant", "markdown_table", "progress_bar"]

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_ALIGN_MARKS = {"-": "---", "l": ":---", "r": "---:", "c": ":---:"}


def format_count(n: float | None, digits: int = 2, *, unit: str = "", sep: str = "", kilo: str = "k",
                 none: str = "n/a") -> str:
    """A count with a decimal prefix: ``40550000 -> '40.55M'``, ``1814073344 -> '1.81G'``, ``999 -> '999'``.

    ``digits`` after the point; ``unit`` after the prefix (``'1.20Mimg'``); ``sep`` between number and prefix
    (``'1.20 M'``); ``kilo`` the thousands prefix (``'k'`` SI, ``'K'`` as in the papers' tables); ``none``
    is what ``None`` becomes.
    """
    if n is None:
        return none
    for div, suffix in _PREFIXES:
        if abs(n) >= div:
            return f"{n / div:.{digits}f}{sep}{kilo if suffix == 'k' else suffix}{unit}"
    return f"{n:.0f}{sep}{unit}".rstrip()


def format_significant(n: int | None, digits: int = 4) -> str:
    """``digits`` significant digits in millions or billions: 269722 -> '0.2697M', 1814073344 -> '1.814G'."""
    if n is None:
        return "n/a"
    div, suffix = (1e9, "G") if n >= 1e9 else (1e6, "M")
    v = n / div
    decimals = max(0, digits - len(str(int(v))) if v >= 1 else digits)
    return f"{v:.{decimals}f}{suffix}"


def format_seconds(s: float) -> str:
    """A duration in the unit a person reads best: ``'42 s'``, ``'12.5 min'``, ``'3.2 h'``, ``'4.1 days'``."""
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def markdown_table(headers: Sequence[Any], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub Markdown table, no trailing newline; ``None`` cells are empty.

    ``align``: one character per column, ``-`` (unaligned, ``---``), ``l``, ``r`` or ``c``; default unaligned.
    """
    align = align or "-" * len(headers)
    if len(align) != len(headers) or set(align) - set(_ALIGN_MARKS):
        raise ValueError(f"align must be one of {''.join(_ALIGN_MARKS)} per column ({len(headers)}), got {align!r}")
    lines = ["| " + " | ".join(str(h) for h in headers) + " |",
             "|" + "|".join(_ALIGN_MARKS[a] for a in align) + "|"]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def progress_bar(total: int | None, desc: str, **tqdm_kwargs: Any) -> Any:
    """A tqdm bar on stderr when stderr is a terminal and tqdm is installed (extra ``progress``), else ``None``."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr, **tqdm_kwargs)
