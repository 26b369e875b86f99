"""The commit a benchmark measures, taken when the benchmark's process starts.

A results file says which code it measured.  Taking the revision when the file is
written instead would name a later commit whenever someone commits during a long
run (a benchmark of 20 minutes beside other work), so every benchmark imports this
module first and records :data:`AT_START`.
"""

from __future__ import annotations

from typing import Any

from experiments.provenance import git_revision

__all__ = ["AT_START", "short"]

#: ``{"revision": full hash or None, "dirty": bool or None}`` of the checkout when this process started.
AT_START: dict[str, Any] = git_revision()


def short() -> str | None:
    """The measured commit's short hash (None outside git)."""
    return (AT_START["revision"] or "")[:7] or None
