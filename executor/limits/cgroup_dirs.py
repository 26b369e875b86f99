"""planlab's cgroup directories: how they are named, their small files, and how one is removed.

Every cgroup planlab creates is named ``planlab-<owner pid>-<name>-<random>``:
the owner's pid tells a crashed run's leftovers from a live run's
(:mod:`executor.limits.stale`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
import time
from pathlib import Path

__all__ = ["PREFIX", "OWNER_RE", "cgroup_name", "read_value", "write_value", "remove_cgroup"]

PREFIX = "planlab-"
OWNER_RE = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
_NAME_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def cgroup_name(name: str) -> str:
    """A fresh cgroup name for worker ``name``: prefix, this process's pid, the cleaned name, random suffix."""
    clean = _NAME_RE.sub("_", name).strip("._")[:48] or "worker"
    return f"{PREFIX}{os.getpid()}-{clean}-{secrets.token_hex(3)}"


def read_value(path: Path) -> str:
    return path.read_text().strip()


def write_value(path: Path, value: str | int) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _procs(path: Path) -> list[int]:
    try:
        return [int(x) for x in read_value(path / "cgroup.procs").split()]
    except (OSError, ValueError):
        return []


def remove_cgroup(path: Path, *, kill: bool, timeout: float) -> None:
    """Empty ``path`` (kill its processes, or move them to the parent cgroup) and remove it."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _procs(path)
        for pid in pids:
            with contextlib.suppress(OSError):
                if kill:
                    os.kill(pid, signal.SIGKILL)
                else:
                    write_value(path.parent / "cgroup.procs", pid)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            # EBUSY while killed processes finish exiting.
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.002)
