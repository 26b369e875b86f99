"""Write a workflow as a WfFormat 1.5 instance: the specification part of every export.

:func:`write_wfformat` is what :func:`planning.sources.wfformat.read_wfformat` reads
back unchanged (tasks, kinds, edge and output bytes, hints, machines, metadata);
:mod:`planning.sources.wfformat_export` adds a plan's or a trace's execution to it.
Costs: O(tasks + edges + file references).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from planning.sources.wfformat import EXTENSION_KEY
from planning.tasks import Task
from planning.workflow import Workflow

#: Schema version :func:`write_wfformat` writes.
WRITE_SCHEMA = "1.5"
#: Workflow metadata the instance itself carries (not repeated in the extension block).
_DERIVED_METADATA = {"recorded_makespan_s", "machines", "wfformat_schema", "workflow_system",
                     "workflow_system_version", "executed_at", "instance_name", "source_file"}


def write_wfformat(workflow: Workflow, path: str | Path) -> Path:
    """Write ``workflow`` as a WfFormat 1.5 instance that :func:`read_wfformat` reads back.

    Each task's output is written as files so that the file sizes reproduce both
    ``output_bytes`` and every edge's bytes: a parent whose children read
    s1 < s2 < ... bytes writes segments of s1, s2 - s1, ... bytes plus the rest,
    and a child reading s_j bytes reads the first j segments.  This is exact when
    no edge carries more than its parent's ``output_bytes`` (always true of
    imported and generated workflows); otherwise the parent's output grows to its
    largest edge.  Task kinds are kept as ``category`` (and as the program name).
    If no recorded makespan is known, ``makespanInSeconds`` (required by the
    schema) is the critical path of the runtime hints and the extension block
    says so, so it is not read back as recorded.  Returns the path.
    """
    path = Path(path)
    md = dict(workflow.metadata)
    spec_tasks, files, exec_tasks = [], [], []
    reads: dict[tuple[str, str], list[str]] = {}
    for t in workflow.tasks:
        out_ids = _write_outputs(workflow, t, files, reads)
        spec: dict[str, Any] = {"name": str(t.meta.get("name", t.id)), "id": t.id, "category": t.kind,
                                "parents": workflow.parents(t.id), "children": workflow.children(t.id),
                                "inputFiles": [f for p in workflow.parents(t.id) for f in reads.get((p, t.id), [])]}
        if t.meta.get("external_input_bytes"):   # the workflow's own inputs, as one file
            files.append({"id": f"{t.id}.external", "sizeInBytes": int(t.meta["external_input_bytes"])})
            spec["inputFiles"].append(f"{t.id}.external")
        if out_ids is not None:
            spec["outputFiles"] = out_ids
        spec_tasks.append(spec)
        exec_tasks.append(_exec_entry(t))
    doc: dict[str, Any] = {
        "name": str(md.get("instance_name", workflow.name)),
        "description": f"Exported by planlab from workflow {workflow.name!r}",
        "createdAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "schemaVersion": WRITE_SCHEMA,
        "workflow": {"specification": {"tasks": spec_tasks, "files": files}},
    }
    if md.get("workflow_system"):
        doc["runtimeSystem"] = {"name": str(md["workflow_system"]),
                                "version": str(md.get("workflow_system_version") or "unknown")}
    has_times = any(t.runtime_s is not None for t in workflow.tasks)
    recorded = md.get("recorded_makespan_s")
    if has_times or recorded is not None:
        makespan = recorded if recorded is not None else workflow.critical_path()[0]
        execution: dict[str, Any] = {"makespanInSeconds": makespan,
                                     "executedAt": str(md.get("executed_at") or doc["createdAt"]),
                                     "tasks": exec_tasks}
        machines = md.get("machines") or {}
        if machines:
            execution["machines"] = [_machine_entry(name, m) for name, m in machines.items()]
        doc["workflow"]["execution"] = execution
    extra = {k: v for k, v in md.items() if k not in _DERIVED_METADATA}
    doc[EXTENSION_KEY] = {"workflow_name": workflow.name, "metadata": extra,
                          "makespan_is_estimate": recorded is None}
    path.write_text(json.dumps(_jsonable(doc), indent=1))
    return path


def _write_outputs(wf: Workflow, t: Task, files: list[dict[str, Any]],
                   reads: dict[tuple[str, str], list[str]]) -> list[str] | None:
    """Append ``t``'s output files (prefix segments, see write_wfformat); None if it has none to say."""
    edges = {c: wf.edge_bytes(t.id, c) for c in wf.children(t.id)}
    cuts = sorted({b for b in edges.values() if b > 0})
    if t.output_bytes is None and not cuts:
        return None
    total = max([t.output_bytes or 0, *cuts])
    out_ids, bounds, start = [], [], 0
    for j, end in enumerate([*cuts, total]):
        if end > start:
            fid = f"{t.id}.out{j}"
            files.append({"id": fid, "sizeInBytes": int(end - start)})
            out_ids.append(fid)
            bounds.append(end)
            start = end
    for c, b in edges.items():
        reads[(t.id, c)] = [f for f, end in zip(out_ids, bounds) if end <= b] if b > 0 else []
    return out_ids


def _exec_entry(t: Task) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": t.id, "runtimeInSeconds": t.runtime_s if t.runtime_s is not None else 0.0,
                             "command": {"program": str(t.meta.get("program", t.kind)), "arguments": []}}
    if t.cores is not None:
        entry["coreCount"] = t.cores
    if t.memory_mb is not None:
        entry["memoryInBytes"] = int(round(t.memory_mb * 2 ** 20))
    for src, dst in (("avg_cpu", "avgCPU"), ("read_bytes", "readBytes"), ("written_bytes", "writtenBytes"),
                     ("priority", "priority"), ("started_at", "executedAt")):
        if t.meta.get(src) is not None:
            entry[dst] = t.meta[src]
    if t.meta.get("machines"):
        entry["machines"] = list(t.meta["machines"])
    if t.runtime_s is None:
        entry["runtimeUnknown"] = True  # planlab extension: the 0.0 above is a placeholder
    return entry


def _machine_entry(name: str, m: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"nodeName": name}
    cpu = {k: m.get(src) for k, src in (("coreCount", "cores"), ("speedInMHz", "speed_mhz")) if m.get(src) is not None}
    if cpu:
        entry["cpu"] = cpu
    if m.get("memory_bytes") is not None:
        entry["memoryInBytes"] = m["memory_bytes"]
    return entry


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
