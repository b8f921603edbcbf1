"""The API reference (mkdocs.yml, docs/api/): every public package has a page, every public name (``__all__``)
and public method has a docstring, and the built site (``mkdocs build --strict``) has an entry for each name."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "api"
#: the public packages: each one's ``__all__`` is its API
PUBLIC = ("recalib", "recalib.modules", "recalib.models", "recalib.pretrained", "recalib.data", "recalib.train",
          "recalib.studies", "recalib.analysis", "recalib.integrations.timm")


def _documented_modules() -> dict[str, str]:
    """module -> the page of docs/api that renders it (``::: module``)."""
    out = {}
    for page in sorted(PAGES.glob("*.md")):
        for name in re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), flags=re.M):
            out[name] = page.name
    return out


def _own_doc(obj: object) -> str | None:
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        # A dataclass without a docstring gets its signature as __doc__.
        return None if doc is None or doc.startswith(f"{obj.__name__}(") else doc
    return inspect.getdoc(obj)  # a method overriding a documented one (forward, extra_repr) inherits its doc


def _undocumented(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    missing = [] if module.__doc__ else [module_name]
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj) or isinstance(obj, types.ModuleType)):
            continue  # constants: described where they are defined
        if not (obj.__doc__ if isinstance(obj, types.ModuleType) else _own_doc(obj)):
            missing.append(f"{module_name}.{name}")
        if inspect.isclass(obj):
            for attr, value in vars(obj).items():
                func = value.fget if isinstance(value, property) else getattr(obj, attr)
                if attr.startswith("_") or not (inspect.isfunction(func) or inspect.ismethod(func)):
                    continue
                if not inspect.getdoc(func):
                    missing.append(f"{module_name}.{name}.{attr}")
    return missing


def test_every_public_package_has_a_page():
    documented = _documented_modules()
    assert set(documented) == set(PUBLIC), documented
    nav = (ROOT / "mkdocs.yml").read_text()
    assert all(page in nav for page in documented.values())


@pytest.mark.parametrize("module_name", PUBLIC)
def test_every_public_name_has_a_docstring(module_name):
    assert _undocumented(module_name) == []


@pytest.mark.slow
def test_the_site_builds_strictly_with_an_entry_per_public_name(tmp_path):
    pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra: pip install 'recalib[docs]'")
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for module_name, page in _documented_modules().items():
        html = (site / page.replace(".md", ".html")).read_text()
        for name in importlib.import_module(module_name).__all__:
            if name.startswith("_") or isinstance(getattr(sys.modules[module_name], name), types.ModuleType):
                continue  # __version__; subpackages have pages of their own
            assert f'id="{module_name}.{name}"' in html, f"{module_name}.{name} is not in {page}"
