"""Which task kinds run on several threads: what a task costs a *shared* host, not just how long it takes.

The law (:mod:`planning.costs.laws`) says how long a task takes on ``c`` CPUs alone.  On a
host shared by several workers (the simulator's host model) what matters too is how many
cores it keeps busy meanwhile: a single-threaded task keeps one, whatever its quota; a
task whose library starts one thread per CPU (BLAS, OpenMP; the executor sizes those
pools from the worker's CPUs) keeps its whole quota busy, even when its speed-up is
far from linear (measured here: a numpy task 1.44x faster on 2 CPUs than on 1, whose
forecasts on a 2-core host were 20 % short with one core per task and within 5 % with
two).

A kind is *threaded* when the profile measurements show it: its median time on its
largest measured CPU count (at least 1) is at least :data:`THREADED_SPEEDUP` times
faster than on its smallest CPU count of at least 1, and faster by at least
:data:`MIN_SAVING_S` (below that a ratio is timer and scheduling noise: an 8 ms
single-threaded replay task read 1.29x in one quickstart and 1.05x in the next, a
0.1 ms sink 1.6x).  Quotas below one CPU say nothing
here (a single-threaded task slows down under a 0.5-CPU quota too), and a kind measured
on one CPU count of at least 1 is not threaded (nothing shows it).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import pandas as pd

#: Speed-up from the smallest to the largest measured CPU count (>= 1) that marks a kind as threaded.
THREADED_SPEEDUP = 1.2
#: Seconds a threaded kind's median must gain as well (a numpy task of 40 ms gained 13 ms).
MIN_SAVING_S = 0.005

__all__ = ["MIN_SAVING_S", "THREADED_SPEEDUP", "fair_thread_counts", "quota_threads", "threaded_kinds"]


def threaded_kinds(history: pd.DataFrame, speedup: float = THREADED_SPEEDUP,
                   min_saving_s: float = MIN_SAVING_S) -> frozenset[str]:
    """The kinds of ``history`` whose median ``exec_s`` falls by >= ``speedup`` x and >= ``min_saving_s`` from
    their fewest to their most CPUs (>= 1)."""
    whole = history[history["cpus"] >= 1.0]
    if not len(whole):
        return frozenset()
    medians = whole.groupby(["kind", "cpus"])["exec_s"].median()
    threaded = set()
    for kind, per_cpus in medians.groupby(level=0):
        times = per_cpus.droplevel(0).sort_index()
        few, most = float(times.iloc[0]), float(times.iloc[-1])
        if len(times) >= 2 and most > 0 and few / most >= speedup and few - most >= min_saving_s:
            threaded.add(str(kind))
    return frozenset(threaded)


def quota_threads(cpus: float) -> int:
    """Threads a pool sized to a CPU quota runs: ``max(1, floor(cpus))`` (a pool on a fraction of a CPU spins)."""
    return max(1, math.floor(float(cpus) + 1e-9))


def fair_thread_counts(cpus_by_profile: Mapping[str, float] | Iterable[tuple[str, float]], peak_cpus: float,
                       host_cores: float) -> dict[str, int]:
    """The executor's ``threads="fair"`` rule: per profile, the threads its workers' BLAS/OpenMP pools run.

    A plan whose workers hold up to ``peak_cpus`` CPUs at once on a host of
    ``host_cores`` cores gives each worker the share ``min(1, host_cores / peak_cpus)``
    of its quota in threads (at least one): pools sized to the whole quota would
    oversubscribe the host's cores and spin.  One rule for the executor (which
    sizes the pools, :mod:`executor.run.submission`) and the simulator (which
    charges a threaded kind the time and the cores of that many threads,
    :mod:`simulator.threads`).  ``host_cores = inf`` (serverless): every worker
    gets its quota.
    """
    items = cpus_by_profile.items() if isinstance(cpus_by_profile, Mapping) else cpus_by_profile
    peak = float(peak_cpus)
    share = min(1.0, float(host_cores) / peak) if peak > 0 else 1.0
    return {str(name): quota_threads(float(cpus) * share) for name, cpus in items}
