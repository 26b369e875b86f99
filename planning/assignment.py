"""What a planner decided: each task's worker, each worker's profile, each worker's task order.

A :class:`~planning.plan.Plan` stores its :class:`Assignment` as the planner gave it,
so nothing downstream re-derives it from the planned times: the protocol reads it
(:meth:`planning.protocol.WorkerProtocol.for_plan`), and its positional form over a
workflow's topology (:class:`Placement`) is computed once per assignment for the
engines' decision tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from planning.errors import PlanError
from planning.topology import Topology


@dataclass(frozen=True)
class Placement:
    """An assignment as arrays over a workflow's topological positions (for array-driven engines).

    ``workers`` names the workers (in order of first appearance in topological
    order); ``worker_code[i]`` indexes it for task ``i``; ``sequence[w]`` is worker
    ``w``'s task positions in its order; ``first[i]`` says task ``i`` opens its
    worker's sequence.
    """

    workers: list[str]
    worker_code: np.ndarray
    sequence: dict[str, list[int]]
    first: np.ndarray

    def worker_names(self) -> list[str]:
        """Each task's worker (topological order)."""
        return np.asarray(self.workers, dtype=object)[self.worker_code].tolist()


@dataclass(frozen=True)
class Assignment:
    """Task -> worker, worker -> profile, worker -> its tasks in order (the planner's decision, frozen).

    A dynamic plan's ``worker_of`` and ``sequence`` are the planner's prediction of
    the run-time placement; engines place its tasks through the protocol instead.
    """

    worker_of: Mapping[str, str]
    worker_profile: Mapping[str, str]
    sequence: Mapping[str, list[str]]
    #: workers the engines start without a task, seconds after the run's start (pre-warm); their first task
    #: then notifies them instead of starting them.  Empty: every worker is started by its first task.
    warm_starts: Mapping[str, float] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": {}}       # positional forms and tables are rebuilt where needed

    @classmethod
    def from_tasks(cls, tasks: pd.DataFrame, workers: pd.DataFrame) -> "Assignment":
        """The assignment of a plan table that does not carry it (a plan file written before plans stored it).

        Each worker's tasks in planned start order: by execution start, then download
        start, ties in row order.
        """
        ordered = tasks.sort_values(["exec_start_s", "download_start_s"], kind="stable")
        sequence = {w: list(g.index) for w, g in ordered.groupby("worker", sort=False)}
        # tolist(): iterating a (pyarrow-backed) string column element by element is ~20x slower
        worker_profile = dict(zip(workers["worker"].tolist(), workers["profile"].tolist()))
        return cls(dict(zip(tasks.index.tolist(), tasks["worker"].tolist())), worker_profile, sequence)

    def placement(self, topology: Topology) -> Placement:
        """The positional form over ``topology`` (computed once per topology)."""
        key = id(topology)
        cached = self._cache.get(key)
        if cached is not None and cached[0] is topology:
            return cached[1]
        placement = _placement(self, topology)
        self._cache.clear()        # (a new topology: what was compiled for the old one goes too)
        self._cache[key] = (topology, placement)
        return placement

    def compiled(self, topology: Topology, build: Any) -> Any:
        """The base protocol's decision tables on this assignment, built once per topology by ``build()``.

        They depend on the assignment and the topology only, and engines never modify
        them, so every simulation of the plan shares them.
        """
        key = ("tables", id(topology))
        cached = self._cache.get(key)
        if cached is not None and cached[0] is topology:
            return cached[1]
        tables = build()
        self._cache[key] = (topology, tables)
        return tables

    def to_dict(self) -> dict[str, Any]:
        warm = {"warm_starts": dict(self.warm_starts)} if self.warm_starts else {}
        return {"sequence": {w: list(ts) for w, ts in self.sequence.items()}, **warm}


def _placement(assignment: Assignment, topology: Topology) -> Placement:
    ids, index, n = topology.ids, topology.index, topology.n
    worker_of = assignment.worker_of
    try:
        names = [worker_of[t] for t in ids]
    except KeyError as exc:
        raise PlanError(f"the plan does not place task {exc.args[0]!r} of the workflow",
                        "simulate the plan with the workflow it was made for") from None
    if len(worker_of) != n:
        raise PlanError("the plan does not place exactly the workflow's tasks",
                        "simulate the plan with the workflow it was made for")
    codes, uniques = pd.factorize(np.asarray(names, dtype=object))
    sequence = {w: [index[t] for t in ts] for w, ts in assignment.sequence.items()}
    first = np.zeros(n, dtype=bool)
    first[[seq[0] for seq in sequence.values() if seq]] = True
    return Placement([str(w) for w in uniques], codes.astype(np.int64), sequence, first)
