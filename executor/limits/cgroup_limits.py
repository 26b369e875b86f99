"""CPU quotas and memory limits written into new cgroups (v1 or v2).

* **CPU** - a cgroup CPU quota is real: 0.5 CPU slows a single-threaded loop
  ×1.9-2.0 (``FACTS.md``).  The quota is ``cpus × period`` per period; with the
  kernel's default 100 ms period a task shorter than ~100 ms runs at full speed
  until the budget runs out, so short tasks would not be slowed at all: planlab
  uses a **10 ms period**.
* **Memory** - a memory cgroup limit is an immediate OOM kill: the process dies
  by **SIGKILL (exit status −9)** the moment it exceeds the limit; swap is capped
  too where it is accounted, so the limit kills instead of silently swapping.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from executor.limits.cgroup_dirs import read_value, write_value

__all__ = ["DEFAULT_PERIOD_US", "cpu_quota_us", "make_cpu_cgroup", "make_memory_cgroup", "memory_usage",
           "set_cpu_quota", "set_memory_limit"]

DEFAULT_PERIOD_US = 10_000
"""CFS period: 10 ms so tasks shorter than ~100 ms are throttled too (FACTS.md)."""
_MIN_QUOTA_US = 1_000  # the kernel rejects smaller quotas


def cpu_quota_us(cpus: float, period_us: int, notes: list[str]) -> int:
    """The quota per period for ``cpus`` CPUs (raised to the kernel's minimum, with a note)."""
    quota_us = max(_MIN_QUOTA_US, round(cpus * period_us))
    if quota_us != round(cpus * period_us):
        notes.append(f"cpu quota raised to the kernel minimum {_MIN_QUOTA_US} us")
    return quota_us


def make_cpu_cgroup(cgroup: Path, version: str, quota_us: int, period_us: int, created: list[Path]) -> None:
    """Create ``cgroup`` (recorded in ``created`` for rollback) with a CPU quota; ``version``: cgroup-v1/-v2."""
    cgroup.mkdir()
    created.append(cgroup)
    if version == "cgroup-v1":
        write_value(cgroup / "cpu.cfs_period_us", period_us)
    set_cpu_quota(cgroup, version, quota_us, period_us)


def set_cpu_quota(cgroup: Path, version: str, quota_us: int, period_us: int) -> None:
    """Set the CPU quota of an existing cgroup (v1: within the period it has)."""
    if version == "cgroup-v1":
        write_value(cgroup / "cpu.cfs_quota_us", quota_us)
    else:
        write_value(cgroup / "cpu.max", f"{quota_us} {period_us}")


def make_memory_cgroup(cgroup: Path, version: str, memory_mb: float, cpu_cgroup: Path | None,
                       created: list[Path]) -> None:
    """Limit ``cgroup`` to ``memory_mb`` MiB, creating it unless it is ``cpu_cgroup`` (v2: one directory)."""
    limit = int(memory_mb * 2**20)
    if cgroup != cpu_cgroup:  # v2: one directory holds both controllers
        cgroup.mkdir()
        created.append(cgroup)
    if version == "cgroup-v1":
        write_value(cgroup / "memory.limit_in_bytes", limit)
        # Also cap memory+swap where swap accounting exists, so that the
        # limit kills instead of silently swapping on machines with swap.
        with contextlib.suppress(OSError):
            write_value(cgroup / "memory.memsw.limit_in_bytes", limit)
    else:
        write_value(cgroup / "memory.max", limit)
        with contextlib.suppress(OSError):
            write_value(cgroup / "memory.swap.max", 0)


def set_memory_limit(cgroup: Path, version: str, memory_mb: float) -> None:
    """Change the memory limit of an existing cgroup (callers check :func:`memory_usage` first).

    Lowering a limit below what the cgroup holds makes the kernel reclaim and
    then OOM-kill (v2) or refuse with EBUSY after reclaiming (v1).  In v1 the
    memory+swap limit may never be below the memory limit: it is raised before
    and lowered after it.
    """
    limit = int(memory_mb * 2**20)
    if version == "cgroup-v1":
        with contextlib.suppress(OSError):   # raising: memory+swap first (lowering: this fails, done below)
            write_value(cgroup / "memory.memsw.limit_in_bytes", limit)
        write_value(cgroup / "memory.limit_in_bytes", limit)
        with contextlib.suppress(OSError):
            write_value(cgroup / "memory.memsw.limit_in_bytes", limit)
    else:
        write_value(cgroup / "memory.max", limit)


def memory_usage(cgroup: Path, version: str) -> int:
    """Bytes the cgroup holds now."""
    return int(read_value(cgroup / ("memory.usage_in_bytes" if version == "cgroup-v1" else "memory.current")))
