#!/usr/bin/env python3
"""Training throughput (images/s) of the zoo's backbones with each operator, through the real training engine.

    python3 benchmarks/bench_train.py                 # CPU: short runs, ImageNet models at reduced size
    python3 benchmarks/bench_train.py --device cuda   # GPU: bf16 autocast, channels_last, torch.compile
    python3 benchmarks/bench_train.py --quick --out /tmp/train.json   # a few seconds: smoke run
    python3 benchmarks/bench_train.py --compare-old 65da483 --threads 1   # old code vs this checkout, side by side

Each measurement is one call of ``recalib.train.engine.train_one_epoch`` (SGD with Nesterov momentum, the
paper's optimiser) over a ``recalib.data.DeviceLoader`` serving a synthetic uint8 data set held on the device
(random images and labels; pad-and-crop + flip augmentation as in training), and the throughput is the
engine's ``images_per_s``. Per model, the operators are measured interleaved (one short epoch of each per
round) after a warm-up epoch; medians over rounds are reported. Writes
``benchmarks/results/train-<device>.json`` and a Markdown table beside it.

``--compare-old COMMIT`` instead times, in one process and interleaved, the SE and MS-SAR networks built by the
code of COMMIT (checked out into a temporary git worktree, or imported from ``--old-src DIR``, as
``recalib_old``) against this checkout's, CPU float32, eager and ``torch.compile`` (NCHW cases only): ResNet-20 at
28x28 (one channel, batch 128), ResNet-56 at 32x32 (batch 128), ResNet-50 at 224x224 (batch 16, channels_last,
eager only), plus timm's ``seresnet50`` beside ResNet-50. Each round times one plain training step (forward,
cross-entropy, backward, SGD) of every network on one fixed random batch, by this thread's CPU time
(``--clock thread``: with ``--threads 1`` it does not count the time other processes hold the cores) or wall
time. MS-SAR is the zoo default of this checkout; the old code is given the same arguments, so both compute the
same function. Writes ``results/train-compare-<device>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent

from harness import environment, markdown_table, save_results, summarize  # noqa: E402

from recalib.data import DatasetInfo, DeviceLoader, SmallDataset  # noqa: E402
from recalib.models import create_model, model_info  # noqa: E402
from recalib.train.engine import train_one_epoch  # noqa: E402

SCHEMA = "recalib-bench-train/1"
MODELS = ["resnet20", "resnet56", "densenet_bc_100", "resnet50", "resnext50_32x4d"]
RECALIBS = ["none", "se", "ge", "sge", "mssar"]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--recalibs", default=",".join(RECALIBS), help="operators, in the textual form of build_recalib")
    p.add_argument("--batch-cifar", type=int, default=None, help="CIFAR ResNet batch (default: CPU 64, GPU 128)")
    p.add_argument("--batch-densenet", type=int, default=None, help="DenseNet-BC batch (default: CPU 32, GPU 64)")
    p.add_argument("--batch-imagenet", type=int, default=None, help="ImageNet-model batch (default: CPU 16, GPU 128)")
    p.add_argument("--imagenet-size", type=int, default=None, help="ImageNet-model input size (default: CPU 64, GPU 224)")
    p.add_argument("--steps", type=int, default=None, help="steps per timed epoch (default: CPU 3, GPU 50)")
    p.add_argument("--rounds", type=int, default=None, help="timed epochs per operator (default: CPU 3, GPU 5)")
    p.add_argument("--warmup-steps", type=int, default=None, help="steps of the untimed first epoch (default: CPU 1, GPU 20)")
    p.add_argument("--amp", default=None, choices=["off", "bf16", "fp16"], help="autocast (default: off on CPU, bf16 on GPU)")
    p.add_argument("--channels-last", default=None, choices=["on", "off"], help="default: off on CPU, on on GPU")
    p.add_argument("--compile", default=None, choices=["on", "off"], help="torch.compile the model (default: off on CPU, on on GPU)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads on CPU (0: leave as is)")
    p.add_argument("--quick", action="store_true", help="tiny batch, 1 step, 1 round: a smoke run")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/train-<device>[-<tag>].json)")
    p.add_argument("--tag", default="", help="suffix of the default output name, e.g. 1thread")
    p.add_argument("--compare-old", default=None, metavar="COMMIT", help="time COMMIT's SE/MS-SAR networks against this checkout's")
    p.add_argument("--compare-modes", default="eager,compile", help="with --compare-old: eager and/or compile")
    p.add_argument("--old-src", default=None, help="with --compare-old: import the old code from this src folder (no worktree)")
    p.add_argument("--clock", default="thread", choices=["thread", "wall"],
                   help="with --compare-old: time steps by this thread's CPU time (robust on a shared machine; use with "
                        "--threads 1) or by wall time")
    p.add_argument("--note", default="", help="free text stored in the JSON (e.g. what else ran on the machine)")
    return p.parse_args(argv)


def _synthetic(num: int, size: int, num_classes: int, in_chans: int = 3) -> SmallDataset:
    g = torch.Generator().manual_seed(0)
    info = DatasetInfo(
        name=f"synthetic-{size}px", num_classes=num_classes, in_chans=in_chans, image_size=size,
        mean=(0.5,) * in_chans, std=(0.25,) * in_chans, kind="small",
    )
    images = torch.randint(0, 256, (num, in_chans, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, num_classes, (num,), generator=g)
    return SmallDataset(images, labels, info, split="train")


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    env = environment(device)  # before the run: threads, load average, commit
    pick = lambda v, cpu, cuda: v if v is not None else (cuda if gpu else cpu)  # noqa: E731
    cfg = {
        "batch_cifar": pick(args.batch_cifar, 64, 128),
        "batch_densenet": pick(args.batch_densenet, 32, 64),
        "batch_imagenet": pick(args.batch_imagenet, 16, 128),
        "imagenet_size": pick(args.imagenet_size, 64, 224),
        "steps": pick(args.steps, 3, 50),
        "rounds": pick(args.rounds, 3, 5),
        "warmup_steps": pick(args.warmup_steps, 1, 20),
        "amp": pick(args.amp, "off", "bf16"),
        "channels_last": pick(args.channels_last, "off", "on") == "on",
        "compile": pick(args.compile, "off", "on") == "on",
    }
    if args.quick:
        cfg.update(batch_cifar=4, batch_densenet=4, batch_imagenet=2, imagenet_size=32, steps=1, rounds=1, warmup_steps=1)
    amp = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg["amp"]]
    models, recalibs = args.models.split(","), args.recalibs.split(",")
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name in models:
        info = model_info(name)
        imagenet = info.family == "imagenet"
        size = cfg["imagenet_size"] if imagenet else info.input_size
        batch = cfg["batch_imagenet"] if imagenet else cfg["batch_densenet"] if name.startswith("densenet") else cfg["batch_cifar"]
        # one epoch of each loader = exactly `steps` (`warmup_steps`) batches
        loaders = {
            key: DeviceLoader(_synthetic(batch * steps, size, info.num_classes), batch, train=True, device=device, seed=0,
                              pad=0 if imagenet else 4, channels_last=cfg["channels_last"])
            for key, steps in (("warmup", cfg["warmup_steps"]), ("timed", cfg["steps"]))
        }
        runs = {}
        for rc in recalibs:
            torch.manual_seed(0)
            model = create_model(name, recalib=rc).to(device)
            if cfg["channels_last"]:
                model = model.to(memory_format=torch.channels_last)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
            runs[rc] = (torch.compile(model) if cfg["compile"] else model, opt)

        ips: dict[str, list[float]] = {rc: [] for rc in recalibs}
        for r in range(-1, cfg["rounds"]):  # round -1: warm-up (allocations, oneDNN/cuDNN plans, compilation)
            for rc in recalibs:
                model, opt = runs[rc]
                loader = loaders["warmup" if r < 0 else "timed"]
                loader.set_epoch(max(r, 0))
                m = train_one_epoch(model, loader, opt, lr_at=lambda s: 0.01, step=0, device=device, amp_dtype=amp,
                                    channels_last=cfg["channels_last"])
                if r >= 0:
                    ips[rc].append(m["images_per_s"])
        for rc in recalibs:
            s = summarize(ips[rc])
            results.append({
                "model": name, "recalib": rc, "input_size": size, "batch": batch, "images_per_s": ips[rc],
                "median_images_per_s": s["median"], "q1": s["q1"], "q3": s["q3"],
            })
        print(f"[{name} {size}px b{batch}] " + "  ".join(f"{rc}={summarize(v)['median']:.1f}" for rc, v in ips.items()), flush=True)
        del runs
    return {
        "schema": SCHEMA,
        "kind": "train",
        "env": env,
        "config": {**cfg, "device": device.type, "models": models, "recalibs": recalibs, "quick": args.quick,
                   "data": "synthetic uint8 images on the device, DeviceLoader augmentation (pad-crop for CIFAR sizes, flip)",
                   "optimizer": "SGD lr 0.01, Nesterov momentum 0.9, wd 1e-4"},
        "results": results,
        "wall_seconds": time.perf_counter() - started,
    }


def to_markdown(data: dict[str, Any]) -> str:
    env, cfg = data["env"], data["config"]
    head = (
        f"# Training throughput: {env['device']['name']} ({cfg['device']}, {env['device']['torch_threads']} threads)\n\n"
        f"torch {env['versions']['torch']}, commit {env['git']['commit']}{' (dirty)' if env['git']['dirty'] else ''}, "
        f"{env['date']}. Median images/s over {cfg['rounds']} epochs of {cfg['steps']} steps; amp {cfg['amp']}, "
        f"channels_last {cfg['channels_last']}, compile {cfg['compile']}. {cfg['data']}.\n\n"
    )
    rows = []
    by = {(r["model"], r["recalib"]): r for r in data["results"]}
    for m in cfg["models"]:
        base = by.get((m, "se"))
        for rc in cfg["recalibs"]:
            r = by.get((m, rc))
            if r is None:
                continue
            rel = r["median_images_per_s"] / base["median_images_per_s"] if base else None
            rows.append([m, rc, r["input_size"], r["batch"], f"{r['median_images_per_s']:.1f}", "—" if rel is None else f"{rel:.2f}"])
    return head + markdown_table(["model", "operator", "input", "batch", "images/s", "÷ SE"], rows)


# ------------------------------------------------------------------------------ old code vs new ---
# (model, input size, in_chans, batch, channels_last, modes); the three networks.
COMPARE_CASES = [
    ("resnet20", 28, 1, 128, False, ("eager", "compile")),
    ("resnet56", 32, 3, 128, False, ("eager", "compile")),
    ("resnet50", 224, 3, 16, True, ("eager",)),
]


def _import_old(commit: str, root: Path, src: str | None = None) -> tuple[Any, Path | None]:
    """COMMIT's ``recalib.models`` imported as ``recalib_old`` from a temporary git worktree (or from ``src``, a
    folder holding the old ``recalib`` package, e.g. a checkout's ``src``)."""
    tmp = None
    if src is not None:
        pkg = Path(src) / "recalib"
    else:
        tmp = Path(tempfile.mkdtemp(prefix="recalib-old-"))
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tmp / "wt"), commit], check=True,
                       capture_output=True)
        pkg = tmp / "wt" / "src" / "recalib"
    spec = importlib.util.spec_from_file_location("recalib_old", pkg / "__init__.py", submodule_search_locations=[str(pkg)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["recalib_old"] = module
    spec.loader.exec_module(module)
    import recalib_old.models  # type: ignore[import-not-found]

    return recalib_old.models, tmp


def _compare_models(old: Any, name: str, in_chans: int) -> dict[str, torch.nn.Module]:
    """The networks of one case: SE and MS-SAR from each code base (MS-SAR with this checkout's zoo default)."""
    new_mssar = create_model(name, recalib="mssar", in_chans=in_chans)
    ops = [m for m in new_mssar.modules() if type(m).__name__ == "MSSAR"]
    same = {"scales": ops[0].scales, "reduction": ops[0].reduction}
    models = {"new/se": create_model(name, recalib="se", in_chans=in_chans), "new/mssar": new_mssar,
              "old/se": old.create_model(name, recalib="se", in_chans=in_chans),
              "old/mssar": old.create_model(name, recalib="mssar", recalib_args=same, in_chans=in_chans)}
    if name == "resnet50":
        import timm

        models["timm/seresnet50"] = timm.create_model("seresnet50", num_classes=1000, in_chans=in_chans)
    return models


def _timed_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, steps: int,
                 clock: Any) -> float:
    """Seconds per training step (forward, cross-entropy, backward, SGD step), the mean over ``steps`` by ``clock``."""
    start = clock()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return (clock() - start) / steps


def compare(args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device("cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment(device)
    steps, rounds = args.steps or 1, args.rounds or 3
    if args.quick:
        steps, rounds = 1, 1
    old, tmp = _import_old(args.compare_old, HERE.parent, args.old_src)
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for name, size, in_chans, batch, cl, modes in COMPARE_CASES:
            if args.models != ",".join(MODELS) and name not in args.models.split(","):
                continue
            if args.quick:
                size, batch = min(size, 32), 4
            g = torch.Generator().manual_seed(0)
            x = torch.randn(batch, in_chans, size, size, generator=g)
            x = x.contiguous(memory_format=torch.channels_last) if cl else x
            y = torch.randint(0, model_info(name).num_classes, (batch,), generator=g)
            for mode in [m for m in modes if m in args.compare_modes.split(",")]:
                torch.manual_seed(0)
                runs = {}
                for key, model in _compare_models(old, name, in_chans).items():
                    model = model.to(memory_format=torch.channels_last) if cl else model
                    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)
                    runs[key] = (torch.compile(model) if mode == "compile" else model.train(), opt)
                ips: dict[str, list[float]] = {k: [] for k in runs}
                for r in range(-1, rounds):  # round -1: warm-up (oneDNN plans, compilation)
                    for key, (model, opt) in runs.items():  # interleaved: one round of every network, then the next
                        seconds = _timed_steps(model, opt, x, y, 1 if r < 0 else steps, clock)
                        if r >= 0:
                            ips[key].append(batch / seconds)
                med = {k: summarize(v)["median"] for k, v in ips.items()}
                for key, v in ips.items():
                    results.append({"model": name, "input_size": size, "in_chans": in_chans, "batch": batch,
                                    "channels_last": cl, "mode": mode, "code": key.split("/")[0], "recalib": key.split("/")[1],
                                    "images_per_s": v, "median_images_per_s": med[key]})
                print(f"[{name} {size}px b{batch} {mode}] " + "  ".join(f"{k}={v:.2f}" for k, v in med.items()), flush=True)
    finally:
        if tmp is not None:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", str(tmp / "wt")], check=False)
    return {"schema": SCHEMA, "kind": "train-compare", "env": env,
            "config": {"device": "cpu", "dtype": "float32", "old_commit": args.compare_old, "old_src": args.old_src,
                       "clock": args.clock, "modes": args.compare_modes, "steps": steps, "rounds": rounds,
                       "quick": args.quick, "note": args.note, "cases": [list(c) for c in COMPARE_CASES],
                       "optimizer": "SGD lr 0.01, Nesterov momentum 0.9, wd 1e-4"},
            "ratios": compare_ratios(results), "results": results, "wall_seconds": time.perf_counter() - started}


def compare_ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per case and mode: training-step time ratios (inverse throughput ratios; > 1 means slower)."""
    by: dict[tuple[str, str], dict[str, float]] = {}
    for r in results:
        by.setdefault((r["model"], r["mode"]), {})[f"{r['code']}/{r['recalib']}"] = r["median_images_per_s"]
    out = []
    for (model, mode), ips in by.items():
        row = {"model": model, "mode": mode,
               "new_mssar_over_se": ips["new/se"] / ips["new/mssar"], "old_mssar_over_se": ips["old/se"] / ips["old/mssar"],
               "new_over_old_se": ips["old/se"] / ips["new/se"], "new_over_old_mssar": ips["old/mssar"] / ips["new/mssar"]}
        if "timm/seresnet50" in ips:
            row["recalib_se_over_timm_se"] = ips["timm/seresnet50"] / ips["new/se"]
        out.append(row)
    return out


def compare_markdown(data: dict[str, Any]) -> str:
    env, cfg = data["env"], data["config"]
    head = (f"# Training step, old code ({cfg['old_commit']}) against this checkout ({env['git']['commit']}), CPU float32\n\n"
            f"{env['device']['name']}, {env['device']['torch_threads']} thread(s), torch {env['versions']['torch']}, "
            f"{env['date']}. Median over {cfg['rounds']} rounds of {cfg['steps']} step(s). Ratios of step times (> 1: "
            f"slower). {cfg['note']}\n\n")
    rows = [[r["model"], r["mode"], f"{r['old_mssar_over_se']:.2f}", f"{r['new_mssar_over_se']:.2f}", f"{r['new_over_old_se']:.2f}",
             f"{r['new_over_old_mssar']:.2f}", f"{r['recalib_se_over_timm_se']:.2f}" if "recalib_se_over_timm_se" in r else "—"]
            for r in data["ratios"]]
    return head + markdown_table(["model", "mode", "MS-SAR ÷ SE (old)", "MS-SAR ÷ SE (new)", "SE new ÷ old",
                                  "MS-SAR new ÷ old", "recalib SE ÷ timm SE"], rows)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.compare_old:
        data = compare(args)
        save_results(data, "train-compare", HERE / "results", out=args.out, tag=args.tag, markdown=compare_markdown)
        return 0
    data = run(args)
    save_results(data, "train", HERE / "results", out=args.out, tag=args.tag, markdown=to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
