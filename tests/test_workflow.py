"""The Workflow model: building, validation, queries, hashing, JSON."""

from __future__ import annotations

import json
import random

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planning.errors import PlanlabError, WorkflowError
from planning.sources import kernels
from planning.tasks import Ref, Task, iter_refs, resolve_refs
from planning.workflow import Workflow, run_locally


def make(edges, runtimes=None, kinds=None, name="wf", sizes=None):
    """A workflow from ``(parent, child)`` pairs plus isolated nodes in ``runtimes``."""
    runtimes = dict(runtimes or {})
    ids = list(dict.fromkeys([*runtimes, *(x for e in edges for x in e)]))
    kinds = kinds or {}
    tasks = [Task(t, kinds.get(t, "k"), runtime_s=runtimes.get(t)) for t in ids]
    parents = {t: [p for p, c in edges if c == t] for t in ids}
    return Workflow.from_tasks(tasks, parents, sizes, name=name)


@pytest.fixture
def diamond():
    return make([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
                runtimes={"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0}, sizes={("a", "b"): 100, ("c", "d"): 7})


# ---------------------------------------------------------------- shape queries
def test_diamond_queries(diamond):
    assert diamond.roots() == ["a"]
    assert diamond.sinks() == ["d"]
    assert diamond.levels() == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert diamond.depth == 3
    assert diamond.max_width == 2
    assert sorted(diamond.parents("d")) == ["b", "c"]
    assert sorted(diamond.children("a")) == ["b", "c"]
    assert diamond.edge_bytes("a", "b") == 100 and diamond.edge_bytes("c", "d") == 7
    assert diamond.edge_bytes("a", "c") == 0  # no output_bytes hint -> 0
    assert diamond.total_edge_bytes() == 107
    order = diamond.topological_order()
    assert all(order.index(u) < order.index(v) for u, v, _ in diamond.edges())
    assert [t.id for t in diamond.tasks] == list(order)
    assert diamond.index()["a"] == 0


def test_many_roots_and_sinks():
    wf = make([("r1", "m"), ("r2", "m"), ("r3", "m"), ("m", "s1"), ("m", "s2"), ("r3", "s3")],
              runtimes={"lonely": 1.0})
    assert set(wf.roots()) == {"r1", "r2", "r3", "lonely"}
    assert set(wf.sinks()) == {"s1", "s2", "s3", "lonely"}
    assert wf.depth == 3
    assert wf.max_width == 4  # r1, r2, r3, lonely


def test_levels_depth_width_of_a_wide_layered_graph():
    edges = [("src", f"w{i}") for i in range(10)] + [(f"w{i}", "sink") for i in range(10)]
    wf = make(edges)
    assert wf.depth == 3 and wf.max_width == 10
    assert {wf.levels()[f"w{i}"] for i in range(10)} == {1}
    # A long skip edge does not lower a level: the level is the longest path.
    wf2 = make([("a", "b"), ("b", "c"), ("a", "c")])
    assert wf2.levels()["c"] == 2


def test_critical_path_hand_computed(diamond):
    # a(1) -> b(5) -> d(1) = 7 beats a(1) -> c(2) -> d(1) = 4
    length, path = diamond.critical_path()
    assert length == pytest.approx(7.0) and path == ["a", "b", "d"]
    # 10 s on edge a->c makes the other branch critical: 1 + 10 + 2 + 1 = 14
    length, path = diamond.critical_path(edge_weight={("a", "c"): 10.0})
    assert length == pytest.approx(14.0) and path == ["a", "c", "d"]
    # callable weights: every task 1 s, edge cost = bytes / 100
    length, path = diamond.critical_path(task_weight=lambda t: 1.0, edge_weight=lambda p, c, b: b / 100)
    assert length == pytest.approx(4.0) and path == ["a", "b", "d"]
    assert diamond.critical_path(task_weight={"a": 0, "b": 0, "c": 3, "d": 0}) == (3.0, ["a", "c", "d"])


def test_critical_path_of_parallel_chains():
    wf = make([("x0", "x1"), ("y0", "y1"), ("y1", "y2")],
              runtimes={"x0": 10, "x1": 10, "y0": 1, "y1": 1, "y2": 1})
    assert wf.critical_path() == (20.0, ["x0", "x1"])


# ---------------------------------------------------------------- validation
def test_cycle_is_rejected_and_named():
    wf = Workflow("cyc")
    for t in "abcd":
        wf.add_task(Task(t, "k"))
    wf.add_edge("d", "a")
    wf.add_edge("a", "b")
    wf.add_edge("b", "c")
    wf.add_edge("c", "a")
    with pytest.raises(WorkflowError) as err:
        wf.validate()
    msg = str(err.value)
    assert "cycle" in msg
    named = msg.split("cycle:")[1].split("(fix")[0]
    assert all(t in named for t in "abc") and "d" not in named
    with pytest.raises(WorkflowError, match="cycle"):
        wf.topological_order()


def test_cycle_via_from_tasks():
    with pytest.raises(WorkflowError, match=r"cycle: .*x.*y"):
        Workflow.from_tasks([Task("x", "k"), Task("y", "k")], {"x": ["y"], "y": ["x"]})


def test_unknown_parent():
    with pytest.raises(WorkflowError, match="unknown parent 'ghost'"):
        Workflow.from_tasks([Task("a", "k")], {"a": ["ghost"]})
    wf = Workflow()
    wf.add_task(Task("a", "k"))
    with pytest.raises(WorkflowError, match="unknown parent"):
        wf.add_edge("ghost", "a")
    with pytest.raises(WorkflowError, match="unknown task"):
        Workflow.from_tasks([Task("a", "k")], {"b": ["a"]})


def test_duplicate_ids():
    with pytest.raises(WorkflowError, match="duplicate task id 'a'"):
        Workflow.from_tasks([Task("a", "k"), Task("a", "j")], {})


def test_self_loops():
    wf = Workflow()
    wf.add_task(Task("a", "k"))
    with pytest.raises(WorkflowError, match="self-loop"):
        wf.add_edge("a", "a")
    with pytest.raises(WorkflowError, match="self-loop"):
        Workflow.from_tasks([Task("a", "k")], {"a": ["a"]})


@pytest.mark.parametrize("field,value", [("runtime_s", -1.0), ("output_bytes", -5), ("memory_mb", float("nan")),
                                         ("cores", float("inf")), ("runtime_s", "fast")])
def test_invalid_hints(field, value):
    with pytest.raises(WorkflowError, match=field):
        Workflow().add_task(Task("a", "k", **{field: value}))


@pytest.mark.parametrize("size", [-1, float("nan"), None, "big"])
def test_invalid_edge_sizes(size):
    wf = Workflow()
    wf.add_task(Task("a", "k"))
    wf.add_task(Task("b", "k"))
    with pytest.raises(WorkflowError, match="size"):
        wf.add_edge("a", "b", size)


def test_empty_workflow_and_bad_ids():
    with pytest.raises(WorkflowError, match="no tasks"):
        Workflow("empty").validate()
    with pytest.raises(WorkflowError, match="non-empty string"):
        Workflow().add_task(Task("", "k"))


def test_errors_carry_a_fix():
    with pytest.raises(PlanlabError) as err:
        Workflow.from_tasks([Task("a", "k")], {"a": ["ghost"]})
    assert err.value.fix and "ghost" in err.value.fix


def test_parent_listed_twice_is_one_edge():
    wf = Workflow.from_tasks([Task("a", "k", output_bytes=10), Task("b", "k")], {"b": ["a", "a"]})
    assert wf.edges() == [("a", "b", 10)]


def test_validation_of_a_large_dag_passes_and_finds_a_late_cycle():
    # Validation speed is measured by benchmarks; here its verdicts on a large graph.
    from planning.sources.generators import random_layered
    wf = random_layered(tasks=3000, seed=3)
    wf.validate()
    order = wf.topological_order()
    wf.graph.add_edge(order[-1], order[0], bytes=0)
    with pytest.raises(WorkflowError, match="cycle"):
        wf.validate()


# ---------------------------------------------------------------- structure hash
def test_structure_hash_ignores_ids_but_not_kinds_or_shape(diamond):
    same_shape = make([("p", "q"), ("p", "r"), ("q", "s"), ("r", "s")])
    assert same_shape.structure_hash() == diamond.structure_hash()
    other_kind = make([("p", "q"), ("p", "r"), ("q", "s"), ("r", "s")], kinds={"s": "reduce"})
    assert other_kind.structure_hash() != diamond.structure_hash()
    other_shape = make([("p", "q"), ("q", "r"), ("r", "s")])
    assert other_shape.structure_hash() != diamond.structure_hash()
    # Direction matters: a fan-out is not a fan-in.
    assert make([("a", "b"), ("a", "c")]).structure_hash() != make([("b", "a"), ("c", "a")]).structure_hash()


# ---------------------------------------------------------------- refs and local runs
def test_iter_and_resolve_refs():
    value = [Ref("a"), {"x": (Ref("b"), 3)}, {Ref("c")}, "const"]
    assert sorted(iter_refs(value)) == ["a", "b", "c"]
    assert resolve_refs(value, {"a": 1, "b": 2, "c": 3}) == [1, {"x": (2, 3)}, {3}, "const"]


def test_run_locally_checks_code():
    wf = Workflow.from_tasks([Task("a", "spin", func=kernels.spin, args=(10,)),
                              Task("b", "spin", func=kernels.spin, args=(10, Ref("a")))], {"b": ["a"]})
    results = run_locally(wf)
    assert results["a"] == kernels.spin(10)
    assert results["b"] == kernels.spin(10, kernels.spin(10))
    no_code = make([("x", "y")])
    with pytest.raises(WorkflowError, match="no code"):
        run_locally(no_code)


# ---------------------------------------------------------------- JSON
def _signature(wf: Workflow):
    tasks = {t.id: (t.kind, t.runtime_s, t.cores, t.output_bytes, t.memory_mb, dict(t.meta),
                    None if t.func is None else (t.func.__module__, t.func.__qualname__), t.args, dict(t.kwargs))
             for t in wf.tasks}
    return wf.name, tasks, sorted(wf.edges())


def test_json_round_trip_keeps_everything(tmp_path):
    wf = Workflow.from_tasks(
        [Task("a", "spin", runtime_s=0.5, cores=2, output_bytes=64, memory_mb=128.0, func=kernels.spin, args=(5,),
              meta={"machine": "m1"}),
         Task("b", "noop", func=kernels.noop, args=(Ref("a"), (1, 2), [Ref("a")]), kwargs={}),
         Task("c", "digest", runtime_s=1.0, func=kernels.digest, kwargs={"value": {"x": Ref("b"), "y": [Ref("a")]}})],
        {"b": ["a"], "c": ["a", "b"]}, edge_bytes={("a", "c"): 3}, name="rt", metadata={"note": [1, 2]})
    path = tmp_path / "wf.json"
    text = wf.to_json(path)
    assert json.loads(text)["format"] == "planlab-workflow/1"
    for back in (Workflow.from_json(path), Workflow.from_json(text)):
        assert _signature(back) == _signature(wf)
        assert back.metadata == {"note": [1, 2]}
        assert back.structure_hash() == wf.structure_hash()
        assert run_locally(back) == run_locally(wf)


def test_json_errors(tmp_path):
    with pytest.raises(WorkflowError, match="cannot read workflow file"):
        Workflow.from_json(tmp_path / "missing.json")
    with pytest.raises(WorkflowError, match="malformed"):
        Workflow.from_json("{not json")
    with pytest.raises(WorkflowError, match="not a planlab workflow"):
        Workflow.from_dict({"format": "other"})
    with pytest.raises(WorkflowError, match="cannot import its code"):
        Workflow.from_dict({"format": "planlab-workflow/1",
                            "tasks": [{"id": "a", "kind": "k", "func": "no_such_module_xyz:f"}]})
    with pytest.raises(WorkflowError, match="unknown child"):
        Workflow.from_dict({"format": "planlab-workflow/1", "tasks": [{"id": "a"}],
                            "edges": [{"parent": "a", "child": "zz", "bytes": 1}]})


def test_edges_listed_only_in_edges_are_kept():
    wf = Workflow.from_dict({"format": "planlab-workflow/1", "tasks": [{"id": "a"}, {"id": "b"}],
                             "edges": [{"parent": "a", "child": "b", "bytes": 9}]})
    assert wf.edges() == [("a", "b", 9)]


def test_copy_and_subgraph(diamond):
    c = diamond.copy("c")
    c.add_task(Task("e", "k"))
    assert "e" in c and "e" not in diamond
    sub = diamond.subgraph(["a", "b"])
    assert sub.edges() == [("a", "b", 100)]


# ---------------------------------------------------------------- properties
@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 25))
    ids = draw(st.lists(st.text("abcxyz0123_-", min_size=1, max_size=6), min_size=n, max_size=n, unique=True))
    edges = []
    for j in range(n):
        for i in range(j):
            if draw(st.booleans()) and draw(st.booleans()):
                edges.append((ids[i], ids[j], draw(st.integers(0, 10**9))))
    runtimes = draw(st.lists(st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False)), min_size=n, max_size=n))
    kinds = draw(st.lists(st.sampled_from(["map", "reduce", "io"]), min_size=n, max_size=n))
    tasks = [Task(t, k, runtime_s=r) for t, k, r in zip(ids, kinds, runtimes)]
    parents = {t: [p for p, c, _ in edges if c == t] for t in ids}
    return Workflow.from_tasks(tasks, parents, {(p, c): b for p, c, b in edges}, name="prop")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dags())
def test_property_json_round_trip(wf):
    back = Workflow.from_json(wf.to_json())
    assert _signature(back) == _signature(wf)
    assert back.structure_hash() == wf.structure_hash()


@settings(max_examples=60, deadline=None)
@given(random_dags(), st.randoms(use_true_random=False))
def test_property_queries_agree_with_networkx(wf, rnd):
    order = wf.topological_order()
    pos = {t: i for i, t in enumerate(order)}
    assert all(pos[u] < pos[v] for u, v, _ in wf.edges())
    assert wf.depth == nx.dag_longest_path_length(wf.graph) + 1
    length, path = wf.critical_path()
    weights = {t.id: t.runtime_s or 0.0 for t in wf.tasks}
    assert length == pytest.approx(sum(weights[t] for t in path))
    assert length >= max(weights.values()) - 1e-9
    assert all(wf.graph.has_edge(u, v) for u, v in zip(path, path[1:]))
    # Relabelling ids keeps the structure hash.
    new_ids = {t: f"n{i}" for i, t in enumerate(rnd.sample(list(order), len(order)))}
    relabelled = Workflow.from_tasks([t.with_(id=new_ids[t.id]) for t in wf.tasks],
                                     {new_ids[t]: [new_ids[p] for p in wf.parents(t)] for t in order},
                                     {(new_ids[u], new_ids[v]): b for u, v, b in wf.edges()})
    assert relabelled.structure_hash() == wf.structure_hash()


def test_topological_order_is_deterministic():
    edges = [(f"n{i}", f"n{j}") for i in range(30) for j in range(i + 1, 30) if random.Random(i * 31 + j).random() < 0.2]
    assert make(edges).topological_order() == make(edges).topological_order()


@pytest.mark.parametrize("name,params", [("random_layered", {"tasks": 300, "seed": 4}), ("fork_join", {}),
                                         ("tree_reduction", {}), ("five_branches", {}), ("chain", {})])
def test_structure_hash_is_networkx_directed_wl_hash(name, params, diamond):
    """The hash computed on the topology equals the one networkx's graph hash gives (the value saved runs and
    histories hold), on generated shapes and on a hand-made diamond."""
    import hashlib
    import warnings

    import networkx as nx

    from planning import generate

    for wf in (generate(name, **params), diamond):
        g = nx.DiGraph()
        for t in wf.graph.nodes:
            g.add_node(t, kind=wf.graph.nodes[t]["task"].kind)
        g.add_edges_from(wf.graph.edges)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            wl = nx.weisfeiler_lehman_graph_hash(g, node_attr="kind", iterations=3)
        text = f"{wl}|{g.number_of_nodes()}|{g.number_of_edges()}"
        assert wf.structure_hash() == hashlib.sha256(text.encode()).hexdigest()[:16]
