"""A worker process's CPU weight raised while it runs a background thread beside its task.

Each worker process runs in a cgroup of its own (:mod:`executor.limits.applied`),
and on a busy host the kernel shares the cores between cgroups by weight, not
between threads: a worker's cgroup gets one weight however many threads it
runs.  So the CPU of pre-load's fetching thread came out of the task beside it
(the gather worker's last chunk of fan-large ran 1.66 s median beside the pre-load
against 1.29 s without it, load 5-7), while the simulator, like a host without
cgroups, gives a background thread a share of its own when its worker's quota has
room (:mod:`simulator.quota`: a 2-CPU worker's single-threaded task leaves a core
free in it).  :func:`weighted_for` multiplies the cgroup's weight by the number of
runnable jobs it holds while the thread moves bytes (``cpu.shares`` on cgroup v1,
``cpu.weight`` on v2), which is what the model assumes; the quota is untouched (a
1-CPU worker's thread still shares its task's core, as modelled).  Measured on
fan-large (the tree before against this one alternated, 9 pairs of base and
pre-load with delayed I/O each, load 5.8-7.8): the cut of the makespan (medians)
heft 11.4 -> 22.5 %, critical-path 9.7 -> 20.0 %; the chunk beside the pre-load
0.50 s slower than without pre-load -> 0.05 s faster (heft), 0.49 -> 0.11 s slower
(critical-path).

Where the process joined no cgroup of its own (the affinity fallback, another
OS, a process its launcher did not limit) nothing is written and nothing changes.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from executor.limits.applied import joined_limits
from executor.limits.cgroup_dirs import write_value

__all__ = ["BASE_WEIGHT", "weight_file", "weighted_for"]

#: The kernel's default weight of a cgroup and the file that holds it, per cgroup version
BASE_WEIGHT = {"cgroup-v1": ("cpu.shares", 1024), "cgroup-v2": ("cpu.weight", 100)}


def weight_file() -> tuple[Path, int] | None:
    """This process's own CPU cgroup's weight file and default weight; None when it joined none."""
    joined = joined_limits()
    if joined is None or joined.limits.cpu_cgroup is None or joined.limits.cpu_enforced not in BASE_WEIGHT:
        return None
    name, base = BASE_WEIGHT[joined.limits.cpu_enforced]
    return joined.limits.cpu_cgroup / name, base


@contextmanager
def weighted_for(jobs: int) -> Iterator[bool]:
    """This process's cgroup weighs ``jobs`` times its default inside the block (True when it was raised).

    Called by the background thread itself, around the transfers it makes: the worker's
    own thread never waits for the writes (~0.4 ms each).  A refused write leaves the
    weight as it was: the run goes on, as without cgroups.
    """
    found = weight_file()
    if found is None or jobs <= 1:
        yield False
        return
    path, base = found
    try:
        write_value(path, base * jobs)
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        try:
            write_value(path, base)
        except OSError:    # the cgroup was removed under us (its worker's end): nothing left to restore
            pass
