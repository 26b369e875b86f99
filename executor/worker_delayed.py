"""Delayed I/O in a worker process: a lazy output's upload and commit run on a background thread.

Part of :class:`executor.worker._LogicalWorker` (a mixin).  When the protocol uploads
an output lazily (:meth:`planning.protocol.WorkerProtocol.lazy_upload`), the worker
hands the whole completion - the output's ``SET`` and the atomic commit script
(:mod:`executor.scripts`), so a worker that dies meanwhile has committed the task
entirely or not at all - to one uploader thread with its OWN connection (the
worker's wire stays single-threaded) - with a lower CPU priority when the plan
leaves its uploads room to be slow (it yields the cores to the executions:
``lazy_upload_yields``, :func:`executor.switching.yield_to_running_work`) - and moves on at once:

* a child planned on this worker reads the output from memory, so this task counts
  for it at once: with one parent it is ready (known locally); with several, one
  small script (:data:`LOCAL_COUNTERS_LUA`, one round trip on the worker's wire)
  decrements its counter now - and marks that it did, so a re-run of this task after
  a death leaves that counter out of its commit - and says whether it is ready (else
  its last parent's commit notifies this worker, as usual);
* a child on another worker is invoked by the commit, after the output is stored.

The schedule and the simulator time the same rule (:mod:`planning.schedule.overlap`).
Commits are sent in the order the tasks ended; the worker waits for the last one
before it reports its end, so it lives until its last upload.  A re-run after a
death uploads eagerly.  The task's row (``upload_end``, ``done``) is completed by
the uploader and queued with the others once the commit is answered.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import redis

from executor.messages import encode_note
from executor.switching import fast_switching, yield_to_running_work
from executor.wire import Wire
from planning.protocol import WorkerProtocol


#: KEYS: deps hash, its marks hash; ARGV: ttl_ms, task, children...: each child's counter less one (the ready
#: ones returned), and the mark ``task>child`` that this task's commit must leave it out
LOCAL_COUNTERS_LUA = """
local ready = {}
for i = 3, #ARGV do
  local c = ARGV[i]
  redis.call('HSET', KEYS[2], ARGV[2] .. '>' .. c, 1)
  if redis.call('HINCRBY', KEYS[1], c, -1) <= 0 then
    redis.call('HDEL', KEYS[1], c)
    ready[#ready + 1] = c
  end
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[1]))
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1])) end
return ready
"""


def counted_marks(keys: Any) -> str:
    """The hash of ``task>child`` marks: counters a lazy task's worker decremented ahead of its commit."""
    return f"{keys.deps}:ahead"


class _Uploader(threading.Thread):
    """Sends queued completions in order on its own connection; ``finished`` gets each done row."""

    def __init__(self, owner: Any, client: redis.Redis) -> None:
        super().__init__(daemon=True, name="planlab-delayed-io")
        self.owner, self.client, self.wire = owner, client, Wire(client)
        self.wire.whole_transfers = True     # an output sent in one blocking call: the GIL back once, not per chunk
        self.jobs: queue.Queue = queue.Queue()
        self.finished: queue.SimpleQueue = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.fenced = False
        #: whether this thread yields the CPU to the executions (:func:`executor.switching.yield_to_running_work`)
        self.yields = False

    def run(self) -> None:
        # the plan leaves room for this worker's uploads to be slow: the running tasks go first
        self.yields = bool(self.owner.protocol.lazy_upload_yields(self.owner.worker)) and yield_to_running_work()
        # the short switch interval for the thread's life, its waits for a job included: waiting, it does not ask
        # for the GIL (the task beside it runs as under the usual interval); handed a job, it gets the GIL within
        # TRANSFER_SWITCH_S, not the usual 5 ms while the worker's next task holds it (executor.switching);
        # sending, the task would hold the GIL 5 ms per chunk sent
        with fast_switching():
            self._serve()

    def _serve(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                if self.error is None and not self.fenced:
                    self._send(*job)
            except BaseException as exc:   # noqa: BLE001 - the main loop re-raises it
                self.error = exc
            finally:
                self.jobs.task_done()

    def _send(self, task_id: str, cmds: list, row: dict[str, Any], multi: bool, data: Any) -> None:
        owner = self.owner
        replies = self.wire.call(cmds)
        end = time.time()
        reply = replies[-1]
        if reply[0] != 1:             # another process holds this logical worker now
            self.fenced = True
            return
        row["upload_end"] = row["done"] = end
        if multi:
            ready = [c.decode() for c in reply[1:]]
            decided = owner.protocol.handle_downstream(task_id, owner.worker, ready)
            ops: list = []
            owner._invocation_ops(ops, decided.invocations, end, task_id, data)
            for c in decided.run_here:    # this worker's own: a note in its inbox, found by its blocking pop
                ops += ("P", owner.keys.inbox(owner.worker), encode_note(owner.sealer, c, end, None, None))
            pipe = [cmd for k in range(0, len(ops), 3)
                    for cmd in (("RPUSH", ops[k + 1], ops[k + 2]), ("PEXPIRE", ops[k + 1], owner.ttl_ms))]
            if pipe:
                self.wire.call(pipe)
        if not owner.protocol.children(task_id) and owner.protocol.removes_leftovers():
            owner._remove_leftovers(self.client)
        self.finished.put(row)


class WorkerDelayedIO:
    """The worker's side of delayed I/O (see the module docstring)."""

    _uploader: _Uploader | None = None

    def _uploads_lazily(self, task_id: str) -> bool:
        return not (self.recovering or self.replaying) and self.protocol.lazy_upload(task_id, self.worker)

    def _commit_lazily(self, task_id: str, data: Any, row: dict[str, Any], ops: list) -> Any:
        """Queue this completion on the uploader; decide the children ready at once (see the module docstring)."""
        children = self.protocol.children(task_id)
        worker_of = self.protocol.worker_of
        multi = [c for c in children if self.spec.n_parents[c] > 1 and worker_of.get(c) != self.worker]
        mine = [c for c in children if self.spec.n_parents[c] > 1 and worker_of.get(c) == self.worker]
        ready = [c for c in children if self.spec.n_parents[c] == 1]
        if mine:       # this worker's own children with several parents: their counters now
            ready += [c.decode() for c in self.wire.call([("EVAL", LOCAL_COUNTERS_LUA, 2, self.keys.deps,
                                                             counted_marks(self.keys), self.ttl_ms, task_id,
                                                             *mine)])[0]]
        k = 0
        while k < len(ops) and ops[k] in ("D", "X"):   # its reads (at the head): deleted in place, in this commit
            ops[k] = "X"
            k += 5
        cmds = self._store_commands(task_id, data, ops)
        self.protocol.task_done(self.state, task_id)
        self.ran.add(task_id)
        decided = self.protocol.handle_downstream(task_id, self.worker, ready)
        # the ops go to the commit script: a start may be handed straight to an idle process, as an eager commit's
        self._invocation_ops(ops, decided.invocations, row["exec_end"], task_id, data, handoff=True)
        event = f"s|{task_id}" if not children else ""
        cmds.append(self.ctx.scripts.commit(self.keys, task_id, self.worker, self.ctx.holder, self.ttl_ms, event,
                                            b"", multi, ops))
        if self._uploader is None:
            pool = self.client.connection_pool         # (TCP or a unix socket, as the worker's own)
            client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class,
                                                                      **pool.connection_kwargs))
            self._uploader = _Uploader(self, client)
            self._uploader.start()
        self._check_uploader()
        self._uploader.jobs.put((task_id, cmds, row, bool(multi), data))
        self.protocol.after_downstream(self.state, decided)
        return decided

    def _counted_ahead(self, task_id: str, multi: list[str]) -> list[str]:
        """A re-run's commit leaves out the counters its dead predecessor decremented ahead (delayed I/O)."""
        if not multi or not self.recovering or type(self.protocol).lazy_upload is WorkerProtocol.lazy_upload:
            return multi
        marks = self.client.hmget(counted_marks(self.keys), [f"{task_id}>{c}" for c in multi])
        return [c for c, m in zip(multi, marks) if m is None]

    def _check_uploader(self) -> None:
        """Raise what the uploader met: an error, or another process holding this logical worker."""
        up = self._uploader
        if up is None:
            return
        if up.error is not None:
            raise up.error
        if up.fenced:
            from executor.worker_reporting import Abort

            self.claimed = False
            raise Abort()

    def _collect_uploaded(self, wait: bool = False) -> None:
        """Queue the rows of answered lazy commits (``wait``: after every queued one is answered)."""
        up = self._uploader
        if up is None:
            return
        if wait:
            up.jobs.join()
        while True:
            try:
                self.rows.append(up.finished.get_nowait())
            except queue.Empty:
                break
        self._check_uploader()

    def _stop_uploader(self) -> None:
        up, self._uploader = self._uploader, None
        if up is not None:
            up.jobs.put(None)
            up.join(timeout=5.0)
            up.client.close()
