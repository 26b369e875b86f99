"""When a running run will finish: the rest of the plan, re-timed at the pace the run keeps.

The projected finish is ``now`` plus the longest path through the tasks not done yet,
where a task waits for its parents and for the task its worker runs before it (the
plan's sequence), each task lasting its planned duration (download to upload) times
the run's *pace*, less what a running task has already spent; plus the plan's tail
(the sink's result fetched after its upload: the planned makespan minus the last
planned completion).  The pace is the real over the planned duration, summed over the
tasks whose exact rows arrived (1 before any did): a host that runs every task twice
as slow as planned doubles what is left, while time lost at the start (cold starts,
one slow task) is counted once, as it is.
"""

from __future__ import annotations

from typing import Any, Mapping

import networkx as nx

from experiments.live.runplan import RunPlan

__all__ = ["Projection"]


class Projection:
    """The plan's precedence (DAG edges and worker order) in one order, built once per run."""

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        index = {t: i for i, t in enumerate(plan.ids)}
        preds = [set(p) for p in plan.parents]
        for tasks in plan.sequence.values():
            for before, after in zip(tasks, tasks[1:]):
                if before in index and after in index:
                    preds[index[after]].add(index[before])
        self.preds = [sorted(p) for p in preds]
        self.order = _topological(self.preds)
        self.duration = [_duration(p) for p in plan.planned_phases]
        finite = [d for d in plan.planned_done if d is not None]
        self.tail_s = max(0.0, plan.planned_makespan_s - max(finite)) if finite else 0.0

    def pace(self, rows: Mapping[str, Mapping[str, Any]]) -> float:
        """Real over planned duration of the tasks with exact rows (1 without any)."""
        index = {t: i for i, t in enumerate(self.plan.ids)}
        real = planned = 0.0
        for task_id, row in rows.items():
            i = index.get(task_id)
            if i is None or self.duration[i] <= 0:
                continue
            real += max(0.0, float(row["upload_end_s"]) - float(row["download_start_s"]))
            planned += self.duration[i]
        return real / planned if planned > 0 and real > 0 else 1.0

    def finish_s(self, now_s: float, done: set[str], running_since: Mapping[str, float],
                 rows: Mapping[str, Mapping[str, Any]]) -> float:
        """The projected finish (seconds since submission); ``now_s`` once everything is done."""
        ids = self.plan.ids
        pace = self.pace(rows)
        end = [0.0] * len(ids)
        longest = 0.0
        for i in self.order:
            if ids[i] in done:
                continue
            left = self.duration[i] * pace
            if ids[i] in running_since:
                left = max(0.0, left - (now_s - running_since[ids[i]]))
            end[i] = left + max((end[p] for p in self.preds[i]), default=0.0)
            longest = max(longest, end[i])
        if len(done) >= len(ids):
            return now_s
        return now_s + longest + self.tail_s


def _duration(phases: tuple[float | None, ...]) -> float:
    start, end = phases[0], phases[5]
    return max(0.0, end - start) if start is not None and end is not None else 0.0


def _topological(preds: list[list[int]]) -> list[int]:
    """A topological order of the combined precedence, ties by index (the DAG's order where it can be); a worker
    order against the DAG (a broken plan) falls back on the DAG's order."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(preds)))
    graph.add_edges_from((p, i) for i, ps in enumerate(preds) for p in ps)
    try:
        return list(nx.lexicographical_topological_sort(graph))
    except nx.NetworkXUnfeasible:
        return list(range(len(preds)))
