"""The host's cores, shared by the CPU work that runs at once (a max-min fair fluid model).

planlab's executor runs every worker process on one host of ``cores`` CPUs.
Executions and worker start-ups are CPU work: a job of ``work`` CPU-seconds may
use at most ``cap`` cores (its profile's CPU quota, or the threads it really runs
on), and the host divides its cores among the jobs running at once by max-min
fairness (water-filling), as SimGrid's fluid model does: every job gets the
smaller of its cap and an equal share of what the capped jobs leave - in
proportion to its weight, 1 for every job but the niced thread of a lazy upload
(:data:`BACKGROUND_UPLOAD_NICE`), which weighs what Linux gives a niced thread.  A job alone
on a large enough host runs at its cap, so a task measured alone on its profile
takes the same time here; two CPU-bound single-core tasks on a 1-core host each
take twice as long.  Other work on the host (``background`` cores' worth of
CPU-bound processes outside the run, e.g. the load of other users) takes its fair
share like any job and never ends.

Cost: every arrival and completion re-divides the cores over the active jobs,
O(active log active); the jobs' remaining work is brought up to date lazily.  One
wake-up sits in SimPy's queue at a time (the earliest completion as now
predicted); a newer prediction supersedes it by a version number.

A cluster (``Platform.nodes``) is one :class:`SharedCpu` per node
(:class:`NodeCpus`): a worker is placed on a node when it starts, by the rule of
:mod:`planning.schedule.nodes`, and its start-up and executions share that node's
cores only.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

__all__ = ["SharedCpu", "NodeCpus", "fair_rates", "BACKGROUND_FETCH_CPU_S_PER_BYTE",
           "BACKGROUND_UPLOAD_CPU_S_PER_BYTE", "BACKGROUND_UPLOAD_NICE", "BACKGROUND_UPLOAD_THREAD_SHARE",
           "nice_weight"]

#: CPU-seconds per byte that a worker's transfer takes from the host's cores beside the executions: the worker's
#: transfer thread and the server, both on the host.  A background transfer runs beside the worker's own task; a
#: foreground one's CPU is inside the worker's link time but still beside the other workers' tasks, so both are
#: charged (``simulator.transfers``; issue 17: a 32 MB upload to a new key, 7 ms of the client's CPU and 22 ms of
#: the server's in 56 ms at load 6).  Measured on this 2-CPU host with the executor's one-call transfers (``executor.wire.blocking``), 7 x
#: 32 MB, medians of 10 (load 12: indicative): a fetch (pre-load) took 70 ms of the server's CPU and 63 ms of the
#: receiving thread's, ~0.6 ns per byte; an upload (delayed I/O) 40 + 39 ms, ~0.35 ns per byte.
#: The simulator reads them split by side, as ``Platform`` fields (``fetch_server_s_per_byte`` 0.31 + ``fetch_thread_``
#: 0.29 ns, ``upload_server_`` and ``upload_thread_`` 0.175 each; their defaults): :mod:`simulator.quota`.
BACKGROUND_FETCH_CPU_S_PER_BYTE = 6e-10
BACKGROUND_UPLOAD_CPU_S_PER_BYTE = 3.5e-10
#: Of a lazy upload's CPU, the worker's uploader thread's share (39 of the 79 ms above; the rest is the server's)
BACKGROUND_UPLOAD_THREAD_SHARE = 0.5
#: The niceness of that thread (the executor's ``executor.switching.BACKGROUND_NICE``): it yields to the executions
BACKGROUND_UPLOAD_NICE = 10


def nice_weight(nice: int) -> float:
    """A thread's CPU weight at niceness ``nice`` against one at 0: Linux CFS's 1.25 per step (nice 10: 0.107)."""
    return 1.25 ** -nice


def fair_rates(caps: list[float], cores: float, weights: list[float] | None = None) -> list[float]:
    """Max-min fair rates of jobs with ``caps`` on ``cores``: each gets min(cap, weight x the level that fills
    the host) (``weights``: 1 each when None).

    >>> fair_rates([0.5, 1.0, 1.0], 2.0)
    [0.5, 0.75, 0.75]
    >>> fair_rates([1.0, 1.0, 1.0], 2.0, [1.0, 1.0, 0.5])
    [0.8, 0.8, 0.4]
    """
    if sum(caps) <= cores:
        return list(caps)
    if weights is None:
        order = sorted(range(len(caps)), key=caps.__getitem__)
        weights = [1.0] * len(caps)
        count = float(len(caps))
    else:
        order = sorted(range(len(caps)), key=lambda k: caps[k] / weights[k])
        count = float(sum(weights))
    rates = [0.0] * len(caps)
    left = cores
    for position, k in enumerate(order):
        share = left / count
        if caps[k] <= share * weights[k]:
            rates[k] = caps[k]
            left -= caps[k]
            count -= weights[k]
            continue
        for rest in order[position:]:
            rates[rest] = share * weights[rest]
        break
    return rates


class _Job:
    __slots__ = ("left", "cap", "rate", "waiter", "weight")

    def __init__(self, work: float, cap: float, waiter: Any, weight: float = 1.0) -> None:
        self.left, self.cap, self.rate, self.waiter, self.weight = work, cap, cap, waiter, weight


class _Tick:
    """The CPU's wake-up in SimPy's queue; stale once a newer prediction was made."""

    __slots__ = ("cpu", "version", "value")

    def __init__(self, cpu: "SharedCpu", version: int) -> None:
        self.cpu, self.version, self.value = cpu, version, None

    def resume(self) -> None:
        if self.version == self.cpu._version:
            self.cpu._complete()


class SharedCpu:
    """``cores`` CPUs divided max-min fairly among the jobs running at once; see the module docstring."""

    def __init__(self, env: simpy.Environment, cores: float, background: float = 0.0) -> None:
        if not cores > 0:
            raise ValueError(f"a host needs cores > 0, got {cores!r}")
        self.env = env
        self.cores = float(cores)
        #: other work on the host, as single-core jobs that never end (their caps sum to ``background``)
        self._background = [1.0] * int(background) + ([background - int(background)] if background % 1 else [])
        self._jobs: list[_Job] = []
        self._updated = 0.0
        self._version = 0
        self._weighted = 0      # jobs running whose weight is not 1

    def cores_for(self, waiter: Any) -> float:
        """The cores ``waiter``'s work shares (one host: all of them)."""
        return self.cores

    def run(self, work: float, cap: float, waiter: Any, weight: float = 1.0) -> None:
        """Start ``work`` CPU-seconds at up to ``cap`` cores now (its share in proportion to ``weight``);
        ``waiter`` is resumed with its end time."""
        now = self.env._now
        if not work > 0:
            waiter.value = now
            heappush(self.env._queue, (now, NORMAL, next(self.env._eid), waiter))
            return
        if not cap > 0:
            raise ValueError(f"a CPU job needs cap > 0, got {cap!r}")
        self._advance(now)
        self._jobs.append(_Job(float(work), float(cap), waiter, float(weight)))
        self._weighted += weight != 1.0
        self._predict(now)

    def running(self, waiter: Any) -> tuple[float, float]:
        """``waiter``'s running job: (its cap, its CPU-seconds left); (0, 0) when it runs none."""
        for job in self._jobs:
            if job.waiter is waiter:
                self._advance(self.env._now)
                return job.cap, max(job.left, 0.0)
        return 0.0, 0.0

    def extend(self, waiter: Any, work: float) -> None:
        """Add ``work`` CPU-seconds to ``waiter``'s running job (a thread of its process that has no room beside it
        in its quota: :mod:`simulator.quota`); nothing when it runs none."""
        for job in self._jobs:
            if job.waiter is waiter:
                now = self.env._now
                self._advance(now)
                job.left += work
                self._predict(now)
                return

    # ------------------------------------------------------------------ internals
    def _advance(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            for job in self._jobs:
                job.left -= job.rate * elapsed
        self._updated = now

    def _predict(self, now: float) -> None:
        """Re-divide the cores and put one wake-up at the earliest completion."""
        self._version += 1
        jobs = self._jobs
        if not jobs:
            return
        weights = [j.weight for j in jobs] + [1.0] * len(self._background) if self._weighted else None
        for job, rate in zip(jobs, fair_rates([j.cap for j in jobs] + self._background, self.cores, weights)):
            job.rate = rate
        soonest = min(max(job.left, 0.0) / job.rate for job in jobs)
        heappush(self.env._queue, (now + soonest, NORMAL, next(self.env._eid), _Tick(self, self._version)))

    def _complete(self) -> None:
        now = self.env._now
        self._advance(now)
        # the jobs whose remaining time is (to rounding) zero are done now
        tolerance = 1e-9 * max(1.0, now)
        finished = [job for job in self._jobs if job.left <= tolerance * job.rate]
        if not finished:   # rounding left the earliest a hair short: finish it
            finished = [min(self._jobs, key=lambda job: job.left / job.rate)]
        self._jobs = [job for job in self._jobs if job not in finished]
        self._weighted -= sum(job.weight != 1.0 for job in finished)
        self._predict(now)
        for job in finished:
            job.waiter.value = now
            job.waiter.resume()



class NodeCpus:
    """A cluster's nodes, each a :class:`SharedCpu`; a worker's CPU work runs on the node it was placed on.

    The placement rule is :class:`planning.schedule.nodes.NodePlacer`'s (the Ray
    launcher pins its actors by the same rule).  A worker is placed when it asks to
    start (:meth:`place`, keyed by its coroutine, which then waits on that node) and
    frees the node's CPUs and memory when it stops (:meth:`release`).  Work of a
    waiter placed nowhere (the launcher) runs on the first node.  Other work on the
    host (``background`` cores in all) is spread over the nodes by their cores.
    """

    def __init__(self, env: simpy.Environment, nodes: tuple, background: float = 0.0) -> None:
        from planning.schedule.nodes import NodePlacer

        total = sum(n.cores for n in nodes)
        self.nodes = nodes
        self.cpus = [SharedCpu(env, n.cores, background * n.cores / total) for n in nodes]
        self.placer = NodePlacer(nodes)
        self.node_of: dict[Any, int] = {}
        #: the node of each logical worker that started (by name), kept after it stops (the trace says where)
        self.worker_node: dict[str, int] = {}

    @property
    def cores(self) -> float:
        return float(sum(cpu.cores for cpu in self.cpus))

    def place(self, worker: str, profile: str, cpus: float, memory_mb: float, waiter: Any) -> int:
        """Place a starting worker by the rule; its CPU work (as ``waiter``) runs on that node from now on."""
        k = self.placer.place(profile, cpus, memory_mb)
        self.node_of[waiter] = k
        self.worker_node[worker] = k
        return k

    def release(self, worker: str, cpus: float, memory_mb: float) -> None:
        """Worker ``worker`` stopped: its node's CPUs and memory are free for the next placement."""
        self.placer.release(self.worker_node[worker], cpus, memory_mb)

    def cores_for(self, waiter: Any) -> float:
        """The cores of the node ``waiter`` runs on."""
        return self.cpus[self.node_of.get(waiter, 0)].cores

    def run(self, work: float, cap: float, waiter: Any, weight: float = 1.0) -> None:
        """:meth:`SharedCpu.run` on ``waiter``'s node."""
        self.cpus[self.node_of.get(waiter, 0)].run(work, cap, waiter, weight)

    def running(self, waiter: Any) -> tuple[float, float]:
        """:meth:`SharedCpu.running` on ``waiter``'s node."""
        return self.cpus[self.node_of.get(waiter, 0)].running(waiter)

    def extend(self, waiter: Any, work: float) -> None:
        """:meth:`SharedCpu.extend` on ``waiter``'s node."""
        self.cpus[self.node_of.get(waiter, 0)].extend(waiter, work)
