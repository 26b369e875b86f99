"""Looking names up: one "did you mean ...?" for every place a user types a name.

Planners, protocols, catalogs, profiles, SLAs, generators and config keys are all
names a researcher types; a typo should cost a glance, not a search through the
docs.  :func:`did_you_mean` is the one phrasing every error message uses.
"""

from __future__ import annotations

import difflib
from typing import Iterable


def closest_names(word: str, options: Iterable[str], n: int = 1) -> list[str]:
    """Up to ``n`` options spelled closest to ``word`` (case-insensitive), best first.

    difflib's ratio with its default cutoff (0.6): ``hfet`` finds ``heft``,
    ``critcal-path`` finds ``critical-path``, an unrelated word finds nothing.
    Cost: O(len(options) * len(word)^2) at worst; options are a few dozen names.
    """
    by_lower: dict[str, str] = {}
    for option in options:
        by_lower.setdefault(str(option).lower(), str(option))
    found = difflib.get_close_matches(str(word).lower(), list(by_lower), n=n)
    return [by_lower[f] for f in found]


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or ``""`` when none is close."""
    close = closest_names(word, options)
    return f" (did you mean {close[0]!r}?)" if close else ""
