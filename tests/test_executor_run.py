"""The real executor runs plans on real processes and returns the right results and a faithful Trace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from executor import ExecutionResult, Executor, ExecutorSettings, execute
from executor.plans import assigned_plan, dynamic_plan
from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.protocol import dynamic_worker_id
from planning.sla import SLA
from planning.sources.dsl import build_workflow, task
from planning.sources.generators import generate
from planning.sources.wfformat import read_wfformat
from planning.workflow import run_locally

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


@pytest.fixture(scope="module")
def ex() -> Iterator[Executor]:
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as executor:
        yield executor


def _uniform(wf, profile="large"):
    return get_planner("uniform", profile=profile).plan(wf, load_catalog("local"), CostModel(), SLA.parse("mean"))


def _run_keys(ex: Executor, result: ExecutionResult) -> set[str]:
    return {k.decode() for k in ex.client.scan_iter(match=f"pl:{{{result.meta['run_id']}}}:*")}


def _same(a, b) -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_allclose(a, b)
    else:
        assert a == b


GENERATORS = [
    ("chain", {"length": 4, "units": 500}),
    ("fork_join", {"width": 3, "depth": 2, "units": 500}),
    ("tree_reduction", {"leaves": 5, "arity": 2, "units": 500}),
    ("gemm", {"blocks": 2, "block_size": 8}),
    ("random_layered", {"tasks": 12, "seed": 3}),
    ("fan_out", {"width": 6}),
    ("deep_chain", {"length": 6}),
    ("five_branches", {"size": 8, "rounds": 2}),
]


@pytest.mark.parametrize("name,params", GENERATORS, ids=[g[0] for g in GENERATORS])
def test_every_generator_returns_what_run_locally_returns(ex: Executor, name: str, params: dict) -> None:
    wf = generate(name, **params)
    result = ex.run(wf, _uniform(wf))
    expected = run_locally(wf)
    assert set(result.results) == set(wf.sinks())
    for sink in wf.sinks():
        _same(result.results[sink], expected[sink])
    assert sorted(result.trace.tasks["task_id"]) == sorted(wf.task_ids)


@task
def leaf(i):
    return {"i": i, "sq": [i * i, (i, -i)]}


@task
def gather(grid, named, *, scale=1, extra=None):
    return {"grid": grid, "named": named, "scale": scale, "extra": extra}


def test_nested_and_dict_arguments_arrive_intact(ex: Executor) -> None:
    parts = [leaf(i) for i in range(4)]
    out = gather([[parts[0], parts[1]], (parts[2], 100)], {"x": parts[3], "y": [parts[0], {"deep": parts[1]}]},
                 scale=2, extra={"k": parts[2]})
    wf = build_workflow(out, name="nested")
    # put every leaf on its own worker so each argument crosses a process boundary
    plan = assigned_plan(wf, {t: ("w-sink" if t == "gather" else f"w-{t}") for t in wf.task_ids}, "small")
    result = ex.run(wf, plan)
    assert result.results["gather"] == run_locally(wf)["gather"]
    assert result.results["gather"]["named"]["y"][1]["deep"]["sq"][1] == (1, -1)


def test_fan_out_invocation_and_fan_in_continuation_happen_as_planned(ex: Executor) -> None:
    wf = generate("fork_join", width=4, depth=1, units=200)
    plan = _uniform(wf, "small")
    result = ex.run(wf, plan)
    placed = dict(zip(result.trace.tasks["task_id"], result.trace.tasks["worker"]))
    assert placed == plan.worker_of
    # the fork's worker continued one branch and the join (fan-in continuation); others were started
    assert placed["fork"] == placed["s0-w0"] == placed["s0-join"]
    assert len({placed[f"s0-w{i}"] for i in range(4)}) == 4
    workers = result.trace.workers.set_index("worker")
    assert set(workers.index) == set(plan.worker_profile)
    assert (workers["profile"] == "small").all()
    assert workers.loc[placed["fork"], "tasks"] == 3


def test_a_dynamic_plan_continues_fan_ins_where_the_last_parent_finished(ex: Executor) -> None:
    wf = generate("fork_join", width=3, depth=2, units=300)
    plan = dynamic_plan(wf, "medium")
    assert plan.dynamic
    result = ex.run(wf, plan)
    assert result.results == {"s1-join": run_locally(wf)["s1-join"]}
    tasks = result.trace.tasks.set_index("task_id")
    # a root starts its own worker; the fork's worker continues its first child; others get new workers
    assert tasks.at["fork", "worker"] == dynamic_worker_id("fork")
    assert tasks.at["s0-w0", "worker"] == dynamic_worker_id("fork")
    assert tasks.at["s0-w1", "worker"] == dynamic_worker_id("s0-w1")
    # a fan-in runs on the worker of one of its parents (the one whose completion made it ready)
    for join, stage in (("s0-join", 0), ("s1-join", 1)):
        parents = {tasks.at[f"s{stage}-w{i}", "worker"] for i in range(3)}
        assert tasks.at[join, "worker"] in parents
    assert len(result.trace.workers) == 1 + 2 + 2


def test_no_intermediate_key_remains_and_metrics_are_kept(ex: Executor) -> None:
    wf = generate("fork_join", width=3, depth=1, units=100)
    result = ex.run(wf, _uniform(wf))
    k = f"pl:{{{result.meta['run_id']}}}:"
    assert _run_keys(ex, result) == {k + "metrics"}
    assert ex.client.ttl(k + "metrics") > 0


def test_keep_keys_leaves_intermediate_keys_for_debugging() -> None:
    wf = generate("chain", length=2, units=10)
    result = execute(wf, _uniform(wf), settings=ExecutorSettings(keep_keys=True))
    assert result.results == {"t1": run_locally(wf)["t1"]}
    assert result.meta["redis"] == "embedded"


def test_trace_makespan_is_what_the_client_observed(ex: Executor) -> None:
    wf = generate("chain", length=3, units=20_000)
    t = time.time()
    result = ex.run(wf, _uniform(wf))
    observed = time.time() - t
    trace = result.trace.validate()
    assert 0 < trace.makespan_s <= observed
    assert trace.makespan_s >= trace.tasks["done_s"].max()   # includes fetching the sink's result
    assert (trace.tasks["exec_end_s"] > trace.tasks["exec_start_s"]).all()
    assert trace.engine == "execute" and trace.run_id == result.meta["run_id"]
    history = result.history(wf)
    assert len(history) == len(wf) and (history["engine"] == "execute").all()
    assert (history["exec_s"] > 0).all()


def test_warm_processes_are_reused_within_keep_alive_and_recorded() -> None:
    wf = generate("fork_join", width=2, depth=1, units=100)
    plan = _uniform(wf, "medium")
    with Executor(settings=ExecutorSettings(keep_alive_s=10.0)) as ex:
        first = ex.run(wf, plan)
        second = ex.run(wf, plan)
    assert first.trace.workers["cold_start"].all() and first.meta["cold_starts"] == len(plan.workers)
    assert second.meta["cold_starts"] == 0 and second.meta["warm_starts"] == len(plan.workers)
    assert not second.trace.tasks["cold_start"].any()


def test_metrics_upload_policies_all_deliver_every_row(ex: Executor) -> None:
    wf = generate("chain", length=5, units=10)
    plan = _uniform(wf)
    for policy in ("task", "records:2", "seconds:0.001"):
        with Executor(settings=ExecutorSettings(metrics=policy)) as other:
            result = other.run(wf, plan)
        assert sorted(result.trace.tasks["task_id"]) == sorted(wf.task_ids), policy


def test_large_constants_and_sub_dags_are_stored_once(ex: Executor) -> None:
    big = np.arange(200_000, dtype=np.float64)          # 1.6 MB, above the constant threshold

    @task
    def use(x, k):
        return float(x.sum()) + k

    @task
    def add(*xs):
        return sum(xs)

    wf = build_workflow(add(*[use(big, k) for k in range(3)]), name="consts")
    plan = assigned_plan(wf, {t: "w0" if t == "add" else f"w-{t}" for t in wf.task_ids}, "medium")
    with Executor(settings=ExecutorSettings(keep_keys=True, inline_threshold_bytes=1)) as other:
        result = other.run(wf, plan)
        keys = {k.decode() for k in other.client.scan_iter(match=f"pl:{{{result.meta['run_id']}}}:*")}
    assert result.results["add"] == run_locally(wf)["add"]
    assert sum(":const:" in k for k in keys) == 1
    assert sum(":sub:" in k for k in keys) == len(plan.workers)


def test_a_replayed_wfformat_execution_runs_at_a_small_scale(ex: Executor) -> None:
    wf = read_wfformat(DATA / "helloworld-forkjoin-10-chameleon.json")
    plan = _uniform(wf, "large")
    settings = ExecutorSettings(scale=0.002, bytes_scale=1.0, max_replay_bytes=2**20)
    with Executor(settings=settings) as other:
        result = other.run(wf, plan)
    trace = result.trace
    assert sorted(trace.tasks["task_id"]) == sorted(wf.task_ids)
    assert set(result.results) == set(wf.sinks())
    # a replay task burns CPU in proportion to its recorded runtime
    row = trace.tasks.set_index("task_id")
    for t in wf.tasks:
        if (t.runtime_s or 0) * 0.002 > 0.01:
            assert row.at[t.id, "exec_end_s"] - row.at[t.id, "exec_start_s"] >= 0.9 * t.runtime_s * 0.002
    # children read their edge's bytes from parents on other workers
    remote = [(p, c) for p, c, b in wf.edges() if b and plan.worker_of[p] != plan.worker_of[c]]
    for p, c in remote[:3]:
        assert row.at[c, "input_bytes"] >= min(wf.edge_bytes(p, c), 2**20)


def test_a_process_idle_longer_than_a_socket_timeout_is_still_warm() -> None:
    wf = generate("chain", length=2, units=10)
    plan = _uniform(wf, "small")
    with Executor(settings=ExecutorSettings(keep_alive_s=20.0)) as ex:
        ex.run(wf, plan)
        time.sleep(6.0)   # redis-py's default socket timeout is 5 s: idle waits must not hit it
        second = ex.run(wf, plan)
    assert second.meta["warm_starts"] == 1 and second.meta["cold_starts"] == 0
