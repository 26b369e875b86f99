"""The integer view of a workflow agrees with its networkx graph, and is rebuilt when the graph changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planning.sources.generators import generate
from planning.sources.wfformat import read_wfformat
from planning.tasks import Task
from planning.topology import segments
from planning.workflow import Workflow

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


def _workflows():
    yield generate("random_layered", tasks=300, seed=3)
    yield generate("fork_join", width=5, depth=3)
    yield generate("gemm", blocks=3)
    yield read_wfformat(sorted(DATA.glob("*.json"))[0])


@pytest.mark.parametrize("workflow", list(_workflows()), ids=lambda wf: wf.name)
def test_topology_matches_the_graph(workflow: Workflow) -> None:
    topo = workflow.topology()
    ids = list(workflow.topological_order())
    assert list(topo.ids) == ids and topo.n == len(ids)
    child_edges, parent_edges, byte_edges = (segments(a.tolist(), topo.indegree)
                                             for a in (topo.edge_child, topo.edge_parent, topo.edge_bytes))
    by_parent = list(zip(topo.edge_parent[topo.edge_by_parent].tolist(), topo.edge_child[topo.edge_by_parent].tolist()))
    assert by_parent == sorted(zip(topo.edge_parent.tolist(), topo.edge_child.tolist()))
    for i, t in enumerate(ids):
        parents = workflow.parents(t)
        assert [ids[p] for p in topo.parents[i]] == parents                       # in-edge order
        assert [ids[c] for c in topo.children[i]] == sorted(workflow.children(t), key=ids.index)
        assert child_edges[i] == [i] * len(parents)
        assert parent_edges[i] == topo.parents[i]
        assert byte_edges[i] == [float(workflow.edge_bytes(p, t)) for p in parents]
        assert topo.in_bytes[i] == sum(workflow.edge_bytes(p, t) for p in parents)
        kids = workflow.children(t)
        expected_out = max(workflow.edge_bytes(t, c) for c in kids) if kids else (workflow.task(t).output_bytes or 0)
        assert topo.out_bytes[i] == expected_out
        task = workflow.task(t)
        assert topo.kinds[i] == task.kind
        assert (np.isnan(topo.runtime_hint_s[i]) if task.runtime_s is None else topo.runtime_hint_s[i] == task.runtime_s)
    assert [ids[r] for r in topo.roots] == [t for t in ids if t in set(workflow.roots())]
    assert [ids[s] for s in topo.sinks] == [t for t in ids if t in set(workflow.sinks())]
    assert topo.indegree.tolist() == [len(workflow.parents(t)) for t in ids]


def test_topology_is_cached_and_rebuilt_after_a_change() -> None:
    wf = Workflow("w")
    for name in ("a", "b", "c"):
        wf.add_task(Task(name, "k", output_bytes=7))
    wf.add_edge("a", "b", bytes=5)
    first = wf.topology()
    assert wf.topology() is first
    assert {first.ids[s] for s in first.sinks} == {"b", "c"}
    wf.add_edge("b", "c", bytes=9)
    second = wf.topology()
    assert second is not first
    assert second.out_bytes.tolist() == [5.0, 9.0, 7.0]
    assert second.children == [[1], [2], []]


def test_an_empty_workflow_has_an_empty_topology() -> None:
    topo = Workflow("empty").topology()
    assert topo.n == 0 and topo.edge_bytes.shape == (0,) and topo.sinks == [] and topo.children == []


def test_segments_cut_a_flat_list_by_counts() -> None:
    assert segments([1, 2, 3, 4, 5], [2, 0, 3]) == [[1, 2], [], [3, 4, 5]]
    assert segments([], []) == []
