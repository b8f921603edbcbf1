"""Where study files are found (``./studies``, then the studies shipped in the package) and how one is loaded.

The shipped studies are package data, ``recalib/studies/shipped/*.toml``, found with :mod:`importlib.resources`:
the same files in a source checkout and in an installed wheel.

``load_study(name, variant)`` reads a study's TOML file, validates it (:func:`recalib.studies.schema.parse_study`)
and applies a variant: a name, ``"none"`` (the study as written) or ``"auto"`` (the variant marked
``auto = "no-gpu"`` when CUDA is unavailable).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch

from .._names import suggestion
from .schema import Study, parse_study

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = ["auto_variant", "find_study_file", "list_studies", "load_study", "shipped_studies_dir", "studies_dirs"]


def shipped_studies_dir() -> Path:
    """The folder of the studies shipped with recalib (package data ``recalib/studies/shipped``)."""
    folder = resources.files("recalib.studies") / "shipped"
    # An installed or checked-out package is a folder on disk; recalib is not importable from a zip archive.
    assert isinstance(folder, Path), f"recalib's package data is not a folder on disk: {folder}"
    return folder


def studies_dirs() -> list[Path]:
    """Where study names are looked up: ``./studies`` (your own studies), then :func:`shipped_studies_dir`."""
    dirs = [Path.cwd() / "studies", shipped_studies_dir()]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def list_studies() -> list[str]:
    """Names of the studies found in :func:`studies_dirs`."""
    return sorted({p.stem for d in studies_dirs() for p in d.glob("*.toml")})


def find_study_file(name_or_path: str | os.PathLike[str]) -> Path:
    """A study's TOML file from its name (``fashion-mnist``) or a path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise FileNotFoundError(f"study file {p} does not exist")
        return p
    for d in studies_dirs():
        cand = d / f"{name_or_path}.toml"
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        f"no study named {str(name_or_path)!r}; known studies: {', '.join(list_studies()) or 'none'} "
        f"(looked in {', '.join(str(d) for d in studies_dirs()) or './studies'}); or pass a path to a .toml file"
        + suggestion(str(name_or_path), list_studies())
    )


def load_study(name_or_path: str | os.PathLike[str], variant: str | None = None) -> Study:
    """Read, validate and (optionally) apply ``variant`` to a study; ``variant="auto"`` see :func:`auto_variant`."""
    path = find_study_file(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    study = parse_study(data, str(path), path)
    if variant == "auto":
        variant = auto_variant(study)
    elif variant == "none":
        variant = None
    return study.with_variant(variant)


def auto_variant(study: Study, cuda_available: bool | None = None) -> str | None:
    """The variant marked ``auto = "no-gpu"`` when CUDA is unavailable, else ``None`` (the study as written)."""
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if cuda_available:
        return None
    for v in study.variants.values():
        if v.auto == "no-gpu":
            return v.name
    return None
