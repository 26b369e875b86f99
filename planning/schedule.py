"""The analytical schedule: when each task would run under a given assignment.

Every planner times its assignment with this module, so planned times follow the
same worker protocol the simulator and executor interpret:

* a worker runs its tasks one at a time, strictly in its planned order;
* a task is *ready* when every parent is done (plus one coordination round trip
  per counter update); it reaches its worker after an invocation latency when the
  parent that made it ready ran elsewhere (or, for roots, was the client);
* a worker's first task pays the start-up of its profile (a cold start);
* inputs produced on other workers are downloaded in parallel (the phase lasts as
  long as the largest download); inputs produced locally are free;
* an output is uploaded when :meth:`WorkerProtocol.handle_output
  <planning.protocol.WorkerProtocol.handle_output>` says so.  Without a protocol
  the static rule applies: only when a consumer runs on another worker, or it is
  a sink (the client fetches sinks' results); the upload size is the task's
  largest out-edge (its ``output_bytes`` hint for sinks);
* the makespan runs from submission to the client holding the last sink's result.

With zero overheads and free transfers this is the classic list-schedule
recurrence ``start = max(parents' finish, worker free)``.

Two layers, one recurrence.  :class:`ScheduleEvaluator` precomputes a workflow's
topology and every transfer time once (O(n + e), transfers vectorised when the
caller can), :meth:`ScheduleEvaluator.layout` fixes an assignment's worker
numbering, order and uploads (O(n + e)), and :meth:`ScheduleEvaluator.run` times
one choice of profiles with plain lists (O(n + e), no pandas) - what planners
that try hundreds of profile changes need.  :class:`Retimer` goes further for
one-change-at-a-time searches: it re-times only the tasks a change reaches, with
the same values.  :func:`evaluate_schedule` is the same run wrapped in
DataFrames for the final plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from planning.billing import BilledWorkers, bill
from planning.errors import PlanError
from planning.profiles import Catalog
from planning.topology import segments
from planning.workflow import Workflow

if TYPE_CHECKING:  # pragma: no cover
    from planning.protocol import WorkerProtocol

TransferFn = Callable[[float, str], float]
#: Transfer seconds of many sizes at once: ``(sizes array, direction) -> seconds array``.
TransferManyFn = Callable[[np.ndarray, str], np.ndarray]

TASK_COLUMNS = ("worker", "profile", "cold_start", "startup_s", "ready_s", "worker_start_s", "download_start_s",
                "download_end_s", "exec_start_s", "exec_end_s", "upload_start_s", "upload_end_s", "done_s",
                "input_bytes", "output_bytes", "stored")


def free_transfer(nbytes: float, direction: str) -> float:
    """Transfers that take no time (unlimited bandwidth, no latency)."""
    return 0.0


@dataclass(frozen=True)
class ScheduleResult(BilledWorkers):
    """Per-task phase times (a DataFrame indexed by task id), makespan, per-worker spans and cost."""

    tasks: pd.DataFrame
    workers: pd.DataFrame
    makespan_s: float



def last_parent(parents: Sequence[int], done: Sequence[float]) -> int:
    """The parent whose completion makes a task ready: the latest done, ties to the highest index.

    The one tie-break every timing of the protocol uses (the analytical schedule, its
    re-timer and the dynamic placement), so the worker that "completes the last
    dependency" is the same everywhere.
    """
    last = parents[0]
    best = done[last]
    for p in parents:
        d = done[p]
        if d > best or (d == best and p > last):
            best, last = d, p
    return last

def _order_with_sequences(n: int, children: Sequence[Sequence[int]], indegree: Sequence[int],
                          nxt: Sequence[int]) -> tuple[list[int], list[int]]:
    """Kahn's algorithm over the DAG plus sequence edges ``i -> nxt[i]``; returns (order, leftover in-degrees)."""
    indeg = list(indegree)
    for j in nxt:
        if j >= 0:
            indeg[j] += 1
    ready = [i for i in range(n) if indeg[i] == 0]
    order: list[int] = []
    while ready:
        i = ready.pop()
        order.append(i)
        for c in children[i]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
        c = nxt[i]
        if c >= 0:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    return order, indeg


def _deadlock(ids: Sequence[str], indeg: Sequence[int]) -> PlanError:
    stuck = sorted(ids[i] for i in range(len(ids)) if indeg[i] > 0)[:5]
    return PlanError(f"the workers' task order contradicts the dependencies (stuck at {', '.join(stuck)})",
                     "order each worker's tasks consistently with a topological order")


@dataclass(frozen=True)
class Layout:
    """An assignment fixed for repeated timing: worker numbers, execution order, uploads.

    ``worker[i]`` numbers task ``i``'s worker (``workers`` names them, in order of
    first appearance in topological order), ``prev[i]`` is the task before ``i`` on
    its worker (-1 for the first), and the protocol's decisions: ``store[i]`` whether
    ``i`` uploads its output, ``remote[i][k]`` whether its ``k``-th parent's output
    is fetched, ``exec_profile[i]`` the profile it executes on (None: its worker's).
    """

    workers: tuple[str, ...]
    worker: tuple[int, ...]
    order: tuple[int, ...]
    prev: tuple[int, ...]
    store: tuple[bool, ...]
    sequence: dict[str, list[str]]
    remote: tuple[tuple[bool, ...], ...]
    exec_profile: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ScheduleTimes:
    """One timed run of a :class:`Layout`, as plain per-task lists (topological order) and per-worker lists."""

    layout: Layout
    profiles: tuple[str, ...]          # per worker number
    exec_s: list[float]
    startup: list[float]
    ready: list[float]
    worker_start: list[float]
    begin: list[float]                 # download start
    download_end: list[float]
    exec_end: list[float]
    done: list[float]
    makespan_s: float
    worker_start_s: list[float]        # per worker number: its first task's worker start
    worker_stop_s: list[float]         # per worker number: its last done
    busy_s: list[float]                # per worker number: sum of (done - download start)

    def worker_costs(self, catalog: Catalog) -> np.ndarray:
        """Dollars per worker number: lifetime times its profile's price."""
        price = np.array([catalog[p].price_per_s for p in self.profiles])
        return (np.asarray(self.worker_stop_s) - np.asarray(self.worker_start_s)) * price

    def cost(self, catalog: Catalog) -> float:
        """Total dollars (the plan's ``cost`` up to the order of summation)."""
        return float(self.worker_costs(catalog).sum())


class ScheduleEvaluator:
    """One workflow's topology and transfer times, precomputed for timing many assignments.

    ``transfer_s`` and ``startup_s`` are as in :func:`evaluate_schedule`;
    ``transfer_many`` (optional) computes many transfer times at once and must
    agree with ``transfer_s`` element by element (the cost model's are vectorised).
    Build: O(n + e) and one transfer time per edge and per task.
    """

    def __init__(self, workflow: Workflow, catalog: Catalog, *, transfer_s: TransferFn = free_transfer,
                 startup_s: Callable[[str], float] = lambda p: 0.0, invoke_s: float = 0.0,
                 coordination_s: float = 0.0, transfer_many: TransferManyFn | None = None) -> None:
        self.workflow = workflow
        self.catalog = catalog
        self.invoke_s = float(invoke_s)
        self.coordination_s = float(coordination_s)
        self._startup_fn = startup_s
        self._startup: dict[str, float] = {}
        topology = workflow.topology()
        index = topology.index
        ids = list(topology.ids)
        self.ids = ids
        self.index = index
        self.parents: list[list[int]] = topology.parents
        self.children: list[list[int]] = topology.children
        flat_in = topology.edge_bytes.tolist()
        self.in_edge_bytes: list[list[float]] = segments(flat_in, topology.indegree)   # per parent
        self.in_bytes: list[float] = topology.in_bytes.tolist()
        out = topology.out_bytes.tolist()
        self.out_bytes = out
        sinks = topology.sinks
        self.sinks = sinks
        if transfer_many is not None:
            down = [float(x) for x in np.asarray(transfer_many(np.asarray(flat_in, dtype=float), "download"))]
            up = [float(x) for x in np.asarray(transfer_many(np.asarray(out, dtype=float), "upload"))]
            fetch = [float(x) for x in np.asarray(transfer_many(np.asarray([out[i] for i in sinks], dtype=float),
                                                                "download"))]
        else:
            down = [float(transfer_s(b, "download")) for b in flat_in]
            up = [float(transfer_s(b, "upload")) for b in out]
            fetch = [float(transfer_s(out[i], "download")) for i in sinks]
        self.download_s: list[list[float]] = segments(down, topology.indegree)
        self.upload_s = up
        self.fetch_s = fetch

    @classmethod
    def for_cost_model(cls, workflow: Workflow, catalog: Catalog, cost_model: Any, sla: Any) -> "ScheduleEvaluator":
        """Transfers and cold starts from a :class:`~planning.cost_model.CostModel` at ``sla`` (vectorised)."""
        def one(nbytes: float, direction: str) -> float:
            return float(cost_model.transfer_s(nbytes, direction, sla))

        def many(sizes: np.ndarray, direction: str) -> np.ndarray:
            return np.atleast_1d(cost_model.transfer_s(sizes, direction, sla)) if len(sizes) else np.zeros(0)

        return cls(workflow, catalog, transfer_s=one, transfer_many=many,
                   startup_s=lambda profile: float(cost_model.startup_s(catalog[profile], True, sla)))

    def startup_of(self, profile: str) -> float:
        """A profile's cold start-up seconds (asked once per profile)."""
        value = self._startup.get(profile)
        if value is None:
            value = self._startup[profile] = float(self._startup_fn(profile))
        return value

    # ------------------------------------------------------------------ assignments
    def layout(self, worker_of: Mapping[str, str], sequence: Mapping[str, list[str]] | None = None,
               protocol: "WorkerProtocol | None" = None) -> Layout:
        """Fix an assignment: worker numbers, each worker's order (default: topological), the protocol's decisions.

        A static ``protocol`` (default: :class:`~planning.protocol.WorkerProtocol` on
        this assignment) is read from its compiled tables: which inputs are fetched,
        which outputs are stored, which profile each task executes on.  A dynamic
        protocol's uploads are asked per task; its inputs are the predicted
        placement's.  O(n + e).
        """
        ids = self.ids
        missing = [t for t in ids if t not in worker_of]
        if missing:
            raise PlanError(f"{len(missing)} task(s) have no worker, e.g. {missing[0]!r}",
                            "assign every task to a worker")
        number: dict[str, int] = {}
        worker = []
        for t in ids:
            w = worker_of[t]
            k = number.get(w)
            if k is None:
                k = number[w] = len(number)
            worker.append(k)
        index = self.index
        if sequence is None:
            seq: dict[str, list[str]] = {}
            for t in ids:
                seq.setdefault(worker_of[t], []).append(t)
        else:
            seq = {w: list(ts) for w, ts in sequence.items()}
        n = len(ids)
        prev = [-1] * n
        nxt = [-1] * n
        for ts in seq.values():
            for a, b in zip(ts, ts[1:]):
                ia, ib = index[a], index[b]
                prev[ib] = ia
                nxt[ia] = ib
        order, indeg = _order_with_sequences(n, self.children, [len(p) for p in self.parents], nxt)
        if len(order) != n:
            raise _deadlock(ids, indeg)
        if protocol is None:
            from planning.protocol import WorkerProtocol

            profiles = {w: "" for w in number}
            protocol = WorkerProtocol(self.workflow, worker_of, profiles, seq)
        tables = protocol.compile()
        if tables is None:   # dynamic: uploads asked per task, inputs follow the predicted placement
            store = tuple(bool(protocol.handle_output(t, worker_of[t]).store) for t in ids)
            remote = tuple(tuple(worker[p] != worker[i] for p in ps) for i, ps in enumerate(self.parents))
            exec_profile = None
        else:
            store = tuple(tables.store)
            remote = _remote(self.parents, tables.local)
            mine = [protocol.profile_of(w) for w in number]
            exec_profile = tuple(tables.profile) if any(
                p != mine[worker[i]] for i, p in enumerate(tables.profile)) else None
        return Layout(tuple(number), tuple(worker), tuple(order), tuple(prev), store, seq, remote, exec_profile)

    # ------------------------------------------------------------------ timing
    def run(self, layout: Layout, worker_profile: Mapping[str, str] | Sequence[str],
            exec_s: Sequence[float]) -> ScheduleTimes:
        """Time ``layout`` with each worker's profile and each task's execution seconds (topological order).

        ``worker_profile`` maps worker ids to profiles, or lists them per worker
        number.  O(n + e) list operations.
        """
        if isinstance(worker_profile, Mapping):
            profiles = tuple(worker_profile[w] for w in layout.workers)
        else:
            profiles = tuple(worker_profile)
        startup_of_worker = [self.startup_of(p) for p in profiles]
        n = len(self.ids)
        worker, prev, store, remote = layout.worker, layout.prev, layout.store, layout.remote
        parents, download_s, upload_s = self.parents, self.download_s, self.upload_s
        invoke, coord = self.invoke_s, self.coordination_s
        ready = [0.0] * n
        wstart = [0.0] * n
        begin = [0.0] * n
        dend = [0.0] * n
        xend = [0.0] * n
        done = [0.0] * n
        startup = [0.0] * n
        exec_list = [float(x) for x in exec_s]
        for i in layout.order:
            w = worker[i]
            ps = parents[i]
            if ps:
                last = last_parent(ps, done)
                best = done[last]
                r = best + coord
                arrival = r + (invoke if worker[last] != w else 0.0)
                download = 0.0
                row, fetched = download_s[i], remote[i]
                for k in range(len(ps)):
                    if fetched[k] and row[k] > download:
                        download = row[k]
            else:
                r, arrival, download = 0.0, invoke, 0.0
            before = prev[i]
            if before < 0:
                s = startup_of_worker[w]
                ws = arrival
                b = ws + s
                startup[i] = s
            else:
                ws = done[before]
                b = arrival if arrival > ws else ws
            e = b + download + exec_list[i]
            ready[i], wstart[i], begin[i], dend[i], xend[i] = r, ws, b, b + download, e
            done[i] = e + upload_s[i] if store[i] else e
        fetch = self.fetch_s
        makespan = max(done[s] + fetch[k] for k, s in enumerate(self.sinks)) if n else 0.0
        m = len(layout.workers)
        w_start = [float("inf")] * m
        w_stop = [float("-inf")] * m
        busy = [0.0] * m
        for i in range(n):
            w = worker[i]
            if wstart[i] < w_start[w]:
                w_start[w] = wstart[i]
            if done[i] > w_stop[w]:
                w_stop[w] = done[i]
            busy[w] += done[i] - begin[i]
        return ScheduleTimes(layout, profiles, exec_list, startup, ready, wstart, begin, dend, xend, done,
                             float(makespan), w_start, w_stop, busy)

    def run_estimates(self, layout: Layout, worker_profile: Mapping[str, str] | Sequence[str],
                      estimates: Any) -> ScheduleTimes:
        """:meth:`run` with execution seconds read from ``estimates.exec_s`` (rows in topological order)."""
        if isinstance(worker_profile, Mapping):
            profiles = [worker_profile[w] for w in layout.workers]
        else:
            profiles = list(worker_profile)
        column = {name: j for j, name in enumerate(estimates.profiles)}
        unknown = [p for p in profiles if p not in column]
        if unknown:
            raise PlanError(f"profile {unknown[0]!r} is not in catalog {self.catalog.name!r}",
                            f"use one of {', '.join(self.catalog.names)}")
        cols = np.array([column[p] for p in profiles], dtype=np.int64)
        per_task = cols[np.asarray(layout.worker, dtype=np.int64)]
        if layout.exec_profile is not None:   # the protocol runs some tasks on another profile than their worker's
            per_task = np.array([column[p] for p in layout.exec_profile], dtype=np.int64)
        exec_s = np.asarray(estimates.exec_s)[np.arange(len(self.ids)), per_task]
        return self.run(layout, profiles, exec_s.tolist())

    # ------------------------------------------------------------------ DataFrames
    def result(self, times: ScheduleTimes) -> ScheduleResult:
        """The tidy :class:`ScheduleResult` of a run (DataFrames; for final plans, not inner loops)."""
        lay = times.layout
        workers = [lay.workers[w] for w in lay.worker]
        profiles = [times.profiles[w] for w in lay.worker]
        exec_end = times.exec_end
        columns = {
            "worker": workers, "profile": profiles, "cold_start": [p < 0 for p in lay.prev],
            "startup_s": times.startup, "ready_s": times.ready, "worker_start_s": times.worker_start,
            "download_start_s": times.begin, "download_end_s": times.download_end,
            "exec_start_s": times.download_end, "exec_end_s": exec_end, "upload_start_s": exec_end,
            "upload_end_s": times.done, "done_s": times.done, "input_bytes": self.in_bytes,
            "output_bytes": self.out_bytes, "stored": list(lay.store),
        }
        tasks = pd.DataFrame(columns, index=pd.Index(self.ids, name="task_id"))
        spans = tasks.groupby("worker").agg(profile=("profile", "first"), start_s=("worker_start_s", "min"),
                                            stop_s=("done_s", "max"), tasks=("done_s", "size"))
        spans["busy_s"] = (tasks["done_s"] - tasks["download_start_s"]).groupby(tasks["worker"]).sum()
        spans["gb_s"], spans["cost"] = bill(spans["profile"].tolist(), spans["start_s"].to_numpy(),
                                            spans["stop_s"].to_numpy(), self.catalog)
        return ScheduleResult(tasks, spans.reset_index(), times.makespan_s)


class Retimer:
    """The timing of one :class:`Layout` under changing worker profiles, re-timing only what a change reaches.

    Planners that try one profile change after another (``critical-path``,
    ``cost-deadline``) call :meth:`change`, read :attr:`makespan_s` or
    :meth:`cost`, then :meth:`commit` or :meth:`rollback`.  A change re-times the
    moved workers' tasks and, in execution order, only the tasks whose parent or
    predecessor on the worker finishes at a different time - often a small part of
    the workflow when the change is absorbed by slack.  The values are exactly
    those of :meth:`ScheduleEvaluator.run` (same operations in the same order);
    tests compare them.
    """

    def __init__(self, evaluator: ScheduleEvaluator, layout: Layout, estimates: Any,
                 worker_profile: Mapping[str, str] | Sequence[str]) -> None:
        times = evaluator.run_estimates(layout, worker_profile, estimates)
        self.evaluator, self.layout = evaluator, layout
        self._column = {name: j for j, name in enumerate(estimates.profiles)}
        self._exec = np.asarray(estimates.exec_s).tolist()
        self._number = {w: k for k, w in enumerate(layout.workers)}
        self.profiles = list(times.profiles)
        self.exec_s, self.startup, self.ready = list(times.exec_s), list(times.startup), list(times.ready)
        self.worker_start, self.begin = list(times.worker_start), list(times.begin)
        self.download_end, self.exec_end, self.done = list(times.download_end), list(times.exec_end), list(times.done)
        self.worker_start_s, self.worker_stop_s = list(times.worker_start_s), list(times.worker_stop_s)
        self.busy_s = list(times.busy_s)
        self.makespan_s = times.makespan_s
        n = len(evaluator.ids)
        self._pos = [0] * n
        for k, i in enumerate(layout.order):
            self._pos[i] = k
        self._next = [-1] * n
        for i, before in enumerate(layout.prev):
            if before >= 0:
                self._next[before] = i
        self._tasks_of: list[list[int]] = [[] for _ in layout.workers]
        for i, w in enumerate(layout.worker):
            self._tasks_of[w].append(i)
        self._sink_rank = [-1] * n
        for k, i in enumerate(evaluator.sinks):
            self._sink_rank[i] = k
        self._last_sink = self._scan_sinks()[1]
        self._undo_tasks: dict[int, tuple] = {}
        self._undo_workers: dict[int, tuple] = {}
        self._undo_makespan: tuple[float, int] | None = None
        self.retimed = 0                   # tasks re-timed by the last change (for benchmarks)

    def _scan_sinks(self) -> tuple[float, int]:
        """The makespan and a sink that attains it, by a full scan of the sinks."""
        done, fetch = self.done, self.evaluator.fetch_s
        best, arg = float("-inf"), -1
        for k, i in enumerate(self.evaluator.sinks):
            v = done[i] + fetch[k]
            if v > best:
                best, arg = v, i
        return (float(best), arg) if arg >= 0 else (0.0, -1)

    def _task_state(self, i: int) -> tuple:
        return (self.exec_s[i], self.startup[i], self.ready[i], self.worker_start[i], self.begin[i],
                self.download_end[i], self.exec_end[i], self.done[i])

    def change(self, changes: Mapping[str, str]) -> float:
        """Move workers (by id) to profiles and re-time what that reaches; returns the new makespan."""
        ev, lay = self.evaluator, self.layout
        worker, prev, store, remote = lay.worker, lay.prev, lay.store, lay.remote
        parents, download_s, upload_s = ev.parents, ev.download_s, ev.upload_s
        children, nxt, pos = ev.children, self._next, self._pos
        invoke, coord = ev.invoke_s, ev.coordination_s
        done, profiles, column, table = self.done, self.profiles, self._column, self._exec
        if self._undo_makespan is None:
            self._undo_makespan = (self.makespan_s, self._last_sink)
        heap: list[tuple[int, int]] = []
        queued: set[int] = set()
        for name, profile in changes.items():
            w = self._number[name]
            if profile not in column:
                raise PlanError(f"profile {profile!r} is not in catalog {ev.catalog.name!r}",
                                f"use one of {', '.join(ev.catalog.names)}")
            if w not in self._undo_workers:
                self._undo_workers[w] = (profiles[w], self.worker_start_s[w], self.worker_stop_s[w], self.busy_s[w])
            profiles[w] = profile
            for i in self._tasks_of[w]:
                if i not in queued:
                    queued.add(i)
                    heap.append((pos[i], i))
        heapify(heap)
        touched_workers: set[int] = set()
        retimed = 0
        while heap:
            _, i = heappop(heap)
            retimed += 1
            if i not in self._undo_tasks:
                self._undo_tasks[i] = self._task_state(i)
            w = worker[i]
            touched_workers.add(w)
            ps = parents[i]
            if ps:
                last = last_parent(ps, done)
                best = done[last]
                r = best + coord
                arrival = r + (invoke if worker[last] != w else 0.0)
                download = 0.0
                row, fetched = download_s[i], remote[i]
                for k in range(len(ps)):
                    if fetched[k] and row[k] > download:
                        download = row[k]
            else:
                r, arrival, download = 0.0, invoke, 0.0
            before = prev[i]
            if before < 0:
                s = ev.startup_of(profiles[w])
                ws = arrival
                b = ws + s
            else:
                s = 0.0
                ws = done[before]
                b = arrival if arrival > ws else ws
            x = table[i][column[profiles[w]]]
            e = b + download + x
            d = e + upload_s[i] if store[i] else e
            old = done[i]
            self.exec_s[i], self.startup[i], self.ready[i], self.worker_start[i] = x, s, r, ws
            self.begin[i], self.download_end[i], self.exec_end[i], done[i] = b, b + download, e, d
            if d != old:
                for c in children[i]:
                    if c not in queued:
                        queued.add(c)
                        heappush(heap, (pos[c], c))
                c = nxt[i]
                if c >= 0 and c not in queued:
                    queued.add(c)
                    heappush(heap, (pos[c], c))
        for w in touched_workers:
            if w not in self._undo_workers:
                self._undo_workers[w] = (profiles[w], self.worker_start_s[w], self.worker_stop_s[w], self.busy_s[w])
            start, stop, busy = float("inf"), float("-inf"), 0.0
            for i in self._tasks_of[w]:
                if self.worker_start[i] < start:
                    start = self.worker_start[i]
                if done[i] > stop:
                    stop = done[i]
                busy += done[i] - self.begin[i]
            self.worker_start_s[w], self.worker_stop_s[w], self.busy_s[w] = start, stop, busy
        # the makespan: only re-timed sinks can move it; a full scan only when the last one may have got earlier
        fetch, sink_rank = ev.fetch_s, self._sink_rank
        moved = [(done[i] + fetch[sink_rank[i]], i) for i in queued if sink_rank[i] >= 0]
        if moved:
            if self._last_sink in queued:
                self.makespan_s, self._last_sink = self._scan_sinks()
            else:
                top = max(moved)
                if top[0] > self.makespan_s:
                    self.makespan_s, self._last_sink = float(top[0]), top[1]
        self.retimed = retimed
        return self.makespan_s

    def commit(self) -> None:
        """Keep the changes made since the last commit."""
        self._undo_tasks.clear()
        self._undo_workers.clear()
        self._undo_makespan = None

    def rollback(self) -> None:
        """Undo the changes made since the last commit."""
        for i, state in self._undo_tasks.items():
            (self.exec_s[i], self.startup[i], self.ready[i], self.worker_start[i], self.begin[i],
             self.download_end[i], self.exec_end[i], self.done[i]) = state
        for w, (profile, start, stop, busy) in self._undo_workers.items():
            self.profiles[w], self.worker_start_s[w], self.worker_stop_s[w], self.busy_s[w] = profile, start, stop, busy
        if self._undo_makespan is not None:
            self.makespan_s, self._last_sink = self._undo_makespan
        self.commit()

    def times(self) -> ScheduleTimes:
        """A snapshot as a :class:`ScheduleTimes`."""
        return ScheduleTimes(self.layout, tuple(self.profiles), list(self.exec_s), list(self.startup),
                             list(self.ready), list(self.worker_start), list(self.begin), list(self.download_end),
                             list(self.exec_end), list(self.done), self.makespan_s, list(self.worker_start_s),
                             list(self.worker_stop_s), list(self.busy_s))

    def cost(self, catalog: Catalog) -> float:
        """Total dollars, computed exactly as :meth:`ScheduleTimes.cost`."""
        price = np.array([catalog[p].price_per_s for p in self.profiles])
        return float(((np.asarray(self.worker_stop_s) - np.asarray(self.worker_start_s)) * price).sum())


def _remote(parents: Sequence[Sequence[int]], local: Sequence[Sequence[int]]) -> tuple[tuple[bool, ...], ...]:
    """Per task and parent: whether the parent's output is fetched (it is not among the task's local inputs)."""
    out = []
    for ps, here in zip(parents, local):
        if not here:
            out.append((True,) * len(ps))
        else:
            mine = set(here)
            out.append(tuple(p not in mine for p in ps))
    return tuple(out)


def evaluate_schedule(workflow: Workflow, worker_of: Mapping[str, str], worker_profile: Mapping[str, str],
                      exec_s: Mapping[str, float], catalog: Catalog, *,
                      sequence: Mapping[str, list[str]] | None = None,
                      transfer_s: TransferFn = free_transfer, startup_s: Callable[[str], float] = lambda p: 0.0,
                      invoke_s: float = 0.0, coordination_s: float = 0.0,
                      protocol: "WorkerProtocol | None" = None) -> ScheduleResult:
    """Time an assignment of tasks to workers (and workers to profiles).

    ``sequence`` gives each worker's task order; by default the topological order.
    ``exec_s`` is each task's execution seconds on its assigned profile.
    ``protocol`` decides uploads (its ``handle_output``; e.g. a dynamic plan's
    rule); by default the static rule.  One-off convenience over
    :class:`ScheduleEvaluator`.
    """
    evaluator = ScheduleEvaluator(workflow, catalog, transfer_s=transfer_s, startup_s=startup_s,
                                  invoke_s=invoke_s, coordination_s=coordination_s)
    layout = evaluator.layout(worker_of, sequence, protocol)
    times = evaluator.run(layout, worker_profile, [exec_s[t] for t in evaluator.ids])
    return evaluator.result(times)
