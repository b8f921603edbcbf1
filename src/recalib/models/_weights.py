"""Loading pretrained weights into a zoo model: the package's own (``recalib/pretrained/manifest.json``).

``create_model(..., pretrained=<tag>)`` calls :func:`load_pretrained`, which finds the manifest entry for
(tag, architecture, operator, input channels, classes), hashes the file, refuses it unless the hash equals the
manifest's, and only then parses it with ``safetensors`` (no pickle, no code execution) and loads the state
dict strictly. Folders in the Hugging Face layout and ``"hf-hub:"`` ids go to :mod:`._hub`.

Operators are matched by what they compute, not by spelling: ``"mssar"``, ``"mssar(scales=(1, 2, 4))"`` and
``"mssar(strategy='regional')"`` are the same operator (the constructor's defaults are filled in before
comparing). The weights files, their manifest and ``MODEL_CARD.md`` live in the ``recalib/pretrained`` folder
(written by ``scripts/export_pretrained.py``); the public names are re-exported by :mod:`recalib.pretrained`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .._io import sha256_file
from ..modules import canonical_recalib_spec
from ._cfg import dataset_cfg

__all__ = [
    "MANIFEST",
    "PretrainedEntry",
    "canonical_recalib",
    "find_pretrained",
    "list_pretrained",
    "load_pretrained",
    "load_verified",
    "sha256_file",
]

#: The package's own weights: ``recalib/pretrained/`` holds the manifest, the files and their model card.
MANIFEST = Path(__file__).resolve().parents[1] / "pretrained" / "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PretrainedEntry:
    """One manifest entry: which model the weights fit, where they are and what they were trained on."""

    tag: str
    architecture: str
    recalib: str
    in_chans: int
    num_classes: int
    file: str
    sha256: str
    config: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    card: str = ""

    def describe(self) -> str:
        return (f"{self.architecture} + {self.recalib} (tag {self.tag!r}, in_chans={self.in_chans}, "
                f"num_classes={self.num_classes})")




#: The registry's canonical form (every constructor argument filled in), under the name this module exported.
canonical_recalib = canonical_recalib_spec


def _read_manifest(manifest: str | os.PathLike[str] | None) -> tuple[Path, list[PretrainedEntry]]:
    path = Path(manifest) if manifest is not None else MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"pretrained manifest {path} does not exist")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: expected a recalib pretrained manifest with format_version {FORMAT_VERSION}")
    entries = []
    for raw in data.get("weights", []):
        known = {f for f in PretrainedEntry.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown manifest field(s) {', '.join(unknown)}")
        entries.append(PretrainedEntry(**raw))
    return path, entries


def list_pretrained(manifest: str | os.PathLike[str] | None = None) -> list[PretrainedEntry]:
    """Every entry of the manifest (the package's ``manifest.json`` by default)."""
    return _read_manifest(manifest)[1]


def _available(entries: list[PretrainedEntry]) -> str:
    return "; ".join(e.describe() for e in entries) or "none"


def find_pretrained(
    tag: str,
    *,
    model_name: str,
    recalib: str | None,
    in_chans: int,
    num_classes: int,
    manifest: str | os.PathLike[str] | None = None,
) -> PretrainedEntry:
    """The manifest entry for these arguments; ``ValueError`` listing what is available otherwise."""
    _, entries = _read_manifest(manifest)
    tagged = [e for e in entries if e.tag == tag]
    if not tagged:
        tags = sorted({e.tag for e in entries})
        raise ValueError(f"no pretrained weights tagged {tag!r}; available tags: {', '.join(tags) or 'none'} "
                         f"({_available(entries)})")
    want = canonical_recalib(recalib)
    same_model = [e for e in tagged if e.architecture == model_name and canonical_recalib(e.recalib) == want]
    if not same_model:
        raise ValueError(f"no pretrained {tag!r} weights for {model_name} + {recalib or 'none'}; available for "
                         f"tag {tag!r}: {_available(tagged)}")
    fits = [e for e in same_model if e.in_chans == in_chans and e.num_classes == num_classes]
    if not fits:
        e = same_model[0]
        raise ValueError(f"pretrained {tag!r} weights for {model_name} + {recalib or 'none'} expect in_chans="
                         f"{e.in_chans}, num_classes={e.num_classes}; got in_chans={in_chans}, "
                         f"num_classes={num_classes}")
    return fits[0]


def load_pretrained(
    model: nn.Module,
    tag: str,
    *,
    model_name: str,
    recalib: str | None,
    in_chans: int,
    num_classes: int,
    manifest: str | os.PathLike[str] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> PretrainedEntry | dict[str, Any]:
    """Verify (SHA-256) and load the weights of ``tag`` into ``model``; return their manifest entry.

    ``tag`` may also be an exported folder or ``"hf-hub:org/name[@revision]"`` (:func:`._hub.load_folder`; the
    folder's ``config.json`` is returned then). ``model.pretrained_cfg`` is updated to the weights' preprocessing.

    Raises:
        ValueError: unknown tag / architecture / operator / shape (listing the available weights), a checksum
            mismatch, or a state dict that does not fit ``model``.
        FileNotFoundError: the manifest or the weights file is missing.
        ImportError: ``safetensors`` is not installed.
    """
    from ._hub import is_folder_source, load_folder  # _hub uses load_verified: imported here, in-package

    if manifest is None and is_folder_source(tag):
        return load_folder(model, tag, model_name=model_name, recalib=recalib, in_chans=in_chans,
                           num_classes=num_classes, model_kwargs=dict(model_kwargs or {}))
    path, _ = _read_manifest(manifest)
    entry = find_pretrained(tag, model_name=model_name, recalib=recalib, in_chans=in_chans,
                            num_classes=num_classes, manifest=path)
    weights = path.parent / entry.file
    if not weights.is_file():
        raise FileNotFoundError(f"pretrained weights {weights} ({entry.describe()}) are missing; reinstall recalib")
    load_verified(model, weights, entry.sha256, hash_source="manifest", what=entry.describe(),
                  advice="; the file is corrupted or was modified. Reinstall recalib or re-export the weights")
    cfg = getattr(model, "pretrained_cfg", None)
    dataset = entry.config.get("dataset")
    if isinstance(cfg, dict) and isinstance(dataset, str):
        cfg.update(dataset_cfg(dataset, in_chans))
        cfg.update(tag=entry.tag, file=entry.file, sha256=entry.sha256)
    return entry


def load_verified(model: nn.Module, weights: Path, expected_sha256: str | None, *, hash_source: str, what: str,
                  advice: str = "; the file is corrupted or was modified") -> str:
    """Hash ``weights``, refuse it unless the hash is ``expected_sha256`` (``None``: no recorded hash), then parse
    the very same bytes with safetensors and load them strictly into ``model``; return the SHA-256.

    Raises:
        ValueError: checksum mismatch (naming ``hash_source``), an unreadable file, or a state dict that does
            not fit ``model`` (naming ``what``).
        ImportError: ``safetensors`` is not installed.
    """
    blob = weights.read_bytes()  # hash and parse the very same bytes
    digest = hashlib.sha256(blob).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise ValueError(f"checksum mismatch for {weights}: SHA-256 {digest}, {hash_source} says {expected_sha256}"
                         + advice)
    try:
        from safetensors.torch import load as load_safetensors
    except ImportError as exc:
        raise ImportError("pretrained weights need the safetensors package: pip install safetensors") from exc
    try:
        state = load_safetensors(blob)
    except Exception as exc:  # a malformed header: safetensors raises its own error types
        raise ValueError(f"{weights} is not a readable safetensors file ({exc})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"the weights in {weights} do not fit {what}: {exc}") from None
    return digest
