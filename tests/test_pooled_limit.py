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


def _pooled_by_the_rule(ev, layout, profiles, exec_s, warm_pool=None):
    """The pooled timing written with the rule's own calls (time_task, last_parent, pooled_startup): an oracle."""
    import heapq

    from planning.schedule.startups import pooled_startup
    from planning.schedule.timing import last_parent, time_task

    n, m = len(ev.ids), len(layout.workers)
    worker, prev, warm = layout.worker, layout.prev, layout.warm or (-1.0,) * len(layout.workers)
    nxt, last_task, waiting = ev.worker_order(layout)
    done, times, startup, reused = [0.0] * n, [None] * n, [0.0] * n, [False] * m
    idle = {p: [0.0] * k for p, k in (warm_pool or {}).items()}
    stops, lastp = [], [-1] * n

    def key(i):
        if prev[i] < 0 and warm[worker[i]] >= 0:
            return warm[worker[i]]
        ps = ev.parents[i]
        if not ps:
            return ev.invoke_s
        last = lastp[i] = last_parent(ps, done)
        return done[last] + ev.coordination_s + (ev.invoke_s if worker[last] != worker[i] else 0.0)

    heap = [(key(i), i) for i in range(n) if waiting[i] == 0]
    heapq.heapify(heap)
    while heap:
        t, i = heapq.heappop(heap)
        w, s = worker[i], 0.0
        if prev[i] < 0:
            s, reused[w] = pooled_startup(ev, idle, stops, profiles, w, t)
        times[i] = time_task(ev.parents[i], w, prev[i], s, done, worker, ev.input_download_s(layout)[i], exec_s[i],
                             ev.upload_s[i], layout.store[i], ev.invoke_s, ev.coordination_s, warm[w], lastp[i])
        startup[i], done[i] = s, times[i][5]
        if last_task[w] == i:
            heapq.heappush(stops, (done[i], w))
        for c in ([nxt[i]] if nxt[i] >= 0 else []) + list(ev.children[i]):
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(heap, (key(c), c))
    return times, startup, reused


@pytest.mark.parametrize("seed", range(10))
def test_the_pooled_loop_is_the_rule_call_by_call(seed: int) -> None:
    import dataclasses

    rng = random.Random(seed)
    wf = generate("random_layered", tasks=rng.randint(2, 150), seed=seed)
    ties = seed % 2 == 0        # whole seconds, free transfers: parents done at once, processes freed as others start
    ev = ScheduleEvaluator(wf, CATALOG, transfer_s=(lambda b, d: 0.0) if ties else (lambda b, d: b / 1e6 + 0.01),
                           startup_s=lambda p: 0.5, warm_startup_s=lambda p: 0.125 if ties else 0.05,
                           invoke_s=rng.choice([0.0, 0.25]), coordination_s=rng.choice([0.0, 0.125]))
    layout = ev.layout({t: f"w{rng.randrange(rng.randint(1, 20))}" for t in wf.task_ids})
    if rng.random() < 0.4:
        layout = dataclasses.replace(layout, warm=tuple(rng.choice([-1.0, 0.0, 1.5]) for _ in layout.workers))
    profiles = tuple(rng.choice(CATALOG.names) for _ in layout.workers)
    exec_s = [float(rng.choice([1, 2])) if ties else rng.uniform(0.0, 2.0) for _ in ev.ids]
    warm_pool = {CATALOG.names[0]: 2} if rng.random() < 0.5 else None
    times, startup, reused = _pooled_by_the_rule(ev, layout, profiles, exec_s, warm_pool)
    got = time_pooled(ev, layout, profiles, exec_s, warm_pool)
    assert list(got.reused) == reused and got.startup == startup
    assert [(r, ws, b, b + dl, e, d) for r, ws, b, dl, e, d in times] == \
        list(zip(got.ready, got.worker_start, got.begin, got.download_end, got.exec_end, got.done))


def test_the_pooled_loop_breaks_a_tie_of_parents_to_the_highest_index() -> None:
    # b (on d's worker) and c (elsewhere) done at 3.625: d's last parent is the higher index of the two, and d
    # pays the invocation latency only if that is c (binary fractions: the sums are exact)
    ev = ScheduleEvaluator(_diamond(), CATALOG, invoke_s=0.125, startup_s={"large": 0.5, "small": 0.25}.get)
    layout = ev.layout({"a": "w0", "b": "w0", "c": "w1", "d": "w0"})
    exec_s = [{"a": 1.0, "b": 2.0, "c": 1.625, "d": 1.0}[t] for t in ev.ids]
    got = time_pooled(ev, layout, ("large", "small"), exec_s)
    done = dict(zip(ev.ids, got.done))
    assert done["b"] == done["c"] == 3.625
    assert done["d"] == (3.75 if ev.index["c"] > ev.index["b"] else 3.625) + 1.0
