"""Billing, in one place: plans, analytical schedules and every engine's traces bill workers here.

Every engine bills a worker from its start to its stop at its profile's price,
and writes that into the ``cost`` and ``gb_s`` columns of its worker table
(:func:`bill`); the totals are then the same sums everywhere (:class:`BilledWorkers`).
A profile missing from the catalog (a real run's worker of an unknown profile)
bills nothing and has NaN CPUs and memory.
"""

from __future__ import annotations

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
    """CPUs and memory (MB) of each profile named (NaN for one not in ``catalog``)."""
    known = {p.name: (float(p.cpus), float(p.memory_mb)) for p in catalog}
    nan = (float("nan"), float("nan"))
    values = [known.get(p, nan) for p in profiles]
    if not values:
        return np.zeros(0), np.zeros(0)
    cpus, memory = zip(*values)
    return np.array(cpus, dtype=np.float64), np.array(memory, dtype=np.float64)


def bill(profiles: Sequence[str], start_s: Any, stop_s: Any, catalog: Any) -> tuple[np.ndarray, np.ndarray]:
    """GB-seconds and dollars of each worker: its lifetime (``stop - start``) times its profile's memory and price."""
    lifetime = np.asarray(stop_s, dtype=np.float64) - np.asarray(start_s, dtype=np.float64)
    known = {p.name: (p.memory_mb / 1024.0, float(p.price_per_s)) for p in catalog}
    rates = [known.get(p, (0.0, 0.0)) for p in profiles]
    gb = np.array([r[0] for r in rates], dtype=np.float64)
    price = np.array([r[1] for r in rates], dtype=np.float64)
    return lifetime * gb, lifetime * price
