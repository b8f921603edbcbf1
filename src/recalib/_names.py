"""Messages for names that are not known: the valid ones and, for a likely typo, a did-you-mean suggestion.

Every registry of the package (operators, models, data sets, recipes, studies, commands) reports an unknown
name through :func:`unknown_name`, so ``--recalib msar`` and ``create_model("resnet21")`` say the same kind of
thing: ``unknown recalibration operator 'msar'; valid names: ge, mssar, ...; did you mean 'mssar'?``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping

__all__ = ["did_you_mean", "suggestion", "unknown_name"]


def did_you_mean(name: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str | None:
    """The choice closest to ``name`` (case-insensitive, :mod:`difflib`'s similarity of at least 0.6), or ``None``.

    Ties go to the longer common prefix (``resnet21`` -> ``resnet20``, not ``resnet32``). ``aliases`` maps other
    spellings to choices: a name close to an alias suggests the choice it stands for.
    """
    options = {c.lower(): c for c in choices}
    options.update({a.lower(): c for a, c in (aliases or {}).items()})
    key = str(name).lower()
    close = difflib.get_close_matches(key, list(options), n=len(options), cutoff=0.6)
    if not close:
        return None
    best = max(close, key=lambda c: (difflib.SequenceMatcher(None, key, c).ratio(), len(os.path.commonprefix([key, c]))))
    return options[best]


def suggestion(name: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None) -> str:
    """``"; did you mean 'x'?"`` for the closest choice (:func:`did_you_mean`), or ``""``: the end of a message."""
    guess = did_you_mean(name, choices, aliases)
    return f"; did you mean {guess!r}?" if guess is not None else ""


def unknown_name(kind: str, name: str, choices: Iterable[str], valid_label: str = "valid names",
                 aliases: Mapping[str, str] | None = None) -> ValueError:
    """``ValueError("unknown {kind} {name!r}; {valid_label}: ...; did you mean {x!r}?")`` (no hint without a match)."""
    choices = list(choices)
    return ValueError(f"unknown {kind} {name!r}; {valid_label}: {', '.join(choices) or 'none'}"
                      + suggestion(name, choices, aliases))
