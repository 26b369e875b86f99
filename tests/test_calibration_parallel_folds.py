"""The calibration's speed-ups change no answer: remembered simulations, and held-out folds on several processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.calibration import calibrate
from experiments.calibration import executions
from experiments.calibration.parallel_folds import WORKERS_ENV, default_workers, map_folds
from planning.errors import ConfigError
from simulator import Platform
from tests.test_calibration_fit import fork_join, observed


def test_map_folds_keeps_the_folds_order_on_forked_workers() -> None:
    offset = {"value": 100}      # a closure over local state: nothing is pickled but indices and results
    job = lambda fold: [i + offset["value"] for i in fold]   # noqa: E731
    folds = [[0, 1], [2], [3, 4, 5], [6]]
    expected = [[100, 101], [102], [103, 104, 105], [106]]
    assert map_folds(job, folds, workers=1) == expected
    assert map_folds(job, folds, workers=2) == expected
    assert map_folds(job, [], workers=2) == []


def test_workers_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert default_workers() == 3
    monkeypatch.setenv(WORKERS_ENV, "0")
    assert default_workers() == 1
    monkeypatch.setenv(WORKERS_ENV, "many")
    with pytest.raises(ConfigError, match=WORKERS_ENV):
        default_workers()


def test_a_platform_is_simulated_once_until_forgotten(monkeypatch) -> None:
    run = observed(fork_join(8), Platform.zero().with_(dispatch_s=1.0), "app-chameleon-w8-001")
    calls = []
    real_makespan = executions.makespan   # (the replay's makespan: simulator.makespan_replay)

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real_makespan(*args, **kwargs)

    monkeypatch.setattr(executions, "makespan", counting)
    slow = Platform.zero().with_(dispatch_s=2.0)
    first = run.simulate(slow)
    assert run.simulate(Platform.zero().with_(dispatch_s=2.0)) == first      # an equal platform: remembered
    assert len(calls) == 1
    assert run.simulate(Platform.zero()) < first and len(calls) == 2        # another platform: simulated
    run.forget_simulations()
    assert run.simulate(slow) == first and len(calls) == 3


def test_the_held_out_report_is_the_same_on_one_process_or_two() -> None:
    truth = Platform.zero().with_(dispatch_s=1.5, workflow_start_s=30.0)
    sizes = (4, 8, 16)

    def runs():
        return [observed(fork_join(w), truth, f"app-chameleon-w{w}-00{r}") for w in sizes for r in (1,)]

    one = calibrate(runs(), prior=None, workers=1)
    two = calibrate(runs(), prior=None, workers=2)
    assert one.table["held_out_s"].notna().all()
    assert one.table["held_out_s"].tolist() == two.table["held_out_s"].tolist()
    assert one.held_out_error == two.held_out_error and one.kept == two.kept


def test_a_bad_worker_setting_is_a_one_line_error_before_any_fit(monkeypatch, capsys) -> None:
    from experiments.cli import main

    monkeypatch.setenv(WORKERS_ENV, "two")
    files = sorted(str(f) for f in (Path(__file__).resolve().parent.parent / "benchmarks" / "data"
                                    / "wfinstances-corpus").glob("helloworld-*.json.gz"))
    assert len(files) == 2 and main(["calibrate", *files]) == 2
    err = capsys.readouterr().err
    assert WORKERS_ENV in err and "Traceback" not in err


def test_map_halves_keeps_the_order_and_splits_by_weight(monkeypatch) -> None:
    import os

    from experiments.calibration import parallel_folds

    pids = {}

    def job(item):
        pids[item] = os.getpid()        # filled here for this process's half only (the fork's copy is its own)
        return (item * 10, os.getpid())

    items = [1, 2, 3, 4, 5]
    out = parallel_folds.map_halves(job, items, workers=2, weight=lambda i: 4.0 if i == 1 else 1.0)
    assert [v for v, _ in out] == [10, 20, 30, 40, 50]
    # item 1 alone holds half the weight (4 of 8): this process read it, the fork the other four
    assert out[0][1] == os.getpid() and all(pid != os.getpid() for _, pid in out[1:])
    assert set(pids) == {1}
    serial = parallel_folds.map_halves(job, items, workers=1)
    assert [v for v, _ in serial] == [10, 20, 30, 40, 50] and {pid for _, pid in serial} == {os.getpid()}
    assert parallel_folds.map_halves(job, [1, 2, 3], workers=2)[2][1] == os.getpid()   # too few to split


def test_map_halves_raises_a_bad_item_as_it_would_serially() -> None:
    from experiments.calibration.parallel_folds import map_halves

    def job(item):
        if item == 5:
            raise ConfigError(f"item {item} is bad", "give another")
        return item

    with pytest.raises(ConfigError, match="item 5 is bad"):
        map_halves(job, [1, 2, 3, 4, 5], workers=2)


def test_execution_files_read_on_two_processes_are_the_same_observations() -> None:
    corpus = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"
    files = sorted(str(f) for f in corpus.glob("srasearch-*.json.gz"))[:4]
    one = executions._observations(files, None, 1)
    two = executions._observations(files, None, 2)
    assert [o.name for o in two] == [o.name for o in one] and len(one) == 4
    assert [o.real_makespan_s for o in two] == [o.real_makespan_s for o in one]
    assert [o.simulate(Platform.zero().with_(dispatch_s=3.0)) for o in two] == [
        o.simulate(Platform.zero().with_(dispatch_s=3.0)) for o in one]


def test_the_warm_up_gives_every_execution_its_slot_schedules_before_the_fork(monkeypatch) -> None:
    # the slots screen asks each fold's training executions their list schedule per count: computed before the fold
    # workers fork (half on a second process), equal to a fresh computation, and never computed again
    from experiments.calibration.slots import SLOTS_PER_CORE, can_matter
    from planning.planners import recorded

    corpus = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"
    files = sorted(str(f) for f in corpus.glob("blast-*.json.gz"))[:4]
    fresh = {o.name: [recorded.replay_makespan(o.workflow, k) for k in SLOTS_PER_CORE]
             for o in executions._observations(files, None, 1)}
    observations = executions._observations(files, None, 2)
    executions._warm(observations, Platform.zero(), executions.WORKFLOW_SYSTEM_TERMS, False, 2)
    assert {o.name: [o._schedules[k] for k in SLOTS_PER_CORE] for o in observations} == fresh
    assert len(set(map(tuple, fresh.values()))) > 1     # different executions, different schedules (not one stale)
    monkeypatch.setattr(recorded, "replay_makespan", lambda *a, **k: pytest.fail("scheduled again"))
    can_matter(observations, 2.0, 1.0)
