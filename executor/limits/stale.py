"""Removing the cgroups of a crashed run.

A run killed before it released its limits leaves ``planlab-<pid>-*`` cgroups
behind; whoever starts next (a launcher, ``Executor.close`` after killing its
launcher) removes those whose owner pid is gone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from executor.limits.cgroup_dirs import OWNER_RE, remove_cgroup
from executor.limits.detection import LimitSupport, probe_limits
from executor.pids import pid_alive

__all__ = ["cleanup_stale_cgroups"]


def cleanup_stale_cgroups(
    support: LimitSupport | None = None, *, kill: bool = False, include_own: bool = False
) -> list[Path]:
    """Remove ``planlab-*`` cgroups whose creating process has died (a crashed run).

    The owner's pid is part of every name, so cgroups of other live planlab
    processes (e.g. a concurrent run) are left alone; ``include_own=True`` also
    removes this process's own.  Processes still inside are moved to the parent
    cgroup, or killed with ``kill=True``.  Returns the removed directories.
    """
    support = support or probe_limits()
    parents = {p for p in (support.cpu_parent, support.memory_parent) if p is not None}
    removed: list[Path] = []
    for parent in sorted(parents):
        with contextlib.suppress(OSError):
            for child in sorted(parent.iterdir()):
                m = OWNER_RE.match(child.name)
                if not m or not child.is_dir():
                    continue
                owner = int(m.group(1))
                if owner == os.getpid() and not include_own:
                    continue
                if owner != os.getpid() and pid_alive(owner):
                    continue
                with contextlib.suppress(OSError):
                    remove_cgroup(child, kill=kill, timeout=2.0)
                    removed.append(child)
    return removed
