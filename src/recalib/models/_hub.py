"""Weights in the Hugging Face Hub layout: a folder (or Hub repository) with ``config.json``,
``model.safetensors`` and a ``README.md`` model card, as written by :func:`recalib.pretrained.export_pretrained`.
Public through :mod:`recalib.pretrained`.

``create_model(name, ..., pretrained=<folder or "hf-hub:org/name[@revision]">)`` calls :func:`load_folder`:
the Hub repository is fetched with ``huggingface_hub`` (optional extra ``recalib[hub]``; nothing is written by
hand), ``config.json`` must describe the model being built (architecture, operator, channels, classes,
model arguments), the weights file is hashed and compared with the SHA-256 that ``config.json`` records
before it is parsed (safetensors: no pickle, no code), the state dict is loaded strictly, and
``model.pretrained_cfg`` becomes the preprocessing stored with the weights. :func:`from_pretrained` builds
the model from ``config.json`` alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ._weights import canonical_recalib, load_verified

__all__ = ["CARD_NAME", "CONFIG_NAME", "FOLDER_FORMAT", "HUB_PREFIX", "WEIGHTS_NAME", "from_pretrained",
           "is_folder_source", "load_folder", "read_folder_config", "resolve_folder"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
HUB_PREFIX = "hf-hub:"
FOLDER_FORMAT = "recalib-pretrained-v1"


def is_folder_source(source: str) -> bool:
    """True for ``"hf-hub:..."`` and for paths of existing folders (anything else is a manifest tag)."""
    return source.startswith(HUB_PREFIX) or Path(source).expanduser().is_dir()


def resolve_folder(source: str) -> Path:
    """The local folder of ``source``: the folder itself, or a Hub repository's snapshot (downloaded/cached)."""
    if not source.startswith(HUB_PREFIX):
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"pretrained folder {folder} does not exist")
        return folder
    repo_id, _, revision = source[len(HUB_PREFIX):].partition("@")
    if not repo_id:
        raise ValueError(f"expected 'hf-hub:<org>/<name>[@revision]', got {source!r}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ImportError("loading hf-hub: weights needs huggingface_hub: pip install 'recalib[hub]'") from exc
    return Path(snapshot_download(repo_id, revision=revision or None,
                                  allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME]))


def read_folder_config(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of an exported folder, checked to be one (``ValueError`` naming the file otherwise)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: not a folder written by `recalib export`")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FOLDER_FORMAT:
        raise ValueError(f"{path}: expected a recalib export (\"format\": \"{FOLDER_FORMAT}\")")
    return config


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))  # tuples -> lists, as config.json holds them


def load_folder(model: nn.Module, source: str, *, model_name: str, recalib: str | None, in_chans: int,
                num_classes: int, model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check, verify and load the weights of ``source`` into ``model``; return the folder's ``config.json``."""
    folder = resolve_folder(source)
    config = read_folder_config(folder)
    want = {"architecture": model_name, "recalib": canonical_recalib(recalib), "in_chans": in_chans,
            "num_classes": num_classes, "model_kwargs": _plain(model_kwargs)}
    have = {"architecture": config.get("architecture"), "recalib": canonical_recalib(config.get("recalib")),
            "in_chans": config.get("in_chans"), "num_classes": config.get("num_classes"),
            "model_kwargs": _plain(config.get("model_kwargs", {}))}
    if want != have:
        call = (f"create_model({have['architecture']!r}, recalib={config.get('recalib')!r}, in_chans={have['in_chans']}, "
                f"num_classes={have['num_classes']}" + "".join(f", {k}={v!r}" for k, v in have["model_kwargs"].items()))
        differ = ", ".join(f"{k} {have[k]!r} (asked for {want[k]!r})" for k in want if want[k] != have[k])
        raise ValueError(f"the weights in {source} are for another model: {differ}; build it with {call}, "
                         f"pretrained={source!r}) or recalib.pretrained.from_pretrained({source!r})")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} does not exist")
    expected = config.get("files", {}).get(WEIGHTS_NAME, {}).get("sha256")
    digest = load_verified(model, weights, expected, hash_source=CONFIG_NAME, what=model_name)
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict):
        stored = dict(config.get("pretrained_cfg", {}))
        for key in ("input_size", "mean", "std"):
            if isinstance(stored.get(key), list):
                stored[key] = tuple(stored[key])
        cfg.update(stored)
        cfg["source"] = source
        cfg["sha256"] = digest
    return config


def from_pretrained(source: str) -> nn.Module:
    """The model an exported folder or ``hf-hub:`` repository describes, with its weights loaded."""
    from . import create_model  # the package's own factory, which imports this module

    config = read_folder_config(resolve_folder(source))
    return create_model(config["architecture"], recalib=config.get("recalib"), in_chans=config["in_chans"],
                        num_classes=config["num_classes"], pretrained=source, **config.get("model_kwargs", {}))
