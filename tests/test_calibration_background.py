"""Runs already running at a run's submission: counted from the recorded starts, charged on the workflow system's
dispatcher, fitted on request (calibrate(background_runs=...), experiments/calibration/concurrency.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from experiments.calibration import calibrate
from experiments.calibration import executions
from experiments.calibration.baselines import AnalyticBaseline, Features
from experiments.calibration.concurrency import background_runs, running_at_start
from planning.errors import ConfigError
from simulator import Platform
from simulator.dispatch import Dispatcher
from simulator.simulate import run_once
from tests.test_calibration_fit import fork_join, observed


def test_running_at_start_counts_only_what_was_known_at_submission() -> None:
    # a: 0-100, b: 50-150, c: 120-130 (inside b only), d: start unknown, e: 200-300 (after everyone)
    spans = [(0.0, 100.0), (50.0, 100.0), (120.0, 10.0), (None, 50.0), (200.0, 100.0)]
    assert running_at_start(spans).tolist() == [0, 1, 1, 0, 0]
    # a run that ends exactly when another starts is not beside it; one that starts at the same second is
    assert running_at_start([(0.0, 50.0), (50.0, 10.0), (50.0, 20.0)]).tolist() == [0, 1, 1]
    # a held-out run (known False) counts in nobody's background; its own count still sees the others
    assert running_at_start(spans, [True, False, True, True, True]).tolist() == [0, 1, 0, 0, 0]


def test_background_runs_of_a_fold_keep_the_held_out_end_out_of_the_training_counts() -> None:
    def run(name, start, makespan):
        return SimpleNamespace(name=name, real_makespan_s=makespan,
                               workflow=SimpleNamespace(metadata={"executed_at": start}))

    a = run("a", "2020-01-01T00:00:00+00:00", 100.0)
    b = run("b", "2020-01-01T00:00:50+00:00", 100.0)   # beside a
    c = run("c", "2020-01-01T00:01:10+00:00", 100.0)   # beside a (ends at 100) and b
    assert background_runs([a, b, c]) == {"a": 0, "b": 1, "c": 2}
    # b held out: c's count must not say that b was still running 20 s after its start; b's own sees a
    assert background_runs([a, b, c], [b]) == {"a": 0, "b": 1, "c": 1}


def test_each_background_run_adds_its_cost_to_every_dispatch() -> None:
    plain = Platform.zero().with_(dispatch_s=1.0)
    busy = plain.with_(background_runs=2.0, background_dispatch_s=0.5)
    d = Dispatcher(busy)
    # three tasks released at 0: served 2 s each (1 + 2 x 0.5), one after another
    assert [d.serve(0.0, "w") for _ in range(3)] == [2.0, 4.0, 6.0]
    # no cost per run, or no run: the dispatcher is the plain one
    assert Dispatcher(plain.with_(background_runs=3.0)).dispatch_s == 1.0
    assert Dispatcher(plain.with_(background_dispatch_s=9.0)).dispatch_s == 1.0
    assert not Dispatcher(Platform.zero().with_(background_runs=2.0)).active


def test_an_observation_is_simulated_with_its_own_count() -> None:
    run = observed(fork_join(8), Platform.zero(), "app-chameleon-w8-001")
    costly = Platform.zero().with_(background_dispatch_s=1.0)
    alone = run.simulate(costly)
    run.background_runs = 2.0
    beside = run.simulate(costly)
    # 10 tasks through a dispatcher of 2 s each, hidden partly behind the 10-12 s tasks: later than alone
    assert beside > alone == run.simulate(Platform.zero())
    assert beside == run.simulate(Platform.zero().with_(dispatch_s=2.0))   # exactly 2 runs x 1 s per task


def test_a_replays_start_up_only_shifts_it_and_costs_no_simulation(monkeypatch) -> None:
    run = observed(fork_join(8), Platform.zero(), "app-chameleon-w8-001")
    calls = []
    real = executions.makespan   # (the replay's makespan: simulator.makespan_replay)
    monkeypatch.setattr(executions, "makespan", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    base = Platform.zero().with_(dispatch_s=1.5)
    first = run.simulate(base)
    assert run.simulate(base.with_(workflow_start_s=100.0)) == first + 100.0
    assert len(calls) == 1 and calls[0].workflow_start_s == 0.0
    # what the simulator itself gives with the delay, up to rounding
    assert run_once(run.model, base.with_(workflow_start_s=100.0), record=False).makespan_s == pytest.approx(
        first + 100.0, rel=1e-12)


def test_the_formula_gets_a_fifth_term_only_when_counts_are_known() -> None:
    def feats(tasks, runs):
        return Features(100.0, 50.0, 3, tasks, 0.0, runs * tasks)

    train = [feats(10, 0), feats(20, 1), feats(30, 2), feats(40, 0)]
    real = [100.0 + 2.0 * f.background_task_runs for f in train]   # 2 s per task and background run
    model = AnalyticBaseline("four_term").fit(train, real)
    assert model.coefficients_["background"] == pytest.approx(2.0)
    assert model.predict([feats(50, 3)])[0] == pytest.approx(100.0 + 2.0 * 150)
    plain = AnalyticBaseline("four_term").fit([feats(10, 0), feats(20, 0)], [100.0, 100.0])
    assert "background" not in plain.coefficients_


def test_calibration_fits_the_cost_of_each_background_run() -> None:
    truth = Platform.zero().with_(background_dispatch_s=1.5)
    runs, counts = [], {}
    for w, n in ((8, 0), (16, 2), (24, 1), (32, 3), (40, 0)):
        name = f"app-chameleon-w{w}-001"
        o = observed(fork_join(w, runtime=2.0), Platform.zero(), name)
        o.background_runs = counts[name] = float(n)
        o.real_makespan_s = o.simulate(truth)
        o.background_runs = 0.0   # calibrate gives it back from the mapping
        runs.append(o)
    result = calibrate(runs, prior=None, background_runs=counts, choose=False, workers=1)
    assert "background_dispatch_s" in result.kept
    assert result.platform.background_dispatch_s == pytest.approx(1.5, rel=0.05)
    assert result.held_out_error < 0.02
    # without the counts nothing explains why equal-looking runs differ: no term fits them all
    plain = calibrate(runs, prior=None, choose=False, workers=1)
    assert "background_dispatch_s" not in plain.fitted and plain.held_out_error > result.held_out_error


def test_bad_counts_are_a_one_line_error() -> None:
    runs = [observed(fork_join(w), Platform.zero(), f"app-chameleon-w{w}-001") for w in (4, 8)]
    with pytest.raises(ConfigError, match="non-negative"):
        calibrate(runs, prior=None, background_runs={runs[0].name: -1.0}, workers=1)
    with pytest.raises(ConfigError, match="mapping"):
        calibrate(runs, prior=None, background_runs="yes", workers=1)


def test_counts_that_are_all_zero_leave_the_calibration_as_it_was() -> None:
    truth = Platform.zero().with_(dispatch_s=1.0)
    runs = [observed(fork_join(w), truth, f"app-chameleon-w{w}-001") for w in (4, 8, 16)]
    off = calibrate(runs, prior=None, workers=1)
    on = calibrate(runs, prior=None, background_runs={o.name: 0.0 for o in runs}, workers=1)
    assert on.fitted == off.fitted and np.array_equal(on.table["held_out_s"], off.table["held_out_s"])


class _Run:
    """What the model choice reads of an execution: its real makespan and its features."""

    def __init__(self, real: float, feats: Features) -> None:
        self.real_makespan_s, self.feats = real, feats

    def features(self) -> Features:
        return self.feats


def _formula_runs(cost_per_task_and_run: float) -> list[_Run]:
    """Eight sizes on the four-term formula (replay 100 s, 40 s start-up, 3 s per task) plus ``cost_per_task_and_run``
    for each run already running at submission (counts 0-3, unrelated to the size)."""
    out = []
    for i, tasks in enumerate(range(10, 90, 10)):
        runs = float((i * 5) % 4)
        f = Features(100.0, 50.0, 3, tasks, 0.0, runs * tasks)
        out.append(_Run(100.0 + 40.0 + 3.0 * tasks + cost_per_task_and_run * runs * tasks, f))
    return out


def _choose(runs: list[_Run], background: str):
    from experiments.calibration.fit import Fitted
    from experiments.calibration.model_choice import choose_model

    real = np.array([r.real_makespan_s for r in runs])
    far = Fitted(Platform.zero(), ("dispatch_s",), "dispatch_s", {}, {}, cv_predicted=real * 3)   # simulator loses
    sizes = [f"s{r.feats.tasks}" for r in runs]
    return choose_model(far, runs, sizes, background).formula


def test_auto_keeps_the_formulas_fifth_term_only_where_the_counts_explain_the_makespans() -> None:
    from experiments.calibration.fit import folds_by
    from experiments.calibration.model_choice import keeps_background

    explained, unexplained = _formula_runs(2.0), _formula_runs(0.0)
    for runs, kept in ((explained, True), (unexplained, False)):
        feats, real = [r.feats for r in runs], [r.real_makespan_s for r in runs]
        assert keeps_background(feats, real, folds_by([f.tasks for f in feats])) is kept
    assert _choose(explained, "auto").coefficients_["background"] == pytest.approx(2.0)
    # counts that explain nothing: "auto" fits the plain four terms, "always" a fifth (at 0) beside them
    assert "background" not in _choose(unexplained, "auto").coefficients_
    assert "background" in _choose(unexplained, "always").coefficients_
    # no run beside another, or no folds: nothing to keep
    alone = [Features(100.0, 50.0, 3, n, 0.0) for n in (10, 20, 30)]
    assert not keeps_background(alone, [200.0, 250.0, 300.0], folds_by([10, 20, 30]))
    assert not keeps_background([r.feats for r in explained], [r.real_makespan_s for r in explained], [])


def test_auto_counts_from_the_recorded_starts_and_offers_the_simulator_nothing() -> None:
    truth = Platform.zero().with_(dispatch_s=1.0)
    runs = []
    for i, w in enumerate((4, 8, 16)):   # started a minute apart, each still running when the next is submitted
        o = observed(fork_join(w), truth, f"app-chameleon-w{w}-001")
        o.workflow.metadata["executed_at"] = f"2020-01-01T00:0{i}:00+00:00"
        o.real_makespan_s = 500.0
        runs.append(o)
    auto = calibrate(runs, prior=None, held_out=False, workers=1)   # the default
    assert [o.background_runs for o in runs] == [0.0, 1.0, 2.0]
    assert "background_dispatch_s" not in auto.fitted and auto.platform.background_dispatch_s == 0.0
    assert "background_dispatch_s" in calibrate(runs, prior=None, held_out=False, workers=1,
                                                background_runs=True).fitted
    calibrate(runs, prior=None, held_out=False, workers=1, background_runs=False)
    assert [o.background_runs for o in runs] == [0.0, 1.0, 2.0]   # off: left as they were
    with pytest.raises(ConfigError, match="'auto'"):
        calibrate(runs, prior=None, background_runs="sometimes", workers=1)
