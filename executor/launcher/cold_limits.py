"""A cold worker's cgroups, joined while it starts: the launcher attaches the child right after the fork.

Writing a pid into ``cgroup.procs`` waits for the kernel's RCU grace periods:
1-20 ms here (the two writes of a cold start took 15-21 ms at load 6), the longest
part of a cold start once the fork is done.  The child needs none of it to
connect, load its run's spec and claim its worker, only before its first task
runs.  So the launcher, as soon as ``fork`` returns, attaches the child in a thread
of its own (its loop goes on) and tells it through a pipe; the child waits on the
pipe before its first task (:meth:`executor.process.ProcessContext.await_limits`).
Every task still runs under its limits.  Memory the child allocates before the
attach (its connection, the run's spec) stays charged to the launcher's cgroup.

Moving a process takes the kernel's thread-group lock for writing, which blocks
the process's thread creation meanwhile (``clone``): a child that started its
heartbeat thread during the attach waited for all of it (19 ms at load 7), so the
child starts it after the wait.

Only for cgroups, which move every thread of a process: the CPU-affinity
fallback pins one thread, so that child pins itself first
(:meth:`executor.limits.AppliedLimits.join_self`).  The pipe's write end may be
inherited by a child forked while the thread still runs; it then stays open,
unused, in that process.
"""

from __future__ import annotations

import _thread
import os
import time

from executor.limits import AppliedLimits, attach

__all__ = ["attached_by_parent", "attach_in_background", "wait_attached"]

_OK = b"ok"


def attached_by_parent(applied: AppliedLimits | None) -> bool:
    """Whether the launcher attaches a child to ``applied`` (cgroups, no CPU pinning)."""
    return applied is not None and applied.affinity is None and bool(applied.cgroups)


def attach_in_background(applied: AppliedLimits, pid: int, done_fd: int) -> None:
    """Launcher side: attach ``pid`` in a thread, then write ``ok`` (or what went wrong) to ``done_fd``."""
    def run() -> None:
        try:
            attach(applied, pid)
            answer = _OK
        except BaseException as exc:  # noqa: BLE001 - the child reports it
            answer = f"{type(exc).__name__}: {exc}".encode()[:500]
        try:
            os.write(done_fd, answer)
        except OSError:
            pass   # the child is gone
        finally:
            os.close(done_fd)

    _thread.start_new_thread(run, ())
    time.sleep(0)   # the GIL to the thread now, up to its first write (else it waits up to the 5 ms switch interval)


def wait_attached(applied: AppliedLimits, done_fd: int) -> None:
    """Child side: block until the launcher attached this process; raise if it could not."""
    try:
        answer = os.read(done_fd, 512)
    finally:
        os.close(done_fd)
    if answer != _OK:
        raise RuntimeError("the launcher could not move this worker process into its cgroups ("
                           f"{answer.decode(errors='replace') or 'it gave no answer'})")
    applied.mark_joined()
