"""Probe once, limit many workers, release them all on close (what a launcher holds)."""

from __future__ import annotations

from executor.limits.applied import AppliedLimits, create_limits, release
from executor.limits.cgroup_limits import DEFAULT_PERIOD_US
from executor.limits.detection import LimitSupport, probe_limits

__all__ = ["ResourceLimiter"]


class ResourceLimiter:
    """Probe once, limit many workers, release them all on close.

    Keeps the probe result (it costs a mkdir), rotates affinity-fallback CPUs
    between workers, and remembers every cgroup it made so that ``close()``
    (or leaving the ``with`` block) removes them even when a run fails.
    """

    def __init__(self, support: LimitSupport | None = None, *, period_us: int = DEFAULT_PERIOD_US) -> None:
        self.support = support or probe_limits()
        self.period_us = period_us
        self._live: dict[int, AppliedLimits] = {}
        self._next_cpu = 0

    def create(self, cpus: float | None, memory_mb: float | None, name: str) -> AppliedLimits:
        """New (empty) limits for one worker; the worker's process joins them (``join_self``)."""
        applied = create_limits(
            cpus,
            memory_mb,
            name,
            support=self.support,
            period_us=self.period_us,
            cpu_offset=self._next_cpu,
        )
        if applied.affinity:
            self._next_cpu += len(applied.affinity)
        self._live[id(applied)] = applied
        return applied

    def release(self, applied: AppliedLimits, *, kill: bool = False) -> None:
        self._live.pop(id(applied), None)
        release(applied, kill=kill)

    def close(self, *, kill: bool = False) -> None:
        """Release every limit still held (all of them are tried; the errors are raised together)."""
        errors: list[str] = []
        for applied in list(self._live.values()):
            try:
                self.release(applied, kill=kill)
            except OSError as exc:
                errors.append(str(exc))
        if errors:
            raise OSError("; ".join(errors))

    def __enter__(self) -> ResourceLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
