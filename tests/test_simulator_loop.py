"""The simulator's event loop: coroutines resumed from SimPy's queue behave like SimPy processes."""

from __future__ import annotations

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
