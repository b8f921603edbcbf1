"""Pretrained weights: the package's own (``manifest.json`` next to this file) and exported folders in the
Hugging Face layout.

Three sources, one argument: ``create_model(..., pretrained=...)`` takes ``True`` (the model's default packaged
weights), a manifest tag (``"fashion-mnist"``, always the packaged weights, whatever folders the working directory
holds), a folder written by :func:`export_pretrained` / ``recalib export`` given as a path (``"./x"``,
``pathlib.Path("x")``), or ``"hf-hub:org/name"``; :func:`from_pretrained` builds the model from any of them.
Every loaded model's ``pretrained_cfg`` states the preprocessing the weights were trained with (input size, mean,
std, interpolation, crop), so nobody has to guess whether to normalise. Loading is checked: the file's SHA-256
must equal the manifest's (or the one the folder's ``config.json`` records; a folder recording none is refused
unless ``allow_unverified=True``) before ``safetensors`` parses it (no pickle, no code).

Where things live, so that no package imports one that imports it back:

* loading (:func:`load_pretrained`, :func:`find_pretrained`, :func:`from_pretrained`, the Hub layout) is part
  of :mod:`recalib.models` (``models/_weights.py``, ``models/_hub.py``), below :mod:`recalib.train`;
* writing (:func:`export_pretrained`, ``recalib export``) reads training checkpoints and lives here
  (:mod:`.export`), above :mod:`recalib.train`;
* the weights files, ``manifest.json`` and ``MODEL_CARD.md`` (written by ``scripts/export_pretrained.py``)
  are data in this folder.
"""

from __future__ import annotations

from .._io import sha256_file
from ..models._hub import from_pretrained
from ..models._weights import (
    FORMAT_VERSION,
    MANIFEST,
    PretrainedEntry,
    canonical_recalib,
    find_pretrained,
    list_pretrained,
    load_pretrained,
)
from .export import export_pretrained

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "PretrainedEntry",
    "canonical_recalib",
    "export_pretrained",
    "find_pretrained",
    "from_pretrained",
    "list_pretrained",
    "load_pretrained",
    "sha256_file",
]
