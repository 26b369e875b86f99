"""Delayed I/O: an output is uploaded only for another worker's consumer, in the background where that shortens the plan.

**What it does.**  An output is stored only when a consumer planned on another
worker needs it, and always for a sink (whose result the client fetches) - never
for a consumer on the same worker, which reads it from memory (the base protocol's
``handle_output`` already decides so).  What it adds: a stored output whose upload
holds its worker on the plan's critical path is uploaded *lazily* - the worker moves
on to its next task at the execution's end, its own later tasks read the output from
memory at once, and the upload runs in the background (other workers' consumers wait
for it, as before).  Every other upload goes first, at the worker's full speed:

* one whose consumer on another worker is on the critical path (in the background it
  would share the worker's link and CPU with the next task, and the consumer waits);
* one off the critical path, or a worker's last task's (nothing to move on to): in the
  background it buys the plan nothing, and where the workers share a host it costs -
  a thread, its hand-off and a slower upload, and its worker's next task running
  beside the others' sooner.  On fan-large's two cores the small branches' workers,
  moving on, took the cores from the gather's worker's long branch, which the
  makespan waits for: with every such upload lazy, pre-load with delayed I/O was 1.6
  to 2.4 points slower than pre-load alone in the real runs, 1.4 simulated (issue 17).

The plan says which outputs are lazy (:func:`lazy_outputs`: the uploads that hold their
worker on its critical path, :func:`path_outputs`, re-timed until none is left eager);
the protocol class carries the others as eager (:func:`delayed_io_protocol`).  The
class alone (:class:`DelayedIO`, no plan) uploads every output of
:data:`LAZY_MIN_BYTES` or more lazily.

**What it leaves out.**  An output under :data:`LAZY_MIN_BYTES` is uploaded eagerly
(in every engine): handing it to the executor's uploader thread (a queue, the
thread's wake-up, the GIL's hand-overs beside the next task) costs more than the
one inline round trip that stores it (the same measurement as pre-load's threshold,
:data:`planning.protocol.optimizations.preload.PRELOAD_MIN_BYTES`; gemm's 0.5 MB
blocks uploaded lazily made its real run 8-10 % slower).

**What it assumes.**  A static plan timed by the planner's schedule (the critical
path is the plan's).  **What it costs.**  Nothing in bytes; a worker may outlive its
last task by an upload (billed: a worker stops at its last upload's end).
"""

from __future__ import annotations

from typing import Any, Iterable

from planning.protocol.base import WorkerProtocol
from planning.protocol.optimizations.preload import PRELOAD_MIN_BYTES

#: A stored output of fewer bytes is uploaded before the worker moves on (see the module docstring).
LAZY_MIN_BYTES = PRELOAD_MIN_BYTES
#: A worker's lazy uploads yield the CPU to the executions (:meth:`DelayedIO.lazy_upload_yields`) when each has at
#: least this much slack in the plan: a niced upload beside busy cores runs at ~10 % of one (tens of ms for 10 MB)
YIELD_MIN_SLACK_S = 0.1
#: At most this many rounds decide the lazy uploads (:func:`lazy_outputs`), a re-timing each: a round adds those that
#: hold the critical path, which then may move to another worker's (the benchmark's workflows settle after one)
LAZY_ROUNDS = 8


class DelayedIO(WorkerProtocol):
    """Upload outputs in the background (the worker moves on), except the eager ones the plan names."""

    #: the name a config or ``--protocol`` / ``optimizations`` uses
    optimization = "delayed_io"
    #: outputs uploaded before the worker moves on: all but :func:`lazy_outputs` (set by :func:`delayed_io_protocol`)
    eager_outputs: frozenset[str] = frozenset()
    #: workers whose lazy uploads yield the CPU to the executions (set by :func:`delayed_io_protocol`)
    yielding_workers: frozenset[str] = frozenset()

    def lazy_upload(self, task_id: str, worker: str) -> bool:
        return task_id not in self.eager_outputs and self.output_bytes(task_id) >= LAZY_MIN_BYTES

    def lazy_upload_yields(self, worker: str) -> bool:
        return worker in self.yielding_workers


def delayed_io_protocol(protocol: type[WorkerProtocol], eager: Iterable[str],
                        yielding: Iterable[str] = ()) -> type[WorkerProtocol]:
    """``protocol`` (a :class:`DelayedIO` subclass) with ``eager`` as the outputs it uploads before moving on and
    ``yielding`` as the workers whose lazy uploads yield the CPU (a new class)."""
    return type(protocol.__name__, (protocol,), {"eager_outputs": frozenset(eager),
                                                 "yielding_workers": frozenset(yielding)})


def yielding_workers(plan: Any, workflow: Any, protocol: WorkerProtocol) -> set[str]:
    """The workers each of whose lazy uploads has :data:`YIELD_MIN_SLACK_S` or more of slack in ``plan``.

    An upload's slack: from its end (``done``) to the earliest execution start of its
    consumers on other workers (a sink's: to the plan's end, when the client fetches it).
    A yielding upload is slower on a busy host (its thread runs at a niced weight), so
    only a worker whose uploads nothing waits for soon yields (fan-large's small branches
    had 0.28-0.6 s when every upload was lazy; the ladder's zig-zag has 23-70 ms).
    """
    tasks = plan.tasks
    done, start = tasks["done_s"], tasks["exec_start_s"]
    worker_of, end = protocol.worker_of, float(plan.makespan_s)
    lazy_of: dict[str, list[str]] = {}
    for t in protocol.topology.ids:
        w = worker_of[t]
        if protocol.handle_output(t, w).store and protocol.lazy_upload(t, w):
            lazy_of.setdefault(w, []).append(t)
    chosen = set()
    for w, outputs in lazy_of.items():
        slack = float("inf")
        for t in outputs:
            children = workflow.children(t)
            remote = [c for c in children if worker_of[c] != w]
            until = min(float(start[c]) for c in remote) if remote else end if not children else float("inf")
            slack = min(slack, until - float(done[t]))
        if slack >= YIELD_MIN_SLACK_S:
            chosen.add(w)
    return chosen


def critical_outputs(plan: Any, workflow: Any) -> set[str]:
    """The stored outputs on ``plan``'s critical path: a task whose upload a task on another worker waits for
    (the first of :func:`path_outputs`)."""
    return path_outputs(plan, workflow)[0]


def path_outputs(plan: Any, workflow: Any) -> tuple[set[str], set[str]]:
    """The uploads on ``plan``'s critical path: (critical, holding).

    Walks back from the sink that ends last: each task's start was set either by its
    worker's task before it or by the parent whose output arrived last (one on the same
    worker counts when its worker moved on: the next task's worker start).  An output is
    *critical* when that parent ran on another worker (its upload is on the path: the
    consumer waits for it); it *holds* its worker when the path runs from it to a task on
    its own worker (its child or the task after it there) and its worker moved on only
    at the upload's end, after the execution's.
    """
    tasks = plan.tasks
    if not len(tasks):
        return set(), set()
    done, ready, worker = tasks["done_s"], tasks["ready_s"], tasks["worker"]
    exec_end, wstart = tasks["exec_end_s"], tasks["worker_start_s"]
    previous, moved_on = {}, {}
    for seq in plan.assignment.sequence.values():
        for a, b in zip(seq, seq[1:]):
            previous[b] = a
            moved_on[a] = float(wstart[b])
    sinks = workflow.sinks()
    t = max(sinks, key=lambda s: (float(done[s]), s))
    critical: set[str] = set()
    holding: set[str] = set()
    while t is not None:
        parents = workflow.parents(t)
        before = previous.get(t)
        # the worker held it up when it reached the task after the task became ready
        if before is not None and float(wstart[t]) > float(ready[t]):
            last = before
        elif not parents:
            break
        else:
            last = max(parents, key=lambda p: (float(done[p]) if worker[p] != worker[t] else moved_on[p], p))
        if worker[last] != worker[t]:
            critical.add(last)
        elif moved_on[last] > float(exec_end[last]):     # its worker was busy uploading its output
            holding.add(last)
        t = last
    return critical, holding


def lazy_outputs(plan: Any, workflow: Any, cost_model: Any, protocol: type[WorkerProtocol],
                 rounds: int = LAZY_ROUNDS) -> tuple[set[str], Any]:
    """The outputs ``protocol`` (a :class:`DelayedIO` subclass) uploads lazily on ``plan``, and the plan timed so.

    Starts with every upload eager and makes lazy the uploads that hold their worker on
    the critical path (:func:`path_outputs`), re-timing after each round (the path may
    move to another worker's uploads), until no upload on the path holds its worker,
    for at most ``rounds`` rounds; an output on the path for a consumer on another
    worker stays eager.  Why the others stay eager: the module docstring.
    """
    ids = set(workflow.topology().ids)
    lazy: set[str] = set()
    timed = plan.retimed(workflow, cost_model, delayed_io_protocol(protocol, ids))
    for _ in range(rounds):
        critical, holding = path_outputs(timed, workflow)
        more = (lazy | holding) - critical
        if more == lazy:
            break
        lazy = more
        timed = plan.retimed(workflow, cost_model, delayed_io_protocol(protocol, ids - lazy))
    return lazy, timed


__all__ = ["LAZY_MIN_BYTES", "YIELD_MIN_SLACK_S", "LAZY_ROUNDS", "yielding_workers", "DelayedIO",
           "delayed_io_protocol", "critical_outputs", "path_outputs", "lazy_outputs"]
