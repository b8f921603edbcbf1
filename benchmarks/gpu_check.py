#!/usr/bin/env python3
"""One command that checks recalib on a lent GPU (one H100/H200) in under 8 minutes and writes one JSON file.

    python3 benchmarks/gpu_check.py --out /tmp/gpu --data-dir data/fashion-mnist   # on the GPU machine
    python3 benchmarks/gpu_check.py --quick --out /tmp/gpu-quick                   # CPU smoke run (CI)

Sections, each a subprocess with its own time limit (a failing or slow section is recorded, never fatal, and
the JSON is rewritten after every section, so nothing is lost when the machine is taken back):

1. ``ops_eager`` / ``ops_compile``: every operator's forward+backward against SE at the benchmark shapes,
   bf16 autocast, channels_last (``benchmarks/bench_ops.py``; compiled at the CIFAR shapes only, to fit).
2. ``train_<model>``: a network's training step, ResNet-20/56/50 x none/SE/MS-SAR, bf16, channels_last,
   ``torch.compile`` (``benchmarks/bench_train.py``; ResNet-50 at 224 px).
3. ``protocol``: two epochs of the paper's CIFAR-ResNet protocol (batch 128, SGD-Nesterov) for ResNet-20 +
   MS-SAR on Fashion-MNIST through ``recalib train``, and the 160-epoch time they imply.
4. ``torchrun``: a one-process ``torchrun`` training run (NCCL on CUDA, gloo on the CPU).
0. ``probe`` (first, so that a short loan still answers it): ``gpu_check.py --probe``, the training-step ratios
   MS-SAR / SE and SE / plain of ResNet-56 (CIFAR, batch 128) and ResNet-50 (224 px, batch 64), bf16 autocast,
   channels_last, eager and ``torch.compile``; ``torch.export`` of ResNet-20 + MS-SAR with dynamic H/W run on
   the device at 28x28, 32x32 and 20x30 against eager; and whether two identical training steps give identical
   losses and gradients.

``--quick`` shrinks every section to seconds on the CPU; the test suite runs it, so the script itself is tested.
Writes ``<out>/gpu_check.json`` (schema ``recalib-gpu-check/1``) with the environment, every command, its exit
status, wall time, output tail, the results it produced, and ``derived`` ratios (operator / SE, network / SE
network, the implied 160-epoch time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from harness import environment, write_json  # noqa: E402

SCHEMA = "recalib-gpu-check/1"
OPS = "se,ge,sge,mssar,mssar_sliding"
TRAIN_RECALIBS = "none,se,mssar"
PAPER_EPOCHS = 160


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for gpu_check.json and the sections' files")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (the four .gz files; default: the standard places)")
    p.add_argument("--quick", action="store_true", help="CPU smoke run of every section (seconds each)")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for all sections together (default 450)")
    p.add_argument("--probe", action="store_true", help="run only the probe section in this process (writes <out>/probe.json)")
    return p.parse_args(argv)


def _sections(args: argparse.Namespace, out: Path, cuda: bool) -> list[tuple[str, list[str], float]]:
    """``(name, command, time limit in s)`` of every section, in order."""
    py = [sys.executable]
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    probe = [("probe", [*py, str(HERE / "gpu_check.py"), "--probe", "--out", str(out), *(["--quick"] if args.quick else [])],
              120.0 if args.quick else 200.0)]
    if args.quick:
        ops = [*py, str(HERE / "bench_ops.py"), "--quick", "--device", "cpu", "--ops", OPS, "--amp", "bf16",
               "--formats", "channels_last"]
        sections = [*probe, ("ops_eager", [*ops, "--modes", "eager", "--out", str(out / "ops_eager.json")], 120.0)]
        train = [*py, str(HERE / "bench_train.py"), "--quick", "--device", "cpu", "--recalibs", TRAIN_RECALIBS,
                 "--amp", "bf16", "--channels-last", "on", "--compile", "off"]
        sections += [("train_resnet20", [*train, "--models", "resnet20", "--out", str(out / "train_resnet20.json")],
                      120.0)]
        small = ["--subset", "256", "--test-subset", "200", "--batch-size", "64", "--device", "cpu", "--threads", "1"]
        proto_epochs = "2"
    else:
        ops = [*py, str(HERE / "bench_ops.py"), "--device", "cuda", "--ops", OPS, "--amp", "bf16",
               "--formats", "channels_last", "--budget", "0.3", "--reps", "20"]
        sections = [
            *probe,
            ("ops_eager", [*ops, "--modes", "eager", "--out", str(out / "ops_eager.json")], 60.0),
            ("ops_compile", [*ops, "--modes", "compile", "--suites", "cifar", "--out", str(out / "ops_compile.json")],
             75.0),
        ]
        train = [*py, str(HERE / "bench_train.py"), "--device", "cuda", "--recalibs", TRAIN_RECALIBS, "--amp", "bf16",
                 "--channels-last", "on", "--compile", "on", "--steps", "20", "--rounds", "3", "--warmup-steps", "5",
                 "--imagenet-size", "224", "--batch-imagenet", "64"]
        sections += [("train_resnet20", [*train, "--models", "resnet20", "--out", str(out / "train_resnet20.json")], 60.0)]
        small = ["--device", "cuda"]
        proto_epochs = "2"
    train_cmd = [*py, "-m", "recalib", "train", "--model", "resnet20", "--dataset", "fashion-mnist",
                 "--recipe", "paper-cifar-resnet", "--no-progress", "--no-tensorboard", *data]
    sections.append(("protocol", [*train_cmd, "--recalib", "mssar", "--epochs", proto_epochs, *small,
                                  "--out", str(out / "protocol")], 150.0))
    torchrun = [*py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "recalib", "train"]
    sections.append(("torchrun", [*torchrun, *train_cmd[4:], "--recalib", "se", "--epochs", "1",
                                  *(small if args.quick else ["--subset", "8192", "--device", "cuda"]),
                                  "--out", str(out / "torchrun")], 120.0))
    return sections


def _run(cmd: list[str], limit: float) -> dict[str, Any]:
    started = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=ROOT, env=env)
        rc, text, timed_out = p.returncode, p.stdout + p.stderr, False
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        rc, text, timed_out = None, out + err, True
    return {"command": cmd, "limit_s": limit, "returncode": rc, "timed_out": timed_out,
            "wall_s": time.perf_counter() - started, "output_tail": text[-3000:]}


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _ops_ratios(data: Any) -> list[dict[str, Any]]:
    """Median ms of each operator and its ratio to SE's, per shape and mode."""
    if not data:
        return []
    med: dict[tuple[str, tuple[int, ...], str], float | None] = {}
    for r in data["results"]:
        med[(r["mode"], tuple(r["shape"]), r["op"])] = _median(r.get("times_ms") or [])
    rows = []
    for (mode, shape, op), ms in med.items():
        se = med.get((mode, shape, "se"))
        rows.append({"mode": mode, "shape": list(shape), "op": op, "median_ms": ms,
                     "ratio_to_se": ms / se if ms and se else None})
    return rows


def _train_ratios(data: Any) -> list[dict[str, Any]]:
    """Training-step time of each network relative to the SE network (images/s of SE / of the network)."""
    if not data:
        return []
    by = {(r["model"], r["recalib"]): r["median_images_per_s"] for r in data["results"]}
    return [{"model": m, "recalib": rc, "images_per_s": v,
             "step_time_ratio_to_se": by[(m, "se")] / v if v and by.get((m, "se")) else None}
            for (m, rc), v in by.items()]


def _protocol(folder: Path, epochs: int = PAPER_EPOCHS) -> dict[str, Any] | None:
    """Epoch times of the protocol run and the time ``epochs`` epochs imply (from the last, warm epoch)."""
    try:
        rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        return None
    if not rows:
        return None
    last = rows[-1]
    per_epoch = last["seconds"] + last.get("eval_seconds", 0.0)
    return {"epoch_seconds": [r["seconds"] for r in rows], "eval_seconds": [r.get("eval_seconds") for r in rows],
            "test_error": [r["test_error"] for r in rows], "images_per_s": [r.get("images_per_s") for r in rows],
            "implied_epochs": epochs, "implied_minutes": per_epoch * epochs / 60.0}


def _derive(out: Path, results: dict[str, Any]) -> dict[str, Any]:
    derived: dict[str, Any] = {
        "ops": {name[4:]: _ops_ratios(_load(out / f"{name}.json")) for name in results if name.startswith("ops_")},
        "train": {name[6:]: _train_ratios(_load(out / f"{name}.json")) for name in results if name.startswith("train_")},
    }
    if "probe" in results:
        derived["probe"] = _load(out / "probe.json")
    if "protocol" in results:
        derived["protocol"] = _protocol(out / "protocol")
    if "torchrun" in results:
        summary = _load(out / "torchrun" / "summary.json")
        derived["torchrun"] = None if summary is None else {
            k: summary.get(k) for k in ("status", "world_size", "final_test_error", "device", "wall_seconds")}
    return derived


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("protocol", "torchrun"):  # a rerun starts these runs afresh
        shutil.rmtree(out / stale, ignore_errors=True)
    cuda = torch.cuda.is_available() and not args.quick
    if not args.quick and not cuda:
        raise SystemExit("gpu_check: CUDA is not available; use --quick for the CPU smoke run")
    data: dict[str, Any] = {"schema": SCHEMA, "quick": args.quick, "env": environment("cuda" if cuda else "cpu"),
                            "budget_s": args.budget, "sections": {}, "derived": {}}
    started = time.perf_counter()
    for name, cmd, limit in _sections(args, out, cuda):
        left = args.budget - (time.perf_counter() - started)
        if left < 10:
            data["sections"][name] = {"command": cmd, "skipped": f"budget spent ({args.budget:.0f} s)"}
            continue
        print(f"gpu_check: {name} (limit {min(limit, left):.0f} s)", flush=True)
        data["sections"][name] = res = _run(cmd, min(limit, left))
        state = "timed out" if res["timed_out"] else f"exit {res['returncode']}"
        print(f"gpu_check: {name}: {state} in {res['wall_s']:.0f} s", flush=True)
        data["derived"] = _derive(out, data["sections"])
        data["wall_seconds"] = time.perf_counter() - started
        write_json(out / "gpu_check.json", data)  # after every section: nothing lost if the machine goes
    return data


# ------------------------------------------------------------------------------------------ probe ---
PROBE_CASES = [("resnet56", 32, 128), ("resnet50", 224, 64)]  # model, input size, batch (CUDA)


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One training step under bf16 autocast; returns the loss."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.detach()


def _step_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, warmup: int, steps: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for _ in range(warmup):
        _step(model, opt, x, y)
    times = []
    for _ in range(steps):
        sync()
        t = time.perf_counter()
        _step(model, opt, x, y)
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _export_check(device: torch.device) -> dict[str, Any]:
    """ResNet-20 + MS-SAR exported once with dynamic H/W, run on the device at three sizes against eager."""
    from recalib.models import create_model

    model = create_model("resnet20", recalib="mssar", in_chans=1).to(device).eval()
    dims = {0: torch.export.Dim("n", min=1, max=256), 2: torch.export.Dim("h", min=8, max=512), 3: torch.export.Dim("w", min=8, max=512)}
    ep = torch.export.export(model, (torch.randn(2, 1, 28, 28, device=device),), dynamic_shapes=(dims,))
    diffs = {}
    with torch.no_grad():
        for h, w in [(28, 28), (32, 32), (20, 30)]:
            x = torch.randn(3, 1, h, w, device=device)
            diffs[f"{h}x{w}"] = (ep.module()(x) - model(x)).abs().max().item()
    return {"max_abs_diff": diffs, "ok": all(d < 1e-4 for d in diffs.values())}


def _determinism(device: torch.device, quick: bool) -> dict[str, Any]:
    """Two identical training steps (same seed, weights, batch) of ResNet-56 + MS-SAR: equal losses and gradients?"""
    from recalib.models import create_model

    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = create_model("resnet20" if quick else "resnet56", recalib="mssar").to(device, memory_format=torch.channels_last)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(8 if quick else 128, 3, 32, 32, generator=g).to(device, memory_format=torch.channels_last)
        y = torch.randint(0, 10, (x.shape[0],), generator=g).to(device)
        loss = _step(model, torch.optim.SGD(model.parameters(), lr=0.0), x, y)
        runs.append((loss, [p.grad.detach().clone() for p in model.parameters()]))
    (l1, g1), (l2, g2) = runs
    return {"loss_equal": bool(torch.equal(l1, l2)), "grads_equal": all(torch.equal(a, b) for a, b in zip(g1, g2)),
            "max_grad_diff": max((a - b).abs().max().item() for a, b in zip(g1, g2))}


def probe(args: argparse.Namespace) -> dict[str, Any]:
    """The probe section: step-time ratios, the dynamic-shape export and determinism, written piece by piece."""
    from recalib.models import create_model

    device = torch.device("cuda" if torch.cuda.is_available() and not args.quick else "cpu")
    path = Path(args.out) / "probe.json"
    data: dict[str, Any] = {"device": device.type, "amp": "bf16", "channels_last": True, "train": [], "ratios": []}
    cases = [("resnet20", 16, 4)] if args.quick else PROBE_CASES
    modes = ["eager"] if args.quick else ["eager", "compile"]
    pieces: list[tuple[str, Any]] = [("export", lambda: _export_check(device)),
                                     ("determinism", lambda: _determinism(device, args.quick))]
    for mode in modes:
        for name, size, batch in cases:
            pieces.append((f"train/{name}/{mode}", (name, size, batch, mode)))
    for key, piece in pieces:
        if not key.startswith("train/"):
            data[key] = piece()
        else:
            name, size, batch, mode = piece
            g = torch.Generator().manual_seed(0)
            x = torch.randn(batch, 3, size, size, generator=g).to(device, memory_format=torch.channels_last)
            y = torch.randint(0, 10 if size <= 32 else 1000, (batch,), generator=g).to(device)
            sec = {}
            for rc in ("none", "se", "mssar"):
                torch.manual_seed(0)
                model = create_model(name, recalib=rc).to(device, memory_format=torch.channels_last)
                model = torch.compile(model) if mode == "compile" else model
                sec[rc] = _step_seconds(model, x, y, warmup=1 if args.quick else 5, steps=1 if args.quick else 15)
                data["train"].append({"model": name, "mode": mode, "recalib": rc, "batch": batch, "step_s": sec[rc]})
            data["ratios"].append({"model": name, "mode": mode, "mssar_over_se": sec["mssar"] / sec["se"],
                                   "se_over_none": sec["se"] / sec["none"]})
        write_json(path, data)  # after every piece: a timed-out section keeps what it measured
    return data


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.probe:
        probe(args)
        return 0
    data = run(args)
    failed = [n for n, s in data["sections"].items() if s.get("returncode") != 0]
    print(f"gpu_check: wrote {Path(args.out) / 'gpu_check.json'}; failed or skipped: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
