"""A worker process as a Ray actor: placed by the profile's resources, limited for real, warm between workers.

Ray's ``num_cpus`` and ``memory`` are logical: they decide placement, not what a
process may use.  So the actor, on its node, does what a forked worker does
(:mod:`.warm_process`): it moves itself into fresh cgroups for its profile's CPU
quota and memory limit where the OS permits (else the affinity fallback, or
nothing), sizes BLAS/OpenMP pools to the quota, and reports in every worker's
metrics which limits were enforced - so the trace says it.

The actor serves one logical worker per :meth:`WorkerActor.serve` call; between
calls it is an idle, warm process that its launcher reuses within keep-alive.
While it serves, a keeper thread does the parent's job of a forked worker: it
renews the logical worker's lease while the heartbeat beats (a node that dies
stops renewing, so the client re-runs the worker elsewhere), and ends the
process - after reporting why - when a task runs past its timeout or the
heartbeat stops.  Its host name carries the Ray node, so a trace says where
each worker ran.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from typing import Any

from executor import keys
from executor.heartbeat import Slot
from executor.limits import AppliedLimits, ResourceLimiter, apply_thread_limits
from executor.messages import decode_start

__all__ = ["WorkerActor", "actor_class", "node_host"]

_ACTOR_CLASS: Any = None


def node_host(node: str) -> str:
    """A worker's host as its trace records it: the machine and the Ray node (one machine may hold several)."""
    return f"{socket.gethostname()[:20]}/ray-{node[:8]}"


class WorkerActor:
    """One worker process on some Ray node; see the module docstring."""

    def __init__(self, url: str, launcher_id: str, secret: bytes, profile: str, cpus: float | None,
                 memory_mb: float | None, threads: int | None, limits: bool) -> None:
        from executor.launcher.warm_process import limits_info
        from executor.process import ProcessContext

        from executor.launcher.ray_cluster import node_id

        self.applied: AppliedLimits | None = None
        self.limiter: ResourceLimiter | None = None
        if limits and (cpus or memory_mb):
            self.limiter = ResourceLimiter()
            self.applied = self.limiter.create(cpus, memory_mb, profile)
            self.applied.join_self()
        info = limits_info(self.applied)
        if limits and cpus:
            n = int(threads or max(1, int(cpus)))
            info["threads"] = f"{apply_thread_limits(n)}:{n}"
        self.node = node_id()
        self.slot = Slot()
        self.slot.start_beating()
        self.ctx = ProcessContext(url, launcher_id, profile, info, secret, self.slot)
        self.ctx.handoff_to_idle = False   # no idle lists: the Ray launcher hands out every start itself
        self.ctx.host = node_host(self.node)
        self.ctx.holder = f"{launcher_id}:{self.ctx.pid}:{self.ctx.host}"

    def ready(self) -> tuple[str, str, int]:
        """(holder as the run's claims name it, Ray node id, pid): the actor is placed and set up."""
        return self.ctx.holder, self.node, self.ctx.pid

    def serve(self, run: str, blob: bytes, cold: bool) -> None:
        """Serve one logical worker (its authenticated start message) to its end."""
        from executor.worker import run_logical_worker

        msg = decode_start(self.ctx.sealer(run), blob)
        done = threading.Event()
        keeper = threading.Thread(target=self._keep, args=(msg, done), daemon=True, name="planlab-keeper")
        keeper.start()
        try:
            run_logical_worker(self.ctx, msg, cold)
        finally:
            done.set()
            keeper.join(timeout=5)

    # ------------------------------------------------------------------ the parent's job, done beside the worker
    def _keep(self, msg: dict[str, Any], done: threading.Event) -> None:
        """Renew the lease while the heartbeat beats; end the process on a timeout or a stopped heartbeat."""
        lease_s = float(msg.get("lease_s", 3.0))
        beat_timeout = float(msg.get("heartbeat_timeout_s", 10.0))
        k = keys.RunKeys(msg["run"])
        client = self.ctx.client
        while not done.wait(lease_s / 3):
            since_beat, past_deadline, task = self.slot.read()
            if past_deadline > 0:
                cause = f"task {task!r} ran past its timeout (ended by its Ray actor)"
            elif since_beat > beat_timeout:
                cause = f"its heartbeat stopped for {since_beat:.1f} s (ended by its Ray actor)"
            else:
                with contextlib.suppress(Exception):
                    client.pexpire(k.lease(msg["worker"]), int(lease_s * 1000))
                continue
            self._report_and_die(msg, task, cause)

    def _report_and_die(self, msg: dict[str, Any], task: str, cause: str) -> None:
        k = keys.RunKeys(msg["run"])
        with contextlib.suppress(Exception):
            pipe = self.ctx.client.pipeline(transaction=False)
            pipe.rpush(k.events, f"d|{msg['worker']}|{int(msg.get('gen', 0))}|{task}|worker process "
                                 f"{self.ctx.pid} on {self.ctx.host} {cause} (while it ran)")
            pipe.expire(k.events, 86400)
            pipe.execute()
        os._exit(1)   # its cgroups, named after this pid, are swept as stale (executor.limits.stale)


def actor_class() -> Any:
    """:class:`WorkerActor` as a Ray actor class (made on first use: Ray is imported lazily).

    Two calls may run at once on an actor (``ready`` while it serves); no restarts:
    a dead worker is the run's to re-run, as a new generation, elsewhere.
    """
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        from executor.launcher.ray_cluster import import_ray

        _ACTOR_CLASS = import_ray().remote(max_restarts=0, max_concurrency=2)(WorkerActor)
    return _ACTOR_CLASS
