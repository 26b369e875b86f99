"""Import WfFormat, the JSON of WfCommons' workflow instances (:mod:`planning.sources.wfformat_write` writes it).

WfFormat records a real execution of a scientific workflow (Pegasus, Makeflow,
Nextflow...): the DAG, the files the tasks read and write, and what each task
took.  Imported workflows have no code (``func`` is None): the executor replays
them by their recorded runtimes, the simulator and planners use their hints.

Two shapes exist and both are read:

* schema 1.5 (and later): ``workflow.specification`` holds tasks (``id``,
  ``name``, ``parents``, ``children``, ``inputFiles``, ``outputFiles``) and
  ``files`` (``id``, ``sizeInBytes``); ``workflow.execution`` holds the
  per-task measurements (``runtimeInSeconds``, ``coreCount``, ``avgCPU``,
  ``memoryInBytes``, ``machines``...), the machines and ``makespanInSeconds``.
* schema 1.4 and earlier: everything in ``workflow.tasks``, each task with
  ``files`` (``name``, ``sizeInBytes`` or ``size``, ``link`` input/output),
  ``parents``/``children`` by task name, ``runtimeInSeconds`` (or ``runtime``),
  ``cores``, ``memoryInBytes`` (or ``memory`` in KB), ``machine``; the runtime
  system is ``wms`` instead of ``runtimeSystem``.

Mapping to planlab: a task's kind is its ``category`` if recorded, else its
program name, else its name without the trailing ``_ID0000001``/``_12`` counter;
``runtime_s`` is the recorded runtime, ``cores`` the core count, ``memory_mb``
the recorded memory (bytes / 2**20), ``output_bytes`` the total size of its
output files.  An edge carries the total size of the files the parent writes and
the child reads (0 when they share none: the dependency is control only).

Costs: O(tasks + edges + file references) to read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from planning.errors import WorkflowError
from planning.tasks import Task
from planning.workflow import Workflow

#: Key of planlab's own extension block in exported files (ignored by other tools).
EXTENSION_KEY = "planlab"
_COUNTER = re.compile(r"(_ID\d+|_\d+)$")
_PROGRAM = re.compile(r"^[\w.+-]+$")


def read_wfformat(path: str | Path) -> Workflow:
    """Read a WfFormat instance (schema 1.4 or 1.5 shape) into a :class:`Workflow`.

    Task ``meta`` keeps ``name``, ``machines``, ``program``, ``avg_cpu``,
    ``read_bytes``, ``written_bytes``, ``priority`` and ``started_at`` when
    recorded, and ``external_input_bytes`` for a task that reads files no task
    writes (the workflow's inputs, which a workflow system stages in).  Workflow metadata: ``recorded_makespan_s``, ``machines`` (node
    name -> ``cores``, ``speed_mhz``, ``memory_bytes`` as recorded),
    ``wfformat_schema``, ``workflow_system``, ``workflow_system_version``,
    ``executed_at``, ``instance_name``, ``source_file``.  A file that is not
    valid WfFormat raises :class:`WorkflowError` naming the file and the problem
    (missing key, unknown parent, duplicate id, cycle).
    """
    path = Path(path)
    data = load_json_strict(path)
    try:
        if not isinstance(data, dict):
            raise _Malformed("the top level is not a JSON object")
        workflow = data.get("workflow")
        if not isinstance(workflow, dict):
            raise _Malformed("missing key 'workflow'")
        if "specification" in workflow:
            tasks, parents, edge_bytes, meta = _read_v15(data, workflow)
        elif "tasks" in workflow or "jobs" in workflow:
            tasks, parents, edge_bytes, meta = _read_v14(data, workflow)
        else:
            raise _Malformed("missing key 'workflow.specification' (schema 1.5) or 'workflow.tasks' (schema 1.4)")
        meta["source_file"] = str(path)
        ext = data.get(EXTENSION_KEY)
        name = str(ext.get("workflow_name") or path.stem) if isinstance(ext, dict) else path.stem
        return Workflow.from_tasks(tasks, parents, edge_bytes, name=name, metadata=meta)
    except _Malformed as exc:
        raise WorkflowError(f"{path}: not valid WfFormat: {exc}",
                            "check the file against the WfFormat schema (https://github.com/wfcommons/WfFormat)") from None
    except WorkflowError as exc:
        raise WorkflowError(f"{path}: {exc.what}", exc.fix) from None


# ---------------------------------------------------------------- reading: 1.5
class _Malformed(Exception):
    """A structural problem in a WfFormat document (turned into WorkflowError)."""


def _read_v15(data: Mapping[str, Any], workflow: Mapping[str, Any]):
    spec = workflow["specification"]
    if not isinstance(spec, dict) or not isinstance(spec.get("tasks"), list):
        raise _Malformed("missing key 'workflow.specification.tasks' (a list)")
    sizes = _file_sizes(spec.get("files", []), "workflow.specification.files", "id")
    execution = workflow.get("execution") or {}
    if not isinstance(execution, dict):
        raise _Malformed("'workflow.execution' is not an object")
    measured: dict[str, Mapping[str, Any]] = {}
    for i, entry in enumerate(_list(execution, "tasks", "workflow.execution")):
        if not isinstance(entry, dict) or "id" not in entry:
            raise _Malformed(f"workflow.execution.tasks[{i}] has no key 'id'")
        measured[str(entry["id"])] = entry

    tasks, parents, outputs, inputs = [], {}, {}, {}
    for i, entry in enumerate(spec["tasks"]):
        if not isinstance(entry, dict) or "id" not in entry:
            raise _Malformed(f"workflow.specification.tasks[{i}] has no key 'id'")
        tid = str(entry["id"])
        m = measured.get(tid, {})
        outputs[tid] = [str(f) for f in _list(entry, "outputFiles", f"task {tid!r}")]
        inputs[tid] = {str(f) for f in _list(entry, "inputFiles", f"task {tid!r}")}
        out_bytes = sum(sizes.get(f, 0) for f in outputs[tid]) if "outputFiles" in entry else None
        tasks.append(_task(tid, entry.get("name"), entry.get("category"), m, out_bytes,
                           runtime_key="runtimeInSeconds", cores_key="coreCount", memory_bytes=m.get("memoryInBytes")))
        parents[tid] = [str(p) for p in _list(entry, "parents", f"task {tid!r}")]
    _add_children(spec["tasks"], parents, lambda e: str(e["id"]), lambda c: str(c))
    meta = _workflow_meta(data, execution.get("makespanInSeconds"), execution.get("executedAt"),
                          execution.get("machines") or [])
    tasks = _with_external_inputs(tasks, outputs, inputs, sizes)
    return tasks, parents, _edge_bytes(parents, outputs, inputs, sizes), meta


# ---------------------------------------------------------------- reading: 1.4 and earlier
def _read_v14(data: Mapping[str, Any], workflow: Mapping[str, Any]):
    raw = workflow.get("tasks", workflow.get("jobs"))
    if not isinstance(raw, list):
        raise _Malformed("'workflow.tasks' is not a list")
    # Tasks refer to each other by name (sometimes by id): map both to the planlab id.
    ids: list[str] = []
    refs: dict[str, str] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not (entry.get("name") or entry.get("id")):
            raise _Malformed(f"workflow.tasks[{i}] has no key 'name'")
        tid = str(entry.get("name") or entry["id"])
        ids.append(tid)
        refs.setdefault(tid, tid)
    for tid, entry in zip(ids, raw):
        if entry.get("id") is not None:
            refs.setdefault(str(entry["id"]), tid)

    def resolve(ref: Any) -> str:
        return refs.get(str(ref), str(ref))  # unknown names surface as unknown parents

    scale = 1 if "pegasus" in str((data.get("wms") or data.get("runtimeSystem") or {}).get("name", "")).lower() else 1000
    tasks, parents, outputs, inputs = [], {}, {}, {}
    sizes: dict[str, int] = {}
    for tid, entry in zip(ids, raw):
        outs, ins = [], set()
        files = _list(entry, "files", f"task {tid!r}")
        for j, f in enumerate(files):
            if not isinstance(f, dict) or not (f.get("name") or f.get("id")):
                raise _Malformed(f"task {tid!r}: files[{j}] has no key 'name'")
            fid = str(f.get("path", "")) + str(f.get("name") or f["id"])
            size = f.get("sizeInBytes", f.get("size"))
            if size is None:
                raise _Malformed(f"task {tid!r}: file {fid!r} has no key 'sizeInBytes'")
            sizes[fid] = _size(size, f"task {tid!r}: file {fid!r}")
            if str(f.get("link", "")).lower() == "input":
                ins.add(fid)
            else:
                outs.append(fid)
        outputs[tid], inputs[tid] = outs, ins
        memory = entry.get("memoryInBytes")
        if memory is None and entry.get("memory") is not None:
            memory = entry["memory"] * 1000  # KB before 1.4
        if entry.get("bytesRead") is not None and entry.get("readBytes") is None:
            entry = {**entry, "readBytes": entry["bytesRead"] * scale}
        if entry.get("bytesWritten") is not None and entry.get("writtenBytes") is None:
            entry = {**entry, "writtenBytes": entry["bytesWritten"] * scale}
        runtime_key = "runtimeInSeconds" if "runtimeInSeconds" in entry else "runtime"
        tasks.append(_task(tid, entry.get("name"), entry.get("category"), entry,
                           sum(sizes[f] for f in outs) if files else None,
                           runtime_key=runtime_key, cores_key="cores", memory_bytes=memory))
        parents[tid] = [resolve(p) for p in _list(entry, "parents", f"task {tid!r}")]
    _add_children(raw, parents, lambda e: str(e.get("name") or e["id"]), resolve)
    makespan = workflow.get("makespanInSeconds", workflow.get("makespan"))
    meta = _workflow_meta(data, makespan, workflow.get("executedAt"), workflow.get("machines") or [])
    tasks = _with_external_inputs(tasks, outputs, inputs, sizes)
    return tasks, parents, _edge_bytes(parents, outputs, inputs, sizes), meta


# ---------------------------------------------------------------- reading: shared
def load_json_strict(path: Path) -> Any:
    """A JSON document, refusing NaN/Infinity and absurd nesting with one :class:`WorkflowError`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise WorkflowError(f"cannot read WfFormat file {str(path)!r}: {exc.strerror or exc}", "check the path") from None
    except UnicodeDecodeError as exc:
        raise WorkflowError(f"{path} is not UTF-8 text ({exc.reason})", "give a JSON file") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                            "fix the JSON syntax") from None
    except RecursionError:
        raise WorkflowError(f"{path}: the JSON is nested too deeply to be a WfFormat file",
                            "give a WfFormat instance (a few levels of objects and lists)") from None
    except ValueError as exc:
        raise WorkflowError(f"{path}: {exc}", "write every number as a finite JSON number") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (NaN and Infinity are not allowed)")


def _list(entry: Mapping[str, Any], key: str, where: str) -> list[Any]:
    """``entry[key]`` when it is a list (absent or null: empty); a string or number is refused, not iterated."""
    value = entry.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{where}: '{key}' must be a list, got {type(value).__name__} {value!r}"[:200])
    return value


#: Largest size or number accepted from a WfFormat file (1 EiB, ~31,700 years): larger is corrupt.
MAX_NUMBER = float(2**60)


def _size(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_NUMBER:
        raise _Malformed(f"{where}: size must be a number of bytes between 0 and 2**60, got {value!r}")
    return int(value)


def _file_sizes(files: Any, where: str, key: str) -> dict[str, int]:
    if not isinstance(files, list):
        raise _Malformed(f"'{where}' is not a list")
    sizes: dict[str, int] = {}
    for i, f in enumerate(files):
        if not isinstance(f, dict) or key not in f:
            raise _Malformed(f"{where}[{i}] has no key '{key}'")
        if "sizeInBytes" not in f:
            raise _Malformed(f"{where}[{i}] ({f[key]!r}) has no key 'sizeInBytes'")
        sizes[str(f[key])] = _size(f["sizeInBytes"], f"file {f[key]!r}")
    return sizes


def _kind(tid: str, name: Any, category: Any, command: Any) -> str:
    if category:
        return str(category)
    program = command.get("program") if isinstance(command, dict) else None
    if isinstance(program, str) and _PROGRAM.match(program):
        return program.rsplit("/", 1)[-1]
    return _COUNTER.sub("", str(name or tid)) or str(name or tid)


def _task(tid: str, name: Any, category: Any, m: Mapping[str, Any], output_bytes: int | None, *,
          runtime_key: str, cores_key: str, memory_bytes: Any) -> Task:
    meta: dict[str, Any] = {"name": str(name)} if name and str(name) != tid else {}
    machines = m.get("machines", [m["machine"]] if m.get("machine") else None)
    if machines:
        meta["machines"] = [str(x) for x in machines]
    kind = _kind(tid, name, category, m.get("command"))
    program = m.get("command", {}).get("program") if isinstance(m.get("command"), dict) else None
    if program and program != kind:  # usually the kind itself
        meta["program"] = program
    for src, dst in (("avgCPU", "avg_cpu"), ("readBytes", "read_bytes"), ("writtenBytes", "written_bytes"),
                     ("priority", "priority")):
        if m.get(src) is not None:
            meta[dst] = m[src]
    for src in ("startedAt", "executedAt", "start", "startTime"):
        if m.get(src) is not None:
            meta["started_at"] = m[src]
            break
    runtime = None if m.get("runtimeUnknown") else _number(m.get(runtime_key), f"task {tid!r}: {runtime_key}",
                                                           required=runtime_key in m)
    memory = _number(memory_bytes, f"task {tid!r}: memory")
    return Task(tid, kind, runtime_s=runtime,
                cores=_number(m.get(cores_key), f"task {tid!r}: {cores_key}"),
                output_bytes=output_bytes, memory_mb=None if memory is None else memory / 2 ** 20, meta=meta)


def _number(value: Any, where: str, required: bool = False) -> float | None:
    """A finite number, or None when absent (``required``: a null is refused too); the Task checks its sign."""
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Malformed(f"{where} must be a number, got {value!r}")
    if not -MAX_NUMBER <= value <= MAX_NUMBER:
        raise _Malformed(f"{where} must be a finite number below 2**60, got {value!r}")
    return float(value)


def _add_children(entries: Iterable[Any], parents: dict[str, list[str]], key, resolve) -> None:
    """Add edges listed only in ``children`` (WfFormat lists both ends, not always both)."""
    for entry in entries:
        tid = key(entry)
        for child in _list(entry, "children", f"task {tid!r}"):
            child_id = resolve(child)
            if child_id not in parents:
                raise _Malformed(f"task {tid!r} names an unknown child {child_id!r}")
            if tid not in parents[child_id]:
                parents[child_id].append(tid)


def _with_external_inputs(tasks: list[Task], outputs: Mapping[str, list[str]], inputs: Mapping[str, set[str]],
                          sizes: Mapping[str, int]) -> list[Task]:
    """Record in ``meta["external_input_bytes"]`` the bytes a task reads from files no task writes.

    Those are the workflow's inputs, which a workflow system stages in before the task
    runs; the edges cannot carry them (no parent).  Only tasks that read some get the key.
    """
    produced = {f for files in outputs.values() for f in files}
    out = []
    for t in tasks:
        external = sum(sizes.get(f, 0) for f in inputs.get(t.id, ()) if f not in produced)
        out.append(t.with_(meta={**t.meta, "external_input_bytes": external}) if external > 0 else t)
    return out


def _edge_bytes(parents: Mapping[str, list[str]], outputs: Mapping[str, list[str]],
                inputs: Mapping[str, set[str]], sizes: Mapping[str, int]) -> dict[tuple[str, str], int]:
    """Bytes of the files each parent writes and each child reads.  O(sum of file lists)."""
    edge_bytes: dict[tuple[str, str], int] = {}
    for child, ps in parents.items():
        reads = inputs.get(child, set())
        for p in ps:
            edge_bytes[(p, child)] = sum(sizes.get(f, 0) for f in outputs.get(p, []) if f in reads)
    return edge_bytes


def _workflow_meta(data: Mapping[str, Any], makespan: Any, executed_at: Any, machines: Any) -> dict[str, Any]:
    system = data.get("runtimeSystem") or data.get("wms") or {}
    meta: dict[str, Any] = {
        "recorded_makespan_s": None if makespan is None else float(makespan),
        "machines": _machines(machines),
        "wfformat_schema": str(data.get("schemaVersion")) if data.get("schemaVersion") is not None else None,
        "workflow_system": system.get("name") if isinstance(system, dict) else None,
        "workflow_system_version": system.get("version") if isinstance(system, dict) else None,
        "executed_at": executed_at,
        "instance_name": data.get("name"),
    }
    ext = data.get(EXTENSION_KEY)
    if isinstance(ext, dict):  # written by write_wfformat: restore what WfFormat cannot say
        if ext.get("makespan_is_estimate"):
            meta["recorded_makespan_s"] = None
        for k, v in (ext.get("metadata") or {}).items():
            meta.setdefault(k, v)
    return meta


def _machines(machines: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(machines, list):
        raise _Malformed("'machines' is not a list")
    out: dict[str, dict[str, Any]] = {}
    for i, m in enumerate(machines):
        if not isinstance(m, dict) or "nodeName" not in m:
            raise _Malformed(f"machines[{i}] has no key 'nodeName'")
        cpu = m.get("cpu") or {}
        memory = m.get("memoryInBytes")
        if memory is None and m.get("memory") is not None:
            memory = m["memory"] * 1000  # KB before 1.4
        out[str(m["nodeName"])] = {"cores": cpu.get("coreCount", cpu.get("count")),
                                   "speed_mhz": cpu.get("speedInMHz", cpu.get("speed")),
                                   "memory_bytes": memory}
    return out
