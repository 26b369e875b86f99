"""The host model: shared cores (max-min fair), the launcher's serial process starts, the warm pool.

Every expected time here is computed by hand in the test's docstring.
"""

from __future__ import annotations

import math

import pytest

from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate
from simulator import Platform, simulate
from simulator.host import fair_rates

FREE = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
CATALOG = load_catalog("local")     # small 0.5 CPU, medium 1 CPU, large 2 CPUs


def fork_join_plan(profile: str, width: int = 3):
    """fork -> s0-w0..s0-w{width-1} -> s0-join; uniform puts fork, s0-w0 and the join on w0, each other branch alone."""
    workflow = generate("fork_join", width=width)
    plan = get_planner("uniform", profile=profile).plan(workflow, CATALOG, FREE, "mean")
    return workflow, plan


def branch_durations(workflow, seconds: float = 1.0) -> dict[str, float]:
    return {t: (seconds if "-w" in t and not t.endswith("join") else 0.0) for t in workflow.task_ids}


def done(trace, task: str) -> float:
    return float(trace.tasks.set_index("task_id").loc[task, "done_s"])


# ---------------------------------------------------------------------- fair shares
@pytest.mark.parametrize("caps, cores, expected", [
    ([1.0, 1.0], 1.0, [0.5, 0.5]),                 # two single-core jobs on one core: half each
    ([0.5, 1.0, 1.0], 2.0, [0.5, 0.75, 0.75]),      # the capped job keeps its 0.5, the others split 1.5
    ([0.5, 0.5], 4.0, [0.5, 0.5]),                  # enough cores: everyone runs at its cap
    ([2.0, 0.25, 2.0], 2.0, [0.875, 0.25, 0.875]),  # 2 - 0.25 = 1.75 split by the two 2-core jobs
])
def test_fair_rates_are_max_min_fair(caps, cores, expected):
    assert fair_rates(caps, cores) == pytest.approx(expected)


# ---------------------------------------------------------------------- shared cores
def test_three_single_core_tasks_on_one_core_each_take_three_times_as_long():
    """Three 1 s branches at once on a 1-core host get 1/3 core each: all end at 3 s (1 s unshared)."""
    workflow, plan = fork_join_plan("medium")
    durations = branch_durations(workflow)
    alone = simulate(workflow, plan, FREE, platform=Platform.zero(), durations=durations)
    shared = simulate(workflow, plan, FREE, platform=Platform.zero().with_(host_cores=1.0), durations=durations)
    assert [done(alone, f"s0-w{k}") for k in range(3)] == pytest.approx([1.0, 1.0, 1.0])
    assert [done(shared, f"s0-w{k}") for k in range(3)] == pytest.approx([3.0, 3.0, 3.0])
    assert shared.makespan_s == pytest.approx(3.0)


def test_two_cores_halve_the_slowdown():
    """Three 1 s single-core branches on 2 cores: 2/3 core each, 1.5 s."""
    workflow, plan = fork_join_plan("medium")
    trace = simulate(workflow, plan, FREE, platform=Platform.zero().with_(host_cores=2.0),
                     durations=branch_durations(workflow))
    assert done(trace, "s0-w1") == pytest.approx(1.5)


def test_a_task_gets_at_most_its_profile_quota():
    """On 'small' (0.5 CPU) a branch measured at 1 s alone is 0.5 CPU-s at 0.5 core: 1 s alone on a big host,
    and three of them on 1 core (1.5 CPUs asked, 1/3 each) take 0.5 / (1/3) = 1.5 s."""
    workflow, plan = fork_join_plan("small")
    durations = branch_durations(workflow)
    big = simulate(workflow, plan, FREE, platform=Platform.zero().with_(host_cores=64.0), durations=durations)
    one = simulate(workflow, plan, FREE, platform=Platform.zero().with_(host_cores=1.0), durations=durations)
    assert done(big, "s0-w2") == pytest.approx(1.0)
    assert done(one, "s0-w2") == pytest.approx(1.5)


def test_task_parallelism_lets_a_multicore_task_use_its_quota():
    """On 'large' (2 CPUs) with task_parallelism 2, a branch measured at 1 s alone is 2 CPU-s; three on 2 cores
    get 2/3 core each: 3 s.  With the default (single-threaded tasks) it is 1 CPU-s each: 1.5 s."""
    workflow, plan = fork_join_plan("large")
    durations = branch_durations(workflow)
    threaded = Platform.zero().with_(host_cores=2.0, task_parallelism=2.0)
    assert done(simulate(workflow, plan, FREE, platform=threaded, durations=durations), "s0-w1") == pytest.approx(3.0)
    single = Platform.zero().with_(host_cores=2.0)
    assert done(simulate(workflow, plan, FREE, platform=single, durations=durations), "s0-w1") == pytest.approx(1.5)


def test_start_ups_are_cpu_work_shared_with_executions():
    """Cold start 1 s (alone) on a 1-core host: w0 starts alone (ready at 1), then w1 and w2 start together
    at 1 (the fork took no time) and share the core: ready at 3; their 0 s tasks end there."""
    workflow, plan = fork_join_plan("medium")
    platform = Platform.zero().with_(host_cores=1.0, cold_start_s=1.0)
    trace = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids})
    assert done(trace, "fork") == pytest.approx(1.0)
    assert done(trace, "s0-w1") == pytest.approx(3.0)
    assert done(trace, "s0-w2") == pytest.approx(3.0)


@pytest.mark.parametrize("profile, ready", [("small", 2.0), ("medium", 1.0), ("large", 1.0)])
def test_a_start_up_is_one_core_of_work_inside_the_workers_cpu_limit(profile, ready):
    """Cold start 1 s of one core's work on an 8-core host: a 0.5-CPU worker does it at half a core (ready at 2),
    a 1- or 2-CPU worker at one core (start-up is single-threaded: ready at 1)."""
    workflow = generate("chain", length=1)
    plan = get_planner("uniform", profile=profile).plan(workflow, CATALOG, FREE, "mean")
    platform = Platform.zero().with_(host_cores=8.0, cold_start_s=1.0)
    trace = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids})
    assert float(trace.workers["ready_s"].iloc[0]) == pytest.approx(ready)


# ---------------------------------------------------------------------- the launcher and the warm pool
def test_a_serial_process_start_delays_the_third_worker_by_two_start_times():
    """process_start_s = 0.1, nothing else costs time: w0 is forked 0 -> 0.1; w1 and w2 are asked for at 0.1
    and forked one after the other: ready at 0.2 and 0.3."""
    workflow, plan = fork_join_plan("medium")
    platform = Platform.zero().with_(host_cores=8.0, process_start_s=0.1)
    trace = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids})
    starts = sorted(trace.workers["ready_s"].round(9))
    assert starts == pytest.approx([0.1, 0.2, 0.3])
    assert trace.makespan_s == pytest.approx(0.3)


def test_a_warm_pool_skips_the_process_starts():
    """Three idle 'medium' processes at the start: no fork, every worker starts warm at once."""
    workflow, plan = fork_join_plan("medium")
    platform = Platform.zero().with_(host_cores=8.0, process_start_s=0.1, cold_start_s=0.5, keep_alive_s=60.0)
    trace = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids},
                     warm_pool={"medium": 3})
    assert not trace.workers["cold_start"].any()
    assert trace.makespan_s == pytest.approx(0.0)
    partly = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids},
                      warm_pool={"medium": 1})
    assert int(partly.workers["cold_start"].sum()) == 2     # w0 took the idle one; w1, w2 were forked


def test_an_unbounded_host_changes_nothing():
    workflow, plan = fork_join_plan("medium", width=6)
    durations = branch_durations(workflow, 0.3)
    before = simulate(workflow, plan, FREE, platform=Platform(), durations=durations)
    explicit = simulate(workflow, plan, FREE, platform=Platform(host_cores=math.inf, process_start_s=0.5),
                        durations=durations)
    assert before.makespan_s == explicit.makespan_s


@pytest.mark.parametrize("field, value", [("host_cores", 0.0), ("task_parallelism", 0.0), ("host_cores", -1.0),
                                          ("process_start_s", math.inf), ("host_cores", math.nan)])
def test_bad_host_terms_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        Platform(**{field: value})


def test_the_local_host_is_this_machine():
    import os

    assert Platform.for_local_host().host_cores == float(len(os.sched_getaffinity(0)))
    assert Platform.for_local_host().shared_host and not Platform().shared_host


def test_host_terms_round_trip_through_toml(tmp_path):
    platform = Platform(host_cores=2.0, task_parallelism=1.5, process_start_s=0.03)
    platform.to_toml(tmp_path / "p.toml")
    assert Platform.from_toml(tmp_path / "p.toml") == platform
    assert Platform.from_toml(tmp_path / "p.toml").host_cores == 2.0
    Platform().to_toml(tmp_path / "inf.toml")
    assert math.isinf(Platform.from_toml(tmp_path / "inf.toml").host_cores)


def test_background_work_takes_its_fair_share():
    """Three 1 s single-core branches on 2 cores beside 1 core's worth of other work: four single-core jobs
    on 2 cores, half a core each: 2 s."""
    workflow, plan = fork_join_plan("medium")
    platform = Platform.zero().with_(host_cores=2.0, host_background=1.0)
    trace = simulate(workflow, plan, FREE, platform=platform, durations=branch_durations(workflow))
    assert done(trace, "s0-w1") == pytest.approx(2.0)


def test_a_process_loads_the_runs_specification_once():
    """spec_load_s_per_task = 0.02 on a 5-task fork_join (0.1 s a load), three idle 'medium' processes from an
    earlier run, 8 cores: w0 loads (ready 0.1), then w1 and w2 load at once beside it (ready 0.2)."""
    workflow, plan = fork_join_plan("medium")
    platform = Platform.zero().with_(host_cores=8.0, keep_alive_s=60.0, spec_load_s_per_task=0.02)
    trace = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids},
                     warm_pool={"medium": 3})
    assert done(trace, "fork") == pytest.approx(0.1)
    assert trace.makespan_s == pytest.approx(0.2)


def test_a_process_freed_in_the_run_has_the_specification_already():
    """A 3-task chain with one worker per task, no warm pool, spec load 0.1 s (3 tasks x 1/30 s): w0 is cold
    and loads (ready 0.1); it asks for w1 before it stops, so w1 is cold too and loads (ready 0.2); w2 reuses
    w0's idle process, which has the specification already: ready at once."""
    from executor.plans import assigned_plan

    workflow = generate("chain", length=3)
    plan = assigned_plan(workflow, {t: f"w{k}" for k, t in enumerate(workflow.topological_order())}, "medium",
                         cost_model=FREE)
    platform = Platform.zero().with_(host_cores=8.0, keep_alive_s=60.0, spec_load_s_per_task=1 / 30)
    trace = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids})
    assert list(trace.workers.sort_values("start_s")["cold_start"]) == [True, True, False]
    assert trace.makespan_s == pytest.approx(0.2)


def test_the_launcher_serves_warm_starts_one_at_a_time_too():
    """launch_s = 0.1 and three idle processes: w0 is handed its process at 0.1 (its fork task is done then);
    w1 and w2, asked for at 0.1, are handed theirs at 0.2 and 0.3."""
    workflow, plan = fork_join_plan("medium")
    platform = Platform.zero().with_(host_cores=8.0, launch_s=0.1, keep_alive_s=60.0)
    trace = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids},
                     warm_pool={"medium": 3})
    assert not trace.workers["cold_start"].any()
    assert sorted(trace.workers["ready_s"].round(9)) == pytest.approx([0.1, 0.2, 0.3])


def test_the_launcher_decides_warm_or_cold_when_it_gets_to_a_request():
    """fork_join width 4, branches 0.01 s, launch 0.05 s, fork 0.1 s more.  w0: cold, ready 0.15, forks;
    w1 (asked at 0.15) cold: ready 0.30, done 0.31; w2 (served at 0.30, w1 still busy) cold: ready 0.45;
    w3 (served at 0.45) takes w1's process, idle since 0.31: warm, ready 0.50, done 0.51 - the makespan."""
    workflow, plan = fork_join_plan("medium", width=4)
    platform = Platform.zero().with_(host_cores=8.0, launch_s=0.05, process_start_s=0.1, keep_alive_s=60.0)
    trace = simulate(workflow, plan, FREE, platform=platform, durations=branch_durations(workflow, 0.01))
    cold = trace.workers.set_index("worker")["cold_start"].to_dict()
    assert cold == {"w0": True, "w1": True, "w2": True, "w3": False}
    assert trace.makespan_s == pytest.approx(0.51)


def test_a_busy_host_slows_the_launcher_too():
    """launch_s = 0.1 of the launcher's CPU on a 1-core host beside 1 core of other work: half a core, so each
    hand-off takes 0.2 s: w0 at 0.2, then w1 at 0.4 and w2 at 0.6."""
    workflow, plan = fork_join_plan("medium")
    platform = Platform.zero().with_(host_cores=1.0, host_background=1.0, launch_s=0.1, keep_alive_s=60.0)
    trace = simulate(workflow, plan, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids},
                     warm_pool={"medium": 3})
    assert sorted(trace.workers["ready_s"].round(9)) == pytest.approx([0.2, 0.4, 0.6])
    assert trace.makespan_s == pytest.approx(0.6)


def test_warm_starts_queue_at_the_launcher_behind_the_roots_started_at_the_same_instant():
    """w1 and w2 are pre-warmed at 0; the root's start and the warm starts are messages (invoke_s = 0.01), the
    root's sent first (the executor's client submits the roots, then pushes the warm starts): the launcher forks
    w0 0.01 -> 0.11 (the root runs at once: done 0.11), then w1 -> 0.21 and w2 -> 0.31.  Before, the warm starts
    reached the launcher at 0, ahead of the root's: w1 0.1, w2 0.2, w0 0.3.  Their billed start stays 0."""
    from planning.plan import Plan

    workflow, plan = fork_join_plan("medium")
    a = plan.assignment
    w0 = a.worker_of["fork"]
    others = sorted(w for w in a.sequence if w != w0)
    warmed = Plan.from_assignment(workflow, CATALOG, plan.estimates, FREE, "mean", a.worker_of, a.worker_profile,
                                  planner="uniform", sequence=a.sequence, warm_starts={w: 0.0 for w in others})
    platform = Platform.zero().with_(host_cores=8.0, process_start_s=0.1, invoke_s=0.01)
    trace = simulate(workflow, warmed, FREE, platform=platform, durations={t: 0.0 for t in workflow.task_ids})
    workers = trace.workers.set_index("worker")
    assert workers.loc[w0, "ready_s"] == pytest.approx(0.11)
    assert sorted(workers.loc[others, "ready_s"]) == pytest.approx([0.21, 0.31])
    assert list(workers.loc[others, "start_s"]) == [0.0, 0.0]
    assert done(trace, "fork") == pytest.approx(0.11)
