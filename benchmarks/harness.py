"""Shared helpers of the benchmark scripts in ``benchmarks/``: what ran where, interleaved timers, JSON and tables.

Development only (not part of the installed package): the scripts import it as ``harness`` from this folder.

Timing rules (after airbench): warm up first; time candidates *interleaved*, one call of each per round, so
that a machine whose load drifts (a shared CPU) penalises all of them alike; report medians and keep every
raw time. On CUDA, CUDA events bracket each call and the host synchronises once per round, not per call.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from recalib import _format
from recalib._io import write_text_atomic
from recalib._provenance import git_state

__all__ = [
    "device_slug",
    "environment",
    "git_state",
    "markdown_table",
    "save_results",
    "summarize",
    "time_interleaved",
    "write_json",
]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", None))


def environment(device: torch.device | str) -> dict[str, Any]:
    """Device, library versions, git commit and date of a benchmark run (the ``env`` block of every JSON)."""
    device = torch.device(device)
    dev: dict[str, Any] = {
        "type": device.type,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load_average_1_5_15min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,  # a shared machine?
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        dev.update(
            name=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    else:
        dev["name"] = dev["cpu"]
    return {
        "device": dev,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "timm": _version("timm"),
            "numpy": _version("numpy"),
            "recalib": _version("recalib"),
        },
        "git": git_state(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def device_slug(env: Mapping[str, Any]) -> str:
    """``cpu``, or ``cuda-<gpu name>`` in lower case with dashes, for result file names."""
    dev = env["device"]
    if dev["type"] != "cuda":
        return dev["type"]
    return "cuda-" + "".join(ch if ch.isalnum() else "-" for ch in str(dev["name"]).lower()).strip("-")


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]],
    device: torch.device | str,
    *,
    reps: int,
    warmup: int = 2,
    budget_s: float | None = None,
    min_reps: int = 3,
    before_each: Callable[[], Any] | None = None,
    estimates: Mapping[str, float] | None = None,
) -> dict[str, list[float]]:
    """Milliseconds of every call of every function, timed interleaved (one call of each per round).

    ``warmup`` untimed calls of each come first. With ``budget_s``, each function gets about that much timed
    time: between ``min_reps`` and ``reps`` calls (the first ``min_reps`` rounds include every function).
    ``before_each`` runs untimed before every call (e.g. clearing gradients). ``estimates`` (ms per call,
    e.g. from a first call made by the caller) spare a function its estimating call when ``warmup`` is 0.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    est: dict[str, float] = dict(estimates or {})
    for name, fn in fns.items():
        for _ in range(warmup if name in est else max(warmup, 1)):
            if before_each is not None:
                before_each()
            t0 = _now(cuda)
            fn()
            est[name] = _elapsed_ms(t0, cuda)
    # rounds per function: about budget_s of timed calls each, within [min_reps, reps]; the first min_reps
    # rounds include every function (interleaved), later rounds only those that still have rounds left
    count = {
        name: reps if budget_s is None else max(min_reps, min(reps, int(budget_s / max(est[name] / 1e3, 1e-9))))
        for name in fns
    }
    out: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(max(count.values(), default=0)):
        pending = []
        for name, fn in fns.items():
            if r >= count[name]:
                continue
            if before_each is not None:
                before_each()
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                pending.append((name, start, end))
            else:
                t0 = _now(False)
                fn()
                out[name].append(_elapsed_ms(t0, False))
        if cuda:
            torch.cuda.synchronize(device)
            for name, start, end in pending:
                out[name].append(float(start.elapsed_time(end)))
    return out


def _now(cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter()


def _elapsed_ms(t0: float, cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3


def summarize(times: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, min, max and count of a list of timings."""
    if not times:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan, "min": math.nan, "max": math.nan, "n": 0}
    xs = sorted(times)
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return {"median": statistics.median(xs), "q1": q[0], "q3": q[2], "min": xs[0], "max": xs[-1], "n": len(xs)}


def save_results(
    data: Mapping[str, Any],
    kind: str,
    results_dir: str | os.PathLike[str],
    *,
    out: str | None = None,
    tag: str = "",
    markdown: Callable[[Mapping[str, Any]], str] | None = None,
) -> Path:
    """Write a benchmark's ``data`` to ``out`` or ``results_dir/<kind>-<device>[-<tag>].json`` (and the ``.md``
    beside it when ``markdown`` renders one); print and return the JSON path."""
    suffix = f"-{tag}" if tag else ""
    path = Path(out) if out else Path(results_dir) / f"{kind}-{device_slug(data['env'])}{suffix}.json"
    write_json(path, data)
    also = ""
    if markdown is not None:
        write_text_atomic(path.with_suffix(".md"), markdown(data))
        also = f" and {path.with_suffix('.md')}"
    print(f"wrote {path}{also} in {data['wall_seconds']:.0f} s")
    return path


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN as null), creating parent folders; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(_clean(data), indent=1) + "\n")
    return path


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub Markdown table and a final newline; ``align`` is one character per column (``l``, ``r``,
    ``c``), default right for all but the first column."""
    return _format.markdown_table(headers, rows, align or "l" + "r" * (len(headers) - 1)) + "\n"
