"""Pre-load in a worker process: a background thread fetches the next planned task's inputs while a task runs.

Part of :class:`executor.worker._LogicalWorker` (a mixin).  When the protocol
pre-loads (:meth:`planning.protocol.WorkerProtocol.preloads`), the worker starts,
just before it executes a task, one thread for the next task of its sequence.  The
thread has its OWN connection to the server (the worker's wire stays
single-threaded): it polls for each remote input (``EXISTS``, every :data:`POLL_S`)
and reads it as soon as it is stored (``GET``, or ``GETRANGE`` of a replay's share).
The bytes wait in the thread's own dictionary; when the worker gets to that task it
joins the thread and takes them (into ``prefetched``, which ``_fetch`` reads before
the server), and the task's row gets the thread's download start and end.  A worker
that re-runs after a death (recovery) does not pre-load.  The memory this holds is
measured on the trace (:func:`planning.protocol.optimizations.preload_memory`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from executor.replay import replay_bytes
from executor.switching import fast_switching

#: Seconds between two polls of the server for a next task's inputs that are not stored yet.
POLL_S = 0.002


class _Preload(threading.Thread):
    """One next task's inputs, fetched as soon as each is stored (its own connection, its own results)."""

    def __init__(self, client: redis.Redis, plan: list[tuple[str, str, int | None]], stop: threading.Event) -> None:
        super().__init__(daemon=True, name="planlab-preload")
        self.client, self.plan, self.stop = client, plan, stop
        self.data: dict[str, bytes] = {}
        self.start_s: float | None = None
        self.end_s: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with fast_switching():    # the task beside it would hold the GIL for 5 ms per chunk received
                self._fetch_all()
        except BaseException as exc:   # noqa: BLE001 - reported to the worker, which fetches as usual then
            self.error = exc

    def _fetch_all(self) -> None:
        left = list(self.plan)
        while left and not self.stop.is_set():
            here = [item for item, present in zip(left, self._present(left)) if present]
            if not here:
                time.sleep(POLL_S)
                continue
            if self.start_s is None:
                self.start_s = time.time()
            pipe = self.client.pipeline(transaction=False)
            for parent, key, n in here:
                if n is None:
                    pipe.get(key)
                else:
                    pipe.getrange(key, 0, n - 1)
            for (parent, _, _), value in zip(here, pipe.execute()):
                if value is not None:
                    self.data[parent] = value
            left = [item for item in left if item not in here]
        self.end_s = time.time()

    def _present(self, items: list[tuple[str, str, int | None]]) -> list[bool]:
        pipe = self.client.pipeline(transaction=False)
        for _, key, _ in items:
            pipe.exists(key)
        return [bool(x) for x in pipe.execute()]


class WorkerPreload:
    """The worker's side of pre-load (see the module docstring)."""

    _preload: _Preload | None = None
    _preload_task: str | None = None
    _preload_client: redis.Redis | None = None
    _preload_stop: threading.Event | None = None

    def _start_preload(self, task_id: str) -> None:
        """Before executing ``task_id``: start fetching the next planned task's remote inputs in the background."""
        if self.recovering or self.replaying or not self.protocol.preloads():
            return
        seq = self.protocol.sequence.get(self.worker, [])
        position = len(self.state.ran) + 1          # ``task_id`` is not in ``ran`` yet
        if position >= len(seq):
            return
        following = seq[position]
        decision = self.protocol.handle_inputs(following, self.worker, {*self.ran, task_id})
        plan = []
        for f in decision.fetch:
            coded = f.parent in self.spec.coded
            n = None if coded else replay_bytes(f.nbytes, self.settings.bytes_scale, self.settings.max_replay_bytes)
            if n == 0:
                continue
            plan.append((f.parent, self.keys.out(f.parent), n))
        if not plan:
            return
        if self._preload_client is None:     # the thread's own connection, kept for this logical worker
            pool = self.client.connection_pool        # (TCP or a unix socket, as the worker's own)
            self._preload_client = redis.Redis(connection_pool=redis.ConnectionPool(
                connection_class=pool.connection_class, **pool.connection_kwargs))
            self._preload_stop = threading.Event()
        self._preload, self._preload_task = _Preload(self._preload_client, plan, self._preload_stop), following
        self._preload.start()

    def _take_preload(self, task_id: str) -> tuple[float, float] | None:
        """When ``task_id`` was pre-loaded: wait for the thread, keep its bytes; its (download start, end)."""
        pre, self._preload = self._preload, None
        if pre is None or self._preload_task != task_id:
            return None
        pre.join()
        if pre.error is not None or pre.start_s is None or pre.end_s is None:
            return None     # the inputs are fetched as usual
        self.prefetched.update(pre.data)
        return pre.start_s, pre.end_s

    def _stop_preload(self) -> None:
        """The worker is done (or aborted): end the thread and close its connection."""
        if self._preload_stop is not None:
            self._preload_stop.set()
        if self._preload is not None:
            self._preload.join(timeout=1.0)
            self._preload = None
        if self._preload_client is not None:
            self._preload_client.close()
            self._preload_client = None
