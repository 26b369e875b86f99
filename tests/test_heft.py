"""Tests of planning.planners.heft: hand-checked Topcuoglu example, determinism, saga cross-check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from planning.planners.heft import heft
from planning.planners.timeline import Timeline
from planning.tasks import Task
from planning.workflow import Workflow

# Topcuoglu, Hariri, Wu (2002), Fig. 2: computation costs on P1..P3 and edge costs.
TOPCU_W = {
    1: (14, 16, 9), 2: (13, 19, 18), 3: (11, 13, 19), 4: (13, 8, 17), 5: (12, 13, 10),
    6: (13, 16, 9), 7: (7, 15, 11), 8: (5, 11, 14), 9: (18, 12, 20), 10: (21, 7, 16),
}
TOPCU_C = {
    (1, 2): 18, (1, 3): 12, (1, 4): 9, (1, 5): 11, (1, 6): 14, (2, 8): 19, (2, 9): 16, (3, 7): 23,
    (4, 8): 27, (4, 9): 23, (5, 9): 13, (6, 8): 15, (7, 10): 17, (8, 10): 11, (9, 10): 13,
}


def _topcu():
    tasks = [Task(f"n{i}", "k") for i in TOPCU_W]
    parents: dict[str, list[str]] = {f"n{i}": [] for i in TOPCU_W}
    for (a, b) in TOPCU_C:
        parents[f"n{b}"].append(f"n{a}")
    wf = Workflow.from_tasks(tasks, parents)
    order = wf.topological_order()
    exec_s = np.array([TOPCU_W[int(t[1:])] for t in order], dtype=float)
    comm = lambda p, c: float(TOPCU_C[(int(p[1:]), int(c[1:]))])  # noqa: E731
    return wf, exec_s, comm


def test_topcuoglu_example():
    wf, exec_s, comm = _topcu()
    r = heft(wf, exec_s, ["P1", "P2", "P3"], comm, workers_per_profile=1)
    assert r.makespan_s == 80.0  # the paper's HEFT schedule length
    # The paper's schedule (Fig. 3a), task -> (processor, start, finish).
    expected = {
        "n1": ("P3", 0, 9), "n3": ("P3", 9, 28), "n4": ("P2", 18, 26), "n2": ("P1", 27, 40),
        "n5": ("P3", 28, 38), "n6": ("P2", 26, 42), "n9": ("P2", 56, 68), "n7": ("P3", 38, 49),
        "n8": ("P1", 57, 62), "n10": ("P2", 73, 80),
    }
    for t, (p, s, f) in expected.items():
        assert r.worker_of[t] == f"{p}-0"
        assert (r.start_s[t], r.finish_s[t]) == (s, f), t
    assert r.worker_profile == {"P1-0": "P1", "P2-0": "P2", "P3-0": "P3"}
    assert r.sequence["P2-0"] == ["n4", "n6", "n9", "n10"]
    assert r.sequence["P3-0"] == ["n1", "n3", "n5", "n7"]


def _check_valid(wf, exec_s, profiles, comm, r):
    idx = wf.index()
    for t in wf.topological_order():
        w = r.worker_of[t]
        j = profiles.index(r.worker_profile[w])
        assert r.finish_s[t] - r.start_s[t] == pytest.approx(exec_s[idx[t], j])
        for p in wf.parents(t):
            lag = 0.0 if r.worker_of[p] == w else comm(p, t)
            assert r.start_s[t] >= r.finish_s[p] + lag - 1e-9
    for w, seq in r.sequence.items():
        assert all(r.worker_of[t] == w for t in seq)
        for a, b in zip(seq, seq[1:]):
            assert r.finish_s[a] <= r.start_s[b] + 1e-9
    assert r.makespan_s == max(r.finish_s.values())


def _random_instance(seed: int, n: int, m: int):
    rng = np.random.default_rng(seed)
    cost = rng.uniform(1, 20, n)
    speed = rng.uniform(1, 4, m)
    bw = float(rng.uniform(2, 10))
    edges = {}
    for j in range(1, n):
        for i in range(j):
            if rng.random() < 0.15:
                edges[(i, j)] = float(rng.uniform(1, 50))
    # single source 0 and single sink n-1 (so saga adds no super tasks)
    for j in range(1, n - 1):
        if not any(b == j for (_, b) in edges):
            edges[(0, j)] = float(rng.uniform(1, 50))
        if not any(a == j for (a, _) in edges):
            edges[(j, n - 1)] = float(rng.uniform(1, 50))
    return cost.tolist(), speed.tolist(), bw, edges


def _as_planlab(cost, speed, bw, edges):
    n = len(cost)
    parents: dict[str, list[str]] = {f"t{i}": [] for i in range(n)}
    for (a, b) in edges:
        parents[f"t{b}"].append(f"t{a}")
    wf = Workflow.from_tasks([Task(f"t{i}", "k") for i in range(n)], parents)
    order = wf.topological_order()
    exec_s = np.array([[cost[int(t[1:])] / s for s in speed] for t in order])
    comm = lambda p, c: edges[(int(p[1:]), int(c[1:]))] / bw  # noqa: E731
    profiles = [f"p{j}" for j in range(len(speed))]
    return wf, exec_s, profiles, comm


def test_deterministic_and_valid():
    wf, exec_s, profiles, comm = _as_planlab(*_random_instance(7, 60, 4))
    for wpp in (1, 2, None):
        a = heft(wf, exec_s, profiles, comm, workers_per_profile=wpp)
        b = heft(wf, exec_s, profiles, comm, workers_per_profile=wpp)
        assert a == b
        _check_valid(wf, exec_s, profiles, comm, a)


def test_more_workers_never_hurts_much_and_unbounded_is_valid():
    wf, exec_s, profiles, comm = _as_planlab(*_random_instance(3, 80, 3))
    r = heft(wf, exec_s, profiles, comm, workers_per_profile=None)
    _check_valid(wf, exec_s, profiles, comm, r)
    # unbounded: every worker ever created hosts at least one task; ids are dense per profile
    assert all(r.sequence[w] for w in r.sequence)
    for p in profiles:
        ks = sorted(int(w.rsplit("-", 1)[1]) for w in r.worker_profile if r.worker_profile[w] == p)
        assert ks == list(range(len(ks)))


_SAGA_SCRIPT = textwrap.dedent(r"""
    import json, sys
    import networkx as nx
    import numpy as np
    from saga import Network, TaskGraph
    import saga.schedulers.heft as H

    original_rank = H.upward_rank
    out = []
    for inst in json.load(sys.stdin):
        cost, speed, bw, edges = inst["cost"], inst["speed"], inst["bw"], inst["edges"]
        tg = nx.DiGraph()
        for i, c in enumerate(cost):
            tg.add_node(f"t{i}", weight=c)
        for a, b, s in edges:
            tg.add_edge(f"t{a}", f"t{b}", weight=s)
        net = nx.Graph()
        for j, s in enumerate(speed):
            net.add_node(f"p{j}", weight=s)
        for j in range(len(speed)):
            for k in range(j, len(speed)):
                net.add_edge(f"p{j}", f"p{k}", weight=1e9 if j == k else bw)
        task_graph = TaskGraph.from_nx(tg, node_weight_attr="weight", edge_weight_attr="weight")
        network = Network.from_nx(net)

        def rank_planlab(network, task_graph, bw=bw):
            # planlab's rank: mean comm of an edge = size / bandwidth between distinct nodes
            ranks = {}
            for task in task_graph.topological_sort()[::-1]:
                avg = float(np.mean([task.cost / node.speed for node in network.nodes]))
                best = max([ranks[d.target] + d.size / bw for d in task_graph.out_edges(task.name)], default=0.0)
                ranks[task.name] = avg + best
            return ranks

        res = {}
        for label, rank in (("saga_rank", original_rank), ("planlab_rank", rank_planlab)):
            H.upward_rank = rank
            sched = H.HeftScheduler().schedule(network, task_graph)
            res[label] = sched.makespan
            res[label + "_nodes"] = {t.name: t.node for ts in sched.mapping.values() for t in ts}
        out.append(res)
    json.dump(out, sys.stdout)
""")


def test_agrees_with_saga_heft():
    pytest.importorskip("saga")
    seeds = list(range(8))
    instances, ours = [], []
    for seed in seeds:
        n = 20 + (seed * 37) % 31  # 20..50 tasks
        m = 3 + seed % 3           # 3..5 profiles
        cost, speed, bw, edges = _random_instance(seed, n, m)
        instances.append({"cost": cost, "speed": speed, "bw": bw,
                          "edges": [[a, b, s] for (a, b), s in edges.items()]})
        wf, exec_s, profiles, comm = _as_planlab(cost, speed, bw, edges)
        r = heft(wf, exec_s, profiles, comm, workers_per_profile=1)
        _check_valid(wf, exec_s, profiles, comm, r)
        ours.append(r)
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run([sys.executable, "-c", _SAGA_SCRIPT], input=json.dumps(instances),
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout)
    for r, s in zip(ours, theirs):
        # Same ranks (saga's upward_rank replaced by planlab's definition): identical schedule.
        assert r.makespan_s == pytest.approx(s["planlab_rank"], rel=1e-6)
        assert {t: w.rsplit("-", 1)[0] for t, w in r.worker_of.items()} == s["planlab_rank_nodes"]
    # Intended difference: saga's own upward_rank averages size/bandwidth over all network links
    # including self-links (1e9), i.e. it scales comm by about (m-1)/(m+1); priorities, hence
    # makespans, can then differ.  Only sanity-check that they are of the same order.
    for r, s in zip(ours, theirs):
        assert 0.5 < r.makespan_s / s["saga_rank"] < 2.0


# ---------------------------------------------------------------------- cold starts
def _graph(parents: dict[str, list[str]]) -> Workflow:
    return Workflow.from_tasks([Task(t, "k") for t in parents], parents)


def test_a_fresh_worker_pays_its_profiles_start_up():
    wf = _graph({"a": []})
    r = heft(wf, np.array([[1.0, 3.0]]), ["p0", "p1"], lambda p, c: 0.0, startup_s=[2.0, 0.5])
    assert (r.worker_of["a"], r.start_s["a"], r.finish_s["a"]) == ("p0-0", 2.0, 3.0)
    r = heft(wf, np.array([[1.0, 3.0]]), ["p0", "p1"], lambda p, c: 0.0, startup_s=[3.0, 0.5])
    assert (r.worker_of["a"], r.start_s["a"], r.finish_s["a"]) == ("p1-0", 0.5, 3.5)


def test_start_up_is_paid_once_per_worker_and_before_an_inserted_first_task():
    wf = _graph({"a": [], "b": ["a"]})
    r = heft(wf, np.array([[1.0], [1.0]]), ["p"], lambda p, c: 0.0, workers_per_profile=1, startup_s=[1.0])
    assert (r.start_s["a"], r.start_s["b"]) == (1.0, 2.0)
    line = Timeline()
    line.add(5.0, 6.0, 0)
    assert line.earliest_start(0.0, 1.0, 2.0) == 2.0      # fits before the first task, after the start-up
    assert line.earliest_start(3.0, 1.0, 2.0) == 6.0      # 3 + 2 + 1 > 5: after the first task, no start-up
    assert line.earliest_start(3.0, 1.0) == 3.0


def test_a_warm_worker_beats_a_cold_one():
    # a (1 s) feeds c (10 s) and d (1 s); b is independent.  Start-up 5 s, free communication.
    # a -> p-0 [5, 6], c -> p-0 [6, 16], b -> p-1 [5, 6]; d is ready at 6: the warm p-1 runs it at 6
    # (a cold worker would start it at 11, p-0 only at 16).
    wf = _graph({"a": [], "b": [], "c": ["a"], "d": ["a"]})
    order = wf.topological_order()
    durations = {"a": 1.0, "b": 1.0, "c": 10.0, "d": 1.0}
    r = heft(wf, np.array([[durations[t]] for t in order]), ["p"], lambda p, c: 0.0, startup_s=[5.0])
    assert r.worker_of == {"a": "p-0", "c": "p-0", "b": "p-1", "d": "p-1"}
    assert (r.start_s["d"], r.makespan_s) == (6.0, 16.0)
    # without start-up, the unbounded pool is the classic (every task as early as its data allows)
    r0 = heft(wf, np.array([[durations[t]] for t in order]), ["p"], lambda p, c: 0.0)
    assert r0.start_s == {"a": 0.0, "b": 0.0, "c": 1.0, "d": 1.0}


def test_comm_as_a_mapping_equals_the_function():
    wf, exec_s, profiles, comm = _as_planlab(*_random_instance(5, 50, 3))
    table = {(p, c): comm(p, c) for p, c, _ in wf.edges()}
    assert heft(wf, exec_s, profiles, table) == heft(wf, exec_s, profiles, comm)


def test_bad_start_up_is_rejected():
    wf = _graph({"a": []})
    with pytest.raises(ValueError, match="startup_s"):
        heft(wf, np.array([[1.0]]), ["p"], lambda p, c: 0.0, startup_s=[1.0, 2.0])
