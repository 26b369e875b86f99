"""Execution on Ray: the executor's launcher with Ray actors as its worker processes.

:class:`RayExecutor` is an :class:`~executor.client.Executor` whose launcher is a
:class:`RayLauncher` - the local launcher's main loop (launch queues, control
messages, cancels; :mod:`.queues`) over a :class:`~.ray_pool.RayActorPool`
instead of forked processes - run in a thread of the client.  Everything else is
the executor as it is: the coordination server (embedded, or a URL every node can
reach), submission, the wait, re-runs of dead workers, the trace.

A logical worker becomes a Ray actor placed with its profile's ``num_cpus`` and
``memory`` (and the profile's custom resource where the cluster declares one), so
workers spread over the cluster's nodes; warm reuse is an idle actor within
keep-alive.  Each actor applies the real limits on its node where the OS permits
(:mod:`.ray_actor`), and the trace's workers say which (``cpu_enforced``,
``memory_enforced``) and where (``host``: the machine and the Ray node).

Run keys share one hash slot (``pl:{RUN}:...``, :mod:`executor.keys`), so a Redis
Cluster can hold them.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from executor.client import Executor
from executor.launcher.queues import Launcher
from executor.launcher.ray_cluster import connect
from executor.launcher.ray_pool import RayActorPool
from executor.limits import cleanup_stale_cgroups
from executor.settings import ExecutorSettings

__all__ = ["RayLauncher", "RayExecutor"]


class RayLauncher(Launcher):
    """A launcher whose workers are Ray actors (same queues, control messages and cancels as the local one)."""

    def __init__(self, url: str, secret: bytes, *, pool: str = "default", start_timeout_s: float = 30.0) -> None:
        super().__init__(url, secret, pool=pool)
        self.processes = RayActorPool(self.client, url, self.id, secret, start_timeout_s)  # type: ignore[assignment]
        self.host = f"{self.host} (Ray)"


class RayExecutor(Executor):
    """An executor whose worker processes are Ray actors across the cluster at ``address``.

    ``address``: a Ray cluster (``"auto"``, ``HOST:6379``; None: the Ray already
    initialised in this process, else a local one).  ``redis_url``: a server every
    node can reach; None starts the embedded one, reachable from this machine's
    nodes only (see README, "More than one machine").
    """

    def __init__(self, redis_url: str | None = None, settings: ExecutorSettings | None = None, *,
                 address: str | None = None, insecure: bool = False) -> None:
        super().__init__(redis_url, settings, local_launcher=False, secret=secrets.token_bytes(32),
                         insecure=insecure)
        self.address = address
        self._ray_launcher: RayLauncher | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self) -> "RayExecutor":
        if self._ray_launcher is not None:
            return self
        connect(self.address)
        super().open()
        try:
            launcher = RayLauncher(self.url, self.secret, pool=self.settings.pool,
                                   start_timeout_s=self.settings.start_timeout_s)
            self._stop.clear()
            self._thread = threading.Thread(target=launcher.run, args=(self._stop,), daemon=True,
                                            name="planlab-ray-launcher")
            self._thread.start()
        except BaseException:
            super().close()
            raise
        self._ray_launcher, self.launcher_id = launcher, launcher.id   # runs send it 'serve' (no pool poll)
        return self

    def close(self) -> None:
        """Stop the Ray launcher (its actors go with it), then the server."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=15)
            self._thread = None
            self._ray_launcher = None
            self.launcher_id = None
            cleanup_stale_cgroups()   # killed actors' cgroups on this machine (their pids are in the names)
        super().close()

    def local_launcher_alive(self) -> bool | None:
        """The Ray launcher thread stands for the local launcher: a run fails at once if it died."""
        return None if self._thread is None else self._thread.is_alive()

    def actors(self) -> list[Any]:
        """The launcher's worker actors now (for tests and diagnostics)."""
        return [] if self._ray_launcher is None else list(self._ray_launcher.processes.actors)
