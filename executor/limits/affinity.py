"""The CPU fallback without cgroups: pinning a worker to whole CPUs (``sched_setaffinity``).

A fraction of a CPU is not enforceable this way; the worker gets
``max(1, floor(cpus))`` CPUs, and a note says so.  Successive workers are
pinned to successive CPUs (``cpu_offset``) so they do not all share CPU 0.
"""

from __future__ import annotations

import math
import os

__all__ = ["pinned_cpus"]


def pinned_cpus(cpus: float, cpu_offset: int, notes: list[str],
                available: frozenset[int] | None = None) -> frozenset[int]:
    """The CPUs to pin a worker of ``cpus`` CPUs to, starting ``cpu_offset`` CPUs into ``available``.

    ``available`` defaults to this process's set; a pinned worker choosing CPUs for
    one of its tasks passes the set it had before it was pinned.
    """
    cpus_in_order = sorted(os.sched_getaffinity(0) if available is None else available)
    n = min(len(cpus_in_order), max(1, math.floor(cpus)))
    start = cpu_offset % len(cpus_in_order)
    affinity = frozenset((cpus_in_order * 2)[start : start + n])
    if n != cpus:
        notes.append(f"cpu: pinned to {n} whole CPU(s) for {cpus:g} requested")
    return affinity
