"""Re-timing one layout under changing worker profiles: only what a change reaches."""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any, Mapping, Sequence

import numpy as np

from planning.errors import PlanError
from planning.profiles import Catalog
from planning.schedule.evaluator import ScheduleEvaluator
from planning.schedule.slack import ROUNDING as _ROUNDING
from planning.schedule.timing import Layout, ScheduleTimes, time_task


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

    ``kept_startups`` (per worker number): the start-up each worker pays while it
    keeps the profile it starts with here - e.g. the warm starts of the pooled
    timing of that assignment, so that a search's timing is the pooled one until
    it moves a worker; a moved worker pays its new profile's cold start (the idle
    process it took was of its old profile).  None: every worker starts cold.
    """

    def __init__(self, evaluator: ScheduleEvaluator, layout: Layout, estimates: Any,
                 worker_profile: Mapping[str, str] | Sequence[str],
                 kept_startups: Sequence[float] | None = None) -> None:
        if layout.overlapped:
            raise PlanError("the re-timer times the base rule; this layout's protocol overlaps transfers and "
                            "executions (pre-load, delayed I/O)", "time it with ScheduleEvaluator.run")
        if layout.exec_profile is not None:
            raise PlanError("the re-timer moves whole workers between profiles; this layout's protocol runs some "
                            "tasks on another profile than their worker's", "time it with ScheduleEvaluator.run")
        self.evaluator, self.layout = evaluator, layout
        self._home = [worker_profile[w] for w in layout.workers] if isinstance(worker_profile, Mapping) \
            else list(worker_profile)
        if kept_startups is not None and len(kept_startups) != len(layout.workers):
            raise PlanError(f"kept_startups has {len(kept_startups)} entries for {len(layout.workers)} workers",
                            "give one start-up per worker number")
        self._kept = list(kept_startups) if kept_startups is not None else None
        times = evaluator.run_estimates(layout, worker_profile, estimates, startups=self._startups(self._home))
        self.column = {name: j for j, name in enumerate(estimates.profiles)}
        self._exec_array = np.asarray(estimates.exec_s, dtype=float)                   # task x profile column
        self.exec_table: list[list[float]] = self._exec_array.tolist()
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
        self._snapshot: dict[str, Any] | None = None   # the state a whole-layout change replaced
        self.retimed = 0                   # tasks re-timed by the last change (for benchmarks)
        self.bounded = False               # whether the last change was checked against ``latest`` (it only slowed)
        self._prices: tuple[Catalog, dict[str, float]] | None = None    # cost()'s catalog and its prices by name

    def _scan_sinks(self) -> tuple[float, int]:
        """The makespan and a sink that attains it, by a full scan of the sinks."""
        done, fetch = self.done, self.evaluator.fetch_s
        best, arg = float("-inf"), -1
        for k, i in enumerate(self.evaluator.sinks):
            v = done[i] + fetch[k]
            if v > best:
                best, arg = v, i
        return (float(best), arg) if arg >= 0 else (0.0, -1)

    def startup_for(self, w: int, profile: str) -> float:
        """The start-up worker number ``w`` pays on ``profile``: its kept one on the profile it started with, else
        the profile's cold start."""
        if self._kept is not None and profile == self._home[w]:
            return self._kept[w]
        return self.evaluator.startup_of(profile)

    def _startups(self, profiles: Sequence[str]) -> list[float] | None:
        """Each worker's start-up on ``profiles`` (None without kept start-ups: the evaluator's cold ones)."""
        if self._kept is None:
            return None
        return [self.startup_for(w, p) for w, p in enumerate(profiles)]

    def _task_state(self, i: int) -> tuple:
        return (self.exec_s[i], self.startup[i], self.ready[i], self.worker_start[i], self.begin[i],
                self.download_end[i], self.exec_end[i], self.done[i])

    def change(self, changes: Mapping[str, str], *, whole: bool = False,
               latest: Sequence[float] | None = None) -> float:
        """Move workers (by id) to profiles and re-time what that reaches; returns the new makespan.

        A change that moves a large share of the tasks (a quarter or more), or
        one the caller expects to reach far (``whole``), made on a committed
        state, re-times everything in one plain pass instead (:meth:`_change_all`):
        a pass in order needs no queue, about three times cheaper per task.  The
        values are the same either way.

        ``latest``: per task, a time past which its completion proves the
        makespan over a limit (:func:`~planning.schedule.slack.latest_done` at
        that limit of an earlier state no slower anywhere).  A change that only
        slows tasks (:meth:`only_slows`) then stops re-timing at the first task
        past it and returns ``inf``, for the caller to roll back: a rejected move
        costs the re-timing up to where it breaks the limit, not all it reaches.
        Used only where that bound is exact (no invocation latency, see
        :mod:`~planning.schedule.slack`); :attr:`bounded` says whether it was.
        """
        moved = {self._number[name] for name in changes}
        if self._undo_makespan is None and len(self.done) > 0 and (
                whole or 4 * sum(len(self._tasks_of[w]) for w in moved) >= len(self.done)):
            self.bounded = False
            return self._change_all(changes)
        if self._undo_makespan is None:
            self._undo_makespan = (self.makespan_s, self._last_sink)
        if latest is not None and not (self.evaluator.invoke_s == 0.0 and self.only_slows(changes)):
            latest = None
        self.bounded = latest is not None
        heap, queued = self._move_workers(changes)
        touched_workers, retimed = self._retime(heap, queued, latest)
        if touched_workers is None:          # past ``latest``: the limit is broken, the state half re-timed
            self.retimed = retimed
            return float("inf")
        self._respan(touched_workers)
        self._move_makespan(queued)
        self.retimed = retimed
        return self.makespan_s

    def _move_workers(self, changes: Mapping[str, str]) -> tuple[list[tuple[int, int]], set[int]]:
        """Set the changed workers' profiles (saving their undo state); returns their tasks as a heap by
        position and the set of tasks queued, where :meth:`_retime` starts."""
        ev, pos, column, profiles = self.evaluator, self._pos, self.column, self.profiles
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
        return heap, queued

    def profile_of(self, worker: str) -> str:
        """The worker's current profile."""
        return self.profiles[self._number[worker]]

    def only_slows(self, changes: Mapping[str, str]) -> bool:
        """Whether moving these workers makes none of their tasks (nor their start-up) shorter."""
        ev, table, column, exec_s = self.evaluator, self.exec_table, self.column, self.exec_s
        for name, profile in changes.items():
            w = self._number[name]
            j = column.get(profile)
            if j is None or self.startup_for(w, profile) < self.startup_for(w, self.profiles[w]):
                return False
            for i in self._tasks_of[w]:
                if table[i][j] < exec_s[i]:
                    return False
        return True

    def _retime(self, heap: list[tuple[int, int]], queued: set[int],
                latest: Sequence[float] | None = None) -> tuple[set[int] | None, int]:
        """Re-time the queued tasks in plan order, queueing the children and successor of every task whose
        completion moved (a task whose completion stays put reaches nothing further); returns the workers
        touched (None: a task passed ``latest``, see :meth:`change`) and how many tasks were re-timed."""
        ev, lay = self.evaluator, self.layout
        worker, prev, store = lay.worker, lay.prev, lay.store
        parents, download_s, upload_s = ev.parents, ev.input_download_s(lay), ev.upload_s
        children, nxt, pos = ev.children, self._next, self._pos
        invoke, coord = ev.invoke_s, ev.coordination_s
        done, profiles, column, table = self.done, self.profiles, self.column, self.exec_table
        touched_workers: set[int] = set()
        retimed = 0
        while heap:
            _, i = heappop(heap)
            retimed += 1
            if i not in self._undo_tasks:
                self._undo_tasks[i] = self._task_state(i)
            w = worker[i]
            touched_workers.add(w)
            before = prev[i]
            s = self.startup_for(w, profiles[w]) if before < 0 else 0.0
            x = table[i][column[profiles[w]]]
            r, ws, b, download, e, d = time_task(parents[i], w, before, s, done, worker, download_s[i], x,
                                                 upload_s[i], store[i], invoke, coord,
                                                 self.layout.warm[w] if self.layout.warm else -1.0)
            old = done[i]
            self.exec_s[i], self.startup[i], self.ready[i], self.worker_start[i] = x, s, r, ws
            self.begin[i], self.download_end[i], self.exec_end[i], done[i] = b, b + download, e, d
            if d != old:
                if latest is not None and d > latest[i] + _ROUNDING * (abs(d) + 1.0):
                    return None, retimed
                for c in children[i]:
                    if c not in queued:
                        queued.add(c)
                        heappush(heap, (pos[c], c))
                c = nxt[i]
                if c >= 0 and c not in queued:
                    queued.add(c)
                    heappush(heap, (pos[c], c))
        return touched_workers, retimed

    _STATE = ("profiles", "exec_s", "startup", "ready", "worker_start", "begin", "download_end", "exec_end", "done",
              "worker_start_s", "worker_stop_s", "busy_s", "makespan_s", "_last_sink")

    def _change_all(self, changes: Mapping[str, str]) -> float:
        """:meth:`change` by one full run of the layout; the lists it replaces are kept whole for a rollback."""
        profiles = list(self.profiles)
        for name, profile in changes.items():
            if profile not in self.column:
                raise PlanError(f"profile {profile!r} is not in catalog {self.evaluator.catalog.name!r}",
                                f"use one of {', '.join(self.evaluator.catalog.names)}")
            profiles[self._number[name]] = profile
        self._snapshot = {name: getattr(self, name) for name in self._STATE}
        cols = np.array([self.column[p] for p in profiles], dtype=np.int64)
        tasks = np.arange(len(self._exec_array))
        times = self.evaluator.run(self.layout, profiles,
                                   self._exec_array[tasks, cols[self.evaluator.worker_array(self.layout)]],
                                   self._startups(profiles))
        self.profiles = list(times.profiles)
        self.exec_s, self.startup, self.ready = times.exec_s, times.startup, times.ready
        self.worker_start, self.begin, self.download_end = times.worker_start, times.begin, times.download_end
        self.exec_end, self.done = times.exec_end, times.done
        self.worker_start_s, self.worker_stop_s, self.busy_s = times.worker_start_s, times.worker_stop_s, times.busy_s
        self.makespan_s, self._last_sink = self._scan_sinks()
        self._undo_makespan = (self._snapshot["makespan_s"], self._snapshot["_last_sink"])
        self.retimed = len(self.done)
        return self.makespan_s

    def _respan(self, workers: set[int]) -> None:
        """Re-compute the start, stop and busy seconds of the workers whose tasks were re-timed."""
        done, profiles = self.done, self.profiles
        for w in workers:
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

    def _move_makespan(self, queued: set[int]) -> None:
        """Only re-timed sinks can move the makespan; a full scan only when the last one may have got earlier."""
        done, fetch, sink_rank = self.done, self.evaluator.fetch_s, self._sink_rank
        moved = [(done[i] + fetch[sink_rank[i]], i) for i in queued if sink_rank[i] >= 0]
        if moved:
            if self._last_sink in queued:
                self.makespan_s, self._last_sink = self._scan_sinks()
            else:
                top = max(moved)
                if top[0] > self.makespan_s:
                    self.makespan_s, self._last_sink = float(top[0]), top[1]

    def commit(self) -> None:
        """Keep the changes made since the last commit."""
        self._snapshot = None
        self._undo_tasks.clear()
        self._undo_workers.clear()
        self._undo_makespan = None

    def rollback(self) -> None:
        """Undo the changes made since the last commit."""
        if self._snapshot is not None:
            for name, value in self._snapshot.items():
                setattr(self, name, value)
            self.commit()
            return
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
        if self._prices is None or self._prices[0] is not catalog:      # a search asks once per trial
            self._prices = (catalog, {p.name: p.price_per_s for p in catalog})
        price = np.fromiter(map(self._prices[1].__getitem__, self.profiles), float, len(self.profiles))
        return float(((np.asarray(self.worker_stop_s) - np.asarray(self.worker_start_s)) * price).sum())
