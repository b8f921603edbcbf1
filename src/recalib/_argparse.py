"""The package's argparse conventions, shared by ``recalib`` and the ``python -m`` entry points of its commands.

:class:`Parser`: a usage error is one line (the usage of ``recalib train`` alone fills a screen), no option may be
abbreviated (``--epoch`` is not ``--epochs``), a mistyped choice gets a did-you-mean, and ``--help`` shows every
option's default (:class:`HelpFormatter`).
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from ._names import suggestion

__all__ = ["HelpFormatter", "Parser"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and every option's default in its help (unless the help already gives it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (default in (None, "", []) or default is argparse.SUPPRESS or isinstance(default, bool)
                or action.option_strings == [] or "default" in text or "%(default)" in text):
            return action.help
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage of `recalib train` alone fills a screen), no option may
    be abbreviated (``--epoch`` is not ``--epochs``), and every option's default is in ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's check of ``choices`` (a private hook, stable since Python 3.2), with a did-you-mean."""
        if action.choices is not None and value not in action.choices:
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from "
                                         f"{', '.join(map(repr, action.choices))})"
                                         + suggestion(str(value), map(str, action.choices)))

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
