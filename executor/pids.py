"""Whether a process still exists: how planlab tells a crashed owner's leftovers from a live one's.

Embedded servers' folders (:mod:`executor.server.folders`) and limit cgroups
(:mod:`executor.limits.stale`) carry their creator's pid; whatever belongs to a
pid that no longer exists was left by a killed process and may be removed.
"""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
