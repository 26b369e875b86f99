"""A real Redis Cluster (three masters on localhost, valkey-server in cluster mode) as the coordination server.

A run's keys share one hash slot (``pl:{RUN}:...``) and a launcher's idle lists and
process inboxes share its own (``...{LAUNCHER}``), so the executor runs on a cluster
through redis-py's ``RedisCluster`` (``redis+cluster://HOST:PORT``); the launcher's
pop over keys of several slots is :func:`executor.server.cluster.blocking_pop`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from executor import Executor, ExecutorSettings, keys
from executor.plans import assigned_plan
from executor.server.cluster import ClusterWire, blocking_pop
from executor.server.urls import connect_url
from executor.wire import packed
from planning.errors import ExecutionError
from planning.sources.generators import generate
from planning.workflow import run_locally
from redis_cluster import redis_cluster  # tests/redis_cluster.py

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    with redis_cluster(Path(tmp_path_factory.mktemp("cluster"))) as ports:
        yield ports


def _url(ports: list[int]) -> str:
    return f"redis+cluster://127.0.0.1:{ports[0]}"


@pytest.mark.parametrize("host_load", [0.0, 100.0], ids=["spin", "no-spin"])
def test_a_run_on_a_redis_cluster_gives_the_right_results_cold_then_warm(cluster: list[int], host_load: float,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # the workers' short spin for a reply (executor.wire.spin_budget) runs only on a quiet host: both ways, on
    # whatever host the suite runs (the forked launcher and workers inherit the patched load)
    import executor.wire
    monkeypatch.setattr(executor.wire.os, "getloadavg", lambda: (host_load, host_load, host_load))
    wf = generate("fork_join", width=3, units=1000)
    order = wf.topological_order()
    plan = assigned_plan(wf, {t: f"w{i % 3}" for i, t in enumerate(order)}, "medium")
    expected = run_locally(wf)
    with Executor(_url(cluster), ExecutorSettings(keep_alive_s=30.0, run_timeout_s=120.0)) as ex:
        assert type(ex.client).__name__ == "RedisCluster"
        first, second = ex.run(wf, plan), ex.run(wf, plan)
        idle = keys.idle_list(ex.launcher_id, "x")
    for result in (first, second):
        assert {k: result.results[k] for k in wf.sinks()} == {k: expected[k] for k in wf.sinks()}
    assert second.meta["warm_starts"] >= 1            # the launcher's hand-off script ran on the cluster
    nodes = [redis.Redis(port=p) for p in cluster]
    assert ex.client.keyslot(idle) == ex.client.keyslot(keys.process_inbox(ex.launcher_id, 1))  # the launcher's slot
    assert {ex.client.keyslot(keys.RunKeys(first.meta["run_id"]).events)} == \
        {ex.client.keyslot(keys.RunKeys(first.meta["run_id"]).out("fork"))}           # a run's slot
    left = [k.decode() for n in nodes for k in n.keys("pl:{*")]   # a run's keys are gone but its kept metrics
    assert all(k.endswith(":metrics") for k in left)


def test_a_launchers_pop_over_several_slots_takes_from_each(cluster: list[int]) -> None:
    client = connect_url(_url(cluster), timeout=5.0)
    a, b = "pl:{popa}:launch", "pl:{popb}:launch"
    assert client.keyslot(a) != client.keyslot(b)
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        client.blpop([a, b], timeout=0.01)           # what one BLPOP would do
    client.rpush(b, "start")
    assert blocking_pop(client, [a, b], 0.2) == (b.encode(), b"start")
    assert blocking_pop(client, [a, b], 0.2) is None
    client.close()


def test_a_packed_command_goes_to_its_keys_node(cluster: list[int]) -> None:
    # a worker's wait is packed once (wire.Packed): the cluster routes it by the key of the tuple it packs
    client = connect_url(_url(cluster), timeout=5.0)
    inbox = next(f"pl:{{route{i}}}:inbox" for i in range(100)
                 if client.get_node_from_key(f"pl:{{route{i}}}:inbox").name
                 != client.get_node_from_key("pl:{other}:x").name)
    client.rpush(inbox, "note")
    wire = ClusterWire(client)
    wire.get_bulk(("GET", "pl:{other}:x"))          # the wire now talks to another node
    wire.send([packed(("LPOP", inbox, 10))])
    assert wire.read(1) == [[b"note"]]
    wire.close()
    client.delete(inbox)
    client.close()


def test_an_unreachable_cluster_is_one_clear_error() -> None:
    with pytest.raises(ExecutionError, match="cannot reach a Redis Cluster at redis\\+cluster://127.0.0.1:1"):
        connect_url("redis+cluster://127.0.0.1:1", timeout=1.0)


def test_planlab_run_executes_on_the_cluster_named_in_the_config(cluster: list[int], tmp_path: Path) -> None:
    from experiments.cli import main
    from experiments.results import load_results

    config = tmp_path / "c.toml"
    config.write_text('phases = ["plan", "execute"]\n[[workflow]]\nspec = "gen:fork_join:width=2,units=500"\n'
                      f'[[planner]]\nname = "critical-path"\n[execute]\nredis_url = "{_url(cluster)}"\n')
    assert main(["run", str(config), "--no-report", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    summary = load_results(tmp_path / "r").summary
    assert len(summary) == 1 and summary["real_makespan_s"].gt(0).all()
