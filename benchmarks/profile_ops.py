#!/usr/bin/env python3
"""torch.profiler tables that explain where the operators' time goes (the shortfalls in docs/performance.md).

    python3 benchmarks/profile_ops.py                 # CPU, float32, channels_last
    python3 benchmarks/profile_ops.py --quick --out /tmp/profile.json

For each case (shape, operator) the forward+backward call of ``bench_ops.py`` runs under ``torch.profiler``
for a few iterations after warm-up. Written per case: the profiler's table (top operators by self time),
the share of self time spent in matrix products (aten::mm / addmm / bmm and 1x1 convolutions: the FC
layers, and MS-SAR's thin pooling/derive/combine products) and in the full-resolution element-wise kernels, and the FC multiply-
accumulates per forward counted from the layer shapes, so that MS-SAR's FC work can be put next to SE's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_ops import FORMATS, OPS, _step  # noqa: E402
from harness import environment, save_results  # noqa: E402

from recalib.modules import MSSAR, SqueezeExcite  # noqa: E402

SCHEMA = "recalib-profile-ops/1"
CASES = [((32, 2048, 7, 7), "channels_last"), ((32, 1024, 14, 14), "channels_last"), ((128, 64, 8, 8), "channels_last"),
         ((32, 512, 28, 28), "channels_last"), ((32, 256, 56, 56), "channels_last")]
QUICK_CASES = [((4, 64, 7, 7), "channels_last")]
PROFILED_OPS = ["se", "mssar", "mssar_r16", "mssar_obvious"]
GEMM = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution", "aten::convolution_backward",
        "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward")  # matrix products, incl. 1x1 convolutions
ELEMENTWISE = ("aten::mul", "aten::addcmul", "aten::mul_", "aten::add_", "aten::addmm_", "aten::avg_pool2d", "aten::mean", "aten::sum")


def fc_macs(op: torch.nn.Module, shape: tuple[int, int, int, int]) -> int:
    """Multiply-accumulates of the operator's FC (1x1) layers in one forward pass."""
    n, c, h, w = shape
    op = getattr(op, "op", op)  # a baseline wrapping one of ours
    if isinstance(op, SqueezeExcite):
        return n * 2 * c * op.hidden
    if isinstance(op, MSSAR):
        vectors = sum(n * min(k, h) * min(k, w) for k in op.scales)  # min(K, side) bands per axis (docs/spec.md)
        if op.strategy == "sliding":
            vectors = n * h * w * len(op.scales)
        return vectors * (op.in_channels + op.channels) * op.hidden
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    env = environment(device)  # before the run: threads, load average, commit
    cases = QUICK_CASES if args.quick else CASES
    iters = 1 if args.quick else args.iters
    out = []
    started = time.perf_counter()
    for shape, fmt in cases:
        torch.manual_seed(0)
        x = torch.randn(shape, device=device).contiguous(memory_format=FORMATS[fmt]).requires_grad_()
        g = torch.randn(shape, device=device).contiguous(memory_format=FORMATS[fmt])
        for name in args.ops.split(","):
            op = OPS[name][1](shape[1]).to(device).train()
            for _ in range(2):
                _step(op, x, g, None)
            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
            with profile(activities=activities) as prof:
                for _ in range(iters):
                    x.grad = None
                    op.zero_grad(set_to_none=True)
                    _step(op, x, g, None)
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events)
            gemm = sum(e.self_cpu_time_total for e in events if e.key in GEMM)
            elementwise = sum(e.self_cpu_time_total for e in events if e.key in ELEMENTWISE)
            out.append({
                "op": name, "label": OPS[name][0], "shape": list(shape), "memory_format": fmt, "iterations": iters,
                "self_cpu_ms_per_iter": total / 1e3 / iters, "gemm_ms_per_iter": gemm / 1e3 / iters,
                "elementwise_ms_per_iter": elementwise / 1e3 / iters,
                "gemm_share": gemm / total if total else None, "fc_macs_forward": fc_macs(op, shape),
                "table": events.table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40),
            })
            print(f"[{fmt} {'x'.join(map(str, shape))}] {name}: {total / 1e3 / iters:.1f} ms/iter, "
                  f"GEMM {100 * gemm / max(total, 1):.0f}%, FC MACs {out[-1]['fc_macs_forward'] / 1e6:.1f} M", flush=True)
    return {
        "schema": SCHEMA, "kind": "profile", "env": env,
        "config": {"device": device.type, "ops": args.ops.split(","), "iters": iters, "quick": args.quick,
                   "cases": [[list(s), f] for s, f in cases]},
        "results": out, "wall_seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--ops", default=",".join(PROFILED_OPS))
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rows", type=int, default=14)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--tag", default="", help="suffix of the default output name")
    args = p.parse_args(argv)
    data = run(args)
    save_results(data, "profile", HERE / "results", out=args.out, tag=args.tag)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
