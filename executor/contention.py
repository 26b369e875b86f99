"""How long a task waited for a core that other work held: the host's contention, measured per task.

A task timed on a busy host takes longer than alone: its thread sits runnable on a
run queue while other processes hold the cores.  The profile phase wants the time
*alone* (the cost model's law; the simulator's host model adds the sharing back),
so the worker reads that wait from the kernel around each task:

* ``/proc/thread-self/schedstat``: the thread's ``run_delay``, nanoseconds spent
  runnable but not running.  It also counts time throttled by a CPU quota (the
  throttled group's task stays queued: measured here, a 0.3 s loop under a 0.5-CPU
  quota showed 0.30 s of ``run_delay`` on an idle host), which is the profile's own
  limit, not contention, so
* the worker's CPU cgroup ``cpu.stat`` ``throttled_time`` (v1, ns) or
  ``throttled_usec`` (v2) is subtracted.

``cpu_wait_s = Δrun_delay - Δthrottled``, at least 0.  The main thread only: a
BLAS pool's other threads wait too, unmeasured.  The probe also reads the process's
CPU seconds (``exec_cpu_s``): a task on a quota below what it would use cannot be
faster alone than ``exec_cpu_s / cpus`` - on a busy host it is not throttled (it
never reaches its quota), so its whole wait counts as contention, though alone it
would have been throttled instead (a 0.5-CPU loop of 0.3 CPU-s at load 10: wall
0.76 s, wait 0.46 s, alone 0.6 s).  :func:`alone_seconds` combines them.  Reads use ``pread`` on files kept
open (a few microseconds each), and only when ``ExecutorSettings.measure_contention``
asks (the runner's profile phase): execution cells do not pay them.  Where the
kernel offers no ``schedstat`` (non-Linux, ``CONFIG_SCHEDSTATS`` off) there is no
probe and no column.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["ContentionProbe", "alone_seconds"]

_SCHEDSTAT = "/proc/thread-self/schedstat"


class ContentionProbe:
    """Cumulative seconds this thread waited for a core beyond its own CPU quota (see the module docstring)."""

    def __init__(self, schedstat_fd: int, cpu_stat_fd: int | None, throttle_unit_s: float) -> None:
        self._schedstat = schedstat_fd
        self._cpu_stat = cpu_stat_fd
        self._unit = throttle_unit_s

    @classmethod
    def open(cls) -> "ContentionProbe | None":
        """A probe for the calling thread (None where the kernel does not say)."""
        try:
            fd = os.open(_SCHEDSTAT, os.O_RDONLY)
            int(os.pread(fd, 128, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return None
        stat, unit = _own_cpu_stat()
        return cls(fd, stat, unit)

    def sample(self) -> tuple[float, float]:
        """(seconds waited for a core so far, CPU seconds of this process so far)."""
        return self.waited_s(), time.process_time()

    def since(self, before: tuple[float, float]) -> tuple[float, float]:
        """(seconds waited for a core, CPU seconds used) since ``before`` (a :meth:`sample`); the wait >= 0."""
        waited, cpu = self.sample()
        return max(0.0, waited - before[0]), max(0.0, cpu - before[1])

    def waited_s(self) -> float:
        """Run-queue delay minus quota throttling, in seconds, since the thread (and cgroup) began."""
        delay = int(os.pread(self._schedstat, 128, 0).split()[1]) * 1e-9
        return delay - self._throttled_s()

    def _throttled_s(self) -> float:
        if self._cpu_stat is None:
            return 0.0
        for line in os.pread(self._cpu_stat, 4096, 0).splitlines():
            key, _, value = line.partition(b" ")
            if key in (b"throttled_time", b"throttled_usec"):
                return int(value) * self._unit
        return 0.0

    def close(self) -> None:
        for fd in (self._schedstat, self._cpu_stat):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _own_cpu_stat() -> tuple[int | None, float]:
    """This process's CPU cgroup ``cpu.stat``, opened, and the unit of its throttled counter (None: no cgroup)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None, 0.0
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            candidates = [(Path("/sys/fs/cgroup/cpu") / path.lstrip("/") / "cpu.stat", 1e-9),
                          (Path("/sys/fs/cgroup/cpu,cpuacct") / path.lstrip("/") / "cpu.stat", 1e-9)]
            break
    else:
        v2 = next((line.split(":", 2)[2] for line in lines if line.startswith("0::")), None)
        if v2 is None:
            return None, 0.0
        candidates = [(Path("/sys/fs/cgroup") / v2.lstrip("/") / "cpu.stat", 1e-6)]
    for path, unit in candidates:
        try:
            return os.open(path, os.O_RDONLY), unit
        except OSError:
            continue
    return None, 0.0


def alone_seconds(exec_s: float, cpu_wait_s: float, exec_cpu_s: float, cpus: float) -> float:
    """A task's time alone on its profile: its time minus its wait for a core, but no less than its CPU work
    at the quota's rate."""
    return max(exec_s - cpu_wait_s, exec_cpu_s / cpus if cpus > 0 else 0.0)
