"""A run as the page shows it: what the coordination server says, turned into task states and progress.

The executor records a run on its coordination server as it goes (:mod:`executor.keys`):
which tasks committed (the ``done`` hash), which logical workers hold a process (the
``running`` hash), how many were started (``claims``), the timing rows workers upload
(the ``metrics`` list, decoded by :mod:`experiments.live.reader`), failed attempts
(``attempts``) and the final error.  :class:`RunState` folds those polls into:

* each task's state - ``done`` (committed), ``running`` (the first uncommitted task of a
  worker holding a process, once all its parents are done: a worker runs its tasks in
  its planned order), ``ready`` (parents done), ``waiting``, or ``failed``;
* the real bars of the Gantt: exact phase times from the uploaded rows, else the poll
  times at which a task was first seen running and done (marked approximate);
* progress, starts, bytes moved, failures, and the projected finish
  (:class:`experiments.live.projection.Projection`: the rest of the plan at the run's pace).

When the run ends the client hands over its Trace (:meth:`RunState.finish`): from then
on every number is the trace's - its makespan (:attr:`planning.trace.Trace.makespan_s`,
the one definition the client prints) and its task rows (the report's real Gantt).
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from typing import Any

from experiments.live.projection import Projection
from experiments.live.runplan import PHASE_PAIRS, RunPlan

__all__ = ["Observation", "RunState", "STATES"]

STATES = ("waiting", "ready", "running", "done", "failed")
_CODE = {"waiting": "w", "ready": "y", "running": "r", "done": "d", "failed": "f"}
_PHASES = tuple(c for pair in PHASE_PAIRS for c in pair)
#: How the client's error names a failed task (executor.run: "task 'ID' failed on worker 'W' after N attempt(s)").
_FAILED_TASK = re.compile(r"task '([^']+)' (?:failed on worker|killed its worker)")


@dataclass
class Observation:
    """One poll of the coordination server; times in seconds since the run's submission."""

    at_s: float
    done: frozenset[str] = frozenset()
    running_workers: frozenset[str] = frozenset()
    started_workers: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)          # new task rows (phase times relative)
    worker_rows: list[dict[str, Any]] = field(default_factory=list)   # new worker rows
    attempts: dict[str, str] = field(default_factory=dict)            # task -> last failed attempt's text
    error: dict[str, Any] | None = None                               # the run's final error, if any


class RunState:
    """The live state of one run, folded from polls, and its final state from the client's Trace."""

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.index = {t: i for i, t in enumerate(plan.ids)}
        self.status = "starting"
        self.at_s = 0.0
        self.done: set[str] = set()
        self.running: set[str] = set()
        self.running_since: dict[str, float] = {}
        self.done_seen: dict[str, float] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.first_rows: dict[str, dict[str, Any]] = {}    # worker -> its first task row (cold or warm start)
        self.worker_rows: dict[str, dict[str, Any]] = {}
        self.started_workers = 0
        self.attempts: dict[str, str] = {}
        self.error: dict[str, Any] | None = None
        self.makespan_s: float | None = None
        self.final_starts: tuple[int, int] | None = None
        self._planned_done = sorted(v for v in plan.planned_done if v is not None)
        self._projection = Projection(plan)

    # ------------------------------------------------------------------ folding polls
    def observe(self, obs: Observation) -> None:
        """Fold one poll in (a finished run ignores late polls)."""
        if self.status in ("finished", "failed"):
            return
        self.status = "running"
        self.at_s = obs.at_s
        for row in obs.rows:
            if row["task_id"] in self.index and row["task_id"] not in self.rows:   # first row wins (as in the trace)
                self.rows[row["task_id"]] = row
                self.first_rows.setdefault(str(row["worker"]), row)
        for w in obs.worker_rows:
            self.worker_rows[str(w["worker"])] = w
        for t in set(obs.done) | set(self.rows):
            if t in self.index and t not in self.done:
                self.done.add(t)
                self.done_seen[t] = obs.at_s
        self.started_workers = max(self.started_workers, obs.started_workers)
        self.attempts.update(obs.attempts)
        if obs.error:
            self.error = obs.error
        self.running = self._running(obs.running_workers)
        for t in self.running:
            self.running_since.setdefault(t, obs.at_s)

    def _running(self, workers: frozenset[str]) -> set[str]:
        """Each busy worker's first uncommitted planned task, when all its parents are done."""
        out = set()
        for w in workers:
            current = next((t for t in self.plan.sequence.get(w, ()) if t not in self.done), None)
            if current is not None and self._parents_done(current):
                out.add(current)
        return out

    def _parents_done(self, task_id: str) -> bool:
        ids = self.plan.ids
        return all(ids[p] in self.done for p in self.plan.parents[self.index[task_id]])

    def fail(self, message: str, at_s: float | None = None) -> None:
        """The run failed (the client's error message): its state stays as last seen, the failed task marked.

        The run's error and attempts keys are gone by now (the client cleans up before it
        raises), so the failed task comes from the poll that saw them, else from the message.
        """
        self.status = "failed"
        if at_s is not None:
            self.at_s = at_s
        named = _FAILED_TASK.search(message)
        task = (self.error or {}).get("task") or (named.group(1) if named else None)
        self.error = {**(self.error or {}), "task": task, "message": message}
        self.running = set()                        # the run was cancelled: nothing runs any more
        if task in self.index:                      # a task runs only once its ancestors committed
            for t in self._ancestors(task) - self.done:
                self.done.add(t)
                self.done_seen[t] = self.at_s

    def _ancestors(self, task_id: str) -> set[str]:
        ids, parents = self.plan.ids, self.plan.parents
        out: set[str] = set()
        todo = [self.index[task_id]]
        while todo:
            for p in parents[todo.pop()]:
                if ids[p] not in out:
                    out.add(ids[p])
                    todo.append(p)
        return out

    def finish(self, trace: Any) -> None:
        """The run is over: every number from now on is the client's Trace."""
        self.rows = {r["task_id"]: r for r in trace.tasks.to_dict("records")}
        self.done = set(self.rows) & set(self.index)
        self.running = set()
        self.makespan_s = float(trace.makespan_s)
        self.at_s = self.makespan_s
        workers = trace.workers
        cold = int(workers["cold_start"].sum()) if len(workers) else 0
        self.final_starts = (cold, int(len(workers)) - cold)
        self.started_workers = int(len(workers))
        self.status = "finished"

    # ------------------------------------------------------------------ what the page shows
    def state_of(self, task_id: str) -> str:
        if task_id in self.done:
            return "done"
        if self.error and self.error.get("task") == task_id or task_id in self.attempts:
            return "failed"
        if task_id in self.running:
            return "running"
        return "ready" if self._parents_done(task_id) else "waiting"

    def starts(self) -> dict[str, int]:
        """Cold and warm starts: the trace's at the end; meanwhile each worker's first uploaded row."""
        if self.final_starts is not None:
            cold, warm = self.final_starts
        else:
            firsts = {w: bool(r["cold_start"]) for w, r in self.first_rows.items()}
            firsts.update({w: bool(r["cold_start"]) for w, r in self.worker_rows.items()})
            cold = sum(firsts.values())
            warm = len(firsts) - cold
        return {"workers_started": self.started_workers, "cold": cold, "warm": warm}

    def bars(self) -> list[list[Any]]:
        """Real Gantt bars ``[task, worker, 6 phase times, exact]``: exact from rows, else seen running/done."""
        out = []
        for t, row in self.rows.items():
            if t in self.index:
                out.append([self.index[t], str(row["worker"]), *(_num(row[c]) for c in _PHASES), True])
        for t in self.done - set(self.rows):
            end = self.done_seen[t]
            start = self.running_since.get(t, end)
            out.append([self.index[t], self.plan.planned_worker[self.index[t]], start, start, start, end, end, end,
                        False])
        for t in self.running:
            start = self.running_since[t]
            out.append([self.index[t], self.plan.planned_worker[self.index[t]], start, start, start, self.at_s,
                        self.at_s, self.at_s, False])
        return sorted(out, key=lambda b: (b[4] if b[4] is not None else math.inf, b[0]))

    def failures(self) -> list[dict[str, Any]]:
        out = [{"task": t, "message": text, "final": False} for t, text in sorted(self.attempts.items())]
        if self.error:
            out.append({"task": self.error.get("task"), "final": True,
                        "message": self.error.get("message") or self.error.get("traceback", "")})
        return out

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows that changes during a run (JSON-ready)."""
        states = [self.state_of(t) for t in self.plan.ids]
        counts = {s: 0 for s in STATES}
        for s in states:
            counts[s] += 1
        done = counts["done"]
        elapsed = self.makespan_s if self.makespan_s is not None else self.at_s
        if self.makespan_s is not None or self.status == "failed":
            projected = self.makespan_s      # the end itself, or none: a failed run does not finish
        else:
            projected = self._projection.finish_s(elapsed, self.done,
                                                  {t: self.running_since[t] for t in self.running}, self.rows)
        rows = self.rows.values()
        return {"run_id": self.plan.run_id, "status": self.status, "states": "".join(_CODE[s] for s in states),
                "counts": counts,
                "progress": {"done": done, "total": self.plan.total, "elapsed_s": elapsed,
                             "planned_makespan_s": _num(self.plan.planned_makespan_s),
                             "simulated_makespan_s": self.plan.simulated_makespan_s,
                             "projected_finish_s": projected, "makespan_s": self.makespan_s,
                             "planned_done_by_now": planned_done_index(self._planned_done, elapsed)},
                "starts": self.starts(),
                "bytes": {"downloaded": float(sum(_num(r["input_bytes"]) or 0.0 for r in rows)),
                          "uploaded": float(sum(_num(r["output_bytes"]) or 0.0 for r in rows))},
                "failures": self.failures(), "bars": self.bars()}


def _num(value: Any) -> float | None:
    """A finite float for JSON, None otherwise."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def planned_done_index(planned_done: list[float], at_s: float) -> int:
    """How many tasks the plan had done by ``at_s`` (for the page's planned-progress marker)."""
    return bisect.bisect_right(planned_done, at_s)
