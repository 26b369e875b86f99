"""A worker process: runs logical workers by interpreting :class:`planning.protocol.WorkerProtocol`.

One OS process (forked by a launcher, inside its profile's cgroups) serves one
logical worker at a time: from its start invocation until the protocol says it
has nothing left (:meth:`WorkerProtocol.next_task` is None).  Then it joins its
launcher's warm pool for ``keep_alive_s`` and may serve another logical worker
of the same profile (a warm start), possibly of another run.  A start costs one
round trip (:mod:`executor.worker_start`): the first input the completing parent
named, the run's spec when this process has not loaded it, and the claim.

Per task, the four hook stages, with the round trips they cost:

* ``handle_inputs``: local parents come from memory; remote ones are fetched in
  one pipelined round trip when small, each large one into its own buffer on the
  worker's connection when they add up to more (``WorkerData._fetch_large``; a
  replay child reads only its edge's bytes, ``GETRANGE``, or ``GET`` when they are the
  whole output: :func:`executor.replay.read_command`); a single remote input
  is received straight into one buffer (:meth:`executor.wire.Wire.get_bulk`);
* ``handle_execution``: the task's code (``run_task_function``) or a replay;
  a raising task is retried with backoff, each traceback written in a
  transaction, the last one failing the run; the profile it chose is the task's
  ``profile`` in the trace.  The process is limited to its worker's profile (its
  cgroups are set by the launcher); a task on another profile runs under that
  profile's CPU quota, memory limit and threads for its duration
  (:mod:`executor.limits.task_limits`; what was enforced: ``Trace.meta["task_limits"]``);
* memory: an output stays in the process while a task of this worker will read it
  locally (:meth:`WorkerProtocol.retention`, from ``handle_inputs``);
* ``handle_output`` + counters: one atomic commit script (:mod:`executor.scripts`)
  marks the task done exactly once and holds the output ``SET`` (only when the
  protocol stores it; an output of ``STORE_ALONE_BYTES`` or more is a plain ``SET``
  sent ahead of it in the same write), the counters of children with several parents,
  a sink's event, queued metrics and - when every child has one parent, so the
  ready set is known locally - the invocations too.
  When the ready set is known and this worker's next task is not ready yet, the
  blocking pop for its notification rides in the same round trip (answered after
  the others, so the upload is still timed by its own replies).  These per-task
  round trips go through the process's own connection (:class:`executor.wire.Wire`),
  not redis-py's pipelines, which cost as much CPU as the server's work.
* ``handle_downstream``: children to run here are queued locally; others are
  notified through their worker's inbox list, or started: straight on the inbox of
  an idle warm process of their profile on this process's launcher when one waits
  (the commit script's ``H`` op: one wake-up), else through the launch queue.

Static workers wait for notifications with a blocking pop (a timeout only to
check that the run is still live); before it, a static worker asks the hooks about
the task it waits for (:class:`_Ahead`: the wait is idle, the hop after the
notification is a chain's critical path), and it polls in a short spin while other work leaves
the host a CPU idle (:func:`executor.wire.spin_budget`: a notification that comes soon skips a
wake-up).  With ``ExecutorSettings.direct_notes`` (off by default) a completing worker also sends
each note straight to the notified worker's process when it runs on this host
(:mod:`executor.direct_notes`): that worker may run the task at once,
while the server records the completion, and commits only once its pop has returned the same
note (the recovery argument is in that module).  A start is *claimed* first (one process per
start message and generation); the logical worker's lease is set then and
renewed by the launcher, its parent, while the process's own heartbeat
(:mod:`executor.heartbeat`) is fresh; a dead process is the launcher's to report
(``waitpid``); the lease catches what the launcher cannot report, a launcher or
host that is gone.  A re-run after a death first recovers what its predecessor
committed (:mod:`executor.recovery`).  Everything read from the server is
authenticated before it is unpickled (:mod:`executor.auth`).
"""

from __future__ import annotations

import os
import time
from typing import Any, NamedTuple

import redis

from executor import codec, keys
from executor.auth import Forged
from executor.direct_notes import DirectNotes
from executor.limits.task_limits import task_profile_limits
from executor.messages import decode_note, encode_error
from executor.process import FROZEN_SLACK_OBJECTS, ProcessContext, RunSpec  # noqa: F401 - re-exported
from executor.replay import burn_cpu, payload, replay_bytes
from executor.retrying import is_transient, task_traceback
from executor.worker_data import WorkerData, free_released, release_op, released_keys
from executor.worker_delayed import WorkerDelayedIO
from executor.worker_preload import WorkerPreload
from executor.worker_recovery import WorkerRecovery
from executor.wire import Wire, packed, spin_budget
from executor.worker_start import Opening, open_start
from executor.worker_reporting import Abort, WorkerReporting
from planning.protocol import WorkerState
from planning.tasks import Task, run_task_function

__all__ = ["RunSpec", "ProcessContext", "run_logical_worker"]

#: Outputs at least this large are stored by a plain SET ahead of the commit script (same round trip), not through it.
STORE_ALONE_BYTES = 256 * 1024


def takes_direct_notes(enabled: bool, spin_s: float, dynamic: bool, replaying: bool, wire: Wire) -> bool:
    """Whether a logical worker sends and takes direct notes (:mod:`executor.direct_notes`).

    Only while it spins (``spin_s`` > 0: other work leaves the host a CPU idle, :func:`executor.wire.spin_budget`):
    the note then reaches a worker awake on its CPU, which runs the task while the server records the parent's
    completion on the other.  On a host with no idle CPU each wake-up waits for a turn: the direct note wakes the
    worker once and the server's reply, which it must still read before committing, a second time (measured at
    load 10, 1k-task alternating chain without spin, 9 interleaved pairs: hop 0.285 ms without, 0.36 ms with).
    Static plans only (the decisions taken ahead say whether a task can start on a note), not a re-run (it
    recovers through the server), one server's connection (a cluster routes by slot).
    """
    return enabled and spin_s > 0 and not dynamic and not replaying and type(wire) is Wire


class _Ahead(NamedTuple):
    """A static worker's decisions for its next task, taken while it waits for that task's notification.

    On a static plan the hooks are functions of the plan (what ``WorkerProtocol.compile()``
    relies on), so asking them before the notification comes gives the answers the worker
    would get after it - and takes the hook calls (~18 us measured in a hot loop here, the
    base protocol) off each hop of a chain whose edges cross workers, where the
    notification's arrival is on the critical path and the wait before it is idle time.
    Used only for the task it was taken for, with the same tasks run here (``ran``); a
    dynamic protocol or a re-run after a death asks the hooks live.
    """

    task: str
    ran: int                      # how many tasks this worker had run (``handle_inputs`` reads which)
    inputs: Any                   # handle_inputs
    profile: str                  # handle_execution's profile
    output: Any                   # handle_output
    downstream: Any               # handle_downstream of every child; None when a child has several parents
    release: list                 # the commit's ops counting reads of stored inputs (:meth:`_release_ops`)
    runnable: Task | None         # the task's code, when it has no stored constants to resolve


class _LogicalWorker(WorkerData, WorkerRecovery, WorkerReporting, WorkerPreload, WorkerDelayedIO):
    """One logical worker's run: the protocol's decisions, executed against Redis."""

    def __init__(self, ctx: ProcessContext, spec: RunSpec, msg: dict[str, Any], cold: bool, ready_at: float,
                 opening: Opening | None = None) -> None:
        self.ctx = ctx
        self.spec = spec
        self.protocol = spec.protocol
        self.settings = spec.settings
        self.run_id: str = msg["run"]
        self.keys = keys.RunKeys(self.run_id)
        self.sealer = ctx.sealer(self.run_id)
        self.worker: str = msg["worker"]
        self.gen = int(msg.get("gen", 0))
        self.ttl_ms = int(self.settings.key_ttl_s * 1000)
        self.client = ctx.client
        self.wire = ctx.wire
        self.state: WorkerState = self.protocol.new_state(self.worker)
        self.memory: dict[str, Any] = {}
        #: a pre-warmed worker's start carries its first task, which it waits for like any other
        warm = bool(msg.get("warm"))
        self.ready_time: dict[str, float] = {} if warm else {msg["task"]: msg["t"]}
        self.rows: list[dict[str, Any]] = []
        self.last_upload = time.time()
        self.policy = self.settings.metrics_policy
        self.cold = cold
        self.invoked_at: float = msg["t"]
        self.keep_alive_s = float(msg.get("keep_alive_s", 0.0))   # then the process waits warm on its idle list
        self.began = ready_at
        self.code = ctx.code(self.run_id, self.worker, msg.get("sub"), self.protocol.dynamic,
                             opening.code if opening is not None else None, msg.get("code_digest"))
        if not warm:
            self.protocol.notified(self.state, msg["task"])
        self.busy = 0.0
        self.prefetched: dict[str, bytes] = dict(msg.get("pre") or {})
        self.claim_status: int | None = None
        self.input_sent_at: float | None = None   # the start's round trip fetched the first task's input then
        if opening is not None:   # the start's first round trip (executor.worker_start)
            self.prefetched.update(opening.prefetched)
            self.claim_status = opening.claim
            self.input_sent_at = opening.sent_at if opening.prefetched else None
        self.decoded: dict[str, Any] = {}
        #: sealed outputs of coded parents that rode inside a note: its tag covers them (``RunSealer.vouched``)
        self.vouched: dict[str, bytes] = {}
        #: how many tasks of this worker still read each output from memory (None: keep them all)
        self.retention: dict[str, int] | None = self.protocol.retention(self.worker)
        self.ran: set[str] = set()
        self.live = self.claimed = False
        self.replaying = self.recovering = bool(msg.get("restart"))   # a re-run after a death
        self.checked: set[str] = set()
        self._done_cache: set[str] | None = None
        self.spin_s = spin_budget(self.settings.spin_wait_s)
        self._ahead: _Ahead | None = None
        timeout = max(0.1, min(1.0, self.settings.lease_s / 2))
        inbox = self.keys.inbox(self.worker)
        #: ``BLPOP`` then ``LPOP n``, packed once (:meth:`_wait_commands`)
        self._wait_packed = [packed(("BLPOP", inbox, timeout)), packed(("LPOP", inbox, 1000))]
        #: this worker's socket for notes sent straight from this host's workers (:mod:`executor.direct_notes`)
        self.direct: DirectNotes | None = None
        if takes_direct_notes(self.settings.direct_notes, self.spin_s, self.protocol.dynamic, self.replaying, self.wire):
            self.direct = DirectNotes.listen(self.sealer, self.worker)
        self._unconfirmed: bytes | None = None   # the direct note a task runs on before the server confirms it
        self._direct_out: list[tuple[str, bytes]] = []   # (worker, note): sent directly after the commit's write

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        status = self.claim_status
        if status is None:   # not claimed in the start's first round trip
            status = self.wire.call([*self.ctx.scripts.load_commands(),
                                     self.ctx.scripts.claim(self.keys, self.worker, self.gen, self.ctx.holder,
                                                            int(self.settings.lease_s * 1000), self.ttl_ms)])[-1]
            self.ctx.scripts.loaded = True
        if status == -1:
            return  # a duplicate start: another process serves (or served) this generation
        self.claimed = True
        self.live = status == 1
        status = "done"
        try:
            if not self.live:
                raise Abort()
            while True:
                task_id = self.protocol.next_task(self.state)
                if task_id is None:
                    break
                if self.replaying and self._committed(task_id):
                    self._replay_done(task_id)
                    continue
                waited_from = time.time()
                while not self.state.is_ready(task_id):
                    self._check_uploader()
                    if self.recovering and task_id not in self.checked:
                        self._check_parents_done(task_id)
                        continue
                    self._decide_ahead(task_id)
                    self._wait_notifications(task_id)
                self._run_task(task_id, waited_from)
            self._collect_uploaded(wait=True)   # delayed I/O: the worker lives until its last upload
        except Abort:
            status = "aborted"
        finally:
            self.ctx.slot.idle()
            self._stop_preload()
            self._stop_uploader()
            if self.wire.pending:  # a pop sent with the last completion, never read: its reply is unwanted
                self.wire.reset()
            if self.direct is not None:
                self.direct.close()
            self._finish(status)

    def _wait_commands(self) -> list:
        """``BLPOP`` then ``LPOP n``: the server runs the ``LPOP`` as soon as the ``BLPOP`` is served,
        so a burst of notifications costs one round trip.  (The timeout only checks that the run is
        still live.)  Packed once per logical worker: they are the same every time."""
        return list(self._wait_packed)

    def _decide_ahead(self, task_id: str) -> None:
        """Ask the hooks about ``task_id`` before its notification comes (:class:`_Ahead`)."""
        ahead = self._ahead
        if ahead is not None and ahead.task == task_id and ahead.ran == len(self.ran):
            return
        if self.protocol.dynamic or self.replaying or self.recovering:
            return
        protocol, worker = self.protocol, self.worker
        inputs = protocol.handle_inputs(task_id, worker, self.ran)
        children = protocol.children(task_id)
        n_parents = self.spec.n_parents
        downstream = (protocol.handle_downstream(task_id, worker, children)
                      if all(n_parents[c] == 1 for c in children) else None)
        runnable = None
        if task_id in self.spec.coded:
            code = self.code[task_id]
            if not any(True for _ in codec.const_refs(code)):
                runnable = Task(task_id, "", func=code.func, args=code.args, kwargs=code.kwargs)
        self._ahead = _Ahead(task_id, len(self.ran), inputs, protocol.handle_execution(task_id, worker).profile,
                             protocol.handle_output(task_id, worker), downstream,
                             self._release_ops(task_id, inputs), runnable)

    def _take_ahead(self, task_id: str) -> _Ahead | None:
        """The decisions taken ahead for ``task_id``, when they were taken for it as things stand."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead.task != task_id or ahead.ran != len(self.ran):
            return None
        return ahead

    def _commit_reply(self) -> list:
        """The commit script's reply, polled for :attr:`spin_s` before the worker sleeps in ``recv``.

        The reply comes one server step after the write, as the next worker's notification does: a
        worker that sleeps for it pays the scheduler's wake-up of its CPU (~0.1 ms on an idle host)
        on the chain's critical path before it can spin for its own next notification.  Measured on
        the alternating chain at load 0.1-0.6, five interleaved pairs: 0.126 -> 0.116 ms per task.
        """
        self.wire.spin_for_reply(self.spin_s)
        return self.wire.read(1)[0]

    def _wait_notifications(self, waited: str | None = None) -> None:
        """Block for the next notification and take every other queued one in the same round trip.

        The pop may already be on its way: a completion after which this worker's
        next task is not ready sends it with the completion's commands.  A direct note
        for ``waited`` (:mod:`executor.direct_notes`) that comes first is taken instead,
        the pop left outstanding until :meth:`_confirm_direct` (None: the server's notes only).
        """
        if not self.wire.pending:
            self.wire.send(self._wait_commands())
        if self.direct is not None and waited is not None:
            if not self.wire.reply_or(self.direct.fileno(), self.spin_s):
                self._take_direct(waited)
                return
        else:
            self.wire.spin_for_reply(self.spin_s)
        for item in self._popped():
            self._take_note(*decode_note(self.sealer, item))

    def _popped(self) -> list[bytes]:
        """The notes the outstanding pop returned (none when it timed out: then the run must still be live)."""
        got, more = self.wire.read(2)
        if got is None:
            if not self.client.exists(self.keys.live):
                self.live = False
                raise Abort()
            return []
        return [got[1], *(more or [])]

    def _take_note(self, task_id: str, t: float, parent: str | None, data: bytes | None) -> None:
        self.ready_time.setdefault(task_id, t)
        if data is not None:   # a coded parent's (sealed) output, already authenticated by the note's tag
            (self.vouched if parent in self.spec.coded else self.prefetched)[parent] = data
        self.protocol.notified(self.state, task_id)

    def _take_direct(self, waited: str) -> None:
        """Take the direct note for ``waited`` when one came and the task can run on it alone; drop the others
        received before it (stale, forged, or for a task that cannot run on them)."""
        for blob in self.direct.take():
            try:
                note = decode_note(self.sealer, blob)
            except Exception:   # forged or garbled: the server's note is used
                continue
            if note[0] == waited and self._runs_on(*note):
                self._unconfirmed = blob
                self._take_note(*note)
                return

    def _runs_on(self, task_id: str, t: float, parent: str | None, data: bytes | None) -> bool:
        """Whether ``task_id`` can run on this note with what the worker holds: its decisions were taken
        ahead (:class:`_Ahead`), under the worker's own profile, and every input it fetches rides in the
        note (nothing is read from the server before the parent's commit is confirmed)."""
        ahead = self._ahead
        if ahead is None or ahead.task != task_id or ahead.ran != len(self.ran) or self._preload is not None \
                or ahead.profile != self.state.profile:
            return False
        for f in ahead.inputs.fetch:
            if f.parent != parent or data is None:
                return False
            if parent not in self.spec.coded and \
                    len(data) < replay_bytes(f.nbytes, self.settings.bytes_scale, self.settings.max_replay_bytes):
                return False
        return True

    def _confirm_direct(self, task_id: str) -> bool:
        """Wait for the server's note of ``task_id``, which the direct one it ran on anticipated: True when they are
        the same; False when the parent's record differs (its process died before its commit was recorded and a
        re-run committed it again): the task's inputs are then the recorded note's, and the task must run again.

        Nothing is sent on this connection before the pop returns the note, which only the parent's recorded
        commit pushes: this worker's own commit follows it, as without direct notes.
        """
        blob, self._unconfirmed = self._unconfirmed, None
        while True:
            confirmed = None
            for item in self._popped():
                if item == blob:
                    confirmed = True
                    continue
                note = decode_note(self.sealer, item)
                if note[0] != task_id:
                    self._take_note(*note)
                    continue
                parent = note[2]
                for held in (self.decoded, self.prefetched, self.vouched):
                    held.pop(parent, None)
                self.ready_time[task_id] = note[1]
                if note[3] is not None:
                    (self.vouched if parent in self.spec.coded else self.prefetched)[parent] = note[3]
                confirmed = False
            if confirmed is not None:
                return confirmed
            self.wire.send(self._wait_commands())

    # ------------------------------------------------------------------ one task
    def _run_task(self, task_id: str, waited_from: float) -> None:
        """handle_inputs, handle_execution, then the output and downstream decisions in one commit."""
        first = not self.state.ran
        worker_start = self.began if first else waited_from
        self.ctx.slot.task(task_id, self.spec.timeouts.get(task_id, 0.0))
        row: dict[str, Any] = {"task_id": task_id, "worker": self.worker, "ready": self.ready_time.get(task_id, worker_start),
                               "worker_start": worker_start, "cold_start": self.cold and first,
                               "startup_s": (self.began - self.invoked_at) if first else 0.0}
        ahead = self._take_ahead(task_id)
        # handle_inputs
        decision = (ahead.inputs if ahead is not None else
                    self.protocol.handle_inputs(task_id, self.worker, self.ran))  # a set: O(1) membership
        preloaded = self._take_preload(task_id) if self._preload is not None else None
        row["download_start"] = time.time()
        if first and self.input_sent_at is not None:   # its input came with the start's round trip
            row["download_start"] = self.input_sent_at
        values, in_bytes = self._inputs(task_id, decision)
        row["download_end"] = time.time()
        if preloaded is not None:   # fetched in the background while the task before ran (pre-load)
            row["download_start"], row["download_end"] = preloaded
        self._start_preload(task_id)
        row["input_bytes"] = float(in_bytes)
        # handle_execution (with retries of transient errors), under the profile it chose
        row["profile"] = profile = (ahead.profile if ahead is not None else
                                    self.protocol.handle_execution(task_id, self.worker).profile)
        probe = self.ctx.contention() if self.settings.measure_contention else None
        before = probe.sample() if probe is not None else None
        if profile == self.state.profile:   # the worker's own: its process is limited so already
            row["exec_start"] = time.time()
            value, attempt = self._execute(task_id, values, ahead.runnable if ahead is not None else None)
            row["exec_end"] = time.time()
            if self._unconfirmed is not None:   # it ran on a direct note: the server's must confirm it first
                value, attempt = self._on_record(task_id, decision, row, ahead, value, attempt)
        else:
            value, attempt = self._execute_under(profile, task_id, values, row)
        if probe is not None:   # the wait for a core others held, and the CPU used (executor.contention)
            row["cpu_wait_s"], row["exec_cpu_s"] = probe.since(before)
        row["attempt"] = attempt
        self._remember(task_id, value, decision.local)
        release = ahead.release if ahead is not None else self._release_ops(task_id, decision)
        decided, upload_end = self._commit(task_id, value, row, release, ahead)
        done = time.time()
        self.ctx.slot.idle()
        if upload_end is not None:    # (a lazy upload's row is completed and queued by its uploader)
            row["upload_end"] = upload_end
            row["done"] = done
            self.rows.append(row)
            if not self.protocol.children(task_id) and self.protocol.removes_leftovers():
                self._remove_leftovers(self.client, released_keys(release))
            elif release:             # retention: the inputs this commit set aside, freed after its notices went out
                free_released(self.client, release)
        for c in decided.run_here:
            self.ready_time.setdefault(c, done)
        self.busy += done - row["download_start"]

    def _on_record(self, task_id: str, decision, row: dict[str, Any], ahead: _Ahead | None, value: Any,
                   attempt: int) -> tuple[Any, int]:
        """A task run on a direct note, once the server's note confirms it (:meth:`_confirm_direct`): its result,
        or, when the recorded note differs, the result of running it again on the recorded inputs."""
        if self._confirm_direct(task_id):
            self.direct_runs += 1
            return value, attempt
        values, _ = self._inputs(task_id, decision)
        row["ready"] = self.ready_time[task_id]
        row["exec_start"] = time.time()
        value, attempt = self._execute(task_id, values, ahead.runnable if ahead is not None else None)
        row["exec_end"] = time.time()
        return value, attempt

    def _release_ops(self, task_id: str, decision) -> list:
        """Commit-script ops counting this task's reads of stored inputs (the protocol's ``stored_readers``).

        The read that completes last removes the output from the server; counted in the
        commit, so a task that dies before committing has not read anything yet.  An output
        of at least :data:`executor.worker_data.SET_ASIDE_BYTES` is set aside (``'D'``: renamed
        in the commit, freed by this worker after it, :func:`free_released`); a smaller one
        is deleted in the commit (``'X'``), where freeing it costs the server less than the
        worker's extra round trip would.
        """
        ops: list = []
        for f in decision.fetch:
            readers = self.protocol.stored_readers(f.parent)
            if task_id in readers:
                ops += (release_op(f.nbytes), self.keys.out(f.parent), self.keys.reads, f.parent, len(readers))
        return ops

    def _commit(self, task_id: str, value: Any, row: dict[str, Any], release: list = (),
                ahead: _Ahead | None = None) -> tuple[Any, float]:
        """handle_output + counters + (when the ready set is known locally) downstream, in one atomic commit.

        ``release``: ops deleting inputs read for the last time; ``ahead``: the hooks' decisions taken
        while the worker waited (:class:`_Ahead`).  Returns the downstream decision and when the upload
        ended (None: a lazy upload, :mod:`executor.worker_delayed`).
        """
        out = ahead.output if ahead is not None else self.protocol.handle_output(task_id, self.worker)
        data = self._encode(task_id, value) if out.store else None
        row["output_bytes"] = float(len(data)) if data is not None else float(self._nbytes(value))
        children = self.protocol.children(task_id)
        multi = self._counted_ahead(task_id, [c for c in children if self.spec.n_parents[c] > 1])
        event = f"s|{task_id}" if not children else ""
        row["upload_start"] = time.time()
        ops: list = list(release)
        self._collect_uploaded()
        if data is not None and self._uploads_lazily(task_id):   # delayed I/O: uploaded in the background
            decided = self._commit_lazily(task_id, data, row, ops)
            self._direct_out.clear()   # its notes go when the uploader commits: through the server only
            return decided, None
        upload_end = None
        cmds = self._store_commands(task_id, data, ops)
        self.protocol.task_done(self.state, task_id)
        self.ran.add(task_id)
        decided = None
        wait_next = False
        if not multi:
            decided = (ahead.downstream if ahead is not None and ahead.downstream is not None else
                       self.protocol.handle_downstream(task_id, self.worker, children))
            self._invocation_ops(ops, decided.invocations, row["exec_end"], task_id, data, handoff=True)
        batch = self._due_batch()  # rows of earlier tasks ride in this round trip
        # A completion with no effect outside this worker (nothing stored, nobody invoked, no counter,
        # no event) needs no round trip: were the worker to die, its re-run would simply run the task again.
        commit = bool(ops or multi or event or batch)
        stored_alone = bool(cmds)
        if commit:
            cmds.append(self.ctx.scripts.commit(self.keys, task_id, self.worker, self.ctx.holder, self.ttl_ms, event,
                                                batch, multi, ops))
        if decided is not None:
            self.protocol.after_downstream(self.state, decided)
            if not self.protocol.dynamic:
                # The ready set is known: when this worker's next task is still not ready, its
                # blocking pop rides in this round trip too (it is answered after the others).
                following = self.protocol.next_task(self.state)
                wait_next = following is not None and not self.state.is_ready(following)
        if wait_next:
            cmds += self._wait_commands()
        self.wire.send(cmds)
        if self._direct_out:   # the notes, straight to their workers' processes on this host (after the write)
            for worker, note in self._direct_out:
                self.direct.send(worker, note)
            self._direct_out.clear()
        if stored_alone:
            self.wire.read(1)
            upload_end = time.time()
        reply = self._commit_reply() if commit else [1]
        if reply[0] != 1:   # another process holds this logical worker now (this one was given up for dead)
            self.claimed = False
            raise Abort()
        if upload_end is None:
            upload_end = time.time() if data is not None else row["upload_start"]
        if decided is None:
            ready = [c for c in children if self.spec.n_parents[c] == 1]
            ready += [c.decode() for c in reply[1:]]
            decided = self.protocol.handle_downstream(task_id, self.worker, ready)
            self._send_invocations(decided.invocations, task_id, data)
            self.protocol.after_downstream(self.state, decided)
        return decided, upload_end

    def _store_commands(self, task_id: str, data: Any, ops: list) -> list[tuple]:
        """How an output reaches the server: a large one as a plain SET ahead of the commit, in the same
        write (a Lua argument would copy the bytes twice more on the server; its own reply times the
        upload); a small one as an op of the commit itself (appended to ``ops``)."""
        wake = self._wake_ops(task_id) if data is not None else []    # pre-load threads waiting for it (after it)
        if data is not None and len(data) >= STORE_ALONE_BYTES:
            ops += wake
            return [("SET", self.keys.out(task_id), data, "PX", self.ttl_ms)]
        if data is not None:
            ops += ("S", self.keys.out(task_id), data, *wake)
        return []

    def _execute_under(self, profile: str, task_id: str, values: dict[str, Any],
                       row: dict[str, Any]) -> tuple[Any, int]:
        """A task the protocol runs under another profile than its worker's: that profile's CPU quota,
        memory limit and threads for the task's duration, where the OS permits
        (:func:`executor.limits.task_profile_limits`); what was enforced is the row's ``limits``."""
        if profile not in self.spec.profiles:
            self._fail(task_id, f"the protocol's handle_execution chose profile {profile!r} for task {task_id!r}, "
                                f"which the plan's catalog lacks (it has {', '.join(sorted(self.spec.profiles))}): "
                                "return one of the catalog's profiles", 0)
        cpus, memory_mb, threads = self.spec.profiles[profile]
        with task_profile_limits(profile, cpus, memory_mb, threads, enabled=self.settings.limits) as row["limits"]:
            row["exec_start"] = time.time()
            value, attempt = self._execute(task_id, values)
            row["exec_end"] = time.time()
        return value, attempt

    def _execute(self, task_id: str, values: dict[str, Any], runnable: Task | None = None) -> tuple[Any, int]:
        """Run the task (``runnable``: its code, built ahead), retrying transient errors with backoff."""
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                if runnable is not None:
                    return run_task_function(runnable, values), attempt
                if task_id in self.spec.coded:
                    code = codec.resolve_constants(self.code[task_id],
                                                   lambda d: self.ctx.constant(self.run_id, d))
                    task = Task(task_id, "", func=code.func, args=code.args, kwargs=code.kwargs)
                    return run_task_function(task, values), attempt
                t = self.protocol.workflow.task(task_id)
                burn_cpu((t.runtime_s or 0.0) * self.settings.scale)
                return payload(replay_bytes(self.protocol.output_bytes(task_id), self.settings.bytes_scale,
                                            self.settings.max_replay_bytes)), attempt
            except Exception as exc:
                tb = task_traceback(exc)
                transient = is_transient(exc, self.settings.retry_on)
                pipe = self.client.pipeline(transaction=True)
                pipe.hset(self.keys.attempts, task_id, f"attempt {attempt + 1} of {attempts} on {self.worker}:\n{tb}")
                pipe.pexpire(self.keys.attempts, self.ttl_ms)
                pipe.exists(self.keys.live)
                if not pipe.execute()[-1]:
                    self.live = False
                    raise Abort() from None
                if transient and attempt + 1 < attempts:
                    time.sleep(self.settings.retry_backoff_s * 2 ** attempt)
                    continue
                self._fail(task_id, tb, attempt + 1, transient=transient)
        raise AssertionError("unreachable")


def run_logical_worker(ctx: ProcessContext, msg: dict[str, Any], cold: bool, via: str = "") -> None:
    """Serve one (authenticated) start invocation: run the logical worker until the protocol says it is done.

    ``via``: how the start reached this process (``fork``, ``launcher``, ``completion``: its worker row's
    ``start_via``; empty where unknown, a Ray actor).

    An unexpected error (an executor bug, a payload that fails authentication) is
    reported to the run before it propagates, so the client fails at once.
    """
    began = time.time()
    k = keys.RunKeys(msg["run"])
    ctx.slot.task(msg["task"], 0.0)
    try:
        opening = open_start(ctx, msg)   # spec, claim and first input: one round trip
        ctx.await_limits()   # a cold process joined its cgroups meanwhile: no task runs before
        if opening.spec is None:  # the run ended (failed or cancelled) before this worker started
            return
        ctx.served += 1
        worker = _LogicalWorker(ctx, opening.spec, msg, cold, began, opening)
        worker.start_via = via
        worker.run()
    except (redis.ConnectionError, Abort):
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
