"""A workflow's DAG as integer lists and arrays in topological order, built once per workflow.

Planners, the cost model, the worker protocol and the simulator all walk the same
adjacency; reading it through networkx's dict-of-dicts costs microseconds per task
each time (seconds at 100k tasks).  :func:`build_topology` reads it once, in
O(n + e), and :meth:`planning.workflow.Workflow.topology` caches the result until
the graph changes, like the topological order itself.

Orders are part of the contract, because engines must agree bit for bit:

* ``parents[i]``: the graph's in-edge order (networkx insertion order), which is the
  order a worker fetches its inputs in;
* ``children[i]``: ascending topological index (the order dynamic continuation and
  the simulator's downstream decisions use).
"""

from __future__ import annotations

from functools import cached_property
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np

from planning.gcpause import paused_gc

if TYPE_CHECKING:   # the workflow module imports this one
    from planning.workflow import Workflow


class Topology:
    """Integer view of a workflow (positions are indices into ``ids``).  Treat it as read-only.

    Attributes: ``ids`` (topological order) and ``index`` (id -> position);
    ``parents[i]`` (in-edge order) and ``children[i]`` (ascending); every edge as flat
    arrays ``edge_parent``, ``edge_child``, ``edge_bytes`` grouped by child in in-edge
    order (``segments(edges, indegree)`` cuts them per child), and ``edge_by_parent``,
    the permutation that orders them by (parent, child); ``in_bytes`` (the sum of a
    task's in-edges) and ``out_bytes`` (its stored output: the largest out-edge, else a
    sink's ``output_bytes`` hint, else 0).  ``kinds`` and the hints (NaN where a task
    has none) are read on first use.
    """

    def __init__(self, workflow: "Workflow") -> None:
        ids = workflow.topological_order()
        index = workflow.index()
        graph = workflow.graph
        pred = graph._pred                        # networkx adjacency: read-only here
        n = len(ids)
        self.ids: tuple[str, ...] = ids
        self.index: dict[str, int] = index
        self.n = n
        self._nodes = graph._node
        parents = [[index[p] for p in pred[t]] for t in ids]
        self.parents: list[list[int]] = parents
        counts = np.fromiter(map(len, parents), dtype=np.int64, count=n)
        e = int(counts.sum())
        self.edge_child = np.repeat(np.arange(n, dtype=np.int64), counts)
        self.edge_parent = np.fromiter(chain.from_iterable(parents), dtype=np.int64, count=e)
        self.edge_bytes = np.array([a["bytes"] for t in ids for a in pred[t].values()], dtype=float).reshape(e)
        self.indegree = counts
        self.in_bytes = np.bincount(self.edge_child, weights=self.edge_bytes, minlength=n) if e else np.zeros(n)
        # children, ascending: edges sorted by (parent, child), cut where the parent changes
        self.edge_by_parent = np.lexsort((self.edge_child, self.edge_parent))
        out_degree = np.bincount(self.edge_parent, minlength=n)
        self.children: list[list[int]] = segments(self.edge_child[self.edge_by_parent].tolist(), out_degree)
        self.out_degree = out_degree
        largest_out = np.zeros(n)
        if e:
            np.maximum.at(largest_out, self.edge_parent, self.edge_bytes)
        self.out_bytes = np.where(out_degree > 0, largest_out, np.nan_to_num(self.output_hint_bytes, nan=0.0))

    @cached_property
    def tasks(self) -> list:
        """The :class:`~planning.workflow.Task` of each position."""
        nodes = self._nodes
        return [nodes[t]["task"] for t in self.ids]

    @cached_property
    def kinds(self) -> list[str]:
        return [t.kind for t in self.tasks]

    @cached_property
    def runtime_hint_s(self) -> np.ndarray:
        return _hint(self.tasks, "runtime_s")

    @cached_property
    def cores_hint(self) -> np.ndarray:
        return _hint(self.tasks, "cores")

    @cached_property
    def output_hint_bytes(self) -> np.ndarray:
        return _hint(self.tasks, "output_bytes")

    @cached_property
    def sinks(self) -> list[int]:
        """Positions of the tasks without children, ascending."""
        return np.flatnonzero(self.out_degree == 0).tolist()

    @cached_property
    def roots(self) -> list[int]:
        """Positions of the tasks without parents, ascending."""
        return np.flatnonzero(self.indegree == 0).tolist()


def segments(flat: list, counts: np.ndarray | list[int]) -> list[list]:
    """``flat`` cut into consecutive pieces of ``counts`` items (e.g. per-task lists from a flat edge list)."""
    bounds = np.concatenate(([0], np.cumsum(counts, dtype=np.int64))).tolist()
    return [flat[bounds[k]:bounds[k + 1]] for k in range(len(bounds) - 1)]


def _hint(tasks: list, name: str) -> np.ndarray:
    return np.array([np.nan if (v := getattr(t, name)) is None else v for t in tasks], dtype=float)


def build_topology(workflow: "Workflow") -> Topology:
    """Read ``workflow``'s adjacency once: O(n + e) Python work, the rest vectorised.

    The cyclic garbage collector is paused meanwhile: the lists built here would
    trigger collections that walk the whole graph again and again (x3 at 100k tasks)."""
    with paused_gc():
        return Topology(workflow)
