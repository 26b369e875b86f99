"""Campaigns and executions on a real Ray cluster of three nodes on this machine (head + two workers).

Ray's multi-node test cluster (``ray.cluster_utils.Cluster``) starts a raylet per
node, as ``ray start`` does on separate hosts: tasks and actors really land on
different nodes (their own worker processes), and a node can be killed.  The
head has no CPU so every cell and worker runs on a worker node.  Skipped
without Ray (the ``ray`` extra).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from executor import ExecutorSettings  # noqa: E402
from executor.launcher.ray_launcher import RayExecutor  # noqa: E402
from executor.plans import assigned_plan  # noqa: E402
from experiments.config import parse_config  # noqa: E402
from experiments.ray_campaign import RayCampaign  # noqa: E402
from experiments.results import load_results  # noqa: E402
from experiments.runner import run_experiment  # noqa: E402
from planning.errors import ConfigError, ExecutionError  # noqa: E402
from planning.profiles import Catalog, ResourceProfile  # noqa: E402
from planning.sources.generators import generate  # noqa: E402
from planning.workflow import run_locally  # noqa: E402

pytestmark = pytest.mark.timeout(600)

SIM = {"name": "rc", "phases": ["plan", "simulate"], "slas": ["mean", "p90"], "repetitions": 2,
       "workflow": [{"spec": "gen:fork_join:width=3", "name": "fj"}],
       "planner": [{"name": "heft"}, {"name": "critical-path"}], "simulate": {"replications": 40}}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        c.add_node(num_cpus=2, resources={"planlab_host": 1})
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)   # as planlab connects: stdout is ours
    c.wait_for_nodes()
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def _worker_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0}


def test_campaign_cells_spread_over_nodes_with_the_local_runners_numbers(cluster: Cluster, tmp_path: Path) -> None:
    config = parse_config(SIM, name="rc")
    on_ray = run_experiment(config, tmp_path / "ray", progress=False, log=lambda m: None, ray=RayCampaign())
    local = run_experiment(config, tmp_path / "local", progress=False, log=lambda m: None)
    assert (on_ray.cells_run, local.cells_run) == (8, 8)
    a = on_ray.results.summary.sort_values("cell_id").reset_index(drop=True)
    b = local.results.summary.sort_values("cell_id").reset_index(drop=True)
    assert list(a["cell_id"]) == list(b["cell_id"])
    for column in ("planned_makespan_s", "planned_cost", "simulated_makespan_s", "sim_p50_s"):
        assert a[column].equals(b[column]), column   # same seeds, same code: bit for bit
    assert set(a["ray_node"]) <= _worker_nodes() and a["ray_node"].nunique() == 2   # both nodes ran cells
    assert "ray_node" not in b


def test_campaign_resumes_and_writes_each_cell_once(cluster: Cluster, tmp_path: Path) -> None:
    config = parse_config(SIM, name="rc")
    out = tmp_path / "r"
    first = run_experiment(config, out, progress=False, log=lambda m: None, ray=RayCampaign())
    written = {p.name: p.stat().st_mtime_ns for p in (out / "cells").iterdir()}
    victim = "fj.heft.p90.r1"
    (out / "cells" / victim / "summary.json").unlink()   # as if interrupted while that cell was being written
    again = run_experiment(config, out, progress=False, log=lambda m: None, ray=RayCampaign())
    assert (first.cells_run, again.cells_run, again.cells_skipped) == (8, 1, 7)
    rewritten = {p.name for p in (out / "cells").iterdir() if p.stat().st_mtime_ns != written[p.name]}
    assert rewritten == {victim}
    assert load_results(out).summary["cell_id"].is_unique


def test_real_cells_run_on_the_host_nodes_one_at_a_time_each(cluster: Cluster, tmp_path: Path) -> None:
    config = parse_config({"name": "rx", "phases": ["plan", "execute"], "repetitions": 2,
                           "workflow": [{"spec": "gen:fork_join:width=2,units=20000", "name": "fj"}],
                           "planner": [{"name": "critical-path"}]}, name="rx")
    outcome = run_experiment(config, tmp_path / "x", progress=False, log=lambda m: None, ray=RayCampaign())
    s = outcome.results.summary
    assert outcome.cells_run == 2 and s["real_makespan_s"].gt(0).all()
    assert set(s["ray_node"]) <= _worker_nodes()
    for cell in s["cell_id"]:   # each cell's saved run came back from its node, whole
        assert (tmp_path / "x" / "runs" / cell / "saved_run.json").is_file()
        assert (tmp_path / "x" / "runs" / cell / "trace" / "tasks.parquet").is_file()


def test_a_cluster_without_host_nodes_refuses_real_cells(cluster: Cluster, tmp_path: Path) -> None:
    config = parse_config({"name": "rx", "phases": ["plan", "execute"],
                           "workflow": [{"spec": "gen:chain:length=2"}], "planner": [{"name": "uniform"}],
                           "run": {"host_resource": "gpu_box"}}, name="rx")
    with pytest.raises(ConfigError, match="gpu_box"):
        run_experiment(config, tmp_path / "x", progress=False, log=lambda m: None,
                       ray=RayCampaign(host_resource="gpu_box"))


#: seconds a worker's Ray actor may take to start in the tests that place workers (the default 30 s is tight on a
#: loaded 2-core machine: two such runs failed at load ~10)
START_TIMEOUT_S = 120.0


def _spread_plan(width: int = 4, units: int = 30_000):
    wf = generate("fork_join", width=width, depth=1, units=units)
    order = wf.topological_order()
    return wf, assigned_plan(wf, {t: f"w{i % width}" for i, t in enumerate(order)}, "medium")


def test_execution_workers_land_on_different_nodes_with_the_right_results(cluster: Cluster) -> None:
    wf, plan = _spread_plan()
    # a Ray actor's start took over the default 30 s on a 2-core machine at load ~10 (a benchmark beside the suite)
    with RayExecutor(settings=ExecutorSettings(keep_alive_s=10.0, start_timeout_s=START_TIMEOUT_S)) as ex:
        first = ex.run(wf, plan)
        second = ex.run(wf, plan)
    expected = run_locally(wf)
    for result in (first, second):
        assert {k: result.results[k] for k in wf.sinks()} == {k: expected[k] for k in wf.sinks()}
    workers = first.trace.workers
    assert workers["host"].nunique() == 2   # each host is the machine and its Ray node
    # a fresh executor has no idle actor: its first worker starts cold (later ones may reuse an actor a branch
    # that finished early freed - on a busy machine they do)
    assert workers["launcher"].nunique() == 1 and bool(workers.sort_values("start_s")["cold_start"].iloc[0])
    assert set(workers["cpu_enforced"]) <= {"cgroup-v1", "cgroup-v2", "affinity", "none"}
    assert not second.trace.workers["cold_start"].all()   # idle actors within keep-alive served again


def test_workers_land_on_the_nodes_the_host_model_places_them_on(cluster: Cluster) -> None:
    """Four 1-CPU workers at once on two 2-CPU nodes: the launcher pins them by the host model's rule (first node by
    id with room), so the forecast with the cluster's own node list (cluster_nodes) places them alike: the fork's
    worker and one branch on the first node, two branches on the second."""
    from executor.launcher.ray_cluster import cluster_nodes
    from planning.costs.cost_model import CostModel
    from simulator import Platform, simulate

    nodes = cluster_nodes()
    assert [n.cores for n in nodes] == [2.0, 2.0] and list(nodes) == sorted(nodes, key=lambda n: n.name)
    wf, plan = _spread_plan(units=int(6.5e6))      # ~1 s per branch: every branch's worker serves at once
    with RayExecutor(settings=ExecutorSettings(keep_alive_s=1.0, start_timeout_s=START_TIMEOUT_S)) as ex:
        real = ex.run(wf, plan)
    free = CostModel(latency_s=0.0, bandwidth_Bps=float("inf"), cold_start_s=0.0, warm_start_s=0.0)
    forecast = simulate(wf, plan, free, platform=Platform.zero().with_(nodes=nodes, invoke_s=1e-3))
    by_id = {n.name[:8]: n.name for n in nodes}
    real_nodes = {w: by_id[h.rsplit("-", 1)[1]] for w, h in zip(real.trace.workers["worker"], real.trace.workers["host"])}
    simulated = forecast.meta["worker_nodes"]
    assert real_nodes["w0"] == simulated["w0"] == nodes[0].name
    count = lambda where: sorted(list(where.values()).count(n.name) for n in nodes)   # noqa: E731
    assert count(real_nodes) == count(simulated) == [2, 2]



def test_a_real_cell_can_spread_one_execution_over_the_nodes(cluster: Cluster, tmp_path: Path) -> None:
    """[run] spread_real_cells: the real cell runs from the driver on a RayExecutor, its four 1-CPU workers at once
    on two 2-CPU nodes (two each, by the placement rule)."""
    config = parse_config({"name": "sp", "phases": ["plan", "execute"],
                           "workflow": [{"spec": "gen:fork_join:width=4,units=3000000", "name": "fj"}],
                           "planner": [{"name": "uniform", "params": {"profile": "medium"}}],
                           "run": {"backend": "ray", "spread_real_cells": True}}, name="sp")
    assert config.run.spread_real_cells
    outcome = run_experiment(config, tmp_path / "s", progress=False, log=lambda m: None,
                             ray=RayCampaign(spread_real_cells=True))
    s = outcome.results.summary
    assert outcome.cells_run == 1 and s["real_makespan_s"].gt(0).all()
    assert int(s["ray_worker_nodes"].iloc[0]) == 2
    assert (tmp_path / "s" / "runs" / s["cell_id"].iloc[0] / "saved_run.json").is_file()



def test_a_profile_resource_keeps_its_workers_on_the_nodes_that_offer_it(cluster: Cluster) -> None:
    node = cluster.add_node(num_cpus=2, resources={"planlab_profile_medium": 1})
    cluster.wait_for_nodes()
    try:
        wf, plan = _spread_plan(units=1000)
        with RayExecutor(settings=ExecutorSettings(keep_alive_s=1.0)) as ex:
            result = ex.run(wf, plan)
        assert set(result.trace.workers["host"]) == {result.trace.workers["host"].iloc[0]}
        assert result.trace.workers["host"].iloc[0].endswith(node.node_id[:8])
    finally:
        cluster.remove_node(node)


def test_a_profile_no_node_can_hold_fails_the_run_cleanly(cluster: Cluster) -> None:
    wf = generate("chain", length=2, units=100)
    huge = Catalog([ResourceProfile("huge", cpus=64, memory_mb=512, price_per_s=1e-5)], name="huge")
    plan = assigned_plan(wf, {t: "w" for t in wf.task_ids}, "huge", catalog=huge)
    started = time.monotonic()
    with RayExecutor(settings=ExecutorSettings(start_timeout_s=3.0, run_timeout_s=120.0)) as ex:
        with pytest.raises(ExecutionError, match="no Ray node could hold a worker") as err:
            ex.run(wf, plan)
    assert "64" in str(err.value) and time.monotonic() - started < 60


def test_a_node_killed_mid_run_does_not_hang_the_run(cluster: Cluster) -> None:
    """A third node dies while it runs workers: they run again on the others (or the run fails, clearly)."""
    spare = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    wf, plan = _spread_plan(width=4, units=int(6.5e6 * 3))   # ~3 s per branch
    killed: list[str] = []

    def kill_a_busy_node() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            nodes = {a.node for a in ex.actors() if a.serving is not None and a.node}
            for victim in [n for n in (cluster.worker_nodes) if n.node_id in nodes][:1]:
                cluster.remove_node(victim, allow_graceful=False)
                killed.append(victim.node_id)
            time.sleep(0.2)

    started = time.monotonic()
    with RayExecutor(settings=ExecutorSettings(keep_alive_s=1.0, lease_s=2.0, start_timeout_s=60.0,
                                               run_timeout_s=240.0)) as ex:
        killer = threading.Thread(target=kill_a_busy_node)
        killer.start()
        try:
            result = ex.run(wf, plan)
        except ExecutionError as exc:   # a clean failure is allowed; a hang is not
            result, failure = None, exc
        killer.join()
    assert killed, "no node was killed while workers ran"
    assert time.monotonic() - started < 240
    if result is not None:   # the dead node's workers ran again (a next generation) elsewhere
        expected = run_locally(wf)
        assert {k: result.results[k] for k in wf.sinks()} == {k: expected[k] for k in wf.sinks()}
        assert result.meta["restarts"] >= 1 and result.meta["deaths"]
    else:
        assert "died" in str(failure) or "lease" in str(failure)
    if spare.node_id not in killed:
        cluster.remove_node(spare)


def test_planlab_execute_and_run_take_ray_from_the_command_line(cluster: Cluster, tmp_path: Path, capsys) -> None:
    import json

    from experiments.cli import main

    argv = ["execute", "gen:fork_join:width=3,units=500", "--planner", "uniform", "--profile", "small",
            "--catalog", "local", "--trace-out", str(tmp_path / "t"), "--ray", "--json"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    # the test's own Ray driver may print an earlier test's dead node ("(raylet) ... marked dead") first
    info = json.loads(out[out.index("{\n"):])
    assert info["tasks"] == 5 and info["workers"] == 3 and info["makespan_s"] > 0
    import pandas as pd

    hosts = pd.read_parquet(tmp_path / "t" / "workers.parquet")["host"]
    assert hosts.str.contains("/ray-").all()
    config = tmp_path / "c.toml"
    config.write_text('phases = ["plan", "simulate"]\nrepetitions = 3\n[[workflow]]\nspec = "gen:chain:length=3"\n'
                      '[[planner]]\nname = "heft"\n')
    assert main(["run", str(config), "--ray", "--no-report", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    assert load_results(tmp_path / "r").summary["ray_node"].isin(_worker_nodes()).all()


def test_a_campaign_of_a_users_workflow_file_runs_on_the_nodes(cluster: Cluster, tmp_path: Path) -> None:
    """Task code of a file loaded by path travels by value (no node can import it by name), planned and run for real."""
    example = Path(__file__).resolve().parents[1] / "examples" / "random_durations.py"
    config = parse_config({"name": "user", "phases": ["plan", "simulate", "execute"], "repetitions": 2,
                           "workflow": [{"spec": f"{example}:workflow", "name": "rd"}],
                           "planner": [{"name": "critical-path"}]}, name="user")
    outcome = run_experiment(config, tmp_path / "u", progress=False, log=lambda m: None, ray=RayCampaign())
    s = outcome.results.summary
    assert outcome.cells_run == 2 and s["real_makespan_s"].gt(0).all() and s["simulated_makespan_s"].gt(0).all()
    assert s["ray_node"].isin(_worker_nodes()).all()


def test_a_node_killed_mid_campaign_does_not_hang_it(cluster: Cluster, tmp_path: Path) -> None:
    """Cells that were running on a killed node run again elsewhere (Ray retries them); every cell is saved once."""
    spare = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    # long enough that the node dies while cells run (the simulator got faster: 400 replications took < 3 s)
    config = parse_config({**SIM, "repetitions": 4, "simulate": {"replications": 1600}}, name="rc")
    killed_at: list[float] = []

    def kill_soon() -> None:
        time.sleep(2.0)
        cluster.remove_node(spare, allow_graceful=False)
        killed_at.append(time.monotonic())

    killer = threading.Thread(target=kill_soon)
    killer.start()
    try:
        outcome = run_experiment(config, tmp_path / "k", progress=False, log=lambda m: None, ray=RayCampaign())
    except ExecutionError as exc:   # a clean failure is allowed; a hang is not
        outcome, failure = None, exc
    ended = time.monotonic()
    killer.join()
    assert killed_at and killed_at[0] < ended, "the node was not killed while the campaign ran"
    if outcome is not None:
        local = run_experiment(config, tmp_path / "l", progress=False, log=lambda m: None)
        a = outcome.results.summary.sort_values("cell_id").reset_index(drop=True)
        b = local.results.summary.sort_values("cell_id").reset_index(drop=True)
        assert outcome.cells_run == 16 and a["simulated_makespan_s"].equals(b["simulated_makespan_s"])
    else:
        assert "cannot run" in str(failure) or "died" in str(failure)



def test_an_execution_on_ray_coordinated_by_a_redis_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """The Ray launcher and its actors with a real 3-master Redis Cluster (redis+cluster://) as the server."""
    from redis_cluster import redis_cluster  # tests/redis_cluster.py

    wf, plan = _spread_plan(units=1000)
    with redis_cluster(tmp_path / "redis") as ports:
        with RayExecutor(f"redis+cluster://127.0.0.1:{ports[0]}", ExecutorSettings(keep_alive_s=1.0)) as ex:
            result = ex.run(wf, plan)
    expected = run_locally(wf)
    assert {k: result.results[k] for k in wf.sinks()} == {k: expected[k] for k in wf.sinks()}
    assert result.trace.workers["host"].str.contains("/ray-").all()
