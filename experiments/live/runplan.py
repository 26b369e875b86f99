"""What the live page knows of a run before it starts: its tasks, the plan's placement and times, the predictions.

Built once per run, before the run is submitted (so none of it costs the run any
time), and sent to the page once: the DAG's layout, each task's planned worker,
profile and phase times, the planned workers, and the two makespans the real one
is measured against - the plan's and the simulator's at the SLA.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from experiments.live.layout import Layout, layered_layout
from planning.workflow import Workflow

__all__ = ["RunPlan", "PHASE_PAIRS"]

#: The phases the page draws for a task, as in the report's Gantt (:data:`experiments.plan_figures.PHASES`).
PHASE_PAIRS = (("download_start_s", "download_end_s"), ("exec_start_s", "exec_end_s"),
               ("upload_start_s", "upload_end_s"))
_PHASE_COLUMNS = tuple(c for pair in PHASE_PAIRS for c in pair)


@dataclass(frozen=True)
class RunPlan:
    """A run's static description: tasks in topological order with their planned placement and times."""

    run_id: str
    label: str
    workflow: str
    planner: str
    sla: str
    ids: tuple[str, ...]
    kinds: tuple[str, ...]
    parents: tuple[tuple[int, ...], ...]
    planned_worker: tuple[str, ...]
    planned_profile: tuple[str, ...]
    planned_phases: tuple[tuple[float, ...], ...]     # per task: the six times of PHASE_PAIRS
    planned_done: tuple[float, ...]
    planned_makespan_s: float
    simulated_makespan_s: float | None
    sequence: dict[str, tuple[str, ...]]               # each planned worker's tasks in planned order
    workers: tuple[tuple[str, str], ...]               # planned workers (name, profile), by planned start, then name
    layout: Layout
    dynamic: bool = False

    @classmethod
    def of(cls, workflow: Workflow, plan: Any, run_id: str, *, simulated_makespan_s: float | None = None,
           label: str = "") -> "RunPlan":
        """From a workflow and its plan (a :class:`planning.plan.Plan`)."""
        layout = layered_layout(workflow)
        ids = layout.ids
        index = {t: i for i, t in enumerate(ids)}
        tasks = plan.tasks
        if "task_id" in tasks.columns:
            tasks = tasks.set_index("task_id")
        tasks = tasks.reindex(list(ids))
        phases = tasks[list(_PHASE_COLUMNS)].to_numpy(dtype=float)
        sequence = _planned_sequences(plan, tasks)
        workers = sorted(zip(plan.workers["start_s"], plan.workers["worker"], plan.workers["profile"]),
                         key=lambda w: (float(w[0]), _natural(str(w[1]))))
        return cls(run_id=run_id, label=label or run_id, workflow=workflow.name, planner=str(plan.planner),
                   sla=str(plan.sla.name), ids=ids, kinds=tuple(workflow.task(t).kind for t in ids),
                   parents=tuple(tuple(index[p] for p in workflow.parents(t)) for t in ids),
                   planned_worker=tuple(str(w) for w in tasks["worker"]),
                   planned_profile=tuple(str(p) for p in tasks["profile"]),
                   planned_phases=tuple(tuple(_finite(v) for v in row) for row in phases),
                   planned_done=tuple(_finite(v) for v in tasks["done_s"]),
                   planned_makespan_s=float(plan.makespan_s),
                   simulated_makespan_s=None if simulated_makespan_s is None else float(simulated_makespan_s),
                   sequence=sequence, workers=tuple((str(w), str(p)) for _, w, p in workers),
                   layout=layout, dynamic=bool(plan.dynamic))

    @property
    def total(self) -> int:
        return len(self.ids)

    def to_dict(self) -> dict[str, Any]:
        """The page's static part of the run (sent once)."""
        return {"run_id": self.run_id, "label": self.label, "workflow": self.workflow, "planner": self.planner,
                "sla": self.sla, "dynamic": self.dynamic, "ids": list(self.ids), "kinds": list(self.kinds),
                "planned_worker": list(self.planned_worker), "planned_profile": list(self.planned_profile),
                "planned_phases": [list(p) for p in self.planned_phases],
                "planned_makespan_s": _finite(self.planned_makespan_s),
                "simulated_makespan_s": self.simulated_makespan_s,
                "workers": [list(w) for w in self.workers], "layout": self.layout.to_dict()}


def _planned_sequences(plan: Any, tasks: Any) -> dict[str, tuple[str, ...]]:
    """Each worker's tasks in the order it runs them: the plan's own order, or by planned start (dynamic plans)."""
    if not plan.dynamic:
        return {str(w): tuple(ts) for w, ts in plan.sequence().items()}
    ordered = tasks.reset_index().sort_values(["exec_start_s", "task_id"], kind="stable")
    out: dict[str, list[str]] = {}
    for task_id, worker in zip(ordered["task_id"], ordered["worker"]):
        out.setdefault(str(worker), []).append(str(task_id))
    return {w: tuple(ts) for w, ts in out.items()}


def _natural(name: str) -> tuple:
    """``w2`` before ``w10``: digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _finite(value: Any) -> float | None:
    """A float for JSON (None for NaN or infinity)."""
    value = float(value)
    return value if math.isfinite(value) else None
