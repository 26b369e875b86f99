"""How the real executor behaves: one frozen value, documented defaults.

Everything a researcher may want to vary between runs of the executor lives
here, so an experiment records one object (``dataclasses.asdict``) and two runs
with equal settings behave alike.  Invalid values raise
:class:`planning.errors.ExecutionError` at construction, naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planning.errors import ExecutionError

__all__ = ["ExecutorSettings", "MetricsPolicy", "parse_metrics_policy", "MAX_PROCESSES", "MAX_SECONDS"]

#: Upper bound of ``max_processes``: worker processes one launcher may run at once.
MAX_PROCESSES = 4096
#: Upper bound of every duration setting (one year): larger values are typos.
MAX_SECONDS = 366 * 86400.0


@dataclass(frozen=True)
class MetricsPolicy:
    """When a worker uploads its queued metric rows.

    ``end``: once, when the logical worker stops (fewest round trips);
    ``task``: with every task completion (rides in the completion's round trip);
    ``seconds``: when ``value`` seconds passed since the last upload;
    ``records``: when ``value`` rows are queued.  Every policy also uploads what
    is left when the worker stops, so no row is lost.
    """

    kind: str
    value: float = 0.0

    def due(self, queued: int, since_last_s: float) -> bool:
        if queued == 0:
            return False
        if self.kind == "task":
            return True
        if self.kind == "records":
            return queued >= self.value
        if self.kind == "seconds":
            return since_last_s >= self.value
        return False

    def __str__(self) -> str:
        return self.kind if self.kind in ("end", "task") else f"{self.kind}:{self.value:g}"


def parse_metrics_policy(text: str | MetricsPolicy) -> MetricsPolicy:
    """``end``, ``task``, ``seconds:N`` or ``records:N`` -> :class:`MetricsPolicy`."""
    if isinstance(text, MetricsPolicy):
        return text
    kind, _, raw = str(text).partition(":")
    fix = "use end, task, seconds:N (N > 0) or records:N (N >= 1)"
    if kind in ("end", "task") and not raw:
        return MetricsPolicy(kind)
    if kind in ("seconds", "records") and raw:
        try:
            value = float(raw)
        except ValueError:
            raise ExecutionError(f"metrics upload policy {text!r} has a non-numeric N", fix) from None
        if value > 0 and math.isfinite(value) and (kind == "seconds" or value >= 1):
            return MetricsPolicy(kind, value)
    raise ExecutionError(f"unknown metrics upload policy {text!r}", fix)


@dataclass(frozen=True)
class ExecutorSettings:
    """Knobs of the real executor.

    ``scale``
        Replay tasks (no code, e.g. WfFormat) burn CPU for ``runtime_s * scale`` seconds.
    ``bytes_scale`` / ``max_replay_bytes``
        Replay outputs are ``edge bytes * bytes_scale`` bytes, capped at
        ``max_replay_bytes`` (recorded workflows move gigabytes; a laptop run should not).
    ``keep_alive_s``
        An idle worker process stays warm this long; a new logical worker of the same
        profile within the window reuses it (a warm start), otherwise a new process is
        forked (a cold start).
    ``metrics``
        Upload policy, see :class:`MetricsPolicy` (``end|task|seconds:N|records:N``).
    ``retries`` / ``retry_backoff_s`` / ``retry_on``
        A task that raises an exception the user marked as *transient* is re-run up to
        ``retries`` more times, waiting ``retry_backoff_s * 2**k`` before attempt ``k + 1``.
        Transient: :class:`executor.TransientError` and its subclasses, and any exception
        whose class (or a base class) is named in ``retry_on`` (``"ConnectionError"`` or
        ``"module.Class"``).  Any other exception is deterministic and fails the run at once.
    ``lease_s``
        A running logical worker holds a lease of this length, renewed by its launcher every
        ``lease_s / 3`` while the worker's own heartbeat is fresh; when it expires (a lost
        launcher or host) the worker is treated as dead - unless the local launcher that
        holds it still runs (a loaded host starved its renewals): then the run waits
        ``heartbeat_timeout_s + lease_s`` for that launcher's own report before starting
        the worker again.  A worker process that dies
        (SIGKILL, OOM, a timeout) is reported at once by its launcher.
    ``max_task_kills``
        A dead worker's unfinished tasks are re-run on a new worker (what it stored is
        reused, counters are never decremented twice); when the same task has killed its
        worker more than this many times the run fails, naming the task and the cause.
    ``task_timeout_s`` / ``task_timeout_factor`` / ``task_timeout_min_s``
        A task running longer than its timeout has its worker killed (and counts as a kill
        of that task).  A plan's per-task ``annotations["timeout_s"]`` come first; then
        ``task_timeout_s > 0`` gives every task that timeout; 0 (default) derives each
        task's from the plan: ``max(task_timeout_min_s, factor x the task's planned
        execution time)`` (replay tasks: times ``scale``).
    ``heartbeat_timeout_s``
        A worker process whose heartbeat thread has not beaten for this long (stopped,
        frozen) is killed by its launcher and counted as dead.
    ``start_timeout_s``
        A start (first or re-run) that no process claimed and no launcher acknowledged
        within this long is issued again when it was lost, or fails the run when it still
        waits in the launch queue and no launcher took any start meanwhile (a start a live
        launcher acknowledged is waited for: :mod:`executor.run.first_starts`).
    ``key_ttl_s``
        Every key of a run expires this long after its last write, so a killed client or
        launcher leaves nothing behind for good (a run must finish within it).
    ``keep_keys``
        Leave the run's intermediate keys on the server (debugging).  Metrics are always kept.
    ``metrics_ttl_s``
        The kept metrics list expires after this many seconds (0: never).
    ``inline_threshold_bytes``
        A worker's sub-DAG (its tasks' code and arguments) travels inside its start
        invocation when it pickles smaller than this; otherwise it is stored once.
    ``inline_output_bytes``
        A stored output up to this size also rides inside the notification or start
        invocation the completion sends, saving the child a fetch round trip.
    ``constant_threshold_bytes``
        Task arguments that pickle larger than this are uploaded once, by content hash,
        and shared by every task and worker that uses them.
    ``limits``
        Enforce each profile's CPU quota and memory limit (cgroups where permitted).
    ``max_processes``
        Refuse a static plan needing more concurrent worker processes than this
        (each logical worker of a static plan may wait for notifications, so fewer
        processes than workers could deadlock; the cap is a safety net, not a pool size).
    ``run_timeout_s``
        Fail a run that has not finished after this long (0: no limit).
    ``pool``
        Name of the launch queue; ``planlab agent --pool`` launchers serve the same name.
    ``threads``
        BLAS/OpenMP pool size of a worker: ``"quota"`` = its profile's CPUs (floored, at
        least 1); ``"fair"`` (default) = the same, but never more than the CPUs it can
        really get when the plan runs more CPUs at once than the host has (its share of
        ``os.cpu_count()`` at the plan's peak of concurrently planned CPUs).  Spinning
        BLAS threads on an oversubscribed host measured x30 slower here (five 2-CPU
        workers on 2 cores: 7 s per task with 2 threads each, 0.24 s with 1).
    ``measure_contention``
        Record per task how long it waited for a core that other work held, and the CPU
        it used (trace columns ``cpu_wait_s``, ``exec_cpu_s``; :mod:`executor.contention`),
        so its time alone can be told from a busy host's.  A few microseconds of file
        reads per task: off by default, on in the runner's profile phase.
    ``handoff_to_idle``
        A completion that starts another worker hands the start straight to an idle
        warm process of the right profile on its own launcher (one wake-up), instead of
        the launch queue, whose launcher then hands it on (two); :mod:`executor.scripts`.
        Off: every start goes through the launch queue (for comparison).
    ``spin_wait_s``
        A worker whose next task is not ready polls for its notification (and a process
        just handed a start, for its first round trip's reply) this long before it
        sleeps in the kernel (:meth:`executor.wire.Wire.spin_for_reply`): a
        notification that comes soon is taken without a scheduler wake-up (~0.1 ms on an
        idle host, the cost of every hop between two workers).  At most this much CPU per
        wait, yielded to any other runnable process, and only while other work leaves the
        host a CPU idle (:func:`executor.worker.spin_budget`); 0: never.
    ``direct_notes``
        A completion also sends its notification straight to the notified worker's process
        when it runs on this host (:mod:`executor.direct_notes`), which may run the task
        before the server has answered its pop - committing only once it has.  Only while
        the workers spin (``spin_wait_s``, a host with an idle CPU:
        :func:`executor.worker.takes_direct_notes`).  Off by default until measured on a
        quiet host (``benchmarks/bench_executor.py`` records the alternating chain with
        them beside): at load 10-16 no interleaved comparison showed a win.
    """

    scale: float = 1.0
    bytes_scale: float = 1.0
    max_replay_bytes: int = 64 * 2**20
    keep_alive_s: float = 30.0
    metrics: str = "end"
    retries: int = 2
    retry_backoff_s: float = 0.05
    retry_on: tuple[str, ...] = ()
    lease_s: float = 3.0
    max_task_kills: int = 2
    task_timeout_s: float = 0.0
    task_timeout_factor: float = 10.0
    task_timeout_min_s: float = 60.0
    heartbeat_timeout_s: float = 10.0
    start_timeout_s: float = 30.0
    key_ttl_s: float = 86400.0
    keep_keys: bool = False
    metrics_ttl_s: float = 7 * 86400.0
    inline_threshold_bytes: int = 64 * 1024
    inline_output_bytes: int = 4096
    constant_threshold_bytes: int = 256 * 1024
    limits: bool = True
    max_processes: int = 512
    run_timeout_s: float = 0.0
    pool: str = "default"
    threads: str = "fair"
    measure_contention: bool = False
    handoff_to_idle: bool = True
    spin_wait_s: float = 0.0005
    direct_notes: bool = False

    def __post_init__(self) -> None:
        def bad(field: str, rule: str) -> ExecutionError:
            return ExecutionError(f"ExecutorSettings.{field}={getattr(self, field)!r} is invalid",
                                  f"{field} must be {rule}")

        if isinstance(self.retry_on, str):
            object.__setattr__(self, "retry_on", (self.retry_on,))
        if not isinstance(self.retry_on, (tuple, list)) or not all(
                isinstance(n, str) and n.replace(".", "").replace("_", "").isalnum() for n in self.retry_on):
            raise bad("retry_on", "a list of exception class names, e.g. ['ConnectionError', 'mylib.Busy']")
        object.__setattr__(self, "retry_on", tuple(self.retry_on))
        if self.threads not in ("fair", "quota"):
            raise bad("threads", "'fair' or 'quota'")
        for name in ("keep_keys", "limits", "measure_contention", "handoff_to_idle", "direct_notes"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false")
        for name in ("scale", "bytes_scale", "keep_alive_s", "retry_backoff_s", "metrics_ttl_s", "run_timeout_s",
                     "task_timeout_s", "task_timeout_factor", "task_timeout_min_s",
                     "spin_wait_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not 0 <= value <= MAX_SECONDS:
                raise bad(name, f"a finite number between 0 and {MAX_SECONDS:g}")
        for name, low in (("lease_s", 0.1), ("heartbeat_timeout_s", 1.0), ("start_timeout_s", 1.0), ("key_ttl_s", 60.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= MAX_SECONDS:
                raise bad(name, f"a number of seconds between {low:g} and {MAX_SECONDS:g}")
        for name, minimum, maximum in (("retries", 0, 100), ("max_replay_bytes", 0, 2**40),
                                       ("inline_threshold_bytes", 0, 2**30), ("constant_threshold_bytes", 1, 2**40),
                                       ("inline_output_bytes", 0, 2**30), ("max_processes", 1, MAX_PROCESSES),
                                       ("max_task_kills", 0, 100)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
                raise bad(name, f"an integer between {minimum} and {maximum}")
        if not isinstance(self.pool, str):
            raise bad("pool", "a name")
        if not self.pool or any(c in self.pool for c in " {}:"):
            raise bad("pool", "a non-empty name without spaces, braces or colons")
        parse_metrics_policy(self.metrics)

    @property
    def metrics_policy(self) -> MetricsPolicy:
        return parse_metrics_policy(self.metrics)
