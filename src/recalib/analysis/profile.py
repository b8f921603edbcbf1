"""``recalib profile``: parameters and MACs of models x operators, in the layout of the MS-SAR paper's Tables 2 and 5.

Each row is one model with one operator: params, MACs (conv + linear, including the operators' own 1x1
layers), elementwise work (see :mod:`recalib.models.complexity`) and the extra params / MACs / elementwise
work over the same model without an operator, in percent. Models may carry arguments in the textual form,
``"resnet20(shortcut='B')"`` or ``"densenet_bc_100(multi_stage=True)"``; the baseline of such a model drops the
arguments that only place the operator (``multi_stage``).

    recalib profile --models resnet20,resnet56,densenet_bc_100 --recalib none,se,ge,sge,mssar \\
        --out-md table.md --out-csv table.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._format import format_significant, markdown_table, progress_bar
from .._io import atomic_write, write_text_atomic
from ..models import OPERATOR_PLACEMENT_KWARGS, create_model, list_models, model_info, resolve_recalib
from ..models.complexity import complexity
from ..modules import MSSAR
from ..modules.spec import parse_keywords

__all__ = ["profile_table", "split_list", "to_markdown", "write_csv", "write_markdown", "configure_parser", "run"]

COLUMNS = ("model", "recalib", "input_size", "params", "macs", "elementwise",
           "extra_params_pct", "extra_macs_pct", "extra_elementwise_pct")


def split_list(text: str) -> list[str]:
    """Split a comma-separated list at commas outside parentheses: ``"se,mssar(scales=(1, 2))"`` -> 2 items."""
    items: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur).strip())
    return [i for i in items if i]


def _parse_model(spec: str) -> tuple[str, dict[str, Any]]:
    try:
        name, kwargs = parse_keywords(spec, "model")
    except ValueError as exc:
        raise ValueError(f"cannot parse model {spec!r} (expected a name or e.g. \"resnet20(shortcut='B')\"): {exc}") from None
    model_info(name)  # ValueError listing the valid names
    return name, kwargs


def _pct(value: int, base: int) -> float:
    return 100.0 * (value - base) / base if base else 0.0


def profile_table(
    models: Sequence[str],
    recalibs: Sequence[str | None],
    input_size: int | Sequence[int] | None = None,
    num_classes: int | None = None,
    *,
    in_chans: int = 3,
    device: str | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """One row per (model, operator): see :data:`COLUMNS`.

    ``input_size`` (an int or ``(H, W)``) defaults to each model's own (32 for the CIFAR zoo, 224 for the
    ImageNet models); ``num_classes`` to the model's default. A combination the model rejects (e.g.
    ``multi_stage=True`` with SE) gives a row with ``None`` figures and the reason in ``"note"``. Unknown
    model or operator names raise ``ValueError`` before anything is built. The plain model is counted once per
    model (the baseline, and the ``none`` row). ``progress``: a bar on stderr when it is a terminal.
    """
    parsed = [(m, *_parse_model(m)) for m in models]
    plain = [resolve_recalib(r).factory is None for r in recalibs]  # ValueError for unknown names, before any work
    rows: list[dict[str, Any]] = []
    bar = progress_bar(len(parsed) * len(recalibs), "profile", unit="row") if progress else None
    for label, name, kwargs in parsed:
        size = input_size if input_size is not None else model_info(name).input_size
        hw = (size, size) if isinstance(size, int) else tuple(size)
        shape = (1, in_chans, *hw)
        base_kwargs = {k: v for k, v in kwargs.items() if k not in OPERATOR_PLACEMENT_KWARGS}
        base = complexity(create_model(name, num_classes=num_classes, in_chans=in_chans, **base_kwargs), shape,
                          device=device)
        for r, is_plain in zip(recalibs, plain):
            if bar is not None:
                bar.set_postfix_str(f"{label} + {r}")
            row: dict[str, Any] = {"model": label, "recalib": r if r else "none", "input_size": "x".join(map(str, shape[1:]))}
            try:
                model = create_model(name, num_classes=num_classes, in_chans=in_chans, recalib=r, **kwargs)
            except ValueError as exc:
                row.update(dict.fromkeys(COLUMNS[3:]), note=str(exc))
            else:
                c = base if is_plain and kwargs == base_kwargs else complexity(model, shape, device=device)
                row.update(c, note="", width=_width_note(model))
                row["extra_params_pct"] = _pct(c["params"], base["params"])
                row["extra_macs_pct"] = _pct(c["macs"], base["macs"])
                row["extra_elementwise_pct"] = _pct(c["elementwise"], base["elementwise"])
            rows.append(row)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return rows


def _width_note(model: Any) -> str:
    """MS-SAR's hidden width as built (the zoo's default differs per family: docs/spec.md, section 1)."""
    ops = [m for m in model.modules() if isinstance(m, MSSAR)]
    if not ops:
        return ""
    r, n = ops[0].reduction, len(ops[0].scales)
    return f"D' = C/{n}" if r == 1 else f"D' = C/({n}*{r})"


def _fmt_pct(p: float | None) -> str:
    return "n/a" if p is None else f"{p:+.2f}%"


def to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of :func:`profile_table`'s rows (figures with 4 significant digits)."""
    header = ["model", "operator", "input", "params", "MACs", "elementwise", "extra params", "extra MACs",
              "extra elementwise"]
    body = [[r["model"], r["recalib"] + (f" ({wd})" if (wd := r.get("width")) else ""), r["input_size"],
             format_significant(r["params"]),
             format_significant(r["macs"]), format_significant(r["elementwise"]), _fmt_pct(r["extra_params_pct"]),
             _fmt_pct(r["extra_macs_pct"]), _fmt_pct(r["extra_elementwise_pct"])] for r in rows]
    return markdown_table(header, body, align="---rrrrrr") + "\n"


def write_markdown(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Write :func:`to_markdown` of ``rows`` to ``path`` atomically."""
    write_text_atomic(path, to_markdown(rows))


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Exact integers and unrounded percentages, one row per (model, operator)."""
    with atomic_write(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*COLUMNS, "note"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``recalib profile``'s options to ``parser``."""
    parser.add_argument("--models", default="resnet20,resnet56,densenet_bc_100",
                        help="comma-separated zoo models, optionally with arguments (\"resnet20(shortcut='B')\"), "
                        f"or 'all'; zoo: {', '.join(list_models())}")
    parser.add_argument("--recalib", default="none,se,ge,sge,mssar",
                        help="comma-separated operators or their textual forms (\"mssar(scales=(1, 2))\")")
    parser.add_argument("--input-size", type=int, default=None,
                        help="square input side (default: 32 for the CIFAR zoo, 224 for the ImageNet models)")
    parser.add_argument("--num-classes", type=int, default=None, help="classifier outputs (default: the model's)")
    parser.add_argument("--in-chans", type=int, default=3, help="input channels (default 3)")
    parser.add_argument("--device", default=None, help="device to run the counting forward on (default cpu)")
    parser.add_argument("--out-md", default=None, help="also write the table as Markdown to this file")
    parser.add_argument("--out-csv", default=None, help="also write the exact figures as CSV to this file")


def run(args: argparse.Namespace) -> int:
    """``recalib profile``: print (and optionally write) the complexity table; return the exit status."""
    models = list_models() if args.models.strip() == "all" else split_list(args.models)
    recalibs = split_list(args.recalib)
    try:
        for flag, value in (("--input-size", args.input_size), ("--num-classes", args.num_classes),
                            ("--in-chans", args.in_chans)):
            if value is not None and not 1 <= value <= 2**16:
                raise ValueError(f"{flag} must be in [1, {2**16}], got {value}")
        if not models or not recalibs:
            raise ValueError("--models and --recalib must each name at least one entry")
        rows = profile_table(models, recalibs, input_size=args.input_size, num_classes=args.num_classes,
                             in_chans=args.in_chans, device=args.device, progress=True)
    except ValueError as exc:
        print(f"recalib profile: {exc}", file=sys.stderr)
        return 2
    for spec in dict.fromkeys(r["recalib"] for r in rows):  # a spec no model can build is an error, not a row
        notes = [r["note"] for r in rows if r["recalib"] == spec]
        if all(notes):
            print(f"recalib profile: {spec!r} cannot be built: {notes[0]}", file=sys.stderr)
            return 2
    table = to_markdown(rows)
    print(table, end="")
    for r in rows:
        if r["note"]:
            print(f"n/a: {r['model']} + {r['recalib']}: {r['note']}", file=sys.stderr)
    if args.out_md:
        write_markdown(rows, args.out_md)
    if args.out_csv:
        write_csv(rows, args.out_csv)
    return 0
