"""Optional dependencies (the extras of ``pyproject.toml``): import one, or fail with one line naming its extra.

``recalib`` itself needs only torch, numpy and safetensors. A command that needs more (matplotlib for figures,
...) imports it through :func:`require`, whose :class:`MissingExtraError` says what to install, e.g.
``pip install 'recalib[plots]'``; the CLI prints it as one line and exits 2.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "install_hint", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def install_hint(extra: str) -> str:
    """``pip install 'recalib[EXTRA]'``: the command that installs an extra."""
    return f"pip install 'recalib[{extra}]'"


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError`: ``{needed_for} needs {module}: pip install ...``.

    An ``ImportError`` raised inside an installed ``module`` (a broken installation, not a missing one) is
    left as it is.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        if exc.name is not None and exc.name.partition(".")[0] != top:
            raise
        raise MissingExtraError(f"{needed_for} needs {top}, which is not installed: {install_hint(extra)}") from None

