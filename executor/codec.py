"""Bytes on the wire: task results, task code, large constants, replay payloads.

Results of tasks with code travel as pickle protocol 5 (numpy arrays and bytes
pickle with a single copy) and fall back to cloudpickle for values plain pickle
refuses (lambdas, classes defined in ``__main__``).  Code (functions, arguments)
always travels with cloudpickle, so functions defined in a script or notebook
reach the workers by value - keeping each function's real file name (cloudpickle
writes ``<dynamic-code>``), so a task's traceback names the user's file and line.
Every pickle stored on the server is sealed by the caller (:mod:`executor.auth`).  Replay tasks (no code) produce raw bytes: a child
reads only its edge's share with ``GETRANGE``, never the whole object.

Arguments larger than a threshold are *constants*: uploaded once per run under
their content hash and shared by every task and worker that uses them
(:class:`ConstRef` marks them inside a sub-DAG).
"""

from __future__ import annotations

import copy
import hashlib
import io
import pickle
import types
from collections import ChainMap
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping

import cloudpickle
from cloudpickle import cloudpickle as _cloudpickle_impl

from planning.tasks import Task, iter_refs
from planning.topology import Topology
from planning.workflow import Workflow

__all__ = ["ConstRef", "TaskCode", "dumps_value", "loads_value", "dumps_code", "loads_code",
           "split_constants", "resolve_constants", "skeleton"]


def _code_reduce_keeping_file(code: types.CodeType) -> tuple:
    """cloudpickle's reduction of a code object, with the real ``co_filename`` instead of ``<dynamic-code>``."""
    ctor, args = _cloudpickle_impl._code_reduce(code)
    return ctor, tuple(code.co_filename if arg == "<dynamic-code>" else arg for arg in args)


class _CodePickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({types.CodeType: _code_reduce_keeping_file}, cloudpickle.Pickler.dispatch_table)


def _cloudpickle_dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _CodePickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


def dumps_value(value: Any) -> bytes:
    """A task result as bytes (pickle 5, cloudpickle when pickle cannot; cloudpickle's error when neither can)."""
    try:
        return pickle.dumps(value, protocol=5)
    except (pickle.PicklingError, AttributeError, TypeError):
        return _cloudpickle_dumps(value)


def loads_value(data: bytes | memoryview) -> Any:
    return pickle.loads(data)


def dumps_code(obj: Any) -> bytes:
    return _cloudpickle_dumps(obj)


def loads_code(data: bytes | memoryview) -> Any:
    return pickle.loads(data)


@dataclass(frozen=True)
class ConstRef:
    """A large argument stored once under ``RunKeys.const(digest)``."""

    digest: str


@dataclass(frozen=True)
class TaskCode:
    """What a worker needs to run one task with code: function, arguments (with Refs / ConstRefs)."""

    func: Callable[..., Any]
    args: tuple
    kwargs: Mapping[str, Any]


def split_constants(task: Task, threshold: int, constants: dict[str, bytes]) -> TaskCode:
    """The task's code with every top-level argument larger than ``threshold`` bytes replaced by a ConstRef.

    Arguments that hold a Ref stay inline (they are resolved per run).  The pickled
    constant is added to ``constants`` (digest -> bytes); equal constants share one
    entry.  Cost: one pickle per argument.
    """
    def maybe(value: Any) -> Any:
        if isinstance(value, (int, float, bool, str, type(None))) or any(True for _ in iter_refs(value)):
            return value
        try:
            data = _cloudpickle_dumps(value)
        except Exception:  # let the sub-DAG pickling report it with the task's name
            return value
        if len(data) <= threshold:
            return value
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        constants.setdefault(digest, data)
        return ConstRef(digest)

    args = tuple(maybe(a) for a in task.args)
    kwargs = {k: maybe(v) for k, v in dict(task.kwargs).items()}
    return TaskCode(task.func, args, kwargs)  # type: ignore[arg-type]


def const_refs(code: TaskCode) -> Iterable[str]:
    for v in (*code.args, *code.kwargs.values()):
        if isinstance(v, ConstRef):
            yield v.digest


def resolve_constants(code: TaskCode, fetch: Callable[[str], Any]) -> TaskCode:
    """``code`` with each ConstRef replaced by ``fetch(digest)`` (which caches)."""
    if not any(True for _ in const_refs(code)):
        return code
    args = tuple(fetch(a.digest) if isinstance(a, ConstRef) else a for a in code.args)
    kwargs = {k: fetch(v.digest) if isinstance(v, ConstRef) else v for k, v in code.kwargs.items()}
    return TaskCode(code.func, args, kwargs)


def skeleton(workflow: Workflow) -> Workflow:
    """The workflow without code, arguments or importer metadata: what the protocol needs.

    The graph is copied in insertion order, so topological order (and hence the
    protocol's tie-breaking) is identical to the original's.
    """
    skel = Workflow(workflow.name, {})
    skel.graph = workflow.graph.copy()
    for t in workflow.graph.nodes:
        task: Task = workflow.graph.nodes[t]["task"]
        skel.graph.nodes[t]["task"] = Task(task.id, task.kind, task.runtime_s, task.cores, task.output_bytes,
                                           task.memory_mb)
    skel._cache.clear()
    topology = workflow._cache.get("topology")
    if topology is not None:   # built already: shipped, not rebuilt by every worker
        skel._cache.update(topo=topology.ids, index=topology.index, topology=skeleton_topology(topology, skel))
    return skel


def skeleton_topology(topology: Topology, skel: Workflow) -> Topology:
    """``topology`` over the skeleton's tasks (a shallow copy reading ``skel``'s nodes, none of its cached reads).

    A worker reads a stored output's size from the topology (``stored_output_bytes``)
    at its first completion; shipped with the spec, it is not rebuilt there - a
    networkx sort and acyclicity check, ~8 ms per 1k tasks on the run's critical path -
    and the spec no longer carries the original tasks (their code) through the
    topology's reference to the workflow's nodes.
    """
    view = copy.copy(topology)
    view.__dict__ = {k: v for k, v in topology.__dict__.items() if k not in _TOPOLOGY_READS}
    view._nodes = skel.graph._node
    return view


#: :class:`planning.topology.Topology`'s cached reads of its workflow's nodes (a skeleton's view reads them again).
_TOPOLOGY_READS = frozenset(k for k, v in vars(Topology).items() if isinstance(v, cached_property))
