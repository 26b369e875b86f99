"""The ``@task`` DSL: calling a decorated function builds the graph lazily.

::

    from planning import task, build_workflow

    @task
    def load(i): ...
    @task(runtime_s=2.0, output_bytes=8_000_000)
    def combine(parts, options): ...

    parts = [load(i) for i in range(4)]
    result = combine({"left": parts[:2], "right": [parts[2:]]}, options={"k": 3})
    wf = build_workflow(result, name="demo")

A call returns a :class:`TaskResult`, a handle on a node that has not run.  Handles
may be passed to other calls anywhere in their arguments - positional or keyword,
nested in lists, tuples and dicts to any depth, beside constants - and each becomes
an edge (the same upstream passed twice is one edge).  :func:`build_workflow` walks
back from one or several handles (several sinks) and returns a :class:`Workflow`
whose tasks keep their functions, so the executor can run them.

Task ids are given at build time, deterministically: the function's name, then
``name-1``, ``name-2``... in the order calls were made, unless a call names its
own id with ``fn.named("id")(...)``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Mapping, ParamSpec, TypeVar

from planning.errors import WorkflowError
from planning.tasks import Ref, Task
from planning.workflow import Workflow

P = ParamSpec("P")
R = TypeVar("R")

# A monotone counter orders calls so ids are deterministic; it carries no state
# that changes behaviour (only the relative order of calls matters).
_call_order = itertools.count()


@dataclass(eq=False)
class _Call:
    """One lazy call: which function, with which arguments, made when."""

    fn: "TaskFunction"
    args: tuple
    kwargs: dict
    order: int
    explicit_id: str | None = None
    upstream: list["_Call"] = field(default_factory=list)


class TaskResult(Generic[R]):
    """The future result of a task call; pass it to other task calls."""

    __slots__ = ("_call",)

    def __init__(self, call: _Call) -> None:
        self._call = call

    def __repr__(self) -> str:
        return f"TaskResult({self._call.fn.kind}#{self._call.order})"

    def __bool__(self) -> bool:
        raise WorkflowError("a task result has no value while the workflow is being built",
                            "do not branch on task results; pass them to other tasks instead")

    def __iter__(self):
        raise WorkflowError("a task result cannot be unpacked while the workflow is being built",
                            "return a container and index it inside a downstream task")


class TaskFunction(Generic[P, R]):
    """A function wrapped by ``@task``: calls record nodes instead of running."""

    __planlab_task__ = True

    def __init__(self, func: Callable[P, R], kind: str | None = None, runtime_s: float | None = None,
                 output_bytes: int | None = None, memory_mb: float | None = None, cores: float | None = None,
                 explicit_id: str | None = None) -> None:
        functools.update_wrapper(self, func)
        self.__wrapped__ = func
        self.func = func
        self.kind = kind or func.__name__
        self.hints = {"runtime_s": runtime_s, "output_bytes": output_bytes, "memory_mb": memory_mb, "cores": cores}
        self._explicit_id = explicit_id
        try:  # checked at call time, so a wrong call fails while building, not mid-run
            self._signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            self._signature = None

    def __call__(self, *args: Any, **kwargs: Any) -> TaskResult[R]:
        if self._signature is not None:
            try:
                self._signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise WorkflowError(f"task {self.kind!r} called with arguments that do not fit its signature: {exc}",
                                    f"call it as {self.kind}{self._signature}") from None
        call = _Call(self, args, kwargs, next(_call_order), self._explicit_id)
        seen: dict[int, _Call] = {}
        for value in itertools.chain(args, kwargs.values()):
            for up in _find_results(value):
                seen.setdefault(id(up), up)
        call.upstream = list(seen.values())
        return TaskResult(call)

    def named(self, task_id: str) -> "TaskFunction[P, R]":
        """The same function, whose next calls get the id ``task_id``."""
        return TaskFunction(self.func, self.kind, explicit_id=task_id, **self.hints)

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the underlying function directly (no graph)."""
        return self.func(*args, **kwargs)

    def __reduce__(self):
        # The module attribute named like the function is this wrapper, not the
        # function, so pickling ``self.func`` by reference fails ("not the same
        # object").  Refer to the module attribute instead when it is importable;
        # otherwise ship the function itself (cloudpickle sends it by value).
        hints = tuple(self.hints.values())
        module, qualname = getattr(self.func, "__module__", None), getattr(self.func, "__qualname__", "")
        if module and module != "__main__" and "<" not in qualname:
            return (_task_function_from_reference, (module, qualname, self.kind, hints, self._explicit_id))
        return (TaskFunction, (self.func, self.kind, *hints, self._explicit_id))


def _task_function_from_reference(module: str, qualname: str, kind: str, hints: tuple,
                                  explicit_id: str | None) -> "TaskFunction":
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    func = obj.func if isinstance(obj, TaskFunction) else obj
    return TaskFunction(func, kind, *hints, explicit_id=explicit_id)


def task(func: Callable[P, R] | None = None, *, kind: str | None = None, runtime_s: float | None = None,
         output_bytes: int | None = None, memory_mb: float | None = None, cores: float | None = None):
    """Decorate a function so that calling it builds a workflow node.

    Hints (all optional) feed the cost model when it has no history for this
    kind: ``runtime_s`` seconds on one CPU, ``output_bytes`` of the result,
    ``memory_mb`` the minimum memory a worker needs.
    """
    def wrap(f: Callable[P, R]) -> TaskFunction[P, R]:
        return TaskFunction(f, kind, runtime_s, output_bytes, memory_mb, cores)
    return wrap(func) if func is not None else wrap


def _find_results(value: Any) -> Iterable[_Call]:
    if isinstance(value, TaskResult):
        yield value._call
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _find_results(v)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _find_results(v)


def _replace_results(value: Any, ids: Mapping[int, str]) -> Any:
    if isinstance(value, TaskResult):
        return Ref(ids[id(value._call)])
    if isinstance(value, list):
        return [_replace_results(v, ids) for v in value]
    if isinstance(value, tuple):
        return tuple(_replace_results(v, ids) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(_replace_results(v, ids) for v in value)
    if isinstance(value, Mapping):
        return {k: _replace_results(v, ids) for k, v in value.items()}
    return value


def is_task_result(value: Any) -> bool:
    return isinstance(value, TaskResult) or (isinstance(value, (list, tuple)) and bool(value)
                                             and all(isinstance(v, TaskResult) for v in value))


def build_workflow(results: "TaskResult | Iterable[TaskResult] | Mapping[str, TaskResult]",
                   name: str = "workflow") -> Workflow:
    """The workflow behind one or several task results (each a sink or not).

    ``results`` may be one result or any nesting of lists, tuples and dicts of
    them (other values inside are ignored).  O(n + e) over the calls reachable
    from ``results``.
    """
    if not isinstance(results, (TaskResult, list, tuple, set, frozenset, Mapping)):
        results = list(results)  # any other iterable, e.g. a generator expression
    heads = list({id(c): c for c in _find_results(results)}.values())
    if not heads:
        raise WorkflowError("no task results to build a workflow from", "pass the result of a @task call")
    calls: dict[int, _Call] = {}
    stack = list(heads)
    while stack:
        c = stack.pop()
        if id(c) in calls:
            continue
        calls[id(c)] = c
        stack.extend(c.upstream)
    ordered = sorted(calls.values(), key=lambda c: c.order)
    ids: dict[int, str] = {}
    used: set[str] = {c.explicit_id for c in ordered if c.explicit_id}
    named: set[str] = set()
    counters: dict[str, int] = {}
    for c in ordered:
        if c.explicit_id:
            if c.explicit_id in named:
                raise WorkflowError(f"two calls are named {c.explicit_id!r}", "give each named call a unique id")
            named.add(c.explicit_id)
            ids[id(c)] = c.explicit_id
            continue
        n = counters.get(c.fn.kind, 0)
        candidate = c.fn.kind if n == 0 else f"{c.fn.kind}-{n}"
        while candidate in used:
            n += 1
            candidate = f"{c.fn.kind}-{n}"
        counters[c.fn.kind] = n + 1
        used.add(candidate)
        ids[id(c)] = candidate
    tasks, parents = [], {}
    for c in ordered:
        tid = ids[id(c)]
        tasks.append(Task(id=tid, kind=c.fn.kind, func=c.fn.func,
                          args=tuple(_replace_results(list(c.args), ids)),
                          kwargs=_replace_results(dict(c.kwargs), ids), **c.fn.hints))
        parents[tid] = [ids[id(u)] for u in c.upstream]
    return Workflow.from_tasks(tasks, parents, name=name, metadata={"source": "dsl"})
