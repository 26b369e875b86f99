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
  transaction, the last one failing the run;
* ``handle_output`` + counters: one pipeline holds the output ``SET`` (only
  when the protocol stores it; an output of ``STORE_ALONE_BYTES`` or more is
  stored in a round trip of its own first), the completion script (counters of children with
  several parents, a sink's event, queued metrics) and - when every child has one
  parent, so the ready set is known locally - the invocations too.  A completion
  whose children all have one parent and that signals nothing needs no script.
  When the ready set is known and this worker's next task is not ready yet, the
  blocking pop for its notification rides in the same round trip (answered after
  the others, so the upload is still timed by its own replies).  These per-task
  round trips go through the process's own connection (:class:`executor.wire.Wire`),
  not redis-py's pipelines, which cost as much CPU as the server's work.
* ``handle_downstream``: children to run here are queued locally; others are
  notified through their worker's inbox list, or started through the launch queue.

Static workers wait for notifications with a blocking pop (a timeout only to
check that the run is still live).  The logical worker's lease is set here and
renewed by the launcher, its parent, while the process lives: a renewal thread in
the worker would stall whenever a task holds the GIL in one long C call, and a
dead process is the launcher's to report (``waitpid``); the lease catches what
the launcher cannot report, a launcher or host that is gone.
"""

from __future__ import annotations

import gc
import os
import pickle
import socket
import time
import traceback
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis

from planning.gcpause import paused_gc
from executor import codec, keys
from executor.replay import burn_cpu, payload, replay_bytes
from executor.scripts import CompletionScript
from executor.settings import ExecutorSettings
from executor.wire import Wire
from planning.protocol import Invocation, WorkerProtocol, WorkerState
from planning.workflow import Task, run_task_function

__all__ = ["RunSpec", "ProcessContext", "run_logical_worker", "encode_start", "decode_start"]

#: Fetches whose bytes add up to less than this go in one pipeline; larger ones use threads.
PIPELINE_FETCH_BYTES = 512 * 1024
#: Outputs at least this large are stored in a round trip of their own, before the counters and invocations.
STORE_ALONE_BYTES = 256 * 1024


@dataclass
class RunSpec:
    """What every worker of a run shares, stored once under ``RunKeys.protocol``."""

    protocol: WorkerProtocol
    settings: ExecutorSettings
    coded: frozenset[str]
    t0: float
    profiles: dict[str, tuple[float, float, int]] = field(default_factory=dict)   # cpus, memory_mb, threads
    n_parents: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.n_parents:
            self.n_parents = {t: len(self.protocol.parents(t)) for t in self.protocol.index}


def encode_start(run_id: str, inv: Invocation, spec: RunSpec, t: float, sub: bytes | None = None,
                 pre: dict[str, bytes] | None = None) -> bytes:
    """A start invocation for the launch queue: what the launcher needs to pick or fork a process."""
    profile = spec.protocol.profile_of(inv.worker)
    cpus, memory_mb, threads = spec.profiles.get(profile, (None, None, None))
    s = spec.settings
    return pickle.dumps({"type": "start", "run": run_id, "worker": inv.worker, "task": inv.task,
                         "profile": profile, "cpus": cpus, "memory_mb": memory_mb, "threads": threads, "limits": s.limits,
                         "keep_alive_s": s.keep_alive_s, "lease_s": s.lease_s, "t": t, "sub": sub, "pre": pre}, protocol=5)


def decode_start(data: bytes) -> dict[str, Any]:
    return pickle.loads(data)


def _loads_paused(data: bytes) -> Any:
    """Unpickle a run's spec or code with the cyclic garbage collector paused.

    A 10k-task spec is ~100k containers: unpickling them with the collector on
    took 0.26-0.32 s instead of 0.09 s here (each young collection re-walks the
    growing heap), on the critical path of every worker's start.  Unpickling
    creates no garbage, so pausing the collector loses nothing.
    """
    with paused_gc():
        return codec.loads_code(data)


#: Frozen objects beyond the live specs' and the inherited heap's that trigger a full re-collection.
FROZEN_SLACK_OBJECTS = 100_000


class _Abort(Exception):
    """The logical worker stops early: its run failed or was cancelled."""


class ProcessContext:
    """One worker process: its connection, identity, caches of run specs and code."""

    def __init__(self, url: str, launcher_id: str, profile: str, limits: dict[str, Any]) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=30.0)
        self.launcher_id = launcher_id
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.profile = profile
        self.limits = limits
        self.script = CompletionScript(self.client)
        self.wire = Wire(self.client)
        self._specs: OrderedDict[str, RunSpec] = OrderedDict()
        self._frozen: dict[str, int] = {}              # run -> objects its spec load froze
        self._frozen_floor = gc.get_freeze_count()     # the launcher's heap, frozen at fork
        self._code: dict[tuple[str, str], dict[str, codec.TaskCode]] = {}
        self._consts: dict[tuple[str, str], Any] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.served = 0

    # ------------------------------------------------------------------ caches
    def spec(self, run_id: str) -> RunSpec | None:
        spec = self._specs.get(run_id)
        if spec is None:
            data = self.client.get(keys.RunKeys(run_id).protocol)
            if data is None:
                return None
            while len(self._specs) >= 2:  # a warm process serves one run after another
                old = next(iter(self._specs))
                del self._specs[old]          # no reference left: the spec is freed before the next freeze
                self._frozen.pop(old, None)
                self._code = {k: v for k, v in self._code.items() if k[0] != old}
                self._consts = {k: v for k, v in self._consts.items() if k[0] != old}
            spec = self._specs[run_id] = self._load_frozen(run_id, data)
        return spec

    def _load_frozen(self, run_id: str, data: bytes) -> RunSpec:
        """Load a spec and move it out of the cyclic collector's sight (``gc.freeze``).

        A spec is ~10 containers per task that live as long as the run: left to the
        collector, every young and full collection walked them again - 40-150 ms per
        worker and run at 10k tasks, at its start and in the middle of the run, both on
        the run's critical path.  Frozen, they are never walked; an evicted spec is
        freed by reference counting (specs hold no reference cycles).

        Nothing dead is frozen: the collection before the freeze walks only what is
        not frozen yet (this process's objects since the last spec: cheap) and frees
        its cycles.  Should evicted frozen objects sit in cycles after all (a custom
        protocol, a task's code or constants), the frozen count outgrows the live
        specs' and the process re-collects everything once (``gc.unfreeze``).
        """
        gc.collect()
        if gc.get_freeze_count() > self._frozen_floor + sum(self._frozen.values()) + FROZEN_SLACK_OBJECTS:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._frozen_floor = max(0, gc.get_freeze_count() - sum(self._frozen.values()))
        before = gc.get_freeze_count()
        spec = _loads_paused(data)
        gc.freeze()
        self._frozen[run_id] = gc.get_freeze_count() - before
        return spec

    def code(self, run_id: str, worker: str, inline: bytes | None, dynamic: bool) -> dict[str, codec.TaskCode]:
        name = "*" if dynamic else worker
        if (run_id, name) not in self._code:
            data = inline if inline is not None else self.client.get(keys.RunKeys(run_id).subdag(name))
            self._code[(run_id, name)] = _loads_paused(data) if data else {}
        return self._code[(run_id, name)]

    def constant(self, run_id: str, digest: str) -> Any:
        if (run_id, digest) not in self._consts:
            data = self.client.get(keys.RunKeys(run_id).const(digest))
            if data is None:
                raise RuntimeError(f"constant {digest} of run {run_id} is missing on the server")
            self._consts[(run_id, digest)] = codec.loads_code(data)
        return self._consts[(run_id, digest)]

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fetch")
        return self._pool


class _LogicalWorker:
    """One logical worker's run: the protocol's decisions, executed against Redis."""

    def __init__(self, ctx: ProcessContext, spec: RunSpec, msg: dict[str, Any], cold: bool, ready_at: float) -> None:
        self.ctx = ctx
        self.spec = spec
        self.p = spec.protocol
        self.s = spec.settings
        self.run_id: str = msg["run"]
        self.k = keys.RunKeys(self.run_id)
        self.worker: str = msg["worker"]
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
        self.local_children: dict[str, int] | None = None
        self.ran: set[str] = set()

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.exists(self.k.live)
        pipe.hset(self.k.running, self.worker, f"{self.ctx.launcher_id}:{self.ctx.pid}:{self.ctx.host}")
        pipe.set(self.k.lease(self.worker), "1", px=int(self.s.lease_s * 1000))
        self.live = bool(pipe.execute()[0])
        status = "done"
        try:
            if not self.live:
                raise _Abort()
            while True:
                task_id = self.p.next_task(self.state)
                if task_id is None:
                    break
                waited_from = time.time()
                while not self.state.is_ready(task_id):
                    self._wait_notifications()
                self._run_task(task_id, waited_from)
        except _Abort:
            status = "aborted"
        finally:
            if self.wire.pending:  # a pop sent with the last completion, never read: its reply is unwanted
                self.wire.reset()
            self._finish(status)

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
            task_id, t, parent, data = pickle.loads(item)
            self.ready_time.setdefault(task_id, t)
            if data is not None:
                self.prefetched[parent] = data
            self.p.notified(self.state, task_id)

    # ------------------------------------------------------------------ one task
    def _run_task(self, task_id: str, waited_from: float) -> None:
        first = not self.state.ran
        worker_start = self.began if first else waited_from
        row: dict[str, Any] = {"task_id": task_id, "worker": self.worker, "ready": self.ready_time.get(task_id, worker_start),
                               "worker_start": worker_start, "cold_start": self.cold and first,
                               "startup_s": (self.began - self.invoked_at) if first else 0.0}
        # handle_inputs
        decision = self.p.handle_inputs(task_id, self.worker, self.ran)  # a set: O(1) membership
        row["download_start"] = time.time()
        values = {p: self.memory[p] for p in decision.local}
        in_bytes = sum(self._nbytes(self.memory[p]) for p in decision.local)
        if decision.fetch:
            fetched = self._fetch(task_id, decision.fetch)
            values.update(fetched)
            in_bytes += sum(self._nbytes(v) for v in fetched.values())
        row["download_end"] = time.time()
        row["input_bytes"] = float(in_bytes)
        # handle_execution (with retries)
        self.p.handle_execution(task_id, self.worker)
        row["exec_start"] = time.time()
        value, attempt = self._execute(task_id, values)
        row["exec_end"] = time.time()
        row["attempt"] = attempt
        self._remember(task_id, value, decision.local)
        # handle_output + counters + (when the ready set is known locally) downstream
        out = self.p.handle_output(task_id, self.worker)
        data = self._encode(task_id, value) if out.store else None
        row["output_bytes"] = float(len(data)) if data is not None else float(self._nbytes(value))
        children = self.p.children(task_id)
        multi = [c for c in children if self.spec.n_parents[c] > 1]
        event = f"s|{task_id}" if not children else ""
        row["upload_start"] = time.time()
        cmds: list[tuple] = []
        upload_end = None
        if data is not None and len(data) >= STORE_ALONE_BYTES:
            # Stored and timed in its own round trip: the invocations after it wake other
            # processes (the launcher, a child) that would take the CPUs while this one still
            # reads the store's reply; one more round trip is little next to such a transfer.
            self.wire.call([("SET", self.k.out(task_id), data)])
            upload_end = time.time()
        elif data is not None:
            cmds.append(("SET", self.k.out(task_id), data))
        self.p.task_done(self.state, task_id)
        self.ran.add(task_id)
        decided = None
        wait_next = False
        if not multi:
            decided = self.p.handle_downstream(task_id, self.worker, children)
            self._invocation_commands(cmds, decided.invocations, row["exec_end"], task_id, data)
        batch = self._due_batch()  # rows of earlier tasks ride in this round trip
        if multi or event:
            cmds.append(self.ctx.script.command(self.k.deps, self.k.events, self.k.metrics, event, batch, multi))
        elif batch:
            cmds.append(("RPUSH", self.k.metrics, batch))
        if decided is not None:
            self.p.after_downstream(self.state, decided)
            if not self.p.dynamic:
                # The ready set is known: when this worker's next task is still not ready, its
                # blocking pop rides in this round trip too (it is answered after the others).
                following = self.p.next_task(self.state)
                wait_next = following is not None and not self.state.is_ready(following)
        n = len(cmds)
        if wait_next:
            cmds += self._wait_commands()
        self.wire.send(cmds)
        replies = self.wire.read(n)
        if upload_end is None:
            upload_end = time.time() if data is not None else row["upload_start"]
        if decided is None:
            ready = [c for c in children if self.spec.n_parents[c] == 1]
            ready += [c.decode() for c in replies[-1]]
            decided = self.p.handle_downstream(task_id, self.worker, ready)
            if decided.invocations:
                more: list[tuple] = []
                self._invocation_commands(more, decided.invocations, time.time(), task_id, data)
                self.wire.call(more)
            self.p.after_downstream(self.state, decided)
        done = time.time()
        row["upload_end"] = upload_end
        row["done"] = done
        self.rows.append(row)
        for c in decided.run_here:
            self.ready_time.setdefault(c, done)
        self.busy += done - row["download_start"]

    def _remember(self, task_id: str, value: Any, local_parents) -> None:
        """Keep an output in memory while a child planned here still needs it (static plans).

        A dynamic worker may yet continue any child (the last parent to finish decides),
        so it keeps every output of its run.
        """
        if self.p.dynamic:
            self.memory[task_id] = value
            return
        if self.local_children is None:
            seq = self.p.sequence.get(self.worker, [])
            mine = set(seq)
            self.local_children = {t: sum(1 for c in self.p.children(t) if c in mine) for t in seq}
        for p in local_parents:
            self.local_children[p] -= 1
            if self.local_children[p] <= 0:
                self.memory.pop(p, None)
        if self.local_children.get(task_id, 0) > 0:
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
                        self.decoded[f.parent] = codec.loads_value(data)
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
                out[parent] = codec.loads_value(data)
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
            except Exception:
                tb = traceback.format_exc()
                pipe = self.r.pipeline(transaction=True)
                pipe.hset(self.k.attempts, task_id, f"attempt {attempt + 1} of {attempts} on {self.worker}:\n{tb}")
                pipe.exists(self.k.live)
                if not pipe.execute()[-1]:
                    self.live = False
                    raise _Abort() from None
                if attempt + 1 < attempts:
                    time.sleep(self.s.retry_backoff_s * 2 ** attempt)
                    continue
                self._fail(task_id, tb, attempts)
        raise AssertionError("unreachable")

    def _fail(self, task_id: str, message: str, attempts: int) -> None:
        """Store the run's error and tell the client, in one transaction; stop this worker."""
        info = {"task": task_id, "worker": self.worker, "traceback": message, "attempts": attempts,
                "pid": self.ctx.pid, "host": self.ctx.host}
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.k.error, pickle.dumps(info), nx=True)
        pipe.rpush(self.k.events, f"e|{task_id}")
        pipe.execute()
        raise _Abort()

    def _encode(self, task_id: str, value: Any) -> bytes:
        if task_id in self.spec.coded:
            return codec.dumps_value(value)
        return value

    @staticmethod
    def _nbytes(value: Any) -> int:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return len(value)
        return int(getattr(value, "nbytes", 0) or 0)

    def _invocation_commands(self, cmds: list[tuple], invocations, t: float, parent: str,
                             data: bytes | None) -> None:
        """Start or notify other workers; a small stored output rides along, saving the child a fetch."""
        inline = data if data is not None and len(data) <= self.s.inline_output_bytes else None
        for inv in invocations:
            if inv.start:
                msg = encode_start(self.run_id, inv, self.spec, t, pre={parent: inline} if inline is not None else None)
                cmds.append(("INCR", self.k.starts))
                cmds.append(("RPUSH", keys.launch_queue(self.s.pool), msg))
            else:
                cmds.append(("RPUSH", self.k.inbox(inv.worker), pickle.dumps((inv.task, t, parent, inline), protocol=5)))

    # ------------------------------------------------------------------ metrics
    def _take_batch(self) -> bytes:
        rows, self.rows = self.rows, []
        self.last_upload = time.time()
        return pickle.dumps({"run": self.run_id, "tasks": rows}, protocol=5) if rows else b""

    def _due_batch(self) -> bytes:
        """Queued rows, when the upload policy says so (``end``: never before the worker stops)."""
        if self.policy.kind == "end" or not self.policy.due(len(self.rows), time.time() - self.last_upload):
            return b""
        return self._take_batch()

    def _finish(self, status: str) -> None:
        stop = time.time()
        worker_row = {"worker": self.worker, "profile": self.state.profile, "cold_start": self.cold,
                      "start": self.invoked_at, "ready": self.began, "stop": stop, "busy_s": self.busy,
                      "tasks": len(self.state.ran), "pid": self.ctx.pid, "launcher": self.ctx.launcher_id,
                      "host": self.ctx.host, "status": status, **self.ctx.limits}
        rows, self.rows = self.rows, []
        batch = pickle.dumps({"run": self.run_id, "tasks": rows, "worker": worker_row}, protocol=5)
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self.k.running, self.worker)
        pipe.delete(self.k.lease(self.worker))
        if not self.live:  # the run is over: leave no key behind
            pipe.execute()
            return
        pipe.rpush(self.k.metrics, batch)
        pipe.rpush(self.k.events, f"w|{self.worker}")
        pipe.execute()


def run_logical_worker(ctx: ProcessContext, msg: dict[str, Any], cold: bool) -> None:
    """Serve one start invocation: run the logical worker until the protocol says it is done.

    An unexpected error (an executor bug, a corrupt message) is reported to the run
    with its traceback before it propagates, so the client fails at once.
    """
    began = time.time()
    k = keys.RunKeys(msg["run"])
    try:
        spec = ctx.spec(msg["run"])
        if spec is None:  # the run ended (failed or cancelled) before this worker started
            return
        ctx.served += 1
        _LogicalWorker(ctx, spec, msg, cold, began).run()
    except (redis.ConnectionError, _Abort):
        raise
    except Exception:
        info = {"task": msg.get("task"), "worker": msg.get("worker"), "traceback": traceback.format_exc(),
                "attempts": 0, "internal": True, "pid": ctx.pid, "host": ctx.host}
        pipe = ctx.client.pipeline(transaction=True)
        pipe.set(k.error, pickle.dumps(info), nx=True)
        pipe.rpush(k.events, f"e|{msg.get('task')}")
        pipe.execute()
        raise
