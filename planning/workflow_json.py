"""planlab's own workflow JSON format (``planlab-workflow/1``): a :class:`~planning.workflow.Workflow` written, read back.

A workflow's code travels as an importable ``module:qualname`` with its
arguments encoded by :mod:`planning.tasks`, so a file written here runs again
anywhere the code can be imported.  WfFormat, the community's format, is
another module's (:mod:`planning.sources.wfformat`).  The ``Workflow`` methods
``to_dict``/``from_dict``/``to_json``/``from_json`` call these functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from planning.errors import WorkflowError
from planning.tasks import Task, decode_value, encode_value, func_reference, resolve_func

if TYPE_CHECKING:
    from planning.workflow import Workflow

__all__ = ["WORKFLOW_FORMAT", "workflow_to_dict", "workflow_from_dict", "workflow_to_json", "workflow_from_json"]

#: Version tag of planlab's own workflow JSON format.
WORKFLOW_FORMAT = "planlab-workflow/1"


def workflow_to_dict(workflow: Workflow) -> dict[str, Any]:
    """planlab's JSON shape; code is kept as an importable ``module:qualname``."""
    tasks = []
    for t in workflow.tasks:
        entry: dict[str, Any] = {"id": t.id, "kind": t.kind}
        for name in ("runtime_s", "cores", "output_bytes", "memory_mb"):
            value = getattr(t, name)
            if value is not None:
                entry[name] = value
        if t.func is not None:
            entry["func"] = func_reference(t.func)
            entry["args"] = encode_value(list(t.args), t.id)
            entry["kwargs"] = encode_value(dict(t.kwargs), t.id)
        if t.meta:
            entry["meta"] = _jsonable(dict(t.meta))
        entry["parents"] = workflow.parents(t.id)
        tasks.append(entry)
    edges = [{"parent": u, "child": v, "bytes": b} for u, v, b in workflow.edges()]
    return {"format": WORKFLOW_FORMAT, "name": workflow.name, "metadata": _jsonable(workflow.metadata),
            "tasks": tasks, "edges": edges}


def workflow_from_dict(cls: type[Workflow], data: Mapping[str, Any]) -> Workflow:
    """A validated ``cls`` from planlab's JSON shape; a malformed document raises :class:`WorkflowError`."""
    if data.get("format") != WORKFLOW_FORMAT:
        raise WorkflowError(f"not a planlab workflow (format {data.get('format')!r})",
                            f"expected format {WORKFLOW_FORMAT!r}; "
                            "WfFormat files are read by planning.sources.wfformat")
    if not isinstance(data.get("tasks"), list):
        raise WorkflowError("planlab workflow JSON lacks a 'tasks' list", "write tasks as a list of objects")
    tasks, parents = [], {}
    for i, entry in enumerate(data["tasks"]):
        if not isinstance(entry, dict) or "id" not in entry:
            raise WorkflowError(f"task #{i + 1} has no 'id'", "give every task an id")
        func = resolve_func(entry["func"], entry["id"]) if entry.get("func") else None
        tasks.append(Task(id=str(entry["id"]), kind=str(entry.get("kind", entry["id"])),
                          runtime_s=entry.get("runtime_s"), cores=entry.get("cores"),
                          output_bytes=entry.get("output_bytes"), memory_mb=entry.get("memory_mb"),
                          func=func, args=tuple(decode_value(entry.get("args", []))),
                          kwargs=decode_value(entry.get("kwargs", {})), meta=entry.get("meta", {})))
        parents[str(entry["id"])] = [str(p) for p in entry.get("parents", [])]
    sizes: dict[tuple[str, str], int] = {}
    for e in data.get("edges", []):
        if not isinstance(e, dict) or "parent" not in e or "child" not in e:
            raise WorkflowError(f"edge {e!r} lacks 'parent' or 'child'", "write edges as {parent, child, bytes}")
        key = (str(e["parent"]), str(e["child"]))
        sizes[key] = e.get("bytes", 0)
        if key[1] not in parents:
            raise WorkflowError(f"edge {key[0]!r} -> {key[1]!r} names an unknown child {key[1]!r}",
                                f"add a task {key[1]!r} or remove the edge")
        if key[0] not in parents[key[1]]:
            parents[key[1]].append(key[0])  # an edge listed only in 'edges' still counts
    return cls.from_tasks(tasks, parents, sizes, name=str(data.get("name", "workflow")),
                          metadata=data.get("metadata", {}))


def workflow_to_json(workflow: Workflow, path: str | Path | None = None) -> str:
    """The JSON text of :func:`workflow_to_dict`, also written to ``path`` when given."""
    text = json.dumps(workflow_to_dict(workflow), indent=1)
    if path is not None:
        Path(path).write_text(text)
    return text


def workflow_from_json(cls: type[Workflow], path_or_text: str | Path) -> Workflow:
    """A workflow from JSON text or a file's path (text is recognised by its leading ``{``)."""
    text = str(path_or_text)
    if not text.lstrip().startswith("{"):
        try:
            text = Path(path_or_text).read_text()
        except OSError as exc:
            raise WorkflowError(f"cannot read workflow file {str(path_or_text)!r}: {exc.strerror or exc}",
                                "check the path") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"malformed workflow JSON: {exc}", "fix the JSON syntax") from None
    return workflow_from_dict(cls, data)


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of metadata (numpy scalars become Python numbers)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
