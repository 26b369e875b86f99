"""WfFormat out: a plan or a run (a :class:`~planning.trace.Trace`) as a WfCommons workflow instance.

So a planlab run can be read by the tools of the WfCommons ecosystem (WfChef
recipes, WRENCH simulators, WfInstances analyses) and by planlab itself
(``planlab inspect``, ``--planner recorded``), a plan or an engine's trace is
written as a WfFormat 1.5 instance:

* ``workflow.specification``: the DAG and its files, exactly as
  :func:`planning.sources.wfformat_write.write_wfformat` writes them (so edge and output bytes
  read back unchanged);
* ``workflow.execution``: the trace's makespan, each task's ``runtimeInSeconds``
  (its execute phase: ``exec_end_s - exec_start_s``, for a plan the planned one),
  ``readBytes``/``writtenBytes`` (downloaded and stored bytes), the task's worker
  as its machine, and one machine per worker with its profile's CPUs (rounded
  up: WfFormat counts whole cores) and memory; ``executedAt`` is absolute when the
  trace knows its start epoch (real runs), else the export time;
* ``planlab``: an extension block WfFormat tools ignore, with the engine, run,
  planner, SLA, each worker's profile and fractional CPUs, and every task's phase
  times, so nothing planlab measured is lost.

Every instance is validated against the official schema shipped in
``planning/sources/data/`` (JSON Schema Draft 4, as WfFormat's own validator does, plus its
semantic checks: parents and machines declared) before it is written; validation
needs the ``jsonschema`` package (``pip install -e .[wfformat]``; the dev extra has it).
Cost: O(tasks + edges + files).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from planning.errors import PlanlabError, WorkflowError
from planning.sources.wfformat import EXTENSION_KEY
from planning.sources.wfformat_write import write_wfformat
from planning.trace import PHASE_COLUMNS, Trace
from planning.workflow import Workflow

#: Schema versions this module writes and validates, with their shipped schema files.
SCHEMAS: dict[str, Path] = {"1.5": Path(__file__).resolve().parent / "data" / "wfformat-1.5.schema.json"}
DEFAULT_SCHEMA = "1.5"
_HOSTNAME_CHARS = re.compile(r"[^A-Za-z0-9-]+")


def trace_to_wfformat(workflow: Workflow, trace: Trace, *, schema_version: str = DEFAULT_SCHEMA,
                      name: str | None = None) -> dict[str, Any]:
    """The WfFormat instance (a JSON-ready dict) of ``trace``, a run of ``workflow``.

    Retried tasks keep their last attempt (the one whose output was used).
    """
    if schema_version not in SCHEMAS:
        raise WorkflowError(f"cannot write WfFormat schema {schema_version!r}",
                            f"use one of: {', '.join(SCHEMAS)} (planlab reads 1.4 to 1.6)")
    doc = _specification(workflow)
    last = trace.tasks.sort_values("attempt", kind="stable").drop_duplicates("task_id", keep="last")
    rows = last.set_index("task_id").to_dict("index")       # plain dicts: pandas row access is ~100x slower
    missing = [t for t in workflow.task_ids if t not in rows]
    if missing:
        raise WorkflowError(f"the trace has no row for task {missing[0]!r} of workflow {workflow.name!r}",
                            "export a trace of this workflow (the same run's workflow, plan and trace)")
    machine_of = _machine_names(last["worker"].unique())
    t0 = trace.meta.get("t0_epoch")
    doc["name"] = name or f"{workflow.name}-{trace.engine or 'run'}-{trace.run_id or 'trace'}"
    doc["description"] = (f"planlab {trace.engine or 'run'} of workflow {workflow.name!r}"
                          f" (planner {trace.meta.get('planner', '?')}, SLA {trace.meta.get('sla', '?')})")
    doc["schemaVersion"] = schema_version
    doc["runtimeSystem"] = {"name": "planlab", "version": _planlab_version()}
    doc["workflow"]["execution"] = {
        "makespanInSeconds": float(trace.makespan_s),
        "executedAt": _timestamp(t0) if t0 else doc["createdAt"],
        "tasks": [_exec_task(workflow, task_id, rows[task_id], machine_of, t0) for task_id in workflow.task_ids],
        "machines": _machines(trace.workers, machine_of),
    }
    doc[EXTENSION_KEY] = {**doc.get(EXTENSION_KEY, {}), **_extension(trace, rows, machine_of)}
    return doc


def plan_to_wfformat(workflow: Workflow, plan: Any, *, schema_version: str = DEFAULT_SCHEMA) -> dict[str, Any]:
    """The WfFormat instance of a plan: its analytical schedule (:meth:`Trace.from_plan`) as the execution."""
    return trace_to_wfformat(workflow, Trace.from_plan(plan), schema_version=schema_version,
                             name=f"{workflow.name}-plan-{plan.planner.rpartition(':')[2]}-{plan.sla.name}")


def write_instance(doc: Mapping[str, Any], path: str | Path, *, validate: bool = True) -> Path:
    """Validate ``doc`` (unless told not to) and write it as JSON to ``path``; returns the path."""
    if validate:
        validate_wfformat(doc)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1))
    except OSError as exc:
        raise PlanlabError(f"cannot write the WfFormat instance to {str(path)!r}: {exc.strerror or exc}",
                           "give a writable path for --wfformat-out") from None
    return path


def export_trace(workflow: Workflow, trace: Trace, path: str | Path, **options: Any) -> Path:
    """Write ``trace`` of ``workflow`` as a validated WfFormat instance at ``path``."""
    return write_instance(trace_to_wfformat(workflow, trace, **options), path)


def export_plan(workflow: Workflow, plan: Any, path: str | Path, **options: Any) -> Path:
    """Write ``plan`` of ``workflow`` (its planned schedule) as a validated WfFormat instance at ``path``."""
    return write_instance(plan_to_wfformat(workflow, plan, **options), path)


def check_export_possible(path: str | Path) -> None:
    """Fail fast, before a plan is made or a run started: the validator is installed and ``path`` is writable.

    A real run can take minutes; finding only afterwards that its export cannot be
    validated or written would waste it.
    """
    _jsonschema()
    path = Path(path)
    if path.is_dir():
        raise PlanlabError(f"--wfformat-out {str(path)!r} is a directory", "give a file name, e.g. run.json")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise PlanlabError(f"cannot write the WfFormat instance to {str(path)!r}: {str(parent)!r} is not a "
                           f"writable directory", "give a writable path for --wfformat-out")


def validate_wfformat(doc: Mapping[str, Any]) -> None:
    """Check ``doc`` against the official schema of its ``schemaVersion`` and WfFormat's semantic rules.

    Raises :class:`WorkflowError` naming the first problem and where it is.
    """
    jsonschema = _jsonschema()
    version = str(doc.get("schemaVersion"))
    if version not in SCHEMAS:
        raise WorkflowError(f"no shipped WfFormat schema for version {version!r}", f"use one of: {', '.join(SCHEMAS)}")
    schema = json.loads(SCHEMAS[version].read_text())
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise WorkflowError(f"not valid WfFormat {version} at {where}: {errors[0].message}",
                            f"{len(errors)} schema error(s); fix the instance (or the exporter)")
    _check_semantics(doc)


def _jsonschema() -> Any:
    try:
        import jsonschema
    except ImportError:
        raise PlanlabError("validating WfFormat needs the jsonschema package, which is not installed",
                           "pip install -e '.[wfformat]' (the dev extra installs it too)") from None
    return jsonschema


# ---------------------------------------------------------------- pieces
def _specification(workflow: Workflow) -> dict[str, Any]:
    """The specification part, from the one writer of WfFormat files (so both exports agree)."""
    with tempfile.TemporaryDirectory(prefix="planlab-wfformat-") as tmp:
        path = write_wfformat(workflow, Path(tmp) / "spec.json")
        doc = json.loads(path.read_text())
    doc["workflow"].pop("execution", None)
    ext = doc.get(EXTENSION_KEY, {})
    ext.pop("makespan_is_estimate", None)
    return doc


def _exec_task(workflow: Workflow, task_id: str, row: Mapping[str, Any], machine_of: Mapping[str, str],
               t0: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": task_id, "runtimeInSeconds": _seconds(row["exec_end_s"] - row["exec_start_s"]),
                             "command": {"program": workflow.task(task_id).kind, "arguments": []},
                             "readBytes": _bytes(row["input_bytes"]), "writtenBytes": _bytes(row["output_bytes"]),
                             "machines": [machine_of[row["worker"]]]}
    cores = workflow.task(task_id).cores
    if cores is not None and cores >= 1:
        entry["coreCount"] = cores
    if t0 and math.isfinite(row["exec_start_s"]):
        entry["executedAt"] = _timestamp(t0 + float(row["exec_start_s"]))
    return entry


def _machines(workers: pd.DataFrame, machine_of: Mapping[str, str]) -> list[dict[str, Any]]:
    first = workers.drop_duplicates("worker").set_index("worker")
    out = []
    for worker, node in machine_of.items():
        entry: dict[str, Any] = {"nodeName": node, "system": "linux"}
        if worker in first.index:
            w = first.loc[worker]
            entry["cpu"] = {"coreCount": max(1, math.ceil(float(w["cpus"]) - 1e-9))}
            entry["memoryInBytes"] = max(1, int(round(float(w["memory_mb"]) * 2 ** 20)))
        out.append(entry)
    return out


def _extension(trace: Trace, rows: Mapping[str, Mapping[str, Any]], machine_of: Mapping[str, str]) -> dict[str, Any]:
    workers = trace.workers.drop_duplicates("worker").set_index("worker")
    columns = (*PHASE_COLUMNS, "worker", "profile", "cold_start", "attempt")
    phases = {task_id: {c: _jsonable(row[c]) for c in columns} for task_id, row in rows.items()}
    return {"engine": trace.engine, "run_id": trace.run_id, "planner": trace.meta.get("planner"),
            "sla": trace.meta.get("sla"),
            # read back, only a real run's makespan counts as recorded (a plan's or simulation's is a prediction)
            "makespan_is_estimate": trace.engine != "execute", "makespan_definition": "submission to the client holding the last result",
            "runtime_is": "the execute phase (exec_end_s - exec_start_s), seconds",
            "machines": {node: {"worker": worker,
                                "profile": str(workers.loc[worker, "profile"]) if worker in workers.index else None,
                                "cpus": float(workers.loc[worker, "cpus"]) if worker in workers.index else None}
                         for worker, node in machine_of.items()},
            "task_phases": phases}


def _machine_names(workers) -> dict[str, str]:
    """Worker -> a unique hostname-like node name (WfFormat's ``nodeName`` is a hostname)."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for worker in sorted(map(str, workers)):
        base = _HOSTNAME_CHARS.sub("-", worker).strip("-") or "worker"
        node, k = base, 1
        while node in used:
            node, k = f"{base}-{k}", k + 1
        used.add(node)
        names[worker] = node
    return names


def _check_semantics(doc: Mapping[str, Any]) -> None:
    """WfFormat's validator's semantic rules: every parent and every task's machine is declared."""
    workflow = doc["workflow"]
    tasks = workflow["specification"]["tasks"]
    ids = {t["id"] for t in tasks}
    for t in tasks:
        for parent in t.get("parents", []):
            if parent not in ids:
                raise WorkflowError(f"WfFormat task {t['id']!r} names an undeclared parent {parent!r}",
                                    "declare every parent in workflow.specification.tasks")
    execution = workflow.get("execution") or {}
    nodes = {m.get("nodeName") for m in execution.get("machines", [])}
    for t in execution.get("tasks", []):
        for machine in t.get("machines", []):
            if machine not in nodes:
                raise WorkflowError(f"WfFormat task {t['id']!r} ran on an undeclared machine {machine!r}",
                                    "declare it in workflow.execution.machines")


def _seconds(value: float) -> float:
    return max(0.0, float(value)) if math.isfinite(value) else 0.0


def _bytes(value: float) -> int:
    return int(round(value)) if math.isfinite(value) and value > 0 else 0


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), timezone.utc).isoformat(timespec="milliseconds")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _planlab_version() -> str:
    try:
        from importlib.metadata import version

        return version("planlab")
    except Exception:  # not installed as a distribution (a bare checkout on PYTHONPATH)
        return "unknown"
