#!/usr/bin/env python3
"""Export the published pretrained weights from a study: one safetensors file per operator.

For ``--model`` (default ResNet-20) and every operator of the study, seed ``--seed`` (default 0, declared
before training, never chosen on the test set) is exported as soon as its run has finished and its checkpoint
is here. The model card gives that seed's error and the mean ± std over the seeds finished so far (from the
committed ``metrics.jsonl`` files), which is the honest estimate of what the recipe produces; running the
script again after more seeds finish renews those statistics without needing the earlier checkpoints.

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
_RUNTIME_KEYS = ("out", "data_dir", "device", "threads", "progress", "tensorboard", "logger", "log_every", "workers",
                 "check_ranks")


def _final(run: Any) -> dict[str, Any]:
    lines = [json.loads(x) for x in (run.out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return lines[-1]


def _card(entry: dict[str, Any], schedule: str) -> str:
    m = entry["metrics"]
    seeds = ", ".join(f"seed {s}: {e:.2f}%" for s, e in sorted(m["test_error_by_seed"].items(), key=lambda kv: int(kv[0])))
    spread = f"{m['mean']:.2f} ± {m['std']:.2f}% over {m['n']} seeds" if m["std"] is not None else f"{m['mean']:.2f}%"
    planned = m.get("seeds_planned", m["n"])
    so_far = "" if m["n"] >= planned else f" (so far: {m['n']} of the study's {planned} seeds have finished)"
    return (
        f"{entry['architecture']} + {entry['recalib']} trained on Fashion-MNIST ({m['train_images']} training images, "
        f"{m['test_images']} test images), {schedule}. Exported: seed {m['seed']}, {m['selection']}. Its test error "
        f"(last epoch): {m['final_test_error']:.2f}% (top-5 {m['final_test_top5_error']:.2f}%). Across seeds: "
        f"{spread} ({seeds}){so_far}; quote the mean ± std as the recipe's expected error."
        + (f" Trained by `{m['command']}`, which runs `python3 -m recalib train` on the run's `planned_config.json` "
           "(the training configuration below)." if m.get("command") else "")
    )


def _same_weights(path: Path, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``path`` already holds exactly ``state`` (same names, dtypes, shapes and values)."""
    from safetensors.torch import load_file

    if not path.is_file():
        return False
    held = load_file(str(path))
    return held.keys() == state.keys() and all(
        held[k].dtype == v.dtype and held[k].shape == v.shape and torch.equal(held[k], v) for k, v in state.items())


def _previous(manifest: dict[str, Any], tag: str, model: str, spec: str) -> dict[str, Any] | None:
    return next((e for e in manifest.get("weights", [])
                 if e["tag"] == tag and e["architecture"] == model and e["recalib"] == spec), None)


def export(args: argparse.Namespace) -> int:
    """Export seed ``args.seed`` of every operator whose run has finished; refresh the seed statistics of every
    entry from the run folders (``metrics.jsonl`` is committed, checkpoints are not: an entry whose weights
    were exported earlier keeps them and only gets its statistics renewed)."""
    from safetensors.torch import save_file

    from recalib._provenance import library_versions as _versions
    from recalib.data import get_dataset_info
    from recalib.pretrained import FORMAT_VERSION, sha256_file
    from recalib.pretrained.export import _code_commit
    from recalib.studies import load_study, mean_std, plan_runs, run_status
    from recalib.train import load_checkpoint

    exported_at = _code_commit()
    if str(exported_at).endswith("-dirty") and not args.allow_dirty:
        raise ValueError(f"refusing to export from a dirty tree ({exported_at}); commit first or pass --allow-dirty")
    study = load_study(args.study, variant=args.variant)
    runs = [r for r in plan_runs(study, args.results) if r.model == args.model]
    if not runs:
        raise ValueError(f"study {study.dir_name} has no runs of {args.model}")
    if not any(r.seed == args.seed for r in runs):
        raise ValueError(f"study {study.dir_name} has no seed {args.seed}; its seeds: {sorted({r.seed for r in runs})}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    entries: dict[str, dict[str, Any]] = {}
    for op in study.operators:
        op_runs = [r for r in runs if r.operator.key == op.key]
        chosen = next(r for r in op_runs if r.seed == args.seed)
        finished = [r for r in op_runs if run_status(r) == "finished"]
        name = f"{args.model}-{op.key}-{args.tag}.safetensors"
        previous = _previous(manifest, args.tag, args.model, op.spec)
        if chosen in finished and (chosen.out / "checkpoint.pt").is_file():
            ckpt = load_checkpoint(chosen.out / "checkpoint.pt")
            if ckpt["epoch"] != chosen.config.epochs:
                raise ValueError(f"{chosen.out}: checkpoint is at epoch {ckpt['epoch']}, not the last")
            summary = json.loads((chosen.out / "summary.json").read_text())
            trained_at = summary.get("git_commit")
            if str(trained_at).endswith("-dirty") and not args.allow_dirty:
                raise ValueError(f"{chosen.out} was trained from a dirty tree ({trained_at}); pass --allow-dirty")
            state = {k: v.contiguous() for k, v in ckpt["model"].items()}
            if not _same_weights(out / name, state):  # safetensors orders its metadata at random: keep the bytes
                save_file(state, str(out / name), metadata={"architecture": args.model, "recalib": op.spec,
                                                             "tag": args.tag, "seed": str(args.seed),
                                                             "study": study.dir_name})
                (out / name).chmod(0o644)  # safetensors writes owner-only files; these are published artefacts
            config = {k: v for k, v in ckpt["config"].items() if k not in _RUNTIME_KEYS}
            provenance = {"trained_at_commit": trained_at, "exported_at_commit": exported_at,
                          "training_versions": ckpt.get("versions"), "export_versions": _versions()}
        elif (previous is not None and previous["metrics"].get("study") == study.dir_name
              and previous["metrics"].get("seed") == args.seed and chosen in finished):
            summary = json.loads((chosen.out / "summary.json").read_text())
            config, provenance = previous["config"], previous["metrics"]["provenance"]
        else:
            state_text = "finished, but its checkpoint is not here" if chosen in finished else run_status(chosen)
            print(f"{op.key:14s} seed {args.seed}: {state_text}; kept as it was")
            continue
        finals = {r.seed: _final(r) for r in finished}
        errs = [finals[s]["test_error"] for s in sorted(finals)]
        mean, sd = mean_std(errs)
        info = get_dataset_info(chosen.dataset)
        entry = {
            "tag": args.tag, "architecture": args.model, "recalib": op.spec, "in_chans": info.in_chans,
            "num_classes": info.num_classes, "file": name, "sha256": sha256_file(out / name), "config": config,
            "metrics": {
                "seed": args.seed, "final_test_error": finals[args.seed]["test_error"],
                "final_test_top5_error": finals[args.seed]["test_top5_error"],
                "test_error_by_seed": {str(s): finals[s]["test_error"] for s in sorted(finals)},
                "mean": mean, "std": sd, "n": len(errs), "seeds_planned": len(op_runs),
                "params": summary.get("params"), "macs": summary.get("macs"),
                "train_images": summary.get("train_images"), "test_images": summary.get("test_images"),
                "schedule": study.schedule, "study": study.dir_name,
                "selection": f"declared before training (seed {args.seed} of every operator; not chosen on the test set)",
                "provenance": provenance,
                "command": (f"python3 -m recalib study run {study.name} --variant {study.variant or 'none'} "
                            f"--results {args.results} --filter {chosen.run_id}"),
            },
        }
        entry["card"] = _card(entry, study.schedule)
        entries[op.spec] = entry
        print(f"{op.key:14s} seed {args.seed}  final test error {finals[args.seed]['test_error']:.2f}%  "
              f"(seeds so far: {mean:.2f}" + (f" ± {sd:.2f}" if sd is not None else "") + f", n={len(errs)})  -> {name}")
    weights = [entries.pop(e["recalib"]) if (e["tag"] == args.tag and e["architecture"] == args.model
                                            and e["recalib"] in entries) else e
               for e in manifest.get("weights", [])]
    weights += list(entries.values())
    manifest = {"format_version": FORMAT_VERSION, "weights": weights}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(_model_card(manifest["weights"]))
    if args.verify:
        _verify([e for e in weights if e["tag"] == args.tag and e["architecture"] == args.model], args.data_dir)
    return 0


def _model_card(weights: list[dict[str, Any]]) -> str:
    lines = [
        "# recalib pretrained weights", "",
        "Generated by `scripts/export_pretrained.py` from a finished study; do not edit by hand. Load with",
        "`recalib.create_model(architecture, recalib=..., in_chans=..., num_classes=..., pretrained=tag)`; the",
        "file's SHA-256 is checked against `manifest.json` before it is parsed (safetensors, no pickle).", "",
        "**Preprocessing.** Every model here was trained on 1 x 28 x 28 Fashion-MNIST images normalised as",
        "`(pixels / 255 - 0.2860) / 0.3530` (the training split's mean and standard deviation), with no resizing",
        "(`crop_pct` 1.0). Fed plain [0, 1] pixels they are far worse. After loading, `model.pretrained_cfg` holds these",
        "values in timm's keys (`input_size`, `mean`, `std`, `interpolation`, `crop_pct`), and",
        "`timm.data.resolve_data_config(model=model)` and `recalib.complexity(model)` use them.", "",
        "**Which seed.** Each card says how its seed was chosen: seed 0 of every operator, declared before training,",
        "never chosen on the test set. The mean ± std over seeds is the estimate of what the recipe gives;",
        "differences between operators, with their confidence intervals, are in the study's report",
        "(`results/<tag>/report.md`).", "",
        "| tag | architecture | operator | study | exported seed: test error (%) | seeds: mean ± std (n) | params | MACs | file | SHA-256 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in weights:
        m = e["metrics"]
        spread = f"{m['mean']:.2f} ± {m['std']:.2f} ({m['n']})" if m.get("std") is not None else f"{m['mean']:.2f} (1)"
        lines.append(f"| {e['tag']} | {e['architecture']} | `{e['recalib']}` | {m.get('study')} | {m['seed']}: {m['final_test_error']:.2f} "
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
    parser.add_argument("--results", default="results/studies")
    parser.add_argument("--seed", type=int, default=0, help="the seed exported for every operator (declared in advance)")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--tag", default="fashion-mnist")
    parser.add_argument("--out", default=str(REPO / "src" / "recalib" / "pretrained"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--verify", action="store_true", help="reload each file and re-evaluate on the test set")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="export although the checkout or a training run had uncommitted changes")
    args = parser.parse_args(argv)
    try:
        return export(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"export_pretrained: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
