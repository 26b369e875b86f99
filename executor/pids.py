"""Whether a process still exists: how planlab tells a crashed owner's leftovers from a live one's.

Embedded servers' folders (:mod:`executor.server.folders`) and limit cgroups
(:mod:`executor.limits.stale`) carry their creator's pid; whatever belongs to a
pid that no longer exists was left by a killed process and may be removed.
"""

from __future__ import annotations

import os

__all__ = ["pid_alive", "pid_answering"]


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_answering(pid: int) -> bool:
    """Whether the process exists and can run: not stopped (SIGSTOP, a debugger) and not a zombie.

    Read from ``/proc/PID/stat`` where there is one; elsewhere an existing process counts.
    """
    try:
        stat = open(f"/proc/{pid}/stat", "rb").read()
    except FileNotFoundError:
        return pid_alive(pid) and not os.path.isdir("/proc/self")
    except OSError:
        return pid_alive(pid)
    state = stat[stat.rfind(b")") + 2:][:1]      # the field after the command name, which may hold spaces
    return state not in (b"T", b"t", b"Z", b"X", b"x")
