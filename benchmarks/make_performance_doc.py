#!/usr/bin/env python3
"""Generate ``docs/performance.md`` from the benchmark JSON files in ``benchmarks/results/``.

    python3 benchmarks/make_performance_doc.py
    python3 benchmarks/make_performance_doc.py --results /tmp/results --out /tmp/performance.md

Every number in the document comes from those files (``ops-*.json`` from ``bench_ops.py``,
``train-*.json`` from ``bench_train.py``, ``profile-*.json`` from ``profile_ops.py``); the prose around them
is fixed text. It leads with the network-level comparison (``train-compare-*.json`` from ``bench_train.py
--compare-old``) and the issue's targets for it; operator-level tables follow as information.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness import markdown_table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

IMAGENET = [(32, 256, 56, 56), (32, 512, 28, 28), (32, 1024, 14, 14), (32, 2048, 7, 7)]
CIFAR = [(128, 16, 32, 32), (128, 32, 16, 16), (128, 64, 8, 8)]


def _load(results: Path, kind: str, include_quick: bool = False) -> list[dict[str, Any]]:
    out = []
    for path in sorted(results.glob(f"{kind}-*.json")):
        data = json.loads(path.read_text())
        if data.get("kind") == kind and (include_quick or not data.get("config", {}).get("quick")):
            data["_file"] = path.name
            out.append(data)
    return out


def _shape(s: Iterable[int]) -> str:
    return "×".join(map(str, s))


def _f(v: float | None, d: int = 2) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"


class Ops:
    """Lookup of median ms in one ops JSON."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.index = {(r["mode"], r["memory_format"], tuple(r["shape"]), r["op"]): r for r in data["results"]}

    def median(self, mode: str, fmt: str, shape: tuple[int, ...], op: str) -> float | None:
        r = self.index.get((mode, fmt, shape, op))
        return None if r is None or r.get("error") or r["median_ms"] is None else float(r["median_ms"])

    def ratio(self, mode: str, fmt: str, shape: tuple[int, ...], a: str, b: str) -> float | None:
        x, y = self.median(mode, fmt, shape, a), self.median(mode, fmt, shape, b)
        return None if x is None or not y else x / y


def _env_line(data: dict[str, Any]) -> str:
    env = data["env"]
    dev, ver, git = env["device"], env["versions"], env["git"]
    dirty = " + uncommitted changes" if git.get("dirty") else ""
    load = dev.get("load_average_1_5_15min")
    load_text = f", load average at start {load[0]:.1f}" if load else ""
    return (
        f"`{data['_file']}`: {dev['name']} ({dev['type']}, {dev['torch_threads']} torch threads, "
        f"{dev.get('cpu_count')} CPUs{load_text}), Python {ver['python']}, torch {ver['torch']}, timm {ver['timm']}, "
        f"commit `{(git.get('commit') or 'unknown')[:12]}`{dirty}, {env['date']}"
    )


def _verdict(values: list[tuple[str, float | None]], limit: float, upper: bool = True) -> tuple[str, str]:
    """('met' / 'missed ...' / 'not measured', measured text) for ratios that must be <= limit (or >= limit)."""
    known = [(k, v) for k, v in values if v is not None]
    if not known:
        return "not measured", "—"
    worst_k, worst = max(known, key=lambda kv: kv[1]) if upper else min(known, key=lambda kv: kv[1])
    measured = ", ".join(f"{k}: {v:.2f}" for k, v in known)
    ok = worst <= limit if upper else worst >= limit
    if ok:
        return "**met**", measured
    by = (worst / limit - 1) * 100 if upper else (1 - worst / limit) * 100
    return f"**missed** (worst {worst_k}: {worst:.2f} vs {'≤' if upper else '≥'} {limit}, {by:.0f}% off)", measured


# The targets, all at the level a user feels: a whole network's training step (ratios of step times).
NETWORK_TARGETS = [
    ("resnet56", "eager", "new_mssar_over_se", 1.10, "ResNet-56 (32×32, batch 128): MS-SAR network ÷ SE network"),
    ("resnet56", "compile", "new_mssar_over_se", 1.20, "ResNet-56, torch.compile: MS-SAR network ÷ SE network"),
    ("resnet20", "eager", "new_mssar_over_se", 1.15, "ResNet-20 (28×28, one channel, batch 128): MS-SAR ÷ SE network"),
    ("resnet50", "eager", "new_mssar_over_se", 1.05,
     "ResNet-50 (224, batch 16, channels_last), zoo default MS-SAR (reduction 16): MS-SAR ÷ SE network"),
    ("resnet50", "eager", "recalib_se_over_timm_se", 1.00, "ResNet-50: recalib's SE-ResNet-50 ÷ timm's seresnet50"),
]
RATIO_COLUMNS = [("old_mssar_over_se", "MS-SAR ÷ SE, old"), ("new_mssar_over_se", "MS-SAR ÷ SE, new"),
                 ("new_over_old_se", "SE network, new ÷ old"), ("new_over_old_mssar", "MS-SAR network, new ÷ old"),
                 ("recalib_se_over_timm_se", "recalib SE ÷ timm SE")]


def network_section(compare: list[dict[str, Any]]) -> str:
    """The side-by-side runs of ``bench_train.py --compare-old``: targets, every ratio, compile against eager."""
    if not compare:
        return "No `train-compare-*.json` yet: run `python3 benchmarks/bench_train.py --compare-old <commit>`.\n"
    # Where several runs measured one model and mode, the one with the most timed steps is shown (all are listed).
    longest_last = sorted(compare, key=lambda d: d["config"]["rounds"] * d["config"]["steps"])
    ratios = {(r["model"], r["mode"]): (r, d) for d in longest_last for r in d["ratios"]}
    out = []
    for d in compare:
        cfg = d["config"]
        clock = {"thread": "this thread's CPU time", "wall": "wall time"}.get(cfg.get("clock", "wall"), "wall time")
        out.append(f"* {_env_line(d)}; old code = commit `{cfg['old_commit']}`, modes {cfg['modes']}, "
                   f"median of {cfg['rounds']} interleaved rounds of {cfg['steps']} step(s) after a warm-up, timed by {clock}. {cfg['note']}\n")
    rows = []
    for model, mode, key, limit, label in NETWORK_TARGETS:
        r = ratios.get((model, mode))
        val = r[0].get(key) if r else None
        verdict, measured = _verdict([(f"`{r[1]['_file']}`" if r else "", val)], limit)
        rows.append([label, f"≤ {limit:.2f}", measured, verdict])
    out.append("\n" + markdown_table(["target (training step time ratio)", "limit", "measured", "verdict"], rows, align="lcll"))
    rows = [[model, mode, *[_f(r.get(k)) if r.get(k) is not None else "—" for k, _ in RATIO_COLUMNS]]
            for (model, mode), (r, _) in ratios.items()]
    out.append("\nEvery ratio (> 1: the numerator's step is slower):\n\n")
    out.append(markdown_table(["model", "mode", *[c for _, c in RATIO_COLUMNS]], rows))
    ips = {(r["model"], r["mode"], r["code"], r["recalib"]): r["median_images_per_s"] for d in longest_last for r in d["results"]}
    rows = [[m, f"{code}/{rc}", _f(ips[(m, "eager", code, rc)] / v)] for (m, mode, code, rc), v in ips.items()
            if mode == "compile" and (m, "eager", code, rc) in ips]
    if rows:
        out.append("\n`torch.compile` against eager on this CPU (compiled step time ÷ eager step time, > 1: compile is "
                   "slower; the warm-up round that compiles is not counted; eager and compile may come from two runs at different machine load, so read the direction, not the digits):\n\n")
        out.append(markdown_table(["model", "code/operator", "compile ÷ eager"], rows))
    return "".join(out)


def ops_section(o: Ops) -> str:
    cfg = o.data["config"]
    out = [f"### {_env_line(o.data)}\n\n", f"Timed call: `{cfg['timed_call']}`; autocast: {cfg['amp']}; median of "
           f"{cfg['min_reps']}–{cfg['reps_max']} calls per operator (interleaved rounds, about {cfg['budget_s']} s each) after {cfg['warmup'] + 1} untimed call(s); milliseconds.\n\n"]
    labels = cfg["labels"]
    out.append("Operators: " + "; ".join(f"`{k}` = {v}" for k, v in labels.items()) + ".\n")
    shapes = [tuple(s) for s in cfg["shapes"]]
    for mode in cfg["modes"]:
        for fmt in cfg["formats"]:
            out.append(f"\n#### {mode}, {fmt}\n\n")
            rows = [[_shape(s)] + [("fails" if (o.index.get((mode, fmt, s, op)) or {}).get("error") else _f(o.median(mode, fmt, s, op)))
                                   for op in cfg["ops"]] for s in shapes]
            out.append(markdown_table(["N×C×H×W", *[f"`{op}`" for op in cfg["ops"]]], rows))
            pairs = [("mssar", "se"), ("mssar_r16", "se"), ("mssar", "timm_se"), ("mssar_sliding", "se"), ("mssar_obvious", "mssar"),
                     ("mssar_separable", "mssar"), ("mssar_membership", "mssar"),
                     ("se", "timm_se"), ("sge", "sge_ref")]
            pairs = [(a, b) for a, b in pairs if a in cfg["ops"] and b in cfg["ops"]]
            rows = [[_shape(s)] + [_f(o.ratio(mode, fmt, s, a, b)) for a, b in pairs] for s in shapes]
            out.append("\nRatios of medians:\n\n" + markdown_table(["N×C×H×W", *[f"`{a}` / `{b}`" for a, b in pairs]], rows))
    errors = sorted({(r["op"], r["memory_format"], r["error"]) for r in o.data["results"] if r.get("error")})
    if errors:
        out.append("\nFailures (recorded, not timed): " + "; ".join(f"`{op}` on {fmt}: {err}" for op, fmt, err in errors) + "\n")
    return "".join(out)


def train_section(t: dict[str, Any]) -> str:
    cfg = t["config"]
    out = [f"### {_env_line(t)}\n\n",
           f"Median images/s over {cfg['rounds']} epochs of {cfg['steps']} steps (after a warm-up epoch of "
           f"{cfg['warmup_steps']} steps) through `recalib.train.engine.train_one_epoch` and `recalib.data.DeviceLoader`; "
           f"batch {cfg['batch_cifar']} (CIFAR ResNets, 32×32), {cfg.get('batch_densenet', cfg['batch_cifar'])} (DenseNet-BC) and {cfg['batch_imagenet']} (ImageNet models at "
           f"{cfg['imagenet_size']}×{cfg['imagenet_size']}{' — reduced resolution' if cfg['imagenet_size'] != 224 else ''}); "
           f"autocast {cfg['amp']}, channels_last {cfg['channels_last']}, torch.compile {cfg['compile']}; {cfg['data']}; "
           f"{cfg['optimizer']}.\n\n"]
    by = {(r["model"], r["recalib"]): r for r in t["results"]}
    rows = []
    for m in cfg["models"]:
        se = by.get((m, "se"))
        for rc in cfg["recalibs"]:
            r = by.get((m, rc))
            if r:
                rel = r["median_images_per_s"] / se["median_images_per_s"] if se else None
                rows.append([m, f"`{rc}`", f"{r['input_size']}", r["batch"], _f(r["median_images_per_s"], 1),
                             _f(r["q1"], 1) + "–" + _f(r["q3"], 1), _f(rel)])
    out.append(markdown_table(["model", "operator", "input", "batch", "images/s (median)", "quartiles", "÷ SE"], rows))
    return "".join(out)


def profile_section(p: dict[str, Any]) -> str:
    out = [f"### {_env_line(p)}\n\n"]
    by = {}
    for r in p["results"]:
        by.setdefault((tuple(r["shape"]), r["memory_format"]), {})[r["op"]] = r
    for (shape, fmt), ops in by.items():
        out.append(f"\n#### {_shape(shape)}, {fmt}\n\n")
        rows = []
        se = ops.get("se")
        for name, r in ops.items():
            rel = r["fc_macs_forward"] / se["fc_macs_forward"] if se and se["fc_macs_forward"] else None
            rows.append([f"`{name}`", _f(r["self_cpu_ms_per_iter"]), _f(r["gemm_ms_per_iter"]),
                         _f(100 * r["gemm_share"], 0) + "%" if r["gemm_share"] is not None else "—",
                         _f(r["fc_macs_forward"] / 1e6, 1), _f(rel, 1)])
        out.append(markdown_table(["operator", "profiled ms/iter (self CPU)", "in matrix products (mm/bmm/1×1 conv)", "share",
                           "FC MACs/forward (M)", "FC MACs ÷ SE"], rows))
        for name, r in ops.items():
            out.append(f"\n<details><summary>torch.profiler table: {name}</summary>\n\n```\n{r['table'].rstrip()}\n```\n</details>\n")
    return "".join(out)


INTRO = """# Performance

How fast the recalibration operators are, measured, and how to re-measure. **Generated** by
`python3 benchmarks/make_performance_doc.py` from the JSON files in `benchmarks/results/` (every number below
comes from those files; do not edit by hand).

## Re-running

| what | command (from a clone, `pip install -e .`) | output |
|---|---|---|
| operator forward+backward times | `python3 benchmarks/bench_ops.py` | `benchmarks/results/ops-<device>.json` + `.md` |
| training step, old code against this checkout | `python3 benchmarks/bench_train.py --compare-old 1dd012b --threads 1 --clock thread --rounds 9 --models resnet20,resnet56 --compare-modes eager,compile --tag r20-r56` (and `--models resnet50 --compare-modes eager --rounds 5 --tag r50-eager`; `benchmarks/README.md` lists the committed runs) | `benchmarks/results/train-compare-<device>-<tag>.json` + `.md` |
| training throughput | `python3 benchmarks/bench_train.py` | `benchmarks/results/train-<device>.json` + `.md` |
| profiles behind the shortfalls | `python3 benchmarks/profile_ops.py` | `benchmarks/results/profile-<device>.json` |
| this document | `python3 benchmarks/make_performance_doc.py` | `docs/performance.md` |
| the Fashion-MNIST GPU target (one GPU) | `python3 -m recalib train --recipe paper-cifar-resnet --model resnet20 --recalib mssar --dataset fashion-mnist --device cuda --amp bf16 --channels-last --compile --out results/fashion-mnist-resnet20-mssar-gpu` | `results/fashion-mnist-resnet20-mssar-gpu/summary.json` |

Defaults: on CPU float32, 2 torch threads, NCHW and channels_last; on a GPU (`--device cuda`, picked when one is
present) bf16 autocast + channels_last, eager and `torch.compile`, CUDA events. Each script takes `--quick` (a
smoke run of seconds, also run by `tests/test_benchmarks_smoke.py`) and `--help`. Times are medians of rounds in
which the candidates run interleaved, one call each, after warm-up; the JSON files keep every raw time, the
device, the library versions, the git commit (and whether the tree was dirty) and the date. On a shared CPU,
compare ratios measured in the same run, not absolute times across runs.

## How the operators are implemented

Plain autograd, no custom `autograd.Function` (`docs/operators.md`): each operator's forward is its paper's
equations, its learnable layers are called submodules, and composability (double backward, `torch.func`,
`torch.fx`, `torch.compile(fullgraph=True)`, `torch.export`, ONNX) is tested for every variant in
`tests/modules/test_composability.py`; `scripts/make_export_doc.py` tables what every export and compile path supports.
MS-SAR's cells and windows are computed from the input's size with tensor operations, so one exported graph
serves every size. Its regional pooling and Eq. 2 (`modules/_pooling.py`) run along x's own strides (over x's
(N, H, W, C) view when x is channels_last), in one of two formulations of the one partition: where the finest
cells of all scales tile the map (32×32, 16×16, 56×56 and 28×28 with scales 1, 2, 4), *blocks* — x is summed
once into its finest cells and multiplied once by their gates, O(1) work per element as in SE (eager: one
row-band view of x shared by the pooling and the product, so that their gradients meet without a copy;
compiled: a 6-D block view, which inductor fuses best, also for blocks 2 columns wide); elsewhere (sides the
scales do not divide, blocks under 4 columns wide in eager, symbolic sizes under export) one product with the
0/1 cell-membership matrix (H·W × Σ cells) and one with its transpose. The formulations it was chosen against
are timed side by side in the operator tables below (`mssar_obvious`: adaptive pooling and nearest up-sampling
per scale; `mssar_separable`: per-axis band products; `mssar_membership`: one membership matrix at every size
and layout, the formulation before issue 21). The sliding strategy uses one integral image for every scale,
summed along x's own strides.

Baselines (`benchmarks/baselines.py`): the *obvious MS-SAR* is the issue's formulation (per scale adaptive
average pooling — the averaging matrices of docs/spec.md's partition where K does not divide the map, since adaptive pooling's windows
overlap there — two 1×1 convolutions with BN, a sigmoid, nearest up-sampling to full resolution; then the sum and
the multiply); the *official SGE* is the released code's formulation; timm's `SEModule` is built with
`rd_channels = C // 16` and loads our SE's weights.
"""


def render(results: Path, include_quick: bool = False) -> str:
    ops = _load(results, "ops", include_quick)
    train = _load(results, "train", include_quick)
    prof = _load(results, "profile", include_quick)
    cpu_ops = [Ops(d) for d in ops if d["env"]["device"]["type"] == "cpu"]
    ops_gpu = next((Ops(d) for d in ops if d["env"]["device"]["type"] == "cuda"), None)
    compare = _load(results, "train-compare", include_quick)
    head, rest = INTRO.split("## Re-running", 1)
    out = [head, "## The training step, old code against this checkout\n\n", NETWORK_NOTE, network_section(compare)]
    out += ["\n## Re-running" + rest, OPS_NOTE]
    if prof:
        out.append("\n## Profiles\n\n" + PROFILE_NOTE)
        out += [profile_section(p) for p in prof]
    out.append("\n## Operator timings\n\n")
    out += [ops_section(o) + "\n" for o in cpu_ops + ([ops_gpu] if ops_gpu else [])] or ["No results yet.\n"]
    out.append("\n## Training throughput\n\n")
    out += [train_section(t) + "\n" for t in train] or ["No results yet.\n"]
    if not any(d["env"]["device"]["type"] == "cuda" for d in ops + train):
        out.append("\n## GPU\n\nNo GPU was lent while this was measured. "
                   "The scripts' GPU paths (CUDA events, bf16 autocast + channels_last, eager and `torch.compile`) run with "
                   "`--device cuda`; their results land beside the CPU files and this document picks them up.\n")
    return "".join(out)


NETWORK_NOTE = """What a user feels is a whole network's training step (forward, backward, SGD update), not an
operator's call. `bench_train.py --compare-old <commit>` builds the SE and MS-SAR networks from the old code (a
temporary git worktree of that commit, or `--old-src`, imported as `recalib_old`) and from this checkout, with
the same arguments (so the same function), and times their training steps interleaved in one process, CPU
float32, by the thread's CPU time (with one thread, time spent waiting for a core on a shared machine does not
count). Where two runs measured the same model and mode, the tables show the one with more timed steps.

`torch.compile` on CPU is not a free speed-up: its training step can be slower than eager, and with channels_last
it has been measured much slower on this 2-core machine, so `recalib train --compile` on a CPU logs a warning. Where a compile run
exists, its compile ÷ eager table is below; channels_last was not compiled here (CPU time).

"""

OPS_NOTE = """
## Operator-level timings and profiles (information)

The tables below time single operators (forward + backward) at the CIFAR and ImageNet feature-map shapes. They
are information, not targets: each file was measured at the commit its heading names (`ops-cpu-2threads.json`
and `profile-cpu-2threads.json` at older code; `ops-cpu-formulations-1thread.json` times MS-SAR's regional
formulations at the commit that chose them); the network-level ratios above are what changed for users. Re-run `bench_ops.py`
and `profile_ops.py` to measure this checkout.
"""

PROFILE_NOTE = """`profile_ops.py` runs the timed call under `torch.profiler` (self CPU time; the profiler's own overhead
inflates small operators) and counts the FC multiply-accumulates of one forward pass from the layer shapes.
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=str(HERE / "results"))
    p.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    p.add_argument("--include-quick", action="store_true", help="also use --quick smoke results (for tests)")
    args = p.parse_args(argv)
    text = render(Path(args.results), args.include_quick)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
