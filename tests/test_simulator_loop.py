"""The simulator's event loop: coroutines resumed from SimPy's queue behave like SimPy processes."""

from __future__ import annotations

import pytest
import simpy

from simulator.loop import Coroutine, run, spawn, wake


def test_delays_order_like_simpy_timeouts_ties_in_scheduling_order() -> None:
    # the same three workers, as SimPy processes and as loop coroutines: the same (time, name) log
    plans = {"a": [0.5, 0.5, 1.0], "b": [1.0, 0.0, 1.0], "c": [0.25, 0.75, 0.0, 1.0]}

    def with_simpy() -> list[tuple[float, str]]:
        env, log = simpy.Environment(), []

        def proc(name: str):
            for d in plans[name]:
                yield env.timeout(d)
                log.append((env.now, name))
        for name in plans:
            env.process(proc(name))
        env.run()
        return log

    def with_loop() -> list[tuple[float, str]]:
        env, log = simpy.Environment(), []

        def proc(name: str, me: Coroutine):
            for d in plans[name]:
                yield d
                log.append((env.now, name))
        for name in plans:
            spawn(env, proc, name)
        run(env)
        return log

    assert with_loop() == with_simpy()


def test_a_waiting_coroutine_gets_the_value_it_is_woken_with_at_that_time() -> None:
    env, seen = simpy.Environment(), []
    waiting: list[Coroutine] = []

    def sleeper(me: Coroutine):
        waiting.append(me)
        value = yield            # registered: only a wake resumes it
        seen.append(("sleeper", env.now, value))

    def waker(me: Coroutine):
        yield 2.0
        wake(env, waiting[0], "hello", 1.5)

    spawn(env, sleeper)
    spawn(env, waker)
    run(env)
    assert seen == [("sleeper", 3.5, "hello")]


def test_a_coroutine_can_wait_for_an_ordinary_simpy_event_and_receives_its_value() -> None:
    env, seen = simpy.Environment(), []
    event = env.event()

    def waiter(me: Coroutine):
        value = yield event
        seen.append((env.now, value))
        yield 1
        seen.append((env.now, "after an int delay"))

    def proc():
        yield env.timeout(4.0)
        event.succeed(42)

    spawn(env, waiter)
    env.process(proc())
    run(env)
    assert seen == [(4.0, 42), (5.0, "after an int delay")]


def test_other_items_with_value_and_resume_are_resumed_in_time_order() -> None:
    env, seen = simpy.Environment(), []

    class Note:
        def __init__(self, name: str) -> None:
            self.name, self.value = name, None

        def resume(self) -> None:
            seen.append((env.now, self.name, self.value))

    wake(env, Note("late"), 2, 2.0)
    wake(env, Note("early"), 1, 1.0)
    wake(env, Note("tie, scheduled second"), 3, 2.0)
    run(env)
    assert seen == [(1.0, "early", 1), (2.0, "late", 2), (2.0, "tie, scheduled second", 3)]


def test_a_wake_up_in_the_past_is_refused_rather_than_running_the_clock_backwards() -> None:
    import pytest

    env = simpy.Environment()

    def backwards(me: Coroutine):
        yield 1.0
        yield -0.5

    spawn(env, backwards)
    with pytest.raises(ValueError, match="in the past"):
        run(env)

    class Note:
        value = None

        def resume(self) -> None:
            pass

    with pytest.raises(ValueError, match="in the past"):
        wake(env, Note(), None, -1e-3)


def test_an_upload_start_begins_the_upload_at_its_time_and_wakes_the_worker_at_the_counter_update() -> None:
    # 50 B at 100 B/s from t = 2 (alone on the link): bytes done at 2.5, + latency 0.5 = stored at 3.0;
    # the worker is woken at the counter update 3.0 + 0.25 with the store time
    from simulator.storage import SharedLink
    from simulator.worker_loop import UploadStart

    env, seen = simpy.Environment(), []
    link = SharedLink(env, 100.0)

    def worker(me: Coroutine):
        starter = UploadStart(me, link.transfer_one, 0.5, 0.25, None)
        starter.nbytes = 50.0
        wake(env, starter, None, 2.0)
        done = yield
        seen.append((env.now, done))

    spawn(env, worker)
    run(env, link)
    assert seen == [(3.25, 3.0)]


@pytest.mark.parametrize("fast", [False, True])
def test_a_task_that_downloads_and_stores_does_not_resume_its_worker_at_its_execution_end(fast: bool) -> None:
    # the link starts the upload at the execution's end (UploadStart): the worker sleeps from its
    # downloads to its counter update, so no resume of any worker loop lands on such a task's exec end
    # (the general loop, and the default platform's fast path: simulator.fast_loop)
    from planning.costs.cost_model import CostModel
    from planning.planners import get_planner
    from planning.profiles import load_catalog
    from planning.sources.generators import generate
    from simulator import Platform
    from simulator.engine import Run
    from simulator.simulate import compile_plan

    model = CostModel()
    wf = generate("random_layered", tasks=120, seed=4)
    plan = get_planner("uniform", profile="medium").plan(wf, load_catalog("local"), model, "p95")
    compiled = compile_plan(wf, plan, model)
    r = Run(compiled, Platform.from_cost_model(model, "p95"), fast=fast)
    assert r.fast == fast
    worker_loop = r.worker_loop
    resumed_at: list[float] = []

    def counted(run_, w, start, me):
        inner = worker_loop(run_, w, start, me)
        value = None
        while True:
            resumed_at.append(run_.env.now)
            try:
                wait = inner.send(value)
            except StopIteration:
                return
            value = yield wait

    r.worker_loop = counted
    result = r.run()
    t = result.tasks
    both = [k for k in range(compiled.n) if r.fetch_sized[k] and r.store[k] and r.out_bytes[k] > 0]
    assert len(both) > 20                  # the case is there
    ends = {t["exec_end_s"][k] for k in both}
    assert not ends & set(resumed_at)


def test_a_finished_run_leaves_no_reference_cycles_per_worker() -> None:
    # a finished worker's driver drops its upload starter (which refers back to it): the run is freed by
    # reference counting, not left to the cyclic collector (tens of ms after every 10k-task run); the uniform
    # plan on the default platform runs the fast path (simulator.fast_loop), the others the general loop
    import gc

    from planning.costs.cost_model import CostModel
    from planning.planners import get_planner
    from planning.profiles import load_catalog
    from planning.sources.generators import generate
    from simulator import Platform, simulate

    model = CostModel()
    wf = generate("random_layered", tasks=300, seed=2)
    platform = Platform.from_cost_model(model, "p95")
    for planner, plat in (("uniform", platform), ("heft", platform.with_(host_cores=2.0)), ("wukong", platform)):
        plan = get_planner(planner, **({"profile": "medium"} if planner == "uniform" else {})).plan(
            wf, load_catalog("local"), model, "p95")
        gc.collect()
        gc.disable()
        try:
            trace = simulate(wf, plan, model, platform=plat)
            unreachable = gc.collect()
        finally:
            gc.enable()
        assert trace.workers.shape[0] > 10
        assert unreachable < 12, planner      # (SimPy's environment refers to itself: a handful, not 3+ per worker)
