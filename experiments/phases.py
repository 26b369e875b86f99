"""Where the time went: each run's critical path cut into phases (waiting, start-up, transfers, work, coordination).

A makespan error says *that* a prediction was off; this says *where*.  Walking back
from the task that finished last, each step goes to the parent that finished last
(the one the child really waited for), so the path's phases add up exactly to the
run's makespan:

==============  ===========================================================
coordination    parent done -> child ready (and last task done -> client holds the result)
waiting         child ready -> download start, less the worker's start-up
start-up        the part of child ready -> download start its worker spent starting up
download        download start -> download end
execution       download end -> execution end
upload          execution end -> task done
==============  ===========================================================

Boundaries are clipped to never go back in time, so every phase is >= 0.  The same function serves the
plan, the simulation and the real run: they share the Trace's columns
(:data:`planning.trace.TASK_COLUMNS`), which is what makes them comparable side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

#: Phase names in path order, and the Trace column that ends each (the first starts at the parent's done).
PHASES = ("coordination", "waiting", "start-up", "download", "execution", "upload")
#: Columns of :func:`critical_path_phases`'s table.
PHASE_TABLE_COLUMNS = ("step", "task_id", "kind", "worker", "phase", "start_s", "seconds")
EDGES_FILE = "edges.parquet"
#: Which table of a results directory holds which engine's tasks.
ENGINE_TABLES = (("plan", "plans", "plan_workers"), ("simulation", "sim_tasks", "sim_workers"),
                 ("real", "real_tasks", "real_workers"))


def critical_path(tasks: pd.DataFrame, parents: Mapping[str, Sequence[str]] | None) -> list[str]:
    """Task ids from the first to the last task of the run's critical path.

    Without ``parents`` (a results directory written before edges were saved) a task's
    critical parent is inferred as the task that finished last at or before it became
    ready: exact on chains and on most fork-joins, a guess where unrelated branches
    finish in between, which the report says.
    """
    last = tasks.drop_duplicates("task_id", keep="last").set_index("task_id")
    if last.empty:
        return []
    done = last["done_s"]
    current = str(done.idxmax())
    path = [current]
    seen = {current}
    while True:
        if parents is not None:
            candidates = [p for p in parents.get(current, ()) if p in done.index]
        else:
            ready = last.at[current, "ready_s"]
            candidates = [t for t in done.index[done <= ready + 1e-9] if t not in seen]
        if not candidates:
            break
        current = str(max(candidates, key=lambda t: (done[t], t)))
        if current in seen:   # a malformed graph must not loop forever
            break
        path.append(current)
        seen.add(current)
    return path[::-1]


def critical_path_phases(tasks: pd.DataFrame, parents: Mapping[str, Sequence[str]] | None,
                         makespan_s: float | None = None, workers: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (critical-path task, phase): when the phase started and how long it took.

    ``tasks`` are one run's Trace task rows (retries: the last attempt counts);
    ``makespan_s`` (client submit -> client holds the result) adds a final coordination
    row for fetching the result, so the rows sum to the makespan.

    Between a task becoming ready and its download starting, the time its worker spent
    starting up is "start-up" and the rest "waiting".  The start-up interval is the
    worker row's ``start_s -> ready_s`` when ``workers`` (the Trace's worker rows) are
    given - unambiguous in every engine, whereas ``worker_start_s`` marks the start of
    start-up in a plan but its end in a real trace - and otherwise ``startup_s`` seconds
    of that span.
    """
    path = critical_path(tasks, parents)
    by_id = tasks.sort_values("attempt", kind="stable").drop_duplicates("task_id", keep="last").set_index("task_id")
    up = workers.drop_duplicates("worker", keep="last").set_index("worker")[["start_s", "ready_s"]] \
        if workers is not None and len(workers) and {"start_s", "ready_s"} <= set(workers.columns) else None
    rows = []
    previous_done = 0.0
    for step, task_id in enumerate(path):
        task = by_id.loc[task_id]
        b = [previous_done]
        for col in ("ready_s", "download_start_s", "download_end_s", "exec_end_s", "done_s"):
            value = task[col]
            b.append(max(b[-1], float(value)) if value == value else b[-1])
        startup = _startup_within(task, b[1], b[2], up)
        seconds = (b[1] - b[0], b[2] - b[1] - startup, startup, b[3] - b[2], b[4] - b[3], b[5] - b[4])
        starts = (b[0], b[1], b[2] - startup, b[2], b[3], b[4])
        for phase, start, length in zip(PHASES, starts, seconds):
            rows.append((step, task_id, str(task.get("kind", "")), str(task["worker"]), phase, start, length))
        previous_done = b[-1]
    if makespan_s is not None and makespan_s == makespan_s and path:
        rows.append((len(path), "(client)", "", "", "coordination", previous_done,
                     max(0.0, float(makespan_s) - previous_done)))
    return pd.DataFrame(rows, columns=list(PHASE_TABLE_COLUMNS))


def _startup_within(task: pd.Series, ready: float, download_start: float, up: pd.DataFrame | None) -> float:
    """Seconds of ``ready -> download_start`` its worker spent starting up (0 for a task on a warm worker)."""
    span = download_start - ready
    startup = float(task.get("startup_s", 0.0) or 0.0)
    if span <= 0 or not startup > 0:
        return 0.0
    if up is not None and task["worker"] in up.index:
        start, end = up.at[task["worker"], "start_s"], up.at[task["worker"], "ready_s"]
        if start == start and end == end:
            return max(0.0, min(download_start, float(end)) - max(ready, float(start)))
    return min(startup, span)


# ====================================================================== a results directory
def edges_frame(workflows: Mapping[str, object]) -> pd.DataFrame:
    """(workflow, parent, child) rows of every workflow (label -> :class:`planning.workflow.Workflow`)."""
    rows = [(label, str(p), str(c)) for label, wf in workflows.items() for p, c in wf.graph.edges]
    return pd.DataFrame(rows, columns=["workflow", "parent", "child"])


def save_edges(root: str | Path, workflows: Mapping[str, object]) -> Path:
    """Write ``ROOT/edges.parquet`` so phases can follow the real parent of each task later."""
    path = Path(root) / EDGES_FILE
    edges_frame(workflows).to_parquet(path, index=False)
    return path


def load_parents(root: str | Path) -> dict[str, dict[str, list[str]]] | None:
    """workflow -> child -> parents, from ``ROOT/edges.parquet`` (None when the run did not save it)."""
    path = Path(root) / EDGES_FILE
    if not path.is_file():
        return None
    parents: dict[str, dict[str, list[str]]] = {}
    for wf, parent, child in pd.read_parquet(path)[["workflow", "parent", "child"]].itertuples(index=False):
        parents.setdefault(wf, {}).setdefault(child, []).append(parent)
    return parents


def results_phases(tables: Mapping[str, pd.DataFrame], summary: pd.DataFrame,
                   parents: Mapping[str, Mapping[str, Sequence[str]]] | None) -> pd.DataFrame:
    """The critical-path phases of every cell and engine, tidy: cell tags, ``engine``, then the phase columns.

    ``tables`` maps ``plans``/``sim_tasks``/``real_tasks`` (and optionally their worker
    tables ``plan_workers``/...) to their frames; makespans come
    from ``summary`` (planned, the single simulation's trace, real).
    """
    makespan_cols = {"plan": "planned_makespan_s", "simulation": "sim_trace_makespan_s", "real": "real_makespan_s"}
    by_cell = summary.set_index("cell_id") if "cell_id" in summary else pd.DataFrame()
    frames = []
    for engine, table, worker_table in ENGINE_TABLES:
        frame = tables.get(table)
        workers = tables.get(worker_table)
        if frame is None or frame.empty:
            continue
        for cell_id, cell_tasks in frame.groupby("cell_id", sort=False):
            workflow = str(cell_tasks["workflow"].iloc[0]) if "workflow" in cell_tasks else ""
            cell_parents = parents.get(workflow, {}) if parents is not None else None
            col = makespan_cols[engine]
            makespan = by_cell.at[cell_id, col] if cell_id in by_cell.index and col in by_cell else np.nan
            cell_workers = workers[workers["cell_id"] == cell_id] if workers is not None and len(workers) else None
            part = critical_path_phases(cell_tasks, cell_parents, makespan, cell_workers)
            tags = {k: cell_tasks[k].iloc[0] for k in ("cell_id", "workflow", "planner", "sla", "repetition")
                    if k in cell_tasks}
            for i, (k, v) in enumerate({**tags, "engine": engine, "edges": "saved" if parents else "inferred"}
                                       .items()):
                part.insert(i, k, v)
            frames.append(part)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def phase_totals(phases: pd.DataFrame) -> pd.DataFrame:
    """Seconds per (cell, engine, phase): the critical path's time budget, wide (one column per phase)."""
    if phases.empty:
        return pd.DataFrame()
    keys = [k for k in ("cell_id", "workflow", "planner", "sla", "repetition", "engine") if k in phases]
    wide = phases.pivot_table(index=keys, columns="phase", values="seconds", aggfunc="sum", sort=False)
    return wide.reindex(columns=[p for p in PHASES if p in wide.columns]).reset_index()
