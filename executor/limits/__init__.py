"""Real CPU and memory limits for worker processes, where the OS permits them.

A ``ResourceProfile`` promises a worker a fraction of a CPU and a memory size.
For planned-vs-real comparisons to mean anything, the executor must *enforce*
that promise, or say plainly that it did not.  What this machine measured
(``FACTS.md``):

* **CPU** — a cgroup CPU quota is real: 0.5 CPU slows a single-threaded loop
  ×1.9–2.0, with a 10 ms period so short tasks are throttled too
  (:mod:`executor.limits.cgroup_limits`).
* **Threads** — BLAS/OpenMP pools sized to the machine, not to the quota, spin
  and burn quota (×4.5 slower instead of ×4).  :func:`thread_env` sizes them to
  the quota (:mod:`executor.limits.threads`).
* **Memory** — a memory cgroup limit is an immediate OOM kill: the process
  dies by **SIGKILL (exit status −9)** the moment it exceeds the limit (there
  is no swap to spill into).  The executor reports such a death as
  "exceeded its memory limit", not as a crash.  The memory cgroup must be
  created *under this process's own memory cgroup* (``/proc/self/cgroup``),
  not at the hierarchy root (:mod:`executor.limits.detection`).
* **Fallbacks** — without cgroups, CPU is limited by pinning to whole CPUs
  (:mod:`executor.limits.affinity`).  Memory is then *not* enforced:
  ``RLIMIT_AS`` kills healthy numpy tasks and spares none that matter.

Every cgroup we create is named ``planlab-<owner pid>-<name>-<random>``
(:mod:`executor.limits.cgroup_dirs`) and is removed by :func:`release`;
:func:`cleanup_stale_cgroups` removes those whose owner died without releasing
them (:mod:`executor.limits.stale`).  A launcher holds a :class:`ResourceLimiter`
(:mod:`executor.limits.limiter`); one worker's limits are an
:class:`AppliedLimits` (:mod:`executor.limits.applied`).  A task that the
protocol runs under another profile than its worker's is limited to that
profile for its duration by :func:`task_profile_limits`
(:mod:`executor.limits.task_limits`).  A worker running a background transfer
beside its task weighs two jobs meanwhile (:mod:`executor.limits.cpu_weight`).

Typical use for a worker started with ``subprocess``::

    applied = create_limits(cpus=0.5, memory_mb=512, name="w3")
    proc = subprocess.Popen(cmd, env={**os.environ, **thread_env(0.5)},
                            preexec_fn=applied.join_self)   # limited from its first instruction
    ...
    release(applied)

or ``apply_limits(pid, ...)`` for a process that already runs (memory it
already holds is then charged to its old cgroup: attach early).
"""

from __future__ import annotations

from executor.limits.applied import (AppliedLimits, JoinedLimits, apply_limits, attach, create_limits, joined_limits,
                                     release)
from executor.limits.cgroup_dirs import PREFIX
from executor.limits.cgroup_limits import DEFAULT_PERIOD_US
from executor.limits.detection import CpuMode, LimitSupport, MemoryMode, own_cgroup_dirs, probe_limits
from executor.limits.limiter import ResourceLimiter
from executor.limits.stale import cleanup_stale_cgroups
from executor.limits.task_limits import task_profile_limits
from executor.limits.threads import THREAD_ENV_VARS, apply_thread_limits, thread_env, thread_limits

__all__ = [
    "AppliedLimits",
    "CpuMode",
    "JoinedLimits",
    "DEFAULT_PERIOD_US",
    "LimitSupport",
    "MemoryMode",
    "PREFIX",
    "ResourceLimiter",
    "THREAD_ENV_VARS",
    "apply_limits",
    "apply_thread_limits",
    "attach",
    "cleanup_stale_cgroups",
    "create_limits",
    "joined_limits",
    "own_cgroup_dirs",
    "probe_limits",
    "release",
    "task_profile_limits",
    "thread_env",
    "thread_limits",
]
