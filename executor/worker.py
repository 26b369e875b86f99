"""A worker process: runs logical workers by interpreting :class:`planning.protocol.WorkerProtocol`.

One OS process (forked by a launcher, inside its profile's cgroups) serves one
logical worker at a time: from its start invocation until the protocol says it
has nothing left (:meth:`WorkerProtocol.next_task` is None).  Then it joins its
launcher's warm pool for ``keep_alive_s`` and may serve another logical worker
of the same profile (a warm start), possibly of another run.

Per task, the four hook stages, with the round trips they cost:

* ``handle_inputs``: local parents come from memory; remote ones are fetched in
  one pipelined round trip when small, with parallel threads when large (a
  replay child reads only its edge's bytes, ``GETRANGE``); a single remote input
  is received straight into one buffer (:meth:`executor.wire.Wire.get_bulk`);
* ``handle_execution``: the task's code (``run_task_function``) or a replay;
  a raising task is retried with backoff, each traceback written in a
  transaction, the last one failing the run; the profile it chose is the task's
  ``profile`` in the trace (the CPU quota is the worker process's: its cgroups are
  set by the launcher for the worker's profile);
* memory: an output stays in the process while a task of this worker will read it
  locally (:meth:`WorkerProtocol.retention`, from ``handle_inputs``);
* ``handle_output`` + counters: one atomic commit script (:mod:`executor.scripts`)
  marks the task done exactly once and holds the output ``SET`` (only when the
  protocol stores it; an output of ``STORE_ALONE_BYTES`` or more is stored in a
  round trip of its own first), the counters of children with several parents,
  a sink's event, queued metrics and - when every child has one parent, so the
  ready set is known locally - the invocations too.
  When the ready set is known and this worker's next task is not ready yet, the
  blocking pop for its notification rides in the same round trip (answered after
  the others, so the upload is still timed by its own replies).  These per-task
  round trips go through the process's own connection (:class:`executor.wire.Wire`),
  not redis-py's pipelines, which cost as much CPU as the server's work.
* ``handle_downstream``: children to run here are queued locally; others are
  notified through their worker's inbox list, or started through the launch queue.

Static workers wait for notifications with a blocking pop (a timeout only to
check that the run is still live).  A start is *claimed* first (one process per
start message and generation); the logical worker's lease is set then and
renewed by the launcher, its parent, while the process's own heartbeat
(:mod:`executor.heartbeat`) is fresh; a dead process is the launcher's to report
(``waitpid``); the lease catches what the launcher cannot report, a launcher or
host that is gone.  A re-run after a death first recovers what its predecessor
committed (:mod:`executor.recovery`).  Everything read from the server is
authenticated before it is unpickled (:mod:`executor.auth`).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from executor import codec, keys
from executor.auth import Forged
from executor.messages import (decode_note, encode_batch, encode_error, encode_note, encode_start, output_label)
from executor.process import FROZEN_SLACK_OBJECTS, ProcessContext, RunSpec  # noqa: F401 - re-exported
from executor.recovery import all_parents_done, done_numbers, made_ready
from executor.replay import burn_cpu, payload, replay_bytes
from executor.retrying import is_transient, task_traceback
from planning.protocol import WorkerState
from planning.workflow import Task, run_task_function

__all__ = ["RunSpec", "ProcessContext", "run_logical_worker"]

#: Fetches whose bytes add up to less than this go in one pipeline; larger ones use threads.
PIPELINE_FETCH_BYTES = 512 * 1024
#: Outputs at least this large are stored in a round trip of their own, before the counters and invocations.
STORE_ALONE_BYTES = 256 * 1024


class _Abort(Exception):
    """The logical worker stops early: its run failed or was cancelled, or another process holds it."""


class _LogicalWorker:
    """One logical worker's run: the protocol's decisions, executed against Redis."""

    def __init__(self, ctx: ProcessContext, spec: RunSpec, msg: dict[str, Any], cold: bool, ready_at: float) -> None:
        self.ctx = ctx
        self.spec = spec
        self.p = spec.protocol
        self.s = spec.settings
        self.run_id: str = msg["run"]
        self.k = keys.RunKeys(self.run_id)
        self.sealer = ctx.sealer(self.run_id)
        self.worker: str = msg["worker"]
        self.gen = int(msg.get("gen", 0))
        self.ttl_ms = int(self.s.key_ttl_s * 1000)
        self.r = ctx.client
        self.wire = ctx.wire
        self.state: WorkerState = self.p.new_state(self.worker)
        self.memory: dict[str, Any] = {}
        self.ready_time: dict[str, float] = {msg["task"]: msg["t"]}
        self.rows: list[dict[str, Any]] = []
        self.last_upload = time.time()
        self.policy = self.s.metrics_policy
        self.cold = cold
        self.invoked_at: float = msg["t"]
        self.began = ready_at
        self.code = ctx.code(self.run_id, self.worker, msg.get("sub"), self.p.dynamic)
        self.p.notified(self.state, msg["task"])
        self.busy = 0.0
        self.prefetched: dict[str, bytes] = dict(msg.get("pre") or {})
        self.decoded: dict[str, Any] = {}
        #: how many tasks of this worker still read each output from memory (None: keep them all)
        self.retention: dict[str, int] | None = self.p.retention(self.worker)
        self.ran: set[str] = set()
        self.live = self.claimed = False
        self.replaying = self.recovering = bool(msg.get("restart"))   # a re-run after a death
        self.checked: set[str] = set()
        self._done_cache: set[str] | None = None

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        status = self.wire.call([self.ctx.scripts.claim(self.k, self.worker, self.gen, self.ctx.holder,
                                                        int(self.s.lease_s * 1000), self.ttl_ms)])[0]
        if status == -1:
            return  # a duplicate start: another process serves (or served) this generation
        self.claimed = True
        self.live = status == 1
        status = "done"
        try:
            if not self.live:
                raise _Abort()
            while True:
                task_id = self.p.next_task(self.state)
                if task_id is None:
                    break
                if self.replaying and self._committed(task_id):
                    self._replay_done(task_id)
                    continue
                waited_from = time.time()
                while not self.state.is_ready(task_id):
                    if self.recovering and task_id not in self.checked:
                        self._check_parents_done(task_id)
                        continue
                    self._wait_notifications()
                self._run_task(task_id, waited_from)
        except _Abort:
            status = "aborted"
        finally:
            self.ctx.slot.idle()
            if self.wire.pending:  # a pop sent with the last completion, never read: its reply is unwanted
                self.wire.reset()
            self._finish(status)

    def _committed(self, task_id: str) -> bool:
        """Whether the dead predecessor committed ``task_id`` (a static worker asks once for its whole sequence).

        Not only a prefix of the path: a task without any effect outside this worker
        (nothing stored, nobody invoked) is never committed, so it simply runs again.
        """
        if self._done_cache is None:
            tasks = [task_id] if self.p.dynamic else self.p.sequence.get(self.worker, [task_id])
            found = done_numbers(self.wire, self.k.done, tasks)
            if self.p.dynamic:
                return found[task_id] is not None
            self._done_cache = {t for t, n in found.items() if n is not None}
        return task_id in self._done_cache

    def _check_parents_done(self, task_id: str) -> None:
        """A re-run worker: the notification for ``task_id`` may have gone with the dead process."""
        self.checked.add(task_id)
        if all_parents_done(self.p, task_id, done_numbers(self.wire, self.k.done, self.p.parents(task_id))):
            self.p.notified(self.state, task_id)

    def _wait_commands(self) -> list[tuple]:
        """``BLPOP`` then ``LPOP n``: the server runs the ``LPOP`` as soon as the ``BLPOP`` is served,
        so a burst of notifications costs one round trip."""
        timeout = max(0.1, min(1.0, self.s.lease_s / 2))
        inbox = self.k.inbox(self.worker)
        return [("BLPOP", inbox, timeout), ("LPOP", inbox, 1000)]

    def _wait_notifications(self) -> None:
        """Block for the next notification and take every other queued one in the same round trip.

        The pop may already be on its way: a completion after which this worker's
        next task is not ready sends it with the completion's commands.
        """
        if not self.wire.pending:
            self.wire.send(self._wait_commands())
        got, more = self.wire.read(2)
        if got is None:
            if not self.r.exists(self.k.live):
                self.live = False
                raise _Abort()
            return
        for item in [got[1], *(more or [])]:
            task_id, t, parent, data = decode_note(self.sealer, item)
            self.ready_time.setdefault(task_id, t)
            if data is not None:
                self.prefetched[parent] = data
            self.p.notified(self.state, task_id)

    # ------------------------------------------------------------------ one task
    def _run_task(self, task_id: str, waited_from: float) -> None:
        first = not self.state.ran
        worker_start = self.began if first else waited_from
        self.ctx.slot.task(task_id, self.spec.timeouts.get(task_id, 0.0))
        row: dict[str, Any] = {"task_id": task_id, "worker": self.worker, "ready": self.ready_time.get(task_id, worker_start),
                               "worker_start": worker_start, "cold_start": self.cold and first,
                               "startup_s": (self.began - self.invoked_at) if first else 0.0}
        # handle_inputs
        decision = self.p.handle_inputs(task_id, self.worker, self.ran)  # a set: O(1) membership
        row["download_start"] = time.time()
        values, in_bytes = self._inputs(task_id, decision)
        row["download_end"] = time.time()
        row["input_bytes"] = float(in_bytes)
        # handle_execution (with retries of transient errors); the trace records the profile it chose
        row["profile"] = self.p.handle_execution(task_id, self.worker).profile
        row["exec_start"] = time.time()
        value, attempt = self._execute(task_id, values)
        row["exec_end"] = time.time()
        row["attempt"] = attempt
        self._remember(task_id, value, decision.local)
        # handle_output + counters + (when the ready set is known locally) downstream, in one atomic commit
        out = self.p.handle_output(task_id, self.worker)
        data = self._encode(task_id, value) if out.store else None
        row["output_bytes"] = float(len(data)) if data is not None else float(self._nbytes(value))
        children = self.p.children(task_id)
        multi = [c for c in children if self.spec.n_parents[c] > 1]
        event = f"s|{task_id}" if not children else ""
        row["upload_start"] = time.time()
        ops: list = []
        upload_end = None
        if data is not None and len(data) >= STORE_ALONE_BYTES:
            # Stored and timed in its own round trip: the invocations after it wake other
            # processes (the launcher, a child) that would take the CPUs while this one still
            # reads the store's reply; one more round trip is little next to such a transfer.
            self.wire.call([("SET", self.k.out(task_id), data, "PX", self.ttl_ms)])
            upload_end = time.time()
        elif data is not None:
            ops += ("S", self.k.out(task_id), data)
        self.p.task_done(self.state, task_id)
        self.ran.add(task_id)
        decided = None
        wait_next = False
        if not multi:
            decided = self.p.handle_downstream(task_id, self.worker, children)
            self._invocation_ops(ops, decided.invocations, row["exec_end"], task_id, data)
        batch = self._due_batch()  # rows of earlier tasks ride in this round trip
        # A completion with no effect outside this worker (nothing stored, nobody invoked, no counter,
        # no event) needs no round trip: were the worker to die, its re-run would simply run the task again.
        commit = bool(ops or multi or event or batch)
        cmds = [self.ctx.scripts.commit(self.k, task_id, self.worker, self.ctx.holder, self.ttl_ms, event, batch,
                                        multi, ops)] if commit else []
        if decided is not None:
            self.p.after_downstream(self.state, decided)
            if not self.p.dynamic:
                # The ready set is known: when this worker's next task is still not ready, its
                # blocking pop rides in this round trip too (it is answered after the others).
                following = self.p.next_task(self.state)
                wait_next = following is not None and not self.state.is_ready(following)
        if wait_next:
            cmds += self._wait_commands()
        self.wire.send(cmds)
        reply = self.wire.read(1)[0] if commit else [1]
        if reply[0] != 1:   # another process holds this logical worker now (this one was given up for dead)
            self.claimed = False
            raise _Abort()
        if upload_end is None:
            upload_end = time.time() if data is not None else row["upload_start"]
        if decided is None:
            ready = [c for c in children if self.spec.n_parents[c] == 1]
            ready += [c.decode() for c in reply[1:]]
            decided = self.p.handle_downstream(task_id, self.worker, ready)
            self._send_invocations(decided.invocations, task_id, data)
            self.p.after_downstream(self.state, decided)
        done = time.time()
        self.ctx.slot.idle()
        row["upload_end"] = upload_end
        row["done"] = done
        self.rows.append(row)
        for c in decided.run_here:
            self.ready_time.setdefault(c, done)
        self.busy += done - row["download_start"]

    def _inputs(self, task_id: str, decision) -> tuple[dict[str, Any], int]:
        values = {p: self.memory[p] for p in decision.local}
        in_bytes = sum(self._nbytes(self.memory[p]) for p in decision.local)
        if decision.fetch:
            fetched = self._fetch(task_id, decision.fetch)
            values.update(fetched)
            in_bytes += sum(self._nbytes(v) for v in fetched.values())
        return values, in_bytes

    # ------------------------------------------------------------------ a re-run's recovery
    def _replay_done(self, task_id: str) -> None:
        """Pass a task the dead predecessor committed: no effect is applied twice; its invocations go again."""
        children = self.p.children(task_id)
        around = [task_id, *children, *(q for c in children for q in self.p.parents(c))]
        numbers = done_numbers(self.wire, self.k.done, around)
        decided = self.p.handle_downstream(task_id, self.worker, made_ready(self.p, task_id, numbers))
        here = self.retention is None or self.retention.get(task_id, 0) > 0
        now = time.time()
        if here:  # a task of this worker reads it: from storage, or computed again (never committed again)
            self.ctx.slot.task(task_id, self.spec.timeouts.get(task_id, 0.0))
            decision = self.p.handle_inputs(task_id, self.worker, self.ran)
            value = self._recover_value(task_id, decision)
            self._remember(task_id, value, decision.local)
            self.ctx.slot.idle()
        self.p.task_done(self.state, task_id)
        self.ran.add(task_id)
        self.p.after_downstream(self.state, decided)
        stored = self.p.handle_output(task_id, self.worker).store
        data = self.r.get(self.k.out(task_id)) if stored and decided.invocations else None
        self._send_invocations(decided.invocations, task_id, data)
        done = time.time()
        self.rows.append({"task_id": task_id, "worker": self.worker, "ready": now, "worker_start": now,
                          "cold_start": False, "startup_s": 0.0, "download_start": now, "download_end": now,
                          "exec_start": now, "exec_end": now, "upload_start": now, "upload_end": done, "done": done,
                          "input_bytes": 0.0, "output_bytes": 0.0, "attempt": 0, "recovered": True})

    def _recover_value(self, task_id: str, decision) -> Any:
        if self.p.handle_output(task_id, self.worker).store:
            data = self.r.get(self.k.out(task_id))
            if data is not None:
                return self._decode_output(task_id, data) if task_id in self.spec.coded else data
        values, _ = self._inputs(task_id, decision)
        return self._execute(task_id, values)[0]

    def _remember(self, task_id: str, value: Any, local_parents) -> None:
        """Keep an output in memory while a task of this worker will still read it locally (the protocol's retention).

        A dynamic worker may yet continue any child (the last parent to finish decides),
        so it keeps every output of its run.
        """
        retention = self.retention
        if retention is None:
            self.memory[task_id] = value
            return
        for p in local_parents:
            left = retention.get(p, 0) - 1
            retention[p] = left
            if left <= 0:
                self.memory.pop(p, None)
        if retention.get(task_id, 0) > 0:
            self.memory[task_id] = value

    def _fetch(self, task_id: str, fetches) -> dict[str, Any]:
        """All remote inputs of a task, in parallel (one pipeline when small, threads when large).

        Outputs that arrived inside the notification or start invocation are not fetched again.
        """
        out: dict[str, Any] = {}
        plan = []
        for f in fetches:
            coded = f.parent in self.spec.coded
            n = None if coded else replay_bytes(f.nbytes, self.s.bytes_scale, self.s.max_replay_bytes)
            data = self.prefetched.get(f.parent)
            if data is not None:
                if coded:  # decoded once, however many children of this worker read it
                    if f.parent not in self.decoded:
                        self.decoded[f.parent] = self._decode_output(f.parent, data)
                    out[f.parent] = self.decoded[f.parent]
                else:
                    out[f.parent] = data[:n]
            else:
                plan.append((f.parent, coded, n))
        if not plan:
            return out
        total = sum(f.nbytes for f in fetches)
        if len(plan) == 1 and (plan[0][1] or plan[0][2]):
            parent, coded, n = plan[0]  # one input: received straight into a buffer of its size
            raw = [self.wire.get_bulk(("GET", self.k.out(parent)) if coded else
                                      ("GETRANGE", self.k.out(parent), 0, n - 1))]
        elif len(plan) == 1 or total < PIPELINE_FETCH_BYTES:
            raw = self.wire.call([("GET", self.k.out(parent)) if coded else
                                  ("GETRANGE", self.k.out(parent), 0, n - 1) if n else ("EXISTS", self.k.out(parent))
                                  for parent, coded, n in plan])
        else:
            def one(item):
                parent, coded, n = item
                if coded:
                    return self.r.get(self.k.out(parent))
                return self.r.getrange(self.k.out(parent), 0, n - 1) if n else self.r.exists(self.k.out(parent))
            raw = list(self.ctx.pool.map(one, plan))
        for (parent, coded, n), data in zip(plan, raw):
            if data is None or data == 0:
                self._fail(task_id, f"the output of parent {parent!r} of task {task_id!r} is not on the server "
                                    "(it was never stored, or the run's keys were removed)", 0)
            if coded:
                out[parent] = self._decode_output(parent, data)
            else:
                out[parent] = data if n else b""
        return out

    def _execute(self, task_id: str, values: dict[str, Any]) -> tuple[Any, int]:
        attempts = self.s.retries + 1
        for attempt in range(attempts):
            try:
                if task_id in self.spec.coded:
                    code = codec.resolve_constants(self.code[task_id],
                                                   lambda d: self.ctx.constant(self.run_id, d))
                    task = Task(task_id, "", func=code.func, args=code.args, kwargs=code.kwargs)
                    return run_task_function(task, values), attempt
                t = self.p.workflow.task(task_id)
                burn_cpu((t.runtime_s or 0.0) * self.s.scale)
                return payload(replay_bytes(self.p.output_bytes(task_id), self.s.bytes_scale,
                                            self.s.max_replay_bytes)), attempt
            except Exception as exc:
                tb = task_traceback(exc)
                transient = is_transient(exc, self.s.retry_on)
                pipe = self.r.pipeline(transaction=True)
                pipe.hset(self.k.attempts, task_id, f"attempt {attempt + 1} of {attempts} on {self.worker}:\n{tb}")
                pipe.pexpire(self.k.attempts, self.ttl_ms)
                pipe.exists(self.k.live)
                if not pipe.execute()[-1]:
                    self.live = False
                    raise _Abort() from None
                if transient and attempt + 1 < attempts:
                    time.sleep(self.s.retry_backoff_s * 2 ** attempt)
                    continue
                self._fail(task_id, tb, attempt + 1, transient=transient)
        raise AssertionError("unreachable")

    def _fail(self, task_id: str, message: str, attempts: int, **extra: Any) -> None:
        """Store the run's error and tell the client, in one transaction; stop this worker."""
        info = {"task": task_id, "worker": self.worker, "traceback": message, "attempts": attempts,
                "pid": self.ctx.pid, "host": self.ctx.host, **extra}
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.k.error, encode_error(self.sealer, info), nx=True, px=self.ttl_ms)
        pipe.rpush(self.k.events, f"e|{task_id}")
        pipe.pexpire(self.k.events, self.ttl_ms)
        pipe.execute()
        raise _Abort()

    def _encode(self, task_id: str, value: Any) -> bytes:
        if task_id not in self.spec.coded:
            return value
        try:
            data = codec.dumps_value(value)
        except Exception as exc:  # noqa: BLE001 - whatever pickling raises, the task's result is the cause
            self._fail(task_id, f"the result of task {task_id!r} (a {type(value).__module__}.{type(value).__qualname__})"
                                f" could not be pickled: {type(exc).__name__}: {exc}", 1, unpicklable=True)
        return self.sealer.seal(output_label(task_id), data)

    def _decode_output(self, task_id: str, data: bytes | bytearray) -> Any:
        return codec.loads_value(self.sealer.open(output_label(task_id), data))

    @staticmethod
    def _nbytes(value: Any) -> int:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return len(value)
        return int(getattr(value, "nbytes", 0) or 0)

    def _invocation_ops(self, ops: list, invocations, t: float, parent: str, data: bytes | None) -> None:
        """Start or notify other workers (commit-script ops); a small stored output rides along, saving a fetch."""
        inline = data if data is not None and len(data) <= self.s.inline_output_bytes else None
        for inv in invocations:
            if inv.start:
                msg = encode_start(self.sealer, inv, self.spec, t, pre={parent: inline} if inline is not None else None)
                ops += ("P", self.k.launch, msg)
            else:
                ops += ("P", self.k.inbox(inv.worker), encode_note(self.sealer, inv.task, t, parent, inline))

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

    def _finish(self, status: str) -> None:
        if not self.claimed:
            return  # another process holds this logical worker: nothing of it is ours to report
        stop = time.time()
        worker_row = {"worker": self.worker, "profile": self.state.profile, "cold_start": self.cold,
                      "start": self.invoked_at, "ready": self.began, "stop": stop, "busy_s": self.busy,
                      "tasks": len(self.state.ran), "pid": self.ctx.pid, "launcher": self.ctx.launcher_id,
                      "host": self.ctx.host, "status": status, "generation": self.gen, **self.ctx.limits}
        rows, self.rows = self.rows, []
        batch = encode_batch(self.sealer, {"run": self.run_id, "tasks": rows, "worker": worker_row})
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self.k.running, self.worker)
        pipe.delete(self.k.lease(self.worker))
        if not self.live:  # the run is over: leave no key behind
            pipe.execute()
            return
        pipe.rpush(self.k.metrics, batch)
        pipe.pexpire(self.k.metrics, self.ttl_ms)
        pipe.rpush(self.k.events, f"w|{self.worker}")
        pipe.pexpire(self.k.events, self.ttl_ms)
        pipe.execute()


def run_logical_worker(ctx: ProcessContext, msg: dict[str, Any], cold: bool) -> None:
    """Serve one (authenticated) start invocation: run the logical worker until the protocol says it is done.

    An unexpected error (an executor bug, a payload that fails authentication) is
    reported to the run before it propagates, so the client fails at once.
    """
    began = time.time()
    k = keys.RunKeys(msg["run"])
    ctx.slot.task(msg["task"], 0.0)
    try:
        spec = ctx.spec(msg["run"])
        if spec is None:  # the run ended (failed or cancelled) before this worker started
            return
        ctx.served += 1
        _LogicalWorker(ctx, spec, msg, cold, began).run()
    except (redis.ConnectionError, _Abort):
        raise
    except Exception as exc:
        import traceback

        text = exc.one_line() if isinstance(exc, Forged) else traceback.format_exc()
        info = {"task": msg.get("task"), "worker": msg.get("worker"), "traceback": text,
                "attempts": 0, "internal": True, "pid": ctx.pid, "host": ctx.host}
        pipe = ctx.client.pipeline(transaction=True)
        pipe.set(k.error, encode_error(ctx.sealer(msg["run"]), info), nx=True, px=86400_000)
        pipe.rpush(k.events, f"e|{msg.get('task')}")
        pipe.expire(k.events, 86400)
        pipe.execute()
        raise
    finally:
        ctx.slot.idle()
