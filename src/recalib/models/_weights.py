"""Loading pretrained weights into a zoo model: the package's own (``recalib/pretrained/manifest.json``), exported
folders and Hugging Face Hub repositories.

``create_model(..., pretrained=...)`` resolves its ``pretrained`` argument once, with :func:`resolve_weights`,
into a :class:`WeightsSource` (the file, the SHA-256 that vouches for it, the model it was trained for), builds
the model for it and loads it with :func:`load_weights`. What ``pretrained`` may be, in the order it is read:

* ``True``: the model's default weights, the first manifest entry for this architecture and operator;
* ``"hf-hub:<org>/<name>[@revision]"``: a Hub repository in the export layout (:mod:`._hub`);
* a tag of the manifest (``"fashion-mnist"``), always the packaged weights: a folder of the same name in the
  working directory does not shadow them;
* an explicit folder: a ``pathlib.Path`` or a string containing a path separator or starting with ``.`` or ``~``
  (``"./fashion-mnist"``, ``"runs/export"``); its ``config.json`` must record the weights' SHA-256, else it is
  refused unless ``allow_unverified=True`` (then loaded with a warning and ``pretrained_cfg["verified"]`` False).

The file is hashed and refused unless the hash equals the recorded one, and only then parsed with
``safetensors`` (no pickle, no code execution). The state dict is loaded strictly, except where the model asks
for other input channels or classes than the weights' (timm's behaviour: the first convolution is adapted, a new
classifier is kept, and a warning names what was adapted or not loaded).

Operators are matched by what they compute, not by spelling (:func:`operator_key`): both sides become the
complete spec under the architecture's budget rule (:meth:`recalib.modules.RecalibSpec.complete`), so
``"mssar"``, ``"mssar(scales=(1, 2, 4))"`` and ``"mssar(strategy='regional')"`` are one operator. This is also
the compatibility rule for texts stored before specs were recorded complete: a stored ``"mssar"`` means what the
architecture built from it then (``reduction=1`` on the CIFAR zoo, 16 on the ImageNet models). The weights files, their manifest and ``MODEL_CARD.md`` live in the ``recalib/pretrained`` folder
(written by ``scripts/export_pretrained.py``); the public names are re-exported by :mod:`recalib.pretrained`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import sha256_file
from ..modules import RecalibSpec, canonical_recalib_spec
from ._cfg import dataset_cfg

__all__ = [
    "CREATE_ONLY_ARGS",
    "MANIFEST",
    "PretrainedEntry",
    "PretrainedLike",
    "WeightsSource",
    "adapt_input_conv",
    "architecture_kwargs",
    "canonical_recalib",
    "operator_key",
    "find_pretrained",
    "fit_problems",
    "is_explicit_path",
    "list_pretrained",
    "load_pretrained",
    "load_weights",
    "resolve_weights",
    "sha256_file",
]

#: The package's own weights: ``recalib/pretrained/`` holds the manifest, the files and their model card.
MANIFEST = Path(__file__).resolve().parents[1] / "pretrained" / "manifest.json"
FORMAT_VERSION = 1

#: ``create_model``'s arguments that load weights or change what the model returns, not part of an architecture: a
#: recorded model (a checkpoint's ``model_args``, an export's ``config.json``) never carries them.
CREATE_ONLY_ARGS = frozenset({"pretrained", "allow_unverified", "features_only", "out_indices"})

#: What ``create_model(pretrained=...)`` accepts (see the module docstring); ``None``/``False``: no weights.
PretrainedLike = bool | str | os.PathLike[str] | None


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
        """One line naming the model the weights fit and their tag."""
        return (f"{self.architecture} + {self.recalib} (tag {self.tag!r}, in_chans={self.in_chans}, "
                f"num_classes={self.num_classes})")


@dataclass(frozen=True)
class WeightsSource:
    """Resolved pretrained weights: the file, the SHA-256 that vouches for it, and the model they were trained for.

    Attributes:
        what: the weights in words, for messages.
        file: the safetensors file.
        sha256: the recorded SHA-256; ``None`` only for a folder loaded with ``allow_unverified=True``.
        hash_source: who recorded ``sha256`` (``"manifest"`` or the folder's ``config.json``).
        in_chans, num_classes: the input channels and classes of the weights.
        pretrained_cfg: the preprocessing the weights were trained with and where they came from, merged into the
            model's ``pretrained_cfg`` after loading.
        record: the manifest entry or the folder's ``config.json`` (what :func:`load_pretrained` returns).
    """

    what: str
    file: Path
    sha256: str | None
    hash_source: str
    in_chans: int
    num_classes: int
    pretrained_cfg: Mapping[str, Any]
    record: PretrainedEntry | dict[str, Any]


#: The registry's canonical form (every constructor argument filled in), under the name this module exported.
canonical_recalib = canonical_recalib_spec


def operator_key(recalib: str | RecalibSpec | None, model_name: str) -> RecalibSpec:
    """The complete spec ``recalib`` means on ``model_name`` (its family's budget rule; ``"paper"`` if unknown)."""
    from . import model_info  # the zoo's registry, which imports this module

    try:
        budget = model_info(model_name).budget
    except ValueError:
        budget = "paper"
    return RecalibSpec.parse(recalib).complete(budget)


def architecture_kwargs(kwargs: Any, where: str) -> dict[str, Any]:
    """The model arguments of a record that rebuilds an architecture (``where`` names it in errors): a mapping
    without :data:`CREATE_ONLY_ARGS`, so rebuilding a recorded model never fetches or loads weights named in it."""
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f"{where}: model arguments must be a mapping of names to values, got {type(kwargs).__name__}")
    named = sorted(CREATE_ONLY_ARGS & set(kwargs))
    if named:
        raise ValueError(f"{where}: model arguments may only describe the architecture, not {', '.join(named)} (a "
                         "recorded model is rebuilt from its architecture and loads only its own weights)")
    return dict(kwargs)


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


def _unknown_tag(tag: str, entries: list[PretrainedEntry]) -> ValueError:
    """The error for a string that is neither a tag, nor an explicit folder, nor a Hub id."""
    tags = sorted({e.tag for e in entries})
    close = difflib.get_close_matches(tag, tags, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if Path(tag).expanduser().is_dir():
        hint += (f"; a folder {tag!r} exists here, but folders must be given as paths: pretrained='./{tag}' or "
                 f"pathlib.Path({tag!r})")
    return ValueError(f"no pretrained weights tagged {tag!r}{hint}; available tags: {', '.join(tags) or 'none'} "
                      f"({_available(entries)}); an exported folder is given as a path, a Hub repository as "
                      "'hf-hub:<org>/<name>'")


def find_pretrained(
    tag: str,
    *,
    model_name: str,
    recalib: str | RecalibSpec | None,
    in_chans: int | None = None,
    num_classes: int | None = None,
    manifest: str | os.PathLike[str] | None = None,
) -> PretrainedEntry:
    """The manifest entry for these arguments (``None``: any ``in_chans`` / ``num_classes``); ``ValueError``
    listing what is available otherwise."""
    _, entries = _read_manifest(manifest)
    tagged = [e for e in entries if e.tag == tag]
    if not tagged:
        raise _unknown_tag(tag, entries)
    want, asked = operator_key(recalib, model_name), RecalibSpec.parse(recalib)
    same_model = [e for e in tagged if e.architecture == model_name and operator_key(e.recalib, model_name) == want]
    if not same_model:
        raise ValueError(f"no pretrained {tag!r} weights for {model_name} + {asked}; available for "
                         f"tag {tag!r}: {_available(tagged)}")
    fits = [e for e in same_model if in_chans in (None, e.in_chans) and num_classes in (None, e.num_classes)]
    if not fits:
        e = same_model[0]
        raise ValueError(f"pretrained {tag!r} weights for {model_name} + {asked} expect in_chans="
                         f"{e.in_chans}, num_classes={e.num_classes}; got in_chans={in_chans}, "
                         f"num_classes={num_classes}")
    return fits[0]


def _default_tag(model_name: str, recalib: str | RecalibSpec | None, entries: list[PretrainedEntry]) -> str:
    """``pretrained=True``: the tag of the first manifest entry for this architecture and operator."""
    want = operator_key(recalib, model_name)
    for e in entries:
        if e.architecture == model_name and operator_key(e.recalib, model_name) == want:
            return e.tag
    packaged = sorted({f"{e.architecture} + {e.recalib}" for e in entries})
    raise ValueError(f"pretrained=True: recalib packages no weights for {model_name} + {RecalibSpec.parse(recalib)} "
                     f"(packaged: {', '.join(packaged) or 'none'}); give an exported folder or 'hf-hub:<org>/<name>'")


def is_explicit_path(source: str | os.PathLike[str]) -> bool:
    """True for a ``pathlib.Path`` and for strings that can only be paths: a separator, or a leading ``.``/``~``."""
    if not isinstance(source, str):
        return True
    seps = [os.sep] + ([os.altsep] if os.altsep else [])
    return any(s in source for s in seps) or source.startswith((".", "~"))


def resolve_weights(
    pretrained: bool | str | os.PathLike[str],
    *,
    model_name: str,
    recalib: str | RecalibSpec | None,
    model_kwargs: Mapping[str, Any] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    allow_unverified: bool = False,
) -> WeightsSource:
    """The weights ``pretrained`` names (see the module docstring), checked to fit ``model_name`` + ``recalib``
    (the input channels and the classifier may differ: :func:`load_weights` adapts them).

    Raises:
        ValueError: an unknown tag (with the available ones and, for a mistyped one, the closest), weights for
            another model, or a folder whose ``config.json`` records no SHA-256 (unless ``allow_unverified``).
        FileNotFoundError: a folder or Hub repository that does not exist, or a missing file.
        TypeError: ``pretrained`` of another type.
    """
    from ._hub import HUB_PREFIX, folder_weights  # _hub imports this module: imported here, in-package

    if pretrained is not True and (isinstance(pretrained, bool) or not isinstance(pretrained, (str, os.PathLike))):
        raise TypeError(f"pretrained must be True, a tag, a folder path or 'hf-hub:<org>/<name>', got {pretrained!r}")
    path, entries = _read_manifest(manifest)
    if pretrained is True or pretrained in {e.tag for e in entries}:  # tags first: no folder shadows them
        tag = _default_tag(model_name, recalib, entries) if pretrained is True else str(pretrained)
        entry = find_pretrained(tag, model_name=model_name, recalib=recalib, manifest=path)
        cfg: dict[str, Any] = {"tag": entry.tag, "file": entry.file}
        dataset = entry.config.get("dataset")
        if isinstance(dataset, str):
            cfg = {**dataset_cfg(dataset, entry.in_chans), **cfg}
        return WeightsSource(what=entry.describe(), file=path.parent / entry.file, sha256=entry.sha256,
                             hash_source="manifest", in_chans=entry.in_chans, num_classes=entry.num_classes,
                             pretrained_cfg=cfg, record=entry)
    assert not isinstance(pretrained, bool)
    if isinstance(pretrained, str) and not pretrained.startswith(HUB_PREFIX) and not is_explicit_path(pretrained):
        raise _unknown_tag(pretrained, entries)
    return folder_weights(pretrained, model_name=model_name, recalib=recalib, model_kwargs=model_kwargs,
                          allow_unverified=allow_unverified)  # a Hub id or a folder


def _read_verified(source: WeightsSource) -> tuple[dict[str, Any], str]:
    """The state dict of ``source.file`` and its SHA-256, refused unless the SHA-256 is the recorded one: the very
    bytes that were hashed are parsed, with safetensors."""
    if not source.file.is_file():
        raise FileNotFoundError(f"pretrained weights {source.file} ({source.what}) are missing")
    blob = source.file.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if source.sha256 is not None and digest != source.sha256:
        raise ValueError(f"checksum mismatch for {source.file}: SHA-256 {digest}, {source.hash_source} says "
                         f"{source.sha256}; the file is corrupted or was modified (reinstall recalib or re-export "
                         "the weights)")
    from safetensors.torch import load as load_safetensors  # a dependency of recalib; imported when needed

    try:
        return load_safetensors(blob), digest
    except Exception as exc:  # a malformed header: safetensors raises its own error types
        raise ValueError(f"{source.file} is not a readable safetensors file ({exc})") from None


def fit_problems(model: nn.Module, state: Any, *, skip: str | None = None) -> list[str]:
    """Why ``state`` cannot be a state dict of ``model`` (empty: it fits), in short phrases; keys starting with
    ``skip`` (a classifier being replaced) are not compared."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return ["the weights are not a mapping of names to tensors"]
    expected = {k: v for k, v in model.state_dict().items() if skip is None or not k.startswith(skip)}
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and (skip is None or not k.startswith(skip))]
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    for k, v in expected.items():
        if k in state and state[k].shape != v.shape:
            problems.append(f"{k} has shape {tuple(state[k].shape)}, the model expects {tuple(v.shape)}")
            break
    return problems


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """timm's adaptation of first-convolution weights (O, I, k, k) to ``in_chans`` inputs: one input sums the ``I``
    filters; more repeat them and scale by ``I / in_chans``. An image whose channels are all equal (a grey image)
    gives the same output as before whenever ``in_chans`` is 1 or a multiple of ``I``."""
    chans = weight.shape[1]
    if in_chans == 1:
        return weight.sum(1, keepdim=True)  # O, 1, k, k
    repeats = -(-in_chans // chans)
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (chans / in_chans)  # O, in_chans, k, k


def _channel_cfg(cfg: Mapping[str, Any], in_chans: int) -> dict[str, Any]:
    """The preprocessing keys of ``cfg`` for ``in_chans`` channels: the size's channel count, and per-channel mean
    and std replaced by their averages (the rule of :func:`._cfg.dataset_cfg`)."""
    out = dict(cfg)
    for key in ("mean", "std"):
        if key in out and len(out[key]) != in_chans:
            out[key] = (sum(out[key]) / len(out[key]),) * in_chans
    if "input_size" in out:
        out["input_size"] = (in_chans, *tuple(out["input_size"])[1:])
    return out


def load_weights(model: nn.Module, source: WeightsSource) -> str:
    """Verify and load ``source`` into ``model``; return the file's SHA-256.

    A model with the weights' input channels and classes gets every tensor (strictly). As in timm, a model with
    other input channels gets the first convolution adapted (:func:`adapt_input_conv`), and one with another
    ``num_classes`` gets the backbone and keeps its freshly initialised classifier (``pretrained_cfg["classifier"]``);
    a warning names what was adapted or not loaded. ``model.pretrained_cfg`` is updated to the weights'
    preprocessing; ``pretrained_cfg["verified"]`` says whether a recorded SHA-256 was checked.
    """
    state, digest = _read_verified(source)
    cfg = getattr(model, "pretrained_cfg", None)
    cfg = cfg if isinstance(cfg, dict) else {}
    num_classes = getattr(model, "num_classes", source.num_classes)
    in_chans = cfg.get("in_chans", source.in_chans)
    first = f"{cfg.get('first_conv', 'conv1')}.weight"
    if in_chans != source.in_chans and first in state:
        state[first] = adapt_input_conv(state[first], in_chans)
        warnings.warn(f"{source.what}: {first} adapted from {source.in_chans} to {in_chans} input channel(s)",
                      stacklevel=3)
    head = f"{cfg.get('classifier', 'fc')}." if num_classes != source.num_classes else None
    problems = fit_problems(model, state, skip=head)
    if problems:
        raise ValueError(f"the weights in {source.file} do not fit the model ({'; '.join(problems)}): they are "
                         f"{source.what}")
    skipped = sorted(k for k in state if head is not None and k.startswith(head))
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=not skipped)
    if skipped:
        new = f"a new {num_classes}-class classifier" if num_classes else "no classifier (num_classes=0)"
        warnings.warn(f"{source.what}: not loaded: {', '.join(skipped)} (the weights' {source.num_classes}-class "
                      f"classifier); the model has {new}", stacklevel=3)
    if source.sha256 is None:
        warnings.warn(f"loaded UNVERIFIED weights {source.file} ({source.what}): no SHA-256 is recorded for them "
                      "(allow_unverified=True)", stacklevel=3)
    cfg.update(_channel_cfg(source.pretrained_cfg, in_chans))
    cfg.update(num_classes=num_classes, sha256=digest, verified=source.sha256 is not None)
    return digest


def load_pretrained(
    model: nn.Module,
    tag: bool | str | os.PathLike[str],
    *,
    model_name: str,
    recalib: str | RecalibSpec | None,
    in_chans: int,
    num_classes: int,
    manifest: str | os.PathLike[str] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    allow_unverified: bool = False,
) -> PretrainedEntry | dict[str, Any]:
    """Verify (SHA-256) and load the weights ``tag`` names into the built ``model``; return their manifest entry
    (or the folder's ``config.json``). ``tag`` is anything :func:`resolve_weights` accepts; other input channels
    or classes than the weights' are adapted as :func:`load_weights` says.

    Raises:
        ValueError: unknown tag / architecture / operator / shape (listing the available weights), a checksum
            mismatch, or a state dict that does not fit ``model``.
        FileNotFoundError: the manifest, the folder or the weights file is missing.
    """
    del in_chans, num_classes  # the model's own decide how the weights are adapted (load_weights)
    source = resolve_weights(tag, model_name=model_name, recalib=recalib, model_kwargs=model_kwargs,
                             manifest=manifest, allow_unverified=allow_unverified)
    load_weights(model, source)
    return source.record
