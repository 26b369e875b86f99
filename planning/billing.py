"""Billing of a worker table, shared by plans, analytical schedules and traces.

Every engine bills a worker from its start to its stop at its profile's price,
and writes that into the ``cost`` and ``gb_s`` columns of its worker table; the
totals are then the same sums everywhere.
"""

from __future__ import annotations

import pandas as pd


class BilledWorkers:
    """Mixin for anything with a ``workers`` DataFrame holding ``cost`` and ``gb_s`` columns."""

    workers: pd.DataFrame

    @property
    def cost(self) -> float:
        """Dollars: every worker billed from its start to its stop at its profile's price."""
        return float(self.workers["cost"].sum())

    @property
    def gb_s(self) -> float:
        """GB-seconds: memory times lifetime, summed over workers."""
        return float(self.workers["gb_s"].sum())
