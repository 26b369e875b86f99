"""The workflow model: a DAG of tasks over networkx.

A :class:`Workflow` holds :class:`~planning.tasks.Task` values as node attributes of a
``networkx.DiGraph`` and the bytes that flow from a parent to a child as an edge
attribute.  Everything else in planlab (cost model, planners, simulator,
executor) reads workflows through this class, so its queries are the vocabulary:
roots, sinks, topological order, levels, critical path, structure hash.

Writing it as planlab's own JSON and reading it back is :mod:`planning.workflow_json`
(``WORKFLOW_FORMAT`` is re-exported here).

Costs (n tasks, e edges): construction O(n + e); topological order and levels
O(n + e), cached until the graph changes; critical path O(n + e).
"""

from __future__ import annotations

import hashlib
import math
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import networkx as nx
import numpy as np

from planning.errors import WorkflowError
from planning.tasks import Task, run_task_function
from planning.workflow_json import (WORKFLOW_FORMAT, workflow_from_dict, workflow_from_json,  # noqa: F401 - re-exported
                                     workflow_to_dict, workflow_to_json)

if TYPE_CHECKING:
    from planning.topology import Topology



class Workflow:
    """A validated DAG of :class:`Task` with bytes on edges.

    Build one with :meth:`add_task`/:meth:`add_edge`, :meth:`from_tasks`, the
    ``@task`` DSL (:func:`planning.sources.dsl.build_workflow`), a generator or an importer,
    then call :meth:`validate` (builders do).  ``metadata`` keeps workflow-level
    facts such as the recorded makespan of a real execution.
    """

    def __init__(self, name: str = "workflow", metadata: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.graph = nx.DiGraph()
        self._cache: dict[str, Any] = {}

    # ---------------------------------------------------------------- building
    def add_task(self, task: Task) -> Task:
        if not isinstance(task.id, str) or not task.id:
            raise WorkflowError(f"task id must be a non-empty string, got {task.id!r}", "give every task a unique string id")
        if task.id in self.graph:
            raise WorkflowError(f"duplicate task id {task.id!r}", "give every task a unique id")
        for name in ("runtime_s", "output_bytes", "memory_mb", "cores"):
            value = getattr(task, name)
            if value is not None and (not _is_number(value) or not math.isfinite(value) or value < 0):
                raise WorkflowError(f"task {task.id!r}: {name} must be a finite number >= 0, got {value!r}",
                                    f"fix {name} of task {task.id!r}")
        self.graph.add_node(task.id, task=task)
        self._cache.clear()
        return task

    def add_edge(self, parent: str, child: str, bytes: int | float = 0) -> None:
        for end, role in ((parent, "parent"), (child, "child")):
            if end not in self.graph:
                raise WorkflowError(f"edge {parent!r} -> {child!r} names an unknown {role} {end!r}",
                                    f"add task {end!r} before the edge, or fix the name")
        if parent == child:
            raise WorkflowError(f"task {parent!r} depends on itself (self-loop)", "remove the self-dependency")
        if not _is_number(bytes) or not math.isfinite(bytes) or bytes < 0:
            raise WorkflowError(f"edge {parent!r} -> {child!r} has a negative or invalid size {bytes!r}",
                                "edge sizes are bytes >= 0")
        if self.graph.has_edge(parent, child):
            self.graph[parent][child]["bytes"] += int(bytes)
        else:
            self.graph.add_edge(parent, child, bytes=int(bytes))
        self._cache.clear()

    @classmethod
    def from_tasks(cls, tasks: Iterable[Task], parents: Mapping[str, Iterable[str]],
                   edge_bytes: Mapping[tuple[str, str], int] | None = None, name: str = "workflow",
                   metadata: Mapping[str, Any] | None = None) -> "Workflow":
        """Build and validate from tasks and a ``child -> parents`` mapping.

        An edge's bytes default to the parent's ``output_bytes`` hint (0 if none).
        A parent listed twice for the same child is one edge.
        """
        wf = cls(name, metadata)
        for t in tasks:
            wf.add_task(t)
        edge_bytes = edge_bytes or {}
        for child, ps in parents.items():
            if child not in wf.graph:
                raise WorkflowError(f"parents given for unknown task {child!r}", "list the task itself too")
            for p in dict.fromkeys(ps):
                if p not in wf.graph:
                    raise WorkflowError(f"task {child!r} names an unknown parent {p!r}",
                                        f"add a task {p!r} or remove it from the parents of {child!r}")
                size = edge_bytes.get((p, child))
                if size is None:
                    size = wf.task(p).output_bytes or 0
                wf.add_edge(p, child, size)
        wf.validate()
        return wf

    # ---------------------------------------------------------------- queries
    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.graph

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, tasks={len(self)}, edges={self.graph.number_of_edges()})"

    def task(self, task_id: str) -> Task:
        try:
            return self.graph.nodes[task_id]["task"]
        except KeyError:
            raise WorkflowError(f"unknown task {task_id!r} in workflow {self.name!r}", "check the task id") from None

    @property
    def tasks(self) -> list[Task]:
        """Tasks in topological order."""
        return [self.graph.nodes[t]["task"] for t in self.topological_order()]

    @property
    def task_ids(self) -> list[str]:
        return list(self.topological_order())

    def parents(self, task_id: str) -> list[str]:
        return list(self.graph.predecessors(task_id))

    def children(self, task_id: str) -> list[str]:
        return list(self.graph.successors(task_id))

    def edge_bytes(self, parent: str, child: str) -> int:
        return self.graph[parent][child]["bytes"]

    def edges(self) -> list[tuple[str, str, int]]:
        return [(u, v, d["bytes"]) for u, v, d in self.graph.edges(data=True)]

    def roots(self) -> list[str]:
        return [t for t in self.topological_order() if self.graph.in_degree(t) == 0]

    def sinks(self) -> list[str]:
        return [t for t in self.topological_order() if self.graph.out_degree(t) == 0]

    def topological_order(self) -> tuple[str, ...]:
        """A deterministic topological order (Kahn's algorithm in insertion order)."""
        if "topo" not in self._cache:
            try:        # the sort itself finds a cycle: no separate acyclicity pass first (~40 ms at 10k tasks)
                self._cache["topo"] = tuple(nx.topological_sort(self.graph))
            except nx.NetworkXUnfeasible:
                self.validate_acyclic()     # names the cycle
                raise
        return self._cache["topo"]

    def index(self) -> dict[str, int]:
        """Position of each task in :meth:`topological_order` (for arrays)."""
        if "index" not in self._cache:
            self._cache["index"] = {t: i for i, t in enumerate(self.topological_order())}
        return self._cache["index"]

    def topology(self) -> "Topology":
        """The DAG as integer lists and arrays in topological order (:mod:`planning.topology`), cached."""
        if "topology" not in self._cache:
            from planning.topology import build_topology

            self._cache["topology"] = build_topology(self)
        return self._cache["topology"]

    def levels(self) -> dict[str, int]:
        """Level of each task: the number of edges on the longest path from a root."""
        if "levels" not in self._cache:
            level: dict[str, int] = {}
            for t in self.topological_order():
                level[t] = max((level[p] + 1 for p in self.graph.predecessors(t)), default=0)
            self._cache["levels"] = level
        return self._cache["levels"]

    @property
    def depth(self) -> int:
        """Number of levels (a single task has depth 1)."""
        return (max(self.levels().values()) + 1) if len(self) else 0

    @property
    def max_width(self) -> int:
        """The largest number of tasks on one level."""
        if not len(self):
            return 0
        counts = np.bincount(np.fromiter(self.levels().values(), dtype=np.int64))
        return int(counts.max())

    def total_edge_bytes(self) -> int:
        return int(sum(d["bytes"] for _, _, d in self.graph.edges(data=True)))

    def critical_path(self, task_weight: Mapping[str, float] | Callable[[Task], float] | None = None,
                      edge_weight: Mapping[tuple[str, str], float] | Callable[[str, str, int], float] | None = None,
                      ) -> tuple[float, list[str]]:
        """Length and tasks of the heaviest root-to-sink path.

        ``task_weight`` maps a task id (or a :class:`Task`, if callable) to seconds;
        by default the runtime hint (0 when absent).  ``edge_weight`` maps
        ``(parent, child)`` (or is called with ``parent, child, bytes``) to seconds;
        by default 0.  O(n + e).
        """
        tw = _as_task_weight(self, task_weight)
        ew = _as_edge_weight(edge_weight)
        finish: dict[str, float] = {}
        best_parent: dict[str, str | None] = {}
        for t in self.topological_order():
            start, arg = 0.0, None
            for p in self.graph.predecessors(t):
                value = finish[p] + ew(p, t, self.graph[p][t]["bytes"])
                if value > start or arg is None and value >= start:
                    start, arg = value, p
            finish[t] = start + tw(t)
            best_parent[t] = arg
        if not finish:
            return 0.0, []
        # End at a sink: with zero-weight tasks an inner task can tie with its
        # descendants, and the path must still reach the end of the workflow.
        end = max(self.sinks(), key=lambda t: (finish[t], -self.index()[t]))
        path = [end]
        while best_parent[path[-1]] is not None:
            path.append(best_parent[path[-1]])
        return float(finish[end]), path[::-1]

    def structure_hash(self) -> str:
        """A hash of the shape and the kinds, independent of task ids.

        Two workflows with the same DAG shape and the same kind at each position
        hash alike (Weisfeiler-Lehman over kinds, 3 rounds, plus counts), so history
        of one run of a workflow is recognised as belonging to another run of it.
        The rounds are networkx's directed WL hash (>= 3.5: successors and
        predecessors kept apart), computed here on the topology's index lists
        (:func:`_wl_hash`; a test checks it equals ``nx.weisfeiler_lehman_graph_hash``):
        the same value in about half the time of building networkx's graph and hashing it.
        O((n + e) * 3).
        """
        if "shash" not in self._cache:
            top = self.topology()
            nodes = self.graph.nodes
            wl = _wl_hash([str(nodes[t]["task"].kind) for t in top.ids], top.children, top.parents, 3)
            text = f"{wl}|{self.graph.number_of_nodes()}|{self.graph.number_of_edges()}"
            self._cache["shash"] = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._cache["shash"]

    # ---------------------------------------------------------------- validation
    def validate_acyclic(self) -> None:
        """Raise :class:`WorkflowError` naming one cycle, if there is any.  O(n + e).

        ``nx.find_cycle`` over the whole graph is far slower than linear on large
        DAGs (seconds for 10k tasks), so it only runs, on the smallest strongly
        connected component with a cycle, once a cycle is known to exist.
        """
        if nx.is_directed_acyclic_graph(self.graph):
            return
        component = min((c for c in nx.strongly_connected_components(self.graph) if len(c) > 1), key=len)
        cycle = nx.find_cycle(self.graph.subgraph(component))
        names = [u for u, _ in cycle] + [cycle[0][0]]
        raise WorkflowError(f"workflow {self.name!r} has a cycle: {' -> '.join(names)}",
                            "remove one of these dependencies so the graph is a DAG")

    def validate(self) -> "Workflow":
        """Check the invariants; raise :class:`WorkflowError` naming the first broken one."""
        if len(self) == 0:
            raise WorkflowError(f"workflow {self.name!r} has no tasks", "add at least one task")
        for u, v in nx.selfloop_edges(self.graph):
            raise WorkflowError(f"task {u!r} depends on itself (self-loop)", "remove the self-dependency")
        self.validate_acyclic()
        for u, v, d in self.graph.edges(data=True):
            if d.get("bytes", 0) < 0:
                raise WorkflowError(f"edge {u!r} -> {v!r} has negative size {d['bytes']}", "edge sizes are bytes >= 0")
        return self

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """planlab's JSON shape (:mod:`planning.workflow_json`); code is kept as an importable ``module:qualname``."""
        return workflow_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Workflow":
        """A validated workflow from planlab's JSON shape (:func:`planning.workflow_json.workflow_from_dict`)."""
        return workflow_from_dict(cls, data)

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text of :meth:`to_dict`, also written to ``path`` when given."""
        return workflow_to_json(self, path)

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> "Workflow":
        """A workflow from JSON text or a file's path."""
        return workflow_from_json(cls, path_or_text)

    def copy(self, name: str | None = None) -> "Workflow":
        wf = Workflow(name or self.name, self.metadata)
        wf.graph = self.graph.copy()
        return wf

    def subgraph(self, task_ids: Iterable[str]) -> "Workflow":
        wf = Workflow(self.name, self.metadata)
        wf.graph = self.graph.subgraph(task_ids).copy()
        return wf


# ------------------------------------------------------------------ helpers
def _is_number(value: Any) -> bool:
    if type(value) in (int, float):  # fast path: the ABC check costs microseconds per call
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_task_weight(wf: Workflow, weight: Any) -> Callable[[str], float]:
    if weight is None:
        return lambda t: float(wf.task(t).runtime_s or 0.0)
    if callable(weight):
        return lambda t: float(weight(wf.task(t)))
    return lambda t: float(weight[t])


def _as_edge_weight(weight: Any) -> Callable[[str, str, int], float]:
    if weight is None:
        return lambda p, c, b: 0.0
    if callable(weight):
        return lambda p, c, b: float(weight(p, c, b))
    return lambda p, c, b: float(weight.get((p, c), 0.0))


def run_locally(workflow: Workflow) -> dict[str, Any]:
    """Run an executable workflow in this process, in topological order.

    The reference answer the executor's results are checked against.
    """
    results: dict[str, Any] = {}
    for t in workflow.tasks:
        results[t.id] = run_task_function(t, results)
    return results


def _wl_hash(labels: list[str], children: list[list[int]], parents: list[list[int]], rounds: int,
             digest_size: int = 16) -> str:
    """The directed Weisfeiler-Lehman hash of a graph given per node its label and its successors' and
    predecessors' indices: each round a node's new label is the digest of its label, its successors' labels
    (each prefixed ``s_``) sorted and its predecessors' (``p_``) sorted; the result is the digest of every
    round's sorted (label, count) histogram.  networkx's ``weisfeiler_lehman_graph_hash(G, node_attr=...)``
    on a DiGraph (>= 3.5), without the graph."""
    def digest(text: str) -> str:
        return hashlib.blake2b(text.encode(), digest_size=digest_size).hexdigest()

    histogram: list[tuple[str, int]] = []
    for _ in range(rounds):
        as_child, as_parent = ["s_" + label for label in labels], ["p_" + label for label in labels]
        labels = [digest(labels[i] + "".join(sorted([as_child[c] for c in children[i]]))
                         + "".join(sorted([as_parent[p] for p in parents[i]]))) for i in range(len(labels))]
        counts: dict[str, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        histogram.extend(sorted(counts.items()))
    return digest(str(tuple(histogram)))
