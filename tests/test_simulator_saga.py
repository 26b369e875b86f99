"""Replaying anrg-saga's HEFT schedule in the simulator reproduces saga's makespan.

SAGA (an independent implementation) schedules random heterogeneous instances; its
per-node task order and speeds become a planlab plan, which the simulator runs with
no overheads.  Communication is free here: saga lets data travel while a node is
busy, planlab's protocol downloads on the worker, so only free transfers are
comparable start for start.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from planning.costs.cost_model import CostModel
from planning.plan import Plan
from planning.profiles import Catalog, ResourceProfile
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate

_SAGA = textwrap.dedent(r"""
    import json, sys
    import networkx as nx
    from saga import Network, TaskGraph
    from saga.schedulers.heft import HeftScheduler

    out = []
    for inst in json.load(sys.stdin):
        tg = nx.DiGraph()
        for i, c in enumerate(inst["cost"]):
            tg.add_node(f"t{i}", weight=c)
        for a, b in inst["edges"]:
            tg.add_edge(f"t{a}", f"t{b}", weight=0.0)
        net = nx.Graph()
        for j, s in enumerate(inst["speed"]):
            net.add_node(f"p{j}", weight=s)
        m = len(inst["speed"])
        for j in range(m):
            for k in range(j, m):
                net.add_edge(f"p{j}", f"p{k}", weight=1e9)
        sched = HeftScheduler().schedule(Network.from_nx(net), TaskGraph.from_nx(tg, node_weight_attr="weight",
                                                                                 edge_weight_attr="weight"))
        out.append({"makespan": sched.makespan,
                    "tasks": [[t.name, t.node, t.start, t.end] for ts in sched.mapping.values() for t in ts]})
    json.dump(out, sys.stdout)
""")


def _instance(seed: int, n: int, m: int) -> dict:
    rng = np.random.default_rng(seed)
    edges = {(i, j) for j in range(1, n) for i in range(j) if rng.random() < 0.15}
    for j in range(1, n - 1):      # a single source and a single sink: saga adds no dummy tasks
        if not any(b == j for _, b in edges):
            edges.add((0, j))
        if not any(a == j for a, _ in edges):
            edges.add((j, n - 1))
    return {"cost": rng.uniform(1, 20, n).tolist(), "speed": rng.uniform(1, 4, m).tolist(),
            "edges": sorted(edges)}


def test_replaying_saga_heft_reproduces_its_makespan() -> None:
    pytest.importorskip("saga")
    instances = [_instance(seed, 25 + 5 * seed, 3 + seed % 2) for seed in range(4)]
    proc = subprocess.run([sys.executable, "-c", _SAGA], input=json.dumps(instances), capture_output=True,
                          text=True, env=dict(os.environ, PYTHONHASHSEED="0"), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    free = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
    for inst, saga in zip(instances, json.loads(proc.stdout)):
        n = len(inst["cost"])
        parents: dict[str, list[str]] = {f"t{i}": [] for i in range(n)}
        for a, b in inst["edges"]:
            parents[f"t{b}"].append(f"t{a}")
        wf = Workflow.from_tasks([Task(f"t{i}", "k") for i in range(n)], parents, name="saga")
        nodes = [f"p{j}" for j in range(len(inst["speed"]))]
        catalog = Catalog([ResourceProfile(p, s, 1024.0, 1e-5) for p, s in zip(nodes, inst["speed"])], name="saga")
        rows = sorted(saga["tasks"], key=lambda r: r[2])
        worker_of = {name: node for name, node, _, _ in rows}
        sequence: dict[str, list[str]] = {}
        for name, node, _, _ in rows:
            sequence.setdefault(node, []).append(name)
        est = free.estimate_workflow(wf, catalog, "mean")
        exec_s = np.array([[inst["cost"][int(t[1:])] / s for s in inst["speed"]] for t in est.task_ids])
        est = replace(est, exec_s=exec_s, base_exec_s=exec_s)
        plan = Plan.from_assignment(wf, catalog, est, free, "mean", worker_of, {p: p for p in sequence},
                                    planner="saga-heft", sequence=sequence)
        durations = {t: inst["cost"][int(t[1:])] / catalog[worker_of[t]].cpus for t in wf.task_ids}
        trace = simulate(wf, plan, free, platform=Platform.zero(), durations=durations)
        assert trace.makespan_s == pytest.approx(saga["makespan"], rel=1e-9)
        got = trace.tasks.set_index("task_id")
        for name, node, start, end in rows:
            assert got.at[name, "worker"] == node
            assert (got.at[name, "exec_start_s"], got.at[name, "exec_end_s"]) == pytest.approx((start, end), rel=1e-9)
