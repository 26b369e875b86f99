"""The host model across a cluster's nodes: the placement rule, per-node shared cores, the platform's nodes.

Every expected time here is computed by hand in the test's docstring.
"""

from __future__ import annotations

import math

import pytest

from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.schedule.nodes import ClusterNode, NodePlacer, place_planned
from planning.sources.generators import generate
from simulator import Platform, simulate

FREE = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
CATALOG = load_catalog("local")     # small 0.5 CPU, medium 1 CPU, large 2 CPUs


def two_branches(profile: str = "medium", width: int = 2):
    """fork -> s0-w0..s0-w{width-1} -> s0-join; uniform: fork, s0-w0 and the join on w0, every other branch alone.

    Only the branches take time (1 s of CPU alone each), so the makespan is the branches' span."""
    workflow = generate("fork_join", width=width)
    plan = get_planner("uniform", profile=profile).plan(workflow, CATALOG, FREE, "mean")
    durations = {t: (1.0 if "-w" in t and not t.endswith("join") else 0.0) for t in workflow.task_ids}
    return workflow, plan, durations


def nodes(*cores: float, marked: dict[int, tuple[str, ...]] | None = None) -> list[ClusterNode]:
    return [ClusterNode(f"n{k}", c, profiles=(marked or {}).get(k, ())) for k, c in enumerate(cores)]


# ---------------------------------------------------------------------- the rule
def test_first_fit_in_order_then_the_least_loaded_node():
    """Nodes of 2 and 1 cores, 1-CPU workers: the first two fill n0, the third goes to n1, a fourth has no room
    anywhere and goes to the node with the most free CPUs (n0: 0 free, n1: 0 free -> tie -> the first, n0)."""
    placer = NodePlacer(nodes(2, 1))
    assert [placer.place("medium", 1.0, 1024) for _ in range(4)] == [0, 0, 1, 0]
    placer.release(0, 1.0, 1024)
    placer.release(0, 1.0, 1024)                               # n0 now holds one worker: one CPU free
    assert placer.choose("medium", 1.0, 1024) == 0             # first fit
    assert placer.choose("large", 2.0, 1024) == 0              # fits nowhere: the most free CPUs (n0: 1, n1: 0)
    assert placer.cpus_used == [1.0, 1.0]


def test_memory_counts_like_cpus():
    """A 4-core node of 1000 MB holds one 800 MB worker; the second goes to the next node."""
    placer = NodePlacer([ClusterNode("a", 4, memory_mb=1000), ClusterNode("b", 4)])
    assert [placer.place("medium", 1.0, 800), placer.place("medium", 1.0, 800)] == [0, 1]


def test_a_profile_marked_on_some_nodes_goes_only_there():
    """Ray's rule for a custom resource: marked nodes only when some node is marked, every node otherwise."""
    placer = NodePlacer(nodes(4, 2, 2, marked={1: ("large",), 2: ("large",)}))
    assert placer.offering("large") == [1, 2] and placer.offering("medium") == [0, 1, 2]
    assert [placer.place("large", 2.0, 1) for _ in range(3)] == [1, 2, 1]   # the third over-subscribes n1 (tie)


def test_planned_workers_are_placed_meeting_starts_and_stops_in_time_order():
    """Three 1-CPU workers on nodes of 1 core each: w0 [0, 2), w1 [0, 1), w2 [1.5, 3), w3 [2, 3).  At 0 w0 -> n0,
    w1 -> n1; w1 stops at 1, so at 1.5 w2 gets n1's freed core; at 2 w3 starts before w0's stop frees n0 (a start
    and a stop at one instant: the start first), so no node has room and it joins the least loaded (a tie: n0)."""
    placed = place_planned([0.0, 0.0, 1.5, 2.0], [2.0, 1.0, 3.0, 3.0], ["medium"] * 4, CATALOG, nodes(1, 1))
    assert placed == [0, 1, 1, 0]


# ---------------------------------------------------------------------- the simulator on nodes
def test_two_cpu_bound_tasks_on_two_one_core_nodes_run_in_parallel():
    """Two 1 s branches on 1-CPU workers: on two 1-core nodes each has its own core (1 s); on one 1-core node they
    share it (half a core each: both end at 2 s); one node of one core is the one-host model bit for bit."""
    workflow, plan, durations = two_branches()
    zero = Platform.zero()
    two = simulate(workflow, plan, FREE, platform=zero.with_(nodes=nodes(1, 1)), durations=durations)
    one = simulate(workflow, plan, FREE, platform=zero.with_(nodes=nodes(1)), durations=durations)
    host = simulate(workflow, plan, FREE, platform=zero.with_(host_cores=1.0), durations=durations)
    assert two.makespan_s == pytest.approx(1.0) and one.makespan_s == pytest.approx(2.0)
    assert two.meta["worker_nodes"] == {"w0": "n0", "w1": "n1"} and one.meta["worker_nodes"] == {"w0": "n0", "w1": "n0"}
    assert one.tasks.equals(host.tasks) and one.workers.equals(host.workers) and one.makespan_s == host.makespan_s


def test_three_branches_on_a_two_core_and_a_one_core_node():
    """Three 1 s branches on 1-CPU workers, nodes of 2 and 1 cores: first fit puts w0, w1 on n0 (one core each)
    and w2 on n1: all end at 1 s.  Nodes of 1 and 2 cores in that order: w0 on n0, w1 and w2 on n1: also 1 s.
    Nodes of 1 and 1 core: the third has no room and joins the least loaded (a tie: n0), sharing its core with
    w0 - each at half a core ends at 2 s, while w1 ends at 1 s."""
    workflow, plan, durations = two_branches(width=3)
    zero = Platform.zero()
    for cores in ((2, 1), (1, 2)):
        trace = simulate(workflow, plan, FREE, platform=zero.with_(nodes=nodes(*cores)), durations=durations)
        assert trace.makespan_s == pytest.approx(1.0), cores
    crowded = simulate(workflow, plan, FREE, platform=zero.with_(nodes=nodes(1, 1)), durations=durations)
    done = crowded.tasks.set_index("task_id")["done_s"]
    assert crowded.meta["worker_nodes"] == {"w0": "n0", "w1": "n1", "w2": "n0"}
    assert [done["s0-w0"], done["s0-w1"], done["s0-w2"]] == pytest.approx([2.0, 1.0, 2.0])


def test_a_profile_only_one_node_offers_runs_there_and_shares_its_cores():
    """large (2 CPUs) marked on n1 only (2 cores), n0 has 8 cores: both large workers go to n1 and share its
    two cores (each branch is single-threaded: one core each, 1 s); medium workers (unmarked) pack onto n0."""
    marked = nodes(8, 2, marked={1: ("large",)})
    workflow, plan, durations = two_branches("large")
    trace = simulate(workflow, plan, FREE, platform=Platform.zero().with_(nodes=marked), durations=durations)
    assert set(trace.meta["worker_nodes"].values()) == {"n1"} and trace.makespan_s == pytest.approx(1.0)
    workflow, plan, durations = two_branches("medium")
    trace = simulate(workflow, plan, FREE, platform=Platform.zero().with_(nodes=marked), durations=durations)
    assert set(trace.meta["worker_nodes"].values()) == {"n0"}


def test_an_idle_process_serves_a_later_worker_placed_on_its_node():
    """chain a -> b on workers w0 then w1 (1 CPU each); invocations 0.1 s, cold start 1 s, warm 0, long keep-alive;
    a takes 1 s, b 0 s.  a starts at 0.1 + 1 = 1.1 and ends at 2.1; w0 stops then, and w1's start request comes at
    2.2: on one host it reuses w0's process; on nodes of one core each, n0 is free again, so first fit places w1
    there and it reuses the process too.  Makespan 2.2 s both."""
    workflow = generate("chain", length=2)
    a, b = workflow.topological_order()
    from executor.plans import assigned_plan

    plan = assigned_plan(workflow, {a: "w0", b: "w1"}, "medium")
    platform = Platform.zero().with_(cold_start_s=1.0, keep_alive_s=600.0, invoke_s=0.1)
    durations = {a: 1.0, b: 0.0}
    one = simulate(workflow, plan, FREE, platform=platform.with_(host_cores=1.0), durations=durations)
    two = simulate(workflow, plan, FREE, platform=platform.with_(nodes=nodes(1, 1)), durations=durations)
    for trace in (one, two):
        assert trace.workers.set_index("worker")["cold_start"].to_dict() == {"w0": True, "w1": False}
        assert trace.makespan_s == pytest.approx(2.2)
    assert two.meta["worker_nodes"] == {"w0": "n0", "w1": "n0"}


def test_the_warm_pool_waits_on_the_first_node_and_serves_only_workers_placed_there():
    """Two idle medium processes at the start (the warm pool) and two 1-CPU workers running at once (w0: fork and
    branch 0, w1: branch 1).  One host of 2 cores: both start warm.  Nodes of one core each: the pool sits on n0,
    w0 is placed on n0 and starts warm, w1 has no room there, goes to n1 and starts cold."""
    workflow, plan, durations = two_branches()
    platform = Platform.zero().with_(cold_start_s=1.0, keep_alive_s=600.0)
    pool = {"medium": 2}
    one = simulate(workflow, plan, FREE, platform=platform.with_(host_cores=2.0), durations=durations, warm_pool=pool)
    two = simulate(workflow, plan, FREE, platform=platform.with_(nodes=nodes(1, 1)), durations=durations,
                   warm_pool=pool)
    assert one.workers.set_index("worker")["cold_start"].to_dict() == {"w0": False, "w1": False}
    assert two.workers.set_index("worker")["cold_start"].to_dict() == {"w0": False, "w1": True}


# ---------------------------------------------------------------------- the platform's nodes
def test_platform_nodes_round_trip_and_set_the_host_cores(tmp_path):
    platform = Platform(nodes=[{"name": "a", "cores": 2}, {"name": "b", "cores": 1, "memory_mb": 2048,
                                                            "profiles": ["large"]}])
    assert platform.host_cores == 3.0 and platform.shared_host
    assert Platform.from_dict(platform.to_dict()) == platform
    platform.to_toml(tmp_path / "p.toml")
    assert Platform.from_toml(tmp_path / "p.toml") == platform
    assert "nodes" not in Platform().to_dict()                       # no nodes: the dict as before
    assert platform.with_(nodes=nodes(4)).host_cores == 4.0          # new nodes, their own total


@pytest.mark.parametrize("data, match", [
    ({"host_cores": 5, "nodes": [{"name": "a", "cores": 2}]}, "host_cores = 5"),
    ({"nodes": [{"name": "a", "cores": 0}]}, "cores must be a number > 0"),
    ({"nodes": [{"name": "a", "cores": 1}, {"name": "a", "cores": 1}]}, "repeat a name"),
    ({"nodes": [{"name": "a", "cores": 1, "gpus": 1}]}, "unknown key 'gpus'"),
    ({"nodes": {"name": "a"}}, "list of tables"),
    ({"nodes": [{"name": "a", "cores": 1, "profiles": "large"}]}, "list of profile names"),
])
def test_bad_nodes_are_one_line_config_errors(data, match):
    with pytest.raises(ConfigError, match=match):
        Platform.from_dict(data)


# ---------------------------------------------------------------------- the plan's placement
@pytest.mark.parametrize("planner", ["heft", "critical-path"])
def test_the_plans_placement_is_the_simulations(planner):
    """Nodes of 2 cores, as many as the plan's peak CPUs (so every worker finds room and the simulation keeps the
    plan's times, Platform.zero; the transfers' CPU, which the plan does not model, left out): the rule over the
    plan's starts and stops places every worker where the simulation placed it, and no node holds more CPUs than
    its cores."""
    from planning.schedule.nodes import node_peaks, plan_nodes
    no_cpu = {f"{kind}_{side}_s_per_byte": 0.0 for kind in ("fetch", "upload") for side in ("server", "thread")}
    workflow = generate("random_layered", tasks=60, seed=3)
    plan = get_planner(planner).plan(workflow, CATALOG, FREE, "mean")
    cluster = nodes(*([2.0] * int(math.ceil(plan.peak_cpus))))
    trace = simulate(workflow, plan, FREE, platform=Platform.zero().with_(nodes=cluster, **no_cpu))
    assert trace.makespan_s == pytest.approx(plan.makespan_s)
    assert plan_nodes(plan, cluster) == trace.meta["worker_nodes"]
    assert len(set(trace.meta["worker_nodes"].values())) > 1
    assert max(node_peaks(plan, cluster).values()) <= 2.0
