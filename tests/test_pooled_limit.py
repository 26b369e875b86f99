"""The pooled timing's early exit: a search's check of a limit gives up once the makespan is sure to miss it."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest

from planning.profiles import load_catalog
from planning.schedule import ScheduleEvaluator
from planning.schedule.pooled import remaining_s, time_pooled
from planning import generate
from planning.tasks import Task
from planning.workflow import Workflow

CATALOG = load_catalog("local")


def _diamond() -> Workflow:
    return Workflow.from_tasks([Task("a", "k"), Task("b", "k"), Task("c", "k"), Task("d", "k")],
                               {"b": ["a"], "c": ["a"], "d": ["b", "c"]})


def test_remaining_seconds_by_hand() -> None:
    ev = ScheduleEvaluator(_diamond(), CATALOG, coordination_s=0.5)
    # a, b on w0 (b after a), c and d on w1 (d after c): the chains after a are a->b->d and a->c->d
    layout = ev.layout({"a": "w0", "b": "w0", "c": "w1", "d": "w1"})
    tail = remaining_s(ev, layout, [1.0, 2.0, 3.0, 4.0])
    index = {t: k for k, t in enumerate(ev.ids)}
    assert tail[index["d"]] == 0.0                           # a sink with nothing to fetch after it
    assert tail[index["b"]] == pytest.approx(0.5 + 4.0)      # d, a round trip after b
    assert tail[index["c"]] == pytest.approx(0.5 + 4.0)      # d is c's child: ready a round trip after c (same worker)
    assert tail[index["a"]] == pytest.approx(0.5 + 3.0 + 4.5)   # via c (3 s) rather than b (2 s)


def test_a_limit_gives_up_only_on_a_makespan_past_it() -> None:
    workflow = Workflow.from_tasks([Task("a", "k"), Task("b", "k")], {"b": ["a"]})
    ev = ScheduleEvaluator(workflow, CATALOG, startup_s=lambda p: 0.25, warm_startup_s=lambda p: 0.01)
    layout = ev.layout({"a": "w0", "b": "w1"})
    tail = remaining_s(ev, layout, [1.0, 1.0])
    whole = ev.run_pooled(layout, ["small", "small"], [1.0, 1.0])
    assert whole.makespan_s == pytest.approx(2.26)           # b's worker starts warm on a's process
    within = time_pooled(ev, layout, ("small", "small"), [1.0, 1.0], limit=2.26, remaining=tail)
    assert within is not None and within.done == whole.done and within.reused == whole.reused
    # a is done at 1.25 and b needs at least 1 s more: 2.25 > 2.2 proves the miss before b is timed
    assert time_pooled(ev, layout, ("small", "small"), [1.0, 1.0], limit=2.2, remaining=tail) is None
    # 2.255: the bound (2.25) does not prove it; b's timing (2.26) does
    assert time_pooled(ev, layout, ("small", "small"), [1.0, 1.0], limit=2.255, remaining=tail) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_early_exit_answers_as_the_whole_timing_does(seed: int) -> None:
    """On random layered DAGs and random profiles: None exactly when the whole timing's makespan is past the limit,
    else the whole timing itself (the bound is taken at each task's fastest execution)."""
    workflow = generate("random_layered", tasks=80, seed=seed)
    ev = ScheduleEvaluator(workflow, CATALOG, startup_s=lambda p: 0.3, warm_startup_s=lambda p: 0.02,
                           coordination_s=0.01, invoke_s=0.005)
    rng = random.Random(seed)
    layout = ev.layout({t: f"w{rng.randrange(12)}" for t in ev.ids})
    names = [p.name for p in CATALOG]
    base = np.array([rng.uniform(0.1, 2.0) for _ in ev.ids])
    exec_s = SimpleNamespace(profiles=names, exec_s=np.outer(base, [1.0 + k for k in range(len(names))]))
    gave_up = 0
    for trial in range(40):
        profiles = [rng.choice(names) for _ in layout.workers]
        whole = ev.run_estimates(layout, profiles, exec_s, pooled=True)
        limit = whole.makespan_s * rng.uniform(0.8, 1.1)
        checked = ev.run_estimates(layout, profiles, exec_s, pooled=True, limit=limit)
        if whole.makespan_s > limit:
            assert checked is None
            gave_up += 1
        else:
            assert checked is not None and checked.done == whole.done and checked.makespan_s == whole.makespan_s
    assert 0 < gave_up < 40
