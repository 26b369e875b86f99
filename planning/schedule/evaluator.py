"""Timing many assignments of one workflow: precomputed topology and transfers, layouts, runs, DataFrames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from planning.billing import bill
from planning.errors import PlanError
from planning.profiles import Catalog
from planning.schedule.startups import KEEP_ALIVE_S
from planning.schedule.timing import (Layout, ScheduleResult, ScheduleTimes, TransferFn, TransferManyFn,
                                      fetch_download_s, free_transfer, time_task, worker_order)
from planning.topology import segments
from planning.workflow import Workflow

if TYPE_CHECKING:  # pragma: no cover
    from planning.protocol import WorkerProtocol
    from planning.schedule.levels import Levels


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


class ScheduleEvaluator:
    """One workflow's topology and transfer times, precomputed for timing many assignments.

    ``transfer_s`` and ``startup_s`` are as in :func:`evaluate_schedule`;
    ``transfer_many`` (optional) computes many transfer times at once and must
    agree with ``transfer_s`` element by element (the cost model's are vectorised).
    Build: O(n + e) and one transfer time per edge and per task.
    """

    def __init__(self, workflow: Workflow, catalog: Catalog, *, transfer_s: TransferFn = free_transfer,
                 startup_s: Callable[[str], float] = lambda p: 0.0, invoke_s: float = 0.0,
                 coordination_s: float = 0.0, transfer_many: TransferManyFn | None = None,
                 warm_startup_s: Callable[[str], float] = lambda p: 0.0, keep_alive_s: float = KEEP_ALIVE_S) -> None:
        self.workflow = workflow
        self.catalog = catalog
        self.invoke_s = float(invoke_s)
        self.coordination_s = float(coordination_s)
        self.keep_alive_s = float(keep_alive_s)
        self._startup_fn = startup_s
        self._startup: dict[str, float] = {}
        self._warm_startup_fn = warm_startup_s
        self._warm_startup: dict[str, float] = {}
        # what is derived from one layout (worker order, successors, input downloads, levels, worker array), kept
        # for the last layout asked about: a search times one layout many times (see :meth:`_of_layout`)
        self._layout: Layout | None = None
        self._layout_values: dict[str, Any] = {}
        self._remaining_cache: tuple | None = None  # (layout, estimates, remaining seconds): see :meth:`_remaining`
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
        self._sink_array = np.asarray(sinks, dtype=np.int64)
        self._fetch_array = np.asarray(fetch, dtype=float)

    @classmethod
    def for_cost_model(cls, workflow: Workflow, catalog: Catalog, cost_model: Any, sla: Any) -> "ScheduleEvaluator":
        """Transfers and cold starts from a :class:`~planning.costs.cost_model.CostModel` at ``sla`` (vectorised)."""
        def one(nbytes: float, direction: str) -> float:
            return float(cost_model.transfer_s(nbytes, direction, sla))

        def many(sizes: np.ndarray, direction: str) -> np.ndarray:
            return np.atleast_1d(cost_model.transfer_s(sizes, direction, sla)) if len(sizes) else np.zeros(0)

        return cls(workflow, catalog, transfer_s=one, transfer_many=many,
                   startup_s=lambda profile: float(cost_model.startup_s(catalog[profile], True, sla)),
                   warm_startup_s=lambda profile: float(cost_model.startup_s(catalog[profile], False, sla)))

    def startup_of(self, profile: str) -> float:
        """A profile's cold start-up seconds (asked once per profile)."""
        value = self._startup.get(profile)
        if value is None:
            value = self._startup[profile] = float(self._startup_fn(profile))
        return value

    def warm_startup_of(self, profile: str) -> float:
        """A profile's warm start-up seconds (an idle process takes the worker; asked once per profile).

        Never more than the cold start: a cost model whose start-ups are set by hand
        (a cold start of 0, the warm prior above it) would otherwise make a reused
        process slower than a new one, and the plan's pooled timing longer than the
        cold bound its planner searched with.
        """
        value = self._warm_startup.get(profile)
        if value is None:
            value = self._warm_startup[profile] = min(float(self._warm_startup_fn(profile)), self.startup_of(profile))
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
        warm = None
        if tables is not None and tables.warm_starts:
            warm = tuple(float(tables.warm_starts.get(w, -1.0)) for w in number)
        if tables is None:   # dynamic: uploads asked per task, inputs follow the predicted placement
            store = tuple(bool(protocol.handle_output(t, worker_of[t]).store) for t in ids)
            remote = tuple(tuple(worker[p] != worker[i] for p in ps) for i, ps in enumerate(self.parents))
            exec_profile = None
        else:
            store, remote = tuple(tables.store), tables.fetched
            exec_profile = tuple(tables.profile) if tables.other_profile else None
        preload, lazy = _overlaps(protocol, tables, ids, worker_of, store)
        return Layout(tuple(number), tuple(worker), tuple(order), tuple(prev), store, seq, remote, exec_profile, warm,
                      preload, lazy)

    def worker_order(self, layout: Layout) -> tuple[list[int], list[int], list[int]]:
        """:func:`~planning.schedule.timing.worker_order` of ``layout``, the last layout's kept: a search times one
        layout many times.  The third list (unmet dependencies per task) is a fresh copy, for the caller to count down.
        """
        nxt, last_task, waiting = self._of_layout(
            "worker_order", layout, lambda: worker_order(layout, self.parents, len(layout.workers)))
        return nxt, last_task, list(waiting)

    def successors(self, layout: Layout) -> list[list[int]]:
        """Per task, the tasks whose unmet dependencies its completion counts down: its children, then the task after
        it on its worker (twice when that one is also a child: it counts both, as :meth:`worker_order`'s third list
        does).  The last layout's kept."""
        def build() -> list[list[int]]:
            nxt = self.worker_order(layout)[0]
            return [cs + [c] if c >= 0 else cs for cs, c in zip(self.children, nxt)]
        return self._of_layout("successors", layout, build)

    def input_download_s(self, layout: Layout) -> list[float]:
        """Per task, its fetched inputs' download seconds (:func:`~planning.schedule.timing.fetch_download_s`) under
        ``layout``, the last layout's kept: the same for every profile a search tries.  O(n + e) once per layout."""
        return self._of_layout("input_download_s", layout, lambda: fetch_download_s(layout.remote, self.download_s))

    # ------------------------------------------------------------------ timing
    def levels(self, layout: Layout) -> "Levels | None":
        """``layout``'s tasks by level (:class:`~planning.schedule.levels.Levels`) when timing by levels pays
        (:func:`~planning.schedule.levels.worth_it`), else None; the last layout's kept, like :meth:`worker_order`."""
        from planning.schedule.levels import levels_if_worth_it

        return self._of_layout("levels", layout, lambda: levels_if_worth_it(self, layout))

    def run(self, layout: Layout, worker_profile: Mapping[str, str] | Sequence[str],
            exec_s: Sequence[float], startups: Sequence[float] | None = None) -> ScheduleTimes:
        """Time ``layout`` with each worker's profile and each task's execution seconds (topological order).

        ``worker_profile`` maps worker ids to profiles, or lists them per worker
        number.  Every worker starts cold (:meth:`run_pooled`: warm on freed
        processes), unless ``startups`` gives each worker number's start-up seconds
        (a search that holds the warm starts of a pooled timing fixed: see
        :class:`~planning.schedule.Retimer`).  O(n + e): a wide layout a level at a
        time with array operations (:mod:`planning.schedule.levels`), else task by
        task; the same values either way.
        """
        profiles = _per_worker(layout, worker_profile)
        if layout.overlapped:
            if startups is not None:
                raise PlanError("fixed start-ups time the base rule; this layout's protocol overlaps transfers and "
                                "executions (pre-load, delayed I/O)", "time it without startups")
            from planning.schedule.overlap import time_overlapped

            return time_overlapped(self, layout, profiles, exec_s, pooled=False)
        startup_of_worker = [self.startup_of(p) for p in profiles] if startups is None else list(startups)
        levels = self.levels(layout)
        if levels is not None:
            from planning.schedule.levels import time_levels

            execs = np.asarray(exec_s, dtype=float)
            return self.assemble(layout, profiles, execs, *time_levels(self, layout, levels, startup_of_worker, execs),
                                 None)
        n = len(self.ids)
        worker, prev, store = layout.worker, layout.prev, layout.store
        parents, download_s, upload_s = self.parents, self.input_download_s(layout), self.upload_s
        invoke, coord = self.invoke_s, self.coordination_s
        ready = [0.0] * n
        wstart = [0.0] * n
        begin = [0.0] * n
        dend = [0.0] * n
        xend = [0.0] * n
        done = [0.0] * n
        startup = [0.0] * n
        exec_list = [float(x) for x in exec_s]
        warm = layout.warm or (-1.0,) * len(layout.workers)
        for i in layout.order:
            w = worker[i]
            before = prev[i]
            s = startup_of_worker[w] if before < 0 else 0.0
            r, ws, b, download, e, d = time_task(parents[i], w, before, s, done, worker, download_s[i],
                                                 exec_list[i], upload_s[i], store[i], invoke, coord, warm[w])
            startup[i] = s
            ready[i], wstart[i], begin[i], dend[i], xend[i], done[i] = r, ws, b, b + download, e, d
        return self.assemble(layout, profiles, exec_list, startup, ready, wstart, begin, dend, xend, done, None)

    def assemble(self, layout: Layout, profiles: tuple[str, ...], exec_list: list[float], startup: list[float],
                 ready: list[float], wstart: list[float], begin: list[float], dend: list[float],
                 xend: list[float], done: list[float], reused: tuple[bool, ...] | None,
                 exec_start: list[float] | None = None) -> ScheduleTimes:
        """The :class:`ScheduleTimes` of per-task times: the makespan and each worker's span and busy time.

        With array operations (a search assembles every timing it makes): the spans are a minimum and a maximum
        per worker, and the busy times add each worker's tasks in task order from 0.0 (``bincount``), as a
        plain loop would.  The per-task times may come as lists or arrays; the record holds lists.
        """
        m = len(layout.workers)
        if len(done) == 0:
            return ScheduleTimes(layout, profiles, exec_list, startup, ready, wstart, begin, dend, xend, done, 0.0,
                                 [float("inf")] * m, [float("-inf")] * m, [0.0] * m, reused, exec_start)
        worker = self.worker_array(layout)
        done_a = np.asarray(done, dtype=float)
        makespan = float((done_a[self._sink_array] + self._fetch_array).max())
        w_start = np.full(m, np.inf)
        w_stop = np.full(m, -np.inf)
        np.minimum.at(w_start, worker, np.asarray(wstart, dtype=float))
        np.maximum.at(w_stop, worker, done_a)
        busy = np.bincount(worker, weights=done_a - np.asarray(begin, dtype=float), minlength=m)
        per_task = (_as_list(x) for x in (exec_list, startup, ready, wstart, begin, dend, xend, done))
        return ScheduleTimes(layout, profiles, *per_task, makespan, w_start.tolist(), w_stop.tolist(), busy.tolist(),
                             reused, exec_start)

    def worker_array(self, layout: Layout) -> np.ndarray:
        """``layout.worker`` as an array (the last layout's kept): for array operations over tasks."""
        return self._of_layout("worker_array", layout, lambda: np.asarray(layout.worker, dtype=np.int64))

    def _of_layout(self, name: str, layout: Layout, build: Callable[[], Any]) -> Any:
        """The value ``name`` derived from ``layout`` (``build()`` the first time), kept while ``layout`` is the last
        layout asked about; a new layout drops every value of the previous one."""
        if self._layout is not layout:
            self._layout, self._layout_values = layout, {}
        values = self._layout_values
        if name not in values:
            values[name] = build()
        return values[name]

    def run_pooled(self, layout: Layout, worker_profile: Mapping[str, str] | Sequence[str], exec_s: Sequence[float],
                   warm_pool: Mapping[str, int] | None = None) -> ScheduleTimes:
        """:meth:`run` with the processes' pool rule: a worker starts warm on a process an earlier one freed.

        Timed in start-time order (:func:`planning.schedule.pooled.time_pooled`), as the
        simulator meets the events; ``warm_pool``: idle processes per profile at the start.
        """
        from planning.schedule.pooled import time_pooled

        return time_pooled(self, layout, _per_worker(layout, worker_profile), exec_s, warm_pool)

    def _remaining(self, layout: Layout, estimates: Any) -> list[float]:
        """:func:`~planning.schedule.pooled.remaining_s` at each task's fastest execution in ``estimates``, the last
        (layout, estimates) pair's kept: one list bounds every plan of a search."""
        from planning.schedule.pooled import remaining_s

        cached = self._remaining_cache
        if cached is None or cached[0] is not layout or cached[1] is not estimates:
            fastest = np.asarray(estimates.exec_s, dtype=float).min(axis=1).tolist()
            cached = self._remaining_cache = (layout, estimates, remaining_s(self, layout, fastest))
        return cached[2]

    def run_estimates(self, layout: Layout, worker_profile: Mapping[str, str] | Sequence[str],
                      estimates: Any, pooled: bool = False, limit: float | None = None,
                      startups: Sequence[float] | None = None) -> ScheduleTimes | None:
        """:meth:`run` (``pooled``: :meth:`run_pooled`) with execution seconds from ``estimates.exec_s``.

        ``limit`` (pooled only): None as soon as the makespan is sure to exceed it, for a search that keeps only
        plans within a limit (a plan that misses is found out part-way: :mod:`planning.schedule.pooled`).
        ``startups`` (not pooled): each worker number's start-up seconds, as :meth:`run` takes them.
        """
        profiles = _per_worker(layout, worker_profile)
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
        if pooled:
            if limit is not None:
                from planning.schedule.pooled import time_pooled

                return time_pooled(self, layout, profiles, exec_s.tolist(), limit=limit,
                                   remaining=self._remaining(layout, estimates))
            return self.run_pooled(layout, profiles, exec_s.tolist())
        return self.run(layout, profiles, exec_s.tolist(), startups)

    # ------------------------------------------------------------------ DataFrames
    def result(self, times: ScheduleTimes) -> ScheduleResult:
        """The tidy :class:`ScheduleResult` of a run (DataFrames; for final plans, not inner loops)."""
        lay = times.layout
        workers = [lay.workers[w] for w in lay.worker]
        profiles = [times.profiles[w] for w in lay.worker]
        exec_end = times.exec_end
        columns = {
            "worker": workers, "profile": profiles,
            "cold_start": [p < 0 and not (times.reused and times.reused[w]) for p, w in zip(lay.prev, lay.worker)],
            "startup_s": times.startup, "ready_s": times.ready, "worker_start_s": times.worker_start,
            "download_start_s": times.begin, "download_end_s": times.download_end,
            "exec_start_s": times.exec_start if times.exec_start is not None else times.download_end,
            "exec_end_s": exec_end, "upload_start_s": exec_end,
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


def _overlaps(protocol: "WorkerProtocol", tables: Any, ids: Sequence[str], worker_of: Mapping[str, str],
              store: Sequence[bool]) -> tuple[bool | tuple[bool, ...], tuple[bool, ...] | None]:
    """The protocol's overlaps of transfers and executions: (pre-load per task or False, lazy uploads per task
    or None).

    Asked only of a static protocol that overrides them, so the base's layouts are unchanged.
    """
    from planning.protocol import WorkerProtocol

    cls = type(protocol)
    if tables is None:
        return False, None
    preload = cls.preloads is not WorkerProtocol.preloads and bool(protocol.preloads())
    if preload:
        preload = tuple(bool(protocol.preloads_inputs(t)) for t in ids)
        preload = preload if any(preload) else False
    lazy = None
    if cls.lazy_upload is not WorkerProtocol.lazy_upload:
        lazy = tuple(bool(s) and bool(protocol.lazy_upload(t, worker_of[t])) for t, s in zip(ids, store))
        lazy = lazy if any(lazy) else None
    return preload, lazy


def _as_list(values: Sequence[float]) -> list[float]:
    """Per-task times as the list :class:`ScheduleTimes` holds (an array's converted; a list is kept)."""
    return values.tolist() if isinstance(values, np.ndarray) else values


def _per_worker(layout: Layout, worker_profile: Mapping[str, str] | Sequence[str]) -> tuple[str, ...]:
    """Profiles per worker number, from a mapping of worker ids or a list already per number."""
    if isinstance(worker_profile, Mapping):
        return tuple(worker_profile[w] for w in layout.workers)
    return tuple(worker_profile)


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
