"""Weights in the Hugging Face Hub layout: a folder (or Hub repository) with ``config.json``,
``model.safetensors`` and a ``README.md`` model card, as written by :func:`recalib.pretrained.export_pretrained`.
Public through :mod:`recalib.pretrained`.

``create_model(name, ..., pretrained=<folder path or "hf-hub:org/name[@revision]">)`` resolves the source with
:func:`folder_weights`: the Hub repository is fetched with ``huggingface_hub`` (optional extra ``recalib[hub]``;
nothing is written by hand, ``HF_HUB_OFFLINE=1`` uses the local cache only), ``config.json`` is validated (any
malformed field is one ``ValueError`` naming it) and must describe the model being built (architecture, operator,
channels, model arguments; another ``num_classes`` gets a new classifier), and the SHA-256 it records for
``model.safetensors`` is what the file must hash to before it is parsed (safetensors: no pickle, no code). A
``config.json`` that records no SHA-256 is refused unless ``allow_unverified=True``. The recorded hash detects a
corrupted or partly replaced download; it cannot vouch for a folder whose author edited both files: pin a Hub
``@revision`` you have reviewed. :func:`from_pretrained` builds the model from ``config.json`` (or a package tag)
alone.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..modules import RecalibSpec
from ._weights import (
    WeightsSource,
    _unknown_tag,
    architecture_kwargs,
    is_explicit_path,
    list_pretrained,
    operator_key,
)

__all__ = ["CARD_NAME", "CONFIG_NAME", "FOLDER_FORMAT", "HUB_PREFIX", "WEIGHTS_NAME", "folder_weights",
           "from_pretrained", "read_folder_config", "resolve_folder"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
HUB_PREFIX = "hf-hub:"
FOLDER_FORMAT = "recalib-pretrained-v1"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")  # what an "org/name" Hub id looks like
#: The preprocessing keys of a folder's ``pretrained_cfg`` that reach the model's, with their checks.
_PREPROCESSING = ("dataset", "input_size", "mean", "std", "interpolation", "crop_pct", "crop_mode")


def _download(repo_id: str, revision: str | None, source: str) -> Path:
    """``snapshot_download`` of the three layout files; its errors as one line naming ``source``."""
    try:
        import huggingface_hub
        from huggingface_hub import errors
    except ImportError as exc:
        raise ImportError("loading hf-hub: weights needs huggingface_hub: pip install 'recalib[hub]'") from exc
    try:
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision,
                                                      allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME]))
    except errors.HFValidationError:
        raise ValueError(f"{source}: {repo_id!r} is not a Hugging Face Hub repository id (expected "
                         "'hf-hub:<org>/<name>[@revision]')") from None
    except errors.RevisionNotFoundError:
        raise FileNotFoundError(f"{source}: the Hub repository {repo_id} has no revision {revision!r}") from None
    except errors.RepositoryNotFoundError:  # GatedRepoError too
        raise FileNotFoundError(f"{source}: no Hub repository {repo_id} (or it is private or gated: log in with "
                                "`hf auth login`)") from None
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled):
        raise FileNotFoundError(f"{source}: {repo_id} is not in the local Hugging Face cache and the Hub cannot be "
                                "reached (offline, or HF_HUB_OFFLINE=1)") from None
    except OSError as exc:  # any other HTTP or network error
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileNotFoundError(f"{source}: could not download {repo_id} from the Hub ({first})") from None


def resolve_folder(source: str | os.PathLike[str]) -> Path:
    """The local folder of ``source``: the folder itself, or a Hub repository's snapshot (downloaded/cached)."""
    if isinstance(source, str) and source.startswith(HUB_PREFIX):
        repo_id, _, revision = source[len(HUB_PREFIX):].partition("@")
        if not repo_id:
            raise ValueError(f"expected 'hf-hub:<org>/<name>[@revision]', got {source!r}")
        return _download(repo_id, revision or None, source)
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder
    hint = ""
    if folder.parent.is_dir():  # a mistyped folder: the closest one beside it
        close = difflib.get_close_matches(folder.name, [p.name for p in folder.parent.iterdir() if p.is_dir()], n=1)
        hint = f"; did you mean {str(Path(str(source)).parent / close[0])!r}?" if close else ""
    elif isinstance(source, str) and _REPO_ID.fullmatch(source):  # "org/name" with no folder "org": a Hub id
        hint = f"; a Hugging Face Hub repository is written 'hf-hub:{source}'"
    raise FileNotFoundError(f"pretrained folder {str(source)!r} does not exist{hint}")


def _bad(path: Path, key: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{path}: {key} must be {expected}, got {reprlib.repr(value)}")


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_preprocessing(path: Path, cfg: Any, in_chans: int) -> dict[str, Any]:
    """The preprocessing keys of ``pretrained_cfg``, checked, with lists as tuples (as the model holds them)."""
    if not isinstance(cfg, dict):
        raise _bad(path, "pretrained_cfg", "an object", cfg)
    out: dict[str, Any] = {}
    for key in _PREPROCESSING:
        if key not in cfg:
            continue
        value = cfg[key]
        if key == "input_size":
            ok = isinstance(value, list) and len(value) == 3 and all(_is_int(v, 1) for v in value)
        elif key in ("mean", "std"):
            ok = (isinstance(value, list) and len(value) == in_chans
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
        elif key == "crop_pct":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1
        else:
            ok = isinstance(value, str)
        if not ok:
            raise _bad(path, f"pretrained_cfg.{key}", "a valid preprocessing value", value)
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def read_folder_config(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of an exported folder, checked field by field (one ``ValueError`` naming the bad field)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: not a folder written by `recalib export`")
    try:
        config = json.loads(path.read_text())
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a recalib export") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FOLDER_FORMAT:
        raise ValueError(f"{path}: expected a recalib export (\"format\": \"{FOLDER_FORMAT}\")")
    checks = [("architecture", "a model name", isinstance(config.get("architecture"), str)),
              ("recalib", "an operator spec string", config.get("recalib") is None or isinstance(config["recalib"], str)),
              ("in_chans", "a positive int", _is_int(config.get("in_chans"), 1)),
              ("num_classes", "a non-negative int", _is_int(config.get("num_classes"), 0)),
              ("model_kwargs", "an object of model arguments", isinstance(config.get("model_kwargs", {}), dict)),
              ("files", "an object mapping file names to {\"sha256\": ...}", isinstance(config.get("files", {}), dict))]
    for key, expected, ok in checks:
        if not ok:
            raise _bad(path, key, expected, config.get(key))
    architecture_kwargs(config.get("model_kwargs", {}), f"{path}: model_kwargs")
    entry = config.get("files", {}).get(WEIGHTS_NAME, {})
    if not isinstance(entry, dict) or not (entry.get("sha256") is None or _SHA256.fullmatch(str(entry["sha256"]))):
        raise _bad(path, f"files.{WEIGHTS_NAME}", "an object with a 64-digit hex \"sha256\"", entry)
    config["pretrained_cfg"] = _check_preprocessing(path, config.get("pretrained_cfg", {}), config["in_chans"])
    return config


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))  # tuples -> lists, as config.json holds them


def folder_weights(source: str | os.PathLike[str], *, model_name: str, recalib: str | RecalibSpec | None,
                   model_kwargs: Mapping[str, Any] | None, allow_unverified: bool) -> WeightsSource:
    """The weights of an exported folder or Hub repository, checked to fit the model being built (architecture,
    operator and model arguments; other input channels or classes are adapted when they are loaded)."""
    folder = resolve_folder(source)
    config = read_folder_config(folder)
    want = {"architecture": model_name, "recalib": str(operator_key(recalib, model_name)),
            "model_kwargs": _plain(model_kwargs or {})}
    have = {"architecture": config["architecture"],
            "recalib": str(operator_key(config.get("recalib"), config["architecture"])),
            "model_kwargs": _plain(config.get("model_kwargs", {}))}
    if want != have:
        call = (f"create_model({have['architecture']!r}, recalib={config.get('recalib')!r}"
                + "".join(f", {k}={v!r}" for k, v in have["model_kwargs"].items()))
        differ = ", ".join(f"{k} {have[k]!r} (asked for {want[k]!r})" for k in want if want[k] != have[k])
        raise ValueError(f"the weights in {source} are for another model: {differ}; build it with {call}, "
                         f"pretrained={str(source)!r}) or recalib.pretrained.from_pretrained({str(source)!r})")
    sha256 = config.get("files", {}).get(WEIGHTS_NAME, {}).get("sha256")
    if sha256 is None and not allow_unverified:
        raise ValueError(f"{folder / CONFIG_NAME} records no SHA-256 for {WEIGHTS_NAME}, so the weights cannot be "
                         "verified; re-export the folder with `recalib export`, or pass allow_unverified=True to "
                         "load them anyway")
    what = f"{source} ({model_name} + {config.get('recalib') or 'none'})"
    return WeightsSource(what=what, file=folder / WEIGHTS_NAME, sha256=sha256, hash_source=CONFIG_NAME,
                         in_chans=config["in_chans"], num_classes=config["num_classes"],
                         pretrained_cfg={**config["pretrained_cfg"], "source": str(source)}, record=config)


def _tag_entry(tag: str, kwargs: Mapping[str, Any]) -> tuple[str, str]:
    """(architecture, recalib) of the one manifest entry of ``tag`` that ``kwargs``' ``model_name``/``recalib``
    select; ``ValueError`` listing the choices when several remain."""
    entries = [e for e in list_pretrained() if e.tag == tag]
    if "model_name" in kwargs:
        entries = [e for e in entries if e.architecture == kwargs["model_name"]]
    if "recalib" in kwargs:
        entries = [e for e in entries
                   if operator_key(e.recalib, e.architecture) == operator_key(kwargs["recalib"], e.architecture)]
    if len(entries) != 1:
        choices = "; ".join(f"model_name={e.architecture!r}, recalib={e.recalib!r}" for e in entries) or "none"
        raise ValueError(f"from_pretrained({tag!r}): {len(entries)} packaged weights match; pick one with "
                         f"model_name=/recalib= ({choices})")
    return entries[0].architecture, entries[0].recalib


def from_pretrained(source: str | os.PathLike[str], *, allow_unverified: bool = False, **kwargs: Any) -> nn.Module:
    """The model ``source`` describes, with its weights loaded: an exported folder (a path), an
    ``"hf-hub:org/name[@revision]"`` repository, or a package tag (``"fashion-mnist"``; pick one of its weights
    with ``recalib=`` and, where needed, ``model_name=``). Other ``kwargs`` go to :func:`recalib.create_model`
    (``num_classes`` for a new classifier, ``features_only``, ``out_indices``)."""
    from . import create_model  # the package's own factory, which imports this module

    if isinstance(source, str) and not source.startswith(HUB_PREFIX) and not is_explicit_path(source):
        entries = list_pretrained()
        if source not in {e.tag for e in entries}:
            raise _unknown_tag(source, entries)
        architecture, recalib = _tag_entry(source, kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k not in ("model_name", "recalib")}
        return create_model(architecture, recalib=recalib, pretrained=source, **kwargs)
    folder = resolve_folder(source)
    config = read_folder_config(folder)
    model = create_model(config["architecture"], recalib=config.get("recalib"), pretrained=folder,
                         allow_unverified=allow_unverified, **config.get("model_kwargs", {}), **kwargs)
    model.pretrained_cfg["source"] = str(source)  # the Hub id, not the snapshot folder it was downloaded to
    return model
