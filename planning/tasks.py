"""A task of a workflow and its code: the :class:`Task` node, :class:`Ref` placeholders, running and saving code.

A task is a node of a :class:`~planning.workflow.Workflow`; an executable one
carries ``func`` with ``args``/``kwargs`` in which upstream results appear as
:class:`Ref`.  This module substitutes them (:func:`resolve_refs`), runs a task
(:func:`run_task_function`: the executor's workers and :func:`planning.workflow.run_locally`
alike) and turns code and arguments into JSON and back (:func:`func_reference`,
:func:`resolve_func`, :func:`encode_value`, :func:`decode_value`) for the
workflow's own JSON format.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from planning.errors import WorkflowError
from planning.pyfiles import import_python_file


@dataclass(frozen=True, eq=False)
class Task:
    """One node of a workflow.

    ``kind`` is the function or program name: history and the cost model are
    grouped by kind.  Hints are optional and are what the cost model falls back
    to when it has no history: ``runtime_s`` is the expected execution seconds on
    a reference worker of ``cores`` CPUs (1 when unknown), ``output_bytes`` the
    size of the result, ``memory_mb`` the minimum memory a worker needs.
    ``func`` with ``args``/``kwargs`` is the code when the task is executable;
    upstream results appear inside ``args``/``kwargs`` as :class:`Ref`.
    ``meta`` keeps anything an importer recorded (machine, files...).
    """

    id: str
    kind: str
    runtime_s: float | None = None
    cores: float | None = None
    output_bytes: int | None = None
    memory_mb: float | None = None
    func: Callable[..., Any] | None = field(default=None, repr=False)
    args: tuple = field(default=(), repr=False)
    kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    meta: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def executable(self) -> bool:
        return self.func is not None

    def with_(self, **changes: Any) -> "Task":
        return replace(self, **changes)


@dataclass(frozen=True)
class Ref:
    """A placeholder for an upstream task's result inside a task's arguments."""

    task_id: str


def iter_refs(value: Any) -> Iterable[str]:
    """Task ids of every :class:`Ref` nested anywhere inside ``value``."""
    if isinstance(value, Ref):
        yield value.task_id
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from iter_refs(v)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from iter_refs(v)


def resolve_refs(value: Any, results: Mapping[str, Any]) -> Any:
    """Replace every :class:`Ref` inside ``value`` by its upstream result."""
    if isinstance(value, Ref):
        return results[value.task_id]
    if isinstance(value, list):
        return [resolve_refs(v, results) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve_refs(v, results) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(resolve_refs(v, results) for v in value)
    if isinstance(value, dict):
        return {k: resolve_refs(v, results) for k, v in value.items()}
    return value


def run_task_function(task: Task, results: Mapping[str, Any]) -> Any:
    """Call an executable task with its upstream results substituted."""
    if task.func is None:
        raise WorkflowError(f"task {task.id!r} has no code", "replay it instead, or give it a function")
    args = resolve_refs(list(task.args), results)
    kwargs = resolve_refs(dict(task.kwargs), results)
    return task.func(*args, **kwargs)


def func_reference(func: Callable) -> str | None:
    """``module:qualname`` when the function can be imported back, else None.

    Functions of a file loaded by path (:func:`planning.sources.loading.load_workflow`
    with ``file.py:name``) live in a module with a generated name that no other
    process can import; they are referred to as ``/abs/path/file.py:qualname``.
    """
    target = getattr(func, "__wrapped__", func)
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        return None
    source = getattr(sys.modules.get(module), "__planlab_source__", None)
    if source:
        return f"{source}:{qualname}"
    return f"{module}:{qualname}"


def resolve_func(reference: str, task_id: str) -> Callable:
    """The function a :func:`func_reference` names (a ``@task``-decorated one unwrapped)."""
    path, sep, file_qualname = reference.rpartition(":")
    try:
        if sep and path.endswith(".py"):
            obj: Any = import_python_file(path)
            qualname = file_qualname
        else:
            module_name, _, qualname = reference.partition(":")
            obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, WorkflowError):
        raise WorkflowError(f"task {task_id!r}: cannot import its code {reference!r}",
                            "make the module importable (on sys.path) or drop 'func'") from None
    return getattr(obj, "__wrapped__", obj) if hasattr(obj, "__planlab_task__") else obj


def encode_value(value: Any, task_id: str) -> Any:
    """A task argument as JSON: :class:`Ref`, tuples and dicts tagged so :func:`decode_value` restores them."""
    if isinstance(value, Ref):
        return {"__ref__": value.task_id}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v, task_id) for v in value]}
    if isinstance(value, list):
        return [encode_value(v, task_id) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise WorkflowError(f"task {task_id!r}: dict arguments with non-string keys cannot be saved as JSON",
                                "use string keys, or run the workflow in-process without saving it")
        return {"__dict__": {k: encode_value(v, task_id) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    raise WorkflowError(f"task {task_id!r}: argument of type {type(value).__name__} cannot be saved as JSON",
                        "pass constants as JSON values (numbers, strings, lists, dicts) or keep the workflow in Python")


def decode_value(value: Any) -> Any:
    """The argument :func:`encode_value` encoded."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if "__ref__" in value:
            return Ref(value["__ref__"])
        if "__tuple__" in value:
            return tuple(decode_value(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: decode_value(v) for k, v in value["__dict__"].items()}
        return {k: decode_value(v) for k, v in value.items()}
    return value
