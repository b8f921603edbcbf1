#!/usr/bin/env python3
"""Export the published pretrained weights from a finished study: one safetensors file per operator.

For ``--model`` (default ResNet-20) and every operator of the study, the seed with the lowest *last-epoch*
test error is exported. That choice is made on the test set among the study's seeds, so the exported
model's error is an optimistic estimate; the model card therefore also gives the mean ± std over all seeds,
which is the honest estimate of what the recipe produces.

Writes into ``--out`` (default ``src/recalib/pretrained``): ``<model>-<operator key>-<tag>.safetensors``, their
entries in ``manifest.json`` (SHA-256, config, metrics, card text; entries of other tags/models are kept) and
``MODEL_CARD.md``. With ``--verify`` every exported file is loaded back through
``create_model(..., pretrained=tag)`` and evaluated on the full test set; its error must equal the run's.

    python scripts/export_pretrained.py --study fashion-mnist --tag fashion-mnist --verify
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
_RUNTIME_KEYS = ("out", "data_dir", "device", "threads", "progress", "tensorboard", "workers", "check_ranks")


def _final(run: Any) -> dict[str, Any]:
    lines = [json.loads(x) for x in (run.out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return lines[-1]


def _card(entry: dict[str, Any], schedule: str) -> str:
    m = entry["metrics"]
    seeds = ", ".join(f"seed {s}: {e:.2f}%" for s, e in sorted(m["test_error_by_seed"].items(), key=lambda kv: int(kv[0])))
    spread = f"{m['mean']:.2f} ± {m['std']:.2f}% over {m['n']} seeds" if m["std"] is not None else f"{m['mean']:.2f}%"
    return (
        f"{entry['architecture']} + {entry['recalib']} trained on Fashion-MNIST ({m['train_images']} training images, "
        f"{m['test_images']} test images), {schedule}. Test error (last epoch) of the exported seed "
        f"{m['seed']}: {m['final_test_error']:.2f}% (top-5 {m['final_test_top5_error']:.2f}%). Across seeds: "
        f"{spread} ({seeds}). The seed was selected as the lowest last-epoch test error among the seeds, i.e. "
        "on the test set: quote the mean ± std, not the exported seed's error, as the recipe's expected error."
    )


def export(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from recalib.data import get_dataset_info
    from recalib.pretrained import FORMAT_VERSION, sha256_file
    from recalib.studies import load_study, mean_std, plan_runs, run_status
    from recalib.train import load_checkpoint

    study = load_study(args.study, variant=args.variant)
    runs = [r for r in plan_runs(study, args.results) if r.model == args.model]
    if not runs:
        raise ValueError(f"study {study.dir_name} has no runs of {args.model}")
    missing = [r.run_id for r in runs if run_status(r) != "finished"]
    if missing:
        raise ValueError(f"not finished: {', '.join(missing)}; run the study first")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    kept = [e for e in manifest.get("weights", [])
            if not (e["tag"] == args.tag and e["architecture"] == args.model)]
    entries = []
    for op in study.operators:
        op_runs = [r for r in runs if r.operator.key == op.key]
        finals = {r.seed: _final(r) for r in op_runs}
        best = min(op_runs, key=lambda r: (finals[r.seed]["test_error"], r.seed))
        ckpt = load_checkpoint(best.out / "checkpoint.pt")
        if ckpt["epoch"] != best.config.epochs:
            raise ValueError(f"{best.out}: checkpoint is at epoch {ckpt['epoch']}, not the last")
        state = {k: v.contiguous() for k, v in ckpt["model"].items()}
        name = f"{args.model}-{op.key}-{args.tag}.safetensors"
        save_file(state, str(out / name), metadata={"architecture": args.model, "recalib": op.spec, "tag": args.tag,
                                                     "seed": str(best.seed), "study": study.dir_name})
        (out / name).chmod(0o644)  # safetensors writes owner-only files; these are published artefacts
        summary = json.loads((best.out / "summary.json").read_text())
        info = get_dataset_info(best.dataset)
        errs = [finals[s]["test_error"] for s in sorted(finals)]
        mean, sd = mean_std(errs)
        config = {k: v for k, v in ckpt["config"].items() if k not in _RUNTIME_KEYS}
        entry = {
            "tag": args.tag, "architecture": args.model, "recalib": op.spec, "in_chans": info.in_chans,
            "num_classes": info.num_classes, "file": name, "sha256": sha256_file(out / name), "config": config,
            "metrics": {
                "seed": best.seed, "final_test_error": finals[best.seed]["test_error"],
                "final_test_top5_error": finals[best.seed]["test_top5_error"],
                "test_error_by_seed": {str(s): finals[s]["test_error"] for s in sorted(finals)},
                "mean": mean, "std": sd, "n": len(errs), "params": summary.get("params"), "macs": summary.get("macs"),
                "train_images": summary.get("train_images"), "test_images": summary.get("test_images"),
                "schedule": study.schedule, "study": study.dir_name, "selection": "lowest last-epoch test error "
                "among the seeds (selected on the test set)",
            },
        }
        entry["card"] = _card(entry, study.schedule)
        entries.append(entry)
        print(f"{op.key:14s} seed {best.seed}  final test error {finals[best.seed]['test_error']:.2f}%  "
              f"(seeds: {mean:.2f} ± {sd or 0:.2f})  -> {name}")
    manifest = {"format_version": FORMAT_VERSION, "weights": kept + entries}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(_model_card(manifest["weights"]))
    if args.verify:
        _verify(entries, args.data_dir)
    return 0


def _model_card(weights: list[dict[str, Any]]) -> str:
    lines = [
        "# recalib pretrained weights", "",
        "Generated by `scripts/export_pretrained.py` from a finished study; do not edit by hand. Load with",
        "`recalib.create_model(architecture, recalib=..., in_chans=..., num_classes=..., pretrained=tag)`; the",
        "file's SHA-256 is checked against `manifest.json` before it is parsed (safetensors, no pickle).", "",
        "**Selection on the test set.** For each operator, the exported seed is the one with the lowest last-epoch",
        "test error among the study's seeds. Its error is therefore optimistic; the mean ± std over seeds is the",
        "estimate of what the recipe gives. Differences between operators are discussed, with their confidence",
        "intervals, in the study's report (`results/<tag>/report.md`).", "",
        "| tag | architecture | operator | exported seed: test error (%) | all seeds: mean ± std (n) | params | MACs | file | SHA-256 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in weights:
        m = e["metrics"]
        spread = f"{m['mean']:.2f} ± {m['std']:.2f} ({m['n']})" if m.get("std") is not None else f"{m['mean']:.2f} (1)"
        lines.append(f"| {e['tag']} | {e['architecture']} | `{e['recalib']}` | {m['seed']}: {m['final_test_error']:.2f} "
                     f"| {spread} | {m.get('params')} | {m.get('macs')} | `{e['file']}` | `{e['sha256'][:16]}…` |")
    lines += ["", "## Cards", ""]
    for e in weights:
        lines += [f"### {e['architecture']} + `{e['recalib']}` ({e['tag']})", "", e["card"], "",
                  "Training configuration: `" + json.dumps(e["config"], sort_keys=True) + "`", ""]
    lines += ["## Data and licence", "",
              "Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017, arXiv:1708.07747; MIT licence): 28x28 grey images of",
              "clothes, 10 classes. The weights are released under the licence of recalib (MIT). They are small",
              "research artefacts trained on a shortened schedule where the card says so, not production models.", ""]
    return "\n".join(lines)


def _verify(entries: list[dict[str, Any]], data_dir: str | None) -> None:
    from recalib.data import DeviceLoader, load_small
    from recalib.models import create_model
    from recalib.train import evaluate

    test = load_small("fashion-mnist", "test", data_dir=data_dir)
    loader = DeviceLoader(test, 500, train=False, device=torch.device("cpu"))
    for e in entries:
        model = create_model(e["architecture"], recalib=e["recalib"], in_chans=e["in_chans"],
                             num_classes=e["num_classes"], pretrained=e["tag"])
        ev = evaluate(model, loader, device=torch.device("cpu"), amp_dtype=None, channels_last=False)
        ok = abs(ev["test_error"] - e["metrics"]["final_test_error"]) < 1e-6
        print(f"verify {e['file']}: test error {ev['test_error']:.2f}% (run: {e['metrics']['final_test_error']:.2f}%)"
              f" {'OK' if ok else 'MISMATCH'}")
        if not ok:
            raise SystemExit(f"{e['file']}: the exported weights do not reproduce the run's test error")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="fashion-mnist")
    parser.add_argument("--variant", default="auto", help="study variant (auto: the no-GPU one without CUDA)")
    parser.add_argument("--results", default="runs/studies")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--tag", default="fashion-mnist")
    parser.add_argument("--out", default=str(REPO / "src" / "recalib" / "pretrained"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--verify", action="store_true", help="reload each file and re-evaluate on the test set")
    args = parser.parse_args(argv)
    try:
        return export(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"export_pretrained: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
