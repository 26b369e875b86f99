"""A logical worker's messages out: invocations of other workers, metric batches, its final report, a failure.

Part of :class:`executor.worker._LogicalWorker` (a mixin over its state).
"""

from __future__ import annotations

import time
from typing import Any

from executor import keys
from executor.messages import encode_batch, encode_error, encode_note, seal_start, start_message
from executor.worker_start import fetch_hint


class Abort(Exception):
    """The logical worker stops early: its run failed or was cancelled, or another process holds it."""


class WorkerReporting:
    """Invocations, metrics and the end-of-worker report (see the module docstring)."""

    def _invocation_ops(self, ops: list, invocations, t: float, parent: str, data: bytes | None,
                        handoff: bool = False) -> None:
        """Start or notify other workers (commit-script ops); a small stored output rides along, saving a fetch.

        ``handoff``: the ops go to the commit script, so a start may be handed straight to an idle
        process (:meth:`_start_op`); otherwise every op is ``("P", list, value)``, for callers that
        send them as plain pushes.
        """
        inline = data if data is not None and len(data) <= self.settings.inline_output_bytes else None
        for inv in invocations:
            if inv.start:
                # a stored output not riding along: the started worker fetches it in its first round trip
                hint = fetch_hint(self.spec, inv.task, inv.worker, parent, len(data)) if data is not None and inline is None \
                    else None
                msg = start_message(self.run_id, inv, self.spec, t,
                                    pre={parent: inline} if inline is not None else None, fetch=hint)
                ops += self._start_op(msg) if handoff else ("P", self.keys.launch, seal_start(self.sealer, msg))
            else:
                note = encode_note(self.sealer, inv.task, t, parent, inline)
                ops += ("P", self.keys.inbox(inv.worker), note)
                if handoff and self.direct is not None:   # also sent straight to its process (executor.direct_notes)
                    self._direct_out.append((inv.worker, note))

    def _start_op(self, msg: dict[str, Any]) -> tuple:
        """The commit-script op of a start: straight to an idle process of this worker's launcher when one of
        the start's profile and limits waits (``H``, :mod:`executor.scripts`), else the launch queue."""
        blob = seal_start(self.sealer, msg)
        if not (self.ctx.handoff_to_idle and self.settings.handoff_to_idle):
            return ("P", self.keys.launch, blob)
        launcher = self.ctx.launcher_id
        prefix, suffix = keys.process_inbox_parts(launcher)
        return ("H", keys.idle_list(launcher, keys.process_pool_key(msg)), prefix, suffix,
                int(keys.PROCESS_KEY_SLACK_S), keys.launcher_alive(launcher), keys.launcher_handed(launcher),
                self.keys.launch, self.run_id, blob)

    def _send_invocations(self, invocations, parent: str, data: bytes | None) -> None:
        """Invocations decided after the commit (children with several parents; a re-run's replay)."""
        if not invocations:
            return
        ops: list = []
        self._invocation_ops(ops, invocations, time.time(), parent, data)
        cmds = []
        for i in range(0, len(ops), 3):
            cmds += [("RPUSH", ops[i + 1], ops[i + 2]), ("PEXPIRE", ops[i + 1], self.ttl_ms)]
        self.wire.call(cmds)

    # ------------------------------------------------------------------ metrics
    def _take_batch(self) -> bytes:
        rows, self.rows = self.rows, []
        self.last_upload = time.time()
        return encode_batch(self.sealer, {"run": self.run_id, "tasks": rows}) if rows else b""

    def _due_batch(self) -> bytes:
        """Queued rows, when the upload policy says so (``end``: never before the worker stops)."""
        if self.policy.kind == "end" or not self.policy.due(len(self.rows), time.time() - self.last_upload):
            return b""
        return self._take_batch()

    #: how the start reached this process (:func:`executor.worker.run_logical_worker`'s ``via``)
    start_via = ""
    #: the worker's direct-note socket (:mod:`executor.direct_notes`; None: notes through the server only)
    direct = None
    #: tasks this worker ran on a direct note, confirmed by the server's (its worker row's ``direct_runs``)
    direct_runs = 0

    def _finish(self, status: str) -> None:
        """The worker's report: its running entry and lease go, its metrics and end are pushed - and the process
        joins its launcher's idle list in the same transaction.

        The run's client ends a run when no worker is running any more: a process that joined its
        idle list only after this write left a window in which the next run found no idle process
        and forked a cold one (a warm hand-off test failed that way on a busy host).
        """
        if not self.claimed:
            return  # another process holds this logical worker: nothing of it is ours to report
        stop = time.time()
        worker_row = {"worker": self.worker, "profile": self.state.profile, "cold_start": self.cold,
                      "start_via": self.start_via, "direct_runs": self.direct_runs,
                      "start": self.invoked_at, "ready": self.began, "stop": stop, "busy_s": self.busy,
                      "tasks": len(self.state.ran), "pid": self.ctx.pid, "launcher": self.ctx.launcher_id,
                      "host": self.ctx.host, "status": status, "generation": self.gen, **self.ctx.limits}
        rows, self.rows = self.rows, []
        batch = encode_batch(self.sealer, {"run": self.run_id, "tasks": rows, "worker": worker_row})
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.keys.running, self.worker)
        pipe.delete(self.keys.lease(self.worker))
        idle = self.ctx.idle_key
        if idle is not None and self.keep_alive_s > 0 and self.ctx.idle_in_report:
            pipe.rpush(idle, self.ctx.pid)
            pipe.expire(idle, int(self.keep_alive_s + keys.PROCESS_KEY_SLACK_S))
            self.ctx.joined_idle = True
        if not self.live:  # the run is over: leave no key behind
            pipe.execute()
            return
        pipe.rpush(self.keys.metrics, batch)
        pipe.pexpire(self.keys.metrics, self.ttl_ms)
        pipe.rpush(self.keys.finished, f"w|{self.worker}")
        pipe.pexpire(self.keys.finished, self.ttl_ms)
        pipe.execute()

    def _fail(self, task_id: str, message: str, attempts: int, **extra: Any) -> None:
        """Store the run's error and tell the client, in one transaction; stop this worker."""
        info = {"task": task_id, "worker": self.worker, "traceback": message, "attempts": attempts,
                "pid": self.ctx.pid, "host": self.ctx.host, **extra}
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.error, encode_error(self.sealer, info), nx=True, px=self.ttl_ms)
        pipe.rpush(self.keys.events, f"e|{task_id}")
        pipe.pexpire(self.keys.events, self.ttl_ms)
        pipe.execute()
        raise Abort()
