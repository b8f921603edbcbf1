"""Export a trained run as weights in the Hugging Face Hub layout (``recalib export``).

``export_pretrained(run_or_checkpoint, out)`` reads a run folder (or its ``checkpoint.pt``), rebuilds the model
from the checkpoint's own arguments, loads the weights strictly (so a tampered or foreign checkpoint is refused),
and writes into ``out``:

* ``model.safetensors``: the state dict (no pickle);
* ``config.json``: architecture, operator, channels, classes, model arguments, the ``pretrained_cfg`` the
  weights were trained with (input size, mean, std, interpolation, crop: :mod:`recalib.models._cfg`), the
  SHA-256 of the weights, the final metrics and the provenance: the commit of the code that trained the
  weights and of the code that exported them, library versions, the training configuration;
* ``README.md``: a model card (Hub front matter, preprocessing, metrics, provenance, how to load).

The three files are written into a temporary folder next to ``out``, which then takes ``out``'s place, so a
failed export leaves the previous export whole. ``out`` must be new, empty or an earlier export (those three
files and nothing else): a run folder, or any folder holding other files, is refused rather than overwritten.

Weights are only exported from a clean git tree (neither the exporting checkout nor, as its summary records,
the training one may have uncommitted changes to tracked files): otherwise nobody could tell which code made
them. ``allow_dirty=True`` (``--allow-dirty``) overrides this and says so in the card. Upload the folder with
``huggingface-cli upload <org>/<name> <out>``; load it with ``create_model(..., pretrained=<out>)`` or
``pretrained="hf-hub:<org>/<name>"``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .._io import fsync_dir, sha256_file
from .._provenance import git_commit, library_versions
from ..models import architecture_kwargs, create_model, model_info
from ..models._cfg import default_pretrained_cfg
from ..models._hub import CARD_NAME, CONFIG_NAME, FOLDER_FORMAT, WEIGHTS_NAME
from ..train.checkpoint import CHECKPOINT_NAME, check_model_args, load_checkpoint

__all__ = ["export_pretrained"]


def _code_commit() -> str | None:
    """This checkout's commit (``-dirty`` with uncommitted changes): the provenance every run records."""
    return git_commit()


_EXPORT_FILES = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)


def _check_out(out: Path) -> None:
    """``ValueError`` unless ``out`` is new, an empty folder or an earlier export (module docstring)."""
    if out.is_symlink():
        raise ValueError(f"--out {out} is a symbolic link; give the folder itself")
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    names = sorted(p.name for p in out.iterdir())
    if not names:
        return
    if CHECKPOINT_NAME in names or "metrics.jsonl" in names or ".lock" in names:
        raise ValueError(f"--out {out} is a run folder; exporting into it would replace the run's config.json (it "
                         "could no longer be resumed). Give a new folder")
    foreign = [n for n in names if n not in _EXPORT_FILES]
    try:
        is_export = json.loads((out / CONFIG_NAME).read_text()).get("format") == FOLDER_FORMAT
    except (OSError, ValueError, AttributeError):
        is_export = False
    if foreign or not is_export:
        raise ValueError(f"--out {out} holds files that are not a recalib export ({', '.join(foreign or names)}); "
                         "give a new or empty folder, or an earlier export to replace")


def _write_folder(out: Path, files: dict[str, bytes]) -> None:
    """``out`` holds exactly ``files`` afterwards, or (on an error) what it held before."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.export-"))
    old = tmp.with_name(tmp.name + "-old")
    try:
        for name, data in files.items():
            with open(tmp / name, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        fsync_dir(tmp)
        if out.exists():
            os.rename(out, old)  # an export killed right here leaves the previous one in .<name>.export-*-old
        os.rename(tmp, out)
    except BaseException:
        if old.exists() and not out.exists():
            os.rename(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(out.parent)
    shutil.rmtree(old, ignore_errors=True)


def export_pretrained(source: str | os.PathLike[str], out: str | os.PathLike[str], *, allow_dirty: bool = False,
                      description: str = "") -> Path:
    """Write the weights of a finished run (folder or ``checkpoint.pt``) into ``out`` in the Hub layout.

    Raises:
        ValueError: a dirty git tree (unless ``allow_dirty``), a checkpoint whose weights do not fit its model,
            or an ``out`` that is a file, a run folder or a folder holding anything but an earlier export.
        FileNotFoundError: no checkpoint at ``source``.
    """
    from safetensors.torch import save


    source = Path(source)
    ckpt_path = source / CHECKPOINT_NAME if source.is_dir() else source
    run_dir = ckpt_path.parent
    ckpt = load_checkpoint(ckpt_path)
    summary_path = run_dir / "summary.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if not isinstance(summary, dict):
        raise ValueError(f"{summary_path} is not a JSON object; restore the run's summary before exporting it")
    exported_at, trained_at = _code_commit(), summary.get("git_commit")
    dirty = [f"{what} ({commit})" for what, commit in (("the exporting checkout", exported_at),
                                                        ("the training checkout", trained_at))
             if isinstance(commit, str) and commit.endswith("-dirty")]
    if dirty and not allow_dirty:
        raise ValueError(f"refusing to export {ckpt_path}: uncommitted changes in {' and '.join(dirty)}; commit "
                         "them (and retrain) so the weights have a known commit, or pass --allow-dirty")
    out = Path(out)
    _check_out(out)

    margs, config = check_model_args(ckpt["model_args"], ckpt_path), dict(ckpt["config"])
    kwargs = architecture_kwargs(margs.get("kwargs", {}), str(ckpt_path))  # never fetches weights named in it
    model = create_model(margs["name"], num_classes=margs["num_classes"], in_chans=margs["in_chans"],
                         recalib=margs.get("recalib"), **kwargs)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{ckpt_path}: the weights do not fit {margs['name']} + {margs.get('recalib')}: {exc}") from None
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    blob = save(state, metadata={"format": "pt", "architecture": margs["name"], "recalib": str(margs.get("recalib"))})
    digest = hashlib.sha256(blob).hexdigest()
    pretrained_cfg = default_pretrained_cfg(margs["name"], family=model_info(margs["name"]).family,
                                            num_classes=margs["num_classes"], in_chans=margs["in_chans"],
                                            recalib=margs.get("recalib"), model_kwargs=kwargs,
                                            dataset=config.get("dataset"))
    history = list(ckpt.get("history", []))
    last = history[-1] if history else {}
    metrics = {"epochs": ckpt.get("epoch"), "final_test_error": last.get("test_error"),
               "final_test_top5_error": last.get("test_top5_error"), "eval_set": summary.get("eval_set", "test"),
               "test_images": last.get("test_images"), "train_images": summary.get("train_images"),
               "params": sum(p.numel() for p in model.parameters())}
    provenance = {
        "trained_at_commit": trained_at, "exported_at_commit": exported_at, "dirty_allowed": bool(dirty),
        "training_versions": ckpt.get("versions"), "export_versions": library_versions(),
        "exported_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "checkpoint": str(ckpt_path.resolve()), "checkpoint_sha256": sha256_file(ckpt_path),
        "training_config": {k: v for k, v in config.items() if k not in ("out", "data_dir")},
    }
    record = {"format": FOLDER_FORMAT, "library": "recalib", "architecture": margs["name"],
              "recalib": margs.get("recalib") or "none", "in_chans": margs["in_chans"],
              "num_classes": margs["num_classes"], "model_kwargs": kwargs,
              "pretrained_cfg": pretrained_cfg, "files": {WEIGHTS_NAME: {"sha256": digest, "bytes": len(blob)}},
              "metrics": metrics, "provenance": provenance, "description": description}
    _write_folder(out, {WEIGHTS_NAME: blob, CONFIG_NAME: (json.dumps(record, indent=2, default=str) + "\n").encode(),
                        CARD_NAME: model_card(record).encode()})
    return out


def model_card(record: dict[str, Any]) -> str:
    """The ``README.md`` of an exported folder: Hub front matter, preprocessing, metrics, provenance, loading."""
    cfg, m, p = record["pretrained_cfg"], record["metrics"], record["provenance"]
    arch, op = record["architecture"], record["recalib"]
    dataset = cfg.get("dataset")
    error = f"{m['final_test_error']:.2f}%" if isinstance(m.get("final_test_error"), (int, float)) else "n/a"
    kwargs = "".join(f", {k}={v!r}" for k, v in record["model_kwargs"].items())
    dirty = ("\n**Exported with uncommitted changes (`--allow-dirty`)**: the commits below do not fully describe "
             "the code.\n" if p["dirty_allowed"] else "")
    return f"""---
library_name: recalib
license: mit
tags: [image-classification, recalib, {op.split('(')[0]}]
datasets: [{dataset}]
---

# {arch} + {op} ({dataset})

{record.get('description') or f'{arch} with the `{op}` recalibration operator, trained with recalib on {dataset}.'}
{dirty}
## Preprocessing (what the weights expect)

| key | value |
|---|---|
| input size (C, H, W) | {tuple(cfg['input_size'])} |
| mean | {tuple(cfg['mean'])} |
| std | {tuple(cfg['std'])} |
| interpolation | {cfg['interpolation']} |
| crop_pct | {cfg['crop_pct']} ({cfg['crop_mode']} crop) |

Feed `(pixels / 255 - mean) / std`, per channel. Unnormalised [0, 1] pixels give a far higher error. The same
values are in `config.json` under `pretrained_cfg` and in `model.pretrained_cfg` after loading, where
`timm.data.resolve_data_config(model=model)` finds them.

## Results

{m.get('eval_set')} error after {m.get('epochs')} epochs: {error} on {m.get('test_images')} images
(top-5: {m.get('final_test_top5_error')}); trained on {m.get('train_images')} images.

## Provenance

* trained at commit `{p['trained_at_commit']}`, exported at commit `{p['exported_at_commit']}` ({p['exported_utc']})
* versions at training: `{json.dumps(p['training_versions'], sort_keys=True)}`
* training configuration: `{json.dumps(p['training_config'], sort_keys=True)}`
* `model.safetensors` SHA-256: `{record['files'][WEIGHTS_NAME]['sha256']}`

## Use

```python
from recalib import create_model

model = create_model({arch!r}, recalib={op!r}, in_chans={record['in_chans']}, num_classes={record['num_classes']}{kwargs},
                     pretrained="path/to/this/folder")  # or "hf-hub:<org>/<name>"
```

`recalib.pretrained.from_pretrained("path/to/this/folder")` builds the same model from `config.json` alone.
"""
