"""The Trace: what happened (or was predicted to happen) in one run of a plan.

One schema for every engine - ``plan`` (the planner's analytical schedule),
``simulate`` (SimPy) and ``execute`` (the real executor) - so comparing planned,
simulated and real is a join on ``task_id`` (or ``worker``), never a translation.

Times are seconds since the client submitted the workflow (t = 0).  The makespan
has one definition for every engine and chart: from the client submitting the
workflow to the client holding the last sink's result (:attr:`Trace.makespan_s`),
which includes fetching the sinks' results, so it may exceed the last ``done_s``.

Task rows (:data:`TASK_COLUMNS`): identity, placement, the phases
``ready -> worker_start -> download -> execute -> upload -> done`` and bytes.
Worker rows (:data:`WORKER_COLUMNS`): lifetime, cold or warm start, busy seconds and
cost (a worker is billed from its start to its stop, as on serverless platforms).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from planning.billing import BilledWorkers, resources
from planning.errors import PlanlabError

ENGINES = ("plan", "simulate", "execute")

TASK_COLUMNS: dict[str, str] = {
    "run_id": "str", "engine": "str", "task_id": "str", "kind": "str", "worker": "str", "profile": "str",
    "cpus": "float", "memory_mb": "float", "cold_start": "bool", "startup_s": "float", "attempt": "int",
    "ready_s": "float", "worker_start_s": "float", "download_start_s": "float", "download_end_s": "float",
    "exec_start_s": "float", "exec_end_s": "float", "upload_start_s": "float", "upload_end_s": "float",
    "done_s": "float", "input_bytes": "float", "output_bytes": "float",
}

WORKER_COLUMNS: dict[str, str] = {
    "run_id": "str", "engine": "str", "worker": "str", "profile": "str", "cpus": "float", "memory_mb": "float",
    "cold_start": "bool", "start_s": "float", "ready_s": "float", "stop_s": "float", "busy_s": "float",
    "tasks": "int", "gb_s": "float", "cost": "float",
}

PHASE_COLUMNS = ("ready_s", "worker_start_s", "download_start_s", "download_end_s", "exec_start_s", "exec_end_s",
                 "upload_start_s", "upload_end_s", "done_s")


class TraceError(PlanlabError):
    """A trace breaks its schema."""


def _coerce(df: pd.DataFrame, schema: Mapping[str, str], what: str) -> pd.DataFrame:
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise TraceError(f"{what} lacks column(s) {', '.join(missing)}", f"fill every column of {what}")
    out = df.copy()
    for col, kind in schema.items():
        if kind == "float":
            out[col] = pd.to_numeric(out[col]).astype("float64")
        elif kind == "int":
            out[col] = pd.to_numeric(out[col]).astype("int64")
        elif kind == "bool":
            out[col] = out[col].astype(bool)
        else:
            out[col] = out[col].astype(str)
    return out.reset_index(drop=True)


@dataclass
class Trace(BilledWorkers):
    """Task and worker tables of one run, its makespan and where it came from."""

    tasks: pd.DataFrame
    workers: pd.DataFrame
    makespan_s: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tasks = _coerce(self.tasks, TASK_COLUMNS, "trace tasks")
        self.workers = _coerce(self.workers, WORKER_COLUMNS, "trace workers")
        self.makespan_s = float(self.makespan_s)

    @classmethod
    def from_plan(cls, plan: Any, run_id: str | None = None) -> "Trace":
        """The plan's analytical schedule as a Trace (``engine="plan"``).

        So planned vs simulated vs real is one join on ``task_id``: the planner's
        predicted phase times fill the same columns the engines fill.  CPUs and
        memory come from the plan's catalog; every task is a first attempt.
        """
        run_id = run_id if run_id is not None else f"plan-{plan.planner}-{plan.sla.name}"
        t = plan.tasks.reset_index()
        cpus, memory = resources(t["profile"].tolist(), plan.catalog)
        tasks = pd.DataFrame({"run_id": run_id, "engine": "plan", "task_id": t["task_id"], "kind": t["kind"],
                              "worker": t["worker"], "profile": t["profile"], "cpus": cpus,
                              "memory_mb": memory, "cold_start": t["cold_start"],
                              "startup_s": t["startup_s"], "attempt": 0})
        for col in PHASE_COLUMNS + ("input_bytes", "output_bytes"):
            tasks[col] = t[col].to_numpy()
        w = plan.workers
        first_ready = (t["worker_start_s"] + t["startup_s"]).groupby(t["worker"]).min()
        w_cpus, w_memory = resources(w["profile"].tolist(), plan.catalog)
        workers = pd.DataFrame({"run_id": run_id, "engine": "plan", "worker": w["worker"], "profile": w["profile"],
                                "cpus": w_cpus, "memory_mb": w_memory,
                                "cold_start": True, "start_s": w["start_s"],
                                "ready_s": w["worker"].map(first_ready).fillna(w["start_s"]), "stop_s": w["stop_s"],
                                "busy_s": w["busy_s"], "tasks": w["tasks"], "gb_s": w["gb_s"], "cost": w["cost"]})
        meta = {"run_id": run_id, "engine": "plan", "planner": plan.planner, "sla": plan.sla.name,
                "workflow": plan.workflow_name, "dynamic": bool(plan.dynamic)}
        return cls(tasks, workers, plan.makespan_s, meta)

    # ------------------------------------------------------------------ views
    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id", self.tasks["run_id"].iloc[0] if len(self.tasks) else ""))

    @property
    def engine(self) -> str:
        return str(self.meta.get("engine", self.tasks["engine"].iloc[0] if len(self.tasks) else ""))

    @property
    def cold_starts(self) -> int:
        return int(self.workers["cold_start"].sum())

    def validate(self) -> "Trace":
        """Phases are ordered within each task row (NaN phases are skipped)."""
        t = self.tasks
        cols = [c for c in PHASE_COLUMNS if c != "worker_start_s"]
        values = t[cols].to_numpy()
        with np.errstate(invalid="ignore"):
            diffs = np.diff(values, axis=1)
        bad = np.nanmin(diffs, axis=1, initial=0.0) < -1e-6 if len(t) else np.array([], dtype=bool)
        if bad.any():
            row = t[bad].iloc[0]
            raise TraceError(f"trace task {row['task_id']!r} has phases out of order", "phases must not go back in time")
        return self

    def to_history(self, workflow_name: str, structure_hash: str, t0_epoch: float | None = None) -> pd.DataFrame:
        """Rows of the history schema, so the next plan learns from this run."""
        from planning.costs.history import validate_history

        t = self.tasks
        t0 = self.meta.get("t0_epoch", 0.0) if t0_epoch is None else t0_epoch
        df = pd.DataFrame({
            "run_id": t["run_id"], "workflow": workflow_name, "structure_hash": structure_hash,
            "task_id": t["task_id"], "kind": t["kind"], "profile": t["profile"], "cpus": t["cpus"],
            "memory_mb": t["memory_mb"], "input_bytes": t["input_bytes"], "output_bytes": t["output_bytes"],
            "download_s": (t["download_end_s"] - t["download_start_s"]).clip(lower=0),
            "exec_s": (t["exec_end_s"] - t["exec_start_s"]).clip(lower=0),
            "upload_s": (t["upload_end_s"] - t["upload_start_s"]).clip(lower=0),
            "startup_s": t["startup_s"], "cold_start": t["cold_start"],
            "worker": t["worker"], "engine": t["engine"], "attempt": t["attempt"],
        })
        for phase in PHASE_COLUMNS:
            df[phase.removesuffix("_s") + "_ts"] = t[phase] + float(t0)
        for measured in ("cpu_wait_s", "exec_cpu_s"):   # a real run that measured contention (executor.contention)
            if measured in t:
                df[measured] = t[measured]
        return validate_history(df.fillna({"download_s": 0.0, "upload_s": 0.0, "exec_s": 0.0}))

    # ------------------------------------------------------------------ storage
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tasks.to_parquet(directory / "tasks.parquet", index=False)
        self.workers.to_parquet(directory / "workers.parquet", index=False)
        (directory / "trace.json").write_text(json.dumps({"makespan_s": self.makespan_s, "meta": self.meta},
                                                         indent=1, default=str))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "Trace":
        directory = Path(directory)
        info = json.loads((directory / "trace.json").read_text())
        return cls(pd.read_parquet(directory / "tasks.parquet"), pd.read_parquet(directory / "workers.parquet"),
                   info["makespan_s"], info.get("meta", {}))


def compare_traces(reference: Trace, other: Trace, on: str = "task_id") -> pd.DataFrame:
    """Join two traces per task: each phase of both plus the differences.

    The comparison the toolkit is about (planned vs simulated vs real) is this
    join; ``*_ref`` columns come from ``reference``.
    """
    cols = [on, "worker", "profile", *PHASE_COLUMNS]
    joined = reference.tasks[cols].merge(other.tasks[cols], on=on, suffixes=("_ref", "_other"))
    for phase in ("exec_start_s", "done_s"):
        joined[f"{phase}_error"] = joined[f"{phase}_other"] - joined[f"{phase}_ref"]
    return joined
