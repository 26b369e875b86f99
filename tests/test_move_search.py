"""The search ``critical-path`` and ``cost-deadline`` share: slack proposals, exact batches, budgets.

Behaviour, not timing: the slack check never lets through a move that breaks the
limit (checked against full re-schedules), the planners end where no single move
the one-at-a-time search would make is left (checked with full re-schedules), a
time budget cuts the search and the plan says so (planner, config and CLI).
"""

from __future__ import annotations

import dataclasses
import functools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.cli import main
from experiments.config import parse_config
from planning import SLA, CostModel, generate, load_catalog
from planning.errors import PlanError
from planning.planners import get_planner
from planning.planners.cost_moves import REPIN_ROUNDS, first_startups
from planning.planners.critical_path import critical_indices
from planning.planners.deadline_levels import construct
from planning.planners.move_search import MoveSearch
from planning.planners.uniform import locality_layout
from planning.schedule import Retimer, ScheduleEvaluator
from planning.schedule.slack import latest_done, move_fits, moved_alone, worker_chains

LAMBDA = load_catalog("lambda")
MEAN = SLA.parse("mean")
SMALL = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _setup(tasks: int, seed: int, cold: float):
    wf = generate("random_layered", tasks=tasks, seed=seed)
    model = CostModel(cold_start_s=cold)
    est = model.estimate_workflow(wf, LAMBDA, MEAN)
    worker_of, workers, need = locality_layout(wf)
    evaluator = ScheduleEvaluator.for_cost_model(wf, LAMBDA, model, MEAN)
    layout = evaluator.layout(worker_of)
    return wf, model, est, worker_of, workers, need, evaluator, layout


def _full(evaluator, layout, est, profile):
    """The reference: a full re-schedule of the assignment (no incremental state), as the search times it."""
    return evaluator.run_estimates(layout, profile, est)


def _final(evaluator, layout, est, profile):
    """The final plan's timing: the search's, plus warm starts on processes earlier workers freed."""
    return evaluator.run_estimates(layout, profile, est, pooled=True)


@SMALL
@given(tasks=st.integers(8, 70), seed=st.integers(0, 10_000), cold=st.sampled_from([0.0, 0.4]),
       slack=st.sampled_from([1.0, 1.05, 1.3]), data=st.data())
def test_a_move_that_fits_the_slack_keeps_the_limit_and_one_moved_alone_proves_late_breaks_it(tasks, seed, cold,
                                                                                             slack, data) -> None:
    _, _, est, _, workers, _, evaluator, layout = _setup(tasks, seed, cold)
    profile = {w: data.draw(st.sampled_from(LAMBDA.names[-3:])) for w in layout.workers}
    timing = Retimer(evaluator, layout, est, profile)
    limit = timing.makespan_s * slack
    latest = latest_done(timing, limit)
    chains = worker_chains(timing)
    for k, w in enumerate(layout.workers):
        assert [layout.workers[layout.worker[i]] for i in chains[k]] == [w] * len(chains[k])
        for name in LAMBDA.names:
            fits, stop = move_fits(timing, chains[k], timing.column[name], evaluator.startup_of(name), latest)
            moved = _full(evaluator, layout, est, {**profile, w: name})
            if fits:
                assert moved.makespan_s <= limit * (1 + 1e-12), (w, name)
                assert moved.worker_stop_s[k] <= stop * (1 + 1e-12) + 1e-12
            if timing.only_slows({w: name}):      # the other side: the worker's own tasks, the rest as now
                misses, least = moved_alone(timing, chains[k], timing.column[name], evaluator.startup_of(name), latest)
                if misses:
                    assert moved.makespan_s > limit, (w, name)
                else:
                    assert least <= moved.worker_stop_s[k] * (1 + 1e-12) + 1e-12, (w, name)


@SMALL
@given(tasks=st.integers(8, 60), seed=st.integers(0, 10_000), cold=st.sampled_from([0.0, 0.4]),
       tolerance=st.sampled_from([0.0, 0.05, 0.3]))
def test_critical_path_ends_where_no_worker_off_the_path_can_go_one_rung_down(tasks, seed, cold, tolerance) -> None:
    wf, model, est, worker_of, workers, need, evaluator, layout = _setup(tasks, seed, cold)
    plan = get_planner("critical-path", tolerance=tolerance).plan(wf, LAMBDA, model, MEAN)
    assert plan.worker_of == worker_of
    # the promise holds on the plan returned, timed with the pool (as the plan is)
    fastest = {w: LAMBDA.fastest().name for w in workers}
    pooled_fastest = _final(evaluator, layout, est, fastest)
    limit = pooled_fastest.makespan_s * (1 + tolerance)
    pooled = _final(evaluator, layout, est, plan.worker_profile)
    assert pooled.makespan_s == plan.makespan_s <= limit
    assert plan.cost <= pooled_fastest.cost(LAMBDA) * (1 + 1e-12)
    if any("on the pooled timing" in note for note in plan.notes):
        return      # the plan kept some of the passes' moves: the passes' end state is not the plan's
    # The passes from the construction timed each worker with the start-up its pooled timing gave it until they
    # moved it (then its new profile's cold start); those from the all-fastest plan, where they ended cheaper, every
    # worker cold.  Either ended where no worker off the critical path could go one rung down.
    if any("passes from the all-fastest plan ended cheaper" in note for note in plan.notes):
        timed = functools.partial(_full, evaluator, layout, est)        # those passes time every worker cold
        limit = timed(fastest).makespan_s * (1 + tolerance)
    else:
        built, built_times, _ = construct(evaluator, layout, est, LAMBDA, need, limit, pooled_fastest,
                                          MoveSearch(None))
        held = first_startups(built_times)

        def timed(profile):
            startups = [held[k] if profile[w] == built[w] else evaluator.startup_of(profile[w])
                        for k, w in enumerate(layout.workers)]
            return evaluator.run_estimates(layout, profile, est, startups=startups)

    final = timed(plan.worker_profile)
    assert final.makespan_s <= limit
    critical = {layout.workers[layout.worker[i]] for i in critical_indices(final.done, layout, evaluator)}
    ladder = sorted(LAMBDA, key=lambda p: (-p.cpus, -p.memory_mb, p.price_per_s))
    for w in set(workers) - critical:
        rung = [p.name for p in ladder].index(plan.worker_profile[w])
        lower = [p for p in ladder[rung + 1:] if p.price_per_s < LAMBDA[plan.worker_profile[w]].price_per_s
                 and p.memory_mb >= need[w]]
        if lower:
            trial = timed({**plan.worker_profile, w: lower[0].name})
            assert trial.makespan_s > limit, f"{w} could still go down to {lower[0].name}"


@SMALL
@given(tasks=st.integers(8, 60), seed=st.integers(0, 10_000), cold=st.sampled_from([0.0, 0.4]),
       factor=st.sampled_from([1.0, 1.2, 2.0, 5.0]))
def test_cost_deadline_ends_where_no_single_move_is_cheaper_within_the_deadline(tasks, seed, cold, factor) -> None:
    wf, model, est, worker_of, workers, need, evaluator, layout = _setup(tasks, seed, cold)
    fastest = {w: LAMBDA.fastest().name for w in workers}
    pooled_fastest = _final(evaluator, layout, est, fastest)
    deadline = pooled_fastest.makespan_s * factor
    plan = get_planner("cost-deadline", deadline=deadline).plan(wf, LAMBDA, model, MEAN)
    pooled = _final(evaluator, layout, est, plan.worker_profile)
    assert plan.feasible and pooled.makespan_s == plan.makespan_s <= deadline
    assert pooled.cost(LAMBDA) == pytest.approx(plan.cost, rel=1e-12)
    assert plan.cost <= pooled_fastest.cost(LAMBDA) * (1 + 1e-12)
    if any("on the pooled timing" in note or f"{REPIN_ROUNDS} rounds" in note for note in plan.notes):
        return      # kept some of a search's moves by pooled timings, or stopped at the rounds' bound
    # The last search timed each worker with the start-up the pool gives the plan it started from until it moved
    # it (then its new profile's cold start), tried a move only if it lowered the worker's own cost with the rest
    # as it was, and moved nothing: no such move from the plan is cheaper within the deadline (full re-schedules).
    kept = first_startups(pooled)
    number = {w: k for k, w in enumerate(layout.workers)}
    home = plan.worker_profile

    def timed(profile):
        startups = [kept[k] if profile[w] == home[w] else evaluator.startup_of(profile[w])
                    for k, w in enumerate(layout.workers)]
        return evaluator.run_estimates(layout, profile, est, startups=startups)

    final = timed(home)
    assert final.makespan_s == pooled.makespan_s and final.cost(LAMBDA) == pooled.cost(LAMBDA)
    cost = final.cost(LAMBDA)
    for w in workers:
        k, price = number[w], LAMBDA[home[w]].price_per_s
        own = (final.worker_stop_s[k] - final.worker_start_s[k]) * price
        for p in LAMBDA.by_price():
            if p.price_per_s < price and p.memory_mb >= need[w]:
                trial = timed({**home, w: p.name})
                # the worker's own new stop with the rest as it was is at most its stop in the full re-schedule
                if (trial.worker_stop_s[k] - trial.worker_start_s[k]) * p.price_per_s >= own:
                    continue        # not a move the search tries (its own cost does not fall), or it might not be
                assert not (trial.makespan_s <= deadline and trial.cost(LAMBDA) < cost * (1 - 1e-12)), (w, p.name)


def test_settle_halves_a_batch_that_breaks_the_limit_and_keeps_the_order() -> None:
    _, _, est, _, workers, _, evaluator, layout = _setup(40, 3, 0.0)
    timing = Retimer(evaluator, layout, est, {w: LAMBDA.fastest().name for w in workers})
    limit = timing.makespan_s * 1.2
    search = MoveSearch(timing)
    cheapest = LAMBDA.by_price()[0].name
    moves = [(w, cheapest) for w in workers]
    turned_down = []
    kept = search.settle(moves, lambda makespan, part: makespan <= limit, turned_down.append)
    assert kept and turned_down and len(kept) + len(turned_down) == len(moves)
    assert [m for m in moves if m in kept or m in turned_down] == moves
    assert timing.makespan_s <= limit
    applied = {w: LAMBDA.fastest().name for w in workers} | dict(kept)
    assert _full(evaluator, layout, est, applied).makespan_s == timing.makespan_s


# ---------------------------------------------------------------------- budgets
@pytest.mark.parametrize("name, params", [("critical-path", {}), ("cost-deadline", {"deadline": 1e9})])
def test_time_budget_cuts_the_search_and_the_plan_says_so(name, params) -> None:
    wf = generate("random_layered", tasks=300, seed=2)
    full = get_planner(name, **params).plan(wf, LAMBDA, CostModel(), MEAN)
    cut = get_planner(name, time_budget=1e-9, **params).plan(wf, LAMBDA, CostModel(), MEAN)
    assert "time_budget=1e-09 s" in cut.notes[-1] and "cut the search" in cut.notes[-1]
    assert not any("time_budget" in note for note in full.notes)
    assert cut.params["time_budget"] == 1e-9
    assert cut.feasible and full.cost < cut.cost          # stopped before the first batch: all on the fastest
    assert set(cut.worker_profile.values()) == {LAMBDA.fastest().name}


def test_a_budget_reached_mid_search_keeps_what_was_confirmed(monkeypatch) -> None:
    import planning.planners.critical_path as module

    wf = generate("random_layered", tasks=300, seed=2)
    model = CostModel(cold_start_s=0.0)    # no start-ups: the pooled timing is the cold one, the search's plan final
    full = get_planner("critical-path").plan(wf, LAMBDA, model, MEAN)
    ticks = iter(range(100_000))
    real = module.MoveSearch
    monkeypatch.setattr(module, "MoveSearch",           # a clock that advances one "second" per read
                        lambda timing, **kw: real(timing, clock=lambda: float(next(ticks)), **kw))
    cut = get_planner("critical-path", time_budget=150.0).plan(wf, LAMBDA, model, MEAN)
    assert "cut the search in pass" in cut.notes[-1]
    fastest = get_planner("uniform", profile=LAMBDA.fastest().name).plan(wf, LAMBDA, model, MEAN)
    assert full.cost < cut.cost < fastest.cost
    assert cut.makespan_s <= fastest.makespan_s * 1.05


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), "soon"])
def test_bad_time_budget_is_a_clear_error(bad) -> None:
    with pytest.raises(PlanError, match="time_budget must be a positive number of seconds"):
        get_planner("cost-deadline", deadline=10.0, time_budget=bad)


def test_time_budget_from_a_config() -> None:
    config = parse_config({"workflow": [{"spec": "gen:chain:length=2", "name": "c"}],
                           "planner": [{"name": "critical-path", "params": {"time_budget": 0.25}}]}, name="inline")
    assert config.planners[0].make().time_budget == 0.25


def test_cli_time_budget(capsys) -> None:
    argv = ["plan", "gen:random_layered:tasks=200", "--planner", "critical-path", "--catalog", "lambda", "--json"]
    assert main([*argv, "--time-budget", "1e-9"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert "cut the search" in notes[-1]
    assert main([*argv, "--time-budget", "-2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "time_budget must be a positive number" in err


@SMALL
@given(tasks=st.integers(8, 70), seed=st.integers(0, 10_000), cold=st.sampled_from([0.0, 0.4]), data=st.data())
def test_a_whole_pass_change_times_exactly_like_the_incremental_one(tasks, seed, cold, data) -> None:
    _, _, est, _, _, _, evaluator, layout = _setup(tasks, seed, cold)
    profile = {w: LAMBDA.fastest().name for w in layout.workers}
    whole, incremental = (Retimer(evaluator, layout, est, profile) for _ in range(2))
    for _ in range(4):
        moved = {w: data.draw(st.sampled_from(LAMBDA.names)) for w in data.draw(
            st.lists(st.sampled_from(layout.workers), min_size=1, max_size=3, unique=True))}
        a, b = whole.change(moved, whole=True), incremental.change(moved)
        reference = _full(evaluator, layout, est, {**profile, **moved})
        assert a == b == reference.makespan_s
        assert whole.times().done == incremental.times().done == reference.done
        assert whole.cost(LAMBDA) == incremental.cost(LAMBDA) == reference.cost(LAMBDA)
        if data.draw(st.booleans()):
            whole.commit(), incremental.commit()
            profile = {**profile, **moved}
        else:
            whole.rollback(), incremental.rollback()
            assert whole.times().done == incremental.times().done == _full(evaluator, layout, est, profile).done


def test_critical_path_keeps_its_tolerance_on_the_pooled_plan() -> None:
    """8 tasks, 4 workers, cold start 0.4 s, tolerance 0.  ``w2`` runs one root (L0-t2) and stops; ``w3`` (L2-t2)
    starts later on its freed process, warm, so the pooled all-fastest makespan is 0.41 s against 0.81 s with every
    worker cold.  The passes hold each worker's pooled start-up (``w3``'s warm one) and see slack at ``w2``; moving
    it down makes ``w3`` start cold on the pooled timing: 0.81 s, twice the promise, which the held timing cannot
    see.  The pass's pooled check catches it and the plan keeps only the moves whose pooled plan keeps the promise:
    ``w2`` stays on the fastest profile."""
    wf, model, est, worker_of, workers, need, evaluator, layout = _setup(8, 0, 0.4)
    fastest = {w: LAMBDA.fastest().name for w in workers}
    pooled_fastest = _final(evaluator, layout, est, fastest)
    assert pooled_fastest.reused == (False, False, False, True)
    assert pooled_fastest.makespan_s == pytest.approx(0.4121, abs=1e-4)
    assert _full(evaluator, layout, est, fastest).makespan_s == pytest.approx(0.8101, abs=1e-4)
    cold_trap = {**fastest, "w2": LAMBDA.by_price()[0].name}
    assert _final(evaluator, layout, est, cold_trap).makespan_s > pooled_fastest.makespan_s * 1.9
    plan = get_planner("critical-path", tolerance=0.0).plan(wf, LAMBDA, model, MEAN)
    assert plan.makespan_s == _final(evaluator, layout, est, plan.worker_profile).makespan_s
    assert plan.makespan_s <= pooled_fastest.makespan_s
    assert plan.worker_profile["w2"] == fastest["w2"] and plan.worker_profile["w0"] != fastest["w0"]
    assert plan.cost < pooled_fastest.cost(LAMBDA)
    assert any("missed the promise or saved nothing on the pooled timing" in note for note in plan.notes)


def test_a_batch_past_the_limit_defers_the_moves_on_the_paths_past_it() -> None:
    """The seed-0 degeneration: moves each fine alone break the limit together.  The search takes back the moves
    latest in order on each path past the limit (deferred to the next pass) instead of halving down to single
    moves; what it keeps is exactly re-timed and within the limit."""
    _, _, est, _, workers, _, evaluator, layout = _setup(400, 0, 0.0)
    start = {w: LAMBDA.fastest().name for w in workers}
    timing = Retimer(evaluator, layout, est, start)
    limit = timing.makespan_s * 1.3
    cheapest = LAMBDA.by_price()[0].name
    moves = [(w, cheapest) for w in workers]
    search, deferred = MoveSearch(timing), []
    kept = search.settle(moves, lambda makespan, part: makespan <= limit, limit=limit, deferred=deferred)
    assert kept and deferred and set(kept) | set(deferred) == set(moves) and not set(kept) & set(deferred)
    assert search.retimings < 12                                    # halving would re-time about 2 x deferred x log
    assert timing.makespan_s <= limit
    assert _full(evaluator, layout, est, {**start, **dict(kept)}).makespan_s == timing.makespan_s


@SMALL
@given(tasks=st.integers(8, 70), seed=st.integers(0, 10_000), slack=st.sampled_from([1.0, 1.05, 1.3]),
       data=st.data())
def test_a_single_move_stopped_at_its_latest_time_breaks_the_limit(tasks, seed, slack, data) -> None:
    _, _, est, _, workers, _, evaluator, layout = _setup(tasks, seed, 0.0)
    profile = {w: data.draw(st.sampled_from(LAMBDA.names[-4:])) for w in layout.workers}
    timing = Retimer(evaluator, layout, est, profile)
    limit = timing.makespan_s * slack
    latest = latest_done(timing, limit)
    for w in layout.workers:
        slower = [p for p in LAMBDA.names if LAMBDA[p].cpus < LAMBDA[profile[w]].cpus]
        if not slower:
            continue
        move = {w: slower[0]}
        makespan = timing.change(move, latest=latest)
        reference = _full(evaluator, layout, est, {**profile, **move}).makespan_s
        if makespan == float("inf"):
            assert timing.bounded and reference > limit
        else:
            assert makespan == reference
        timing.rollback()
        assert timing.times().done == _full(evaluator, layout, est, profile).done


# ---------------------------------------------------------------- what the search spares the final plan
def test_kept_blocks_does_not_ask_again_what_the_caller_saw_missed() -> None:
    """Four moves, every assignment turned down: without ``whole_missed`` the checks are the whole list, then its
    halves, then the first half's halves (4 checks); with it the whole list's check is the caller's - counted, not
    asked - so ``keeps`` sees 3 assignments, the same ones after the first."""
    from planning.planners.move_search import POOLED_CHECKS, kept_blocks

    moves = [("a", "x"), ("b", "x"), ("c", "x"), ("d", "x")]
    asked: list[set] = []
    refuse = lambda assignment: asked.append({w for w, p in assignment.items() if p == "x"}) or False  # noqa: E731
    assert kept_blocks({}, moves, refuse) == {}
    everything = list(asked)
    asked.clear()
    assert kept_blocks({}, moves, refuse, whole_missed=True) == {}
    assert POOLED_CHECKS == 4
    assert everything == [{"a", "b", "c", "d"}, {"a", "b"}, {"a"}, {"b"}]
    assert asked == everything[1:]


def test_kept_blocks_after_a_missed_whole_keeps_what_the_halves_keep() -> None:
    """The caller's plan with both moves missed; alone each half is kept: the first half, then the second on top."""
    from planning.planners.move_search import kept_blocks

    seen: list[dict] = []
    keeps = lambda assignment: seen.append(dict(assignment)) or len(assignment) < 3  # noqa: E731
    result = kept_blocks({"s": "p"}, [("a", "x"), ("b", "y")], keeps, whole_missed=True)
    assert seen == [{"s": "p", "a": "x"}, {"s": "p", "a": "x", "b": "y"}]
    assert result == {"s": "p", "a": "x"}


def test_the_search_planners_plan_with_the_collector_paused(monkeypatch) -> None:
    """The collector is off during the search (it walks the heap for nothing there) and back on after; so too
    during ``wukong``'s prediction, ``uniform``'s and ``heft``'s plans (their final plans' pooled timings are seen
    here)."""
    import gc

    from planning.schedule import pooled

    seen: list[bool] = []
    real = pooled.time_pooled
    monkeypatch.setattr(pooled, "time_pooled", lambda *a, **k: seen.append(gc.isenabled()) or real(*a, **k))
    wf = generate("random_layered", tasks=60, seed=2)
    for planner in (get_planner("critical-path"), get_planner("cost-deadline", deadline=100.0), get_planner("wukong"),
                    get_planner("uniform", profile=LAMBDA.fastest().name), get_planner("heft")):
        planner.plan(wf, LAMBDA, CostModel(), MEAN)
        assert seen and not any(seen) and gc.isenabled()
        seen.clear()


@pytest.mark.parametrize("name", ["critical-path", "cost-deadline"])
@pytest.mark.parametrize("seed", [0, 3])
def test_the_plan_reuses_the_searchs_pooled_timing_and_equals_a_fresh_timing(name, seed, monkeypatch) -> None:
    """The search's last pooled timing of the plan it returns stands for the plan's timing: the plan is exactly
    the one a fresh ``Plan.from_assignment`` of its assignment gives, and no extra pooled timing is made for it."""
    import planning.plan as plan_module
    from planning.plan import Plan
    from planning.schedule import pooled

    wf, model, est, worker_of, workers, _, evaluator, layout = _setup(120, seed, 0.4)
    reused: list[bool] = []
    real_check = plan_module.times_this
    monkeypatch.setattr(plan_module, "times_this", lambda *a: reused.append(real_check(*a)) or reused[-1])
    params = {"deadline": 1.3 * _final(evaluator, layout, est, {w: LAMBDA.fastest().name for w in workers}).makespan_s}
    planner = get_planner(name, **(params if name == "cost-deadline" else {}))
    calls = [0]
    real = pooled.time_pooled
    monkeypatch.setattr(pooled, "time_pooled", lambda *a, **k: calls.__setitem__(0, calls[0] + 1) or real(*a, **k))
    plan = planner.plan(wf, LAMBDA, model, MEAN)
    with_plan = calls[0]
    assert reused == [True]
    fresh = Plan.from_assignment(wf, LAMBDA, est, model, MEAN, worker_of, plan.worker_profile, planner=name)
    assert calls[0] == with_plan + 1                     # a fresh plan times once; the planner's plan did not
    assert plan.tasks.equals(fresh.tasks) and plan.workers.equals(fresh.workers)
    assert plan.makespan_s == fresh.makespan_s


def test_a_pooled_timing_of_another_assignment_is_not_reused() -> None:
    """``pooled_times`` of other profiles (or other execution seconds) is re-timed, not taken."""
    from planning.plan import Plan, times_this

    wf, model, est, worker_of, workers, _, evaluator, layout = _setup(60, 1, 0.4)
    fastest = {w: LAMBDA.fastest().name for w in workers}
    cheapest = {w: LAMBDA.names[0] for w in workers}
    other = _final(evaluator, layout, est, cheapest)
    assert times_this(_final(evaluator, layout, est, fastest), layout, fastest, est)
    assert not times_this(other, layout, fastest, est)
    assert not times_this(other, layout, cheapest, CostModel().estimate_workflow(wf, LAMBDA, SLA.parse("p95")))
    plan = Plan.from_assignment(wf, LAMBDA, est, model, MEAN, worker_of, fastest, planner="x", evaluator=evaluator,
                                pooled_times=other)
    assert plan.makespan_s == _final(evaluator, layout, est, fastest).makespan_s != other.makespan_s


def test_settle_whole_keeps_all_the_moves_or_none() -> None:
    _, _, est, _, _, _, evaluator, layout = _setup(60, 3, 0.4)
    fastest = LAMBDA.fastest().name
    start = {w: fastest for w in layout.workers}
    timing = Retimer(evaluator, layout, est, start)
    slowest = min(LAMBDA, key=lambda p: p.cpus).name
    moves = [(w, slowest) for w in layout.workers[:3]]
    moved = _full(evaluator, layout, est, {**start, **dict(moves)}).makespan_s
    search = MoveSearch(timing)
    assert search.settle_whole(moves, lambda makespan, _: makespan < moved) is None   # one exact re-timing says no
    assert timing.makespan_s == _full(evaluator, layout, est, start).makespan_s      # ... and it is undone
    assert [timing.profile_of(w) for w, _ in moves] == [fastest] * 3
    assert search.settle_whole(moves, lambda makespan, _: makespan <= moved) == moves
    assert timing.makespan_s == moved and [timing.profile_of(w) for w, _ in moves] == [slowest] * 3
    assert search.retimings == 2 and search.settle_whole([], lambda *_: False) == []


@SMALL
@given(tasks=st.integers(8, 70), seed=st.integers(0, 10_000), cold=st.sampled_from([0.0, 0.4]), data=st.data())
def test_the_retimer_holding_pooled_start_ups_times_the_pool_until_a_worker_moves(tasks, seed, cold, data) -> None:
    _, _, est, _, workers, _, evaluator, layout = _setup(tasks, seed, cold)
    fastest = {w: LAMBDA.fastest().name for w in workers}
    pooled = _final(evaluator, layout, est, fastest)
    timing = Retimer(evaluator, layout, est, fastest, kept_startups=first_startups(pooled))
    assert timing.done == list(pooled.done) and timing.makespan_s == pooled.makespan_s
    assert timing.cost(LAMBDA) == pooled.cost(LAMBDA)
    moved = data.draw(st.sampled_from(sorted(workers)))
    name = data.draw(st.sampled_from(LAMBDA.names[:-1]))
    k = layout.workers.index(moved)
    assert timing.startup_for(k, name) == evaluator.startup_of(name)          # a moved worker starts cold
    assert timing.startup_for(k, fastest[moved]) == first_startups(pooled)[k]
    timing.change({moved: name})
    startups = [evaluator.startup_of(name) if w == moved else first_startups(pooled)[j]
                for j, w in enumerate(layout.workers)]
    full = evaluator.run_estimates(layout, {**fastest, moved: name}, est, startups=startups)
    assert timing.done == list(full.done) and timing.makespan_s == full.makespan_s
    timing.rollback()
    assert timing.done == list(pooled.done)


def test_kept_startups_must_name_every_worker() -> None:
    _, _, est, _, workers, _, evaluator, layout = _setup(20, 1, 0.4)
    with pytest.raises(PlanError, match="one start-up per worker"):
        Retimer(evaluator, layout, est, {w: LAMBDA.fastest().name for w in workers}, kept_startups=[0.0])


def test_fixed_start_ups_are_refused_for_an_overlapped_layout() -> None:
    _, _, est, _, workers, _, evaluator, layout = _setup(20, 1, 0.4)
    preloading = dataclasses.replace(layout, preload=True)
    fastest = {w: LAMBDA.fastest().name for w in workers}
    with pytest.raises(PlanError, match="fixed start-ups time the base rule"):
        evaluator.run_estimates(preloading, fastest, est, startups=[0.0] * len(layout.workers))
