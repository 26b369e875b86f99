"""Pre-load in a worker process: a background thread fetches a later planned task's inputs while tasks run.

Part of :class:`executor.worker._LogicalWorker` (a mixin).  When the protocol
pre-loads (:meth:`planning.protocol.WorkerProtocol.preloads`), the worker starts,
just before it executes a task that anchors a pre-load (its first, or a pre-loaded
one: :func:`planning.protocol.preload_order.preload_anchors`, the rule every engine
follows), one thread for the next pre-loaded task of its sequence.  The
thread has its OWN connection to the server (a :class:`~executor.wire.Wire`: the
worker's wire stays single-threaded).  It looks once for the inputs already stored
(one packed ``EXISTS`` each, in the round trip that empties its wake-up list) and then
blocks on that list (``BLPOP``): the commit that stores an output a pre-loading
worker will read also pushes the task's id to that worker's list
(:meth:`WorkerPreload._wake_ops`, plain ``'P'`` ops of the commit script), so the
thread sleeps in the kernel, costing the task beside it nothing, until bytes can
move, and sees each input the moment it is stored.  It reads it (``GET``, or
``GETRANGE`` of a replay's share of a larger output) straight into a buffer of its size
(:meth:`Wire.get_bulk`: no parser buffer and no second copy).  The bytes wait in the
thread's own dictionary; when the worker gets to that task it takes them (into
``prefetched``, which ``_fetch`` reads before the server), and the task's row gets
the thread's download start and end.  A worker that re-runs after a death
(recovery) does not pre-load.  The memory this holds is measured on the trace
(:func:`planning.protocol.optimizations.preload_memory`).

Why a blocking wait and not polls (issue 17): a poll is a round trip and a hand-over
of the GIL inside the worker's own CPU quota, beside the task it runs (at 20 ms polls
the ladder's 0.3 s tasks ran 4-14 ms longer beside a pre-load, at 2 ms 18-30 ms;
quiet, 1-CPU workers), and an input was seen up to a poll interval late.  The wake-up
list costs only workers that pre-load: a commit pushes to it only when the protocol
pre-loads and a child on another worker is one its worker pre-loads for.

The list's life: the thread's first round trip deletes what an earlier thread left
(a wake-up for an input it fetched already, a stop sentinel it never popped), before
its ``EXISTS``: an output stored after that delete has its wake-up in the list, one
stored before is seen by the ``EXISTS``.  When the worker gets to the task before the
thread has every input, it sets ``hurry`` and pushes :data:`STOP` (the thread, blocked,
wakes at once; the worker fetches the rest: the task is ready, its inputs stored);
the ``BLPOP`` 's timeout (:data:`BLOCK_S`) only re-checks the flags, it never delays
a stop.  When the logical worker ends, its thread is stopped the same way and the list
deleted; a dead worker's list expires with the run's keys (its TTL, and the client's
cleanup by prefix).

What else keeps the thread's cost small (it shares the process's GIL with a
CPU-bound task, and on a 2-CPU host its system calls share the cores with the other
workers):

* a task whose inputs are small is not pre-loaded (the protocol says so,
  :meth:`~planning.protocol.WorkerProtocol.preloads_inputs`, in every engine:
  :data:`planning.protocol.optimizations.preload.PRELOAD_MIN_BYTES`): a thread and its
  hand-overs of the GIL cost more than the fetch they would hide;
* when the thread has every byte, the worker takes them without joining it (a join
  waits for the thread to get the GIL back and exit: ~1 ms a task measured on the
  epigenomics replay);
* the short GIL switch interval (:func:`executor.switching.fast_switching`) is held
  for the thread's life, its wait included: a thread blocked in a system call does not
  ask for the GIL, so the task beside it runs as under the usual 5 ms interval, and the
  thread woken by a stored input gets the GIL in a fraction of a millisecond instead of
  ~5 ms (issue 17: the fetches started 5-25 ms after the input was stored when the
  interval was short only while bytes moved);
* a payload is received without copies, in one blocking call (``Wire.whole_transfers``):
  the thread takes the GIL back once per input, not once per chunk the kernel holds
  (~1000 times for fan-large's 224 MB), into a buffer whose pages are mapped in one
  call (:func:`executor.wire._new_buffer`): a page fault per 4 KiB was most of the
  thread's CPU (fan-large's gather, 6 interleaved pairs, load 5-8: 149 ms median
  against 204 ms with a ``bytearray``);
* its worker's cgroup weighs two jobs while the thread moves bytes
  (:func:`executor.limits.cpu_weight.weighted_for`): the kernel shares a busy host's
  cores by cgroup, so the thread's CPU was taken from the task beside it.
"""

from __future__ import annotations

import threading
import time

import redis

from planning.protocol.preload_order import preload_anchors

from executor.limits.cpu_weight import weighted_for
from executor.replay import read_command, replay_bytes
from executor.switching import fast_switching
from executor.server.cluster import wire_for
from executor.wire import Wire

#: What the worker pushes on its wake-up list to stop its pre-load thread (no task id is empty).
STOP = b""

#: Seconds one ``BLPOP`` of the thread blocks before it re-checks its flags (a stop never waits for it: it
#: comes as :data:`STOP`).  Well under the connection's socket timeout (30 s), which would fail the call.
BLOCK_S = 5.0


class _Preload(threading.Thread):
    """One next task's inputs, fetched as soon as each is stored (its own connection, its own results)."""

    def __init__(self, wire: Wire, plan: list[tuple[str, str, int | None]], stop: threading.Event,
                 wake: str) -> None:
        super().__init__(daemon=True, name="planlab-preload")
        self.wire, self.plan, self.stop, self.wake = wire, plan, stop, wake
        #: set when the worker gets to the task: stop waiting (it fetches what is still missing itself)
        self.hurry = threading.Event()
        self.complete = False
        self.data: dict[str, bytes | bytearray] = {}
        self.start_s: float | None = None
        self.end_s: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._fetch_all()
        except BaseException as exc:   # noqa: BLE001 - reported to the worker, which fetches as usual then
            self.error = exc

    def _fetch_all(self) -> None:
        # the short switch interval for the thread's whole life, its waits included: blocked in a pop it does not
        # ask for the GIL (the task beside it runs as with the usual interval), and when its input is stored it
        # gets the GIL within TRANSFER_SWITCH_S instead of the usual 5 ms (executor.switching: measured)
        with fast_switching():
            self._fetch_when_stored()

    def _fetch_when_stored(self) -> None:
        left = list(self.plan)
        # one round trip: drop an earlier thread's leftovers, then which inputs are stored already (module docstring)
        present = self.wire.call([("DEL", self.wake), *(("EXISTS", key) for _, key, _ in left)])[1:]
        here = [item for item, n in zip(left, present) if n]
        while not self._over():
            if here:
                self._get(here)
                left = [item for item in left if item not in here]
                if not left or self._over():
                    break
            popped = self.wire.call([("BLPOP", self.wake, BLOCK_S)])[0]
            woke = popped[1].decode() if popped is not None and popped[1] != STOP else None
            here = [item for item in left if item[0] == woke]
        self.end_s = time.time()
        # last: once ``complete`` is set the thread touches nothing the worker reads (nor its wire)
        self.complete = not left

    def _over(self) -> bool:
        return self.stop.is_set() or self.hurry.is_set()

    def _get(self, here: list[tuple[str, str, int | None]]) -> None:
        if self.start_s is None:
            self.start_s = time.time()
        # while bytes move, its worker's cgroup weighs two jobs: the thread's CPU is not the task's beside it
        with weighted_for(2):          # (executor.limits.cpu_weight; blocked in its pop it needs no share)
            for parent, key, n in here:
                value = self.wire.get_bulk(read_command(key, n))
                if value is not None:
                    self.data[parent] = value


class WorkerPreload:
    """The worker's side of pre-load (see the module docstring)."""

    _preload: _Preload | None = None
    _preload_task: str | None = None
    _preload_wire: Wire | None = None
    _preload_stop: threading.Event | None = None
    _preload_firsts: set[str] | None = None
    _preload_anchors: dict[str, str] | None = None

    def _start_preload(self, task_id: str) -> None:
        """Before executing ``task_id``: when it anchors a pre-load (the worker's first task, or a pre-loaded one:
        :func:`planning.protocol.preload_order.preload_anchors`) and none is under way, start fetching the next
        pre-loaded task's remote inputs in the background."""
        if self._preload is not None or self.recovering or self.replaying or not self.protocol.preloads():
            return
        seq = self.protocol.sequence.get(self.worker, [])
        target = self._preload_begins(seq).get(task_id)
        if target is None:
            return
        position = len(self.state.ran)              # ``task_id`` 's place in ``seq`` (not in ``ran`` yet)
        between = seq[position:seq.index(target, position)]    # run here before ``target``: read from memory
        decision = self.protocol.handle_inputs(target, self.worker, {*self.ran, *between})
        plan = []
        for f in decision.fetch:
            coded = f.parent in self.spec.coded
            n = None if coded else replay_bytes(f.nbytes, self.settings.bytes_scale, self.settings.max_replay_bytes)
            if n == 0:
                continue
            if n is not None and n >= self._stored_bytes(f.parent):
                n = None    # the whole output: read by GET (executor.replay.read_command)
            plan.append((f.parent, self.keys.out(f.parent), n))
        if not plan:
            return
        if self._preload_wire is None:     # the thread's own connection, kept for this logical worker
            self._preload_wire = wire_for(self.client)     # (TCP, a unix socket or a cluster, as the worker's own)
            self._preload_wire.whole_transfers = True       # a payload in one blocking receive: the GIL back once
            self._preload_stop = threading.Event()
        self._preload = _Preload(self._preload_wire, plan, self._preload_stop, self.keys.preload_wake(self.worker))
        self._preload_task = target
        self._preload.start()

    def _preload_begins(self, seq: list[str]) -> dict[str, str]:
        """This worker's anchors: anchor task -> the pre-loaded task whose fetch its execution start begins (a task
        the protocol pre-loads that fetches something, given the tasks before it here), worked out once."""
        if self._preload_anchors is None:
            protocol, ran, fetches = self.protocol, set(), {}
            for task in seq:
                fetches[task] = protocol.preloads_inputs(task) and any(
                    f.nbytes > 0 for f in protocol.handle_inputs(task, self.worker, ran).fetch)
                ran.add(task)
            self._preload_anchors = {a: t for t, a in preload_anchors(seq, fetches.__getitem__).items()}
        return self._preload_anchors

    def _take_preload(self, task_id: str) -> tuple[float, float] | None:
        """When ``task_id`` was pre-loaded: wait for the thread, keep its bytes; its (download start, end)."""
        if self._preload is None or self._preload_task != task_id:
            return None     # none, or one for a task further on (it goes on)
        pre, self._preload = self._preload, None
        if not pre.complete:    # else every byte is here: take them without a join's wait for the thread's exit
            pre.hurry.set()     # the task is ready, so are its inputs: the worker fetches the rest (a fetch under
            self._wake_preload()    # way ends first); a thread blocked on its list wakes on the sentinel
            pre.join()
        if pre.error is not None:
            return None     # the inputs are fetched as usual
        self.prefetched.update(pre.data)
        # the row's download: the thread's when it fetched every input, else the worker's fetch of the rest
        return (pre.start_s, pre.end_s) if pre.complete and pre.start_s is not None else None

    def _stop_preload(self) -> None:
        """The worker is done (or aborted): end the thread, delete its wake-up list and close its connection."""
        if self._preload_wire is None:
            return
        self._preload_stop.set()
        pre, self._preload = self._preload, None
        try:
            if pre is not None and pre.is_alive():
                self._wake_preload(own=False)
                pre.join(timeout=1.0)
            if pre is None or not pre.is_alive():     # its connection is free: the delete goes on it
                self._preload_wire.call([("DEL", self.keys.preload_wake(self.worker))])
        except (redis.RedisError, OSError):   # a lost server: the list expires with the run's keys (the thread,
            pass                              # stopped, ends at its pop's timeout or the connection's error)
        self._preload_wire.close()
        self._preload_wire = None

    def _wake_preload(self, own: bool = True) -> None:
        """Push :data:`STOP` on the thread's list: one round trip on the worker's wire when it owes no reply
        (``own``), else on the worker's client (at the end: a pop sent with the last completion may be unread)."""
        push = ("RPUSH", self.keys.preload_wake(self.worker), STOP)
        if own and not self.wire.pending:
            self.wire.call([push, ("PEXPIRE", push[1], self.ttl_ms)])
        else:
            self.client.pipeline(transaction=False).rpush(push[1], STOP).pexpire(push[1], self.ttl_ms).execute()

    def _wake_ops(self, task_id: str) -> list:
        """Commit-script ops that wake the pre-load threads waiting for ``task_id`` 's output: a ``'P'`` (push)
        of the task's id on the list of every other worker that pre-loads a child of it.  None when the protocol
        does not pre-load, so a commit without pre-load does what it did (issue 17: no polls, no cost)."""
        protocol = self.protocol
        if not protocol.preloads():
            return []
        firsts = self._preload_firsts
        if firsts is None:     # a worker's first task is never pre-loaded (no task runs before it)
            firsts = self._preload_firsts = {seq[0] for seq in protocol.sequence.values() if seq}
        workers = {protocol.worker_of.get(c) for c in protocol.children(task_id)
                   if c not in firsts and protocol.preloads_inputs(c)}
        ops: list = []
        for w in sorted(w for w in workers if w is not None and w != self.worker):
            ops += ("P", self.keys.preload_wake(w), task_id)
        return ops
