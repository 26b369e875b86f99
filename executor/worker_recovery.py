"""A re-run logical worker's recovery: what its dead predecessor committed is passed, not applied twice.

Part of :class:`executor.worker._LogicalWorker` (a mixin over its state).  A re-run
first asks which of its tasks were committed (:mod:`executor.recovery`); a committed
task's invocations are sent again and its output is read back (or computed again)
when a task of this worker still reads it; a notification that may have gone with
the dead process is replaced by checking the task's parents.
"""

from __future__ import annotations

import time
from typing import Any

from executor.recovery import all_parents_done, done_numbers, made_ready


class WorkerRecovery:
    """A re-run's recovery (see the module docstring)."""

    def _committed(self, task_id: str) -> bool:
        """Whether the dead predecessor committed ``task_id`` (a static worker asks once for its whole sequence).

        Not only a prefix of the path: a task without any effect outside this worker
        (nothing stored, nobody invoked) is never committed, so it simply runs again.
        """
        if self._done_cache is None:
            tasks = [task_id] if self.protocol.dynamic else self.protocol.sequence.get(self.worker, [task_id])
            self._settle_pending_pop()
            found = done_numbers(self.wire, self.keys.done, tasks)
            if self.protocol.dynamic:
                return found[task_id] is not None
            self._done_cache = {t for t, n in found.items() if n is not None}
        return task_id in self._done_cache

    def _check_parents_done(self, task_id: str) -> None:
        """A re-run worker: the notification for ``task_id`` may have gone with the dead process."""
        self.checked.add(task_id)
        self._settle_pending_pop()
        if self.state.is_ready(task_id):   # notified meanwhile
            return
        if all_parents_done(self.protocol, task_id, done_numbers(self.wire, self.keys.done, self.protocol.parents(task_id))):
            self.protocol.notified(self.state, task_id)

    def _replay_done(self, task_id: str) -> None:
        """Pass a task the dead predecessor committed: no effect is applied twice; its invocations go again."""
        children = self.protocol.children(task_id)
        around = [task_id, *children, *(q for c in children for q in self.protocol.parents(c))]
        self._settle_pending_pop()
        numbers = done_numbers(self.wire, self.keys.done, around)
        decided = self.protocol.handle_downstream(task_id, self.worker, made_ready(self.protocol, task_id, numbers))
        here = self.retention is None or self.retention.get(task_id, 0) > 0
        now = time.time()
        if here:  # a task of this worker reads it: from storage, or computed again (never committed again)
            self.ctx.slot.task(task_id, self.spec.timeouts.get(task_id, 0.0))
            decision = self.protocol.handle_inputs(task_id, self.worker, self.ran)
            value = self._recover_value(task_id, decision)
            self._remember(task_id, value, decision.local)
            self.ctx.slot.idle()
        self.protocol.task_done(self.state, task_id)
        self.ran.add(task_id)
        self.protocol.after_downstream(self.state, decided)
        stored = self.protocol.handle_output(task_id, self.worker).store
        data = self.client.get(self.keys.out(task_id)) if stored and decided.invocations else None
        self._send_invocations(decided.invocations, task_id, data)
        done = time.time()
        self.rows.append({"task_id": task_id, "worker": self.worker, "ready": now, "worker_start": now,
                          "cold_start": False, "startup_s": 0.0, "download_start": now, "download_end": now,
                          "exec_start": now, "exec_end": now, "upload_start": now, "upload_end": done, "done": done,
                          "input_bytes": 0.0, "output_bytes": 0.0, "attempt": 0, "recovered": True})

    def _settle_pending_pop(self) -> None:
        """Read the blocking pop a completion sent for the next task before the wire carries a query.

        Its reply comes first on the connection: a query sent after it read the pop's
        reply as its own (an executor error in every re-run whose completion carried its
        next pop).  The wait is the pop's: until a notification, or its timeout (at most 1 s).
        """
        if self.wire.pending:
            self._wait_notifications()

    def _recover_value(self, task_id: str, decision) -> Any:
        if self.protocol.handle_output(task_id, self.worker).store:
            data = self.client.get(self.keys.out(task_id))
            if data is not None:
                return self._decode_output(task_id, data) if task_id in self.spec.coded else data
        values, _ = self._inputs(task_id, decision)
        return self._execute(task_id, values)[0]
