"""Billing, in one place: plans, analytical schedules and every engine's traces bill workers here.

Every engine bills a worker from its start to its stop at its profile's price,
and writes that into the ``cost`` and ``gb_s`` columns of its worker table
(:func:`bill`); the totals are then the same sums everywhere (:class:`BilledWorkers`).
A profile missing from the catalog (a real run's worker of an unknown profile)
bills nothing and has NaN CPUs and memory.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Sequence

import numpy as np
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


def resources(profiles: Sequence[str], catalog: Any) -> tuple[np.ndarray, np.ndarray]:
    """CPUs and memory (MB) of each profile named (NaN for one not in ``catalog``).

    Per name one dictionary look-up for its row in the catalog's table (a last row
    of NaN for unknown names), then one gather per column: a trace's 100k tasks name
    a handful of profiles.
    """
    rows = {p.name: k for k, p in enumerate(catalog)}
    nan = float("nan")
    cpus = np.array([float(p.cpus) for p in catalog] + [nan], dtype=np.float64)
    memory = np.array([float(p.memory_mb) for p in catalog] + [nan], dtype=np.float64)
    unknown = len(rows)
    # map over dict.get runs in C (a generator expression costs a Python frame per name)
    code = np.fromiter(map(rows.get, profiles, repeat(unknown)), dtype=np.int64, count=len(profiles))
    return cpus[code], memory[code]


def bill(profiles: Sequence[str], start_s: Any, stop_s: Any, catalog: Any) -> tuple[np.ndarray, np.ndarray]:
    """GB-seconds and dollars of each worker: its lifetime (``stop - start``) times its profile's memory and price."""
    lifetime = np.asarray(stop_s, dtype=np.float64) - np.asarray(start_s, dtype=np.float64)
    known = {p.name: (p.memory_mb / 1024.0, float(p.price_per_s)) for p in catalog}
    rates = list(map(known.get, profiles, repeat((0.0, 0.0))))
    gb = np.array([r[0] for r in rates], dtype=np.float64)
    price = np.array([r[1] for r in rates], dtype=np.float64)
    return lifetime * gb, lifetime * price
