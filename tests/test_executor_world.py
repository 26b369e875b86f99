"""The executor in its world: real CPU limits, a password-protected server by URL, an agent, settings."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator

import pytest

from executor import Executor, ExecutorSettings, execute
from executor.launcher import run_launcher
from executor.limits import probe_limits
from executor.plans import assigned_plan
from executor.server import EmbeddedRedis
from executor.settings import MetricsPolicy, parse_metrics_policy
from planning.errors import ExecutionError, PlanError
from planning.sources.dsl import build_workflow, task
from planning.sources.generators import generate
from planning.workflow import run_locally


@task
def burn(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFF
    return x


@task
def timed_burn(n):
    """Burn CPU; return the CPU seconds used (wall time is in the trace)."""
    t = time.thread_time()
    burn.func(n)
    return time.thread_time() - t


def _exec_seconds(ex: Executor, profile: str, n: int) -> tuple[float, float]:
    """(wall seconds of the task's execute phase, CPU seconds it used)."""
    wf = build_workflow(timed_burn.named("b")(n), name=f"burn-{profile}")
    result = ex.run(wf, assigned_plan(wf, {"b": "w"}, profile))
    row = result.trace.tasks.iloc[0]
    return float(row["exec_end_s"] - row["exec_start_s"]), float(result.results["b"])


def test_a_cpu_bound_task_is_slower_on_a_smaller_profile() -> None:
    support = probe_limits()
    if support.cpu not in ("cgroup-v1", "cgroup-v2"):
        pytest.skip(f"CPU quotas are not enforceable here: {support.cpu_reason}")
    tries = []
    with Executor() as ex:
        for _ in range(3):  # a burst of unrelated load on 2 vCPUs can slow the unlimited run too
            small, small_cpu = _exec_seconds(ex, "small", 2_000_000)
            large, large_cpu = _exec_seconds(ex, "large", 2_000_000)
            tries.append((small, small_cpu, large, large_cpu))
            # the quota itself, whatever the load: half a CPU means at least ~2x wall per CPU second
            assert small > 1.6 * small_cpu, (small, small_cpu)
            if _stretch(small, small_cpu) > 1.4 * _stretch(large, large_cpu) and large <= 1.3 * large_cpu:
                break
        result = ex.run(*_one_task("small"))
    limits = result.meta["limits_enforced"]
    assert limits["cpu"] == support.cpu and limits["by_profile"]["small"]["cpu_quota_us"] == "5000"
    assert limits["memory"] == support.memory
    # a try tells only when the unlimited task got (nearly) a whole CPU
    fair = [(small, small_cpu, large, large_cpu) for small, small_cpu, large, large_cpu in tries
            if large <= 1.3 * large_cpu]
    if not fair:
        pytest.skip(f"the machine is saturated: even the unlimited task got under 0.8 CPU ({tries})")
    # wall per CPU second, not wall alone: on a shared VM the same loop's CPU time varies ~2x from run
    # to run (CI measured 0.045 s and 0.079 s), which can hide the quota's 2x (0.5 vs 2 CPUs, FACTS.md)
    assert any(_stretch(s, s_cpu) > 1.4 * _stretch(lg, lg_cpu) for s, s_cpu, lg, lg_cpu in fair), tries


def _stretch(wall_s: float, cpu_s: float) -> float:
    """Wall seconds per CPU second: ~1 with a whole CPU, ~2 under half a CPU's quota."""
    return wall_s / max(cpu_s, 1e-9)


def _one_task(profile: str):
    wf = build_workflow(burn.named("b")(10), name="one")
    return wf, assigned_plan(wf, {"b": "w"}, profile)


def test_limits_off_are_recorded_as_not_enforced() -> None:
    wf, plan = _one_task("small")
    result = execute(wf, plan, settings=ExecutorSettings(limits=False))
    assert result.meta["limits_enforced"]["cpu"] == "none"
    assert result.meta["limits_enforced"]["memory"] == "none"


@pytest.fixture(scope="module")
def protected() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tcp=True, password="pw:s3cret/x") as server:
        yield server


def test_a_separately_started_server_with_a_password_works_by_url(protected: EmbeddedRedis) -> None:
    assert protected.url.startswith("redis://")
    wf = generate("fork_join", width=2, depth=1, units=100)
    plan = assigned_plan(wf, {t: ("w1" if t == "s0-w1" else "w0") for t in wf.task_ids}, "medium")
    result = execute(wf, plan, redis_url=protected.url)
    assert result.results == {"s0-join": run_locally(wf)["s0-join"]}
    assert "s3cret" not in result.meta["redis"] and "***" in result.meta["redis"]
    client = protected.client()
    leftovers = [k for k in client.scan_iter(match="pl:*") if not k.decode().endswith(":metrics")]
    assert leftovers == []


def test_a_wrong_password_is_a_clear_error(protected: EmbeddedRedis) -> None:
    url = protected.url.replace("pw%3As3cret%2Fx", "nope")
    wf, plan = _one_task("small")
    with pytest.raises(ExecutionError, match="refused the credentials"):
        execute(wf, plan, redis_url=url)


def test_an_agent_launcher_serves_runs_of_a_client_without_one(protected: EmbeddedRedis) -> None:
    settings = ExecutorSettings(pool="agent-test")
    secret = b"a shared deployment secret"
    agent = multiprocessing.get_context("fork").Process(target=run_launcher,
                                                        args=(protected.url, secret, "agent-test", "agent-1", True),
                                                        kwargs={"serve_pool": True})
    agent.start()
    try:
        wf = generate("chain", length=3, units=100)
        with Executor(protected.url, settings, local_launcher=False, secret=secret) as ex:
            result = ex.run(wf, assigned_plan(wf, {t: "w" for t in wf.task_ids}, "small"))
            ex.control("agent-1", {"type": "stop"})   # an authenticated control message
        assert result.results == {"t2": run_locally(wf)["t2"]}
        assert set(result.trace.workers["launcher"]) == {"agent-1"}
    finally:
        agent.join(10)
        if agent.is_alive():
            agent.kill()
        assert agent.exitcode == 0


def test_settings_reject_bad_values_naming_the_field() -> None:
    with pytest.raises(ExecutionError, match="lease_s"):
        ExecutorSettings(lease_s=0)
    with pytest.raises(ExecutionError, match="retries"):
        ExecutorSettings(retries=-1)
    with pytest.raises(ExecutionError, match="metrics upload policy"):
        ExecutorSettings(metrics="sometimes")
    assert parse_metrics_policy("records:5") == MetricsPolicy("records", 5)
    assert parse_metrics_policy("seconds:0.5").due(1, 0.6) and not parse_metrics_policy("seconds:0.5").due(1, 0.1)
    assert not parse_metrics_policy("end").due(100, 100.0) and parse_metrics_policy("task").due(1, 0)
    with pytest.raises(ExecutionError):
        parse_metrics_policy("records:0")


def test_a_plan_of_another_workflow_or_too_many_workers_is_refused() -> None:
    wf = generate("chain", length=3, units=10)
    other = generate("chain", length=4, units=10)
    plan = assigned_plan(other, {t: "w" for t in other.task_ids})
    with pytest.raises(PlanError, match="another shape"):
        execute(wf, plan)
    wide = generate("fan_out", width=5)
    plan = assigned_plan(wide, {t: t for t in wide.task_ids})
    with pytest.raises(ExecutionError, match="max_processes"):
        execute(wide, plan, settings=ExecutorSettings(max_processes=3))


def test_a_run_timeout_fails_instead_of_hanging() -> None:
    wf = build_workflow(burn.named("b")(50_000_000), name="slow")
    t = time.perf_counter()
    with pytest.raises(ExecutionError, match="run_timeout_s"):
        execute(wf, assigned_plan(wf, {"b": "w"}, "large"), settings=ExecutorSettings(run_timeout_s=0.3))
    assert time.perf_counter() - t < 5


def test_thread_share_is_host_cpus_over_the_plans_peak_of_planned_cpus() -> None:
    from executor.client import thread_share
    wide = generate("fork_join", width=6)
    five_large = assigned_plan(wide, {t: ("w0" if t in ("fork", "join") else f"w-{t}") for t in wide.task_ids}
                               | {wide.roots()[0]: "w0", wide.sinks()[0]: "w0"}, "large")
    peak = 2.0 * (len(five_large.workers) - 1) + 2.0   # the branches overlap, plus the root/sink worker
    assert thread_share(five_large, host_cpus=2) == pytest.approx(2.0 / peak)
    one = assigned_plan(wide, {t: "w0" for t in wide.task_ids}, "large")
    assert thread_share(one, host_cpus=2) == 1.0 and thread_share(five_large, host_cpus=10_000) == 1.0


@pytest.mark.skipif(not probe_limits().cpu.startswith("cgroup"), reason="CPU cgroups are not permitted here")
def test_an_oversubscribed_plan_gets_fewer_blas_threads_unless_asked_for_the_quota() -> None:
    wide = generate("fork_join", width=4)
    plan = assigned_plan(wide, {t: f"w-{t}" for t in wide.task_ids}, "large")    # 2-CPU workers, overlapping
    fair = execute(wide, plan).trace.workers
    quota = execute(wide, plan, settings=ExecutorSettings(threads="quota")).trace.workers
    assert set(quota["threads"].str.split(":").str[-1]) == {"2"}
    assert "1" in set(fair["threads"].str.split(":").str[-1])
    with pytest.raises(ExecutionError, match="threads"):
        ExecutorSettings(threads="all")
