#!/usr/bin/env python3
"""Forward+backward time of every recalibration operator at CIFAR and ImageNet feature-map shapes.

    python3 benchmarks/bench_ops.py                  # CPU: float32, NCHW and channels_last, eager
    python3 benchmarks/bench_ops.py --device cuda    # GPU: bf16 autocast + channels_last, eager and torch.compile
    python3 benchmarks/bench_ops.py --quick --out /tmp/ops.json   # a few seconds: smoke run

Writes ``benchmarks/results/ops-<device>.json`` (environment, configuration, every raw timing) and a
Markdown table beside it (same name, ``.md``). One timed call is ``out = op(x); out.backward(g)`` with
``x`` requiring grad (as inside a network) and gradients cleared (set to None) before each call, untimed.
The operators are timed interleaved (one call of each per round) after warm-up; medians are reported.
Shapes: CIFAR N=128, (C, H) = (16, 32), (32, 16), (64, 8); ImageNet N=32, (C, H) = (256, 56), (512, 28),
(1024, 14), (2048, 7).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import MembershipMSSAR, ObviousMSSAR, ReferenceSGE, SeparableMSSAR  # noqa: E402
from harness import (  # noqa: E402
    environment,
    markdown_table,
    save_results,
    summarize,
    time_interleaved,
)

from recalib.modules import MSSAR, GatherExcite, Identity, SpatialGroupEnhance, SqueezeExcite  # noqa: E402

SCHEMA = "recalib-bench-ops/1"
SHAPES = {
    "cifar": [(128, 16, 32), (128, 32, 16), (128, 64, 8)],
    "imagenet": [(32, 256, 56), (32, 512, 28), (32, 1024, 14), (32, 2048, 7)],
}
QUICK_SHAPES = [(4, 16, 8), (4, 64, 7)]
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def _sge_groups(c: int) -> int:
    return max(d for d in range(1, min(c, 64) + 1) if c % d == 0)  # the model zoo's rule


def _timm_se(c: int) -> nn.Module:
    from timm.layers.squeeze_excite import SEModule

    ours = SqueezeExcite(c)
    theirs = SEModule(c, rd_channels=c // 16)
    theirs.load_state_dict(ours.state_dict())  # the same function (tests/modules/test_se_ge_sge.py)
    return theirs


# name -> (label, builder(channels) -> module)
OPS: dict[str, tuple[str, Callable[[int], nn.Module]]] = {
    "identity": ("identity (no operator)", Identity),
    "se": ("SE (ours, r=16)", SqueezeExcite),
    "timm_se": ("SE (timm SEModule, rd=C/16)", _timm_se),
    "ge": ("GE-θ⁻ global (ours)", GatherExcite),
    "ge_e2": ("GE-θ⁻ extent 2 (ours)", lambda c: GatherExcite(c, extent=2)),
    "ge_theta_e2": ("GE-θ extent 2 (ours)", lambda c: GatherExcite(c, extent=2, variant="theta")),
    "ge_thetap_e2": ("GE-θ⁺ extent 2 (ours)", lambda c: GatherExcite(c, extent=2, variant="theta+")),
    "sge": ("SGE (ours)", lambda c: SpatialGroupEnhance(c, groups=_sge_groups(c))),
    "sge_ref": ("SGE (official formulation)", lambda c: ReferenceSGE(SpatialGroupEnhance(c, groups=_sge_groups(c)))),
    "mssar_obvious": ("MS-SAR obvious formulation", lambda c: ObviousMSSAR(MSSAR(c))),
    "mssar_separable": ("MS-SAR per-axis band products", lambda c: SeparableMSSAR(MSSAR(c))),
    "mssar_membership": ("MS-SAR one membership matrix", lambda c: MembershipMSSAR(MSSAR(c))),
    "mssar": ("MS-SAR regional (ours, r=1: paper's D'=C/L)", MSSAR),
    "mssar_r16": ("MS-SAR regional (ours, r=16: SE's hidden budget)", lambda c: MSSAR(c, reduction=16)),
    "mssar_sliding": ("MS-SAR sliding (ours, r=1)", lambda c: MSSAR(c, strategy="sliding")),
}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--suites", default="cifar,imagenet", help="comma list of: cifar, imagenet")
    p.add_argument("--formats", default=None, help="comma list of: nchw, channels_last (default: both on CPU, channels_last on GPU)")
    p.add_argument("--modes", default=None, help="comma list of: eager, compile (default: eager on CPU, both on GPU)")
    p.add_argument("--amp", default=None, choices=["off", "bf16", "fp16"], help="autocast dtype (default: off on CPU, bf16 on GPU)")
    p.add_argument("--ops", default=",".join(OPS), help=f"comma list of: {', '.join(OPS)}")
    p.add_argument("--reps", type=int, default=15, help="timed calls per operator and case, at most")
    p.add_argument("--min-reps", type=int, default=2, help="timed calls per operator and case, at least")
    p.add_argument("--warmup", type=int, default=0, help="untimed calls per operator and case after the first one")
    p.add_argument("--budget", type=float, default=2.0, help="seconds of timed calls per operator and case")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads on CPU (0: leave as is)")
    p.add_argument("--quick", action="store_true", help="tiny shapes and 2 rounds: a smoke run of a few seconds")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/ops-<device>[-<tag>].json)")
    p.add_argument("--tag", default="", help="suffix of the default output name, e.g. 1thread")
    args = p.parse_args(argv)
    for name in args.ops.split(","):
        if name not in OPS:
            p.error(f"unknown operator {name!r}; valid: {', '.join(OPS)}")
    return args


def _step(op: nn.Module, x: torch.Tensor, g: torch.Tensor, amp: torch.dtype | None) -> None:
    with torch.autocast(x.device.type, dtype=amp, enabled=amp is not None):
        out = op(x)
    out.backward(g)


def _time_case(
    names: list[str], shape: tuple[int, int, int, int], fmt: str, mode: str, device: torch.device,
    amp: torch.dtype | None, reps: int, warmup: int, budget: float, min_reps: int,
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Time every operator on one input (interleaved); return raw times and the errors of those that failed."""
    torch.manual_seed(0)
    x = torch.randn(shape, device=device).contiguous(memory_format=FORMATS[fmt]).requires_grad_()
    g = torch.randn(shape, device=device).contiguous(memory_format=FORMATS[fmt])
    fns: dict[str, Callable[[], None]] = {}
    params: list[torch.Tensor] = []
    errors: dict[str, str] = {}
    first: dict[str, float] = {}
    for name in names:
        op: nn.Module = OPS[name][1](shape[1]).to(device).train()
        if mode == "compile":
            op = torch.compile(op, dynamic=False)
        try:
            t0 = time.perf_counter()
            _step(op, x, g, amp)  # first call, untimed: compiles, warms up, or fails (sge_ref on channels_last)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            first[name] = (time.perf_counter() - t0) * 1e3
        except Exception as exc:  # noqa: BLE001 - recorded in the JSON, not hidden
            errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        params += list(op.parameters())
        fns[name] = functools.partial(_step, op, x, g, amp)

    def clear() -> None:
        x.grad = None
        for p in params:
            p.grad = None

    # a compiled first call is no estimate of the next ones; an eager one is (a second untimed call only if asked)
    estimates = None if mode == "compile" else first
    times = time_interleaved(fns, device, reps=reps, warmup=warmup, budget_s=budget, min_reps=min_reps,
                             before_each=clear, estimates=estimates)
    return times, errors


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    env = environment(device)  # before the run: threads, load average, commit
    gpu = device.type == "cuda"
    formats = (args.formats or ("channels_last" if gpu else "nchw,channels_last")).split(",")
    modes = (args.modes or ("eager,compile" if gpu else "eager")).split(",")
    amp_name = args.amp or ("bf16" if gpu else "off")
    amp = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp_name]
    shapes = QUICK_SHAPES if args.quick else [s for suite in args.suites.split(",") for s in SHAPES[suite]]
    reps, warmup, budget = (2, 0, 0.5) if args.quick else (args.reps, args.warmup, args.budget)
    min_reps = 1 if args.quick else args.min_reps
    names = args.ops.split(",")
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for mode in modes:
        for fmt in formats:
            for n, c, h in shapes:
                times, errors = _time_case(names, (n, c, h, h), fmt, mode, device, amp, reps, warmup, budget, min_reps)
                for name in names:
                    t = times.get(name, [])
                    s = summarize(t)
                    results.append({
                        "op": name, "label": OPS[name][0], "shape": [n, c, h, h], "memory_format": fmt, "mode": mode,
                        "dtype": "float32" if amp is None else f"{amp_name} autocast", "times_ms": t,
                        "median_ms": s["median"], "q1_ms": s["q1"], "q3_ms": s["q3"], "error": errors.get(name),
                    })
                line = "  ".join(f"{k}={summarize(v)['median']:.2f}" for k, v in times.items())
                print(f"[{mode} {fmt} {n}x{c}x{h}x{h}] {line}", flush=True)
    return {
        "schema": SCHEMA,
        "kind": "ops",
        "env": env,
        "config": {
            "device": device.type, "formats": formats, "modes": modes, "amp": amp_name, "ops": names,
            "labels": {k: OPS[k][0] for k in names}, "shapes": [[n, c, h, h] for n, c, h in shapes], "reps_max": reps,
            "min_reps": min_reps, "warmup": warmup, "budget_s": budget, "quick": args.quick,
            "timed_call": "out = op(x); out.backward(g); x and parameter grads set to None before each call",
        },
        "results": results,
        "wall_seconds": time.perf_counter() - started,
    }


def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def to_markdown(data: dict[str, Any]) -> str:
    """Median milliseconds per case (rows: shapes, columns: operators) and the ratios the targets name."""
    env, cfg = data["env"], data["config"]
    out = [
        f"# Operator benchmark: {env['device']['name']} ({cfg['device']}, {env['device']['torch_threads']} threads)\n",
        f"torch {env['versions']['torch']}, commit {env['git']['commit']}{' (dirty)' if env['git']['dirty'] else ''}, "
        f"{env['date']}. Median ms of forward+backward ({cfg['timed_call']}).\n",
    ]
    index = {(r["mode"], r["memory_format"], tuple(r["shape"]), r["op"]): r for r in data["results"]}
    shapes = [tuple(s) for s in cfg["shapes"]]
    for mode in cfg["modes"]:
        for fmt in cfg["formats"]:
            out.append(f"\n## {mode}, {fmt}, {'float32' if cfg['amp'] == 'off' else cfg['amp'] + ' autocast'}\n\n")
            rows = []
            for s in shapes:
                row = ["x".join(map(str, s))]
                for op in cfg["ops"]:
                    r = index.get((mode, fmt, s, op))
                    row.append("fails" if r and r["error"] else _fmt(r["median_ms"] if r else None))
                rows.append(row)
            out.append(markdown_table(["N×C×H×W", *cfg["ops"]], rows))
            ratios = [("mssar", "se"), ("mssar_r16", "se"), ("mssar", "timm_se"), ("mssar_obvious", "mssar"), ("se", "timm_se"),
                      ("sge", "sge_ref")]
            ratios = [(a, b) for a, b in ratios if a in cfg["ops"] and b in cfg["ops"]]
            if ratios:
                rows = []
                for s in shapes:
                    row = ["x".join(map(str, s))]
                    for a, b in ratios:
                        ra, rb = index.get((mode, fmt, s, a)), index.get((mode, fmt, s, b))
                        ok = ra and rb and not ra["error"] and not rb["error"] and rb["median_ms"]
                        row.append(_fmt(ra["median_ms"] / rb["median_ms"]) if ok else "—")
                    rows.append(row)
                out.append("\nRatios of medians:\n\n")
                out.append(markdown_table(["N×C×H×W", *[f"{a} / {b}" for a, b in ratios]], rows))
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    data = run(args)
    save_results(data, "ops", HERE / "results", out=args.out, tag=args.tag, markdown=to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
