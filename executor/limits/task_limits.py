"""One task under another profile than its worker's: that profile's limits, for the task's duration.

The protocol's ``handle_execution`` may run a task under another profile than
its worker's (the planner's schedule and the simulator time it so).  The
worker's process then, for that task only, *retunes the limits it joined*
(:func:`executor.limits.applied.joined_limits`) to the task's profile and
restores them afterwards:

* **CPU** - its cgroup's quota becomes the profile's (same period); in the
  affinity fallback the thread running the task is pinned to the profile's whole
  CPUs (counted from the CPUs the process had before its own pinning);
* **memory** - its cgroup's limit becomes the profile's: the process as a whole,
  what it already holds included, has the profile's memory, as a serverless
  function of that size would.  A limit is never set below what the process
  holds (the kernel would kill it on the spot, v2, or refuse, v1): the record
  says so instead;
* **threads** - BLAS/OpenMP pools sized by the executor's thread rule for the
  profile (:func:`executor.run.budgets.profile_budgets`).

Retuning is a few writes to the process's own cgroup files (~0.4 ms measured);
moving the process into cgroups of the task's own was tried and costs an RCU
grace period per move (3-25 ms on this host).  A process killed during the task
leaves nothing behind: its cgroups are its launcher's to remove, as always.

Where the OS refused the worker's own limits it refuses the task's the same way
(``"none"`` plus a note why); a process running without limits (limits off, or
not forked by a launcher) limits no task either.  What was enforced is the
task's record in the trace (``Trace.meta["task_limits"]``).  A task on its
worker's own profile never gets here: the worker compares the profile's name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from executor.limits.affinity import pinned_cpus
from executor.limits.applied import JoinedLimits, joined_limits
from executor.limits.cgroup_limits import cpu_quota_us, memory_usage, set_cpu_quota, set_memory_limit
from executor.limits.threads import thread_limits

__all__ = ["task_profile_limits"]

_CGROUP_MODES = ("cgroup-v1", "cgroup-v2")


@contextlib.contextmanager
def task_profile_limits(profile: str, cpus: float, memory_mb: float, threads: int, *,
                        enabled: bool = True) -> Iterator[dict[str, Any]]:
    """Run the block under ``profile``'s limits (where permitted); yields the record of what was enforced.

    The record (JSON-able): ``profile``, ``cpu`` / ``memory`` (a :data:`CpuMode` /
    :data:`MemoryMode`, ``"none"`` when not enforced), ``cpu_quota_us``,
    ``cpu_period_us``, ``memory_mb``, ``threads`` (``"threadpoolctl:N"``,
    ``"env:N"`` or ``"none"``) and ``notes`` saying why anything was not
    enforced (notes may be added when the block ends: restoring can fail too).
    ``enabled`` False (the run's limits are off) enforces nothing and says so.
    """
    record: dict[str, Any] = {"profile": profile, "cpu": "none", "memory": "none", "cpu_quota_us": 0,
                              "cpu_period_us": 0, "memory_mb": 0.0, "threads": "none", "notes": []}
    if not enabled:
        record["notes"].append("limits are off for this run (ExecutorSettings.limits)")
        yield record
        return
    joined = joined_limits()
    with contextlib.ExitStack() as stack:
        record["threads"] = stack.enter_context(thread_limits(threads))
        if joined is None:
            record["notes"].append("cpu and memory not enforced: this process runs without limits of its own "
                                   "(it joined none: not forked by a launcher with limits)")
        else:
            stack.enter_context(_cpu(joined, cpus, record))
            stack.enter_context(_memory(joined, memory_mb, record))
        yield record


def _not_enforced(joined: JoinedLimits, what: str) -> str:
    own = joined.limits
    why = "; ".join(n for n in own.notes if n.startswith(what)) or f"its worker's profile requested no {what} limit"
    return f"{what} not enforced: its worker's process has none ({why})"


@contextlib.contextmanager
def _cpu(joined: JoinedLimits, cpus: float, record: dict[str, Any]) -> Iterator[None]:
    """The process's CPU quota (or the running thread's CPUs) set to ``cpus`` for the block."""
    own, notes = joined.limits, record["notes"]
    if own.cpu_enforced == "affinity" and own.affinity:
        start = sorted(joined.unpinned or own.affinity).index(min(own.affinity))   # from the worker's first CPU
        pinned = pinned_cpus(cpus, start, notes, joined.unpinned)
        os.sched_setaffinity(0, pinned)
        record.update(cpu="affinity")
        try:
            yield
        finally:
            os.sched_setaffinity(0, own.affinity)
        return
    if own.cpu_enforced not in _CGROUP_MODES or own.cpu_cgroup is None or not own.period_us or not own.quota_us:
        notes.append(_not_enforced(joined, "cpu"))
        yield
        return
    quota = cpu_quota_us(cpus, own.period_us, notes)
    try:
        set_cpu_quota(own.cpu_cgroup, own.cpu_enforced, quota, own.period_us)
    except OSError as exc:
        notes.append(f"cpu not enforced: cannot set the quota of {own.cpu_cgroup}: {exc}")
        yield
        return
    record.update(cpu=own.cpu_enforced, cpu_quota_us=quota, cpu_period_us=own.period_us)
    try:
        yield
    finally:
        try:
            set_cpu_quota(own.cpu_cgroup, own.cpu_enforced, own.quota_us, own.period_us)
        except OSError as exc:
            notes.append(f"could not restore the worker's CPU quota after the task: {exc}")


@contextlib.contextmanager
def _memory(joined: JoinedLimits, memory_mb: float, record: dict[str, Any]) -> Iterator[None]:
    """The process's memory limit set to ``memory_mb`` for the block, never below what it holds."""
    own, notes = joined.limits, record["notes"]
    cgroup, mode = own.memory_cgroup, own.memory_enforced
    if mode not in _CGROUP_MODES or cgroup is None or not own.memory_mb:
        notes.append(_not_enforced(joined, "memory"))
        yield
        return
    try:
        held = memory_usage(cgroup, mode)
        if held > memory_mb * 2**20:
            notes.append(f"memory not enforced: the worker's process already holds {held / 2**20:.0f} MiB, "
                         f"more than the task's profile's {memory_mb:g} MiB")
            yield
            return
        set_memory_limit(cgroup, mode, memory_mb)
    except OSError as exc:
        notes.append(f"memory not enforced: cannot set the limit of {cgroup}: {exc}")
        yield
        return
    record.update(memory=mode, memory_mb=float(memory_mb))
    try:
        yield
    finally:
        _restore_memory(joined, record)


def _restore_memory(joined: JoinedLimits, record: dict[str, Any]) -> None:
    """Back to the worker's own limit, unless the process now holds more (the task's output, kept for later)."""
    own = joined.limits
    assert own.memory_cgroup is not None and own.memory_mb is not None
    try:
        held = memory_usage(own.memory_cgroup, own.memory_enforced)
        if held > own.memory_mb * 2**20:
            record["notes"].append(f"the worker's memory limit stays at the task's {record['memory_mb']:g} MiB: "
                                   f"its process holds {held / 2**20:.0f} MiB after the task, more than its "
                                   f"own {own.memory_mb:g} MiB")
            return
        set_memory_limit(own.memory_cgroup, own.memory_enforced, own.memory_mb)
    except OSError as exc:
        record["notes"].append(f"could not restore the worker's memory limit after the task: {exc}")
