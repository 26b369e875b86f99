"""Metric rows uploaded by workers -> a :class:`planning.trace.Trace` (engine ``execute``).

Workers time every phase with the wall clock (epoch seconds, so several hosts
can share a run if their clocks are synchronised); the client subtracts its own
submission time, so every time in the trace is seconds since submission and the
trace joins the plan's and the simulator's on ``task_id``.  Workers are billed
like the plan bills them: from their start (the start invocation) to their stop,
at their profile's price.  A task the protocol ran under another profile than
its worker's says what its limits really were in ``meta["task_limits"]``
(task id -> record of :func:`executor.limits.task_profile_limits`).
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Iterable

import pandas as pd

from planning.profiles import Catalog
from planning.billing import bill, resources
from planning.protocol import WorkerProtocol
from planning.trace import Trace
from planning.workflow import Workflow

__all__ = ["build_trace", "limits_summary"]

_PHASES = ("ready", "worker_start", "download_start", "download_end", "exec_start", "exec_end",
           "upload_start", "upload_end", "done")
_EXTRA_WORKER = ("pid", "launcher", "host", "status", "cpu_enforced", "memory_enforced", "cpu_quota_us",
                 "cpu_period_us", "threads", "start_via", "direct_runs")


def decode_batches(raw: Iterable[bytes], decode: Callable[[bytes], dict[str, Any]] = pickle.loads
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Task and worker rows of the uploaded batches (``decode`` authenticates each).

    A task appears once: a re-run worker records the tasks its dead predecessor had
    committed again (``recovered``), and the predecessor's own row, when it was
    uploaded before the death, comes first and is kept.
    """
    tasks: list[dict[str, Any]] = []
    workers: list[dict[str, Any]] = []
    seen: set[str] = set()
    for data in raw:
        batch = decode(data)
        for row in batch.get("tasks", []):
            if row["task_id"] not in seen:
                seen.add(row["task_id"])
                tasks.append(row)
        if batch.get("worker"):
            workers.append(batch["worker"])
    return tasks, workers


#: per-task columns of a run that measured host contention (executor.contention)
_CONTENTION = ("cpu_wait_s", "exec_cpu_s")


def build_trace(workflow: Workflow, protocol: WorkerProtocol, catalog: Catalog, raw_batches: Iterable[bytes],
                t0: float, makespan_s: float, meta: dict[str, Any], sink_seen: dict[str, float] | None = None,
                decode: Callable[[bytes], dict[str, Any]] = pickle.loads) -> Trace:
    """The run's Trace from the metric batches its workers uploaded.

    A sink's completion is visible to the client as soon as the server ran its
    completion script, before the worker reads the reply; ``sink_seen`` (when the
    client popped each sink's event) caps the sink's ``upload_end``/``done`` so a
    trace never shows a sink done after the client held its result.
    """
    sink_seen = sink_seen or {}
    task_rows, worker_rows = decode_batches(raw_batches, decode)
    run_id = meta.get("run_id", "")
    profile_of = {w["worker"]: w["profile"] for w in worker_rows}
    rows = []
    task_profiles = [r.get("profile") or profile_of.get(r["worker"]) or protocol.profile_of(r["worker"])
                     for r in task_rows]
    task_cpus, task_memory = resources(task_profiles, catalog)
    for k, r in enumerate(task_rows):
        profile = task_profiles[k]
        row = {"run_id": run_id, "engine": "execute", "task_id": r["task_id"], "kind": workflow.task(r["task_id"]).kind,
               "worker": r["worker"], "profile": profile, "cpus": task_cpus[k],
               "memory_mb": task_memory[k], "cold_start": bool(r["cold_start"]),
               "startup_s": float(r["startup_s"]), "attempt": int(r.get("attempt", 0)),
               "input_bytes": float(r["input_bytes"]), "output_bytes": float(r["output_bytes"])}
        for phase in _PHASES:
            row[f"{phase}_s"] = float(r[phase]) - t0
        for measured in _CONTENTION:   # only when the run measured them (ExecutorSettings.measure_contention)
            if measured in r:
                row[measured] = float(r[measured])
        if r["task_id"] in sink_seen:
            seen = sink_seen[r["task_id"]] - t0
            row["upload_end_s"] = max(row["upload_start_s"], min(row["upload_end_s"], seen))
            row["done_s"] = max(row["upload_end_s"], min(row["done_s"], seen))
        rows.append(row)
    order = workflow.index()
    tasks = pd.DataFrame(rows, columns=None if rows else list(_empty_task_columns()))
    if len(tasks):
        tasks = tasks.sort_values("task_id", key=lambda s: s.map(order), kind="stable")
    profiles = [w["profile"] for w in worker_rows]
    cpus, memory = resources(profiles, catalog)
    gb_s, cost = bill(profiles, [float(w["start"]) for w in worker_rows], [float(w["stop"]) for w in worker_rows],
                      catalog)
    wrows = []
    for k, w in enumerate(worker_rows):
        wrow = {"run_id": run_id, "engine": "execute", "worker": w["worker"], "profile": w["profile"],
                "cpus": cpus[k], "memory_mb": memory[k],
                "cold_start": bool(w["cold_start"]), "start_s": float(w["start"]) - t0,
                "ready_s": float(w["ready"]) - t0, "stop_s": float(w["stop"]) - t0, "busy_s": float(w["busy_s"]),
                "tasks": int(w["tasks"]), "gb_s": gb_s[k], "cost": cost[k]}
        for extra in _EXTRA_WORKER:
            wrow[extra] = w.get(extra, "")
        wrows.append(wrow)
    workers = pd.DataFrame(wrows, columns=None if wrows else list(_empty_worker_columns()))
    if len(workers):
        workers = workers.sort_values("start_s", kind="stable")
    task_limits = {r["task_id"]: r["limits"] for r in task_rows if "limits" in r}
    if task_limits:   # tasks the protocol ran under another profile than their worker's: what was enforced
        meta = {**meta, "task_limits": task_limits}
    return Trace(tasks, workers, makespan_s, {**meta, "engine": "execute", "t0_epoch": t0})


def limits_summary(workers: pd.DataFrame) -> dict[str, Any]:
    """What was really enforced on the run's worker processes, per kind of limit and per profile."""
    if not len(workers):
        return {"cpu": "none", "memory": "none", "threads": "none", "by_profile": {}}

    def joined(col: str, frame: pd.DataFrame) -> str:
        return ",".join(sorted({str(v) for v in frame[col] if str(v)})) or "none"

    by_profile = {}
    for profile, g in workers.groupby("profile"):
        by_profile[str(profile)] = {"cpu": joined("cpu_enforced", g), "memory": joined("memory_enforced", g),
                                    "threads": joined("threads", g),
                                    "cpu_quota_us": joined("cpu_quota_us", g),
                                    "cpu_period_us": joined("cpu_period_us", g)}
    return {"cpu": joined("cpu_enforced", workers), "memory": joined("memory_enforced", workers),
            "threads": joined("threads", workers), "by_profile": by_profile}


def _empty_task_columns() -> dict[str, str]:
    from planning.trace import TASK_COLUMNS
    return TASK_COLUMNS


def _empty_worker_columns() -> tuple[str, ...]:
    from planning.trace import WORKER_COLUMNS
    return (*WORKER_COLUMNS, *_EXTRA_WORKER)
