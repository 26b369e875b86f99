"""Pre-load in a worker process: a background thread fetches the next planned task's inputs while a task runs.

Part of :class:`executor.worker._LogicalWorker` (a mixin).  When the protocol
pre-loads (:meth:`planning.protocol.WorkerProtocol.preloads`), the worker starts,
just before it executes a task, one thread for the next task of its sequence.  The
thread has its OWN connection to the server (a :class:`~executor.wire.Wire`: the
worker's wire stays single-threaded): it polls for the remote inputs (one packed
``EXISTS`` per input, every :data:`POLL_S`) and reads each as soon as it is stored
(``GET``, or ``GETRANGE`` of a replay's share), received straight into a buffer of
its size (:meth:`Wire.get_bulk`: no parser buffer and no second copy).  The bytes
wait in the thread's own dictionary; when the worker gets to that task it joins the
thread and takes them (into ``prefetched``, which ``_fetch`` reads before the
server), and the task's row gets the thread's download start and end.  A worker
that re-runs after a death (recovery) does not pre-load.  The memory this holds is
measured on the trace (:func:`planning.protocol.optimizations.preload_memory`).

What the thread costs the task beside it, and how it is kept small (the thread
shares the process's GIL with a CPU-bound task, and on a 2-CPU host its system
calls share the cores with the other workers; issue 17 measured pre-load making
the ladder 3-6 % slower, not faster):

* a task whose inputs are small is not pre-loaded (the protocol says so,
  :meth:`~planning.protocol.WorkerProtocol.preloads_inputs`, in every engine:
  :data:`planning.protocol.optimizations.preload.PRELOAD_MIN_BYTES`): a thread, its
  polls and its hand-overs of the GIL cost more than the fetch they would hide;
* when the thread has every byte, the worker takes them without joining it (a join
  waits for the thread to get the GIL back and exit: ~1 ms a task measured on the
  epigenomics replay);
* the short GIL switch interval (:func:`executor.switching.fast_switching`) is held
  only while bytes move, not while the thread polls: a poll waits for the GIL at
  the interpreter's interval instead of interrupting the task every 0.2 ms;
* when the worker gets to the task, the thread stops polling at once and the worker
  fetches what it has not (the task is ready: its inputs are stored);
* a poll is one packed round trip without redis-py's pipeline machinery (~100 us of
  CPU each, :mod:`executor.wire`), and a payload is received without copies, in one
  blocking call (``Wire.whole_transfers``): the thread takes the GIL back once per input,
  not once per chunk the kernel holds (~1000 times for fan-large's 224 MB).
"""

from __future__ import annotations

import threading
import time

from executor.replay import replay_bytes
from executor.switching import fast_switching
from executor.server.cluster import wire_for
from executor.wire import Wire

#: Seconds between two polls of the server for a next task's inputs that are not stored yet.  Each poll is a
#: round trip and a hand-over of the GIL inside the worker's own CPU quota, beside the task it runs: at 2 ms the
#: ladder's 0.3 s tasks ran 18-30 ms longer beside a pre-load (quiet, 1-CPU workers), at 20 ms 4-14 ms, and
#: the ladder's pre-load went from +0.5 % to -0.6 % real (3 interleaved pairs each, load 1.2-1.8).  What a
#: longer interval costs: an input is seen up to this much after it is stored, against the hundreds of ms of
#: a task the fetch hides behind; and when the worker reaches the task the thread stops polling at once.
POLL_S = 0.02


class _Preload(threading.Thread):
    """One next task's inputs, fetched as soon as each is stored (its own connection, its own results)."""

    def __init__(self, wire: Wire, plan: list[tuple[str, str, int | None]], stop: threading.Event) -> None:
        super().__init__(daemon=True, name="planlab-preload")
        self.wire, self.plan, self.stop = wire, plan, stop
        #: set when the worker gets to the task: stop polling (it fetches what is still missing itself)
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
        left = list(self.plan)
        while left and not self.stop.is_set() and not self.hurry.is_set():
            present = self.wire.call([("EXISTS", key) for _, key, _ in left])
            here = [item for item, n in zip(left, present) if n]
            if not here:
                self.hurry.wait(POLL_S)
                continue
            if self.start_s is None:
                self.start_s = time.time()
            with fast_switching():    # the task beside it would hold the GIL for 5 ms per chunk received
                for parent, key, n in here:
                    value = self.wire.get_bulk(("GET", key) if n is None else ("GETRANGE", key, 0, n - 1))
                    if value is not None:
                        self.data[parent] = value
            left = [item for item in left if item not in here]
        self.end_s = time.time()
        # last: once ``complete`` is set the thread touches nothing the worker reads (nor its wire)
        self.complete = not left


class WorkerPreload:
    """The worker's side of pre-load (see the module docstring)."""

    _preload: _Preload | None = None
    _preload_task: str | None = None
    _preload_wire: Wire | None = None
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
        if not self.protocol.preloads_inputs(following):    # too small to pay for a thread (in every engine)
            return
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
        if self._preload_wire is None:     # the thread's own connection, kept for this logical worker
            self._preload_wire = wire_for(self.client)     # (TCP, a unix socket or a cluster, as the worker's own)
            self._preload_wire.whole_transfers = True       # a payload in one blocking receive: the GIL back once
            self._preload_stop = threading.Event()
        self._preload, self._preload_task = _Preload(self._preload_wire, plan, self._preload_stop), following
        self._preload.start()

    def _take_preload(self, task_id: str) -> tuple[float, float] | None:
        """When ``task_id`` was pre-loaded: wait for the thread, keep its bytes; its (download start, end)."""
        pre, self._preload = self._preload, None
        if pre is None or self._preload_task != task_id:
            return None
        if not pre.complete:    # else every byte is here: take them without a join's wait for the thread's exit
            pre.hurry.set()     # the task is ready, so are its inputs: no poll's wait (a fetch under way ends)
            pre.join()
        if pre.error is not None:
            return None     # the inputs are fetched as usual
        self.prefetched.update(pre.data)
        # the row's download: the thread's when it fetched every input, else the worker's fetch of the rest
        return (pre.start_s, pre.end_s) if pre.complete and pre.start_s is not None else None

    def _stop_preload(self) -> None:
        """The worker is done (or aborted): end the thread and close its connection."""
        if self._preload_stop is not None:
            self._preload_stop.set()
        if self._preload is not None:
            self._preload.join(timeout=1.0)
            self._preload = None
        if self._preload_wire is not None:
            self._preload_wire.close()
            self._preload_wire = None
