"""Errors a user can cause and fix.

Every error a researcher can trigger by a bad workflow, config, catalog, plan or
history derives from :class:`PlanlabError`.  It carries a one-line message that
names the problem and, separately, the fix, so the command line can print one
clear line (``error: ... — fix: ...``) and exit 2 instead of a traceback.
"""

from __future__ import annotations


class PlanlabError(Exception):
    """A user-facing error: ``what`` went wrong and ``fix`` says how to mend it."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(what if not fix else f"{what} (fix: {fix})")

    def one_line(self) -> str:
        """The message as a single line, suitable for a CLI."""
        return " ".join(str(self).split())


class WorkflowError(PlanlabError):
    """The workflow is malformed: a cycle, an unknown parent, a duplicate id..."""


class CatalogError(PlanlabError):
    """A resource profile or catalog is invalid or unknown."""


class SLAError(PlanlabError):
    """An SLA statistic could not be parsed."""


class HistoryError(PlanlabError):
    """A history table fails its schema."""


class PlanError(PlanlabError):
    """A plan breaks an invariant, or no plan can be made."""


class ConfigError(PlanlabError):
    """An experiment config is invalid."""


class ExecutionError(PlanlabError):
    """A real run failed: a task raised, a worker died, the server went away."""
