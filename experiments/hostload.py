"""How busy and how fast the host was around a real run: load averages, cores, a CPU-speed probe.

The same plan's real makespan moved 2x on this machine with other work running
(FACTS.md), so a real run without its host conditions cannot be judged.  Every
real run made by ``planlab execute`` and by the experiment runner records a
:class:`HostSnapshot` just before and just after it (:class:`RunHost`):

* in the Trace's ``meta["host"]`` (saved with the trace),
* in its history rows (columns ``host_load_1m`` and ``cpu_probe_s``, the values
  taken before the run: the conditions the run started in),
* in the runner's per-cell summary row (the same two columns, plus ``_after``).

The CPU-speed probe is a fixed pure-Python loop (:data:`PROBE_ITERATIONS`
multiply-modulo-add steps, about 14 ms on an idle core of the 2-core machine the
project is developed on).  It runs in the calling process, single-threaded, so
its time grows when the core it runs on is shared with other work or clocked
down: compare probes of one machine, not across machines.

This module reads ``/proc/loadavg`` only; on a system without it the loads are
NaN and the probe still runs.  It is part of ``experiments`` on purpose: the
planner and the simulator never depend on the conditions of one host.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import pandas as pd

__all__ = ["PROBE_ITERATIONS", "HostSnapshot", "RunHost", "host_snapshot", "cpu_probe_s", "read_loadavg",
           "record_host", "measured_run", "add_host_columns", "HOST_COLUMNS"]

R = TypeVar("R")

#: Steps of the CPU-speed probe's loop: about 14 ms on an idle core here (10-20 ms is the aim).
PROBE_ITERATIONS = 200_000

#: The history / summary columns this module adds (values taken before the run).
HOST_COLUMNS = ("host_load_1m", "cpu_probe_s")

LOADAVG_PATH = Path("/proc/loadavg")


@dataclass(frozen=True)
class HostSnapshot:
    """The host at one instant: load averages (runnable tasks, 1/5/15 min), cores, probe seconds, epoch time."""

    load_1m: float
    load_5m: float
    load_15m: float
    cpu_count: int
    cpu_probe_s: float
    taken_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "HostSnapshot":
        """Read :meth:`to_dict`'s output; missing numbers are NaN (older records)."""
        def num(key: str) -> float:
            value = data.get(key)
            return float(value) if value is not None else math.nan

        return cls(num("load_1m"), num("load_5m"), num("load_15m"), int(data.get("cpu_count") or 0),
                   num("cpu_probe_s"), num("taken_at"))


@dataclass(frozen=True)
class RunHost:
    """The host just before and just after one real run."""

    before: HostSnapshot
    after: HostSnapshot

    def to_dict(self) -> dict[str, Any]:
        return {"before": self.before.to_dict(), "after": self.after.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunHost":
        return cls(HostSnapshot.from_dict(data.get("before") or {}), HostSnapshot.from_dict(data.get("after") or {}))

    def columns(self) -> dict[str, float]:
        """The summary-row columns: :data:`HOST_COLUMNS` before the run, and the same with ``_after``."""
        return {"host_load_1m": self.before.load_1m, "cpu_probe_s": self.before.cpu_probe_s,
                "host_load_1m_after": self.after.load_1m, "cpu_probe_s_after": self.after.cpu_probe_s}


def read_loadavg(path: Path = LOADAVG_PATH) -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages; NaN each when the file is missing or unreadable."""
    try:
        fields = path.read_text().split()
        return float(fields[0]), float(fields[1]), float(fields[2])
    except (OSError, ValueError, IndexError):
        return math.nan, math.nan, math.nan


def cpu_probe_s(iterations: int = PROBE_ITERATIONS) -> float:
    """Seconds of a fixed pure-Python loop: larger when the CPU is slower or shared."""
    start = time.perf_counter()
    acc = 0
    for i in range(iterations):
        acc += i * i % 7
    return time.perf_counter() - start


def host_snapshot(*, probe: bool = True) -> HostSnapshot:
    """The host now: ``/proc/loadavg``, ``os.cpu_count()`` and (unless ``probe=False``) the CPU probe."""
    load = read_loadavg()
    return HostSnapshot(load[0], load[1], load[2], int(os.cpu_count() or 1),
                        cpu_probe_s() if probe else math.nan, time.time())


def record_host(trace: Any, before: HostSnapshot, after: HostSnapshot | None = None) -> RunHost:
    """Take the after-run snapshot (unless given) and store both in ``trace.meta["host"]``; return them."""
    host = RunHost(before, after if after is not None else host_snapshot())
    trace.meta["host"] = host.to_dict()
    return host


def measured_run(run: Callable[[], R]) -> tuple[R, RunHost]:
    """Call ``run()`` (a real run returning an object with a ``trace``) between two snapshots; record them."""
    before = host_snapshot()
    result = run()
    return result, record_host(result.trace, before)


def add_host_columns(history: pd.DataFrame, host: RunHost) -> pd.DataFrame:
    """``history`` with the optional columns ``host_load_1m`` and ``cpu_probe_s`` (before-run values)."""
    out = history.copy()
    out["host_load_1m"] = float(host.before.load_1m)
    out["cpu_probe_s"] = float(host.before.cpu_probe_s)
    return out
