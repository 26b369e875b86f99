"""Timing by levels (numpy over whole levels) gives the scalar loop's times bit for bit, and is used where it pays."""

from __future__ import annotations

import dataclasses
import random

import pytest

import planning.schedule.levels as levels_mod
from planning import CostModel, load_catalog
from planning.schedule import ScheduleEvaluator
from planning.schedule.levels import Levels, task_levels, time_levels, worth_it
from planning.sources.generators import generate
from planning.tasks import Task
from planning.workflow import Workflow

LAMBDA = load_catalog("lambda")
FIELDS = ("exec_s", "startup", "ready", "worker_start", "begin", "download_end", "exec_end", "done", "makespan_s",
          "worker_start_s", "worker_stop_s", "busy_s")


def _both(monkeypatch, evaluator, layout, profiles, exec_s):
    """The same run timed task by task and by levels (the thresholds moved so each path is taken)."""
    monkeypatch.setattr(levels_mod, "MIN_TASKS", 10**9)
    evaluator._layout = None          # forget what was derived from the layout (levels included)
    scalar = evaluator.run(layout, profiles, exec_s)
    assert evaluator.levels(layout) is None
    monkeypatch.setattr(levels_mod, "MIN_TASKS", 0)
    monkeypatch.setattr(levels_mod, "MIN_TASKS_PER_LEVEL", 0)
    evaluator._layout = None          # forget what was derived from the layout (levels included)
    vector = evaluator.run(layout, profiles, exec_s)
    assert evaluator.levels(layout) is not None
    return scalar, vector


@pytest.mark.parametrize("seed", range(10))
def test_levels_equal_the_scalar_loop_bit_for_bit(monkeypatch, seed: int) -> None:
    rng = random.Random(seed)
    wf = generate("random_layered", tasks=rng.randint(2, 300), seed=seed, max_parents=rng.choice([1, 3, 6]))
    ties = seed % 2 == 0    # free transfers, one start-up, whole seconds: many parents done at once
    kw = dict(transfer_s=(lambda b, d: 0.0) if ties else (lambda b, d: (b / 1e6 + (0.01 if d == "upload" else 0.02))
                                                            if b else 0.0),
              startup_s=(lambda p: 0.5) if ties else (lambda p: 0.1 + 0.01 * len(p)),
              invoke_s=0.05 if ties else rng.choice([0.0, 0.05]), coordination_s=rng.choice([0.0, 0.003]))
    evaluator = ScheduleEvaluator(wf, LAMBDA, **kw)
    n_workers = rng.randint(1, 12)
    worker_of = {t: f"w{rng.randrange(n_workers)}" for t in wf.task_ids}
    layout = evaluator.layout(worker_of)
    if rng.random() < 0.5:          # some workers pre-warmed (started ahead of their first task)
        layout = dataclasses.replace(layout, warm=tuple(rng.choice([-1.0, 0.0, 0.2]) for _ in layout.workers))
    profiles = {w: rng.choice(LAMBDA.names) for w in layout.workers}
    # zeros and repeated values make ties between parents (the last parent is the highest index among them)
    exec_s = [rng.choice([1.0, 2.0] if ties else [0.0, 1.0, 0.5, rng.uniform(0.0, 3.0)]) for _ in evaluator.ids]
    scalar, vector = _both(monkeypatch, evaluator, layout, profiles, exec_s)
    for field in FIELDS:
        assert getattr(vector, field) == getattr(scalar, field), field
    assert vector.cost(LAMBDA) == scalar.cost(LAMBDA)


def test_levels_of_a_diamond_by_hand() -> None:
    # a -> b, a -> c, (b, c) -> d; b and d on w0 after a, c on w1: levels a 0, b 1, c 1, d 2
    tasks = [Task(t, "k") for t in "abcd"]
    wf = Workflow.from_tasks(tasks, {"b": ["a"], "c": ["a"], "d": ["b", "c"]}, {})
    ev = ScheduleEvaluator(wf, LAMBDA)
    layout = ev.layout({"a": "w0", "b": "w0", "c": "w1", "d": "w0"})
    level = task_levels(ev, layout)
    assert {t: level[ev.index[t]] for t in "abcd"} == {"a": 0, "b": 1, "c": 1, "d": 2}
    levels = Levels(ev, layout)
    assert [sorted(ev.ids[i] for i in step.tasks.tolist()) for step in levels.steps] == [["a"], ["b", "c"], ["d"]]
    # start-ups 0.5 s (w0) and 0.25 s (w1), free transfers, no latencies
    times = time_levels(ev, layout, levels, [0.5, 0.25], [{"a": 1.0, "b": 2.0, "c": 3.0, "d": 1.0}[t] for t in ev.ids])
    done = dict(zip(ev.ids, times[-1].tolist()))
    # a: 0.5 + 1; b on w0 right after: 3.5; c on w1 from 1.5: 0.25 + 3 = 4.75; d after c (its last parent): 5.75
    assert done == {"a": 1.5, "b": 3.5, "c": 4.75, "d": 5.75}
    # b (on d's worker) and c (elsewhere) done at the same instant: d's last parent is the higher index of the two,
    # and d pays the invocation latency only if that one is c (binary fractions: the sums are exact)
    ev = ScheduleEvaluator(wf, LAMBDA, invoke_s=0.125)
    layout = ev.layout({"a": "w0", "b": "w0", "c": "w1", "d": "w0"})
    exec_s = [{"a": 1.0, "b": 2.0, "c": 1.625, "d": 1.0}[t] for t in ev.ids]
    done = dict(zip(ev.ids, time_levels(ev, layout, Levels(ev, layout), [0.5, 0.25], exec_s)[-1].tolist()))
    assert done["b"] == done["c"] == 3.625
    assert done["d"] == (3.75 if ev.index["c"] > ev.index["b"] else 3.625) + 1.0
    # a worker's order is an edge too: d before c on w1 (c's parent a, d's parents b and c: d must follow c) -
    # so put b after c on w1 instead: levels a 0, c 1, b 2, d 3
    layout = ev.layout({"a": "w0", "b": "w1", "c": "w1", "d": "w0"}, sequence={"w0": ["a", "d"], "w1": ["c", "b"]})
    level = task_levels(ev, layout)
    assert {t: level[ev.index[t]] for t in "abcd"} == {"a": 0, "c": 1, "b": 2, "d": 3}


def test_timing_by_levels_only_where_it_pays() -> None:
    assert worth_it(10_000, 100) and not worth_it(10_000, 5_000) and not worth_it(100, 1)
    model = CostModel()
    wide = generate("random_layered", tasks=3000, seed=1)
    ev = ScheduleEvaluator.for_cost_model(wide, LAMBDA, model, "mean")
    layout = ev.layout({t: f"w{k % 50}" for k, t in enumerate(wide.task_ids)})
    assert ev.levels(layout) is not None and ev.levels(layout) is ev.levels(layout)     # kept per layout
    chain = generate("deep_chain", length=2000)
    ev = ScheduleEvaluator.for_cost_model(chain, LAMBDA, model, "mean")
    assert ev.levels(ev.layout({t: "w0" for t in chain.task_ids})) is None              # one task a level
