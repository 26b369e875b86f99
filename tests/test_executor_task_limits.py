"""A task the protocol runs under another profile than its worker's runs under that profile's limits.

``handle_execution`` may choose, per task, the profile a task runs under.  The
executor's worker process then limits itself to that profile for the task's
duration (CPU quota and memory limit where the OS permits, else the same
fallbacks as a worker's own limits) and sizes its thread pools by the thread
rule, and the trace says what was enforced (``meta["task_limits"]``).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from executor import Executor, ExecutorSettings
from executor.limits import (
    PREFIX,
    THREAD_ENV_VARS,
    LimitSupport,
    cleanup_stale_cgroups,
    create_limits,
    joined_limits,
    own_cgroup_dirs,
    probe_limits,
    release,
    task_profile_limits,
    thread_limits,
)
from executor.plans import assigned_plan
from executor.run.budgets import profile_budgets, profile_threads
from planning.errors import ExecutionError
from planning.protocol import ExecutionDecision, WorkerProtocol
from planning.sources.dsl import build_workflow, task
from planning.workflow import Workflow

SUPPORT = probe_limits()
CPU_CGROUP = SUPPORT.cpu in ("cgroup-v1", "cgroup-v2")
MEM_CGROUP = SUPPORT.memory in ("cgroup-v1", "cgroup-v2")
needs_cpu_cgroup = pytest.mark.skipif(not CPU_CGROUP, reason=f"no CPU cgroup: {SUPPORT.cpu_reason}")
needs_mem_cgroup = pytest.mark.skipif(not MEM_CGROUP, reason=f"no memory cgroup: {SUPPORT.memory_reason}")


def cpu_quota_here() -> tuple[int, int] | None:
    """(quota, period) in microseconds of the CPU cgroup this process is in, read from inside it; None: unlimited."""
    directory = own_cgroup_dirs().get("cpu")
    if directory is None:
        return None
    if (directory / "cpu.max").exists():
        quota, period = (directory / "cpu.max").read_text().split()
        return None if quota == "max" else (int(quota), int(period))
    quota = int((directory / "cpu.cfs_quota_us").read_text())
    return None if quota < 0 else (quota, int((directory / "cpu.cfs_period_us").read_text()))


def blas_threads() -> int | None:
    """The thread count of the first BLAS pool this process has loaded (None: none loaded)."""
    from threadpoolctl import threadpool_info

    pools = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return pools[0] if pools else None


@task
def inside(cpu_seconds: float) -> dict[str, Any]:
    """Burn ``cpu_seconds`` of CPU and say, from inside the task, what it ran under."""
    c0 = time.thread_time()
    while time.thread_time() - c0 < cpu_seconds:
        pass
    return {"cpu_s": time.thread_time() - c0, "quota": cpu_quota_here(),
            "cgroup": own_cgroup_dirs().get("cpu", Path("/")).name,
            "env_threads": os.environ.get("OPENBLAS_NUM_THREADS"), "blas_threads": blas_threads()}


class MiddleOnSmall(WorkerProtocol):
    """Execute task ``b1`` on the small profile, every other task on its worker's."""

    def handle_execution(self, task_id: str, worker: str) -> ExecutionDecision:
        return ExecutionDecision(task_id, "small") if task_id == "b1" else super().handle_execution(task_id, worker)


class OnAMissingProfile(WorkerProtocol):
    def handle_execution(self, task_id: str, worker: str) -> ExecutionDecision:
        return ExecutionDecision(task_id, "huge")


def three_on_one_worker(cpu_seconds: float) -> Workflow:
    """Three independent tasks (every one a sink: the client gets each one's answer)."""
    return build_workflow([inside.named(f"b{i}")(cpu_seconds) for i in range(3)], name="three")


def plan_on(workflow: Workflow, profile: str):
    return assigned_plan(workflow, dict.fromkeys(workflow.task_ids, "w"), profile,
                         sequence={"w": ["b0", "b1", "b2"]})


@pytest.fixture(scope="module")
def ex() -> Iterator[Executor]:
    with Executor(settings=ExecutorSettings(keep_alive_s=5.0)) as executor:
        yield executor


# ---------------------------------------------------------------------- real runs
def test_a_task_on_another_profile_runs_under_its_limits_and_the_trace_says_so(ex: Executor) -> None:
    workflow = three_on_one_worker(0.3)
    plan = plan_on(workflow, "large")
    budgets = profile_budgets(plan, ex.settings)
    result = ex.run(workflow, plan, protocol=MiddleOnSmall.for_plan(workflow, plan))
    tasks = result.trace.tasks.set_index("task_id")
    assert tasks["profile"].to_dict() == {"b0": "large", "b1": "small", "b2": "large"}
    assert set(result.trace.workers["profile"]) == {"large"}
    record = result.trace.meta["task_limits"]
    assert set(record) == {"b1"}, "only the task on another profile than its worker's is limited apart"
    b1 = record["b1"]
    assert b1["profile"] == "small"
    assert (b1["cpu"], b1["memory"]) == (SUPPORT.cpu, SUPPORT.memory)
    assert b1["threads"] == f"threadpoolctl:{budgets['small'][2]}"
    seen = result.results
    # the thread rule's count for the task's profile, then the worker's again
    assert [seen[t]["env_threads"] for t in ("b0", "b1", "b2")] == \
        [str(budgets["large"][2]), str(budgets["small"][2]), str(budgets["large"][2])]
    assert seen["b1"]["blas_threads"] == budgets["small"][2]
    assert seen["b2"]["blas_threads"] == seen["b0"]["blas_threads"]
    if not CPU_CGROUP:   # degraded as the worker's own limits are (the forked tests below check how)
        return
    # read from inside each task: the small profile's quota for b1 only (the worker's own cgroup, retuned)
    assert (b1["cpu_quota_us"], b1["cpu_period_us"], b1["memory_mb"]) == (5_000, 10_000, 512.0)
    assert seen["b1"]["quota"] == (5_000, 10_000)
    assert seen["b0"]["quota"] == seen["b2"]["quota"] == (20_000, 10_000)
    assert seen["b0"]["cgroup"] == seen["b1"]["cgroup"] == seen["b2"]["cgroup"]
    # and it really was throttled: half a CPU at most, whatever else runs on the machine
    wall = float(tasks.loc["b1", "exec_end_s"] - tasks.loc["b1", "exec_start_s"])
    assert seen["b1"]["cpu_s"] / wall <= 0.6, (seen["b1"]["cpu_s"], wall)


def test_a_task_on_its_workers_profile_is_not_limited_apart(ex: Executor) -> None:
    workflow = three_on_one_worker(0.01)
    plan = plan_on(workflow, "large")
    result = ex.run(workflow, plan)
    assert "task_limits" not in result.trace.meta
    assert len({answer["quota"] for answer in result.results.values()}) == 1


def test_limits_off_limit_no_task_and_say_so() -> None:
    workflow = three_on_one_worker(0.01)
    plan = plan_on(workflow, "large")
    with Executor(settings=ExecutorSettings(limits=False)) as executor:
        result = executor.run(workflow, plan, protocol=MiddleOnSmall.for_plan(workflow, plan))
    b1 = result.trace.meta["task_limits"]["b1"]
    assert (b1["cpu"], b1["memory"], b1["threads"]) == ("none", "none", "none")
    assert any("limits are off" in n for n in b1["notes"])
    assert result.results["b1"]["quota"] == result.results["b0"]["quota"]


def test_a_profile_missing_from_the_catalog_fails_the_run_naming_it(ex: Executor) -> None:
    workflow = three_on_one_worker(0.01)
    plan = plan_on(workflow, "large")
    with pytest.raises(ExecutionError, match="'huge'.*lacks"):
        ex.run(workflow, plan, protocol=OnAMissingProfile.for_plan(workflow, plan))


def test_the_thread_rule_is_the_one_the_workers_get() -> None:
    assert [profile_threads(c, 1.0) for c in (0.5, 1.0, 2.0, 3.7)] == [1, 1, 2, 3]
    assert profile_threads(2.0, 0.5) == 1 and profile_threads(4.0, 0.5) == 2
    workflow = three_on_one_worker(0.01)
    budgets = profile_budgets(plan_on(workflow, "large"), ExecutorSettings(threads="quota"))
    assert budgets["large"] == (2.0, 2048.0, 2) and budgets["small"] == (0.5, 512.0, 1)


# ---------------------------------------------------------------------- the mechanism, in a forked process
CHILDREN: list[int] = []


def in_forked_child(body: Callable[[], Any]) -> tuple[int, Any]:
    """Run ``body`` in a forked child (it may join limits and be killed); its exit code and what it returned."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def main() -> None:
        send.send(body())

    child = ctx.Process(target=main)
    child.start()
    CHILDREN.append(child.pid)
    send.close()
    try:
        answer = receive.recv() if receive.poll(60) else None
    except EOFError:   # it died without an answer
        answer = None
    child.join(30)
    return child.exitcode, answer


def _ours() -> set[Path]:
    """cgroups named after this process or one of its forked children."""
    parents = {p for p in (SUPPORT.cpu_parent, SUPPORT.memory_parent) if p is not None}
    owners = tuple(f"{PREFIX}{pid}-" for pid in (os.getpid(), *CHILDREN))
    return {c for p in parents for c in p.iterdir() if c.name.startswith(owners)}


@pytest.fixture
def worker_limits() -> Iterator[Callable[..., Any]]:
    """Limits a forked child joins as a worker does; released (their processes killed) after the test."""
    made = []

    def make(cpus: float, memory_mb: float | None, support: LimitSupport = SUPPORT):
        made.append(create_limits(cpus, memory_mb, "w", support=support))
        return made[-1]

    before = _ours()
    yield make
    for applied in made:
        release(applied, kill=True)
    cleanup_stale_cgroups(SUPPORT)   # a task's cgroups whose process was killed inside them
    assert _ours() <= before, "a test left a cgroup behind"


def memory_limit_mb(cgroup: Path) -> float:
    name = "memory.limit_in_bytes" if (cgroup / "memory.limit_in_bytes").exists() else "memory.max"
    return int((cgroup / name).read_text()) / 2**20


@pytest.mark.skipif(not (CPU_CGROUP and MEM_CGROUP), reason="needs CPU and memory cgroups")
def test_the_process_gets_the_tasks_quota_and_memory_then_its_own_again(worker_limits) -> None:
    own = worker_limits(2.0, 256)

    def body():
        own.join_self()
        with task_profile_limits("small", 0.5, 128.0, 1) as record:
            during = cpu_quota_here(), memory_limit_mb(own.memory_cgroup), own_cgroup_dirs()
        return record, during, (cpu_quota_here(), memory_limit_mb(own.memory_cgroup)), joined_limits() is not None

    code, (record, (quota_in, memory_in, dirs_in), after, joined) = in_forked_child(body)
    assert code == 0 and joined
    assert (quota_in, memory_in) == ((5_000, 10_000), 128.0)
    assert dirs_in == {"cpu": own.cpu_cgroup, "memory": own.memory_cgroup}, "its own cgroups, retuned"
    assert after == ((20_000, 10_000), 256.0)
    assert record["notes"] == [] and record["threads"].endswith(":1")
    assert (record["cpu"], record["memory"], record["memory_mb"]) == (SUPPORT.cpu, SUPPORT.memory, 128.0)


@needs_mem_cgroup
def test_a_task_exceeding_its_profiles_memory_is_killed_like_a_worker(worker_limits) -> None:
    own = worker_limits(2.0, 1024)

    def body():
        own.join_self()
        with task_profile_limits("small", 0.5, 96.0, 1) as record:
            assert record["memory"] == SUPPORT.memory, record
            hog = b"x" * (256 << 20)   # within the worker's 1 GiB, beyond the task's 96 MiB
        return len(hog)

    code, answer = in_forked_child(body)
    assert code == -9 and answer is None


@needs_mem_cgroup
def test_a_memory_limit_is_never_set_below_what_the_process_holds(worker_limits) -> None:
    own = worker_limits(2.0, 1024)

    def body():
        own.join_self()
        held = b"x" * (200 << 20)
        with task_profile_limits("small", 0.5, 96.0, 1) as record:
            pass
        return record, len(held), memory_limit_mb(own.memory_cgroup)

    code, (record, _, after) = in_forked_child(body)
    assert code == 0 and record["memory"] == "none" and after == 1024.0
    assert any("already holds" in n for n in record["notes"])


@needs_mem_cgroup
def test_the_workers_limit_stays_raised_while_it_holds_a_larger_tasks_output(worker_limits) -> None:
    own = worker_limits(2.0, 128)

    def body():
        own.join_self()
        with task_profile_limits("large", 2.0, 512.0, 1) as record:
            output = b"x" * (200 << 20)   # kept after the task, as a worker keeps outputs for its next tasks
        raised = memory_limit_mb(own.memory_cgroup)
        del output
        with task_profile_limits("large", 2.0, 512.0, 1):
            pass
        return record, raised, memory_limit_mb(own.memory_cgroup)

    code, (record, raised, restored) = in_forked_child(body)
    assert code == 0 and record["memory"] == SUPPORT.memory
    assert raised == 512.0 and any("stays at" in n for n in record["notes"])
    assert restored == 128.0, "restored once the process holds less than its own limit again"


def test_the_affinity_fallback_pins_the_task_to_its_profiles_whole_cpus(worker_limits) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: a 2-CPU task cannot be told from a 1-CPU worker")
    pinned = LimitSupport("affinity", "none", "forced by the test", "forced by the test")
    own = worker_limits(1.0, 128, pinned)

    def body():
        own.join_self()
        with task_profile_limits("large", 2.0, 2048.0, 2) as record:
            during = os.sched_getaffinity(0)
        return record, during, os.sched_getaffinity(0)

    code, (record, during, after) = in_forked_child(body)
    assert code == 0
    assert len(during) == 2 and own.affinity <= during and after == own.affinity
    assert (record["cpu"], record["memory"]) == ("affinity", "none")
    assert any("memory not enforced" in n for n in record["notes"])


def test_a_process_without_limits_of_its_own_limits_no_task() -> None:
    def body():
        with task_profile_limits("small", 0.5, 128.0, 1) as record:
            during = own_cgroup_dirs()
        return record, during, own_cgroup_dirs()

    code, (record, during, after) = in_forked_child(body)
    assert code == 0 and during == after
    assert (record["cpu"], record["memory"]) == ("none", "none") and record["threads"].endswith(":1")
    assert any("without limits of its own" in n for n in record["notes"])


def test_thread_limits_restore_the_pools_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy  # noqa: F401 - a BLAS pool to resize

    for var in THREAD_ENV_VARS:
        monkeypatch.setenv(var, "2")
    monkeypatch.delenv("MKL_NUM_THREADS")
    before = blas_threads()
    with thread_limits(1) as how:
        assert how == "threadpoolctl:1"
        assert blas_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    assert blas_threads() == before
    assert os.environ["OMP_NUM_THREADS"] == "2" and "MKL_NUM_THREADS" not in os.environ
