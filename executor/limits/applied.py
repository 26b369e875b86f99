"""Limits for one worker: created (empty) up front, joined by the worker's process, released at its end.

A new process should join its limits before it runs anything
(``preexec_fn=applied.join_self``), so all its memory is charged to its own
cgroup; :func:`apply_limits` limits a process that already runs (memory it
already holds stays charged to its old cgroup).  Anything the OS refuses is
reported in the result (``*_enforced == "none"`` plus a note), never silently
dropped.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from executor.limits.affinity import pinned_cpus
from executor.limits.cgroup_dirs import cgroup_name, remove_cgroup, write_value
from executor.limits.cgroup_limits import DEFAULT_PERIOD_US, cpu_quota_us, make_cpu_cgroup, make_memory_cgroup
from executor.limits.detection import LimitSupport, probe_limits

__all__ = ["AppliedLimits", "JoinedLimits", "apply_limits", "attach", "create_limits", "joined_limits", "release"]

_CGROUP_MODES = ("cgroup-v1", "cgroup-v2")


@dataclass(frozen=True)
class AppliedLimits:
    """What was actually enforced for one worker, and how to undo it.

    ``cpu_enforced`` / ``memory_enforced`` take the values of :data:`CpuMode` /
    :data:`MemoryMode`; ``"none"`` means the limit was requested but could not
    be enforced (``notes`` say why) or was not requested (``cpus``/``memory_mb``
    is ``None``).
    """

    name: str
    cpus: float | None
    memory_mb: float | None
    cpu_enforced: str
    memory_enforced: str
    cpu_cgroup: Path | None = None
    memory_cgroup: Path | None = None
    affinity: frozenset[int] | None = None
    period_us: int | None = None
    quota_us: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def cgroups(self) -> tuple[Path, ...]:
        """The distinct cgroup directories created for these limits."""
        paths = [p for p in (self.cpu_cgroup, self.memory_cgroup) if p is not None]
        return tuple(dict.fromkeys(paths))

    def join_self(self) -> None:
        """Move the calling process into the limits.

        Meant as ``subprocess.Popen(..., preexec_fn=applied.join_self)`` or as the
        first line of a forked worker, so the process is limited before it runs
        any task code and all its memory is charged to its own cgroup.  It only
        writes a few small files (no imports, no locks), which is what code
        between fork and exec may do.  The process remembers what it joined
        (:func:`joined_limits`): a task it runs under another profile retunes
        these limits for its duration (:mod:`executor.limits.task_limits`).
        """
        global _joined
        unpinned = frozenset(os.sched_getaffinity(0)) if self.affinity is not None else None
        attach(self, 0)
        _joined = JoinedLimits(self, os.getpid(), unpinned)

    def mark_joined(self) -> None:
        """Record that the calling process is under these limits: its parent attached it (cgroups only,
        :mod:`executor.launcher.cold_limits`); as :meth:`join_self` records them."""
        global _joined
        if self.affinity is not None:
            raise ValueError("CPU pinning applies to the calling thread: the process must join_self()")
        _joined = JoinedLimits(self, os.getpid(), None)


@dataclass(frozen=True)
class JoinedLimits:
    """The limits this process joined (:meth:`AppliedLimits.join_self`), and its CPUs before any pinning."""

    limits: AppliedLimits
    pid: int
    unpinned: frozenset[int] | None


_joined: JoinedLimits | None = None


def joined_limits() -> JoinedLimits | None:
    """The limits this process joined with :meth:`AppliedLimits.join_self`; None when it joined none.

    A forked child inherits the record and sits in the same cgroups, but
    retuning them would limit its parent too: only the process that joined
    them may (hence the pid).
    """
    return _joined if _joined is not None and _joined.pid == os.getpid() else None


@dataclass(frozen=True)
class _CpuLimit:
    mode: str = "none"
    cgroup: Path | None = None
    affinity: frozenset[int] | None = None
    quota_us: int | None = None


def _limit_cpu(cpus: float, support: LimitSupport, cg_name: str, period_us: int, cpu_offset: int,
               notes: list[str], created: list[Path]) -> _CpuLimit:
    """A CPU quota in a new cgroup where permitted, else pinning to whole CPUs, else a note why not."""
    if support.cpu in _CGROUP_MODES and support.cpu_parent is not None:
        quota_us = cpu_quota_us(cpus, period_us, notes)
        cgroup = support.cpu_parent / cg_name
        make_cpu_cgroup(cgroup, support.cpu, quota_us, period_us, created)
        return _CpuLimit(support.cpu, cgroup, None, quota_us)
    if support.cpu == "affinity":
        return _CpuLimit("affinity", affinity=pinned_cpus(cpus, cpu_offset, notes))
    notes.append(f"cpu not enforced: {support.cpu_reason}")
    return _CpuLimit()


def create_limits(
    cpus: float | None,
    memory_mb: float | None,
    name: str,
    *,
    support: LimitSupport | None = None,
    period_us: int = DEFAULT_PERIOD_US,
    cpu_offset: int = 0,
) -> AppliedLimits:
    """Create (empty) cgroups for ``cpus`` CPUs and ``memory_mb`` MiB; attach processes later.

    ``cpu_offset`` rotates which CPUs the affinity fallback pins to, so that
    several limited workers do not all share CPU 0.  Raises ``ValueError`` for
    a non-positive request; anything the OS refuses is reported in the result
    (``*_enforced == "none"`` plus a note), never silently dropped.
    """
    if cpus is not None and not cpus > 0:
        raise ValueError(f"cpus must be > 0, got {cpus!r}")
    if memory_mb is not None and not memory_mb > 0:
        raise ValueError(f"memory_mb must be > 0, got {memory_mb!r}")
    support = support or probe_limits()
    cg_name = cgroup_name(name)
    notes: list[str] = []
    created: list[Path] = []
    cpu = _CpuLimit()
    mem_mode, mem_cg = "none", None
    try:
        if cpus is not None:
            cpu = _limit_cpu(cpus, support, cg_name, period_us, cpu_offset, notes, created)
        if memory_mb is not None:
            if support.memory in _CGROUP_MODES and support.memory_parent is not None:
                mem_cg = support.memory_parent / cg_name
                make_memory_cgroup(mem_cg, support.memory, memory_mb, cpu.cgroup, created)
                mem_mode = support.memory
            else:
                notes.append(f"memory not enforced: {support.memory_reason}")
    except OSError:
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise
    return AppliedLimits(name=name, cpus=cpus, memory_mb=memory_mb, cpu_enforced=cpu.mode,
                         memory_enforced=mem_mode, cpu_cgroup=cpu.cgroup, memory_cgroup=mem_cg,
                         affinity=cpu.affinity, period_us=period_us if cpu.cgroup is not None else None,
                         quota_us=cpu.quota_us, notes=tuple(notes))


def attach(applied: AppliedLimits, pid: int) -> None:
    """Put process ``pid`` (0: the caller) under ``applied``; its future children inherit it."""
    for path in applied.cgroups:
        # Writing to cgroup.procs moves the whole thread group.
        write_value(path / "cgroup.procs", pid if pid else os.getpid())
    if applied.affinity is not None:
        os.sched_setaffinity(pid, applied.affinity)


def apply_limits(
    pid: int,
    cpus: float | None,
    memory_mb: float | None,
    name: str,
    *,
    support: LimitSupport | None = None,
    period_us: int = DEFAULT_PERIOD_US,
    cpu_offset: int = 0,
) -> AppliedLimits:
    """Limit the running process ``pid`` to ``cpus`` CPUs and ``memory_mb`` MiB.

    Memory the process already holds stays charged to its previous cgroup, so
    prefer :func:`create_limits` + :meth:`AppliedLimits.join_self` for new
    processes.  A process exceeding ``memory_mb`` is killed with SIGKILL (its
    exit status is −9).
    """
    applied = create_limits(
        cpus, memory_mb, name, support=support, period_us=period_us, cpu_offset=cpu_offset
    )
    try:
        attach(applied, pid)
    except OSError:
        release(applied)
        raise
    return applied


def release(applied: AppliedLimits, *, kill: bool = False, timeout: float = 5.0) -> None:
    """Remove the cgroups of ``applied``; never leaves a cgroup behind.

    Processes still inside are moved to the parent cgroup (they keep running,
    unlimited) or, with ``kill=True``, killed.  Affinity is not undone: it only
    ever applied to the worker's own processes.
    """
    errors: list[str] = []
    for path in applied.cgroups:
        try:
            remove_cgroup(path, kill=kill, timeout=timeout)
        except OSError as exc:
            errors.append(f"{path}: {exc}")
    if errors:
        raise OSError(f"could not remove cgroup(s): {'; '.join(errors)}")
